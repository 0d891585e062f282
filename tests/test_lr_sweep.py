"""The learning-rate sweep: ``lr_sweep`` and ``saddlepoint train --lr-sweep --jobs``."""

import json
import math
from importlib.util import find_spec

import numpy as np
import pytest
from sklearn.datasets import load_digits

import saddlepoint as sp
from saddlepoint.cli import main


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return (X[:600] / 16).astype(np.float32), y[:600]


def make_trainer(lr):
    model = sp.mlp([64, 16, 10], "relu", rng=0)
    optimizer = sp.SGD(model.parameters(), lr=lr)
    return sp.Trainer(model, sp.CrossEntropyLoss(), optimizer, metrics=["accuracy"], seed=0, verbose=0)


def test_each_rate_trains_a_fresh_model_and_the_lowest_validation_loss_wins(digits):
    X, y = digits
    sweep = sp.lr_sweep(make_trainer, X, y, lrs=[1e-4, 0.3, 1e-2], epochs=3)
    assert [r["lr"] for r in sweep.rows] == [1e-4, 0.3, 1e-2]
    # Each row is what training that rate alone gives, with the sweep's validation split.
    alone = make_trainer(1e-2)
    history = alone.fit(X, y, 3, validation_split=0.2)
    assert sweep.rows[2]["val_loss"] == history["val_loss"][-1]
    assert sweep.rows[2]["val_accuracy"] == history["val_accuracy"][-1]
    assert sweep.best_lr == min(sweep.rows, key=lambda r: r["best_val_loss"])["lr"] == 0.3
    assert sweep.rows[0]["best_val_loss"] > sweep.rows[1]["best_val_loss"]
    assert all(r["epochs_trained"] == 3 and not r["diverged"] for r in sweep.rows)
    assert "best lr 0.3" in str(sweep) and len(sweep.histories) == 3


def test_a_diverging_rate_is_a_row_marked_diverged_not_an_error(digits):
    X, y = digits
    sweep = sp.lr_sweep(make_trainer, X, y, lrs=[1e-2, 1e12], epochs=2)
    assert sweep.best_lr == 1e-2
    diverged = sweep.rows[1]
    assert diverged["diverged"] and diverged["best_val_loss"] == math.inf
    assert json.loads(json.dumps(sweep.to_dict()))["rows"][1]["best_val_loss"] is None
    assert "diverged" in str(sweep)


def test_two_jobs_give_the_serial_rows_exactly(digits):
    X, y = digits
    serial = sp.lr_sweep(make_trainer, X, y, lrs=[1e-3, 1e-2, 1e-1], epochs=2)
    parallel = sp.lr_sweep(make_trainer, X, y, lrs=[1e-3, 1e-2, 1e-1], epochs=2, n_jobs=2)
    assert parallel.rows == serial.rows and parallel.best_lr == serial.best_lr


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        (dict(lrs=[]), ValueError, "lrs must be a non-empty"),
        (dict(lrs=[1e-3, -1.0]), ValueError, "lrs must be a non-empty sequence of positive"),
        (dict(lrs=[1e-3, float("nan")]), ValueError, "positive finite"),
        (dict(lrs=["fast"]), TypeError, "lrs must be a sequence of positive numbers"),
        (dict(lrs=[1e-3], epochs=0), ValueError, "epochs"),
        (dict(lrs=[1e-3], validation_split=1.5), ValueError, "validation_split"),
        (dict(lrs=[1e-3], n_jobs=0), ValueError, "n_jobs"),
    ],
)
def test_bad_arguments_are_refused_naming_them(digits, kwargs, error, message):
    X, y = digits
    with pytest.raises(error, match=message):
        sp.lr_sweep(make_trainer, X, y, **{"epochs": 1, **kwargs})


def test_make_trainer_must_be_a_function(digits):
    X, y = digits
    with pytest.raises(TypeError, match="make_trainer must be a function lr -> Trainer, got Sequential"):
        sp.lr_sweep(sp.mlp([64, 10]), X, y, lrs=[1e-3], epochs=1)


def test_train_sweeps_the_rates_in_two_jobs_and_trains_with_the_best(capsys, tmp_path):
    out = tmp_path / "run"
    argv = ["train", "--data", "iris", "--epochs", "4", "--optimizer", "sgd", "--quiet", "--out", str(out)]
    assert main([*argv, "--lr-sweep", "1e-4,0.3,1e9", "--jobs", "2"]) == 0
    err = capsys.readouterr().err
    assert "learning-rate sweep, 3 rates; best lr 0.3" in err and "diverged" in err
    sweep = json.loads((out / "lr_sweep.json").read_text())
    assert [r["lr"] for r in sweep["rows"]] == [1e-4, 0.3, 1e9] and sweep["best_lr"] == 0.3
    assert sweep["rows"][2]["diverged"] and sweep["rows"][2]["best_val_loss"] is None
    assert json.loads((out / "config.json").read_text())["lr"] == 0.3
    if find_spec("matplotlib") is not None:
        assert (out / "lr_sweep.png").stat().st_size > 1000
    # The run with the chosen rate is the sweep's run of that rate: the same split and seed.
    history = json.loads((out / "history.json").read_text())
    assert history["val_loss"][-1] == pytest.approx(sweep["rows"][1]["val_loss"], rel=1e-12)


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--lr-sweep", "1e-3,fast"], None),
        (["--lr-sweep", "1e-3,-1"], None),
        (["--lr-sweep", "1e-3", "--jobs", "0"], None),
        (["--lr-sweep", "1e-3,1e-2", "--val-fraction", "0"], "--lr-sweep needs a validation split"),
    ],
)
def test_bad_sweep_options_are_refused(capsys, tmp_path, extra, message):
    try:
        code = main(["train", "--data", "iris", "--quiet", "--out", str(tmp_path / "run"), *extra])
    except SystemExit as exc:
        code = exc.code
    assert code == 2
    if message:
        assert message in capsys.readouterr().err
