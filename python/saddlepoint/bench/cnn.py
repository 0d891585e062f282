"""Convolutional networks against NumPy and PyTorch: forward + backward of a LeNet-5-like network
on a batch of 28x28 images and of one 3x3 convolution on 32x32 feature maps, against the same
computation written in NumPy with im2col (:class:`NumpyConv2d`) and PyTorch when importable; one
training epoch of the LeNet-like network with Adam against PyTorch's loop.

The LeNet-like network is the one PyTorch's MNIST examples write for 28x28 images: the first
convolution pads by 2, so the second's 16 maps are 5x5 after pooling and the first dense layer
has LeNet-5's 400 inputs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .. import nn, optim
from ..losses import CrossEntropyLoss
from ..nn.scratch import reusing_buffers
from ..training import Trainer
from .timing import Repeats, Row, Sizes, interleaved, row

IMAGE = (1, 28, 28)
CLASSES = 10
LEARNING_RATE = 1e-3


def lenet(dtype=np.float32, rng=0) -> nn.Sequential:
    """conv 1->6 5x5 (padding 2), ReLU, max pool 2, conv 6->16 5x5, ReLU, max pool 2, flatten,
    dense 400->120->84->10 with ReLUs between; PyTorch's layer order, so its state-dict names
    ("0.weight", "3.weight", "7.weight", ...) are PyTorch's too."""
    rng = np.random.default_rng(rng)
    return nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2, dtype=dtype, rng=rng),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5, dtype=dtype, rng=rng),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Dense(400, 120, dtype=dtype, rng=rng),
        nn.ReLU(),
        nn.Dense(120, 84, dtype=dtype, rng=rng),
        nn.ReLU(),
        nn.Dense(84, CLASSES, dtype=dtype, rng=rng),
    )


def lenet_flops(batch: int) -> float:
    """FLOPs of the network's forward and backward on ``batch`` images: 2 per multiply-add of each
    layer's forward product, weight gradient and input gradient (none for the first layer,
    whose input is data)."""
    convolutions = (6 * 28 * 28 * 1 * 25, 16 * 10 * 10 * 6 * 25)  # out maps x pixels x taps
    dense = (400 * 120, 120 * 84, 84 * CLASSES)
    products = 3 * (sum(convolutions) + sum(dense)) - convolutions[0]
    return 2.0 * batch * products


def conv_flops(batch: int, channels: int, size: int) -> float:
    """FLOPs of a 3x3 convolution ``channels -> channels`` with padding 1 on ``size x size``
    maps, forward, weight gradient and input gradient."""
    return 3 * 2.0 * batch * channels * size * size * channels * 9


# --- the same computation in NumPy, as a competent NumPy user writes it ----------------------


class NumpyConv2d:
    """Stride-1 convolution by im2col: the input's windows (``sliding_window_view``) copied into
    one (N·Ho·Wo, C·kh·kw) matrix, one matrix product forward and two backward; col2im adds
    the input gradient's columns back, one vectorized add per kernel tap."""

    def __init__(self, weight: np.ndarray, bias: np.ndarray, padding: int = 0, grad_input: bool = True):
        self.weight, self.bias, self.padding, self.grad_input = weight, bias, padding, grad_input
        self.grad_weight: np.ndarray | None = None
        self.grad_bias: np.ndarray | None = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        out_channels, channels, kh, kw = self.weight.shape
        p = self.padding
        padded = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p))) if p else x
        windows = sliding_window_view(padded, (kh, kw), axis=(2, 3))  # (N, C, Ho, Wo, kh, kw)
        n, _, ho, wo = windows.shape[:4]
        cols = windows.transpose(0, 2, 3, 1, 4, 5).reshape(n * ho * wo, channels * kh * kw)
        out = cols @ self.weight.reshape(out_channels, -1).T + self.bias
        self.saved = (x.shape, padded.shape, cols)
        return np.ascontiguousarray(out.reshape(n, ho, wo, out_channels).transpose(0, 3, 1, 2))

    def backward(self, grad_out: np.ndarray) -> np.ndarray | None:
        (n, channels, h, w), padded_shape, cols = self.saved
        out_channels, _, kh, kw = self.weight.shape
        ho, wo = grad_out.shape[2:]
        g = grad_out.transpose(0, 2, 3, 1).reshape(n * ho * wo, out_channels)
        self.grad_weight = (g.T @ cols).reshape(self.weight.shape)
        self.grad_bias = g.sum(axis=0)
        if not self.grad_input:
            return None
        dcols = (g @ self.weight.reshape(out_channels, -1)).reshape(n, ho, wo, channels, kh, kw)
        dcols = dcols.transpose(0, 3, 4, 5, 1, 2)  # (N, C, kh, kw, Ho, Wo)
        grad = np.zeros(padded_shape, grad_out.dtype)
        for i in range(kh):
            for j in range(kw):
                grad[:, :, i : i + ho, j : j + wo] += dcols[:, :, i, j]
        p = self.padding
        return grad[:, :, p : p + h, p : p + w] if p else grad


