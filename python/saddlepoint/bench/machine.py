"""The machine's record: CPU, its flags, cores, threads, NumPy's BLAS and the versions."""

from __future__ import annotations

import importlib
import os
import platform
import subprocess
import sys
from typing import Any

import numpy as np

from .. import __version__
from .._core import get_num_threads, matmul_simd

# The flags the kernels and the BLAS kernels care about.
FLAGS = (
    "sse4_2",
    "avx",
    "avx2",
    "fma",
    "f16c",
    "avx512f",
    "avx512bw",
    "avx512vl",
    "avx512_bf16",
    "avx512_vnni",
    "amx_tile",
)
# Set in the environment, these pin OpenBLAS to a slower kernel or block size.
OPENBLAS_VARIABLES = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
# Caps saddlepoint's matrix products at an instruction set ("avx2" on an AVX-512 machine measures
# what an AVX2-only CPU gets; with OPENBLAS_CORETYPE=Haswell, NumPy's BLAS is capped alike).
SIMD_VARIABLE = "SADDLEPOINT_SIMD"


def optional(name: str) -> Any:
    """The module ``name``, or None where it is not installed."""
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


def _cpuinfo() -> dict[str, str]:
    fields: dict[str, str] = {}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip()
                if not key:
                    break  # the first processor's block is enough
                fields.setdefault(key, value.strip())
    except OSError:
        pass
    return fields


def _lscpu() -> dict[str, str]:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10, check=False).stdout
    except (OSError, subprocess.SubprocessError):
        return {}
    return {k.strip(): v.strip() for k, _, v in (line.partition(":") for line in out.splitlines()) if v}


def numpy_blas() -> dict[str, Any]:
    """NumPy's BLAS as threadpoolctl sees it (internal_api, version, architecture: the OpenBLAS
    kernel, num_threads), or what ``numpy.show_config`` says when threadpoolctl cannot tell."""
    try:
        from threadpoolctl import threadpool_info

        pools = [p for p in threadpool_info() if p.get("user_api") == "blas"]
        ours = [p for p in pools if "numpy" in str(p.get("filepath", ""))] or pools[:1]
        if ours:
            pool = ours[0]
            keys = ("internal_api", "version", "architecture", "num_threads", "threading_layer", "filepath")
            return {k: pool.get(k) for k in keys}
    except ImportError:
        pass
    try:
        config: Any = np.show_config(mode="dicts")
        blas = config["Build Dependencies"]["blas"]
        return {"internal_api": blas.get("name"), "version": blas.get("version")}
    except Exception:  # noqa: BLE001 - older NumPy: no dicts mode
        return {}


def record(threads: int | None = None) -> dict[str, Any]:
    """Everything a benchmark's figures depend on, as a JSON-ready dict."""
    info, lscpu = _cpuinfo(), _lscpu()
    flags = set((info.get("flags") or lscpu.get("Flags", "")).split())
    versions: dict[str, str | None] = {
        "python": platform.python_version(),
        "saddlepoint": __version__,
        "numpy": np.__version__,
    }
    for name, module in (("scikit-learn", "sklearn"), ("torch", "torch")):
        found = optional(module)
        versions[name] = getattr(found, "__version__", None) if found is not None else None
    torch = optional("torch")
    return {
        "cpu": info.get("model name") or lscpu.get("Model name") or platform.processor() or "unknown",
        "architecture": platform.machine(),
        "flags": [f for f in FLAGS if f in flags],
        "logical_cores": os.cpu_count(),
        "affinity_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "l2_cache": lscpu.get("L2 cache"),
        "l3_cache": lscpu.get("L3 cache"),
        "saddlepoint_threads": threads if threads is not None else get_num_threads(),
        "numpy_blas": numpy_blas(),
        "torch_threads": torch.get_num_threads() if torch is not None else None,
        "environment": {var: os.environ[var] for var in OPENBLAS_VARIABLES if var in os.environ},
        # The instruction set cap of saddlepoint's matrix products (None: the widest the CPU has),
        # and the one they use.
        "saddlepoint_simd": os.environ.get(SIMD_VARIABLE) or None,
        "matmul_simd": matmul_simd(),
        "versions": versions,
        "platform": platform.platform(),
        "executable": sys.executable,
    }


def describe(machine: dict[str, Any]) -> list[str]:
    """The record as a few lines of text."""
    blas = machine.get("numpy_blas", {})
    versions = ", ".join(f"{k} {v}" for k, v in machine["versions"].items() if v)
    lines = [
        f"machine: {machine['cpu']} ({machine['architecture']}), {machine['logical_cores']} logical cores, "
        f"flags {' '.join(machine['flags']) or 'none known'}",
        f"threads: saddlepoint {machine['saddlepoint_threads']}, numpy BLAS {blas.get('num_threads')}"
        + (f", torch {machine['torch_threads']}" if machine.get("torch_threads") else ""),
        f"numpy BLAS: {blas.get('internal_api')} {blas.get('version')}, kernel {blas.get('architecture')}; "
        f"saddlepoint's matrix products: {machine.get('matmul_simd') or 'portable (faer)'}",
        f"versions: {versions}",
    ]
    simd = machine.get("saddlepoint_simd")
    if simd:
        lines.append(f"saddlepoint's matrix products capped at {simd} ({SIMD_VARIABLE}={simd})")
        lines += [f"set: {var}={value}" for var, value in machine["environment"].items()]
    for var, value in machine["environment"].items() if not simd else ():
        lines.append(
            f"warning: {var}={value} is set and slows numpy's BLAS; for a fair comparison unset it: "
            "env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE <command>"
        )
    return lines
