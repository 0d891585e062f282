"""saddlepoint against PyTorch's results kept in tests/reference, so that CI (which has no
PyTorch) still compares every optimizer, scheduler, loss, layer, clipping function, a few
training runs and the Hessian with PyTorch on every run.

tests/reference/make_reference.py computed the references once with PyTorch (its version is in
cases.json) from inputs drawn by NumPy; the live parity tests in test_optim.py, test_schedule.py,
test_norm.py, test_clip.py, test_trainer.py and test_curvature.py still run where PyTorch is
installed. Only top-level names (``sp.Adam``, ``sp.diagnose.hessian``) are used here, so the
tests do not depend on the package's module layout.
"""

import json
from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file

import saddlepoint as sp

REFERENCE = Path(__file__).resolve().parent / "reference"
META = json.loads((REFERENCE / "cases.json").read_text())
AREAS = META["areas"]
DTYPES = {"f64": np.float64, "f32": np.float32}
# Same formulas, operations in another order: float64 agrees to rounding, float32 to a few ulps
# compounded over the steps of a case.
TOLERANCE = {"f64": dict(rtol=1e-12, atol=1e-14), "f32": dict(rtol=1e-5, atol=1e-6)}
PARAMETRIC = ("Linear", "BatchNorm1d", "LayerNorm")  # the layers that take a dtype


@lru_cache(maxsize=None)
def reference(area: str) -> dict:
    """All arrays of one area, read once."""
    with np.load(REFERENCE / f"{area}.npz") as stored:
        return {name: stored[name] for name in stored.files}


def cases(area: str, keep=lambda case: True) -> list:
    return [pytest.param(case, id=case["id"]) for case in AREAS[area]["cases"] if keep(case)]


dtypes = pytest.mark.parametrize("key", list(DTYPES))


def build_layer(spec: dict, dtype):
    kwargs = dict(spec.get("kwargs", {}))
    if spec["layer"] in PARAMETRIC:
        kwargs["dtype"] = dtype
    return getattr(sp, spec["layer"])(**kwargs)


def build_model(layers: list, dtype, state: dict):
    model = sp.Sequential(*(build_layer(spec, dtype) for spec in layers))
    model.load_state_dict(state)
    return model


def prefixed(arrays: dict, prefix: str) -> dict:
    return {name[len(prefix) :]: a for name, a in arrays.items() if name.startswith(prefix)}


# --- optimizers --------------------------------------------------------------------------------


def make_optimizer(case: dict, params: list):
    groups = (
        params
        if case["groups"] is None
        else [
            {
                **{k: v for k, v in group.items() if k != "params"},
                "params": [params[i] for i in group["params"]],
            }
            for group in case["groups"]
        ]
    )
    return getattr(sp, case["optimizer"])(groups, **case["options"])


@dtypes
@pytest.mark.parametrize("case", cases("optim"))
def test_optimizer_steps_match_torch_optim(case, key):
    stored, steps = reference("optim"), AREAS["optim"]["steps"]
    params = [sp.Parameter(stored[f"inputs/{key}/start{i}"]) for i in range(len(AREAS["optim"]["shapes"]))]
    grads = [stored[f"inputs/{key}/grads{i}"] for i in range(len(params))]
    optimizer = make_optimizer(case, params)
    ours = np.empty((steps, sum(p.data.size for p in params)), DTYPES[key])
    for t in range(steps):
        for p, g in zip(params, grads):
            p.grad[...] = g[t]
        optimizer.step()
        ours[t] = np.concatenate([p.data.ravel() for p in params])
    np.testing.assert_allclose(ours, stored[f"{case['id']}/{key}"], **TOLERANCE[key])


# --- schedulers --------------------------------------------------------------------------------


def optimizer_with_groups(spec: dict):
    groups = [{**group, "params": [sp.Parameter(np.zeros(2))]} for group in spec["groups"]]
    return getattr(sp, spec["name"])(groups)


def make_scheduler(spec: dict, optimizer):
    if spec["name"] == "SequentialLR":
        children = [make_scheduler(child, optimizer) for child in spec["schedulers"]]
        return sp.SequentialLR(optimizer, children, **spec["kwargs"])
    return getattr(sp, spec["name"])(optimizer, **spec.get("kwargs", {}))


def first_momentum(group: dict) -> float:
    return group["betas"][0] if "betas" in group else group.get("momentum", 0.0)


@pytest.mark.parametrize("case", cases("schedule", lambda c: c["scheduler"]["name"] != "ReduceLROnPlateau"))
def test_scheduler_rates_and_momenta_match_torch(case):
    stored = prefixed(reference("schedule"), case["id"] + "/")
    optimizer = optimizer_with_groups(case["optimizer"])
    scheduler = make_scheduler(case["scheduler"], optimizer)
    lr, momentum = np.empty((2, *stored["lr"].shape))
    for t in range(len(lr)):
        lr[t] = [group["lr"] for group in optimizer.param_groups]
        momentum[t] = [first_momentum(group) for group in optimizer.param_groups]
        scheduler.step()
    np.testing.assert_allclose(lr, stored["lr"], rtol=1e-12, atol=1e-16)
    np.testing.assert_allclose(momentum, stored["momentum"], rtol=1e-12, atol=1e-16)


