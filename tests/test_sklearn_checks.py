"""scikit-learn's own estimator checks over saddlepoint.sklearn's estimators."""

from __future__ import annotations

import warnings

from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.estimator_checks import parametrize_with_checks

from saddlepoint.sklearn import MLPClassifier, MLPRegressor, expected_failed_checks

# max_iter as scikit-learn's own test suite sets it for its MLPs (_set_checking_parameters).
ESTIMATORS = [MLPClassifier(max_iter=100), MLPRegressor(max_iter=100)]


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=expected_failed_checks)
def test_sklearn_estimator_checks(estimator, check):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        check(estimator)
