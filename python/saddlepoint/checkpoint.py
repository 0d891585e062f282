"""Weights and checkpoints in safetensors files (tensors + JSON metadata; no pickle).

- :func:`save_weights` / :func:`load_weights`: a model's state dict under its PyTorch-style
  names, so ``safetensors.torch.load_file`` + ``load_state_dict`` reads it into the same
  architecture in PyTorch, and the other way round.
- :func:`save_checkpoint` / :func:`load_checkpoint`: everything a resumed run needs (model,
  optimizer, scheduler, epoch, random states, history), written atomically: a temporary file
  in the same folder, flushed to disk, then renamed over the old one, so a crash mid-write
  leaves the previous checkpoint intact.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

FORMAT = "saddlepoint-checkpoint"
VERSION = 1


def _atomic_write(path, data: bytes) -> None:
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _read(path) -> tuple[dict, dict]:
    """Tensors and metadata of a safetensors file; ValueError if it is not one."""
    from safetensors import SafetensorError
    from safetensors.numpy import load

    path = Path(path)
    try:
        data = path.read_bytes()
        tensors = load(data)
        header_len = int.from_bytes(data[:8], "little")
        header = json.loads(data[8:8 + header_len])
    except FileNotFoundError:
        raise
    except (SafetensorError, ValueError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{path} is not a complete safetensors file (truncated or not ours): {e}") from None
    return tensors, header.get("__metadata__") or {}


def save_weights(model, path) -> None:
    """Writes the model's state dict (PyTorch-style names) to a safetensors file."""
    from safetensors.numpy import save

    state = {name: np.ascontiguousarray(a) for name, a in model.state_dict().items()}
    _atomic_write(path, save(state, metadata={"format": "pt"}))


def load_weights(model, path) -> None:
    """Loads a safetensors state dict (ours or PyTorch's) into ``model``; nothing changes if
    the names or shapes do not fit."""
    tensors, _ = _read(path)
    model.load_state_dict(tensors)


def _json_ready(value):
    """Tuples to lists, NumPy scalars to Python numbers, recursively."""
    if isinstance(value, dict):
        return {str(k): _json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_ready(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def save_checkpoint(path, *, model, optimizer=None, scheduler=None, epoch: int = 0,
                    rng_states: dict | None = None, history: dict | None = None) -> None:
    """Writes model, optimizer and scheduler state, epoch, random-generator states and history
    to one safetensors file, atomically."""
    from safetensors.numpy import save

    tensors = {f"model.{name}": np.ascontiguousarray(a) for name, a in model.state_dict().items()}
    meta = {"format": FORMAT, "version": VERSION, "epoch": int(epoch),
            "rng_states": rng_states or {}, "history": history or {}}
    if optimizer is not None:
        opt_state = optimizer.state_dict()
        scalars = {}
        for index, state in opt_state["state"].items():
            for key, value in state.items():
                if isinstance(value, np.ndarray):
                    tensors[f"optimizer.{index}.{key}"] = np.ascontiguousarray(value)
                else:
                    scalars.setdefault(str(index), {})[key] = value
        meta["optimizer"] = {"param_groups": opt_state["param_groups"], "scalars": scalars}
    if scheduler is not None:
        meta["scheduler"] = scheduler.state_dict()
    metadata = {"saddlepoint": json.dumps(_json_ready(meta))}
    _atomic_write(path, save(tensors, metadata=metadata))


def load_checkpoint(path, *, model, optimizer=None, scheduler=None) -> dict:
    """Restores what :func:`save_checkpoint` wrote into ``model`` (and ``optimizer``,
    ``scheduler``); returns ``{"epoch", "rng_states", "history"}``. A file that is truncated or
    not a saddlepoint checkpoint raises ValueError and changes nothing."""
    tensors, metadata = _read(path)
    try:
        meta = json.loads(metadata["saddlepoint"])
        assert meta["format"] == FORMAT
    except (KeyError, AssertionError, TypeError, json.JSONDecodeError):
        raise ValueError(f"{path} is a safetensors file but not a saddlepoint checkpoint") from None
    model_state = {k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")}
    opt_state = None
    if optimizer is not None:
        if "optimizer" not in meta:
            raise ValueError(f"{path} holds no optimizer state")
        state = {}
        for key, value in tensors.items():
            if key.startswith("optimizer."):
                _, index, name = key.split(".", 2)
                state.setdefault(int(index), {})[name] = value
        for index, scalars in meta["optimizer"]["scalars"].items():
            state.setdefault(int(index), {}).update(scalars)
        groups = [dict(g) for g in meta["optimizer"]["param_groups"]]
        for group in groups:
            if "betas" in group:
                group["betas"] = tuple(group["betas"])
        opt_state = {"state": state, "param_groups": groups}
    # load_state_dict checks names and shapes before it writes; if the optimizer's state then
    # does not fit, the model gets its old weights back, so a failed load changes nothing.
    before = model.state_dict()
    model.load_state_dict(model_state)
    if opt_state is not None:
        try:
            optimizer.load_state_dict(opt_state)
        except (ValueError, KeyError):
            model.load_state_dict(before)
            raise
    if scheduler is not None and "scheduler" in meta:
        scheduler.load_state_dict(meta["scheduler"])
    return {"epoch": meta["epoch"], "rng_states": meta["rng_states"], "history": meta["history"]}
