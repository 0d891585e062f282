"""Data: input checks, target encoding, splits, mini-batches, tables, cross validation and
augmentation."""

from .augment import Compose, GaussianNoise, ImageRows, RandomCrop, RandomHorizontalFlip
from .batches import minibatches
from .checks import check_data, infer_task
from .cross_validation import CrossValidationResult, cross_validate
from .preprocess import Preprocessor
from .splits import PreparedData, model_dtype, prepare_data
from .tables import BUNDLED, TableError, load_bundled, load_bundled_frame, read_table
from .targets import (
    TASKS,
    TargetEncoder,
    check_task,
    drop_missing_target,
    target_values,
    task_loss,
    task_of,
    training_targets,
)

__all__ = [
    "BUNDLED",
    "TASKS",
    "Compose",
    "CrossValidationResult",
    "GaussianNoise",
    "ImageRows",
    "PreparedData",
    "Preprocessor",
    "RandomCrop",
    "RandomHorizontalFlip",
    "TableError",
    "TargetEncoder",
    "check_data",
    "check_task",
    "cross_validate",
    "drop_missing_target",
    "infer_task",
    "load_bundled",
    "load_bundled_frame",
    "minibatches",
    "model_dtype",
    "prepare_data",
    "read_table",
    "target_values",
    "task_loss",
    "task_of",
    "training_targets",
]
