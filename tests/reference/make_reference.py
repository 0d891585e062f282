"""Writes the PyTorch results that tests/test_reference.py compares saddlepoint against.

CI has no PyTorch, so its parity tests (tests/test_optim.py, test_schedule.py, ...) are skipped
there. This script runs PyTorch once and keeps what it computed next to it; the comparison
tests then need only NumPy. It imports torch and numpy, never saddlepoint, so the references do
not depend on the code they check. Run it from the repository root after changing a case:

    /path/to/venv-with-torch/bin/python tests/reference/make_reference.py

It writes, for each area (optim, schedule, loss, layer, clip, train, curvature), ``<area>.npz``
holding the inputs (drawn by NumPy from the area's fixed seed) and PyTorch's outputs, keyed
``"<case id>/<name>"``; ``cases.json`` with every case's hyperparameters, the seeds and the
versions of torch and numpy that made the files; and ``torch_weights.safetensors``, a state
dict written by PyTorch for the weight-file round trip.
"""

import json
import math
import platform
import sys
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file

HERE = Path(__file__).resolve().parent
DTYPES = {"f64": np.float64, "f32": np.float32}
TORCH_DTYPES = {"f64": torch.float64, "f32": torch.float32}
OPTIM_STEPS = 10  # optimizer steps per case
SCHEDULE_STEPS = 30  # scheduler steps per case (the live test's 30)
TRAIN_STEPS = 10  # training steps of the small networks


class Area:
    """The cases of one area and their arrays, keyed ``"<case id>/<name>"``."""

    def __init__(self, name, seed, **settings):
        self.name, self.seed, self.settings = name, seed, settings
        self.rng = np.random.default_rng(seed)
        self.cases, self.arrays = [], {}

    def put(self, prefix, **arrays):
        for key, value in arrays.items():
            name = f"{prefix}/{key}"
            if name in self.arrays:
                raise ValueError(f"{self.name}: {name} written twice")
            self.arrays[name] = np.asarray(value)

    def add(self, case, **arrays):
        if any(case["id"] == c["id"] for c in self.cases):
            raise ValueError(f"{self.name}: case id {case['id']} twice")
        self.cases.append(case)
        self.put(case["id"], **arrays)

    def describe(self):
        return {"seed": self.seed, **self.settings, "cases": self.cases}


def numpy_of(tensor):
    return tensor.detach().numpy().copy()


def option_id(options):
    return "-".join(f"{k}={v}" for k, v in options.items() if k != "lr").replace(" ", "")


# --- optimizers --------------------------------------------------------------------------------


def optimizer_cases():
    """tests/test_optim.py's CASES (every option combination it checks against torch.optim),
    then defaults, other betas/alpha/eps and parameter groups."""
    cases = []
    for momentum in (0.0, 0.9):
        for dampening in (0.0, 0.5):
            for nesterov in (False, True):
                for wd in (0.0, 0.01):
                    for maximize in (False, True):
                        if nesterov and (momentum == 0 or dampening != 0):
                            continue
                        cases.append(
                            (
                                "SGD",
                                dict(
                                    lr=0.05,
                                    momentum=momentum,
                                    dampening=dampening,
                                    nesterov=nesterov,
                                    weight_decay=wd,
                                    maximize=maximize,
                                ),
                            )
                        )
    for decay in (0.0, 0.01):
        for wd in (0.0, 0.1):
            for init in (0.0, 0.1):
                for maximize in (False, True):
                    cases.append(
                        (
                            "Adagrad",
                            dict(
                                lr=0.1,
                                lr_decay=decay,
                                weight_decay=wd,
                                initial_accumulator_value=init,
                                maximize=maximize,
                            ),
                        )
                    )
    for centered in (False, True):
        for momentum in (0.0, 0.9):
            for wd in (0.0, 0.1):
                for maximize in (False, True):
                    cases.append(
                        (
                            "RMSprop",
                            dict(
                                lr=0.01,
                                centered=centered,
                                momentum=momentum,
                                weight_decay=wd,
                                maximize=maximize,
                            ),
                        )
                    )
    for name in ("Adam", "AdamW"):
        for amsgrad in (False, True):
            for wd in (0.0, 0.1):
                for maximize in (False, True):
                    cases.append((name, dict(lr=0.01, amsgrad=amsgrad, weight_decay=wd, maximize=maximize)))
    live = len(cases)
    cases += [(name, dict(lr=0.01)) for name in ("SGD", "Adagrad", "RMSprop", "Adam", "AdamW")]
    cases += [
        ("Adam", dict(lr=0.02, betas=[0.8, 0.99], eps=1e-6)),
        ("AdamW", dict(lr=0.02, betas=[0.5, 0.9], eps=1e-4, amsgrad=True)),
        ("RMSprop", dict(lr=0.01, alpha=0.9, eps=1e-6, centered=True)),
        ("Adagrad", dict(lr=0.1, eps=1e-6, lr_decay=0.1)),
    ]
    return [
        dict(
            id=f"{name}-{option_id(o)}" if option_id(o) else f"{name}-defaults",
            optimizer=name,
            options=o,
            groups=None,
            live=i < live,
        )
        for i, (name, o) in enumerate(cases)
    ]


