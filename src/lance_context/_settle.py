"""After an upsert that Lance rebased over concurrent commits: make it act as one step.

Lance rebases two merge inserts as compatible when each only adds rows: two upserts of
one new id then both land (and so do an insert and an update of the copy the updater
saw), and an upsert that replaces a filter's records (``scope``) does not remove rows a
concurrent commit added inside that filter. One step after the other, the later commit
would have replaced them. So the writer of the later commit reads its own version: every
row there with one of the ids it wrote, or inside its scope, that it did not write
itself came from a concurrent commit landed before it, and is deleted. A commit landed
after it sees this one's rows as earlier and does the same, so the rows of the last
commit remain, whichever writer finishes first. An upsert whose snapshot held two copies
of an id (another writer's check not yet done) updates both: it keeps one.

A commit made directly on top of its base (version + 1) that wrote one row per record
had nothing to settle: no read at all. Rows are named by ``(id, seq)``, which a
compaction keeps; the delete reads the row addresses again from the latest version.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection
from typing import Any

import lance
import pyarrow as pa

from ._dataset import DatasetHandle
from ._filters import in_

__all__ = ["settle", "written_rows"]

Row = tuple[str, int]


def _rows(table: pa.Table) -> list[Row]:
    """The ``(id, seq)`` of each row of ``table``, in order."""
    return list(zip(table.column("id").to_pylist(), table.column("seq").to_pylist(), strict=True))


def written_rows(table: pa.Table) -> set[Row]:
    """The ``(id, seq)`` of every row a commit writes."""
    return set(_rows(table))


def settle(
    handle: DatasetHandle,
    base: lance.LanceDataset,
    new: lance.LanceDataset,
    mine: Collection[Row],
    scope: str | None,
    rows_written: int,
) -> tuple[lance.LanceDataset, lance.LanceDataset] | None:
    """Remove the rows of ``new`` that this commit replaces one step after the other.

    Those are the rows with the ids of ``mine`` or in ``scope`` that it did not write,
    and second copies of its own. Returns (base, new) of the delete, or None.
    """
    if int(new.version) == int(base.version) + 1 and rows_written <= len(mine):
        return None
    ids = sorted({record_id for record_id, _ in mine})
    where = " OR ".join(f"({c})" for c in (in_("id", ids), scope) if c)
    found = handle.call(
        lambda: new.to_table(filter=where, columns=["id", "seq"]), "check the upserted records"
    )
    counts = Counter(_rows(found))
    drop = {row for row in counts if row not in mine}
    twice = {row for row, n in counts.items() if n > 1 and row in mine}
    return _remove(handle, drop, twice) if drop or twice else None


def _remove(
    handle: DatasetHandle, drop: set[Row], twice: set[Row]
) -> tuple[lance.LanceDataset, lance.LanceDataset] | None:
    """Delete the ``drop`` rows and all but one copy of each ``twice`` row, from the latest version."""
    outcome: dict[str, Any] = {}
    ids = sorted({record_id for record_id, _ in drop | twice})

    def attempt() -> lance.LanceDataset | None:
        base = handle.private_latest()
        outcome["base"] = base
        found = base.to_table(filter=in_("id", ids), columns=["id", "seq"], with_row_address=True)
        kept: dict[Row, int] = {}
        addresses = []
        located = zip(_rows(found), found.column("_rowaddr").to_pylist(), strict=True)
        for row, address in sorted(located, key=_newest):
            if row in drop or (row in twice and row in kept):
                addresses.append(address)
            kept.setdefault(row, address)
        if not addresses:
            return None
        # no retry inside Lance: on a conflict the addresses are read again from the new version
        base.delete(f"_rowaddr IN ({', '.join(str(a) for a in addresses)})", conflict_retries=0)
        return handle.adopt(base)

    fixed = handle.call(attempt, "remove a concurrent writer's copies of upserted records")
    return None if fixed is None else (outcome["base"], fixed)


def _newest(row: tuple[Row, int]) -> int:
    """Highest row address first: the copy in the fragment committed last is kept."""
    return -row[1]
