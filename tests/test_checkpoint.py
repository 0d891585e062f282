"""Weights and checkpoints: every exported layer's state round trip (no PyTorch needed), 0-d
tensors, loads as transactions, and the temporary files of killed writers."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from safetensors.numpy import load as st_load
from safetensors.numpy import save as st_save

import saddlepoint as sp
from saddlepoint import cli

from state_snapshot import snapshot

RNG = np.random.default_rng(0)


def header(path) -> dict:
    data = open(path, "rb").read()
    return json.loads(data[8 : 8 + int.from_bytes(data[:8], "little")])


def rewrite(path, out, *, tensors=None, meta=None):
    """A copy of the checkpoint ``path`` at ``out`` with its tensors and/or metadata changed by
    the functions given (each takes the dict and changes it in place)."""
    data = open(path, "rb").read()
    arrays = dict(st_load(data))
    info = json.loads(header(path)["__metadata__"]["saddlepoint"])
    if tensors:
        tensors(arrays)
    if meta:
        meta(info)
    open(out, "wb").write(st_save(arrays, metadata={"saddlepoint": json.dumps(info)}))
    return out


def trained(layer, x):
    """``layer`` after one training forward on ``x`` (moves running statistics)."""
    layer.train()
    layer.forward(x)
    return layer


# One factory per exported layer class: (layer with non-default state, a fresh differing one).
def _dense(seed, dtype=np.float32):
    return sp.Dense(3, 4, rng=seed, dtype=dtype)


LAYERS = {
    "Dense": [
        lambda s: _dense(s),
        lambda s: sp.Dense(3, 4, bias=False, rng=s),
        lambda s: _dense(s, np.float64),
    ],
    "Linear": [lambda s: sp.Linear(3, 2, rng=s)],
    "BatchNorm1d": [
        lambda s: (
            trained(sp.BatchNorm1d(3), RNG.standard_normal((5, 3)).astype(np.float32))
            if s == 0
            else sp.BatchNorm1d(3)
        ),
        lambda s: (
            trained(sp.BatchNorm1d(3, momentum=None, dtype=np.float64), RNG.standard_normal((4, 3, 2)))
            if s == 0
            else sp.BatchNorm1d(3, momentum=None, dtype=np.float64)
        ),
        lambda s: sp.BatchNorm1d(3, affine=False),
        lambda s: sp.BatchNorm1d(3, track_running_stats=False),
    ],
    "BatchNorm2d": [
        lambda s: (
            trained(sp.BatchNorm2d(3, dtype=np.float64), RNG.standard_normal((4, 3, 2, 2)))
            if s == 0
            else sp.BatchNorm2d(3, dtype=np.float64)
        )
    ],
    "Flatten": [lambda s: sp.Flatten()],
    "Conv2d": [
        lambda s: sp.Conv2d(2, 4, 3, padding=1, rng=s),
        lambda s: sp.Conv2d(4, 2, (3, 1), groups=2, bias=False, dtype=np.float64, rng=s),
    ],
    "MaxPool2d": [lambda s: sp.MaxPool2d(2)],
    "AvgPool2d": [lambda s: sp.AvgPool2d(3, stride=1, padding=1)],
    "AdaptiveAvgPool2d": [lambda s: sp.AdaptiveAvgPool2d(1)],
    "Unflatten": [lambda s: sp.Unflatten(1, (1, 2, 2))],
    "LayerNorm": [lambda s: sp.LayerNorm((2, 3)), lambda s: sp.LayerNorm(4, elementwise_affine=False)],
    "Dropout": [lambda s: sp.Dropout(0.3, rng=s)],
    "ReLU": [lambda s: sp.ReLU()],
    "Sigmoid": [lambda s: sp.Sigmoid()],
    "Tanh": [lambda s: sp.Tanh()],
    "HardSigmoid": [lambda s: sp.HardSigmoid()],
    "Identity": [lambda s: sp.Identity()],
    "LeakyReLU": [lambda s: sp.LeakyReLU(0.2)],
    "Sequential": [
        lambda s: sp.Sequential(
            _dense(s), sp.BatchNorm1d(4), sp.ReLU(), sp.Dropout(0.1, rng=s), sp.Dense(4, 2, rng=s + 1)
        )
    ],
    "Module": [lambda s: sp.Module()],
}


def exported_layer_classes():
    return sorted(
        name
        for name in sp.__all__
        if isinstance(getattr(sp, name), type) and issubclass(getattr(sp, name), sp.Module)
    )


def test_every_exported_layer_class_has_a_round_trip_case():
    assert exported_layer_classes() == sorted(LAYERS)


def _with_nonzero_params(module, seed):
    for i, p in enumerate(module.parameters()):
        p.data[...] = np.random.default_rng(seed + i).standard_normal(p.shape)
    return module


@pytest.mark.parametrize("name,index", [(n, i) for n in LAYERS for i in range(len(LAYERS[n]))])
def test_weights_of_every_layer_round_trip_bit_for_bit(tmp_path, name, index):
    make = LAYERS[name][index]
    saved = _with_nonzero_params(make(0), 0)
    if isinstance(saved, sp.Sequential):  # move the running statistics of its batch norm
        saved(RNG.standard_normal((6, 3)).astype(np.float32))
    sp.save_weights(saved, tmp_path / "w.safetensors")
    loaded = _with_nonzero_params(make(1), 100)
    sp.load_weights(loaded, tmp_path / "w.safetensors")
    expected, got = saved.state_dict(), loaded.state_dict()
    assert list(got) == list(expected)
    file_header = header(tmp_path / "w.safetensors")
    for key, array in expected.items():
        assert got[key].dtype == array.dtype and got[key].shape == array.shape, key
        assert got[key].tobytes() == array.tobytes(), key
        assert file_header[key]["shape"] == list(array.shape), key  # 0-d stays 0-d in the file


def test_batch_norm_model_round_trips_and_the_file_holds_a_0d_counter(tmp_path):
    model = sp.Sequential(sp.Dense(4, 8, rng=0), sp.BatchNorm1d(8))
    model(RNG.standard_normal((5, 4)).astype(np.float32))
    model(RNG.standard_normal((5, 4)).astype(np.float32))
    sp.save_weights(model, tmp_path / "w.safetensors")
    # PyTorch keeps num_batches_tracked 0-d (torch.tensor(0)); safetensors.torch.load_file gives
    # what the header says, so the file must say [] for load_state_dict to take it.
    assert header(tmp_path / "w.safetensors")["1.num_batches_tracked"] == {
        **header(tmp_path / "w.safetensors")["1.num_batches_tracked"],
        "dtype": "I64",
        "shape": [],
    }
    other = sp.Sequential(sp.Dense(4, 8, rng=1), sp.BatchNorm1d(8))
    sp.load_weights(other, tmp_path / "w.safetensors")
    assert other[1].num_batches_tracked.shape == () and int(other[1].num_batches_tracked) == 2
    np.testing.assert_array_equal(other[1].running_mean, model[1].running_mean)


def test_a_counter_written_with_shape_1_loads_as_pytorch_allows(tmp_path):
    # Files written before the fix hold num_batches_tracked with shape [1]; PyTorch's
    # load_state_dict takes a 1-d tensor for a 0-d entry too, so they stay loadable.
    model = sp.Sequential(sp.Dense(4, 8, rng=0), sp.BatchNorm1d(8))
    state = {k: np.ascontiguousarray(v) for k, v in model.state_dict().items()}
    state["1.num_batches_tracked"] = np.array([7], np.int64)
    open(tmp_path / "old.safetensors", "wb").write(st_save(state, metadata={"format": "pt"}))
    sp.load_weights(model, tmp_path / "old.safetensors")
    assert model[1].num_batches_tracked.shape == () and int(model[1].num_batches_tracked) == 7
    state["1.num_batches_tracked"] = np.array([7, 8], np.int64)
    open(tmp_path / "bad.safetensors", "wb").write(st_save(state))
    with pytest.raises(ValueError, match=r"num_batches_tracked'\] must have shape \(\), got \(2,\)"):
        sp.load_weights(model, tmp_path / "bad.safetensors")


def bn_trainer(seed):
    model = sp.Sequential(
        sp.Dense(6, 8, rng=seed), sp.BatchNorm1d(8), sp.ReLU(), sp.Dense(8, 3, rng=seed + 1)
    )
    optimizer = sp.Adam(model.parameters(), lr=1e-2)
    scheduler = sp.StepLR(optimizer, step_size=2, gamma=0.5)
    return sp.Trainer(
        model, sp.CrossEntropyLoss(), optimizer, scheduler=scheduler, batch_size=8, seed=seed, verbose=0
    )


def dropout_trainer(seed):
    """A model without batch norm, so these tests see the load itself, not the 0-d counter."""
    model = sp.Sequential(
        sp.Dense(6, 8, rng=seed), sp.ReLU(), sp.Dropout(0.2, rng=seed), sp.Dense(8, 3, rng=seed + 1)
    )
    optimizer = sp.Adam(model.parameters(), lr=1e-2)
    scheduler = sp.StepLR(optimizer, step_size=2, gamma=0.5)
    return sp.Trainer(
        model, sp.CrossEntropyLoss(), optimizer, scheduler=scheduler, batch_size=8, seed=seed, verbose=0
    )


def test_trainer_checkpoint_of_a_batch_norm_model_resumes_bit_identically(tmp_path):
    X, y = RNG.standard_normal((40, 6)), RNG.integers(0, 3, 40)
    straight = bn_trainer(0)
    straight.fit(X, y, epochs=4)
    first = bn_trainer(0)
    first.fit(X, y, epochs=2)
    first.save_checkpoint(tmp_path / "c.safetensors")
    resumed = bn_trainer(9)
    resumed.load_checkpoint(tmp_path / "c.safetensors")
    assert resumed.epoch == 2 and int(resumed.model[1].num_batches_tracked) == 10
    resumed.fit(X, y, epochs=4)
    for (name, a), b in zip(straight.model.state_dict().items(), resumed.model.state_dict().values()):
        assert a.tobytes() == b.tobytes(), name


def test_weights_written_by_train_with_batchnorm_reload(tmp_path, capsys):
    out = tmp_path / "run"
    assert (
        cli.main(["train", "--quiet", "--batchnorm", "--hidden", "16", "--epochs", "2", "--out", str(out)])
        == 0
    )
    config = json.loads((out / "config.json").read_text())
    args = cli.build_parser().parse_args(["train", "--batchnorm", "--hidden", "16"])
    layers = config["layers"]
    model = cli.build_model(layers[0], layers[1:-1], layers[-1], args, np.random.default_rng(5))
    sp.load_weights(model, out / "weights.safetensors")
    assert int(model[1].num_batches_tracked) > 0


def test_optimizer_state_of_a_0d_parameter_round_trips(tmp_path):
    model = sp.Module()
    model.scale = sp.Parameter(np.array(2.0, np.float32))
    optimizer = sp.Adam(model.parameters(), lr=0.1)
    model.scale.grad[...] = 1.0
    optimizer.step()
    sp.save_checkpoint(tmp_path / "c.safetensors", model=model, optimizer=optimizer, epoch=1)
    assert header(tmp_path / "c.safetensors")["optimizer.0.exp_avg"]["shape"] == []
    other = sp.Module()
    other.scale = sp.Parameter(np.array(5.0, np.float32))
    other_optimizer = sp.Adam(other.parameters(), lr=0.1)
    sp.load_checkpoint(tmp_path / "c.safetensors", model=other, optimizer=other_optimizer)
    assert other.scale.data == model.scale.data
    assert other_optimizer.state[other.scale]["exp_avg"].shape == ()


# --- loads are transactions -------------------------------------------------------------------
@pytest.fixture
def saved(tmp_path):
    X, y = RNG.standard_normal((40, 6)), RNG.integers(0, 3, 40)
    trainer = dropout_trainer(0)
    trainer.fit(X, y, epochs=2)
    trainer.save_checkpoint(tmp_path / "c.safetensors")
    return tmp_path / "c.safetensors"


def set_key(key, value):
    return lambda d: d.__setitem__(key, value)


def set_in(keys, value):
    def change(d):
        for k in keys[:-1]:
            d = d[k]
        d[keys[-1]] = value

    return change


BAD_METADATA = {
    "no epoch": lambda m: m.pop("epoch"),
    "no rng_states": lambda m: m.pop("rng_states"),
    "history a list": set_key("history", [1, 2]),
    "history of strings": set_key("history", {"loss": ["x"]}),
    "scheduler a list": set_key("scheduler", [1]),
    "scheduler without last_epoch": lambda m: m["scheduler"].pop("last_epoch"),
    "epoch negative": set_key("epoch", -1),
    "epoch a string": set_key("epoch", "3"),
    "rng_states without trainer": lambda m: m["rng_states"].pop("trainer"),
    "rng_states trainer junk": set_in(["rng_states", "trainer"], {"bit_generator": "PCG64"}),
    "split_seed negative": set_in(["rng_states", "split_seed"], -5),
    "version 2": set_key("version", 2),
    "unknown field": set_key("extra", 1),
}
TRAINER_FIELDS = {"rng_states without trainer", "rng_states trainer junk", "split_seed negative"}


@pytest.mark.parametrize("case", BAD_METADATA)
def test_a_checkpoint_that_does_not_fit_changes_nothing(tmp_path, saved, case):
    bad = rewrite(saved, tmp_path / "bad.safetensors", meta=BAD_METADATA[case])
    trainer = dropout_trainer(3)
    trainer.fit(RNG.standard_normal((16, 6)), RNG.integers(0, 3, 16), epochs=1)
    before = snapshot(trainer)
    with pytest.raises(ValueError):
        trainer.load_checkpoint(bad)
    assert snapshot(trainer) == before
    if case not in TRAINER_FIELDS:  # the random states are the trainer's to check
        with pytest.raises(ValueError):
            sp.load_checkpoint(
                bad, model=trainer.model, optimizer=trainer.optimizer, scheduler=trainer.scheduler
            )
        assert snapshot(trainer) == before


BAD_HYPERPARAMETERS = {
    "lr -1": (["param_groups", 0, "lr"], -1),
    "lr nan": (["param_groups", 0, "lr"], float("nan")),
    "lr a string": (["param_groups", 0, "lr"], "x"),
    "betas [2, 3]": (["param_groups", 0, "betas"], [2, 3]),
    "eps -1": (["param_groups", 0, "eps"], -1),
    "amsgrad a string": (["param_groups", 0, "amsgrad"], "yes"),
    "step -1": (["scalars", "0", "step"], -1),
    "step 1.5": (["scalars", "0", "step"], 1.5),
    "an unknown hyperparameter": (["param_groups", 0, "foo"], [1, 2]),
}


@pytest.mark.parametrize("case", BAD_HYPERPARAMETERS)
def test_checkpoint_hyperparameters_are_validated(tmp_path, saved, case):
    keys, value = BAD_HYPERPARAMETERS[case]
    bad = rewrite(saved, tmp_path / "bad.safetensors", meta=set_in(["optimizer", *keys], value))
    trainer = dropout_trainer(3)
    before = snapshot(trainer)
    with pytest.raises(ValueError, match=f"{keys[-1]}"):
        trainer.load_checkpoint(bad)
    assert snapshot(trainer) == before


def test_a_checkpoint_cannot_replace_scheduler_methods(tmp_path, saved):
    bad = rewrite(saved, tmp_path / "bad.safetensors", meta=set_in(["scheduler", "get_lr"], "x"))
    trainer = dropout_trainer(3)
    with pytest.raises(ValueError, match=r"unknown fields \['get_lr'\]"):
        trainer.load_checkpoint(bad)
    assert trainer.scheduler.get_lr() == [trainer.scheduler.base_lrs[0]]


@pytest.mark.parametrize(
    "case",
    [
        "int weights",
        "nan weights",
        "missing tensor",
        "extra tensor",
        "float64 beyond float32",
        "negative running_var",
    ],
)
def test_weights_that_do_not_fit_raise_value_error_and_change_nothing(tmp_path, case):
    model = sp.Sequential(sp.Dense(4, 8, rng=0), sp.BatchNorm1d(8))
    state = dict(model.state_dict())
    if case == "int weights":
        state["0.weight"] = np.ones((8, 4), np.int32)
    elif case == "nan weights":
        state["0.bias"] = np.full(8, np.nan, np.float32)
    elif case == "missing tensor":
        del state["1.running_var"]
    elif case == "float64 beyond float32":  # finite in the file, inf once cast
        state["0.bias"] = np.full(8, 1e300)
    elif case == "negative running_var":  # eval mode would take its square root
        state["1.running_var"] = np.full(8, -5.0, np.float32)
    else:
        state["2.weight"] = np.ones(3, np.float32)
    state["0.weight"] = state["0.weight"] + 1  # a change, were the file taken
    open(tmp_path / "w.safetensors", "wb").write(st_save(state))
    before = {k: v.tobytes() for k, v in model.state_dict().items()}
    with pytest.raises(ValueError, match="does not fit the model|NaN"):
        sp.load_weights(model, tmp_path / "w.safetensors")
    assert {k: v.tobytes() for k, v in model.state_dict().items()} == before


# --- temporary files of killed writers ----------------------------------------------------------
WRITER = """
import sys, saddlepoint as sp
model = sp.mlp([1000, 1000, 10], rng=0)
optimizer = sp.Adam(model.parameters())
while True:
    sp.save_checkpoint(sys.argv[1], model=model, optimizer=optimizer, epoch=1)
