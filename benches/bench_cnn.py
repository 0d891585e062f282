"""The CNN rows of ``saddlepoint bench`` (python/saddlepoint/bench/cnn.py), with the GEMM peak
they are a share of: forward + backward of a LeNet-5-like network (conv 1->6 5x5 padding 2,
ReLU, max pool 2, conv 6->16 5x5, ReLU, max pool 2, flatten, dense 400->120->84->10 with ReLUs,
softmax cross-entropy) on 64 images of 28x28, and of one 3x3 convolution 64->64 (padding 1,
with the input gradient) on 32x32 maps at batch 32, against the same computation in NumPy
(im2col: sliding_window_view + matmul) and PyTorch (when installed); then one epoch of training
the LeNet-like network with Adam at batch 64 on synthetic 28x28 images (10,000; 60,000 with
--full): saddlepoint's Trainer against PyTorch's usual loop.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benches/bench_cnn.py [--full] [--threads N]

With ``--layers`` it prints instead where a training step's time goes, layer by layer (forward
and backward of each, the loss, the Adam update), in saddlepoint and in PyTorch, each layer
timed alone on the inputs the network gives it, and the whole step (``train_step``; PyTorch's
zero_grad, forward, loss, backward, step): what the whole takes beyond the sum of its parts is
Python and the framework between the layers.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

import saddlepoint as sp
from saddlepoint._core import dense_backward, dense_forward
from saddlepoint.bench import cnn
from saddlepoint.bench.timing import Repeats, interleaved
from saddlepoint.cli import main as cli
from saddlepoint.losses import CrossEntropyLoss
from saddlepoint.nn.scratch import reusing_buffers
from saddlepoint.training import train_step

from common import start


def saddlepoint_parts(X, y):
    """``{part: (forward, backward)}`` callables of each layer on the input the network gives
    it, the loss and Adam's step; and the whole training step."""
    model, loss = cnn.lenet(), CrossEntropyLoss()
    optimizer = sp.Adam(model.parameters(), lr=cnn.LEARNING_RATE)
    inputs, x = [], X
    for layer in model.layers:
        inputs.append(x)
        x = layer.forward(x)
    loss.forward(x, y)
    grads = [loss.backward()]
    for layer in reversed(model.layers[1:]):
        grads.append(layer.backward(grads[-1]))
    grads = grads[::-1]

    def buffered(f):  # as in a training step: the layers reuse their buffers
        def run():
            with reusing_buffers():
                f()

        return run

    parts = {
        f"{i} {type(layer).__name__}": (
            buffered(lambda layer=layer, x=inputs[i]: layer.forward(x)),
            buffered(lambda layer=layer, g=grads[i]: layer.backward(g)),
        )
        for i, layer in enumerate(model.layers)
    }
    parts["loss"] = (buffered(lambda: loss.forward(x, y)), buffered(loss.backward))
    parts["Adam step"] = (optimizer.step, None)
    return parts, lambda: train_step(model, loss, optimizer, X, y)


def torch_parts(torch, X, y):
    """:func:`saddlepoint_parts` in PyTorch; a backward runs again on its retained graph."""
    model = cnn.torch_lenet(torch)
    optimizer = torch.optim.Adam(model.parameters(), lr=cnn.LEARNING_RATE)
    parts, x = {}, torch.from_numpy(X)
    for i, layer in enumerate(model):
        inp = x.detach().requires_grad_(i > 0)  # the data needs no gradient
        out = layer(inp)
        grad = torch.randn_like(out)
        parts[f"{i} {type(layer).__name__}"] = (
            lambda layer=layer, inp=inp: layer(inp),
            lambda out=out, grad=grad: out.backward(grad, retain_graph=True),
        )
        x = out
    logits, labels = x.detach().requires_grad_(True), torch.from_numpy(y.astype(np.int64))
    value = torch.nn.functional.cross_entropy(logits, labels)
    parts["loss"] = (
        lambda: torch.nn.functional.cross_entropy(logits, labels),
        lambda: value.backward(retain_graph=True),
    )
    torch.nn.functional.cross_entropy(model(torch.from_numpy(X)), labels).backward()
    parts["Adam step"] = (optimizer.step, None)

    def step(x=torch.from_numpy(X)):
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model(x), labels).backward()
        optimizer.step()

    return parts, step


