"""The training loss as a function of one parameter vector, in float64.

Every analysis of the doctor (gradient norm, Hessian, landscapes, sharpness) evaluates the loss
and its gradient at many parameter vectors. :class:`Objective` does that on a float64 copy of the
model in eval mode, so the analysis neither disturbs the model being trained nor depends on
dropout masks or on batch statistics: the function analysed is deterministic.
"""

from __future__ import annotations

import copy
import warnings

import numpy as np

from ..nn import Module, Parameter
from ..nn.parameter import flat_span
from . import rop


def parameters_to_vector(parameters) -> np.ndarray:
    """The parameters' values as one 1-D array (PyTorch's ``torch.nn.utils.parameters_to_vector``);
    ``parameters`` is a list of :class:`Parameter` or a model.

    When the parameters are adjacent views of one flat buffer, in order (a container's, see
    :meth:`Module.flatten_parameters`), the vector is a view of that buffer, made without a copy:
    writing into it changes the model, and it follows the model's changes (``.copy()`` it to keep
    a snapshot). Otherwise it is a new array of the values concatenated.

    Examples
    --------
    >>> from saddlepoint.diagnose import parameters_to_vector
    >>> model = sp.mlp([2, 3, 1], rng=0)
    >>> vector = parameters_to_vector(model)
    >>> vector.shape  # 2·3 + 3 + 3·1 + 1
    (13,)
    """
    parameters = _parameter_list(parameters)
    if not parameters:
        return np.zeros(0)
    span = flat_span(parameters)
    if span is not None:
        return span.data
    return np.concatenate([p.data.ravel() for p in parameters])


def vector_to_parameters(vector, parameters) -> None:
    """Copies consecutive slices of ``vector`` into the parameters, in place (the inverse of
    :func:`parameters_to_vector`); values are cast to each parameter's dtype.

    Examples
    --------
    >>> from saddlepoint.diagnose import parameters_to_vector, vector_to_parameters
    >>> model = sp.Dense(2, 1, rng=0)
    >>> vector_to_parameters(np.arange(3.0), model.parameters())
    >>> model.weight.data, model.bias.data
    (array([[0., 1.]], dtype=float32), array([2.], dtype=float32))
    """
    parameters = _parameter_list(parameters)
    vector = np.asarray(vector)
    size = sum(p.data.size for p in parameters)
    if vector.ndim != 1 or vector.size != size:
        raise ValueError(
            f"vector must be 1-D with {size} values (one per parameter entry), got shape {vector.shape}"
        )
    if not np.all(np.isfinite(vector)):
        raise ValueError("vector must be finite, got NaN or infinity")
    span = flat_span(parameters)
    if span is not None:  # one copy into the flat buffer
        np.copyto(span.data, vector, casting="unsafe")
        return
    start = 0
    for p in parameters:
        np.copyto(p.data, vector[start : start + p.data.size].reshape(p.data.shape), casting="unsafe")
        start += p.data.size


def _parameter_list(parameters) -> list[Parameter]:
    if isinstance(parameters, Module):
        return parameters.parameters()
    parameters = list(parameters)
    for i, p in enumerate(parameters):
        if not isinstance(p, Parameter):
            raise TypeError(f"parameters[{i}] must be a saddlepoint Parameter, got {type(p).__name__}")
    return parameters


