"""The ``saddlepoint`` command."""

from __future__ import annotations

import argparse
import sys

import numpy as np

from . import get_num_threads, set_num_threads
from .data import BUNDLED, load_bundled
from .layers import ACTIVATIONS, mlp
from .losses import CrossEntropyLoss, MSELoss
from .optim import SGD
from .train import accuracy, predict, train_epoch


def _hidden_sizes(text: str) -> list[int]:
    try:
        sizes = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--hidden must be comma-separated integers, got {text!r}")
    if any(s < 0 for s in sizes):
        raise argparse.ArgumentTypeError(f"--hidden sizes must be >= 0, got {text!r}")
    return [s for s in sizes if s > 0]


def _positive(kind):
    def parse(text):
        value = kind(text)
        if not value > 0:
            raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
        return value
    return parse


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="saddlepoint",
        description="Train neural networks fast on the CPU.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    train = commands.add_parser(
        "train",
        help="train an MLP on a bundled data set and report its test score",
        description="Train an MLP (dense layers) on one of scikit-learn's bundled data sets "
                    "with mini-batch gradient descent; print progress to stderr and the test "
                    "score to stdout.",
    )
    train.add_argument("--data", default="digits", choices=sorted(BUNDLED),
                       help="bundled data set (default: digits, 8x8 handwritten digits)")
    train.add_argument("--hidden", type=_hidden_sizes, default=[128],
                       help="comma-separated hidden layer sizes; 0 for a linear model (default: 128)")
    train.add_argument("--activation", default="relu", choices=sorted(ACTIVATIONS),
                       help="activation between dense layers (default: relu)")
    train.add_argument("--lr", type=_positive(float), default=0.05,
                       help="learning rate of gradient descent (default: 0.05)")
    train.add_argument("--epochs", type=_positive(int), default=30, help="passes over the training data (default: 30)")
    train.add_argument("--batch-size", type=_positive(int), default=32, help="mini-batch size (default: 32)")
    train.add_argument("--test-size", type=float, default=0.25,
                       help="fraction of the data held out for the test score (default: 0.25)")
    train.add_argument("--seed", type=int, default=0, help="seed of the split, weights and shuffles (default: 0)")
    train.add_argument("--threads", type=_positive(int), default=None,
                       help="threads for the kernels (default: one per core)")
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def run_train(args) -> int:
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler
    from tqdm import tqdm

    if not 0.0 < args.test_size < 1.0:
        raise ValueError(f"--test-size must be in (0, 1), got {args.test_size}")
    if args.threads:
        set_num_threads(args.threads)
    X, y, task = load_bundled(args.data)
    classification = task == "classification"
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=args.test_size, random_state=args.seed,
        stratify=y if classification else None)
    # Feature normalization, fitted on the training split only.
    scaler = StandardScaler().fit(X_train)
    X_train = scaler.transform(X_train).astype(np.float32)
    X_test = scaler.transform(X_test).astype(np.float32)
    if classification:
        n_out, loss_fn = int(y.max()) + 1, CrossEntropyLoss()
    else:
        n_out, loss_fn = 1, MSELoss()
        y_mean, y_std = y_train.mean(), y_train.std()
        y_train = ((y_train - y_mean) / y_std).astype(np.float32).reshape(-1, 1)
    rng = np.random.default_rng(args.seed)
    model = mlp([X.shape[1], *args.hidden, n_out], args.activation, rng=rng)
    model[0].input_grad = False
    optimizer = SGD(model.parameters(), lr=args.lr)
    print(f"training {args.data}: {len(X_train)} train / {len(X_test)} test samples, "
          f"layers {[X.shape[1], *args.hidden, n_out]}, {get_num_threads()} threads",
          file=sys.stderr)
    epochs = tqdm(range(1, args.epochs + 1), desc="epochs", unit="epoch", file=sys.stderr,
                  disable=args.quiet)
    for _ in epochs:
        loss = train_epoch(model, loss_fn, optimizer, X_train, y_train, args.batch_size, rng)
        epochs.set_postfix(loss=f"{loss:.4f}")
    if classification:
        print(f"test accuracy: {accuracy(model, X_test, y_test):.4f}")
    else:
        pred = predict(model, X_test)[:, 0] * y_std + y_mean
        r2 = 1.0 - np.sum((pred - y_test) ** 2) / np.sum((y_test - y_test.mean()) ** 2)
        print(f"test R2: {r2:.4f}")
    print(f"final training loss: {loss:.4f}")
    return 0


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return run_train(args)
    except (ValueError, TypeError) as e:
        print(f"saddlepoint: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