def grouped_optimizer_cases():
    """Two parameter groups with their own hyperparameters (parameter i in group i)."""
    return [
        dict(
            id="SGD-groups",
            optimizer="SGD",
            options=dict(lr=0.05, momentum=0.9),
            live=False,
            groups=[dict(params=[0]), dict(params=[1], lr=0.01, nesterov=True, weight_decay=0.1)],
        ),
        dict(
            id="Adam-groups",
            optimizer="Adam",
            options=dict(lr=0.01),
            live=False,
            groups=[dict(params=[0], amsgrad=True), dict(params=[1], lr=0.001, betas=[0.5, 0.6])],
        ),
        dict(
            id="RMSprop-groups",
            optimizer="RMSprop",
            options=dict(lr=0.01),
            live=False,
            groups=[dict(params=[0], momentum=0.5), dict(params=[1], centered=True, alpha=0.5)],
        ),
    ]


def run_torch_optimizer(case, start, grads):
    params = [torch.tensor(s, requires_grad=True) for s in start]
    groups = (
        params
        if case["groups"] is None
        else [
            {**{k: v for k, v in g.items() if k != "params"}, "params": [params[i] for i in g["params"]]}
            for g in case["groups"]
        ]
    )
    options = {k: tuple(v) if isinstance(v, list) else v for k, v in case["options"].items()}
    for g in groups if case["groups"] else []:
        if "betas" in g:
            g["betas"] = tuple(g["betas"])
    optimizer = getattr(torch.optim, case["optimizer"])(groups, foreach=False, **options)
    trajectory = [np.empty((OPTIM_STEPS, *s.shape), s.dtype) for s in start]
    for t in range(OPTIM_STEPS):
        for p, g in zip(params, grads):
            p.grad = torch.tensor(g[t])
        optimizer.step()
        for i, p in enumerate(params):
            trajectory[i][t] = numpy_of(p)
    return trajectory


def make_optim():
    area = Area(
        "optim",
        12_001,
        steps=OPTIM_STEPS,
        shapes=[[3, 4], [5]],
        note="inputs/<dtype>/start<i> and grads<i> (one gradient per step) are shared by "
        "all cases; <case>/<dtype> holds the parameters after every step, flattened and "
        "concatenated: (steps, 17)",
    )
    inputs = {}
    for key, dtype in DTYPES.items():
        start = [area.rng.standard_normal(s).astype(dtype) for s in [(3, 4), (5,)]]
        grads = [area.rng.standard_normal((OPTIM_STEPS, *s.shape)).astype(dtype) for s in start]
        inputs[key] = start, grads
        area.put(
            f"inputs/{key}",
            **{f"start{i}": s for i, s in enumerate(start)},
            **{f"grads{i}": g for i, g in enumerate(grads)},
        )
    for case in optimizer_cases() + grouped_optimizer_cases():
        area.add(
            case,
            **{
                key: np.concatenate(
                    [t.reshape(OPTIM_STEPS, -1) for t in run_torch_optimizer(case, *inputs[key])], axis=1
                )
                for key in DTYPES
            },
        )
    return area


# --- schedulers --------------------------------------------------------------------------------


def torch_scheduler(spec, optimizer):
    """PyTorch's scheduler for a spec; LinearWarmup and InverseSqrtLR have no PyTorch class and
    are built from LinearLR and LambdaLR with the formulas of saddlepoint's docstrings."""
    schedulers = torch.optim.lr_scheduler
    kwargs = dict(spec.get("kwargs", {}))
    name = spec["name"]
    if name == "SequentialLR":
        children = [torch_scheduler(child, optimizer) for child in spec["schedulers"]]
        return schedulers.SequentialLR(optimizer, children, kwargs["milestones"])
    if name == "LinearWarmup":  # linear from start_factor·base at 0 to base at warmup_steps
        return schedulers.LinearLR(
            optimizer,
            start_factor=kwargs.get("start_factor", 0.1),
            end_factor=1.0,
            total_iters=kwargs["warmup_steps"],
        )
    if name == "InverseSqrtLR":  # base · min(s / warmup, sqrt(warmup / s)) with s = t + 1
        warmup = kwargs["warmup_steps"]
        return schedulers.LambdaLR(optimizer, lambda t: min((t + 1) / warmup, math.sqrt(warmup / (t + 1))))
    if name == "ReduceLROnPlateau" and isinstance(kwargs.get("min_lr"), list):
        kwargs["min_lr"] = list(kwargs["min_lr"])
    return getattr(schedulers, name)(optimizer, **kwargs)


SGD_TWO_GROUPS = dict(name="SGD", groups=[dict(lr=0.1, momentum=0.9), dict(lr=0.02, momentum=0.8)])
SGD_ONE_GROUP = dict(name="SGD", groups=[dict(lr=0.1, momentum=0.9)])
ADAM_TWO_GROUPS = dict(name="Adam", groups=[dict(lr=0.01), dict(lr=0.001, betas=[0.8, 0.99])])


