"""The CNN benchmark's competitors compute what saddlepoint's layers compute: its NumPy im2col
network and convolution (and PyTorch's, when installed) against saddlepoint on a small case, so
the benchmark's ratios compare the same work. No timing here."""

import numpy as np
import pytest

from saddlepoint.bench import cnn
from saddlepoint.losses import CrossEntropyLoss

TOLERANCE = {np.float32: dict(rtol=2e-5, atol=2e-6), np.float64: dict(rtol=1e-11, atol=1e-13)}


def direct_convolution(x, weight, bias, padding):
    """Stride-1 convolution as a sum over the kernel's taps: the twin's twin."""
    _, _, kh, kw = weight.shape
    p = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    ho, wo = p.shape[2] - kh + 1, p.shape[3] - kw + 1
    out = np.zeros((len(x), len(weight), ho, wo)) + bias[:, None, None]
    for i in range(kh):
        for j in range(kw):
            out += np.einsum("nchw,oc->nohw", p[:, :, i : i + ho, j : j + wo], weight[:, :, i, j])
    return out


def test_the_numpy_convolution_and_pooling_are_right(rng):
    x = rng.standard_normal((2, 3, 7, 6))
    weight, bias = rng.standard_normal((4, 3, 3, 2)), rng.standard_normal(4)
    conv = cnn.NumpyConv2d(weight, bias, padding=1)
    y = conv.forward(x)
    np.testing.assert_allclose(y, direct_convolution(x, weight, bias, 1), rtol=1e-12, atol=1e-12)
    # The gradients are the transposed products: <dy, conv(x)> is linear in x and in the weight.
    dy = rng.standard_normal(y.shape)
    dx = conv.backward(dy)
    dx_direct = rng.standard_normal(x.shape)
    np.testing.assert_allclose(
        np.sum(dx * dx_direct), np.sum(dy * direct_convolution(dx_direct, weight, 0 * bias, 1)), rtol=1e-12
    )
    dw = rng.standard_normal(weight.shape)
    np.testing.assert_allclose(
        np.sum(conv.grad_weight * dw), np.sum(dy * direct_convolution(x, dw, 0 * bias, 1)), rtol=1e-12
    )
    np.testing.assert_allclose(conv.grad_bias, dy.sum(axis=(0, 2, 3)), rtol=1e-12)

    pool = cnn.NumpyMaxPool2d(2)
    x = np.array([[[[1.0, 3.0, 0.0, 0.0], [3.0, 2.0, 0.0, -1.0]]]])  # ties: the first maximum wins
    np.testing.assert_array_equal(pool.forward(x), [[[[3.0, 0.0]]]])
    np.testing.assert_array_equal(pool.backward(np.array([[[[5.0, 7.0]]]])), [[[[0, 5, 7, 0], [0, 0, 0, 0]]]])


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_the_numpy_lenet_computes_what_saddlepoint_computes(dtype, rng):
    X = rng.standard_normal((3, *cnn.IMAGE)).astype(dtype)
    y = rng.integers(0, cnn.CLASSES, 3)
    model, loss = cnn.lenet(dtype, rng=1), CrossEntropyLoss()
    model.zero_grad()
    ours = loss.forward(model.forward(X), y)
    model.backward(loss.backward())
    twin = cnn.numpy_lenet(model.state_dict())
    assert twin.forward_backward(X, y) == pytest.approx(ours, rel=TOLERANCE[dtype]["rtol"])
    grads = twin.gradients()
    params = dict(model.named_parameters())
    assert set(grads) == set(params)
    for name, grad in grads.items():
        np.testing.assert_allclose(grad, params[name].grad, **TOLERANCE[dtype], err_msg=name)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_the_numpy_convolution_computes_what_saddlepoint_computes(dtype, rng):
    layer = cnn.nn.Conv2d(5, 4, 3, padding=1, dtype=dtype, rng=2).requires_grad_input(True)
    x = rng.standard_normal((2, 5, 6, 7)).astype(dtype)
    dy = rng.standard_normal((2, 4, 6, 7)).astype(dtype)
    layer.zero_grad()
    y = layer.forward(x)
    dx = layer.backward(dy)
    twin = cnn.NumpyConv2d(layer.weight.data.copy(), layer.bias.data.copy(), padding=1)
    np.testing.assert_allclose(twin.forward(x), y, **TOLERANCE[dtype])
    np.testing.assert_allclose(twin.backward(dy), dx, **TOLERANCE[dtype])
    np.testing.assert_allclose(twin.grad_weight, layer.weight.grad, **TOLERANCE[dtype])
    np.testing.assert_allclose(twin.grad_bias, layer.bias.grad, **TOLERANCE[dtype])


def test_the_flops_count_the_products():
    # conv1 fwd+wgrad, conv2 and the dense layers fwd+wgrad+igrad, per image.
    per_image = 2 * (2 * 117_600 + 3 * 240_000 + 3 * (48_000 + 10_080 + 840))
    assert cnn.lenet_flops(64) == 64 * per_image
    assert cnn.conv_flops(32, 64, 32) == 6 * 32 * 64 * 32 * 32 * 64 * 9


def test_pytorch_computes_what_saddlepoint_computes(rng):
    torch = pytest.importorskip("torch")
    X = rng.standard_normal((3, *cnn.IMAGE))
    y = rng.integers(0, cnn.CLASSES, 3)
    model, loss = cnn.lenet(np.float64, rng=1), CrossEntropyLoss()
    model.zero_grad()
    ours = loss.forward(model.forward(X), y)
    model.backward(loss.backward())
    theirs = cnn.torch_lenet(torch, model.state_dict())
    value = torch.nn.functional.cross_entropy(theirs(torch.from_numpy(X)), torch.from_numpy(y))
    value.backward()
    assert value.item() == pytest.approx(ours, rel=1e-11)
    params = dict(model.named_parameters())
    for name, p in theirs.named_parameters():
        np.testing.assert_allclose(p.grad.numpy(), params[name].grad, **TOLERANCE[np.float64], err_msg=name)
