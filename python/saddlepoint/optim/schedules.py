"""Learning-rate schedules on top of any optimizer.

A scheduler computes the rate of every parameter group from its step count
(``last_epoch``, counting calls to :meth:`LRScheduler.step`) and writes it into the groups'
``"lr"``. Call ``step()`` once per batch or once per epoch, whichever the schedule is counted in.
Each scheduler overrides one method, :meth:`LRScheduler.get_lr`, which is a closed-form
function of ``last_epoch``. The course's two ideas are here: learning-rate decay (``StepLR``,
``ExponentialLR``, ``CosineAnnealingLR``, ...) and warmup (``LinearWarmup``, ``InverseSqrtLR``),
and their combination (``SequentialLR``, ``OneCycleLR``).
"""

from __future__ import annotations

import bisect
import copy
import math
import numbers
from typing import Mapping

from .optimizers import MAX_STEP, SCHEDULER_MOMENTA, SCHEDULER_RATES, Optimizer

# Validators: ``check(name, value)`` returns the value (normalized) or raises ValueError. The
# constructors and load_state_dict use the same ones, so a file cannot hold what a constructor
# would refuse.


def _is_int(value) -> bool:
    """A Python or NumPy integer, not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_number(value) -> bool:
    """A Python or NumPy integer or float, not a bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _positive_int(name: str, value) -> int:
    if not _is_int(value) or not 1 <= value <= MAX_STEP:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _count(name: str, value) -> int:
    if not _is_int(value) or not 0 <= value <= MAX_STEP:
        raise ValueError(f"{name} must be an integer >= 0, got {value!r}")
    return int(value)


def _epoch(name: str, value) -> int:
    if not _is_int(value) or not -1 <= value <= MAX_STEP:
        raise ValueError(f"{name} must be an integer >= -1, got {value!r}")
    return int(value)


def _finite(value) -> bool:
    try:
        return _is_number(value) and math.isfinite(value)
    except OverflowError:  # an int too large for a float
        return False


def _positive(name: str, value) -> float:
    if not (_finite(value) and value > 0):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return float(value)


def _nonnegative(name: str, value) -> float:
    if not (_finite(value) and value >= 0):
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return float(value)


def _factor(name: str, value) -> float:
    if not (_finite(value) and 0 < value <= 1):
        raise ValueError(f"{name} must be in (0, 1], got {value!r}")
    return float(value)


def _open_unit(name: str, value) -> float:
    if not (_finite(value) and 0 < value < 1):
        raise ValueError(f"{name} must be in (0, 1), got {value!r}")
    return float(value)


def _momentum(name: str, value) -> float:
    if not (_finite(value) and 0 <= value < 1):
        raise ValueError(f"{name} must be in [0, 1), got {value!r}")
    return float(value)


def _flag(name: str, value) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be True or False, got {value!r}")
    return value


def _increasing_ints(name: str, value) -> list[int]:
    if not isinstance(value, (list, tuple)):
        raise ValueError(f"{name} must be a list of positive integers, got {value!r}")
    items = [_positive_int(f"{name}[{i}]", m) for i, m in enumerate(value)]
    if items != sorted(items):
        raise ValueError(f"{name} must be increasing, got {items}")
    return items


def _choice(*options):
    def check(name: str, value):
        if value not in options or not isinstance(value, str):
            raise ValueError(f"{name} must be one of {list(options)}, got {value!r}")
        return value
    return check


def _per_group(check, groups: int):
    """A validator of a list with one value per parameter group."""
    def check_list(name: str, value) -> list:
        if not isinstance(value, (list, tuple)) or len(value) != groups:
            raise ValueError(f"{name} must be a list of {groups} values (one per parameter group), "
                             f"got {value!r}")
        return [check(f"{name}[{i}]", v) for i, v in enumerate(value)]
    return check_list


