"""The reliability tally: what the tests tried and what they found, printed at the end.

Tests add to ``TALLY`` *before* asserting, so the summary is true even when a test fails.
"""

from __future__ import annotations

from dataclasses import dataclass, fields


@dataclass
class Tally:
    """Counters summed over the run."""

    writes_attempted: int = 0
    """Records handed to ``add``/``upsert`` by concurrent or crashing writers."""
    writes_committed: int = 0
    """Of those, records whose call returned (acknowledged to the writer)."""
    writes_refused: int = 0
    """Records whose call raised a clear error (conflict, outage): not acknowledged."""
    writes_lost: int = 0
    """Acknowledged records missing afterwards. Must stay 0."""
    writes_duplicated: int = 0
    """Records found more than once. Must stay 0."""
    partial_batches: int = 0
    """Batches found incomplete. Must stay 0."""
    crashes: int = 0
    """Writer processes killed with SIGKILL."""
    crashes_mid_operation: int = 0
    """Of those, kills that landed inside add, compaction, cleanup, store creation or forget."""
    crashes_survived: int = 0
    """Of those, kills after which the store opened, showed every acknowledged record
    and nothing partial, and accepted a new write."""
    outages: int = 0
    """Object-store outages (server killed, link cut or stalled) during operations."""
    outages_survived: int = 0
    """Of those, outages that gave a clear error in bounded time and a working store after."""
    inputs_tried: int = 0
    """Hostile or invalid inputs (hypothesis examples, bad records, bad filters)."""
    forgets: int = 0
    """``forget()`` runs (while other processes append, or again after a SIGKILL midway)."""
    forgets_verified: int = 0
    """Of them, runs whose scan of every remaining file found nothing of what was erased."""
    leak_checks: int = 0
    """Checks that a session's query shows no other session and that no secret is written."""
    leaks_found: int = 0
    """Records of another session shown, or secrets found in files, logs or errors. Must stay 0."""
    fresh_checks: int = 0
    """Reads of a shared session or thread checked against every write acknowledged before them."""
    stale_reads: int = 0
    """Of those, reads missing an acknowledged write (a cache trusted over the store). Must stay 0."""

    def add(self, **counts: int) -> None:
        for name, value in counts.items():
            setattr(self, name, getattr(self, name) + value)

    def touched(self) -> bool:
        return any(getattr(self, f.name) for f in fields(self))


TALLY = Tally()


def summary_lines(mode: str) -> list[str]:
    """The summary ``make reliability`` prints."""
    t = TALLY
    return [
        f"lance-context reliability summary ({mode} run)",
        f"  writes: {t.writes_attempted} attempted, {t.writes_committed} committed, "
        f"{t.writes_refused} refused with a clear error, {t.writes_lost} lost, "
        f"{t.writes_duplicated} duplicated, {t.partial_batches} partial batches",
        f"  crashes: {t.crashes_survived} of {t.crashes} SIGKILLs survived, "
        f"{t.crashes_mid_operation} of them inside add/compact/cleanup/create/forget "
        "(store opens, every acknowledged record present, nothing partial, new writes accepted)",
        f"  object-store outages: {t.outages_survived} of {t.outages} survived "
        "(clear error in bounded time, no corruption, works after recovery)",
        f"  forgetting: {t.forgets_verified} of {t.forgets} forget runs verified (every remaining file "
        "scanned; while other processes appended, or run again after a SIGKILL midway)",
        f"  hostile inputs tried: {t.inputs_tried}",
        f"  leaks found: {t.leaks_found} in {t.leak_checks} checks "
        "(other sessions' records, secrets in files, logs or errors)",
        (
            f"  stale reads: {t.stale_reads} in {t.fresh_checks} reads of shared sessions and threads "
            "after other servers' acknowledged writes"
            if t.fresh_checks
            else "  stale reads: not measured in this run (the many-servers test runs in make reliability)"
        ),
    ]
