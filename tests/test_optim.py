"""Optimizers: every option against the NumPy twin of its documented formula, PyTorch where
importable, the course's momentum form, state round trips, and validation."""

import itertools

import numpy as np
import pytest

import saddlepoint as sp
from saddlepoint.optim import SGD, Adagrad, Adam, AdamW, RMSprop

import numpy_reference as ref

try:
    import torch
except ImportError:
    torch = None

# Same formula, same operation order: float32 agrees to a few units in the last place.
STEP_TOLERANCE = {np.float32: dict(rtol=1e-5, atol=1e-6), np.float64: dict(rtol=1e-12, atol=1e-14)}


def sgd_options():
    for momentum, dampening, nesterov, wd, maximize in itertools.product(
        [0.0, 0.9], [0.0, 0.5], [False, True], [0.0, 0.01], [False, True]
    ):
        if nesterov and (momentum == 0 or dampening != 0):
            continue
        yield dict(
            lr=0.05,
            momentum=momentum,
            dampening=dampening,
            nesterov=nesterov,
            weight_decay=wd,
            maximize=maximize,
        )


CASES = (
    [("sgd", SGD, ref.sgd, o) for o in sgd_options()]
    + [
        (
            "adagrad",
            Adagrad,
            ref.adagrad,
            dict(lr=0.1, lr_decay=d, weight_decay=wd, initial_accumulator_value=a, maximize=mx),
        )
        for d, wd, a, mx in itertools.product([0.0, 0.01], [0.0, 0.1], [0.0, 0.1], [False, True])
    ]
    + [
        ("rmsprop", RMSprop, ref.rmsprop, dict(lr=0.01, centered=c, momentum=m, weight_decay=wd, maximize=mx))
        for c, m, wd, mx in itertools.product([False, True], [0.0, 0.9], [0.0, 0.1], [False, True])
    ]
    + [
        (name, cls, ref.adam, dict(lr=0.01, amsgrad=a, weight_decay=wd, maximize=mx))
        for (name, cls), a, wd, mx in itertools.product(
            [("adam", Adam), ("adamw", AdamW)], [False, True], [0.0, 0.1], [False, True]
        )
    ]
)


def case_id(case):
    name, _, _, options = case
    return name + "-" + "-".join(f"{k}={v}" for k, v in options.items() if k != "lr")


def run_both(cls, twin, options, dtype, size, steps=100, seed=0):
    rng = np.random.default_rng(seed)
    start = rng.standard_normal(size).astype(dtype)
    param = sp.Parameter(start)
    optimizer = cls([param], **options)
    expected, state = start.copy(), {}
    twin_options = dict(options)
    if cls is AdamW:
        twin_options["decoupled"] = True
    gradients = []
    for _ in range(steps):
        g = rng.standard_normal(size).astype(dtype)
        gradients.append(g)
        param.grad[:] = g
        optimizer.step()
        expected = twin(expected, g, state, **twin_options)
        assert expected.dtype == dtype
    return start, gradients, param.data, expected


@pytest.mark.parametrize("case", CASES, ids=case_id)
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_100_steps_match_the_numpy_formula(case, dtype):
    _, cls, twin, options = case
    _, _, ours, expected = run_both(cls, twin, options, dtype, size=257)
    np.testing.assert_allclose(ours, expected, **STEP_TOLERANCE[dtype])


@pytest.mark.parametrize("case", [CASES[5], CASES[-1], CASES[-9], CASES[20]], ids=case_id)
def test_large_parameters_take_the_parallel_path_and_still_match(case):
    _, cls, twin, options = case
    _, _, ours, expected = run_both(cls, twin, options, np.float64, size=200_003, steps=5)
    np.testing.assert_allclose(ours, expected, rtol=1e-12, atol=1e-14)


TORCH_NAMES = {"sgd": "SGD", "adagrad": "Adagrad", "rmsprop": "RMSprop", "adam": "Adam", "adamw": "AdamW"}


