"""Mini-batches, cross validation, and the one encoding of targets shared by the Trainer, the
command line and the guide."""

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.datasets import load_digits
from sklearn.model_selection import KFold, StratifiedKFold
from sklearn.preprocessing import StandardScaler

import saddlepoint as sp
from saddlepoint import cli
from saddlepoint.data import (
    TargetEncoder,
    cross_validate,
    minibatches,
    prepare_data,
    task_of,
    training_targets,
)
from saddlepoint.data import targets as targets_module
from saddlepoint.training import trainer as trainer_module


def test_minibatches_shuffle_every_epoch_and_cover_the_data():
    rng = np.random.default_rng(0)
    first = np.concatenate(list(minibatches(10, 3, rng)))
    second = np.concatenate(list(minibatches(10, 3, rng)))
    assert sorted(first) == sorted(second) == list(range(10))
    assert not np.array_equal(first, second)
    assert [len(b) for b in minibatches(10, 3, shuffle=False, drop_last=True)] == [3, 3, 3]
    with pytest.raises(ValueError, match="batch_size must be a positive integer, got 0"):
        list(minibatches(10, 0))


def test_drop_last_with_fewer_samples_than_a_batch_gives_no_batch_as_pytorch():
    assert list(minibatches(10, 64, drop_last=True)) == []
    assert [len(b) for b in minibatches(10, 64)] == [10]


def digits_trainer():
    model = sp.mlp([64, 64, 64, 10], rng=0)
    optimizer = sp.Adam(model.parameters(), lr=1e-3, weight_decay=1e-4)
    return sp.Trainer(
        model, sp.CrossEntropyLoss(), optimizer, metrics=["accuracy"], batch_size=32, seed=0, verbose=0
    )


def sklearn_scores(X, y, splitter):
    from sklearn.neural_network import MLPClassifier

    scores = []
    for train, test in splitter.split(X, y):
        scaler = StandardScaler().fit(X[train])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # MLPClassifier's max_iter warning
            clf = MLPClassifier((64, 64), random_state=0).fit(scaler.transform(X[train]), y[train])
        scores.append(clf.score(scaler.transform(X[test]), y[test]))
    return np.array(scores)


def test_digits_cross_validation_matches_scikit_learn_and_shows_the_writer_mismatch():
    """Shuffled stratified folds: at least MLPClassifier's mean on the same folds. Unshuffled
    folds follow the digits' order, roughly by writer, and every MLP loses 3-4 points there."""
    X, y = load_digits(return_X_y=True)
    shuffled = cross_validate(digits_trainer, X, y, epochs=60, cv=5, seed=0, preprocess=StandardScaler())
    reference = sklearn_scores(X, y, StratifiedKFold(5, shuffle=True, random_state=0))
    print(f"\nshuffled: saddlepoint {shuffled}; MLPClassifier mean {reference.mean():.4f}")
    assert shuffled.mean >= reference.mean() and shuffled.mean > 0.97

    ordered = cross_validate(
        digits_trainer, X, y, epochs=60, cv=5, shuffle=False, preprocess=StandardScaler()
    )
    reference_ordered = sklearn_scores(X, y, KFold(5))
    print(f"unshuffled: saddlepoint {ordered}; MLPClassifier mean {reference_ordered.mean():.4f}")
    assert 0.90 < ordered.mean < shuffled.mean - 0.02
    assert 0.90 < reference_ordered.mean() < reference.mean() - 0.02
    assert len(ordered.scores) == 5 and ordered.to_dict()["metric"] == "accuracy"


def test_cross_validate_regression_uses_kfold():
    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, (300, 2))
    y = (np.sin(2 * X[:, 0]) + X[:, 1] ** 2).reshape(-1, 1)

    def make():
        model = sp.mlp([2, 32, 1], "tanh", rng=0)
        return sp.Trainer(
            model, sp.MSELoss(), sp.Adam(model.parameters(), lr=1e-2), metrics=["r2"], seed=0, verbose=0
        )

    result = cross_validate(make, X, y, epochs=60, cv=3, metric="r2")
    assert result.mean > 0.9, str(result)
    with pytest.raises(ValueError, match="cv must be at least 2 folds, got 1"):
        cross_validate(make, X, y, epochs=1, cv=1)


def test_infer_task():
    from saddlepoint.data import infer_task

    assert infer_task(np.array([0, 1, 2, 1, 0, 2, 1])) == "classification"
    assert infer_task(np.linspace(0, 1, 50)) == "regression"
    assert infer_task(np.arange(100)) == "regression"


def test_class_labels_of_every_split_become_indices_and_decode_back():
    encoder = TargetEncoder.fit("classification", np.array([10, 30, 20, 30]), None, np.array([[40], [20]]))
    assert encoder.classes.tolist() == [10, 20, 30, 40] and encoder.n_out == 4
    encoded = encoder.encode(np.array([30.0, 10.0, 40.0]))
    assert encoded.dtype == np.int64 and encoded.tolist() == [2, 0, 3]
    assert encoder.decode(np.eye(4)[encoded]).tolist() == [30, 10, 40]
    assert encoder.encode(None) is None
    assert isinstance(encoder.loss(), sp.CrossEntropyLoss) and encoder.metric == "accuracy"
    assert encoder.baseline(np.array([0, 0, 1, 1])) == pytest.approx(np.log(2))


