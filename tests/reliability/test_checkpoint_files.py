"""Crafted safetensors files: truncated, bad header lengths, bad JSON, bad offsets, wrong dtypes
and shapes, bad metadata values of every field. Each is loaded with ``load_weights``,
``load_checkpoint`` and ``Trainer.load_checkpoint``: only ValueError may come out, and the model,
optimizer, scheduler and trainer must be bit-for-bit unchanged after each failed load."""

import copy
import json
import random

import numpy as np
import pytest
from safetensors.numpy import load as st_load
from safetensors.numpy import save as st_save

import saddlepoint as sp

from state_snapshot import snapshot


def make_trainer(seed):
    model = sp.Sequential(
        sp.Dense(5, 6, rng=seed),
        sp.BatchNorm1d(6),
        sp.ReLU(),
        sp.Dropout(0.2, rng=seed),
        sp.Dense(6, 3, rng=seed + 1),
    )
    params = model.parameters()
    optimizer = sp.Adam([{"params": params[:2]}, {"params": params[2:], "lr": 2e-3}], lr=1e-2, amsgrad=True)
    scheduler = sp.OneCycleLR(optimizer, max_lr=[0.01, 0.02], total_steps=100)
    return sp.Trainer(
        model,
        sp.CrossEntropyLoss(),
        optimizer,
        scheduler=scheduler,
        scheduler_interval="batch",
        batch_size=8,
        seed=seed,
        verbose=0,
    )


def train(trainer, epochs):
    rng = np.random.default_rng(0)
    trainer.fit(rng.standard_normal((24, 5)), rng.integers(0, 3, 24), epochs=epochs)
    return trainer


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """The bytes of a good checkpoint and of good weights, and the folder to write variants."""
    folder = tmp_path_factory.mktemp("crafted")
    trainer = train(make_trainer(0), 2)
    trainer.save_checkpoint(folder / "good.safetensors")
    sp.save_weights(trainer.model, folder / "weights.safetensors")
    return {
        "checkpoint": (folder / "good.safetensors").read_bytes(),
        "weights": (folder / "weights.safetensors").read_bytes(),
        "folder": folder,
    }


def split(data: bytes):
    n = int.from_bytes(data[:8], "little")
    return json.loads(data[8 : 8 + n]), data[8 + n :]


def build(header, body: bytes, length=None) -> bytes:
    raw = header if isinstance(header, bytes) else json.dumps(header).encode()
    return (len(raw) if length is None else length).to_bytes(8, "little") + raw + body


def with_header(data: bytes, change) -> bytes:
    header, body = split(data)
    header = copy.deepcopy(header)
    change(header)
    return build(header, body)


def with_meta(data: bytes, change) -> bytes:
    """The checkpoint with its saddlepoint metadata (parsed JSON) changed by ``change``."""
    header, body = split(data)
    meta = json.loads(header["__metadata__"]["saddlepoint"])
    change(meta)
    header = copy.deepcopy(header)
    header["__metadata__"]["saddlepoint"] = json.dumps(meta)
    return build(header, body)


def with_tensors(data: bytes, change) -> bytes:
    header, _ = split(data)
    tensors = dict(st_load(data))
    change(tensors)
    return st_save(tensors, metadata=header.get("__metadata__"))


