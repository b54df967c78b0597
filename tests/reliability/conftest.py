"""Reliability folder: sizes from ``--reliability-long`` and the summary at the end."""

from __future__ import annotations

import pytest

from . import report, scale


def pytest_configure(config: pytest.Config) -> None:
    scale.configure(bool(config.getoption("--reliability-long", default=False)))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not report.TALLY.touched():
        return
    terminalreporter.section("reliability")
    for line in report.summary_lines(scale.current().name):
        terminalreporter.write_line(line)
