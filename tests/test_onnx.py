"""ONNX export (``saddlepoint.save_onnx``, ``saddlepoint train --onnx``): every layer alone, a
trained dense network with batch norm and dropout, and a trained CNN, each run by onnxruntime
and matched against the model's eval-mode outputs; and the refusals.

The float32 outputs are matched with ``rtol=1e-5, atol=1e-5`` (the outputs are of order 1: the
inputs are standard normal and the layers' weights those of an initialization or a short
training); float64 with ``rtol=atol=1e-10`` (ONNX keeps ``LeakyReLU``'s slope and ``eps`` as
float32 attributes: the float64 network's slope is one float32 holds exactly).
"""

import builtins

import numpy as np
import pytest
from sklearn.datasets import load_digits

import saddlepoint as sp
from saddlepoint import nn
from saddlepoint.cli import main
from saddlepoint.data.tables import load_bundled_frame
from saddlepoint.io.onnx import MISSING_ONNX
from saddlepoint.nn.module import predict

F32 = dict(rtol=1e-5, atol=1e-5)
F64 = dict(rtol=1e-10, atol=1e-10)


@pytest.fixture
def ort():
    pytest.importorskip("onnx")
    return pytest.importorskip("onnxruntime")


@pytest.fixture
def without_onnx(monkeypatch):
    """Imports of onnx fail, as where the [onnx] extra is not installed."""
    real_import = builtins.__import__

    def no_onnx(name, *args, **kwargs):
        if name == "onnx" or name.startswith("onnx."):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_onnx)


def run_onnx(ort, path, x):
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["input"]
    assert [o.name for o in session.get_outputs()] == ["output"]
    return session.run(None, {"input": x})[0]


def assert_exported_matches(ort, model, x, path, tolerance=F32, **options):
    """Exports ``model``, runs the file on ``x`` and on a batch of another size (the batch
    dimension is free), and compares with the model in eval mode."""
    was_training = model.training
    sp.save_onnx(model, path, **options)
    assert model.training == was_training  # the model's mode is left as it was
    expected = predict(model, x)
    got = run_onnx(ort, path, x)
    assert got.dtype == expected.dtype and got.shape == expected.shape
    np.testing.assert_allclose(got, expected, **tolerance)
    np.testing.assert_allclose(run_onnx(ort, path, x[:1]), predict(model, x[:1]), **tolerance)
    return got


def randomized(layer, rng):
    """``layer`` with random weights and running statistics (not the ones and zeros a norm
    layer starts with), so that the export must carry each of them."""
    for name, parameter in layer.named_parameters():
        parameter.data[...] = rng.uniform(-1.5, 1.5, parameter.data.shape)
    for name, buffer in layer.named_buffers():
        if name.endswith("running_mean"):
            buffer[...] = rng.normal(0, 0.5, buffer.shape)
        elif name.endswith("running_var"):
            buffer[...] = rng.uniform(0.5, 2.0, buffer.shape)
    return layer


ROW_LAYERS = {
    "dense": lambda: nn.Dense(6, 3, rng=0),
    "dense_without_bias": lambda: nn.Dense(6, 3, bias=False, rng=0),
    "relu": nn.ReLU,
    "sigmoid": nn.Sigmoid,
    "hard_sigmoid": nn.HardSigmoid,
    "tanh": nn.Tanh,
    "leaky_relu": lambda: nn.LeakyReLU(0.2),
    "identity": nn.Identity,
    "dropout": lambda: nn.Dropout(0.5),
    "batch_norm_1d": lambda: nn.BatchNorm1d(6, eps=1e-3),
    "batch_norm_1d_not_affine": lambda: nn.BatchNorm1d(6, affine=False),
    "batch_norm_1d_on_lengths": lambda: nn.Sequential(
        nn.Unflatten(1, (2, 3)), nn.BatchNorm1d(2), nn.Flatten()
    ),
    "batch_norm_1d_batch_statistics": lambda: nn.BatchNorm1d(6, track_running_stats=False),
    "layer_norm": lambda: nn.LayerNorm(6, eps=1e-3),
    "layer_norm_not_affine": lambda: nn.LayerNorm(6, elementwise_affine=False),
}