def scheduler_cases():
    """tests/test_schedule.py's live cases (30 steps of SGD(lr=0.1, momentum=0.9)) first, then
    other arguments, two groups, Adam's betas, chains and the two schedules without a twin."""

    def case(id, spec, optimizer=SGD_TWO_GROUPS, live=False):
        return dict(id=id, scheduler=spec, optimizer=optimizer, live=live)

    def s(name, **kwargs):
        return dict(name=name, kwargs=kwargs)

    warmup_cosine = s("SequentialLR", milestones=[5])
    warmup_cosine["schedulers"] = [
        s("LinearLR", start_factor=0.1, end_factor=1.0, total_iters=5),
        s("CosineAnnealingLR", T_max=20, eta_min=0.001),
    ]
    three = s("SequentialLR", milestones=[4, 10])
    three["schedulers"] = [
        s("LinearLR", start_factor=0.5, total_iters=4),
        s("StepLR", step_size=3, gamma=0.5),
        s("ExponentialLR", gamma=0.9),
    ]
    warmup_then_sqrt = s("SequentialLR", milestones=[6])
    warmup_then_sqrt["schedulers"] = [
        s("LinearWarmup", warmup_steps=6, start_factor=0.2),
        s("CosineAnnealingLR", T_max=24),
    ]
    return [
        case("StepLR-live", s("StepLR", step_size=3, gamma=0.5), SGD_ONE_GROUP, True),
        case("MultiStepLR-live", s("MultiStepLR", milestones=[2, 5], gamma=0.1), SGD_ONE_GROUP, True),
        case("ExponentialLR-live", s("ExponentialLR", gamma=0.9), SGD_ONE_GROUP, True),
        case("CosineAnnealingLR-live", s("CosineAnnealingLR", T_max=10, eta_min=0.01), SGD_ONE_GROUP, True),
        case(
            "LinearLR-live",
            s("LinearLR", start_factor=0.25, end_factor=1.0, total_iters=4),
            SGD_ONE_GROUP,
            True,
        ),
        case("OneCycleLR-live", s("OneCycleLR", max_lr=1.0, total_steps=30), SGD_ONE_GROUP, True),
        case("StepLR-default-gamma", s("StepLR", step_size=2)),
        case("MultiStepLR-repeated-milestone", s("MultiStepLR", milestones=[3, 3, 7], gamma=0.5)),
        case("ExponentialLR-groups", s("ExponentialLR", gamma=0.95)),
        case("CosineAnnealingLR-eta_min-0", s("CosineAnnealingLR", T_max=7)),
        case("LinearLR-defaults", s("LinearLR")),
        case("LinearLR-decay", s("LinearLR", start_factor=1.0, end_factor=0.1, total_iters=10)),
        case(
            "OneCycleLR-linear",
            s(
                "OneCycleLR",
                max_lr=[1.0, 0.5],
                total_steps=30,
                pct_start=0.25,
                anneal_strategy="linear",
                base_momentum=0.8,
                max_momentum=0.9,
            ),
        ),
        case(
            "OneCycleLR-three-phase",
            s(
                "OneCycleLR",
                max_lr=0.5,
                total_steps=30,
                three_phase=True,
                div_factor=10.0,
                final_div_factor=100.0,
            ),
        ),
        case("OneCycleLR-no-momentum", s("OneCycleLR", max_lr=0.3, total_steps=30, cycle_momentum=False)),
        case("OneCycleLR-adam-betas", s("OneCycleLR", max_lr=0.01, total_steps=30), ADAM_TWO_GROUPS),
        case("SequentialLR-warmup-cosine", warmup_cosine),
        case("SequentialLR-three", three),
        case("LinearWarmup", s("LinearWarmup", warmup_steps=5)),
        case("LinearWarmup-cosine", warmup_then_sqrt),
        case("InverseSqrtLR", s("InverseSqrtLR", warmup_steps=4)),
    ]


def plateau_cases():
    """ReduceLROnPlateau on a metric sequence: the live test's case first."""

    def case(id, optimizer, live=False, **kwargs):
        return dict(
            id=id, scheduler=dict(name="ReduceLROnPlateau", kwargs=kwargs), optimizer=optimizer, live=live
        )

    one = dict(name="SGD", groups=[dict(lr=1.0)])
    two = dict(name="SGD", groups=[dict(lr=1.0), dict(lr=0.1)])
    return [
        case("ReduceLROnPlateau-live", one, True, factor=0.5, patience=2, cooldown=1, min_lr=0.01),
        case("ReduceLROnPlateau-defaults", two),
        case(
            "ReduceLROnPlateau-max-abs",
            two,
            mode="max",
            threshold_mode="abs",
            threshold=0.05,
            patience=1,
            factor=0.3,
            min_lr=[0.05, 0.0],
        ),
        case("ReduceLROnPlateau-patience-0-eps", one, patience=0, factor=0.9, eps=0.02, threshold=0.0),
    ]


