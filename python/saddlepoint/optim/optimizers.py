"""Optimizers: one fused Rust update per parameter group, in place on ``Parameter.data``.

The object API is PyTorch's: ``param_groups`` (each a dict with its own hyperparameters),
``step()``, ``zero_grad()``, lazily created per-parameter ``state``, and
``state_dict()``/``load_state_dict()`` that round-trip exactly. The formulas are PyTorch's
(``torch.optim``); each docstring also gives the course's form and where the two differ.
"""

from __future__ import annotations

import math
from itertools import repeat
from operator import attrgetter, eq, is_, itemgetter
from typing import Callable, Iterable, Mapping, Optional

import numpy as np

from .. import _core
from ..nn import Parameter
from ..nn.parameter import flat_span
from ..validation import MAX_COUNT, Flag, Integer, Real, SequenceOf, check_params

# The largest step count stored (int64, as the counters of PyTorch's files).
MAX_STEP = MAX_COUNT
NONNEGATIVE = Real(0, closed="left")
UNIT_INTERVAL = Real(0, 1, closed="left")
FLAG = Flag(numeric=True)  # True/False, NumPy's bools or 0/1, as PyTorch takes them
STEP = Integer(0, MAX_STEP).described("an integer in [0, 2**63)")
# Keys that schedulers keep in the parameter groups (OneCycleLR's rates and momenta), checked
# whenever a group is.
SCHEDULER_RATES = ("initial_lr", "max_lr", "min_lr")
SCHEDULER_MOMENTA = ("base_momentum", "max_momentum")
SCHEDULER_CONSTRAINTS = {
    **dict.fromkeys(SCHEDULER_RATES, NONNEGATIVE),
    **dict.fromkeys(SCHEDULER_MOMENTA, UNIT_INTERVAL),
}


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


def _check_grad(p: Parameter) -> None:
    """The gradient a fused update will read: an aligned C-contiguous array like the parameter."""
    g = p.grad
    if not isinstance(g, np.ndarray) or g.dtype != p.data.dtype:
        raise TypeError(
            f"grad must be a numpy.ndarray of dtype {p.data.dtype}, got "
            f"{getattr(g, 'dtype', type(g).__name__)}"
        )
    if g.shape != p.data.shape:
        raise ValueError(f"grad must have shape {p.data.shape}, got {g.shape}")
    if not (g.flags.c_contiguous and g.flags.aligned):
        raise ValueError("grad must be an aligned C-contiguous array; pass a copy")


