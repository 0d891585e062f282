"""Every public layer, loss, optimizer and scheduler against hostile arguments, in a child process.

Constructors, ``forward``/``backward`` and ``step`` get, in turn, every hostile array of
core_sweep.hostile_arrays (other dtypes, strided, reversed, misaligned, read-only, non-finite ...),
wrong and zero shapes, non-arrays and out-of-range scalars. Each call must succeed or raise
``TypeError``/``ValueError``, and after a rejected call the object's state (parameters, their
gradients, buffers, optimizer state) must be bit-for-bit what it was. The sweep runs as this file
executed as a script, so a crash fails the test instead of killing pytest.
"""

import os
import sys

import numpy as np

import core_sweep


def test_public_api_takes_hostile_arguments_without_crashing_or_changing_state(cases):
    ran = core_sweep.run_in_child(os.path.abspath(__file__))
    cases.add(ran)
    assert ran > 2000


# ----------------------------------------------------------------------------- the child process


def _snapshot(*objects):
    """Copies of everything a rejected call must leave alone."""
    state = []
    for obj in objects:
        if hasattr(obj, "state_dict") and hasattr(obj, "parameters") and callable(obj.parameters):
            state += [np.array(v, copy=True) for v in obj.state_dict().values()]
            state += [np.array(p.grad, copy=True) for p in obj.parameters()]
            state.append(obj.training)
        elif hasattr(obj, "state_dict"):
            state.append(repr(obj.state_dict()))
        if hasattr(obj, "param_groups"):  # an optimizer: every key of its groups, not only saved ones
            state.append(repr([{k: v for k, v in g.items() if k != "params"} for g in obj.param_groups]))
    return state


def _same(a, b):
    if len(a) != len(b):
        return False
    for x, y in zip(a, b):
        if isinstance(x, np.ndarray):
            if not (
                isinstance(y, np.ndarray)
                and x.shape == y.shape
                and x.dtype == y.dtype
                and x.tobytes() == y.tobytes()
            ):
                return False
        elif x != y:
            return False
    return True


