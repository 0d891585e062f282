"""Models that describe themselves: ``config()`` gives a JSON-ready dict of a layer's constructor
arguments, and :func:`from_config` rebuilds the layer (or a whole model) from it.

A config is ``{"class": <registered name>, <constructor argument>: <value>, ...}``; a container
holds its layers' configs (``{"class": "Sequential", "layers": [...]}``). The class is looked up
in a registry that the built-in layers join with :func:`register_layer`, and a user's layer can
join the same way::

    @register_layer
    class Scale(Module):
        config_fields = ("factor",)      # constructor arguments, read back from attributes

        def __init__(self, factor=2.0): ...

Every value goes through the layer's own constructor, so a config can never hold what the
constructor refuses, and its error is the constructor's (``in_features must be a positive
integer, got 0``), prefixed with where in a nested config the value sits. No weights are in a
config: a rebuilt layer is freshly initialized (from ``rng``); a state dict gives the weights.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping

import numpy as np

_REGISTRY: dict[str, type] = {}
_NAMES: dict[type, str] = {}


def register_layer(cls=None, *, name: str | None = None):
    """Adds a layer class to the registry that :func:`from_config` builds from, under ``name``
    (default: the class's name); usable as a decorator, with or without ``name``. Registering
    another class under a name already taken is a ValueError (two layers cannot share one).

    Examples
    --------
    A layer of one's own, in plain NumPy, that configs and saved models can name:

    >>> @sp.nn.register_layer
    ... class Square(sp.Module):
    ...     config_fields = ()
    ...     def forward(self, x):
    ...         self._x = x
    ...         return x * x
    ...     def backward(self, grad_output):
    ...         return 2 * self._x * grad_output
    >>> sp.nn.from_config({"class": "Square"})(np.array([[3.0]]))
    array([[9.]])
    """

    def register(layer_cls):
        if not isinstance(layer_cls, type):
            raise TypeError(f"register_layer takes a class, got {type(layer_cls).__name__}")
        key = layer_cls.__name__ if name is None else name
        if not isinstance(key, str) or not key:
            raise ValueError(f"a layer's registered name must be a non-empty string, got {key!r}")
        taken = _REGISTRY.get(key)
        if taken is not None and taken is not layer_cls:
            raise ValueError(
                f"a layer class is already registered as {key!r}: {taken.__module__}.{taken.__qualname__}"
            )
        _REGISTRY[key] = layer_cls
        _NAMES.setdefault(layer_cls, key)
        return layer_cls

    return register if cls is None else register(cls)


def registered_layers() -> dict[str, type]:
    """The registered layer classes by name (a copy).

    Examples
    --------
    >>> "Dense" in sp.nn.registered_layers()
    True
    """
    return dict(_REGISTRY)


def _json_ready(value):
    """A config value as JSON holds it: dtypes as their names, tuples as lists, NumPy scalars as
    Python numbers, layers as their configs."""
    if hasattr(value, "forward") and hasattr(value, "backward"):
        if not callable(getattr(value, "config", None)):
            raise TypeError(
                f"{type(value).__name__} cannot describe itself: it has no config() method "
                f"(subclass saddlepoint.nn.Module and register it with register_layer)"
            )
        return value.config()
    if isinstance(value, np.dtype) or (isinstance(value, type) and issubclass(value, np.generic)):
        return np.dtype(value).name
    if isinstance(value, Mapping):
        return {str(k): _json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_ready(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def layer_config(layer, **fields) -> dict:
    """``{"class": <layer's registered name>, **fields}``, JSON-ready: what a layer's ``config()``
    returns. TypeError if the layer's class is not registered (it could not be rebuilt)."""
    name = _NAMES.get(type(layer))
    if name is None:
        raise TypeError(
            f"{type(layer).__name__} is not a registered layer: decorate its class with "
            f"saddlepoint.nn.register_layer (and give it config_fields or a config() "
            f"method) so that a model holding it can describe itself"
        )
    return {"class": name, **{key: _json_ready(value) for key, value in fields.items()}}


def describe(layer) -> dict:
    """The config of a layer whose class declares ``config_fields``: each field read from the
    attribute of that name. TypeError for a layer that declares neither fields nor ``config()``."""
    fields = getattr(type(layer), "config_fields", None)
    if fields is None:
        raise TypeError(
            f"{type(layer).__name__} cannot describe itself: give its class config_fields "
            f"(the constructor arguments, kept as attributes of the same names) or a "
            f"config() method, and register it with saddlepoint.nn.register_layer"
        )
    return layer_config(layer, **{field: getattr(layer, field) for field in fields})


def _is_config(value) -> bool:
    return isinstance(value, Mapping) and "class" in value


def _where(path: str, message: str) -> str:
    return f"{path}: {message}" if path else message


def _build_value(value, rng, path: str):
    """A field's value with layer configs (alone or in a list) built into layers."""
    if _is_config(value):
        return _build(value, rng, path)
    if isinstance(value, list) and any(_is_config(v) for v in value):
        return [_build(v, rng, f"{path}[{i}]") if isinstance(v, Mapping) else v for i, v in enumerate(value)]
    return value


def _call_arguments(cls, fields: dict, rng, path: str) -> tuple[list, dict]:
    """Positional and keyword arguments of ``cls``'s constructor for ``fields`` (a ``*name``
    parameter takes the list of that name), plus ``rng`` when the constructor takes one."""
    try:
        parameters = inspect.signature(cls).parameters
    except (TypeError, ValueError):  # no signature to read: pass the fields as keywords
        return [], dict(fields)
    args: list = []
    kwargs: dict = {}
    names = {p.name for p in parameters.values() if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}
    variadic = [p.name for p in parameters.values() if p.kind is p.VAR_POSITIONAL]
    takes_any = any(p.kind is p.VAR_KEYWORD for p in parameters.values())
    unknown = sorted(k for k in fields if k not in names and k not in variadic and not takes_any)
    if unknown or "rng" in fields:
        accepted = sorted((names | set(variadic)) - {"rng"})
        raise ValueError(
            _where(
                path,
                f"{_NAMES.get(cls, cls.__name__)} config has unknown fields "
                f"{sorted(unknown or ['rng'])}; it takes {accepted}",
            )
        )
    for key, value in fields.items():
        if key in variadic:
            if not isinstance(value, (list, tuple)):
                raise ValueError(_where(path, f"{key} must be a list, got {type(value).__name__}"))
            args.extend(value)
        else:
            kwargs[key] = value
    if "rng" in names:
        kwargs["rng"] = rng
    return args, kwargs


def _build(config, rng, path: str):
    if not isinstance(config, Mapping):
        raise TypeError(_where(path, f"a layer config must be a dict, got {type(config).__name__}"))
    name = config.get("class")
    if not isinstance(name, str) or name not in _REGISTRY:
        what = "lacks its 'class'" if "class" not in config else f"names an unknown class {name!r}"
        raise ValueError(_where(path, f"the layer config {what}; the known classes are {sorted(_REGISTRY)}"))
    cls = _REGISTRY[name]
    fields = {
        k: _build_value(v, rng, f"{path or 'config'}[{k!r}]") for k, v in config.items() if k != "class"
    }
    args, kwargs = _call_arguments(cls, fields, rng, path)
    try:
        return cls(*args, **kwargs)
    except (TypeError, ValueError) as e:
        if not path:
            raise
        kind = ValueError if isinstance(e, ValueError) else TypeError
        raise kind(_where(path, str(e))) from None


def from_config(config, *, rng=None):
    """The layer or model that ``config`` describes (as ``model.config()`` gave it, or as read
    back from JSON), freshly initialized.

    Parameters
    ----------
    config : dict
        ``{"class": <registered name>, <constructor argument>: <value>, ...}``; layer configs
        inside it (a ``Sequential``'s ``"layers"``) are built too.
    rng : numpy.random.Generator, int or None
        One generator shared, in order, by every layer whose constructor takes ``rng`` (initial
        weights, dropout masks), so a seed gives the same weights as building the layers by hand
        with one generator.

    Raises
    ------
    ValueError
        An unknown class (the message lists the known ones), an unknown field, or a value the
        layer's constructor refuses (its own message, with the value's place in the config).
    TypeError
        A config that is not a dict, or a value of a type the constructor refuses.

    Examples
    --------
    >>> model = sp.mlp([4, 8, 2], rng=0)
    >>> copy = sp.nn.from_config(model.config(), rng=1)  # same architecture, new weights
    >>> copy.config() == model.config()
    True
    """
    return _build(config, np.random.default_rng(rng), "")
