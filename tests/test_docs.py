"""The API reference's promises, checked without building it: every public name has a docstring
that opens with a summary, the main entry points show an example, and every ``>>>`` example in
the package runs as written (doctest)."""

from __future__ import annotations

import ast
import doctest
import importlib
import importlib.util
import inspect
import pkgutil
import types
from pathlib import Path

import numpy as np
import pytest

import saddlepoint

#: The modules the reference has a page for (the command line's page is its --help texts).
PUBLIC_MODULES = (
    "saddlepoint",
    "saddlepoint.nn",
    "saddlepoint.losses",
    "saddlepoint.optim",
    "saddlepoint.training",
    "saddlepoint.data",
    "saddlepoint.diagnose",
    "saddlepoint.io",
    "saddlepoint.sklearn",
    "saddlepoint.bench",
    "saddlepoint.plot",
)

#: The main entry points: each docstring has an ``Examples`` section with a ``>>>`` example.
WITH_EXAMPLES = (
    "saddlepoint.Sequential",
    "saddlepoint.Dense",
    "saddlepoint.Conv2d",
    "saddlepoint.MaxPool2d",
    "saddlepoint.BatchNorm1d",
    "saddlepoint.Dropout",
    "saddlepoint.mlp",
    "saddlepoint.MSELoss",
    "saddlepoint.CrossEntropyLoss",
    "saddlepoint.BCEWithLogitsLoss",
    "saddlepoint.softmax",
    "saddlepoint.one_hot",
    "saddlepoint.SGD",
    "saddlepoint.Adam",
    "saddlepoint.AdamW",
    "saddlepoint.RMSprop",
    "saddlepoint.Adagrad",
    "saddlepoint.StepLR",
    "saddlepoint.LinearWarmup",
    "saddlepoint.Trainer",
    "saddlepoint.EarlyStopping",
    "saddlepoint.lr_find",
    "saddlepoint.save_model",
    "saddlepoint.load_model",
    "saddlepoint.save_onnx",
    "saddlepoint.set_num_threads",
    "saddlepoint.diagnose.guide",
    "saddlepoint.diagnose.critical_point",
    "saddlepoint.diagnose.escape_saddle",
    "saddlepoint.diagnose.batch_size_study",
    "saddlepoint.diagnose.hessian",
    "saddlepoint.data.cross_validate",
    "saddlepoint.sklearn.MLPClassifier",
    "saddlepoint.sklearn.MLPRegressor",
)


def public_names(module: types.ModuleType) -> list[str]:
    """``__all__``, or for a module without it the public names it defines itself."""
    if hasattr(module, "__all__"):
        return list(module.__all__)
    return [
        name
        for name, value in vars(module).items()
        if not name.startswith("_")
        and not inspect.ismodule(value)
        and getattr(value, "__module__", module.__name__) == module.__name__
        and (callable(value) or _assigned_in(module, name))
    ]


def _assigned_in(module: types.ModuleType, name: str) -> bool:
    return name in _attribute_docstrings(module) or name in _assigned_names(module)


def _module_tree(module: types.ModuleType) -> ast.Module | None:
    try:
        return ast.parse(inspect.getsource(module))
    except (OSError, TypeError):  # an extension module: its names are the stub's
        return None


def _assigned_names(module: types.ModuleType) -> set[str]:
    tree = _module_tree(module)
    names: set[str] = set()
    for statement in tree.body if tree else ():
        targets = statement.targets if isinstance(statement, ast.Assign) else []
        if isinstance(statement, ast.AnnAssign):
            targets = [statement.target]
        names.update(t.id for t in targets if isinstance(t, ast.Name))
    return names


def _attribute_docstrings(module: types.ModuleType) -> dict[str, str]:
    """The docstrings of a module's top-level assignments: the string right after each."""
    tree = _module_tree(module)
    docs: dict[str, str] = {}
    body = tree.body if tree else []
    for statement, following in zip(body, body[1:]):
        targets = statement.targets if isinstance(statement, ast.Assign) else []
        if isinstance(statement, ast.AnnAssign):
            targets = [statement.target]
        if (
            isinstance(following, ast.Expr)
            and isinstance(following.value, ast.Constant)
            and isinstance(following.value.value, str)
        ):
            docs.update((t.id, following.value.value) for t in targets if isinstance(t, ast.Name))
    return docs


#: The optional extras' packages: a module that needs one at import is left out without it
#: (CI installs the extras, so its examples run there).
OPTIONAL_PACKAGES = ("matplotlib", "onnx", "onnxruntime")


def _package_modules() -> list[types.ModuleType]:
    modules = [saddlepoint]
    for info in pkgutil.walk_packages(saddlepoint.__path__, "saddlepoint."):
        try:
            modules.append(importlib.import_module(info.name))
        except ModuleNotFoundError as error:
            if (error.name or "").partition(".")[0] not in OPTIONAL_PACKAGES:
                raise
    return modules


