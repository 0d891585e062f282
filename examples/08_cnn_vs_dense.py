"""A CNN vs a dense network on the digits, with data augmentation (lecture "CNN", and the
remedies for overfitting in "General Guidance").

Both learn from only 300 of the 8x8 digit images (validated on 300 more, tested on the other
1,197): a dense network (64-256-10, ReLU) and the course's small CNN (``nn.cnn_config``: 3x3
convolutions of 16 and 32 channels with batch norm and 2x2 max pooling, then dense 128-10),
with about as many parameters. A convolution sees a small patch and shares its weights across
the image, so the CNN needs fewer examples of each stroke in each place. Augmentation as
``saddlepoint train --augment`` does it (``saddlepoint.data.augment``): a random shift of up to
one pixel (``RandomCrop``), and a left-right mirror (``RandomHorizontalFlip``), which turns a
digit into something that is not a digit. Each run keeps the weights of its best validation
epoch.

Run ``python examples/08_cnn_vs_dense.py`` (``--quick`` for the small settings CI uses).
"""

import numpy as np
from _common import finding, quick, save_figure
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

import saddlepoint as sp
from saddlepoint import nn
from saddlepoint.data.augment import Compose, ImageRows, RandomCrop, RandomHorizontalFlip

EPOCHS = 30 if quick() else 100
IMAGE = (1, 8, 8)
X, y = load_digits(return_X_y=True)
X = (X / 16).astype(np.float32)  # pixel intensities 0..16 to 0..1, one row of 64 per image
X_train, X_test, y_train, y_test = train_test_split(X, y, train_size=600, random_state=0, stratify=y)
X_train, X_val, y_train, y_val = train_test_split(
    X_train, y_train, test_size=0.5, random_state=0, stratify=y_train
)
shift = RandomCrop(padding=1)  # the CLI's crop: padding of an eighth of the image, at least 1 pixel
RUNS = {  # name: (model config, augmentation of the training batches)
    "dense": (nn.mlp_config([64, 256, 10]), None),
    "dense + shift": (nn.mlp_config([64, 256, 10]), ImageRows(shift, IMAGE)),
    "CNN": (nn.cnn_config(IMAGE, 10, batch_norm=True), None),
    "CNN + shift": (nn.cnn_config(IMAGE, 10, batch_norm=True), ImageRows(shift, IMAGE)),
    "CNN + shift + flip": (
        nn.cnn_config(IMAGE, 10, batch_norm=True),
        ImageRows(Compose([shift, RandomHorizontalFlip()]), IMAGE),
    ),
}

histories, accuracy, parameters = {}, {}, {}
for name, (config, augment) in RUNS.items():
    model = nn.from_config(config, rng=0)
    trainer = sp.Trainer(
        model,
        sp.CrossEntropyLoss(),
        sp.Adam(model.parameters(), lr=3e-3),
        metrics=["accuracy"],
        batch_size=32,
        augment=augment,
        callbacks=[sp.EarlyStopping("val_loss", patience=EPOCHS, restore_best=True)],
        seed=0,
        verbose=0,
    )
    histories[name] = trainer.fit(X_train, y_train, EPOCHS, validation_data=(X_val, y_val))
    accuracy[name] = trainer.evaluate(X_test, y_test)["accuracy"]
    parameters[name] = sum(p.data.size for p in model.parameters())
    print(f"{name:>20}: {parameters[name]:>6} parameters, test accuracy {accuracy[name]:.4f}")

finding(
    f"the CNN beats the dense network: test accuracy {accuracy['CNN']:.4f} against {accuracy['dense']:.4f}, "
    f"with {parameters['CNN']} against {parameters['dense']} parameters"
)
for model, called in (("dense", "dense network"), ("CNN", "CNN")):
    change = accuracy[f"{model} + shift"] - accuracy[model]
    verdict = "helps" if change > 0 else "does not help"
    finding(
        f"shift augmentation {verdict} the {called}: test accuracy {accuracy[f'{model} + shift']:.4f} against "
        f"{accuracy[model]:.4f} without ({change:+.4f})"
    )
finding(
    f"flip augmentation hurts the CNN: test accuracy {accuracy['CNN + shift + flip']:.4f} against "
    f"{accuracy['CNN + shift']:.4f} with the shift alone; a mirrored digit is not the same digit"
)


def draw(panels):
    loss, val = panels
    for i, (name, history) in enumerate(histories.items()):
        style = dict(color=f"C{i}", linestyle="-" if name.startswith("CNN") else "--")
        loss.plot(history.epochs, history["loss"], label=name, **style)
        val.plot(
            history.epochs, history["val_accuracy"], label=f"{name} (test {accuracy[name]:.3f})", **style
        )
    loss.set(
        xlabel="epoch",
        ylabel="training loss (cross-entropy)",
        yscale="log",
        title="training loss (300 images)",
    )
    val.set(
        xlabel="epoch",
        ylabel="validation accuracy",
        ylim=(0.7, 1.0),
        title="validation accuracy (300 other images)",
    )
    loss.legend(fontsize="small")
    val.legend(fontsize="small", loc="lower right")


save_figure("08_cnn_vs_dense", draw, ncols=2, figsize=(10, 4.2))
