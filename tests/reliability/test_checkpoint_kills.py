"""Runs killed while they write checkpoints: real training processes checkpoint every epoch (a
few steps) and get SIGKILL at random moments, most while a checkpoint is being written. The
checkpoint that survives must load, hold exactly the weights of one epoch of the same run done
without interruption, resume bit-identically, and the next save must leave no temporary file.
"""

import hashlib
import os
import random
import signal
import subprocess
import sys
import time

import pytest

import saddlepoint as sp

# The run, shared by the killed processes and the uninterrupted reference run in this process.
SETUP = """
import numpy as np
import saddlepoint as sp

def make_trainer(seed=0):
    model = sp.Sequential(sp.Dense(64, 512, rng=seed), sp.ReLU(), sp.Dropout(0.1, rng=seed),
                          sp.Dense(512, 512, rng=seed + 1), sp.ReLU(), sp.Dense(512, 10, rng=seed + 2))
    optimizer = sp.Adam(model.parameters(), lr=1e-3)
    scheduler = sp.ExponentialLR(optimizer, gamma=0.99)
    return sp.Trainer(model, sp.CrossEntropyLoss(), optimizer, scheduler=scheduler, batch_size=16,
                      seed=seed, verbose=0)

rng = np.random.default_rng(0)
X, y = rng.standard_normal((64, 64)), rng.integers(0, 10, 64)
"""
CHILD = (
    SETUP
    + """
import sys
trainer = make_trainer()
trainer.callbacks.append(sp.ModelCheckpoint(sys.argv[1]))
trainer.fit(X, y, epochs=int(sys.argv[2]))
"""
)
EPOCHS = 400  # more than a child reaches before it is killed
KILLS = 10


def digest(model) -> str:
    h = hashlib.sha256()
    for name, array in model.state_dict().items():
        h.update(name.encode() + array.tobytes())
    return h.hexdigest()


class Digests(sp.Callback):
    def __init__(self):
        self.by_epoch = {}

    def on_epoch_end(self, trainer, epoch, logs):
        self.by_epoch[epoch] = digest(trainer.model)


@pytest.fixture(scope="module")
def setup():
    namespace = {}
    exec(SETUP, namespace)  # noqa: S102 -- our own text, the same the children run
    return namespace


def reference_digests(setup, epochs: int) -> dict:
    trainer = setup["make_trainer"]()
    recorder = Digests()
    trainer.callbacks.append(recorder)
    trainer.fit(setup["X"], setup["y"], epochs=epochs)
    return recorder.by_epoch


def temporaries(folder, name):
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(f".{name}.tmp-"))


def run_and_kill(path, rng: random.Random) -> tuple[bool, str]:
    """Starts a training process, kills it once it has written a checkpoint (while it writes
    another, or at a random moment); returns whether a temporary file was left, and how."""
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(path), str(EPOCHS)])
    tmp = path.with_name(f".{path.name}.tmp-{proc.pid}")
    try:
        deadline = time.monotonic() + 60
        while not path.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.002)
        how = rng.choice(["while writing", "at random"])
        if how == "while writing":
            for _ in range(rng.randint(1, 4)):  # the n-th write from here
                while tmp.exists() and proc.poll() is None:
                    time.sleep(0.0002)
                while not tmp.exists() and proc.poll() is None and time.monotonic() < deadline:
                    time.sleep(0.0002)
            time.sleep(rng.uniform(0, 0.002))
        else:
            time.sleep(rng.uniform(0, 0.3))
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, "the run ended before it was killed"
    return tmp.exists(), how


def test_killed_runs_leave_a_checkpoint_that_loads_and_resumes(tmp_path, setup, cases):
    rng = random.Random(2026)
    path = tmp_path / "run.safetensors"
    reference = reference_digests(setup, 60)
    left_behind = aimed = compared = 0
    for kill in range(KILLS):
        path.unlink(missing_ok=True)
        left, how = run_and_kill(path, rng)
        left_behind += left and how == "while writing"
        aimed += how == "while writing"
        assert (len(temporaries(tmp_path, path.name)) == 1) == left

        resumed = setup["make_trainer"](seed=5)  # other weights and random states until loaded
        resumed.load_checkpoint(path)
        epoch = resumed.epoch
        assert epoch >= 1
        if epoch + 1 in reference:  # the file is one epoch's state, whole, and resumes exactly
            assert digest(resumed.model) == reference[epoch], f"kill {kill} ({how}): torn or wrong checkpoint"
            resumed.callbacks.append(sp.ModelCheckpoint(path))
            resumed.fit(setup["X"], setup["y"], epochs=epoch + 1)
            assert digest(resumed.model) == reference[epoch + 1], f"kill {kill} ({how}): resumed differently"
            compared += 1
        else:
            resumed.save_checkpoint(path)
        assert temporaries(tmp_path, path.name) == [], f"kill {kill}: the next save left a temporary file"
        cases.add()
    # Most kills aimed at a write must have hit one, or this test would not test what it says.
    assert aimed >= 3 and left_behind >= aimed // 2, f"{left_behind} of {aimed} kills landed during a write"
    assert compared >= KILLS // 2, f"only {compared} of {KILLS} survivors were compared with the reference"
