"""Trainer: fitting, validation, history, callbacks, divergence, checkpoints and bad input."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

import saddlepoint as sp
from saddlepoint.data import minibatches
from saddlepoint.training import step
from saddlepoint.training import trainer as trainer_module

from common import misaligned

try:
    import torch
except ImportError:
    torch = None


@pytest.fixture(scope="module")
def digits():
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    return X / 16.0, y


def make_trainer(seed=0, dropout=True, **kw):
    layers = [sp.Dense(64, 32, rng=seed), sp.ReLU()]
    if dropout:
        layers.append(sp.Dropout(0.2, rng=seed))
    model = sp.Sequential(*layers, sp.Dense(32, 10, rng=seed + 1))
    optimizer = sp.Adam(model.parameters(), lr=3e-3)
    scheduler = sp.StepLR(optimizer, step_size=2, gamma=0.5)
    return sp.Trainer(
        model,
        sp.CrossEntropyLoss(),
        optimizer,
        scheduler=scheduler,
        metrics=["accuracy"],
        batch_size=64,
        seed=seed,
        verbose=0,
        **kw,
    )


def test_fit_with_validation_split_records_history(digits):
    X, y = digits
    trainer = make_trainer()
    history = trainer.fit(X, y, epochs=6, validation_split=0.2)
    assert history.epochs == [1, 2, 3, 4, 5, 6]
    assert set(history.values) == {"loss", "val_loss", "val_accuracy"}
    assert history["loss"][-1] < history["loss"][0]
    assert history["val_accuracy"][-1] > 0.85
    assert trainer.evaluate(X, y)["accuracy"] > 0.85


def test_history_writes_csv(tmp_path, digits):
    X, y = digits
    history = make_trainer().fit(X, y, epochs=2, validation_data=(X[:100], y[:100]))
    history.to_csv(tmp_path / "h.csv")
    lines = (tmp_path / "h.csv").read_text().splitlines()
    assert lines[0] == "epoch,loss,val_loss,val_accuracy" and len(lines) == 3


def test_pandas_frames_are_accepted(digits):
    pd = pytest.importorskip("pandas")
    X, y = digits
    make_trainer().fit(pd.DataFrame(X[:200]), pd.Series(y[:200]), epochs=1)


def test_misaligned_data_trains_as_its_aligned_copy(digits):
    X, y = digits
    X32 = X[:300].astype(np.float32)
    expected = make_trainer().fit(X32, y[:300], epochs=2, validation_split=0.2)
    got = make_trainer().fit(misaligned(X32), misaligned(y[:300]), epochs=2, validation_split=0.2)
    assert got.values == expected.values


def test_misaligned_inputs_predict_as_their_aligned_copies(digits):
    X, y = digits
    X32, y = X[:100].astype(np.float32), y[:100]
    trainer = make_trainer()
    trainer.fit(X32, y, epochs=1)
    np.testing.assert_array_equal(trainer.predict(misaligned(X32)), trainer.predict(X32))
    np.testing.assert_array_equal(trainer.predict_proba(misaligned(X32)), trainer.predict_proba(X32))
    assert trainer.evaluate(misaligned(X32), misaligned(y)) == trainer.evaluate(X32, y)


def test_resume_from_checkpoint_is_bit_identical(tmp_path, digits):
    X, y = digits
    straight = make_trainer()
    straight.fit(X, y, epochs=4, validation_split=0.1)

    first = make_trainer()
    first.fit(X, y, epochs=2, validation_split=0.1)
    first.save_checkpoint(tmp_path / "run.safetensors")
    resumed = make_trainer(seed=99)  # different initial weights and generators: all restored
    resumed.load_checkpoint(tmp_path / "run.safetensors")
    assert resumed.epoch == 2
    resumed.fit(X, y, epochs=4, validation_split=0.1)
    for (name, a), b in zip(straight.model.state_dict().items(), resumed.model.state_dict().values()):
        assert a.tobytes() == b.tobytes(), name
    assert resumed.history["loss"] == straight.history["loss"]
    assert resumed.optimizer.param_groups[0]["lr"] == straight.optimizer.param_groups[0]["lr"]


class ScriptedMetric(sp.Callback):
    """Logs a made-up metric and records the weights of every epoch."""

    def __init__(self, values):
        self.values, self.weights = list(values), {}

    def on_epoch_end(self, trainer, epoch, logs):
        logs["score"] = self.values[epoch - 1]
        self.weights[epoch] = trainer.model.state_dict()


def test_early_stopping_restores_the_best_weights(digits):
    X, y = digits
    script = ScriptedMetric([3.0, 2.0, 1.0, 1.5, 2.5, 3.5, 4.0, 5.0])
    stopper = sp.EarlyStopping(monitor="score", patience=2)
    trainer = make_trainer(callbacks=[script, stopper])
    trainer.fit(X, y, epochs=8)
    assert trainer.epoch == 6 and stopper.best_epoch == 3
    for name, array in trainer.model.state_dict().items():
        np.testing.assert_array_equal(array, script.weights[3][name])


def test_divergence_stops_with_epoch_and_batch_and_finite_weights():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((256, 8)).astype(np.float32) * 100
    y = rng.standard_normal((256, 1)).astype(np.float32)
    model = sp.mlp([8, 16, 1], rng=0)
    trainer = sp.Trainer(
        model, sp.MSELoss(), sp.SGD(model.parameters(), lr=10.0), batch_size=32, verbose=0, seed=0
    )
    with pytest.raises(
        sp.TrainingDiverged,
        match=r"at epoch \d+, batch \d+; the model and the "
        r"optimizer are left as they were",
    ):
        trainer.fit(X, y, epochs=20)
    assert all(np.all(np.isfinite(p.data)) for p in model.parameters())


def test_fit_runs_every_batch_through_the_one_train_step(monkeypatch, digits):
    """The Trainer has no copy of the step: every batch goes through ``train_step``, and the
    result is bit-identical to calling it by hand on the same batches."""
    X, y = digits
    X = np.ascontiguousarray(X, dtype=np.float32)
    calls = []

    def counting_step(*args, **kwargs):
        calls.append(kwargs.get("guard", args[5] if len(args) > 5 else None))
        return step.train_step(*args, **kwargs)

    monkeypatch.setattr(trainer_module, "train_step", counting_step)
    model = sp.mlp([64, 16, 10], rng=0)
    trainer = sp.Trainer(
        model,
        sp.CrossEntropyLoss(),
        sp.SGD(model.parameters(), lr=0.1, momentum=0.9),
        batch_size=100,
        seed=3,
        verbose=0,
    )
    trainer.fit(X, y, epochs=2)
    assert len(calls) == 2 * 18 and all(guard is not None for guard in calls)  # ceil(1797 / 100) per epoch

    by_hand = sp.mlp([64, 16, 10], rng=0)
    loss_fn, optimizer = sp.CrossEntropyLoss(), sp.SGD(by_hand.parameters(), lr=0.1, momentum=0.9)
    rng = np.random.default_rng(3)
    rng.integers(2**31)  # the Trainer draws its validation-split seed first
    by_hand.train()
    for _ in range(2):
        for idx in minibatches(len(X), 100, rng):
            step.train_step(by_hand, loss_fn, optimizer, X[idx], y[idx])
    for name, array in model.state_dict().items():
        assert array.tobytes() == by_hand.state_dict()[name].tobytes(), name

    calls.clear()
    sp.Trainer(
        model,
        sp.CrossEntropyLoss(),
        sp.SGD(model.parameters()),
        batch_size=600,
        check_finite=False,
        verbose=0,
    ).fit(X, y, epochs=1)
    assert calls == [None] * 3  # no guard, nothing checked: the plain step


class StateRecorder:
    """A pass-through first layer that copies the model's and the optimizer's whole state
    (buffers, dropout generators) before each training batch reaches the other layers."""

    def __init__(self):
        self.model = self.optimizer = None
        self.before = []

    def forward(self, x):
        generators = [m.rng.bit_generator.state for m in self.model if isinstance(m, sp.Dropout)]
        self.before.append((self.model.state_dict(), self.optimizer.state_dict(), generators))
        return x

    def backward(self, grad_output):
        return grad_output


def assert_state_is(model, optimizer, saved):
    model_state, optimizer_state, generators = saved
    for name, array in model.state_dict().items():
        assert array.tobytes() == model_state[name].tobytes(), name
    now = optimizer.state_dict()["state"]
    assert now.keys() == optimizer_state["state"].keys()
    for key, values in now.items():
        for name, value in values.items():
            assert np.array_equal(value, optimizer_state["state"][key][name]), (key, name)
    assert [m.rng.bit_generator.state for m in model if isinstance(m, sp.Dropout)] == generators


def test_divergence_leaves_buffers_generators_and_optimizer_as_before_the_failing_batch():
    """With a huge rate, batch norm's running statistics overflow in the forward pass of the
    failing batch: they used to keep inf/NaN (so did every prediction); now the whole batch
    is undone."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((256, 4)).astype(np.float32)
    y = rng.integers(0, 2, 256)
    recorder = StateRecorder()
    model = sp.Sequential(
        recorder,
        sp.Dense(4, 8, rng=0),
        sp.BatchNorm1d(8),
        sp.ReLU(),
        sp.Dropout(0.1, rng=0),
        sp.Dense(8, 2, rng=1),
    )
    optimizer = sp.SGD(model.parameters(), lr=1e6, momentum=0.9)
    recorder.model, recorder.optimizer = model, optimizer
    trainer = sp.Trainer(model, sp.CrossEntropyLoss(), optimizer, batch_size=32, verbose=0, seed=0)
    with pytest.raises(sp.TrainingDiverged, match="left as they were before this batch"):
        trainer.fit(X, y, epochs=5)
    assert len(recorder.before) > 1  # some updates were made before the failing batch
    assert_state_is(model, optimizer, recorder.before[-1])
    assert np.isfinite(model[2].running_var).all() and np.isfinite(model[2].running_mean).all()


