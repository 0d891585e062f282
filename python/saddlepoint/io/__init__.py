"""Files: weights and checkpoints in safetensors."""

from .checkpoint import load_checkpoint, load_weights, save_checkpoint, save_weights

__all__ = ["load_checkpoint", "load_weights", "save_checkpoint", "save_weights"]
