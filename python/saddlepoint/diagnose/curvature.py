"""Critical points: gradient norm, Hessian, its spectrum, and the way out of a saddle point.

The course (lecture "local minima and saddle point"): near a critical point θ' (gradient zero)
``L(θ) ≈ L(θ') + ½ (θ − θ')ᵀ H (θ − θ')``. All eigenvalues of the Hessian ``H`` positive: a local
minimum; all negative: a local maximum; both signs: a saddle point, and moving along an
eigenvector ``u`` of a negative eigenvalue ``λ`` lowers the loss by about ``½ |λ| |u|²``.

Hessian-vector products are exact in float64 (Pearlmutter's R-operator, :mod:`.rop`; about two
gradient evaluations) for models of the built-in layers, and central differences of the analytic
gradient otherwise (see :meth:`Objective.hessian_vector_product`). Models with up
to ``max_full`` parameters get the full Hessian and ``numpy.linalg.eigh``; larger ones get the
extreme eigenvalues by Lanczos, Hutchinson's trace estimate and a stochastic Lanczos quadrature
(SLQ) spectral density, as PyHessian does.

Every analysis runs under a budget (:mod:`.budget`: ``max_hvps`` Hessian-vector products,
``time_limit`` seconds) and says whether it converged. The Lanczos here is plain, with full
reorthogonalization and a hard cap on its steps, so each Ritz pair's residual ``||Hv − λv||``
is known exactly from the tridiagonal matrix; ARPACK with a tight tolerance instead ran for
more than 15 minutes on an over-parameterized network, whose spectrum crowds around zero.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field, fields

import numpy as np

from ..training import Callback
from ..validation import Real, check_params
from .budget import MAX_HVPS, TIME_LIMIT, Budget, check_budget, one_blas_thread
from .objective import Objective, vector_to_parameters

MAX_FULL_HESSIAN = 3000
"""Models with at most this many parameters get the full Hessian by default."""
RESIDUAL_TOLERANCE = 1e-3
"""Lanczos stops when the wanted Ritz pairs' residuals ||Hv − λv|| are at most this times the
largest |Ritz value| ..."""
#: ... or after this many steps.
MAX_LANCZOS_STEPS = 300
#: The constraints of the analyses' tolerances: Lanczos's relative residual, and the gradient
#: norm below which a point counts as critical.
TOLERANCES = {"residual_tolerance": Real(0, 1, closed="neither"), "gradient_tolerance": Real(0)}


def _objective(model, loss, X, y, batch_size=4096) -> Objective:
    return Objective(model, loss, X, y, batch_size=batch_size)


def gradient_norm(model, loss, X, y) -> float:
    """Euclidean norm of the gradient of the mean training loss at the model's parameters.

    Examples
    --------
    >>> from saddlepoint import diagnose
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(64, 3))
    >>> y = (X @ np.array([1.0, -2.0, 0.5]))[:, None]
    >>> model = sp.Dense(3, 1, dtype=np.float64, rng=0)  # MSE on a linear model: H = 2 XᵀX / n
    >>> diagnose.gradient_norm(model, sp.MSELoss(), X, y) > 0  # not trained: not critical
    True
    """
    return float(np.linalg.norm(_objective(model, loss, X, y).gradient()[1]))


def hessian_vector_product(model, loss, X, y, v) -> np.ndarray:
    """``H v`` for the mean loss of ``model`` on ``(X, y)``, in float64 (two gradient
    evaluations; see :meth:`Objective.hessian_vector_product`).

    Examples
    --------
    >>> from saddlepoint import diagnose
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(64, 3))
    >>> y = (X @ np.array([1.0, -2.0, 0.5]))[:, None]
    >>> model = sp.Dense(3, 1, dtype=np.float64, rng=0)  # MSE on a linear model: H = 2 XᵀX / n
    >>> v = np.array([0.0, 0.0, 0.0, 1.0])  # the bias's direction
    >>> Hv = diagnose.hessian_vector_product(model, sp.MSELoss(), X, y, v)
    >>> bool(np.allclose(Hv, diagnose.hessian(model, sp.MSELoss(), X, y) @ v))
    True
    """
    with one_blas_thread():
        return _objective(model, loss, X, y).hessian_vector_product(v)


def hessian(model, loss, X, y) -> np.ndarray:
    """The full ``(n, n)`` Hessian of the mean loss in float64, in the order of
    ``parameters_to_vector(model)``; ``2n`` gradient evaluations.

    Parameters
    ----------
    model : Module
    loss : Loss
    X : array_like, (n_samples, ...)
    y : array_like, (n_samples,) or (n_samples, n_outputs)

    Returns
    -------
    (n, n) float64 array
        Symmetric; ``n`` is the number of parameters.

    Examples
    --------
    >>> from saddlepoint import diagnose
    >>> model = sp.Sequential(sp.Dense(1, 1, bias=False, dtype=np.float64),
    ...                       sp.Dense(1, 1, bias=False, dtype=np.float64))
    >>> for layer in model:
    ...     layer.weight.data[...] = 0.0  # w1 = w2 = 0
    >>> X, y = np.ones((1, 1)), np.ones((1, 1))
    >>> diagnose.hessian(model, sp.MSELoss(), X, y)
    array([[ 0., -2.],
           [-2.,  0.]])
    """
    with one_blas_thread():
        return _objective(model, loss, X, y).hessian()


@dataclass
class _Run:
    """One Lanczos process: ``T`` = tridiag(betas[:-1], alphas, betas[:-1]) after ``len(alphas)``
    steps, ``betas[-1]`` the norm of the next residual, ``basis`` the orthonormal rows ``Q``."""

    alphas: list
    betas: list
    basis: np.ndarray

    @property
    def steps(self) -> int:
        return len(self.alphas)

    def ritz(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Ritz values (ascending), their residuals ``||H y − θ y|| = β_m |s_m|`` (exact with
        full reorthogonalization) and the eigenvectors ``S`` of ``T``."""
        m = self.steps
        off = np.asarray(self.betas[: m - 1])
        values, S = np.linalg.eigh(np.diag(self.alphas) + np.diag(off, 1) + np.diag(off, -1))
        return values, abs(self.betas[m - 1]) * np.abs(S[m - 1]), S

    def ritz_vector(self, s: np.ndarray) -> np.ndarray:
        return self.basis[: self.steps].T @ s