@pytest.mark.parametrize("case", cases("schedule", lambda c: c["scheduler"]["name"] == "ReduceLROnPlateau"))
def test_reduce_on_plateau_rates_match_torch(case):
    stored = prefixed(reference("schedule"), case["id"] + "/")
    optimizer = optimizer_with_groups(case["optimizer"])
    scheduler = make_scheduler(case["scheduler"], optimizer)
    lr = np.empty_like(stored["lr"])
    for t, metric in enumerate(stored["metrics"]):
        scheduler.step(metric)
        lr[t] = [group["lr"] for group in optimizer.param_groups]
    np.testing.assert_array_equal(lr, stored["lr"])  # products of the same factors: exact


# --- losses ------------------------------------------------------------------------------------


@dtypes
@pytest.mark.parametrize("case", cases("loss"))
def test_loss_value_and_gradient_match_torch(case, key):
    stored = prefixed(reference("loss"), f"{case['id']}/{key}/")
    criterion = getattr(sp, case["loss"])(**case["kwargs"])
    value = criterion(stored["input"], stored["target"])
    np.testing.assert_allclose(value, stored["loss"], **TOLERANCE[key])
    np.testing.assert_allclose(criterion.backward(), stored["grad"], **TOLERANCE[key])


# --- layers ------------------------------------------------------------------------------------


def layer_with_parameters(case: dict, key: str, stored: dict):
    layer = build_layer(case, DTYPES[key])
    for name, p in layer.named_parameters():
        p.data[...] = stored[name]
    return layer


def assert_parameter_gradients(layer, stored: dict, tol: dict) -> None:
    for name, p in layer.named_parameters():
        np.testing.assert_allclose(p.grad, stored[name + "_grad"], err_msg=name, **tol)


# PyTorch's CPU Hardsigmoid backward multiplies by the float32 constant 1.0f / 6.0f, in float64
# too: its float64 input gradient is 3e-8 relative off the exact 1/6 (ours is exact).
INPUT_GRADIENT_TOLERANCE = {("HardSigmoid", "f64"): dict(rtol=5e-8, atol=1e-14)}


@dtypes
@pytest.mark.parametrize("case", cases("layer", lambda c: c["layer"] != "BatchNorm1d"))
def test_layer_output_and_gradients_match_torch(case, key):
    stored, tol = prefixed(reference("layer"), f"{case['id']}/{key}/"), TOLERANCE[key]
    layer = layer_with_parameters(case, key, stored)
    if case.get("eval"):
        layer.eval()
    np.testing.assert_allclose(layer(stored["x"]), stored["out"], **tol)
    np.testing.assert_allclose(
        layer.backward(stored["dy"]), stored["dx"], **INPUT_GRADIENT_TOLERANCE.get((case["layer"], key), tol)
    )
    assert_parameter_gradients(layer, stored, tol)


@dtypes
@pytest.mark.parametrize("case", cases("layer", lambda c: c["layer"] == "BatchNorm1d"))
def test_batch_norm_train_steps_running_stats_and_eval_match_torch(case, key):
    stored, tol = prefixed(reference("layer"), f"{case['id']}/{key}/"), TOLERANCE[key]
    layer = layer_with_parameters(case, key, stored)
    for step, (x, dy) in enumerate(zip(stored["x"], stored["dy"])):
        np.testing.assert_allclose(layer(x), stored["out"][step], err_msg=f"step {step}", **tol)
        np.testing.assert_allclose(layer.backward(dy), stored["dx"][step], err_msg=f"step {step}", **tol)
    assert_parameter_gradients(layer, stored, tol)  # accumulated over the steps, in both
    for name, buffer in layer.named_buffers():
        np.testing.assert_allclose(buffer, stored[name], err_msg=name, **tol)
    layer.eval()
    np.testing.assert_allclose(layer(stored["eval_x"]), stored["eval_out"], **tol)
    np.testing.assert_allclose(layer.backward(stored["eval_dy"]), stored["eval_dx"], **tol)


# --- clipping ----------------------------------------------------------------------------------