class Optimizer:
    """Base class: parameter groups, lazily created state, and their (de)serialization.

    Parameters
    ----------
    params : iterable of Parameter, or of dicts ``{"params": [...], **hyperparameters}``
        The parameters to train, in one group or in several with their own settings.
    defaults : dict
        Hyperparameters used by groups that do not set their own.

    Raises
    ------
    ValueError
        An empty parameter list, a parameter in two groups, or a hyperparameter out of its range
        (the message names it, the range and the value).

    Notes
    -----
    Subclasses implement ``_validate(group)``, ``_init_state(param, group)`` and
    ``_update(param, state, group)`` or ``_update_group(params, states, group)`` (every parameter
    of a group and dtype at once: one multi-tensor kernel call instead of one per parameter; by
    default it calls ``_update`` for each), and name their per-parameter state in
    ``_required_state`` / ``_optional_state`` (``"step"`` is a count, the rest arrays shaped
    like the parameter; those in ``_nonnegative_state`` hold sums of squares; a subclass that
    names none gets only those generic checks). Each hyperparameter's range is declared in
    ``constraints`` (validation.py's checks, used by the constructor and ``load_state_dict``
    alike, each where a group has it); checks between hyperparameters go in ``_validate``.

    Flat parameters: when a group's parameters are adjacent views, in order, of one flat buffer
    (a container's, see :meth:`Module.flatten_parameters`), an optimizer whose update treats
    every entry alike (``_elementwise``, the built-in ones) steps the whole span as ONE tensor,
    with each kind of state also one flat array whose views are the per-parameter state (so
    ``state`` and ``state_dict`` keep PyTorch's per-parameter layout); the bits are those of
    stepping each parameter. Anything else (parameters not adjacent, differing step counts or
    state kinds) takes the list path: one call with a list of tensors.

    Examples
    --------
    Two parameter groups, the second with its own learning rate:

    >>> model = sp.Sequential(sp.Dense(2, 4, rng=0), sp.ReLU(), sp.Dense(4, 1, rng=1))
    >>> optimizer = sp.SGD(
    ...     [{"params": model[0].parameters()}, {"params": model[2].parameters(), "lr": 0.01}],
    ...     lr=0.1,
    ... )
    >>> [group["lr"] for group in optimizer.param_groups]
    [0.1, 0.01]
    """

    _required_state: tuple = ()
    _optional_state: tuple = ()
    _nonnegative_state: tuple = ()
    constraints: dict = {"lr": NONNEGATIVE, "maximize": FLAG}
    # True when the update treats every entry alike (no norms or shapes): adjacent parameters
    # can then be stepped as one array. A subclass whose update is not elementwise sets False.
    _elementwise: bool = False

    def __init__(self, params: Iterable, defaults: dict):
        self.defaults = dict(defaults)
        self.param_groups: list[dict] = []
        self.state: dict = {}
        # {params tuple: {state kind: (flat array, its per-parameter views)}}; see _merged_state.
        self._flat_state: dict = {}
        # One _Plan per group while every group steps as one flat span; see step.
        self._plans: list | None = None
        params = list(params)
        _check(len(params) > 0, "params must not be empty")
        groups = params if isinstance(params[0], dict) else [{"params": params}]
        for group in groups:
            self.add_param_group(group)

    def add_param_group(self, group: dict) -> None:
        """Adds a group of parameters with its own hyperparameters (others from the defaults)."""
        if not isinstance(group, dict) or "params" not in group:
            raise TypeError(f"a parameter group must be a dict with 'params', got {group!r}")
        params = group["params"]
        params = [params] if isinstance(params, Parameter) else list(params)
        first_index: dict[int, int] = {}  # id(parameter) -> its first position
        for i, p in enumerate(params):
            if not isinstance(p, Parameter):
                raise TypeError(f"params[{i}] must be a saddlepoint Parameter, got {type(p).__name__}")
            # Twice in one list, p would be updated twice per step.
            _check(
                id(p) not in first_index,
                f"params[{i}] is the same Parameter as params[{first_index.get(id(p))}]: "
                f"a parameter may appear only once in an optimizer",
            )
            first_index[id(p)] = i
        for g, other in enumerate(self.param_groups):
            for p in other["params"]:
                _check(
                    id(p) not in first_index,
                    f"params[{first_index.get(id(p))}] appears in more than one parameter "
                    f"group (it is in group {g} already)",
                )
        full = self._checked_group({**self.defaults, **group, "params": params})
        self.param_groups.append(full)

    def _checked_group(self, group: dict) -> dict:
        """``group`` with every hyperparameter checked and normalized (tuples as tuples: JSON
        has none); the one validation of both the constructor and ``load_state_dict``."""
        group = check_params(group, {"lr": NONNEGATIVE, **self.constraints, **SCHEDULER_CONSTRAINTS})
        if "lr" not in group:
            NONNEGATIVE.check("lr", None)
        self._validate(group)
        return group

    def _validate(self, group: dict) -> None:
        """Raises ValueError when hyperparameters do not fit together (each one's own range is
        in ``constraints``)."""

    def _init_state(self, param: Parameter, group: dict) -> dict:
        return {}

    def _update(self, param: Parameter, state: dict, group: dict) -> None:
        raise NotImplementedError

    def _update_group(self, params: list, states: list, group: dict) -> None:
        for p, state in zip(params, states):
            self._update(p, state, group)

    def zero_grad(self) -> None:
        """Sets every parameter's gradient to zero."""
        for group in self.param_groups:
            for p in group["params"]:
                p.zero_grad()

    def step(self, closure: Optional[Callable[[], float]] = None):
        """Updates every parameter from its gradient. ``closure``, if given, is called first
        (it should recompute the loss and gradients) and its loss is returned."""
        loss = closure() if closure is not None else None
        plans = self.__dict__.get("_plans")
        if plans is not None and self._run_plans(plans):
            return loss
        self._plans = None
        new_plans: list = []
        for group in self.param_groups:  # every gradient checked before anything changes
            for p in group["params"]:
                _check_grad(p)
        for group in self.param_groups:
            by_dtype: dict = {}  # a kernel call takes one dtype; a group normally has one
            for p in group["params"]:
                state = self.state.get(p)
                if state is None:
                    state = self.state[p] = self._init_state(p, group)
                params, states = by_dtype.setdefault(p.data.dtype, ([], []))
                params.append(p)
                states.append(state)
            for params, states in by_dtype.values():
                merged = self._merged_state(params, states) if self._elementwise else None
                if merged is None:
                    self._update_group(params, states, group)
                else:  # the span as one tensor: one kernel call over adjacent memory
                    span, state = merged
                    self._update_group([span], [state], group)
                    self._split_state(params, states, state)
                    if len(by_dtype) == 1:
                        new_plans.append(_Plan.make(self, group, params, states, span))
        if len(new_plans) == len(self.param_groups) and all(new_plans):
            self._plans = new_plans
        return loss

    def _run_plans(self, plans: list) -> bool:
        """The step by the plans of the last one, if every plan still holds (else False and
        nothing changed): the same kernel calls on the same arrays, without finding the spans
        and their state again."""
        groups = self.param_groups
        if len(plans) != len(groups):
            return False
        get_state = self.state.get
        for plan, group in zip(plans, groups):
            if not plan.holds(group, get_state):
                return False
        for plan, group in zip(plans, groups):
            plan.run(self, group)
        return True

    def __getstate__(self) -> dict:
        # Copies (deepcopy, pickle) get each state array on its own: the flat arrays are made
        # again at the next step.
        return {**self.__dict__, "_flat_state": {}, "_plans": None}

    def _merged_state(self, params: list, states: list):
        """``(span, state)`` standing for all of ``params`` when they are a flat span whose
        states have the same kinds and counts: ``span`` has the span's ``data`` and ``grad``,
        ``state`` each kind's flat array (the per-parameter arrays become its views). Else None."""
        span = flat_span(params) if len(params) > 1 else None
        if span is None:
            return None
        first = states[0]
        if any(len(s) != len(first) for s in states):
            return None
        flats = self._flat_state.get(tuple(params), {})
        merged = {}
        for key, value in first.items():
            try:
                values = [s[key] for s in states]
            except KeyError:
                return None
            if isinstance(value, np.ndarray):
                entry = flats.get(key)
                if entry is None or entry[1][0].base is not entry[0] or not all(map(is_, values, entry[1])):
                    entry = self._pack_state(params, states, key, values)
                    if entry is None:
                        return None
                merged[key] = entry[0]
            elif any(type(v) is not type(value) or v != value for v in values):
                return None  # e.g. step counts that differ
            else:
                merged[key] = value
        return _Span(span.data, span.grad), merged

    def _pack_state(self, params: list, states: list, key: str, values: list):
        """Binds ``states[i][key]`` to views of one new flat array holding their values, and
        returns ``(flat, views)``; None if an entry is not an array like its parameter."""
        if not all(
            isinstance(a, np.ndarray) and a.shape == p.data.shape and a.dtype == p.data.dtype
            for a, p in zip(values, params)
        ):
            return None
        return self._bind_views(params, states, key, np.concatenate([a.ravel() for a in values]))

    def _bind_views(self, params: list, states: list, key: str, flat: np.ndarray):
        views, start = [], 0
        for p, state in zip(params, states):
            stop = start + p.data.size
            state[key] = flat[start:stop].reshape(p.data.shape)
            views.append(state[key])
            start = stop
        entry = self._flat_state.setdefault(tuple(params), {})[key] = (flat, tuple(views))
        return entry

    def _split_state(self, params: list, states: list, merged: dict) -> None:
        """Writes back what the span's update changed: counts, and views of new state arrays."""
        for key, value in merged.items():
            if isinstance(value, np.ndarray):
                if key not in states[0]:  # created by this update (a momentum buffer, ...)
                    self._bind_views(params, states, key, value)
            else:
                for state in states:
                    state[key] = value

    # --- state -------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """``{"state": {index: {...}}, "param_groups": [...]}`` with parameters numbered in
        group order, as PyTorch; arrays are copies."""
        index: dict[Parameter, int] = {}
        groups = []
        for group in self.param_groups:
            ids = []
            for p in group["params"]:
                index[p] = len(index)
                ids.append(index[p])
            groups.append({**{k: v for k, v in group.items() if k != "params"}, "params": ids})
        state = {
            index[p]: {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in s.items()}
            for p, s in self.state.items()
            if p in index
        }
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict) -> None:
        """Restores hyperparameters and state saved by :meth:`state_dict`.

        Everything is checked before anything changes (each group's hyperparameters by the
        constructor's validation, each state entry's name, type, shape and values); arrays are
        copied in the parameters' dtype, so a resumed run continues bit-identically.
        """
        self.stage_state_dict(state_dict)()

    def stage_state_dict(self, state_dict: dict):
        """Checks ``state_dict`` as :meth:`load_state_dict` does (ValueError) and returns a
        function that installs it, which cannot fail."""
        _check(
            isinstance(state_dict, Mapping) and {"state", "param_groups"} <= set(state_dict),
            "state_dict must be a dict with 'state' and 'param_groups'",
        )
        groups = state_dict["param_groups"]
        _check(
            isinstance(groups, (list, tuple)), f"state_dict['param_groups'] must be a list, got {groups!r}"
        )
        _check(
            len(groups) == len(self.param_groups),
            f"state_dict has {len(groups)} parameter groups, the optimizer {len(self.param_groups)}",
        )
        new_groups, params = [], {}
        for i, (saved, own) in enumerate(zip(groups, self.param_groups)):
            new_groups.append(self._staged_group(i, saved, own))
            for index, p in zip(saved["params"], own["params"]):
                _check(index not in params, f"parameter index {index} appears twice in state_dict")
                params[index] = (p, new_groups[-1])
        saved_state = state_dict["state"]
        _check(isinstance(saved_state, Mapping), f"state_dict['state'] must be a dict, got {saved_state!r}")
        new_state = {}
        for key, entry in saved_state.items():
            _check(key in params, f"state_dict holds state for unknown parameter {key!r}")
            p, group = params[key]
            new_state[p] = self._staged_param_state(f"state[{key!r}]", entry, p, group)

        def commit():
            for own, new in zip(self.param_groups, new_groups):
                own.update(new)
            self.state = new_state

        return commit

    def _staged_group(self, i: int, saved, own: dict) -> dict:
        """The group ``own`` would become with the hyperparameters of ``saved``, checked."""
        where = f"state_dict param_groups[{i}]"
        _check(isinstance(saved, Mapping), f"{where} must be a dict, got {saved!r}")
        ids = saved.get("params")
        _check(
            isinstance(ids, (list, tuple))
            and all(isinstance(k, int) and not isinstance(k, bool) for k in ids),
            f"{where}['params'] must be a list of parameter indices, got {ids!r}",
        )
        _check(
            len(ids) == len(own["params"]),
            f"parameter group {i} has {len(ids)} parameters in state_dict, "
            f"{len(own['params'])} in the optimizer",
        )
        missing = [k for k in self.defaults if k not in saved]
        _check(not missing, f"{where} lacks the hyperparameters {missing}")
        known = {*self.defaults, *own, *SCHEDULER_RATES, *SCHEDULER_MOMENTA}
        unknown = [k for k in saved if k not in known]
        _check(
            not unknown,
            f"{where} holds unknown hyperparameters {unknown[:5]}; expected "
            f"those among {sorted(known - {'params'})}",
        )
        try:
            return self._checked_group({**own, **{k: v for k, v in saved.items() if k != "params"}})
        except ValueError as e:
            raise ValueError(f"{where}: {e}") from None

    def _staged_param_state(self, where: str, entry, p: Parameter, group: dict) -> dict:
        """One parameter's saved state, checked and copied in the parameter's dtype."""
        _check(isinstance(entry, Mapping), f"{where} must be a dict, got {entry!r}")
        if self._required_state or self._optional_state:  # else: a subclass that names none
            known = (*self._required_state, *self._optional_state)
            unknown = [k for k in entry if k not in known]
            missing = [k for k in self._required_state if k not in entry]
            _check(
                not unknown and not missing,
                f"{where} must hold {list(self._required_state)} (and may hold "
                f"{list(self._optional_state)}), got unknown {unknown}, missing {missing}",
            )
        restored: dict[str, int | np.ndarray] = {}
        for name, value in entry.items():
            if name == "step":
                STEP.check(f"{where}['step']", value)
                restored[name] = int(value)
            else:
                restored[name] = self._staged_array(f"{where}[{name!r}]", name, value, p)
        return restored

    def _staged_array(self, where: str, name: str, value, p: Parameter) -> np.ndarray:
        _check(
            isinstance(value, np.ndarray) or hasattr(value, "__array__"),
            f"{where} must be an array, got {type(value).__name__}",
        )
        value = np.asarray(value)
        if p.data.ndim == 0 and value.shape == (1,):
            value = value.reshape(())  # written before 0-d arrays were saved as such
        _check(value.shape == p.shape, f"{where} must have shape {p.shape}, got {value.shape}")
        _check(
            value.dtype.kind == "f" and np.can_cast(value.dtype, p.dtype, casting="same_kind"),
            f"{where} must have a float dtype like {p.dtype}, got {value.dtype}",
        )
        with np.errstate(over="ignore"):  # checked below: a float64 1e300 is inf in float32
            value = np.array(value, dtype=p.dtype, order="C", copy=True)
        _check(
            bool(np.isfinite(value).all()),
            f"{where} holds NaN or infinite values (or values beyond the range of {p.dtype})",
        )
        _check(
            name not in self._nonnegative_state or bool((value >= 0).all()),
            f"{where} is a sum of squares and must be >= 0, got {value.min() if value.size else value}",
        )
        return value

    def __repr__(self) -> str:
        hyper = ", ".join(f"{k}={v}" for k, v in self.defaults.items())
        return f"{type(self).__name__}({hyper})"


class _Span:
    """A flat span of parameters as an update sees one parameter: its ``data`` and ``grad``."""

    __slots__ = ("data", "grad")

    def __init__(self, data: np.ndarray, grad: np.ndarray):
        self.data, self.grad = data, grad


_DATA, _GRAD, _ZERO = attrgetter("data"), attrgetter("_grad"), attrgetter("_grad_is_zero")


class _Plan:
    """How a group whose parameters are one flat span steps: the span, its merged state and
    what makes them valid, kept from one step to the next.

    It holds while the group, its parameter list, each parameter's ``data`` and gradient arrays,
    each parameter's state dict, and each state entry (the views of the flat state arrays, the
    step counts) are the very objects the plan was made from, and no entry was added: identity
    checks that cost a few C-level passes over the group. Anything else (a parameter rebound or
    repacked, ``load_state_dict``, a state entry replaced) fails them, and the step takes the
    general path, which finds the spans again; the update is the same kernel call on the same
    arrays either way, so the bits are too.
    """

    __slots__ = (
        "group",
        "params",
        "datas",
        "grads",
        "states",
        "nkeys",
        "arrays",
        "scalars",
        "span",
        "merged",
    )
    group: dict
    params: tuple
    datas: tuple
    grads: tuple
    states: tuple
    nkeys: int
    arrays: list
    scalars: list
    span: _Span
    merged: dict

    @classmethod
    def make(cls, opt: Optimizer, group: dict, params: list, states: list, span: _Span):
        """The plan of a group that has just stepped as ``span``; None when its state is not the
        flat arrays' views and equal scalars (then the group takes the general path)."""
        plan = cls()
        plan.group, plan.params = group, tuple(params)
        if len(plan.params) != len(group["params"]):
            return None
        plan.datas = tuple(map(_DATA, params))
        plan.grads = tuple(map(_GRAD, params))
        plan.states = tuple(states)
        first = states[0]
        plan.nkeys = len(first)
        flats = opt._flat_state.get(plan.params, {})
        plan.arrays, plan.scalars, plan.merged = [], [], {}
        for key, value in first.items():
            getter = itemgetter(key)
            try:
                values = tuple(map(getter, states))
            except KeyError:
                return None
            if isinstance(value, np.ndarray):
                entry = flats.get(key)
                if entry is None or not all(map(is_, values, entry[1])):
                    return None
                plan.arrays.append((getter, entry[1]))
                plan.merged[key] = entry[0]
            else:
                if not all(map(is_, values, repeat(value))):
                    return None
                plan.scalars.append((key, getter, value))
                plan.merged[key] = value
        plan.span = span
        return plan

    def holds(self, group: dict, get_state) -> bool:
        """Whether the plan still describes ``group``; writes the zeros a ``zero_grad`` left
        pending, as reading each gradient does on the general path."""
        params = group["params"]
        if (
            group is not self.group
            or len(params) != len(self.params)
            or not all(map(is_, params, self.params))
        ):
            return False
        if not (
            all(map(is_, map(_DATA, params), self.datas)) and all(map(is_, map(_GRAD, params), self.grads))
        ):
            return False
        states = self.states
        if not all(map(is_, map(get_state, params), states)) or not all(
            map(eq, map(len, states), repeat(self.nkeys))
        ):
            return False
        try:
            for getter, views in self.arrays:
                if not all(map(is_, map(getter, states), views)):
                    return False
            for _, getter, value in self.scalars:
                if not all(map(is_, map(getter, states), repeat(value))):
                    return False
        except KeyError:
            return False
        if any(map(_ZERO, params)):
            for p in params:
                p.grad  # noqa: B018 (the property writes the pending zeros)
        return True

    def run(self, opt: Optimizer, group: dict) -> None:
        merged = self.merged
        opt._update_group([self.span], [merged], group)
        if len(merged) != self.nkeys:  # the update made a new kind of state: bind it, plan again
            opt._split_state(list(self.params), list(self.states), merged)
            opt._plans = None
            return
        scalars = self.scalars
        for i, (key, getter, _) in enumerate(scalars):
            value = merged[key]
            for state in self.states:
                state[key] = value
            scalars[i] = (key, getter, value)