def torch_optimizer_for(spec):
    groups = [
        {**g, "params": [torch.zeros(2, dtype=torch.float64, requires_grad=True)]} for g in spec["groups"]
    ]
    for g in groups:
        if "betas" in g:
            g["betas"] = tuple(g["betas"])
    return getattr(torch.optim, spec["name"])(groups)


def first_momentum(group):
    return group["betas"][0] if "betas" in group else group.get("momentum", 0.0)


def make_schedule():
    area = Area(
        "schedule",
        12_002,
        steps=SCHEDULE_STEPS,
        note="<case>/lr and <case>/momentum (beta1 for Adam) are (steps, groups): each group's "
        "value before step t, as the optimizer would use it; for ReduceLROnPlateau the "
        "value after step(metrics[t])",
    )
    for case in scheduler_cases():
        optimizer = torch_optimizer_for(case["optimizer"])
        scheduler = torch_scheduler(case["scheduler"], optimizer)
        lr, momentum = np.empty((2, SCHEDULE_STEPS, len(optimizer.param_groups)))
        for t in range(SCHEDULE_STEPS):
            lr[t] = [g["lr"] for g in optimizer.param_groups]
            momentum[t] = [first_momentum(g) for g in optimizer.param_groups]
            optimizer.step()
            scheduler.step()
        area.add(case, lr=lr, momentum=momentum)
    live_metrics = np.random.default_rng(0).uniform(0.5, 1.0, 60).cumsum()[::-1] % 3  # the live test's
    for case in plateau_cases():
        optimizer = torch_optimizer_for(case["optimizer"])
        scheduler = torch_scheduler(case["scheduler"], optimizer)
        metrics = live_metrics if case["live"] else area.rng.uniform(0, 1, 60).cumsum() % 2.5
        lr = np.empty((len(metrics), len(optimizer.param_groups)))
        for t, metric in enumerate(metrics):
            scheduler.step(metric)
            lr[t] = [g["lr"] for g in optimizer.param_groups]
        area.add(case, metrics=metrics, lr=lr)
    return area


# --- losses ------------------------------------------------------------------------------------


def loss_inputs(rng, case):
    """Inputs with the edge cases each loss has: ties for L1, large logits for the others."""
    kind, shape = case["loss"], tuple(case["shape"])
    x = rng.standard_normal(shape) * 2
    if kind in ("MSELoss", "L1Loss"):
        target = rng.standard_normal(shape)
        target.flat[::4] = x.flat[::4]  # ties: L1's gradient is 0 there, as PyTorch's sign
        return x, target
    if kind == "BCEWithLogitsLoss":
        x.flat[::5] = 40.0 * np.sign(x.flat[::5])  # saturated logits
        target = rng.uniform(0, 1, shape) if case.get("soft") else rng.integers(0, 2, shape).astype(float)
        return x, target
    n, c = shape
    if case.get("large"):
        x = x * 50
    if case.get("probabilities"):
        target = rng.dirichlet(np.ones(c), n)
        target[0] = np.eye(c)[1]  # a one-hot row among the soft ones
        return x, target
    return x, rng.integers(0, c, n)


def loss_cases():
    def ce(id, **kwargs):
        return dict(
            id=f"CrossEntropyLoss-{id}",
            loss="CrossEntropyLoss",
            shape=[10, 4],
            kwargs=kwargs,
            probabilities="probabilities" in id,
            large="large" in id,
        )

    weight = [0.5, 2.0, 1.0, 0.1]
    return [
        dict(id="MSELoss-2d", loss="MSELoss", shape=[6, 3], kwargs={}),
        dict(id="MSELoss-1d", loss="MSELoss", shape=[7], kwargs={}),
        dict(id="MSELoss-3d", loss="MSELoss", shape=[4, 3, 2], kwargs={}),
        dict(id="L1Loss-2d-ties", loss="L1Loss", shape=[6, 3], kwargs={}),
        dict(id="L1Loss-1d-ties", loss="L1Loss", shape=[9], kwargs={}),
        dict(id="BCEWithLogitsLoss-hard", loss="BCEWithLogitsLoss", shape=[8, 3], kwargs={}),
        dict(id="BCEWithLogitsLoss-soft", loss="BCEWithLogitsLoss", shape=[8, 3], kwargs={}, soft=True),
        dict(id="BCEWithLogitsLoss-1d", loss="BCEWithLogitsLoss", shape=[11], kwargs={}, soft=True),
        ce("labels"),
        ce("labels-large"),
        ce("labels-weight", weight=weight),
        ce("labels-smoothing", label_smoothing=0.1),
        ce("labels-weight-smoothing", weight=weight, label_smoothing=0.25),
        ce("labels-smoothing-1", label_smoothing=1.0),
        ce("probabilities"),
        ce("probabilities-large"),
        ce("probabilities-weight", weight=weight),
        ce("probabilities-smoothing", label_smoothing=0.1),
        ce("probabilities-weight-smoothing", weight=weight, label_smoothing=0.3),
    ]


def torch_loss(case, tdtype):
    kwargs = dict(case["kwargs"])
    if "weight" in kwargs:
        kwargs["weight"] = torch.tensor(kwargs["weight"], dtype=tdtype)
    return getattr(torch.nn, case["loss"])(**kwargs)


