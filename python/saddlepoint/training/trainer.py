"""`Trainer`: fit a model on arrays with mini-batches, validation, metrics, callbacks,
checkpoints and a progress bar — the course's training recipe in one object."""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field
from operator import attrgetter, is_
from typing import NoReturn

import numpy as np
from tqdm import tqdm

from .. import _core
from ..data.batches import minibatches
from ..data.checks import check_data, split_pair
from ..data.splits import model_dtype
from ..data.targets import is_classification_loss, training_targets
from ..io import checkpoint as ckpt
from ..losses import BCEWithLogitsLoss, softmax
from ..nn import BatchNorm1d, BatchNorm2d
from ..nn.module import aligned_contiguous, predict
from ..nn.parameter import flat_span
from ..optim import ReduceLROnPlateau
from ..validation import Flag, Integer, OneOf, Real, SequenceOf, check_params, positive_int
from .history import History
from .metrics import METRICS, metric_value
from .step import train_step


class TrainingDiverged(FloatingPointError):
    """The loss, the gradients or a layer's buffers stopped being finite; the model and the
    optimizer are left exactly as they were before the failing batch.

    Examples
    --------
    >>> model = sp.Dense(1, 1, rng=0)
    >>> trainer = sp.Trainer(model, sp.MSELoss(), sp.SGD(model.parameters(), lr=1e30), verbose=0)
    >>> trainer.fit(np.full((4, 1), 1e10), np.ones((4, 1)), epochs=3)
    Traceback (most recent call last):
        ...
    saddlepoint.training.trainer.TrainingDiverged: the loss became inf at epoch 2, batch 1; ...
    """


class _NotFinite(ArithmeticError):
    """Raised by :class:`_BatchRollback` inside :func:`train_step`; the Trainer catches it,
    undoes the batch and raises :class:`TrainingDiverged` naming the epoch and the batch."""


class _BatchRollback:
    """The ``check_finite`` guard of :func:`train_step`: stops a batch whose loss, gradients or
    buffers stop being finite before its update, and undoes what the batch changed.

    A batch that diverges is stopped before ``optimizer.step()``, so the weights and the
    optimizer state need no copy. The forward pass does change every layer's buffers (batch
    norm's running statistics and ``num_batches_tracked``) and advances layers' random
    generators (dropout): those are copied before each batch, which costs one small copy per
    buffer and nothing for a model without buffers or generators.
    """

    def __init__(self, model):
        self.params = model.parameters()
        # (the gradients' flat span, each parameter's gradient array) while the parameters are
        # one flat span: the gradients are then checked in one pass.
        self.flat_grads: tuple | None = None
        modules = [module for _, module in _modules(model)]
        # [module, name, the buffer array, its copy]; a layer may replace the array itself.
        self.buffers = [
            [module, name, array, np.array(array)]
            for module in modules
            if hasattr(module, "named_buffers")
            for name, array in module.named_buffers(recurse=False)
        ]
        self.float_buffers = [
            (module, name) for module, name, _, copy in self.buffers if copy.dtype.kind == "f"
        ]
        self.generators = [
            module.rng for module in modules if isinstance(getattr(module, "rng", None), np.random.Generator)
        ]
        self.generator_states: list = []

    def save(self) -> None:
        for entry in self.buffers:
            module, name, array, copy = entry
            live = getattr(module, name)
            if live is array:
                np.copyto(copy, live)
            else:
                entry[2:] = [live, np.array(live)]
        self.generator_states = [g.bit_generator.state for g in self.generators]

    def restore(self) -> None:
        for module, name, array, copy in self.buffers:
            if getattr(module, name) is array:
                np.copyto(array, copy)
            else:
                setattr(module, name, array)
                np.copyto(array, copy)
        for generator, state in zip(self.generators, self.generator_states):
            generator.bit_generator.state = state

    def after_forward(self, loss: float) -> None:
        if not math.isfinite(loss):
            raise _NotFinite(f"the loss became {loss}")
        if not self.buffers_finite():
            raise _NotFinite("a layer's running statistics stopped being finite")

    def before_update(self) -> None:
        params, flat = self.params, self.flat_grads
        if flat is not None and all(map(is_, map(_GRAD, params), flat[1])) and not any(map(_ZERO, params)):
            finite = _core.all_finite(flat[0])  # every gradient, still the span's views, at once
        else:
            finite = all(_core.all_finite(p.grad) for p in params)
            span = flat_span(params)
            self.flat_grads = None if span is None else (span.grad, tuple(map(_GRAD, params)))
        if not finite:
            raise _NotFinite("the gradients stopped being finite")

    def buffers_finite(self) -> bool:
        """Whether every float buffer is finite after the forward pass."""
        for module, name in self.float_buffers:
            if not _finite(getattr(module, name)):
                return False
        return True


