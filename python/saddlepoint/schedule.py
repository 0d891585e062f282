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
import math

from .optim import Optimizer


def _positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return value


def _positive(name: str, value) -> float:
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return float(value)


class LRScheduler:
    """Base class. Subclasses implement :meth:`get_lr` from ``self.last_epoch`` and
    ``self.base_lrs`` (each group's rate when the scheduler was created).

    Creating a scheduler sets the rates for step 0.
    """

    def __init__(self, optimizer: Optimizer, last_epoch: int = -1):
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"optimizer must be a saddlepoint Optimizer, got {type(optimizer).__name__}")
        self.optimizer = optimizer
        for group in optimizer.param_groups:
            group.setdefault("initial_lr", group["lr"])
        self.base_lrs = [group["initial_lr"] for group in optimizer.param_groups]
        self.last_epoch = last_epoch
        self.step()

    def get_lr(self) -> list[float]:
        """The rates of the groups at step ``self.last_epoch``."""
        raise NotImplementedError

    def step(self) -> None:
        """Advances one step and writes the new rates into the optimizer's groups."""
        self.last_epoch += 1
        self._write(self.get_lr())

    def _write(self, lrs) -> None:
        for group, lr in zip(self.optimizer.param_groups, lrs):
            group["lr"] = lr
        self._last_lr = list(lrs)

    def get_last_lr(self) -> list[float]:
        return list(self._last_lr)

    def state_dict(self) -> dict:
        """Everything but the optimizer (which has its own ``state_dict``)."""
        return {k: v for k, v in self.__dict__.items() if k != "optimizer"}

    def load_state_dict(self, state_dict: dict) -> None:
        self.__dict__.update(state_dict)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(last_epoch={self.last_epoch}, lr={self._last_lr})"