class PublicSweep:
    def __init__(self):
        self.core_sweep = core_sweep
        self.cases = 0
        self.failures = []

    def call(self, label, fn, *watched):
        """Runs ``fn()``; returns its result, or None when it was rejected (state checked)."""
        self.cases += 1
        before = _snapshot(*watched)
        try:
            return fn()
        except (TypeError, ValueError) as e:
            if not _same(before, _snapshot(*watched)):
                self.failures.append(f"{label}: rejected ({type(e).__name__}: {e}) but changed state")
        except BaseException as e:  # noqa: BLE001 - anything else is what the sweep hunts
            self.failures.append(f"{label}: {type(e).__name__}: {e}")
        return None

    def hostile(self, x):
        """Hostile stand-ins for the array ``x``."""
        yield from self.core_sweep.hostile_arrays(x)
        for v in self.core_sweep.NON_ARRAYS:
            yield f"non-array {v!r}", v
        first, rest = x.shape[0], x.shape[1:]
        for shape in [
            (first + 1, *rest),
            x.shape[:-1] or (1,),
            (*x.shape, 2),
            (0, *rest),
            (*x.shape[:-1], 0),
            (*x.shape[:-1], x.shape[-1] + 1),
        ]:
            yield f"shape {shape}", np.ones(shape, x.dtype)

    # --------------------------------------------------------------------------------- layers
    def layers(self):
        import saddlepoint as sp

        rng = np.random.default_rng(0)
        return {
            "Dense": lambda: sp.Dense(4, 3, rng=rng),
            "Dense(bias=False, float64)": lambda: sp.Dense(4, 3, bias=False, dtype=np.float64, rng=rng),
            "ReLU": sp.ReLU,
            "Sigmoid": sp.Sigmoid,
            "HardSigmoid": sp.HardSigmoid,
            "Tanh": sp.Tanh,
            "Identity": sp.Identity,
            "LeakyReLU": lambda: sp.LeakyReLU(0.1),
            "BatchNorm1d": lambda: sp.BatchNorm1d(4),
            "LayerNorm": lambda: sp.LayerNorm(4),
            "Dropout": lambda: sp.Dropout(0.5, rng=rng),
            "Sequential": lambda: sp.Sequential(
                sp.Dense(4, 3, rng=rng), sp.BatchNorm1d(3), sp.ReLU(), sp.Dense(3, 2, rng=rng)
            ),
            "mlp": lambda: sp.mlp([4, 5, 2], rng=0),
            "MaxPool2d": lambda: sp.nn.MaxPool2d(2, padding=1),
            "AvgPool2d": lambda: sp.nn.AvgPool2d((2, 3), stride=1),
            "AdaptiveAvgPool2d": lambda: sp.nn.AdaptiveAvgPool2d(2),
            "Conv2d": lambda: sp.Conv2d(2, 3, 3, padding=1, rng=rng),
            "BatchNorm2d": lambda: sp.BatchNorm2d(2),
            "Flatten": sp.Flatten,
            "Unflatten": lambda: sp.Unflatten(1, (2, 2)),
            "CNN": lambda: sp.Sequential(
                sp.Conv2d(2, 3, 3, padding=1, rng=rng),
                sp.BatchNorm2d(3),
                sp.ReLU(),
                sp.MaxPool2d(2),
                sp.Flatten(),
                sp.Dense(6, 2, rng=rng),
            ),
        }

    #: Input shapes of the layers that do not take (batch, 4).
    INPUT_SHAPES = {
        name: (5, 2, 3, 4)
        for name in ("MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d", "Conv2d", "BatchNorm2d", "Flatten", "CNN")
    }

    def sweep_layers(self):
        for name, make in self.layers().items():
            for training in (True, False):
                layer = make().train(training)
                dtype = next((p.dtype for p in layer.parameters()), np.dtype(np.float32))
                shape = self.INPUT_SHAPES.get(name, (5, 4))
                x = np.random.default_rng(1).standard_normal(shape).astype(dtype)
                y = self.call(f"{name} forward valid", lambda: layer.forward(x), layer)
                if y is None:
                    self.failures.append(f"{name}: a valid forward was rejected")
                    continue
                for label, bad in self.hostile(x):
                    fresh = make().train(training)
                    self.call(
                        f"{name}(train={training}) forward [{label}]", lambda: fresh.forward(bad), fresh
                    )
                    fresh.forward(x)
                    self.call(
                        f"{name}(train={training}) backward after [{label}]",
                        lambda: fresh.backward(np.ones_like(y)),
                        fresh,
                    )
                for label, bad in self.hostile(y):
                    fresh = make().train(training)
                    fresh.forward(x)
                    self.call(
                        f"{name}(train={training}) backward [{label}]", lambda: fresh.backward(bad), fresh
                    )

    def sweep_zero_sizes(self):
        """Empty batches for every layer, and empty lengths for batch norm on (N, C, L) data."""
        for name, make in self.layers().items():
            shapes = [(0, *self.INPUT_SHAPES.get(name, (5, 4))[1:])] + (
                [(2, 4, 0), (0, 4, 3), (2, 4, 3)] if name == "BatchNorm1d" else []
            )
            for training in (True, False):
                for shape in shapes:
                    layer = make().train(training)
                    dtype = next((p.dtype for p in layer.parameters()), np.dtype(np.float32))
                    x = np.ones(shape, dtype)
                    y = self.call(
                        f"{name}(train={training}) forward {shape}", lambda: layer.forward(x), layer
                    )
                    if y is not None:
                        self.call(
                            f"{name}(train={training}) backward {shape}",
                            lambda: layer.backward(np.ones_like(y)),
                            layer,
                        )

    def sweep_constructors(self):
        import saddlepoint as sp

        scalars = self.core_sweep.SCALARS
        constructors = {
            "Dense": (
                lambda **k: sp.Dense(**{"in_features": 2, "out_features": 3, **k}),
                ["in_features", "out_features", "bias", "dtype", "rng"],
            ),
            "LeakyReLU": (lambda **k: sp.LeakyReLU(**k), ["negative_slope"]),
            "Conv2d": (
                lambda **k: sp.nn.Conv2d(**{"in_channels": 2, "out_channels": 4, "kernel_size": 3, **k}),
                [
                    "in_channels",
                    "out_channels",
                    "kernel_size",
                    "stride",
                    "padding",
                    "dilation",
                    "groups",
                    "dtype",
                ],
            ),
            "BatchNorm1d": (
                lambda **k: sp.BatchNorm1d(**{"num_features": 3, **k}),
                ["num_features", "eps", "momentum", "affine", "track_running_stats"],
            ),
            "BatchNorm2d": (
                lambda **k: sp.BatchNorm2d(**{"num_features": 3, **k}),
                ["num_features", "eps", "momentum"],
            ),
            "Flatten": (lambda **k: sp.Flatten(**k), ["start_dim", "end_dim"]),
            "Unflatten": (
                lambda **k: sp.Unflatten(**{"dim": 1, "unflattened_size": (2, 2), **k}),
                ["dim", "unflattened_size"],
            ),
            "LayerNorm": (
                lambda **k: sp.LayerNorm(**{"normalized_shape": 3, **k}),
                ["normalized_shape", "eps", "elementwise_affine"],
            ),
            "Dropout": (lambda **k: sp.Dropout(**k), ["p", "rng"]),
            "MaxPool2d": (
                lambda **k: sp.nn.MaxPool2d(**{"kernel_size": 2, **k}),
                ["kernel_size", "stride", "padding"],
            ),
            "AvgPool2d": (
                lambda **k: sp.nn.AvgPool2d(**{"kernel_size": 2, **k}),
                ["kernel_size", "stride", "padding"],
            ),
            "AdaptiveAvgPool2d": (
                lambda **k: sp.nn.AdaptiveAvgPool2d(**{"output_size": 2, **k}),
                ["output_size"],
            ),
            "CrossEntropyLoss": (lambda **k: sp.CrossEntropyLoss(**k), ["weight", "label_smoothing"]),
            "mlp": (lambda **k: sp.mlp(**{"sizes": [2, 3], **k}), ["sizes", "activation", "dtype"]),
        }
        for name, (make, keys) in constructors.items():
            for key in keys:
                for bad in scalars + [np.ones(3), np.ones(0), [2, 0], [-1, 3]]:
                    self.call(f"{name}({key}={bad!r:.30})", lambda: make(**{key: bad}))

    # ---------------------------------------------------------------------------------- losses
    def sweep_losses(self):
        import saddlepoint as sp
        from saddlepoint import losses

        rng = np.random.default_rng(2)
        z = rng.standard_normal((5, 3)).astype(np.float32)
        targets = {
            "MSELoss": (sp.MSELoss, rng.standard_normal((5, 3)).astype(np.float32)),
            "L1Loss": (sp.L1Loss, rng.standard_normal((5, 3)).astype(np.float32)),
            "BCEWithLogitsLoss": (sp.BCEWithLogitsLoss, rng.uniform(0, 1, (5, 3)).astype(np.float32)),
            "CrossEntropyLoss": (lambda: sp.CrossEntropyLoss(label_smoothing=0.1), rng.integers(0, 3, 5)),
        }
        for name, (make, t) in targets.items():
            loss = make()
            self.call(f"{name} valid", lambda: (loss.forward(z, t), loss.backward()))
            for label, bad in self.hostile(z):
                loss = make()
                self.call(f"{name} input [{label}]", lambda: (loss.forward(bad, t), loss.backward()))
            for label, bad in self.hostile(t):
                loss = make()
                self.call(f"{name} target [{label}]", lambda: (loss.forward(z, bad), loss.backward()))
        for fn in (losses.softmax, losses.log_softmax):
            for label, bad in self.hostile(z):
                self.call(f"{fn.__name__} [{label}]", lambda: fn(bad))
        for bad in self.core_sweep.SCALARS:
            self.call(f"one_hot(num_classes={bad!r:.30})", lambda: losses.one_hot(np.array([0, 1]), bad))

    # -------------------------------------------------------------------- optimizers, schedulers
    def optimizers(self):
        import saddlepoint as sp

        return {
            "SGD": (sp.SGD, dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01)),
            "Adagrad": (sp.Adagrad, dict(lr=0.1, lr_decay=0.01)),
            "RMSprop": (sp.RMSprop, dict(lr=0.01, momentum=0.5, centered=True)),
            "Adam": (sp.Adam, dict(lr=0.01, amsgrad=True)),
            "AdamW": (sp.AdamW, dict(lr=0.01)),
        }

    def sweep_optimizers(self):
        import saddlepoint as sp

        for name, (cls, kwargs) in self.optimizers().items():
            for key in list(kwargs) + ["betas", "eps", "weight_decay", "maximize"]:
                for bad in self.core_sweep.SCALARS + [(2, 3), (0.9,), [0.9, 0.999]]:
                    model = sp.Dense(3, 2, rng=0)
                    self.call(
                        f"{name}({key}={bad!r:.30})", lambda: cls(model.parameters(), **{**kwargs, key: bad})
                    )
            for bad in [[], [np.ones(3)], None, 5, "x"]:
                self.call(f"{name}(params={bad!r:.30})", lambda: cls(bad, **kwargs))
            for step_first in (False, True):
                model = sp.Dense(3, 2, rng=0)
                optimizer = cls(model.parameters(), **kwargs)
                if step_first:
                    model.weight.grad[...] = 1.0
                    optimizer.step()
                grad = model.weight.grad.copy()
                for label, bad in self.hostile(grad):

                    def step():
                        model.weight._grad = bad  # a gradient replaced behind the API's back
                        model.weight._grad_is_zero = False
                        try:
                            optimizer.step()
                        finally:
                            model.weight._grad = grad.copy()

                    self.call(f"{name}.step(grad [{label}], after step={step_first})", step, model, optimizer)

    def schedulers(self, optimizer):
        import saddlepoint as sp

        return {
            "StepLR": (
                lambda **k: sp.StepLR(optimizer, **{"step_size": 2, **k}),
                ["step_size", "gamma", "last_epoch"],
            ),
            "MultiStepLR": (
                lambda **k: sp.MultiStepLR(optimizer, **{"milestones": [1, 3], **k}),
                ["milestones", "gamma"],
            ),
            "ExponentialLR": (lambda **k: sp.ExponentialLR(optimizer, **{"gamma": 0.9, **k}), ["gamma"]),
            "CosineAnnealingLR": (
                lambda **k: sp.CosineAnnealingLR(optimizer, **{"T_max": 5, **k}),
                ["T_max", "eta_min"],
            ),
            "LinearLR": (
                lambda **k: sp.LinearLR(optimizer, **k),
                ["start_factor", "end_factor", "total_iters"],
            ),
            "LinearWarmup": (
                lambda **k: sp.LinearWarmup(optimizer, **{"warmup_steps": 3, **k}),
                ["warmup_steps", "start_factor"],
            ),
            "InverseSqrtLR": (
                lambda **k: sp.InverseSqrtLR(optimizer, **{"warmup_steps": 3, **k}),
                ["warmup_steps"],
            ),
            "OneCycleLR": (
                lambda **k: sp.OneCycleLR(optimizer, **{"max_lr": 0.1, "total_steps": 10, **k}),
                ["max_lr", "total_steps", "pct_start", "anneal_strategy"],
            ),
            "ReduceLROnPlateau": (
                lambda **k: sp.ReduceLROnPlateau(optimizer, **k),
                ["mode", "factor", "patience", "threshold", "cooldown", "min_lr", "eps"],
            ),
        }

    def sweep_schedulers(self):
        import saddlepoint as sp

        for name in self.schedulers(None):
            for key in self.schedulers(None)[name][1]:
                for bad in self.core_sweep.SCALARS + [[3, 1], [0.1, -1], [], "max"]:
                    dense = sp.Dense(3, 2, rng=0)  # two groups: a list with one bad value per group
                    optimizer = sp.SGD([{"params": [dense.weight]}, {"params": [dense.bias]}], lr=0.1)
                    make = self.schedulers(optimizer)[name][0]
                    # a refused constructor must leave the optimizer's groups as they were
                    self.call(f"{name}({key}={bad!r:.30})", lambda: make(**{key: bad}), optimizer)
            optimizer = sp.SGD(sp.Dense(3, 2, rng=0).parameters(), lr=0.1)
            scheduler = self.schedulers(optimizer)[name][0]()
            for _ in range(12):
                if name == "ReduceLROnPlateau":
                    for bad in (float("nan"), "x", None, np.ones(2)):
                        self.call(f"{name}.step({bad!r})", lambda: scheduler.step(bad), scheduler, optimizer)
                    self.call(f"{name}.step(1.0)", lambda: scheduler.step(1.0))
                else:
                    self.call(f"{name}.step()", scheduler.step)
            self.call(f"{name}(optimizer=None)", lambda: self.schedulers(None)[name][0]())

    def run(self):
        self.sweep_layers()
        self.sweep_zero_sizes()
        self.sweep_constructors()
        self.sweep_losses()
        self.sweep_optimizers()
        self.sweep_schedulers()


def main():
    sweep = PublicSweep()
    sweep.run()
    return core_sweep.report(sweep)


if __name__ == "__main__":
    sys.exit(main())
