"""A model describes itself: config() / from_config for every layer, save_model / load_model, the
one MLP spec behind mlp, the command line and guide.wider, and the clear errors of bad configs
and bad files."""

import inspect
import json
import subprocess
import sys
import textwrap
from argparse import Namespace

import numpy as np
import pytest
from safetensors.numpy import save_file

import saddlepoint as sp
from saddlepoint import cli, nn
from saddlepoint import diagnose as dg

#: One instance of every exported layer class, with arguments other than the defaults where
#: there are some. The guard test below fails when a layer class is exported without one.
EXAMPLES = {
    "Dense": lambda: sp.Dense(4, 3, bias=False, dtype=np.float64, rng=1),
    "BatchNorm1d": lambda: sp.BatchNorm1d(4, eps=1e-3, momentum=None, affine=False, dtype=np.float64),
    "BatchNorm2d": lambda: sp.BatchNorm2d(4, momentum=0.3, dtype=np.float64),
    "Flatten": lambda: sp.Flatten(1, 2),
    "Unflatten": lambda: sp.Unflatten(1, (2, 2)),
    "LayerNorm": lambda: sp.LayerNorm(4, eps=1e-4, elementwise_affine=True),
    "Dropout": lambda: sp.Dropout(0.25, rng=0),
    "LeakyReLU": lambda: sp.LeakyReLU(0.2),
    "ReLU": sp.ReLU,
    "Sigmoid": sp.Sigmoid,
    "HardSigmoid": sp.HardSigmoid,
    "Tanh": sp.Tanh,
    "Identity": sp.Identity,
    "Sequential": lambda: sp.Sequential(sp.Dense(4, 5, rng=0), sp.Tanh(), sp.Dense(5, 4, rng=1)),
    "Conv2d": lambda: nn.Conv2d(4, 2, (3, 2), stride=2, padding=(1, 0), groups=2, dtype=np.float64, rng=1),
    "MaxPool2d": lambda: nn.MaxPool2d((3, 2), stride=1, padding=(1, 0)),
    "AvgPool2d": lambda: nn.AvgPool2d(2, stride=(1, 2), padding=1),
    "AdaptiveAvgPool2d": lambda: nn.AdaptiveAvgPool2d((2, 3)),
}
#: Inputs of the round trip for the layers that take images, not (5, 4) rows.
INPUT_SHAPES = {
    "BatchNorm2d": (5, 4, 3, 2),
    "Flatten": (5, 4, 3),
    "Conv2d": (5, 4, 6, 5),
    "MaxPool2d": (5, 2, 4, 4),
    "AvgPool2d": (5, 2, 4, 4),
    "AdaptiveAvgPool2d": (5, 2, 4, 4),
}
#: Exported classes that are not layers one builds (the base classes).
NOT_LAYERS = {"Module", "Activation"}


def exported_layer_classes():
    names = set(sp.__all__) | set(nn.__all__)
    found = {}
    for name in names:
        obj = getattr(sp, name, None) or getattr(nn, name, None)
        if inspect.isclass(obj) and issubclass(obj, sp.Module) and obj.__name__ not in NOT_LAYERS:
            found[obj.__name__] = obj
    return found


def nested():
    inner = sp.Sequential(sp.Dense(6, 5, rng=2), sp.BatchNorm1d(5), sp.LeakyReLU(0.1))
    return sp.Sequential(
        sp.Dense(4, 6, rng=1),
        sp.LayerNorm(6),
        sp.Sigmoid(),
        inner,
        sp.Sequential(sp.Dropout(0.5, rng=0), sp.Dense(5, 3, rng=3)),
    )


def trained(model, rng, dtype=np.float32):
    """``model`` after a few forward passes in training mode (running statistics move), in eval."""
    for _ in range(3):
        model.forward(rng.standard_normal((8, 4)).astype(dtype))
    return model.eval()


