"""Schedulers: the rate at each step against closed-form values (and PyTorch's where
importable), warmup then decay, plateau logic, state round trips."""

import math

import numpy as np
import pytest

import saddlepoint as sp

try:
    import torch
except ImportError:
    torch = None


def sgd(lr=0.1, groups=1, **kw):
    params = [sp.Parameter(np.zeros(2)) for _ in range(groups)]
    if groups == 1:
        return sp.SGD(params, lr=lr, **kw)
    return sp.SGD([{"params": [p], "lr": lr * (i + 1)} for i, p in enumerate(params)], lr=lr, **kw)


def rates(optimizer, scheduler, steps):
    """The rate in use for each of ``steps`` steps (read before each ``step()``)."""
    out = []
    for _ in range(steps):
        out.append(optimizer.param_groups[0]["lr"])
        scheduler.step()
    return np.array(out)


CLOSED_FORMS = [
    ("StepLR", lambda o: sp.StepLR(o, step_size=3, gamma=0.5), lambda t: 0.1 * 0.5 ** (t // 3)),
    ("MultiStepLR", lambda o: sp.MultiStepLR(o, milestones=[2, 5], gamma=0.1),
     lambda t: 0.1 * 0.1 ** ((t >= 2) + (t >= 5))),
    ("ExponentialLR", lambda o: sp.ExponentialLR(o, gamma=0.9), lambda t: 0.1 * 0.9**t),
    ("CosineAnnealingLR", lambda o: sp.CosineAnnealingLR(o, T_max=10, eta_min=0.01),
     lambda t: 0.01 + 0.09 * (1 + math.cos(math.pi * t / 10)) / 2),
    ("LinearLR", lambda o: sp.LinearLR(o, start_factor=0.25, end_factor=1.0, total_iters=4),
     lambda t: 0.1 * (0.25 + 0.75 * min(t, 4) / 4)),
    ("LinearWarmup", lambda o: sp.LinearWarmup(o, warmup_steps=5, start_factor=0.0 + 0.2),
     lambda t: 0.1 * (0.2 + 0.8 * min(t, 5) / 5)),
    ("InverseSqrtLR", lambda o: sp.InverseSqrtLR(o, warmup_steps=4),
     lambda t: 0.1 * min((t + 1) / 4, math.sqrt(4 / (t + 1)))),
]


@pytest.mark.parametrize("name,make,formula", CLOSED_FORMS, ids=[c[0] for c in CLOSED_FORMS])
def test_rate_at_each_step_is_the_closed_form(name, make, formula):
    optimizer = sgd()
    got = rates(optimizer, make(optimizer), 12)
    np.testing.assert_allclose(got, [formula(t) for t in range(12)], rtol=1e-12)


def test_each_group_scales_its_own_base_rate():
    optimizer = sgd(groups=2)
    scheduler = sp.ExponentialLR(optimizer, gamma=0.5)
    scheduler.step()
    assert [g["lr"] for g in optimizer.param_groups] == [0.05, 0.1]
    assert scheduler.get_last_lr() == [0.05, 0.1]


def test_warmup_then_cosine_decay():
    optimizer = sgd(lr=1.0)
    warmup = sp.LinearWarmup(optimizer, warmup_steps=4, start_factor=0.25)
    cosine = sp.CosineAnnealingLR(optimizer, T_max=6)
    scheduler = sp.SequentialLR(optimizer, [warmup, cosine], milestones=[4])
    expected = [0.25 + 0.75 * t / 4 for t in range(4)] + \
               [(1 + math.cos(math.pi * t / 6)) / 2 for t in range(7)]
    np.testing.assert_allclose(rates(optimizer, scheduler, 11), expected, rtol=1e-12, atol=1e-15)


def test_one_cycle_follows_pytorch_formula():
    optimizer = sgd(lr=0.1, momentum=0.9)
    scheduler = sp.OneCycleLR(optimizer, max_lr=1.0, total_steps=10, pct_start=0.3)
    initial, low = 1.0 / 25, 1.0 / 25 / 1e4

    def cos(start, end, pct):
        return end + (start - end) / 2 * (math.cos(math.pi * pct) + 1)

    lrs, momenta = [], []
    for _ in range(10):
        lrs.append(optimizer.param_groups[0]["lr"])
        momenta.append(optimizer.param_groups[0]["momentum"])
        scheduler.step()
    expected = [cos(initial, 1.0, t / 2) if t <= 2 else cos(1.0, low, (t - 2) / 7) for t in range(10)]
    expected_m = [cos(0.95, 0.85, t / 2) if t <= 2 else cos(0.85, 0.95, (t - 2) / 7) for t in range(10)]
    np.testing.assert_allclose(lrs, expected, rtol=1e-12)
    np.testing.assert_allclose(momenta, expected_m, rtol=1e-12)
    assert lrs[2] == pytest.approx(1.0) and lrs[-1] == pytest.approx(low)
    with pytest.raises(ValueError, match="more than total_steps=10"):
        for _ in range(2):
            scheduler.step()


def test_one_cycle_cycles_adam_beta1():
    optimizer = sp.Adam([sp.Parameter(np.zeros(2))])
    sp.OneCycleLR(optimizer, max_lr=0.01, total_steps=20)
    assert optimizer.param_groups[0]["betas"] == (0.95, 0.999)


def test_reduce_on_plateau_waits_for_patience_then_cools_down():
    optimizer = sgd(lr=1.0)
    scheduler = sp.ReduceLROnPlateau(optimizer, factor=0.5, patience=2, cooldown=1, min_lr=0.2)
    seen = []
    for metric in [1.0, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9]:
        scheduler.step(metric)
        seen.append(optimizer.param_groups[0]["lr"])
    # bad epochs 1, 2, 3 > patience at the 5th call; one cooldown step; then 3 more bad ones.
    assert seen == [1.0, 1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.5, 0.25, 0.25, 0.25, 0.25]
    for _ in range(10):
        scheduler.step(0.9)
    assert optimizer.param_groups[0]["lr"] == 0.2  # never below min_lr


def test_reduce_on_plateau_mode_max_and_absolute_threshold():
    optimizer = sgd(lr=1.0)
    scheduler = sp.ReduceLROnPlateau(optimizer, mode="max", patience=0, threshold=0.1,
                                     threshold_mode="abs")
    scheduler.step(0.5)
    scheduler.step(0.55)  # not better by 0.1: reduce
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.1)


@pytest.mark.parametrize("make", [
    lambda o: sp.StepLR(o, step_size=2),
    lambda o: sp.SequentialLR(o, [sp.LinearWarmup(o, 3), sp.ExponentialLR(o, 0.9)], [3]),
    lambda o: sp.OneCycleLR(o, max_lr=0.5, total_steps=30),
], ids=["step", "sequential", "onecycle"])
def test_scheduler_state_dict_resumes_exactly(make):
    optimizer = sgd(momentum=0.9)
    scheduler = make(optimizer)
    for _ in range(5):
        scheduler.step()
    saved, saved_opt = scheduler.state_dict(), optimizer.state_dict()
    later = rates(optimizer, scheduler, 10)
    optimizer2 = sgd(momentum=0.9)
    scheduler2 = make(optimizer2)
    optimizer2.load_state_dict(saved_opt)
    scheduler2.load_state_dict(saved)
    np.testing.assert_array_equal(rates(optimizer2, scheduler2, 10), later)


@pytest.mark.parametrize("make,message", [
    (lambda o: sp.StepLR(o, step_size=0), "step_size must be a positive integer, got 0"),
    (lambda o: sp.ExponentialLR(o, gamma=-1), "gamma must be a finite number > 0, got -1"),
    (lambda o: sp.OneCycleLR(o, max_lr=1, total_steps=10, pct_start=1.5), r"pct_start must be in \(0, 1\)"),
    (lambda o: sp.ReduceLROnPlateau(o, factor=1.0), r"factor must be in \(0, 1\), got 1.0"),
    (lambda o: sp.SequentialLR(o, [sp.StepLR(o, 1)], [3]), "milestones must have one entry fewer"),
])
def test_scheduler_arguments_are_validated(make, message):
    with pytest.raises(ValueError, match=message):
        make(sgd())


@pytest.mark.skipif(torch is None, reason="PyTorch is not installed")
@pytest.mark.parametrize("name,ours,theirs", [
    ("StepLR", lambda o: sp.StepLR(o, 3, 0.5), lambda o: torch.optim.lr_scheduler.StepLR(o, 3, 0.5)),
    ("MultiStepLR", lambda o: sp.MultiStepLR(o, [2, 5], 0.1),
     lambda o: torch.optim.lr_scheduler.MultiStepLR(o, [2, 5], 0.1)),
    ("ExponentialLR", lambda o: sp.ExponentialLR(o, 0.9), lambda o: torch.optim.lr_scheduler.ExponentialLR(o, 0.9)),
    ("CosineAnnealingLR", lambda o: sp.CosineAnnealingLR(o, 10, 0.01),
     lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, 10, 0.01)),
    ("LinearLR", lambda o: sp.LinearLR(o, 0.25, 1.0, 4), lambda o: torch.optim.lr_scheduler.LinearLR(o, 0.25, 1.0, 4)),
    ("OneCycleLR", lambda o: sp.OneCycleLR(o, 1.0, 30), lambda o: torch.optim.lr_scheduler.OneCycleLR(o, 1.0, 30)),
])
def test_schedulers_match_pytorch(name, ours, theirs):
    optimizer = sgd(lr=0.1, momentum=0.9)
    torch_optimizer = torch.optim.SGD([torch.zeros(2, requires_grad=True)], lr=0.1, momentum=0.9)
    scheduler, torch_scheduler = ours(optimizer), theirs(torch_optimizer)
    for _ in range(30):
        assert optimizer.param_groups[0]["lr"] == pytest.approx(torch_optimizer.param_groups[0]["lr"], rel=1e-9)
        assert optimizer.param_groups[0]["momentum"] == pytest.approx(torch_optimizer.param_groups[0]["momentum"], rel=1e-9)
        torch_optimizer.step()
        scheduler.step()
        torch_scheduler.step()


@pytest.mark.skipif(torch is None, reason="PyTorch is not installed")
def test_reduce_on_plateau_matches_pytorch():
    optimizer = sgd(lr=1.0)
    torch_optimizer = torch.optim.SGD([torch.zeros(2, requires_grad=True)], lr=1.0)
    ours = sp.ReduceLROnPlateau(optimizer, factor=0.5, patience=2, cooldown=1, min_lr=0.01)
    theirs = torch.optim.lr_scheduler.ReduceLROnPlateau(torch_optimizer, factor=0.5, patience=2,
                                                        cooldown=1, min_lr=0.01)
    metrics = np.random.default_rng(0).uniform(0.5, 1.0, 60).cumsum()[::-1] % 3
    for metric in metrics:
        ours.step(metric)
        theirs.step(metric)
        assert optimizer.param_groups[0]["lr"] == torch_optimizer.param_groups[0]["lr"]