IMAGE_LAYERS = {
    "conv": lambda: nn.Conv2d(4, 6, 3, rng=0),
    "conv_strided_padded_dilated_grouped": lambda: nn.Conv2d(
        4, 6, (3, 2), stride=(2, 1), padding=(2, 1), dilation=(2, 1), groups=2, rng=0
    ),
    "conv_depthwise_without_bias": lambda: nn.Conv2d(4, 4, 3, padding=1, groups=4, bias=False, rng=0),
    "max_pool": lambda: nn.MaxPool2d(2),
    "max_pool_padded_overlapping": lambda: nn.MaxPool2d(3, stride=2, padding=1),
    "avg_pool": lambda: nn.AvgPool2d(2),
    "avg_pool_padded_overlapping": lambda: nn.AvgPool2d((3, 2), stride=(2, 1), padding=(1, 1)),
    "adaptive_avg_pool_global": lambda: nn.AdaptiveAvgPool2d(1),
    "adaptive_avg_pool_dividing": lambda: nn.AdaptiveAvgPool2d((3, 2)),
    "batch_norm_2d": lambda: nn.BatchNorm2d(4),
    "batch_norm_2d_batch_statistics": lambda: nn.BatchNorm2d(4, track_running_stats=False),
    "layer_norm_over_images": lambda: nn.LayerNorm((4, 6, 6)),
    "flatten": nn.Flatten,
    "flatten_all": lambda: nn.Flatten(0),
    "flatten_inner": lambda: nn.Flatten(2, 3),
    "unflatten": lambda: nn.Unflatten(2, (2, 3)),
    "unflatten_last": lambda: nn.Unflatten(-1, (3, 1, 2)),
}


def test_every_layer_of_the_library_has_an_export_case():
    # A layer added to the library later fails here until save_onnx exports it and it is tested.
    layers = {
        obj
        for obj in (getattr(nn, name) for name in nn.__all__)
        if isinstance(obj, type) and issubclass(obj, nn.Module)
    } - {nn.Module, nn.Activation, nn.Sequential}
    tested = set()
    for make in (*ROW_LAYERS.values(), *IMAGE_LAYERS.values()):
        tested |= {type(layer) for layer in make().modules()}
    assert layers - tested == set()


@pytest.mark.parametrize("name", sorted(ROW_LAYERS))
def test_each_layer_on_rows_matches_in_onnxruntime(ort, name, tmp_path, rng):
    layer = randomized(ROW_LAYERS[name](), rng)
    x = rng.standard_normal((5, 6)).astype(np.float32)
    assert_exported_matches(ort, layer, x, tmp_path / "layer.onnx", input_shape=(6,))


@pytest.mark.parametrize("name", sorted(IMAGE_LAYERS))
def test_each_layer_on_images_matches_in_onnxruntime(ort, name, tmp_path, rng):
    layer = randomized(IMAGE_LAYERS[name](), rng)
    x = rng.standard_normal((3, 4, 6, 6)).astype(np.float32)
    assert_exported_matches(ort, layer, x, tmp_path / "layer.onnx", input_shape=(4, 6, 6))


@pytest.mark.parametrize("opset", [13, 17, 18])
@pytest.mark.parametrize("affine", [True, False])
def test_layer_norm_and_batch_statistics_under_each_opset(ort, opset, affine, tmp_path, rng):
    # Under 17 LayerNorm is its arithmetic; from 18 ReduceMean takes its axes as an input.
    model = randomized(
        nn.Sequential(
            nn.Unflatten(1, (2, 3, 4)),
            nn.BatchNorm2d(2, affine=affine, track_running_stats=False),
            nn.LayerNorm((3, 4), elementwise_affine=affine),
            nn.Flatten(),
        ),
        rng,
    )
    x = (3 * rng.standard_normal((4, 24)) + 1).astype(np.float32)
    assert_exported_matches(ort, model, x, tmp_path / "norms.onnx", opset=opset)


