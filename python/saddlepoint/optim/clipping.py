"""Gradient clipping, as PyTorch's ``torch.nn.utils.clip_grad_norm_`` / ``clip_grad_value_``."""

from __future__ import annotations

import math

from .. import _core
from ..nn import Parameter


def _params(parameters) -> list[Parameter]:
    params = [parameters] if isinstance(parameters, Parameter) else list(parameters)
    for i, p in enumerate(params):
        if not isinstance(p, Parameter):
            raise TypeError(f"parameters[{i}] must be a saddlepoint Parameter, got {type(p).__name__}")
    return params


def grad_norm(parameters, norm_type: float = 2.0) -> float:
    """The p-norm of all gradients together, as if concatenated into one vector.

    Examples
    --------
    >>> w = sp.Parameter(np.zeros(2))
    >>> w.grad = np.array([3.0, -4.0])
    >>> sp.grad_norm([w]), sp.grad_norm([w], norm_type=1)
    (5.0, 7.0)
    """
    norm_type = float(norm_type)
    if not norm_type > 0:
        raise ValueError(f"norm_type must be > 0 (or inf), got {norm_type}")
    parts = [_core.norm_part(p.grad, norm_type) for p in _params(parameters)]
    if not parts:
        return 0.0
    if math.isinf(norm_type):
        return max(parts)
    return math.fsum(parts) ** (1.0 / norm_type)


def clip_grad_norm_(
    parameters, max_norm: float, norm_type: float = 2.0, error_if_nonfinite: bool = False
) -> float:
    """Scales all gradients by ``max_norm / (total_norm + 1e-6)`` when that is below 1.

    Returns the total norm before clipping. With ``error_if_nonfinite`` a NaN or infinite
    norm raises ``RuntimeError`` and leaves the gradients unchanged.

    Examples
    --------
    >>> w = sp.Parameter(np.zeros(2))
    >>> w.grad = np.array([3.0, 4.0])
    >>> sp.clip_grad_norm_([w], max_norm=1.0)
    5.0
    >>> np.round(w.grad, 4)
    array([0.6, 0.8])
    """
    if not (isinstance(max_norm, (int, float)) and max_norm >= 0):
        raise ValueError(f"max_norm must be a number >= 0, got {max_norm!r}")
    params = _params(parameters)
    total = grad_norm(params, norm_type)
    if error_if_nonfinite and not math.isfinite(total):
        raise RuntimeError(f"the total norm of order {norm_type} of the gradients is {total}")
    coefficient = max_norm / (total + 1e-6)
    if coefficient < 1.0:
        for p in params:
            _core.scale_(p.grad, coefficient)
    return total


def clip_grad_value_(parameters, clip_value: float) -> None:
    """Clamps every gradient element to ``[-clip_value, clip_value]``.

    Examples
    --------
    >>> w = sp.Parameter(np.zeros(2))
    >>> w.grad = np.array([3.0, -4.0])
    >>> sp.clip_grad_value_([w], 1.0)
    >>> w.grad
    array([ 1., -1.])
    """
    if not (isinstance(clip_value, (int, float)) and clip_value >= 0):
        raise ValueError(f"clip_value must be a number >= 0, got {clip_value!r}")
    for p in _params(parameters):
        _core.clamp_(p.grad, float(clip_value))
