"""How big the reliability tests run: short in ``pytest -q``, long under ``--reliability-long``.

Every test in this folder runs in both modes; only the sizes change, so the default run
never skips one.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Scale:
    """Sizes for one mode."""

    name: str
    processes: int
    """Writer processes appending to one local store."""
    threads: int
    """Writer threads in each process (each one a session with its own order)."""
    appends_per_thread: int
    """``add()`` calls per thread on a local store."""
    s3_processes: int
    s3_appends_per_thread: int
    """``add()`` calls per thread on the S3 store (moto is slower than a disk)."""
    kills_per_phase: int
    """SIGKILLs during add, during compaction and during cleanup (each)."""
    examples: int
    """Hypothesis examples per property."""
    conflicting_upserts: int
    """``upsert()`` calls per process in the same-ids contention test."""
    servers: int
    """Application-server processes sharing one S3 memory (issue 18)."""
    server_rounds: int
    """Rounds per server (each: 2 history writes, 2 graph runs, 1 memory write)."""
    ray_records: int
    """Records per Ray bulk job in the kill and failure tests."""


SHORT = Scale(
    name="short",
    processes=4,
    threads=2,
    appends_per_thread=100,
    s3_processes=4,
    s3_appends_per_thread=6,
    kills_per_phase=2,
    examples=25,
    conflicting_upserts=15,
    servers=4,
    server_rounds=4,
    ray_records=2_000,
)
LONG = Scale(
    name="long",
    processes=6,
    threads=2,
    appends_per_thread=250,
    s3_processes=4,
    s3_appends_per_thread=100,
    kills_per_phase=20,
    examples=400,
    conflicting_upserts=60,
    servers=6,
    server_rounds=25,
    ray_records=20_000,
)

_current = SHORT


def configure(long: bool) -> None:
    """Select the long sizes (called once from the folder's conftest)."""
    global _current
    _current = LONG if long else SHORT


def current() -> Scale:
    """The sizes of this run."""
    return _current