def test_regression_targets_become_standardized_float_columns():
    y = np.array([1.0, 3.0, 5.0, 7.0], np.float32)
    encoder = TargetEncoder.fit("regression", y)
    encoded = encoder.encode(y)
    assert encoded.shape == (4, 1) and encoded.dtype == np.float64 and encoder.n_out == 1
    np.testing.assert_allclose([encoded.mean(), encoded.std()], [0, 1], atol=1e-12)
    np.testing.assert_allclose(encoder.decode(encoded), y.reshape(-1, 1))
    assert isinstance(encoder.loss(), sp.MSELoss) and encoder.metric == "r2"
    constant = TargetEncoder.fit("regression", np.array([[2.0, 1.0], [2.0, 3.0]]))
    assert (
        constant.scale.tolist() == [1.0, 1.0] and constant.n_out == 2
    )  # a constant column is not divided by 0
    with pytest.raises(
        ValueError, match=r"task must be one of \['classification', 'regression'\], got 'ranking'"
    ):
        TargetEncoder.fit("ranking", y)


finite = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)


@settings(max_examples=60, deadline=None)
@given(st.lists(finite, min_size=1, max_size=30), st.lists(st.integers(-5, 5), min_size=1, max_size=30))
def test_encoding_round_trips(values, labels):
    y = np.array(values)
    encoder = TargetEncoder.fit("regression", y)
    np.testing.assert_allclose(encoder.decode(encoder.encode(y))[:, 0], y, rtol=1e-9, atol=1e-6)
    labels = np.array(labels)
    classes = TargetEncoder.fit("classification", labels)
    encoded = classes.encode(labels)
    assert encoded.min() >= 0 and encoded.max() < classes.n_out
    assert classes.classes[encoded].tolist() == labels.tolist()


def test_training_targets_are_what_the_losses_take():
    assert training_targets(np.array([1.0, 0.0]), True, np.float32).dtype == np.int64
    assert training_targets(np.array([True, False]), True, np.float32).tolist() == [1, 0]
    bce = np.array([[1.0], [0.0]])
    assert training_targets(bce, True, np.float32) is bce  # BCE's 0/1 columns stay as given
    column = training_targets(np.array([1.5, 2.5]), False, np.float32)
    assert column.shape == (2, 1) and column.dtype == np.float32 and column.flags.c_contiguous


def test_task_is_inferred_and_one_hot_rows_are_refused():
    assert task_of(np.array([[0], [1], [1], [0]]))[0] == "classification"
    assert task_of(np.linspace(0, 1, 50))[0] == "regression"
    assert task_of(np.eye(3)[[0, 1, 2, 1, 0, 2]])[0] == "regression"
    with pytest.raises(ValueError, match="one class label per sample for classification, got shape"):
        task_of(np.eye(3)[[0, 1, 2]], "classification")


def test_regression_trainer_takes_a_one_dimensional_target_as_a_column():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 3)).astype(np.float32)
    model = sp.mlp([3, 1], rng=0)
    trainer = sp.Trainer(model, sp.MSELoss(), sp.SGD(model.parameters(), lr=0.1), verbose=0)
    trainer.fit(X, X[:, 0] * 2, epochs=3)  # it was refused: "target must have shape (40, 1)"
    assert trainer.evaluate(X, X[:, 0] * 2)["loss"] < trainer.history["loss"][0]


class Spy:
    """Counts the calls of the shared encoding functions while passing them through."""

    def __init__(self, monkeypatch):
        self.fits, self.trainer = [], 0
        fit = TargetEncoder.fit.__func__
        encode = training_targets

        def spy_fit(cls, task, *args):
            self.fits.append(task)
            return fit(cls, task, *args)

        def spy_training_targets(*args):
            self.trainer += 1
            return encode(*args)

        monkeypatch.setattr(targets_module.TargetEncoder, "fit", classmethod(spy_fit))
        monkeypatch.setattr(trainer_module, "training_targets", spy_training_targets)


def test_the_trainer_the_guide_and_the_command_line_share_one_encoding(monkeypatch, tmp_path, capsys):
    spy = Spy(monkeypatch)
    rng = np.random.default_rng(0)
    X = rng.standard_normal((60, 3))
    labels = np.where(X[:, 0] > 0, 7.0, 3.0)

    data = prepare_data(X, labels, validation_split=0.25, seed=0)  # the guide's and the landscape's
    assert spy.fits == ["classification"]
    assert data.encoder.classes.tolist() == [3.0, 7.0] and data.n_out == 2
    assert data.train[1].dtype == np.int64 and set(data.train[1].tolist()) == {0, 1}

    model = sp.mlp([3, 2], rng=0)
    sp.Trainer(model, data.loss, sp.SGD(model.parameters()), verbose=0).fit(*data.train, epochs=1)
    assert spy.trainer == 1

    spy.fits.clear()
    path = tmp_path / "t.csv"
    path.write_text(
        "a,b,c,y\n"
        + "\n".join(",".join(f"{v:.4f}" for v in (*row, t)) for row, t in zip(X, X @ [1.0, -2.0, 0.5]))
        + "\n"
    )
    assert (
        cli.main(
            [
                "train",
                "--data",
                str(path),
                "--target",
                "y",
                "--epochs",
                "1",
                "--quiet",
                "--out",
                str(tmp_path / "run"),
            ]
        )
        == 0
    )
    assert spy.fits == ["regression"] and spy.trainer > 1
    assert "test R2" in capsys.readouterr().out