def test_every_exported_layer_class_describes_itself():
    classes = exported_layer_classes()
    missing = sorted(set(classes) - set(EXAMPLES))
    assert not missing, (
        f"exported layers without an example here (and perhaps without config support): {missing}"
    )
    registered = nn.registered_layers()
    for name, cls in classes.items():
        assert registered.get(name) is cls, f"{name} is not registered for from_config"
        layer = EXAMPLES[name]()
        config = layer.config()
        assert config["class"] == name
        assert nn.from_config(config).config() == config
        assert json.loads(json.dumps(config)) == config


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_round_trip_gives_the_same_config_and_outputs(name, rng):
    layer = EXAMPLES[name]()
    config = layer.config()
    rebuilt = sp.Module.from_config(json.loads(json.dumps(config)))
    assert type(rebuilt) is type(layer) and rebuilt.config() == config
    rebuilt.load_state_dict(layer.state_dict())
    layer.eval(), rebuilt.eval()
    dtype = layer.state_dict()["weight"].dtype if "weight" in layer.state_dict() else np.float32
    if name.startswith("BatchNorm"):
        dtype = np.float64
    x = rng.standard_normal(INPUT_SHAPES.get(name, (5, 4))).astype(dtype)
    np.testing.assert_array_equal(rebuilt(x), layer(x))


def test_nested_sequentials_round_trip(rng):
    model = trained(nested(), rng)
    config = model.config()
    assert [c["class"] for c in config["layers"]] == [
        "Dense",
        "LayerNorm",
        "Sigmoid",
        "Sequential",
        "Sequential",
    ]
    assert config["layers"][3]["layers"][1] == {
        "class": "BatchNorm1d",
        "num_features": 5,
        "eps": 1e-5,
        "momentum": 0.1,
        "affine": True,
        "track_running_stats": True,
        "dtype": "float32",
    }
    rebuilt = nn.from_config(json.loads(json.dumps(config)))
    assert rebuilt.config() == config
    rebuilt.load_state_dict(model.state_dict())
    x = rng.standard_normal((7, 4)).astype(np.float32)
    np.testing.assert_array_equal(rebuilt.eval()(x), model(x))


def test_a_config_keeps_the_dtype_after_to():
    model = sp.mlp([3, 4, 2], rng=0).to(np.float64)
    assert {c.get("dtype") for c in model.config()["layers"]} == {"float64", None}
    assert nn.from_config(model.config())[0].weight.dtype == np.float64


def test_rng_gives_the_weights_of_the_same_layers_built_by_hand():
    built = nn.from_config(sp.Sequential(sp.Dense(3, 4), sp.Dropout(0.5), sp.Dense(4, 2)).config(), rng=7)
    rng = np.random.default_rng(7)
    by_hand = sp.Sequential(sp.Dense(3, 4, rng=rng), sp.Dropout(0.5, rng=rng), sp.Dense(4, 2, rng=rng))
    for (name, a), (_, b) in zip(built.state_dict().items(), by_hand.state_dict().items()):
        np.testing.assert_array_equal(a, b, err_msg=name)


# --- a user's layer ---------------------------------------------------------------------------------


@nn.register_layer
class Scale(sp.Module):
    """A layer written outside the package: y = factor * x."""

    config_fields = ("factor",)

    def __init__(self, factor=2.0):
        if not isinstance(factor, (int, float)) or isinstance(factor, bool):
            raise ValueError(f"factor must be a number, got {factor!r}")
        self.factor = float(factor)

    def forward(self, x):
        return self.factor * x

    def backward(self, grad_output):
        return self.factor * grad_output


class Unregistered(Scale):
    pass


def test_a_users_registered_layer_round_trips(rng):
    model = sp.Sequential(sp.Dense(4, 3, rng=0), Scale(0.5))
    config = model.config()
    assert config["layers"][1] == {"class": "Scale", "factor": 0.5}
    rebuilt = nn.from_config(json.loads(json.dumps(config)))
    rebuilt.load_state_dict(model.state_dict())
    x = rng.standard_normal((2, 4)).astype(np.float32)
    np.testing.assert_array_equal(rebuilt(x), model(x))
    with pytest.raises(ValueError, match="factor must be a number, got 'big'"):
        nn.from_config({"class": "Scale", "factor": "big"})


def test_register_layer_takes_a_name_and_refuses_a_taken_one():
    @nn.register_layer(name="test_config.Double")
    class Double(Scale):
        pass

    assert nn.from_config({"class": "test_config.Double", "factor": 3}).factor == 3.0
    assert Double(1.0).config() == {"class": "test_config.Double", "factor": 1.0}
    with pytest.raises(ValueError, match="already registered as 'Dense'"):
        nn.register_layer(Scale, name="Dense")