class Objective:
    """``L(θ)``: the mean loss of ``model`` on ``(X, y)`` as a function of the parameter vector.

    The model is copied, converted to float64 and put in eval mode (dropout off, batch norm with
    its running statistics); the original is never modified. Every evaluation first writes its
    parameter vector into the copy, so the copy's current values mean nothing between calls. Evaluations run in chunks of
    ``batch_size`` samples and are weighted into the exact mean over all samples.

    Parameters
    ----------
    model : Module
    loss : a saddlepoint loss (``CrossEntropyLoss()``, ``MSELoss()``, ...)
    X : (n_samples, ...) array_like
    y : targets as the loss takes them
    batch_size : int, default 4096
    """

    def __init__(self, model, loss, X, y, batch_size: int = 4096, hvp: str = "auto"):
        if not isinstance(model, Module):
            raise TypeError(f"model must be a saddlepoint Module, got {type(model).__name__}")
        self.model = copy.deepcopy(model).to(np.float64).eval()
        self.model.requires_grad_input(False)  # the analysis differentiates in the weights only
        self.loss = copy.deepcopy(loss)
        self.X = np.ascontiguousarray(np.asarray(X, dtype=np.float64))
        self.y = np.asarray(y)
        if len(self.X) == 0 or len(self.X) != len(self.y):
            raise ValueError(
                f"X and y must hold the same number (> 0) of samples, got {len(self.X)} and {len(self.y)}"
            )
        if not np.all(np.isfinite(self.X)):
            raise ValueError("X holds NaN or infinity")
        if not (isinstance(batch_size, (int, np.integer)) and batch_size > 0):
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        if hvp not in ("auto", "exact", "finite differences"):
            raise ValueError(f"hvp must be 'auto', 'exact' or 'finite differences', got {hvp!r}")
        self.batch_size = int(batch_size)
        self.parameters = self.model.parameters()
        self.size = sum(p.data.size for p in self.parameters)
        if self.size == 0:
            raise ValueError("model has no parameters to analyse")
        self.point = parameters_to_vector(self.parameters).copy()  # not a view of the copy's values
        #: The first layer without an R-operator pair (``r_forward``/``r_backward``), as
        #: ``"Name (layer '1')"``, or None when every layer has one.
        self.hvp_missing = rop.without_r_operator(self.model)
        if hvp == "exact" and self.hvp_missing is not None:
            raise ValueError(
                f"hvp='exact' needs a model of Dense, built-in activation, normalization and "
                f"Dropout layers, or others with r_forward and r_backward; "
                f"{self.hvp_missing} has none: use 'finite differences'"
            )
        #: Whether :meth:`hessian_vector_product` is exact (R-operator) rather than central
        #: differences of the analytic gradient; ``hvp_method`` says the same in words.
        self.exact_hvp = self.hvp_missing is None and hvp != "finite differences"
        self.hvp_method = "exact" if self.exact_hvp else "finite differences"
        self._warn_fallback = hvp == "auto" and not self.exact_hvp
        self._names = [name for name, _ in self.model.named_parameters()]
        self._weights = self._chunk_weights()

    def _chunk_weights(self) -> list[float]:
        """Each chunk's share of the mean loss: its share of the samples, or of the class
        weights for a class-weighted cross-entropy on labels (whose mean divides by them)."""
        n = len(self.X)
        bounds = [(start, min(n, start + self.batch_size)) for start in range(0, n, self.batch_size)]
        class_weight = getattr(self.loss, "weight", None)
        if class_weight is None or self.y.ndim != 1:
            return [(stop - start) / n for start, stop in bounds]
        per_sample = np.asarray(class_weight)[self.y.astype(np.int64)]
        totals = np.array([per_sample[start:stop].sum() for start, stop in bounds])
        if totals.sum() <= 0:
            raise ValueError("the loss's class weights sum to zero over y")
        return list(totals / totals.sum())

    def _chunks(self):
        for i, start in enumerate(range(0, len(self.X), self.batch_size)):
            stop = start + self.batch_size
            yield self.X[start:stop], self.y[start:stop], self._weights[i]

    def loss_at(self, theta=None) -> float:
        """``L(θ)`` (at the model's own parameters when ``theta`` is None)."""
        vector_to_parameters(self.point if theta is None else theta, self.parameters)
        return float(sum(w * self.loss(self.model.forward(xb), yb) for xb, yb, w in self._chunks()))

    def gradient(self, theta=None) -> tuple[float, np.ndarray]:
        """``(L(θ), ∇L(θ))``, the gradient from the layers' analytic backward passes."""
        vector_to_parameters(self.point if theta is None else theta, self.parameters)
        self.model.zero_grad()
        total = 0.0
        for xb, yb, w in self._chunks():
            total += w * self.loss(self.model.forward(xb), yb)
            self.model.backward(self.loss.backward() * w)
        return float(total), np.concatenate([p.grad.ravel() for p in self.parameters])

    def step_size(self, theta=None) -> float:
        """The central-difference step ``h = ε^(1/3) · max(1, rms(θ))`` (ε the float64 machine
        epsilon): it balances the O(h²) truncation error against the O(ε/h) rounding error,
        leaving a relative error near ε^(2/3) ≈ 4e-11 in each Hessian-vector product."""
        theta = self.point if theta is None else theta
        return float(np.finfo(np.float64).eps ** (1 / 3) * max(1.0, np.sqrt(np.mean(theta**2))))

    def hessian_vector_product(self, v, theta=None) -> np.ndarray:
        """``H(θ) v``, about the cost of two gradient evaluations.

        Exact (Pearlmutter's R-operator, :mod:`.rop`) when every layer has its R-operator pair
        (the built-in layers do); otherwise central differences of the analytic gradient,
        ``(∇L(θ + h·u) − ∇L(θ − h·u)) / 2h · |v|`` with ``u = v/|v|``, whose error is about 1e-10
        relative for smooth models but which jumps where a ReLU-like kink falls within ``h``.
        ``hvp_method`` says which, and the first fallback warns, naming the layer.
        """
        v = np.asarray(v, dtype=np.float64)
        if v.shape != (self.size,):
            raise ValueError(
                f"v must have shape ({self.size},), one value per parameter entry, got {v.shape}"
            )
        theta = self.point if theta is None else np.asarray(theta, dtype=np.float64)
        norm = float(np.linalg.norm(v))
        if norm == 0.0:
            return np.zeros(self.size)
        if not np.isfinite(norm):
            raise ValueError("v must be finite, got NaN or infinity")
        if self.exact_hvp:
            return self._exact_products(v[None, :], theta)[0]
        self._warn_once()
        h = self.step_size(theta)
        u = v / norm
        _, forward = self.gradient(theta + h * u)
        _, backward = self.gradient(theta - h * u)
        return (forward - backward) * (norm / (2 * h))

    def hessian_vector_products(self, V, theta=None) -> np.ndarray:
        """``H v`` for each row ``v`` of ``V`` (k, n), as rows; one batched pass when exact."""
        V = np.asarray(V, dtype=np.float64)
        if V.ndim != 2 or V.shape[1] != self.size:
            raise ValueError(f"V must have shape (k, {self.size}), got {V.shape}")
        if not np.all(np.isfinite(V)):
            raise ValueError("V must be finite, got NaN or infinity")
        theta = self.point if theta is None else np.asarray(theta, dtype=np.float64)
        if len(V) == 0:
            return np.zeros((0, self.size))
        if not self.exact_hvp:
            return np.array([self.hessian_vector_product(v, theta) for v in V])
        k = self.directions_per_pass()
        return np.concatenate([self._exact_products(V[i : i + k], theta) for i in range(0, len(V), k)])

    def _exact_products(self, V, theta) -> np.ndarray:
        """``H V`` for the rows of ``V`` (k, n), as rows (k, n), by the R-operator."""
        vector_to_parameters(theta, self.parameters)
        directions, start = {}, 0
        for name, p in zip(self._names, self.parameters):
            directions[name] = V[:, start : start + p.data.size].reshape((len(V),) + p.data.shape)
            start += p.data.size
        blocks = rop.hessian_vector_products(self.model, self.loss, self._chunks(), directions)
        return np.concatenate([blocks[name].reshape(len(V), -1) for name in self._names], axis=1)

    def _warn_once(self) -> None:
        if self._warn_fallback:
            self._warn_fallback = False
            warnings.warn(
                f"{self.hvp_missing} has no R-operator pair (r_forward/r_backward): "
                f"Hessian-vector products are central differences of the gradient, not "
                f"exact",
                stacklevel=3,
            )

    def directions_per_pass(self) -> int:
        """How many Hessian columns one R-operator pass computes: about 64 MiB of activations."""
        widest = max([p.data.shape[0] for p in self.parameters] + [self.X[0].size])
        rows = min(len(self.X), self.batch_size)
        return int(max(1, min(64, 2**23 // (rows * widest))))

    def hessian(self, theta=None) -> np.ndarray:
        """The full ``(n, n)`` Hessian, one Hessian-vector product per column, symmetrized."""
        theta = self.point if theta is None else theta
        H = np.empty((self.size, self.size))
        if self.exact_hvp:  # many columns per pass: the R-operator batches directions
            k = self.directions_per_pass()
            for start in range(0, self.size, k):
                stop = min(self.size, start + k)
                basis = np.zeros((stop - start, self.size))
                basis[np.arange(stop - start), np.arange(start, stop)] = 1.0
                H[:, start:stop] = self._exact_products(basis, theta).T
            return (H + H.T) / 2
        unit = np.zeros(self.size)
        for i in range(self.size):
            unit[i] = 1.0
            H[:, i] = self.hessian_vector_product(unit, theta)
            unit[i] = 0.0
        return (H + H.T) / 2