class OverflowingCounter(sp.Module):
    """A pass-through layer of our own whose buffer grows by 1e38 per training batch (in place,
    or as a new array): float32 overflows in the fourth batch while the loss stays finite."""

    def __init__(self, in_place=True):
        self.register_buffer("total", np.zeros(1, np.float32))
        self.in_place = in_place

    def forward(self, x):
        if self.training:
            with np.errstate(over="ignore"):
                if self.in_place:
                    self.total += np.float32(1e38)
                else:
                    self.total = self.total + np.float32(1e38)
        return x

    def backward(self, grad_output):
        return grad_output


@pytest.mark.parametrize("in_place", [True, False])
def test_divergence_undoes_the_buffers_of_any_layer(in_place):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((64, 2)).astype(np.float32)
    counter = OverflowingCounter(in_place)
    model = sp.Sequential(counter, sp.Dense(2, 1, rng=0))
    trainer = sp.Trainer(
        model, sp.MSELoss(), sp.Adam(model.parameters()), batch_size=16, shuffle=False, verbose=0
    )
    with pytest.raises(
        sp.TrainingDiverged, match="running statistics stopped being finite at epoch 1, batch 4"
    ):
        trainer.fit(X, X[:, :1], epochs=1)
    assert counter.total[0] == np.float32(3e38)


