"""scikit-learn estimators: :class:`MLPClassifier` and :class:`MLPRegressor`.

Drop-in replacements for ``sklearn.neural_network.MLPClassifier`` / ``MLPRegressor``: the same
parameter names, defaults, fitted attributes and stopping rule, trained by saddlepoint's Rust
kernels. With the same ``random_state`` they start from the same weights (scikit-learn's Glorot
uniform draw, in its order) and visit the same mini-batches, so they reach comparable scores;
they differ from scikit-learn only where written below.

What matches scikit-learn
    The loss (half squared error; cross-entropy over a softmax for several classes, binary
    cross-entropy over logistic outputs for two classes and for multi-label targets), the L2
    penalty ``alpha/2·‖W‖²/n_batch`` on the weights only (gradient ``alpha·W/n_batch``, with
    ``n_batch`` the sum of the batch's sample weights), ``batch_size="auto"`` =
    ``min(200, n_samples)``, ``loss_curve_`` as the sample-weighted mean of the batch losses,
    the stopping rule (stop once the training loss has not dropped by ``tol`` below its best,
    or with ``early_stopping`` the validation score has not risen by ``tol`` above its best,
    for more than ``n_iter_no_change`` epochs; ``learning_rate="adaptive"`` divides the rate by
    5 instead until it is below 1e-6), the ``ConvergenceWarning`` at ``max_iter``, and the
    validation split of ``early_stopping`` (stratified for single-output classification).

Where it differs
    * ``solver="lbfgs"`` is refused (``ValueError``): saddlepoint trains by mini-batches; a
      full-batch quasi-Newton method is not one of its optimizers.
    * Sparse input is refused (``TypeError``): the kernels take dense arrays.
    * SGD momentum follows PyTorch's formula (:class:`~saddlepoint.optim.SGD`): the same
      iterates as scikit-learn's while the learning rate is constant; with ``invscaling`` or
      ``adaptive`` the new rate also scales the accumulated momentum.
    * Adam follows PyTorch's formula (:class:`~saddlepoint.optim.Adam`): ``epsilon`` is added
      to the bias-corrected root, where scikit-learn adds it to the uncorrected one (a
      difference of order ``epsilon``).
    * The computation runs in the dtype of ``X`` (float32 or float64, as scikit-learn), with
      saddlepoint's kernels, so results agree with scikit-learn's to rounding, not bit for bit.

saddlepoint's own parameters
    ``batch_norm`` (a BatchNorm1d after each hidden Dense layer), ``dropout`` (after each hidden
    activation), ``schedule`` (``"none"``, ``"step"``, ``"exponential"``, ``"cosine"``: a
    learning-rate schedule over ``max_iter`` epochs, with ``learning_rate="constant"`` only),
    ``warmup`` (epochs of linear warmup before it) and ``num_threads`` (saddlepoint's thread
    count while the estimator fits and predicts; None keeps the current one).
"""

from __future__ import annotations

import contextlib
import warnings
from numbers import Integral, Real

import numpy as np
from scipy.special import expit
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, is_classifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import accuracy_score, r2_score
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils import check_random_state, column_or_1d
from sklearn.utils._param_validation import Interval, Options, StrOptions
from sklearn.utils.multiclass import _check_partial_fit_first_call, type_of_target, unique_labels
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data

from . import optim
from ._core import get_num_threads, set_num_threads
from .losses import BCEWithLogitsLoss, CrossEntropyLoss, MSELoss, log_softmax, softmax
from .nn import Dense, Dropout
from .nn.builders import mlp_config
from .nn.module import aligned_contiguous
from .nn.scratch import reusing_buffers
from .nn.spec import from_config
from .training.trainer import Batches

__all__ = ["MLPClassifier", "MLPRegressor", "expected_failed_checks"]

#: scikit-learn's activation names -> saddlepoint's layer names.
_ACTIVATIONS = {"identity": "identity", "logistic": "sigmoid", "tanh": "tanh", "relu": "relu"}
#: scikit-learn stops the adaptive rate below this.
_ADAPTIVE_MIN_LR = 1e-6


@contextlib.contextmanager
def _threads(num_threads):
    """saddlepoint's thread count set to ``num_threads`` inside (None: unchanged)."""
    if num_threads is None:
        yield
        return
    before = get_num_threads()
    set_num_threads(int(num_threads))
    try:
        yield
    finally:
        set_num_threads(before)


