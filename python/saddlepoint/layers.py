"""Parameters, modules and the layers of a dense network.

Every layer owns its parameters (``Parameter.data`` and ``Parameter.grad``, NumPy arrays) and
implements ``forward(x)`` and ``backward(grad_output)``; the arithmetic runs in Rust kernels that
write into arrays allocated here. Any object with ``forward``/``backward`` (plain NumPy code
included) can sit in a :class:`Sequential` next to these layers.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from typing import Iterator, Mapping

import numpy as np

from . import _core

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def float_dtype(dtype) -> np.dtype:
    """``dtype`` as a NumPy dtype, which must be float32 or float64."""
    dt = np.dtype(dtype)
    if dt not in FLOAT_DTYPES:
        raise TypeError(f"dtype must be float32 or float64, got {dt}")
    return dt


def positive_int(name: str, value) -> int:
    """Checks that ``value`` is an integer in [1, 2**63) and returns it."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 1 <= value < 2**63:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def positive_float(name: str, value) -> float:
    """``value`` as a finite float > 0, or a ValueError naming it."""
    number = finite_float(name, value)
    if number <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return number


def finite_float(name: str, value) -> float:
    """``value`` as a finite float, or a ValueError naming it (an int beyond float range too)."""
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        number = math.nan
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not math.isfinite(number):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return number


def as_layer_input(x, dtype: np.dtype, name: str = "x") -> np.ndarray:
    """``x`` as a C-contiguous array of the layer's dtype, without copying when it already is."""
    x = np.asarray(x)
    if x.dtype != dtype:
        raise TypeError(
            f"{name} must have dtype {dtype} like the layer's parameters, got {x.dtype}; "
            f"convert it with {name}.astype(np.{dtype})"
        )
    return np.ascontiguousarray(x)


class Parameter:
    """A trainable array and the gradient accumulated for it (same shape and dtype).

    ``zero_grad()`` only marks the gradient as zero; the zeros are written when ``grad`` is
    next read, unless a layer overwrites the whole gradient first (:class:`Dense` does), which
    saves a pass over every parameter per training step.

    Parameters
    ----------
    data : array_like
        Initial value, float32 or float64; copied into a C-contiguous array.
    """

    __slots__ = ("data", "_grad", "_grad_is_zero")

    def __init__(self, data):
        data = np.array(data, copy=True, order="C")
        float_dtype(data.dtype)
        self.data: np.ndarray = data
        self._grad = np.zeros_like(data)
        self._grad_is_zero = False

    @property
    def grad(self) -> np.ndarray:
        """The gradient (a NumPy array of ``data``'s shape), accumulated by ``backward``."""
        if self._grad_is_zero:
            self._grad.fill(0)
            self._grad_is_zero = False
        return self._grad

    @grad.setter
    def grad(self, value) -> None:
        value = np.asarray(value)
        if value.shape != self.data.shape or value.dtype != self.data.dtype:
            raise ValueError(f"grad must have shape {self.data.shape} and dtype {self.data.dtype}, "
                             f"got {value.shape} and {value.dtype}")
        self._grad = np.ascontiguousarray(value)
        self._grad_is_zero = False

    def grad_for_update(self) -> tuple[np.ndarray, bool]:
        """``(buffer, accumulate)`` for a layer about to write the gradient: ``accumulate`` is
        False right after ``zero_grad()``, and then the layer must overwrite all of ``buffer``."""
        accumulate = not self._grad_is_zero
        self._grad_is_zero = False
        return self._grad, accumulate

    @property
    def shape(self) -> tuple:
        return self.data.shape

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    def zero_grad(self) -> None:
        self._grad_is_zero = True

    def __repr__(self) -> str:
        return f"Parameter(shape={self.data.shape}, dtype={self.data.dtype})"


# Buffers that hold variances: a negative one makes the square root in eval mode NaN.
_NONNEGATIVE_BUFFERS = ("running_var",)


