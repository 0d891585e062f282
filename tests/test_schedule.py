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
    (
        "MultiStepLR",
        lambda o: sp.MultiStepLR(o, milestones=[2, 5], gamma=0.1),
        lambda t: 0.1 * 0.1 ** ((t >= 2) + (t >= 5)),
    ),
    ("ExponentialLR", lambda o: sp.ExponentialLR(o, gamma=0.9), lambda t: 0.1 * 0.9**t),
    (
        "CosineAnnealingLR",
        lambda o: sp.CosineAnnealingLR(o, T_max=10, eta_min=0.01),
        lambda t: 0.01 + 0.09 * (1 + math.cos(math.pi * t / 10)) / 2,
    ),
    (
        "LinearLR",
        lambda o: sp.LinearLR(o, start_factor=0.25, end_factor=1.0, total_iters=4),
        lambda t: 0.1 * (0.25 + 0.75 * min(t, 4) / 4),
    ),
    (
        "LinearWarmup",
        lambda o: sp.LinearWarmup(o, warmup_steps=5, start_factor=0.0 + 0.2),
        lambda t: 0.1 * (0.2 + 0.8 * min(t, 5) / 5),
    ),
    (
        "InverseSqrtLR",
        lambda o: sp.InverseSqrtLR(o, warmup_steps=4),
        lambda t: 0.1 * min((t + 1) / 4, math.sqrt(4 / (t + 1))),
    ),
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
    expected = [0.25 + 0.75 * t / 4 for t in range(4)] + [
        (1 + math.cos(math.pi * t / 6)) / 2 for t in range(7)
    ]
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
    scheduler = sp.ReduceLROnPlateau(optimizer, mode="max", patience=0, threshold=0.1, threshold_mode="abs")
    scheduler.step(0.5)
    scheduler.step(0.55)  # not better by 0.1: reduce
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.1)


@pytest.mark.parametrize(
    "make",
    [
        lambda o: sp.StepLR(o, step_size=2),
        lambda o: sp.SequentialLR(o, [sp.LinearWarmup(o, 3), sp.ExponentialLR(o, 0.9)], [3]),
        lambda o: sp.OneCycleLR(o, max_lr=0.5, total_steps=30),
    ],
    ids=["step", "sequential", "onecycle"],
)
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


@pytest.mark.parametrize(
    "make,message",
    [
        (lambda o: sp.StepLR(o, step_size=0), "step_size must be a positive integer, got 0"),
        (lambda o: sp.ExponentialLR(o, gamma=-1), "gamma must be a finite number > 0, got -1"),
        (
            lambda o: sp.OneCycleLR(o, max_lr=1, total_steps=10, pct_start=1.5),
            r"pct_start must be in \(0, 1\)",
        ),
        (lambda o: sp.ReduceLROnPlateau(o, factor=1.0), r"factor must be in \(0, 1\), got 1.0"),
        (
            lambda o: sp.SequentialLR(o, [sp.StepLR(o, 1)], [3]),
            r"milestones must be a list of 0 steps \(one fewer than schedulers\), got \[3\]",
        ),
        (
            lambda o: sp.SequentialLR(o, [], []),
            r"schedulers must be a non-empty list of schedulers, got \[\]",
        ),
    ],
)
def test_scheduler_arguments_are_validated(make, message):
    with pytest.raises(ValueError, match=message):
        make(sgd())


