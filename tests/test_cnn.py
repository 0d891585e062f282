"""Convolutional networks end to end: exact Hessian-vector products through a CNN against
central differences, the doctor's functions on a CNN, the course's CNN on the digits through
``saddlepoint train --model cnn`` (beating the dense network on the same split), saved CNN runs
that reload and predict, and ``saddlepoint diagnose --model cnn``."""

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_digits
from test_cli import table
from test_rop import check_layer as check_r_operator

import saddlepoint as sp
from saddlepoint import diagnose as dg
from saddlepoint import nn
from saddlepoint.cli import main


def small_cnn(dtype=np.float64, batch_norm=True):
    """Every CNN layer once: conv (strided, padded, grouped, dilated), batch norm, max and average
    pooling, global average pooling, flatten, dense; tanh keeps second derivatives nonzero."""
    layers = [
        sp.Unflatten(1, (2, 6, 6)),
        nn.Conv2d(2, 4, 3, padding=1, dtype=dtype, rng=0),
        *([sp.BatchNorm2d(4, dtype=dtype)] if batch_norm else []),
        sp.Tanh(),
        nn.MaxPool2d(2),
        nn.Conv2d(4, 4, 2, stride=1, padding=1, dilation=2, groups=2, dtype=dtype, rng=1),
        sp.Tanh(),
        nn.AvgPool2d(2, stride=1),
        nn.Conv2d(4, 6, 1, dtype=dtype, rng=2),
        nn.AdaptiveAvgPool2d(1),
        sp.Flatten(),
        sp.Dense(6, 3, dtype=dtype, rng=3),
    ]
    return sp.Sequential(*layers)


@pytest.mark.parametrize("training", [False, True], ids=["eval", "train"])
def test_the_r_operator_through_a_cnn_matches_central_differences(training, rng):
    model = small_cnn()
    model.requires_grad_input()
    model(rng.standard_normal((5, 72)))  # running statistics away from their start
    model.train(training)
    check_r_operator(model, rng.standard_normal((5, 72)), k=2, rng=rng)


def test_exact_hessian_of_a_cnn_matches_finite_differences(rng):
    """Every column of the exact Hessian against central differences of the gradient. The step
    is 1e-6: with these data one weight sits within 1e-5 of where a max-pooling window switches
    its maximum, and a larger step across that kink is off by (jump in the gradient)/step."""
    model = small_cnn().eval()
    X, y = rng.standard_normal((12, 72)), rng.integers(0, 3, 12)
    objective = dg.Objective(model, sp.CrossEntropyLoss(), X, y)
    assert objective.hvp_method == "exact"
    H = objective.hessian()
    np.testing.assert_allclose(H, H.T, atol=1e-12)
    theta, h = objective.point.copy(), 1e-6
    for i in range(objective.size):
        step = np.zeros_like(theta)
        step[i] = h
        column = (objective.gradient(theta + step)[1] - objective.gradient(theta - step)[1]) / (2 * h)
        np.testing.assert_allclose(H[:, i], column, atol=1e-6 * max(1.0, np.max(np.abs(H))))


@pytest.fixture(scope="module")
def digit_images():
    digits = load_digits()
    X = (digits.data / 16.0).astype(np.float32).reshape(-1, 1, 8, 8)
    return X[:600], digits.target[:600]


def image_cnn(seed=0):
    return sp.Sequential(
        nn.Conv2d(1, 6, 3, padding=1, rng=seed),
        sp.ReLU(),
        nn.MaxPool2d(2),
        sp.Flatten(),
        sp.Dense(96, 10, rng=seed + 1),
    )


def test_the_doctor_works_on_a_cnn_with_exact_products(digit_images):
    X, y = digit_images
    model = image_cnn()
    trainer = sp.Trainer(model, sp.CrossEntropyLoss(), sp.Adam(model.parameters(), lr=1e-2), verbose=0)
    trainer.fit(X, y, epochs=3)
    loss = sp.CrossEntropyLoss()
    assert dg.Objective(model, loss, X[:200], y[:200]).hvp_method == "exact"
    point = dg.critical_point(model, loss, X[:200], y[:200], max_hvps=400, time_limit=60)
    assert point.kind in ("not a critical point", "local minimum", "saddle point", "degenerate")
    assert np.isfinite(point.eigenvalues).all() and point.eigenvalues.max() > 0
    top = dg.top_eigenvalues(model, loss, X[:200], y[:200], k=2, max_hvps=300, time_limit=60)
    assert top.values[-1] == pytest.approx(point.eigenvalues.max(), rel=1e-2)
    line = dg.loss_landscape_1d(model, loss, X[:200], y[:200], model, image_cnn(5), steps=5)
    assert np.isfinite(line.losses).all()
    escape = dg.escape_saddle(model, loss, X[:200], y[:200], max_hvps=300, time_limit=60)
    assert escape.loss_after <= escape.loss_before


