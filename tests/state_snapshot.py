"""Everything a failed load may change in a trainer, as one text: equal texts mean bit-for-bit
equal state (arrays by their bytes, floats by their hex)."""

import numpy as np


def _text(value) -> str:
    if isinstance(value, np.ndarray):
        return f"array({value.dtype},{value.shape},{value.tobytes().hex()})"
    if isinstance(value, dict):
        return "{" + ",".join(f"{k!r}:{_text(x)}" for k, x in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return type(value).__name__ + "[" + ",".join(_text(x) for x in value) + "]"
    if isinstance(value, float):
        return value.hex()
    return repr(value)


def snapshot(trainer) -> str:
    """Model, optimizer (groups and per-parameter state), scheduler, epoch, history, seeds and
    every random generator of the trainer and its layers."""
    scheduler = (
        {k: v for k, v in vars(trainer.scheduler).items() if k != "optimizer"}
        if trainer.scheduler is not None
        else None
    )
    layer_generators = [
        layer.rng.bit_generator.state
        for layer in getattr(trainer.model, "layers", [])
        if isinstance(getattr(layer, "rng", None), np.random.Generator)
    ]
    return _text(
        [
            trainer.model.state_dict(),
            trainer.optimizer.param_groups,
            list(trainer.optimizer.state.values()),
            scheduler,
            trainer.epoch,
            trainer.history.values,
            trainer.split_seed,
            trainer.rng.bit_generator.state,
            layer_generators,
        ]
    )