def _checked_state_entry(name: str, value, target: np.ndarray) -> np.ndarray:
    """``value`` cast to ``target``'s dtype if it fits ``target`` (shape, dtype kind, range;
    counts and variances >= 0), or an error."""
    source = np.asarray(value)
    if target.ndim == 0 and source.shape == (1,):
        source = source.reshape(())
    if source.shape != target.shape:
        raise ValueError(f"state_dict[{name!r}] must have shape {target.shape}, got {source.shape}")
    if target.dtype.kind == "f":
        fits, kind = source.dtype.kind == "f", "a float"
    else:  # an integer count: no sign change or wrap-around
        fits, kind = np.can_cast(source.dtype, target.dtype, casting="safe"), "an integer"
    if not fits:
        raise TypeError(f"state_dict[{name!r}] must have {kind} dtype like {target.dtype}, "
                        f"got {source.dtype}")
    if target.dtype.kind in "iu" and source.size and source.min() < 0:
        # Integer state is a count (num_batches_tracked); a negative one breaks momentum=None.
        raise ValueError(f"state_dict[{name!r}] is a count and must be >= 0, got {source.min()}")
    with np.errstate(over="ignore"):  # checked next: a float64 1e300 is inf in float32
        cast = source.astype(target.dtype)
    if target.dtype.kind == "f" and not np.isfinite(cast[np.isfinite(source)]).all():
        raise ValueError(f"state_dict[{name!r}] holds values beyond the range of {target.dtype}")
    if name.rpartition(".")[2] in _NONNEGATIVE_BUFFERS and (cast < 0).any():
        raise ValueError(f"state_dict[{name!r}] is a variance and must be >= 0, got {cast.min()}")
    return cast


