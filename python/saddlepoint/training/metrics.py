"""Validation metrics by name."""

from __future__ import annotations

import numpy as np

METRICS = ("accuracy", "mse", "mae", "r2")


def metric_value(name: str, outputs: np.ndarray, y: np.ndarray) -> float:
    """Accuracy (argmax of scores, or sign of a single logit), MSE, MAE or R² of ``outputs``."""
    if name == "accuracy":
        predicted = outputs.argmax(axis=1) if outputs.shape[1] > 1 else (outputs[:, 0] > 0).astype(int)
        return float(np.mean(predicted == y.reshape(-1)))
    error = outputs.reshape(y.shape) - y
    if name == "mse":
        return float(np.mean(error**2))
    if name == "mae":
        return float(np.mean(np.abs(error)))
    if name == "r2":
        total = np.sum((y - y.mean(axis=0)) ** 2)
        return float(1 - np.sum(error**2) / total) if total > 0 else float("nan")
    raise ValueError(f"metric must be one of {METRICS}, got {name!r}")
