"""The doctor's costs: a Hessian-vector product against a gradient evaluation (the issue asks for
at most about four), and the full Hessian of a ~2,000-parameter network, in float64, with
PyTorch's double-backward HVP and ``torch.func.hessian`` side by side when torch is installed.
NumPy's BLAS runs on one thread, as in the doctor's analyses (see ``bench_doctor.py`` for why).

    python benches/bench_hessian.py
"""

from __future__ import annotations

import time

import numpy as np

import saddlepoint as sp
from saddlepoint import diagnose as dg
from saddlepoint.diagnose.budget import one_blas_thread

from common import interleaved_best, start

# (name, layer sizes, samples): the digits-sized network of the full-Hessian path, and the
# 784-512-256-10 network of the training benchmark.
CASES = [
    ("64-30-10 tanh (2,260 parameters)", [64, 30, 10], 1000),
    ("784-512-256-10 tanh (535,818 parameters)", [784, 512, 256, 10], 1000),
]


def torch_case(torch, sizes, X, y, weights):
    layers = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(torch.nn.Linear(n_in, n_out, dtype=torch.float64))
        if i < len(sizes) - 2:
            layers.append(torch.nn.Tanh())
    model = torch.nn.Sequential(*layers)
    with torch.no_grad():
        for p, w in zip(model.parameters(), weights):
            p.copy_(torch.from_numpy(w))
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    params = list(model.parameters())

    def gradient():
        loss = torch.nn.functional.cross_entropy(model(Xt), yt)
        return torch.autograd.grad(loss, params)

    v = [torch.randn_like(p) for p in params]

    def hvp():
        loss = torch.nn.functional.cross_entropy(model(Xt), yt)
        grads = torch.autograd.grad(loss, params, create_graph=True)
        return torch.autograd.grad(grads, params, grad_outputs=v)

    return gradient, hvp, model, Xt, yt


def main() -> None:
    torch = start(sp.get_num_threads())
    rng = np.random.default_rng(0)
    print(f"\n{'model':<42}{'library':<13}{'gradient ms':>12}{'HVP ms':>10}{'HVP/gradient':>14}")
    for name, sizes, n in CASES:
        X = rng.standard_normal((n, sizes[0]))
        y = rng.integers(0, sizes[-1], n)
        model = sp.mlp(sizes, "tanh", dtype=np.float64, rng=0)
        objective = dg.Objective(model, sp.CrossEntropyLoss(), X, y)
        v = rng.standard_normal(objective.size)
        runs = {
            "saddlepoint gradient": objective.gradient,
            "saddlepoint hvp": lambda: objective.hessian_vector_product(v),
        }
        if torch is not None:
            gradient, hvp, *_ = torch_case(torch, sizes, X, y, [p.data for p in model.parameters()])
            runs.update({"torch gradient": gradient, "torch hvp": hvp})
        with one_blas_thread():  # as the doctor runs them
            best = interleaved_best(runs, rounds=3, block=5, warmup=1)
        for library in ("saddlepoint", "torch"):
            if f"{library} gradient" in best:
                g, h = best[f"{library} gradient"], best[f"{library} hvp"]
                print(f"{name:<42}{library:<13}{1e3 * g:>12.2f}{1e3 * h:>10.2f}{h / g:>14.2f}")

    sizes, n = [16, 100, 3], 256  # 2,003 parameters
    X, y = rng.standard_normal((n, sizes[0])), rng.integers(0, sizes[-1], n)
    model = sp.mlp(sizes, "tanh", dtype=np.float64, rng=0)
    begin = time.perf_counter()
    point = dg.critical_point(model, sp.CrossEntropyLoss(), X, y, method="full")
    ours = time.perf_counter() - begin
    print(
        f"\nfull Hessian + eigenvalues, {point.n_parameters} parameters, {n} samples: "
        f"saddlepoint {ours:.2f} s ({point.kind})"
    )
    if torch is not None:
        _, _, tmodel, Xt, yt = torch_case(torch, sizes, X, y, [p.data for p in model.parameters()])
        names = [k for k, _ in tmodel.named_parameters()]
        flat = torch.cat([p.detach().reshape(-1) for p in tmodel.parameters()])
        shapes = [p.shape for p in tmodel.parameters()]

        def loss_of(vector):
            parts, start_ = {}, 0
            for k, shape in zip(names, shapes):
                size = int(np.prod(shape))
                parts[k] = vector[start_ : start_ + size].reshape(shape)
                start_ += size
            out = torch.func.functional_call(tmodel, parts, (Xt,))
            return torch.nn.functional.cross_entropy(out, yt)

        begin = time.perf_counter()
        H = torch.func.hessian(loss_of)(flat)
        torch.linalg.eigvalsh(H)
        theirs = time.perf_counter() - begin
        ours_H = dg.hessian(model, sp.CrossEntropyLoss(), X, y)
        error = float(np.max(np.abs(ours_H - H.numpy())) / np.max(np.abs(H.numpy())))
        print(
            f"torch.func.hessian + eigvalsh: {theirs:.2f} s; largest difference from ours "
            f"{error:.1e} of the largest entry"
        )


if __name__ == "__main__":
    main()
