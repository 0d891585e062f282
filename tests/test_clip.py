"""Gradient clipping against NumPy (and PyTorch where importable)."""

import numpy as np
import pytest

import saddlepoint as sp

try:
    import torch
except ImportError:
    torch = None


def params_with_grads(rng, dtype=np.float64):
    params = [sp.Parameter(np.zeros(shape, dtype)) for shape in [(3, 4), (4,), (50_000,)]]
    for p in params:
        p.grad[:] = rng.standard_normal(p.shape)
    return params


@pytest.mark.parametrize("norm_type", [1.0, 2.0, 3.0, np.inf])
def test_clip_grad_norm_scales_to_max_norm(rng, norm_type):
    params = params_with_grads(rng)
    flat = np.concatenate([p.grad.ravel() for p in params])
    expected_total = np.linalg.norm(flat, ord=norm_type)
    total = sp.clip_grad_norm_(params, max_norm=1.0, norm_type=norm_type)
    assert total == pytest.approx(expected_total, rel=1e-12)
    clipped = np.concatenate([p.grad.ravel() for p in params])
    np.testing.assert_allclose(clipped, flat / (expected_total + 1e-6), rtol=1e-12)
    assert sp.grad_norm(params, norm_type) == pytest.approx(1.0, rel=1e-5)


def test_small_gradients_are_not_changed(rng):
    params = params_with_grads(rng)
    before = [p.grad.copy() for p in params]
    sp.clip_grad_norm_(params, max_norm=1e6)
    for p, b in zip(params, before):
        np.testing.assert_array_equal(p.grad, b)


def test_nonfinite_norm_raises_when_asked_and_changes_nothing(rng):
    params = params_with_grads(rng)
    params[0].grad[0, 0] = np.nan
    before = params[1].grad.copy()
    with pytest.raises(RuntimeError, match="is nan"):
        sp.clip_grad_norm_(params, 1.0, error_if_nonfinite=True)
    np.testing.assert_array_equal(params[1].grad, before)


def test_clip_grad_value(rng):
    params = params_with_grads(rng, np.float32)
    expected = [np.clip(p.grad, -0.5, 0.5) for p in params]
    sp.clip_grad_value_(params, 0.5)
    for p, e in zip(params, expected):
        np.testing.assert_array_equal(p.grad, e)
    with pytest.raises(ValueError, match="clip_value must be a number >= 0, got -1"):
        sp.clip_grad_value_(params, -1)


@pytest.mark.skipif(torch is None, reason="PyTorch is not installed")
@pytest.mark.parametrize("norm_type", [2.0, np.inf])
def test_clip_grad_norm_matches_pytorch(rng, norm_type):
    params = params_with_grads(rng)
    tensors = [torch.zeros(p.shape, dtype=torch.float64, requires_grad=True) for p in params]
    for t, p in zip(tensors, params):
        t.grad = torch.tensor(p.grad)
    theirs = torch.nn.utils.clip_grad_norm_(tensors, 0.5, norm_type=norm_type)
    ours = sp.clip_grad_norm_(params, 0.5, norm_type=norm_type)
    assert ours == pytest.approx(float(theirs), rel=1e-12)
    for t, p in zip(tensors, params):
        np.testing.assert_allclose(p.grad, t.grad.numpy(), rtol=1e-12)
