"""Files shared by weights, checkpoints and saved models: safetensors read with every refusal
as one ValueError naming the file, and atomic writes.

A write goes to a temporary file ``.<name>.tmp-<pid>`` in the same folder, flushed to disk, then
renamed over the old file, so a crash mid-write leaves the previous file intact. The next save
into that folder removes the temporary files that killed processes left behind.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load

try:  # POSIX: a writer holds a lock on its temporary file, so no one removes it mid-write
    import fcntl
except ImportError:  # pragma: no cover (Windows)
    fcntl = None  # type: ignore[assignment]


def temporary_path(path: Path, pid: int) -> Path:
    return path.with_name(f".{path.name}.tmp-{pid}")


def _process_alive(pid: int) -> bool:
    """Whether process ``pid`` runs (a zombie, killed but not yet reaped, does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    except (OverflowError, OSError):  # no such pid can exist
        return False
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except (OSError, IndexError):
        return True


def remove_stale_temporaries(path) -> list[Path]:
    """Removes the temporary files ``.<name>.tmp-<pid>`` of ``path`` whose process no longer
    runs (a run killed while writing leaves one, as large as the checkpoint). Files of running
    processes are kept: they may be writing (so is a dead writer's file whose pid a live
    process has taken since, until that one ends). Returns the removed paths.

    A writer holds an exclusive ``flock`` on its file while writing, and a file is removed only
    while this process holds that lock: the pid test alone would take a live writer on another
    machine sharing the folder, or in another PID namespace, for a dead one.

    Only on POSIX systems, where a process can be asked whether it runs without signalling it.
    """
    path = Path(path)
    if os.name != "posix":
        return []
    stale = re.compile(re.escape(f".{path.name}.tmp-") + r"([0-9]{1,10})")
    removed = []
    try:
        entries = list(os.scandir(path.parent))
    except OSError:
        return []
    for entry in entries:
        match = stale.fullmatch(entry.name)
        if not match or int(match[1]) < 1 or int(match[1]) == os.getpid():
            continue
        try:
            if (
                entry.is_file(follow_symlinks=False)
                and not _process_alive(int(match[1]))
                and _remove_unless_locked(entry.path)
            ):
                removed.append(Path(entry.path))
        except OSError:  # removed meanwhile, or not ours to remove: the save goes on
            pass
    return removed


def _remove_unless_locked(path: str) -> bool:
    """Removes ``path`` unless a writer holds its lock; whether it was removed."""
    if fcntl is None:
        return False
    with open(path, "rb") as f:
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        os.unlink(path)
    return True


def atomic_write(path, data: bytes) -> None:
    path = Path(path)
    remove_stale_temporaries(path)
    tmp = temporary_path(path, os.getpid())
    try:
        with open(tmp, "wb") as f:
            if fcntl is not None:
                fcntl.flock(f.fileno(), fcntl.LOCK_EX)
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def contiguous(array: np.ndarray) -> np.ndarray:
    # Not np.ascontiguousarray: it makes 0-d arrays 1-d, and PyTorch's 0-d num_batches_tracked
    # would be written with shape [1].
    return np.require(array, requirements="C")


def json_ready(value):
    """Tuples to lists, NumPy scalars to Python numbers, recursively."""
    if isinstance(value, dict):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def read_safetensors(path) -> tuple[dict, dict]:
    """Tensors and metadata of a safetensors file; ValueError if it is not one."""
    path = Path(path)
    try:
        data = path.read_bytes()
        tensors = load(data)
        header_len = int.from_bytes(data[:8], "little")
        header = json.loads(data[8 : 8 + header_len])
        metadata = header.get("__metadata__") or {}
    except FileNotFoundError:
        raise
    except OSError as e:  # a folder, no permission
        raise ValueError(f"{path} cannot be read: {e}") from None
    # KeyError: a dtype NumPy lacks (BF16, F8); the rest: safetensors' and JSON's refusals.
    except (SafetensorError, ValueError, KeyError, TypeError, AttributeError, OverflowError) as e:
        raise ValueError(f"{path} is not a complete safetensors file (truncated or not ours): {e}") from None
    return tensors, metadata