def test_an_update_that_overflows_the_weights_is_named_at_the_next_batch():
    X = np.full((64, 2), 10.0, np.float32)
    model = sp.mlp([2, 1], rng=0)
    trainer = sp.Trainer(model, sp.MSELoss(), sp.SGD(model.parameters(), lr=1e38), batch_size=16, verbose=0)
    with pytest.raises(sp.TrainingDiverged, match="the previous update already made the weights non-finite"):
        trainer.fit(X, X[:, :1] + 100, epochs=1)


def test_a_last_batch_of_one_under_batch_norm_is_refused_before_any_update():
    """It failed at the last batch, after the epoch's other updates had changed the model."""
    model = sp.Sequential(sp.Dense(4, 8, rng=0), sp.BatchNorm1d(8), sp.ReLU(), sp.Dense(8, 2, rng=1))
    trainer = sp.Trainer(
        model, sp.CrossEntropyLoss(), sp.SGD(model.parameters(), lr=0.1), batch_size=32, verbose=0
    )
    X, y = np.random.default_rng(0).standard_normal((33, 4)), np.arange(33) % 2
    before = model.state_dict()
    with pytest.raises(ValueError, match="leaves a last batch of 1 of the 33 training samples"):
        trainer.fit(X, y, epochs=1)
    assert trainer.epoch == 0
    for name, array in model.state_dict().items():
        np.testing.assert_array_equal(array, before[name])
    trainer.drop_last = True  # the way out the message names
    trainer.fit(X, y, epochs=1)
    assert trainer.epoch == 1


