"""Losses that return the mean loss and the gradient of their input in one Rust pass.

Each loss is a class (``loss = criterion(input, target)`` then ``grad = criterion.backward()``)
and a function returning ``(loss, grad_input)``. All are means over the batch, as PyTorch's
``reduction="mean"``. Targets may not hold NaN or infinity (``ValueError``).
"""

from __future__ import annotations

import numpy as np

from . import _core
from .nn.scratch import scratch_like
from .validation import float_dtype


def _as_input(input) -> np.ndarray:
    input = np.ascontiguousarray(input)
    try:
        float_dtype(input.dtype)
    except TypeError:
        raise TypeError(f"input must have dtype float32 or float64, got {input.dtype}") from None
    return input


def _as_float_target(target, input: np.ndarray) -> np.ndarray:
    target = np.asarray(target)
    if target.dtype.kind not in "fiub":
        raise TypeError(f"target must hold numbers, got dtype {target.dtype}")
    return np.ascontiguousarray(target, dtype=input.dtype)


def _grad_buffer(owner, input: np.ndarray) -> np.ndarray:
    """The array a loss writes its gradient into: new, or inside ``nn.scratch.reusing_buffers``
    the buffer of the :class:`Loss` object ``owner`` (None for the functions)."""
    return np.empty_like(input) if owner is None else scratch_like(owner, "grad", input)


def mse_loss(input, target, *, _owner=None) -> tuple[float, np.ndarray]:
    """Mean squared error ``mean((input - target)**2)`` and its gradient ``2 (input - target) / n``.

    Parameters
    ----------
    input : float32 or float64 array, any shape
        The predictions.
    target : array of numbers, the shape of ``input``
        Converted to ``input``'s dtype; no NaN or infinity.

    Returns
    -------
    loss : float
        The mean over all ``n`` elements.
    grad_input : array, the shape and dtype of ``input``

    Raises
    ------
    ValueError
        Shapes that differ, or a target that is not finite.
    TypeError
        An input that is not float32 or float64.

    Examples
    --------
    >>> loss, grad = sp.losses.mse_loss(np.array([1.0, 3.0]), np.array([0.0, 0.0]))
    >>> loss, grad
    (5.0, array([1., 3.]))
    """
    input = _as_input(input)
    grad = _grad_buffer(_owner, input)
    loss = _core.mse_loss(input, _as_float_target(target, input), grad)
    return loss, grad


def l1_loss(input, target, *, _owner=None) -> tuple[float, np.ndarray]:
    """Mean absolute error ``mean(|input - target|)`` (the course's MAE) and its gradient
    ``sign(input - target) / n`` (0 where they are equal, as PyTorch).

    Examples
    --------
    >>> sp.losses.l1_loss(np.array([1.0, -3.0]), np.array([0.0, 0.0]))
    (2.0, array([ 0.5, -0.5]))
    """
    input = _as_input(input)
    grad = _grad_buffer(_owner, input)
    loss = _core.l1_loss(input, _as_float_target(target, input), grad)
    return loss, grad


def binary_cross_entropy_with_logits(input, target, *, _owner=None) -> tuple[float, np.ndarray]:
    """Binary cross-entropy of ``sigmoid(input)`` against ``target`` in [0, 1], computed from the
    logits without overflow: ``mean(max(z, 0) - z t + log(1 + exp(-|z|)))``; gradient
    ``(sigmoid(z) - t) / n``.

    Examples
    --------
    >>> loss, grad = sp.losses.binary_cross_entropy_with_logits(np.zeros(2), np.array([0.0, 1.0]))
    >>> round(loss, 6), grad  # log(2), and (sigmoid(0) - target) / 2
    (0.693147, array([ 0.25, -0.25]))
    """
    input = _as_input(input)
    grad = _grad_buffer(_owner, input)
    loss = _core.binary_cross_entropy_with_logits(input, _as_float_target(target, input), grad)
    return loss, grad


