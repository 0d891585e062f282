"""Batch and layer normalization."""

from __future__ import annotations

import numpy as np

from .. import _core
from ..validation import float_dtype, positive_float, positive_int
from .module import Module, as_layer_input
from .parameter import Parameter
from .spec import layer_config, register_layer


@register_layer
class BatchNorm1d(Module):
    """Batch normalization over ``(batch, features)`` or ``(batch, channels, length)`` input.

    In training each channel is normalized with its batch mean and *biased* batch variance,
    ``y = (x − mean)/√(var + eps)·weight + bias``, and the running statistics move toward the
    batch's: ``r = (1 − momentum)·r + momentum·batch`` (the running variance takes the
    *unbiased* batch variance). ``momentum=None`` gives the cumulative average over all batches
    seen. In eval mode the running statistics are used. This is PyTorch's ``BatchNorm1d``; its
    state dict holds ``weight``, ``bias``, ``running_mean``, ``running_var`` and
    ``num_batches_tracked``.

    Parameters
    ----------
    num_features : int
        Channels ``C`` of the input.
    eps : float, default 1e-5
    momentum : float in [0, 1] or None, default 0.1
    affine : bool, default True
        Learnable ``weight`` (γ, ones) and ``bias`` (β, zeros).
    track_running_stats : bool, default True
        Without running statistics, eval mode normalizes with batch statistics too.
    dtype : float32 or float64
    """

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1,
                 affine: bool = True, track_running_stats: bool = True, *, dtype=np.float32):
        self.num_features = positive_int("num_features", num_features)
        eps = positive_float("eps", eps)
        if momentum is not None and not (isinstance(momentum, (int, float)) and 0 <= momentum <= 1):
            raise ValueError(f"momentum must be in [0, 1] or None, got {momentum!r}")
        dtype = float_dtype(dtype)
        self.eps, self.momentum = float(eps), momentum
        self.affine, self.track_running_stats = bool(affine), bool(track_running_stats)
        self.weight = Parameter(np.ones(num_features, dtype)) if affine else None
        self.bias = Parameter(np.zeros(num_features, dtype)) if affine else None
        if track_running_stats:
            self.register_buffer("running_mean", np.zeros(num_features, dtype))
            self.register_buffer("running_var", np.ones(num_features, dtype))
            self.register_buffer("num_batches_tracked", np.zeros((), np.int64))
        self._dtype = dtype
        self._saved = None

    def _check_input(self, x):
        x = as_layer_input(x, self._dtype)
        if x.ndim not in (2, 3) or x.shape[1] != self.num_features:
            raise ValueError(f"x must have shape (batch, {self.num_features}) or "
                             f"(batch, {self.num_features}, length), got {x.shape}")
        return x

    def forward(self, x):
        x = self._check_input(x)
        out = np.empty_like(x)
        weight = self.weight.data if self.affine else None
        bias = self.bias.data if self.affine else None
        mean = np.empty(self.num_features, self._dtype)
        invstd = np.empty(self.num_features, self._dtype)
        use_batch_stats = self.training or not self.track_running_stats
        if use_batch_stats:
            if self.training and x.shape[0] * (x.shape[2] if x.ndim == 3 else 1) < 2:
                raise ValueError(
                    f"BatchNorm1d needs more than 1 value per channel in training, got input of "
                    f"shape {x.shape}; use a batch of at least 2 or call eval()")
            update = self.training and self.track_running_stats
            if update:
                seen = int(self.num_batches_tracked) + 1
                factor = 1.0 / seen if self.momentum is None else float(self.momentum)
            _core.batch_norm_forward_train(
                x, weight, bias, self.eps, factor if update else 0.0,
                self.running_mean if update else None, self.running_var if update else None,
                out, mean, invstd)
            if update:
                self.num_batches_tracked += 1
        else:
            np.copyto(mean, self.running_mean)
            np.copyto(invstd, 1.0 / np.sqrt(self.running_var.astype(np.float64) + self.eps), casting="same_kind")
            _core.batch_norm_normalize(x, mean, invstd, weight, bias, out)
        self._saved = (x, mean, invstd, use_batch_stats)
        return out

    def backward(self, grad_output):
        if self._saved is None:
            raise RuntimeError("BatchNorm1d.backward called before forward")
        x, mean, invstd, use_batch_stats = self._saved
        grad_output = as_layer_input(grad_output, self._dtype, "grad_output")
        grad_input = np.empty_like(x)
        _core.batch_norm_backward(
            x, grad_output, mean, invstd, self.weight.data if self.affine else None,
            use_batch_stats, grad_input, self.weight.grad if self.affine else None,
            self.bias.grad if self.affine else None)
        return grad_input

    def config(self) -> dict:
        return layer_config(self, num_features=self.num_features, eps=self.eps, momentum=self.momentum,
                            affine=self.affine, track_running_stats=self.track_running_stats,
                            dtype=self._dtype)

    def __repr__(self) -> str:
        return (f"BatchNorm1d({self.num_features}, eps={self.eps}, momentum={self.momentum}, "
                f"affine={self.affine}, track_running_stats={self.track_running_stats})")