@pytest.mark.skipif(torch is None, reason="PyTorch is not installed")
@pytest.mark.parametrize(
    "name,ours,theirs",
    [
        ("StepLR", lambda o: sp.StepLR(o, 3, 0.5), lambda o: torch.optim.lr_scheduler.StepLR(o, 3, 0.5)),
        (
            "MultiStepLR",
            lambda o: sp.MultiStepLR(o, [2, 5], 0.1),
            lambda o: torch.optim.lr_scheduler.MultiStepLR(o, [2, 5], 0.1),
        ),
        (
            "ExponentialLR",
            lambda o: sp.ExponentialLR(o, 0.9),
            lambda o: torch.optim.lr_scheduler.ExponentialLR(o, 0.9),
        ),
        (
            "CosineAnnealingLR",
            lambda o: sp.CosineAnnealingLR(o, 10, 0.01),
            lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, 10, 0.01),
        ),
        (
            "LinearLR",
            lambda o: sp.LinearLR(o, 0.25, 1.0, 4),
            lambda o: torch.optim.lr_scheduler.LinearLR(o, 0.25, 1.0, 4),
        ),
        (
            "OneCycleLR",
            lambda o: sp.OneCycleLR(o, 1.0, 30),
            lambda o: torch.optim.lr_scheduler.OneCycleLR(o, 1.0, 30),
        ),
    ],
)
def test_schedulers_match_pytorch(name, ours, theirs):
    optimizer = sgd(lr=0.1, momentum=0.9)
    torch_optimizer = torch.optim.SGD([torch.zeros(2, requires_grad=True)], lr=0.1, momentum=0.9)
    scheduler, torch_scheduler = ours(optimizer), theirs(torch_optimizer)
    for _ in range(30):
        assert optimizer.param_groups[0]["lr"] == pytest.approx(
            torch_optimizer.param_groups[0]["lr"], rel=1e-9
        )
        assert optimizer.param_groups[0]["momentum"] == pytest.approx(
            torch_optimizer.param_groups[0]["momentum"], rel=1e-9
        )
        torch_optimizer.step()
        scheduler.step()
        torch_scheduler.step()


@pytest.mark.skipif(torch is None, reason="PyTorch is not installed")
def test_reduce_on_plateau_matches_pytorch():
    optimizer = sgd(lr=1.0)
    torch_optimizer = torch.optim.SGD([torch.zeros(2, requires_grad=True)], lr=1.0)
    ours = sp.ReduceLROnPlateau(optimizer, factor=0.5, patience=2, cooldown=1, min_lr=0.01)
    theirs = torch.optim.lr_scheduler.ReduceLROnPlateau(
        torch_optimizer, factor=0.5, patience=2, cooldown=1, min_lr=0.01
    )
    metrics = np.random.default_rng(0).uniform(0.5, 1.0, 60).cumsum()[::-1] % 3
    for metric in metrics:
        ours.step(metric)
        theirs.step(metric)
        assert optimizer.param_groups[0]["lr"] == torch_optimizer.param_groups[0]["lr"]


# Every scheduler class the package exports, built on a momentum SGD with two groups.
SCHEDULERS = {
    "StepLR": lambda o: sp.StepLR(o, step_size=2),
    "MultiStepLR": lambda o: sp.MultiStepLR(o, [2, 5]),
    "ExponentialLR": lambda o: sp.ExponentialLR(o, 0.9),
    "CosineAnnealingLR": lambda o: sp.CosineAnnealingLR(o, 10, 0.001),
    "LinearLR": lambda o: sp.LinearLR(o, 0.25, 1.0, 4),
    "LinearWarmup": lambda o: sp.LinearWarmup(o, 3),
    "InverseSqrtLR": lambda o: sp.InverseSqrtLR(o, 4),
    "SequentialLR": lambda o: sp.SequentialLR(o, [sp.LinearWarmup(o, 3), sp.ExponentialLR(o, 0.9)], [3]),
    "OneCycleLR": lambda o: sp.OneCycleLR(o, max_lr=0.5, total_steps=30, three_phase=True),
    "ReduceLROnPlateau": lambda o: sp.ReduceLROnPlateau(o, patience=1),
}


def advanced(name, steps=5):
    optimizer = sgd(groups=2, momentum=0.9)
    scheduler = SCHEDULERS[name](optimizer)
    for i in range(steps):
        scheduler.step(1.0) if name == "ReduceLROnPlateau" else scheduler.step()
    return optimizer, scheduler


def scheduler_snapshot(scheduler):
    return repr({k: v for k, v in vars(scheduler).items() if k not in ("optimizer", "schedulers")}), [
        scheduler_snapshot(s) for s in getattr(scheduler, "schedulers", [])
    ]


def test_every_exported_scheduler_is_covered():
    exported = {
        n
        for n in sp.__all__
        if isinstance(getattr(sp, n), type)
        and (issubclass(getattr(sp, n), sp.LRScheduler) or n == "ReduceLROnPlateau")
    }
    assert exported - {"LRScheduler"} == set(SCHEDULERS)


