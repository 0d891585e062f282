"""The ``saddlepoint`` command: ``saddlepoint train`` (the main job) and ``saddlepoint diagnose``.

Every mistake a user can make (an option, a file, a table, a run folder) is checked before
training starts and raised as :class:`UsageError` (or the data module's ``TableError``);
:func:`main` turns those, and only those, into one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import errno
import json
import math
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from . import __version__, bench, diagnose, nn, optim
from ._core import get_num_threads, matmul_simd, set_num_threads
from .data import (
    BUNDLED,
    Compose,
    ImageRows,
    RandomCrop,
    RandomHorizontalFlip,
    TableError,
    TargetEncoder,
    drop_missing_target,
    target_values,
)
from .data.preprocess import Preprocessor
from .data.tables import load_bundled_frame, read_table
from .io import load_run, save_onnx, save_run, save_weights
from .io.onnx import require_onnx
from .io.runs import CSV_FLOAT_FORMAT, check_columns, prediction_frame, write_columns
from .nn import ACTIVATIONS, Dropout
from .plot import MISSING_MATPLOTLIB, plot_learning_curves, save_plot
from .training import EarlyStopping, Trainer, TrainingDiverged, lr_sweep, metric_value
from .training.metrics import classification_scores
from .validation import Real

OPTIMIZERS = ("sgd", "momentum", "adagrad", "rmsprop", "adam", "adamw")
SCHEDULES = ("none", "step", "exponential", "cosine", "onecycle", "plateau")
MODELS = ("mlp", "cnn")
#: ``--augment``'s image augmentations: a random shift (a crop of the image padded by an eighth
#: of its size, at least 1 pixel) and a left-right mirror.
AUGMENTATIONS = ("crop", "flip")
#: The image shape of a bundled data set, for ``--model cnn`` without ``--image-shape``.
BUNDLED_IMAGES = {"digits": (1, 8, 8)}
#: Arrays of the parameters' size each optimizer keeps besides the weights and the gradients.
OPTIMIZER_STATE_COPIES = {"sgd": 0, "momentum": 1, "adagrad": 1, "rmsprop": 1, "adam": 2, "adamw": 2}


#: ``saddlepoint train``'s defaults: at most this many epochs, stopped early (the best weights
#: restored) when the validation loss has not improved for more than this many epochs.
DEFAULT_EPOCHS = 200
DEFAULT_PATIENCE = 10


#: The final table's rows of ``training.metrics.classification_scores``.
SCORE_ROWS = {
    "accuracy": "test accuracy",
    "balanced_accuracy": "test balanced accuracy",
    "macro_f1": "test macro F1",
    "roc_auc": "test ROC AUC",
}


class UsageError(Exception):
    """A mistake in the command's options or inputs; ``main`` prints it as one line, exit 2."""


#: What ``main`` reports as one line with exit status 2; anything else is a bug and shows a traceback.
USER_ERRORS = (UsageError, TableError)


class _Parser(argparse.ArgumentParser):
    """argparse, with its errors raised as :class:`UsageError` (one line) instead of printing
    the usage and exiting."""

    def error(self, message):
        raise UsageError(f"{message} (see {self.prog} --help)")

    def parse_args(self, args=None, namespace=None):
        """As argparse's, with the help hint of unknown options naming the command they follow."""
        parsed, extras = self.parse_known_args(args, namespace)
        if extras:
            command = getattr(parsed, "command", None)
            prog = f"{self.prog} {command}" if command else self.prog
            raise UsageError(f"unrecognized arguments: {' '.join(extras)} (see {prog} --help)")
        return parsed


def _image_shape(text: str) -> tuple[int, int, int]:
    try:
        shape = tuple(int(s) for s in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be C,H,W (three integers), got {text!r}") from None
    if len(shape) != 3 or min(shape) < 1:
        raise argparse.ArgumentTypeError(f"must be C,H,W (three positive integers), got {text!r}")
    return shape


def _channel_sizes(text: str) -> list[int]:
    sizes = _hidden_sizes(text)
    if not sizes or any(s <= 0 for s in (int(t) for t in text.split(",") if t.strip())):
        raise argparse.ArgumentTypeError(f"must be comma-separated positive integers, got {text!r}")
    return sizes


def _augmentations(text: str) -> list[str]:
    kinds = [s.strip() for s in text.split(",") if s.strip()]
    unknown = sorted(set(kinds) - set(AUGMENTATIONS))
    if unknown or not kinds:
        raise argparse.ArgumentTypeError(
            f"must be a comma-separated list of {', '.join(AUGMENTATIONS)}, got {text!r}"
        )
    return kinds


def _batch_sizes(text: str) -> list[int]:
    try:
        sizes = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be comma-separated integers, got {text!r}") from None
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"must be comma-separated positive batch sizes, got {text!r}")
    return sizes