class _State:
    """``state_dict``/``load_state_dict`` over the fields that ``_fields`` names, each with its
    validator. A scheduler's state is those fields and nothing else: loading never sets another
    attribute (a file cannot replace a method) and checks every field before setting any."""

    def _fields(self) -> dict:
        raise NotImplementedError

    def _check_fields(self, values: dict) -> None:
        """Checks between fields (after each passed its own validator)."""

    def state_dict(self) -> dict:
        """The scheduler's fields (its optimizer has its own ``state_dict``)."""
        return {name: copy.deepcopy(getattr(self, name)) for name in self._fields()}

    def load_state_dict(self, state_dict: dict) -> None:
        """Restores the fields saved by :meth:`state_dict`; ValueError, and nothing changes,
        if one is missing, unknown or invalid."""
        self._stage_state_dict(state_dict)()

    def _stage_state_dict(self, state_dict: dict):
        """Checks ``state_dict`` (ValueError) and returns a function that installs it."""
        values = self._checked_fields(state_dict)

        def commit():
            for name, value in values.items():
                setattr(self, name, value)
        return commit

    def _checked_fields(self, state_dict) -> dict:
        where = f"{type(self).__name__} state_dict"
        if not isinstance(state_dict, Mapping):
            raise ValueError(f"{where} must be a dict, got {type(state_dict).__name__}")
        fields = self._fields()
        unknown = sorted(str(k) for k in state_dict if k not in fields)
        missing = [k for k in fields if k not in state_dict]
        if unknown or missing:
            raise ValueError(f"{where} does not fit: unknown fields {unknown}, missing {missing}")
        try:
            values = {name: check(name, state_dict[name]) for name, check in fields.items()}
            self._check_fields(values)
        except ValueError as e:
            raise ValueError(f"{where}: {e}") from None
        return values


def _check_optimizer(optimizer) -> None:
    if not isinstance(optimizer, Optimizer):
        raise TypeError(f"optimizer must be a saddlepoint Optimizer, got {type(optimizer).__name__}")


class LRScheduler(_State):
    """Base class. Subclasses implement :meth:`get_lr` from ``self.last_epoch`` and
    ``self.base_lrs`` (each group's rate when the scheduler was created).

    Creating a scheduler sets the rates for step 0. ``state_dict`` holds ``base_lrs``,
    ``last_epoch`` and the last rates; a subclass with settings of its own adds them, each with
    its validator, in ``_fields`` (see :class:`StepLR`).
    """

    def __init__(self, optimizer: Optimizer, last_epoch: int = -1):
        _check_optimizer(optimizer)
        last_epoch = _epoch("last_epoch", last_epoch)  # every check before the groups change
        self.optimizer = optimizer
        for group in optimizer.param_groups:
            group.setdefault("initial_lr", group["lr"])
        self.base_lrs = [group["initial_lr"] for group in optimizer.param_groups]
        self.last_epoch = last_epoch
        self.step()

    def _fields(self) -> dict:
        rates = _per_group(_nonnegative, len(self.optimizer.param_groups))
        return {"base_lrs": rates, "last_epoch": _epoch, "_last_lr": rates}

    def get_lr(self) -> list[float]:
        """The rates of the groups at step ``self.last_epoch``."""
        raise NotImplementedError

    def step(self) -> None:
        """Advances one step and writes the new rates into the optimizer's groups. A rate that
        leaves the float range (a growing schedule run too long) is a ValueError, and then
        nothing changes."""
        self.last_epoch += 1
        try:
            lrs = self.get_lr()
            finite = all(math.isfinite(lr) for lr in lrs)
        except OverflowError:
            finite = False
        if not finite:
            self.last_epoch -= 1
            raise ValueError(f"{type(self).__name__}'s learning rate leaves the float range at "
                             f"step {self.last_epoch + 1}; check its factors (e.g. gamma <= 1)")
        self._write(lrs)

    def _write(self, lrs) -> None:
        for group, lr in zip(self.optimizer.param_groups, lrs):
            group["lr"] = lr
        self._last_lr = list(lrs)

    def get_last_lr(self) -> list[float]:
        return list(self._last_lr)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(last_epoch={self.last_epoch}, lr={self._last_lr})"


