"""The hot kernels against NumPy (and PyTorch when importable): the GEMM peak and the memory
bandwidth that bound them, dense layers, softmax cross-entropy, the optimizer updates and batch
norm. Each group returns rows (see :class:`~saddlepoint.bench.timing.Row`)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from .. import nn, optim
from .._core import cross_entropy, dense_forward, scale_
from ..losses import CrossEntropyLoss
from .timing import Row, Sizes, interleaved, row


def gemm(sizes: Sizes, torch: Any) -> tuple[list[Row], float | None]:
    """The machine's GEMM peak, in FLOP/s: the best rate of NumPy's float32 ``a @ b`` (its BLAS),
    saddlepoint's dense_forward (``a @ b.T``) and PyTorch's at n³, whichever is fastest;
    saddlepoint's share of it. Without OPENBLAS_CORETYPE NumPy runs its best OpenBLAS kernel."""
    rng = np.random.default_rng(0)
    rows, peak = [], None
    for n in sizes.gemm:
        a = rng.standard_normal((n, n), dtype=np.float32)
        b = rng.standard_normal((n, n), dtype=np.float32)
        out = np.empty((n, n), np.float32)
        runs: dict[str, Callable[..., Any]] = {
            "saddlepoint": lambda: dense_forward(a, b, None, out),
            "numpy": lambda: np.matmul(a, b, out=out),
        }
        if torch is not None:
            at, bt = torch.from_numpy(a), torch.from_numpy(b)
            runs["torch"] = lambda: torch.matmul(at, bt)
        measured = interleaved(runs, sizes.repeats(5, 4))
        flops = 2.0 * n**3
        numpy_rate = flops / measured["numpy"][0]
        best = max(flops / b for b, _ in measured.values())  # the best any library reached
        peak = best if peak is None else max(peak, best)
        ours = flops / measured["saddlepoint"][0]
        rows.append(
            row(
                "gemm",
                f"GEMM {n}x{n}x{n} (numpy {numpy_rate / 1e9:.0f} GFLOP/s)",
                measured,
                limit="GEMM peak",
                share=ours / best,
                rate=f"{ours / 1e9:.0f} GFLOP/s",
            )
        )
    return rows, peak


def memory(sizes: Sizes, torch: Any) -> tuple[list[Row], float]:
    """The memory bandwidth, in bytes/s: the best of a NumPy copy, a NumPy scale (read one array,
    write another) and saddlepoint's in-place scale, over ``sizes.memory`` float32."""
    rng = np.random.default_rng(0)
    src = rng.standard_normal(sizes.memory, dtype=np.float32)
    dst = np.empty_like(src)
    runs = {
        "saddlepoint": lambda: scale_(dst, 1.0),
        "numpy copy": lambda: np.copyto(dst, src),
        "numpy scale": lambda: np.multiply(src, np.float32(1.0), out=dst),
    }
    # More turns than the other rows: every share of the bandwidth divides by the best of these,
    # and on a shared machine a short run can miss a quiet moment.
    measured = interleaved(runs, sizes.repeats(6, 6))
    moved = 2.0 * src.nbytes  # each reads one array's bytes and writes one
    bandwidth = max(moved / best for best, _ in measured.values())
    ours = moved / measured["saddlepoint"][0]
    name = f"memory {sizes.memory / 1e6:g}M float32 (best: {bandwidth / 1e9:.1f} GB/s)"
    return [
        row(
            "memory", name, measured, limit="bandwidth", share=ours / bandwidth, rate=f"{ours / 1e9:.1f} GB/s"
        )
    ], (bandwidth)