_GRAD, _ZERO = attrgetter("_grad"), attrgetter("_grad_is_zero")


def _finite(array) -> bool:
    """Whether every element is finite: one Rust pass for C-contiguous float32/float64."""
    try:
        return _core.all_finite(array)
    except (TypeError, ValueError):  # another dtype or layout
        return bool(np.isfinite(array).all())


@dataclass
class Batches:
    """Mini-batches gathered by index into reused buffers (one per batch size): the Trainer's
    and the scikit-learn estimators' batches, gathered by the row-gather kernel."""

    X: np.ndarray
    y: np.ndarray
    buffers: dict = field(default_factory=dict)

    def gather(self, idx: np.ndarray):
        n = len(idx)
        if n not in self.buffers:
            self.buffers[n] = (
                np.empty((n, *self.X.shape[1:]), self.X.dtype),
                np.empty((n, *self.y.shape[1:]), self.y.dtype),
            )
        xb, yb = self.buffers[n]
        if self.X.flags.c_contiguous and self.X.ndim > 1:  # images too, as rows of pixels
            _core.gather_rows(self.X.reshape(len(self.X), -1), idx, xb.reshape(n, -1))
        else:
            np.take(self.X, idx, axis=0, out=xb)
        np.take(self.y, idx, axis=0, out=yb)
        return xb, yb