def test_avg_pool_counts_the_padding_as_zeros_in_both(ort, tmp_path):
    # A constant image: a window that overlaps the padding averages in zeros, so the border of
    # the output is below 1 (count_include_pad, the library's semantics, as PyTorch's default).
    pool = nn.AvgPool2d(3, stride=1, padding=1)
    x = np.ones((1, 1, 4, 4), np.float32)
    got = assert_exported_matches(ort, pool, x, tmp_path / "pool.onnx", input_shape=(1, 4, 4))
    assert got[0, 0, 0, 0] == pytest.approx(4 / 9) and got[0, 0, 1, 1] == pytest.approx(1.0)


def test_nested_sequential_matches_and_names_initializers_as_the_state_dict(ort, tmp_path, rng):
    import onnx

    model = nn.Sequential(
        nn.Sequential(nn.Dense(5, 8, rng=1), nn.BatchNorm1d(8)),
        nn.Tanh(),
        nn.Sequential(nn.Dense(8, 2, rng=2)),
    )
    randomized(model[0][1], rng)
    x = rng.standard_normal((7, 5)).astype(np.float32)
    assert_exported_matches(ort, model, x, tmp_path / "nested.onnx")
    proto = onnx.load(str(tmp_path / "nested.onnx"))
    initializers = {t.name: onnx.numpy_helper.to_array(t) for t in proto.graph.initializer}
    state = {k: v for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
    assert sorted(initializers) == sorted(state)
    for name, value in state.items():
        np.testing.assert_array_equal(initializers[name], value)
    # The batch dimension is free, the others fixed.
    dims = proto.graph.input[0].type.tensor_type.shape.dim
    assert dims[0].dim_param == "batch" and [d.dim_value for d in dims[1:]] == [5]


def test_a_flatten_of_the_batch_names_its_size_apart_from_the_batch(ort, tmp_path, rng):
    import onnx

    model = nn.Sequential(nn.Unflatten(1, (2, 3)), nn.Flatten(0), nn.Sigmoid())
    x = rng.standard_normal((4, 6)).astype(np.float32)
    assert assert_exported_matches(ort, model, x, tmp_path / "flat.onnx").shape == (24,)
    graph = onnx.load(str(tmp_path / "flat.onnx")).graph
    assert [d.dim_param for d in graph.input[0].type.tensor_type.shape.dim] == ["batch", ""]
    assert [d.dim_param for d in graph.output[0].type.tensor_type.shape.dim] == ["batch*2*3"]


def digits(dtype=np.float32):
    data = load_digits()
    X = ((data.data - data.data.mean(0)) / (data.data.std(0) + 1e-6)).astype(dtype)
    return X, data.target


def train_a_few_steps(model, X, y, rng_seed=0):
    optimizer = sp.Adam(model.parameters(), lr=1e-2)
    trainer = sp.Trainer(model, sp.CrossEntropyLoss(), optimizer, batch_size=64, verbose=0, seed=rng_seed)
    trainer.fit(X[:512], y[:512], epochs=2)
    return model


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_trained_dense_network_with_batch_norm_and_dropout_matches(ort, dtype, tmp_path):
    X, y = digits(dtype)
    model = nn.Sequential(
        nn.Dense(64, 32, dtype=dtype, rng=0),
        nn.BatchNorm1d(32, dtype=dtype),
        nn.LeakyReLU(0.125),  # exact in float32, as ONNX attributes are
        nn.Dropout(0.3, rng=0),
        nn.Dense(32, 16, dtype=dtype, rng=1),
        nn.LayerNorm(16, dtype=dtype),
        nn.HardSigmoid(),
        nn.Dropout(0.2, rng=1),
        nn.Dense(16, 10, dtype=dtype, rng=2),
    )
    train_a_few_steps(model, X, y)
    batch_norm = model[1]
    # Running statistics far from their start: the export must use them, not batch statistics.
    assert np.abs(batch_norm.running_mean).max() > 0.05 and np.abs(batch_norm.running_var - 1).max() > 0.05
    model.train()  # exported in eval form whatever the mode
    got = assert_exported_matches(
        ort, model, X[512:], tmp_path / "dense.onnx", tolerance=F32 if dtype == np.float32 else F64
    )
    assert np.mean(got.argmax(1) == y[512:]) > 0.5  # a trained network, not a constant


def test_trained_cnn_matches(ort, tmp_path):
    X, y = digits()
    images = X.reshape(-1, 1, 8, 8)
    model = nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1, rng=0),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(8, 8, 3, padding=1, rng=1),
        nn.ReLU(),
        nn.AvgPool2d(3, stride=1, padding=1),
        nn.AdaptiveAvgPool2d(2),
        nn.Flatten(),
        nn.Dense(32, 10, rng=2),
    )
    train_a_few_steps(model, images, y)
    assert np.abs(model[1].running_mean).max() > 0.01
    got = assert_exported_matches(ort, model, images[512:], tmp_path / "cnn.onnx", input_shape=(1, 8, 8))
    assert np.mean(got.argmax(1) == y[512:]) > 0.3


