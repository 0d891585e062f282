"""Writes the PyTorch results that tests/test_cnn_reference.py trains saddlepoint's CNN against.

Like make_reference.py (whose helpers it uses), it imports torch and numpy, never saddlepoint.
Run it from the repository root after changing the case:

    /path/to/venv-with-torch/bin/python tests/reference/make_reference_cnn.py

It writes ``cnn.npz``: for float64 and float32, the inputs (16 images 2x8x8, 3 classes, drawn by
NumPy from a fixed seed), the state dict before training (drawn by NumPy), the loss of each of
10 full-batch Adam steps (forward, zero_grad, backward, step), the state dict after them and
the eval-mode logits; and ``cnn_cases.json`` with the layers, the settings and the versions.
"""

import json
import platform
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_reference import DTYPES, TORCH_DTYPES, numpy_of  # noqa: E402

HERE = Path(__file__).resolve().parent
SEED = 15_015
STEPS = 10
ADAM = dict(lr=0.01, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-3)
#: Every CNN layer of the library once, in PyTorch's names and arguments.
LAYERS = [
    ("Conv2d", dict(in_channels=2, out_channels=4, kernel_size=3, padding=1)),
    ("BatchNorm2d", dict(num_features=4)),
    ("ReLU", {}),
    ("MaxPool2d", dict(kernel_size=2)),
    (
        "Conv2d",
        dict(in_channels=4, out_channels=6, kernel_size=(3, 2), stride=(1, 2), padding=(1, 1), groups=2),
    ),
    ("Tanh", {}),
    ("AvgPool2d", dict(kernel_size=2, stride=1, padding=1)),
    ("AdaptiveAvgPool2d", dict(output_size=(2, 2))),
    ("Flatten", {}),
    ("Linear", dict(in_features=24, out_features=3)),
]


def torch_cnn(dtype):
    layers = [getattr(torch.nn, name)(**kwargs) for name, kwargs in LAYERS]
    return torch.nn.Sequential(*layers).to(dtype)


def main():
    torch.manual_seed(0)
    rng = np.random.default_rng(SEED)
    x, y = rng.standard_normal((16, 2, 8, 8)), rng.integers(0, 3, 16)
    arrays = {"y": y}
    for key, dtype in DTYPES.items():
        model = torch_cnn(TORCH_DTYPES[key])
        init = {}
        for name, value in model.state_dict().items():
            if name.endswith(("weight", "bias")):
                init[name] = (rng.standard_normal(tuple(value.shape)) * 0.5).astype(dtype)
            else:
                init[name] = numpy_of(value)
        model.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in init.items()})
        optimizer = torch.optim.Adam(model.parameters(), foreach=False, **ADAM)
        xt, yt = torch.from_numpy(x.astype(dtype)), torch.from_numpy(y)
        losses = []
        for _ in range(STEPS):
            loss = torch.nn.functional.cross_entropy(model(xt), yt)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        model.eval()
        with torch.no_grad():
            logits = numpy_of(model(xt))
        arrays[f"{key}/x"] = x.astype(dtype)
        arrays.update({f"{key}/init/{k}": v for k, v in init.items()})
        arrays.update({f"{key}/final/{k}": numpy_of(v) for k, v in model.state_dict().items()})
        arrays[f"{key}/losses"] = np.array(losses)
        arrays[f"{key}/eval_logits"] = logits
    meta = {
        "torch": torch.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "seed": SEED,
        "steps": STEPS,
        "adam": {k: list(v) if isinstance(v, tuple) else v for k, v in ADAM.items()},
        "layers": [[name, kwargs] for name, kwargs in LAYERS],
    }
    np.savez_compressed(HERE / "cnn.npz", **arrays)
    (HERE / "cnn_cases.json").write_text(json.dumps(meta, indent=1) + "\n")
    print(f"cnn: {(HERE / 'cnn.npz').stat().st_size} bytes")


if __name__ == "__main__":
    main()
