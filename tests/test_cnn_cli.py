"""Images through the command line and the data layer: the pixel role of the preprocessing,
augmentation of flat image rows, the CNN's config, and ``--model cnn``'s option checks."""

import json

import numpy as np
import pandas as pd
import pytest

import saddlepoint as sp
from saddlepoint import nn
from saddlepoint.cli import main
from saddlepoint.data import ImageRows, Preprocessor, RandomCrop, RandomHorizontalFlip


def pixel_frame(rng, n=40, shape=(2, 3, 4)):
    X = rng.integers(0, 16, (n, int(np.prod(shape)))).astype(float)
    X[:, 0] = 0.0  # a constant pixel: kept as a pixel, dropped as a plain column
    frame = pd.DataFrame(X, columns=[f"p{i}" for i in range(X.shape[1])])
    frame["label"] = rng.integers(0, 3, n)
    return frame


def test_pixels_are_kept_in_order_and_scaled_together(rng):
    frame = pixel_frame(rng)
    pixels = [c for c in frame.columns if c != "label"]
    frame.loc[3, "p5"] = np.nan
    pre = Preprocessor(pixels=pixels).fit(frame, "label")
    X = pre.transform(frame)
    raw = np.nan_to_num(frame[pixels].to_numpy(), nan=0.0)
    np.testing.assert_allclose(X, (raw - raw.mean()) / raw.std(), rtol=1e-5, atol=1e-5)
    assert pre.feature_names == pixels and X.shape == (40, 24)
    assert [r["role"] for r in pre.report] == ["pixel"] * 24
    loaded = Preprocessor.from_dict(json.loads(json.dumps(pre.to_dict())))
    np.testing.assert_array_equal(loaded.transform(frame), X)
    # Without the pixel role the constant column is dropped, as for any table.
    assert "p0" not in Preprocessor().fit(frame, "label").feature_names


def test_pixels_come_first_beside_other_columns(rng):
    frame = pixel_frame(rng)
    frame["color"] = np.where(rng.random(40) < 0.5, "red", "blue")
    pre = Preprocessor(pixels=[f"p{i}" for i in range(24)]).fit(frame, "label")
    assert pre.feature_names[:24] == [f"p{i}" for i in range(24)] and pre.feature_names[24:] == [
        "color=blue",
        "color=red",
    ]
    loaded = Preprocessor.from_dict(pre.to_dict())
    np.testing.assert_allclose(loaded.transform(frame), pre.transform(frame), atol=1e-6)


def test_image_rows_augment_each_row_as_an_image(rng):
    X = rng.standard_normal((6, 2 * 3 * 4)).astype(np.float32)
    flipped = ImageRows(RandomHorizontalFlip(p=1.0), (2, 3, 4))(X, rng)
    np.testing.assert_array_equal(flipped, X.reshape(6, 2, 3, 4)[..., ::-1].reshape(6, -1))
    cropped = ImageRows(RandomCrop(padding=0), (2, 3, 4))(X, rng)
    np.testing.assert_array_equal(cropped, X)
    with pytest.raises(ValueError, match=r"ImageRows needs rows of 24 = 2·3·4 values, got shape \(6, 10\)"):
        ImageRows(RandomCrop(1), (2, 3, 4))(X[:, :10], rng)
    with pytest.raises(ValueError, match="image_shape must be three positive sizes"):
        ImageRows(RandomCrop(1), (3, 4))


def test_cnn_config_describes_the_course_network():
    config = nn.cnn_config((1, 8, 8), 10, channels=(4, 6), hidden=(12,), batch_norm=True, dropout=0.1)
    kinds = [layer["class"] for layer in config["layers"]]
    assert kinds == [
        "Unflatten",
        "Conv2d",
        "BatchNorm2d",
        "ReLU",
        "MaxPool2d",
        "Conv2d",
        "BatchNorm2d",
        "ReLU",
        "MaxPool2d",
        "Flatten",
        "Dense",
        "BatchNorm1d",
        "ReLU",
        "Dropout",
        "Dense",
    ]
    assert config["layers"][10]["in_features"] == 6 * 2 * 2  # 8 -> 4 -> 2
    # Pooling stops at 1x1 maps.
    tiny = nn.cnn_config((3, 2, 2), 2, channels=(4, 4, 4), hidden=())
    assert sum(layer["class"] == "MaxPool2d" for layer in tiny["layers"]) == 1
    assert tiny["layers"][-1]["in_features"] == 4
    with pytest.raises(ValueError, match="image_shape must be"):
        nn.cnn_config((8, 8), 10)
    with pytest.raises(ValueError, match="kernel_size must be odd"):
        nn.cnn_config((1, 8, 8), 10, kernel_size=2)


