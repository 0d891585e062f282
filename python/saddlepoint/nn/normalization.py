"""Batch and layer normalization."""

from __future__ import annotations

import numpy as np

from .. import _core
from ..validation import Integer, NoneOr, Real, check_params, float_dtype, positive_float, positive_int
from .module import Module, as_layer_input
from .parameter import Parameter
from .scratch import scratch, scratch_like
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

    Notes
    -----
    Shapes: ``x`` (batch, C) or (batch, C, L) -> the same shape; ``weight``, ``bias`` and the
    running statistics are (C,).

    Examples
    --------
    >>> bn = sp.BatchNorm1d(2)
    >>> x = np.array([[1.0, 10.0], [3.0, 30.0]], dtype=np.float32)
    >>> np.round(bn(x), 4)
    array([[-1., -1.],
           [ 1.,  1.]], dtype=float32)
    >>> bn.running_mean
    array([0.2, 2. ], dtype=float32)
    >>> _ = bn.eval()  # now the running statistics normalize
    """

    # Buffers, set by register_buffer when track_running_stats is on.
    running_mean: np.ndarray
    running_var: np.ndarray
    num_batches_tracked: np.ndarray
    weight: Parameter | None
    bias: Parameter | None
    # (x, mean, invstd, use_batch_stats) of the last forward, for backward.
    _saved: tuple[np.ndarray, np.ndarray, np.ndarray, bool] | None
    constraints = {
        "num_features": Integer(1),
        "eps": Real(0, closed="neither"),
        "momentum": NoneOr(Real(0, 1)),
    }

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        affine: bool = True,
        track_running_stats: bool = True,
        *,
        dtype=np.float32,
    ):
        settings = check_params(
            {"num_features": num_features, "eps": eps, "momentum": momentum}, self.constraints
        )
        self.num_features, self.eps, self.momentum = (
            settings[k] for k in ("num_features", "eps", "momentum")
        )
        dtype = float_dtype(dtype)
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
            raise ValueError(
                f"x must have shape (batch, {self.num_features}) or "
                f"(batch, {self.num_features}, length), got {x.shape}"
            )
        return x

    def forward(self, x):
        return self._normalize(self._check_input(x))

    def _normalize(self, x: np.ndarray) -> np.ndarray:
        """The forward pass on a checked ``(N, C)`` or ``(N, C, L)`` input."""
        out = scratch_like(self, "out", x)
        weight = None if self.weight is None else self.weight.data
        bias = None if self.bias is None else self.bias.data
        mean = scratch(self, "mean", (self.num_features,), self._dtype)
        invstd = scratch(self, "invstd", (self.num_features,), self._dtype)
        use_batch_stats = self.training or not self.track_running_stats
        if use_batch_stats:
            if self.training and x.shape[0] * (x.shape[2] if x.ndim == 3 else 1) < 2:
                raise ValueError(
                    f"{type(self).__name__} needs more than 1 value per channel in training, got input of "
                    f"shape {x.shape}; use a batch of at least 2 or call eval()"
                )
            update = self.training and self.track_running_stats
            if update:
                seen = int(self.num_batches_tracked) + 1
                factor = 1.0 / seen if self.momentum is None else float(self.momentum)
            _core.batch_norm_forward_train(
                x,
                weight,
                bias,
                self.eps,
                factor if update else 0.0,
                self.running_mean if update else None,
                self.running_var if update else None,
                out,
                mean,
                invstd,
            )
            if update:
                self.num_batches_tracked += 1
        else:
            np.copyto(mean, self.running_mean)
            np.copyto(
                invstd, 1.0 / np.sqrt(self.running_var.astype(np.float64) + self.eps), casting="same_kind"
            )
            _core.batch_norm_normalize(x, mean, invstd, weight, bias, out)
        self._saved = (x, mean, invstd, use_batch_stats)
        return out

    def _last_forward(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, bool]:
        if self._saved is None:
            raise RuntimeError(f"{type(self).__name__}.backward called before forward")
        return self._saved

    def backward(self, grad_output):
        return self._normalize_backward(grad_output)

    def _normalize_backward(self, grad_output) -> np.ndarray:
        """The backward pass, shaped as the last :meth:`_normalize`'s input."""
        x, mean, invstd, use_batch_stats = self._last_forward()
        grad_output = as_layer_input(grad_output, self._dtype, "grad_output")
        grad_input = scratch_like(self, "grad_input", x)
        weight, bias = self.weight, self.bias
        _core.batch_norm_backward(
            x,
            grad_output,
            mean,
            invstd,
            None if weight is None else weight.data,
            use_batch_stats,
            grad_input,
            None if weight is None else weight.grad,
            None if bias is None else bias.grad,
        )
        return grad_input

    # --- R-operator (see Module): exact with running or with batch statistics ----------------
    def r_forward(self, x, rx, v):
        y = self._normalize(self._check_input(x))
        x, mean, invstd, use_batch_stats = self._last_forward()
        shape = (1, -1) + (1,) * (x.ndim - 2)  # a per-channel vector over (N, C[, L])
        xhat = (x - mean.reshape(shape)) * invstd.reshape(shape)
        over = (0,) + tuple(range(2, x.ndim))  # samples and positions
        ry, self._r_saved = _r_affine_forward(
            self, xhat, invstd.reshape(shape), rx, v, over if use_batch_stats else None, shape
        )
        return y, ry

    def r_backward(self, g, rg, v, rgrads):
        grad_input = self._normalize_backward(g)
        over = (0,) + tuple(range(2, grad_input.ndim))
        return grad_input, _r_affine_backward(self, self._r_saved, np.asarray(g), rg, v, rgrads, over)

    def config(self) -> dict:
        return layer_config(
            self,
            num_features=self.num_features,
            eps=self.eps,
            momentum=self.momentum,
            affine=self.affine,
            track_running_stats=self.track_running_stats,
            dtype=self._dtype,
        )

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.num_features}, eps={self.eps}, momentum={self.momentum}, "
            f"affine={self.affine}, track_running_stats={self.track_running_stats})"
        )


