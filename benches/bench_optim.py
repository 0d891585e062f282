"""Adam update on float32 parameters: saddlepoint against NumPy (and PyTorch's fused Adam if
present), and the effective memory bandwidth against a large copy measured in the same run.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benches/bench_optim.py

Effective bandwidth counts 28 bytes per parameter per step: read θ, g, m, v (16) and write
θ, m, v (12). Then one Adam step over a 784-512-256-10 MLP's six tensors: one multi-tensor
call for the group (what the optimizers do) against one call per tensor.
"""

from __future__ import annotations

import math

import numpy as np

import saddlepoint as sp
from saddlepoint import _core

from common import interleaved_best, start

SIZES = [100_000, 10_000_000]
MLP_SHAPES = [(784, 512), (512,), (512, 256), (256,), (256, 10), (10,)]
BYTES_PER_PARAMETER = 28


class NumpyAdam:
    """Adam as one would write it in NumPy, in place where NumPy allows."""

    def __init__(self, param, grad, lr=1e-3, betas=(0.9, 0.999), eps=1e-8):
        self.p, self.g = param, grad
        self.m, self.v = np.zeros_like(param), np.zeros_like(param)
        self.lr, (self.b1, self.b2), self.eps, self.t = lr, betas, eps, 0

    def step(self):
        self.t += 1
        self.m *= self.b1
        self.m += (1 - self.b1) * self.g
        self.v *= self.b2
        self.v += (1 - self.b2) * self.g * self.g
        denom = np.sqrt(self.v)
        denom /= math.sqrt(1 - self.b2**self.t)
        denom += self.eps
        self.p -= self.lr / (1 - self.b1**self.t) * self.m / denom


def copy_bandwidth(rng) -> tuple[float, float]:
    """Bytes/s of a 400 MB copy (NumPy, one thread) and of an in-place pass over it
    (read + write, saddlepoint's threads)."""
    src = rng.standard_normal(100_000_000, dtype=np.float32)
    dst = np.empty_like(src)
    best = interleaved_best(
        {"copy": lambda: np.copyto(dst, src), "in-place": lambda: _core.scale_(dst, 1.0)}, rounds=3, block=3
    )
    return 2 * src.nbytes / best["copy"], 2 * src.nbytes / best["in-place"]


def main() -> None:
    torch = start(sp.get_num_threads())
    rng = np.random.default_rng(0)
    copy, in_place = copy_bandwidth(rng)
    bandwidth = max(copy, in_place)
    print(
        f"memory bandwidth: copy {copy / 1e9:.1f} GB/s, in-place pass {in_place / 1e9:.1f} GB/s "
        f"-> reference {bandwidth / 1e9:.1f} GB/s\n"
    )
    print(f"{'parameters':>12}  {'library':<18}{'ms/step':>9}{'GB/s':>8}{'% of bw':>9}{'vs numpy':>10}")
    for n in SIZES:
        runs = {}
        param = sp.Parameter(rng.standard_normal(n, dtype=np.float32))
        param.grad[:] = rng.standard_normal(n, dtype=np.float32)
        runs["saddlepoint"] = sp.Adam([param], lr=1e-3).step
        runs["numpy"] = NumpyAdam(param.data.copy(), param.grad.copy()).step
        if torch is not None:
            theta = torch.tensor(param.data, requires_grad=True)
            theta.grad = torch.tensor(param.grad)
            runs["torch fused"] = torch.optim.Adam([theta], lr=1e-3, fused=True).step
        best = interleaved_best(runs, rounds=7, block=5 if n > 1e6 else 50)
        for name, seconds in best.items():
            gbs = BYTES_PER_PARAMETER * n / seconds
            print(
                f"{n:>12,}  {name:<18}{seconds * 1e3:>9.3f}{gbs / 1e9:>8.1f}"
                f"{100 * gbs / bandwidth:>8.0f}%{best['numpy'] / seconds:>9.1f}x"
            )
    group_versus_per_tensor(rng)


def group_versus_per_tensor(rng) -> None:
    """One Adam step over the MLP's tensors: one _core call for all, or one call per tensor."""
    p, g, m, v = ([rng.standard_normal(s, dtype=np.float32) for s in MLP_SHAPES] for _ in range(4))
    v = [np.abs(a) for a in v]
    kw = dict(
        lr=1e-3,
        beta1=0.9,
        beta2=0.999,
        eps=1e-8,
        weight_decay=0.0,
        decoupled_weight_decay=False,
        maximize=False,
        step_size=1e-2,
        bias_correction2_sqrt=0.03,
    )

    def per_tensor():
        for arrays in zip(p, g, m, v):
            _core.adam_step(*arrays, None, **kw)

    def one_call():
        _core.adam_step(list(p), list(g), list(m), list(v), None, **kw)

    best = interleaved_best({"per tensor": per_tensor, "one call": one_call}, rounds=7, block=50)
    print(
        f"\nAdam step over an MLP's {len(MLP_SHAPES)} tensors (float32, {sp.get_num_threads()} threads): "
        f"one call per tensor {best['per tensor'] * 1e6:.1f} us, one call for the group "
        f"{best['one call'] * 1e6:.1f} us"
    )


if __name__ == "__main__":
    main()
