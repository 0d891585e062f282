"""Predictions: ``Trainer.predict_proba``, a run folder loaded as a model
(``saddlepoint.load_run``) and ``saddlepoint predict`` in a fresh process."""

import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import saddlepoint as sp


def small_trainer(loss, n_out):
    model = sp.mlp([4, 8, n_out])
    return sp.Trainer(model, loss, sp.Adam(model.parameters()), verbose=0, seed=0)


def test_predict_proba_is_the_softmax_of_the_outputs_for_cross_entropy():
    X = np.random.default_rng(0).normal(size=(7, 4)).astype(np.float32)
    trainer = small_trainer(sp.CrossEntropyLoss(), 3)
    proba = trainer.predict_proba(X)
    outputs = trainer.predict(X).astype(np.float64)
    expected = np.exp(outputs - outputs.max(axis=1, keepdims=True))
    np.testing.assert_allclose(proba, expected / expected.sum(axis=1, keepdims=True), rtol=1e-5)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)


def test_predict_proba_is_the_sigmoid_of_one_logit():
    X = np.random.default_rng(1).normal(size=(7, 4)).astype(np.float32)
    trainer = small_trainer(sp.BCEWithLogitsLoss(), 1)
    outputs = trainer.predict(X).astype(np.float64)
    np.testing.assert_allclose(trainer.predict_proba(X), 1 / (1 + np.exp(-outputs)), rtol=1e-5)


def test_predict_proba_refuses_a_regression_loss():
    trainer = small_trainer(sp.MSELoss(), 1)
    with pytest.raises(ValueError, match="predict_proba needs a classification loss .* got MSELoss"):
        trainer.predict_proba(np.zeros((2, 4), np.float32))


# --- run folders and ``saddlepoint predict`` ------------------------------------------------------


def command() -> list[str]:
    """The installed ``saddlepoint`` command (next to this Python), else ``python -m``."""
    script = Path(sys.executable).with_name("saddlepoint")
    return [str(script)] if script.exists() else [sys.executable, "-m", "saddlepoint.cli"]


def saddlepoint(*argv, check=True) -> subprocess.CompletedProcess:
    """The command run in a fresh process."""
    result = subprocess.run([*command(), *map(str, argv)], capture_output=True, text=True)
    if check:
        assert result.returncode == 0, result.stderr
    return result


FAST = ["--epochs", "3", "--hidden", "8", "--quiet"]