class SGD(Optimizer):
    """Stochastic gradient descent, optionally with momentum (PyTorch's formula).

    With ``g = ∇L(θ) + weight_decay·θ`` (negated when ``maximize``)::

        b = momentum·b + (1 − dampening)·g      (b = g on the first step)
        θ = θ − lr·b                           (Nesterov: θ = θ − lr·(g + momentum·b))

    The course writes momentum as ``m = λ·m − η·g; θ = θ + m``: the same iterates while the
    learning rate is constant (``m = −η·b``); they differ once ``lr`` changes, because PyTorch
    applies the new rate to the whole accumulated buffer. Without momentum this is the course's
    ``θ = θ − η·g``.

    Parameters
    ----------
    lr : float, default 1e-3
    momentum : float in [0, 1), default 0
    dampening : float in [0, 1), default 0
    nesterov : bool, default False (needs momentum > 0 and dampening = 0)
    weight_decay : float >= 0, default 0 (L2 penalty ``λ/2·‖θ‖²`` added to the loss)
    maximize : bool, default False

    Raises
    ------
    ValueError
        A hyperparameter out of its range, or ``nesterov`` without momentum or with dampening.

    Examples
    --------
    One step of plain gradient descent on ``L(w) = w²/2``, whose gradient is ``w``:

    >>> w = sp.Parameter(np.array([1.0, -2.0]))
    >>> optimizer = sp.SGD([w], lr=0.5)
    >>> w.grad = w.data.copy()
    >>> optimizer.step()
    >>> w.data
    array([ 0.5, -1. ])
    >>> optimizer = sp.SGD([w], lr=0.1, momentum=0.9, nesterov=True)
    """

    def __init__(
        self,
        params,
        lr: float = 1e-3,
        momentum: float = 0.0,
        dampening: float = 0.0,
        nesterov: bool = False,
        weight_decay: float = 0.0,
        maximize: bool = False,
    ):
        super().__init__(
            params,
            dict(
                lr=lr,
                momentum=momentum,
                dampening=dampening,
                nesterov=nesterov,
                weight_decay=weight_decay,
                maximize=maximize,
            ),
        )

    _optional_state = ("momentum_buffer",)
    _elementwise = True
    constraints = {
        "lr": NONNEGATIVE,
        "momentum": UNIT_INTERVAL,
        "dampening": UNIT_INTERVAL,
        "weight_decay": NONNEGATIVE,
        "nesterov": FLAG,
        "maximize": FLAG,
    }

    def _validate(self, group):
        _check(
            not group["nesterov"] or (group["momentum"] > 0 and group["dampening"] == 0),
            f"nesterov needs momentum > 0 and dampening = 0, got momentum={group['momentum']}, "
            f"dampening={group['dampening']}",
        )

    def _update_group(self, params, states, group):
        buffers = None
        first_step = [False] * len(params)
        if group["momentum"] != 0:
            buffers = []
            for i, (p, state) in enumerate(zip(params, states)):
                if state.get("momentum_buffer") is None:
                    state["momentum_buffer"] = np.zeros_like(p.data)
                    first_step[i] = True
                buffers.append(state["momentum_buffer"])
        _core.sgd_step(
            [p.data for p in params],
            [p.grad for p in params],
            buffers,
            lr=float(group["lr"]),
            momentum=float(group["momentum"]),
            dampening=float(group["dampening"]),
            nesterov=bool(group["nesterov"]),
            weight_decay=float(group["weight_decay"]),
            maximize=bool(group["maximize"]),
            first_step=first_step,
        )


