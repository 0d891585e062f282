"""Files: weights, checkpoints and whole models in safetensors; run folders that are models;
ONNX export (with the onnx extra)."""

from .checkpoint import load_checkpoint, load_weights, save_checkpoint, save_weights
from .models import load_model, save_model
from .onnx import save_onnx
from .runs import Run, load_run, save_run

__all__ = [
    "Run",
    "load_checkpoint",
    "load_model",
    "load_run",
    "load_weights",
    "save_checkpoint",
    "save_model",
    "save_onnx",
    "save_run",
    "save_weights",
]
