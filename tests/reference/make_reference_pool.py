"""Writes the PyTorch results that tests/test_pool_reference.py compares saddlepoint's pooling
layers against (MaxPool2d, AvgPool2d, AdaptiveAvgPool2d).

It imports torch and numpy, never saddlepoint. Run it from the repository root after changing a
case:

    /path/to/venv-with-torch/bin/python tests/reference/make_reference_pool.py

It writes ``pool.npz``, keyed ``"<case id>/<name>"``: the input ``x`` (drawn by NumPy from the
fixed seed; some cases with ties, NaN or -inf), ``grad_output``, a direction ``rx``, and
PyTorch's ``y``, ``grad_input``, ``indices`` (max pooling's ``return_indices``) and ``ry``, the
forward-mode derivative along ``rx`` (``torch.func.jvp``); and ``pool_cases.json`` with every
case and the versions of torch and numpy.
"""

import json
import platform
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_reference import TORCH_DTYPES, Area, numpy_of  # noqa: E402

HERE = Path(__file__).resolve().parent
SEED = 15

# (layer, kwargs, input shape, what the input holds)
CASES = [
    ("MaxPool2d", dict(kernel_size=2), (2, 3, 8, 8), "normal"),
    ("MaxPool2d", dict(kernel_size=3, stride=2, padding=1), (2, 2, 7, 9), "normal"),
    ("MaxPool2d", dict(kernel_size=(3, 2), stride=(1, 2), padding=(1, 1)), (1, 3, 6, 5), "normal"),
    ("MaxPool2d", dict(kernel_size=4, stride=1, padding=2), (1, 1, 3, 3), "normal"),
    ("MaxPool2d", dict(kernel_size=2), (3, 2, 6, 6), "ties"),
    ("MaxPool2d", dict(kernel_size=3, stride=1, padding=1), (2, 2, 5, 5), "ties"),
    ("MaxPool2d", dict(kernel_size=2, stride=1), (1, 2, 4, 5), "nan"),
    ("MaxPool2d", dict(kernel_size=2, padding=1), (1, 2, 4, 4), "-inf"),
    ("MaxPool2d", dict(kernel_size=2), (4, 6, 12, 12), "normal"),
    ("AvgPool2d", dict(kernel_size=2), (2, 3, 8, 8), "normal"),
    ("AvgPool2d", dict(kernel_size=3, stride=2, padding=1), (2, 2, 7, 9), "normal"),
    ("AvgPool2d", dict(kernel_size=(3, 2), stride=(2, 1), padding=(1, 1)), (1, 3, 6, 5), "normal"),
    ("AvgPool2d", dict(kernel_size=5, stride=1, padding=2), (1, 1, 3, 3), "normal"),
    ("AdaptiveAvgPool2d", dict(output_size=1), (2, 4, 7, 6), "normal"),
    ("AdaptiveAvgPool2d", dict(output_size=(3, 4)), (2, 2, 7, 6), "normal"),
    ("AdaptiveAvgPool2d", dict(output_size=(5, 7)), (1, 2, 3, 4), "normal"),
    ("AdaptiveAvgPool2d", dict(output_size=2), (3, 1, 1, 5), "normal"),
]


def draw(rng, shape, kind):
    if kind == "ties":  # few distinct values: many windows hold their maximum twice
        return rng.integers(-2, 3, shape).astype(np.float64)
    x = rng.standard_normal(shape)
    if kind in ("nan", "-inf"):
        x.reshape(-1)[rng.choice(x.size, max(x.size // 5, 1), replace=False)] = (
            np.nan if kind == "nan" else -np.inf
        )
    return x


def pool(layer, kwargs):
    def f(t):
        if layer == "MaxPool2d":
            return F.max_pool2d(t, **kwargs)
        if layer == "AvgPool2d":
            return F.avg_pool2d(t, **kwargs)
        return F.adaptive_avg_pool2d(t, **kwargs)

    return f


def main():
    area = Area("pool", SEED)
    for key, torch_dtype in TORCH_DTYPES.items():
        for number, (layer, kwargs, shape, kind) in enumerate(CASES):
            x64 = draw(area.rng, shape, kind)
            x = torch.tensor(x64, dtype=torch_dtype, requires_grad=True)
            f = pool(layer, kwargs)
            y = f(x)
            grad_output = torch.tensor(area.rng.standard_normal(tuple(y.shape)), dtype=torch_dtype)
            y.backward(grad_output)
            rx = torch.tensor(area.rng.standard_normal(shape), dtype=torch_dtype)
            _, ry = torch.func.jvp(f, (x.detach(),), (rx,))
            arrays = dict(
                x=numpy_of(x),
                grad_output=numpy_of(grad_output),
                y=numpy_of(y),
                grad_input=numpy_of(x.grad),
                rx=numpy_of(rx),
                ry=numpy_of(ry),
            )
            if layer == "MaxPool2d":
                arrays["indices"] = numpy_of(F.max_pool2d(x.detach(), **kwargs, return_indices=True)[1])
            case = dict(
                id=f"{key}-{number}-{layer}-{kind}", dtype=key, layer=layer, kwargs=kwargs, input=kind
            )
            area.add(case, **arrays)
    np.savez_compressed(HERE / "pool.npz", **area.arrays)
    meta = dict(
        torch=torch.__version__, numpy=np.__version__, python=platform.python_version(), **area.describe()
    )
    (HERE / "pool_cases.json").write_text(json.dumps(meta, indent=1) + "\n")


if __name__ == "__main__":
    main()
