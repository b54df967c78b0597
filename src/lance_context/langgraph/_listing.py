"""Listing checkpoints with their pending writes (the saver's ``list`` and reads by id).

A thread's checkpoints and their pending writes are rows of one store session. Within
one thread and without a metadata filter, one outline of the thread (order, id, role,
namespace, checkpoint id) is enough to choose both, and only the chosen rows are read.
Otherwise an outline of the matching checkpoints picks them, then their writes are read.

Checkpoints go in :func:`checkpoint_order`: append order across commits, and checkpoint
id among checkpoints committed at once (two servers saving one thread on top of the same
store version), as LangGraph's own savers order them.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pyarrow as pa
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import get_checkpoint_id

from lance_context import ContextRecord, ContextStore, InvalidFilterError
from lance_context.adapters import Outline, write_group

from ._checkpoint_records import (
    CHECKPOINT_ROLE,
    THREAD_PREFIX,
    WRITE_ROLE,
    json_native,
    load_metadata,
    thread_key,
)
from ._serde import PayloadReader
from ._store_filters import ValueFilter, equality_filter, first_kept

__all__ = ["checkpoint_order", "list_checkpoints", "newest_checkpoints", "thread_checkpoints", "thread_rows"]

#: Above this many listed checkpoints, their writes are read per thread rather than by id.
_WRITES_BY_ID_MAX = 64
Where = dict[Any, Any]
Listed = list[tuple[ContextRecord, list[ContextRecord]]]


def list_checkpoints(
    store: ContextStore,
    config: RunnableConfig | None,
    filter: Mapping[str, Any] | None,
    before: RunnableConfig | None,
    limit: int | None,
    reader: PayloadReader,
) -> Listed:
    """Checkpoints matching ``config``, metadata ``filter`` and ``before``, newest first, with writes.

    A filter value JSON cannot hold (a datetime, a dict with int keys...) is compared in
    Python with the exact metadata ``reader`` decodes, as LangGraph's savers compare.
    """
    if config is not None and not filter:  # one thread, no metadata filter: one scan
        conf = config["configurable"]
        ns = conf.get("checkpoint_ns")
        return thread_checkpoints(
            store,
            thread_key(conf["thread_id"]),
            ns=None if ns is None else str(ns),
            checkpoint_id=get_checkpoint_id(config) or None,
            before_id=None if before is None else get_checkpoint_id(before) or None,
            limit=limit,
        )
    exotic = {k: v for k, v in (filter or {}).items() if not json_native(v)}
    plain = {k: v for k, v in (filter or {}).items() if k not in exotic}
    run_id, where, values = _list_filter(config, plain, before)
    view, newest = newest_checkpoints(store, run_id, where)
    # without a check, the first ``limit`` candidates are the answer; a list or dict holding
    # numbers or bools is checked in Python (its == decides), reading more until enough pass
    wanted = None if exotic else limit  # the stored JSON holds only a readable copy of exotic values
    found = first_kept(lambda n: view.fetch(newest(n)), values.check, wanted, field="checkpoint_metadata")
    if exotic:
        found = [r for r in found if _equal(load_metadata(reader, r), exotic)][:limit]
    writes = _writes_of(store, run_id, found)
    return [(r, writes.get(_key(r), [])) for r in found]


def _equal(metadata: Mapping[str, Any], filter: Mapping[str, Any]) -> bool:
    return all(metadata.get(key) == value for key, value in filter.items())


def checkpoint_order(row: Mapping[str, Any]) -> tuple[int, str, int, str]:
    """The sort key of a checkpoint's outline row (``seq``, ``id``, ``checkpoint_id``), oldest first.

    Across commits, append order; among checkpoints of one write group (committed at once
    on top of the same version, e.g. by two servers), the checkpoint id, which LangGraph
    makes increasing; then append order and record id.
    """
    return (write_group(row["seq"]), str(row["checkpoint_id"]), row["seq"], row["id"])


def newest_checkpoints(
    store: ContextStore, run_id: str | None, where: Where
) -> tuple[Outline, Callable[[int | None], list[int]]]:
    """An outline of the checkpoints matching ``where``, and ``newest(n)`` to pick from it.

    ``newest(n)`` gives the row ids of the first ``n`` (None: all) in
    :func:`checkpoint_order`, newest first.

    Only the newest ``n`` in append order (and the rest of the last one's write group)
    are ordered by checkpoint id.

    Args:
        store: The saver's store.
        run_id: The thread's store session; None for every session ``where`` matches.
        where: Conditions on the checkpoint records.
    """
    view = _outline(store, run_id, ("checkpoint_id",), {**where, "role": CHECKPOINT_ROLE})
    table = view.table.select(["seq", "id", "checkpoint_id", "_rowid"])  # in append order
    seqs = table.column("seq")

    def newest(n: int | None) -> list[int]:
        start = 0 if n is None else max(table.num_rows - n, 0)
        if 0 < start < table.num_rows:  # the whole write group of the oldest row taken
            group = write_group(seqs[start].as_py())
            start = bisect_left(seqs, group, hi=start, key=lambda seq: write_group(seq.as_py()))
        chosen = table.slice(start)
        groups = pa.array([write_group(seq) for seq in chosen.column("seq").to_pylist()], pa.int64())
        chosen = chosen.append_column("group", groups)
        chosen = chosen.sort_by([(c, "descending") for c in ("group", "checkpoint_id", "seq", "id")])
        row_ids: list[int] = chosen.column("_rowid").to_pylist()
        return row_ids[:n]

    return view, newest


def _outline(store: ContextStore, run_id: str | None, keys: Sequence[str], where: Where | None) -> Outline:
    """``store.outline``, saying what the saver needs of a store that encrypts ``keys``."""
    try:
        # the reader outlines every session ``where`` matches when ``run_id`` is None
        return store.outline(run_id, keys, where=where)
    except InvalidFilterError as exc:  # an encrypted store that seals them: say what the saver needs
        raise InvalidFilterError(
            "LanceCheckpointSaver reads checkpoint_ns and checkpoint_id to find checkpoints; this store "
            "encrypts them: open it with EncryptionPolicy(clear_metadata={'checkpoint_ns', "
            "'checkpoint_id', ...}) (see the README's encryption section)"
        ) from exc


def _key(record: ContextRecord) -> tuple[str, str, str]:
    return (record.run_id, record.metadata["checkpoint_ns"], record.metadata["checkpoint_id"])


def _list_filter(
    config: RunnableConfig | None, filter: Mapping[str, Any] | None, before: RunnableConfig | None
) -> tuple[str | None, Where, ValueFilter]:
    where: Where = {}
    run_id = None
    if config is None:
        where["run_id"] = {"$prefix": THREAD_PREFIX}
    else:
        conf = config["configurable"]
        run_id = thread_key(conf["thread_id"])
        if conf.get("checkpoint_ns") is not None:
            where["checkpoint_ns"] = str(conf["checkpoint_ns"])
        if checkpoint_id := get_checkpoint_id(config):
            where["checkpoint_id"] = checkpoint_id
    # each value compared as a value (a dict is never read as operators), and as Python
    # compares, as LangGraph's savers do: ``True == 1 == 1.0``, ``False == 0``, inside lists too
    values = equality_filter(("metadata", "checkpoint_metadata"), filter)
    if values.clauses:
        where["$and"] = values.clauses
    if before is not None and (before_id := get_checkpoint_id(before)):
        where[("metadata", "checkpoint_id")] = {"$lt": before_id}
    return run_id, where, values


def _writes_of(
    store: ContextStore, run_id: str | None, checkpoints: Sequence[ContextRecord]
) -> dict[tuple[str, str, str], list[ContextRecord]]:
    """Pending writes of the given checkpoints, keyed by (session, namespace, checkpoint id)."""
    if not checkpoints:
        return {}
    where: Where = {"run_id": {"$in": sorted({r.run_id for r in checkpoints})}}
    if len(checkpoints) <= _WRITES_BY_ID_MAX:
        where["checkpoint_id"] = {"$in": sorted({r.metadata["checkpoint_id"] for r in checkpoints})}
    grouped: dict[tuple[str, str, str], list[ContextRecord]] = {}
    for write in store.records(run_id, roles=WRITE_ROLE, where=where):
        grouped.setdefault(_key(write), []).append(write)
    return grouped


def thread_rows(store: ContextStore, session: str, ns: str | None) -> tuple[Outline, list[dict[str, Any]]]:
    """The outline of a thread's checkpoint and write rows (in namespace ``ns``, or all).

    Each row: ``seq``, ``id``, ``role``, ``checkpoint_ns``, ``checkpoint_id``, ``_rowid``;
    ``outline.fetch`` reads the chosen ones.
    """
    view = _outline(store, session, ("checkpoint_ns", "checkpoint_id"), None)
    rows = view.table.select(["seq", "id", "role", "checkpoint_ns", "checkpoint_id", "_rowid"]).to_pylist()
    return view, [
        r for r in rows if r["checkpoint_id"] is not None and (ns is None or r["checkpoint_ns"] == ns)
    ]


def thread_checkpoints(
    store: ContextStore,
    session: str,
    *,
    ns: str | None,
    checkpoint_id: str | None,
    before_id: str | None,
    limit: int | None,
) -> Listed:
    """A thread's checkpoints newest first, each with its pending writes.

    Args:
        store: The saver's store.
        session: The thread's store session.
        ns: Only this checkpoint namespace; None for every namespace.
        checkpoint_id: Only the checkpoint with this id; None for any.
        before_id: Only checkpoints whose id sorts before this one; None for all.
        limit: At most this many checkpoints; None for all.
    """
    view, rows = thread_rows(store, session, ns)
    checkpoints = [
        r
        for r in rows
        if r["role"] == CHECKPOINT_ROLE
        and (checkpoint_id is None or r["checkpoint_id"] == checkpoint_id)
        and (before_id is None or r["checkpoint_id"] < before_id)
    ]
    checkpoints.sort(key=checkpoint_order, reverse=True)
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
        for row, record in zip(chosen, fetched[: len(chosen)], strict=True)
    ]
