"""Files: weights, checkpoints and whole models in safetensors."""

from .checkpoint import load_checkpoint, load_weights, save_checkpoint, save_weights
from .models import load_model, save_model

__all__ = ["load_checkpoint", "load_model", "load_weights", "save_checkpoint", "save_model", "save_weights"]