def _learning_rates(text: str) -> list[float]:
    try:
        rates = [float(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be comma-separated numbers, got {text!r}") from None
    if not rates or not all(math.isfinite(r) and r > 0 for r in rates):
        raise argparse.ArgumentTypeError(f"must be comma-separated positive learning rates, got {text!r}")
    return rates


def _hidden_sizes(text: str) -> list[int]:
    try:
        sizes = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be comma-separated integers, got {text!r}") from None
    if any(s < 0 for s in sizes):
        raise argparse.ArgumentTypeError(f"sizes must be >= 0, got {text!r}")
    return [s for s in sizes if s > 0]


#: The ranges of the options, as validation.py's constraints: the ones the constructors check
#: (``--dropout`` is Dropout's ``p``), so an option can never hold what a constructor refuses.
POSITIVE = Real(0, closed="neither")
NONNEGATIVE = Real(0)
FRACTION = Real(0, 1, closed="left")
OPEN_FRACTION = Real(0, 1, closed="neither")


def _interval(constraint: Real) -> str:
    """A range as the messages write it: ``[0, 1)``, ``(0, inf)``."""
    closed_left = constraint.low is not None and constraint.closed in ("both", "left")
    closed_right = constraint.high is not None and constraint.closed in ("both", "right")
    low = "-inf" if constraint.low is None else constraint.low
    high = "inf" if constraint.high is None else constraint.high
    return f"{'[' if closed_left else '('}{low}, {high}{']' if closed_right else ')'}"


def _option(kind, constraint: Real):
    """An argparse type: the text read as ``kind`` (int or float) and checked by ``constraint``;
    argparse reports what they refuse as one line."""

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected a{'n integer' if kind is int else ' number'}, got {text!r}"
            ) from None
        if not constraint.accepts(value):
            raise argparse.ArgumentTypeError(f"must be in {_interval(constraint)}, got {text}")
        return value

    return parse


def _positive(kind):
    return _option(kind, POSITIVE)


def _nonnegative(kind):
    return _option(kind, NONNEGATIVE)


_fraction = _option(float, FRACTION)
_dropout = _option(float, Dropout.constraints["p"])
_open_fraction = _option(float, OPEN_FRACTION)


def add_data_options(parser: argparse.ArgumentParser) -> None:
    """The data options shared by every command."""

    parser.add_argument(
        "--data",
        default="digits",
        metavar="NAME|PATH",
        help=f"a bundled data set ({', '.join(sorted(BUNDLED))}; default digits) or a table with "
        "a header row: CSV or TSV (delimiter detected), .txt, .csv.gz or Parquet",
    )
    parser.add_argument("--target", help="the column to predict (required with a table file)")
    parser.add_argument(
        "--features",
        type=_column_list,
        metavar="COL,...",
        help="the columns to learn from (default: every column but the target, identifiers and "
        "the --drop ones)",
    )
    parser.add_argument("--drop", type=_column_list, metavar="COL,...", help="columns to leave out")
    parser.add_argument(
        "--task",
        choices=("classification", "regression"),
        help="inferred by default: integer targets with few distinct values are classes",
    )
    parser.add_argument(
        "--test-size",
        type=_open_fraction,
        default=0.25,
        help="fraction held out as the test split (default 0.25)",
    )
    parser.add_argument(
        "--seed",
        type=_nonnegative(int),
        default=0,
        help="seed of splits, weights, shuffles and dropout (default 0)",
    )
    parser.add_argument("--threads", type=_positive(int), help="kernel threads (default: one per core)")


def add_model_options(parser: argparse.ArgumentParser, epochs: int, epochs_help: str | None = None) -> None:
    """The model and training options shared by ``train`` and ``diagnose``."""

    parser.add_argument(
        "--model",
        default="mlp",
        choices=MODELS,
        help="mlp: dense layers (default); cnn: per --channels entry a 3x3 convolution, the "
        "activation and a 2x2 max pooling, then the --hidden dense layers, on images: the digits "
        "(1x8x8) or a table of flattened images (--image-shape)",
    )
    parser.add_argument(
        "--channels",
        type=_channel_sizes,
        default=[16, 32],
        metavar="C1,C2,...",
        help="output channels of the CNN's convolutions (default 16,32)",
    )
    parser.add_argument(
        "--image-shape",
        type=_image_shape,
        metavar="C,H,W",
        help="channels, height and width of the images whose pixels are a table's feature columns "
        "(row-major, channel first, as NumPy's reshape reads them); default 1,8,8 for the digits",
    )
    parser.add_argument(
        "--hidden",
        type=_hidden_sizes,
        default=[128],
        help="comma-separated hidden layer sizes; 0 for a linear model (default 128)",
    )
    parser.add_argument(
        "--activation",
        default="relu",
        choices=sorted(ACTIVATIONS),
        help="activation between dense layers (default relu)",
    )
    parser.add_argument(
        "--batchnorm",
        action="store_true",
        help="batch normalization after each hidden dense layer and convolution (an epoch "
        "whose last batch would hold one sample leaves that sample out)",
    )
    parser.add_argument(
        "--dropout", type=_dropout, default=0.0, help="dropout probability after each hidden layer"
    )
    parser.add_argument(
        "--optimizer",
        default="adam",
        choices=OPTIMIZERS,
        help="sgd, momentum (SGD with momentum 0.9), adagrad, rmsprop, adam or adamw (default adam)",
    )
    parser.add_argument("--lr", type=_positive(float), default=1e-3, help="learning rate (default 1e-3)")
    parser.add_argument(
        "--weight-decay",
        type=_nonnegative(float),
        default=0.0,
        help="L2 penalty (decoupled for adamw; default 0)",
    )
    parser.add_argument("--batch-size", type=_positive(int), default=32, help="mini-batch size (default 32)")
    parser.add_argument(
        "--epochs",
        type=_positive(int),
        default=epochs,
        help=epochs_help or f"passes over the training data (default {epochs})",
    )
    parser.add_argument(
        "--quiet",
        action="store_true",
        help="only the results: no line saying what trains, no progress bar, no early-stopping summary "
        "and no notice of skipped plots (dropped rows and what was done to a table's columns are still said)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="saddlepoint", description="Train neural networks fast on the CPU.")
    parser.add_argument("--version", action="version", version=f"saddlepoint {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    train = commands.add_parser(
        "train",
        help="train an MLP and report its test score",
        description="Train an MLP (dense layers) with mini-batches on a bundled data set or a CSV; "
        "print progress to stderr and the final table to stdout; write a run folder.",
    )
    add_data_options(train)
    add_model_options(
        train,
        epochs=DEFAULT_EPOCHS,
        epochs_help=f"the most passes over the training data (default {DEFAULT_EPOCHS}); early "
        "stopping ends training sooner once the validation loss stops improving",
    )
    train.add_argument(
        "--schedule",
        default="none",
        choices=SCHEDULES,
        help="learning-rate schedule over the epochs (default none)",
    )
    train.add_argument(
        "--warmup",
        type=_nonnegative(int),
        default=0,
        metavar="EPOCHS",
        help="linear warmup epochs before the schedule (default 0)",
    )
    train.add_argument(
        "--val-fraction",
        type=_fraction,
        default=0.1,
        help="fraction of the training split used for validation (default 0.1)",
    )
    train.add_argument(
        "--early-stopping",
        type=_nonnegative(int),
        metavar="PATIENCE",
        help="stop when the validation loss has not improved for more than PATIENCE epochs and "
        f"restore the weights of its best epoch (default {DEFAULT_PATIENCE} with a validation "
        "split, off without one; 0: off)",
    )
    train.add_argument(
        "--augment",
        type=_augmentations,
        default=[],
        metavar="crop,flip",
        help="random image augmentation of the training batches with --model cnn: crop (a shift "
        "by up to an eighth of the image, at least 1 pixel) and/or flip (a left-right mirror)",
    )
    train.add_argument(
        "--lr-sweep",
        type=_learning_rates,
        metavar="LR,...",
        help="train one model per learning rate on the same validation split, print their table, "
        "then train with the rate whose validation loss was lowest (instead of --lr)",
    )
    train.add_argument(
        "--jobs",
        type=_positive(int),
        metavar="N",
        help="models of --lr-sweep trained at once, in N processes through joblib, each with its "
        "share of the cores (default: one at a time); the results are the same",
    )
    train.add_argument("--out", type=Path, help="run folder (default runs/train-<time>)")
    train.add_argument(
        "--onnx",
        type=Path,
        metavar="PATH.onnx",
        help="also write the trained network as an ONNX file (needs saddlepoint[onnx]): it takes the "
        "preprocessed rows and returns the logits (classification) or the standardized target",
    )

    diagnose = commands.add_parser(
        "diagnose",
        help="find out why training goes wrong (the course's guidance and critical points)",
        description="Train the MLP and reference models (a linear one and one a layer deeper), give "
        "the course's verdict (model bias, optimization, overfitting, mismatch or "
        "healthy) with its evidence and remedies, classify the point training ended at "
        "with the Hessian (local minimum, saddle point, ...), and write a report folder.",
    )
    add_data_options(diagnose)
    diagnose.add_argument(
        "--test",
        metavar="PATH.csv",
        help="a separate test CSV with the same columns (for the mismatch check); "
        "by default --test-size of --data is held out",
    )
    add_model_options(diagnose, epochs=50)
    diagnose.add_argument(
        "--larger",
        type=_hidden_sizes,
        metavar="SIZES",
        help="hidden sizes of the larger reference model (default: --hidden with "
        "its last layer repeated once more)",
    )
    diagnose.add_argument(
        "--jobs",
        type=_positive(int),
        metavar="N",
        help="models of the guide (the model, the linear one, the larger one) trained at once, in N "
        "processes through joblib, each with its share of the cores (default: one at a time); the "
        "results are the same",
    )
    diagnose.add_argument(
        "--batch-sizes",
        type=_batch_sizes,
        metavar="B,...",
        help="also study these batch sizes (the course's small vs large batch): a fresh model per "
        "size, --epochs of the same optimizer each, timed, scored and its minimum's sharpness "
        "measured (--jobs at once); the table goes into the report and batch_sizes.png",
    )
    diagnose.add_argument(
        "--val-fraction",
        type=_fraction,
        default=0.2,
        help="fraction of the training split used for validation (default 0.2)",
    )
    diagnose.add_argument(
        "--hessian-samples",
        type=_positive(int),
        default=1000,
        help="training samples the Hessian analysis uses (default 1000)",
    )
    diagnose.add_argument(
        "--max-hvps",
        type=_positive(int),
        default=5000,
        help="Hessian-vector products each Hessian analysis may use (default 5000)",
    )
    diagnose.add_argument(
        "--time-limit",
        type=_positive(float),
        default=60.0,
        metavar="SECONDS",
        help="wall time each Hessian or landscape analysis may use (default 60)",
    )
    diagnose.add_argument("--out", type=Path, help="report folder (default runs/diagnose-<time>)")

    predict = commands.add_parser(
        "predict",
        help="predict new rows with a trained run folder",
        description="Apply a run folder's preprocessing and model (what saddlepoint train wrote) to "
        "the rows of a table; write the input's identifier columns, then the predicted label and one "
        "probability column per class (classification) or the predicted value (regression), as CSV.",
    )
    predict.add_argument("run", type=Path, metavar="RUN_FOLDER", help="a folder saddlepoint train wrote")
    predict.add_argument(
        "--data",
        required=True,
        metavar="PATH",
        help="the table to predict (CSV, TSV, .csv.gz or Parquet) with the columns the model was trained on",
    )
    predict.add_argument("--out", type=Path, metavar="PATH.csv", help="CSV file to write (default: stdout)")
    predict.add_argument("--threads", type=_positive(int), help="kernel threads (default: one per core)")

    bench.add_arguments(
        commands.add_parser(
            "bench",
            help="time the kernels and a training epoch against NumPy, scikit-learn and PyTorch",
            description="Record the machine, measure its GEMM peak and memory bandwidth, time the hot "
            "kernels and the MLP epoch against NumPy, scikit-learn and PyTorch (when importable), the "
            "libraries taking turns; print one table of times, ratios and shares of the machine's limits. "
            "The default finishes in under two minutes; --full takes longer.",
        )
    )
    return parser


def read_data(args):
    """``(frame, target, source)``: the table ``--data`` names (a bundled set, whose target column
    is "target", or a file that ``read_table`` reads), the name of its target column and how
    messages name it."""
    if args.data in BUNDLED:
        return load_bundled_frame(args.data), "target", f"--data {args.data}"
    path = Path(args.data)
    if not path.exists() and not path.suffix:
        raise UsageError(
            f"--data must be one of {sorted(BUNDLED)} or a table file (CSV, TSV, .csv.gz, Parquet), "
            f"got {args.data!r}"
        )
    if not args.target:
        raise UsageError("--target COLUMN is required with a CSV file")
    return read_table(args.data, args.target), args.target, args.data


def _label_text(value) -> str:
    return f"{value:g}" if isinstance(value, (float, np.floating)) else str(value)


def select_target(frame, target: str, where: str, task: str | None):
    """``(frame, y, task)``: the rows whose target is present (how many were dropped is
    printed), the target as class labels (strings, booleans, integers) or float64 values, and
    the task, checked (see ``data.targets.target_values``); ``where`` names the table."""
    frame, dropped = drop_missing_target(frame, target)
    if dropped:
        print(
            f"dropped {dropped} row{'s' if dropped > 1 else ''} whose target {target!r} is missing",
            file=sys.stderr,
        )
    if len(frame) == 0:
        raise UsageError(f"{where}: the target column {target!r} has no value in any row")
    try:
        task, y = target_values(frame[target], task, target)
    except ValueError as e:
        raise UsageError(f"{where}: {e}") from None
    return frame, y, task


def _split(X, y, fraction: float, seed: int, stratify: bool, what: str):
    """scikit-learn's ``train_test_split`` with its complaints (too few samples, a class with
    one sample) as a :class:`UsageError` naming the option."""
    from sklearn.model_selection import train_test_split

    try:
        return train_test_split(X, y, test_size=fraction, random_state=seed, stratify=y if stratify else None)
    except ValueError as e:
        raise UsageError(f"{what} {fraction} cannot split {len(X)} samples: {e}") from None


def _column_list(text: str) -> list[str]:
    return [name.strip() for name in text.split(",") if name.strip()]


def fit_preprocessor(frame, target: str, args):
    """The :class:`Preprocessor` of ``--features``/``--drop`` fitted on ``frame`` (the training
    split); its refusals (an unknown column, no feature left) as a :class:`UsageError`."""
    # A bundled set's features are measurements (the digits' pixels): numbers, never categories.
    numeric = [c for c in frame.columns if c != target] if getattr(args, "data", None) in BUNDLED else None
    # A CNN's features are the pixels of an image: all kept, in order, scaled together.
    pixels = [c for c in frame.columns if c != target] if getattr(args, "model", "mlp") == "cnn" else None
    preprocessor = Preprocessor(features=args.features, drop=args.drop, numeric=numeric, pixels=pixels)
    try:
        return preprocessor.fit(frame, target)
    except TableError:
        raise
    except ValueError as e:
        message = str(e)
        if message.startswith(("features:", "drop:")):  # the option's own refusal
            raise UsageError(f"--{message}") from None
        raise UsageError(f"{args.data}: {message}") from None


@dataclass
class Split:
    """The data after the split and the preprocessing: features as float32 arrays, targets
    as they came (labels or values), the rows of the test split and their positions."""

    X_train: np.ndarray
    X_test: np.ndarray
    y_train: Any  # class labels of any kind or float values, as the table holds them
    y_test: Any
    preprocessor: Preprocessor
    test_frame: Any
    n_fit: int  # training samples left after the validation split


def split_and_preprocess(frame, y, target: str, args, classification: bool, test=None) -> Split:
    """``test`` (a ``(frame, y)`` pair) as given, or ``--test-size`` held out (stratified for
    classes); the preprocessing fitted on the training split only and applied to both."""
    if test is None:
        train_frame, test_frame, y_train, y_test = _split(
            frame, y, args.test_size, args.seed, classification, "--test-size"
        )
    else:
        (train_frame, y_train), (test_frame, y_test) = (frame, y), test
    n_fit = fit_samples(y_train, args, classification)  # its problems before the preprocessing's
    preprocessor = fit_preprocessor(train_frame, target, args)
    if test is not None:
        check_columns(preprocessor, test_frame, f"--test {args.test}", "the model trained on --data")
    X_train = preprocessor.transform(train_frame)
    try:
        X_test = preprocessor.transform(test_frame)
    except ValueError as e:  # a word in a column of numbers
        raise UsageError(f"--test {args.test}: {e}") from None
    for X_split, name in ((X_train, "training"), (X_test, "test")):
        _check_float32_range(X_split, name, preprocessor.feature_names)
    return Split(X_train, X_test, y_train, y_test, preprocessor, test_frame, n_fit)


def column_table(preprocessor, target: str, targets, column) -> list[tuple[str, str, str, str]]:
    """The rows of the column table: the target (``column``), then what was done to each input
    column."""
    if targets.classes is not None:
        shown = ", ".join(_label_text(c) for c in targets.classes[:6])
        what = f"{len(targets.classes)} classes: {shown}{', ...' if len(targets.classes) > 6 else ''}"
    else:
        what = "standardized; predictions in its units"
    dtype = "bool" if column.dtype == bool else "text" if column.dtype.kind in "OUS" else str(column.dtype)
    rows = [(target, dtype, "target", what)]
    rows += [(str(r["name"]), str(r["dtype"]), str(r["role"]), str(r["action"])) for r in preprocessor.report]
    return rows


def print_column_table(rows, limit: int = 30) -> None:
    """The column table on stderr, aligned; at most ``limit`` columns (the rest are counted)."""
    file = sys.stderr
    header = ("column", "dtype", "role", "what was done")
    shown = [header, *rows[:limit]]
    widths = [max(len(r[i]) for r in shown) for i in range(3)]
    for r in shown:
        print(f"  {r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]:<{widths[2]}}  {r[3]}".rstrip(), file=file)
    if len(rows) > limit:
        print(f"  ... and {len(rows) - limit} more columns (see columns.csv in the run folder)", file=file)


def _check_float32_range(X, split: str, names=None) -> None:
    """Preprocessed features must be finite float32 numbers, the network's: a feature nearly
    constant in the training split can put test values far beyond float32 (infinity)."""
    finite = np.isfinite(X)
    if not finite.all():
        row, column = np.argwhere(~finite)[0]
        name = repr(names[column]) if names is not None and column < len(names) else f"column {column + 1}"
        raise UsageError(
            f"feature {name}, standardized with the training split's mean "
            f"and scale, reaches {X[row, column]:.4g} in the {split} split: beyond "
            f"float32, the network's numbers"
        )


def fit_samples(y_train, args, classification: bool) -> int:
    """How many training samples remain after the validation split, which is tried here
    (on indices) so that its problems show before training."""
    if not args.val_fraction:
        return len(y_train)
    fit, _, _, _ = _split(
        np.arange(len(y_train)), y_train, args.val_fraction, 0, classification, "--val-fraction"
    )
    return len(fit)


def available_memory() -> int | None:
    """Bytes of memory available to a new allocation (Linux ``MemAvailable``), or None."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, AttributeError):
        return None


def _gib(n_bytes: float) -> str:
    return f"{n_bytes / 2**30:,.1f} GiB"


def network_size(sizes: list[int], args) -> tuple[int, int, int]:
    """``(parameters, largest weight, activations per sample)`` of the network of dense
    ``sizes`` (the CNN's: its dense part after the convolutions)."""
    n_parameters = sum((n_in + 1) * n_out for n_in, n_out in zip(sizes[:-1], sizes[1:]))
    largest = max(n_in * n_out for n_in, n_out in zip(sizes[:-1], sizes[1:]))
    activations = sum(sizes)
    if args.model == "cnn":
        c, h, w = image_shape(args, sizes[0])
        activations = c * h * w
        for out in args.channels:
            n_parameters += out * (c * 9 + 1)
            largest = max(largest, out * c * 9)
            activations += 3 * out * h * w + c * 9 * h * w  # outputs, activation, columns
            c, h, w = out, (h // 2 if min(h, w) >= 2 else h), (w // 2 if min(h, w) >= 2 else w)
        flat = [c * h * w, *sizes[1:]]
        n_parameters += sum((n_in + 1) * n_out for n_in, n_out in zip(flat[:-1], flat[1:]))
        largest = max([largest] + [n_in * n_out for n_in, n_out in zip(flat[:-1], flat[1:])])
        activations += sum(flat)
    return n_parameters, largest, activations


def check_model_memory(sizes: list[int], args, option: str = "--hidden") -> None:
    """Refuses, before anything is allocated, a network whose weights, gradients, optimizer
    state (and best weights kept by early stopping) do not fit in the available memory."""
    n_parameters, largest, per_sample = network_size(sizes, args)
    copies = 2 + OPTIMIZER_STATE_COPIES[args.optimizer] + (1 if getattr(args, "early_stopping", 0) else 0)
    activations = 3 * max(args.batch_size, 1024) * per_sample
    needed = 4 * (copies * n_parameters + activations) + 8 * largest  # float32; float64 initial draw
    available = available_memory()
    if available is not None and needed > available:
        what = f"{option} {','.join(map(str, sizes[1:-1]))}"
        if args.model == "cnn":
            what = f"--channels {','.join(map(str, args.channels))} with {what}"
        raise UsageError(
            f"{what} makes a network of {n_parameters:,} parameters that needs about "
            f"{_gib(needed)} of memory; {_gib(available)} is available"
        )


def prepare_out_dir(out: Path | None, kind: str) -> Path:
    """The run folder (``runs/<kind>-<time>`` by default), checked writable now, before
    training, rather than found unwritable after it. Nothing is created yet: a run refused
    later leaves no empty folder behind."""
    out = out or Path("runs") / time.strftime(f"{kind}-%Y%m%d-%H%M%S")
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is an existing file, not a folder")
    nearest = out
    while not nearest.exists() and nearest != nearest.parent:
        nearest = nearest.parent  # the folder the missing ones would be created in
    try:
        if not nearest.is_dir():
            raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR))
        tempfile.TemporaryFile(dir=nearest).close()
    except OSError as e:
        raise UsageError(f"--out {out} cannot be written: {e.strerror or e}") from None
    return out


def set_threads(args) -> None:

    if args.threads:
        try:
            set_num_threads(args.threads)
        except ValueError as e:
            raise UsageError(f"--threads {args.threads}: {e}") from None


def image_shape(args, n_in: int) -> tuple[int, int, int]:
    """The images' ``(C, H, W)`` for ``--model cnn``: ``--image-shape``, or the bundled data
    set's; a UsageError unless it holds exactly the ``n_in`` features."""
    shape = args.image_shape or BUNDLED_IMAGES.get(args.data)
    if shape is None:
        raise UsageError(
            f"--model cnn needs --image-shape C,H,W: {args.data} is not a bundled image data set"
        )
    if math.prod(shape) != n_in:
        raise UsageError(
            f"--image-shape {','.join(map(str, shape))} holds {math.prod(shape)} pixels, but the "
            f"table gives {n_in} feature columns"
        )
    return shape


def model_config(n_in, hidden, n_out, args) -> dict:
    """The config of the network the model options describe (see ``nn.mlp_config`` and
    ``nn.cnn_config``)."""
    if args.model == "cnn":
        return nn.cnn_config(
            image_shape(args, n_in),
            n_out,
            args.channels,
            hidden,
            args.activation,
            batch_norm=args.batchnorm,
            dropout=args.dropout,
        )
    return nn.mlp_config(
        [n_in, *hidden, n_out], args.activation, batch_norm=args.batchnorm, dropout=args.dropout
    )


def describe_model(n_in, hidden, n_out, args) -> str:
    """The network in a few words, for the progress lines."""
    dense = f"layers {[n_in, *hidden, n_out]}"
    if args.model != "cnn":
        return dense
    c, h, w = image_shape(args, n_in)
    convolutions = "->".join(map(str, [c, *args.channels]))
    return f"{c}x{h}x{w} images, 3x3 convolutions {convolutions} channels with 2x2 max pooling, dense {[*hidden, n_out]}"


def augmentation(args, n_in: int):
    """The ``Trainer``'s ``augment`` for ``--augment``: the image augmentations applied to the
    batch's rows seen as images; None without the option."""
    if not getattr(args, "augment", None):
        return None
    if args.model != "cnn":
        raise UsageError("--augment transforms images: use it with --model cnn")
    shape = image_shape(args, n_in)
    steps = {
        "crop": lambda: RandomCrop(padding=max(1, round(min(shape[1:]) / 8))),
        "flip": lambda: RandomHorizontalFlip(),
    }
    return ImageRows(Compose([steps[kind]() for kind in args.augment]), shape)


def build_model(n_in, hidden, n_out, args, rng):
    """The network the model options describe, its weights drawn from ``rng``."""
    model = nn.from_config(model_config(n_in, hidden, n_out, args), rng=rng)
    return model


def build_optimizer(params, args):

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

    epochs = args.epochs
    if args.schedule == "onecycle":
        return optim.OneCycleLR(optimizer, max_lr=args.lr, total_steps=epochs * steps_per_epoch), "batch"
    if args.schedule == "plateau":
        return optim.ReduceLROnPlateau(optimizer, factor=0.5, patience=3), "epoch"
    decay_epochs = max(1, epochs - args.warmup)
    decay = {
        "none": lambda: optim.LinearLR(optimizer, 1.0, 1.0, 1),
        "step": lambda: optim.StepLR(optimizer, step_size=max(1, decay_epochs // 3), gamma=0.1),
        "exponential": lambda: optim.ExponentialLR(optimizer, gamma=0.01 ** (1 / decay_epochs)),
        "cosine": lambda: optim.CosineAnnealingLR(optimizer, T_max=decay_epochs),
    }[args.schedule]
    if args.warmup <= 0:
        return (decay() if args.schedule != "none" else None), "epoch"
    warmup = optim.LinearWarmup(optimizer, warmup_steps=args.warmup)
    return optim.SequentialLR(optimizer, [warmup, decay()], milestones=[args.warmup]), "epoch"


@dataclass
class TrainingSetting:
    """What ``saddlepoint train`` trains with, but the learning rate: a picklable trainer factory
    for the learning-rate sweep's workers and for the run itself."""

    args: argparse.Namespace
    n_in: int
    n_out: int
    loss: object
    metrics: list
    n_fit: int
    drop_last: bool
    augment: object

    def trainer(self, lr: float, verbose: int = 0):
        """A fresh model, optimizer, schedule and Trainer with learning rate ``lr``, and the
        early-stopping callback (None when off)."""
        args = argparse.Namespace(**{**vars(self.args), "lr": lr})
        try:
            model = build_model(self.n_in, args.hidden, self.n_out, args, np.random.default_rng(args.seed))
            optimizer = build_optimizer(model.parameters(), args)
            batches = self.n_fit // args.batch_size if self.drop_last else -(-self.n_fit // args.batch_size)
            scheduler, interval = build_schedule(optimizer, args, batches)
        except ValueError as e:  # a hyperparameter the constructors refuse
            raise UsageError(str(e)) from None
        stopper = EarlyStopping(patience=args.early_stopping) if args.early_stopping > 0 else None
        trainer = Trainer(
            model,
            self.loss,
            optimizer,
            scheduler=scheduler,
            scheduler_interval=interval,
            metrics=self.metrics,
            batch_size=args.batch_size,
            drop_last=self.drop_last,
            callbacks=[stopper] if stopper is not None else [],
            augment=self.augment,
            verbose=verbose,
            seed=args.seed,
        )
        return trainer, stopper

    def sweep_trainer(self, lr: float):
        return self.trainer(lr)[0]


def sweep_learning_rates(setting: TrainingSetting, X, y, args):
    """``--lr-sweep``: one model per rate on the same validation split, ``--jobs`` at once; prints
    the table to stderr and returns the :class:`~saddlepoint.training.LRSweepResult`."""
    if not args.val_fraction:
        raise UsageError("--lr-sweep needs a validation split to compare the rates: set --val-fraction > 0")
    if not args.quiet:
        print(f"learning-rate sweep: {len(args.lr_sweep)} rates, {args.jobs or 1} at a time", file=sys.stderr)
    sweep = lr_sweep(
        setting.sweep_trainer,
        X,
        y,
        lrs=args.lr_sweep,
        epochs=args.epochs,
        validation_split=args.val_fraction,
        n_jobs=args.jobs,
    )
    print(sweep, file=sys.stderr)
    if sweep.best_lr is None:
        raise UsageError("training diverged at every rate of --lr-sweep; try lower rates")
    return sweep


def run_train(args) -> int:

    # Every input is checked before training: options, table, splits, memory, run folder.
    if args.early_stopping and not args.val_fraction:
        raise UsageError("--early-stopping needs a validation split: set --val-fraction > 0")
    if args.early_stopping is None:  # the default: on with a validation split to watch
        args.early_stopping = DEFAULT_PATIENCE if args.val_fraction else 0
    set_threads(args)
    frame, target, source = read_data(args)
    frame, y, task = select_target(frame, target, source, args.task)
    classification = task == "classification"
    if classification:  # labels 0..C-1 before the split, so that both splits know every class
        targets = TargetEncoder.fit(task, y)
        y = targets.encode(y)
    data = split_and_preprocess(frame, y, target, args, classification)
    X_train, X_test, y_train, y_test = data.X_train, data.X_test, data.y_train, data.y_test
    n_fit = data.n_fit
    # Batch norm cannot train on a batch of one sample: leave such a last batch out.
    drop_last = args.batchnorm and n_fit % args.batch_size == 1
    if drop_last and n_fit < 2:
        raise UsageError(f"--batchnorm needs at least 2 training samples, got {n_fit}")
    if not classification:  # standardized with the training split's mean and scale
        targets = TargetEncoder.fit(task, y_train)
        y_train = targets.encode(y_train)
    n_out, loss, metrics = targets.n_out, targets.loss(), [targets.metric]
    n_in = X_train.shape[1]
    sizes = [n_in, *args.hidden, n_out]
    check_model_memory(sizes, args)
    augment = augmentation(args, n_in)
    check_onnx_path(args.onnx)
    out = prepare_out_dir(args.out, "train")
    setting = TrainingSetting(args, n_in, n_out, loss, metrics, n_fit, drop_last, augment)
    sweep = None
    if args.lr_sweep:
        sweep = sweep_learning_rates(setting, X_train, y_train, args)
        args.lr = sweep.best_lr
    trainer, stopper = setting.trainer(args.lr, verbose=0 if args.quiet else 1)
    model = trainer.model
    columns = column_table(data.preprocessor, target, targets, frame[target])
    if args.data not in BUNDLED:
        print_column_table(columns)
    if not args.quiet:
        print(
            f"training {args.data} ({task}): {len(X_train)} train / {len(X_test)} test samples, "
            f"{describe_model(n_in, args.hidden, n_out, args)}, {args.optimizer} lr {args.lr}, "
            f"{get_num_threads()} threads",
            file=sys.stderr,
        )
    start = time.perf_counter()
    try:
        history = trainer.fit(X_train, y_train, epochs=args.epochs, validation_split=args.val_fraction or 0.0)
    except TrainingDiverged as e:
        raise UsageError(f"training diverged: {e}; try a lower --lr") from None
    seconds = time.perf_counter() - start
    if stopper is not None and not args.quiet:
        print(stopper.summary("the validation loss"), file=sys.stderr)
    outputs = trainer.predict(X_test)
    if not np.isfinite(outputs).all():
        raise UsageError("the trained model's outputs on the test split are not finite; try a lower --lr")
    # The model holds the weights of the epoch early stopping restored, or of the last one.
    kept = stopper.restored_epoch if stopper is not None and stopper.restored_epoch else history.epochs[-1]
    notes = ["stopped early"] if stopper is not None and stopper.stopped_epoch is not None else []
    if kept != history.epochs[-1]:
        notes.append(f"weights of epoch {kept}")
    # The final table's numbers, by its row names (metrics.json holds them unrounded).
    measured: dict = {"epochs": len(history.epochs), "weights of epoch": kept}
    measured["train loss"] = history["loss"][kept - 1]
    if classification:
        measured["test loss"] = float(loss(outputs, y_test))
        scores = classification_scores(trainer.predict_proba(X_test), y_test)
        measured.update({SCORE_ROWS[name]: value for name, value in scores.items()})
    else:
        predictions = targets.decode(outputs)[:, 0]
        measured["test RMSE"] = float(np.sqrt(np.mean((predictions - y_test) ** 2)))
        measured["test R2"] = metric_value("r2", predictions.reshape(-1, 1), y_test.reshape(-1, 1))
    measured["seconds"] = seconds
    rows = [("epochs", f"{len(history.epochs)}" + (f" ({'; '.join(notes)})" if notes else ""))]
    rows += [
        (name, f"{value:.4{'g' if name == 'test RMSE' else 'f'}}")
        for name, value in measured.items()
        if "loss" in name or name.startswith("test ")
    ]
    rows += [("seconds", f"{seconds:.2f}"), ("run folder", str(out))]
    rows += [("onnx file", str(args.onnx))] if args.onnx is not None else []
    measured = {k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in measured.items()}
    try:
        write_run_folder(
            out, args, sizes, task, history, model, dict(rows), measured, (data, targets, target, outputs)
        )
        if sweep is not None:
            (out / "lr_sweep.json").write_text(json.dumps(sweep.to_dict(), indent=2) + "\n")
            save_plot(out / "lr_sweep.png", sweep.plot)
    except OSError as e:
        raise UsageError(f"cannot write the run folder {out}: {e.strerror or e}") from None
    if args.onnx is not None:
        try:
            save_onnx(model, args.onnx)
        except OSError as e:
            raise UsageError(f"--onnx {args.onnx} cannot be written: {e.strerror or e}") from None
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    return 0


def check_onnx_path(path: Path | None) -> None:
    """Refuses ``--onnx PATH``, before training, without the onnx package or a folder to write
    it in."""
    if path is None:
        return
    try:
        require_onnx()
    except ImportError as e:
        raise UsageError(f"--onnx: {e}") from None
    if path.is_dir():
        raise UsageError(f"--onnx {path} is a folder, not a file")
    if not path.parent.is_dir():
        raise UsageError(f"--onnx {path}: the folder {path.parent} does not exist")


def write_run_folder(
    out: Path, args, sizes, task, history, model, results: dict, metrics: dict, test
) -> None:
    """A run folder that is a model (``saddlepoint.io.runs.save_run``: preprocessing.json,
    model.safetensors, metrics.json: ``metrics``, the final table's numbers, config.json,
    columns.json/csv), with history.csv/json,
    weights.safetensors, test_predictions.csv (the test split's rows, by their position in the
    table, as ``saddlepoint predict`` writes them) and, with matplotlib, loss.png. ``test`` is
    ``(data, targets, target, outputs)``: the split, the target's encoding and name, and the
    model's outputs on the test split."""

    data, targets, target, outputs = test
    config = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    config.update(layers=sizes, task=task, results=results)
    save_run(
        out,
        model=model,
        preprocessor=data.preprocessor,
        target_encoder=targets,
        target=target,
        metrics=metrics,
        config=config,
    )
    history.to_csv(out / "history.csv")
    (out / "history.json").write_text(json.dumps(history.to_dict(), indent=2) + "\n")
    save_weights(model, out / "weights.safetensors")
    ids = [name for name in data.preprocessor.identifier_columns if name in data.test_frame.columns]
    predictions = prediction_frame(outputs, targets, target, data.test_frame[ids] if ids else None)
    # The rows by where they are in the table: the file line (or Parquet row) read_table gives.
    predictions.insert(0, data.test_frame.index.name or "row", data.test_frame.index.to_numpy())
    predictions.to_csv(out / "test_predictions.csv", index=False, float_format=CSV_FLOAT_FORMAT)

    def draw(ax):
        plot_learning_curves(history, ax, title=f"saddlepoint train --data {args.data}")

    if not save_plot(out / "loss.png", draw, figsize=(6, 4)) and not args.quiet:
        print(MISSING_MATPLOTLIB, file=sys.stderr)


def run_diagnose(args) -> int:

    set_threads(args)  # --threads governs saddlepoint's pool and NumPy's BLAS alike
    import scipy.linalg  # noqa: F401  (loads SciPy's own BLAS now, so that the limit reaches it)
    import sklearn.linear_model  # noqa: F401  (and scikit-learn's OpenMP)

    with threadpool_limits(limits=args.threads):
        return _diagnose(args, get_num_threads())


def _diagnose(args, threads: int) -> int:

    if not args.val_fraction:
        raise UsageError("diagnose needs a validation split: set --val-fraction > 0")
    if args.test and args.data in BUNDLED:
        raise UsageError("--test needs --data to be a CSV file (or another table file) with the same columns")
    frame, target, source = read_data(args)
    frame, y, task = select_target(frame, target, source, args.task)
    classification = task == "classification"
    test = None
    if args.test:
        test_frame = read_table(args.test, target)
        test_frame, y_test, _ = select_target(test_frame, target, f"--test {args.test}", task)
        test = (test_frame, y_test)
    data = split_and_preprocess(frame, y, target, args, classification, test)
    X_train, X_test, y_train, y_test = data.X_train, data.X_test, data.y_train, data.y_test
    targets = TargetEncoder.fit(task, y_train, y_test)
    if classification:  # class labels of any kind as 0..C-1, as the Trainer takes them
        y_train, y_test = targets.encode(y_train), targets.encode(y_test)
    n_in, n_out = X_train.shape[1], targets.n_out
    columns = column_table(data.preprocessor, target, targets, frame[target])
    if args.data not in BUNDLED:
        print_column_table(columns)
    larger_hidden = args.larger if args.larger is not None else [*args.hidden, (args.hidden or [64])[-1]]
    check_model_memory([n_in, *args.hidden, n_out], args)
    check_model_memory([n_in, *larger_hidden, n_out], args, "--larger")
    out = prepare_out_dir(args.out, "diagnose")
    model = build_model(n_in, args.hidden, n_out, args, np.random.default_rng(args.seed))
    if not args.quiet:
        print(
            f"diagnosing {args.data} ({task}): {describe_model(n_in, args.hidden, n_out, args)} against "
            f"a linear model and the same with dense {[*larger_hidden, n_out]}, {args.optimizer} lr "
            f"{args.lr}, {args.epochs} epochs, {threads} threads",
            file=sys.stderr,
        )
    guidance = diagnose.guide(
        model,
        X_train,
        y_train,
        validation_split=args.val_fraction,
        test_data=(X_test, y_test),
        larger=lambda: build_model(n_in, larger_hidden, n_out, args, np.random.default_rng(args.seed)),
        task=task,
        feature_names=data.preprocessor.feature_names,
        optimizer=lambda params: build_optimizer(params, args),
        epochs=args.epochs,
        batch_size=args.batch_size,
        seed=args.seed,
        verbose=0 if args.quiet else 1,
        n_jobs=args.jobs,
    )
    if guidance.train_data is None:  # guide() always returns the data its models trained on
        raise RuntimeError("diagnose.guide returned no training data to analyse")
    X_fit, y_fit = guidance.train_data
    pick = np.random.default_rng(args.seed).permutation(len(X_fit))[: args.hessian_samples]
    analysed = (model, guidance.loss, X_fit[pick], y_fit[pick])
    if not args.quiet:
        print(
            f"analysing the Hessian at the end of training (at most {args.max_hvps} Hessian-vector "
            f"products and {args.time_limit:g} s per analysis)",
            file=sys.stderr,
        )
    limits = {"time_limit": args.time_limit, "progress": False if args.quiet else None}
    critical = diagnose.critical_point(*analysed, max_hvps=args.max_hvps, seed=args.seed, **limits)
    landscape = diagnose.loss_landscape_2d(*analysed, steps=21, seed=args.seed, **limits)
    escape = None
    if critical.kind == "saddle point":  # a kind only a critical point gets
        escape = diagnose.escape_saddle(*analysed, max_hvps=args.max_hvps, seed=args.seed, **limits)
    study = None
    if args.batch_sizes:
        if not args.quiet:
            print(f"studying batch sizes {args.batch_sizes}, {args.epochs} epochs each", file=sys.stderr)
        study = diagnose.batch_size_study(
            lambda: build_model(n_in, args.hidden, n_out, args, np.random.default_rng(args.seed)),
            X_train,
            y_train,
            batch_sizes=args.batch_sizes,
            validation_split=args.val_fraction,
            task=task,
            optimizer=lambda params: build_optimizer(params, args),
            epochs=args.epochs,
            max_hvps=args.max_hvps,
            seed=args.seed,
            n_jobs=args.jobs,
            **limits,
        )
    config = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    written = diagnose.write_report(
        out, f"saddlepoint diagnose --data {args.data}", guidance, critical, escape, landscape, config, study
    )
    write_columns(out, data.preprocessor.report)
    if not any(name.endswith(".png") for name in written) and not args.quiet:
        print(MISSING_MATPLOTLIB, file=sys.stderr)
    rows = [
        ("verdict", guidance.verdict),
        ("because", guidance.reason),
        (
            "critical point",
            f"{critical.headline()} ({critical.method} Hessian, {critical.n_parameters} parameters)",
        ),
        ("gradient norm", f"{critical.gradient_norm:.3g}"),
        (
            "minimum ratio",
            "not estimated (no budget left for it)"
            if math.isnan(critical.minimum_ratio)
            else f"{critical.minimum_ratio:.3f}",
        ),
        ("Hessian analysis", critical.convergence()),
    ]
    if escape is not None:
        rows.append(("saddle escape", str(escape)))
    if guidance.shift is not None:
        rows.append(("feature shift", f"training vs test: {guidance.shift}"))
    if study is not None and study.rows:
        best = max(study.rows, key=lambda r: r["val_metric"])  # accuracy or R²: higher is better
        rows.append(
            (
                "batch sizes",
                f"{', '.join(str(r['batch_size']) for r in study.rows)} studied (report.md); best "
                f"validation {study.metric} {best['val_metric']:.4g} at batch {best['batch_size']}",
            )
        )
    rows.append(("report folder", str(out)))
    print(guidance.table())
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    return 0


def run_predict(args) -> int:
    """``saddlepoint predict``: the run folder's model applied to ``--data``, written as CSV."""

    set_threads(args)
    try:
        run = load_run(args.run)
    except ValueError as e:
        raise UsageError(f"{args.run}: {e}" if str(args.run) not in str(e) else str(e)) from None
    if args.out is not None and args.out.is_dir():
        raise UsageError(f"--out {args.out} is a folder, not a file")
    predictions = run.predict(args.data)  # a missing column or an unreadable table: TableError
    if args.out is None:
        try:
            predictions.to_csv(sys.stdout, index=False, float_format=CSV_FLOAT_FORMAT)
            sys.stdout.flush()
        except BrokenPipeError:  # a reader that stopped early (| head): not an error
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    try:
        predictions.to_csv(args.out, index=False, float_format=CSV_FLOAT_FORMAT)
    except OSError as e:
        raise UsageError(f"--out {args.out} cannot be written: {e.strerror or e}") from None
    print(f"wrote {len(predictions)} predictions to {args.out}", file=sys.stderr)
    return 0


COMMANDS = {"train": run_train, "diagnose": run_diagnose, "predict": run_predict, "bench": bench.run}


def _check_environment() -> None:
    """Refuses, before any work, an environment setting the kernels would refuse at their first
    matrix product (an unknown SADDLEPOINT_SIMD)."""
    try:
        matmul_simd()
    except ValueError as e:
        raise UsageError(str(e)) from None


def main(argv=None) -> int:
    """Runs the command; a user's mistake (:data:`USER_ERRORS`) becomes one line on stderr and
    exit status 2, whatever command or check raised it."""
    try:
        args = build_parser().parse_args(argv)
        _check_environment()
        return COMMANDS[args.command](args)
    except USER_ERRORS as e:
        message = " ".join(str(e).split())  # one line, whatever the message holds
        print(f"saddlepoint: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