@register_layer
class LayerNorm(Module):
    """Layer normalization over the trailing ``normalized_shape`` dimensions of each sample:
    ``y = (x − mean)/√(var + eps)·weight + bias`` with the biased variance, as PyTorch's
    ``LayerNorm``. Statistics are per sample, so training and eval modes behave the same.
    """

    def __init__(self, normalized_shape, eps: float = 1e-5, elementwise_affine: bool = True, *,
                 dtype=np.float32):
        shape = (normalized_shape,) if isinstance(normalized_shape, (int, np.integer)) else tuple(normalized_shape)
        if not shape:
            raise ValueError("normalized_shape must not be empty")
        self.normalized_shape = tuple(positive_int("normalized_shape", d) for d in shape)
        self.eps = positive_float("eps", eps)
        dtype = float_dtype(dtype)
        self.weight = Parameter(np.ones(self.normalized_shape, dtype)) if elementwise_affine else None
        self.bias = Parameter(np.zeros(self.normalized_shape, dtype)) if elementwise_affine else None
        self._features = int(np.prod(self.normalized_shape))
        self._dtype = dtype
        self._saved = None

    def forward(self, x):
        x = as_layer_input(x, self._dtype)
        k = len(self.normalized_shape)
        if x.ndim <= k or x.shape[-k:] != self.normalized_shape:
            raise ValueError(f"x must have shape (..., {', '.join(map(str, self.normalized_shape))}), "
                             f"got {x.shape}")
        rows = x.size // self._features
        out = np.empty_like(x)
        mean, invstd = np.empty(rows, self._dtype), np.empty(rows, self._dtype)
        weight = None if self.weight is None else self.weight.data.reshape(-1)
        bias = None if self.bias is None else self.bias.data.reshape(-1)
        _core.layer_norm_forward(x, self._features, weight, bias, self.eps, out, mean, invstd)
        self._saved = (x, mean, invstd)
        return out

    def backward(self, grad_output):
        if self._saved is None:
            raise RuntimeError("LayerNorm.backward called before forward")
        x, mean, invstd = self._saved
        grad_output = as_layer_input(grad_output, self._dtype, "grad_output")
        grad_input = np.empty_like(x)
        affine = self.weight is not None
        _core.layer_norm_backward(
            x, grad_output, self._features, mean, invstd,
            self.weight.data.reshape(-1) if affine else None, grad_input,
            self.weight.grad.reshape(-1) if affine else None,
            self.bias.grad.reshape(-1) if affine else None)
        return grad_input

    def config(self) -> dict:
        return layer_config(self, normalized_shape=self.normalized_shape, eps=self.eps,
                            elementwise_affine=self.weight is not None, dtype=self._dtype)

    def __repr__(self) -> str:
        return f"LayerNorm({self.normalized_shape}, eps={self.eps})"