class Trainer:
    """Trains ``model`` with ``loss`` and ``optimizer`` in shuffled mini-batches.

    Parameters
    ----------
    model : Module
        The model to train (a :class:`Sequential`, or any module with ``forward``/``backward``).
    loss : Loss
        The criterion, e.g. :class:`CrossEntropyLoss` on logits with integer labels.
    optimizer : Optimizer
        Built on ``model.parameters()``.
    scheduler : LRScheduler or ReduceLROnPlateau, optional
        Stepped once per epoch (``scheduler_interval="epoch"``) or per batch (``"batch"``).
        ``ReduceLROnPlateau`` is stepped per epoch with the validation loss (or the loss).
    scheduler_interval : {"epoch", "batch"}
    metrics : sequence of str
        Names from ``accuracy``, ``mse``, ``mae``, ``r2``, computed on the validation data each
        epoch (the training loss is the mean of the batch losses).
    batch_size : int
        Samples per mini-batch.
    shuffle : bool
        Reshuffle the samples every epoch, from ``seed``.
    drop_last : bool
        Drop the last, smaller batch of each epoch.
    callbacks : sequence of Callback
    augment : callable ``(X_batch, rng) -> X_batch``, optional
        Applied to training batches only (see :mod:`saddlepoint.data`'s augmentations).
    check_finite : bool
        Stop with :class:`TrainingDiverged` when the loss, the gradients or a layer's running
        statistics stop being finite, before the update; the failing batch is undone (buffers
        and dropout generators included), so model and optimizer are left exactly as they were
        before it.
    verbose : int
        1 for a tqdm progress bar (on stderr; off when stderr is not a terminal), 0 for none.
    seed : int or None
        Seeds the shuffling and the augmentations.
    dtype : float32 or float64, optional
        What inputs are converted to; by default the dtype of the model's parameters (float32
        for a model without any), so a float64 model trains on float64 inputs.

    Raises
    ------
    ValueError
        A setting out of its range (the message names it) or an unknown metric.

    Notes
    -----
    ``fit(X, y, epochs, validation_data=(X_val, y_val) | validation_split=0.1)`` returns the
    :class:`History`; ``X`` is anything ``numpy.asarray`` takes, ``(n_samples, ...)``, and ``y``
    holds integer labels ``(n_samples,)`` for a classification loss, or float targets
    ``(n_samples,)`` or ``(n_samples, n_outputs)``. ``predict(X)`` returns the model's outputs,
    ``predict_proba(X)`` their softmax (or sigmoid) for a classifier, ``evaluate(X, y)`` a dict
    of the loss and the metrics. ``save_checkpoint(path)``/``load_checkpoint(path)`` resume a fit
    bit-identically.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(200, 2)).astype(np.float32)
    >>> y = (X[:, 0] + X[:, 1] > 0).astype(np.int64)  # two classes, split by a line
    >>> model = sp.Sequential(sp.Dense(2, 16, rng=0), sp.ReLU(), sp.Dense(16, 2, rng=1))
    >>> trainer = sp.Trainer(
    ...     model, sp.CrossEntropyLoss(), sp.Adam(model.parameters(), lr=0.01),
    ...     metrics=["accuracy"], batch_size=32, seed=0, verbose=0,
    ... )
    >>> history = trainer.fit(X, y, epochs=20, validation_split=0.25)
    >>> history.epochs[-1], sorted(history.to_dict())
    (20, ['epoch', 'loss', 'val_accuracy', 'val_loss'])
    >>> history["val_accuracy"][-1] > 0.9
    True
    >>> trainer.predict(X[:3]).shape  # logits
    (3, 2)
    """

    #: The constraints of the constructor's settings (and of ``fit``'s ``validation_split``).
    constraints = {
        "scheduler_interval": OneOf("epoch", "batch"),
        "metrics": SequenceOf(OneOf(*METRICS)),
        "batch_size": Integer(1),
        "shuffle": Flag(numeric=True),
        "drop_last": Flag(numeric=True),
        "check_finite": Flag(numeric=True),
        "verbose": Flag(numeric=True),
        "validation_split": Real(0, 1, closed="neither"),
    }

    def __init__(
        self,
        model,
        loss,
        optimizer,
        *,
        scheduler=None,
        scheduler_interval: str = "epoch",
        metrics=(),
        batch_size: int = 32,
        shuffle: bool = True,
        drop_last: bool = False,
        callbacks=(),
        augment=None,
        check_finite: bool = True,
        verbose: int = 1,
        seed=None,
        dtype=None,
    ):
        checked = check_params(
            dict(
                scheduler_interval=scheduler_interval,
                metrics=metrics,
                batch_size=batch_size,
                shuffle=shuffle,
                drop_last=drop_last,
                check_finite=check_finite,
                verbose=verbose,
            ),
            self.constraints,
        )
        if augment is not None and not callable(augment):
            raise TypeError(
                f"augment must be a callable (X_batch, rng) -> X_batch, got {type(augment).__name__}"
            )
        self.model, self.loss, self.optimizer = model, loss, optimizer
        self.scheduler, self.scheduler_interval = scheduler, checked["scheduler_interval"]
        self.metrics, self.batch_size = checked["metrics"], checked["batch_size"]
        self.shuffle, self.drop_last, self.callbacks = (
            checked["shuffle"],
            checked["drop_last"],
            list(callbacks),
        )
        self.augment, self.check_finite, self.verbose = augment, checked["check_finite"], checked["verbose"]
        self.rng = np.random.default_rng(seed)
        # The validation split has its own seed, so every fit() call (and a resumed run) holds
        # out the same samples without drawing from the shuffling generator.
        self.split_seed = int(self.rng.integers(2**31))
        self.dtype = model_dtype(model) if dtype is None else np.dtype(dtype)
        self.history = History()
        self.epoch = 0
        self.stop_training = False

    # --- data --------------------------------------------------------------------------------
    def _classification(self) -> bool:
        return is_classification_loss(self.loss)

    def _prepare(self, X, y, name="X"):
        classification = self._classification()
        X, y = check_data(X, y, classification, name)
        return aligned_contiguous(X, dtype=self.dtype), training_targets(y, classification, self.dtype)

    # --- training ----------------------------------------------------------------------------
    def fit(self, X, y, epochs: int, *, validation_data=None, validation_split: float = 0.0) -> History:
        """Trains until ``epochs`` epochs are done in total (a resumed trainer continues from
        its checkpoint's epoch); returns the :class:`History`."""
        epochs = positive_int("epochs", epochs)
        X, y = self._prepare(X, y)
        if validation_data is None and validation_split:
            validation_split = self.constraints["validation_split"].check(
                "validation_split", validation_split
            )
            from sklearn.model_selection import train_test_split

            stratify = y if self._classification() and y.ndim == 1 else None
            X, X_val, y, y_val = train_test_split(
                X, y, test_size=validation_split, random_state=self.split_seed, stratify=stratify
            )
            validation_data = (X_val, y_val)
        if validation_data is not None:
            validation_data = self._prepare(
                *split_pair("validation_data", validation_data), name="validation X"
            )
        if self.drop_last and len(X) < self.batch_size:
            raise ValueError(
                f"batch_size must be at most the {len(X)} training samples with "
                f"drop_last=True, got {self.batch_size}: every batch would be dropped"
            )
        self._check_last_batch(len(X), X.ndim)
        batches = Batches(X, y)
        self.stop_training = False
        for cb in self.callbacks:
            cb.on_train_begin(self)
        bar = self._progress(epochs)
        try:
            while self.epoch < epochs and not self.stop_training:
                self.epoch += 1
                logs = self._train_epoch(batches)
                if validation_data is not None:
                    logs.update({f"val_{k}": v for k, v in self.evaluate(*validation_data).items()})
                self._step_epoch_scheduler(logs)
                self.history.append(logs)
                for cb in self.callbacks:
                    cb.on_epoch_end(self, self.epoch, logs)
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix({k: f"{v:.4f}" for k, v in logs.items()})
        finally:
            if bar is not None:
                bar.close()
        for cb in self.callbacks:
            cb.on_train_end(self)
        return self.history

    def _check_last_batch(self, n_samples: int, ndim: int) -> None:
        """Refuses, before any update, an epoch whose last batch would hold one sample while a
        BatchNorm1d layer trains on rows (2-D data, or the dense part of a CNN on images): it
        cannot normalize one value per channel, and would fail mid-epoch after the other
        batches' updates (PyTorch fails there too). ``(N, C, L)`` data and BatchNorm2d see
        several values per channel in one sample."""
        if self.drop_last or ndim == 3 or n_samples % self.batch_size != 1:
            return
        if any(
            isinstance(m, BatchNorm1d) and not isinstance(m, BatchNorm2d) and m.training
            for _, m in _modules(self.model)
        ):
            raise ValueError(
                f"batch_size {self.batch_size} leaves a last batch of 1 of the {n_samples} "
                f"training samples, which BatchNorm1d cannot normalize in training; pass "
                f"drop_last=True or another batch_size"
            )

    def _progress(self, epochs):
        if not self.verbose or not sys.stderr.isatty():
            return None
        return tqdm(total=epochs, initial=self.epoch, desc="epochs", unit="epoch", file=sys.stderr)

    def _train_epoch(self, batches: Batches) -> dict:
        self.model.train()  # a container skips the gradient of the data itself (Sequential)
        return self._train_batches(batches)

    def _train_batches(self, batches: Batches) -> dict:
        rollback = _BatchRollback(self.model) if self.check_finite else None
        model, loss_fn, optimizer = self.model, self.loss, self.optimizer
        batch_scheduler = self.scheduler if self.scheduler_interval == "batch" else None
        total, count = 0.0, 0
        for b, idx in enumerate(
            minibatches(len(batches.X), self.batch_size, self.rng, self.shuffle, self.drop_last), start=1
        ):
            xb, yb = batches.gather(idx)
            if rollback is not None:
                rollback.save()
            if self.augment is not None:
                xb = self.augment(xb, self.rng)
            try:
                loss = train_step(model, loss_fn, optimizer, xb, yb, rollback)
            except _NotFinite as what:
                if rollback is None:  # only the rollback's checks raise it
                    raise
                self._diverged(rollback, f"{what} at epoch {self.epoch}, batch {b}")
            if batch_scheduler is not None:
                batch_scheduler.step()
            total += loss * len(idx)
            count += len(idx)
        return {"loss": total / count}

    @staticmethod
    def _diverged(rollback: _BatchRollback, what: str) -> NoReturn:
        """Undoes the failing batch and raises :class:`TrainingDiverged`."""
        rollback.restore()
        if all(_core.all_finite(p.data) for p in rollback.params):
            raise TrainingDiverged(
                f"{what}; the model and the optimizer are left as they were before this batch"
            ) from None
        # Only an update that overflowed from finite gradients gets here (a huge learning rate).
        raise TrainingDiverged(
            f"{what}; the previous update already made the weights non-finite "
            f"(the learning rate is far too large)"
        ) from None

    def _step_epoch_scheduler(self, logs: dict) -> None:
        if self.scheduler is None:
            return
        if isinstance(self.scheduler, ReduceLROnPlateau):
            self.scheduler.step(logs.get("val_loss", logs["loss"]))
        elif self.scheduler_interval == "epoch":
            self.scheduler.step()

    # --- evaluation ----------------------------------------------------------------------------
    def predict(self, X, batch_size: int = 1024) -> np.ndarray:
        """Model outputs in eval mode (the mode is restored afterwards)."""
        return predict(self.model, aligned_contiguous(X, dtype=self.dtype), batch_size)

    def predict_proba(self, X, batch_size: int = 1024) -> np.ndarray:
        """Class probabilities in eval mode: the softmax of the outputs (one column per class,
        rows summing to 1) for cross-entropy, the sigmoid of each output for one logit or
        ``BCEWithLogitsLoss``. ValueError for a loss that does not take class labels."""
        if not self._classification():
            raise ValueError(
                f"predict_proba needs a classification loss (CrossEntropyLoss or "
                f"BCEWithLogitsLoss), got {type(self.loss).__name__}; use predict"
            )
        outputs = self.predict(X, batch_size)
        if isinstance(self.loss, BCEWithLogitsLoss) or outputs.shape[1] == 1:
            return _sigmoid(outputs)
        return softmax(outputs)

    def evaluate(self, X, y) -> dict:
        """``{"loss": ..., metric: ...}`` on ``(X, y)`` in eval mode."""
        X, y = self._prepare(X, y)
        outputs = self.predict(X)
        result = {"loss": float(self.loss(outputs, y))}
        for m in self.metrics:
            result[m] = metric_value(m, outputs, y)
        return result

    # --- checkpoints ---------------------------------------------------------------------------
    def _rng_states(self) -> dict:
        states = {"trainer": self.rng.bit_generator.state, "split_seed": self.split_seed}
        for name, module in _modules(self.model):
            if isinstance(getattr(module, "rng", None), np.random.Generator):
                states[name] = module.rng.bit_generator.state
        return states

    def save_checkpoint(self, path) -> None:
        """Everything :meth:`load_checkpoint` needs to continue bit-identically."""
        ckpt.save_checkpoint(
            path,
            model=self.model,
            optimizer=self.optimizer,
            scheduler=self.scheduler,
            epoch=self.epoch,
            rng_states=self._rng_states(),
            history=self.history.values,
        )

    def load_checkpoint(self, path) -> None:
        """Restores model, optimizer, scheduler, epoch, random states and history. The whole
        file is checked first: if any of it does not fit, ValueError and nothing changes."""
        staged = ckpt.stage_checkpoint(
            path, model=self.model, optimizer=self.optimizer, scheduler=self.scheduler
        )
        rng_states = staged.rng_states
        split_seed = ckpt.checked_seed(path, "split_seed", rng_states.get("split_seed"))
        generators = [("trainer", self.rng)] + [
            (name, module.rng)
            for name, module in _modules(self.model)
            if name in rng_states and isinstance(getattr(module, "rng", None), np.random.Generator)
        ]
        states = [
            (generator, ckpt.checked_generator_state(path, name, generator, rng_states.get(name)))
            for name, generator in generators
        ]
        history = History(staged.history)
        staged.commit()
        self.epoch = staged.epoch
        self.history = history
        self.split_seed = split_seed
        for generator, state in states:
            generator.bit_generator.state = state


def _sigmoid(x: np.ndarray) -> np.ndarray:
    """The logistic function, without overflow for large negative inputs."""
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def _modules(model, prefix: str = "model"):
    """``(name, module)`` for the model and every sub-layer."""
    yield prefix, model
    if hasattr(model, "named_children"):
        for name, child in model.named_children():
            yield from _modules(child, f"{prefix}.{name}")