class Loads:
    """Loads each crafted file into one trainer in every way and checks the outcome."""

    def __init__(self, folder, cases):
        self.trainer = train(make_trainer(7), 1)
        self.before = snapshot(self.trainer)
        self.path = folder / "crafted.safetensors"
        self.cases = cases

    def loaders(self, trainer_only=False):
        t = self.trainer
        yield "Trainer.load_checkpoint", lambda: t.load_checkpoint(self.path)
        if not trainer_only:
            yield (
                "load_checkpoint",
                lambda: sp.load_checkpoint(
                    self.path, model=t.model, optimizer=t.optimizer, scheduler=t.scheduler
                ),
            )
            yield "load_weights", lambda: sp.load_weights(t.model, self.path)

    def refused(self, name: str, data: bytes, trainer_only=False) -> None:
        """Every loader must raise ValueError and leave everything as it was."""
        self.path.write_bytes(data)
        for loader, load in self.loaders(trainer_only):
            try:
                load()
            except ValueError:
                pass
            except Exception as e:  # noqa: BLE001 -- the test is that nothing else comes out
                pytest.fail(f"{name}: {loader} raised {type(e).__name__}: {e}")
            else:
                pytest.fail(f"{name}: {loader} accepted the file")
            assert snapshot(self.trainer) == self.before, f"{name}: {loader} changed state"
            self.cases.add()

    def refused_or_loaded(self, name: str, data: bytes) -> None:
        """A fuzzed file may be valid; if not, ValueError and nothing changed."""
        self.path.write_bytes(data)
        for loader, load in self.loaders():
            try:
                load()
            except ValueError:
                assert snapshot(self.trainer) == self.before, f"{name}: {loader} changed state"
            except Exception as e:  # noqa: BLE001
                pytest.fail(f"{name}: {loader} raised {type(e).__name__}: {e}")
            else:
                self.before = snapshot(self.trainer)
            self.cases.add()


@pytest.fixture
def loads(files, cases):
    return Loads(files["folder"], cases)


def test_good_files_load(files, loads):
    loads.path.write_bytes(files["checkpoint"])
    loads.trainer.load_checkpoint(loads.path)
    assert loads.trainer.epoch == 2
    loads.path.write_bytes(files["weights"])
    sp.load_weights(loads.trainer.model, loads.path)


@pytest.mark.parametrize("kind", ["checkpoint", "weights"])
def test_truncated_files(files, loads, kind):
    data = files[kind]
    header_end = 8 + int.from_bytes(data[:8], "little")
    offsets = sorted(
        {
            *range(0, 16),
            *range(16, header_end + 2, 11),
            header_end - 1,
            *np.linspace(header_end, len(data) - 1, 40).astype(int).tolist(),
        }
    )
    for cut in offsets:
        loads.refused(f"{kind} cut at {cut}", data[:cut])


@pytest.mark.parametrize("kind", ["checkpoint", "weights"])
def test_bad_header_lengths(files, loads, kind):
    header, body = split(files[kind])
    raw = json.dumps(header).encode()
    for length in (
        0,
        1,
        2,
        7,
        len(raw) - 1,
        len(raw) + 1,
        len(raw) + len(body) + 1,
        100_000_001,
        2**32,
        2**63,
        2**64 - 1,
    ):
        loads.refused(f"{kind} header length {length}", build(raw, body, length))


@pytest.mark.parametrize("kind", ["checkpoint", "weights"])
def test_bad_json_headers(files, loads, kind):
    header, body = split(files[kind])
    raw = json.dumps(header).encode()
    for name, bad in {
        "empty": b"",
        "open brace": b"{",
        "array": b"[]",
        "null": b"null",
        "string": b'"x"',
        "no tensors": b"{}",
        "not utf-8": b'{"\xff\xfe": 1}',
        "trailing garbage": raw + b"}}",
        "deep nesting": b"[" * 5000 + b"]" * 5000,
        "metadata a number": json.dumps({**header, "__metadata__": 5}).encode(),
        "metadata values not strings": json.dumps({**header, "__metadata__": {"saddlepoint": 5}}).encode(),
        "tensor entry a string": json.dumps(
            {**header, next(k for k in header if k != "__metadata__"): "x"}
        ).encode(),
        "binary": bytes(range(256)),
    }.items():
        loads.refused(f"{kind} header {name}", build(bad, body))


def tensor_names(header):
    return [k for k in header if k != "__metadata__"]


def first_float_tensor(header):
    return next(
        k for k in tensor_names(header) if header[k]["dtype"] == "F32" and len(header[k]["shape"]) == 2
    )