def mixed_table(rows: int = 120, seed: int = 0) -> pd.DataFrame:
    """Numbers, categories, booleans, dates, an identifier and missing cells; a string target
    ("label") and a numeric one in its own units ("price")."""
    rng = np.random.default_rng(seed)
    color = rng.choice(["red", "green", "blue"], rows)
    size = rng.normal(10, 3, rows)
    fresh = rng.random(rows) < 0.5
    price = 1000 + 400 * (color == "red") + 30 * size + 100 * fresh + rng.normal(0, 20, rows)
    frame = pd.DataFrame(
        {
            "id": [f"item-{i:04d}" for i in range(rows)],
            "color": color,
            "size": size.round(2),
            "fresh": fresh,
            "sold": pd.date_range("2024-01-01", periods=rows, freq="D").strftime("%Y-%m-%d"),
            "label": np.where(price > np.median(price), "dear", "cheap"),
            "price": price.round(2),
        }
    )
    frame.loc[[3, rows - 2], "size"] = np.nan
    frame.loc[5, "color"] = np.nan
    return frame


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A classification run on a string target and a regression run, trained by the command."""
    folder = tmp_path_factory.mktemp("runs")
    table = mixed_table()
    table.loc[9, "label"] = np.nan  # dropped and counted
    table.to_csv(folder / "table.csv", index=False)
    label = saddlepoint(
        "train", "--data", folder / "table.csv", "--target", "label", "--drop", "price", *FAST,
        "--out", folder / "label",
    )  # fmt: skip
    price = saddlepoint(
        "train", "--data", folder / "table.csv", "--target", "price", "--drop", "label", *FAST,
        "--out", folder / "price",
    )  # fmt: skip
    return folder, label, price


@pytest.mark.parametrize("run", ["label", "price"])
def test_predict_in_a_fresh_process_equals_the_predictions_made_at_the_end_of_training(trained, run):
    folder, _, _ = trained
    at_training = pd.read_csv(folder / run / "test_predictions.csv")
    saddlepoint("predict", folder / run, "--data", folder / "table.csv", "--out", folder / f"{run}.csv")
    predicted = pd.read_csv(folder / f"{run}.csv")
    assert list(at_training.columns) == ["line", *predicted.columns]  # the test rows' file lines
    assert len(at_training) == 30 and len(predicted) == 120
    predicted = predicted.set_index("id").loc[at_training["id"]].reset_index()
    for name in predicted.columns:
        if predicted[name].dtype.kind == "f":
            np.testing.assert_allclose(predicted[name], at_training[name], rtol=2e-6, atol=0, err_msg=name)
        else:
            assert predicted[name].tolist() == at_training[name].tolist(), name


def test_a_missing_target_is_dropped_and_counted(trained):
    _, label, _ = trained
    assert "dropped 1 row whose target 'label' is missing" in label.stderr


def test_the_run_folder_is_a_model(trained):
    folder, _, _ = trained
    run = folder / "label"
    assert {p.name for p in run.iterdir()} >= {
        "preprocessing.json",
        "model.safetensors",
        "metrics.json",
        "config.json",
        "columns.json",
        "columns.csv",
        "test_predictions.csv",
    }
    preprocessing = json.loads((run / "preprocessing.json").read_text())
    assert preprocessing["task"] == "classification" and preprocessing["target"] == "label"
    assert "test accuracy" in json.loads((run / "metrics.json").read_text())
    columns = pd.read_csv(run / "columns.csv")
    assert list(columns.columns) == ["name", "dtype", "role", "action"]
    assert set(columns["name"]) >= {"id", "color", "size", "fresh", "sold"}
    assert "price" not in set(columns.loc[columns["role"] != "dropped", "name"])


def test_load_run_predicts_as_the_command_does_with_the_string_labels(trained):
    folder, _, _ = trained
    new = mixed_table(rows=15, seed=7).drop(columns=["label", "price"])
    run = sp.load_run(folder / "label")
    predictions = run.predict(new)
    ids = run.preprocessor.identifier_columns
    assert ids[0] == "id" and set(ids) <= {"id", "sold"}
    assert list(predictions.columns) == [*ids, "label", "P(cheap)", "P(dear)"]
    assert predictions["id"].tolist() == new["id"].tolist()
    assert set(predictions["label"]) <= {"cheap", "dear"}
    probabilities = predictions[["P(cheap)", "P(dear)"]].to_numpy()
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    expected = np.where(probabilities[:, 1] > probabilities[:, 0], "dear", "cheap")
    assert predictions["label"].tolist() == expected.tolist()
    new.to_csv(folder / "new.csv", index=False)
    from_path = run.predict(folder / "new.csv")
    pd.testing.assert_frame_equal(from_path, predictions)
    command_output = pd.read_csv(
        io.StringIO(saddlepoint("predict", folder / "label", "--data", folder / "new.csv").stdout)
    )
    assert command_output["label"].tolist() == predictions["label"].tolist()
    np.testing.assert_allclose(command_output["P(dear)"], predictions["P(dear)"], rtol=1e-6)


def test_regression_predictions_are_in_the_targets_units(trained):
    folder, _, _ = trained
    table = mixed_table()
    predictions = sp.load_run(folder / "price").predict(table.drop(columns=["price"]))
    assert list(predictions.columns)[-1] == "price"
    # Trained briefly, but in dollars around 1,300, not standardized values around 0.
    assert abs(predictions["price"].mean() - table["price"].mean()) < 2 * table["price"].std()
    assert predictions["price"].mean() > 500


def test_a_boolean_target_is_predicted_as_booleans(tmp_path):
    table = mixed_table()
    table.drop(columns=["label", "price"]).to_csv(tmp_path / "t.csv", index=False)
    saddlepoint("train", "--data", tmp_path / "t.csv", "--target", "fresh", *FAST, "--out", tmp_path / "run")
    predictions = sp.load_run(tmp_path / "run").predict(table)
    assert list(predictions.columns)[-3:] == ["fresh", "P(False)", "P(True)"]
    assert predictions["fresh"].dtype == bool


def one_line_error(result) -> str:
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1 and result.stdout == "", result
    assert lines[0].startswith("saddlepoint: error: ")
    return lines[0]


def test_predict_refuses_a_folder_that_is_not_a_run(tmp_path):
    line = one_line_error(saddlepoint("predict", tmp_path, "--data", tmp_path / "x.csv", check=False))
    assert f"{tmp_path} is not a saddlepoint run folder: it has no preprocessing.json" in line
    line = one_line_error(saddlepoint("predict", tmp_path / "nothing", "--data", "x.csv", check=False))
    assert f"{tmp_path / 'nothing'} does not exist" in line


def test_predict_names_the_column_a_table_lacks(trained, tmp_path):
    folder, _, _ = trained
    mixed_table(rows=10).drop(columns=["size"]).to_csv(tmp_path / "new.csv", index=False)
    line = one_line_error(
        saddlepoint("predict", folder / "label", "--data", tmp_path / "new.csv", check=False)
    )
    assert f"{tmp_path / 'new.csv'} has no column 'size', which the model of" in line
    line = one_line_error(
        saddlepoint("predict", folder / "label", "--data", tmp_path / "none.csv", check=False)
    )
    assert "none.csv does not exist" in line