class Adagrad(Optimizer):
    """Adagrad (PyTorch's formula). For step ``t`` (from 1)::

        clr = lr / (1 + (t − 1)·lr_decay)
        S   = S + g²                      (S starts at initial_accumulator_value)
        θ   = θ − clr · g / (√S + eps)

    The course divides by the root *mean* square, ``σ = √(1/(t+1) · Σ g²)``; PyTorch (and we)
    divide by the root of the *sum*, so the course's rate ``η`` corresponds to
    ``lr = η·√(t+1)``: the sum's step shrinks as ``1/√t`` even for constant gradients. ``eps``
    is added outside the root.

    Parameters
    ----------
    lr : float, default 1e-2
    lr_decay : float >= 0, default 0
    weight_decay : float >= 0, default 0
    initial_accumulator_value : float >= 0, default 0
    eps : float >= 0, default 1e-10
    maximize : bool, default False

    Examples
    --------
    The first step moves each weight by about ``lr``, whatever the gradient's scale:

    >>> w = sp.Parameter(np.array([1.0, -2.0]))
    >>> optimizer = sp.Adagrad([w], lr=0.1)
    >>> w.grad = np.array([100.0, 0.001])
    >>> optimizer.step()
    >>> np.round(w.data, 3)
    array([ 0.9, -2.1])
    >>> optimizer.zero_grad()
    """

    def __init__(
        self,
        params,
        lr: float = 1e-2,
        lr_decay: float = 0.0,
        weight_decay: float = 0.0,
        initial_accumulator_value: float = 0.0,
        eps: float = 1e-10,
        maximize: bool = False,
    ):
        super().__init__(
            params,
            dict(
                lr=lr,
                lr_decay=lr_decay,
                weight_decay=weight_decay,
                initial_accumulator_value=initial_accumulator_value,
                eps=eps,
                maximize=maximize,
            ),
        )

    _required_state = ("step", "sum")
    _elementwise = True
    _nonnegative_state = ("sum",)

    constraints = {
        "lr": NONNEGATIVE,
        "lr_decay": NONNEGATIVE,
        "weight_decay": NONNEGATIVE,
        "initial_accumulator_value": NONNEGATIVE,
        "eps": NONNEGATIVE,
        "maximize": FLAG,
    }

    def _init_state(self, p, group):
        return {"step": 0, "sum": np.full_like(p.data, group["initial_accumulator_value"])}

    def _update_group(self, params, states, group):
        clr = []
        for state in states:
            state["step"] += 1
            clr.append(float(group["lr"] / (1 + (state["step"] - 1) * group["lr_decay"])))
        _core.adagrad_step(
            [p.data for p in params],
            [p.grad for p in params],
            [s["sum"] for s in states],
            clr=clr,
            eps=float(group["eps"]),
            weight_decay=float(group["weight_decay"]),
            maximize=bool(group["maximize"]),
        )