class StepLR(LRScheduler):
    """``lr = base · gamma^(t // step_size)``: decay by ``gamma`` every ``step_size`` steps."""

    def __init__(self, optimizer, step_size: int, gamma: float = 0.1, last_epoch: int = -1):
        self.step_size = _positive_int("step_size", step_size)
        self.gamma = _positive("gamma", gamma)
        super().__init__(optimizer, last_epoch)

    def _fields(self):
        return {**super()._fields(), "step_size": _positive_int, "gamma": _positive}

    def get_lr(self):
        return [base * self.gamma ** (self.last_epoch // self.step_size) for base in self.base_lrs]


class MultiStepLR(LRScheduler):
    """``lr = base · gamma^k`` where ``k`` is the number of milestones ``<= t``."""

    def __init__(self, optimizer, milestones, gamma: float = 0.1, last_epoch: int = -1):
        self.milestones = sorted(_positive_int(f"milestones[{i}]", m) for i, m in enumerate(milestones))
        self.gamma = _positive("gamma", gamma)
        super().__init__(optimizer, last_epoch)

    def _fields(self):
        return {**super()._fields(), "milestones": _increasing_ints, "gamma": _positive}

    def get_lr(self):
        k = bisect.bisect_right(self.milestones, self.last_epoch)
        return [base * self.gamma**k for base in self.base_lrs]


class ExponentialLR(LRScheduler):
    """``lr = base · gamma^t``."""

    def __init__(self, optimizer, gamma: float, last_epoch: int = -1):
        self.gamma = _positive("gamma", gamma)
        super().__init__(optimizer, last_epoch)

    def _fields(self):
        return {**super()._fields(), "gamma": _positive}

    def get_lr(self):
        return [base * self.gamma**self.last_epoch for base in self.base_lrs]


class CosineAnnealingLR(LRScheduler):
    """``lr = eta_min + (base − eta_min) · (1 + cos(π·t/T_max)) / 2`` (PyTorch's closed form)."""

    def __init__(self, optimizer, T_max: int, eta_min: float = 0.0, last_epoch: int = -1):
        self.T_max = _positive_int("T_max", T_max)
        self.eta_min = _nonnegative("eta_min", eta_min)
        super().__init__(optimizer, last_epoch)

    def _fields(self):
        return {**super()._fields(), "T_max": _positive_int, "eta_min": _nonnegative}

    def get_lr(self):
        cosine = (1 + math.cos(math.pi * self.last_epoch / self.T_max)) / 2
        return [self.eta_min + (base - self.eta_min) * cosine for base in self.base_lrs]


class LinearLR(LRScheduler):
    """``lr = base · (start_factor + (end_factor − start_factor) · min(t, total_iters)/total_iters)``."""

    def __init__(self, optimizer, start_factor: float = 1.0 / 3, end_factor: float = 1.0,
                 total_iters: int = 5, last_epoch: int = -1):
        self.start_factor = _factor("start_factor", start_factor)
        self.end_factor = _factor("end_factor", end_factor)
        self.total_iters = _positive_int("total_iters", total_iters)
        super().__init__(optimizer, last_epoch)

    def _fields(self):
        return {**super()._fields(), "start_factor": _factor, "end_factor": _factor,
                "total_iters": _positive_int}

    def get_lr(self):
        progress = min(self.last_epoch, self.total_iters) / self.total_iters
        factor = self.start_factor + (self.end_factor - self.start_factor) * progress
        return [base * factor for base in self.base_lrs]


class LinearWarmup(LinearLR):
    """Warmup: the rate grows linearly from ``start_factor · base`` at step 0 to ``base`` at
    step ``warmup_steps`` and stays there. Follow it with a decay through :class:`SequentialLR`.
    """

    def __init__(self, optimizer, warmup_steps: int, start_factor: float = 0.1,
                 last_epoch: int = -1):
        super().__init__(optimizer, start_factor, 1.0, warmup_steps, last_epoch)


class InverseSqrtLR(LRScheduler):
    """The Transformer's schedule: linear warmup for ``warmup_steps``, then decay as ``1/√step``.

    With ``s = t + 1``: ``lr = base · min(s / warmup_steps, √(warmup_steps / s))``, which peaks
    at ``base`` when ``s = warmup_steps``. "Attention Is All You Need" uses
    ``d_model^-0.5 · min(s^-0.5, s · warmup^-1.5)``, i.e. ``base = (d_model · warmup)^-0.5``.
    """

    def __init__(self, optimizer, warmup_steps: int, last_epoch: int = -1):
        self.warmup_steps = _positive_int("warmup_steps", warmup_steps)
        super().__init__(optimizer, last_epoch)

    def _fields(self):
        return {**super()._fields(), "warmup_steps": _positive_int}

    def get_lr(self):
        s = self.last_epoch + 1
        factor = min(s / self.warmup_steps, math.sqrt(self.warmup_steps / s))
        return [base * factor for base in self.base_lrs]


class SequentialLR(LRScheduler):
    """Runs ``schedulers[0]`` until ``milestones[0]``, then ``schedulers[1]`` (counting its steps
    from 0), and so on: e.g. a warmup followed by a cosine decay.

    The schedulers must be built on the same optimizer, before this one.
    """

    def __init__(self, optimizer, schedulers, milestones, last_epoch: int = -1):
        _check_optimizer(optimizer)
        schedulers = _check_schedulers(optimizer, schedulers)
        if not isinstance(milestones, (list, tuple)) or len(milestones) != len(schedulers) - 1:
            raise ValueError(f"milestones must be a list of {len(schedulers) - 1} steps (one fewer "
                             f"than schedulers), got {milestones!r}")
        self.schedulers, self.milestones = schedulers, _increasing_ints("milestones", milestones)
        _epoch("last_epoch", last_epoch)  # every check before the groups change
        for group, base in zip(optimizer.param_groups, schedulers[0].base_lrs):
            group["lr"] = base
        super().__init__(optimizer, last_epoch)

    def _fields(self):
        return {**super()._fields(), "milestones": _increasing_ints}

    def _check_fields(self, values):
        if len(values["milestones"]) != len(self.schedulers) - 1:
            raise ValueError(f"milestones must have {len(self.schedulers) - 1} entries, "
                             f"got {values['milestones']}")

    def get_lr(self):
        i = bisect.bisect_right(self.milestones, self.last_epoch)
        scheduler = self.schedulers[i]
        scheduler.last_epoch = self.last_epoch - (self.milestones[i - 1] if i > 0 else 0)
        return scheduler.get_lr()

    def state_dict(self):
        return {**super().state_dict(), "schedulers": [s.state_dict() for s in self.schedulers]}

    def _stage_state_dict(self, state_dict):
        where = "SequentialLR state_dict"
        if not isinstance(state_dict, Mapping) or "schedulers" not in state_dict:
            raise ValueError(f"{where} must be a dict with 'schedulers'")
        saved = state_dict["schedulers"]
        if not isinstance(saved, (list, tuple)) or len(saved) != len(self.schedulers):
            raise ValueError(f"{where}['schedulers'] must list the states of "
                             f"{len(self.schedulers)} schedulers, got {saved!r}")
        commits = []
        for i, (scheduler, state) in enumerate(zip(self.schedulers, saved)):
            try:
                commits.append(scheduler._stage_state_dict(state))
            except ValueError as e:
                raise ValueError(f"{where}['schedulers'][{i}]: {e}") from None
        commits.append(super()._stage_state_dict(
            {k: v for k, v in state_dict.items() if k != "schedulers"}))

        def commit():
            for install in commits:
                install()
        return commit


def _check_schedulers(optimizer, schedulers) -> list:
    """The schedulers of a SequentialLR: a non-empty list of LRSchedulers on ``optimizer``."""
    if not isinstance(schedulers, (list, tuple)) or not schedulers:
        raise ValueError(f"schedulers must be a non-empty list of schedulers, got {schedulers!r}")
    for i, scheduler in enumerate(schedulers):
        if not isinstance(scheduler, LRScheduler):
            raise TypeError(f"schedulers[{i}] must be an LRScheduler, got {type(scheduler).__name__}")
        if scheduler.optimizer is not optimizer:
            raise ValueError(f"schedulers[{i}] must use the SequentialLR's optimizer")
    return list(schedulers)


def _one_cycle_phases(name: str, value) -> list[tuple]:
    """2 or 3 phases ``(end_step, lr_from, lr_to, momentum_from, momentum_to)`` whose end steps
    increase from step 0 (each phase divides by its length)."""
    if not isinstance(value, (list, tuple)) or len(value) not in (2, 3):
        raise ValueError(f"{name} must be a list of 2 or 3 phases, got {value!r}")
    phases, previous_end = [], 0.0
    for i, phase in enumerate(value):
        if (not isinstance(phase, (list, tuple)) or len(phase) != 5 or not _finite(phase[0])
                or phase[1] not in SCHEDULER_RATES or phase[2] not in SCHEDULER_RATES
                or phase[3] not in SCHEDULER_MOMENTA or phase[4] not in SCHEDULER_MOMENTA):
            raise ValueError(f"{name}[{i}] must be (end_step, lr_from, lr_to, momentum_from, "
                             f"momentum_to) with rates from {list(SCHEDULER_RATES)} and momenta "
                             f"from {list(SCHEDULER_MOMENTA)}, got {phase!r}")
        end = float(phase[0])
        if end == previous_end or (i > 0 and end < previous_end):
            raise ValueError(f"{name} must have increasing end steps, none at step 0, got "
                             f"{[p[0] for p in value]}")
        phases.append((end, *phase[1:]))
        previous_end = end
    return phases


def _one_cycle_max_lrs(max_lr, groups: int) -> list[float]:
    """``max_lr``: one number for every group or a list of one per group, each checked."""
    if isinstance(max_lr, (list, tuple)):
        return _per_group(_positive, groups)("max_lr", max_lr)
    return [_positive("max_lr", max_lr)] * groups


def _check_one_cycle_groups(groups, cycle_momentum: bool) -> None:
    """The phases read these keys of every group: the optimizer must have them."""
    needed = set(SCHEDULER_RATES) | (set(SCHEDULER_MOMENTA) if cycle_momentum else set())
    for i, group in enumerate(groups):
        if not needed <= set(group):
            raise ValueError(f"parameter group {i} lacks {sorted(needed - set(group))}, "
                             f"which OneCycleLR needs")


class OneCycleLR(LRScheduler):
    """The 1cycle policy (Smith & Topin), as PyTorch's ``OneCycleLR``: warm up from
    ``max_lr / div_factor`` to ``max_lr`` over the first ``pct_start`` of ``total_steps``, then
    anneal to ``max_lr / (div_factor · final_div_factor)``. With ``cycle_momentum`` the momentum
    (or Adam's β1) moves the opposite way between ``max_momentum`` and ``base_momentum``.
    Meant to be stepped once per batch; stepping past ``total_steps`` is an error.
    """

    def __init__(self, optimizer, max_lr, total_steps: int, pct_start: float = 0.3,
                 anneal_strategy: str = "cos", cycle_momentum: bool = True,
                 base_momentum: float = 0.85, max_momentum: float = 0.95,
                 div_factor: float = 25.0, final_div_factor: float = 1e4,
                 three_phase: bool = False, last_epoch: int = -1):
        _check_optimizer(optimizer)
        self.total_steps = _positive_int("total_steps", total_steps)
        pct_start = _open_unit("pct_start", pct_start)
        self.anneal_strategy = _choice("cos", "linear")("anneal_strategy", anneal_strategy)
        div_factor = _positive("div_factor", div_factor)
        final_div_factor = _positive("final_div_factor", final_div_factor)
        groups = optimizer.param_groups
        max_lrs = _one_cycle_max_lrs(max_lr, len(groups))
        last_epoch = _epoch("last_epoch", last_epoch)
        if last_epoch >= self.total_steps:
            raise ValueError(f"last_epoch must be below total_steps={self.total_steps}, got {last_epoch}")
        self.cycle_momentum = bool(cycle_momentum)
        self.use_betas = "betas" in optimizer.defaults
        if self.cycle_momentum and not self.use_betas and "momentum" not in optimizer.defaults:
            raise ValueError("cycle_momentum needs an optimizer with 'momentum' or 'betas'")
        if self.cycle_momentum:
            base_momentum = _momentum("base_momentum", base_momentum)
            max_momentum = _momentum("max_momentum", max_momentum)
        end = float(pct_start * self.total_steps)
        if three_phase:
            phases = [(end - 1, "initial_lr", "max_lr", "max_momentum", "base_momentum"),
                      (2 * end - 2, "max_lr", "initial_lr", "base_momentum", "max_momentum"),
                      (self.total_steps - 1, "initial_lr", "min_lr", "max_momentum", "max_momentum")]
        else:
            phases = [(end - 1, "initial_lr", "max_lr", "max_momentum", "base_momentum"),
                      (self.total_steps - 1, "max_lr", "min_lr", "base_momentum", "max_momentum")]
        try:
            self.phases = _one_cycle_phases("phases", phases)
        except ValueError:
            raise ValueError(f"pct_start={pct_start} and total_steps={total_steps} leave a phase of "
                             f"no steps; use more steps or another pct_start") from None
        if last_epoch != -1:  # resuming: the groups must hold the cycle's rates already
            _check_one_cycle_groups(groups, self.cycle_momentum)
        else:  # every check is done: now the groups change
            for group, peak in zip(groups, max_lrs):
                group.update(initial_lr=peak / div_factor, max_lr=peak,
                             min_lr=peak / div_factor / final_div_factor, lr=peak / div_factor)
                if self.cycle_momentum:
                    group.update(base_momentum=base_momentum, max_momentum=max_momentum)
        super().__init__(optimizer, last_epoch)

    def _fields(self):
        return {**super()._fields(), "total_steps": _positive_int,
                "anneal_strategy": _choice("cos", "linear"), "cycle_momentum": _flag,
                "use_betas": _flag, "phases": _one_cycle_phases}

    def _check_fields(self, values):
        if values["use_betas"] != ("betas" in self.optimizer.defaults):
            raise ValueError(f"use_betas must be {not values['use_betas']} for {type(self.optimizer).__name__}")
        if values["phases"][-1][0] != values["total_steps"] - 1:
            raise ValueError(f"the last phase must end at total_steps - 1 = {values['total_steps'] - 1}, "
                             f"got {values['phases'][-1][0]}")
        if values["last_epoch"] > values["total_steps"]:
            raise ValueError(f"last_epoch must be at most total_steps = {values['total_steps']}, "
                             f"got {values['last_epoch']}")
        _check_one_cycle_groups(self.optimizer.param_groups, values["cycle_momentum"])

    def _anneal(self, start: float, end: float, pct: float) -> float:
        if self.anneal_strategy == "cos":
            return end + (start - end) / 2 * (math.cos(math.pi * pct) + 1)
        return (end - start) * pct + start

    def get_lr(self):
        t = self.last_epoch
        if t > self.total_steps:
            raise ValueError(f"OneCycleLR stepped {t} times, more than total_steps={self.total_steps}")
        lrs = []
        for group in self.optimizer.param_groups:
            start_step = 0.0
            for i, (end_step, lr0, lr1, m0, m1) in enumerate(self.phases):
                if t <= end_step or i == len(self.phases) - 1:
                    pct = (t - start_step) / (end_step - start_step)
                    lrs.append(self._anneal(group[lr0], group[lr1], pct))
                    if self.cycle_momentum:
                        momentum = self._anneal(group[m0], group[m1], pct)
                        if self.use_betas:
                            group["betas"] = (momentum, *group["betas"][1:])
                        else:
                            group["momentum"] = momentum
                    break
                start_step = end_step
        return lrs


class ReduceLROnPlateau(_State):
    """Multiplies the rates by ``factor`` when a metric has not improved for ``patience``
    steps, as PyTorch's ``ReduceLROnPlateau``: ``step(metric)`` once per evaluation.

    Improvement means ``metric < best·(1 − threshold)`` (mode "min", threshold_mode "rel"),
    ``metric < best − threshold`` ("abs"), and the mirror images for mode "max". After a
    reduction, ``cooldown`` steps pass before bad steps count again; no rate goes below
    ``min_lr``, and changes smaller than ``eps`` are skipped.
    """

    def __init__(self, optimizer: Optimizer, mode: str = "min", factor: float = 0.1,
                 patience: int = 10, threshold: float = 1e-4, threshold_mode: str = "rel",
                 cooldown: int = 0, min_lr=0.0, eps: float = 1e-8):
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"optimizer must be a saddlepoint Optimizer, got {type(optimizer).__name__}")
        self.optimizer = optimizer
        groups = optimizer.param_groups
        min_lrs = list(min_lr) if isinstance(min_lr, (list, tuple)) else [min_lr] * len(groups)
        fields = self._fields()
        self.mode = fields["mode"]("mode", mode)
        self.threshold_mode = fields["threshold_mode"]("threshold_mode", threshold_mode)
        self.factor = fields["factor"]("factor", factor)
        self.patience = fields["patience"]("patience", patience)
        self.threshold = fields["threshold"]("threshold", threshold)
        self.cooldown = fields["cooldown"]("cooldown", cooldown)
        self.min_lrs = fields["min_lrs"]("min_lr", min_lrs)
        self.eps = fields["eps"]("eps", eps)
        self.best = math.inf if mode == "min" else -math.inf
        self.num_bad_epochs = 0
        self.cooldown_counter = 0
        self.last_epoch = 0
        self._last_lr = [group["lr"] for group in groups]

    def _fields(self):
        rates = _per_group(_nonnegative, len(self.optimizer.param_groups))
        return {"mode": _choice("min", "max"), "threshold_mode": _choice("rel", "abs"),
                "factor": _open_unit, "patience": _count, "threshold": _nonnegative,
                "cooldown": _count, "min_lrs": rates, "eps": _nonnegative, "best": _best,
                "num_bad_epochs": _count, "cooldown_counter": _count, "last_epoch": _count,
                "_last_lr": rates}

    def is_better(self, current: float, best: float) -> bool:
        if self.mode == "min":
            bound = best * (1 - self.threshold) if self.threshold_mode == "rel" else best - self.threshold
            return current < bound
        bound = best * (1 + self.threshold) if self.threshold_mode == "rel" else best + self.threshold
        return current > bound

    def step(self, metric: float) -> None:
        current = float(metric)
        self.last_epoch += 1
        if self.is_better(current, self.best):
            self.best, self.num_bad_epochs = current, 0
        else:
            self.num_bad_epochs += 1
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0
        if self.num_bad_epochs > self.patience:
            for group, min_lr in zip(self.optimizer.param_groups, self.min_lrs):
                new_lr = max(group["lr"] * self.factor, min_lr)
                if group["lr"] - new_lr > self.eps:
                    group["lr"] = new_lr
            self.cooldown_counter, self.num_bad_epochs = self.cooldown, 0
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    # Not an LRScheduler (it steps on a metric, not a count), but it reports rates the same way.
    get_last_lr = LRScheduler.get_last_lr


def _best(name: str, value) -> float:
    """The best metric so far: a number, infinite before the first step, never NaN."""
    if not _is_number(value) or value != value or (_is_int(value) and not _finite(value)):
        raise ValueError(f"{name} must be a number (not NaN), got {value!r}")
    return float(value)