@dtypes
@pytest.mark.parametrize("case", cases("clip"))
def test_clipping_matches_torch_nn_utils(case, key):
    stored = reference("clip")
    grads = [stored[f"inputs/{key}/grad{i}"] for i in range(len(AREAS["clip"]["shapes"]))]
    params = [sp.Parameter(np.zeros_like(g)) for g in grads]
    for p, g in zip(params, grads):
        p.grad[...] = g
    kwargs = {k: float(v) if k == "norm_type" else v for k, v in case["kwargs"].items()}
    total = getattr(sp, case["function"])(params, **kwargs)
    expected = prefixed(stored, f"{case['id']}/{key}/")
    if "total" in expected:
        np.testing.assert_allclose(total, expected["total"], **TOLERANCE[key])
    for i, p in enumerate(params):
        np.testing.assert_allclose(p.grad, expected[f"grad{i}"], err_msg=f"grad{i}", **TOLERANCE[key])


# --- training ----------------------------------------------------------------------------------


@dtypes
@pytest.mark.parametrize("case", cases("train", lambda c: "optimizer" in c))
def test_training_steps_match_torch(case, key):
    stored = reference("train")
    ours = prefixed(stored, f"{case['id']}/{key}/")
    x, y = stored[f"inputs/{key}/x"], stored[f"inputs/{key}/y"]
    model = build_model(case["model"], DTYPES[key], prefixed(ours, "init/"))
    optimizer = getattr(sp, case["optimizer"])(model.parameters(), **case["options"])
    criterion, losses = sp.CrossEntropyLoss(), []
    for _ in range(AREAS["train"]["steps"]):
        losses.append(criterion(model(x), y))
        optimizer.zero_grad()
        model.backward(criterion.backward())
        optimizer.step()
    np.testing.assert_allclose(losses, ours["losses"], **TOLERANCE[key])
    final = prefixed(ours, "final/")
    state = model.state_dict()  # parameters first, then buffers; PyTorch orders by layer
    assert sorted(state) == sorted(final)
    for name, array in state.items():
        np.testing.assert_allclose(array, final[name], err_msg=name, **TOLERANCE[key])


def weight_file_case() -> dict:
    return next(case for case in AREAS["train"]["cases"] if case["id"] == "weight-file")


def model_for_weight_file():
    case = weight_file_case()
    model = sp.Sequential(*(build_layer(spec, np.float32) for spec in case["model"]))
    return model, REFERENCE / case["file"]


def test_weights_written_by_torch_load_and_give_its_output():
    model, path = model_for_weight_file()
    sp.load_weights(model, path)
    model.eval()
    stored = prefixed(reference("train"), "weight-file/")
    np.testing.assert_allclose(model(stored["x"]), stored["out"], **TOLERANCE["f32"])


def test_weights_we_write_have_torch_names_shapes_dtypes_and_values(tmp_path):
    model, path = model_for_weight_file()
    sp.load_weights(model, path)
    sp.save_weights(model, tmp_path / "ours.safetensors")
    theirs, ours = load_file(path), load_file(tmp_path / "ours.safetensors")
    assert sorted(ours) == sorted(theirs)
    for name, array in theirs.items():
        assert (ours[name].shape, ours[name].dtype) == (array.shape, array.dtype), name
        np.testing.assert_array_equal(ours[name], array, err_msg=name)


# --- curvature ---------------------------------------------------------------------------------


@pytest.mark.parametrize("case", cases("curvature"))
def test_curvature_matches_torch_double_backward(case):
    stored = prefixed(reference("curvature"), case["id"] + "/")
    model = build_model(case["model"], np.float64, prefixed(stored, "init/"))
    loss = getattr(sp, case["loss"])(**case["kwargs"])
    if case["what"] == "hessian":
        ours, expected = sp.diagnose.hessian(model, loss, stored["x"], stored["y"]), stored["hessian"]
    else:
        ours = sp.diagnose.hessian_vector_product(model, loss, stored["x"], stored["y"], stored["v"])
        expected = stored["hvp"]
    # The R-operator is exact through the layers; the loss's own curvature ∂²L/∂o² is exact for
    # MSE and central differences of the gradient for cross-entropy (about 1e-10 relative, as
    # sp.diagnose documents and the live test allows).
    scale = 1e-12 if case["loss"] == "MSELoss" else 1e-10
    np.testing.assert_allclose(ours, expected, rtol=scale, atol=scale * np.max(np.abs(expected)))


# --- the references themselves -----------------------------------------------------------------

# The cases of the live PyTorch tests, each of which has a reference case marked "live".
LIVE = {"optim": 68, "schedule": 7, "layer": 3, "clip": 2, "train": 1, "curvature": 1}


@pytest.mark.parametrize("area,count", LIVE.items())
def test_references_cover_every_case_of_the_live_torch_tests(area, count):
    assert sum(bool(case.get("live")) for case in AREAS[area]["cases"]) == count


def test_references_record_the_versions_that_made_them_and_not_our_code():
    assert META["torch"] and META["numpy"]
    for area in AREAS:
        assert (REFERENCE / f"{area}.npz").is_file()
    generator = (REFERENCE / "make_reference.py").read_text()
    assert "saddlepoint" not in generator.split('"""')[2]  # past the docstring: no import of ours
