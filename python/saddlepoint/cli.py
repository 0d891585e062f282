"""The ``saddlepoint`` command: ``saddlepoint train`` (the main job) and ``saddlepoint diagnose``."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

OPTIMIZERS = ("sgd", "momentum", "adagrad", "rmsprop", "adam", "adamw")
SCHEDULES = ("none", "step", "exponential", "cosine", "onecycle", "plateau")


def _hidden_sizes(text: str) -> list[int]:
    try:
        sizes = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--hidden must be comma-separated integers, got {text!r}") from None
    if any(s < 0 for s in sizes):
        raise argparse.ArgumentTypeError(f"--hidden sizes must be >= 0, got {text!r}")
    return [s for s in sizes if s > 0]


def _positive(kind):
    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a {kind.__name__}, got {text!r}") from None
        if not value > 0:
            raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
        return value
    return parse


def _fraction(text):
    value = float(text)
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"must be in [0, 1), got {text}")
    return value


def add_data_options(parser: argparse.ArgumentParser) -> None:
    """The data options shared by every command."""
    from .data import BUNDLED

    parser.add_argument("--data", default="digits", metavar="NAME|PATH.csv",
                        help=f"a bundled data set ({', '.join(sorted(BUNDLED))}; default digits) "
                             "or a CSV file with a header row and numeric cells")
    parser.add_argument("--target", help="the CSV column to predict (required with a CSV)")
    parser.add_argument("--task", choices=("classification", "regression"),
                        help="inferred by default: integer targets with few distinct values are classes")
    parser.add_argument("--test-size", type=_fraction, default=0.25,
                        help="fraction held out as the test split (default 0.25)")
    parser.add_argument("--seed", type=int, default=0, help="seed of splits, weights, shuffles and dropout (default 0)")
    parser.add_argument("--threads", type=_positive(int), help="kernel threads (default: one per core)")


def add_model_options(parser: argparse.ArgumentParser, epochs: int) -> None:
    """The model and training options shared by ``train`` and ``diagnose``."""
    from .layers import ACTIVATIONS

    parser.add_argument("--hidden", type=_hidden_sizes, default=[128],
                        help="comma-separated hidden layer sizes; 0 for a linear model (default 128)")
    parser.add_argument("--activation", default="relu", choices=sorted(ACTIVATIONS),
                        help="activation between dense layers (default relu)")
    parser.add_argument("--batchnorm", action="store_true", help="batch normalization after each hidden dense layer")
    parser.add_argument("--dropout", type=_fraction, default=0.0, help="dropout probability after each hidden layer")
    parser.add_argument("--optimizer", default="adam", choices=OPTIMIZERS,
                        help="sgd, momentum (SGD with momentum 0.9), adagrad, rmsprop, adam or adamw (default adam)")
    parser.add_argument("--lr", type=_positive(float), default=1e-3, help="learning rate (default 1e-3)")
    parser.add_argument("--weight-decay", type=float, default=0.0, help="L2 penalty (decoupled for adamw; default 0)")
    parser.add_argument("--batch-size", type=_positive(int), default=32, help="mini-batch size (default 32)")
    parser.add_argument("--epochs", type=_positive(int), default=epochs,
                        help=f"passes over the training data (default {epochs})")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="saddlepoint", description="Train neural networks fast on the CPU.")
    commands = parser.add_subparsers(dest="command", required=True)
    train = commands.add_parser(
        "train", help="train an MLP and report its test score",
        description="Train an MLP (dense layers) with mini-batches on a bundled data set or a CSV; "
                    "print progress to stderr and the final table to stdout; write a run folder.")
    add_data_options(train)
    add_model_options(train, epochs=30)
    train.add_argument("--schedule", default="none", choices=SCHEDULES,
                       help="learning-rate schedule over the epochs (default none)")
    train.add_argument("--warmup", type=int, default=0, metavar="EPOCHS",
                       help="linear warmup epochs before the schedule (default 0)")
    train.add_argument("--val-fraction", type=_fraction, default=0.1,
                       help="fraction of the training split used for validation (default 0.1)")
    train.add_argument("--early-stopping", type=int, default=0, metavar="PATIENCE",
                       help="stop after this many epochs without a better validation loss, "
                            "restoring the best weights (default 0: off)")
    train.add_argument("--out", type=Path, help="run folder (default runs/train-<time>)")

    diagnose = commands.add_parser(
        "diagnose", help="find out why training goes wrong (the course's guidance and critical points)",
        description="Train the MLP and reference models (a linear one and one a layer deeper), give "
                    "the course's verdict (model bias, optimization, overfitting, mismatch or "
                    "healthy) with its evidence and remedies, classify the point training ended at "
                    "with the Hessian (local minimum, saddle point, ...), and write a report folder.")
    add_data_options(diagnose)
    diagnose.add_argument("--test", metavar="PATH.csv",
                          help="a separate test CSV with the same columns (for the mismatch check); "
                               "by default --test-size of --data is held out")
    add_model_options(diagnose, epochs=50)
    diagnose.add_argument("--larger", type=_hidden_sizes, metavar="SIZES",
                          help="hidden sizes of the larger reference model (default: --hidden with "
                               "its last layer repeated once more)")
    diagnose.add_argument("--val-fraction", type=_fraction, default=0.2,
                          help="fraction of the training split used for validation (default 0.2)")
    diagnose.add_argument("--hessian-samples", type=_positive(int), default=1000,
                          help="training samples the Hessian analysis uses (default 1000)")
    diagnose.add_argument("--out", type=Path, help="report folder (default runs/diagnose-<time>)")
    return parser


def load_data(args):
    """``(X, y, task)`` for the data options; class labels must be integers."""
    from .data import BUNDLED, infer_task, load_bundled, load_csv

    if args.data in BUNDLED:
        X, y, task = load_bundled(args.data)
    elif args.data.lower().endswith(".csv"):
        if not args.target:
            raise ValueError("--target COLUMN is required with a CSV file")
        X, y, _ = load_csv(args.data, args.target)
        task = infer_task(y)
    else:
        raise ValueError(f"--data must be one of {sorted(BUNDLED)} or a .csv file, got {args.data!r}")
    task = args.task or task
    if task == "classification" and not np.all(np.asarray(y) == np.round(y)):
        raise ValueError("--task classification needs integer class labels in the target")
    return X, y, task


def split_and_standardize(X, y, args, classification: bool, test=None):
    """``(X_train, X_test, y_train, y_test)``: ``test`` as given, or ``--test-size`` held out
    (stratified for classes); features standardized with scikit-learn's ``StandardScaler``
    fitted on the training split only."""
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    if test is None:
        X_train, X_test, y_train, y_test = train_test_split(
            X, y, test_size=args.test_size, random_state=args.seed, stratify=y if classification else None)
    else:
        (X_train, y_train), (X_test, y_test) = (X, y), test
    scaler = StandardScaler().fit(X_train)
    return scaler.transform(X_train), scaler.transform(X_test), y_train, y_test


def build_model(n_in, hidden, n_out, args, rng):
    from . import layers

    modules, width = [], n_in
    for size in hidden:
        modules.append(layers.Dense(width, size, rng=rng))
        if args.batchnorm:
            modules.append(layers.BatchNorm1d(size))
        modules.append(layers.ACTIVATIONS[args.activation]())
        if args.dropout:
            modules.append(layers.Dropout(args.dropout, rng=rng))
        width = size
    modules.append(layers.Dense(width, n_out, rng=rng))
    model = layers.Sequential(*modules)
    model[0].input_grad = False  # the inputs need no gradient
    return model


def build_optimizer(params, args):
    from . import optim

    wd = args.weight_decay
    return {
        "sgd": lambda: optim.SGD(params, lr=args.lr, weight_decay=wd),
        "momentum": lambda: optim.SGD(params, lr=args.lr, momentum=0.9, weight_decay=wd),
        "adagrad": lambda: optim.Adagrad(params, lr=args.lr, weight_decay=wd),
        "rmsprop": lambda: optim.RMSprop(params, lr=args.lr, weight_decay=wd),
        "adam": lambda: optim.Adam(params, lr=args.lr, weight_decay=wd),
        "adamw": lambda: optim.AdamW(params, lr=args.lr, weight_decay=wd),
    }[args.optimizer]()


def build_schedule(optimizer, args, steps_per_epoch):
    """``(scheduler, interval)`` for the schedule options."""
    from . import schedule

    epochs = args.epochs
    if args.schedule == "onecycle":
        return schedule.OneCycleLR(optimizer, max_lr=args.lr, total_steps=epochs * steps_per_epoch), "batch"
    if args.schedule == "plateau":
        return schedule.ReduceLROnPlateau(optimizer, factor=0.5, patience=3), "epoch"
    decay_epochs = max(1, epochs - args.warmup)
    decay = {
        "none": lambda: schedule.LinearLR(optimizer, 1.0, 1.0, 1),
        "step": lambda: schedule.StepLR(optimizer, step_size=max(1, decay_epochs // 3), gamma=0.1),
        "exponential": lambda: schedule.ExponentialLR(optimizer, gamma=0.01 ** (1 / decay_epochs)),
        "cosine": lambda: schedule.CosineAnnealingLR(optimizer, T_max=decay_epochs),
    }[args.schedule]
    if args.warmup <= 0:
        return (decay() if args.schedule != "none" else None), "epoch"
    warmup = schedule.LinearWarmup(optimizer, warmup_steps=args.warmup)
    return schedule.SequentialLR(optimizer, [warmup, decay()], milestones=[args.warmup]), "epoch"


def run_train(args) -> int:
    from . import get_num_threads, set_num_threads
    from .losses import CrossEntropyLoss, MSELoss
    from .trainer import EarlyStopping, Trainer, metric_value

    if args.threads:
        set_num_threads(args.threads)
    if args.warmup < 0:
        raise ValueError(f"--warmup must be >= 0, got {args.warmup}")
    X, y, task = load_data(args)
    classification = task == "classification"
    if classification:
        classes, y = np.unique(y, return_inverse=True)
    X_train, X_test, y_train, y_test = split_and_standardize(X, y, args, classification)
    if classification:
        n_out, loss, metrics = len(classes), CrossEntropyLoss(), ["accuracy"]
    else:
        y_mean, y_std = float(np.mean(y_train)), float(np.std(y_train)) or 1.0
        y_train = ((y_train - y_mean) / y_std).reshape(-1, 1)
        n_out, loss, metrics = 1, MSELoss(), ["r2"]
    rng = np.random.default_rng(args.seed)
    sizes = [X.shape[1], *args.hidden, n_out]
    model = build_model(X.shape[1], args.hidden, n_out, args, rng)
    optimizer = build_optimizer(model.parameters(), args)
    n_fit = len(X_train) - int(len(X_train) * args.val_fraction)
    scheduler, interval = build_schedule(optimizer, args, -(-n_fit // args.batch_size))
    callbacks = [EarlyStopping(patience=args.early_stopping)] if args.early_stopping > 0 else []
    if callbacks and not args.val_fraction:
        raise ValueError("--early-stopping needs a validation split: set --val-fraction > 0")
    trainer = Trainer(model, loss, optimizer, scheduler=scheduler, scheduler_interval=interval,
                      metrics=metrics, batch_size=args.batch_size, callbacks=callbacks,
                      verbose=0 if args.quiet else 1, seed=args.seed)
    print(f"training {args.data} ({task}): {len(X_train)} train / {len(X_test)} test samples, "
          f"layers {sizes}, {args.optimizer} lr {args.lr}, {get_num_threads()} threads", file=sys.stderr)
    start = time.perf_counter()
    history = trainer.fit(X_train, y_train, epochs=args.epochs, validation_split=args.val_fraction or 0.0)
    seconds = time.perf_counter() - start
    outputs = trainer.predict(X_test)
    rows = [("epochs", str(len(history.epochs))), ("train loss", f"{history['loss'][-1]:.4f}")]
    if classification:
        test_loss = loss(outputs, y_test)
        rows += [("test loss", f"{test_loss:.4f}"), ("test accuracy", f"{metric_value('accuracy', outputs, y_test):.4f}")]
    else:
        predictions = outputs[:, 0] * y_std + y_mean
        rows += [("test RMSE", f"{np.sqrt(np.mean((predictions - y_test) ** 2)):.4g}"),
                 ("test R2", f"{metric_value('r2', predictions.reshape(-1, 1), y_test.reshape(-1, 1)):.4f}")]
    out = args.out or Path("runs") / time.strftime("train-%Y%m%d-%H%M%S")
    rows += [("seconds", f"{seconds:.2f}"), ("run folder", str(out))]
    write_run_folder(out, args, sizes, task, history, model, dict(rows))
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    return 0


def write_run_folder(out: Path, args, sizes, task, history, model, results: dict) -> None:
    """config.json, history.csv/json, weights.safetensors and, with matplotlib, loss.png."""
    from . import checkpoint
    from .plot import save_plot

    out.mkdir(parents=True, exist_ok=True)
    config = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    config.update(layers=sizes, task=task, results=results)
    (out / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    history.to_csv(out / "history.csv")
    (out / "history.json").write_text(json.dumps(history.to_dict(), indent=2) + "\n")
    checkpoint.save_weights(model, out / "weights.safetensors")
    def draw(ax):
        for key in ("loss", "val_loss"):
            if key in history:
                ax.plot(history.epochs, history[key], label=key)
        ax.set(xlabel="epoch", ylabel="loss", title=f"saddlepoint train --data {args.data}")
        ax.legend()

    save_plot(out / "loss.png", draw, figsize=(6, 4))


def run_diagnose(args) -> int:
    from . import diagnose, get_num_threads, set_num_threads
    from .data import load_csv

    if args.threads:
        set_num_threads(args.threads)
    if not args.val_fraction:
        raise ValueError("diagnose needs a validation split: set --val-fraction > 0")
    X, y, task = load_data(args)
    classification = task == "classification"
    test = None
    if args.test:
        if not args.data.lower().endswith(".csv"):
            raise ValueError("--test needs --data to be a CSV file with the same columns")
        X_test, y_test, _ = load_csv(args.test, args.target)
        if X_test.shape[1] != X.shape[1]:
            raise ValueError(f"--test {args.test} has {X_test.shape[1]} feature columns, --data has {X.shape[1]}")
        test = (X_test, y_test)
    X_train, X_test, y_train, y_test = split_and_standardize(X, y, args, classification, test)
    n_in = X.shape[1]
    n_out = len(np.unique(np.concatenate([y_train, y_test]))) if classification else 1
    larger_hidden = args.larger if args.larger is not None else [*args.hidden, (args.hidden or [64])[-1]]
    model = build_model(n_in, args.hidden, n_out, args, np.random.default_rng(args.seed))
    print(f"diagnosing {args.data} ({task}): layers {[n_in, *args.hidden, n_out]} against a linear model "
          f"and layers {[n_in, *larger_hidden, n_out]}, {args.optimizer} lr {args.lr}, {args.epochs} "
          f"epochs, {get_num_threads()} threads", file=sys.stderr)
    guidance = diagnose.guide(
        model, X_train, y_train, validation_split=args.val_fraction, test_data=(X_test, y_test),
        larger=lambda: build_model(n_in, larger_hidden, n_out, args, np.random.default_rng(args.seed)),
        task=task, optimizer=lambda params: build_optimizer(params, args), epochs=args.epochs,
        batch_size=args.batch_size, seed=args.seed, verbose=0 if args.quiet else 1)
    X_fit, y_fit = guidance.train_data
    pick = np.random.default_rng(args.seed).permutation(len(X_fit))[:args.hessian_samples]
    analysed = (model, guidance.loss, X_fit[pick], y_fit[pick])
    print("analysing the Hessian at the end of training", file=sys.stderr)
    critical = diagnose.critical_point(*analysed, seed=args.seed)
    landscape = diagnose.loss_landscape_2d(*analysed, steps=21, seed=args.seed)
    escape = None
    if critical.kind == "saddle point" and critical.critical:
        escape = diagnose.escape_saddle(*analysed, seed=args.seed)
    out = args.out or Path("runs") / time.strftime("diagnose-%Y%m%d-%H%M%S")
    config = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    diagnose.write_report(out, f"saddlepoint diagnose --data {args.data}", guidance, critical, escape,
                          landscape, config)
    rows = [("verdict", guidance.verdict), ("because", guidance.reason),
            ("critical point", f"{critical.kind} ({critical.method} Hessian, {critical.n_parameters} parameters)"),
            ("gradient norm", f"{critical.gradient_norm:.3g}"),
            ("minimum ratio", f"{critical.minimum_ratio:.3f}")]
    if escape is not None:
        rows.append(("saddle escape", str(escape)))
    rows.append(("report folder", str(out)))
    print(guidance.table())
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    return 0


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return run_diagnose(args) if args.command == "diagnose" else run_train(args)
    except (ValueError, TypeError, FileNotFoundError, FloatingPointError) as e:
        print(f"saddlepoint: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
