"""Reading records: filters pushed down, only the rows and columns a caller returns.

A read that wants some rows of many (the newest 50 of a session, a page) runs in two
steps on one snapshot: a light *outline* (``seq``, ``id`` and Lance row ids of the
matching rows), then a take of only the chosen rows' columns. Reading whole rows
costs about what their payloads weigh; the outline costs a few bytes per row.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import lance
import pyarrow as pa
import pyarrow.compute as pc

from ._arrow import WRITE_ONLY, table_to_records
from ._dataset import DatasetHandle
from ._encryption import Cipher
from ._errors import InvalidFilterError
from ._filters import and_, compile_where, eq, in_, sql_string, time_range
from ._handouts import hand_out
from ._records import ContextRecord
from ._sessionfiles import session_fragments
from ._state import StoreState
from ._tail import TailRows, tail_rows

__all__ = ["Outline", "Reader", "filter_sql", "record_columns", "stored_records"]


#: ``records(run_id, limit=n)`` with n at most this is served from the tail cache when it can.
_HEAD_MAX = 4
#: The columns of every outline, which no metadata key column may take the name of.
_OUTLINE_COLUMNS = ("seq", "id", "role", "_rowid")


def record_columns(schema: pa.Schema, *, with_vectors: bool = True) -> list[str]:
    """The columns a read needs to build records (never what is written only for search)."""
    skip = set(WRITE_ONLY) if with_vectors else {*WRITE_ONLY, "embedding"}
    return [name for name in schema.names if name not in skip]


def filter_sql(
    run_id: str | None,
    roles: str | Iterable[str] | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    where: Mapping[Any, Any] | None = None,
) -> str | None:
    """The SQL filter for these conditions, every value escaped; None for no filter."""
    if run_id is not None and not isinstance(run_id, str):
        raise InvalidFilterError(f"run_id must be a str, got {type(run_id).__name__}")
    if roles is not None and not isinstance(roles, (str, Iterable)):
        raise InvalidFilterError(f"roles must be a role or an iterable of roles, got {roles!r}")
    role_list = [roles] if isinstance(roles, str) else (None if roles is None else list(roles))
    if role_list is not None and not all(isinstance(role, str) for role in role_list):
        raise InvalidFilterError(f"roles are strings, got {role_list!r}")
    return and_(
        None if run_id is None else eq("run_id", run_id),
        None if role_list is None else in_("role", role_list),
        time_range(since, until),
        compile_where(where),
    )


def _count(name: str, value: int | None) -> int | None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
        raise InvalidFilterError(f"{name} must be a non-negative integer or None, got {value!r}")
    return value


def stored_records(
    state: StoreState, run_id: str | None = None
) -> tuple[list[ContextRecord], dict[str, int]]:
    """Every record (of one session) the snapshot ``state`` reads, as written: with its index text.

    For copying records elsewhere (an import, a one-session restore). Also returns each
    id's ``seq`` (its newest copy's), so a copy can keep the append order.
    """
    ds, handle = state.snapshot(), state.handle
    columns = [name for name in handle.schema(ds).names if name != "metadata_index"]
    sql = None if run_id is None else eq("run_id", run_id)
    table = ordered(handle.call(lambda: ds.to_table(columns=columns, filter=sql), "read the stored records"))
    positions = dict(zip(table.column("id").to_pylist(), table.column("seq").to_pylist(), strict=True))
    return table_to_records(table, state.cipher, index_text=True), positions


def ordered(table: pa.Table) -> pa.Table:
    """Rows in append order, one per id (the newest copy wins).

    Two processes appending the same id at once can both commit it; readers then see
    it once, as if the second write had been an upsert.
    """
    table = table.sort_by([("seq", "ascending"), ("id", "ascending")])
    if table.num_rows < 2 or len(pc.unique(table.column("id"))) == table.num_rows:
        return table
    seen: set[str] = set()
    keep: list[int] = []
    for index, record_id in reversed(list(enumerate(table.column("id").to_pylist()))):
        if record_id not in seen:
            seen.add(record_id)
            keep.append(index)
    return table.take(sorted(keep))


@dataclass(frozen=True)
class Outline:
    """A session's rows at one version: ``seq``, ``id``, ``role``, chosen metadata, ``_rowid``.

    An outline read for a search may hold the ``embedding`` column too.

    Metadata keys are columns named after the key, holding string values (null when a
    row has no such string). :meth:`fetch` reads whole records from the same version.
    """

    table: pa.Table
    run_id: str | None
    snapshot: lance.LanceDataset
    handle: DatasetHandle
    cipher: Cipher | None = None

    def fetch(self, row_ids: Sequence[int], *, with_vectors: bool = True) -> list[ContextRecord]:
        """The records of these outline rows (``_rowid`` values), in the order given."""
        if not row_ids:
            return []
        ds = self.snapshot
        columns = record_columns(self.handle.schema(ds), with_vectors=with_vectors)
        table = self.handle.call(
            lambda: self.handle.take_rows(ds, row_ids, columns), "read records", retry=False
        )
        found = table_to_records(table, self.cipher)
        if len(found) != len(row_ids) or (
            self.run_id is not None and any(r.run_id != self.run_id for r in found)
        ):
            raise AssertionError("fetched rows do not match the outline")  # defence in depth
        return found


class Reader:
    """Reads records of one store as it reads (its pinned or latest version)."""

    def __init__(self, state: StoreState) -> None:
        """Read through ``state``."""
        self._state = state

    def _call(self, fn: Any, action: str) -> Any:
        return self._state.handle.call(fn, action, retry=False)

    def _scan(
        self,
        ds: lance.LanceDataset,
        columns: Any,
        sql: str | None,
        run_id: str | None,
        *,
        row_ids: bool,
        limit: int | None = None,
    ) -> pa.Table:
        """Rows of ``ds`` matching ``sql`` (the first ``limit``); a session's read opens its files only."""

        def scan() -> pa.Table:
            fragments = (
                None if run_id is None else session_fragments(ds, self._state.handle.facts(ds), run_id)
            )
            if fragments is None:
                return ds.to_table(columns=columns, filter=sql, with_row_id=row_ids, limit=limit)
            return ds.scanner(
                columns=columns, filter=sql, with_row_id=row_ids, fragments=fragments, limit=limit
            ).to_table()

        return self._call(scan, "outline records" if row_ids else "read records")

    def records(
        self,
        run_id: str | None = None,
        *,
        roles: str | Iterable[str] | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        where: Mapping[Any, Any] | None = None,
        limit: int | None = None,
        last: int | None = None,
        offset: int = 0,
        with_vectors: bool = True,
        index_text: bool = False,
        copies: bool = True,
    ) -> list[ContextRecord]:
        """Matching records in append order; see ``ContextStore.records``.

        ``copies=False``: what the tail cache holds, or this read has just put there,
        comes back uncopied (see ``adapters.shared_records``); any other record read from
        Lance is the caller's either way.
        """
        _count("limit", limit)
        _count("last", last)
        _count("offset", offset)
        if index_text:  # for copies: every match read with its index text, then sliced
            found = self._with_index_text(run_id, roles, since, until, where, with_vectors)
            found = found[max(0, len(found) - last) :] if last is not None else found
            return found[offset:] if limit is None else found[offset : offset + limit]
        tails = self._state.tails if self._state.pinned is None else None
        plain = run_id is not None and not offset and roles is None and since is None and until is None
        plain = plain and where is None and tails is not None
        plain_tail = plain and last is not None and limit is None
        plain_head = plain and limit is not None and last is None and limit <= _HEAD_MAX
        plain_all = plain and limit is None and last is None
        if tails is not None and run_id is not None and (plain_tail or plain_head or plain_all):
            if plain_all:
                cached = tails.read_all(run_id, with_vectors, copies=copies)
            elif last is not None:
                cached = tails.read(run_id, last, with_vectors, copies=copies)
            else:
                cached = tails.read_head(run_id, limit or 0, with_vectors, copies=copies)
            if cached is not None:
                return cached
        sql = filter_sql(run_id, roles, since, until, where)
        ds = self._state.snapshot()
        columns = record_columns(self._state.handle.schema(ds), with_vectors=with_vectors)
        kept = False  # the records read went into the tail cache: the caller gets copies
        if limit is None and last is None and not offset:
            table = ordered(self._scan(ds, columns, sql, run_id, row_ids=False))
            found = table_to_records(table, self._state.cipher)
            if tails is not None and plain_all and run_id is not None and len(found) <= tails.most:
                # a whole session (a chat history's every message, read each turn) is kept whole
                tails.keep(run_id, found, True, with_vectors, (self._state.handle.branch, int(ds.version)))
                kept = True
        else:
            raw = self._outline_rows(ds, sql, run_id, (), with_role=False)
            at = (self._state.handle.branch, int(ds.version))
            chosen = (
                tail_rows(raw, last, _HEAD_MAX) if last is not None and limit is None and not offset else None
            )
            if chosen is not None:  # a long session: its newest rows, without ordering them all
                found = self._long_tail(
                    Outline(raw, run_id, ds, self._state.handle, self._state.cipher),
                    chosen,
                    at,
                    with_vectors,
                    plain_tail,
                )
                return hand_out(found, with_vectors, copies) if plain_tail else found
            view = Outline(ordered(raw), run_id, ds, self._state.handle, self._state.cipher)
            rows = view.table
            total = rows.num_rows
            if last is not None:
                rows = rows.slice(max(0, rows.num_rows - last))
            if offset:
                rows = rows.slice(offset)
            if limit is not None:
                rows = rows.slice(0, limit)
            wanted = rows.column("_rowid").to_pylist()
            if tails is not None and plain_tail and run_id is not None and last is not None:
                # the session's first row comes along for the cache (a pinned system message)
                first = view.table.column("_rowid").to_pylist()[:_HEAD_MAX] if total > len(wanted) else []
                fetched = view.fetch(first + wanted, with_vectors=with_vectors)
                head, found = fetched[: len(first)], fetched[len(first) :]
                tails.keep(run_id, found, total <= last, with_vectors, at, head=head or found[:_HEAD_MAX])
                kept = True
            else:
                found = view.fetch(wanted, with_vectors=with_vectors)
                if tails is not None and plain_head and run_id is not None:
                    tails.keep_head(run_id, found, with_vectors, at)
                    kept = True
        if run_id is not None and any(r.run_id != run_id for r in found):
            raise AssertionError("filter returned another session's record")  # defence in depth
        return hand_out(found, with_vectors, copies) if kept else found

    def _with_index_text(
        self,
        run_id: str | None,
        roles: str | Iterable[str] | None,
        since: datetime | None,
        until: datetime | None,
        where: Mapping[Any, Any] | None,
        with_vectors: bool,
    ) -> list[ContextRecord]:
        """Every matching record in append order, with its ``search_text`` and ``embed_text``."""
        sql = filter_sql(run_id, roles, since, until, where)
        ds = self._state.snapshot()
        skip = {"metadata_index"} if with_vectors else {"metadata_index", "embedding"}
        columns = [name for name in self._state.handle.schema(ds).names if name not in skip]
        table = ordered(self._scan(ds, columns, sql, run_id, row_ids=False))
        return table_to_records(table, self._state.cipher, index_text=True)

    def _long_tail(
        self, view: Outline, chosen: TailRows, at: tuple[str, int], with_vectors: bool, keep: bool
    ) -> list[ContextRecord]:
        """The records :func:`tail_rows` chose; kept in the tail cache when ``keep``."""
        first = (chosen.first or []) if keep else []
        fetched = view.fetch(first + chosen.newest, with_vectors=with_vectors)
        head, found = fetched[: len(first)], fetched[len(first) :]
        tails = self._state.tails
        if keep and tails is not None and view.run_id is not None:
            # without its first records (not known): the cache then reads them when asked
            tails.keep(view.run_id, found, False, with_vectors, at, head=head)
        return found  # fetch() checked that every record is of the session read

    def _outline_rows(
        self,
        ds: lance.LanceDataset,
        sql: str | None,
        run_id: str | None,
        metadata_keys: Sequence[str],
        *,
        with_role: bool,
        vectors_up_to: int | None = None,
    ) -> pa.Table:
        """The unordered rows of :meth:`outline` (with vectors, the first ``vectors_up_to + 1``)."""
        columns = {"seq": "seq", "id": "id", "role": "role"} if with_role else {"seq": "seq", "id": "id"}
        if vectors_up_to is not None:
            columns["embedding"] = "embedding"
        for key in metadata_keys:
            if key in _OUTLINE_COLUMNS:  # its column would replace the outline's own
                raise InvalidFilterError(
                    f"metadata key {key!r} has the name of an outline column "
                    f"({', '.join(_OUTLINE_COLUMNS)}); read its values from the records instead"
                )
            columns[key] = f"json_get_string(metadata_index, {sql_string(key)})"
        limit = None if vectors_up_to is None else vectors_up_to + 1
        return self._scan(ds, columns, sql, run_id, row_ids=True, limit=limit)

    def outline(
        self,
        run_id: str | None,
        metadata_keys: Sequence[str] = (),
        *,
        where_sql: str | None = None,
        snapshot: lance.LanceDataset | None = None,
        with_role: bool = True,
        vectors_up_to: int | None = None,
    ) -> Outline:
        """The outline of matching rows, in append order, one row per id.

        Args:
            run_id: The session (None: every session ``where_sql`` matches).
            metadata_keys: Top-level metadata keys to add as string columns.
            where_sql: A filter built by :func:`filter_sql` (it must include the session).
            snapshot: The version to outline (default: the one the store reads).
            with_role: Read the ``role`` column too (a read that only picks rows by
                position skips it).
            vectors_up_to: Read the ``embedding`` column in the same scan when at most
                this many rows match (a search ranks so few exactly); more are outlined
                without it.
        """
        ds = snapshot if snapshot is not None else self._state.snapshot()
        sql = where_sql if where_sql is not None else filter_sql(run_id)
        table = None
        if vectors_up_to is not None:
            table = self._outline_rows(
                ds, sql, run_id, metadata_keys, with_role=with_role, vectors_up_to=vectors_up_to
            )
            if table.num_rows > vectors_up_to:  # too many to rank exactly: outlined without vectors
                table = None
        if table is None:
            table = self._outline_rows(ds, sql, run_id, metadata_keys, with_role=with_role)
        state = self._state
        return Outline(ordered(table), run_id, ds, state.handle, state.cipher)

    def count(
        self,
        run_id: str | None = None,
        *,
        roles: str | Iterable[str] | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        where: Mapping[Any, Any] | None = None,
    ) -> int:
        """How many records match."""
        sql = filter_sql(run_id, roles, since, until, where)
        ds = self._state.snapshot()
        return int(self._call(lambda: ds.count_rows(filter=sql), "count records"))

    def get_many(self, ids: Iterable[str], *, with_vectors: bool = True) -> list[ContextRecord]:
        """Records with these ids, in the order asked; missing ids are left out."""
        if isinstance(ids, (str, bytes)) or not isinstance(ids, Iterable):
            raise InvalidFilterError(f"get_many takes an iterable of ids, got {ids!r}: use get() for one id")
        wanted = list(dict.fromkeys(ids))
        if not wanted:
            return []
        ds = self._state.snapshot()
        columns = record_columns(self._state.handle.schema(ds), with_vectors=with_vectors)
        chunks = [
            self._call(lambda c=chunk: ds.to_table(filter=in_("id", c), columns=columns), "read records")
            for chunk in (wanted[i : i + 1000] for i in range(0, len(wanted), 1000))
        ]
        by_id = {r.id: r for r in table_to_records(ordered(pa.concat_tables(chunks)), self._state.cipher)}
        return [by_id[i] for i in wanted if i in by_id]

    def run_ids(self, roles: str | Iterable[str] | None = None) -> list[str]:
        """Every session id in the store (holding a record of one of ``roles``, if given), sorted."""
        sql = filter_sql(None, roles=roles)
        ds = self._state.snapshot()
        table = self._call(lambda: ds.to_table(columns=["run_id"], filter=sql), "list sessions")
        return sorted(pc.unique(table.column("run_id")).to_pylist())
