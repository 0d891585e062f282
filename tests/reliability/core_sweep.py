"""Hostile calls into every function of ``saddlepoint._core``, run as a script in a child process.

``python core_sweep.py [N]`` calls each function (``calls`` has a valid call of every one) with
every argument swapped in turn for a hostile one: other dtypes, zero sizes, strided, reversed,
misaligned, read-only and Fortran-ordered arrays, non-arrays, arrays sharing memory with a written
argument, non-finite values and out-of-range scalars; then N (3000) hypothesis-drawn calls with
random sizes and several hostile arguments at once. Each call must succeed or raise
``TypeError``/``ValueError``; a rejected call must leave every array argument as it was; two
arguments sharing memory where one is written must be rejected. It prints ``cases N`` and each
failure, and exits 1 on any failure. A segfault or an abort kills only this process, so the test
that runs it (test_core_sweep.py) fails instead of pytest dying.
"""

import os
import re
import subprocess
import sys

import numpy as np
from numpy.lib.stride_tricks import as_strided

from saddlepoint import _core

# Sizes of a valid call: batch, in features, out features, classes/channels, length.
SIZES = dict(b=3, i=4, o=2, c=3, length=2)


def calls(dtype, b, i, o, c, length):
    """One valid call of every ``_core`` function: ``(name, kwargs, written argument names)``."""
    rng = np.random.default_rng(0)

    def a(*shape):
        return rng.standard_normal(shape).astype(dtype)

    def pos(*shape):
        return rng.uniform(0.5, 2.0, shape).astype(dtype)

    def labels(n, classes):
        return rng.integers(0, max(classes, 1), n).astype(np.int64)

    def probs(n, classes):
        p = rng.uniform(0.1, 1.0, (n, classes))
        return (p / np.maximum(p.sum(axis=1, keepdims=True), 1e-12)).astype(dtype)

    optim = dict(lr=0.1, weight_decay=0.01, maximize=False)
    # A 3x2 kernel with padding (1, 0) and stride (1, 2): the output keeps the height.
    conv = dict(stride=(1, 2), padding=(1, 0), dilation=(1, 1), groups=1)
    conv_w = max((length + 1 - 2) // 2 + 1, 0)
    return [
        ("dense_forward", dict(x=a(b, i), weight=a(o, i), bias=a(o), out=a(b, o)), ("out",)),
        (
            "dense_backward",
            dict(
                x=a(b, i),
                weight=a(o, i),
                grad_output=a(b, o),
                grad_weight=a(o, i),
                grad_bias=a(o),
                grad_input=a(b, i),
                accumulate=True,
            ),
            ("grad_weight", "grad_bias", "grad_input"),
        ),
        (
            "conv2d_forward",
            dict(
                x=a(b, c, length + 2, length + 1),
                weight=a(o, c, 3, 2),
                bias=a(o),
                out=a(b, o, length + 2, conv_w),
                **conv,
                columns=a(b * c * 3 * 2 * (length + 2) * conv_w),
            ),
            ("out", "columns"),
        ),
        (
            "conv2d_backward",
            dict(
                x=a(b, c, length + 2, length + 1),
                weight=a(o, c, 3, 2),
                grad_output=a(b, o, length + 2, conv_w),
                grad_weight=a(o, c, 3, 2),
                grad_bias=a(o),
                grad_input=a(b, c, length + 2, length + 1),
                **conv,
                accumulate=True,
                columns=a(b * c * 3 * 2 * (length + 2) * conv_w),
            ),
            ("grad_weight", "grad_bias", "grad_input"),
        ),
        ("activation_forward", dict(kind="leaky_relu", x=a(b, i), out=a(b, i), negative_slope=0.1), ("out",)),
        (
            "activation_backward",
            dict(
                kind="sigmoid",
                x=a(b, i),
                output=a(b, i),
                grad_output=a(b, i),
                grad_input=a(b, i),
                negative_slope=0.01,
            ),
            ("grad_input",),
        ),
        ("mse_loss", dict(input=a(b, i), target=a(b, i), grad_input=a(b, i)), ("grad_input",)),
        ("l1_loss", dict(input=a(b, i), target=a(b, i), grad_input=a(b, i)), ("grad_input",)),
        (
            "binary_cross_entropy_with_logits",
            dict(input=a(b, i), target=pos(b, i) / 2, grad_input=a(b, i)),
            ("grad_input",),
        ),
        (
            "cross_entropy",
            dict(input=a(b, c), target=labels(b, c), grad_input=a(b, c), weight=pos(c), label_smoothing=0.1),
            ("grad_input",),
        ),
        (
            "cross_entropy",
            dict(input=a(b, c), target=probs(b, c), grad_input=a(b, c), weight=None, label_smoothing=0.0),
            ("grad_input",),
        ),
        ("softmax", dict(x=a(b, c), out=a(b, c)), ("out",)),
        ("log_softmax", dict(x=a(b, c), out=a(b, c)), ("out",)),
        ("one_hot", dict(labels=labels(b, c), out=a(b, c)), ("out",)),
        (
            "sgd_step",
            dict(
                param=a(i),
                grad=a(i),
                momentum_buffer=a(i),
                momentum=0.9,
                dampening=0.0,
                nesterov=True,
                first_step=False,
                **optim,
            ),
            ("param", "momentum_buffer"),
        ),
        (
            "adagrad_step",
            dict(param=a(i), grad=a(i), sum=pos(i), clr=0.1, eps=1e-10, weight_decay=0.0, maximize=False),
            ("param", "sum"),
        ),
        (
            "rmsprop_step",
            dict(
                param=a(i),
                grad=a(i),
                square_avg=pos(i),
                grad_avg=a(i) / 10,
                momentum_buffer=a(i),
                alpha=0.99,
                eps=1e-8,
                momentum=0.9,
                **optim,
            ),
            ("param", "square_avg", "grad_avg", "momentum_buffer"),
        ),
        (
            "adam_step",
            dict(
                param=a(o, i),
                grad=a(o, i),
                exp_avg=a(o, i),
                exp_avg_sq=pos(o, i),
                max_exp_avg_sq=pos(o, i),
                beta1=0.9,
                beta2=0.999,
                eps=1e-8,
                decoupled_weight_decay=True,
                step_size=0.1,
                bias_correction2_sqrt=0.5,
                **optim,
            ),
            ("param", "exp_avg", "exp_avg_sq", "max_exp_avg_sq"),
        ),
        ("norm_part", dict(x=a(b, i), norm_type=2.0), ()),
        ("all_finite", dict(x=a(b, i)), ()),
        ("scale_", dict(x=a(b, i), factor=0.5), ("x",)),
        ("clamp_", dict(x=a(b, i), clip_value=0.5), ("x",)),
        ("batch_norm_statistics", dict(x=a(b, c, length), mean=a(c), var=a(c)), ("mean", "var")),
        (
            "batch_norm_forward_train",
            dict(
                x=a(b, c, length),
                weight=a(c),
                bias=a(c),
                eps=1e-5,
                factor=0.1,
                running_mean=a(c),
                running_var=pos(c),
                out=a(b, c, length),
                save_mean=a(c),
                save_invstd=a(c),
            ),
            ("running_mean", "running_var", "out", "save_mean", "save_invstd"),
        ),
        (
            "batch_norm_normalize",
            dict(x=a(b, c), mean=a(c), invstd=pos(c), weight=a(c), bias=a(c), out=a(b, c)),
            ("out",),
        ),
        (
            "batch_norm_backward",
            dict(
                x=a(b, c, length),
                grad_output=a(b, c, length),
                mean=a(c),
                invstd=pos(c),
                weight=a(c),
                batch_stats=True,
                grad_input=a(b, c, length),
                grad_weight=a(c),
                grad_bias=a(c),
            ),
            ("grad_input", "grad_weight", "grad_bias"),
        ),
        (
            "layer_norm_forward",
            dict(
                x=a(b, i), features=i, weight=a(i), bias=a(i), eps=1e-5, out=a(b, i), mean=a(b), invstd=a(b)
            ),
            ("out", "mean", "invstd"),
        ),
        (
            "layer_norm_backward",
            dict(
                x=a(b, i),
                grad_output=a(b, i),
                features=i,
                mean=a(b),
                invstd=pos(b),
                weight=a(i),
                grad_input=a(b, i),
                grad_weight=a(i),
                grad_bias=a(i),
            ),
            ("grad_input", "grad_weight", "grad_bias"),
        ),
        ("dropout_forward", dict(x=a(b, i), p=0.5, seed=7, out=a(b, i), mask=a(b, i)), ("out", "mask")),
        ("gather_rows", dict(x=a(b + 2, i), indices=labels(b, b + 2), out=a(b, i)), ("out",)),
        *pooling_calls(a, rng, b, c, length + 2, i + 1),
        ("get_num_threads", dict(), ()),
        ("matmul_simd", dict(), ()),
        ("set_num_threads", dict(n=_core.get_num_threads()), ()),
    ]


def pooling_calls(a, rng, n, c, h, w):
    """Valid calls of the pooling kernels on (n, c, h, w) inputs: a 2 × 3 window, stride (2, 1),
    padding (1, 1), so every h, w >= 1 pools into (h // 2 + 1, w)."""
    oh, ow = h // 2 + 1, w
    window = dict(kernel_size=(2, 3), stride=(2, 1), padding=(1, 1))
    return [
        (
            "max_pool2d_forward",
            dict(x=a(n, c, h, w), **window, out=a(n, c, oh, ow), indices=np.zeros((n, c, oh, ow), np.int64)),
            ("out", "indices"),
        ),
        (
            "max_pool2d_backward",
            dict(
                grad_output=a(n, c, oh, ow),
                indices=rng.integers(0, h * w, (n, c, oh, ow)).astype(np.int64),
                grad_input=a(n, c, h, w),
            ),
            ("grad_input",),
        ),
        ("avg_pool2d_forward", dict(x=a(n, c, h, w), **window, out=a(n, c, oh, ow)), ("out",)),
        (
            "avg_pool2d_backward",
            dict(grad_output=a(n, c, oh, ow), **window, grad_input=a(n, c, h, w)),
            ("grad_input",),
        ),
        ("adaptive_avg_pool2d_forward", dict(x=a(n, c, h, w), out=a(n, c, 2, 3)), ("out",)),
        (
            "adaptive_avg_pool2d_backward",
            dict(grad_output=a(n, c, 2, 3), grad_input=a(n, c, h, w)),
            ("grad_input",),
        ),
    ]


def functions():
    """The public functions of ``_core``."""
    return sorted(name for name in dir(_core) if not name.startswith("_") and callable(getattr(_core, name)))


# Hostile stand-ins for one argument.
SCALARS = [
    float("nan"),
    float("inf"),
    -float("inf"),
    -1,
    0,
    -0.0,
    1.5,
    10**400,
    -(10**400),
    2**64,
    -(2**63) - 1,
    "x",
    None,
    True,
    [1.0],
    np.float32(1),
    np.int64(-3),
]
NON_ARRAYS = [None, 1.0, "x", [1.0, 2.0], [[1.0]], (), {}, object()]


def hostile_arrays(x):
    """Hostile versions of array ``x``: (label, array) pairs."""
    yield (
        "f32" if x.dtype == np.float64 else "f64",
        x.astype(np.float32 if x.dtype == np.float64 else np.float64),
    )
    for dt in (np.int64, np.int32, np.float16, np.bool_, np.uint8, object, np.complex128):
        if x.dtype != dt:
            yield f"dtype {np.dtype(dt).name}", x.astype(dt)
    yield "big-endian", x.astype(x.dtype.newbyteorder(">")) if x.dtype.itemsize > 1 else x
    if x.ndim:
        yield "strided", np.repeat(x, 2, axis=-1)[..., ::2]
        yield "reversed", x[::-1]
        yield "fortran", np.asfortranarray(x) if x.ndim > 1 else x[None, :]
        yield "extra dim", x[None]
        yield "flat", x.reshape(-1)[: max(x.size - 1, 0)]
    yield "0-d", np.asarray(x.reshape(-1)[:1].reshape(()) if x.size else np.zeros((), x.dtype))
    buf = bytearray(x.nbytes + 1)
    mis = np.frombuffer(buf, dtype=x.dtype, offset=1, count=x.size).reshape(x.shape)
    mis[...] = x
    yield "misaligned", mis
    ro = x.copy()
    ro.flags.writeable = False
    yield "read-only", ro
    for v in (np.nan, np.inf, -np.inf):
        if x.dtype.kind == "f" and x.size:
            bad = x.copy()
            bad.reshape(-1)[x.size // 2] = v
            yield f"one {v}", bad
            yield f"all {v}", np.full_like(x, v)
    if x.dtype.kind == "i":
        for v in (-1, 2**40, np.iinfo(np.int64).min):
            bad = x.copy()
            if x.size:
                bad.reshape(-1)[-1] = v
                yield f"label {v}", bad


def shared(x, y, offset_bytes):
    """``x`` and ``y`` re-made as views of one buffer, ``y`` starting ``offset_bytes`` after ``x``."""
    size = max(x.nbytes, offset_bytes + y.nbytes)
    buf = bytearray(size + 16)
    base = np.frombuffer(buf, np.uint8)
    start = (-base.ctypes.data) % 16  # both views aligned
    xv = np.frombuffer(buf, x.dtype, x.size, start).reshape(x.shape)
    yv = np.frombuffer(buf, y.dtype, y.size, start + offset_bytes).reshape(y.shape)
    yv[...] = y
    xv[...] = x  # last: the argument that is read keeps valid values (labels in range, ...)
    return xv, yv


def strided_alias(x, y):
    """An array of ``y``'s shape and dtype over the first bytes of ``x``, made with as_strided
    (as a user might), or None when ``x`` is too small or ``y`` empty."""
    flat = x.reshape(-1).view(np.uint8)
    if flat.size < y.nbytes or y.size == 0:
        return None
    return as_strided(flat[: y.nbytes].view(y.dtype), shape=y.shape, strides=y.strides)


class Sweep:
    def __init__(self):
        self.cases = 0
        self.failures = []

    def call(self, name, kwargs, label, must_reject=False):
        """One call; checks the outcome and that a rejected call changed no array."""
        self.cases += 1
        before = {k: v.copy() for k, v in kwargs.items() if isinstance(v, np.ndarray) and v.dtype != object}
        try:
            getattr(_core, name)(**kwargs)
        except (TypeError, ValueError) as e:
            changed = [k for k, v in before.items() if not np.array_equal(kwargs[k], v, equal_nan=True)]
            if changed:
                self.failures.append(f"{name} [{label}]: rejected ({e}) but changed {changed}")
            return
        except BaseException as e:  # noqa: BLE001 - anything else is the failure we hunt
            self.failures.append(f"{name} [{label}]: {type(e).__name__}: {e}")
            return
        if must_reject:
            self.failures.append(f"{name} [{label}]: accepted arguments that share memory")

    def run(self):
        listed = {name for name, _, _ in calls(np.float32, **SIZES)}
        missing = set(functions()) - listed
        if missing:
            self.failures.append(f"functions with no call in core_sweep.calls: {sorted(missing)}")
        for dtype in (np.float32, np.float64):
            for name, kwargs, written in calls(dtype, **SIZES):
                self.call(name, kwargs, "valid")
                self.sweep_arguments(name, kwargs)
                self.sweep_overlaps(name, kwargs, written)
            self.sweep_zero_sizes(dtype)
        _core.set_num_threads(_core.get_num_threads())

    def sweep_arguments(self, name, kwargs):
        for key, value in kwargs.items():
            if isinstance(value, np.ndarray):
                variants = list(hostile_arrays(value)) + [(f"non-array {v!r}", v) for v in NON_ARRAYS]
            elif name == "set_num_threads":
                variants = [(repr(v), v) for v in (-1, 0, 10**400, "x", None, 1.5)]
            else:
                variants = [(repr(v)[:30], v) for v in SCALARS]
            for label, bad in variants:
                self.call(name, fresh(kwargs, key, bad), f"{key}: {label}")
            if key not in ("kind",):
                args = {k: v for k, v in kwargs.items() if k != key}
                self.call(name, fresh(args), f"{key} missing")

    def sweep_overlaps(self, name, kwargs, written):
        arrays = [k for k, v in kwargs.items() if isinstance(v, np.ndarray)]
        for w in written:
            for other in arrays:
                if other == w:
                    continue
                x, y = kwargs[other], kwargs[w]
                for offset in sorted({0, 8, max(x.nbytes - 8, 0)}):
                    if offset >= x.nbytes or y.size == 0:
                        continue
                    xv, yv = shared(x, y, offset)
                    self.call(
                        name,
                        fresh(kwargs, other, xv) | {w: yv},
                        f"{w} over {other} +{offset}B",
                        must_reject=True,
                    )
                xc = x.copy()
                alias = strided_alias(xc, y)
                if alias is not None:
                    self.call(
                        name,
                        fresh(kwargs, w, alias) | {other: xc},
                        f"{w} as_strided over {other}",
                        must_reject=True,
                    )
            # The written argument twice, as itself.
            for other in arrays:
                if (
                    other != w
                    and kwargs[other].shape == kwargs[w].shape
                    and kwargs[other].dtype == kwargs[w].dtype
                    and kwargs[w].size
                ):
                    same = kwargs[w].copy()
                    self.call(
                        name, fresh(kwargs) | {w: same, other: same}, f"{w} is {other}", must_reject=True
                    )

    def sweep_zero_sizes(self, dtype):
        for key in SIZES:
            sizes = dict(SIZES, **{key: 0})
            for name, kwargs, _ in calls(dtype, **sizes):
                self.call(name, kwargs, f"zero {key}")


def fresh(kwargs, key=None, value=None):
    """A copy of ``kwargs`` with fresh arrays (so one case cannot change the next), ``key``
    replaced by ``value``."""
    out = {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in kwargs.items()}
    if key is not None:
        out[key] = value
    return out


def random_calls(sweep, examples):
    """Hypothesis-driven: random sizes (zeros included), dtypes, several arguments made hostile
    at once and random pairs sharing memory at random byte offsets."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    @settings(
        max_examples=examples,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(st.data())
    def one_call(data):
        sizes = {k: data.draw(st.integers(0, 4), label=k) for k in SIZES}
        dtype = data.draw(st.sampled_from([np.float32, np.float64]), label="dtype")
        name, kwargs, written = data.draw(st.sampled_from(calls(dtype, **sizes)), label="call")
        kwargs = fresh(kwargs)
        arrays = [k for k, v in kwargs.items() if isinstance(v, np.ndarray)]
        for key in list(kwargs):
            choice = data.draw(st.integers(0, 5), label=f"{key} kind")
            if choice == 1 and key in arrays:
                variants = list(hostile_arrays(kwargs[key]))
                kwargs[key] = data.draw(st.sampled_from(variants), label=key)[1]
            elif choice == 1:
                kwargs[key] = data.draw(st.sampled_from(SCALARS), label=key)
        if written and len(arrays) > 1 and data.draw(st.booleans(), label="share"):
            w = data.draw(st.sampled_from(written), label="written")
            other = data.draw(st.sampled_from([k for k in arrays if k != w]), label="other")
            x, y = kwargs[other], kwargs[w]
            if (
                isinstance(x, np.ndarray)
                and isinstance(y, np.ndarray)
                and x.dtype != object
                and y.dtype != object
                and x.size
                and y.size
            ):
                offset = 8 * data.draw(st.integers(0, max(x.nbytes // 8 - 1, 0)), label="offset")
                kwargs[other], kwargs[w] = shared(np.ascontiguousarray(x), np.ascontiguousarray(y), offset)
        overlapping = any(
            isinstance(kwargs[w], np.ndarray)
            and isinstance(kwargs[o], np.ndarray)
            and kwargs[w].size
            and kwargs[o].size
            and kwargs[w].dtype != object
            and kwargs[o].dtype != object
            and np.shares_memory(kwargs[w], kwargs[o])
            for w in written
            if w in kwargs
            for o in arrays
            if o != w and o in kwargs
        )
        sweep.call(name, kwargs, f"random {sorted(sizes.items())} {dtype.__name__}", must_reject=overlapping)

    one_call()


def report(sweep) -> int:
    """Prints each failure and ``cases N`` (read by :func:`run_in_child`); the exit status."""
    for failure in sweep.failures:
        print("FAIL", failure)
    print(f"cases {sweep.cases}")
    return 1 if sweep.failures else 0


def run_in_child(script: str, *args: str) -> int:
    """Runs a sweep script in a child process, so that a crash fails the calling test instead of
    killing pytest; asserts it passed and returns how many cases it ran."""
    result = subprocess.run(
        [sys.executable, script, *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=dict(os.environ, RUST_BACKTRACE="0"),
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"the sweep failed (exit status {result.returncode}):\n{output[-8000:]}"
    ran = re.search(r"^cases (\d+)$", result.stdout, re.M)
    assert ran, output[-2000:]
    return int(ran.group(1))


def main():
    sweep = Sweep()
    sweep.run()
    random_calls(sweep, int(sys.argv[1]) if len(sys.argv) > 1 else 3000)
    return report(sweep)


if __name__ == "__main__":
    sys.exit(main())
