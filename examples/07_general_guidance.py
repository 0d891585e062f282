"""The general guidance (lecture "General Guidance"): one generated data set for each of the
course's diagnoses, and what ``saddlepoint.diagnose.guide`` says about each.

``guide`` trains the model, a linear model (the simpler reference) and a wider copy of the model
(the larger one), then follows the course's flowchart: a large training loss that a more
flexible model brings down is *model bias*; a flexible model that fits worse than the simpler one
is an *optimization issue*; a small training loss with a large validation loss is
*overfitting*; small training and validation losses with a large test loss on differently
distributed test features is a *mismatch*. "Large" is a loss above 0.1 × that of the best
constant prediction.

Run ``python examples/07_general_guidance.py`` (``--quick`` for the small settings CI uses).
"""

import numpy as np
from _common import finding, quick, save_figure

import saddlepoint as sp
from saddlepoint import diagnose

SEED = 0
N = 300 if quick() else 1000
EPOCHS = 30 if quick() else 50
rng = np.random.default_rng(SEED)


def checkerboard():
    """Model bias: classes by the sign of x1·x2, which no straight line separates, for a
    linear classifier."""
    X = rng.uniform(-2, 2, (N, 2))
    return dict(model="linear", X=X, y=(X[:, 0] * X[:, 1] > 0).astype(int))


def deep_sigmoid():
    """Optimization issue: a linear target, and a 10-layer sigmoid network trained by plain SGD,
    whose gradients vanish before they reach the first layers; the linear model fits it."""
    X = rng.standard_normal((N, 8))
    y = X @ rng.standard_normal(8) + 0.1 * rng.standard_normal(N)
    deep = sp.mlp([8] + [16] * 10 + [1], "sigmoid", rng=SEED)
    return dict(model=deep, X=X, y=y, optimizer=lambda params: sp.SGD(params, lr=0.01))


def few_noisy_samples():
    """Overfitting: 60 samples of 20 features whose target is one feature plus as much noise,
    and a network of 70,000 parameters that memorizes the noise."""
    X = rng.standard_normal((60, 20))
    y = X[:, 0] + rng.standard_normal(60)
    big = sp.mlp([20, 256, 256, 1], "relu", rng=SEED)
    return dict(model=big, X=X, y=y, epochs=100, optimizer=lambda params: sp.Adam(params, lr=1e-2))


def shifted_test():
    """Mismatch: y = sin(2·x1) + x2², trained on x in [-1.5, 1.5]², tested on [1, 2.5]², where
    the network has to extrapolate."""

    def sample(low, high, n):
        X = rng.uniform(low, high, (n, 2))
        return X, np.sin(2 * X[:, 0]) + X[:, 1] ** 2

    X, y = sample(-1.5, 1.5, N)
    net = sp.mlp([2, 64, 64, 1], "relu", rng=SEED)
    return dict(
        model=net,
        X=X,
        y=y,
        test_data=sample(1.0, 2.5, N // 2),
        optimizer=lambda params: sp.Adam(params, lr=1e-2),
    )


DATASETS = {  # name: (the verdict it is made for, the model it trains, its maker)
    "checkerboard": ("model bias", "a linear classifier", checkerboard),
    "deep sigmoid": ("optimization", "10 sigmoid layers, SGD", deep_sigmoid),
    "few noisy samples": ("overfitting", "256-256 ReLU net", few_noisy_samples),
    "shifted test": ("mismatch", "64-64 ReLU net", shifted_test),
}

guidance = {}
for name, (intended, model, make) in DATASETS.items():
    spec = make()
    epochs = spec.pop("epochs", EPOCHS)
    result = diagnose.guide(spec.pop("model"), spec.pop("X"), spec.pop("y"), epochs=epochs, seed=SEED, **spec)
    guidance[name] = result
    print(f"\n=== {name} (made for: {intended}) ===\n{result}")
    ours = result.models["model"]
    ratios = f"train {ours.train_ratio:.3g}, validation {ours.val_ratio:.3g}" + (
        "" if ours.test_ratio is None else f", test {ours.test_ratio:.3g}"
    )
    finding(f"{name}: {result.verdict} (the model's loss / baseline: {ratios})")


def draw(panels):
    handles = {}
    for panel, (name, result) in zip(panels, guidance.items()):
        result.plot_learning_curves(panel)
        panel.get_legend().remove()
        for line in panel.get_lines()[:2]:  # the model's: wide, so a reference drawn over it shows
            line.set(linewidth=4, color="#9ecae1", zorder=1)  # light, and no alpha: small PNGs
        test_loss = result.models["model"].test_loss
        if test_loss is not None:
            panel.axhline(test_loss, color="C0", linestyle=":", linewidth=2, label="model test")
        lines, labels = panel.get_legend_handles_labels()
        for line, label in zip(lines, labels):  # say what the references are
            handles[label.replace("simpler", "simpler (linear)").replace("larger", "larger (2× wider)")] = (
                line
            )
        panel.set_title(f"{name}: {result.verdict}\n({DATASETS[name][1]})", fontsize="medium")
        kind = "cross-entropy" if result.task == "classification" else "MSE of standardized y"
        panel.set_ylabel(f"loss ({kind})")
    # One legend for all: the deep sigmoid panel has room between its curves.
    panels[1].legend(handles.values(), handles.keys(), loc="center right", fontsize="small")


save_figure("07_general_guidance", draw, nrows=2, ncols=2, figsize=(10, 7.6))