def test_a_layer_that_cannot_describe_itself_says_how_to_fix_it():
    with pytest.raises(TypeError, match="Unregistered is not a registered layer.*register_layer"):
        sp.Sequential(sp.ReLU(), Unregistered()).config()

    class Plain(sp.Module):
        def forward(self, x):
            return x

        def backward(self, g):
            return g

    with pytest.raises(TypeError, match="Plain cannot describe itself: give its class config_fields"):
        Plain().config()
    assert dg.wider(sp.Sequential(sp.Dense(3, 4), Plain(), sp.Dense(4, 2))) is None
    with pytest.raises(TypeError, match="cannot describe itself"):
        sp.save_model(sp.Sequential(Plain()), "never-written.safetensors")

    class DuckTyped:  # a layer that is not a Module: it trains, but cannot be described
        def forward(self, x):
            return x

        def backward(self, g):
            return g

    with pytest.raises(TypeError, match="DuckTyped cannot describe itself: it has no config"):
        sp.Sequential(sp.ReLU(), DuckTyped()).config()
    assert dg.wider(sp.Sequential(sp.Dense(3, 4), DuckTyped(), sp.Dense(4, 2))) is None


# --- bad configs ------------------------------------------------------------------------------------

DENSE = {"class": "Dense", "in_features": 4, "out_features": 8, "bias": True, "dtype": "float32"}


@pytest.mark.parametrize(
    "config,error,message",
    [
        ({**DENSE, "in_features": 0}, ValueError, r"^in_features must be a positive integer, got 0$"),
        ({**DENSE, "in_features": 4.0}, ValueError, "in_features must be a positive integer, got 4.0"),
        ({**DENSE, "dtype": "int32"}, TypeError, "dtype must be float32 or float64, got int32"),
        (
            {**DENSE, "class": "Conv9d"},
            ValueError,
            r"unknown class 'Conv9d'; the known classes are \[.*'Dense'",
        ),
        ({"in_features": 4}, ValueError, "lacks its 'class'; the known classes are"),
        ({**DENSE, "widht": 3}, ValueError, r"Dense config has unknown fields \['widht'\]; it takes \["),
        ({**DENSE, "rng": 3}, ValueError, r"unknown fields \['rng'\]"),
        ({"class": "Dropout", "p": 1.5}, ValueError, r"p must be in \[0, 1\), got 1.5"),
        (
            {"class": "BatchNorm1d", "num_features": 3, "momentum": 2},
            ValueError,
            r"momentum must be in \[0, 1\]",
        ),
        (
            {"class": "Sequential", "layers": [DENSE, {**DENSE, "out_features": -1}]},
            ValueError,
            r"^config\['layers'\]\[1\]: out_features must be a positive integer, got -1$",
        ),
        (
            {"class": "Sequential", "layers": [{"class": "Sequential", "layers": [{"class": "Nope"}]}]},
            ValueError,
            r"^config\['layers'\]\[0\]\['layers'\]\[0\]: the layer config names an unknown class 'Nope'",
        ),
        ({"class": "Sequential", "layers": 3}, ValueError, "layers must be a list, got int"),
        ([DENSE], TypeError, "a layer config must be a dict, got list"),
    ],
)
def test_bad_configs_give_the_constructors_clear_errors(config, error, message):
    with pytest.raises(error, match=message):
        nn.from_config(config)


def test_from_config_on_a_subclass_checks_the_class():
    assert isinstance(sp.Dense.from_config(DENSE), sp.Dense)
    with pytest.raises(ValueError, match="the config describes a Dense, not a Sequential"):
        sp.Sequential.from_config(DENSE)


# --- save_model / load_model ----------------------------------------------------------------------


def test_save_and_load_model_round_trip(tmp_path, rng):
    model = trained(
        sp.Sequential(
            sp.Dense(4, 6, dtype=np.float64, rng=0),
            sp.BatchNorm1d(6, dtype=np.float64),
            sp.Tanh(),
            sp.Dropout(0.1),
            sp.Dense(6, 2, dtype=np.float64, rng=1),
        ),
        rng,
        np.float64,
    )
    path = tmp_path / "model.safetensors"
    sp.save_model(model, path)
    loaded = sp.load_model(path)
    assert loaded.config() == model.config() and loaded.training
    assert loaded[0].weight.dtype == np.float64
    for name, array in model.state_dict().items():  # BatchNorm's buffers too
        np.testing.assert_array_equal(loaded.state_dict()[name], array, err_msg=name)
        assert loaded.state_dict()[name].dtype == array.dtype
    assert int(loaded[1].num_batches_tracked) == 3
    x = rng.standard_normal((5, 4))
    np.testing.assert_array_equal(loaded.eval()(x), model(x))
    fresh = sp.Sequential(
        sp.Dense(4, 6, dtype=np.float64),
        sp.BatchNorm1d(6, dtype=np.float64),
        sp.Tanh(),
        sp.Dropout(0.1),
        sp.Dense(6, 2, dtype=np.float64),
    )
    sp.load_weights(fresh, path)  # a model file is a weights file too
    np.testing.assert_array_equal(fresh.eval()(x), model(x))
    assert not list(tmp_path.glob(".*tmp*"))  # written atomically, nothing left behind