def make_loss():
    area = Area(
        "loss",
        12_003,
        note="mean reduction only (saddlepoint's losses are means); <case>/<dtype>/"
        "input, target, loss (the value) and grad (of the input)",
    )
    for case in loss_cases():
        x, target = loss_inputs(area.rng, case)
        arrays = {}
        for key, dtype in DTYPES.items():
            xt = torch.tensor(x.astype(dtype), requires_grad=True)
            labels = case["loss"] == "CrossEntropyLoss" and not case["probabilities"]
            tt = torch.tensor(target) if labels else torch.tensor(target.astype(dtype))
            loss = torch_loss(case, TORCH_DTYPES[key])(xt, tt)
            loss.backward()
            arrays.update(
                {
                    f"{key}/input": x.astype(dtype),
                    f"{key}/target": numpy_of(tt),
                    f"{key}/loss": numpy_of(loss),
                    f"{key}/grad": numpy_of(xt.grad),
                }
            )
        area.add(case, **arrays)
    return area


# --- layers ------------------------------------------------------------------------------------

TORCH_LAYER = {
    "Linear": "Linear",
    "ReLU": "ReLU",
    "LeakyReLU": "LeakyReLU",
    "Sigmoid": "Sigmoid",
    "Tanh": "Tanh",
    "HardSigmoid": "Hardsigmoid",
    "Identity": "Identity",
    "Dropout": "Dropout",
    "BatchNorm1d": "BatchNorm1d",
    "LayerNorm": "LayerNorm",
}
PARAMETRIC = ("Linear", "BatchNorm1d", "LayerNorm")


def torch_layer(spec, key):
    kwargs = dict(spec.get("kwargs", {}))
    if spec["layer"] in PARAMETRIC:
        kwargs["dtype"] = TORCH_DTYPES[key]
    return getattr(torch.nn, TORCH_LAYER[spec["layer"]])(**kwargs)


def activation_input(rng, layer):
    x = rng.standard_normal((6, 5)) * 3
    x[0, :] = 0.0  # ReLU's and LeakyReLU's kink: derivative 0 (slope) there, as PyTorch
    if layer == "HardSigmoid":
        x[1, :] = [-3.0, 3.0, -3.5, 3.5, 2.999]  # the ends of the linear piece
    if layer == "Sigmoid":
        x[1, :] = [-40.0, 40.0, -700.0, 700.0, 1e-8]
    return x


def layer_cases():
    cases = [
        dict(id="Linear", layer="Linear", kwargs=dict(in_features=5, out_features=4), shape=[6, 5]),
        dict(
            id="Linear-no-bias",
            layer="Linear",
            kwargs=dict(in_features=5, out_features=4, bias=False),
            shape=[6, 5],
        ),
    ]
    for layer, kwargs in [
        ("ReLU", {}),
        ("LeakyReLU", {}),
        ("LeakyReLU", dict(negative_slope=0.2)),
        ("Sigmoid", {}),
        ("Tanh", {}),
        ("HardSigmoid", {}),
        ("Identity", {}),
        ("Dropout", dict(p=0.5)),
    ]:
        id = layer + ("-" + option_id(kwargs) if kwargs else "") + ("-eval" if layer == "Dropout" else "")
        cases.append(dict(id=id, layer=layer, kwargs=kwargs, shape=[6, 5], eval=layer == "Dropout"))
    for shape in ([32, 6], [8, 6, 5]):
        tag = f"{len(shape)}d"
        cases += [
            dict(
                id=f"BatchNorm1d-{tag}",
                layer="BatchNorm1d",
                kwargs=dict(num_features=6, momentum=0.2),
                shape=shape,
                train_steps=3,
                live=True,
            ),
            dict(
                id=f"BatchNorm1d-{tag}-cumulative",
                layer="BatchNorm1d",
                kwargs=dict(num_features=6, momentum=None, eps=1e-3),
                shape=shape,
                train_steps=3,
            ),
        ]
    cases += [
        dict(
            id="BatchNorm1d-2d-no-affine",
            layer="BatchNorm1d",
            kwargs=dict(num_features=6, affine=False),
            shape=[16, 6],
            train_steps=2,
        ),
        dict(
            id="BatchNorm1d-3d-no-running-stats",
            layer="BatchNorm1d",
            kwargs=dict(num_features=6, track_running_stats=False),
            shape=[4, 6, 3],
            train_steps=2,
        ),
        dict(
            id="LayerNorm-3x4",
            layer="LayerNorm",
            kwargs=dict(normalized_shape=[3, 4]),
            shape=[5, 3, 4],
            live=True,
        ),
        dict(
            id="LayerNorm-6-eps", layer="LayerNorm", kwargs=dict(normalized_shape=[6], eps=1e-3), shape=[7, 6]
        ),
        dict(
            id="LayerNorm-no-affine",
            layer="LayerNorm",
            kwargs=dict(normalized_shape=[2, 5], elementwise_affine=False),
            shape=[3, 4, 2, 5],
        ),
    ]
    return cases