def test_drop_last_with_fewer_samples_than_a_batch_is_refused():
    """It divided by zero: no batch, no loss. PyTorch's DataLoader gives no batch; fit refuses."""
    model = sp.mlp([2, 2], rng=0)
    trainer = sp.Trainer(
        model, sp.CrossEntropyLoss(), sp.SGD(model.parameters()), batch_size=64, drop_last=True, verbose=0
    )
    before = model.state_dict()
    with pytest.raises(
        ValueError, match="batch_size must be at most the 10 training samples with drop_last=True, got 64"
    ):
        trainer.fit(np.ones((10, 2)), np.arange(10) % 2, epochs=1)
    assert trainer.epoch == 0 and len(trainer.history.epochs) == 0
    for name, array in model.state_dict().items():
        np.testing.assert_array_equal(array, before[name])


def test_scheduler_can_step_per_batch(digits):
    X, y = digits
    model = sp.mlp([64, 10], rng=0)
    optimizer = sp.SGD(model.parameters(), lr=0.1)
    scheduler = sp.ExponentialLR(optimizer, gamma=0.99)
    trainer = sp.Trainer(
        model,
        sp.CrossEntropyLoss(),
        optimizer,
        scheduler=scheduler,
        scheduler_interval="batch",
        batch_size=100,
        verbose=0,
    )
    trainer.fit(X, y, epochs=1)
    assert scheduler.last_epoch == 18  # ceil(1797 / 100) batches