def test_a_saved_model_loads_in_a_process_without_the_code_that_built_it(tmp_path, rng):
    model = trained(nested(), rng)
    path = tmp_path / "nested.safetensors"
    sp.save_model(model, path)
    x = rng.standard_normal((6, 4)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    script = textwrap.dedent(f"""
        import sys
        import numpy as np
        import saddlepoint
        assert "test_config" not in sys.modules
        model = saddlepoint.load_model({str(path)!r}).eval()
        np.save({str(tmp_path / "y.npy")!r}, model(np.load({str(tmp_path / "x.npy")!r})))
        print(model[0].weight.dtype, type(model[3][1]).__name__)
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["float32", "BatchNorm1d"]
    np.testing.assert_array_equal(np.load(tmp_path / "y.npy"), model(x))


def _with_metadata(path, tensors, meta):
    save_file(tensors, str(path), metadata=meta)
    return path


def test_bad_model_files_give_value_errors_naming_the_file(tmp_path):
    model = sp.mlp([3, 4, 2], rng=0)
    good = tmp_path / "good.safetensors"
    sp.save_model(model, good)
    tensors = {k: np.ascontiguousarray(v) for k, v in model.state_dict().items()}
    config = model.config()

    def meta(**fields):
        return {
            "saddlepoint": json.dumps(
                {"format": "saddlepoint-model", "version": 1, "config": config, **fields}
            )
        }

    cases = {
        "text.safetensors": (None, "is not a complete safetensors file"),
        "weights.safetensors": ({"format": "pt"}, "is a safetensors file but not a saddlepoint model"),
        "checkpoint.safetensors": (
            {"saddlepoint": json.dumps({"format": "saddlepoint-checkpoint"})},
            "not a saddlepoint model",
        ),
        "broken.safetensors": ({"saddlepoint": "{not json"}, "not a saddlepoint model"),
        "version.safetensors": (meta(version=2), "model version must be 1"),
        "noconfig.safetensors": (meta(config=None), "the model config must be a dict, got None"),
        "unknown.safetensors": (
            meta(config={"class": "Transformer"}),
            "the model config does not build a model: the layer config names an unknown class 'Transformer'",
        ),
        "badvalue.safetensors": (
            meta(config={**config, "layers": [{**config["layers"][0], "in_features": 0}]}),
            "in_features must be a positive integer, got 0",
        ),
        "misfit.safetensors": (meta(config=sp.mlp([3, 5, 2]).config()), "does not fit the model"),
    }
    for name, (metadata, message) in cases.items():
        path = tmp_path / name
        if metadata is None:
            path.write_text("hello")
        else:
            _with_metadata(path, tensors, metadata)
        with pytest.raises(ValueError, match=message) as caught:
            sp.load_model(path)
        assert str(path) in str(caught.value), name
    with pytest.raises(FileNotFoundError):
        sp.load_model(tmp_path / "missing.safetensors")


# --- one spec for mlp, the command line and wider -------------------------------------------------


def test_mlp_is_built_from_its_config():
    model = sp.mlp([5, 7, 3], "tanh", dtype=np.float64, rng=3)
    assert model.config() == nn.mlp_config([5, 7, 3], "tanh", dtype=np.float64)
    assert [type(m).__name__ for m in model] == ["Dense", "Tanh", "Dense"]
    with pytest.raises(ValueError, match="activation must be one of"):
        nn.mlp_config([2, 3], "swish")
    with pytest.raises(ValueError, match=r"sizes\[1\] must be a positive integer, got 0"):
        sp.mlp([2, 0, 3])


def _old_cli_build(n_in, hidden, n_out, args, rng):
    """The command line's model as it was built by hand before the spec (the reference)."""
    modules, width = [], n_in
    for size in hidden:
        modules.append(sp.Dense(width, size, rng=rng))
        if args.batchnorm:
            modules.append(sp.BatchNorm1d(size))
        modules.append(nn.ACTIVATIONS[args.activation]())
        if args.dropout:
            modules.append(sp.Dropout(args.dropout, rng=rng))
        width = size
    modules.append(sp.Dense(width, n_out, rng=rng))
    return sp.Sequential(*modules)


@pytest.mark.parametrize(
    "hidden,batchnorm,dropout,activation",
    [
        ([], False, 0.0, "relu"),
        ([16], False, 0.0, "relu"),
        ([16, 8], True, 0.3, "tanh"),
        ([7, 7, 7], True, 0.0, "leaky_relu"),
        ([9], False, 0.5, "hard_sigmoid"),
    ],
)
def test_the_command_line_builds_the_same_models_with_the_same_weights(
    hidden, batchnorm, dropout, activation
):
    args = Namespace(model="mlp", batchnorm=batchnorm, dropout=dropout, activation=activation)
    model = cli.build_model(6, hidden, 3, args, np.random.default_rng(11))
    reference = _old_cli_build(6, hidden, 3, args, np.random.default_rng(11))
    assert [type(m) for m in model] == [type(m) for m in reference]
    for (name, a), (_, b) in zip(model.state_dict().items(), reference.state_dict().items()):
        np.testing.assert_array_equal(a, b, err_msg=name)
    assert model.config() == cli.model_config(6, hidden, 3, args)


def test_train_writes_a_model_that_loads_alone(tmp_path, capsys):
    out = tmp_path / "run"
    code = cli.main(
        [
            "train",
            "--data",
            "iris",
            "--epochs",
            "2",
            "--hidden",
            "8",
            "--batchnorm",
            "--quiet",
            "--out",
            str(out),
        ]
    )
    assert code == 0, capsys.readouterr().err
    model = sp.load_model(out / "model.safetensors")
    config = json.loads((out / "config.json").read_text())
    assert [m.config()["class"] for m in model] == ["Dense", "BatchNorm1d", "ReLU", "Dense"]
    assert model[0].in_features == config["layers"][0] and model[-1].out_features == config["layers"][-1]
    weights = sp.Sequential(*[nn.from_config(m.config()) for m in model])
    sp.load_weights(weights, out / "weights.safetensors")
    for name, array in weights.state_dict().items():
        np.testing.assert_array_equal(model.state_dict()[name], array, err_msg=name)


def test_wider_works_on_the_config_keeping_depth_and_doubling_widths():
    model = sp.Sequential(
        sp.LayerNorm(5, dtype=np.float64),
        sp.Dense(5, 8, dtype=np.float64),
        sp.Sequential(sp.BatchNorm1d(8, dtype=np.float64), sp.Tanh(), sp.Dropout(0.2)),
        sp.Dense(8, 4, dtype=np.float64),
        sp.LayerNorm(4, dtype=np.float64),
        sp.ReLU(),
        sp.Dense(4, 3, bias=False, dtype=np.float64),
    )
    wide = nn.widen_config(model.config())
    classes = [c["class"] for c in wide["layers"]]
    assert classes == [
        "LayerNorm",
        "Dense",
        "BatchNorm1d",
        "Tanh",
        "Dropout",
        "Dense",
        "LayerNorm",
        "ReLU",
        "Dense",
    ]
    dense = [(c["in_features"], c["out_features"]) for c in wide["layers"] if c["class"] == "Dense"]
    assert dense == [(5, 16), (16, 8), (8, 3)]
    assert wide["layers"][0]["normalized_shape"] == [5] and wide["layers"][6]["normalized_shape"] == [8]
    assert wide["layers"][2]["num_features"] == 16 and wide["layers"][4] == {"class": "Dropout", "p": 0.2}
    assert wide["layers"][-1]["bias"] is False and {c.get("dtype") for c in wide["layers"]} <= {
        "float64",
        None,
    }
    big = dg.wider(model)
    assert big.config() == wide
    x = np.ones((3, 5))
    assert big(x).shape == (3, 3)
    assert nn.widen_config(
        {"class": "Dense", "in_features": 3, "out_features": 2, "bias": True, "dtype": "float64"}
    )["layers"][0] == nn.dense_config(3, 64, dtype=np.float64)
    assert nn.widen_config(sp.LayerNorm(3).config()) is None
