"""Critical points: gradient norm, Hessian, its spectrum, and the way out of a saddle point.

The course (lecture "local minima and saddle point"): near a critical point θ' (gradient zero)
``L(θ) ≈ L(θ') + ½ (θ − θ')ᵀ H (θ − θ')``. All eigenvalues of the Hessian ``H`` positive: a local
minimum; all negative: a local maximum; both signs: a saddle point, and moving along an
eigenvector ``u`` of a negative eigenvalue ``λ`` lowers the loss by about ``½ |λ| |u|²``.

Hessian-vector products are exact in float64 (Pearlmutter's R-operator, :mod:`.rop`; about two
gradient evaluations) for models of the built-in layers, and central differences of the analytic
gradient otherwise (see :meth:`Objective.hessian_vector_product`). Models with up
to ``max_full`` parameters get the full Hessian and ``numpy.linalg.eigh``; larger ones get the
extreme eigenvalues by Lanczos (scipy's ``eigsh`` on a ``LinearOperator``), Hutchinson's trace
estimate and a stochastic Lanczos quadrature (SLQ) spectral density, as PyHessian does.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, fields

import numpy as np

from ..trainer import Callback
from .objective import Objective, vector_to_parameters

#: Models with at most this many parameters get the full Hessian by default.
MAX_FULL_HESSIAN = 3000


def _objective(model, loss, X, y, batch_size=4096) -> Objective:
    return Objective(model, loss, X, y, batch_size=batch_size)


def gradient_norm(model, loss, X, y) -> float:
    """Euclidean norm of the gradient of the mean training loss at the model's parameters."""
    return float(np.linalg.norm(_objective(model, loss, X, y).gradient()[1]))


def hessian_vector_product(model, loss, X, y, v) -> np.ndarray:
    """``H v`` for the mean loss of ``model`` on ``(X, y)``, in float64 (two gradient
    evaluations; see :meth:`Objective.hessian_vector_product`)."""
    return _objective(model, loss, X, y).hessian_vector_product(v)


def hessian(model, loss, X, y) -> np.ndarray:
    """The full ``(n, n)`` Hessian of the mean loss in float64, in the order of
    ``parameters_to_vector(model)``; ``2n`` gradient evaluations."""
    return _objective(model, loss, X, y).hessian()


def _linear_operator(objective: Objective):
    from scipy.sparse.linalg import LinearOperator

    return LinearOperator((objective.size, objective.size), dtype=np.float64,
                          matvec=lambda v: objective.hessian_vector_product(np.ravel(v)))


