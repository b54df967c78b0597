"""``list()`` of one thread's checkpoints in one scan of the thread's rows.

A thread's checkpoints and their pending writes are rows of one store session. The
general path reads the checkpoints that match, then their writes (two filtered scans).
When no metadata filter is asked, one outline of the thread (order, id, role,
namespace, checkpoint id) is enough to choose both, and only the chosen rows are read.
"""

from __future__ import annotations

from lance_context import ContextRecord, ContextStore

from ._checkpoint_records import CHECKPOINT_ROLE, WRITE_ROLE

__all__ = ["thread_checkpoints"]


def thread_checkpoints(
    store: ContextStore,
    session: str,
    *,
    ns: str | None,
    checkpoint_id: str | None,
    before_id: str | None,
    limit: int | None,
) -> list[tuple[ContextRecord, list[ContextRecord]]]:
    """A thread's checkpoints newest first, each with its pending writes.

    Args:
        store: The saver's store.
        session: The thread's store session.
        ns: Only this checkpoint namespace; None for every namespace.
        checkpoint_id: Only the checkpoint with this id; None for any.
        before_id: Only checkpoints whose id sorts before this one; None for all.
        limit: At most this many checkpoints; None for all.
    """
    view = store.outline(session, ("checkpoint_ns", "checkpoint_id"))
    rows = view.table.select(["seq", "id", "role", "checkpoint_ns", "checkpoint_id", "_rowid"]).to_pylist()
    rows = [r for r in rows if r["checkpoint_id"] is not None and (ns is None or r["checkpoint_ns"] == ns)]
    checkpoints = [
        r
        for r in rows
        if r["role"] == CHECKPOINT_ROLE
        and (checkpoint_id is None or r["checkpoint_id"] == checkpoint_id)
        and (before_id is None or r["checkpoint_id"] < before_id)
    ]
    checkpoints.sort(key=lambda r: (r["seq"], r["id"]), reverse=True)
    chosen = checkpoints if limit is None else checkpoints[:limit]
    keys = {(r["checkpoint_ns"], r["checkpoint_id"]) for r in chosen}
    writes = [r for r in rows if r["role"] == WRITE_ROLE and (r["checkpoint_ns"], r["checkpoint_id"]) in keys]
    writes.sort(key=lambda r: (r["seq"], r["id"]))
    fetched = view.fetch([r["_rowid"] for r in chosen + writes])
    by_key: dict[tuple[str, str], list[ContextRecord]] = {}
    for row, record in zip(writes, fetched[len(chosen) :], strict=True):
        by_key.setdefault((row["checkpoint_ns"], row["checkpoint_id"]), []).append(record)
    return [
        (record, by_key.get((row["checkpoint_ns"], row["checkpoint_id"]), []))
        for row, record in zip(chosen, fetched, strict=False)
    ]
