"""Writes the PyTorch results that tests/test_conv_reference.py compares saddlepoint's Conv2d with.

Like make_reference.py (whose Area it uses), it imports torch and numpy, never saddlepoint. Run
it from the repository root after changing a case:

    /path/to/venv-with-torch/bin/python tests/reference/make_reference_conv.py

It writes ``conv.npz`` (inputs drawn by NumPy from a fixed seed; PyTorch's output and the
gradients of ``sum(output · grad_output)`` with respect to the input, weight and bias, keyed
``"<case id>/<name>"``) and ``conv_cases.json`` (the cases' hyperparameters, the seed and the
versions of torch and numpy).
"""

import json
import platform
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_reference import DTYPES, TORCH_DTYPES, Area, numpy_of  # noqa: E402

HERE = Path(__file__).resolve().parent

# (batch, in, H, W, out, kernel, stride, padding, dilation, groups, bias)
GEOMETRIES = [
    (2, 3, 8, 7, 4, (3, 3), (1, 1), (1, 1), (1, 1), 1, True),
    (3, 4, 9, 8, 6, (3, 2), (2, 1), (1, 2), (1, 2), 2, True),
    (1, 1, 5, 5, 2, (5, 5), (1, 1), (0, 0), (1, 1), 1, False),
    (2, 6, 7, 6, 6, (3, 3), (2, 2), (1, 0), (1, 1), 6, True),
    (2, 4, 5, 5, 8, (1, 1), (1, 1), (0, 0), (1, 1), 2, True),
    (4, 1, 28, 28, 6, (5, 5), (1, 1), (0, 0), (1, 1), 1, True),  # LeNet's first convolution
    (2, 6, 12, 12, 16, (5, 5), (1, 1), (0, 0), (1, 1), 1, True),  # and its second
    (2, 3, 6, 9, 2, (2, 4), (3, 2), (2, 1), (2, 1), 1, True),
]


def conv_area():
    area = Area("conv", seed=15)
    for i, (n, c, h, w, o, k, s, p, d, g, bias) in enumerate(GEOMETRIES):
        for tag in ("f64", "f32"):
            dtype, tdtype = DTYPES[tag], TORCH_DTYPES[tag]
            x = area.rng.standard_normal((n, c, h, w)).astype(dtype)
            layer = torch.nn.Conv2d(
                c, o, k, stride=s, padding=p, dilation=d, groups=g, bias=bias, dtype=tdtype
            )
            with torch.no_grad():
                layer.weight.copy_(
                    torch.from_numpy(area.rng.standard_normal(tuple(layer.weight.shape)).astype(dtype))
                )
                if bias:
                    layer.bias.copy_(torch.from_numpy(area.rng.standard_normal(o).astype(dtype)))
            tx = torch.from_numpy(x.copy()).requires_grad_(True)
            y = layer(tx)
            grad_output = area.rng.standard_normal(tuple(y.shape)).astype(dtype)
            y.backward(torch.from_numpy(grad_output))
            arrays = dict(
                x=x,
                weight=numpy_of(layer.weight),
                grad_output=grad_output,
                out=numpy_of(y),
                grad_input=numpy_of(tx.grad),
                grad_weight=numpy_of(layer.weight.grad),
            )
            if bias:
                arrays.update(bias=numpy_of(layer.bias), grad_bias=numpy_of(layer.bias.grad))
            case = dict(
                id=f"conv{i}-{tag}",
                dtype=tag,
                in_channels=c,
                out_channels=o,
                kernel_size=list(k),
                stride=list(s),
                padding=list(p),
                dilation=list(d),
                groups=g,
                bias=bias,
            )
            area.add(case, **arrays)
    return area


def main():
    torch.manual_seed(0)
    area = conv_area()
    meta = {
        "torch": torch.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "conv": area.describe(),
    }
    np.savez_compressed(HERE / "conv.npz", **area.arrays)
    (HERE / "conv_cases.json").write_text(json.dumps(meta, indent=1) + "\n")
    print(f"conv: {len(area.cases)} cases, {(HERE / 'conv.npz').stat().st_size} bytes")


if __name__ == "__main__":
    main()
