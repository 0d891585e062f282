"""The course's general guidance, automated: train the model and reference models, compare their
losses, and say whether the trouble is model bias, an optimization issue, overfitting or a
mismatch between the training and test data, with the evidence and the course's remedies.

The course's flowchart (lecture "General Guidance"):

- training loss large: a more flexible model that fits better means *model bias*; a more flexible
  (deeper, larger) model that fits *worse* than a simpler one means an *optimization issue*;
- training loss small, validation loss large: *overfitting*;
- training and validation fine, test bad, and the test features distributed differently from the
  training features: *mismatch*.

"Large" is measured against the loss of the best constant prediction on the training data (class
frequencies for classification, the mean for regression): a loss above ``threshold`` times that
baseline is large.
"""

from __future__ import annotations

import copy
import json
import time
from dataclasses import asdict, dataclass, field, fields

import numpy as np

from .._jobs import check_n_jobs, run_jobs
from ..data.splits import prepare_data
from ..nn import Module, dense_config, from_config, widen_config
from ..optim import Adam
from ..training import Trainer, TrainingDiverged

VERDICTS = ("model bias", "optimization", "overfitting", "mismatch", "healthy")
"""What :func:`guide` can conclude, in the course's words."""

REMEDIES = {
    "model bias": [
        "make the model more flexible: more input features, more hidden units, more layers",
        "the best function the model can express is not good enough; a better optimizer will not change that",
    ],
    "optimization": [
        "use momentum or an adaptive learning rate (Adam, RMSProp)",
        "schedule the learning rate: warmup, then decay",
        "add batch normalization between the layers",
        "start from a shallower model that trains well and grow it",
        "run critical_point() on the trained model: at a saddle point, escape along the eigenvector "
        "of the negative eigenvalue (escape_saddle, or the SaddleEscape callback)",
    ],
    "overfitting": [
        "more training data, or data augmentation",
        "fewer parameters, or parameters shared across inputs (a smaller model, a CNN for images)",
        "early stopping on the validation loss",
        "regularization (weight decay) and dropout",
        "do not constrain the model so much that model bias returns",
    ],
    "mismatch": [
        "collect training data distributed like the test data",
        "more training on the current data does not help: it does not describe the test data",
        "check how the splits were made (time, source, writer, device)",
    ],
    "healthy": ["nothing to fix: report the test score, measured once, at the end"],
}


@dataclass
class ModelReport:
    """One trained model's losses (``*_ratio`` is the loss over the constant-prediction
    baseline) and metric on each split, and its training history."""

    name: str
    n_parameters: int
    train_loss: float
    train_ratio: float
    train_metric: float
    val_loss: float
    val_ratio: float
    val_metric: float
    test_loss: float | None = None
    test_ratio: float | None = None
    test_metric: float | None = None
    seconds: float = 0.0
    diverged: str | None = None  # TrainingDiverged's message when training stopped on NaN/inf
    history: dict = field(default_factory=dict, repr=False)


@dataclass
class FeatureShift:
    """How differently two samples of features are distributed.

    ``smd`` is each feature's standardized mean difference ``|μa − μb| / √((σa² + σb²)/2)``;
    ``auc`` the cross-validated ROC AUC of a logistic regression told to separate the samples
    (0.5: indistinguishable). ``shifted`` when ``auc ≥ 0.7`` or ``max(smd) ≥ 0.5``.
    ``top_features`` holds ``(index, smd)`` of the five largest; ``top_names`` their names
    (the ``feature_names`` given to :func:`feature_shift`, or ``#index`` without them).
    """

    auc: float
    max_smd: float
    mean_smd: float
    top_features: list
    shifted: bool
    top_names: list = field(default_factory=list)

    def __str__(self) -> str:
        names = self.top_names or [f"#{i}" for i, _ in self.top_features]
        top = ", ".join(f"{name}={s:.2f}" for name, (_, s) in zip(names, self.top_features))
        return (
            f"classifier AUC {self.auc:.3f}, standardized mean difference max {self.max_smd:.3f} "
            f"mean {self.mean_smd:.3f} (largest: {top}): "
            + ("shifted" if self.shifted else "no shift detected")
        )