def test_batch_size_study_trains_cnns(digit_images):
    X, y = digit_images
    study = dg.batch_size_study(
        image_cnn, X, y, batch_sizes=(16, 256), epochs=2, sharpness_samples=100, max_hvps=100
    )
    assert [r["batch_size"] for r in study.rows] == [16, 256]
    assert all(r["top_eigenvalue"] > 0 for r in study.rows)


def test_a_cnn_trains_with_augmentation_on_image_batches(digit_images):
    X, y = digit_images
    model = image_cnn()
    augment = sp.data.Compose([sp.data.RandomCrop(padding=1)])
    trainer = sp.Trainer(
        model, sp.CrossEntropyLoss(), sp.Adam(model.parameters(), lr=1e-2), augment=augment, verbose=0
    )
    history = trainer.fit(X, y, epochs=4)
    assert history["loss"][-1] < 0.7 * history["loss"][0]


def test_the_course_cnn_beats_the_dense_network_on_the_digits(capsys, tmp_path):
    """``saddlepoint train --model cnn`` reaches test accuracy >= 0.98 on the digits (1x8x8),
    above the dense network's on the same split (same --seed and --test-size)."""
    assert main(["train", "--quiet", "--model", "cnn", "--out", str(tmp_path / "cnn")]) == 0
    cnn = table(capsys.readouterr().out)
    assert main(["train", "--quiet", "--out", str(tmp_path / "mlp")]) == 0
    dense = table(capsys.readouterr().out)
    assert float(cnn["test accuracy"]) >= 0.98, cnn
    assert float(cnn["test accuracy"]) > float(dense["test accuracy"]), (cnn, dense)


def test_a_cnn_run_folder_reloads_and_predicts_a_table_of_images(capsys, tmp_path):
    """A CSV of flattened 1x8x8 images, --image-shape, then ``saddlepoint predict`` in this
    process and ``load_run`` agree with the run's own test predictions."""
    digits = load_digits()
    frame = pd.DataFrame(digits.data[:400], columns=[f"px{i}" for i in range(64)])
    frame["digit"] = digits.target[:400]
    frame.to_csv(tmp_path / "images.csv", index=False)
    argv = ["train", "--quiet", "--data", str(tmp_path / "images.csv"), "--target", "digit"]
    argv += ["--model", "cnn", "--image-shape", "1,8,8", "--channels", "4,8", "--hidden", "16"]
    argv += ["--epochs", "5", "--augment", "crop", "--batchnorm", "--out", str(tmp_path / "run")]
    assert main(argv) == 0
    capsys.readouterr()
    run = sp.load_run(tmp_path / "run")
    assert [type(m).__name__ for m in run.model][:3] == ["Unflatten", "Conv2d", "BatchNorm2d"]
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["model"] == "cnn" and config["image_shape"] == [1, 8, 8]
    assert main(["predict", str(tmp_path / "run"), "--data", str(tmp_path / "images.csv")]) == 0
    predicted = pd.read_csv(__import__("io").StringIO(capsys.readouterr().out))
    assert len(predicted) == 400
    saved = pd.read_csv(tmp_path / "run" / "test_predictions.csv")
    rows = saved["line"].to_numpy() - 2  # file lines (the header is line 1) to positions
    np.testing.assert_array_equal(predicted["digit"].to_numpy()[rows], saved["digit"].to_numpy())


def test_diagnose_runs_on_a_cnn(capsys, tmp_path):
    argv = ["diagnose", "--quiet", "--model", "cnn", "--channels", "4,8", "--hidden", "16", "--epochs", "3"]
    argv += [
        "--hessian-samples",
        "200",
        "--max-hvps",
        "300",
        "--time-limit",
        "30",
        "--out",
        str(tmp_path / "d"),
    ]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "verdict" in out and "critical point" in out
    report = json.loads((tmp_path / "d" / "report.json").read_text())
    assert report["critical_point"]["n_parameters"] > 0
