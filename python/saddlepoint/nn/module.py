"""`Module`: the protocol every layer and model follows (forward, backward, parameters,
buffers, modes, state dicts)."""

from __future__ import annotations

from collections import OrderedDict
from typing import Iterator, Mapping

import numpy as np

from ..validation import float_dtype
from .parameter import Parameter, pack_parameters
from .spec import describe, from_config


def aligned(array: np.ndarray) -> np.ndarray:
    """``array``, or a copy of it when its data does not start at a multiple of its item size,
    which the kernels refuse: an array that a Dask or Ray worker deserialized, or that
    numpy.frombuffer made at an odd offset (numpy.ascontiguousarray keeps such a start)."""
    return array if array.flags.aligned else array.copy()


def aligned_contiguous(array, dtype=None) -> np.ndarray:
    """``array`` as a C-contiguous, :func:`aligned` array of ``dtype``, as the kernels take it,
    without copying when it already is one: how the Trainer and the estimators take data."""
    array = np.ascontiguousarray(array, dtype=dtype)
    return array if array.flags.aligned else array.copy()


def as_layer_input(x, dtype: np.dtype, name: str = "x") -> np.ndarray:
    """``x`` as a C-contiguous array of the layer's dtype, without copying when it already is.
    Not :func:`aligned_contiguous`: inside a training step every input is the Trainer's or a
    layer's own buffer, and the check would cost each step; a misaligned array passed to a layer
    directly gets the kernels' error, which names the fix."""
    x = np.asarray(x)
    if x.dtype != dtype:
        raise TypeError(
            f"{name} must have dtype {dtype} like the layer's parameters, got {x.dtype}; "
            f"convert it with {name}.astype(np.{dtype})"
        )
    return np.ascontiguousarray(x)


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
        raise TypeError(
            f"state_dict[{name!r}] must have {kind} dtype like {target.dtype}, got {source.dtype}"
        )
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

    **R-operator (optional).** A layer that also implements the pair below gives the Hessian
    doctor exact Hessian-vector products (Pearlmutter's forward-over-reverse); one that does not
    still works everywhere, and the doctor falls back to central differences of the gradient and
    says so. ``Module`` provides no default, so ``hasattr(layer, "r_forward")`` tells which.
    ``R{·}`` is the derivative along k directions at once; ``v`` maps the names of the layer's
    parameters, as :meth:`named_parameters` gives them (``"weight"``; ``"0.weight"`` in a
    container), to their ``(k, *shape)`` blocks of the directions.

    ``r_forward(x, rx, v) -> (y, ry)``
        Does what ``forward(x)`` does (``y`` is its output and what ``backward`` needs is kept)
        and returns ``ry = R{y}``, shape ``(k, *y.shape)``; ``rx = R{x}`` has shape
        ``(k, *x.shape)`` and either may be None for zero (the data, or a layer without
        parameters before any that has some).
    ``r_backward(g, rg, v, rgrads) -> (g_in, rg_in)``
        Does what ``backward(g)`` does (``g_in`` is its input gradient, parameter gradients
        accumulate as usual) for ``g`` (N, ...) and ``rg = R{g}`` (k, N, ...), returns
        ``rg_in = R{g_in}`` (None where ``g_in`` is) and *adds* each parameter's R-gradient
        ``R{∇p}`` (k, *shape) into ``rgrads[name]``.

    A subclass that overrides ``forward`` or ``backward`` must override the pair as well: the
    doctor trusts a pair only where it is defined in the class that defines ``forward`` and
    ``backward``, or below it. A container's pair chains its children's, and is exact when each
    child's is.

    Examples
    --------
    A layer in plain NumPy: a learnable scale. Its parameter is trained and saved with the rest.

    >>> class Scale(sp.Module):
    ...     def __init__(self):
    ...         self.factor = sp.Parameter(np.ones(1))
    ...     def forward(self, x):
    ...         self._x = x
    ...         return x * self.factor.data
    ...     def backward(self, grad_output):
    ...         self.factor.grad += np.sum(grad_output * self._x, keepdims=True).reshape(1)
    ...         return grad_output * self.factor.data
    >>> model = sp.Sequential(sp.Dense(2, 2, dtype=np.float64, rng=0), Scale())
    >>> [name for name, _ in model.named_parameters()]
    ['0.weight', '0.bias', '1.factor']
    """

    training: bool = True
    #: True for a layer without parameters that passes :meth:`requires_grad_input`'s hint on:
    #: told the input gradient is not needed, its ``backward(None)`` returns None (a reshape).
    passes_grad_input_hint: bool = False

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

    def named_buffers(self, prefix: str = "", recurse: bool = True) -> Iterator[tuple[str, np.ndarray]]:
        """State that is saved but not trained (e.g. running statistics), by name; with
        ``recurse=False`` only this module's own (the name is then its attribute's)."""
        for name in getattr(self, "_buffer_names", ()):
            yield prefix + name, getattr(self, name)
        if not recurse:
            return
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
        """Marks every gradient as zero (no array is written now: see :class:`Parameter`)."""
        for p in self.parameters():
            p.zero_grad()

    def flatten_parameters(self) -> "Module":
        """Makes this module's parameters and gradients views of one contiguous buffer per dtype
        (values kept), so the parameter vector is one array and an optimizer steps each group in
        one call; returns the module. Containers do it when built, converted (:meth:`to`) or
        copied; call it again after replacing a parameter by hand (everything works unpacked,
        only slower)."""
        pack_parameters(self.parameters())
        return self

    def requires_grad_input(self, requires: bool = True) -> "Module":
        """Tells the module whether its caller needs ``backward`` to return the gradient with
        respect to the input; returns the module.

        Containers call it on their children: :class:`Sequential` tells its first layer that
        the gradient of the data is not needed, and its other layers that theirs is. A layer
        alone returns it, as a user calling ``backward`` expects. This default ignores the hint
        and always returns the gradient; a layer that can save work without it (``Dense``
        skips its largest product) overrides this method.
        """
        return self

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
            for value in vars(module).values():
                if isinstance(value, Parameter):
                    value.to(dtype)
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
        self.stage_state_dict(state_dict, strict)()

    def stage_state_dict(self, state_dict: Mapping[str, np.ndarray], strict: bool = True):
        """Checks ``state_dict`` as :meth:`load_state_dict` does and returns a function that
        copies it in; the function cannot fail, so callers can stage several objects first."""
        if not isinstance(state_dict, Mapping):
            raise TypeError(
                f"state_dict must be a mapping of names to arrays, got {type(state_dict).__name__}"
            )
        own = self._state_arrays()
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        if strict and (missing or unexpected):
            raise KeyError(f"state_dict does not match the model: missing {missing}, unexpected {unexpected}")
        staged = []
        for name, target in own.items():
            if name in state_dict:
                staged.append((target, _checked_state_entry(name, state_dict[name], target)))

        def commit():
            for target, source in staged:
                np.copyto(target, source, casting="same_kind")

        return commit

    # --- description (nn/spec.py) ----------------------------------------------------------------
    def config(self) -> dict:
        """A JSON-ready dict of the constructor arguments, ``{"class": name, ...}``, from which
        :meth:`from_config` rebuilds the layer (weights not included: see ``state_dict``). This
        default reads the attributes the class names in ``config_fields``."""
        return describe(self)

    @classmethod
    def from_config(cls, config: Mapping, *, rng=None) -> "Module":
        """The layer or model ``config`` describes, freshly initialized from ``rng`` (see
        :func:`saddlepoint.nn.from_config`); on a subclass, the result must be one of it."""
        model = from_config(config, rng=rng)
        if not isinstance(model, cls):
            raise ValueError(f"the config describes a {type(model).__name__}, not a {cls.__name__}")
        return model

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def predict(model, X, batch_size: int = 1024) -> np.ndarray:
    """The model's outputs on ``X`` in eval mode, ``batch_size`` rows at a time (the model's mode
    is restored afterwards).

    Examples
    --------
    >>> model = sp.Sequential(sp.Dense(3, 2, rng=0), sp.Dropout(0.5))
    >>> outputs = sp.training.predict(model, np.ones((5, 3), dtype=np.float32))
    >>> outputs.shape, model.training  # dropout was off, and the mode is back
    ((5, 2), True)
    """
    was_training = getattr(model, "training", False)
    model.eval()
    try:
        outputs = [model.forward(X[start : start + batch_size]) for start in range(0, len(X), batch_size)]
    finally:
        model.train(was_training)
    return np.concatenate(outputs)
