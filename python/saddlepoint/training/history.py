"""`History`: the per-epoch values a fit recorded."""

from __future__ import annotations


class History:
    """Per-epoch values: ``history["loss"]``, ``history["val_accuracy"]``, ...; ``epochs`` lists
    the epoch numbers (from 1).

    Examples
    --------
    >>> history = sp.History()
    >>> history.append({"loss": 0.9}); history.append({"loss": 0.5})
    >>> history.epochs, history["loss"]
    ([1, 2], [0.9, 0.5])
    """

    def __init__(self, values: dict | None = None):
        self.values: dict[str, list[float]] = {k: list(v) for k, v in (values or {}).items()}

    @property
    def epochs(self) -> list[int]:
        return list(range(1, len(self.values.get("loss", [])) + 1))

    def append(self, logs: dict) -> None:
        for key, value in logs.items():
            self.values.setdefault(key, []).append(float(value))

    def __getitem__(self, key: str) -> list[float]:
        return self.values[key]

    def __contains__(self, key: str) -> bool:
        return key in self.values

    def to_dict(self) -> dict:
        return {"epoch": self.epochs, **{k: list(v) for k, v in self.values.items()}}

    def to_csv(self, path) -> None:
        columns = self.to_dict()
        with open(path, "w") as f:
            f.write(",".join(columns) + "\n")
            for row in zip(*columns.values()):
                f.write(",".join(repr(v) if isinstance(v, float) else str(v) for v in row) + "\n")

    def __repr__(self) -> str:
        last = {k: round(v[-1], 4) for k, v in self.values.items() if v}
        return f"History({len(self.epochs)} epochs, last={last})"
