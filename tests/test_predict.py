"""Predictions: ``Trainer.predict_proba``, a run folder loaded as a model
(``saddlepoint.load_run``) and ``saddlepoint predict`` in a fresh process."""

import numpy as np
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
