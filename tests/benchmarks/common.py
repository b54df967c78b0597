"""Shared pieces of the benchmark: rows of the results table, timing, the run context."""

from __future__ import annotations

import gc
import shutil
import statistics
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

PASS, FAIL, INFO, SKIP = "PASS", "FAIL", "info", "SKIP"


@dataclass
class Row:
    """One line of the results table.

    ``ratio`` is ours ÷ peer for the same workload in the same run (lower is better
    for times and disk, higher is better for throughput); ``target`` names the target
    the row decides (``"1"``...``"7"``) or is empty for information-only rows.
    """

    workload: str
    ours: float | None
    unit: str
    peer: str = ""
    peer_value: float | None = None
    target: str = ""
    goal: str = ""
    status: str = INFO
    note: str = ""

    @property
    def ratio(self) -> float | None:
        if self.ours is None or not self.peer_value:
            return None
        return self.ours / self.peer_value


@dataclass
class Bench:
    """What every workload gets: where to write, how big to go, where to put rows."""

    root: Path
    quick: bool
    rows: list[Row] = field(default_factory=list)
    skips: list[str] = field(default_factory=list)

    def path(self, name: str) -> str:
        target = self.root / name
        if target.exists():
            shutil.rmtree(target)
        return str(target)

    def add(self, row: Row) -> Row:
        self.rows.append(row)
        print("  " + format_row(row), flush=True)
        return row

    def size(self, full: int, quick: int) -> int:
        return quick if self.quick else full


def p50(samples: Iterable[float]) -> float:
    return float(statistics.median(list(samples)))


def ms(seconds: float) -> float:
    return seconds * 1000.0


def time_once(fn: Callable[[], object]) -> float:
    """Seconds one call takes."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def time_each(fns: Iterable[Callable[[], object]]) -> list[float]:
    """Seconds each call takes (gc is collected first so a collection does not land in one sample)."""
    gc.collect()
    out = []
    for fn in fns:
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


def check(row: Row, passed: bool) -> Row:
    row.status = PASS if passed else FAIL
    return row


def dir_bytes(path: str) -> int:
    return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file())


def _num(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "rec/s":
        return f"{value:,.0f} rec/s"
    if unit == "MB":
        return f"{value:,.1f} MB"
    if unit == "%":
        return f"{value:.1f} %"
    if unit == "recall":
        return f"{value:.3f}"
    if value >= 100:
        return f"{value:,.0f} {unit}"
    if value >= 10:
        return f"{value:.1f} {unit}"
    if value >= 0.1 or unit != "ms":
        return f"{value:.2f} {unit}"
    return f"{value * 1000:.1f} µs"


def _ratio(row: Row) -> str:
    ratio = row.ratio
    if ratio is None:
        return "-"
    return f"{ratio:.3f}" if ratio < 0.1 else f"{ratio:.2f}"


HEADER = ("workload", "ours (p50)", "peer", "peer (p50)", "ours ÷ peer", "target", "result")


def cells(row: Row) -> tuple[str, ...]:
    status = row.status if row.status != INFO else ""
    note = f" ({row.note})" if row.note else ""
    target = f"{row.target}: {row.goal}" if row.target else row.goal
    return (
        row.workload + note,
        _num(row.ours, row.unit),
        row.peer or "-",
        _num(row.peer_value, row.unit),
        _ratio(row),
        target or "-",
        status or "-",
    )


def format_row(row: Row) -> str:
    return " | ".join(cells(row))


def markdown_table(rows: list[Row]) -> str:
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(c.replace("|", "/") for c in cells(r)) + " |" for r in rows]
    return "\n".join(lines)
