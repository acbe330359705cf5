"""Counts the inputs each property test tried, and prints them after the run."""

from __future__ import annotations

from collections import Counter

import pytest

TRIED: Counter[str] = Counter()


@pytest.fixture
def tried(request: pytest.FixtureRequest) -> Counter[str]:
    """`tried[name] += 1` once per generated input (shrinking and replays included)."""
    return TRIED


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not TRIED:
        return
    terminalreporter.section("manifest property tests: inputs tried")
    for name, count in sorted(TRIED.items()):
        terminalreporter.write_line(f"{name}: {count}")
    # "(loaded)" lines count a subset of the inputs above them, not more inputs.
    total = sum(n for name, n in TRIED.items() if not name.endswith("(loaded)"))
    terminalreporter.write_line(f"total inputs: {total}")