@register_layer
class BatchNorm2d(BatchNorm1d):
    """Batch normalization of images ``(batch, channels, height, width)``: each channel is
    normalized over the batch and every position, as PyTorch's ``BatchNorm2d`` (the course's
    batch normalization on CNNs). Same arguments, semantics and state-dict names as
    :class:`BatchNorm1d`, which does the work on the ``(batch, channels, height·width)`` view.

    Examples
    --------
    >>> bn = sp.BatchNorm2d(3)
    >>> x = np.random.default_rng(0).normal(size=(4, 3, 5, 5)).astype(np.float32)
    >>> y = bn(x)
    >>> y.shape, bool(np.allclose(y.mean(axis=(0, 2, 3)), 0, atol=1e-5))
    ((4, 3, 5, 5), True)
    """

    def _check_image(self, x) -> np.ndarray:
        x = as_layer_input(x, self._dtype)
        if x.ndim != 4 or x.shape[1] != self.num_features:
            raise ValueError(f"x must have shape (batch, {self.num_features}, height, width), got {x.shape}")
        return x

    @staticmethod
    def _as_rows(x: np.ndarray, lead: int = 0) -> np.ndarray:
        """``(..., N, C, H, W)`` as ``(..., N, C, H·W)``, a view of a contiguous array."""
        return x.reshape(x.shape[: lead + 2] + (x.shape[-2] * x.shape[-1],))

    def forward(self, x):
        x = self._check_image(x)
        return self._normalize(self._as_rows(x)).reshape(x.shape)

    def _check_gradient(self, g, name: str) -> np.ndarray:
        """``g`` shaped as the last forward's input (the rows view keeps its first three sizes)."""
        x = self._last_forward()[0]
        g = as_layer_input(g, self._dtype, name)
        if g.ndim != 4 or g.shape[:2] != x.shape[:2] or g.shape[2] * g.shape[3] != x.shape[2]:
            raise ValueError(
                f"{name} must have the shape of the last input (batch, {self.num_features}, height, "
                f"width) with {x.shape[0]} samples and {x.shape[2]} positions, got {g.shape}"
            )
        return g

    def backward(self, grad_output):
        grad_output = self._check_gradient(grad_output, "grad_output")
        return self._normalize_backward(self._as_rows(grad_output)).reshape(grad_output.shape)

    def r_forward(self, x, rx, v):
        x = self._check_image(x)
        rows = None if rx is None else self._as_rows(np.asarray(rx), lead=1)
        y, ry = super().r_forward(self._as_rows(x), rows, v)
        return y.reshape(x.shape), None if ry is None else ry.reshape(ry.shape[:1] + x.shape)

    def r_backward(self, g, rg, v, rgrads):
        g = self._check_gradient(g, "g")
        rows = None if rg is None else self._as_rows(np.asarray(rg), lead=1)
        g_in, rg_in = super().r_backward(self._as_rows(g), rows, v, rgrads)
        return g_in.reshape(g.shape), None if rg_in is None else rg_in.reshape(rg_in.shape[:1] + g.shape)