def feature_shift(X_a, X_b, seed=0, max_samples: int = 2000, feature_names=None) -> FeatureShift:
    """Measures the shift between feature samples ``X_a`` (e.g. training) and ``X_b`` (test);
    ``feature_names`` (one per column) name the most shifted features in the report."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X_a = np.asarray(X_a, dtype=np.float64).reshape(len(X_a), -1)
    X_b = np.asarray(X_b, dtype=np.float64).reshape(len(X_b), -1)
    if X_a.shape[1] != X_b.shape[1] or min(len(X_a), len(X_b)) < 2:
        raise ValueError(
            f"X_a and X_b must have at least 2 rows and the same features, got shapes "
            f"{X_a.shape} and {X_b.shape}"
        )
    if feature_names is not None:
        feature_names = [str(name) for name in feature_names]
        if len(feature_names) != X_a.shape[1]:
            raise ValueError(
                f"feature_names must name each of the {X_a.shape[1]} feature columns, got "
                f"{len(feature_names)} names"
            )
    pooled = np.sqrt((X_a.var(axis=0) + X_b.var(axis=0)) / 2)
    gap = np.abs(X_a.mean(axis=0) - X_b.mean(axis=0))
    smd = np.divide(gap, pooled, out=np.where(gap > 0, np.inf, 0.0), where=pooled > 0)
    rng = np.random.default_rng(seed)
    a = X_a[rng.permutation(len(X_a))[:max_samples]]
    b = X_b[rng.permutation(len(X_b))[:max_samples]]
    folds = min(5, len(a), len(b))
    Z, labels = np.vstack([a, b]), np.r_[np.zeros(len(a)), np.ones(len(b))]
    classifier = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    auc = float(
        np.mean(
            cross_val_score(
                classifier,
                Z,
                labels,
                scoring="roc_auc",
                cv=StratifiedKFold(folds, shuffle=True, random_state=seed),
            )
        )
    )
    top = [(int(i), float(smd[i])) for i in np.argsort(-smd)[:5]]
    max_smd = float(np.max(smd))
    names = [feature_names[i] for i, _ in top] if feature_names is not None else []
    return FeatureShift(auc, max_smd, float(np.mean(smd)), top, bool(auc >= 0.7 or max_smd >= 0.5), names)


@dataclass
class Guidance:
    """The verdict of :func:`guide` (one of :data:`VERDICTS`), the reason in a sentence, the
    course's remedies, the evidence (every model's losses, the baseline, the thresholds, the
    feature shift) and the trained models' reports."""

    verdict: str
    reason: str
    remedies: list
    task: str
    metric: str
    baseline_loss: float
    threshold: float
    models: dict
    shift: FeatureShift | None = None
    #: The trained models by name, the loss and the training data as the models saw them
    #: (targets mapped to 0..C-1 or standardized), for the analyses that follow.
    trained: dict = field(default_factory=dict, repr=False)
    loss: object = field(default=None, repr=False)
    train_data: tuple | None = field(default=None, repr=False)

    def to_dict(self) -> dict:
        skip = ("trained", "loss", "train_data", "models", "shift")
        d = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in skip}
        d["models"] = {name: asdict(r) for name, r in self.models.items()}
        d["shift"] = None if self.shift is None else asdict(self.shift)
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def table(self) -> str:
        """The models' losses and metrics as a Markdown table."""
        rows = [
            "| model | parameters | train loss | validation loss | test loss "
            f"| train {self.metric} | validation {self.metric} | test {self.metric} |",
            "|---|---:|---:|---:|---:|---:|---:|---:|",
        ]

        def number(x, digits=4):
            return "—" if x is None else f"{x:.{digits}f}"

        for r in self.models.values():
            rows.append(
                f"| {r.name} | {r.n_parameters} | {number(r.train_loss)} | {number(r.val_loss)} "
                f"| {number(r.test_loss)} | {number(r.train_metric)} | {number(r.val_metric)} "
                f"| {number(r.test_metric)} |"
            )
        return "\n".join(rows)

    def __str__(self) -> str:
        lines = [
            f"verdict: {self.verdict}",
            f"because {self.reason}",
            "",
            f"losses (a loss above {self.threshold:g} × the constant-prediction baseline "
            f"{self.baseline_loss:.4g} is large):",
            self.table(),
        ]
        if self.shift is not None:
            lines += ["", f"training vs test features: {self.shift}"]
        lines += ["", "what to do:"] + [f"- {r}" for r in self.remedies]
        return "\n".join(lines)

    def plot_learning_curves(self, ax=None):
        """Training (solid) and validation (dashed) loss per epoch of every model; needs
        matplotlib."""
        import matplotlib.pyplot as plt

        ax = ax or plt.figure().gca()
        for i, r in enumerate(self.models.values()):
            color = f"C{i}"
            epochs = r.history.get("epoch", [])
            ax.plot(epochs, r.history.get("loss", []), color=color, label=f"{r.name} train")
            if "val_loss" in r.history:
                ax.plot(
                    epochs, r.history["val_loss"], color=color, linestyle="--", label=f"{r.name} validation"
                )
        ax.set(xlabel="epoch", ylabel="loss", yscale="log", title=f"verdict: {self.verdict}")
        ax.legend(fontsize="small")
        return ax


