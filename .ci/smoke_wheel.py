"""Smoke test of an installed saddlepoint wheel, run by .ci/wheel_pythons.sh under each CPython.

Run from a directory outside the checkout, so that ``import saddlepoint`` finds the installed
wheel and not the source tree. Each check raises (AssertionError or the library's own error) on
failure; on success the script prints one line per check and exits 0.

Checks: the extension is the stable-ABI build (``_core.abi3.so``, unless
``SADDLEPOINT_SMOKE_ANY_ABI=1``), a dense network trained on scikit-learn's digits for a few
epochs classifies the held-out digits with accuracy > 0.9, a Conv2d forward pass matches a
direct NumPy convolution, the largest Hessian eigenvalue by Lanczos (``diagnose.top_eigenvalues``)
matches the dense Hessian's, and a saved model reloads with the same predictions.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

import saddlepoint as sp
from saddlepoint import diagnose


def check_extension() -> None:
    extension = Path(sp._core.__file__).name
    if os.environ.get("SADDLEPOINT_SMOKE_ANY_ABI") != "1":
        assert extension == "_core.abi3.so", (
            f"expected the stable-ABI extension _core.abi3.so, got {extension}"
        )
    print(f"python {sys.version.split()[0]}: saddlepoint {sp.__version__}, extension {extension}")


def digits():
    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float32)
    return train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)


def check_training(X_train, X_test, y_train, y_test) -> sp.Sequential:
    model = sp.mlp([64, 64, 10], "relu", rng=0)
    trainer = sp.Trainer(
        model,
        sp.CrossEntropyLoss(),
        sp.Adam(model.parameters(), lr=0.01),
        metrics=["accuracy"],
        batch_size=32,
        verbose=0,
        seed=0,
    )
    history = trainer.fit(X_train, y_train, epochs=5)
    accuracy = trainer.evaluate(X_test, y_test)["accuracy"]
    assert accuracy > 0.9, f"test accuracy after 5 epochs on the digits: expected > 0.9, got {accuracy:.4f}"
    losses = history["loss"]
    assert losses[-1] < losses[0], f"the training loss did not fall over 5 epochs: {losses}"
    print(
        f"digits: 5 epochs, training loss {losses[0]:.4f} -> {losses[-1]:.4f}, test accuracy {accuracy:.4f}"
    )
    return model


def reference_conv2d(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, padding: int) -> np.ndarray:
    """Cross-correlation with stride 1 by a loop over the kernel's taps, in float64."""
    x = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    out_channels, _, kh, kw = weight.shape
    oh, ow = x.shape[2] - kh + 1, x.shape[3] - kw + 1
    out = np.zeros((x.shape[0], out_channels, oh, ow))
    for i in range(kh):
        for j in range(kw):
            out += np.einsum("nchw,oc->nohw", x[:, :, i : i + oh, j : j + ow], weight[:, :, i, j])
    return out + bias.reshape(1, -1, 1, 1)


def check_conv2d() -> None:
    rng = np.random.default_rng(1)
    conv = sp.Conv2d(3, 5, kernel_size=3, padding=1, rng=2)
    x = rng.standard_normal((4, 3, 9, 7)).astype(np.float32)
    out = conv(x)
    assert conv.bias is not None, "Conv2d(bias=True by default) has no bias"
    weight, bias = conv.weight.data, conv.bias.data
    expected = reference_conv2d(x, weight, bias, padding=1)
    assert out.shape == expected.shape, f"Conv2d output shape: expected {expected.shape}, got {out.shape}"
    error = float(np.max(np.abs(out - expected)))
    assert error < 1e-4, f"Conv2d forward differs from the NumPy convolution by {error:.3g} (tolerance 1e-4)"
    print(f"conv2d: forward {x.shape} -> {out.shape} matches NumPy to {error:.1e}")


def check_hessian(X_train, y_train) -> None:
    # A model small enough for the dense Hessian (64*4 + 4 + 4*10 + 10 = 310 parameters), in
    # float64 so that Lanczos and the dense eigen-solver agree to many digits.
    model = sp.mlp([64, 4, 10], "tanh", dtype=np.float64, rng=3)
    loss = sp.CrossEntropyLoss()
    X, y = X_train[:200].astype(np.float64), y_train[:200]
    top = diagnose.top_eigenvalues(model, loss, X, y, k=1, progress=False)
    assert top.converged, f"Lanczos did not converge on a 310-parameter model: stopped by {top.stopped}"
    largest = float(top.values[-1])
    dense = float(np.linalg.eigvalsh(diagnose.hessian(model, loss, X, y))[-1])
    assert largest > 0, (
        f"the largest Hessian eigenvalue of a cross-entropy loss must be positive, got {largest}"
    )
    relative = abs(largest - dense) / abs(dense)
    assert relative < 1e-6, (
        f"largest Hessian eigenvalue: Lanczos {largest!r} vs dense {dense!r} (relative difference "
        f"{relative:.2g}, tolerance 1e-6)"
    )
    print(f"hessian: largest eigenvalue {largest:.6g} (Lanczos, {top.hvps} products) = dense {dense:.6g}")


def check_save_load(model: sp.Sequential, X_test) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "digits.safetensors"
        sp.save_model(model, path)
        loaded = sp.load_model(path)
    model.eval()
    loaded.eval()
    before, after = model(X_test), loaded(X_test)
    assert np.array_equal(before, after), (
        f"the reloaded model's outputs differ by up to {float(np.max(np.abs(before - after))):.3g}"
    )
    print(
        f"save_model/load_model: {type(loaded).__name__} of {len(list(loaded.parameters()))} tensors, same outputs"
    )


def main() -> int:
    check_extension()
    X_train, X_test, y_train, y_test = digits()
    model = check_training(X_train, X_test, y_train, y_test)
    check_conv2d()
    check_hessian(X_train, y_train)
    check_save_load(model, X_test)
    print("smoke test passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