@pytest.mark.parametrize("kind", ["checkpoint", "weights"])
def test_bad_data_offsets(files, loads, kind):
    header, body = split(files[kind])
    names = tensor_names(header)
    ordered = sorted(names, key=lambda k: header[k]["data_offsets"][0])
    first, second = ordered[0], ordered[1]

    def offsets(name, value):
        return lambda h: h[name].__setitem__("data_offsets", value)

    begin, end = header[second]["data_offsets"]
    for label, change in {
        "swapped": offsets(second, [end, begin]),
        "negative": offsets(first, [-4, header[first]["data_offsets"][1]]),
        "past the end": offsets(ordered[-1], [header[ordered[-1]]["data_offsets"][0], len(body) + 4]),
        "overlapping": offsets(second, [begin - 4, end - 4]),
        "gap": offsets(second, [begin + 4, end + 4]),
        "same range twice": offsets(second, list(header[first]["data_offsets"])),
        "three numbers": offsets(first, [0, 4, 8]),
        "strings": offsets(first, ["0", "4"]),
        "floats": offsets(first, [0.0, 4.5]),
        "huge": offsets(first, [0, 2**70]),
        "missing": lambda h: h[first].pop("data_offsets"),
    }.items():
        loads.refused(f"{kind} offsets {label}", with_header(files[kind], change))
    loads.refused(f"{kind} body short by 4", build(header, body[:-4]))
    loads.refused(f"{kind} body longer by 4", build(header, body + b"\0" * 4))


@pytest.mark.parametrize("kind", ["checkpoint", "weights"])
def test_wrong_dtypes(files, loads, kind):
    header, _ = split(files[kind])
    weight = first_float_tensor(header)
    counter = next(k for k in tensor_names(header) if k.endswith("num_batches_tracked"))
    for name, dtype in [
        (weight, "I32"),
        (weight, "U32"),
        (weight, "F64"),
        (weight, "F16"),
        (weight, "BF16"),
        (weight, "BOOL"),
        (weight, "U8"),
        (weight, "X"),
        (weight, ""),
        (weight, 5),
        (weight, None),
        (counter, "F64"),
        (counter, "U64"),
        (counter, "I32"),
        (counter, "C64"),
    ]:
        loads.refused(
            f"{kind} {name} dtype {dtype!r}",
            with_header(files[kind], lambda h: h[name].__setitem__("dtype", dtype)),
        )


@pytest.mark.parametrize("kind", ["checkpoint", "weights"])
def test_wrong_shapes(files, loads, kind):
    header, _ = split(files[kind])
    weight = first_float_tensor(header)
    rows, cols = header[weight]["shape"]
    vector = next(
        k for k in tensor_names(header) if len(header[k]["shape"]) == 1 and header[k]["shape"][0] > 1
    )
    for name, shape in [
        (weight, [cols, rows]),
        (weight, [rows * cols]),
        (weight, [rows, cols, 1]),
        (weight, [1, rows, cols]),
        (weight, []),
        (weight, [-1, cols]),
        (weight, [rows, "x"]),
        (weight, [rows, 1.5]),
        (weight, "x"),
        (weight, [2**40, 2**40]),
        (weight, [0, cols]),
        (vector, [1, header[vector]["shape"][0]]),
        (vector, []),
    ]:
        loads.refused(
            f"{kind} {name} shape {shape!r}",
            with_header(files[kind], lambda h: h[name].__setitem__("shape", shape)),
        )