def _lanczos(objective, budget, starts: np.ndarray, steps: int, done=None) -> tuple[list, bool]:
    """Lanczos processes from the rows of ``starts``, in lockstep (one batched product per step),
    with full reorthogonalization, for at most ``steps`` steps each. ``done(runs)``, asked every
    few steps, may end them early (converged). Returns the runs and whether the budget cut them
    short."""
    n = objective.size
    steps = min(steps, n)
    runs = [_Run([], [], np.empty((steps, n))) for _ in starts]
    for run, start in zip(runs, starts):
        run.basis[0] = start / np.linalg.norm(start)
    active = list(range(len(runs)))
    for step in range(steps):
        if not budget.allows(len(active)):
            return runs, True
        W = budget.products(objective, np.array([runs[r].basis[step] for r in active]))
        still = []
        for r, w in zip(active, W):
            run = runs[r]
            Q = run.basis[: step + 1]
            run.alphas.append(float(w @ Q[-1]))
            for _ in range(2):  # twice is enough to keep the basis orthogonal in floating point
                w = w - Q.T @ (Q @ w)
            beta = float(np.linalg.norm(w))
            run.betas.append(beta)
            if step + 1 < steps and beta > 1e-10 * max(1.0, abs(run.alphas[-1])):
                run.basis[step + 1] = w / beta
                still.append(r)
            # else: done, or an invariant subspace (the Ritz pairs are exact)
        active = still
        if not active or (done is not None and step % 5 == 4 and done(runs)):
            break
    return runs, False


def _rademacher(rng, runs: int, n: int) -> np.ndarray:
    return rng.choice([-1.0, 1.0], size=(runs, n))


@dataclass
class _Extremes:
    """Ritz pairs at the ends of the spectrum from one Lanczos run (ascending)."""

    values: np.ndarray
    residuals: np.ndarray
    vectors: np.ndarray  # (n, k)
    converged: bool
    stopped: str | None