def cross_entropy(input, target, weight=None, label_smoothing: float = 0.0, *, _owner=None):
    """Softmax cross-entropy on logits, as PyTorch's ``cross_entropy``.

    Parameters
    ----------
    input : (N, C) float array
        Logits (unnormalized scores).
    target : (N,) integer labels in [0, C), or (N, C) class probabilities
    weight : (C,) array, optional
        Per-class weights. With labels the mean is ``sum_i w[y_i] l_i / sum_i w[y_i]``; with
        probabilities it is over N.
    label_smoothing : float in [0, 1]
        The target becomes ``(1 - eps) * target + eps / C``.

    Returns
    -------
    (loss, grad_input) : float and an (N, C) array

    Raises
    ------
    ValueError
        Labels outside [0, C), shapes that do not match, a target that is not finite.

    Examples
    --------
    >>> logits = np.zeros((2, 4), dtype=np.float32)
    >>> loss, grad = sp.losses.cross_entropy(logits, np.array([0, 3]))
    >>> round(loss, 6)  # log(4)
    1.386294
    >>> grad[0]
    array([-0.375,  0.125,  0.125,  0.125], dtype=float32)
    """
    input = _as_input(input)
    target = np.asarray(target)
    if target.dtype.kind in "iu":
        target = np.ascontiguousarray(target, dtype=np.int64)
    elif target.dtype.kind == "f" and target.ndim == 2:
        target = np.ascontiguousarray(target, dtype=input.dtype)
    else:
        raise TypeError(
            "target must be integer class labels of shape (N,) or class probabilities of shape "
            f"(N, C), got dtype {target.dtype} with shape {target.shape}"
        )
    if weight is not None:
        weight = np.ascontiguousarray(weight, dtype=input.dtype)
    grad = _grad_buffer(_owner, input)
    loss = _core.cross_entropy(input, target, grad, weight, float(label_smoothing))
    return loss, grad


def softmax(x) -> np.ndarray:
    """Row-wise softmax of a 2-D float array (rows sum to 1).

    Parameters
    ----------
    x : (N, C) float32 or float64 array

    Returns
    -------
    (N, C) array of the same dtype

    Examples
    --------
    >>> sp.softmax(np.array([[0.0, np.log(3.0)]]))
    array([[0.25, 0.75]])
    """
    x = _as_input(x)
    out = np.empty_like(x)
    _core.softmax(x, out)
    return out


def log_softmax(x) -> np.ndarray:
    """Row-wise log-softmax of a 2-D float array, computed stably (log-sum-exp).

    Parameters
    ----------
    x : (N, C) float32 or float64 array

    Returns
    -------
    (N, C) array of the same dtype

    Examples
    --------
    >>> np.exp(sp.log_softmax(np.array([[1000.0, 1000.0]])))
    array([[0.5, 0.5]])
    """
    x = _as_input(x)
    out = np.empty_like(x)
    _core.log_softmax(x, out)
    return out


def one_hot(labels, num_classes: int, dtype=np.float32) -> np.ndarray:
    """``(N, num_classes)`` array with a 1 at each label's column.

    Parameters
    ----------
    labels : (N,) integer array
        Each in ``[0, num_classes)``.
    num_classes : int
    dtype : float32 or float64

    Returns
    -------
    (N, num_classes) array of ``dtype``

    Raises
    ------
    TypeError
        Labels that are not integers.
    ValueError
        Labels not 1-dimensional or out of range, ``num_classes`` not a positive integer.

    Examples
    --------
    >>> sp.one_hot(np.array([2, 0]), 3)
    array([[0., 0., 1.],
           [1., 0., 0.]], dtype=float32)
    """
    labels = np.asarray(labels)
    if labels.dtype.kind not in "iu":
        raise TypeError(f"labels must be integers, got dtype {labels.dtype}")
    if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)) or num_classes < 1:
        raise ValueError(f"num_classes must be a positive integer, got {num_classes!r}")
    if labels.ndim != 1:
        raise ValueError(f"labels must be 1-dimensional, got shape {labels.shape}")
    out = np.empty((labels.shape[0], int(num_classes)), dtype=float_dtype(dtype))
    _core.one_hot(np.ascontiguousarray(labels, dtype=np.int64), out)
    return out


