"""The pooling layers against PyTorch: the results tests/reference/make_reference_pool.py kept
(pool.npz, pool_cases.json: outputs, positions of the maxima, input gradients and forward-mode
derivatives, with ties, NaN and -inf), and live against torch.nn.functional where it is
installed."""

import json
from pathlib import Path

import numpy as np
import pytest

from saddlepoint import nn

try:
    import torch
    import torch.nn.functional as F
except ImportError:  # the live tests are skipped; the committed references stand in for them
    torch = None

REFERENCE = Path(__file__).resolve().parent / "reference"
META = json.loads((REFERENCE / "pool_cases.json").read_text())
with np.load(REFERENCE / "pool.npz") as stored:
    ARRAYS = {name: stored[name] for name in stored.files}
DTYPES = {"f64": np.float64, "f32": np.float32}
TOLERANCE = {"f64": dict(rtol=1e-12, atol=1e-14), "f32": dict(rtol=1e-5, atol=1e-6)}


def build(layer: str, kwargs: dict):
    return getattr(nn, layer)(**kwargs)


@pytest.mark.parametrize("case", META["cases"], ids=[c["id"] for c in META["cases"]])
def test_pooling_matches_the_torch_reference(case):
    arrays = {k.split("/", 1)[1]: v for k, v in ARRAYS.items() if k.startswith(case["id"] + "/")}
    dtype, tol = DTYPES[case["dtype"]], TOLERANCE[case["dtype"]]
    assert arrays["x"].dtype == dtype
    layer = build(case["layer"], case["kwargs"])
    y, ry = layer.r_forward(arrays["x"], arrays["rx"][None], {})
    np.testing.assert_allclose(y, arrays["y"], **tol)
    np.testing.assert_allclose(ry[0], arrays["ry"], **tol)
    if "indices" in arrays:
        np.testing.assert_array_equal(layer._indices, arrays["indices"])
    grad_input = layer.backward(arrays["grad_output"])
    np.testing.assert_allclose(grad_input, arrays["grad_input"], **tol)


def test_the_reference_covers_every_layer_dtype_and_special_input():
    seen = {(c["layer"], c["dtype"], c["input"]) for c in META["cases"]}
    for layer in ("MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d"):
        assert {(layer, key, "normal") for key in DTYPES} <= seen
    assert {("MaxPool2d", key, kind) for key in DTYPES for kind in ("ties", "nan", "-inf")} <= seen
    assert META["torch"] and META["numpy"]


LIVE = [
    ("MaxPool2d", dict(kernel_size=2), (64, 6, 24, 24)),
    ("MaxPool2d", dict(kernel_size=2), (64, 16, 8, 8)),
    ("MaxPool2d", dict(kernel_size=3, stride=2, padding=1), (8, 64, 32, 32)),
    ("MaxPool2d", dict(kernel_size=(2, 3), stride=(1, 2), padding=(1, 0)), (3, 5, 11, 10)),
    ("AvgPool2d", dict(kernel_size=2), (16, 8, 24, 24)),
    ("AvgPool2d", dict(kernel_size=3, stride=1, padding=1), (4, 16, 15, 17)),
    ("AdaptiveAvgPool2d", dict(output_size=1), (8, 64, 7, 7)),
    ("AdaptiveAvgPool2d", dict(output_size=(5, 3)), (4, 3, 13, 11)),
]


@pytest.mark.skipif(torch is None, reason="PyTorch is not installed")
@pytest.mark.parametrize("key", list(DTYPES))
@pytest.mark.parametrize("layer,kwargs,shape", LIVE, ids=[f"{c[0]}-{c[2]}" for c in LIVE])
def test_pooling_matches_torch_live(layer, kwargs, shape, key, rng):
    dtype = DTYPES[key]
    x = rng.standard_normal(shape).astype(dtype)
    ours = build(layer, kwargs)
    y = ours.forward(x)
    g = rng.standard_normal(y.shape).astype(dtype)
    grad_input = ours.backward(g)
    f = {"MaxPool2d": F.max_pool2d, "AvgPool2d": F.avg_pool2d, "AdaptiveAvgPool2d": F.adaptive_avg_pool2d}[
        layer
    ]
    xt = torch.tensor(x, requires_grad=True)
    yt = f(xt, **kwargs)
    yt.backward(torch.tensor(g))
    np.testing.assert_allclose(y, yt.detach().numpy(), **TOLERANCE[key])
    np.testing.assert_allclose(grad_input, xt.grad.numpy(), **TOLERANCE[key])
    if layer == "MaxPool2d":
        np.testing.assert_array_equal(
            ours._indices, F.max_pool2d(xt, **kwargs, return_indices=True)[1].numpy()
        )