def _pick(values, which: str, k: int) -> np.ndarray:
    n = len(values)
    k = min(k, n)
    return {
        "LA": np.arange(n - k, n),
        "SA": np.arange(k),
        "BE": np.unique(np.r_[np.arange(k // 2), np.arange(n - (k - k // 2), n)]),
    }[which]


def extreme_eigenpairs(
    objective: Objective,
    budget,
    which: str,
    k: int,
    seed,
    residual_tolerance: float = RESIDUAL_TOLERANCE,
    max_steps: int = MAX_LANCZOS_STEPS,
) -> _Extremes:
    """``k`` Ritz pairs, ascending: the largest (``"LA"``), the smallest (``"SA"``) or from both
    ends (``"BE"``), by one Lanczos run that stops when their residuals are at most
    ``residual_tolerance`` times the largest |Ritz value|, after ``max_steps`` steps, or when
    the budget is spent. Small models get the full Hessian (exact)."""
    n = objective.size
    if n <= max(2 * k + 1, 20) and budget.allows(n):  # too small for Lanczos: the full Hessian is cheap
        values, vectors = np.linalg.eigh(_full_hessian(objective, budget))
        picked = _pick(values, which, k)
        return _Extremes(values[picked], np.zeros(len(picked)), vectors[:, picked], True, None)

    def converged(run) -> bool:
        values, residuals, _ = run.ritz()
        picked = _pick(values, which, k)
        scale = max(float(np.max(np.abs(values))), np.finfo(float).tiny)
        return len(values) >= min(n, 2 * k) and bool(np.all(residuals[picked] <= residual_tolerance * scale))

    budget.plan(min(n, max_steps))
    start = _rademacher(np.random.default_rng(seed), 1, n)
    runs, cut = _lanczos(objective, budget, start, max_steps, done=lambda runs: converged(runs[0]))
    run = runs[0]
    if run.steps == 0:
        raise RuntimeError(f"the {budget.stop_reason()} allows no Hessian-vector product; raise it")
    values, residuals, S = run.ritz()
    picked = _pick(values, which, k)
    ok = converged(run)
    stopped = None if ok else (budget.stop_reason() if cut else f"cap of {run.steps} Lanczos steps")
    return _Extremes(values[picked], residuals[picked], run.ritz_vector(S[:, picked]), ok, stopped)


def _full_hessian(objective: Objective, budget) -> np.ndarray:
    """The full Hessian, batches of columns counted by ``budget``; raises :class:`_TooSlow`
    when the first batch shows that the rest would not fit in the time left."""
    n = objective.size
    budget.plan(n)
    H = np.empty((n, n))
    k = objective.directions_per_pass() if objective.hvp_method == "exact" else 16
    begin = time.perf_counter()
    for start in range(0, n, k):
        stop = min(n, start + k)
        basis = np.zeros((stop - start, n))
        basis[np.arange(stop - start), np.arange(start, stop)] = 1.0
        H[:, start:stop] = budget.products(objective, basis).T
        if start == 0 and stop < n:
            projected = (time.perf_counter() - begin) * (n - stop) / (stop - start)
            if projected > budget.time_left():
                raise _TooSlow(projected)
    return (H + H.T) / 2


class _TooSlow(Exception):
    """The full Hessian would not fit in the time left."""


@dataclass
class Eigenvalues:
    """Extreme Hessian eigenvalues by Lanczos (ascending), each with its Ritz residual
    ``||H v − λ v||`` (a true eigenvalue lies within it), whether all residuals met the
    tolerance, the work done and, when it stopped short, the limit that stopped it."""

    values: np.ndarray
    residuals: np.ndarray
    converged: bool
    hvps: int
    seconds: float
    stopped: str | None = None

    def __array__(self, dtype=None, copy=None):
        return np.asarray(self.values, dtype=dtype)

    def __len__(self) -> int:
        return len(self.values)

    def __getitem__(self, index):
        return self.values[index]

    def to_dict(self) -> dict:
        return {
            "values": [float(v) for v in self.values],
            "residuals": [float(r) for r in self.residuals],
            "converged": self.converged,
            "hvps": self.hvps,
            "seconds": self.seconds,
            "stopped": self.stopped,
        }

    def __str__(self) -> str:
        pairs = ", ".join(f"{v:.6g} (residual {r:.2g})" for v, r in zip(self.values, self.residuals))
        return f"eigenvalues {pairs}; {_convergence(self.converged, self.stopped, self.hvps, self.seconds)}"


def _convergence(converged: bool, stopped, hvps: int, seconds: float) -> str:
    work = f"{hvps} Hessian-vector products, {seconds:.1f} s"
    if converged:
        return f"converged ({work})"
    return f"NOT converged: stopped by the {stopped} ({work})" if stopped else f"not converged ({work})"


def top_eigenvalues(
    model,
    loss,
    X,
    y,
    k: int = 1,
    which: str = "largest",
    seed=0,
    *,
    residual_tolerance: float = RESIDUAL_TOLERANCE,
    max_hvps: int = MAX_HVPS,
    time_limit: float = TIME_LIMIT,
    progress=None,
) -> Eigenvalues:
    """The ``k`` largest (``which="largest"``) or smallest (``"smallest"``) Hessian eigenvalues,
    ascending, by Lanczos on Hessian-vector products; the sharpness of a minimum is the largest.

    Lanczos stops when every wanted Ritz pair's residual is at most ``residual_tolerance`` times
    the largest |Ritz value|, or at ``max_hvps`` products or ``time_limit`` seconds, whichever
    comes first; the result says which (``converged``, ``stopped``) and holds the residuals.
    ``progress``: a bar on stderr (None: when stderr is a terminal).

    Examples
    --------
    >>> from saddlepoint import diagnose
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(64, 3))
    >>> y = (X @ np.array([1.0, -2.0, 0.5]))[:, None]
    >>> model = sp.Dense(3, 1, dtype=np.float64, rng=0)  # MSE on a linear model: H = 2 XᵀX / n
    >>> top = diagnose.top_eigenvalues(model, sp.MSELoss(), X, y, k=1)
    >>> H = diagnose.hessian(model, sp.MSELoss(), X, y)
    >>> bool(np.isclose(top.values[-1], np.linalg.eigvalsh(H)[-1]))
    True
    """
    if which not in ("largest", "smallest"):
        raise ValueError(f"which must be 'largest' or 'smallest', got {which!r}")
    TOLERANCES["residual_tolerance"].check("residual_tolerance", residual_tolerance)
    objective = _objective(model, loss, X, y)
    if not 1 <= k < objective.size:
        raise ValueError(f"k must be in [1, {objective.size - 1}] for this model, got {k}")
    with Budget(max_hvps, time_limit, progress, "top eigenvalues") as budget:
        found = extreme_eigenpairs(
            objective, budget, "LA" if which == "largest" else "SA", k, seed, residual_tolerance
        )
        return Eigenvalues(
            found.values,
            found.residuals,
            found.converged,
            budget.used,
            round(budget.seconds, 3),
            found.stopped,
        )


@dataclass
class TraceEstimate:
    """Hutchinson's estimate ``mean(vᵀ H v)`` over Rademacher vectors ``v``, with its standard
    error; ``converged`` when all ``requested`` samples were drawn within the budget."""

    trace: float
    standard_error: float
    samples: int
    requested: int = 0
    converged: bool = True
    hvps: int = 0
    seconds: float = 0.0
    stopped: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)

    def __str__(self) -> str:
        return (
            f"Hessian trace ≈ {self.trace:.6g} ± {self.standard_error:.2g} (standard error, "
            f"{self.samples} of {self.requested} samples); "
            + _convergence(self.converged, self.stopped, self.hvps, self.seconds)
        )


def trace(
    model,
    loss,
    X,
    y,
    samples: int = 100,
    seed=0,
    *,
    max_hvps: int = MAX_HVPS,
    time_limit: float = TIME_LIMIT,
    progress=None,
) -> TraceEstimate:
    """Hutchinson's stochastic estimate of the Hessian's trace (``samples`` Hessian-vector
    products, fewer when ``max_hvps`` or ``time_limit`` runs out first: the result says so).

    Examples
    --------
    >>> from saddlepoint import diagnose
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(64, 3))
    >>> y = (X @ np.array([1.0, -2.0, 0.5]))[:, None]
    >>> model = sp.Dense(3, 1, dtype=np.float64, rng=0)  # MSE on a linear model: H = 2 XᵀX / n
    >>> estimate = diagnose.trace(model, sp.MSELoss(), X, y, samples=50)
    >>> H = diagnose.hessian(model, sp.MSELoss(), X, y)
    >>> bool(abs(estimate.trace - np.trace(H)) < 4 * estimate.standard_error)
    True
    """
    if samples < 2:
        raise ValueError(f"samples must be at least 2, got {samples}")
    objective = _objective(model, loss, X, y)
    rng = np.random.default_rng(seed)
    draws: list[float] = []
    check_budget(max_hvps, time_limit)
    if max_hvps < 2:
        raise ValueError(f"max_hvps must be at least 2 for a trace estimate, got {max_hvps}")
    with Budget(max_hvps, time_limit, progress, "trace") as budget:
        budget.plan(samples)
        batch = 8
        while len(draws) < samples:
            size = budget.affordable(min(batch, samples - len(draws)))
            if size < 1:
                break
            V = _rademacher(rng, size, objective.size)
            draws += [float(v @ hv) for v, hv in zip(V, budget.products(objective, V))]
        if len(draws) < 2:
            raise RuntimeError(f"the {budget.stop_reason()} allows fewer than 2 samples; raise it")
        done = len(draws) == samples
        return TraceEstimate(
            float(np.mean(draws)),
            float(np.std(draws, ddof=1) / math.sqrt(len(draws))),
            len(draws),
            samples,
            done,
            budget.used,
            round(budget.seconds, 3),
            None if done else budget.stop_reason(),
        )


@dataclass
class SpectralDensity:
    """Stochastic Lanczos quadrature: Ritz ``nodes`` and ``weights`` (each run's weights sum to
    1), and the density on ``grid`` (Gaussians of width ``sigma`` around the nodes, integrating
    to 1). ``steps`` is the Lanczos steps each run took (fewer than requested when the budget,
    ``stopped``, cut them short)."""

    nodes: np.ndarray
    weights: np.ndarray
    grid: np.ndarray
    density: np.ndarray
    sigma: float
    runs: int = 0
    steps: list = field(default_factory=list)
    converged: bool = True
    hvps: int = 0
    seconds: float = 0.0
    stopped: str | None = None

    def fraction_above(self, threshold: float) -> float:
        """Estimated fraction of eigenvalues above ``threshold``."""
        return float(np.sum(self.weights[self.nodes > threshold]) / np.sum(self.weights))

    def to_dict(self) -> dict:
        return {
            "nodes": self.nodes.tolist(),
            "weights": self.weights.tolist(),
            "sigma": self.sigma,
            "runs": self.runs,
            "steps": list(self.steps),
            "converged": self.converged,
            "hvps": self.hvps,
            "seconds": self.seconds,
            "stopped": self.stopped,
        }

    def __str__(self) -> str:
        return (
            f"Hessian spectral density (SLQ, {self.runs} runs of {min(self.steps, default=0)}"
            f"–{max(self.steps, default=0)} Lanczos steps), eigenvalues from {self.nodes.min():.4g} "
            f"to {self.nodes.max():.4g}; "
            + _convergence(self.converged, self.stopped, self.hvps, self.seconds)
        )

    def plot(self, ax=None):
        """Draws the density on a log scale; needs matplotlib."""
        import matplotlib.pyplot as plt

        ax = ax or plt.figure().gca()
        ax.semilogy(self.grid, np.maximum(self.density, 1e-12))
        ax.set(xlabel="Hessian eigenvalue", ylabel="density", title="Hessian spectral density (SLQ)")
        return ax


def spectral_density(
    model,
    loss,
    X,
    y,
    steps: int = 100,
    vectors: int = 10,
    grid_points: int = 400,
    sigma: float | None = None,
    seed=0,
    *,
    max_hvps: int = MAX_HVPS,
    time_limit: float = TIME_LIMIT,
    progress=None,
) -> SpectralDensity:
    """The Hessian's eigenvalue density by stochastic Lanczos quadrature (Ghorbani et al. 2019):
    ``vectors`` runs of ``steps`` Lanczos iterations (fewer when ``max_hvps`` or
    ``time_limit`` runs out first: the result says so); ``sigma`` defaults to 1% of the
    spectrum's width.

    Examples
    --------
    >>> from saddlepoint import diagnose
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(64, 3))
    >>> y = (X @ np.array([1.0, -2.0, 0.5]))[:, None]
    >>> model = sp.Dense(3, 1, dtype=np.float64, rng=0)  # a convex problem: H is positive definite
    >>> density = diagnose.spectral_density(model, sp.MSELoss(), X, y, steps=4, vectors=2)
    >>> density.grid.shape, density.density.shape, density.fraction_above(0.0)
    ((400,), (400,), 1.0)
    """
    if steps < 1 or vectors < 1 or grid_points < 2:
        raise ValueError(
            f"steps and vectors must be at least 1 and grid_points at least 2, got "
            f"{steps}, {vectors} and {grid_points}"
        )
    if sigma is not None and not sigma > 0:
        raise ValueError(f"sigma must be > 0, got {sigma}")
    objective = _objective(model, loss, X, y)
    with Budget(max_hvps, time_limit, progress, "spectral density") as budget:
        return _density(objective, budget, steps, vectors, grid_points, sigma, seed)


#: Lanczos bases kept at once by the SLQ runs (bytes): runs go in groups that fit.
_BASIS_MEMORY = 2**28


def _density(objective: Objective, budget, steps=100, vectors=10, grid_points=400, sigma=None, seed=0):
    rng = np.random.default_rng(seed)
    steps = min(steps, objective.size)
    budget.plan(steps * vectors)
    group = int(max(1, min(vectors, _BASIS_MEMORY // (8 * steps * objective.size))))
    runs: list[_Run] = []
    cut = False
    while len(runs) < vectors and not cut:
        size = budget.affordable(min(group, vectors - len(runs)))
        if size < 1:
            cut = True
            break
        batch, cut = _lanczos(objective, budget, _rademacher(rng, size, objective.size), steps)
        runs += [run for run in batch if run.steps > 0]
    if not runs:
        raise RuntimeError(f"the {budget.stop_reason()} allows no Lanczos step; raise it")
    node_parts, weight_parts = [], []
    for run in runs:
        values, _, S = run.ritz()
        node_parts.append(values)
        weight_parts.append(S[0] ** 2 / len(runs))
    nodes, weights = np.concatenate(node_parts), np.concatenate(weight_parts)
    low, high = float(nodes.min()), float(nodes.max())
    width = max(high - low, 1e-12 * max(1.0, abs(high)))
    sigma = float(sigma) if sigma is not None else 0.01 * width
    grid = np.linspace(low - 0.05 * width - 3 * sigma, high + 0.05 * width + 3 * sigma, grid_points)
    gauss = np.exp(-0.5 * ((grid[:, None] - nodes[None, :]) / sigma) ** 2) / (sigma * math.sqrt(2 * math.pi))
    taken = [run.steps for run in runs]
    complete = len(runs) == vectors and not cut
    return SpectralDensity(
        nodes,
        weights,
        grid,
        gauss @ weights,
        sigma,
        len(runs),
        taken,
        complete,
        budget.used,
        round(budget.seconds, 3),
        None if complete else budget.stop_reason(),
    )


@dataclass
class CriticalPoint:
    """What the Hessian says about the point the model sits at.

    ``critical`` says whether the gradient norm is at most ``gradient_tolerance``. At a critical
    point ``kind`` is ``"local minimum"`` (every eigenvalue positive), ``"local maximum"`` (every
    one negative), ``"saddle point"`` (both signs) or ``"degenerate"`` (some are zero within
    ``tolerance`` = ``rtol`` times the largest magnitude, and no two signs: the second-order
    test cannot decide); elsewhere ``kind`` is ``"not a critical point"``. ``curvature`` says
    what the Hessian is either way: ``"indefinite"``, ``"positive definite"``, ``"negative
    definite"``, ``"positive semidefinite"``, ``"negative semidefinite"`` or ``"zero"``.
    ``minimum_ratio`` is the course's fraction of positive eigenvalues.

    With ``method="lanczos"`` ``eigenvalues`` holds only the two extremes (Ritz values) with
    their ``residuals`` ``||H v − λ v||``, and the ratio is an estimate from the SLQ ``density``
    (eigenvalues near zero blur into both signs: 0.606 against the true 0.614 on a
    3,010-parameter network). A Ritz value is a Rayleigh quotient, so a negative one proves
    negative curvature even before convergence; ``converged`` says whether both residuals are at
    most ``residual_tolerance`` times the largest |Ritz value|, ``stopped`` which limit ended
    the work when it ended early, ``hvps`` and ``seconds`` what it cost.
    """

    kind: str
    curvature: str
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
    residuals: np.ndarray | None = None
    converged: bool = True
    hvps: int = 0
    seconds: float = 0.0
    stopped: str | None = None
    density: SpectralDensity | None = field(default=None, repr=False)

    def to_dict(self) -> dict:
        d = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "density"}
        d["eigenvalues"] = [float(e) for e in self.eigenvalues]
        d["residuals"] = None if self.residuals is None else [float(r) for r in self.residuals]
        d["minimum_ratio"] = None if math.isnan(self.minimum_ratio) else self.minimum_ratio  # valid JSON
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def convergence(self) -> str:
        """Whether the eigenvalues converged, with the residuals and the work done."""
        residuals = (
            ""
            if self.residuals is None
            else f"Ritz residuals {self.residuals[0]:.2g} (smallest), {self.residuals[-1]:.2g} (largest); "
        )
        text = residuals + _convergence(self.converged, self.stopped, self.hvps, self.seconds)
        if self.converged and self.stopped:  # the extremes converged, the density did not finish
            text += f"; the SLQ density of the minimum ratio was cut short by the {self.stopped}"
        return text

    def headline(self) -> str:
        """What the point is, in a few words that never contradict each other. Both signs of
        Ritz values prove indefiniteness; any other answer from an unconverged Lanczos is
        marked unconfirmed."""
        proven = self.converged or self.curvature == "indefinite"
        unconfirmed = "" if proven else " (unconfirmed: Lanczos did not converge)"
        if self.critical:
            return self.kind + unconfirmed
        return (
            f"not a critical point (gradient norm {self.gradient_norm:.3g}); {self.curvature} "
            f"curvature{unconfirmed}"
        )

    def __str__(self) -> str:
        lines = [
            f"{self.headline()} ({self.method} Hessian from {self.hessian_vector_product} "
            f"Hessian-vector products, {self.n_parameters} parameters)",
            f"  loss {self.loss:.6g}, gradient norm {self.gradient_norm:.3g}"
            + (
                ""
                if self.critical
                else ": the gradient is not small, so the second-order "
                "test does not apply; the curvature below describes the slope only"
            ),
        ]
        lam = self.eigenvalues
        lines.append(
            f"  eigenvalues from {lam[0]:.4g} to {lam[-1]:.4g}; |λ| ≤ {self.tolerance:.2g} counts as zero"
        )
        if self.positive is not None:
            lines.append(f"  {self.positive} positive, {self.negative} negative, {self.near_zero} near zero")
        estimate = " (SLQ estimate)" if self.method == "lanczos" else ""
        if math.isnan(self.minimum_ratio):
            lines.append("  minimum ratio not estimated: nothing was left of the budget for the SLQ density")
        else:
            lines.append(
                f"  minimum ratio (fraction of positive eigenvalues) {self.minimum_ratio:.3f}{estimate}"
            )
        lines.append("  " + self.convergence())
        if self.method == "lanczos" and not self.converged:
            lines.append(
                "  a Ritz value bounds the spectrum from inside: a negative smallest one proves "
                "negative curvature, a positive one proves nothing until it converges"
            )
        return "\n".join(lines)


def _kind(has_positive: bool, has_negative: bool, has_zero: bool) -> str:
    if has_positive and has_negative:
        return "saddle point"
    if has_zero:
        return "degenerate"
    return "local minimum" if has_positive else "local maximum"


def _curvature(has_positive: bool, has_negative: bool, has_zero: bool) -> str:
    if has_positive and has_negative:
        return "indefinite"
    sign = "positive" if has_positive else "negative" if has_negative else None
    if sign is None:
        return "zero"
    return f"{sign} semidefinite" if has_zero else f"{sign} definite"


def critical_point(
    model,
    loss,
    X,
    y,
    *,
    method: str = "auto",
    rtol: float = 1e-4,
    gradient_tolerance: float = 1e-3,
    max_full: int = MAX_FULL_HESSIAN,
    residual_tolerance: float = RESIDUAL_TOLERANCE,
    max_hvps: int = MAX_HVPS,
    time_limit: float = TIME_LIMIT,
    progress=None,
    seed=0,
) -> CriticalPoint:
    """Classifies the point ``model`` sits at on the mean loss over ``(X, y)``.

    ``method="full"`` computes every eigenvalue (``n`` Hessian-vector products, batched, and an
    ``n × n`` eigendecomposition); ``"lanczos"`` the two extremes (one Lanczos run until their
    residuals are at most ``residual_tolerance`` times the largest |Ritz value|, or 300 steps)
    and an SLQ estimate of the minimum ratio (10 runs of 100 steps); ``"auto"`` picks full up to
    ``max_full`` parameters, when ``n ≤ max_hvps`` and the first columns show it fits in the
    time. Everything runs under ``max_hvps`` Hessian-vector products and ``time_limit`` seconds:
    the result says whether it converged (``converged``, ``residuals``, ``stopped``). An
    explicit ``method="full"`` is all or nothing: ValueError when ``n > max_hvps`` or the first
    columns show the rest would not fit in ``time_limit`` (``"auto"`` then hands over to Lanczos).
    ``progress``: a bar on stderr (None: when stderr is a terminal).

    Parameters
    ----------
    model : Module
        Analysed on a float64 copy in eval mode; the model itself is not changed.
    loss : Loss
    X : array_like, (n_samples, ...)
    y : array_like, (n_samples,) or (n_samples, n_outputs)
    method : {"auto", "full", "lanczos"}
    rtol : float
        Eigenvalues within ``rtol`` times the largest magnitude count as zero.
    gradient_tolerance : float
        The largest gradient norm of a critical point.
    max_full : int
        ``"auto"`` computes the full Hessian up to this many parameters.
    residual_tolerance : float
        Lanczos's relative residual.
    max_hvps : int
        The budget in Hessian-vector products.
    time_limit : float
        The budget in seconds.
    progress : bool or None
    seed : int
        Seeds Lanczos's start vector and SLQ's probes.

    Returns
    -------
    CriticalPoint

    Raises
    ------
    ValueError
        A setting out of range, data that does not fit the model, or an explicit
        ``method="full"`` that does not fit the budget.

    Examples
    --------
    The course's worked example ``y = w1·w2·x`` with ``x = 1, y = 1`` and the MSE loss: at
    ``w1 = w2 = 0`` the gradient is zero and the Hessian ``[[0, -2], [-2, 0]]`` has eigenvalues
    -2 and 2, so the origin is a saddle point.

    >>> from saddlepoint import diagnose
    >>> model = sp.Sequential(sp.Dense(1, 1, bias=False, dtype=np.float64),
    ...                       sp.Dense(1, 1, bias=False, dtype=np.float64))
    >>> for layer in model:
    ...     layer.weight.data[...] = 0.0  # w1 = w2 = 0
    >>> X, y = np.ones((1, 1)), np.ones((1, 1))
    >>> point = diagnose.critical_point(model, sp.MSELoss(), X, y)
    >>> point.kind, point.eigenvalues.tolist(), point.minimum_ratio
    ('saddle point', [-2.0, 2.0], 0.5)
    """
    if method not in ("auto", "full", "lanczos"):
        raise ValueError(f"method must be 'auto', 'full' or 'lanczos', got {method!r}")
    if not 0 < rtol < 1:
        raise ValueError(f"rtol must be in (0, 1), got {rtol}")
    check_params(
        {"residual_tolerance": residual_tolerance, "gradient_tolerance": gradient_tolerance}, TOLERANCES
    )
    check_budget(max_hvps, time_limit)
    objective = _objective(model, loss, X, y)
    value, grad = objective.gradient()
    norm = float(np.linalg.norm(grad))
    n = objective.size
    with Budget(max_hvps, time_limit, progress, "Hessian") as budget:
        if method == "full" and n > max_hvps:
            raise ValueError(
                f"method='full' needs {n} Hessian-vector products, more than max_hvps={max_hvps}"
            )
        spectrum = None
        if method == "full" or (method == "auto" and n <= max_full and n <= max_hvps):
            try:
                spectrum = _full_spectrum(objective, budget, rtol)
            except _TooSlow as slow:
                if method == "full":
                    raise ValueError(
                        f"method='full' would take about {slow.args[0]:.0f} s more, beyond "
                        f"time_limit={time_limit:g} s; raise time_limit or use "
                        f"method='lanczos' (or 'auto')"
                    ) from None
                budget.first_batch()  # Lanczos takes over: it gets at least its first product
        if spectrum is None:
            spectrum = _lanczos_spectrum(objective, budget, rtol, residual_tolerance, seed)
    signs, fields_ = spectrum
    kind = _kind(*signs) if norm <= gradient_tolerance else "not a critical point"
    return CriticalPoint(
        kind,
        _curvature(*signs),
        value,
        norm,
        norm <= gradient_tolerance,
        n_parameters=n,
        hessian_vector_product=objective.hvp_method,
        hvps=budget.used,
        seconds=round(budget.seconds, 3),
        **fields_,
    )


def _full_spectrum(objective, budget, rtol):
    n = objective.size
    eigenvalues = np.linalg.eigvalsh(_full_hessian(objective, budget))
    tol = rtol * max(float(np.max(np.abs(eigenvalues))), np.finfo(float).tiny)
    pos, neg = int(np.sum(eigenvalues > tol)), int(np.sum(eigenvalues < -tol))
    zero = n - pos - neg
    return (pos > 0, neg > 0, zero > 0), dict(
        minimum_ratio=pos / n,
        eigenvalues=eigenvalues,
        positive=pos,
        negative=neg,
        near_zero=zero,
        tolerance=float(tol),
        method="full",
        residuals=None,
        converged=True,
        stopped=None,
    )


def _lanczos_spectrum(objective, budget, rtol, residual_tolerance, seed):
    with budget.portion(0.5, "the extreme eigenvalues"):  # the rest for the density
        extremes = extreme_eigenpairs(objective, budget, "BE", 2, seed, residual_tolerance)
    low, high = extremes.values[0], extremes.values[-1]
    tol = rtol * max(abs(low), abs(high), np.finfo(float).tiny)
    density, stopped = None, extremes.stopped
    if budget.left() >= 2:
        density = _density(objective, budget, steps=100, vectors=10, seed=seed)
        stopped = stopped or density.stopped
    ratio = density.fraction_above(tol) if density is not None else math.nan  # no budget left for it
    # The extremes bound the spectrum; zeros inside it cannot be counted without all of it.
    signs = (high > tol, low < -tol, not (low > tol or high < -tol))
    return signs, dict(
        minimum_ratio=float(ratio),
        eigenvalues=np.array([low, high]),
        positive=None,
        negative=None,
        near_zero=None,
        tolerance=float(tol),
        method="lanczos",
        residuals=np.array([extremes.residuals[0], extremes.residuals[-1]]),
        converged=extremes.converged,
        stopped=stopped,
        density=density,
    )


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
    residual: float = 0.0  # ||H u − λ u|| of the direction u used

    def to_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "direction"}

    def __str__(self) -> str:
        if not self.escaped:
            return (
                f"no escape: smallest eigenvalue {self.eigenvalue:.4g}, no step along its "
                f"eigenvector lowered the loss {self.loss_before:.6g}"
            )
        return (
            f"escaped along the eigenvector of λ = {self.eigenvalue:.4g}: step {self.step:+.4g}, "
            f"loss {self.loss_before:.6g} -> {self.loss_after:.6g}"
        )


def escape_saddle(
    model,
    loss,
    X,
    y,
    *,
    max_step: float | None = None,
    rtol: float = 1e-4,
    max_full: int = MAX_FULL_HESSIAN,
    residual_tolerance: float = RESIDUAL_TOLERANCE,
    max_hvps: int = MAX_HVPS,
    time_limit: float = TIME_LIMIT,
    progress=None,
    seed=0,
) -> EscapeResult:
    """Moves ``model`` out of a saddle point along the eigenvector of the most negative Hessian
    eigenvalue, as the course prescribes.

    Both signs are tried with a line search over steps from ``1e-4·max_step`` to ``max_step``
    (default ``4·max(1, |θ|)``; a geometric grid, then a finer one around its best). The model
    takes the step with the lowest loss if that is below the current loss; otherwise (and when
    no eigenvalue is below ``-rtol·max|λ|``) it is left unchanged. The eigenvector comes from
    the full Hessian up to ``max_full`` parameters, else from Lanczos under ``max_hvps`` and
    ``time_limit`` (an unconverged Ritz vector still has negative curvature when its value is
    negative: the result's ``residual`` says how close to an eigenvector it is).

    Parameters
    ----------
    model : Module
        Moved in place when the step lowers the loss.
    loss : Loss
    X : array_like, (n_samples, ...)
    y : array_like, (n_samples,) or (n_samples, n_outputs)
    max_step : float, optional
        The longest step tried along the eigenvector.
    rtol, max_full, residual_tolerance, max_hvps, time_limit, progress, seed
        As :func:`critical_point`.

    Returns
    -------
    EscapeResult
        The eigenvalue, the step taken and the loss before and after.

    Examples
    --------
    >>> from saddlepoint import diagnose
    >>> model = sp.Sequential(sp.Dense(1, 1, bias=False, dtype=np.float64),
    ...                       sp.Dense(1, 1, bias=False, dtype=np.float64))
    >>> for layer in model:
    ...     layer.weight.data[...] = 0.0  # w1 = w2 = 0
    >>> X, y = np.ones((1, 1)), np.ones((1, 1))
    >>> result = diagnose.escape_saddle(model, sp.MSELoss(), X, y)
    >>> result.loss_after < result.loss_before
    True
    >>> diagnose.critical_point(model, sp.MSELoss(), X, y).kind
    'not a critical point'
    """
    TOLERANCES["residual_tolerance"].check("residual_tolerance", residual_tolerance)
    objective = _objective(model, loss, X, y)
    theta = objective.point
    before = objective.loss_at()
    with Budget(max_hvps, time_limit, progress, "saddle escape") as budget:
        values = None
        if objective.size <= min(max_full, max_hvps):
            try:
                values, vectors = np.linalg.eigh(_full_hessian(objective, budget))
                residual = 0.0
            except _TooSlow:
                budget.first_batch()
        if values is None:
            found = extreme_eigenpairs(objective, budget, "BE", 2, seed, residual_tolerance)
            values, vectors, residual = found.values, found.vectors, float(found.residuals[0])
    eigenvalue, direction, scale = values[0], vectors[:, 0], np.max(np.abs(values))
    if eigenvalue >= -rtol * scale:
        return EscapeResult(float(eigenvalue), 0.0, before, before, False, direction, residual)
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
    return EscapeResult(
        float(eigenvalue), best_step, before, best_loss, best_step != 0.0, direction, residual
    )


class SaddleEscape(Callback):
    """A :class:`~saddlepoint.Trainer` callback that escapes saddle points when training stalls.

    When the training loss has not fallen by ``min_delta`` (relative) for ``patience`` epochs and
    the gradient norm on ``(X, y)`` is at most ``gradient_tolerance``, it calls
    :func:`escape_saddle`. Each escape is kept in ``escapes`` as ``(epoch, EscapeResult)``.

    Parameters
    ----------
    X : array_like, (n_samples, ...)
    y : array_like, (n_samples,) or (n_samples, n_outputs)
        The data the gradient and the Hessian are measured on (the training data, or a sample).
    patience : int
        Epochs without progress before looking for a saddle point.
    min_delta : float
        The relative fall of the training loss that counts as progress.
    gradient_tolerance : float
        The largest gradient norm of a stalled point.
    max_escapes : int
        The most calls to :func:`escape_saddle` in one fit.

    Examples
    --------
    Gradient descent cannot leave the saddle point of ``y = w1·w2·x`` at ``w1 = w2 = 0`` (its
    gradient is zero); the callback escapes it after two epochs without progress:

    >>> from saddlepoint import diagnose
    >>> model = sp.Sequential(sp.Dense(1, 1, bias=False, dtype=np.float64),
    ...                       sp.Dense(1, 1, bias=False, dtype=np.float64))
    >>> for layer in model:
    ...     layer.weight.data[...] = 0.0
    >>> X, y = np.ones((1, 1)), np.ones((1, 1))
    >>> escape = diagnose.SaddleEscape(X, y, patience=2)
    >>> trainer = sp.Trainer(model, sp.MSELoss(), sp.SGD(model.parameters(), lr=0.1),
    ...                      callbacks=[escape], batch_size=1, verbose=0)
    >>> history = trainer.fit(X, y, epochs=4)
    >>> escape.escapes[0][0], [round(loss, 3) for loss in history["loss"]]
    (2, [1.0, 1.0, 0.0, 0.0])
    """

    def __init__(
        self,
        X,
        y,
        patience: int = 3,
        min_delta: float = 1e-4,
        gradient_tolerance: float = 1e-3,
        max_escapes: int = 10,
    ):
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