class Module:
    """Base class of layers and models.

    Subclasses set :class:`Parameter` and ``Module`` attributes in ``__init__`` and implement
    ``forward(x)`` and ``backward(grad_output) -> grad_input``. Parameter names follow PyTorch
    (``"0.weight"``), so state dicts move between the two libraries unchanged.
    """

    training: bool = True

    def forward(self, x):
        raise NotImplementedError(f"{type(self).__name__} must implement forward(x)")

    def backward(self, grad_output):
        raise NotImplementedError(f"{type(self).__name__} must implement backward(grad_output)")

    def __call__(self, x):
        return self.forward(x)

    # --- structure -------------------------------------------------------------------------
    def named_children(self) -> Iterator[tuple[str, object]]:
        """Sub-layers in attribute order: any attribute with ``forward`` and ``backward``."""
        for name, value in vars(self).items():
            if not name.startswith("_") and hasattr(value, "forward") and hasattr(value, "backward"):
                yield name, value

    def named_parameters(self, prefix: str = "") -> Iterator[tuple[str, Parameter]]:
        """``(name, Parameter)`` pairs of this module and its sub-layers, PyTorch-style names."""
        for name, value in vars(self).items():
            if isinstance(value, Parameter):
                yield prefix + name, value
        for name, child in self.named_children():
            if hasattr(child, "named_parameters"):
                yield from child.named_parameters(prefix + name + ".")

    def parameters(self) -> list[Parameter]:
        return [p for _, p in self.named_parameters()]

    def named_buffers(self, prefix: str = "") -> Iterator[tuple[str, np.ndarray]]:
        """State that is saved but not trained (e.g. running statistics), by name."""
        for name in getattr(self, "_buffer_names", ()):
            yield prefix + name, getattr(self, name)
        for name, child in self.named_children():
            if hasattr(child, "named_buffers"):
                yield from child.named_buffers(prefix + name + ".")

    def register_buffer(self, name: str, array: np.ndarray) -> None:
        """Stores ``array`` as attribute ``name`` and includes it in the state dict."""
        setattr(self, name, array)
        names = list(getattr(self, "_buffer_names", ()))
        if name not in names:
            self._buffer_names = (*names, name)

    # --- modes -------------------------------------------------------------------------------
    def train(self, mode: bool = True) -> "Module":
        """Switches this module and its sub-layers to training (or, with False, eval) mode."""
        self.training = bool(mode)
        for _, child in self.named_children():
            if hasattr(child, "train"):
                child.train(mode)
        return self

    def eval(self) -> "Module":
        return self.train(False)

    def zero_grad(self) -> None:
        for p in self.parameters():
            p.zero_grad()

    def modules(self) -> Iterator["Module"]:
        """This module and all its sub-layers, depth first."""
        yield self
        for _, child in self.named_children():
            if hasattr(child, "modules"):
                yield from child.modules()

    def to(self, dtype) -> "Module":
        """Converts parameters, gradients and float buffers to ``dtype`` in place (PyTorch's
        ``model.to(torch.float64)``); returns the module. Inputs must then have that dtype."""
        dtype = float_dtype(dtype)
        for module in self.modules():
            for name, value in vars(module).items():
                if isinstance(value, Parameter):
                    value.data = value.data.astype(dtype)
                    value._grad, value._grad_is_zero = np.zeros_like(value.data), False
            for name in getattr(module, "_buffer_names", ()):
                buffer = getattr(module, name)
                if buffer.dtype.kind == "f":
                    setattr(module, name, buffer.astype(dtype))
            if hasattr(module, "_dtype"):
                module._dtype = dtype
        return self

    # --- state -------------------------------------------------------------------------------
    def _state_arrays(self) -> OrderedDict:
        state = OrderedDict((name, p.data) for name, p in self.named_parameters())
        state.update(self.named_buffers())
        return state

    def state_dict(self) -> "OrderedDict[str, np.ndarray]":
        """Copies of all parameters and buffers, by PyTorch-style name."""
        return OrderedDict((name, array.copy()) for name, array in self._state_arrays().items())

    def load_state_dict(self, state_dict: Mapping[str, np.ndarray], strict: bool = True) -> None:
        """Copies arrays into the parameters and buffers in place.

        Every name, shape and dtype is checked before anything is written, so a state dict
        that does not fit changes nothing (KeyError for missing or unexpected names with
        ``strict``, ValueError for a shape, a value beyond the dtype's range, a count or a
        ``running_var`` below 0, TypeError for a dtype).

        A 0-d entry (``num_batches_tracked``) is also accepted with shape ``(1,)``, as PyTorch
        accepts it: files written before 0-d tensors were saved as such hold that shape.
        """
        self._stage_state_dict(state_dict, strict)()

    def _stage_state_dict(self, state_dict: Mapping[str, np.ndarray], strict: bool = True):
        """Checks ``state_dict`` as :meth:`load_state_dict` does and returns a function that
        copies it in; the function cannot fail, so callers can stage several objects first."""
        if not isinstance(state_dict, Mapping):
            raise TypeError(f"state_dict must be a mapping of names to arrays, got {type(state_dict).__name__}")
        own = self._state_arrays()
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        if strict and (missing or unexpected):
            raise KeyError(
                f"state_dict does not match the model: missing {missing}, unexpected {unexpected}"
            )
        staged = []
        for name, target in own.items():
            if name in state_dict:
                staged.append((target, _checked_state_entry(name, state_dict[name], target)))

        def commit():
            for target, source in staged:
                np.copyto(target, source, casting="same_kind")
        return commit

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class Sequential(Module):
    """Layers applied in order; ``backward`` runs them in reverse.

    Layers are named ``"0"``, ``"1"``, ... in parameter names, as in PyTorch.
    """

    def __init__(self, *layers):
        for i, layer in enumerate(layers):
            if not (hasattr(layer, "forward") and hasattr(layer, "backward")):
                raise TypeError(
                    f"layer {i} must have forward and backward methods, got {type(layer).__name__}"
                )
        self.layers = list(layers)

    def named_children(self):
        for i, layer in enumerate(self.layers):
            yield str(i), layer

    def forward(self, x):
        for layer in self.layers:
            x = layer.forward(x)
        return x

    def backward(self, grad_output):
        for layer in reversed(self.layers):
            grad_output = layer.backward(grad_output)
        return grad_output

    def __getitem__(self, index):
        return self.layers[index]

    def __len__(self) -> int:
        return len(self.layers)

    def __iter__(self):
        return iter(self.layers)

    def __repr__(self) -> str:
        inner = "".join(f"\n  ({i}): {layer!r}" for i, layer in enumerate(self.layers))
        return f"Sequential({inner}\n)"


