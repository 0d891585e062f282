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
from typing import Mapping

from ..validation import Constraint, Flag, Integer, OneOf, Real, SequenceOf, check_params, is_finite_number
from .optimizers import MAX_STEP, SCHEDULER_MOMENTA, SCHEDULER_RATES, Optimizer

# The constraints of the schedulers' settings (validation.py). The constructors and
# load_state_dict check with the same ones, so a file cannot hold what a constructor would refuse.
POSITIVE_INT = Integer(1, MAX_STEP)
COUNT = Integer(0, MAX_STEP)
EPOCH = Integer(-1, MAX_STEP)
POSITIVE = Real(0, closed="neither")
NONNEGATIVE = Real(0)
FACTOR = Real(0, 1, closed="right")
OPEN_UNIT = Real(0, 1, closed="neither")
MOMENTUM = Real(0, 1, closed="left")
FLAG = Flag()
#: Milestones: increasing steps (a repeated one applies its factor twice, as in PyTorch).
MILESTONES = SequenceOf(POSITIVE_INT, increasing=True, ties=True, as_list=True)
#: The best metric so far: infinite before the first step, never NaN.
BEST = Real(finite=False)


def per_group(item: Constraint, optimizer) -> SequenceOf:
    """A list of one ``item`` per parameter group of ``optimizer``."""
    return SequenceOf(item, length=len(optimizer.param_groups), as_list=True, per="parameter group")