@pytest.mark.parametrize("name", SCHEDULERS)
def test_state_dict_survives_json_and_resumes_exactly(name):
    import json

    optimizer, scheduler = advanced(name)
    saved = json.loads(json.dumps({"o": optimizer.state_dict(), "s": scheduler.state_dict()}))
    later = [advanced(name, 5 + k)[0].param_groups[1]["lr"] for k in range(1, 6)]
    optimizer2 = sgd(groups=2, momentum=0.9)
    scheduler2 = SCHEDULERS[name](optimizer2)
    optimizer2.load_state_dict(saved["o"])
    scheduler2.load_state_dict(saved["s"])
    resumed = []
    for _ in range(5):
        scheduler2.step(1.0) if name == "ReduceLROnPlateau" else scheduler2.step()
        resumed.append(optimizer2.param_groups[1]["lr"])
    assert resumed == later


def bad_states(name):
    """(description, state) pairs: each field missing, each set to junk, and unknown fields."""
    _, scheduler = advanced(name)
    saved = scheduler.state_dict()
    for field in saved:
        yield f"{field} missing", {k: v for k, v in saved.items() if k != field}
        for junk in ("x", None, -5, float("nan"), [-1, "x"]):
            if field == "last_epoch" and junk == -5:
                junk = -2
            if field == "best" and junk == -5:
                continue  # any metric can be the best
            yield f"{field}={junk!r}", {**saved, field: junk}
    yield "get_lr replaced", {**saved, "get_lr": "x"}
    yield "step replaced", {**saved, "step": None}
    yield "not a dict", [saved]


@pytest.mark.parametrize("name", SCHEDULERS)
def test_every_bad_field_is_refused_and_nothing_changes(name):
    optimizer, scheduler = advanced(name)
    before, groups = scheduler_snapshot(scheduler), repr(optimizer.param_groups)
    refused = 0
    for description, state in bad_states(name):
        try:
            scheduler.load_state_dict(state)
        except ValueError:
            refused += 1
        else:
            pytest.fail(f"{name}: {description} was accepted")
        assert scheduler_snapshot(scheduler) == before, description
        assert repr(optimizer.param_groups) == groups
    assert callable(scheduler.step) and refused > 10


@pytest.mark.parametrize(
    "name,field,value,message",
    [
        ("StepLR", "step_size", 0, "step_size must be a positive integer, got 0"),
        ("StepLR", "gamma", -1, "gamma must be a finite number > 0, got -1"),
        ("StepLR", "base_lrs", [0.1, -1], r"base_lrs\[1\] must be a finite number >= 0, got -1"),
        ("StepLR", "last_epoch", 10**400, "last_epoch must be an integer >= -1"),
        ("OneCycleLR", "last_epoch", 31, "last_epoch must be at most total_steps = 30"),
        ("OneCycleLR", "use_betas", True, "use_betas must be False for SGD"),
        (
            "OneCycleLR",
            "phases",
            [
                [5.0, "initial_lr", "__class__", "max_momentum", "base_momentum"],
                [29.0, "max_lr", "min_lr", "base_momentum", "max_momentum"],
            ],
            r"phases\[0\] must be",
        ),
        (
            "OneCycleLR",
            "phases",
            [
                [0.0, "initial_lr", "max_lr", "max_momentum", "base_momentum"],
                [29.0, "max_lr", "min_lr", "base_momentum", "max_momentum"],
            ],
            "none at step 0",
        ),
        ("MultiStepLR", "milestones", [5, 2], "milestones must be increasing"),
        ("SequentialLR", "milestones", [2, 4], "milestones must have 1 entries"),
        ("ReduceLROnPlateau", "best", float("nan"), "best must be a number"),
        ("ReduceLROnPlateau", "mode", "median", r"mode must be one of \['min', 'max'\]"),
    ],
)
def test_bad_fields_get_a_clear_message(name, field, value, message):
    _, scheduler = advanced(name)
    with pytest.raises(ValueError, match=message):
        scheduler.load_state_dict({**scheduler.state_dict(), field: value})