def set_parameters(module, arrays):
    with torch.no_grad():
        for name, p in module.named_parameters():
            p.copy_(torch.from_numpy(arrays[name]))


def parameter_arrays(rng, module, dtype):
    """Random weights (not the initial ones/zeros, so the affine terms are exercised)."""
    return {
        name: (rng.standard_normal(tuple(p.shape)) * 0.5 + (name == "weight")).astype(dtype)
        for name, p in module.named_parameters()
    }


def forward_backward(layer, x, dy):
    xt = torch.tensor(x, requires_grad=True)
    y = layer(xt)
    y.backward(torch.tensor(dy))
    return numpy_of(y), numpy_of(xt.grad)


def run_simple_layer(rng, case, key, dtype, arrays):
    layer = torch_layer(case, key)
    x = (
        activation_input(rng, case["layer"])
        if case["layer"] not in PARAMETRIC
        else rng.standard_normal(case["shape"])
    ).astype(dtype)
    params = parameter_arrays(rng, layer, dtype)
    set_parameters(layer, params)
    if case.get("eval"):
        layer.eval()
    y = layer(torch.tensor(x))
    dy = rng.standard_normal(y.shape).astype(dtype)
    out, dx = forward_backward(layer, x, dy)
    arrays.update({f"{key}/x": x, f"{key}/dy": dy, f"{key}/out": out, f"{key}/dx": dx})
    arrays.update({f"{key}/{name}": a for name, a in params.items()})
    arrays.update({f"{key}/{name}_grad": numpy_of(p.grad) for name, p in layer.named_parameters()})


def run_batch_norm(rng, case, key, dtype, arrays):
    """tests/test_norm.py's sequence: train steps on shifted batches (gradients accumulate, as
    there), then one eval forward and backward."""
    layer = torch_layer(case, key)
    params = parameter_arrays(rng, layer, dtype)
    set_parameters(layer, params)
    shape, steps = tuple(case["shape"]), case["train_steps"]
    xs = np.stack([rng.standard_normal(shape) * 2 + step for step in range(steps)]).astype(dtype)
    dys = rng.standard_normal((steps, *shape)).astype(dtype)
    outs, dxs = zip(*(forward_backward(layer, x, dy) for x, dy in zip(xs, dys)))
    arrays.update(
        {f"{key}/x": xs, f"{key}/dy": dys, f"{key}/out": np.stack(outs), f"{key}/dx": np.stack(dxs)}
    )
    arrays.update({f"{key}/{name}": a for name, a in params.items()})
    arrays.update({f"{key}/{name}_grad": numpy_of(p.grad) for name, p in layer.named_parameters()})
    arrays.update({f"{key}/{name}": numpy_of(b) for name, b in layer.named_buffers()})
    layer.eval()
    x = rng.standard_normal(shape).astype(dtype)
    dy = rng.standard_normal(shape).astype(dtype)
    out, dx = forward_backward(layer, x, dy)
    arrays.update({f"{key}/eval_x": x, f"{key}/eval_dy": dy, f"{key}/eval_out": out, f"{key}/eval_dx": dx})


def make_layer():
    area = Area(
        "layer",
        12_004,
        note="<case>/<dtype>/x, dy, out, dx, the parameters set before the "
        "forward pass and their gradients; BatchNorm1d: one row of x, dy, "
        "out, dx per train step, then the buffers and eval_*",
    )
    for case in layer_cases():
        arrays = {}
        for key, dtype in DTYPES.items():
            run = run_batch_norm if case["layer"] == "BatchNorm1d" else run_simple_layer
            run(area.rng, case, key, dtype, arrays)
        area.add(case, **arrays)
    return area


# --- clipping ----------------------------------------------------------------------------------


def clip_cases():
    cases = [
        dict(
            id=f"clip_grad_norm_-{norm}",
            function="clip_grad_norm_",
            kwargs=dict(max_norm=0.5, norm_type=norm),
            live=norm in ("2.0", "inf"),
        )
        for norm in ("1.0", "2.0", "3.0", "inf")
    ]
    cases += [
        dict(id="clip_grad_norm_-no-clip", function="clip_grad_norm_", kwargs=dict(max_norm=1e3)),
        dict(
            id="clip_grad_norm_-0.5-norm",
            function="clip_grad_norm_",
            kwargs=dict(max_norm=2.0, norm_type="0.5"),
        ),
        dict(id="clip_grad_value_-0.5", function="clip_grad_value_", kwargs=dict(clip_value=0.5)),
        dict(id="clip_grad_value_-0", function="clip_grad_value_", kwargs=dict(clip_value=0.0)),
    ]
    return cases


def clip_kwargs(kwargs):
    """norm_type is written as a string in the JSON ("inf" is not a JSON number)."""
    return {k: float(v) if k == "norm_type" else v for k, v in kwargs.items()}