def _extreme_eigenpairs(objective: Objective, which: str, k: int, seed) -> tuple[np.ndarray, np.ndarray]:
    """``k`` eigenpairs, ascending: the largest (``"LA"``), the smallest (``"SA"``) or from both
    ends at once (``"BE"``, one Lanczos run)."""
    from scipy.sparse.linalg import eigsh

    n = objective.size
    if n <= max(2 * k + 1, 20):  # too small for ARPACK: the full Hessian is cheap
        values, vectors = np.linalg.eigh(objective.hessian())  # ascending
        picked = {"LA": np.arange(n - k, n), "SA": np.arange(k),
                  "BE": np.r_[np.arange(k // 2), np.arange(n - (k - k // 2), n)]}[which]
        return values[picked], vectors[:, picked]
    v0 = np.random.default_rng(seed).standard_normal(n)
    values, vectors = eigsh(_linear_operator(objective), k=k, which=which, v0=v0, tol=1e-8,
                            ncv=min(n, max(2 * k + 1, 20)), maxiter=50 * n)
    order = np.argsort(values)
    return values[order], vectors[:, order]


def top_eigenvalues(model, loss, X, y, k: int = 1, which: str = "largest", seed=0) -> np.ndarray:
    """The ``k`` largest (``which="largest"``) or smallest (``"smallest"``) Hessian eigenvalues,
    ascending, by Lanczos on Hessian-vector products; the sharpness of a minimum is the largest."""
    if which not in ("largest", "smallest"):
        raise ValueError(f"which must be 'largest' or 'smallest', got {which!r}")
    objective = _objective(model, loss, X, y)
    if not 1 <= k < objective.size:
        raise ValueError(f"k must be in [1, {objective.size - 1}] for this model, got {k}")
    return _extreme_eigenpairs(objective, "LA" if which == "largest" else "SA", k, seed)[0]


@dataclass
class TraceEstimate:
    """Hutchinson's estimate ``mean(vᵀ H v)`` over Rademacher vectors ``v``, with its standard
    error."""

    trace: float
    standard_error: float
    samples: int

    def __str__(self) -> str:
        return f"Hessian trace ≈ {self.trace:.6g} ± {self.standard_error:.2g} ({self.samples} samples)"


def trace(model, loss, X, y, samples: int = 100, seed=0) -> TraceEstimate:
    """Hutchinson's stochastic estimate of the Hessian's trace (``samples`` Hessian-vector
    products)."""
    if samples < 2:
        raise ValueError(f"samples must be at least 2, got {samples}")
    objective = _objective(model, loss, X, y)
    rng = np.random.default_rng(seed)
    draws = []
    for _ in range(samples):
        v = rng.choice([-1.0, 1.0], size=objective.size)
        draws.append(float(v @ objective.hessian_vector_product(v)))
    return TraceEstimate(float(np.mean(draws)), float(np.std(draws, ddof=1) / math.sqrt(samples)),
                         samples)


def _lanczos(products, n: int, steps: int, runs: int, rng) -> list[tuple[np.ndarray, np.ndarray]]:
    """``runs`` Lanczos processes from random Rademacher starts, in lockstep (one batched
    ``products(V)`` = ``H Vᵀ`` rows per step), with full reorthogonalization. Returns each run's
    Ritz values and their quadrature weights (squared first components)."""
    steps = min(steps, n)
    V = rng.choice([-1.0, 1.0], size=(runs, n)) / math.sqrt(n)
    bases = [[v] for v in V]
    alphas, betas = [[] for _ in range(runs)], [[] for _ in range(runs)]
    active = list(range(runs))
    for _ in range(steps):
        W = products(np.array([bases[r][-1] for r in active]))
        still = []
        for r, w in zip(active, W):
            alphas[r].append(float(w @ bases[r][-1]))
            Q = np.array(bases[r])
            for _ in range(2):  # twice is enough to keep the basis orthogonal in floating point
                w = w - Q.T @ (Q @ w)
            beta = float(np.linalg.norm(w))
            if beta < 1e-10 * max(1.0, abs(alphas[r][-1])) or len(bases[r]) == steps:
                continue  # converged (an invariant subspace) or done
            betas[r].append(beta)
            bases[r].append(w / beta)
            still.append(r)
        active = still
        if not active:
            break
    results = []
    for a, b in zip(alphas, betas):
        off = b[:len(a) - 1]
        nodes, vectors = np.linalg.eigh(np.diag(a) + np.diag(off, 1) + np.diag(off, -1))
        results.append((nodes, vectors[0] ** 2))
    return results


@dataclass
class SpectralDensity:
    """Stochastic Lanczos quadrature: Ritz ``nodes`` and ``weights`` (each run's weights sum to
    1), and the density on ``grid`` (Gaussians of width ``sigma`` around the nodes, integrating
    to 1)."""

    nodes: np.ndarray
    weights: np.ndarray
    grid: np.ndarray
    density: np.ndarray
    sigma: float

    def fraction_above(self, threshold: float) -> float:
        """Estimated fraction of eigenvalues above ``threshold``."""
        return float(np.sum(self.weights[self.nodes > threshold]) / np.sum(self.weights))

    def plot(self, ax=None):
        """Draws the density on a log scale; needs matplotlib."""
        import matplotlib.pyplot as plt

        ax = ax or plt.figure().gca()
        ax.semilogy(self.grid, np.maximum(self.density, 1e-12))
        ax.set(xlabel="Hessian eigenvalue", ylabel="density",
               title="Hessian spectral density (SLQ)")
        return ax


def spectral_density(model, loss, X, y, steps: int = 100, vectors: int = 10, grid_points: int = 400,
                     sigma: float | None = None, seed=0) -> SpectralDensity:
    """The Hessian's eigenvalue density by stochastic Lanczos quadrature (Ghorbani et al. 2019):
    ``vectors`` runs of ``steps`` Lanczos iterations; ``sigma`` defaults to 1% of the spectrum's
    width."""
    if steps < 1 or vectors < 1 or grid_points < 2:
        raise ValueError(f"steps and vectors must be at least 1 and grid_points at least 2, got "
                         f"{steps}, {vectors} and {grid_points}")
    if sigma is not None and not sigma > 0:
        raise ValueError(f"sigma must be > 0, got {sigma}")
    return _density(_objective(model, loss, X, y), steps, vectors, grid_points, sigma, seed)


def _density(objective: Objective, steps=100, vectors=10, grid_points=400, sigma=None, seed=0):
    rng = np.random.default_rng(seed)
    runs = _lanczos(objective.hessian_vector_products, objective.size, steps, vectors, rng)
    nodes = np.concatenate([n for n, _ in runs])
    weights = np.concatenate([w for _, w in runs]) / vectors
    low, high = float(nodes.min()), float(nodes.max())
    width = max(high - low, 1e-12 * max(1.0, abs(high)))
    sigma = float(sigma) if sigma is not None else 0.01 * width
    grid = np.linspace(low - 0.05 * width - 3 * sigma, high + 0.05 * width + 3 * sigma, grid_points)
    gauss = np.exp(-0.5 * ((grid[:, None] - nodes[None, :]) / sigma) ** 2) / (sigma * math.sqrt(2 * math.pi))
    return SpectralDensity(nodes, weights, grid, gauss @ weights, sigma)


@dataclass
class CriticalPoint:
    """What the Hessian says about the point the model sits at.

    ``kind`` is ``"local minimum"`` (every eigenvalue positive), ``"local maximum"`` (every one
    negative), ``"saddle point"`` (both signs) or ``"degenerate"`` (some are zero within
    ``tolerance`` = ``rtol`` times the largest magnitude, and no two signs: the second-order test
    cannot decide). ``minimum_ratio`` is the course's fraction of positive eigenvalues. With
    ``method="lanczos"`` ``eigenvalues`` holds only the two extremes, and the ratio is an estimate
    from the SLQ ``density`` (100 steps × 10 vectors; eigenvalues near zero blur into both signs:
    0.606 against the true 0.614 on a 3,010-parameter network, 0.89 with 40 × 4).
    ``critical`` says whether the gradient norm is at most ``gradient_tolerance``: away from a
    critical point the classification describes the curvature only.
    """

    kind: str
    loss: float
    gradient_norm: float
    critical: bool
    minimum_ratio: float
    eigenvalues: np.ndarray
    positive: int | None
    negative: int | None
    near_zero: int | None
    tolerance: float
    n_parameters: int
    method: str
    hessian_vector_product: str  # "exact" (R-operator) or "finite differences"
    density: SpectralDensity | None = field(default=None, repr=False)

    def to_dict(self) -> dict:
        d = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "density"}
        d["eigenvalues"] = [float(e) for e in self.eigenvalues]
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def __str__(self) -> str:
        lines = [f"{self.kind} ({self.method} Hessian from {self.hessian_vector_product} "
                 f"Hessian-vector products, {self.n_parameters} parameters)",
                 f"  loss {self.loss:.6g}, gradient norm {self.gradient_norm:.3g}"
                 + ("" if self.critical else " — not a critical point: the gradient is not small")]
        lam = self.eigenvalues
        lines.append(f"  eigenvalues from {lam[0]:.4g} to {lam[-1]:.4g}; |λ| ≤ {self.tolerance:.2g} "
                     f"counts as zero")
        if self.positive is not None:
            lines.append(f"  {self.positive} positive, {self.negative} negative, "
                         f"{self.near_zero} near zero")
        estimate = " (SLQ estimate)" if self.method == "lanczos" else ""
        lines.append(f"  minimum ratio (fraction of positive eigenvalues) {self.minimum_ratio:.3f}{estimate}")
        return "\n".join(lines)


def _kind(has_positive: bool, has_negative: bool, has_zero: bool) -> str:
    if has_positive and has_negative:
        return "saddle point"
    if has_zero:
        return "degenerate"
    return "local minimum" if has_positive else "local maximum"


def critical_point(model, loss, X, y, *, method: str = "auto", rtol: float = 1e-4,
                   gradient_tolerance: float = 1e-3, max_full: int = MAX_FULL_HESSIAN,
                   seed=0) -> CriticalPoint:
    """Classifies the point ``model`` sits at on the mean loss over ``(X, y)``.

    ``method="full"`` computes every eigenvalue (``n`` Hessian-vector products, batched, and an
    ``n × n`` eigendecomposition); ``"lanczos"`` the two extremes and an SLQ estimate of the
    minimum ratio; ``"auto"`` picks full up to ``max_full`` parameters.
    """
    if method not in ("auto", "full", "lanczos"):
        raise ValueError(f"method must be 'auto', 'full' or 'lanczos', got {method!r}")
    if not 0 < rtol < 1:
        raise ValueError(f"rtol must be in (0, 1), got {rtol}")
    objective = _objective(model, loss, X, y)
    value, grad = objective.gradient()
    n, density = objective.size, None
    if method == "full" or (method == "auto" and n <= max_full):
        eigenvalues = np.linalg.eigvalsh(objective.hessian())
        tol = rtol * max(float(np.max(np.abs(eigenvalues))), np.finfo(float).tiny)
        pos, neg = int(np.sum(eigenvalues > tol)), int(np.sum(eigenvalues < -tol))
        zero = n - pos - neg
        kind, ratio, method = _kind(pos > 0, neg > 0, zero > 0), pos / n, "full"
    else:
        eigenvalues = _extreme_eigenpairs(objective, "BE", 2, seed)[0]
        low, high = eigenvalues
        tol = rtol * max(abs(low), abs(high), np.finfo(float).tiny)
        density = _density(objective, seed=seed)
        ratio = density.fraction_above(tol)
        # The extremes bound the spectrum; zeros inside it cannot be counted without all of it.
        kind = _kind(high > tol, low < -tol, not (low > tol or high < -tol))
        pos = neg = zero = None
        method = "lanczos"
    norm = float(np.linalg.norm(grad))
    return CriticalPoint(kind, value, norm, norm <= gradient_tolerance, float(ratio),
                         np.asarray(eigenvalues), pos, neg, zero, float(tol), n, method,
                         objective.hvp_method, density)


@dataclass
class EscapeResult:
    """The outcome of :func:`escape_saddle`: the most negative eigenvalue, the step taken along
    its eigenvector (signed; 0 when none lowered the loss), and the loss before and after."""

    eigenvalue: float
    step: float
    loss_before: float
    loss_after: float
    escaped: bool
    direction: np.ndarray = field(repr=False)

    def __str__(self) -> str:
        if not self.escaped:
            return (f"no escape: smallest eigenvalue {self.eigenvalue:.4g}, no step along its "
                    f"eigenvector lowered the loss {self.loss_before:.6g}")
        return (f"escaped along the eigenvector of λ = {self.eigenvalue:.4g}: step {self.step:+.4g}, "
                f"loss {self.loss_before:.6g} -> {self.loss_after:.6g}")


def escape_saddle(model, loss, X, y, *, max_step: float | None = None, rtol: float = 1e-4,
                  max_full: int = MAX_FULL_HESSIAN, seed=0) -> EscapeResult:
    """Moves ``model`` out of a saddle point along the eigenvector of the most negative Hessian
    eigenvalue, as the course prescribes.

    Both signs are tried with a line search over steps from ``1e-4·max_step`` to ``max_step``
    (default ``4·max(1, |θ|)``; a geometric grid, then a finer one around its best). The model
    takes the step with the lowest loss if that is below the current loss; otherwise (and when
    no eigenvalue is below ``-rtol·max|λ|``) it is left unchanged.
    """
    objective = _objective(model, loss, X, y)
    theta = objective.point
    before = objective.loss_at()
    if objective.size <= max_full:
        values, vectors = np.linalg.eigh(objective.hessian())
    else:
        values, vectors = _extreme_eigenpairs(objective, "BE", 2, seed)
    eigenvalue, direction, scale = values[0], vectors[:, 0], np.max(np.abs(values))
    if eigenvalue >= -rtol * scale:
        return EscapeResult(float(eigenvalue), 0.0, before, before, False, direction)
    max_step = 4.0 * max(1.0, float(np.linalg.norm(theta))) if max_step is None else float(max_step)
    best_step, best_loss = 0.0, before
    coarse = max_step * np.geomspace(1e-4, 1.0, 41)  # neighbours 26% apart
    for steps in (np.concatenate([coarse, -coarse]), None):
        if steps is None:  # refine around the best coarse step
            if best_step == 0.0:
                break
            steps = best_step * np.linspace(1 / 1.26, 1.26, 41)
        for step in steps:
            value = objective.loss_at(theta + step * direction)
            if value < best_loss:
                best_step, best_loss = float(step), value
    if best_step != 0.0:
        vector_to_parameters(theta + best_step * direction, model.parameters())
    return EscapeResult(float(eigenvalue), best_step, before, best_loss, best_step != 0.0, direction)


class SaddleEscape(Callback):
    """A :class:`~saddlepoint.Trainer` callback that escapes saddle points when training stalls.

    When the training loss has not fallen by ``min_delta`` (relative) for ``patience`` epochs and
    the gradient norm on ``(X, y)`` is at most ``gradient_tolerance``, it calls
    :func:`escape_saddle`. Each escape is kept in ``escapes`` as ``(epoch, EscapeResult)``.
    """

    def __init__(self, X, y, patience: int = 3, min_delta: float = 1e-4,
                 gradient_tolerance: float = 1e-3, max_escapes: int = 10):
        self.X, self.y = X, y
        self.patience, self.min_delta = int(patience), float(min_delta)
        self.gradient_tolerance, self.max_escapes = float(gradient_tolerance), int(max_escapes)
        self.escapes: list = []

    def on_train_begin(self, trainer):
        self.best, self.wait = math.inf, 0

    def on_epoch_end(self, trainer, epoch, logs):
        value = logs["loss"]
        if value < self.best - self.min_delta * max(1.0, abs(self.best)):
            self.best, self.wait = value, 0
            return
        self.wait += 1
        if self.wait < self.patience or len(self.escapes) >= self.max_escapes:
            return
        self.wait = 0
        if gradient_norm(trainer.model, trainer.loss, self.X, self.y) > self.gradient_tolerance:
            return
        result = escape_saddle(trainer.model, trainer.loss, self.X, self.y)
        self.escapes.append((epoch, result))
        if result.escaped:
            self.best = result.loss_after
