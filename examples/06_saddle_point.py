"""The saddle point (lecture "local minima and saddle point"): the course's worked example and a
network stuck at a saddle.

1. The model ``y = w1·w2·x`` with one sample ``x = 1, ŷ = 1`` has the loss ``(1 − w1·w2)²``. At
   ``(0, 0)`` the gradient is zero and the Hessian is ``[[0, −2], [−2, 0]]``: eigenvalues −2 and 2,
   a saddle point. Moving along ``u = (1, 1)/√2``, the eigenvector of −2, lowers the loss; the
   library computes all of it (``hessian``, ``critical_point``, ``escape_saddle``).
2. A tanh network started with every weight zero on centered targets sits at a saddle point too:
   plain gradient descent never leaves it, and the ``SaddleEscape`` callback gets it out during
   ``Trainer.fit``.

Run ``python examples/06_saddle_point.py`` (``--quick`` for the small settings CI uses).
"""

import numpy as np
from _common import finding, quick, save_figure

import saddlepoint as sp
from saddlepoint import diagnose

# --- 1. the worked example -------------------------------------------------------------------
# Two bias-free 1x1 Dense layers compute w2·(w1·x): the course's model, with exact Hessians.
worked = sp.Sequential(
    sp.Dense(1, 1, bias=False, dtype=np.float64), sp.Dense(1, 1, bias=False, dtype=np.float64)
)
for p in worked.parameters():
    p.data[...] = 0.0
mse, x1, y1 = sp.MSELoss(), np.ones((1, 1)), np.ones((1, 1))

H = diagnose.hessian(worked, mse, x1, y1)
point = diagnose.critical_point(worked, mse, x1, y1)
print("Hessian at (w1, w2) = (0, 0):\n", H)
print(point)
low, high = point.eigenvalues
finding(f"the worked example at (0, 0) is a {point.kind}: Hessian eigenvalues {low:.4g} and {high:.4g}")

escape = diagnose.escape_saddle(worked, mse, x1, y1)
u = escape.direction * np.sign(escape.direction[0])  # the eigenvector, up to its sign
w1, w2 = (p.data.item() for p in worked.parameters())
print(escape, f"-> (w1, w2) = ({w1:.4f}, {w2:.4f})")
finding(
    f"the eigenvector of λ = {escape.eigenvalue:.4g} is u = ({u[0]:.4f}, {u[1]:.4f}); "
    f"escape lowers the loss from {escape.loss_before:.4g} to {escape.loss_after:.4g}"
)


def draw_surface(ax):
    grid = np.linspace(-2, 2, 201)
    W1, W2 = np.meshgrid(grid, grid)
    surface = ax.contourf(
        W1, W2, (1 - W1 * W2) ** 2, levels=np.linspace(0, 4, 17), cmap="viridis", extend="max"
    )
    ax.figure.colorbar(surface, ax=ax, label="loss (1 − w1·w2)²")
    for sign in (1, -1):  # the valley of minima, w1·w2 = 1
        branch = grid[grid * sign > 0.2]
        ax.plot(branch, 1 / branch, "w--", linewidth=1, label="minima w1·w2 = 1" if sign == 1 else None)
    ax.plot(0, 0, "r*", markersize=14, label="saddle point (0, 0)")
    ax.annotate("", xy=(w1, w2), xytext=(0, 0), arrowprops=dict(arrowstyle="->", color="red", linewidth=2))
    ax.plot(w1, w2, "ro", label=f"escape along ±u = (1, 1)/√2, λ = −2 (loss {escape.loss_after:.2g})")
    ax.set(xlabel="w1", ylabel="w2", xlim=(-2, 2), ylim=(-2, 2), title="loss of y = w1·w2·x on x = 1, ŷ = 1")
    ax.set_aspect("equal", adjustable="box")
    ax.legend(loc="upper left", fontsize="small", framealpha=0.9)


save_figure("06_saddle_point_surface", draw_surface, figsize=(6.0, 5.2))

# --- 2. a network stopped at a saddle, escaped by the callback ---------------------------------
rng = np.random.default_rng(0)
n = 200 if quick() else 400
X = rng.uniform(-2, 2, (n, 2))
y = np.sin(X[:, :1]) + 0.5 * X[:, 1:]
y -= y.mean()  # centered: the zero network's output bias is already optimal
epochs = 60 if quick() else 200


def zero_network():
    """tanh(0) = 0 and zero output weights: every weight's gradient is exactly zero."""
    net = sp.mlp([2, 8, 1], "tanh", dtype=np.float64, rng=0)
    for p in net.parameters():
        p.data[...] = 0.0
    return net


def fit(callbacks=()):
    net = zero_network()
    trainer = sp.Trainer(
        net, mse, sp.SGD(net.parameters(), lr=0.1), batch_size=n, verbose=0, seed=0, callbacks=list(callbacks)
    )
    return net, trainer.fit(X, y, epochs)["loss"]


stuck_point = diagnose.critical_point(zero_network(), mse, X, y)
print("\nthe zero network:", stuck_point)
finding(
    f"the all-zero tanh network is a {stuck_point.kind}: gradient norm {stuck_point.gradient_norm:.2g}, "
    f"eigenvalues from {stuck_point.eigenvalues[0]:.3g} to {stuck_point.eigenvalues[-1]:.3g}"
)
_, plain = fit()
callback = diagnose.SaddleEscape(X, y, patience=3)
_, escaped = fit([callback])
epoch, result = callback.escapes[0]
print(f"gradient descent alone: loss {plain[0]:.4f} -> {plain[-1]:.4f} after {epochs} epochs")
print(f"with SaddleEscape: {len(callback.escapes)} escape(s); the first at epoch {epoch}: {result}")
finding(
    f"gradient descent alone stays at the saddle: loss {plain[0]:.4g} -> {plain[-1]:.4g} in {epochs} epochs"
)
finding(
    f"SaddleEscape escaped at epoch {epoch} (λ = {result.eigenvalue:.3g}): loss {result.loss_before:.4g} -> "
    f"{result.loss_after:.4g}, and {escaped[-1]:.4g} after {epochs} epochs"
)


def draw_training(ax):
    ax.plot(range(1, epochs + 1), plain, label="gradient descent")
    ax.plot(range(1, epochs + 1), escaped, label="gradient descent + SaddleEscape")
    for i, (at, _) in enumerate(callback.escapes):
        ax.axvline(at, color="gray", linestyle=":", linewidth=1, label="escape" if i == 0 else None)
    ax.set(
        xlabel="epoch",
        ylabel="training loss (MSE)",
        ylim=(0, None),
        title="a tanh network started at a saddle (all weights zero)",
    )
    ax.legend()


save_figure("06_saddle_point_training", draw_training)