@pytest.mark.parametrize("model", ["mlp", "cnn"])
def test_train_writes_an_onnx_file_that_predicts_as_the_run(ort, model, tmp_path, capsys):
    run_folder, onnx_path = tmp_path / "run", tmp_path / "digits.onnx"
    argv = ["train", "--data", "digits", "--model", model, "--epochs", "2", "--batchnorm", "--dropout", "0.1"]
    argv += ["--hidden", "32", "--quiet", "--out", str(run_folder), "--onnx", str(onnx_path)]
    if model == "cnn":
        argv += ["--channels", "4,8"]
    assert main(argv) == 0
    assert ["onnx", "file", str(onnx_path)] in [line.split() for line in capsys.readouterr().out.splitlines()]
    run = sp.load_run(run_folder)
    frame = load_bundled_frame("digits").drop(columns="target").iloc[:300]
    rows = run.preprocessor.transform(frame).astype(np.float32)
    logits = run_onnx(ort, onnx_path, rows)
    np.testing.assert_allclose(logits, predict(run.model, rows), **F32)
    # The run's probabilities (saddlepoint predict's columns) are the softmax of the file's logits.
    probabilities = np.exp(logits - logits.max(1, keepdims=True))
    probabilities /= probabilities.sum(1, keepdims=True)
    predicted = run.predict(frame)
    columns = [c for c in predicted.columns if c.startswith("P(")]
    np.testing.assert_allclose(predicted[columns].to_numpy(), probabilities, **F32)
    labels = np.array([int(c[2:-1]) for c in columns])[logits.argmax(1)]
    np.testing.assert_array_equal(predicted["target"].to_numpy(), labels)


class Doubler(nn.Module):
    """A user's own layer: save_onnx cannot know what its forward computes."""

    def forward(self, x):
        return 2 * x

    def backward(self, grad_output):
        return 2 * grad_output


class MyDense(nn.Dense):
    """A subclass of a known layer may compute something else: refused too."""