def test_a_sequential_scheduler_loads_all_or_nothing():
    optimizer, scheduler = advanced("SequentialLR")
    saved = scheduler.state_dict()
    saved["last_epoch"] = 0
    saved["schedulers"][0]["last_epoch"] = 0
    saved["schedulers"][1]["gamma"] = -1.0  # the second child does not fit
    before = scheduler_snapshot(scheduler)
    with pytest.raises(ValueError, match=r"\['schedulers'\]\[1\].*gamma"):
        scheduler.load_state_dict(saved)
    assert scheduler_snapshot(scheduler) == before


def test_one_cycle_with_a_phase_of_no_steps_is_refused_by_the_constructor():
    with pytest.raises(ValueError, match="leave a phase of no steps"):
        sp.OneCycleLR(sgd(momentum=0.9), max_lr=1.0, total_steps=10, pct_start=0.1)


def _groups(optimizer):
    return [{k: v for k, v in g.items() if k != "params"} for g in optimizer.param_groups]


@pytest.mark.parametrize(
    "make",
    [
        lambda o: sp.OneCycleLR(o, max_lr=[0.5, -1], total_steps=10),
        lambda o: sp.OneCycleLR(o, max_lr=[0.5], total_steps=10),
        lambda o: sp.OneCycleLR(o, max_lr=0.5, total_steps=10, last_epoch=-7),
        lambda o: sp.OneCycleLR(o, max_lr=0.5, total_steps=10, last_epoch=10),
        lambda o: sp.OneCycleLR(o, max_lr=0.5, total_steps=10, last_epoch=3),  # groups lack max_lr
        lambda o: sp.StepLR(o, 2, last_epoch=-7),
        lambda o: sp.SequentialLR(o, [sp.StepLR(sgd(), 1), sp.StepLR(sgd(), 1)], [2]),
        lambda o: sp.SequentialLR(o, [sp.StepLR(sgd(), 1)], [], last_epoch=-7),
    ],
    ids=[
        "max_lr<0",
        "max_lr-short",
        "onecycle-epoch<-1",
        "onecycle-epoch>=total",
        "onecycle-resume",
        "step-epoch<-1",
        "sequential-foreign",
        "sequential-epoch<-1",
    ],
)
def test_a_refused_scheduler_leaves_the_optimizer_as_it_was(make):
    optimizer = sgd(momentum=0.9, groups=2)
    before = _groups(optimizer)
    with pytest.raises(ValueError):
        make(optimizer)
    assert _groups(optimizer) == before


def test_sequential_scheduler_items_must_be_schedulers():
    with pytest.raises(TypeError, match=r"schedulers\[0\] must be an LRScheduler, got int"):
        sp.SequentialLR(sgd(), [1], [])


def test_numpy_scalars_are_accepted_like_python_numbers():
    ours, theirs = sgd(), sgd()
    a = sp.StepLR(ours, np.int64(2), gamma=np.float32(0.5), last_epoch=np.int32(-1))
    b = sp.StepLR(theirs, 2, gamma=float(np.float32(0.5)))
    np.testing.assert_array_equal(rates(ours, a, 6), rates(theirs, b, 6))
    assert type(a.state_dict()["step_size"]) is int and type(a.state_dict()["gamma"]) is float
    one_cycle = sp.OneCycleLR(sgd(momentum=0.9), max_lr=np.float64(0.5), total_steps=np.int64(10))
    assert one_cycle.get_last_lr() == [pytest.approx(0.02)]
    with pytest.raises(ValueError, match="step_size must be a positive integer, got np.True_"):
        sp.StepLR(sgd(), np.True_)


def test_a_rate_that_leaves_the_float_range_is_refused_and_changes_nothing():
    """ExponentialLR(gamma=10) raised OverflowError at step 309, after counting the step."""
    optimizer = sp.SGD([sp.Parameter(np.zeros(3, np.float32))], lr=0.1)
    scheduler = sp.ExponentialLR(optimizer, gamma=10.0)
    for _ in range(308):
        scheduler.step()
    before = (scheduler.last_epoch, optimizer.param_groups[0]["lr"])
    with pytest.raises(ValueError, match="ExponentialLR's learning rate leaves the float range at step 309"):
        scheduler.step()
    assert (scheduler.last_epoch, optimizer.param_groups[0]["lr"]) == before
