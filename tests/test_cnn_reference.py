"""A CNN with every CNN layer of the library, trained 10 full-batch Adam steps from the same
weights as PyTorch 2.15 (tests/reference/cnn.npz, made by make_reference_cnn.py): the losses,
the final state dict (weights, running statistics) and the eval-mode logits agree."""

import json
from pathlib import Path

import numpy as np
import pytest

import saddlepoint as sp

REFERENCE = Path(__file__).resolve().parent / "reference"
CASE = json.loads((REFERENCE / "cnn_cases.json").read_text())
TOLERANCE = {"f64": dict(rtol=1e-9, atol=1e-11), "f32": dict(rtol=2e-4, atol=2e-5)}
NAMES = {"Linear": "Dense"}


@pytest.fixture(scope="module")
def reference():
    with np.load(REFERENCE / "cnn.npz") as data:
        return dict(data)


def saddlepoint_cnn(dtype):
    layers = []
    for name, kwargs in CASE["layers"]:
        cls = getattr(sp, NAMES.get(name, name))
        takes_dtype = name in ("Conv2d", "BatchNorm2d", "Linear")
        layers.append(cls(**kwargs, **({"dtype": dtype} if takes_dtype else {})))
    return sp.Sequential(*layers)


@pytest.mark.parametrize("key,dtype", [("f64", np.float64), ("f32", np.float32)])
def test_a_cnn_trains_as_in_pytorch(reference, key, dtype):
    model = saddlepoint_cnn(dtype)
    init = {k[len(f"{key}/init/") :]: v for k, v in reference.items() if k.startswith(f"{key}/init/")}
    assert sorted(init) == sorted(model.state_dict())  # PyTorch's names, layer by layer
    model.load_state_dict(init)
    adam = CASE["adam"]
    optimizer = sp.Adam(
        model.parameters(),
        lr=adam["lr"],
        betas=tuple(adam["betas"]),
        eps=adam["eps"],
        weight_decay=adam["weight_decay"],
    )
    loss_fn = sp.CrossEntropyLoss()
    x, y = reference[f"{key}/x"], reference["y"]
    losses = []
    for _ in range(CASE["steps"]):
        loss = loss_fn(model(x), y)
        optimizer.zero_grad()
        model.backward(loss_fn.backward())
        optimizer.step()
        losses.append(float(loss))
    tol = TOLERANCE[key]
    np.testing.assert_allclose(losses, reference[f"{key}/losses"], **tol)
    for name, value in model.state_dict().items():
        np.testing.assert_allclose(value, reference[f"{key}/final/{name}"], err_msg=name, **tol)
    model.eval()
    np.testing.assert_allclose(model(x), reference[f"{key}/eval_logits"], **tol)
