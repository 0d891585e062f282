"""MkDocs hooks: pages made from the package itself, so they cannot drift from it.

- ``<!-- saddlepoint:exports -->`` becomes the table of every name ``saddlepoint`` exports, each
  linked to its entry on its module's page with the first line of its docstring.
- A module page (``::: saddlepoint.training``) gets, after it, each exported function named
  as the submodule that defines it (``training.lr_find``): the docs' loader takes that name
  for the submodule, which the page does not render, so the function is rendered by its full
  path (``saddlepoint.training.lr_find.lr_find``).
- The docstrings' Sphinx roles (``:func:`name```, written for readers of the source) lose
  their ``:func:`` prefix on the page, which MkDocs would otherwise show as text.
- ``<!-- saddlepoint:cli-help -->`` becomes the ``--help`` text of ``saddlepoint`` and of each of
  its commands, as the argparse parser of ``saddlepoint.cli`` formats it.
"""

from __future__ import annotations

import argparse
import inspect
import os
import re
import sys

#: The module pages, in the order a name is looked up in them for the exports table.
MODULE_PAGES = (
    "saddlepoint.nn",
    "saddlepoint.losses",
    "saddlepoint.optim",
    "saddlepoint.training",
    "saddlepoint.data",
    "saddlepoint.diagnose",
    "saddlepoint.io",
    "saddlepoint",  # its own few names (the thread controls), rendered on its page
)
EXPORTS_MARKER = "<!-- saddlepoint:exports -->"
CLI_HELP_MARKER = "<!-- saddlepoint:cli-help -->"
#: A Sphinx role before an inline code span, as Markdown renders ``:func:`name```.
SPHINX_ROLE = re.compile(r":(?:func|meth|class|mod|data|attr|exc|obj):(?=<code>)")
#: The width argparse wraps the help texts at, whatever the terminal building the docs.
HELP_COLUMNS = "100"


def _summary(obj) -> str:
    doc = inspect.getdoc(obj) or ""
    return doc.strip().split("\n\n")[0].replace("\n", " ").replace("|", "\\|")


def _module_page(name: str, obj) -> str:
    """The module whose page documents ``obj`` (exported as ``saddlepoint.<name>``)."""
    import importlib

    for module_name in MODULE_PAGES:
        module = importlib.import_module(module_name)
        if getattr(module, name, None) is obj and not name.startswith("_"):
            return module_name
    raise LookupError(f"saddlepoint.{name} is documented on none of the pages {', '.join(MODULE_PAGES)}")


def exports_table() -> str:
    import saddlepoint

    rows = ["| name | documented in | summary |", "| --- | --- | --- |"]
    for name in sorted(saddlepoint.__all__, key=str.lower):
        obj = getattr(saddlepoint, name)
        if inspect.ismodule(obj):
            page = obj.__name__
            rows.append(f"| [`{name}`][{page}] | [`{page}`][{page}] | {_summary(obj)} |")
            continue
        page = _module_page(name, obj)
        target = f"{page}.{name}"
        if inspect.ismodule(sys.modules.get(target)):
            # A function named as the submodule that defines it (training.lr_find): the docs
            # know it by its full path, the submodule's name being taken by the submodule.
            target = f"{target}.{name}"
        rows.append(f"| [`{name}`][{target}] | [`{page}`][{page}] | {_summary(obj)} |")
    return "\n".join(rows)


def cli_help() -> str:
    from saddlepoint.cli import build_parser

    before = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = HELP_COLUMNS
    try:
        parser = build_parser()
        sections = ["## `saddlepoint --help`", "```text", parser.format_help().rstrip(), "```"]
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for command, subparser in action.choices.items():
                    sections += [
                        f"## `saddlepoint {command}`",
                        "```text",
                        subparser.format_help().rstrip(),
                        "```",
                    ]
    finally:
        if before is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = before
    return "\n\n".join(sections)


#: A page's directive rendering a whole module.
MODULE_DIRECTIVE = re.compile(r"^::: (saddlepoint[\w.]*)$", re.MULTILINE)


def shadowed_functions(module_name: str) -> list[str]:
    """The exported names of a module that are also the names of its submodules."""
    import importlib

    module = importlib.import_module(module_name)
    return [
        name
        for name in getattr(module, "__all__", ())
        if inspect.ismodule(sys.modules.get(f"{module_name}.{name}"))
        and not inspect.ismodule(getattr(module, name))
    ]


def with_shadowed_functions(markdown: str) -> str:
    blocks = []
    for module_name in MODULE_DIRECTIVE.findall(markdown):
        for name in shadowed_functions(module_name):
            blocks.append(
                f"::: {module_name}.{name}.{name}\n"
                "    options:\n"
                "      heading_level: 2\n"
                "      show_root_full_path: false\n"
            )
    return markdown.rstrip("\n") + "".join(f"\n\n{block}" for block in blocks) + "\n"


def on_page_markdown(markdown: str, **kwargs) -> str:
    markdown = with_shadowed_functions(markdown)
    if EXPORTS_MARKER in markdown:
        markdown = markdown.replace(EXPORTS_MARKER, exports_table())
    if CLI_HELP_MARKER in markdown:
        markdown = markdown.replace(CLI_HELP_MARKER, cli_help())
    return markdown


def on_page_content(html: str, **kwargs) -> str:
    return SPHINX_ROLE.sub("", html)
