"""Small vs large batch (lecture "batch and momentum", with the sharp vs flat minima of
"local minima and saddle point"): the course's table, measured on the digits.

``saddlepoint.diagnose.batch_size_study`` trains the same network (64-64-10, ReLU) once per
batch size, for the same number of epochs with the same optimizer (SGD, learning rate 0.3),
from batches of 8 up to the whole training set, and measures each run: the time per epoch and
per update, the training and validation accuracy, and the sharpness of the minimum reached (the
top Hessian eigenvalue, and the mean loss increase under random weight perturbations of 5 %).

Run ``python examples/05_batch_size.py`` (``--quick`` for the small settings CI uses).
"""

import numpy as np
from _common import finding, quick, save_figure
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

import saddlepoint as sp
from saddlepoint import diagnose

EPOCHS = 60 if quick() else 400
X, y = load_digits(return_X_y=True)
X = (X / 16).astype(np.float32)  # pixel intensities 0..16 to 0..1
X_train, X_val, y_train, y_val = train_test_split(X, y, test_size=0.2, random_state=0, stratify=y)
batch_sizes = (8, 32, 128, 512, len(X_train))  # the last: the whole training set, one update an epoch

study = diagnose.batch_size_study(
    lambda: sp.mlp([64, 64, 10], "relu", rng=0),
    X_train,
    y_train,
    validation_data=(X_val, y_val),
    batch_sizes=batch_sizes,
    epochs=EPOCHS,
    optimizer=lambda params: sp.SGD(params, lr=0.3),
    seed=0,
)
print(study)
if not study.complete:  # cut short by the study's time limit: the comparison below needs every row
    raise SystemExit(f"the batch-size study stopped early: {study.stopped}")
rows = {row["batch_size"]: row for row in study.rows}
small, large = rows[batch_sizes[0]], rows[batch_sizes[-1]]
name_small, name_large = f"batch {small['batch_size']}", f"batch {large['batch_size']} (all)"

# Times are measured, so the words follow the numbers (on a loaded machine they could turn).
epoch_ratio = small["seconds_per_epoch"] / large["seconds_per_epoch"]
finding(
    f"large batch has {'less' if epoch_ratio > 1 else 'more'} time per epoch: "
    f"{large['seconds_per_epoch'] * 1e3:.2f} ms ({name_large}) against "
    f"{small['seconds_per_epoch'] * 1e3:.2f} ms ({name_small}), ratio {epoch_ratio:.1f}"
)
more = "more" if large["seconds_per_update"] > small["seconds_per_update"] else "less"
finding(
    f"and {more} time per update: {large['seconds_per_update'] * 1e3:.3f} ms against "
    f"{small['seconds_per_update'] * 1e3:.3f} ms; a CPU does not do a large batch in the time of a small "
    f"one, as a GPU does up to its limit"
)
better = "better" if small["val_metric"] > large["val_metric"] else "no better"
images = round((small["val_metric"] - large["val_metric"]) * len(y_val))
finding(
    f"small batch is {better} on validation: accuracy {small['val_metric']:.4f} ({name_small}) against "
    f"{large['val_metric']:.4f} ({name_large}), {images:+d} of {len(y_val)} images; training loss "
    f"{small['train_loss']:.3g} against {large['train_loss']:.3g}"
)
flatter = "flatter" if small["top_eigenvalue"] < large["top_eigenvalue"] else "sharper"
finding(
    f"small batch reached a {flatter} minimum: top Hessian eigenvalue {small['top_eigenvalue']:.3g} against "
    f"{large['top_eigenvalue']:.3g}, loss increase under 5% perturbations {small['perturbed_increase']:.2g} "
    f"against {large['perturbed_increase']:.2g} (its lower training loss flattens cross-entropy too)"
)


def draw(panels):
    sizes = [r["batch_size"] for r in study.rows]
    timing, accuracy, sharpness = panels

    timing.plot(sizes, [1e3 * r["seconds_per_epoch"] for r in study.rows], "o-", label="per epoch")
    timing.plot(sizes, [1e3 * r["seconds_per_update"] for r in study.rows], "s-", label="per update")
    timing.set(
        xscale="log",
        yscale="log",
        xlabel="batch size",
        ylabel="time (ms)",
        title="time per epoch and per update",
    )
    timing.legend()

    accuracy.plot(sizes, [r["train_metric"] for r in study.rows], "o-", label="training")
    accuracy.plot(sizes, [r["val_metric"] for r in study.rows], "s-", label="validation")
    accuracy.set(
        xscale="log", xlabel="batch size", ylabel="accuracy", title=f"accuracy after {EPOCHS} epochs"
    )
    accuracy.legend()

    sharpness.plot(sizes, [r["top_eigenvalue"] for r in study.rows], "o-", color="C3", label="top eigenvalue")
    # The training loss beside it: a cross-entropy fitted closer is flatter by itself.
    loss = sharpness.twinx()
    loss.plot(sizes, [r["train_loss"] for r in study.rows], "s--", color="gray", label="training loss")
    loss.set(yscale="log", ylabel="training loss (cross-entropy)")
    sharpness.legend(
        [*sharpness.get_lines(), *loss.get_lines()], ["top eigenvalue", "training loss"], loc="lower right"
    )
    sharpness.set(
        xscale="log",
        yscale="log",
        xlabel="batch size",
        ylabel="top Hessian eigenvalue",
        title="sharpness of the minimum reached",
    )
    for panel in (timing, accuracy, sharpness):
        panel.set_xticks(sizes, [str(s) for s in sizes])
        panel.minorticks_off()


save_figure("05_batch_size", draw, ncols=3, figsize=(13, 4.2))
