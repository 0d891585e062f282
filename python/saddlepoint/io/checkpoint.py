"""Weights and checkpoints in safetensors files (tensors + JSON metadata; no pickle).

- :func:`save_weights` / :func:`load_weights`: a model's state dict under its PyTorch-style
  names, so ``safetensors.torch.load_file`` + ``load_state_dict`` reads it into the same
  architecture in PyTorch, and the other way round. 0-d tensors (``num_batches_tracked``) are
  written 0-d, as PyTorch writes them.
- :func:`save_checkpoint` / :func:`load_checkpoint`: everything a resumed run needs (model,
  optimizer, scheduler, epoch, random states, history), written atomically: a temporary file
  ``.<name>.tmp-<pid>`` in the same folder, flushed to disk, then renamed over the old one, so a
  crash mid-write leaves the previous checkpoint intact. The next save into that folder removes
  the temporary files that killed processes left behind.

A load is a transaction: the whole file is checked first (its structure, every metadata value,
every tensor's name, shape and dtype against the model and optimizer, every hyperparameter by
the constructors' own validation) and nothing changes unless all of it fits. A file that does
not fit raises ValueError (FileNotFoundError if it does not exist), nothing else.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

import numpy as np
from safetensors.numpy import save

from .files import (
    atomic_write,
    contiguous,
    json_ready,
    read_safetensors,
    remove_stale_temporaries,  # noqa: F401  (public here before io/files.py)
)

FORMAT = "saddlepoint-checkpoint"
VERSION = 1
_META_FIELDS = {"format", "version", "epoch", "rng_states", "history", "optimizer", "scheduler"}
_INDEX = re.compile(r"0|[1-9][0-9]*")


# --- writing -----------------------------------------------------------------------------------
def save_weights(model, path) -> None:
    """Writes the model's state dict (PyTorch-style names) to a safetensors file.

    Parameters
    ----------
    model : Module
    path : str or os.PathLike

    Examples
    --------
    >>> model = sp.mlp([2, 3, 1], rng=0)
    >>> sp.save_weights(model, "weights.safetensors")
    >>> other = sp.mlp([2, 3, 1], rng=1)
    >>> sp.load_weights(other, "weights.safetensors")
    >>> bool(np.array_equal(other[0].weight.data, model[0].weight.data))
    True
    """
    state = {name: contiguous(a) for name, a in model.state_dict().items()}
    atomic_write(path, save(state, metadata={"format": "pt"}))


def save_checkpoint(
    path,
    *,
    model,
    optimizer=None,
    scheduler=None,
    epoch: int = 0,
    rng_states: dict | None = None,
    history: dict | None = None,
) -> None:
    """Writes model, optimizer and scheduler state, epoch, random-generator states and history
    to one safetensors file, atomically.

    Parameters
    ----------
    path : str or os.PathLike
    model : Module
    optimizer : Optimizer, optional
    scheduler : LRScheduler, optional
    epoch : int
        The epochs done.
    rng_states : dict, optional
        ``numpy.random.Generator`` states by name (``generator.bit_generator.state``).
    history : dict, optional
        ``History.to_dict()``.

    Examples
    --------
    >>> model = sp.mlp([2, 3, 1], rng=0)
    >>> optimizer = sp.Adam(model.parameters())
    >>> sp.save_checkpoint("run.ckpt", model=model, optimizer=optimizer, epoch=7)
    >>> sp.load_checkpoint("run.ckpt", model=model, optimizer=optimizer)["epoch"]
    7
    """
    tensors = {f"model.{name}": contiguous(a) for name, a in model.state_dict().items()}
    meta = {
        "format": FORMAT,
        "version": VERSION,
        "epoch": int(epoch),
        "rng_states": rng_states or {},
        "history": history or {},
    }
    if optimizer is not None:
        opt_state = optimizer.state_dict()
        scalars: dict = {}
        for index, state in opt_state["state"].items():
            for key, value in state.items():
                if isinstance(value, np.ndarray):
                    tensors[f"optimizer.{index}.{key}"] = contiguous(value)
                else:
                    scalars.setdefault(str(index), {})[key] = value
        meta["optimizer"] = {"param_groups": opt_state["param_groups"], "scalars": scalars}
    if scheduler is not None:
        meta["scheduler"] = scheduler.state_dict()
    metadata = {"saddlepoint": json.dumps(json_ready(meta))}
    atomic_write(path, save(tensors, metadata=metadata))


# --- reading -----------------------------------------------------------------------------------
def _error_text(e: Exception) -> str:
    return e.args[0] if isinstance(e, KeyError) and e.args else str(e)


def stage_model_state(path, model, state: dict):
    """Checks ``state`` against the model (names, shapes, dtypes, finite values) and returns the
    function that loads it."""
    for name, array in state.items():
        if array.dtype.kind == "f" and not np.isfinite(array).all():
            raise ValueError(f"{path}: tensor {name!r} holds NaN or infinite values")
    try:
        return model.stage_state_dict(state)
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError(f"{path} does not fit the model: {_error_text(e)}") from None


def load_weights(model, path) -> None:
    """Loads a safetensors state dict (ours or PyTorch's) into ``model``; nothing changes if
    the names, shapes or dtypes do not fit (ValueError). A 0-d entry may come with shape
    ``(1,)``, as PyTorch allows (older saddlepoint files hold ``num_batches_tracked`` so).

    Parameters
    ----------
    model : Module
        Loaded in place.
    path : str or os.PathLike
        A safetensors file of PyTorch-style names (``"0.weight"``), such as :func:`save_weights`
        or ``safetensors.torch.save_file(torch_model.state_dict(), path)`` writes.

    Raises
    ------
    ValueError
        Names, shapes or dtypes that do not fit ``model``; nothing is changed.
    FileNotFoundError
        There is no file.

    Examples
    --------
    See :func:`save_weights`.
    """
    tensors, _ = read_safetensors(path)
    stage_model_state(path, model, tensors)()


@dataclass
class StagedCheckpoint:
    """A checkpoint checked against its model, optimizer and scheduler, not yet loaded:
    :meth:`commit` loads it and cannot fail."""

    epoch: int
    rng_states: dict
    history: dict
    commits: list = field(default_factory=list)

    def commit(self) -> None:
        for install in self.commits:
            install()


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _checked_meta(path, metadata: dict) -> dict:
    """The checkpoint's metadata, each field's type checked."""
    try:
        meta = json.loads(metadata["saddlepoint"])
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            raise ValueError
    except (KeyError, TypeError, ValueError):
        raise ValueError(f"{path} is a safetensors file but not a saddlepoint checkpoint") from None
    except (RecursionError, MemoryError):  # JSON nested deeper than Python's stack allows
        raise ValueError(f"{path}: checkpoint metadata is nested too deeply (or too large) to read") from None

    def check(condition, what, value):
        if not condition:
            raise ValueError(f"{path}: checkpoint {what}, got {value!r}"[:500])

    check(meta.keys() <= _META_FIELDS, f"fields must be among {sorted(_META_FIELDS)}", sorted(meta))
    missing = sorted({"version", "epoch", "rng_states", "history"} - meta.keys())
    check(not missing, "lacks fields", missing)
    check(
        meta["version"] == VERSION and _is_int(meta["version"]),
        f"version must be {VERSION} (this saddlepoint reads that one)",
        meta["version"],
    )
    check(
        _is_int(meta["epoch"]) and 0 <= meta["epoch"] < 2**63,
        "epoch must be an integer in [0, 2**63)",
        meta["epoch"],
    )
    check(isinstance(meta["rng_states"], dict), "rng_states must be a dict", meta["rng_states"])
    history = meta["history"]
    check(
        isinstance(history, dict)
        and all(
            isinstance(v, list) and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in v)
            for v in history.values()
        ),
        "history must map names to lists of numbers",
        history,
    )
    if "optimizer" in meta:
        opt = meta["optimizer"]
        check(
            isinstance(opt, dict)
            and set(opt) == {"param_groups", "scalars"}
            and isinstance(opt["param_groups"], list)
            and isinstance(opt["scalars"], dict)
            and all(isinstance(v, dict) for v in opt["scalars"].values()),
            "optimizer must be {'param_groups': [...], 'scalars': {index: {...}}}",
            opt,
        )
    if "scheduler" in meta:
        check(isinstance(meta["scheduler"], dict), "scheduler must be a dict", meta["scheduler"])
    return meta


def _optimizer_state(path, tensors: dict, meta: dict) -> dict:
    """The optimizer's state dict from the ``optimizer.<index>.<name>`` tensors and scalars."""
    state: dict = {}

    def entry(index: str, where: str) -> dict:
        if not _INDEX.fullmatch(index):
            raise ValueError(f"{path}: {where} must be named by a parameter index, got {index!r}")
        return state.setdefault(int(index), {})

    for name, value in tensors.items():
        if name.startswith("optimizer."):
            parts = name.split(".", 2)
            if len(parts) != 3:
                raise ValueError(f"{path}: tensor {name!r} must be named optimizer.<index>.<state>")
            entry(parts[1], f"tensor {name!r}")[parts[2]] = value
    for index, scalars in meta["optimizer"]["scalars"].items():
        target = entry(index, f"optimizer scalars {index!r}")
        both = sorted(set(target) & set(scalars))
        if both:
            raise ValueError(f"{path}: optimizer state {index} holds {both} both as tensors and as scalars")
        target.update(scalars)
    return {"state": state, "param_groups": meta["optimizer"]["param_groups"]}


def _stager(obj):
    """``obj``'s checking stage, or (for an object without one) a plain ``load_state_dict``."""
    stage = getattr(obj, "stage_state_dict", None)
    if stage is not None:
        return stage
    return lambda state: lambda: obj.load_state_dict(state)


def stage_checkpoint(path, *, model, optimizer=None, scheduler=None) -> StagedCheckpoint:
    """Reads and checks a checkpoint for ``model`` (and ``optimizer``, ``scheduler``) without
    changing anything; ``.commit()`` on the result loads it. ValueError if anything does not
    fit."""
    tensors, metadata = read_safetensors(path)
    meta = _checked_meta(path, metadata)
    unknown = sorted(k for k in tensors if not k.startswith(("model.", "optimizer.")))
    if unknown:
        raise ValueError(f"{path}: tensors {unknown[:5]} are neither model.* nor optimizer.*")
    model_state = {k[len("model.") :]: v for k, v in tensors.items() if k.startswith("model.")}
    staged = StagedCheckpoint(meta["epoch"], meta["rng_states"], meta["history"])
    staged.commits.append(stage_model_state(path, model, model_state))
    if optimizer is not None:
        if "optimizer" not in meta:
            raise ValueError(f"{path} holds no optimizer state")
        state = _optimizer_state(path, tensors, meta)
        try:
            staged.commits.append(_stager(optimizer)(state))
        except ValueError as e:
            raise ValueError(f"{path}: the optimizer state does not fit: {e}") from None
    if scheduler is not None:
        if "scheduler" not in meta:
            raise ValueError(f"{path} holds no scheduler state")
        try:
            staged.commits.append(_stager(scheduler)(meta["scheduler"]))
        except ValueError as e:
            raise ValueError(f"{path}: the scheduler state does not fit: {e}") from None
    return staged


def load_checkpoint(path, *, model, optimizer=None, scheduler=None) -> dict:
    """Restores what :func:`save_checkpoint` wrote into ``model`` (and ``optimizer``,
    ``scheduler``); returns ``{"epoch", "rng_states", "history"}``. Nothing changes unless the
    whole file fits; otherwise ValueError (FileNotFoundError for a missing file).

    Examples
    --------
    See :func:`save_checkpoint`.
    """
    staged = stage_checkpoint(path, model=model, optimizer=optimizer, scheduler=scheduler)
    staged.commit()
    return {"epoch": staged.epoch, "rng_states": staged.rng_states, "history": staged.history}


def checked_seed(path, name: str, value) -> int:
    """``value`` if it is a seed (an integer in [0, 2**32)), else ValueError naming the file."""
    if not (_is_int(value) and 0 <= value < 2**32):
        raise ValueError(
            f"{path}: checkpoint rng_states[{name!r}] must be an integer in [0, 2**32), got {value!r}"
        )
    return value


def checked_generator_state(path, name: str, generator: np.random.Generator, state) -> dict:
    """``state`` if it is a state of ``generator``'s kind of bit generator, else ValueError. It is
    tried on a fresh bit generator of the same kind, so ``generator`` itself is not touched."""
    trial = type(generator.bit_generator)()
    try:
        trial.state = state
    except Exception as e:  # NumPy's setters raise several kinds; only the trial object saw it
        raise ValueError(
            f"{path}: checkpoint rng_states[{name!r}] is not a state of a "
            f"{type(trial).__name__} generator: {e}"
        ) from None
    return dict(trial.state)