"""


def kill_while_writing(path, attempts=5):
    """Starts a process that saves to ``path`` in a loop and SIGKILLs it while its temporary
    file exists; returns the pid whose temporary file was left."""
    for _ in range(attempts):
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path)])
        tmp = path.with_name(f".{path.name}.tmp-{proc.pid}")
        deadline = time.monotonic() + 30
        try:
            while not tmp.exists() and time.monotonic() < deadline and proc.poll() is None:
                time.sleep(0.0005)
            os.kill(proc.pid, signal.SIGKILL)
        finally:
            proc.wait(timeout=30)
        if tmp.exists():
            return proc.pid
    pytest.fail(f"no kill in {attempts} attempts landed while the temporary file existed")


def test_the_next_save_removes_temporary_files_of_killed_writers(tmp_path):
    path = tmp_path / "big.safetensors"
    dead = kill_while_writing(path)
    stale = tmp_path / f".big.safetensors.tmp-{dead}"
    assert stale.exists()  # empty if the kill came right after open: stale all the same
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        live = tmp_path / f".big.safetensors.tmp-{sleeper.pid}"
        live.write_bytes(b"a live writer's file")
        other_name = tmp_path / f".other.safetensors.tmp-{dead}"
        other_name.write_bytes(b"another file's temporary")
        model = sp.mlp([3, 2], rng=0)
        sp.save_checkpoint(path, model=model, epoch=0)
        assert not stale.exists()
        assert live.exists() and other_name.exists()  # never a live process's, never another name's
    finally:
        sleeper.kill()
        sleeper.wait()


def test_trainer_checkpointing_removes_temporary_files_of_dead_processes(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f".c.safetensors.tmp-{dead.pid}"
    stale.write_bytes(b"\0" * 1000)
    trainer = bn_trainer(0)
    trainer.callbacks.append(sp.ModelCheckpoint(tmp_path / "c.safetensors"))
    trainer.fit(RNG.standard_normal((16, 6)), RNG.integers(0, 3, 16), epochs=1)
    assert not stale.exists() and (tmp_path / "c.safetensors").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["c.safetensors"]


def test_a_killed_writer_not_yet_reaped_counts_as_dead(tmp_path):
    zombie = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        zombie.send_signal(signal.SIGKILL)
        deadline = time.monotonic() + 30
        while open(f"/proc/{zombie.pid}/stat").read().rsplit(")", 1)[1].split()[0] != "Z":
            assert time.monotonic() < deadline
            time.sleep(0.01)
        stale = tmp_path / f".w.safetensors.tmp-{zombie.pid}"
        stale.write_bytes(b"\0" * 100)
        sp.save_weights(sp.mlp([3, 2], rng=0), tmp_path / "w.safetensors")
        assert not stale.exists()
    finally:
        zombie.wait()


def test_reading_a_folder_or_a_missing_file(tmp_path):
    model = sp.mlp([3, 2], rng=0)
    with pytest.raises(FileNotFoundError):
        sp.load_weights(model, tmp_path / "none.safetensors")
    with pytest.raises(ValueError, match="cannot be read"):
        sp.load_weights(model, tmp_path)


def test_a_locked_temporary_file_is_kept_even_when_its_pid_looks_dead(tmp_path):
    """A writer on another machine sharing the folder, or in another PID namespace, has a pid
    that is not alive here: its lock, not its pid, says it is still writing."""
    fcntl = pytest.importorskip("fcntl")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    writing = tmp_path / f".w.safetensors.tmp-{dead.pid}"
    writing.write_bytes(b"\0" * 100)
    with open(writing, "rb") as held:
        fcntl.flock(held.fileno(), fcntl.LOCK_EX)
        sp.save_weights(sp.mlp([3, 2], rng=0), tmp_path / "w.safetensors")
        assert writing.exists()
    sp.save_weights(sp.mlp([3, 2], rng=0), tmp_path / "w.safetensors")
    assert not writing.exists()