class _BaseMLP(BaseEstimator):
    """What the classifier and the regressor share: the model, the training loop, the stopping
    rule. Subclasses give the target encoding, the output activation and the score."""

    loss_curve_: list[float]
    validation_scores_: list[float] | None
    best_validation_score_: float | None
    best_loss_: float | None
    _best_state: dict | None
    _optimizer: optim.Optimizer

    _parameter_constraints: dict = {
        "hidden_layer_sizes": ["array-like", Interval(Integral, 1, None, closed="left")],
        "activation": [StrOptions(set(_ACTIVATIONS))],
        "solver": [StrOptions({"sgd", "adam"})],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "batch_size": [StrOptions({"auto"}), Interval(Integral, 1, None, closed="left")],
        "learning_rate": [StrOptions({"constant", "invscaling", "adaptive"})],
        "learning_rate_init": [Interval(Real, 0, None, closed="neither")],
        "power_t": [Interval(Real, 0, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "shuffle": ["boolean"],
        "random_state": ["random_state"],
        "tol": [Interval(Real, 0, None, closed="left")],
        "verbose": ["verbose"],
        "warm_start": ["boolean"],
        "momentum": [Interval(Real, 0, 1, closed="left")],
        "nesterovs_momentum": ["boolean"],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "beta_1": [Interval(Real, 0, 1, closed="left")],
        "beta_2": [Interval(Real, 0, 1, closed="left")],
        "epsilon": [Interval(Real, 0, None, closed="neither")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left"), Options(Real, {np.inf})],
        "batch_norm": ["boolean"],
        "dropout": [Interval(Real, 0, 1, closed="left")],
        "schedule": [StrOptions({"none", "step", "exponential", "cosine"})],
        "warmup": [Interval(Integral, 0, None, closed="left")],
        "num_threads": [None, Interval(Integral, 1, None, closed="left")],
    }

    def __init__(
        self,
        hidden_layer_sizes=(100,),
        activation="relu",
        *,
        solver="adam",
        alpha=0.0001,
        batch_size="auto",
        learning_rate="constant",
        learning_rate_init=0.001,
        power_t=0.5,
        max_iter=200,
        shuffle=True,
        random_state=None,
        tol=1e-4,
        verbose=False,
        warm_start=False,
        momentum=0.9,
        nesterovs_momentum=True,
        early_stopping=False,
        validation_fraction=0.1,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-8,
        n_iter_no_change=10,
        batch_norm=False,
        dropout=0.0,
        schedule="none",
        warmup=0,
        num_threads=None,
    ):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.batch_norm = batch_norm
        self.dropout = dropout
        self.schedule = schedule
        self.warmup = warmup
        self.num_threads = num_threads

    # --- hooks of the subclasses -------------------------------------------------------------
    def _validate_input(self, X, y, incremental: bool, reset: bool):
        """``(X, Y)`` checked, ``Y`` 2-D: the binarized labels or the regression targets."""
        raise NotImplementedError

    def _score(self, X, y, sample_weight=None) -> float:
        raise NotImplementedError

    # --- checks --------------------------------------------------------------------------------
    def _check_params(self) -> None:
        if self.solver == "lbfgs":
            raise ValueError(
                "solver='lbfgs' is not supported by saddlepoint.sklearn: saddlepoint trains by "
                "mini-batches and has no full-batch quasi-Newton optimizer; use solver='adam' "
                "or solver='sgd'"
            )
        self._validate_params()
        if self.schedule != "none" and self.learning_rate != "constant":
            raise ValueError(
                "schedule sets the learning rate itself and needs learning_rate='constant', got "
                f"schedule={self.schedule!r} with learning_rate={self.learning_rate!r}"
            )

    def _hidden_sizes(self) -> list[int]:
        sizes = self.hidden_layer_sizes
        sizes = list(sizes) if hasattr(sizes, "__iter__") else [sizes]
        bad = [s for s in sizes if not isinstance(s, (Integral, np.integer)) or s <= 0]
        if bad:
            raise ValueError(
                f"hidden_layer_sizes must hold positive integers, got {self.hidden_layer_sizes!r}"
            )
        return [int(s) for s in sizes]

    # --- the model -----------------------------------------------------------------------------
    def _initialize(self, Y: np.ndarray, n_features: int, dtype) -> None:
        """A new model with scikit-learn's initial weights, and the fitted attributes reset."""
        self.n_iter_ = 0
        self.t_ = 0
        self.n_outputs_ = Y.shape[1]
        layer_units = [n_features, *self._hidden_sizes(), self.n_outputs_]
        self.n_layers_ = len(layer_units)
        self.out_activation_ = self._output_activation()
        config = mlp_config(
            layer_units,
            _ACTIVATIONS[self.activation],
            batch_norm=self.batch_norm,
            dropout=self.dropout,
            dtype=dtype,
        )
        # The Dense weights are drawn below; the builder's own draw is overwritten, so a fixed
        # seed for it keeps random_state's stream the same as scikit-learn's.
        self._model = from_config(config, rng=0)
        # scikit-learn's Glorot-uniform draw, in its order (a layer's weights, then its
        # intercepts), so a random_state gives the same start in both libraries.
        factor = 2.0 if self.activation == "logistic" else 6.0
        for layer in self._dense_layers():
            bound = np.sqrt(factor / (layer.in_features + layer.out_features))
            coef = self._random_state.uniform(-bound, bound, (layer.in_features, layer.out_features))
            intercept = self._random_state.uniform(-bound, bound, layer.out_features)
            layer.weight.data[...] = coef.T
            layer.bias.data[...] = intercept
        # Dropout masks follow random_state too (drawn after the weights, so that without
        # dropout the stream stays scikit-learn's).
        for layer in self._model.modules():
            if isinstance(layer, Dropout):
                layer.rng = np.random.default_rng(self._random_state.randint(np.iinfo(np.int32).max))
        self._bind_coefs()
        self.loss_curve_ = []
        self._no_improvement_count = 0
        if self.early_stopping:
            self.validation_scores_ = []
            self.best_validation_score_ = -np.inf
            self.best_loss_ = None
        else:
            self.best_loss_ = np.inf
            self.validation_scores_ = None
            self.best_validation_score_ = None
        self._best_state = None

    def _dense_layers(self) -> list:
        return [m for m in self._model.modules() if isinstance(m, Dense)]

    def _bind_coefs(self) -> None:
        """``coefs_`` and ``intercepts_`` as views of the model's parameters: ``coefs_[i]`` is
        the i-th Dense layer's ``weight`` transposed, scikit-learn's ``(in, out)`` layout."""
        dense = self._dense_layers()
        self.coefs_ = [layer.weight.data.T for layer in dense]
        self.intercepts_ = [layer.bias.data for layer in dense]

    def __setstate__(self, state) -> None:
        # A pickle copies coefs_ apart from the model's weights; make them views again.
        super().__setstate__(state)
        if "_model" in self.__dict__:
            self._bind_coefs()

    def _new_optimizer(self) -> None:
        weights = [layer.weight for layer in self._dense_layers()]
        weight_ids = {id(p) for p in weights}
        others = [p for p in self._model.parameters() if id(p) not in weight_ids]
        # The L2 penalty is on the weights only; its factor alpha/n_batch is set per batch.
        groups = [{"params": weights, "weight_decay": 0.0}, {"params": others, "weight_decay": 0.0}]
        if self.solver == "sgd":
            momentum = float(self.momentum)
            self._optimizer = optim.SGD(
                groups,
                lr=self.learning_rate_init,
                momentum=momentum,
                nesterov=bool(self.nesterovs_momentum) and momentum > 0,
            )
        else:
            self._optimizer = optim.Adam(
                groups, lr=self.learning_rate_init, betas=(self.beta_1, self.beta_2), eps=self.epsilon
            )
        self._scheduler = self._new_scheduler()

    def _new_scheduler(self):
        if self.schedule == "none" and self.warmup == 0:
            return None
        opt = self._optimizer
        decay_epochs = max(1, self.max_iter - self.warmup)
        decays = {
            "step": lambda: optim.StepLR(opt, step_size=max(1, decay_epochs // 3), gamma=0.1),
            "exponential": lambda: optim.ExponentialLR(opt, gamma=0.01 ** (1 / decay_epochs)),
            "cosine": lambda: optim.CosineAnnealingLR(opt, T_max=decay_epochs),
        }
        if self.warmup == 0:
            return decays[self.schedule]()
        warmup = optim.LinearWarmup(opt, warmup_steps=self.warmup)
        if self.schedule == "none":
            return warmup
        return optim.SequentialLR(opt, [warmup, decays[self.schedule]()], milestones=[self.warmup])

    def _set_lr(self, lr: float) -> None:
        for group in self._optimizer.param_groups:
            group["lr"] = lr

    def _lr(self) -> float:
        return float(self._optimizer.param_groups[0]["lr"])

    # --- the loss, on scikit-learn's scale -----------------------------------------------------
    def _new_loss(self):
        return {"softmax": CrossEntropyLoss, "logistic": BCEWithLogitsLoss, "identity": MSELoss}[
            self.out_activation_
        ]()

    def _batch_loss(self, criterion, z, target, weight):
        """scikit-learn's batch loss (without the L2 term) and its gradient with respect to the
        last layer's output ``z``: ``(act(z) - y)·w_i/Σw``, as scikit-learn's ``deltas``."""
        loss = criterion(z, target)
        grad = criterion.backward()
        n, k = z.shape
        # saddlepoint's losses are means over all entries; scikit-learn's binary cross-entropy
        # sums over the outputs, and its squared error is halved with a gradient (y' - y)/n.
        if self.out_activation_ == "logistic":
            loss, scale = loss * k, float(k)
        elif self.out_activation_ == "identity":
            loss, scale = loss / 2, k / 2
        else:
            scale = 1.0
        if weight is None:
            if scale != 1.0:
                grad *= scale
            return loss, grad
        total = weight.sum()
        grad *= ((scale * n / total) * weight)[:, None]
        return self._weighted_loss(z, target, weight, total), grad

    def _weighted_loss(self, z, target, weight, total) -> float:
        if self.out_activation_ == "softmax":
            per_sample = -log_softmax(z)[np.arange(len(z)), target]
        elif self.out_activation_ == "logistic":
            per_sample = (np.maximum(z, 0) - z * target + np.log1p(np.exp(-np.abs(z)))).sum(axis=1)
        else:
            per_sample = 0.5 * ((z - target) ** 2).mean(axis=1)
        return float(np.dot(weight, per_sample) / total)

    def _training_target(self, Y: np.ndarray, dtype) -> np.ndarray:
        if self.out_activation_ == "softmax":
            return aligned_contiguous(Y.argmax(axis=1), dtype=np.int64)
        return aligned_contiguous(Y, dtype=dtype)

    # --- forward for predictions ---------------------------------------------------------------
    def _forward(self, X, check_input: bool = True) -> np.ndarray:
        """The output activations ``(n_samples, n_outputs_)`` on ``X``."""
        if check_input:
            X = validate_data(self, X, dtype=(np.float64, np.float32), reset=False)
        dtype = self.coefs_[0].dtype
        X = aligned_contiguous(X, dtype=dtype)
        model = self._model
        with _threads(self.num_threads):
            model.eval()
            try:
                z = np.array(model.forward(X), copy=True)
            finally:
                model.train()
        if self.out_activation_ == "softmax":
            return softmax(z)
        if self.out_activation_ == "logistic":
            return expit(z)
        return z

    # --- training ------------------------------------------------------------------------------
    def _fit(self, X, y, sample_weight=None, incremental: bool = False):
        self._check_params()
        first_pass = not hasattr(self, "coefs_") or (not self.warm_start and not incremental)
        X, Y = self._validate_input(X, y, incremental, reset=first_pass)
        if sample_weight is not None:
            sample_weight = _check_sample_weight(sample_weight, X)
        if Y.ndim == 1:
            Y = Y.reshape(-1, 1)
        self._random_state = check_random_state(self.random_state)
        if first_pass:
            self._initialize(Y, X.shape[1], X.dtype)
        elif Y.shape[1] != self.n_outputs_:
            raise ValueError(f"y must have {self.n_outputs_} outputs as in the earlier fit, got {Y.shape[1]}")
        dtype = self.coefs_[0].dtype
        X = aligned_contiguous(X, dtype=dtype)
        if not incremental or not hasattr(self, "_optimizer"):
            self._new_optimizer()
        if self.early_stopping and incremental:
            raise ValueError("partial_fit does not support early_stopping=True")
        with _threads(self.num_threads):
            self._fit_stochastic(X, Y, sample_weight, incremental)
        self._bind_coefs()
        if not all(np.isfinite(p.data).all() for p in self._model.parameters()):
            raise ValueError(
                "Solver produced non-finite parameter weights. The input data may contain large "
                "values and need to be preprocessed."
            )
        return self

    def _split_validation(self, X, Y, sample_weight):
        stratify = Y if is_classifier(self) and self.n_outputs_ == 1 else None
        arrays = [X, Y] if sample_weight is None else [X, Y, sample_weight]
        parts = train_test_split(
            *arrays, random_state=self._random_state, test_size=self.validation_fraction, stratify=stratify
        )
        X_train, X_val, Y_train, Y_val = parts[:4]
        w_train, w_val = (parts[4], parts[5]) if sample_weight is not None else (None, None)
        if X_val.shape[0] < 2:
            raise ValueError(
                "The validation set is too small. Increase 'validation_fraction' or the size of your dataset."
            )
        y_val = self._label_binarizer.inverse_transform(Y_val) if is_classifier(self) else Y_val
        if not is_classifier(self) and y_val.shape[1] == 1:
            y_val = y_val.ravel()
        return X_train, Y_train, w_train, X_val, y_val, w_val

    def _fit_stochastic(self, X, Y, sample_weight, incremental: bool) -> None:
        if self.early_stopping:
            X_train, Y_train, w_train, X_val, y_val, w_val = self._split_validation(X, Y, sample_weight)
        else:
            X_train, Y_train, w_train = X, Y, sample_weight
            X_val = y_val = w_val = None
        dtype = X_train.dtype
        target = self._training_target(Y_train, dtype)
        if w_train is not None:
            w_train = aligned_contiguous(w_train, dtype=dtype)
        n_samples = X_train.shape[0]
        if self.batch_size == "auto":
            batch_size = min(200, n_samples)
        else:
            if self.batch_size > n_samples:
                warnings.warn(
                    "Got `batch_size` less than 1 or larger than sample size. It is going to be clipped"
                )
            batch_size = int(np.clip(self.batch_size, 1, n_samples))
        batches = self._batches(n_samples, batch_size)
        model, opt, criterion = self._model, self._optimizer, self._new_loss()
        weight_group = opt.param_groups[0]
        weights = [layer.weight.data for layer in self._dense_layers()]
        alpha = float(self.alpha)
        sample_idx = np.arange(n_samples)
        gathered = Batches(X_train, target)  # shuffled batches into reused buffers, not copies
        model.train()
        for _ in range(self.max_iter):
            if self.shuffle:
                # sklearn.utils.shuffle's draw, without its argument checks (half the time of
                # a small fit): the same order from the same random state.
                order = np.arange(n_samples)
                self._random_state.shuffle(order)
                sample_idx = sample_idx[order]
            accumulated_loss = 0.0
            for batch in batches:
                idx = sample_idx[batch]  # in order without shuffle
                xb, tb = gathered.gather(idx)
                wb = None if w_train is None else w_train[idx]
                n_batch = batch.stop - batch.start
                weight_sum = n_batch if wb is None else float(wb.sum())
                with reusing_buffers():
                    loss, grad = self._batch_loss(criterion, model.forward(xb), tb, wb)
                    opt.zero_grad()
                    model.backward(grad)
                if alpha:
                    loss += (
                        0.5 * alpha * sum(float(np.dot(w.ravel(), w.ravel())) for w in weights) / weight_sum
                    )
                weight_group["weight_decay"] = alpha / weight_sum if weight_sum > 0 else 0.0
                opt.step()
                accumulated_loss += loss * n_batch
            self.n_iter_ += 1
            self.loss_ = accumulated_loss / n_samples
            self.t_ += n_samples
            self.loss_curve_.append(self.loss_)
            if self.verbose:
                print("Iteration %d, loss = %.8f" % (self.n_iter_, self.loss_))
            self._update_no_improvement_count(X_val, y_val, w_val)
            self._iteration_ends()
            if self._no_improvement_count > self.n_iter_no_change:
                if self._should_stop():
                    break
                self._no_improvement_count = 0
            if incremental:
                break
            if self.n_iter_ == self.max_iter:
                warnings.warn(
                    "Stochastic Optimizer: Maximum iterations (%d) reached and the optimization "
                    "hasn't converged yet." % self.max_iter,
                    ConvergenceWarning,
                )
        if self.early_stopping and self._best_state is not None:
            model.load_state_dict(self._best_state)

    def _batches(self, n_samples: int, batch_size: int) -> list[slice]:
        """The slices of an epoch's batches, as ``sklearn.utils.gen_batches``; with
        ``batch_norm`` a last batch of one sample joins the one before (batch statistics need
        two samples)."""
        batches = [
            slice(start, min(start + batch_size, n_samples)) for start in range(0, n_samples, batch_size)
        ]
        if self.batch_norm:
            if batch_size < 2:
                raise ValueError(
                    f"batch_norm needs batches of at least 2 samples, got batch_size={self.batch_size!r} "
                    f"with {n_samples} training samples"
                )
            if len(batches) > 1 and batches[-1].stop - batches[-1].start == 1:
                batches[-2:] = [slice(batches[-2].start, n_samples)]
        return batches

    def _update_no_improvement_count(self, X_val, y_val, w_val) -> None:
        if self.early_stopping:
            # A warm start may switch early stopping on after a fit without it.
            scores = self.validation_scores_ if self.validation_scores_ is not None else []
            best = self.best_validation_score_ if self.best_validation_score_ is not None else -np.inf
            self._bind_coefs()
            score = self._score(X_val, y_val, sample_weight=w_val)
            scores.append(score)
            self.validation_scores_ = scores
            if self.verbose:
                print("Validation score: %f" % score)
            if score < best + self.tol:
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            if score > best:
                best = score
                self._best_state = {k: v.copy() for k, v in self._model.state_dict().items()}
            self.best_validation_score_ = best
        else:
            best_loss = self.best_loss_ if self.best_loss_ is not None else np.inf
            if self.loss_curve_[-1] > best_loss - self.tol:
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            self.best_loss_ = min(best_loss, self.loss_curve_[-1])

    def _iteration_ends(self) -> None:
        """scikit-learn's per-epoch rate update (``invscaling``), then the schedule's step."""
        if self.solver == "sgd" and self.learning_rate == "invscaling":
            self._set_lr(float(self.learning_rate_init) / (self.t_ + 1) ** self.power_t)
        if self._scheduler is not None:
            self._scheduler.step()

    def _should_stop(self) -> bool:
        """Whether training stops after ``n_iter_no_change`` epochs without improvement; the
        adaptive rate is divided by 5 instead while it is at least 1e-6."""
        if self.early_stopping:
            msg = "Validation score did not improve more than tol=%f for %d consecutive epochs."
        else:
            msg = "Training loss did not improve more than tol=%f for %d consecutive epochs."
        msg = msg % (self.tol, self.n_iter_no_change)
        if self.solver != "sgd" or self.learning_rate != "adaptive":
            if self.verbose:
                print(msg + " Stopping.")
            return True
        if self._lr() <= _ADAPTIVE_MIN_LR:
            if self.verbose:
                print(msg + " Learning rate too small. Stopping.")
            return True
        self._set_lr(self._lr() / 5.0)
        if self.verbose:
            print(msg + " Setting learning rate to %f" % self._lr())
        return False

    def fit(self, X, y, sample_weight=None):
        """Fit the model to ``X`` (n_samples, n_features) and ``y`` (n_samples,) or
        (n_samples, n_outputs); ``sample_weight`` (n_samples,) weights each sample's loss.

        Returns
        -------
        self
        """
        return self._fit(X, y, sample_weight=sample_weight, incremental=False)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = False
        return tags


class MLPClassifier(ClassifierMixin, _BaseMLP):
    """Multi-layer perceptron classifier, trained by saddlepoint (see the module docstring for
    what matches ``sklearn.neural_network.MLPClassifier`` and what differs).

    Several classes: a softmax output and cross-entropy. Two classes, or a 2-D 0/1 target of
    several labels (multi-label): logistic outputs and binary cross-entropy.

    Parameters
    ----------
    hidden_layer_sizes : int or sequence of int, default (100,)
    activation : {"identity", "logistic", "tanh", "relu"}, default "relu"
    solver : {"adam", "sgd"}, default "adam" ("lbfgs" is refused)
    alpha : float >= 0, default 1e-4
        L2 penalty ``alpha/2·‖W‖²/n_batch`` on the weights (not the intercepts).
    batch_size : int or "auto", default "auto" (``min(200, n_samples)``)
    learning_rate : {"constant", "invscaling", "adaptive"}, default "constant" (sgd only)
    learning_rate_init : float > 0, default 1e-3
    power_t : float >= 0, default 0.5 (``invscaling``: ``lr = init / (t_ + 1)**power_t``)
    max_iter : int, default 200 (epochs)
    shuffle : bool, default True
    random_state : int, RandomState or None
    tol : float >= 0, default 1e-4
    verbose : bool, default False
    warm_start : bool, default False
    momentum : float in [0, 1), default 0.9 (sgd)
    nesterovs_momentum : bool, default True (sgd)
    early_stopping : bool, default False
    validation_fraction : float in (0, 1), default 0.1
    beta_1, beta_2 : float in [0, 1), default 0.9, 0.999 (adam)
    epsilon : float > 0, default 1e-8 (adam)
    n_iter_no_change : int or inf, default 10
    batch_norm : bool, default False
    dropout : float in [0, 1), default 0
    schedule : {"none", "step", "exponential", "cosine"}, default "none"
    warmup : int >= 0, default 0 (epochs)
    num_threads : int or None, default None

    Attributes
    ----------
    classes_ : (n_classes,) array
    coefs_, intercepts_ : lists of arrays
        ``coefs_[i]`` is (fan_in, fan_out): the i-th Dense layer's ``weight`` transposed (a
        view: changing it changes the model).
    loss_, loss_curve_, best_loss_, validation_scores_, best_validation_score_, n_iter_, t_,
    n_features_in_, feature_names_in_, n_layers_, n_outputs_, out_activation_
        As scikit-learn's.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from saddlepoint.sklearn import MLPClassifier
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = MLPClassifier(hidden_layer_sizes=(16,), learning_rate_init=0.01, max_iter=400,
    ...                     random_state=0).fit(X, y)
    >>> clf.predict_proba(X[:2]).shape, clf.classes_.tolist()
    ((2, 3), [0, 1, 2])
    >>> clf.score(X, y) > 0.9
    True
    """

    def _output_activation(self) -> str:
        return "softmax" if self._label_binarizer.y_type_ == "multiclass" else "logistic"

    def _validate_input(self, X, y, incremental, reset):
        X, y = validate_data(self, X, y, multi_output=True, dtype=(np.float64, np.float32), reset=reset)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        if not hasattr(self, "classes_") or (not self.warm_start and not incremental):
            self._label_binarizer = LabelBinarizer()
            self._label_binarizer.fit(y)
            self.classes_ = self._label_binarizer.classes_
        else:
            classes = unique_labels(y)
            if self.warm_start:
                if set(classes) != set(self.classes_):
                    raise ValueError(
                        "warm_start can only be used where `y` has the same classes as in the "
                        f"previous call to fit. Previously got {self.classes_}, `y` has {classes}"
                    )
            elif len(np.setdiff1d(classes, self.classes_, assume_unique=True)):
                raise ValueError(
                    f"`y` has classes not in `self.classes_`. `self.classes_` has {self.classes_}. 'y' has {classes}."
                )
        return X, self._label_binarizer.transform(y).astype(X.dtype)

    def _score(self, X, y, sample_weight=None) -> float:
        y_pred = self._predict(X, check_input=False)
        return float(accuracy_score(y, y_pred, sample_weight=sample_weight))

    def _predict(self, X, check_input: bool = True):
        y_pred = self._forward(X, check_input=check_input)
        if self.n_outputs_ == 1:
            y_pred = y_pred.ravel()
        return self._label_binarizer.inverse_transform(y_pred)

    def predict(self, X):
        """The predicted classes: (n_samples,), or (n_samples, n_classes) 0/1 for multi-label."""
        check_is_fitted(self)
        return self._predict(X)

    def predict_proba(self, X):
        """Class probabilities (n_samples, n_classes), columns in the order of ``classes_``."""
        check_is_fitted(self)
        y_pred = self._forward(X)
        if self.n_outputs_ == 1:
            y_pred = y_pred.ravel()
            return np.vstack([1 - y_pred, y_pred]).T
        return y_pred

    def predict_log_proba(self, X):
        """The log of :meth:`predict_proba`."""
        y_prob = self.predict_proba(X)
        return np.log(y_prob, out=y_prob)

    def partial_fit(self, X, y, sample_weight=None, classes=None):
        """One epoch over ``X``, ``y``; ``classes`` (all the classes) is required on the first call.

        Returns
        -------
        self
        """
        if _check_partial_fit_first_call(self, classes):
            self._label_binarizer = LabelBinarizer()
            if type_of_target(y).startswith("multilabel"):
                self._label_binarizer.fit(y)
            else:
                self._label_binarizer.fit(classes)
        return self._fit(X, y, sample_weight=sample_weight, incremental=True)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags


class MLPRegressor(RegressorMixin, _BaseMLP):
    """Multi-layer perceptron regressor, trained by saddlepoint on the half squared error, with
    identity outputs (one per target column); see :class:`MLPClassifier` for the parameters
    (``loss`` is ``"squared_error"``, the only one) and the module docstring for what matches
    ``sklearn.neural_network.MLPRegressor`` and what differs.

    Examples
    --------
    >>> from saddlepoint.sklearn import MLPRegressor
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(200, 3))
    >>> y = X @ np.array([1.0, -2.0, 0.5])
    >>> reg = MLPRegressor(hidden_layer_sizes=(), learning_rate_init=0.05, max_iter=100,
    ...                    random_state=0).fit(X, y)
    >>> reg.predict(X[:4]).shape, reg.score(X, y) > 0.99
    ((4,), True)
    """

    _parameter_constraints: dict = {
        **_BaseMLP._parameter_constraints,
        "loss": [StrOptions({"squared_error"})],
    }

    def __init__(
        self,
        loss="squared_error",
        hidden_layer_sizes=(100,),
        activation="relu",
        *,
        solver="adam",
        alpha=0.0001,
        batch_size="auto",
        learning_rate="constant",
        learning_rate_init=0.001,
        power_t=0.5,
        max_iter=200,
        shuffle=True,
        random_state=None,
        tol=1e-4,
        verbose=False,
        warm_start=False,
        momentum=0.9,
        nesterovs_momentum=True,
        early_stopping=False,
        validation_fraction=0.1,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-8,
        n_iter_no_change=10,
        batch_norm=False,
        dropout=0.0,
        schedule="none",
        warmup=0,
        num_threads=None,
    ):
        super().__init__(
            hidden_layer_sizes=hidden_layer_sizes,
            activation=activation,
            solver=solver,
            alpha=alpha,
            batch_size=batch_size,
            learning_rate=learning_rate,
            learning_rate_init=learning_rate_init,
            power_t=power_t,
            max_iter=max_iter,
            shuffle=shuffle,
            random_state=random_state,
            tol=tol,
            verbose=verbose,
            warm_start=warm_start,
            momentum=momentum,
            nesterovs_momentum=nesterovs_momentum,
            early_stopping=early_stopping,
            validation_fraction=validation_fraction,
            beta_1=beta_1,
            beta_2=beta_2,
            epsilon=epsilon,
            n_iter_no_change=n_iter_no_change,
            batch_norm=batch_norm,
            dropout=dropout,
            schedule=schedule,
            warmup=warmup,
            num_threads=num_threads,
        )
        self.loss = loss

    def _output_activation(self) -> str:
        return "identity"

    def _validate_input(self, X, y, incremental, reset):
        X, y = validate_data(
            self, X, y, multi_output=True, y_numeric=True, dtype=(np.float64, np.float32), reset=reset
        )
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        return X, y

    def _score(self, X, y, sample_weight=None) -> float:
        y_pred = self._predict(X, check_input=False)
        if not np.isfinite(y_pred).all():
            return np.nan
        return float(r2_score(y, y_pred, sample_weight=sample_weight))

    def _predict(self, X, check_input: bool = True):
        y_pred = self._forward(X, check_input=check_input)
        return y_pred.ravel() if y_pred.shape[1] == 1 else y_pred

    def predict(self, X):
        """The predictions (n_samples,), or (n_samples, n_outputs) for several targets."""
        check_is_fitted(self)
        return self._predict(X)

    def partial_fit(self, X, y, sample_weight=None):
        """One epoch over ``X``, ``y``.

        Returns
        -------
        self
        """
        return self._fit(X, y, sample_weight=sample_weight, incremental=True)


def expected_failed_checks(estimator) -> dict[str, str]:
    """The scikit-learn estimator checks that cannot pass for ``estimator``, each with why:
    pass it as ``expected_failed_checks`` to ``sklearn.utils.estimator_checks``'s
    ``parametrize_with_checks`` / ``check_estimator`` (scikit-learn >= 1.6's mechanism)."""
    return dict(getattr(estimator, "_expected_failed_checks", {}))