def _build(spec, n_in: int, n_out: int, dtype):
    """A fresh model from a Module (a copy), a factory, or ``"linear"``."""
    if spec == "linear":
        return from_config(dense_config(n_in, n_out, dtype=dtype), rng=0)
    if isinstance(spec, Module):
        return copy.deepcopy(spec)
    if callable(spec):
        model = spec()
        if not isinstance(model, Module):
            raise TypeError(f"a model factory must return a saddlepoint Module, got {type(model).__name__}")
        return model
    raise TypeError(
        f"a model must be a saddlepoint Module, a function returning one, or 'linear', "
        f"got {type(spec).__name__}"
    )


def _train_and_score(name: str, trainer, splits: dict, epochs: int, baseline: float) -> ModelReport:
    """Fits ``trainer`` on the training split (validating on "val") and scores every split."""

    begin = time.perf_counter()
    diverged = None
    try:
        trainer.fit(*splits["train"], epochs, validation_data=splits["val"])
    except TrainingDiverged as error:  # the model keeps its last finite weights
        diverged = str(error)
    seconds = time.perf_counter() - begin
    metric = trainer.metrics[0]
    scores = {}
    for split, data in splits.items():
        score = trainer.evaluate(*data)
        scores.update(
            {
                f"{split}_loss": score["loss"],
                f"{split}_ratio": score["loss"] / baseline,
                f"{split}_metric": score[metric],
            }
        )
    n_parameters = sum(p.data.size for p in trainer.model.parameters())
    return ModelReport(
        name, n_parameters, seconds=seconds, history=trainer.history.to_dict(), diverged=diverged, **scores
    )


def _fit_model(name, net, loss, make_optimizer, metric, batch_size, seed, verbose, splits, epochs, baseline):
    """One of the guide's models trained and scored: its name, report and trained net."""
    trainer = Trainer(
        net,
        loss,
        make_optimizer(net.parameters()),
        metrics=[metric],
        batch_size=batch_size,
        seed=seed,
        verbose=verbose,
    )
    return name, _train_and_score(name, trainer, splits, epochs, baseline), net