@pytest.mark.parametrize(
    "argv,message",
    [
        (["--data", "iris", "--model", "cnn"], "--model cnn needs --image-shape C,H,W: iris is not"),
        (
            ["--model", "cnn", "--image-shape", "1,4,4"],
            "--image-shape 1,4,4 holds 16 pixels, but the table gives 64",
        ),
        (["--model", "cnn", "--image-shape", "1,8"], "--image-shape: must be C,H,W"),
        (["--model", "cnn", "--channels", "8,0"], "--channels: must be comma-separated positive integers"),
        (["--augment", "crop"], "--augment transforms images: use it with --model cnn"),
        (
            ["--model", "cnn", "--augment", "rotate"],
            "--augment: must be a comma-separated list of crop, flip",
        ),
    ],
)
def test_cnn_options_refuse_what_cannot_work(argv, message, capsys, tmp_path):
    assert main(["train", "--quiet", "--epochs", "1", "--out", str(tmp_path / "run"), *argv]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_sequential_of_reshapes_round_trips_through_config(rng):
    model = sp.Sequential(sp.Unflatten(1, (2, 3)), sp.Flatten(), sp.Dense(6, 2, rng=0))
    rebuilt = nn.from_config(json.loads(json.dumps(model.config())))
    rebuilt.load_state_dict(model.state_dict())
    x = rng.standard_normal((3, 6)).astype(np.float32)
    np.testing.assert_array_equal(rebuilt(x), model(x))


def test_the_trainer_takes_image_batches_and_guards_batch_norm_on_rows(rng):
    X = rng.standard_normal((33, 2, 3, 3)).astype(np.float32)
    y = rng.integers(0, 2, 33)
    model = sp.Sequential(
        sp.Flatten(), sp.Dense(18, 8, rng=0), sp.BatchNorm1d(8), sp.ReLU(), sp.Dense(8, 2, rng=1)
    )
    trainer = sp.Trainer(model, sp.CrossEntropyLoss(), sp.Adam(model.parameters()), batch_size=16, verbose=0)
    with pytest.raises(ValueError, match="leaves a last batch of 1 of the 33 training samples"):
        trainer.fit(X, y, epochs=1)
    trainer.drop_last = True
    assert np.isfinite(trainer.fit(X, y, epochs=2)["loss"]).all()
    # BatchNorm2d sees the 9 positions of one image: a batch of one trains.
    images = sp.Sequential(sp.BatchNorm2d(2), sp.Flatten(), sp.Dense(18, 2, rng=0))
    trainer = sp.Trainer(
        images, sp.CrossEntropyLoss(), sp.Adam(images.parameters()), batch_size=16, verbose=0
    )
    assert np.isfinite(trainer.fit(X, y, epochs=2)["loss"]).all()


def test_image_batches_are_gathered_as_rows(rng):
    """The Trainer's batches of images are the rows it picks, in order (gathered by the same
    kernel as flat rows)."""
    from saddlepoint.training.trainer import Batches

    X = rng.standard_normal((10, 2, 3, 4))
    idx = np.array([7, 2, 2, 9])
    xb, _ = Batches(X, np.arange(10)).gather(idx)
    np.testing.assert_array_equal(xb, X[idx])
    strided = X[:, :, :, ::2]  # not contiguous: gathered by NumPy
    np.testing.assert_array_equal(Batches(strided, np.arange(10)).gather(idx)[0], strided[idx])