class Dense(Module):
    """Fully connected layer ``y = x @ weight.T + bias`` (PyTorch's ``Linear``).

    Parameters
    ----------
    in_features, out_features : int
        Sizes of each input row and each output row.
    bias : bool
        Whether to add a learnable bias.
    dtype : float32 or float64
    rng : numpy.random.Generator, int or None
        Source of the initial weights. As PyTorch's default, ``weight`` and ``bias`` are drawn
        from U(-1/sqrt(in_features), 1/sqrt(in_features)) (Kaiming-uniform with a = sqrt(5)).

    Shapes: ``x`` (batch, in_features) -> (batch, out_features); ``weight`` is
    (out_features, in_features).
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, *,
                 dtype=np.float32, rng=None):
        self.in_features = positive_int("in_features", in_features)
        self.out_features = positive_int("out_features", out_features)
        dtype = float_dtype(dtype)
        rng = np.random.default_rng(rng)
        bound = 1.0 / math.sqrt(in_features)
        self.weight = Parameter(rng.uniform(-bound, bound, (out_features, in_features)).astype(dtype))
        self.bias = Parameter(rng.uniform(-bound, bound, out_features).astype(dtype)) if bias else None
        # The first layer of a network needs no input gradient; a trainer may switch it off.
        self.input_grad = True
        self._x = None

    def forward(self, x):
        x = as_layer_input(x, self.weight.dtype)
        if x.ndim != 2 or x.shape[1] != self.in_features:
            raise ValueError(
                f"x must have shape (batch, {self.in_features}), got {x.shape}"
            )
        out = np.empty((x.shape[0], self.out_features), dtype=x.dtype)
        bias = None if self.bias is None else self.bias.data
        _core.dense_forward(x, self.weight.data, bias, out)
        self._x = x
        return out

    def backward(self, grad_output):
        if self._x is None:
            raise RuntimeError("Dense.backward called before forward")
        grad_output = as_layer_input(grad_output, self.weight.dtype, "grad_output")
        grad_input = np.empty_like(self._x) if self.input_grad else None
        grad_weight, accumulate = self.weight.grad_for_update()
        grad_bias = None
        if self.bias is not None:
            grad_bias, accumulate_bias = self.bias.grad_for_update()
            if accumulate_bias != accumulate:  # one was zeroed, the other not: accumulate both
                (grad_bias if accumulate else grad_weight).fill(0)
                accumulate = True
        _core.dense_backward(self._x, self.weight.data, grad_output, grad_weight, grad_bias,
                             grad_input, accumulate=accumulate)
        return grad_input

    def __repr__(self) -> str:
        return (f"Dense(in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}, dtype={self.weight.dtype})")


Linear = Dense


class Activation(Module):
    """An elementwise activation run by one Rust kernel; subclasses name it."""

    kind = "identity"

    def __init__(self):
        self._x = None
        self._y = None

    def _slope(self) -> float:
        return 0.0

    def forward(self, x):
        x = np.ascontiguousarray(x)
        out = np.empty_like(x)
        _core.activation_forward(self.kind, x, out, self._slope())
        self._x, self._y = x, out
        return out

    def backward(self, grad_output):
        if self._x is None:
            raise RuntimeError(f"{type(self).__name__}.backward called before forward")
        grad_output = as_layer_input(grad_output, self._x.dtype, "grad_output")
        grad_input = np.empty_like(self._x)
        _core.activation_backward(self.kind, self._x, self._y, grad_output, grad_input,
                                  self._slope())
        return grad_input

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class Identity(Activation):
    """``y = x``."""
    kind = "identity"


class ReLU(Activation):
    """``y = max(x, 0)``; the derivative at 0 is 0, as in PyTorch."""
    kind = "relu"


class Sigmoid(Activation):
    """``y = 1 / (1 + exp(-x))``."""
    kind = "sigmoid"


class HardSigmoid(Activation):
    """``y = relu6(x + 3) / 6``, PyTorch's ``Hardsigmoid``: the course's piecewise-linear sigmoid."""
    kind = "hard_sigmoid"


class Tanh(Activation):
    """``y = tanh(x)``."""
    kind = "tanh"


class LeakyReLU(Activation):
    """``y = x`` for ``x > 0``, ``negative_slope * x`` otherwise."""
    kind = "leaky_relu"

    def __init__(self, negative_slope: float = 0.01):
        super().__init__()
        self.negative_slope = finite_float("negative_slope", negative_slope)

    def _slope(self) -> float:
        return self.negative_slope

    def __repr__(self) -> str:
        return f"LeakyReLU(negative_slope={self.negative_slope})"


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

    def __repr__(self) -> str:
        return (f"BatchNorm1d({self.num_features}, eps={self.eps}, momentum={self.momentum}, "
                f"affine={self.affine}, track_running_stats={self.track_running_stats})")


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

    def __repr__(self) -> str:
        return f"LayerNorm({self.normalized_shape}, eps={self.eps})"


class Dropout(Module):
    """Inverted dropout: in training each element is zeroed with probability ``p`` and the
    kept ones are scaled by ``1/(1 − p)``, so eval mode (the identity) needs no rescaling.

    The mask is drawn in Rust from a 64-bit seed; each call takes a fresh seed from ``rng``
    (a ``numpy.random.Generator`` or an int seed owned by the layer), so a seeded model
    drops the same units on every run, whatever the thread count.
    """

    def __init__(self, p: float = 0.5, *, rng=None):
        if not (isinstance(p, (int, float)) and 0 <= p < 1):
            raise ValueError(f"p must be in [0, 1), got {p!r}")
        self.p = float(p)
        self.rng = np.random.default_rng(rng)
        self._mask = None

    def forward(self, x):
        if not self.training or self.p == 0:
            self._mask = None
            return x
        return self.forward_with_seed(x, int(self.rng.integers(0, 2**63)))

    def forward_with_seed(self, x, seed: int):
        """Training-mode forward with the mask drawn from ``seed`` (reproducible)."""
        x = np.ascontiguousarray(x)
        out, mask = np.empty_like(x), np.empty_like(x)
        _core.dropout_forward(x, self.p, seed, out, mask)
        self._mask = mask
        return out

    def backward(self, grad_output):
        if self._mask is None:
            return grad_output
        return np.multiply(grad_output, self._mask)

    def __repr__(self) -> str:
        return f"Dropout(p={self.p})"


ACTIVATIONS = {
    "relu": ReLU,
    "sigmoid": Sigmoid,
    "hard_sigmoid": HardSigmoid,
    "tanh": Tanh,
    "leaky_relu": LeakyReLU,
    "identity": Identity,
}


def mlp(sizes, activation: str = "relu", *, dtype=np.float32, rng=None) -> Sequential:
    """A multilayer perceptron: ``Dense`` layers of ``sizes`` with ``activation`` between them.

    ``mlp([64, 128, 10])`` is ``Sequential(Dense(64, 128), ReLU(), Dense(128, 10))``.
    """
    sizes = [positive_int("sizes[i]", s) for s in sizes]
    if len(sizes) < 2:
        raise ValueError(f"sizes must list at least the input and output sizes, got {sizes}")
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
    rng = np.random.default_rng(rng)
    layers = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        if i > 0:
            layers.append(ACTIVATIONS[activation]())
        layers.append(Dense(n_in, n_out, dtype=dtype, rng=rng))
    return Sequential(*layers)