def _decide(reports: dict, threshold: float, margin: float, shift) -> tuple[str, str]:
    model = reports["model"]
    simpler, larger = reports.get("simpler"), reports.get("larger")

    def lower(a, b):  # a fits the training data better than b
        return a.train_loss < b.train_loss * (1 - margin)

    if model.diverged:
        return "optimization", (
            f"training diverged: {model.diverged}; the learning rate is too "
            f"large for this model, or the model needs normalization"
        )
    if model.train_ratio > threshold:
        if simpler is not None and lower(simpler, model):
            return "optimization", (
                f"the simpler reference model reaches a training loss of {simpler.train_loss:.4g}, below "
                f"the model's {model.train_loss:.4g}; the model can express everything the simpler one "
                f"can, so its optimization failed to find good parameters"
            )
        if larger is not None and lower(model, larger) and larger.train_ratio > threshold:
            return "optimization", (
                f"the larger model's training loss {larger.train_loss:.4g} is higher than the "
                f"model's {model.train_loss:.4g}, though it can express more; its optimization fails"
            )
        if larger is not None and lower(larger, model):
            return "model bias", (
                f"the training loss {model.train_loss:.4g} is large ({model.train_ratio:.2f} × the "
                f"baseline) and the larger model gets it down to {larger.train_loss:.4g}: the model is "
                f"too simple to fit the data"
            )
        if larger is not None:
            # A loss is lower-is-better: say which way the larger model's loss went.
            if larger.train_loss < model.train_loss:
                compared = (
                    f"the larger model's training loss {larger.train_loss:.4g} is lower, but "
                    f"by less than the {margin:.0%} margin that counts as fitting better"
                )
            else:
                compared = (
                    f"the larger model's training loss {larger.train_loss:.4g} is no lower than the model's"
                )
            return "model bias", (
                f"the training loss {model.train_loss:.4g} is large ({model.train_ratio:.2f} × the "
                f"baseline) and no model compared fits the training data clearly better ({compared}); "
                f"if the features do not determine the target, more features are what helps"
            )
        return "model bias", (
            f"the training loss {model.train_loss:.4g} is large ({model.train_ratio:.2f} × the baseline); "
            f"no larger model could be built or was given, so an optimization issue is not ruled "
            f"out (give larger=)"
        )
    if model.val_ratio > threshold and model.val_loss > model.train_loss:
        return "overfitting", (
            f"the training loss {model.train_loss:.4g} is small ({model.train_ratio:.3f} × the "
            f"baseline) but the validation loss {model.val_loss:.4g} is large "
            f"({model.val_ratio:.3f} × the baseline)"
        )
    if model.test_ratio is not None and model.test_ratio > threshold and model.test_loss > model.train_loss:
        fine = (
            f"training and validation losses are small ({model.train_loss:.4g}, "
            f"{model.val_loss:.4g}) but the test loss is {model.test_loss:.4g}"
        )
        if shift is not None and shift.shifted:
            return "mismatch", (
                f"{fine}, and the test features are distributed differently from the "
                f"training features ({shift})"
            )
        return "mismatch", (
            f"{fine}; the features show no shift ({shift}), so the relation between features and "
            f"target may differ in the test data, or the validation split is too small (or was used "
            f"for too many choices) to stand for unseen data"
        )
    return "healthy", (
        f"the training loss {model.train_loss:.4g} and validation loss {model.val_loss:.4g} are small "
        f"({model.train_ratio:.3f} and {model.val_ratio:.3f} × the baseline)"
        + (f" and so is the test loss {model.test_loss:.4g}" if model.test_loss is not None else "")
    )


def wider(model):
    """A more flexible copy of ``model``'s architecture, freshly initialized (seed 0), or None:
    built from ``model.config()`` with every hidden width doubled (a Dense layer alone becomes a
    one-hidden-layer ReLU network of 64 units; see :func:`saddlepoint.nn.widen_config`). None for
    a model that cannot describe itself, has no Dense layer, or holds a layer whose widths are
    unknown."""

    try:
        config = model.config()
    except (AttributeError, TypeError):  # a layer that does not describe itself
        return None
    wide = widen_config(config)
    return None if wide is None else from_config(wide, rng=0)


