"""saddlepoint.sklearn's estimators: parity with scikit-learn's MLPs, model selection tools,
pickling, the fitted attributes and the refusals."""

from __future__ import annotations

import pickle
import warnings

import numpy as np
import pytest
from sklearn import neural_network
from sklearn.base import clone
from sklearn.calibration import CalibratedClassifierCV
from sklearn.datasets import load_digits, make_classification, make_multilabel_classification, make_regression
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.model_selection import GridSearchCV, RandomizedSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import saddlepoint
from saddlepoint.nn import Dense
from saddlepoint.sklearn import MLPClassifier, MLPRegressor

from common import misaligned


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X[:600] / 16.0, y[:600]


@pytest.fixture(scope="module")
def regression():
    X, y = make_regression(n_samples=300, n_features=8, noise=5.0, random_state=0)
    return StandardScaler().fit_transform(X), (y - y.mean()) / y.std()


def quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return fn(*args, **kwargs)


# --- parity with scikit-learn ------------------------------------------------------------------
SGD_PLAIN = dict(solver="sgd", momentum=0.0, learning_rate_init=0.05, max_iter=3, random_state=3, alpha=1e-3)


@pytest.mark.parametrize(
    "make, target",
    [
        (MLPClassifier, "multiclass"),
        (MLPClassifier, "binary"),
        (MLPClassifier, "multilabel"),
        (MLPRegressor, "single"),
        (MLPRegressor, "multioutput"),
    ],
)
@pytest.mark.parametrize("weighted", [False, True])
def test_plain_sgd_follows_sklearn_step_for_step(make, target, weighted):
    # Same random_state: the same initial weights and the same batches; plain SGD is the same
    # update in both libraries, so the weights and the loss curve agree to rounding (float64).
    rng = np.random.default_rng(0)
    X = rng.normal(size=(150, 6))
    if target == "multiclass":
        y = rng.integers(0, 3, 150)
    elif target == "binary":
        y = rng.integers(0, 2, 150)
    elif target == "multilabel":
        y = rng.integers(0, 2, (150, 3))
    elif target == "single":
        y = X @ rng.normal(size=6)
    else:
        y = X @ rng.normal(size=(6, 2))
    weight = rng.uniform(0.5, 2.0, 150) if weighted else None
    params = dict(SGD_PLAIN, hidden_layer_sizes=(7, 5), batch_size=32, activation="tanh")
    ours = quiet(make(**params).fit, X, y, sample_weight=weight)
    theirs_cls = getattr(neural_network, make.__name__)
    theirs = quiet(theirs_cls(**params).fit, X, y, sample_weight=weight)
    np.testing.assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=1e-9)
    for a, b in zip(ours.coefs_ + ours.intercepts_, theirs.coefs_ + theirs.intercepts_):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)
    assert ours.out_activation_ == theirs.out_activation_
    assert (ours.n_iter_, ours.t_, ours.n_layers_, ours.n_outputs_) == (
        theirs.n_iter_,
        theirs.t_,
        theirs.n_layers_,
        theirs.n_outputs_,
    )
    np.testing.assert_allclose(
        ours.predict(X) if make is MLPRegressor else ours.predict_proba(X),
        theirs.predict(X) if make is MLPRegressor else theirs.predict_proba(X),
        rtol=1e-8,
        atol=1e-10,
    )


def test_adam_on_the_digits_scores_as_sklearn(digits):
    X, y = digits
    ours = quiet(
        cross_val_score, MLPClassifier(hidden_layer_sizes=(32,), max_iter=60, random_state=0), X, y, cv=3
    )
    theirs = quiet(
        cross_val_score,
        neural_network.MLPClassifier(hidden_layer_sizes=(32,), max_iter=60, random_state=0),
        X,
        y,
        cv=3,
    )
    assert ours.mean() > theirs.mean() - 0.02


# --- fitted attributes -------------------------------------------------------------------------
def test_coefs_are_the_dense_weights_transposed(digits):
    X, y = digits
    est = quiet(MLPClassifier(hidden_layer_sizes=(16, 8), max_iter=3, random_state=0).fit, X, y)
    dense = [m for m in est._model.modules() if isinstance(m, Dense)]
    assert [c.shape for c in est.coefs_] == [(64, 16), (16, 8), (8, 10)]
    for coef, intercept, layer in zip(est.coefs_, est.intercepts_, dense):
        np.testing.assert_array_equal(coef, layer.weight.data.T)
        np.testing.assert_array_equal(intercept, layer.bias.data)
    assert np.shares_memory(est.coefs_[0], dense[0].weight.data)
    assert est.n_layers_ == 4 and est.n_outputs_ == 10 and est.out_activation_ == "softmax"
    assert est.n_features_in_ == 64 and len(est.loss_curve_) == est.n_iter_ == 3 and est.t_ == 3 * len(X)
    np.testing.assert_array_equal(est.classes_, np.arange(10))