def docstring_of(module: types.ModuleType, name: str, modules: list[types.ModuleType]) -> str:
    """The docstring documenting ``module.name``: the object's own (not one inherited from a
    base class), or for a constant the string after its assignment in the module defining it."""
    value = getattr(module, name)
    if inspect.isclass(value) or inspect.isroutine(value) or inspect.ismodule(value):
        return value.__dict__.get("__doc__") or "" if inspect.isclass(value) else value.__doc__ or ""
    for candidate in modules:
        if getattr(candidate, name, None) is value:
            doc = _attribute_docstrings(candidate).get(name)
            if doc:
                return doc
    return ""


def missing_summaries(module: types.ModuleType, modules: list[types.ModuleType]) -> list[str]:
    """The public names of ``module`` whose docstring has no summary (a first line of words)."""
    missing = []
    for name in public_names(module):
        doc = inspect.cleandoc(docstring_of(module, name, modules))
        summary = doc.split("\n\n")[0].strip()
        if len(summary.split()) < 2:
            missing.append(f"{module.__name__}.{name}")
    return missing


@pytest.fixture(scope="module")
def package_modules():
    return _package_modules()


@pytest.mark.parametrize("module_name", PUBLIC_MODULES)
def test_every_public_name_has_a_summary(module_name, package_modules):
    module = importlib.import_module(module_name)
    assert public_names(module), f"{module_name} exports nothing"
    assert missing_summaries(module, package_modules) == []


def test_the_check_finds_a_name_without_docstring(package_modules):
    module = types.ModuleType("undocumented")
    exec(
        "def documented():\n    'Says what it does.'\n"
        "def bare():\n    pass\n"
        "class Terse:\n    'x'\n"
        "class Child(ValueError):\n    pass\n"
        "__all__ = ['documented', 'bare', 'Terse', 'Child']\n",
        module.__dict__,
    )
    assert missing_summaries(module, package_modules) == [
        "undocumented.bare",
        "undocumented.Terse",
        "undocumented.Child",  # ValueError's docstring is inherited, not its own
    ]


def stub_docstrings() -> dict[str, str]:
    """The docstrings of the extension's type stub (``_core.pyi``), by function name: the
    reference renders the stub, not the compiled module's own docstrings."""
    stub = Path(saddlepoint.__file__).with_name("_core.pyi")
    tree = ast.parse(stub.read_text(encoding="utf-8"))
    return {
        node.name: ast.get_docstring(node) or "" for node in tree.body if isinstance(node, ast.FunctionDef)
    }


def documented_docstring(obj) -> str:
    """What the reference shows for ``obj``: the stub's docstring for an extension function."""
    if getattr(obj, "__module__", None) == "saddlepoint._core":
        return stub_docstrings().get(obj.__name__, "")
    return inspect.cleandoc(obj.__doc__ or "")


@pytest.mark.parametrize("path", WITH_EXAMPLES)
def test_main_entry_points_have_examples(path):
    module_name, _, name = path.rpartition(".")
    doc = documented_docstring(getattr(importlib.import_module(module_name), name))
    assert "Examples\n--------" in doc and "\n>>> " in doc, f"{path} has no Examples section"


def _doctest_modules() -> list[str]:
    return [module.__name__ for module in _package_modules() if module.__name__ != "saddlepoint._core"]


def _needs_missing_package(test: doctest.DocTest) -> bool:
    """Whether the example imports an optional extra that is not installed."""
    for example in test.examples:
        for package in OPTIONAL_PACKAGES:
            if f"import {package}" in example.source or f"from {package}" in example.source:
                if importlib.util.find_spec(package) is None:
                    return True
    return False


@pytest.mark.parametrize("module_name", _doctest_modules())
def test_examples_run(module_name, monkeypatch, tmp_path):
    """Every ``>>>`` example of the module, run with doctest in a scratch working directory."""
    monkeypatch.chdir(tmp_path)
    module = importlib.import_module(module_name)
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    threads = saddlepoint.get_num_threads()
    # The finder skips the objects a module imports: each example runs once, in its own module.
    for test in finder.find(module, module_name, globs={"np": np, "sp": saddlepoint}):
        if not _needs_missing_package(test):
            runner.run(test)
    saddlepoint.set_num_threads(threads)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed in {module_name}"


def test_stub_examples_run():
    """The examples in the extension's stub, which doctest cannot find by importing it."""
    parser = doctest.DocTestParser()
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    threads = saddlepoint.get_num_threads()
    examples = 0
    for name, doc in stub_docstrings().items():
        test = parser.get_doctest(doc, {"np": np, "sp": saddlepoint}, f"_core.pyi:{name}", None, 0)
        examples += len(test.examples)
        runner.run(test)
    saddlepoint.set_num_threads(threads)
    assert examples > 0 and runner.summarize(verbose=False).failed == 0


def test_examples_exist():
    """The doctest runs above are not empty: the package holds many examples."""
    finder = doctest.DocTestFinder(exclude_empty=True)
    examples = sum(
        len(test.examples)
        for name in _doctest_modules()
        for test in finder.find(importlib.import_module(name), name)
    )
    assert examples >= 2 * len(WITH_EXAMPLES)