def make_clip():
    shapes = [[3, 4], [4], [500]]
    area = Area(
        "clip",
        12_005,
        shapes=shapes,
        note="inputs/<dtype>/grad<i> are the gradients before clipping, shared by all cases; "
        "<case>/<dtype>/grad<i> after, and total (clip_grad_norm_'s return value)",
    )
    grads = {
        key: [(area.rng.standard_normal(s) * 0.1).astype(dtype) for s in shapes]
        for key, dtype in DTYPES.items()
    }
    for key in DTYPES:
        area.put(f"inputs/{key}", **{f"grad{i}": g for i, g in enumerate(grads[key])})
    for case in clip_cases():
        arrays = {}
        for key in DTYPES:
            params = [torch.zeros(g.shape, dtype=TORCH_DTYPES[key], requires_grad=True) for g in grads[key]]
            for p, g in zip(params, grads[key]):
                p.grad = torch.tensor(g)
            result = getattr(torch.nn.utils, case["function"])(params, **clip_kwargs(case["kwargs"]))
            if result is not None:
                arrays[f"{key}/total"] = numpy_of(result)
            arrays.update({f"{key}/grad{i}": numpy_of(p.grad) for i, p in enumerate(params)})
        area.add(case, **arrays)
    return area


# --- training a small network ------------------------------------------------------------------

MLP = [
    dict(layer="Linear", kwargs=dict(in_features=8, out_features=16)),
    dict(layer="ReLU"),
    dict(layer="Linear", kwargs=dict(in_features=16, out_features=3)),
]
# No bias before BatchNorm1d: its gradient is zero up to rounding, which Adam or RMSprop would
# blow up into steps of random sign (in both libraries, differently).
NORMALIZED = [
    dict(layer="Linear", kwargs=dict(in_features=8, out_features=16, bias=False)),
    dict(layer="BatchNorm1d", kwargs=dict(num_features=16)),
    dict(layer="Tanh"),
    dict(layer="Linear", kwargs=dict(in_features=16, out_features=3)),
]


def torch_model(layers, key):
    return torch.nn.Sequential(*(torch_layer(spec, key) for spec in layers))


def initial_state(rng, model, dtype):
    """PyTorch's default initialization, U(±1/sqrt(fan_in)), drawn by NumPy; buffers as they are."""
    state = {}
    for name, tensor in model.state_dict().items():
        if name.endswith(("weight", "bias")) and tensor.ndim >= 1 and "running" not in name:
            module = model.get_submodule(name.rsplit(".", 1)[0])
            if isinstance(module, torch.nn.Linear):
                bound = 1.0 / math.sqrt(module.in_features)
                state[name] = rng.uniform(-bound, bound, tuple(tensor.shape)).astype(dtype)
                continue
        state[name] = numpy_of(tensor)
    return state


def train_cases():
    return [
        dict(id="mlp-SGD-momentum", model=MLP, optimizer="SGD", options=dict(lr=0.05, momentum=0.9)),
        dict(id="mlp-Adam", model=MLP, optimizer="Adam", options=dict(lr=0.01)),
        dict(id="mlp-AdamW-amsgrad", model=MLP, optimizer="AdamW", options=dict(lr=0.01, amsgrad=True)),
        dict(
            id="batchnorm-SGD-nesterov",
            model=NORMALIZED,
            optimizer="SGD",
            options=dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-3),
        ),
        dict(
            id="batchnorm-Adam", model=NORMALIZED, optimizer="Adam", options=dict(lr=0.01, weight_decay=1e-3)
        ),
    ]


def make_train():
    area = Area(
        "train",
        12_006,
        steps=TRAIN_STEPS,
        note="inputs/<dtype>/x and y (64 samples, 3 classes); <case>/<dtype>/init/<name> is the "
        "state dict before training, final/<name> after, losses the loss of every step "
        "(CrossEntropyLoss, full batch: forward, zero_grad, backward, step)",
    )
    x, y = area.rng.standard_normal((64, 8)), area.rng.integers(0, 3, 64)
    for key, dtype in DTYPES.items():
        area.put(f"inputs/{key}", x=x.astype(dtype), y=y)
    for case in train_cases():
        arrays = {}
        for key, dtype in DTYPES.items():
            model = torch_model(case["model"], key)
            init = initial_state(area.rng, model, dtype)
            model.load_state_dict({k: torch.from_numpy(v) for k, v in init.items()})
            optimizer = getattr(torch.optim, case["optimizer"])(
                model.parameters(), foreach=False, **case["options"]
            )
            losses = []
            xt, yt = torch.tensor(x.astype(dtype)), torch.tensor(y)
            for _ in range(TRAIN_STEPS):
                loss = torch.nn.functional.cross_entropy(model(xt), yt)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                losses.append(loss.item())
            arrays.update({f"{key}/init/{k}": v for k, v in init.items()})
            arrays.update({f"{key}/final/{k}": numpy_of(v) for k, v in model.state_dict().items()})
            arrays[f"{key}/losses"] = np.array(losses)
        area.add(case, **arrays)
    add_weight_file(area)
    return area


WEIGHT_FILE_MODEL = [
    dict(layer="Linear", kwargs=dict(in_features=4, out_features=8)),
    dict(layer="ReLU"),
    dict(layer="BatchNorm1d", kwargs=dict(num_features=8)),
    dict(layer="Linear", kwargs=dict(in_features=8, out_features=3)),
]


