"""Whole models in one safetensors file: the config that rebuilds the architecture (JSON in the
file's metadata, see ``nn/spec.py``) and the weights (the state dict, under PyTorch-style names,
as :func:`~saddlepoint.save_weights` writes them). A saved model is rebuilt from the file alone,
without the code that built it; the file is also a weights file (``load_weights`` and
``safetensors.torch.load_file`` read it).
"""

from __future__ import annotations

import json
from pathlib import Path

from safetensors.numpy import save

from ..nn import from_config
from .checkpoint import stage_model_state
from .files import atomic_write, contiguous, read_safetensors

FORMAT = "saddlepoint-model"
VERSION = 1


def save_model(model, path) -> None:
    """Writes ``model``'s config and weights to one safetensors file, atomically.

    Parameters
    ----------
    model : Module
        Every layer must describe itself (the built-in ones do).
    path : str or os.PathLike
        The file to write (replaced if it exists).

    Raises
    ------
    TypeError
        A layer of the model cannot describe itself (a user's layer needs ``register_layer`` and
        ``config_fields`` or ``config()``); nothing is written.

    Examples
    --------
    >>> model = sp.mlp([4, 8, 3], rng=0)
    >>> sp.save_model(model, "model.safetensors")
    >>> again = sp.load_model("model.safetensors")
    >>> x = np.ones((2, 4), dtype=np.float32)
    >>> bool(np.array_equal(again(x), model(x)))
    True
    """
    meta = {"format": FORMAT, "version": VERSION, "config": model.config()}
    try:
        text = json.dumps(meta, allow_nan=False)
    except (TypeError, ValueError) as e:
        raise TypeError(f"the model's config cannot be written as JSON: {e}") from None
    tensors = {name: contiguous(a) for name, a in model.state_dict().items()}
    atomic_write(path, save(tensors, metadata={"format": "pt", "saddlepoint": text}))


def _config(path, metadata: dict) -> dict:
    """The model config in the file's metadata; ValueError if the file holds none."""
    try:
        meta = json.loads(metadata["saddlepoint"])
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            raise ValueError
    except (KeyError, TypeError, ValueError):
        raise ValueError(
            f"{path} is a safetensors file but not a saddlepoint model (one written by "
            f"save_model; weights alone load with load_weights into a model)"
        ) from None
    except (RecursionError, MemoryError):
        raise ValueError(f"{path}: the model metadata is nested too deeply (or too large) to read") from None
    if meta.get("version") != VERSION or isinstance(meta.get("version"), bool):
        raise ValueError(
            f"{path}: model version must be {VERSION} (this saddlepoint reads that one), "
            f"got {meta.get('version')!r}"
        )
    if not isinstance(meta.get("config"), dict):
        raise ValueError(f"{path}: the model config must be a dict, got {meta.get('config')!r}"[:500])
    return meta["config"]


def load_model(path, *, rng=None):
    """The model that :func:`save_model` wrote to ``path``, rebuilt from its config and loaded
    with its weights (in training mode, as a model is built; call ``eval()`` to predict).

    Parameters
    ----------
    path : str or os.PathLike
    rng : numpy.random.Generator, int or None
        Drives what the weights do not fix, such as dropout masks.

    Returns
    -------
    Module

    Raises
    ------
    ValueError
        Naming the file: it is not a saved model, its config does not build a model (an
        unknown class, a value a constructor refuses) or the weights do not fit that model.
    FileNotFoundError
        There is no file.

    Examples
    --------
    >>> sp.save_model(sp.Sequential(sp.Dense(2, 2, rng=0), sp.Dropout(0.1)), "model.safetensors")
    >>> sp.load_model("model.safetensors")
    Sequential(
      (0): Dense(in_features=2, out_features=2, bias=True, dtype=float32)
      (1): Dropout(p=0.1)
    )
    """
    tensors, metadata = read_safetensors(path)
    config = _config(path, metadata)
    try:
        model = from_config(config, rng=rng)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{path}: the model config does not build a model: {e}") from None
    except RecursionError:
        raise ValueError(f"{path}: the model config is nested too deeply to build") from None
    stage_model_state(Path(path), model, tensors)()
    return model
