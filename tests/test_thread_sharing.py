"""The thread pool backs off to serial kernels while its threads do not get the cores (another
busy process): only who runs each part of a product changes, so results stay bit-identical."""

import subprocess
import sys

import numpy as np
import pytest

import saddlepoint as sp


@pytest.fixture
def restore_threads():
    before = sp.get_num_threads()
    yield
    sp.set_num_threads(before)


@pytest.fixture
def busy_process():
    """Another process keeping a core busy for the length of the test."""
    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    yield
    hog.kill()
    hog.wait()


def train_bytes(threads: int) -> bytes:
    """Enough steps of a network whose products are split in parts (several verdicts of the
    pool: it may share work or run serially in turn) for the results to depend on both."""
    sp.set_num_threads(threads)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((256, 784)).astype(np.float32)
    y = rng.integers(0, 10, 256)
    model = sp.mlp([784, 512, 256, 10], rng=1)
    loss_fn = sp.CrossEntropyLoss()
    opt = sp.Adam(model.parameters(), lr=1e-3)
    for step in range(40):
        batch = slice(step % 2 * 128, step % 2 * 128 + 128)
        loss_fn(model(x[batch]), y[batch])
        opt.zero_grad()
        model.backward(loss_fn.backward())
        opt.step()
    return b"".join(p.data.tobytes() for p in model.parameters())


def test_training_beside_a_busy_process_is_bit_identical_with_1_and_2_threads(restore_threads, busy_process):
    assert train_bytes(1) == train_bytes(2)


def test_products_beside_a_busy_process_are_bit_identical_for_1_and_2_threads(restore_threads, busy_process):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((512, 784)).astype(np.float64)
    layer = sp.Dense(784, 512, dtype=np.float64, rng=0)
    grad_out = rng.standard_normal((512, 512)).astype(np.float64)
    results = []
    for threads in (1, 2, 1, 2):
        sp.set_num_threads(threads)
        for _ in range(10):
            layer.zero_grad()
            out = layer.forward(x)
            grad_in = layer.backward(grad_out)
        results.append(out.tobytes() + grad_in.tobytes() + layer.weight.grad.tobytes())
    assert all(r == results[0] for r in results[1:])