@pytest.mark.parametrize("kind", ["checkpoint", "weights"])
def test_wrong_tensor_sets_and_values(files, loads, kind):
    header, _ = split(files[kind])
    names = tensor_names(header)
    weight = first_float_tensor(header)
    prefix = "model." if kind == "checkpoint" else ""

    def drop(name):
        return lambda t: t.pop(name)

    def put(name, value):
        return lambda t: t.__setitem__(name, value)

    def poison(name, value):
        def change(t):
            t[name] = t[name].copy()
            t[name].flat[0] = value

        return change

    variants = {
        # max_exp_avg_sq may be missing: switching amsgrad on mid-run saves such a state.
        **{f"without {n}": drop(n) for n in names if not n.endswith("max_exp_avg_sq")},
        "an extra tensor": put(f"{prefix}9.weight", np.zeros((2, 2), np.float32)),
        "a stray name": put("stray", np.zeros(2, np.float32)),
        "a renamed weight": lambda t: t.__setitem__(weight + "x", t.pop(weight)),
        "a NaN weight": poison(weight, np.nan),
        "an infinite weight": poison(weight, np.inf),
        "a negative counter": put(f"{prefix}1.num_batches_tracked", np.array(-3, np.int64)),
        "a negative running_var": poison(f"{prefix}1.running_var", -5.0),
        "a float64 weight beyond float32": lambda t: t.__setitem__(weight, np.full(t[weight].shape, 1e300)),
    }
    if kind == "checkpoint":
        state = "optimizer.0.exp_avg_sq"
        variants.update(
            {
                "negative exp_avg_sq": poison(state, -1.0),
                "NaN exp_avg": poison("optimizer.0.exp_avg", np.nan),
                "exp_avg of another shape": put("optimizer.0.exp_avg", np.zeros(3, np.float32)),
                "integer exp_avg": lambda t: t.__setitem__(
                    "optimizer.0.exp_avg", t["optimizer.0.exp_avg"].astype(np.int32)
                ),
                "optimizer index not a number": lambda t: t.__setitem__(
                    "optimizer.x.exp_avg", t.pop("optimizer.0.exp_avg")
                ),
                "optimizer name without state": lambda t: t.__setitem__(
                    "optimizer.0", t.pop("optimizer.0.exp_avg")
                ),
                "state of an unknown parameter": put("optimizer.99.exp_avg", np.zeros(3, np.float32)),
                "unknown state": put("optimizer.0.__dict__", np.zeros((6, 5), np.float32)),
                "float64 exp_avg beyond float32": lambda t: t.__setitem__(
                    "optimizer.0.exp_avg", np.full((6, 5), 1e300)
                ),
            }
        )
    for label, change in variants.items():
        loads.refused(f"{kind} {label}", with_tensors(files[kind], change))


