"""The package's layers: a module imports only from its own layer or the layers below it, and
does its package imports at the top (issue 12: no hidden cycles behind function-level imports)."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "python" / "saddlepoint"
# Lowest first. The top-level __init__ re-exports everything and is not a layer.
LAYERS = [
    "_core",
    "_threadpool",
    "validation",
    "_jobs",
    "plot",
    "nn",
    "losses",
    "optim",
    "data",
    "io",
    "training",
    "sklearn",
    "diagnose",
    "bench",
    "cli",
]
BASE = {"_core": 0, "_threadpool": 0, "validation": 0, "_jobs": 0, "plot": 0}


def _layer(parts: list[str]) -> int:
    name = parts[0] if parts else ""
    return BASE.get(name, LAYERS.index(name)) if name in LAYERS else -1


def _modules():
    return sorted(p for p in PACKAGE.rglob("*.py") if p != PACKAGE / "__init__.py")


def _package_imports(path: Path):
    """(line, imported module's parts under saddlepoint, at top level?) for each package import."""
    tree = ast.parse(path.read_text())
    here = list(path.relative_to(PACKAGE).with_suffix("").parts)
    top_level = {id(node) for node in tree.body}
    for node in ast.walk(tree):
        if not isinstance(node, ast.ImportFrom) or node.level == 0:
            continue
        base = here[: len(here) - node.level]
        target = base + (node.module.split(".") if node.module else [])
        names = [target] if node.module else [base + [alias.name] for alias in node.names]
        for parts in names:
            yield node.lineno, parts, id(node) in top_level


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_go_down_and_sit_at_the_top(path):
    own = _layer(list(path.relative_to(PACKAGE).with_suffix("").parts))
    for line, parts, top in _package_imports(path):
        assert top, f"{path.name}:{line} imports {'.'.join(parts)} inside a function"
        layer = _layer(parts)
        assert layer <= own, (
            f"{path.relative_to(PACKAGE)}:{line} imports {'.'.join(parts)}, "
            f"a layer above its own ({LAYERS[own]})"
        )


def test_every_module_belongs_to_a_layer():
    for path in _modules():
        assert _layer(list(path.relative_to(PACKAGE).with_suffix("").parts)) >= 0, path