@pytest.mark.skipif(torch is None, reason="PyTorch is not installed")
@pytest.mark.parametrize("case", CASES, ids=case_id)
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_100_steps_match_torch_optim(case, dtype):
    name, cls, twin, options = case
    start, gradients, ours, _ = run_both(cls, twin, options, dtype, size=257)
    theta = torch.tensor(start, requires_grad=True)
    optimizer = getattr(torch.optim, TORCH_NAMES[name])([theta], foreach=False, **options)
    for g in gradients:
        theta.grad = torch.tensor(g)
        optimizer.step()
    tol = dict(rtol=1e-4, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(ours, theta.detach().numpy(), **tol)


def test_course_momentum_form_gives_the_same_iterates():
    """The course: m = λm − ηg; θ = θ + m. PyTorch (ours): b = λb + g; θ = θ − ηb."""
    rng = np.random.default_rng(0)
    A = rng.standard_normal((5, 5))
    A = A @ A.T + np.eye(5)  # a quadratic bowl L = θᵀAθ/2, gradient Aθ
    lam, eta = 0.9, 0.01
    theta_course = rng.standard_normal(5)
    param = sp.Parameter(theta_course.copy())
    optimizer = SGD([param], lr=eta, momentum=lam)
    m = np.zeros(5)
    for _ in range(200):
        m = lam * m - eta * (A @ theta_course)
        theta_course = theta_course + m
        param.grad[:] = A @ param.data
        optimizer.step()
        np.testing.assert_allclose(param.data, theta_course, rtol=1e-12, atol=1e-14)


def train_steps(model, optimizer, x, y, steps):
    loss_fn = sp.CrossEntropyLoss()
    for _ in range(steps):
        loss_fn(model(x), y)
        optimizer.zero_grad()
        model.backward(loss_fn.backward())
        optimizer.step()


@pytest.mark.parametrize(
    "make",
    [
        lambda p: SGD(p, lr=0.05, momentum=0.9, nesterov=True),
        lambda p: Adagrad(p, lr=0.05, lr_decay=0.01),
        lambda p: RMSprop(p, lr=0.01, momentum=0.5, centered=True),
        lambda p: Adam(p, lr=0.01, amsgrad=True),
        lambda p: AdamW([{"params": p[:2]}, {"params": p[2:], "lr": 0.001}], lr=0.01),
    ],
    ids=["sgd", "adagrad", "rmsprop", "adam", "adamw-groups"],
)
def test_resuming_from_state_dicts_is_bit_identical(make):
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((64, 8)).astype(np.float32), rng.integers(0, 3, 64)
    model = sp.mlp([8, 16, 3], rng=1)
    optimizer = make(model.parameters())
    train_steps(model, optimizer, x, y, 10)
    model_state, optimizer_state = model.state_dict(), optimizer.state_dict()
    train_steps(model, optimizer, x, y, 10)
    uninterrupted = model.state_dict()

    resumed = sp.mlp([8, 16, 3], rng=2)
    resumed.load_state_dict(model_state)
    resumed_optimizer = make(resumed.parameters())
    resumed_optimizer.load_state_dict(optimizer_state)
    train_steps(resumed, resumed_optimizer, x, y, 10)
    for name, array in resumed.state_dict().items():
        assert array.tobytes() == uninterrupted[name].tobytes(), name


def test_state_is_created_lazily_and_saved_by_index():
    param = sp.Parameter(np.zeros(3))
    optimizer = Adam([param])
    assert optimizer.state == {}
    param.grad[:] = 1.0
    optimizer.step()
    state = optimizer.state_dict()
    assert set(state["state"][0]) == {"step", "exp_avg", "exp_avg_sq"}
    assert state["state"][0]["step"] == 1
    assert state["param_groups"][0]["params"] == [0]


def test_load_state_dict_that_does_not_fit_changes_nothing():
    param = sp.Parameter(np.zeros(3))
    optimizer = Adam([param])
    param.grad[:] = 1.0
    optimizer.step()
    saved = optimizer.state_dict()
    saved["state"][0]["exp_avg"] = np.zeros(4)
    before = optimizer.state_dict()
    with pytest.raises(ValueError, match=r"state\[0\]\['exp_avg'\] must have shape \(3,\), got \(4,\)"):
        optimizer.load_state_dict(saved)
    np.testing.assert_array_equal(optimizer.state[param]["exp_avg"], before["state"][0]["exp_avg"])


def test_closure_is_called_and_its_loss_returned():
    param = sp.Parameter(np.ones(2))
    optimizer = SGD([param], lr=0.1)

    def closure():
        param.grad[:] = 2 * param.data
        return float(param.data @ param.data)

    assert optimizer.step(closure) == 2.0
    np.testing.assert_allclose(param.data, 0.8)


@pytest.mark.parametrize(
    "make,message",
    [
        (lambda p: SGD(p, lr=-1), r"lr must be a finite number >= 0, got -1"),
        (lambda p: SGD(p, lr=0.1, momentum=1.5), r"momentum must be in \[0, 1\), got 1.5"),
        (lambda p: SGD(p, lr=0.1, nesterov=True), "nesterov needs momentum > 0"),
        (
            lambda p: SGD(p, lr=0.1, weight_decay=-1e-4),
            r"weight_decay must be a finite number >= 0, got -0.0001",
        ),
        (lambda p: Adagrad(p, eps=-1.0), r"eps must be a finite number >= 0, got -1.0"),
        (lambda p: RMSprop(p, alpha=1.0), r"alpha must be in \[0, 1\), got 1.0"),
        (lambda p: Adam(p, betas=(0.9, 1.0)), r"betas\[1\] must be in \[0, 1\), got 1.0"),
        (lambda p: Adam(p, lr=float("nan")), "lr must be a finite number >= 0, got nan"),
        (lambda p: AdamW(p, betas=(0.9,)), r"betas must be a pair"),
    ],
)
def test_hyperparameters_are_validated(make, message):
    with pytest.raises(ValueError, match=message):
        make([sp.Parameter(np.zeros(2))])


def test_optimizer_rejects_non_parameters():
    with pytest.raises(TypeError, match="params\\[0\\] must be a saddlepoint Parameter, got ndarray"):
        SGD([np.zeros(2)], lr=0.1)


@pytest.mark.parametrize(
    "make",
    [lambda w: SGD([w, w], lr=0.1), lambda w: Adam([{"params": [w, sp.Parameter(np.zeros(2)), w]}])],
    ids=["list", "group"],
)
def test_a_parameter_listed_twice_is_rejected(make):
    w = sp.Parameter(np.zeros(2))
    with pytest.raises(ValueError, match=r"params\[\d\] is the same Parameter as params\[0\]"):
        make(w)


# Each: optimizer, hyperparameter, a value the constructor refuses.
BAD_VALUES = [
    (SGD, "lr", -1),
    (SGD, "lr", float("nan")),
    (SGD, "lr", "x"),
    (SGD, "momentum", 1.5),
    (SGD, "nesterov", "yes"),
    (SGD, "weight_decay", -1.0),
    (Adagrad, "lr_decay", -1.0),
    (Adagrad, "eps", float("inf")),
    (RMSprop, "alpha", 1.0),
    (RMSprop, "centered", 2),
    (Adam, "betas", (2, 3)),
    (Adam, "betas", (0.9,)),
    (Adam, "eps", -1),
    (Adam, "amsgrad", None),
    (AdamW, "weight_decay", float("nan")),
    (AdamW, "lr", 10**400),
]


def trained_optimizer(cls):
    params = [sp.Parameter(np.ones(3)), sp.Parameter(np.ones((2, 2)))]
    kwargs = {"momentum": 0.9} if cls is SGD else {}
    optimizer = cls(params, lr=0.1, **kwargs)
    for p in params:
        p.grad[...] = 0.5
    optimizer.step()
    return optimizer


def fingerprint(optimizer):
    state = optimizer.state_dict()
    arrays = {
        (i, k): v.tobytes()
        for i, s in state["state"].items()
        for k, v in s.items()
        if isinstance(v, np.ndarray)
    }
    scalars = {
        (i, k): v for i, s in state["state"].items() for k, v in s.items() if not isinstance(v, np.ndarray)
    }
    return repr(state["param_groups"]), arrays, scalars


@pytest.mark.parametrize(
    "cls,key,value", BAD_VALUES, ids=[f"{c.__name__}-{k}-{v!r}"[:40] for c, k, v in BAD_VALUES]
)
def test_loaded_hyperparameters_get_the_constructors_validation(cls, key, value):
    with pytest.raises(ValueError) as from_constructor:
        cls([sp.Parameter(np.zeros(2))], **{key: value})
    optimizer = trained_optimizer(cls)
    saved = optimizer.state_dict()
    saved["param_groups"][0][key] = value
    before = fingerprint(optimizer)
    with pytest.raises(ValueError) as from_load:
        optimizer.load_state_dict(saved)
    assert str(from_load.value).endswith(str(from_constructor.value))  # one validation, both paths
    assert fingerprint(optimizer) == before


@pytest.mark.parametrize(
    "cls,change,message",
    [
        (
            Adam,
            lambda s: s["state"][0].__setitem__("step", -1),
            r"step'\] must be an integer in \[0, 2\*\*63\), got -1",
        ),
        (Adam, lambda s: s["state"][0].__setitem__("step", 2.0), "step'] must be an integer"),
        (Adam, lambda s: s["state"][0].__setitem__("step", True), "step'] must be an integer"),
        (Adam, lambda s: s["state"][0].pop("exp_avg_sq"), r"missing \['exp_avg_sq'\]"),
        (Adam, lambda s: s["state"][0].__setitem__("__class__", 1), r"unknown \['__class__'\]"),
        (Adam, lambda s: s["state"][0]["exp_avg"].__setitem__(0, np.nan), "NaN or infinite"),
        (Adam, lambda s: s["state"][0]["exp_avg_sq"].__setitem__(0, -1.0), "sum of squares and must be >= 0"),
        (Adam, lambda s: s["state"][0].__setitem__("exp_avg", np.ones(3, np.int64)), "float dtype"),
        (Adam, lambda s: s["state"][0].__setitem__("exp_avg", "abc"), "must be an array"),
        (Adam, lambda s: s["state"].__setitem__(7, {}), "unknown parameter 7"),
        (Adam, lambda s: s["param_groups"][0].pop("eps"), r"lacks the hyperparameters \['eps'\]"),
        (Adam, lambda s: s["param_groups"][0].__setitem__("params", [0, 0]), "appears twice"),
        (
            Adam,
            lambda s: s["param_groups"][0].__setitem__("initial_lr", -2.0),
            "initial_lr must be a finite number >= 0",
        ),
        (Adagrad, lambda s: s["state"][1]["sum"].__setitem__(0, -1.0), "sum of squares"),
        (
            SGD,
            lambda s: s["state"][1].__setitem__("momentum_buffer", np.zeros(4)),
            r"must have shape \(2, 2\), got \(4,\)",
        ),
        (Adam, lambda s: s.pop("state"), "must be a dict with 'state' and 'param_groups'"),
        (
            Adam,
            lambda s: s["param_groups"][0].__setitem__("foo", [1, 2]),
            r"unknown hyperparameters \['foo'\]",
        ),
    ],
)
def test_loaded_state_is_checked_before_anything_changes(cls, change, message):
    optimizer = trained_optimizer(cls)
    saved = optimizer.state_dict()
    change(saved)
    before = fingerprint(optimizer)
    with pytest.raises(ValueError, match=message):
        optimizer.load_state_dict(saved)
    assert fingerprint(optimizer) == before


def test_betas_loaded_from_json_become_a_tuple():
    optimizer = trained_optimizer(Adam)
    saved = optimizer.state_dict()
    saved["param_groups"][0]["betas"] = [0.8, 0.9]
    optimizer.load_state_dict(saved)
    assert optimizer.param_groups[0]["betas"] == (0.8, 0.9)


def test_flags_take_0_1_and_numpy_bools_and_betas_any_pair_of_numbers():
    p = [sp.Parameter(np.zeros(2))]
    sgd = SGD(p, lr=0.1, momentum=0.9, nesterov=1, maximize=np.bool_(False))
    assert sgd.param_groups[0]["nesterov"] is True and sgd.param_groups[0]["maximize"] is False
    adam = Adam(p, betas=np.array([0.9, 0.99]), amsgrad=np.int64(0))
    assert adam.param_groups[0]["betas"] == (0.9, 0.99)
    assert all(type(b) is float for b in adam.param_groups[0]["betas"])
    assert adam.param_groups[0]["amsgrad"] is False
    with pytest.raises(ValueError, match=r"amsgrad must be True or False \(or 0/1\), got 2"):
        Adam(p, amsgrad=2)


def test_loaded_state_beyond_the_parameters_dtype_is_refused():
    params = [sp.Parameter(np.ones(3, np.float32))]
    optimizer = Adam(params, lr=0.1)
    params[0].grad[...] = 0.5
    optimizer.step()
    saved = optimizer.state_dict()
    saved["state"][0]["exp_avg"] = np.full(3, 1e300)  # finite in float64, inf in float32
    before = fingerprint(optimizer)
    with pytest.raises(
        ValueError, match=r"exp_avg'\] holds NaN or infinite values \(or values beyond the range of float32"
    ):
        optimizer.load_state_dict(saved)
    assert fingerprint(optimizer) == before


class HalfStep(sp.Optimizer):
    """A custom optimizer as a user writes one: no flags, no state names declared."""

    def __init__(self, params, lr=0.1):
        super().__init__(params, dict(lr=lr))

    def _init_state(self, p, group):
        return {"step": 0, "last": np.zeros_like(p.data)}

    def _update(self, p, state, group):
        state["step"] += 1
        state["last"][...] = p.grad
        p.data -= group["lr"] * p.grad


def test_a_custom_optimizer_steps_and_round_trips_its_state():
    params = [sp.Parameter(np.ones(3)), sp.Parameter(np.ones((2, 2)))]
    optimizer = HalfStep(params, lr=0.5)
    for p in params:
        p.grad[...] = 0.5
    optimizer.step()
    np.testing.assert_array_equal(params[0].data, 0.75)
    saved = optimizer.state_dict()
    other = HalfStep([sp.Parameter(np.ones(3)), sp.Parameter(np.ones((2, 2)))], lr=0.1)
    other.load_state_dict(saved)
    assert fingerprint(other) == fingerprint(optimizer)
    saved["state"][1]["last"] = np.zeros(3)  # generic checks still apply: the parameter's shape
    with pytest.raises(ValueError, match=r"state\[1\]\['last'\] must have shape \(2, 2\)"):
        other.load_state_dict(saved)