def guide(
    model,
    X,
    y,
    *,
    validation_data=None,
    validation_split: float = 0.2,
    test_data=None,
    simpler="linear",
    larger="auto",
    task: str | None = None,
    optimizer=None,
    epochs: int = 50,
    batch_size: int = 32,
    threshold: float = 0.1,
    margin: float = 0.1,
    seed=0,
    verbose: int = 0,
    feature_names=None,
    n_jobs=None,
) -> Guidance:
    """Trains ``model`` and the reference models and diagnoses the model as the course does.

    Parameters
    ----------
    model : Module or a function returning a fresh Module
        A Module is trained in place; the references are trained from scratch.
    X, y : training data (features already scaled as the model should see them)
    validation_data : (X_val, y_val), optional
        Without it, ``validation_split`` of ``(X, y)`` is held out (stratified for classes).
    test_data : (X_test, y_test), optional
        Needed to detect a mismatch.
    simpler : ``"linear"`` (default: one Dense layer), a Module, a factory, or None
    larger : ``"auto"`` (default: :func:`wider`, the model's architecture with every hidden width
        doubled, or one hidden layer for a linear model), a Module or factory for a more flexible
        (larger or deeper) model, or None
    task : ``"classification"`` (cross-entropy, accuracy) or ``"regression"`` (MSE on
        standardized targets, R²); inferred from ``y`` by default
    optimizer : function ``parameters -> Optimizer``; default ``Adam(lr=1e-3)``
    epochs, batch_size, seed, verbose : training of every model (see :class:`Trainer`)
    threshold : a loss above ``threshold`` × the constant-prediction baseline is large
    margin : one model fits better than another when its training loss is lower by this
        fraction
    feature_names : the names of ``X``'s columns, for the feature-shift report (default
        ``#index``)
    n_jobs : int or None, default None
        Models trained at once (up to three), through ``joblib.Parallel``, as scikit-learn's
        ``n_jobs`` (None: one at a time unless a ``joblib.parallel_config`` context says
        otherwise; on a Ray or Dask cluster under ``parallel_config(backend="ray" | "dask")``).
        The models, factories and ``optimizer`` must then be picklable by cloudpickle; a Module
        ``model`` trained in another process has its trained state copied back into it. The
        verdict, reports and models are the serial run's exactly.

    Returns
    -------
    Guidance
        ``verdict`` (one of :data:`VERDICTS`), the evidence in a sentence, the remedies, and the
        reports of every model trained.

    Raises
    ------
    ValueError
        A setting out of range, or data that does not fit the model.

    Examples
    --------
    A linear model on a sine: too simple, whatever the optimizer does.

    >>> from saddlepoint import diagnose
    >>> rng = np.random.default_rng(0)
    >>> X = rng.uniform(-2, 2, size=(300, 1))
    >>> y = np.sin(3 * X[:, 0])
    >>> guidance = diagnose.guide(sp.Dense(1, 1, dtype=np.float64, rng=0), X, y, epochs=10)
    >>> guidance.verdict
    'model bias'
    """

    if not 0 < threshold < 1 or not 0 <= margin < 1:
        raise ValueError(f"threshold must be in (0, 1) and margin in [0, 1), got {threshold} and {margin}")
    n_jobs = check_n_jobs(n_jobs)
    data = prepare_data(X, y, validation_data, validation_split, test_data, task, seed)
    (X, y), (X_test, _), loss, metric = data.train, data.test, data.loss, data.metric
    baseline, n_out = data.baseline, data.n_out
    make_optimizer = optimizer or (lambda params: Adam(params, lr=1e-3))
    n_in = int(np.prod(X.shape[1:]))

    main = model if isinstance(model, Module) else _build(model, n_in, n_out, np.float32)
    if isinstance(larger, str) and larger == "auto":
        larger = wider(main)
    splits = {"train": data.train, "val": data.val}
    if X_test is not None:
        splits["test"] = data.test
    specs = {"model": main, "simpler": simpler, "larger": larger}
    jobs = [
        (name, main if name == "model" else _build(spec, n_in, n_out, np.float32))
        for name, spec in specs.items()
        if spec is not None
    ]
    settings = (loss, make_optimizer, metric, batch_size, seed, verbose, splits, epochs, baseline)
    reports, trained = {}, {}
    for name, report, net in run_jobs(_fit_model, ((name, net, *settings) for name, net in jobs), n_jobs):
        if name == "model" and net is not main:  # trained in another process: keep it in place
            main.load_state_dict(net.state_dict())
            net = main
        reports[name], trained[name] = report, net
    shift = feature_shift(X, X_test, seed=seed, feature_names=feature_names) if X_test is not None else None
    verdict, reason = _decide(reports, threshold, margin, shift)
    remedies = list(REMEDIES[verdict])
    falling = _still_falling(reports["model"].history.get("loss", []))
    if falling is not None and verdict in ("model bias", "optimization"):
        reason += (
            f"; but the model's training loss was still falling ({falling:.0%} over its "
            f"last epochs), so train longer before acting on this"
        )
        remedies.insert(0, "train longer (more epochs, or a larger learning rate) and diagnose again")
    return Guidance(
        verdict,
        reason,
        remedies,
        data.task,
        metric,
        baseline,
        threshold,
        reports,
        shift,
        trained,
        loss,
        (X, y),
    )


def _still_falling(losses, window: int = 5, fraction: float = 0.01) -> float | None:
    """The relative fall of the mean training loss from the ``window`` epochs before the last
    ``window`` to the last ones, when it is more than ``fraction``; else None."""
    if len(losses) < 2 * window:
        return None
    before, last = np.mean(losses[-2 * window : -window]), np.mean(losses[-window:])
    fall = (before - last) / before if before > 0 else 0.0
    return float(fall) if fall > fraction else None