def layers(threads: int | None, calls: int) -> None:
    """Prints the best time of each part, the libraries taking turns part by part (on a shared
    machine the noise only adds time, so the best is the steadiest figure)."""
    if threads:
        sp.set_num_threads(threads)
    torch = start(sp.get_num_threads())
    X, y = cnn.synthetic_images(64, np.random.default_rng(0))
    ours, our_step = saddlepoint_parts(X, y)
    theirs, their_step = torch_parts(torch, X, y) if torch is not None else ({}, None)
    pairs = list(theirs.values())  # in the same order as ours; the names differ (Linear)
    repeats = Repeats(rounds=5, block=max(1, calls // 5), warmup=2)
    print(f"\nLeNet-like network, batch 64, float32: best of {calls} calls of each part, in us\n")
    header = f"{'part':<16}{'forward':>10}{'backward':>10}"
    print(header + (f"{'torch fwd':>11}{'torch bwd':>11}" if theirs else ""))
    sums = np.zeros(4)
    for k, (name, (forward, backward)) in enumerate(ours.items()):
        runs = {"forward": forward, "backward": backward}
        if theirs:
            runs["torch fwd"], runs["torch bwd"] = pairs[k]
        runs = {k: f for k, f in runs.items() if f is not None}
        best = {k: b for k, (b, _) in interleaved(runs, repeats).items()}
        times = [best.get(k, 0.0) for k in ("forward", "backward", "torch fwd", "torch bwd")]
        sums += times
        print(
            f"{name:<16}"
            + "".join(f"{t * 1e6:>{w}.1f}" for t, w in zip(times, (10, 10, 11, 11)) if theirs or w == 10)
        )
    print(
        f"{'sum of parts':<16}{(sums[0] + sums[1]) * 1e6:>20.1f}"
        + (f"{(sums[2] + sums[3]) * 1e6:>22.1f}" if theirs else "")
    )
    steps = {"saddlepoint": our_step} | ({"torch": their_step} if their_step else {})
    whole = {k: b for k, (b, _) in interleaved(steps, repeats).items()}
    print(
        f"{'whole step':<16}{whole['saddlepoint'] * 1e6:>20.1f}"
        + (f"{whole['torch'] * 1e6:>22.1f}" if theirs else "")
    )
    conv_parts(torch, calls)


def conv_parts(torch, calls: int, batch: int = 32, channels: int = 64, size: int = 32) -> None:
    """Prints the 3x3 convolution's forward and backward apart (the weight and bias gradients
    alone, then with the input gradient), and its products alone through the dense layer's
    kernels at the sizes the convolution multiplies (one sample at a time): what im2col and
    col2im cost on top of the GEMM."""
    rng = np.random.default_rng(0)
    layer = sp.nn.Conv2d(channels, channels, 3, padding=1, rng=rng)
    x = rng.standard_normal((batch, channels, size, size), dtype=np.float32)
    dy = rng.standard_normal(x.shape, dtype=np.float32)
    weight = layer.weight.data.reshape(channels, -1)
    k, pixels = weight.shape[1], size * size
    columns = rng.standard_normal((batch, pixels, k), dtype=np.float32)
    products, grad_columns = np.empty((batch, pixels, channels), np.float32), np.empty_like(columns)
    grad_weight = np.zeros_like(weight)

    def forward():  # as in a training step, which may keep the column matrices for backward
        with reusing_buffers():
            layer.forward(x)

    forward()

    def backward(grad_input: bool):
        def run():
            layer.requires_grad_input(grad_input)
            with reusing_buffers():
                layer.backward(dy)

        return run

    def gemms_forward():
        for n in range(batch):
            dense_forward(columns[n], weight, None, products[n])

    def gemms_backward():
        for n in range(batch):
            dense_backward(
                columns[n], weight, products[n], grad_weight, None, grad_columns[n], accumulate=True
            )

    runs = {
        "forward": forward,
        "backward (w, b)": backward(False),
        "backward (w, b, x)": backward(True),
        "GEMMs forward": gemms_forward,
        "GEMMs backward": gemms_backward,
    }
    if torch is not None:
        xt, x_data = torch.from_numpy(x).requires_grad_(True), torch.from_numpy(x)
        wt = torch.from_numpy(layer.weight.data.copy()).requires_grad_(True)
        bt = torch.from_numpy(layer.bias.data.copy()).requires_grad_(True)
        dyt = torch.from_numpy(dy)
        without, with_input = (torch.nn.functional.conv2d(v, wt, bt, padding=1) for v in (x_data, xt))
        runs["torch forward"] = lambda: torch.nn.functional.conv2d(x_data, wt, bt, padding=1)
        runs["torch backward (w, b)"] = lambda: without.backward(dyt, retain_graph=True)
        runs["torch backward (w, b, x)"] = lambda: with_input.backward(dyt, retain_graph=True)
    measured = interleaved(runs, Repeats(rounds=5, block=max(1, calls // 25), warmup=1, pause=0.12))
    flops = 2.0 * batch * pixels * k * channels  # one product
    print(f"\n3x3 conv {channels}->{channels}, batch {batch}, {size}x{size}: best and median, in ms\n")
    for name, (best, median) in measured.items():
        print(
            f"{name:<26}{best * 1e3:>8.2f}{median * 1e3:>8.2f}   {flops / best / 1e9:>4.0f} GFLOP/s a product"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--full", action="store_true", help="60,000 samples in the epoch")
    parser.add_argument("--threads", type=int, help="threads for saddlepoint, NumPy's BLAS and PyTorch")
    parser.add_argument("--json", help="also write the rows as JSON")
    parser.add_argument("--layers", action="store_true", help="where a training step's time goes, per layer")
    parser.add_argument("--calls", type=int, default=200, help="calls timed per part with --layers")
    args = parser.parse_args()
    if args.layers:
        layers(args.threads, args.calls)
        return
    argv = ["bench", "--only", "gemm,cnn"]
    argv += ["--full"] * args.full + ["--threads", str(args.threads)] * bool(args.threads)
    argv += ["--json", args.json] if args.json else []
    sys.exit(cli(argv))


if __name__ == "__main__":
    main()
