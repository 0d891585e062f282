"""Training, validation and test splits prepared for the diagnostics: data checked, the task
inferred, a validation split held out and the targets encoded (:mod:`.targets`)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..validation import Real
from .checks import check_data, split_pair
from .targets import TargetEncoder, task_of

_VALIDATION_SPLIT = Real(0, 1, closed="neither")


def model_dtype(model) -> np.dtype:
    """The dtype of ``model``'s parameters (float32 for a model without any): what its inputs
    are converted to."""
    params = model.parameters()
    return params[0].dtype if params else np.dtype(np.float32)


@dataclass
class PreparedData:
    """Splits as the models see them (labels 0..C-1, or standardized regression targets), the
    task's loss and metric, the number of outputs and the constant-prediction baseline loss."""

    task: str
    train: tuple
    val: tuple
    test: tuple
    loss: object
    metric: str
    n_out: int
    baseline: float
    encoder: TargetEncoder | None = None


def prepare_data(
    X, y, validation_data=None, validation_split: float = 0.2, test_data=None, task: str | None = None, seed=0
) -> PreparedData:
    """Checks the data, infers the task, holds out a validation split (stratified where every
    class fits on both sides) and encodes the targets (:class:`TargetEncoder`); ``test`` is
    ``(None, None)`` without ``test_data``.

    Examples
    --------
    >>> X = np.random.default_rng(0).normal(size=(50, 2))
    >>> prepared = sp.data.prepare_data(X, (X[:, 0] > 0).astype(np.int64), validation_split=0.2)
    >>> prepared.task, prepared.train[0].shape, prepared.val[0].shape, prepared.n_out
    ('classification', (40, 2), (10, 2), 2)
    """
    from sklearn.model_selection import train_test_split

    X, y = check_data(X, y)
    task, y = task_of(y, task)
    if validation_data is None:
        fraction = _VALIDATION_SPLIT.check("validation_split", validation_split)
        X, X_val, y, y_val = train_test_split(
            X, y, test_size=fraction, random_state=seed, stratify=_stratify(task, y, fraction)
        )
    else:
        X_val, y_val = check_data(*split_pair("validation_data", validation_data), name="validation X")
    X_test, y_test = (
        check_data(*split_pair("test_data", test_data), name="test X")
        if test_data is not None
        else (None, None)
    )
    for name, other in (("validation_data", X_val), ("test_data", X_test)):
        if other is not None and other.shape[1:] != X.shape[1:]:
            raise ValueError(
                f"{name} must have features of shape {X.shape[1:]} like X, got {other.shape[1:]}"
            )
    encoder = TargetEncoder.fit(task, y, y_val, y_test)
    y, y_val, y_test = encoder.encode(y), encoder.encode(y_val), encoder.encode(y_test)
    baseline = encoder.baseline(y)
    if not baseline > 0:
        raise ValueError("y must vary: a single class or a constant target leaves nothing to learn")
    return PreparedData(
        task,
        (X, y),
        (X_val, y_val),
        (X_test, y_test),
        encoder.loss(),
        encoder.metric,
        encoder.n_out,
        baseline,
        encoder,
    )


def _stratify(task: str, y, fraction: float):
    """The labels to stratify a split by, when every class can appear on both sides."""
    if task != "classification":
        return None
    classes, counts = np.unique(y, return_counts=True)
    held_out = int(np.ceil(fraction * len(y)))
    if counts.min() < 2 or held_out < len(classes) or len(y) - held_out < len(classes):
        return None
    return y