@pytest.mark.parametrize(
    "model, options, error, message",
    [
        (nn.Sequential(nn.Dense(3, 2), Doubler()), {}, TypeError, r"layer 1 \(Doubler\).*test_onnx\.Doubler"),
        (nn.Sequential(nn.Sequential(MyDense(3, 2))), {}, TypeError, r"layer 0\.0 \(MyDense\)"),
        (Doubler(), {}, TypeError, r"the model \(Doubler\)"),
        (
            nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten()),
            {},
            ValueError,
            r"needs input_shape.*layer 0 \(Conv2d\)",
        ),
        (
            nn.Sequential(nn.ReLU(), nn.MaxPool2d(2)),
            {},
            ValueError,
            r"needs input_shape.*layer 1 \(MaxPool2d\)",
        ),
        (nn.Sequential(nn.ReLU()), {}, ValueError, "needs input_shape"),
        (
            nn.Dense(3, 2),
            {"input_shape": (4,)},
            ValueError,
            r"\(Dense\) takes input of shape \(batch, 3\), but gets \(batch, 4\)",
        ),
        (nn.Dense(3, 2), {"input_shape": 3}, ValueError, "input_shape must be a non-empty sequence"),
        (nn.Dense(3, 2), {"input_shape": (3, 0)}, ValueError, "input_shape must be"),
        (nn.Dense(3, 2), {"input_shape": 3.0}, ValueError, "input_shape must be"),
        (nn.Dense(3, 2), {"input_shape": ()}, ValueError, "input_shape must be"),
        (nn.Conv2d(1, 2, 5), {"input_shape": (1, 4, 4)}, ValueError, r"window does not fit an image of 4x4"),
        (nn.Conv2d(1, 2, 3), {"input_shape": (2, 4, 4)}, ValueError, r"\(batch, 1, height, width\)"),
        (
            nn.AdaptiveAvgPool2d(3),
            {"input_shape": (1, 8, 8)},
            NotImplementedError,
            r"\(AdaptiveAvgPool2d\) with output_size \(3, 3\) on 8x8",
        ),
        (nn.Unflatten(0, (2, 2)), {"input_shape": (3,)}, NotImplementedError, "splits the batch dimension"),
        (
            nn.Flatten(2),
            {"input_shape": (3,)},
            ValueError,
            r"\(Flatten\) takes input of shape with dimensions 2 to -1",
        ),
        (nn.Dense(3, 2), {"opset": 12}, ValueError, "opset must be an integer from 13"),
        (nn.Dense(3, 2), {"opset": "17"}, ValueError, "opset must be"),
        (
            nn.Sequential(nn.Dense(3, 2), nn.Dense(2, 2, dtype=np.float64)),
            {},
            TypeError,
            "all be float32 or all float64",
        ),
    ],
)
def test_bad_models_and_arguments_are_refused_clearly(ort, model, options, error, message, tmp_path):
    with pytest.raises(error, match=message):
        sp.save_onnx(model, tmp_path / "m.onnx", **options)
    assert not list(tmp_path.iterdir())  # nothing written


def test_a_path_in_a_missing_folder_or_a_folder_is_refused(ort, tmp_path):
    with pytest.raises(FileNotFoundError, match="the folder .*missing.* does not exist"):
        sp.save_onnx(nn.Dense(3, 2), tmp_path / "missing" / "m.onnx")
    with pytest.raises(IsADirectoryError, match="is a folder"):
        sp.save_onnx(nn.Dense(3, 2), tmp_path)


def test_without_onnx_the_export_and_the_flag_say_what_to_install(without_onnx, tmp_path, capsys):
    with pytest.raises(ImportError, match=r"pip install 'saddlepoint\[onnx\]'"):
        sp.save_onnx(nn.Dense(3, 2), tmp_path / "m.onnx")
    argv = ["train", "--epochs", "1", "--out", str(tmp_path / "run"), "--onnx", str(tmp_path / "m.onnx")]
    assert main(argv) == 2
    assert capsys.readouterr().err.strip() == f"saddlepoint: error: --onnx: {MISSING_ONNX}"
    assert not (tmp_path / "run").exists()  # refused before training


def test_the_flag_refuses_a_missing_folder_before_training(ort, tmp_path, capsys):
    argv = [
        "train",
        "--epochs",
        "1",
        "--out",
        str(tmp_path / "run"),
        "--onnx",
        str(tmp_path / "no" / "m.onnx"),
    ]
    assert main(argv) == 2
    assert "--onnx" in capsys.readouterr().err and not (tmp_path / "run").exists()