def test_feature_names_are_kept():
    pd = pytest.importorskip("pandas")
    X, y = make_classification(n_samples=80, n_features=4, random_state=0)
    frame = pd.DataFrame(X, columns=["a", "b", "c", "d"])
    est = quiet(MLPClassifier(max_iter=5, random_state=0).fit, frame, y)
    assert list(est.feature_names_in_) == ["a", "b", "c", "d"]


def test_multilabel_has_logistic_outputs():
    X, Y = make_multilabel_classification(n_samples=120, n_features=6, n_classes=4, random_state=0)
    est = quiet(MLPClassifier(hidden_layer_sizes=(20,), max_iter=50, random_state=0).fit, X, Y)
    assert est.out_activation_ == "logistic" and est.n_outputs_ == 4
    proba = est.predict_proba(X)
    assert proba.shape == (120, 4) and ((proba > 0) & (proba < 1)).all()
    np.testing.assert_array_equal(est.predict(X), (proba > 0.5).astype(int))


def test_multioutput_regression(regression):
    X, y = regression
    Y = np.column_stack([y, -2 * y])
    est = quiet(MLPRegressor(hidden_layer_sizes=(32,), max_iter=200, random_state=0).fit, X, Y)
    assert est.predict(X).shape == (300, 2) and est.score(X, Y) > 0.8


def test_float32_input_trains_in_float32(regression):
    X, y = regression
    est = quiet(MLPRegressor(max_iter=5, random_state=0).fit, X.astype(np.float32), y)
    assert est.coefs_[0].dtype == np.float32 and est.predict(X).dtype == np.float32


# --- training behaviour ------------------------------------------------------------------------
def test_max_iter_warns_and_convergence_stops_early(regression):
    X, y = regression
    with pytest.warns(ConvergenceWarning, match="Maximum iterations"):
        MLPRegressor(max_iter=2, random_state=0).fit(X, y)
    est = MLPRegressor(max_iter=500, tol=0.1, n_iter_no_change=2, random_state=0).fit(X, y)
    assert est.n_iter_ < 500 and est.best_loss_ == min(est.loss_curve_)


def test_early_stopping_keeps_the_best_validation_weights(digits):
    X, y = digits
    est = quiet(MLPClassifier(early_stopping=True, max_iter=40, n_iter_no_change=3, random_state=0).fit, X, y)
    assert est.best_loss_ is None and len(est.validation_scores_) == est.n_iter_
    assert est.best_validation_score_ == max(est.validation_scores_)


def test_adaptive_rate_divides_by_five_before_stopping(regression):
    X, y = regression
    est = MLPRegressor(
        solver="sgd", learning_rate="adaptive", tol=10.0, n_iter_no_change=1, max_iter=100, random_state=0
    ).fit(X, y)
    assert est._lr() <= 1e-6 * 5 and est.n_iter_ < 100


def test_partial_fit_is_one_epoch_each_call(digits):
    X, y = digits
    est = MLPClassifier(random_state=0)
    est.partial_fit(X[:300], y[:300], classes=np.arange(10))
    est.partial_fit(X[300:], y[300:])
    assert est.n_iter_ == 2 and len(est.loss_curve_) == 2
    with pytest.raises(ValueError, match="classes not in"):
        est.partial_fit(X[:10], y[:10] + 20)


def test_warm_start_continues_from_the_weights(regression):
    X, y = regression
    est = quiet(MLPRegressor(max_iter=3, warm_start=True, random_state=0).fit, X, y)
    before = [c.copy() for c in est.coefs_]
    quiet(est.fit, X, y)
    assert len(est.loss_curve_) == 6 and not np.array_equal(before[0], est.coefs_[0])


@pytest.mark.parametrize(
    "extra",
    [dict(batch_norm=True), dict(dropout=0.2), dict(schedule="cosine", warmup=2), dict(num_threads=1)],
)
def test_saddlepoint_options_train(digits, extra):
    X, y = digits
    before = saddlepoint.get_num_threads()
    est = quiet(
        MLPClassifier(
            hidden_layer_sizes=(32,), learning_rate_init=0.01, max_iter=30, random_state=0, **extra
        ).fit,
        X,
        y,
    )
    assert est.score(X, y) > 0.9
    assert saddlepoint.get_num_threads() == before


def test_batch_norm_folds_a_last_single_sample_into_the_batch_before(digits):
    X, y = digits
    est = quiet(MLPClassifier(batch_norm=True, batch_size=10, max_iter=2, random_state=0).fit, X[:21], y[:21])
    assert est.n_iter_ == 2 and np.isfinite(est.loss_)
    with pytest.raises(ValueError, match="batch_norm needs batches of at least 2 samples"):
        MLPClassifier(batch_norm=True, batch_size=1).fit(X[:20], y[:20])


