"""What else holds a forgotten record: the index text of later turns, and recorded searches.

A chat turn's index text (``search_text``) quotes the turns before it, so a kept turn
may hold a forgotten turn's words: :func:`quotes_in` finds such fragments and
:func:`unquoted` gives those turns their own text as index text. A kept record may link
to a forgotten one (``relationships``, as a LangChain message to its attachment):
:func:`links_in` finds such fragments and :func:`unlinked` drops the links. A search recorded with
``record=True`` keeps the ids it returned, its filters and its query text in the search
log, a dataset beside the store: :func:`purge_search_log` removes the entries that name
what was forgotten or hold its words, and expires the log's older files.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import timedelta
from typing import Any

import lance
import pyarrow as pa
import pyarrow.compute as pc

from ._dataset import DatasetHandle
from ._filters import eq, in_
from ._searchentry import decode
from ._searchlog import SearchLog
from ._state import StoreState
from ._storage import is_missing
from ._verify import held_by

__all__ = ["links_in", "purge_search_log", "quotes_in", "unlinked", "unquoted"]


def _quoting(column: pa.ChunkedArray | pa.Array, quotes: tuple[str, ...]) -> pa.Array:
    """Which values contain one of the quotes (null values never do)."""
    found = pa.array([False] * len(column), pa.bool_())
    for quote in quotes:
        found = pc.or_(found, pc.fill_null(pc.match_substring(column, quote), False))
    return found


def quotes_in(fragment: Any, quotes: tuple[str, ...]) -> bool:
    """Whether a fragment's index text quotes an erased turn (chat turns index the turns before them)."""
    if not quotes or "search_text" not in fragment.schema.names:
        return False
    column = fragment.to_table(columns=["search_text"]).column("search_text")
    return bool(pc.any(_quoting(column, quotes)).as_py())


def unquoted(table: pa.Table, quotes: tuple[str, ...]) -> pa.Table:
    """Rows whose index text quotes an erased turn get their own text as index text instead."""
    if not quotes or "search_text" not in table.column_names or table.num_rows == 0:
        return table
    column = table.column("search_text")
    own = pc.if_else(_quoting(column, quotes), table.column("text_payload"), column)
    at = table.schema.get_field_index("search_text")
    return table.set_column(at, table.schema.field(at), own)


def _targets(column: pa.ChunkedArray | pa.Array) -> pa.Array:
    """The ``target_id`` of every link in a ``relationships`` column, flattened."""
    flat = pc.list_flatten(column)
    return pc.struct_field(flat, "target_id") if len(flat) else pa.array([], pa.string())


def links_in(fragment: Any, erased: pa.Array) -> bool:
    """Whether a fragment holds a record that links to an erased one."""
    if "relationships" not in fragment.schema.names:
        return False
    targets = _targets(fragment.to_table(columns=["relationships"]).column("relationships"))
    return bool(len(targets)) and bool(pc.any(pc.is_in(targets, value_set=erased)).as_py())


def unlinked(table: pa.Table, erased: pa.Array) -> pa.Table:
    """The rows with their links to erased records dropped (their other links stay)."""
    if "relationships" not in table.column_names or table.num_rows == 0:
        return table
    column = table.column("relationships")
    if not len(_targets(column)) or not pc.any(pc.is_in(_targets(column), value_set=erased)).as_py():
        return table
    gone = set(erased.to_pylist())
    rows = [
        links if not links else [link for link in links if link["target_id"] not in gone]
        for links in column.to_pylist()
    ]
    at = table.schema.get_field_index("relationships")
    return table.set_column(at, table.schema.field(at), pa.array(rows, type=column.type))


def purge_search_log(
    state: StoreState,
    handles: Iterable[DatasetHandle],
    erased: set[str],
    sessions: set[str],
    needles: Mapping[bytes, str] | None = None,
) -> int:
    """Remove the recorded searches that name what was forgotten.

    An entry goes when it returned an erased record, when its filters name an erased
    record or a session now gone, or when its query text or a filter value holds an erased
    payload (``needles``, those the verification searches every file for) that no remaining
    record holds: a query is often the user's own words, logged before they were stored.
    The search log is a dataset of its own beside the store: its entries go, then its
    deletions are compacted away and its older versions removed, so no file keeps them.
    """
    heads = list(handles)
    handle = heads[0]
    uri, options = SearchLog(state).uri, dict(handle.storage_options) or None

    def purge() -> int:
        gone = {s for s in sessions if not any(h.latest().count_rows(filter=eq("run_id", s)) for h in heads)}
        try:
            log = lance.dataset(uri, storage_options=options)
        except (OSError, ValueError) as exc:
            if is_missing(exc):
                return 0
            raise
        entries = [_Entry(row) for row in log.to_table(columns=list(_Entry.COLUMNS)).to_pylist()]
        doomed = {e.id for e in entries if erased.intersection(e.hits) or e.names(erased, gone)}
        words = b"\x00".join(word for e in entries if e.id not in doomed for word in e.words)
        found = {needle for needle in needles or () if needle in words}
        if unshared := found - held_by(heads, found):  # a payload a kept record holds rightly remains
            doomed |= {e.id for e in entries if any(e.holds(needle) for needle in unshared)}
        if doomed:
            log.delete(in_("id", sorted(doomed)))
            log.optimize.compact_files(materialize_deletions_threshold=1e-9)
            log.cleanup_old_versions(older_than=timedelta(0), error_if_tagged_old_versions=False)
        return len(doomed)

    return int(handle.call(purge, "forget in the search log", retry=False))


class _Entry:
    """What a search-log entry says about records: its hits, filters and words."""

    COLUMNS = ("id", "hit_ids", "filters", "query_text")

    def __init__(self, row: Mapping[str, Any]) -> None:
        self.id: str = row["id"]
        self.hits: list[str] = row["hit_ids"]
        self.filters = decode(json.loads(row["filters"]))
        self.strings = set(_strings(self.filters))
        words = [row["query_text"] or "", *self.strings]
        self.words = [word.encode() for word in words if word]

    def names(self, erased: set[str], gone: set[str]) -> bool:
        """Whether its filters name an erased record (``where={"id": ...}``) or a session now gone."""
        return bool(erased.intersection(self.strings) or gone.intersection(_sessions_named(self.filters)))

    def holds(self, needle: bytes) -> bool:
        """Whether its query text or a filter value holds this payload."""
        return any(needle in word for word in self.words)


def _strings(value: object) -> Iterable[str]:
    """Every string value in decoded filters (not the keys: fields and operators)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _strings(item)


def _sessions_named(filters: object) -> set[str]:
    """The sessions decoded filters name: their ``run_id``, and ``run_id`` anywhere in ``where``."""
    named: set[str] = set()

    def walk(node: object) -> None:
        if isinstance(node, Mapping):
            for key, value in node.items():
                if key == "run_id":  # a name, a list, or {"$op": ...}
                    named.update(_strings(value))
                else:
                    walk(value)
        elif isinstance(node, (list, tuple)):
            for item in node:
                walk(item)

    walk(filters)
    return named