@register_layer
class LayerNorm(Module):
    """Layer normalization over the trailing ``normalized_shape`` dimensions of each sample:
    ``y = (x − mean)/√(var + eps)·weight + bias`` with the biased variance, as PyTorch's
    ``LayerNorm``. Statistics are per sample, so training and eval modes behave the same.

    Examples
    --------
    >>> np.round(sp.LayerNorm(3)(np.array([[1.0, 2.0, 3.0]], dtype=np.float32)), 4)
    array([[-1.2247,  0.    ,  1.2247]], dtype=float32)
    """

    weight: Parameter | None
    bias: Parameter | None
    # (x, mean, invstd) of the last forward, for backward.
    _saved: tuple[np.ndarray, np.ndarray, np.ndarray] | None

    def __init__(
        self, normalized_shape, eps: float = 1e-5, elementwise_affine: bool = True, *, dtype=np.float32
    ):
        shape = (
            (normalized_shape,)
            if isinstance(normalized_shape, (int, np.integer))
            else tuple(normalized_shape)
        )
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
            raise ValueError(
                f"x must have shape (..., {', '.join(map(str, self.normalized_shape))}), got {x.shape}"
            )
        rows = x.size // self._features
        out = scratch_like(self, "out", x)
        mean, invstd = (
            scratch(self, "mean", (rows,), self._dtype),
            scratch(self, "invstd", (rows,), self._dtype),
        )
        weight = None if self.weight is None else self.weight.data.reshape(-1)
        bias = None if self.bias is None else self.bias.data.reshape(-1)
        _core.layer_norm_forward(x, self._features, weight, bias, self.eps, out, mean, invstd)
        self._saved = (x, mean, invstd)
        return out

    def _last_forward(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if self._saved is None:
            raise RuntimeError("LayerNorm.backward called before forward")
        return self._saved

    def backward(self, grad_output):
        x, mean, invstd = self._last_forward()
        grad_output = as_layer_input(grad_output, self._dtype, "grad_output")
        grad_input = scratch_like(self, "grad_input", x)
        weight, bias = self.weight, self.bias
        _core.layer_norm_backward(
            x,
            grad_output,
            self._features,
            mean,
            invstd,
            None if weight is None else weight.data.reshape(-1),
            grad_input,
            None if weight is None else weight.grad.reshape(-1),
            None if bias is None else bias.grad.reshape(-1),
        )
        return grad_input

    # --- R-operator (see Module): statistics over each sample's trailing dimensions -------------
    def r_forward(self, x, rx, v):
        y = self.forward(x)
        x, mean, invstd = self._last_forward()
        lead = x.ndim - len(self.normalized_shape)
        shape = x.shape[:lead] + (1,) * len(self.normalized_shape)
        xhat = (x - mean.reshape(shape)) * invstd.reshape(shape)
        ry, self._r_saved = _r_affine_forward(
            self,
            xhat,
            invstd.reshape(shape),
            rx,
            v,
            tuple(range(lead, x.ndim)),
            (1,) * lead + self.normalized_shape,
        )
        return y, ry

    def r_backward(self, g, rg, v, rgrads):
        grad_input = self.backward(g)
        lead = grad_input.ndim - len(self.normalized_shape)
        return grad_input, _r_affine_backward(
            self, self._r_saved, np.asarray(g), rg, v, rgrads, tuple(range(lead))
        )

    def config(self) -> dict:
        return layer_config(
            self,
            normalized_shape=self.normalized_shape,
            eps=self.eps,
            elementwise_affine=self.weight is not None,
            dtype=self._dtype,
        )

    def __repr__(self) -> str:
        return f"LayerNorm({self.normalized_shape}, eps={self.eps})"


# --- R-operator of y = x̂·γ + β, x̂ = (x − μ)·s, s = 1/√(var + eps), shared by both layers ------
# The statistics are taken over ``stats`` (axes of x), or are constants (running statistics)
# when ``stats`` is None. With them, R{μ} = mean(R{x}) and R{s} = −s²·mean(x̂·R{x}), so
#   R{x̂} = s·(R{x} − mean(R{x}) − x̂·mean(x̂·R{x})),
# and the input gradient g_in = s·(ĝ − mean(ĝ) − x̂·mean(x̂·ĝ)) for ĝ = γ·g has
#   R{g_in} = R{s}/s·g_in + s·(R{ĝ} − mean(R{ĝ}) − R{x̂}·mean(x̂·ĝ) − x̂·mean(R{x̂}·ĝ + x̂·R{ĝ})).
# Arrays of R-derivatives carry the k directions first, so their axes are those of x plus one.


def _shifted(axes):
    return tuple(a + 1 for a in axes)


def _r_normalized(xhat, invstd, rx, stats):
    """``R{x̂}`` (k, *x.shape) for ``R{x} = rx``."""
    r = rx * invstd
    if stats is not None:
        axes = _shifted(stats)
        r = r - r.mean(axis=axes, keepdims=True) - xhat * (xhat * r).mean(axis=axes, keepdims=True)
    return r


def _r_normalized_backward(xhat, invstd, rx, rxhat, gh, rgh, stats):
    """``R{g_in}`` (k, *x.shape) from ``ĝ = ∂L/∂x̂`` and ``R{ĝ}``."""
    if stats is None:
        return rgh * invstd
    axes = _shifted(stats)
    gh_xhat = (xhat * gh).mean(axis=stats, keepdims=True)
    inner = rgh - rgh.mean(axis=axes, keepdims=True) - xhat * (xhat * rgh).mean(axis=axes, keepdims=True)
    if rxhat is not None:
        inner -= rxhat * gh_xhat + xhat * (rxhat * gh).mean(axis=axes, keepdims=True)
    r = invstd * inner
    if rx is not None:
        g_in_over_s = gh - gh.mean(axis=stats, keepdims=True) - xhat * gh_xhat
        r -= (invstd * invstd * (xhat * rx).mean(axis=axes, keepdims=True)) * g_in_over_s
    return r


def _r_affine_forward(layer, xhat, invstd, rx, v, stats, param_shape):
    """``R{y}`` and what :func:`_r_affine_backward` needs; ``param_shape`` views a parameter
    so that it broadcasts over x."""
    rxhat = None if rx is None else _r_normalized(xhat, invstd, rx, stats)
    ry = rxhat
    if layer.weight is not None:
        k = len(v["weight"])
        ry = xhat * v["weight"].reshape((k,) + param_shape) + v["bias"].reshape((k,) + param_shape)
        if rxhat is not None:
            ry += rxhat * layer.weight.data.reshape(param_shape)
    return ry, (xhat, invstd, rx, rxhat, stats, param_shape)


def _r_affine_backward(layer, saved, g, rg, v, rgrads, sums):
    """``R{g_in}``; adds ``R{∇γ} = Σ R{g}·x̂ + g·R{x̂}`` and ``R{∇β} = Σ R{g}`` over ``sums``
    (the axes of x a parameter is broadcast over) into ``rgrads``."""
    xhat, invstd, rx, rxhat, stats, param_shape = saved
    gh, rgh = g, rg
    if layer.weight is not None:
        r_gamma = rg * xhat if rxhat is None else rg * xhat + g * rxhat
        rgrads["weight"] += r_gamma.sum(axis=_shifted(sums)).reshape(rgrads["weight"].shape)
        rgrads["bias"] += rg.sum(axis=_shifted(sums)).reshape(rgrads["bias"].shape)
        gamma = layer.weight.data.reshape(param_shape)
        gh, rgh = g * gamma, rg * gamma + g * v["weight"].reshape((len(rg),) + param_shape)
    return _r_normalized_backward(xhat, invstd, rx, rxhat, gh, rgh, stats)
