"""n_jobs: the cross validation, the batch-size study and the guide's models trained in parallel
through joblib give exactly the serial run's results (issue 16)."""

import json
import os

import numpy as np
import pytest
from joblib import parallel_config
from sklearn.datasets import load_digits
from sklearn.preprocessing import StandardScaler

import saddlepoint as sp
from saddlepoint import diagnose as dg
from saddlepoint._jobs import run_jobs
from saddlepoint.data import cross_validate

TIMES = ("seconds_per_epoch", "seconds_per_update")


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return StandardScaler().fit_transform(X).astype(np.float32)[:600], y[:600]


def digits_trainer():
    model = sp.mlp([64, 32, 10], rng=0)
    optimizer = sp.Adam(model.parameters(), lr=1e-3)
    return sp.Trainer(
        model, sp.CrossEntropyLoss(), optimizer, metrics=["accuracy"], batch_size=32, seed=0, verbose=0
    )


def test_cross_validate_in_two_processes_equals_the_serial_run(digits):
    X, y = digits
    serial = cross_validate(digits_trainer, X, y, epochs=3, cv=3, metric="loss")
    parallel = cross_validate(digits_trainer, X, y, epochs=3, cv=3, metric="loss", n_jobs=2)
    assert parallel.scores == serial.scores
    assert [h.to_dict() for h in parallel.histories] == [h.to_dict() for h in serial.histories]


def test_batch_size_study_in_two_processes_equals_the_serial_run(digits):
    X, y = digits
    args = dict(batch_sizes=(16, 128), epochs=2, sharpness_samples=100, max_hvps=40)
    serial = dg.batch_size_study(lambda: sp.mlp([64, 16, 10], rng=0), X, y, **args)
    parallel = dg.batch_size_study(lambda: sp.mlp([64, 16, 10], rng=0), X, y, n_jobs=2, **args)
    assert serial.complete and parallel.complete
    drop_times = [{k: v for k, v in row.items() if k not in TIMES} for row in serial.rows]
    assert [{k: v for k, v in row.items() if k not in TIMES} for row in parallel.rows] == drop_times


def _report(report):
    return {k: v for k, v in vars(report).items() if k != "seconds"}


def test_guide_in_two_processes_equals_the_serial_run_and_trains_the_model_in_place(digits):
    X, y = digits
    runs = []
    for n_jobs in (None, 2):
        model = sp.mlp([64, 16, 10], rng=0)
        before = {k: v.copy() for k, v in model.state_dict().items()}
        result = dg.guide(
            model,
            X,
            y,
            test_data=(X[:100], y[:100]),
            epochs=3,
            larger=lambda: sp.mlp([64, 32, 10], rng=0),
            n_jobs=n_jobs,
        )
        assert result.trained["model"] is model
        assert any(not np.array_equal(v, before[k]) for k, v in model.state_dict().items())
        runs.append((result, model.state_dict()))
    (serial, serial_state), (parallel, parallel_state) = runs
    assert (parallel.verdict, parallel.reason) == (serial.verdict, serial.reason)
    assert {k: _report(r) for k, r in parallel.models.items()} == {
        k: _report(r) for k, r in serial.models.items()
    }
    for name in serial_state:
        np.testing.assert_array_equal(parallel_state[name], serial_state[name])
    for name in ("simpler", "larger"):
        for key, value in serial.trained[name].state_dict().items():
            np.testing.assert_array_equal(parallel.trained[name].state_dict()[key], value)


def _pid(_):
    return os.getpid()


def test_n_jobs_none_is_serial_unless_a_parallel_config_context_says_otherwise():
    assert set(run_jobs(_pid, [(i,) for i in range(4)], None)) == {os.getpid()}
    with parallel_config(backend="loky", n_jobs=2):
        assert os.getpid() not in set(run_jobs(_pid, [(i,) for i in range(4)], None))


@pytest.mark.parametrize(
    "n_jobs, error, message",
    [
        (0, ValueError, "n_jobs must be None, a positive .* got 0"),
        ("2", TypeError, "n_jobs must be None .* got str"),
    ],
)
def test_a_bad_n_jobs_is_refused_naming_it(digits, n_jobs, error, message):
    X, y = digits
    with pytest.raises(error, match=message):
        cross_validate(digits_trainer, X, y, epochs=1, cv=2, n_jobs=n_jobs)
    with pytest.raises(error, match=message):
        dg.batch_size_study(lambda: sp.mlp([64, 10], rng=0), X, y, n_jobs=n_jobs)
    with pytest.raises(error, match=message):
        dg.guide(sp.mlp([64, 10], rng=0), X, y, n_jobs=n_jobs)


def test_diagnose_jobs_gives_the_serial_report(capsys, tmp_path):
    from saddlepoint.cli import main

    argv = ["diagnose", "--data", "iris", "--hidden", "8", "--epochs", "3", "--quiet", "--max-hvps", "40"]
    reports = []
    for jobs in ([], ["--jobs", "2"]):
        out = tmp_path / f"report{len(reports)}"
        assert main([*argv, *jobs, "--out", str(out)]) == 0
        report = json.loads((out / "report.json").read_text())
        for model in report["guidance"]["models"].values():
            del model["seconds"]
        reports.append((report["guidance"], report["critical_point"]["eigenvalues"]))
    capsys.readouterr()
    assert reports[1] == reports[0]