class NumpyMaxPool2d:
    """Max pooling over non-overlapping k x k windows (sizes divisible by k); backward sends
    each gradient to the first maximum of its window, as PyTorch does."""

    def __init__(self, k: int):
        self.k = k

    def forward(self, x: np.ndarray) -> np.ndarray:
        n, c, h, w = x.shape
        k = self.k
        windows = x.reshape(n, c, h // k, k, w // k, k).transpose(0, 1, 2, 4, 3, 5)
        windows = windows.reshape(n, c, h // k, w // k, k * k)
        self.saved = (x.shape, windows.argmax(axis=-1)[..., None])
        return np.take_along_axis(windows, self.saved[1], axis=-1)[..., 0]

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        (n, c, h, w), where = self.saved
        k = self.k
        grad = np.zeros((*grad_out.shape, k * k), grad_out.dtype)
        np.put_along_axis(grad, where, grad_out[..., None], axis=-1)
        grad = grad.reshape(n, c, h // k, w // k, k, k).transpose(0, 1, 2, 4, 3, 5)
        return grad.reshape(n, c, h, w)


class NumpyReLU:
    def forward(self, x: np.ndarray) -> np.ndarray:
        self.positive = x > 0
        return np.maximum(x, 0)

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        return grad_out * self.positive


class NumpyFlatten:
    def forward(self, x: np.ndarray) -> np.ndarray:
        self.shape = x.shape
        return x.reshape(len(x), -1)

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        return grad_out.reshape(self.shape)


class NumpyDense:
    def __init__(self, weight: np.ndarray, bias: np.ndarray):
        self.weight, self.bias = weight, bias
        self.grad_weight: np.ndarray | None = None
        self.grad_bias: np.ndarray | None = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.x = x
        return x @ self.weight.T + self.bias

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        self.grad_weight = grad_out.T @ self.x
        self.grad_bias = grad_out.sum(axis=0)
        return grad_out @ self.weight


def numpy_cross_entropy_backward(logits: np.ndarray, labels: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean softmax cross-entropy and its gradient."""
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    s = e.sum(axis=1, keepdims=True)
    rows = np.arange(len(labels))
    loss = float(np.mean(np.log(s[:, 0]) - z[rows, labels]))
    grad = e / s
    grad[rows, labels] -= 1
    grad /= len(labels)
    return loss, grad


class NumpyNetwork:
    """Layers in order, trained on softmax cross-entropy."""

    def __init__(self, layers: list):
        self.layers = layers

    def forward_backward(self, x: np.ndarray, labels: np.ndarray) -> float:
        for layer in self.layers:
            x = layer.forward(x)
        loss, grad = numpy_cross_entropy_backward(x, labels)
        for layer in reversed(self.layers):
            grad = layer.backward(grad)
        return loss

    def gradients(self) -> dict[str, np.ndarray]:
        """The parameter gradients of the last backward, by PyTorch's state-dict names."""
        grads = {}
        for i, layer in enumerate(self.layers):
            if isinstance(layer, (NumpyConv2d, NumpyDense)):
                assert layer.grad_weight is not None and layer.grad_bias is not None
                grads[f"{i}.weight"], grads[f"{i}.bias"] = layer.grad_weight, layer.grad_bias
        return grads


def numpy_lenet(state: dict[str, np.ndarray]) -> NumpyNetwork:
    """:func:`lenet` in NumPy, with the weights of ``state`` (copied)."""
    s = {name: np.array(value) for name, value in state.items()}
    return NumpyNetwork(
        [
            NumpyConv2d(s["0.weight"], s["0.bias"], padding=2, grad_input=False),
            NumpyReLU(),
            NumpyMaxPool2d(2),
            NumpyConv2d(s["3.weight"], s["3.bias"]),
            NumpyReLU(),
            NumpyMaxPool2d(2),
            NumpyFlatten(),
            NumpyDense(s["7.weight"], s["7.bias"]),
            NumpyReLU(),
            NumpyDense(s["9.weight"], s["9.bias"]),
            NumpyReLU(),
            NumpyDense(s["11.weight"], s["11.bias"]),
        ]
    )


# --- PyTorch -------------------------------------------------------------------------------


def torch_lenet(torch: Any, state: dict[str, np.ndarray] | None = None) -> Any:
    """:func:`lenet` in PyTorch, with the weights (and dtype) of ``state`` when given."""
    tnn = torch.nn
    model = tnn.Sequential(
        tnn.Conv2d(1, 6, 5, padding=2),
        tnn.ReLU(),
        tnn.MaxPool2d(2),
        tnn.Conv2d(6, 16, 5),
        tnn.ReLU(),
        tnn.MaxPool2d(2),
        tnn.Flatten(),
        tnn.Linear(400, 120),
        tnn.ReLU(),
        tnn.Linear(120, 84),
        tnn.ReLU(),
        tnn.Linear(84, CLASSES),
    )
    if state is not None:
        tensors = {name: torch.from_numpy(np.array(value)) for name, value in state.items()}
        model.to(tensors["0.weight"].dtype)
        model.load_state_dict(tensors)
    return model


# --- the rows ------------------------------------------------------------------------------


def synthetic_images(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``n`` float32 images of shape (1, 28, 28) and labels that depend on them (the argmax of a
    fixed random projection), so that training has something to learn."""
    X = rng.standard_normal((n, *IMAGE), dtype=np.float32)
    projection = rng.standard_normal((int(np.prod(IMAGE)), CLASSES)).astype(np.float32)
    return X, (X.reshape(n, -1) @ projection).argmax(axis=1)


def lenet_step(sizes: Sizes, torch: Any, peak: float | None) -> Row:
    """Forward, loss and backward of the LeNet-like network on one batch, as a training step
    runs them (gradients zeroed first, the layers' buffers reused)."""
    batch = sizes.cnn_batch
    X, y = synthetic_images(batch, np.random.default_rng(0))
    model, loss = lenet(), CrossEntropyLoss()
    state = {name: np.array(value) for name, value in model.state_dict().items()}

    def ours():
        with reusing_buffers():
            model.zero_grad()
            loss.forward(model.forward(X), y)
            model.backward(loss.backward())

    twin = numpy_lenet(state)
    runs: dict[str, Callable[..., Any]] = {"saddlepoint": ours, "numpy": lambda: twin.forward_backward(X, y)}
    if torch is not None:
        tmodel = torch_lenet(torch, state)
        xt, yt = torch.from_numpy(X), torch.from_numpy(y.astype(np.int64))

        def theirs():
            tmodel.zero_grad()
            torch.nn.functional.cross_entropy(tmodel(xt), yt).backward()

        runs["torch"] = theirs
    measured = interleaved(runs, sizes.repeats(5, 10))
    rate = lenet_flops(batch) / measured["saddlepoint"][0]
    return row(
        "cnn",
        f"LeNet-5 fwd+bwd, batch {batch}, 1x28x28",
        measured,
        limit="GEMM peak",
        share=rate / peak if peak else None,
        rate=f"{rate / 1e9:.0f} GFLOP/s",
    )


def conv_step(sizes: Sizes, torch: Any, peak: float | None) -> list[Row]:
    """Forward and backward (input, weight and bias gradients) of one 3x3 convolution with
    padding 1, channels -> channels, as a training step runs them (buffers reused)."""
    rng = np.random.default_rng(0)
    rows = []
    for batch, channels, size in sizes.conv:
        layer = nn.Conv2d(channels, channels, 3, padding=1, rng=rng).requires_grad_input(True)
        x = rng.standard_normal((batch, channels, size, size), dtype=np.float32)
        dy = rng.standard_normal((batch, channels, size, size), dtype=np.float32)
        assert layer.bias is not None
        w, b = np.array(layer.weight.data), np.array(layer.bias.data)

        def ours(layer=layer, x=x, dy=dy):
            with reusing_buffers():
                layer.forward(x)
                layer.backward(dy)

        def numpy_step(twin=NumpyConv2d(w, b, padding=1), x=x, dy=dy):
            twin.forward(x)
            twin.backward(dy)

        runs: dict[str, Callable[..., Any]] = {"saddlepoint": ours, "numpy": numpy_step}
        if torch is not None:
            xt = torch.from_numpy(x).requires_grad_(True)
            wt = torch.from_numpy(w).requires_grad_(True)
            bt = torch.from_numpy(b).requires_grad_(True)
            dyt = torch.from_numpy(dy)
            runs["torch"] = lambda xt=xt, wt=wt, bt=bt, dyt=dyt: torch.nn.functional.conv2d(
                xt, wt, bt, padding=1
            ).backward(dyt)
        measured = interleaved(runs, sizes.repeats(5, 3))
        rate = conv_flops(batch, channels, size) / measured["saddlepoint"][0]
        rows.append(
            row(
                "cnn",
                f"conv 3x3 {channels}->{channels} fwd+bwd, batch {batch}, {size}x{size}",
                measured,
                limit="GEMM peak",
                share=rate / peak if peak else None,
                rate=f"{rate / 1e9:.0f} GFLOP/s",
            )
        )
    return rows


def run_saddlepoint_epoch(X: np.ndarray, y: np.ndarray, batch_size: int) -> None:
    model = lenet()
    trainer = Trainer(
        model,
        CrossEntropyLoss(),
        optim.Adam(model.parameters(), lr=LEARNING_RATE),
        batch_size=batch_size,
        seed=0,
        verbose=0,
    )
    trainer.fit(X, y, epochs=1)


def run_torch_epoch(torch: Any, X: np.ndarray, y: np.ndarray, batch_size: int) -> None:
    torch.manual_seed(0)
    model = torch_lenet(torch)
    optimizer = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE)
    loss_fn = torch.nn.CrossEntropyLoss()
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y.astype(np.int64))
    order = torch.randperm(len(X))
    for begin in range(0, len(X), batch_size):
        idx = order[begin : begin + batch_size]
        optimizer.zero_grad()
        loss_fn(model(Xt[idx]), yt[idx]).backward()
        optimizer.step()


def lenet_epoch(sizes: Sizes, torch: Any, peak: float | None) -> Row:
    """One shuffled epoch with Adam: saddlepoint's Trainer against PyTorch's usual loop, taking
    turns epoch after epoch; the best counts."""
    X, y = synthetic_images(sizes.cnn_samples, np.random.default_rng(0))
    batch = sizes.cnn_batch
    runs: dict[str, Callable[..., Any]] = {"saddlepoint": lambda: run_saddlepoint_epoch(X, y, batch)}
    if torch is not None:
        runs["torch"] = lambda: run_torch_epoch(torch, X, y, batch)
    measured = interleaved(runs, Repeats(sizes.epochs, 1, 0, pause=0.25))
    rate = lenet_flops(sizes.cnn_samples) / measured["saddlepoint"][0]
    return row(
        "cnn",
        f"LeNet-5 epoch Adam, {sizes.cnn_samples:,} samples, batch {batch}",
        measured,
        limit="GEMM peak",
        share=rate / peak if peak else None,
        rate=f"{rate / 1e9:.0f} GFLOP/s",
    )


def cnn(sizes: Sizes, torch: Any, peak: float | None) -> list[Row]:
    """The section's rows: the LeNet-like step, the 3x3 convolutions, the epoch."""
    return [lenet_step(sizes, torch, peak), *conv_step(sizes, torch, peak), lenet_epoch(sizes, torch, peak)]
