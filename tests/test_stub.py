"""The type stub `_core.pyi` lists exactly the extension's functions, with their parameters."""

import ast
import inspect
from pathlib import Path

import saddlepoint
from saddlepoint import _core


def stub_signatures():
    path = Path(saddlepoint.__file__).with_name("_core.pyi")
    tree = ast.parse(path.read_text())
    return {
        node.name: [a.arg for a in node.args.args + node.args.kwonlyargs]
        for node in tree.body
        if isinstance(node, ast.FunctionDef)
    }


def test_stub_matches_the_extension():
    stub = stub_signatures()
    exported = {name for name in dir(_core) if not name.startswith("_")}
    assert set(stub) == exported
    for name, params in stub.items():
        actual = list(inspect.signature(getattr(_core, name)).parameters)
        assert actual == params, name
