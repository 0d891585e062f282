"""Conv2d against PyTorch: the results tests/reference/make_reference_conv.py made once with
PyTorch (output and input, weight and bias gradients), and the same live when torch is
importable (skipped otherwise)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from saddlepoint.nn import Conv2d

REFERENCE = Path(__file__).resolve().parent / "reference"
META = json.loads((REFERENCE / "conv_cases.json").read_text())
CASES = META["conv"]["cases"]
DTYPES = {"f64": np.float64, "f32": np.float32}


def assert_close(actual, expected, tag):
    """float64 within 1e-12 relative to the largest value, float32 within 1e-5."""
    scale = max(1.0, float(np.max(np.abs(expected))))
    rtol = 1e-12 if tag == "f64" else 1e-5
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=rtol * scale)


def run_layer(case, x, weight, bias, grad_output):
    """Output and (input, weight, bias) gradients of a saddlepoint Conv2d set to these weights."""
    layer = Conv2d(
        case["in_channels"],
        case["out_channels"],
        tuple(case["kernel_size"]),
        stride=tuple(case["stride"]),
        padding=tuple(case["padding"]),
        dilation=tuple(case["dilation"]),
        groups=case["groups"],
        bias=case["bias"],
        dtype=DTYPES[case["dtype"]],
    )
    layer.weight.data[...] = weight
    if bias is not None:
        layer.bias.data[...] = bias
    layer.zero_grad()
    out = layer.forward(x).copy()
    grad_input = layer.backward(grad_output).copy()
    grad_bias = None if layer.bias is None else layer.bias.grad
    return out, grad_input, layer.weight.grad, grad_bias


@pytest.fixture(scope="module")
def stored():
    with np.load(REFERENCE / "conv.npz") as arrays:
        return {key: arrays[key] for key in arrays.files}


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_conv2d_matches_the_stored_pytorch_results(case, stored):
    get = lambda name: stored.get(f"{case['id']}/{name}")  # noqa: E731
    out, grad_input, grad_weight, grad_bias = run_layer(
        case, get("x"), get("weight"), get("bias"), get("grad_output")
    )
    assert_close(out, get("out"), case["dtype"])
    assert_close(grad_input, get("grad_input"), case["dtype"])
    assert_close(grad_weight, get("grad_weight"), case["dtype"])
    if case["bias"]:
        assert_close(grad_bias, get("grad_bias"), case["dtype"])


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_conv2d_matches_pytorch_live(case):
    torch = pytest.importorskip("torch")
    dtype = DTYPES[case["dtype"]]
    rng = np.random.default_rng(7)
    layer = torch.nn.Conv2d(
        case["in_channels"],
        case["out_channels"],
        tuple(case["kernel_size"]),
        stride=tuple(case["stride"]),
        padding=tuple(case["padding"]),
        dilation=tuple(case["dilation"]),
        groups=case["groups"],
        bias=case["bias"],
        dtype=torch.float64 if dtype == np.float64 else torch.float32,
    )
    x = rng.standard_normal((3, case["in_channels"], 11, 10)).astype(dtype)
    tx = torch.from_numpy(x.copy()).requires_grad_(True)
    y = layer(tx)
    grad_output = rng.standard_normal(tuple(y.shape)).astype(dtype)
    y.backward(torch.from_numpy(grad_output))
    weight = layer.weight.detach().numpy()
    bias = None if layer.bias is None else layer.bias.detach().numpy()
    out, grad_input, grad_weight, grad_bias = run_layer(case, x, weight, bias, grad_output)
    assert_close(out, y.detach().numpy(), case["dtype"])
    assert_close(grad_input, tx.grad.numpy(), case["dtype"])
    assert_close(grad_weight, layer.weight.grad.numpy(), case["dtype"])
    if case["bias"]:
        assert_close(grad_bias, layer.bias.grad.numpy(), case["dtype"])


def test_default_initialization_has_pytorchs_bounds():
    torch = pytest.importorskip("torch")
    ours = Conv2d(6, 4, (3, 2), groups=2, rng=0)
    theirs = torch.nn.Conv2d(6, 4, (3, 2), groups=2)
    assert ours.weight.data.shape == tuple(theirs.weight.shape)
    bound = 1 / np.sqrt(3 * 3 * 2)
    for p in (theirs.weight, theirs.bias):
        assert float(p.detach().abs().max()) <= bound
    for p in (ours.weight.data, ours.bias.data):
        assert float(np.abs(p).max()) <= bound
