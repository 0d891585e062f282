"""Data: input checks, mini-batches, tables, cross validation and augmentation."""

from .augment import Compose, GaussianNoise, RandomCrop, RandomHorizontalFlip
from .batches import minibatches
from .checks import check_data, infer_task
from .cross_validation import CrossValidationResult, cross_validate
from .tables import BUNDLED, TableError, load_bundled, load_csv

__all__ = [
    "BUNDLED", "Compose", "CrossValidationResult", "GaussianNoise", "RandomCrop", "RandomHorizontalFlip",
    "TableError", "check_data", "cross_validate", "infer_task", "load_bundled", "load_csv", "minibatches",
]