class StepLR(LRScheduler):
    """``lr = base · gamma^(t // step_size)``: decay by ``gamma`` every ``step_size`` steps."""

    def __init__(self, optimizer, step_size: int, gamma: float = 0.1, last_epoch: int = -1):
        self.step_size = _positive_int("step_size", step_size)
        self.gamma = _positive("gamma", gamma)
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        return [base * self.gamma ** (self.last_epoch // self.step_size) for base in self.base_lrs]


class MultiStepLR(LRScheduler):
    """``lr = base · gamma^k`` where ``k`` is the number of milestones ``<= t``."""

    def __init__(self, optimizer, milestones, gamma: float = 0.1, last_epoch: int = -1):
        self.milestones = sorted(_positive_int("milestones[i]", m) for m in milestones)
        self.gamma = _positive("gamma", gamma)
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        k = bisect.bisect_right(self.milestones, self.last_epoch)
        return [base * self.gamma**k for base in self.base_lrs]


class ExponentialLR(LRScheduler):
    """``lr = base · gamma^t``."""

    def __init__(self, optimizer, gamma: float, last_epoch: int = -1):
        self.gamma = _positive("gamma", gamma)
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        return [base * self.gamma**self.last_epoch for base in self.base_lrs]


class CosineAnnealingLR(LRScheduler):
    """``lr = eta_min + (base − eta_min) · (1 + cos(π·t/T_max)) / 2`` (PyTorch's closed form)."""

    def __init__(self, optimizer, T_max: int, eta_min: float = 0.0, last_epoch: int = -1):
        self.T_max = _positive_int("T_max", T_max)
        if not (isinstance(eta_min, (int, float)) and eta_min >= 0):
            raise ValueError(f"eta_min must be a number >= 0, got {eta_min!r}")
        self.eta_min = float(eta_min)
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        cosine = (1 + math.cos(math.pi * self.last_epoch / self.T_max)) / 2
        return [self.eta_min + (base - self.eta_min) * cosine for base in self.base_lrs]


class LinearLR(LRScheduler):
    """``lr = base · (start_factor + (end_factor − start_factor) · min(t, total_iters)/total_iters)``."""

    def __init__(self, optimizer, start_factor: float = 1.0 / 3, end_factor: float = 1.0,
                 total_iters: int = 5, last_epoch: int = -1):
        for name, value in (("start_factor", start_factor), ("end_factor", end_factor)):
            if not (isinstance(value, (int, float)) and 0 < value <= 1):
                raise ValueError(f"{name} must be in (0, 1], got {value!r}")
        self.start_factor, self.end_factor = float(start_factor), float(end_factor)
        self.total_iters = _positive_int("total_iters", total_iters)
        super().__init__(optimizer, last_epoch)

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
        schedulers, milestones = list(schedulers), list(milestones)
        if len(milestones) != len(schedulers) - 1:
            raise ValueError(f"milestones must have one entry fewer than schedulers "
                             f"({len(schedulers) - 1}), got {len(milestones)}")
        if any(s.optimizer is not optimizer for s in schedulers):
            raise ValueError("every scheduler of a SequentialLR must use its optimizer")
        if milestones != sorted(milestones) or any(m < 1 for m in milestones):
            raise ValueError(f"milestones must be increasing positive integers, got {milestones}")
        self.schedulers, self.milestones = schedulers, milestones
        for group, base in zip(optimizer.param_groups, schedulers[0].base_lrs):
            group["lr"] = base
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        i = bisect.bisect_right(self.milestones, self.last_epoch)
        scheduler = self.schedulers[i]
        scheduler.last_epoch = self.last_epoch - (self.milestones[i - 1] if i > 0 else 0)
        return scheduler.get_lr()

    def state_dict(self):
        state = super().state_dict()
        state["schedulers"] = [s.state_dict() for s in self.schedulers]
        return state

    def load_state_dict(self, state_dict):
        state = dict(state_dict)
        for scheduler, saved in zip(self.schedulers, state.pop("schedulers")):
            scheduler.load_state_dict(saved)
        self.__dict__.update({k: v for k, v in state.items()})


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
        self.total_steps = _positive_int("total_steps", total_steps)
        if not (isinstance(pct_start, (int, float)) and 0 < pct_start < 1):
            raise ValueError(f"pct_start must be in (0, 1), got {pct_start!r}")
        if anneal_strategy not in ("cos", "linear"):
            raise ValueError(f"anneal_strategy must be 'cos' or 'linear', got {anneal_strategy!r}")
        _positive("div_factor", div_factor)
        _positive("final_div_factor", final_div_factor)
        groups = optimizer.param_groups
        max_lrs = list(max_lr) if isinstance(max_lr, (list, tuple)) else [max_lr] * len(groups)
        if len(max_lrs) != len(groups):
            raise ValueError(f"max_lr must have one value per parameter group ({len(groups)}), got {len(max_lrs)}")
        self.anneal_strategy = anneal_strategy
        self.cycle_momentum = bool(cycle_momentum)
        self.use_betas = "betas" in optimizer.defaults
        if self.cycle_momentum and not self.use_betas and "momentum" not in optimizer.defaults:
            raise ValueError("cycle_momentum needs an optimizer with 'momentum' or 'betas'")
        end = float(pct_start * self.total_steps)
        if three_phase:
            self.phases = [(end - 1, "initial_lr", "max_lr", "max_momentum", "base_momentum"),
                           (2 * end - 2, "max_lr", "initial_lr", "base_momentum", "max_momentum"),
                           (self.total_steps - 1, "initial_lr", "min_lr", "max_momentum", "max_momentum")]
        else:
            self.phases = [(end - 1, "initial_lr", "max_lr", "max_momentum", "base_momentum"),
                           (self.total_steps - 1, "max_lr", "min_lr", "base_momentum", "max_momentum")]
        if last_epoch == -1:
            for group, peak in zip(groups, max_lrs):
                peak = _positive("max_lr", peak)
                group.update(initial_lr=peak / div_factor, max_lr=peak,
                             min_lr=peak / div_factor / final_div_factor, lr=peak / div_factor)
                if self.cycle_momentum:
                    group.update(base_momentum=base_momentum, max_momentum=max_momentum)
        super().__init__(optimizer, last_epoch)

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


class ReduceLROnPlateau:
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
        if mode not in ("min", "max"):
            raise ValueError(f"mode must be 'min' or 'max', got {mode!r}")
        if threshold_mode not in ("rel", "abs"):
            raise ValueError(f"threshold_mode must be 'rel' or 'abs', got {threshold_mode!r}")
        if not (isinstance(factor, (int, float)) and 0 < factor < 1):
            raise ValueError(f"factor must be in (0, 1), got {factor!r}")
        for name, value in (("patience", patience), ("cooldown", cooldown)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be an integer >= 0, got {value!r}")
        groups = optimizer.param_groups
        min_lrs = list(min_lr) if isinstance(min_lr, (list, tuple)) else [min_lr] * len(groups)
        if len(min_lrs) != len(groups):
            raise ValueError(f"min_lr must have one value per parameter group ({len(groups)}), got {len(min_lrs)}")
        self.optimizer = optimizer
        self.mode, self.threshold_mode = mode, threshold_mode
        self.factor, self.patience, self.threshold = float(factor), patience, float(threshold)
        self.cooldown, self.min_lrs, self.eps = cooldown, [float(m) for m in min_lrs], float(eps)
        self.best = math.inf if mode == "min" else -math.inf
        self.num_bad_epochs = 0
        self.cooldown_counter = 0
        self.last_epoch = 0
        self._last_lr = [group["lr"] for group in groups]

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

    # Not an LRScheduler (it steps on a metric, not a count), but its state works the same way.
    get_last_lr = LRScheduler.get_last_lr
    state_dict = LRScheduler.state_dict
    load_state_dict = LRScheduler.load_state_dict