class RMSprop(Optimizer):
    """RMSprop (PyTorch's formula)::

        v = alpha·v + (1 − alpha)·g²
        d = √v + eps                      (centered: ḡ = alpha·ḡ + (1 − alpha)·g, d = √(v − ḡ²) + eps)
        θ = θ − lr · g / d                (momentum: b = momentum·b + g/d, θ = θ − lr·b)

    The course writes ``σ_t = √(α·σ_{t−1}² + (1 − α)·g_t²)`` and ``θ = θ − η/σ_t · g``: the same
    recursion, except that the course starts from ``σ_0 = |g_0|`` while PyTorch starts from
    ``v = 0`` (so its first steps are larger by up to ``1/√(1 − alpha)``), and ``eps``.

    Parameters
    ----------
    lr : float, default 1e-2
    alpha : float in [0, 1), default 0.99
    eps : float >= 0, default 1e-8
    weight_decay : float >= 0, default 0
    momentum : float in [0, 1), default 0
    centered : bool, default False
    maximize : bool, default False

    Examples
    --------
    The first step moves each weight by about ``lr``, whatever the gradient's scale:

    >>> w = sp.Parameter(np.array([1.0, -2.0]))
    >>> optimizer = sp.RMSprop([w], lr=0.01)
    >>> w.grad = np.array([100.0, 0.001])
    >>> optimizer.step()
    >>> np.round(w.data, 3)
    array([ 0.9, -2.1])
    >>> optimizer.zero_grad()
    """

    def __init__(
        self,
        params,
        lr: float = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        momentum: float = 0.0,
        centered: bool = False,
        maximize: bool = False,
    ):
        super().__init__(
            params,
            dict(
                lr=lr,
                alpha=alpha,
                eps=eps,
                weight_decay=weight_decay,
                momentum=momentum,
                centered=centered,
                maximize=maximize,
            ),
        )

    _required_state = ("step", "square_avg")
    _elementwise = True
    _optional_state = ("momentum_buffer", "grad_avg")
    _nonnegative_state = ("square_avg",)
    constraints = {
        "lr": NONNEGATIVE,
        "alpha": UNIT_INTERVAL,
        "eps": NONNEGATIVE,
        "weight_decay": NONNEGATIVE,
        "momentum": UNIT_INTERVAL,
        "centered": FLAG,
        "maximize": FLAG,
    }

    def _init_state(self, p, group):
        state = {"step": 0, "square_avg": np.zeros_like(p.data)}
        if group["momentum"] > 0:
            state["momentum_buffer"] = np.zeros_like(p.data)
        if group["centered"]:
            state["grad_avg"] = np.zeros_like(p.data)
        return state

    def _update_group(self, params, states, group):
        for p, state in zip(params, states):
            state["step"] += 1
            if group["momentum"] > 0 and "momentum_buffer" not in state:
                state["momentum_buffer"] = np.zeros_like(p.data)
            if group["centered"] and "grad_avg" not in state:
                state["grad_avg"] = np.zeros_like(p.data)
        _core.rmsprop_step(
            [p.data for p in params],
            [p.grad for p in params],
            [s["square_avg"] for s in states],
            [s["grad_avg"] for s in states] if group["centered"] else None,
            [s["momentum_buffer"] for s in states] if group["momentum"] > 0 else None,
            lr=float(group["lr"]),
            alpha=float(group["alpha"]),
            eps=float(group["eps"]),
            weight_decay=float(group["weight_decay"]),
            momentum=float(group["momentum"]),
            maximize=bool(group["maximize"]),
        )