def dense(sizes: Sizes, torch: Any, peak: float | None) -> list[Row]:
    """Dense layer forward + backward (three products) at the benchmark's shapes."""
    rng = np.random.default_rng(0)
    rows = []
    for n, n_in, n_out in sizes.dense:
        layer = nn.Dense(n_in, n_out, rng=rng)
        x = rng.standard_normal((n, n_in), dtype=np.float32)
        dy = rng.standard_normal((n, n_out), dtype=np.float32)
        assert layer.bias is not None
        w, b = layer.weight.data, layer.bias.data
        gw, gb = np.zeros_like(w), np.zeros_like(b)

        def ours(layer=layer, x=x, dy=dy):
            layer.forward(x)
            layer.backward(dy)

        def numpy_step(x=x, w=w, b=b, dy=dy, gw=gw, gb=gb):
            np.matmul(x, w.T) + b
            np.add(gw, dy.T @ x, out=gw)
            np.add(gb, dy.sum(axis=0), out=gb)
            dy @ w

        runs: dict[str, Callable[..., Any]] = {"saddlepoint": ours, "numpy": numpy_step}
        if torch is not None:
            xt = torch.from_numpy(x).requires_grad_(True)
            wt = torch.from_numpy(w.copy()).requires_grad_(True)
            bt = torch.from_numpy(b.copy()).requires_grad_(True)
            dyt = torch.from_numpy(dy)
            runs["torch"] = lambda xt=xt, wt=wt, bt=bt, dyt=dyt: torch.nn.functional.linear(
                xt, wt, bt
            ).backward(dyt)
        measured = interleaved(runs, sizes.repeats(5, 8 if n * n_in * n_out < 1e8 else 3))
        rate = 6.0 * n * n_in * n_out / measured["saddlepoint"][0]
        rows.append(
            row(
                "kernels",
                f"dense fwd+bwd {n}x{n_in}->{n_out}",
                measured,
                limit="GEMM peak",
                share=rate / peak if peak else None,
                rate=f"{rate / 1e9:.0f} GFLOP/s",
            )
        )
    return rows


def numpy_cross_entropy(x: np.ndarray, labels: np.ndarray) -> float:
    """Mean softmax cross-entropy and its gradient, as one would write them in NumPy."""
    z = x - x.max(axis=1, keepdims=True)
    e = np.exp(z)
    s = e.sum(axis=1, keepdims=True)
    rows = np.arange(len(labels))
    loss = float(np.mean(np.log(s[:, 0]) - z[rows, labels]))
    grad = e / s
    grad[rows, labels] -= 1
    grad /= len(labels)
    return loss


def softmax_cross_entropy(sizes: Sizes, torch: Any) -> list[Row]:
    """Softmax cross-entropy, loss and gradient, through the loss object and the kernel."""
    rng = np.random.default_rng(0)
    rows = []
    for n, classes in sizes.cross_entropy:
        x = rng.standard_normal((n, classes), dtype=np.float32)
        labels = rng.integers(0, classes, n)
        grad = np.empty_like(x)
        loss = CrossEntropyLoss()

        def ours(loss=loss, x=x, labels=labels):
            loss.forward(x, labels)
            loss.backward()

        runs: dict[str, Callable[..., Any]] = {
            "saddlepoint": ours,
            "kernel only": lambda x=x, labels=labels, grad=grad: cross_entropy(x, labels, grad),
            "numpy": lambda x=x, labels=labels: numpy_cross_entropy(x, labels),
        }
        if torch is not None:
            xt = torch.from_numpy(x).requires_grad_(True)
            yt = torch.from_numpy(labels.astype(np.int64))
            runs["torch"] = lambda xt=xt, yt=yt: torch.nn.functional.cross_entropy(xt, yt).backward()
        measured = interleaved(runs, sizes.repeats(5, 20))
        rows.append(row("kernels", f"softmax cross-entropy {n}x{classes}", measured))
    return rows


class NumpyOptimizer:
    """The update rules as one would write them in NumPy, in place where NumPy allows."""

    def __init__(self, kind: str, param: np.ndarray, grad: np.ndarray) -> None:
        self.kind, self.p, self.g, self.t = kind, param, grad, 0
        self.a, self.b = np.zeros_like(param), np.zeros_like(param)

    def step(self) -> None:
        p, g, a, b = self.p, self.g, self.a, self.b
        self.t += 1
        if self.kind == "SGD":  # momentum 0.9
            a *= 0.9
            a += g
            p -= 1e-3 * a
        elif self.kind == "RMSprop":
            a *= 0.99
            a += 0.01 * g * g
            p -= 1e-2 * g / (np.sqrt(a) + 1e-8)
        elif self.kind == "Adagrad":
            a += g * g
            p -= 1e-2 * g / (np.sqrt(a) + 1e-10)
        else:  # Adam, AdamW (decoupled weight decay 0.01)
            if self.kind == "AdamW":
                p *= 1 - 1e-3 * 0.01
            a *= 0.9
            a += 0.1 * g
            b *= 0.999
            b += 0.001 * g * g
            denom = np.sqrt(b)
            denom /= math.sqrt(1 - 0.999**self.t)
            denom += 1e-8
            p -= 1e-3 / (1 - 0.9**self.t) * a / denom