def test_truncated_or_foreign_checkpoints_are_rejected_and_change_nothing(tmp_path, digits):
    X, y = digits
    trainer = make_trainer()
    trainer.fit(X, y, epochs=1)
    path = tmp_path / "c.safetensors"
    trainer.save_checkpoint(path)
    data = path.read_bytes()
    other = make_trainer(seed=5)
    before = other.model.state_dict()
    (tmp_path / "cut.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="truncated or not ours"):
        other.load_checkpoint(tmp_path / "cut.safetensors")
    sp.save_weights(other.model, tmp_path / "weights.safetensors")
    with pytest.raises(ValueError, match="not a saddlepoint checkpoint"):
        other.load_checkpoint(tmp_path / "weights.safetensors")
    (tmp_path / "junk.bin").write_bytes(b"hello world, this is no checkpoint")
    with pytest.raises(ValueError, match="truncated or not ours"):
        other.load_checkpoint(tmp_path / "junk.bin")
    for name, array in other.model.state_dict().items():
        np.testing.assert_array_equal(array, before[name])


def test_checkpoint_survives_a_process_killed_while_saving(tmp_path):
    path = tmp_path / "big.safetensors"
    script = textwrap.dedent(f"""
        import numpy as np, saddlepoint as sp
        model = sp.mlp([2000, 2000, 10], rng=0)
        optimizer = sp.Adam(model.parameters())
        sp.save_checkpoint({str(path)!r}, model=model, optimizer=optimizer, epoch=1)
        print("ready", flush=True)
        epoch = 2
        while True:
            sp.save_checkpoint({str(path)!r}, model=model, optimizer=optimizer, epoch=epoch)
            epoch += 1
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(0.7)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    model = sp.mlp([2000, 2000, 10], rng=1)
    state = sp.load_checkpoint(path, model=model, optimizer=sp.Adam(model.parameters()))
    assert state["epoch"] >= 1
    np.testing.assert_array_equal(model[0].weight.data, sp.mlp([2000, 2000, 10], rng=0)[0].weight.data)


@pytest.mark.parametrize(
    "X,y,message",
    [
        (
            np.array([[1.0, np.nan], [0.0, 1.0], [np.inf, 0.0]]),
            np.array([0, 1, 0]),
            r"NaN or infinite values in rows \[0, 2\]",
        ),
        (np.ones((3, 2)), np.array([0, 1]), "same number of samples, got 3 and 2"),
        (
            np.ones((2, 2)),
            np.array([0.5, 1.0]),
            r"labels must be integers, got non-integer values in rows \[0\]",
        ),
        (np.ones((0, 2)), np.array([], dtype=int), "is empty"),
    ],
)
def test_bad_data_gets_a_clear_error(X, y, message):
    model = sp.mlp([2, 2], rng=0)
    trainer = sp.Trainer(model, sp.CrossEntropyLoss(), sp.SGD(model.parameters()), verbose=0)
    with pytest.raises(ValueError, match=message):
        trainer.fit(X, y, epochs=1)


def test_bad_trainer_arguments_are_rejected():
    model = sp.mlp([2, 2], rng=0)
    with pytest.raises(ValueError, match="batch_size must be a positive integer, got 0"):
        sp.Trainer(model, sp.MSELoss(), sp.SGD(model.parameters()), batch_size=0)
    with pytest.raises(
        ValueError, match=r"metrics\[0\] must be one of \['accuracy', 'mse', 'mae', 'r2'\], got 'f1'"
    ):
        sp.Trainer(model, sp.MSELoss(), sp.SGD(model.parameters()), metrics=["f1"])
    with pytest.raises(
        ValueError, match=r"scheduler_interval must be one of \['epoch', 'batch'\], got 'step'"
    ):
        sp.Trainer(model, sp.MSELoss(), sp.SGD(model.parameters()), scheduler_interval="step")
    with pytest.raises(ValueError, match="check_finite must be True or False"):
        sp.Trainer(model, sp.MSELoss(), sp.SGD(model.parameters()), check_finite="no")
    with pytest.raises(TypeError, match="augment must be a callable"):
        sp.Trainer(model, sp.MSELoss(), sp.SGD(model.parameters()), augment=0.1)
    with pytest.raises(ValueError, match=r"patience must be an integer >= 0, got -1"):
        sp.EarlyStopping(patience=-1)
    with pytest.raises(ValueError, match=r"mode must be one of \['min', 'max'\], got 'best'"):
        sp.ModelCheckpoint("c.safetensors", mode="best")
    trainer = sp.Trainer(model, sp.MSELoss(), sp.SGD(model.parameters()), verbose=0)
    with pytest.raises(ValueError, match=r"validation_split must be in \(0, 1\), got 1.5"):
        trainer.fit(np.ones((4, 2)), np.ones((4, 2)), epochs=1, validation_split=1.5)


@pytest.mark.skipif(torch is None, reason="PyTorch is not installed")
def test_weights_round_trip_with_pytorch(tmp_path):
    from safetensors.torch import load_file, save_file

    ours = sp.Sequential(sp.Dense(4, 8, rng=0), sp.ReLU(), sp.BatchNorm1d(8), sp.Dense(8, 3, rng=1))
    ours(np.random.default_rng(0).standard_normal((16, 4)).astype(np.float32))  # move running stats
    sp.save_weights(ours, tmp_path / "ours.safetensors")
    theirs = torch.nn.Sequential(
        torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.BatchNorm1d(8), torch.nn.Linear(8, 3)
    )
    theirs.load_state_dict(load_file(tmp_path / "ours.safetensors"))
    theirs.eval()
    ours.eval()
    x = np.random.default_rng(1).standard_normal((5, 4)).astype(np.float32)
    np.testing.assert_allclose(ours(x), theirs(torch.tensor(x)).detach().numpy(), rtol=1e-5, atol=1e-6)

    for p in theirs.parameters():
        torch.nn.init.normal_(p)
    save_file(theirs.state_dict(), tmp_path / "theirs.safetensors")
    sp.load_weights(ours, tmp_path / "theirs.safetensors")
    np.testing.assert_allclose(ours(x), theirs(torch.tensor(x)).detach().numpy(), rtol=1e-5, atol=1e-6)


def test_checkpoint_whose_optimizer_state_does_not_fit_changes_nothing(tmp_path, digits):
    X, y = digits
    trainer = make_trainer(dropout=False)
    trainer.fit(X, y, epochs=1)
    trainer.save_checkpoint(tmp_path / "c.safetensors")
    model = sp.mlp([64, 32, 10], rng=7)
    params = model.parameters()
    optimizer = sp.Adam([{"params": params[:2]}, {"params": params[2:]}])  # two groups, not one
    before = model.state_dict()
    with pytest.raises(ValueError, match="state_dict has 1 parameter groups, the optimizer 2"):
        sp.load_checkpoint(tmp_path / "c.safetensors", model=model, optimizer=optimizer)
    for name, array in model.state_dict().items():
        np.testing.assert_array_equal(array, before[name])


def test_early_stopping_summary_says_when_it_fired_and_what_it_restored(digits, capsys):
    X, y = digits
    script = ScriptedMetric([3.0, 2.0, 1.0, 1.5, 2.5, 3.5, 4.0, 5.0])
    stopper = sp.EarlyStopping(monitor="score", patience=2, verbose=True)
    trainer = make_trainer(callbacks=[script, stopper])
    trainer.fit(X, y, epochs=8)
    assert (stopper.stopped_epoch, stopper.best_epoch, stopper.restored_epoch) == (6, 3, 3)
    message = (
        "early stopping at epoch 6: score was best at epoch 3 (1) and did not improve in the 3 "
        "epochs after it; restored the weights of epoch 3"
    )
    assert stopper.summary() == message and capsys.readouterr().err == message + "\n"
    assert stopper.summary("the score").startswith("early stopping at epoch 6: the score was best")


def test_early_stopping_restores_the_best_weights_when_the_epochs_run_out_first(digits, capsys):
    X, y = digits
    script = ScriptedMetric([3.0, 2.0, 1.0, 1.5, 2.5])
    stopper = sp.EarlyStopping(monitor="score", patience=5)
    trainer = make_trainer(callbacks=[script, stopper])
    trainer.fit(X, y, epochs=5)
    assert trainer.epoch == 5 and stopper.stopped_epoch is None and stopper.restored_epoch == 3
    for name, array in trainer.model.state_dict().items():
        np.testing.assert_array_equal(array, script.weights[3][name])
    assert stopper.summary() == (
        "early stopping did not fire within 5 epochs: score was best at epoch 3 (1); "
        "restored the weights of epoch 3"
    )
    assert capsys.readouterr().err == ""  # verbose is off by default
    kept = sp.EarlyStopping(monitor="score", patience=5, restore_best=False)
    make_trainer(callbacks=[ScriptedMetric([3.0, 2.0, 1.0, 1.5, 2.5]), kept]).fit(X, y, epochs=5)
    assert kept.restored_epoch is None and kept.summary().endswith("kept the weights of epoch 5")
    improving = sp.EarlyStopping(monitor="score")
    make_trainer(callbacks=[ScriptedMetric([3.0, 2.0, 1.0]), improving]).fit(X, y, epochs=3)
    assert improving.summary() == (
        "early stopping did not fire: score was still improving at the last epoch, 3 (1); "
        "more epochs may help"
    )


def test_classification_scores_agree_with_scikit_learn(rng):
    from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score, roc_auc_score

    from saddlepoint.training.metrics import classification_scores

    y = rng.integers(0, 3, 200)
    logits = rng.standard_normal((200, 3)) + 1.5 * np.eye(3)[y] * (rng.random(200) < 0.7)[:, None]
    probabilities = sp.softmax(logits)
    predicted = probabilities.argmax(axis=1)
    scores = classification_scores(probabilities, y)
    assert scores == {
        "accuracy": pytest.approx(accuracy_score(y, predicted)),
        "balanced_accuracy": pytest.approx(balanced_accuracy_score(y, predicted)),
        "macro_f1": pytest.approx(f1_score(y, predicted, average="macro")),
    }
    binary = y % 2
    two = sp.softmax(logits[:, :2])
    scores = classification_scores(two, binary)
    assert scores["roc_auc"] == pytest.approx(roc_auc_score(binary, two[:, 1]))
    one = classification_scores(two[:, 1:], binary)  # one column: the probability of class 1
    assert one == pytest.approx(scores)
    # A class never predicted counts as F1 0 and recall 0, without a warning.
    constant = np.tile([0.9, 0.1], (10, 1))
    labels = np.array([0] * 8 + [1] * 2)
    scores = classification_scores(constant, labels)
    assert scores["balanced_accuracy"] == 0.5 and scores["macro_f1"] == pytest.approx((16 / 18) / 2)
    assert scores["roc_auc"] == 0.5
    with pytest.raises(ValueError, match="same number of rows"):
        classification_scores(constant, labels[:5])


def test_inputs_take_the_models_dtype_by_default():
    """A float64 model trains on float64 inputs without being told (a float32 default would
    hand its Dense layers float32 batches, which they refuse)."""
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((64, 4)), rng.integers(0, 2, 64)
    model = sp.mlp([4, 8, 2], dtype=np.float64, rng=0)
    trainer = sp.Trainer(model, sp.CrossEntropyLoss(), sp.SGD(model.parameters(), lr=0.1), verbose=0, seed=0)
    assert trainer.dtype == np.float64
    history = trainer.fit(X, y, epochs=2)
    assert np.isfinite(history["loss"]).all() and trainer.predict(X).dtype == np.float64
    assert (
        sp.Trainer(sp.mlp([4, 2], rng=0), sp.MSELoss(), sp.SGD(sp.mlp([4, 2]).parameters(), lr=0.1)).dtype
        == np.float32
    )