class Adam(Optimizer):
    """Adam (PyTorch's formula). For step ``t`` (from 1)::

        m = β1·m + (1 − β1)·g
        v = β2·v + (1 − β2)·g²            (AMSGrad: v̂ = max(v̂, v), used below instead of v)
        θ = θ − lr/(1 − β1^t) · m / (√v / √(1 − β2^t) + eps)

    ``weight_decay`` is the coupled L2 penalty (added to ``g``); :class:`AdamW` decays the
    weights directly instead. The course describes Adam as RMSProp + momentum: ``m`` is the
    momentum (an average of gradients rather than the course's sum of movements) and ``√v``
    the RMSProp ``σ``; the bias corrections undo the zero start of ``m`` and ``v``.

    Parameters
    ----------
    lr : float, default 1e-3
    betas : (float, float) in [0, 1), default (0.9, 0.999)
    eps : float >= 0, default 1e-8
    weight_decay : float >= 0, default 0
    amsgrad : bool, default False
    maximize : bool, default False

    Examples
    --------
    The first step moves each weight by about ``lr``, whatever the gradient's scale:

    >>> w = sp.Parameter(np.array([1.0, -2.0]))
    >>> optimizer = sp.Adam([w], lr=0.1)
    >>> w.grad = np.array([100.0, 0.001])
    >>> optimizer.step()
    >>> np.round(w.data, 3)
    array([ 0.9, -2.1])
    >>> optimizer.zero_grad()
    """

    _decoupled = False

    def __init__(
        self,
        params,
        lr: float = 1e-3,
        betas=(0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        amsgrad: bool = False,
        maximize: bool = False,
    ):
        super().__init__(
            params,
            dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad, maximize=maximize),
        )

    _required_state = ("step", "exp_avg", "exp_avg_sq")
    _elementwise = True
    _optional_state = ("max_exp_avg_sq",)
    _nonnegative_state = ("exp_avg_sq", "max_exp_avg_sq")
    constraints = {
        "lr": NONNEGATIVE,
        "betas": SequenceOf(UNIT_INTERVAL, length=2).described("a pair (beta1, beta2) of numbers in [0, 1)"),
        "eps": NONNEGATIVE,
        "weight_decay": NONNEGATIVE,
        "amsgrad": FLAG,
        "maximize": FLAG,
    }

    def _init_state(self, p, group):
        state = {"step": 0, "exp_avg": np.zeros_like(p.data), "exp_avg_sq": np.zeros_like(p.data)}
        if group["amsgrad"]:
            state["max_exp_avg_sq"] = np.zeros_like(p.data)
        return state

    def _update_group(self, params, states, group):
        beta1, beta2 = group["betas"]
        beta1, beta2 = float(beta1), float(beta2)
        lr = float(group["lr"])
        amsgrad = group["amsgrad"]
        step_size, bias_correction2_sqrt = [], []
        for p, state in zip(params, states):
            t = state["step"] = state["step"] + 1
            if amsgrad and "max_exp_avg_sq" not in state:
                state["max_exp_avg_sq"] = np.zeros_like(p.data)
            step_size.append(lr / (1 - beta1**t))
            bias_correction2_sqrt.append(math.sqrt(1 - beta2**t))
        _core.adam_step(
            [p.data for p in params],
            [p.grad for p in params],
            [s["exp_avg"] for s in states],
            [s["exp_avg_sq"] for s in states],
            [s["max_exp_avg_sq"] for s in states] if amsgrad else None,
            lr=lr,
            beta1=beta1,
            beta2=beta2,
            eps=float(group["eps"]),
            weight_decay=float(group["weight_decay"]),
            decoupled_weight_decay=self._decoupled,
            maximize=bool(group["maximize"]),
            step_size=step_size,
            bias_correction2_sqrt=bias_correction2_sqrt,
        )


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter): before the Adam step,
    ``θ = θ − lr·weight_decay·θ``; the gradient itself is not changed. Default
    ``weight_decay=1e-2``, as PyTorch. See :class:`Adam` for the rest.

    Examples
    --------
    With a zero gradient only the decay acts: ``θ = θ − lr·weight_decay·θ``.

    >>> w = sp.Parameter(np.array([1.0, -2.0]))
    >>> optimizer = sp.AdamW([w], lr=0.1, weight_decay=0.5)
    >>> w.grad = np.zeros(2)
    >>> optimizer.step()
    >>> w.data
    array([ 0.95, -1.9 ])
    """

    _decoupled = True

    def __init__(
        self,
        params,
        lr: float = 1e-3,
        betas=(0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        amsgrad: bool = False,
        maximize: bool = False,
    ):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize)