# Bytes moved per parameter per step: read θ, g and the state, write θ and the state (float32).
OPTIMIZERS = {"SGD": 20, "Adam": 28, "AdamW": 28, "RMSprop": 20, "Adagrad": 20}


def _ours(kind: str, param: nn.Parameter) -> optim.Optimizer:
    if kind == "SGD":
        return optim.SGD([param], lr=1e-3, momentum=0.9)
    return {"Adam": optim.Adam, "AdamW": optim.AdamW, "RMSprop": optim.RMSprop, "Adagrad": optim.Adagrad}[
        kind
    ]([param])


def optimizers(sizes: Sizes, torch: Any, bandwidth: float | None) -> list[Row]:
    """Each optimizer's update over one float32 tensor, as a share of the memory bandwidth."""
    rng = np.random.default_rng(0)
    rows = []
    for n in sizes.optim:
        data = rng.standard_normal(n, dtype=np.float32)
        grad = rng.standard_normal(n, dtype=np.float32)
        for kind, per_parameter in OPTIMIZERS.items():
            param = nn.Parameter(data.copy())
            param.grad[:] = grad
            runs: dict[str, Callable[..., Any]] = {
                "saddlepoint": _ours(kind, param).step,
                "numpy": NumpyOptimizer(kind, data.copy(), grad).step,
            }
            if torch is not None:
                theta = torch.tensor(data, requires_grad=True)
                theta.grad = torch.tensor(grad)
                options: dict = {"momentum": 0.9} if kind == "SGD" else {}
                # PyTorch's fastest CPU update: fused where it has one (all but RMSprop).
                options["foreach" if kind == "RMSprop" else "fused"] = True
                runs["torch"] = getattr(torch.optim, kind)([theta], lr=1e-3, **options).step
            # Four calls a turn at 10M too: two were too few to catch a quiet moment of a shared machine.
            measured = interleaved(runs, sizes.repeats(5, 4 if n > 1e6 else 20))
            rate = per_parameter * n / measured["saddlepoint"][0]
            rows.append(
                row(
                    "optim",
                    f"{kind} step {n:,} params",
                    measured,
                    limit="bandwidth",
                    share=rate / bandwidth if bandwidth else None,
                    rate=f"{rate / 1e9:.1f} GB/s",
                )
            )
    return rows


def numpy_batch_norm(x, dy, gamma, beta, running_mean, running_var, eps=1e-5, momentum=0.1):
    """BatchNorm1d forward and backward (training mode) as one would write them in NumPy."""
    n = x.shape[0]
    mean = x.mean(axis=0)
    var = x.var(axis=0)
    invstd = 1.0 / np.sqrt(var + eps)
    xhat = (x - mean) * invstd
    y = xhat * gamma + beta
    running_mean *= 1 - momentum
    running_mean += momentum * mean
    running_var *= 1 - momentum
    running_var += momentum * var * n / (n - 1)
    dbeta = dy.sum(axis=0)
    dgamma = (dy * xhat).sum(axis=0)
    dx = gamma * invstd / n * (n * dy - dbeta - xhat * dgamma)
    return y, dx, dgamma, dbeta


def batch_norm(sizes: Sizes, torch: Any) -> list[Row]:
    """BatchNorm1d forward + backward in training mode."""
    rng = np.random.default_rng(0)
    rows = []
    for n, c in sizes.norm:
        x = rng.standard_normal((n, c), dtype=np.float32)
        dy = rng.standard_normal((n, c), dtype=np.float32)
        layer = nn.BatchNorm1d(c)
        gamma, beta = np.ones(c, np.float32), np.zeros(c, np.float32)
        rm, rv = np.zeros(c, np.float32), np.ones(c, np.float32)

        def ours(layer=layer, x=x, dy=dy):
            layer.forward(x)
            layer.backward(dy)

        runs: dict[str, Callable[..., Any]] = {
            "saddlepoint": ours,
            "numpy": lambda x=x, dy=dy, gamma=gamma, beta=beta, rm=rm, rv=rv: numpy_batch_norm(
                x, dy, gamma, beta, rm, rv
            ),
        }
        if torch is not None:
            module = torch.nn.BatchNorm1d(c)
            xt, dyt = torch.from_numpy(x).requires_grad_(True), torch.from_numpy(dy)
            runs["torch"] = lambda module=module, xt=xt, dyt=dyt: module(xt).backward(dyt)
        measured = interleaved(runs, sizes.repeats(5, 20))
        rows.append(row("norm", f"batch norm fwd+bwd {n}x{c}", measured))
    return rows
