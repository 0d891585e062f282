"""Mini-batches and cross validation."""

import warnings

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.model_selection import KFold, StratifiedKFold
from sklearn.preprocessing import StandardScaler

import saddlepoint as sp
from saddlepoint.data import cross_validate, minibatches


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
    return sp.Trainer(model, sp.CrossEntropyLoss(), optimizer, metrics=["accuracy"], batch_size=32,
                      seed=0, verbose=0)


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

    ordered = cross_validate(digits_trainer, X, y, epochs=60, cv=5, shuffle=False, preprocess=StandardScaler())
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
        return sp.Trainer(model, sp.MSELoss(), sp.Adam(model.parameters(), lr=1e-2), metrics=["r2"],
                          seed=0, verbose=0)

    result = cross_validate(make, X, y, epochs=60, cv=3, metric="r2")
    assert result.mean > 0.9, str(result)
    with pytest.raises(ValueError, match="cv must be at least 2 folds, got 1"):
        cross_validate(make, X, y, epochs=1, cv=1)


def test_load_csv_and_infer_task(tmp_path):
    from saddlepoint.data import infer_task, load_csv

    path = tmp_path / "d.csv"
    path.write_text("x1,label,x2\n1.5,0,2\n2.5,1,3\n\n")
    X, y, names = load_csv(path, "label")
    np.testing.assert_array_equal(X, [[1.5, 2], [2.5, 3]])
    np.testing.assert_array_equal(y, [0, 1])
    assert names == ["x1", "x2"]
    assert infer_task(np.array([0, 1, 2, 1, 0, 2, 1])) == "classification"
    assert infer_task(np.linspace(0, 1, 50)) == "regression"
    assert infer_task(np.arange(100)) == "regression"


def test_load_csv_names_the_line_where_a_row_starts_past_blank_lines_and_quoted_newlines(tmp_path):
    from saddlepoint.data import TableError, load_csv

    path = tmp_path / "d.csv"
    path.write_text('a,"the\nlabel"\n\n1,0\n"2\n",1\n3,x\n')
    with pytest.raises(TableError, match=r"d.csv line 7, column 'the\\nlabel': 'x' is not a number"):
        load_csv(path, "the\nlabel")
    path.write_bytes(b"\xef\xbb\xbfa,y\r\n1,0\r\n2,1\r\n")  # a byte-order mark and Windows lines
    X, y, names = load_csv(path, "a")
    assert names == ["y"] and X.tolist() == [[0], [1]] and y.tolist() == [1, 2]
    path.write_text("a,b,a\n1,2,3\n")
    with pytest.raises(TableError, match=r"line 1: the column name 'a' appears twice \(columns 1 and 3\)"):
        load_csv(path, "b")