class Loss:
    """A loss as an object: ``loss = criterion(input, target)``, then ``criterion.backward()``
    returns the gradient of the last call's input (inside ``nn.scratch.reusing_buffers``, a
    training step, a buffer the object reuses from call to call; else a new array).

    Examples
    --------
    >>> criterion = sp.MSELoss()
    >>> criterion(np.array([2.0]), np.array([0.0]))
    4.0
    >>> criterion.backward()
    array([4.])
    """

    def __init__(self):
        self._grad = None

    def _compute(self, input, target):
        raise NotImplementedError

    def forward(self, input, target) -> float:
        loss, self._grad = self._compute(input, target)
        return loss

    def __call__(self, input, target) -> float:
        return self.forward(input, target)

    def backward(self) -> np.ndarray:
        if self._grad is None:
            raise RuntimeError(f"{type(self).__name__}.backward called before the loss")
        return self._grad

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class MSELoss(Loss):
    """Mean squared error; see :func:`mse_loss`.

    Examples
    --------
    >>> criterion = sp.MSELoss()
    >>> criterion(np.array([[1.0], [3.0]]), np.array([[0.0], [0.0]]))
    5.0
    >>> criterion.backward()
    array([[1.],
           [3.]])
    """

    def _compute(self, input, target):
        return mse_loss(input, target, _owner=self)


class L1Loss(Loss):
    """Mean absolute error; see :func:`l1_loss`.

    Examples
    --------
    >>> sp.L1Loss()(np.array([1.0, -3.0]), np.array([0.0, 0.0]))
    2.0
    """

    def _compute(self, input, target):
        return l1_loss(input, target, _owner=self)


class BCEWithLogitsLoss(Loss):
    """Sigmoid + binary cross-entropy on logits; see :func:`binary_cross_entropy_with_logits`.

    Examples
    --------
    >>> criterion = sp.BCEWithLogitsLoss()
    >>> round(criterion(np.array([[0.0], [0.0]]), np.array([[1.0], [0.0]])), 6)
    0.693147
    """

    def _compute(self, input, target):
        return binary_cross_entropy_with_logits(input, target, _owner=self)


class CrossEntropyLoss(Loss):
    """Softmax + cross-entropy on logits; see :func:`cross_entropy`.

    Parameters
    ----------
    weight : (C,) array of finite values >= 0, optional
        Per-class weights.
    label_smoothing : float in [0, 1]
        The target becomes ``(1 - label_smoothing) * onehot + label_smoothing / C``.

    Raises
    ------
    ValueError
        A ``weight`` or ``label_smoothing`` out of range.

    Examples
    --------
    >>> criterion = sp.CrossEntropyLoss()
    >>> logits = np.array([[2.0, 0.0], [0.0, 2.0]], dtype=np.float32)
    >>> round(criterion(logits, np.array([0, 1])), 4)
    0.1269
    >>> criterion.backward().shape  # d loss / d logits
    (2, 2)
    """

    def __init__(self, weight=None, label_smoothing: float = 0.0):
        super().__init__()
        if not 0.0 <= label_smoothing <= 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1], got {label_smoothing}")
        if weight is not None:
            try:
                weight = np.array(weight, dtype=np.float64)
            except (TypeError, ValueError, OverflowError):
                raise ValueError(
                    f"weight must be a 1-D array of finite values >= 0, got {weight!r}"
                ) from None
            if weight.ndim != 1 or not np.all(np.isfinite(weight)) or np.any(weight < 0):
                raise ValueError(f"weight must be a 1-D array of finite values >= 0, got {weight}")
        self.weight = weight
        self.label_smoothing = float(label_smoothing)

    def _compute(self, input, target):
        weight = self.weight
        if weight is not None:  # cast once per weight array and dtype, not on every call
            dtype = np.asarray(input).dtype
            cached = self.__dict__.get("_weight_cast")
            if cached is None or cached[0] is not weight or cached[1].dtype != dtype:
                cached = self._weight_cast = (weight, np.ascontiguousarray(weight, dtype=dtype))
            weight = cached[1]
        return cross_entropy(input, target, weight, self.label_smoothing, _owner=self)

    def __repr__(self) -> str:
        return f"CrossEntropyLoss(weight={self.weight}, label_smoothing={self.label_smoothing})"