def add_weight_file(area):
    """tests/test_trainer.py's round trip: a float32 state dict written by PyTorch (running
    statistics moved by a few training batches) and the eval output it gives."""
    model = torch_model(WEIGHT_FILE_MODEL, "f32")
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.from_numpy(area.rng.standard_normal(tuple(p.shape)).astype(np.float32)))
        for _ in range(3):
            model(torch.tensor(area.rng.standard_normal((16, 4)).astype(np.float32) * 2 + 1))
    model.eval()
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, HERE / "torch_weights.safetensors")
    x = area.rng.standard_normal((5, 4)).astype(np.float32)
    area.add(
        dict(id="weight-file", model=WEIGHT_FILE_MODEL, file="torch_weights.safetensors", live=True),
        x=x,
        out=numpy_of(model(torch.tensor(x))),
    )


# --- curvature ---------------------------------------------------------------------------------


def flat_hessian_vector_product(model, loss_fn, x, y, vector):
    params = list(model.parameters())
    sizes = [p.numel() for p in params]
    parts = np.split(vector, np.cumsum(sizes)[:-1])
    pieces = [torch.from_numpy(part).reshape(p.shape) for part, p in zip(parts, params)]
    loss = loss_fn(model(x), y)
    grads = torch.autograd.grad(loss, params, create_graph=True)
    return torch.cat([g.reshape(-1) for g in torch.autograd.grad(grads, params, pieces)]).numpy()


def curvature_cases():
    relu = [
        dict(layer="Linear", kwargs=dict(in_features=8, out_features=100)),
        dict(layer="ReLU"),
        dict(layer="Linear", kwargs=dict(in_features=100, out_features=3)),
    ]

    def tanh(outputs):
        return [
            dict(layer="Linear", kwargs=dict(in_features=3, out_features=4)),
            dict(layer="Tanh"),
            dict(layer="Linear", kwargs=dict(in_features=4, out_features=outputs)),
        ]

    return [
        dict(
            id="relu-mlp-cross-entropy-hvp",
            model=relu,
            loss="CrossEntropyLoss",
            kwargs={},
            samples=1000,
            what="hessian_vector_product",
            live=True,
        ),
        dict(
            id="relu-mlp-weighted-cross-entropy-hvp",
            model=relu,
            loss="CrossEntropyLoss",
            kwargs=dict(weight=[1.0, 3.0, 0.5]),
            samples=300,
            what="hessian_vector_product",
        ),
        dict(
            id="tanh-mlp-cross-entropy-hessian",
            model=tanh(3),
            loss="CrossEntropyLoss",
            kwargs={},
            samples=20,
            what="hessian",
        ),
        dict(id="tanh-mlp-mse-hessian", model=tanh(2), loss="MSELoss", kwargs={}, samples=20, what="hessian"),
    ]


def make_curvature():
    area = Area(
        "curvature",
        12_007,
        note="float64; <case>/init/<name> the weights, x, y, and v with "
        "hvp = H v, or the full hessian in parameters_to_vector order",
    )
    for case in curvature_cases():
        model = torch_model(case["model"], "f64")
        init = initial_state(area.rng, model, np.float64)
        model.load_state_dict({k: torch.from_numpy(v) for k, v in init.items()})
        n_in, n_out = case["model"][0]["kwargs"]["in_features"], case["model"][-1]["kwargs"]["out_features"]
        x = area.rng.standard_normal((case["samples"], n_in))
        if case["loss"] == "MSELoss":
            y = area.rng.standard_normal((case["samples"], n_out))
        else:
            y = area.rng.integers(0, n_out, case["samples"])
        loss_fn = torch_loss(case, torch.float64)
        n = sum(p.numel() for p in model.parameters())
        xt, yt = torch.from_numpy(x), torch.from_numpy(y)
        arrays = {**{f"init/{k}": v for k, v in init.items()}, "x": x, "y": y}
        if case["what"] == "hessian":
            columns = [flat_hessian_vector_product(model, loss_fn, xt, yt, e) for e in np.eye(n)]
            arrays["hessian"] = np.stack(columns)
        else:
            v = area.rng.standard_normal(n)
            arrays.update(v=v, hvp=flat_hessian_vector_product(model, loss_fn, xt, yt, v))
        area.add(case, **arrays)
    return area


def main():
    torch.set_num_threads(1)
    areas = [
        make_optim(),
        make_schedule(),
        make_loss(),
        make_layer(),
        make_clip(),
        make_train(),
        make_curvature(),
    ]
    meta = {
        "generator": "tests/reference/make_reference.py",
        "torch": torch.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "areas": {area.name: area.describe() for area in areas},
    }
    for area in areas:
        np.savez_compressed(HERE / f"{area.name}.npz", **area.arrays)
    (HERE / "cases.json").write_text(json.dumps(meta, indent=1) + "\n")
    for path in sorted(HERE.iterdir()):
        if path.suffix in (".npz", ".json", ".safetensors"):
            print(f"{path.name:28} {path.stat().st_size:9,d} bytes", file=sys.stderr)


if __name__ == "__main__":
    main()