def metadata_variants():
    """(label, change, trainer_only): one bad value for each metadata field, several for most."""

    def set_at(*path):
        def setter(value):
            def change(meta):
                d = meta
                for k in path[:-1]:
                    d = d[k]
                d[path[-1]] = value

            return change

        return setter

    def pop_at(*path):
        def change(meta):
            d = meta
            for k in path[:-1]:
                d = d[k]
            d.pop(path[-1])

        return change

    nan, inf = float("nan"), float("inf")
    out = []
    for field in ("format", "version", "epoch", "rng_states", "history", "optimizer", "scheduler"):
        out.append((f"no {field}", pop_at(field), False))
    for field, values in {
        "format": ["x", 5, None],
        "version": [2, "1", 1.0, True, None],
        "epoch": [-1, 1.5, "3", True, None, [1], 2**70],
        "rng_states": [[], None, "x"],
        "history": [[], None, {"loss": "x"}, {"loss": [None]}, {"loss": [True]}, {"loss": [[1]]}],
        "optimizer": [[], None, {}, {"param_groups": []}],
        "scheduler": [[], None, "x"],
        "extra": [1],
    }.items():
        out += [(f"{field}={v!r}", set_at(field)(v), False) for v in values]
    for name, values in {
        "trainer": [None, {}, {"bit_generator": "MT19937"}, {"bit_generator": "PCG64", "state": "x"}],
        "split_seed": [-1, "x", 2**40, None, 1.5],
        "model.3": [None, {"bit_generator": "PCG64"}],
    }.items():
        out += [(f"rng_states[{name}]={v!r}"[:80], set_at("rng_states", name)(v), True) for v in values]
    out.append(("no rng_states[trainer]", pop_at("rng_states", "trainer"), True))
    out.append(("no rng_states[split_seed]", pop_at("rng_states", "split_seed"), True))
    for key, values in {
        "lr": [-1, nan, inf, "x", None, True],
        "betas": [[2, 3], [0.9], "ab", [nan, 0.9], None],
        "eps": [-1, nan, "x"],
        "weight_decay": [-1, inf],
        "amsgrad": ["yes", 2, None],
        "maximize": [-1, "no"],
        "params": [[0, 0], [0], ["a"], "x", None],
        "initial_lr": [-1, "x"],
        "max_lr": [nan],
        "base_momentum": [1.5],
        "max_momentum": [-0.1],
        "foo": [[1, 2]],  # not a hyperparameter of Adam's
    }.items():
        out += [
            (f"param_groups[0][{key}]={v!r}", set_at("optimizer", "param_groups", 0, key)(v), False)
            for v in values
        ]
    for key in ("lr", "betas", "eps", "weight_decay", "amsgrad", "maximize", "params"):
        out.append((f"no param_groups[0][{key}]", pop_at("optimizer", "param_groups", 0, key), False))
    out += [
        ("param_groups one group", lambda m: m["optimizer"]["param_groups"].pop(), False),
        (
            "param_groups three groups",
            lambda m: m["optimizer"]["param_groups"].append(m["optimizer"]["param_groups"][0]),
            False,
        ),
        ("param_groups not a list", set_at("optimizer", "param_groups")({}), False),
        ("param_group not a dict", set_at("optimizer", "param_groups", 1)([1]), False),
        ("scalars not a dict", set_at("optimizer", "scalars")([]), False),
        ("scalars index a word", lambda m: m["optimizer"]["scalars"].__setitem__("a", {"step": 1}), False),
        ("scalars index negative", lambda m: m["optimizer"]["scalars"].__setitem__("-1", {"step": 1}), False),
        (
            "scalars of an unknown parameter",
            lambda m: m["optimizer"]["scalars"].__setitem__("99", {"step": 1}),
            False,
        ),
        ("scalars entry not a dict", set_at("optimizer", "scalars", "0")(3), False),
        ("no step", pop_at("optimizer", "scalars", "0", "step"), False),
        ("unknown scalar", set_at("optimizer", "scalars", "0", "__class__")(1), False),
        ("exp_avg also a scalar", set_at("optimizer", "scalars", "0", "exp_avg")(1), False),
    ]
    out += [
        (f"step={v!r}", set_at("optimizer", "scalars", "0", "step")(v), False)
        for v in (-1, 1.5, "x", None, True, 2**64, [1])
    ]
    scheduler_junk = {
        "total_steps": [0, -1, "x", 1.5],
        "anneal_strategy": ["x", None],
        "cycle_momentum": ["yes", 1],
        "use_betas": [False, "x"],
        "phases": [
            [],
            "x",
            [[1, 2, 3, 4, 5]],
            [[0.0, "initial_lr", "max_lr", "max_momentum", "base_momentum"]],
        ],
        "base_lrs": [[-1, 0.1], [0.1], "x", [nan, 0.1]],
        "last_epoch": [-2, "x", 1.5, 101, None],
        "_last_lr": [[inf, 0.1], None],
    }
    for key, values in scheduler_junk.items():
        out += [(f"scheduler[{key}]={v!r}"[:80], set_at("scheduler", key)(v), False) for v in values]
        out.append((f"no scheduler[{key}]", pop_at("scheduler", key), False))
    out += [
        ("scheduler[get_lr] replaced", set_at("scheduler", "get_lr")("x"), False),
        ("scheduler[__dict__]", set_at("scheduler", "__dict__")({}), False),
        ("scheduler[optimizer]", set_at("scheduler", "optimizer")(None), False),
    ]
    return out


def test_bad_metadata_values(files, loads):
    variants = metadata_variants()
    for label, change, trainer_only in variants:
        loads.refused(f"metadata {label}", with_meta(files["checkpoint"], change), trainer_only)
    assert len(variants) > 100


def test_metadata_nested_too_deeply_for_json_is_refused(files, loads):
    def nested(depth):
        return "[" * depth + "]" * depth

    meta = json.loads(split(files["checkpoint"])[0]["__metadata__"]["saddlepoint"])
    deep_history = json.dumps({**meta, "history": "HISTORY"}).replace(
        '"HISTORY"', '{"loss": ' + nested(200000) + "}"
    )
    for label, text in {"a nested list": nested(200000), "a nested history": deep_history}.items():
        data = with_header(files["checkpoint"], lambda h: h["__metadata__"].__setitem__("saddlepoint", text))
        loads.refused(f"metadata {label}", data)


def test_random_header_mutations_load_or_raise_value_error(files, loads):
    rng = random.Random(11)
    for kind in ("checkpoint", "weights"):
        data = files[kind]
        header_end = 8 + int.from_bytes(data[:8], "little")
        for i in range(150):
            mutated = bytearray(data)
            for _ in range(rng.randint(1, 4)):
                mutated[rng.randrange(header_end)] = rng.randrange(256)
            loads.refused_or_loaded(f"{kind} mutation {i}", bytes(mutated))