class _State:
    """``state_dict``/``load_state_dict`` over the fields that ``_fields`` names, each with its
    constraint. A scheduler's state is those fields and nothing else: loading never sets another
    attribute (a file cannot replace a method) and checks every field before setting any.

    ``constraints`` is a class's table of its settings' constraints: its constructor checks
    them with :meth:`_set_params` and its ``_fields`` include them, so both check alike.
    """

    constraints: dict[str, Constraint] = {}

    def _fields(self) -> dict[str, Constraint]:
        raise NotImplementedError

    def _set_params(self, **values) -> None:
        """Checks every value against ``constraints`` (all before any is set), then sets them."""
        for name, value in check_params(values, self.constraints).items():
            setattr(self, name, value)

    def _check_fields(self, values: dict) -> None:
        """Checks between fields (after each passed its own validator)."""

    def state_dict(self) -> dict:
        """The scheduler's fields (its optimizer has its own ``state_dict``)."""
        return {name: copy.deepcopy(getattr(self, name)) for name in self._fields()}

    def load_state_dict(self, state_dict: dict) -> None:
        """Restores the fields saved by :meth:`state_dict`; ValueError, and nothing changes,
        if one is missing, unknown or invalid."""
        self.stage_state_dict(state_dict)()

    def stage_state_dict(self, state_dict: dict):
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
            values = {name: constraint.check(name, state_dict[name]) for name, constraint in fields.items()}
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
    ``last_epoch`` and the last rates; a subclass with settings of its own declares them in
    its ``constraints`` table (see :class:`StepLR`).

    Examples
    --------
    A schedule of one's own: halve the rate every step.

    >>> class Halving(sp.LRScheduler):
    ...     def get_lr(self):
    ...         return [base * 0.5 ** self.last_epoch for base in self.base_lrs]
    >>> optimizer = sp.SGD([sp.Parameter(np.zeros(1))], lr=1.0)
    >>> scheduler = Halving(optimizer)
    >>> scheduler.step(); scheduler.step()
    >>> optimizer.param_groups[0]["lr"]
    0.25
    """

    def __init__(self, optimizer: Optimizer, last_epoch: int = -1):
        _check_optimizer(optimizer)
        last_epoch = EPOCH.check("last_epoch", last_epoch)  # every check before the groups change
        self.optimizer = optimizer
        for group in optimizer.param_groups:
            group.setdefault("initial_lr", group["lr"])
        self.base_lrs = [group["initial_lr"] for group in optimizer.param_groups]
        self.last_epoch = last_epoch
        self.step()

    def _fields(self) -> dict:
        rates = per_group(NONNEGATIVE, self.optimizer)
        return {"base_lrs": rates, "last_epoch": EPOCH, "_last_lr": rates, **self.constraints}

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
            raise ValueError(
                f"{type(self).__name__}'s learning rate leaves the float range at "
                f"step {self.last_epoch + 1}; check its factors (e.g. gamma <= 1)"
            )
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
    """``lr = base · gamma^(t // step_size)``: decay by ``gamma`` every ``step_size`` steps.

    Parameters
    ----------
    optimizer : Optimizer
    step_size : int
        Steps (epochs, or batches when stepped per batch) between decays.
    gamma : float
        The factor of each decay.
    last_epoch : int
        The step to resume from; -1 starts a new schedule.

    Examples
    --------
    >>> optimizer = sp.SGD([sp.Parameter(np.zeros(1))], lr=1.0)
    >>> scheduler = sp.StepLR(optimizer, step_size=2, gamma=0.5)
    >>> rates = []
    >>> for epoch in range(5):
    ...     rates.append(optimizer.param_groups[0]["lr"])
    ...     optimizer.step()  # one epoch of training
    ...     scheduler.step()
    >>> rates
    [1.0, 1.0, 0.5, 0.5, 0.25]
    """

    constraints = {"step_size": POSITIVE_INT, "gamma": POSITIVE}
    step_size: int
    gamma: float

    def __init__(self, optimizer, step_size: int, gamma: float = 0.1, last_epoch: int = -1):
        self._set_params(step_size=step_size, gamma=gamma)
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        return [base * self.gamma ** (self.last_epoch // self.step_size) for base in self.base_lrs]


class MultiStepLR(LRScheduler):
    """``lr = base · gamma^k`` where ``k`` is the number of milestones ``<= t``.

    Examples
    --------
    >>> optimizer = sp.SGD([sp.Parameter(np.zeros(1))], lr=1.0, momentum=0.9)
    >>> scheduler = sp.MultiStepLR(optimizer, milestones=[2, 4], gamma=0.1)
    >>> rates = []
    >>> for step in range(6):
    ...     rates.append(round(optimizer.param_groups[0]["lr"], 4))
    ...     scheduler.step()
    >>> rates
    [1.0, 1.0, 0.1, 0.1, 0.01, 0.01]
    """

    constraints = {"milestones": MILESTONES, "gamma": POSITIVE}
    milestones: list[int]
    gamma: float

    def __init__(self, optimizer, milestones, gamma: float = 0.1, last_epoch: int = -1):
        # Given in any order (as PyTorch's); kept sorted.
        milestones = sorted(SequenceOf(POSITIVE_INT).check("milestones", list(milestones)))
        self._set_params(milestones=milestones, gamma=gamma)
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        k = bisect.bisect_right(self.milestones, self.last_epoch)
        return [base * self.gamma**k for base in self.base_lrs]


class ExponentialLR(LRScheduler):
    """``lr = base · gamma^t``.

    Examples
    --------
    >>> optimizer = sp.SGD([sp.Parameter(np.zeros(1))], lr=1.0, momentum=0.9)
    >>> scheduler = sp.ExponentialLR(optimizer, gamma=0.5)
    >>> rates = []
    >>> for step in range(4):
    ...     rates.append(round(optimizer.param_groups[0]["lr"], 4))
    ...     scheduler.step()
    >>> rates
    [1.0, 0.5, 0.25, 0.125]
    """

    constraints = {"gamma": POSITIVE}
    gamma: float

    def __init__(self, optimizer, gamma: float, last_epoch: int = -1):
        self._set_params(gamma=gamma)
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        return [base * self.gamma**self.last_epoch for base in self.base_lrs]


class CosineAnnealingLR(LRScheduler):
    """``lr = eta_min + (base − eta_min) · (1 + cos(π·t/T_max)) / 2`` (PyTorch's closed form).

    Examples
    --------
    >>> optimizer = sp.SGD([sp.Parameter(np.zeros(1))], lr=1.0, momentum=0.9)
    >>> scheduler = sp.CosineAnnealingLR(optimizer, T_max=4)
    >>> rates = []
    >>> for step in range(5):
    ...     rates.append(round(optimizer.param_groups[0]["lr"], 4))
    ...     scheduler.step()
    >>> rates
    [1.0, 0.8536, 0.5, 0.1464, 0.0]
    """

    constraints = {"T_max": POSITIVE_INT, "eta_min": NONNEGATIVE}
    T_max: int
    eta_min: float

    def __init__(self, optimizer, T_max: int, eta_min: float = 0.0, last_epoch: int = -1):
        self._set_params(T_max=T_max, eta_min=eta_min)
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        cosine = (1 + math.cos(math.pi * self.last_epoch / self.T_max)) / 2
        return [self.eta_min + (base - self.eta_min) * cosine for base in self.base_lrs]


class LinearLR(LRScheduler):
    """``lr = base · (start_factor + (end_factor − start_factor) · min(t, total_iters)/total_iters)``.

    Examples
    --------
    >>> optimizer = sp.SGD([sp.Parameter(np.zeros(1))], lr=1.0, momentum=0.9)
    >>> scheduler = sp.LinearLR(optimizer, start_factor=0.5, total_iters=2)
    >>> rates = []
    >>> for step in range(4):
    ...     rates.append(round(optimizer.param_groups[0]["lr"], 4))
    ...     scheduler.step()
    >>> rates
    [0.5, 0.75, 1.0, 1.0]
    """

    constraints = {"start_factor": FACTOR, "end_factor": FACTOR, "total_iters": POSITIVE_INT}
    start_factor: float
    end_factor: float
    total_iters: int

    def __init__(
        self,
        optimizer,
        start_factor: float = 1.0 / 3,
        end_factor: float = 1.0,
        total_iters: int = 5,
        last_epoch: int = -1,
    ):
        self._set_params(start_factor=start_factor, end_factor=end_factor, total_iters=total_iters)
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        progress = min(self.last_epoch, self.total_iters) / self.total_iters
        factor = self.start_factor + (self.end_factor - self.start_factor) * progress
        return [base * factor for base in self.base_lrs]


class LinearWarmup(LinearLR):
    """Warmup: the rate grows linearly from ``start_factor · base`` at step 0 to ``base`` at
    step ``warmup_steps`` and stays there. Follow it with a decay through :class:`SequentialLR`.

    Parameters
    ----------
    optimizer : Optimizer
    warmup_steps : int
        Steps until the rate reaches its base value.
    start_factor : float in (0, 1]
        The rate at step 0, as a fraction of the base rate.
    last_epoch : int
        The step to resume from; -1 starts a new schedule.

    Examples
    --------
    Warmup for 3 epochs, then cosine decay over 5 (the course's warmup, then decay):

    >>> optimizer = sp.SGD([sp.Parameter(np.zeros(1))], lr=1.0)
    >>> warmup = sp.LinearWarmup(optimizer, warmup_steps=3, start_factor=0.25)
    >>> decay = sp.CosineAnnealingLR(optimizer, T_max=5)
    >>> scheduler = sp.SequentialLR(optimizer, [warmup, decay], milestones=[3])
    >>> rates = []
    >>> for epoch in range(4):
    ...     rates.append(optimizer.param_groups[0]["lr"])
    ...     scheduler.step()
    >>> rates
    [0.25, 0.5, 0.75, 1.0]
    """

    def __init__(self, optimizer, warmup_steps: int, start_factor: float = 0.1, last_epoch: int = -1):
        super().__init__(optimizer, start_factor, 1.0, warmup_steps, last_epoch)


class InverseSqrtLR(LRScheduler):
    """The Transformer's schedule: linear warmup for ``warmup_steps``, then decay as ``1/√step``.

    With ``s = t + 1``: ``lr = base · min(s / warmup_steps, √(warmup_steps / s))``, which peaks
    at ``base`` when ``s = warmup_steps``. "Attention Is All You Need" uses
    ``d_model^-0.5 · min(s^-0.5, s · warmup^-1.5)``, i.e. ``base = (d_model · warmup)^-0.5``.

    Examples
    --------
    >>> optimizer = sp.SGD([sp.Parameter(np.zeros(1))], lr=1.0, momentum=0.9)
    >>> scheduler = sp.InverseSqrtLR(optimizer, warmup_steps=2)
    >>> rates = []
    >>> for step in range(5):
    ...     rates.append(round(optimizer.param_groups[0]["lr"], 4))
    ...     scheduler.step()
    >>> rates
    [0.5, 1.0, 0.8165, 0.7071, 0.6325]
    """

    constraints = {"warmup_steps": POSITIVE_INT}
    warmup_steps: int

    def __init__(self, optimizer, warmup_steps: int, last_epoch: int = -1):
        self._set_params(warmup_steps=warmup_steps)
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        s = self.last_epoch + 1
        factor = min(s / self.warmup_steps, math.sqrt(self.warmup_steps / s))
        return [base * factor for base in self.base_lrs]


class SequentialLR(LRScheduler):
    """Runs ``schedulers[0]`` until ``milestones[0]``, then ``schedulers[1]`` (counting its steps
    from 0), and so on: e.g. a warmup followed by a cosine decay.

    The schedulers must be built on the same optimizer, before this one.

    Examples
    --------
    See :class:`LinearWarmup`.
    """

    constraints = {"milestones": MILESTONES}
    milestones: list[int]

    def __init__(self, optimizer, schedulers, milestones, last_epoch: int = -1):
        _check_optimizer(optimizer)
        schedulers = _check_schedulers(optimizer, schedulers)
        if not isinstance(milestones, (list, tuple)) or len(milestones) != len(schedulers) - 1:
            raise ValueError(
                f"milestones must be a list of {len(schedulers) - 1} steps (one fewer "
                f"than schedulers), got {milestones!r}"
            )
        self._set_params(milestones=milestones)
        self.schedulers = schedulers
        EPOCH.check("last_epoch", last_epoch)  # every check before the groups change
        for group, base in zip(optimizer.param_groups, schedulers[0].base_lrs):
            group["lr"] = base
        super().__init__(optimizer, last_epoch)

    def _check_fields(self, values):
        if len(values["milestones"]) != len(self.schedulers) - 1:
            raise ValueError(
                f"milestones must have {len(self.schedulers) - 1} entries, got {values['milestones']}"
            )

    def get_lr(self):
        i = bisect.bisect_right(self.milestones, self.last_epoch)
        scheduler = self.schedulers[i]
        scheduler.last_epoch = self.last_epoch - (self.milestones[i - 1] if i > 0 else 0)
        return scheduler.get_lr()

    def state_dict(self):
        return {**super().state_dict(), "schedulers": [s.state_dict() for s in self.schedulers]}

    def stage_state_dict(self, state_dict):
        where = "SequentialLR state_dict"
        if not isinstance(state_dict, Mapping) or "schedulers" not in state_dict:
            raise ValueError(f"{where} must be a dict with 'schedulers'")
        saved = state_dict["schedulers"]
        if not isinstance(saved, (list, tuple)) or len(saved) != len(self.schedulers):
            raise ValueError(
                f"{where}['schedulers'] must list the states of "
                f"{len(self.schedulers)} schedulers, got {saved!r}"
            )
        commits = []
        for i, (scheduler, state) in enumerate(zip(self.schedulers, saved)):
            try:
                commits.append(scheduler.stage_state_dict(state))
            except ValueError as e:
                raise ValueError(f"{where}['schedulers'][{i}]: {e}") from None
        commits.append(super().stage_state_dict({k: v for k, v in state_dict.items() if k != "schedulers"}))

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


class _Phases(Constraint):
    """OneCycleLR's 2 or 3 phases ``(end_step, lr_from, lr_to, momentum_from, momentum_to)``
    whose end steps increase from step 0 (each phase divides by its length), and whose keys
    name the group entries the cycle reads (a file cannot make it read another attribute)."""

    description = "a list of 2 or 3 phases"

    def accepts(self, value) -> bool:
        try:
            self.check("phases", value)
        except ValueError:
            return False
        return True

    def check(self, name: str, value) -> list[tuple]:
        if not isinstance(value, (list, tuple)) or len(value) not in (2, 3):
            raise ValueError(f"{name} must be {self.description}, got {value!r}")
        phases, previous_end = [], 0.0
        for i, phase in enumerate(value):
            if (
                not isinstance(phase, (list, tuple))
                or len(phase) != 5
                or not is_finite_number(phase[0])
                or phase[1] not in SCHEDULER_RATES
                or phase[2] not in SCHEDULER_RATES
                or phase[3] not in SCHEDULER_MOMENTA
                or phase[4] not in SCHEDULER_MOMENTA
            ):
                raise ValueError(
                    f"{name}[{i}] must be (end_step, lr_from, lr_to, momentum_from, "
                    f"momentum_to) with rates from {list(SCHEDULER_RATES)} and momenta "
                    f"from {list(SCHEDULER_MOMENTA)}, got {phase!r}"
                )
            end = float(phase[0])
            if end == previous_end or (i > 0 and end < previous_end):
                raise ValueError(
                    f"{name} must have increasing end steps, none at step 0, got {[p[0] for p in value]}"
                )
            phases.append((end, *phase[1:]))
            previous_end = end
        return phases


def _one_cycle_max_lrs(max_lr, optimizer) -> list[float]:
    """``max_lr``: one number for every group or a list of one per group, each checked."""
    if isinstance(max_lr, (list, tuple)):
        return per_group(POSITIVE, optimizer).check("max_lr", max_lr)
    return [POSITIVE.check("max_lr", max_lr)] * len(optimizer.param_groups)


def _check_one_cycle_groups(groups, cycle_momentum: bool) -> None:
    """The phases read these keys of every group: the optimizer must have them."""
    needed = set(SCHEDULER_RATES) | (set(SCHEDULER_MOMENTA) if cycle_momentum else set())
    for i, group in enumerate(groups):
        if not needed <= set(group):
            raise ValueError(
                f"parameter group {i} lacks {sorted(needed - set(group))}, which OneCycleLR needs"
            )


class OneCycleLR(LRScheduler):
    """The 1cycle policy (Smith & Topin), as PyTorch's ``OneCycleLR``: warm up from
    ``max_lr / div_factor`` to ``max_lr`` over the first ``pct_start`` of ``total_steps``, then
    anneal to ``max_lr / (div_factor · final_div_factor)``. With ``cycle_momentum`` the momentum
    (or Adam's β1) moves the opposite way between ``max_momentum`` and ``base_momentum``.
    Meant to be stepped once per batch; stepping past ``total_steps`` is an error.

    Examples
    --------
    >>> optimizer = sp.SGD([sp.Parameter(np.zeros(1))], lr=1.0, momentum=0.9)
    >>> scheduler = sp.OneCycleLR(optimizer, max_lr=1.0, total_steps=5)
    >>> rates = []
    >>> for step in range(4):
    ...     rates.append(round(optimizer.param_groups[0]["lr"], 4))
    ...     scheduler.step()
    >>> rates
    [0.04, 0.9505, 0.6113, 0.1883]
    """

    total_steps: int
    anneal_strategy: str
    cycle_momentum: bool
    use_betas: bool
    phases: list[tuple]

    #: The settings kept in state_dict; ``init_constraints``: the constructor's other arguments.
    constraints = {
        "total_steps": POSITIVE_INT,
        "anneal_strategy": OneOf("cos", "linear"),
        "cycle_momentum": FLAG,
        "use_betas": FLAG,
        "phases": _Phases(),
    }
    init_constraints = {
        "pct_start": OPEN_UNIT,
        "div_factor": POSITIVE,
        "final_div_factor": POSITIVE,
        "three_phase": Flag(numeric=True),
        "last_epoch": EPOCH,
    }

    def __init__(
        self,
        optimizer,
        max_lr,
        total_steps: int,
        pct_start: float = 0.3,
        anneal_strategy: str = "cos",
        cycle_momentum: bool = True,
        base_momentum: float = 0.85,
        max_momentum: float = 0.95,
        div_factor: float = 25.0,
        final_div_factor: float = 1e4,
        three_phase: bool = False,
        last_epoch: int = -1,
    ):
        _check_optimizer(optimizer)
        self._set_params(
            total_steps=total_steps,
            anneal_strategy=anneal_strategy,
            cycle_momentum=cycle_momentum,
            use_betas="betas" in optimizer.defaults,
        )
        args = check_params(
            dict(
                pct_start=pct_start,
                div_factor=div_factor,
                final_div_factor=final_div_factor,
                three_phase=three_phase,
                last_epoch=last_epoch,
            ),
            self.init_constraints,
        )
        pct_start, last_epoch = args["pct_start"], args["last_epoch"]
        div_factor, final_div_factor = args["div_factor"], args["final_div_factor"]
        groups = optimizer.param_groups
        max_lrs = _one_cycle_max_lrs(max_lr, optimizer)
        if last_epoch >= self.total_steps:
            raise ValueError(f"last_epoch must be below total_steps={self.total_steps}, got {last_epoch}")
        if self.cycle_momentum and not self.use_betas and "momentum" not in optimizer.defaults:
            raise ValueError("cycle_momentum needs an optimizer with 'momentum' or 'betas'")
        if self.cycle_momentum:
            base_momentum = MOMENTUM.check("base_momentum", base_momentum)
            max_momentum = MOMENTUM.check("max_momentum", max_momentum)
        end = float(pct_start * self.total_steps)
        if args["three_phase"]:
            phases = [
                (end - 1, "initial_lr", "max_lr", "max_momentum", "base_momentum"),
                (2 * end - 2, "max_lr", "initial_lr", "base_momentum", "max_momentum"),
                (self.total_steps - 1, "initial_lr", "min_lr", "max_momentum", "max_momentum"),
            ]
        else:
            phases = [
                (end - 1, "initial_lr", "max_lr", "max_momentum", "base_momentum"),
                (self.total_steps - 1, "max_lr", "min_lr", "base_momentum", "max_momentum"),
            ]
        try:
            self.phases = self.constraints["phases"].check("phases", phases)
        except ValueError:
            raise ValueError(
                f"pct_start={pct_start} and total_steps={total_steps} leave a phase of "
                f"no steps; use more steps or another pct_start"
            ) from None
        if last_epoch != -1:  # resuming: the groups must hold the cycle's rates already
            _check_one_cycle_groups(groups, self.cycle_momentum)
        else:  # every check is done: now the groups change
            for group, peak in zip(groups, max_lrs):
                group.update(
                    initial_lr=peak / div_factor,
                    max_lr=peak,
                    min_lr=peak / div_factor / final_div_factor,
                    lr=peak / div_factor,
                )
                if self.cycle_momentum:
                    group.update(base_momentum=base_momentum, max_momentum=max_momentum)
        super().__init__(optimizer, last_epoch)

    def _check_fields(self, values):
        if values["use_betas"] != ("betas" in self.optimizer.defaults):
            raise ValueError(
                f"use_betas must be {not values['use_betas']} for {type(self.optimizer).__name__}"
            )
        if values["phases"][-1][0] != values["total_steps"] - 1:
            raise ValueError(
                f"the last phase must end at total_steps - 1 = {values['total_steps'] - 1}, "
                f"got {values['phases'][-1][0]}"
            )
        if values["last_epoch"] > values["total_steps"]:
            raise ValueError(
                f"last_epoch must be at most total_steps = {values['total_steps']}, "
                f"got {values['last_epoch']}"
            )
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

    Examples
    --------
    >>> optimizer = sp.SGD([sp.Parameter(np.zeros(1))], lr=1.0)
    >>> scheduler = sp.ReduceLROnPlateau(optimizer, factor=0.5, patience=1)
    >>> for validation_loss in [1.0, 0.5, 0.6, 0.7]:
    ...     scheduler.step(validation_loss)
    >>> optimizer.param_groups[0]["lr"]  # two steps without improvement: halved
    0.5
    """

    # Set by _set_params from ``constraints``.
    mode: str
    threshold_mode: str
    factor: float
    patience: int
    threshold: float
    cooldown: int
    eps: float

    def __init__(
        self,
        optimizer: Optimizer,
        mode: str = "min",
        factor: float = 0.1,
        patience: int = 10,
        threshold: float = 1e-4,
        threshold_mode: str = "rel",
        cooldown: int = 0,
        min_lr=0.0,
        eps: float = 1e-8,
    ):
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"optimizer must be a saddlepoint Optimizer, got {type(optimizer).__name__}")
        self.optimizer = optimizer
        groups = optimizer.param_groups
        min_lrs = list(min_lr) if isinstance(min_lr, (list, tuple)) else [min_lr] * len(groups)
        min_lrs = per_group(NONNEGATIVE, optimizer).check("min_lr", min_lrs)  # before any is set
        self._set_params(
            mode=mode,
            threshold_mode=threshold_mode,
            factor=factor,
            patience=patience,
            threshold=threshold,
            cooldown=cooldown,
            eps=eps,
        )
        self.min_lrs = min_lrs
        self.best = math.inf if mode == "min" else -math.inf
        self.num_bad_epochs = 0
        self.cooldown_counter = 0
        self.last_epoch = 0
        self._last_lr = [group["lr"] for group in groups]

    constraints = {
        "mode": OneOf("min", "max"),
        "threshold_mode": OneOf("rel", "abs"),
        "factor": OPEN_UNIT,
        "patience": COUNT,
        "threshold": NONNEGATIVE,
        "cooldown": COUNT,
        "eps": NONNEGATIVE,
    }

    def _fields(self):
        rates = per_group(NONNEGATIVE, self.optimizer)
        return {
            **self.constraints,
            "min_lrs": rates,
            "best": BEST,
            "num_bad_epochs": COUNT,
            "cooldown_counter": COUNT,
            "last_epoch": COUNT,
            "_last_lr": rates,
        }

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
