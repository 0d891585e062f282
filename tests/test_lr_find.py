"""The learning-rate range test."""

import numpy as np
import pytest

import saddlepoint as sp


@pytest.fixture
def digits():
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    return (X / 16.0).astype(np.float32), y


def test_lr_find_suggests_a_rate_that_trains_and_leaves_no_trace(digits):
    X, y = digits
    model = sp.mlp([64, 32, 10], rng=0)
    optimizer = sp.SGD(model.parameters(), lr=0.01, momentum=0.9)
    before = model.state_dict()
    result = sp.lr_find(
        model, sp.CrossEntropyLoss(), optimizer, X, y, start_lr=1e-5, end_lr=100.0, num_steps=200, rng=0
    )
    for name, array in model.state_dict().items():
        assert array.tobytes() == before[name].tobytes()
    assert optimizer.param_groups[0]["lr"] == 0.01 and optimizer.state == {}
    assert result.stopped_early  # lr = 100 with momentum diverges
    assert 1e-4 < result.suggestion < result.lr_at_min_loss < result.lrs[-1]
    assert np.all(np.diff(result.lrs) > 0)
    assert "suggested lr" in str(result)

    # Training at the suggestion makes real progress; at the largest rate tried it does not.
    def final_loss(lr):
        m = sp.mlp([64, 32, 10], rng=0)
        opt = sp.SGD(m.parameters(), lr=lr, momentum=0.9)
        trainer = sp.Trainer(
            m, sp.CrossEntropyLoss(), opt, batch_size=32, seed=0, verbose=0, check_finite=False
        )
        return trainer.fit(X, y, epochs=3)["loss"][-1]

    assert final_loss(result.suggestion) < 0.5
    assert not final_loss(result.lrs[-1]) < 0.5


def test_lr_find_rejects_bad_ranges(digits):
    X, y = digits
    model = sp.mlp([64, 10], rng=0)
    with pytest.raises(ValueError, match="0 < start_lr < end_lr"):
        sp.lr_find(model, sp.CrossEntropyLoss(), sp.SGD(model.parameters()), X, y, start_lr=1.0, end_lr=0.1)