def test_dropout_masks_follow_random_state(digits):
    X, y = digits

    def first_mask_seed(random_state):
        est = quiet(MLPClassifier(dropout=0.3, max_iter=1, random_state=random_state).fit, X, y)
        (dropout,) = [m for m in est._model.modules() if isinstance(m, saddlepoint.Dropout)]
        return int(dropout.rng.integers(0, 2**63))

    assert first_mask_seed(0) == first_mask_seed(0) != first_mask_seed(1)


# --- scikit-learn's tools ----------------------------------------------------------------------
def test_pickle_and_clone_round_trip(digits):
    X, y = digits
    est = quiet(MLPClassifier(hidden_layer_sizes=(16,), max_iter=5, random_state=0).fit, X, y)
    copy = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(copy.predict_proba(X), est.predict_proba(X))
    copy.coefs_[0][:] = 0.0  # still a view of the copy's own model
    assert not np.array_equal(copy.predict_proba(X), est.predict_proba(X))
    quiet(copy.partial_fit, X, y)  # the optimizer state came along
    fresh = clone(est)
    assert fresh.get_params() == est.get_params() and not hasattr(fresh, "coefs_")


def test_model_selection_tools(digits, regression):
    X, y = digits
    pipe = make_pipeline(
        StandardScaler(),
        MLPClassifier(hidden_layer_sizes=(16,), learning_rate_init=0.01, max_iter=30, random_state=0),
    )
    assert quiet(cross_val_score, pipe, X, y, cv=3).mean() > 0.75  # chance is 0.1
    grid = quiet(GridSearchCV(pipe, {"mlpclassifier__alpha": [1e-4, 1e-2]}, cv=3).fit, X, y)
    assert grid.best_params_["mlpclassifier__alpha"] in (1e-4, 1e-2)
    search = quiet(
        RandomizedSearchCV(
            MLPRegressor(max_iter=20, random_state=0),
            {"learning_rate_init": [1e-3, 1e-2], "hidden_layer_sizes": [(8,), (16,)]},
            n_iter=2,
            cv=3,
            random_state=0,
        ).fit,
        *regression,
    )
    assert np.isfinite(search.best_score_)
    calibrated = quiet(
        CalibratedClassifierCV(
            MLPClassifier(hidden_layer_sizes=(16,), learning_rate_init=0.01, max_iter=30, random_state=0),
            cv=3,
        ).fit,
        X,
        y,
    )
    np.testing.assert_allclose(calibrated.predict_proba(X).sum(axis=1), 1.0)


# --- refusals ----------------------------------------------------------------------------------
def test_lbfgs_is_refused_with_the_reason(digits):
    with pytest.raises(ValueError, match="solver='lbfgs' is not supported.*mini-batches"):
        MLPClassifier(solver="lbfgs").fit(*digits)


@pytest.mark.parametrize(
    "params, match",
    [
        (dict(alpha=-1.0), "'alpha' parameter"),
        (dict(activation="softplus"), "'activation' parameter"),
        (dict(dropout=1.0), "'dropout' parameter"),
        (dict(schedule="cosine", learning_rate="adaptive", solver="sgd"), "needs learning_rate='constant'"),
        (dict(hidden_layer_sizes=(4, 0)), "hidden_layer_sizes must hold positive integers"),
    ],
)
def test_bad_parameters_are_named(digits, params, match):
    with pytest.raises(ValueError, match=match):
        MLPClassifier(**params).fit(*digits)


def test_sparse_input_is_refused(digits):
    sparse = pytest.importorskip("scipy.sparse")
    with pytest.raises(TypeError, match="[Ss]parse"):
        MLPClassifier(max_iter=2).fit(sparse.csr_matrix(digits[0]), digits[1])


def test_predict_before_fit_is_not_fitted():
    with pytest.raises(NotFittedError):
        MLPRegressor().predict(np.zeros((2, 3)))


def test_verbose_prints_the_loss_of_each_epoch(regression, capsys):
    quiet(MLPRegressor(max_iter=2, verbose=True, random_state=0).fit, *regression)
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(",")[0] for line in lines] == ["Iteration 1", "Iteration 2"]


def test_misaligned_arrays_fit_and_predict_as_their_aligned_copies(digits):
    """A Dask or Ray worker can deserialize an array at an odd address, which the kernels refuse."""
    X, y = digits
    X, y = X[:300], y[:300]
    settings = dict(hidden_layer_sizes=(16,), max_iter=3, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        expected = MLPClassifier(**settings).fit(X, y, sample_weight=np.ones(300))
        got = MLPClassifier(**settings).fit(
            misaligned(X), misaligned(y), sample_weight=misaligned(np.ones(300))
        )
    assert got.loss_curve_ == expected.loss_curve_
    np.testing.assert_array_equal(got.predict_proba(misaligned(X)), expected.predict_proba(X))
