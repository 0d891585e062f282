"""Optimizers: fused Rust updates applied in place to ``Parameter.data``.

The object API is PyTorch's: ``param_groups`` (each a dict with its own hyperparameters),
``step()``, ``zero_grad()``.
"""

from __future__ import annotations

import math
from typing import Iterable

from . import _core
from .layers import Parameter


class Optimizer:
    """Base class: holds the parameter groups; subclasses implement :meth:`step`.

    Parameters
    ----------
    params : iterable of Parameter, or of dicts ``{"params": [...], **hyperparameters}``
    defaults : dict
        Hyperparameters used by groups that do not set their own.
    """

    def __init__(self, params: Iterable, defaults: dict):
        self.defaults = dict(defaults)
        self.param_groups: list[dict] = []
        self.state: dict = {}
        params = list(params)
        if not params:
            raise ValueError("params must not be empty")
        groups = params if isinstance(params[0], dict) else [{"params": params}]
        for group in groups:
            self.add_param_group(group)

    def add_param_group(self, group: dict) -> None:
        params = list(group["params"])
        for i, p in enumerate(params):
            if not isinstance(p, Parameter):
                raise TypeError(f"params[{i}] must be a saddlepoint Parameter, got {type(p).__name__}")
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        if any(id(p) in seen for p in params):
            raise ValueError("a parameter appears in more than one parameter group")
        full = {**self.defaults, **group, "params": params}
        self._check_hyperparameters(full)
        self.param_groups.append(full)

    def _check_hyperparameters(self, group: dict) -> None:
        lr = group.get("lr")
        if lr is None or not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr >= 0):
            raise ValueError(f"lr must be a finite number >= 0, got {lr!r}")

    def zero_grad(self) -> None:
        """Sets every parameter's gradient to zero."""
        for group in self.param_groups:
            for p in group["params"]:
                p.zero_grad()

    def step(self) -> None:
        raise NotImplementedError

    def __repr__(self) -> str:
        hyper = ", ".join(f"{k}={v}" for k, v in self.defaults.items())
        return f"{type(self).__name__}({hyper})"


class SGD(Optimizer):
    """Gradient descent: ``theta <- theta - lr * g`` (the course's ``theta^{t+1} = theta^t - eta g``).

    Parameters
    ----------
    params : iterable of Parameter or parameter groups
    lr : float
        Learning rate (``eta`` in the course), >= 0.
    """

    def __init__(self, params, lr: float):
        super().__init__(params, {"lr": lr})

    def step(self) -> None:
        for group in self.param_groups:
            lr = float(group["lr"])
            for p in group["params"]:
                _core.sgd_step(p.data, p.grad, lr)
