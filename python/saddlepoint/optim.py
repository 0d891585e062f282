"""Optimizers: one fused Rust update per parameter, in place on ``Parameter.data``.

The object API is PyTorch's: ``param_groups`` (each a dict with its own hyperparameters),
``step()``, ``zero_grad()``, lazily created per-parameter ``state``, and
``state_dict()``/``load_state_dict()`` that round-trip exactly. The formulas are PyTorch's
(``torch.optim``); each docstring also gives the course's form and where the two differ.
"""

from __future__ import annotations

import math
from typing import Callable, Iterable, Optional

import numpy as np

from . import _core
from .layers import Parameter


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


def _number(value) -> bool:
    return isinstance(value, (int, float, np.floating, np.integer)) and not isinstance(value, bool) \
        and math.isfinite(value)


def _check_lr(lr) -> None:
    _check(_number(lr) and lr >= 0, f"lr must be a finite number >= 0, got {lr!r}")


def _check_nonnegative(name: str, value) -> None:
    _check(_number(value) and value >= 0, f"{name} must be a finite number >= 0, got {value!r}")


def _check_unit_interval(name: str, value) -> None:
    _check(_number(value) and 0 <= value < 1, f"{name} must be in [0, 1), got {value!r}")


class Optimizer:
    """Base class: parameter groups, lazily created state, and their (de)serialization.

    Parameters
    ----------
    params : iterable of Parameter, or of dicts ``{"params": [...], **hyperparameters}``
    defaults : dict
        Hyperparameters used by groups that do not set their own.

    Subclasses implement ``_validate(group)``, ``_init_state(param, group)`` and
    ``_update(param, state, group)``.
    """

    def __init__(self, params: Iterable, defaults: dict):
        self.defaults = dict(defaults)
        self.param_groups: list[dict] = []
        self.state: dict = {}
        params = list(params)
        _check(len(params) > 0, "params must not be empty")
        groups = params if isinstance(params[0], dict) else [{"params": params}]
        for group in groups:
            self.add_param_group(group)

    def add_param_group(self, group: dict) -> None:
        """Adds a group of parameters with its own hyperparameters (others from the defaults)."""
        params = group["params"]
        params = [params] if isinstance(params, Parameter) else list(params)
        for i, p in enumerate(params):
            if not isinstance(p, Parameter):
                raise TypeError(f"params[{i}] must be a saddlepoint Parameter, got {type(p).__name__}")
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        _check(not any(id(p) in seen for p in params),
               "a parameter appears in more than one parameter group")
        full = {**self.defaults, **group, "params": params}
        _check_lr(full.get("lr"))
        self._validate(full)
        self.param_groups.append(full)

    def _validate(self, group: dict) -> None:
        """Raises ValueError for a hyperparameter out of range."""

    def _init_state(self, param: Parameter, group: dict) -> dict:
        return {}

    def _update(self, param: Parameter, state: dict, group: dict) -> None:
        raise NotImplementedError

    def zero_grad(self) -> None:
        """Sets every parameter's gradient to zero."""
        for group in self.param_groups:
            for p in group["params"]:
                p.zero_grad()

    def step(self, closure: Optional[Callable[[], float]] = None):
        """Updates every parameter from its gradient. ``closure``, if given, is called first
        (it should recompute the loss and gradients) and its loss is returned."""
        loss = closure() if closure is not None else None
        for group in self.param_groups:
            for p in group["params"]:
                state = self.state.get(p)
                if state is None:
                    state = self.state[p] = self._init_state(p, group)
                self._update(p, state, group)
        return loss

    # --- state -------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """``{"state": {index: {...}}, "param_groups": [...]}`` with parameters numbered in
        group order, as PyTorch; arrays are copies."""
        index = {}
        groups = []
        for group in self.param_groups:
            ids = []
            for p in group["params"]:
                index[p] = len(index)
                ids.append(index[p])
            groups.append({**{k: v for k, v in group.items() if k != "params"}, "params": ids})
        state = {
            index[p]: {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in s.items()}
            for p, s in self.state.items() if p in index
        }
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict) -> None:
        """Restores hyperparameters and state saved by :meth:`state_dict`.

        Everything is checked before anything changes; arrays are copied in the parameters'
        dtype, so a resumed run continues bit-identically.
        """
        groups = state_dict["param_groups"]
        _check(len(groups) == len(self.param_groups),
               f"state_dict has {len(groups)} parameter groups, the optimizer {len(self.param_groups)}")
        params = {}
        for i, (saved, own) in enumerate(zip(groups, self.param_groups)):
            _check(len(saved["params"]) == len(own["params"]),
                   f"parameter group {i} has {len(saved['params'])} parameters in state_dict, "
                   f"{len(own['params'])} in the optimizer")
            params.update(zip(saved["params"], own["params"]))
        new_state = {}
        for key, saved_state in state_dict["state"].items():
            _check(key in params, f"state_dict holds state for unknown parameter {key!r}")
            p = params[key]
            restored = {}
            for name, value in saved_state.items():
                if isinstance(value, np.ndarray) or hasattr(value, "__array__"):
                    value = np.asarray(value)
                    _check(value.shape == p.shape,
                           f"state[{key!r}][{name!r}] must have shape {p.shape}, got {value.shape}")
                    value = np.array(value, dtype=p.dtype, order="C", copy=True)
                restored[name] = value
            new_state[p] = restored
        for saved, own in zip(groups, self.param_groups):
            own.update({k: v for k, v in saved.items() if k != "params"})
        self.state = new_state

    def __repr__(self) -> str:
        hyper = ", ".join(f"{k}={v}" for k, v in self.defaults.items())
        return f"{type(self).__name__}({hyper})"


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
    """

    def __init__(self, params, lr: float = 1e-3, momentum: float = 0.0, dampening: float = 0.0,
                 nesterov: bool = False, weight_decay: float = 0.0, maximize: bool = False):
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening,
                                      nesterov=nesterov, weight_decay=weight_decay,
                                      maximize=maximize))

    def _validate(self, group):
        _check_unit_interval("momentum", group["momentum"])
        _check_unit_interval("dampening", group["dampening"])
        _check_nonnegative("weight_decay", group["weight_decay"])
        _check(not group["nesterov"] or (group["momentum"] > 0 and group["dampening"] == 0),
               f"nesterov needs momentum > 0 and dampening = 0, got momentum={group['momentum']}, "
               f"dampening={group['dampening']}")

    def _update(self, p, state, group):
        buffer = None
        first_step = False
        if group["momentum"] != 0:
            buffer = state.get("momentum_buffer")
            if buffer is None:
                buffer = state["momentum_buffer"] = np.zeros_like(p.data)
                first_step = True
        _core.sgd_step(p.data, p.grad, buffer, lr=float(group["lr"]),
                       momentum=float(group["momentum"]), dampening=float(group["dampening"]),
                       nesterov=bool(group["nesterov"]), weight_decay=float(group["weight_decay"]),
                       maximize=bool(group["maximize"]), first_step=first_step)


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
    """

    def __init__(self, params, lr: float = 1e-2, lr_decay: float = 0.0, weight_decay: float = 0.0,
                 initial_accumulator_value: float = 0.0, eps: float = 1e-10,
                 maximize: bool = False):
        super().__init__(params, dict(lr=lr, lr_decay=lr_decay, weight_decay=weight_decay,
                                      initial_accumulator_value=initial_accumulator_value,
                                      eps=eps, maximize=maximize))

    def _validate(self, group):
        for name in ("lr_decay", "weight_decay", "initial_accumulator_value", "eps"):
            _check_nonnegative(name, group[name])

    def _init_state(self, p, group):
        return {"step": 0, "sum": np.full_like(p.data, group["initial_accumulator_value"])}

    def _update(self, p, state, group):
        state["step"] += 1
        clr = group["lr"] / (1 + (state["step"] - 1) * group["lr_decay"])
        _core.adagrad_step(p.data, p.grad, state["sum"], clr=float(clr), eps=float(group["eps"]),
                           weight_decay=float(group["weight_decay"]),
                           maximize=bool(group["maximize"]))


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
    """

    def __init__(self, params, lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8,
                 weight_decay: float = 0.0, momentum: float = 0.0, centered: bool = False,
                 maximize: bool = False):
        super().__init__(params, dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay,
                                      momentum=momentum, centered=centered, maximize=maximize))

    def _validate(self, group):
        _check_unit_interval("alpha", group["alpha"])
        _check_unit_interval("momentum", group["momentum"])
        _check_nonnegative("eps", group["eps"])
        _check_nonnegative("weight_decay", group["weight_decay"])

    def _init_state(self, p, group):
        state = {"step": 0, "square_avg": np.zeros_like(p.data)}
        if group["momentum"] > 0:
            state["momentum_buffer"] = np.zeros_like(p.data)
        if group["centered"]:
            state["grad_avg"] = np.zeros_like(p.data)
        return state

    def _update(self, p, state, group):
        state["step"] += 1
        if group["momentum"] > 0 and "momentum_buffer" not in state:
            state["momentum_buffer"] = np.zeros_like(p.data)
        if group["centered"] and "grad_avg" not in state:
            state["grad_avg"] = np.zeros_like(p.data)
        _core.rmsprop_step(
            p.data, p.grad, state["square_avg"],
            state["grad_avg"] if group["centered"] else None,
            state["momentum_buffer"] if group["momentum"] > 0 else None,
            lr=float(group["lr"]), alpha=float(group["alpha"]), eps=float(group["eps"]),
            weight_decay=float(group["weight_decay"]), momentum=float(group["momentum"]),
            maximize=bool(group["maximize"]))


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
    """

    _decoupled = False

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, amsgrad: bool = False, maximize: bool = False):
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps,
                                      weight_decay=weight_decay, amsgrad=amsgrad,
                                      maximize=maximize))

    def _validate(self, group):
        betas = group["betas"]
        _check(len(betas) == 2, f"betas must be a pair (beta1, beta2), got {betas!r}")
        _check_unit_interval("betas[0]", betas[0])
        _check_unit_interval("betas[1]", betas[1])
        _check_nonnegative("eps", group["eps"])
        _check_nonnegative("weight_decay", group["weight_decay"])

    def _init_state(self, p, group):
        state = {"step": 0, "exp_avg": np.zeros_like(p.data), "exp_avg_sq": np.zeros_like(p.data)}
        if group["amsgrad"]:
            state["max_exp_avg_sq"] = np.zeros_like(p.data)
        return state

    def _update(self, p, state, group):
        state["step"] += 1
        if group["amsgrad"] and "max_exp_avg_sq" not in state:
            state["max_exp_avg_sq"] = np.zeros_like(p.data)
        beta1, beta2 = (float(b) for b in group["betas"])
        t = state["step"]
        lr = float(group["lr"])
        _core.adam_step(
            p.data, p.grad, state["exp_avg"], state["exp_avg_sq"],
            state["max_exp_avg_sq"] if group["amsgrad"] else None,
            lr=lr, beta1=beta1, beta2=beta2, eps=float(group["eps"]),
            weight_decay=float(group["weight_decay"]), decoupled_weight_decay=self._decoupled,
            maximize=bool(group["maximize"]), step_size=lr / (1 - beta1**t),
            bias_correction2_sqrt=math.sqrt(1 - beta2**t))


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter): before the Adam step,
    ``θ = θ − lr·weight_decay·θ``; the gradient itself is not changed. Default
    ``weight_decay=1e-2``, as PyTorch. See :class:`Adam` for the rest."""

    _decoupled = True

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2, amsgrad: bool = False, maximize: bool = False):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize)
