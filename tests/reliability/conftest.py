"""The reliability suite: hostile inputs, crafted files, killed runs and malformed tables.

Each test counts the cases it ran with the ``cases`` fixture (``cases.add(n)``); the totals, per
file, are printed at the end of the run, so the README can state how much the suite covers.
"""

import collections

import pytest

_counts: collections.Counter = collections.Counter()


class CaseCounter:
    """Adds to the count of cases run by one test file."""

    def __init__(self, key: str):
        self.key = key

    def add(self, n: int = 1) -> None:
        _counts[self.key] += n


@pytest.fixture
def cases(request) -> CaseCounter:
    return CaseCounter(request.node.path.name)


def pytest_terminal_summary(terminalreporter):
    if not _counts:
        return
    terminalreporter.section("reliability cases")
    for key, n in sorted(_counts.items()):
        terminalreporter.write_line(f"{key}: {n} cases")
    terminalreporter.write_line(f"total: {sum(_counts.values())} cases")
