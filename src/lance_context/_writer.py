"""Writing records: validate, embed, lay out, commit — one version per call.

A write resolves the latest version once (one probe) and commits on top of that
snapshot through Lance's transaction API; maintenance then decides from the manifest
the commit returned. Append order is the ``seq`` column, derived from the version the
write was based on (see :func:`seq_base`), never from a wall clock: writers whose
clocks disagree still agree on the order of their commits.
"""

from __future__ import annotations

import itertools
import secrets
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import lance
import pyarrow as pa
import pyarrow.compute as pc
from lance.fragment import write_fragments

from ._arrow import records_to_table
from ._content_checks import check_content
from ._embedding import Embedding
from ._errors import InvalidFilterError, InvalidRecordError
from ._filters import and_, compile_where, eq, in_
from ._maintenance import Maintainer
from ._opening import check_still_embedded_as
from ._patch import Patch, copies_added_meanwhile, patch_ids, patch_metadata
from ._records import ContextRecord, check_embedding
from ._schema import embedding_field
from ._sessionfiles import remember
from ._settle import settle, written_rows
from ._state import StoreState
from ._validation import validate_record
from ._versions import commit_properties
from ._written import keep_written

__all__ = ["SEQ_SHIFT", "Writer", "commit_seq", "seq_base", "write_group"]

#: Deletes of more matching rows run as Lance's own predicate delete.
_DELETE_BY_ID_MAX = 10_000
#: Bits of ``seq`` that number the rows of one commit (up to 268 million rows each).
SEQ_SHIFT = 28
#: Of those, the bits that number the rows of one commit made through ``commit_seq``.
_SLOT_SHIFT = 16
_SLOTS = 1 << (SEQ_SHIFT - _SLOT_SHIFT)
#: This process's walk through the slots: a random start and a random odd stride, so 4,096
#: writes in a row take different slots, and two processes' walks do not stay in step.
_FIRST_SLOT, _STRIDE = secrets.randbelow(_SLOTS), 2 * secrets.randbelow(_SLOTS // 2) + 1
_writes = itertools.count()


def seq_base(read_version: int) -> int:
    """The first ``seq`` of a commit made on top of ``read_version``.

    Every later commit of any writer reads a later version, so its rows sort after; two
    writers committing on top of the same version share the prefix (see ``commit_seq``).
    """
    return (read_version + 1) << SEQ_SHIFT


def write_group(seq: int) -> int:
    """The write group of a record's ``seq``: the version its commit was made on top of, plus one.

    Seqs with equal groups were written by commits made on top of the same version, i.e.
    at once (their order among themselves is the order of slots, not of commits); across
    groups, append order is commit order.
    """
    return seq >> SEQ_SHIFT


def commit_seq(read_version: int, rows: int) -> int:
    """The first ``seq`` of one write of ``rows`` records on top of ``read_version``.

    Writes that commit on top of the same version (threads, tasks or processes writing
    at once; Lance rebases their appends) each take their own slot of that version's
    range, so each write's records stay together instead of alternating with another's.
    One process's writes made at once never share a slot; two processes' writes share one
    only by chance (1 in 4,096), and their records then go by id.
    A write of more than 65,536 records takes the whole range.
    """
    if rows > 1 << _SLOT_SHIFT:
        return seq_base(read_version)
    slot = (_FIRST_SLOT + next(_writes) * _STRIDE) % _SLOTS
    return seq_base(read_version) + (slot << _SLOT_SHIFT)


class Writer:
    """Appends, upserts, replaces and deletes records of one store."""

    def __init__(self, state: StoreState, maintainer: Maintainer) -> None:
        """Write through ``state``'s handle; maintain after each commit."""
        self._state = state
        self._maintainer = maintainer

    def add(self, records: ContextRecord | Iterable[ContextRecord]) -> int:
        """Append records in one commit; return the new version."""
        return self._write(records, "add")

    def upsert(
        self,
        records: ContextRecord | Iterable[ContextRecord],
        *,
        keep_order: bool = False,
        replace_where: Mapping[Any, Any] | None = None,
    ) -> int:
        """Insert records, replacing stored records with the same id, in one commit.

        A replaced record moves to the end of the append order, unless ``keep_order``
        keeps it where it was (an update in place, such as a refreshed expiry time).
        ``replace_where``: the stored records this filter matches that ``records`` do not
        hold are deleted in the same commit.
        """
        if not isinstance(keep_order, bool):
            raise InvalidRecordError(
                f"keep_order must be True or False, got {keep_order!r}; nothing was written"
            )
        if replace_where is None:
            return self._write(records, "upsert", keep_order=keep_order)
        if not isinstance(replace_where, Mapping):
            raise InvalidFilterError(
                f"replace_where must be a filter dict, got {replace_where!r:.60}; nothing was written"
            )
        scope = compile_where(replace_where) or "true"
        batch = self.prepare(records)
        if not batch:
            return self.delete(None, run_id=None, where=replace_where)
        return self._write(batch, "upsert", scope, keep_order=keep_order)

    def replace(
        self,
        run_id: str,
        records: ContextRecord | Iterable[ContextRecord],
        *,
        op: str = "replace",
        positions: Mapping[str, int] | None = None,
    ) -> int:
        """Make ``records`` the whole content of session ``run_id``, in one commit named ``op``.

        ``positions``: the ``seq`` to write for these ids (a restore puts records back where
        they were); others are appended in the order given.
        """
        if not isinstance(run_id, str):
            raise InvalidRecordError(
                f"replace() takes a session id (a str), got {run_id!r}; nothing was written"
            )
        batch = self.prepare(records)
        strays = [r.id for r in batch if r.run_id != run_id]
        if strays:
            raise InvalidRecordError(f"records {strays[:3]!r} do not belong to session {run_id!r}")
        if not batch:
            return self.delete(None, run_id=run_id, where=None)
        return self._write(batch, op, eq("run_id", run_id), positions=positions, scope_sessions={run_id})

    def update_metadata(self, ids: str | Iterable[str], patch: Patch) -> int:
        """Patch stored records' metadata in place, as one commit (see ``_patch``)."""
        self._state.check_writable()
        if not (callable(patch) or isinstance(patch, Mapping)):
            raise InvalidRecordError(
                f"patch must be a dict of keys to set or a function of the metadata, got {patch!r:.60}; "
                "nothing was written"
            )
        done = patch_metadata(self._state, patch_ids(ids), patch)
        if done is None:
            return int(self._state.handle.latest().version)
        self._after(*done[:3])
        late = copies_added_meanwhile(self._state, *done[:2], done[3])
        again = patch_metadata(self._state, late, patch) if late else None
        if again is not None:  # a copy another writer added meanwhile is the one reads show
            self._after(*again[:3])
            done = again
        return int(done[1].version)

    def delete(
        self, ids: str | Iterable[str] | None, *, run_id: str | None, where: Mapping[Any, Any] | None
    ) -> int:
        """Delete matching records as a new version (the current one when nothing matched).

        The ids matching at the snapshot are deleted by id, so the commit can say which
        sessions it touched; a very large delete runs as Lance's own predicate delete.
        """
        self._state.check_writable()
        if isinstance(ids, (bytes, Mapping)) or not isinstance(ids, (str, Iterable, type(None))):
            raise InvalidFilterError(
                f"ids must be an id or an iterable of ids, got {ids!r:.60}; nothing was deleted"
            )
        id_list = [ids] if isinstance(ids, str) else (None if ids is None else list(ids))
        if id_list is None and run_id is None and where is None:
            raise InvalidFilterError("delete() needs ids, run_id or where; to drop everything use where={}")
        predicate = (
            and_(
                None if id_list is None else in_("id", id_list),
                None if run_id is None else eq("run_id", run_id),
                compile_where(where) if where else None,
            )
            or "true"
        )
        handle = self._state.handle
        outcome: dict[str, Any] = {}

        def attempt() -> lance.LanceDataset | None:
            base = handle.private_latest()
            matched = base.to_table(filter=predicate, columns=["id", "run_id"])
            outcome["base"] = base
            if matched.num_rows == 0:
                return None
            sessions = set(matched.column("run_id").to_pylist())
            outcome["sessions"] = sessions
            props = commit_properties("delete", matched.num_rows, sessions)
            unique = pc.unique(matched.column("id"))  # an id stored twice goes once
            # a delete by id takes every row of those ids: only when no other session's copy of one
            # of them escapes the filter (an id added again in another session stays there)
            scoped = id_list is None or run_id is not None or bool(where)
            if matched.num_rows > _DELETE_BY_ID_MAX or (
                scoped and base.count_rows(filter=in_("id", unique.to_pylist())) > matched.num_rows
            ):
                base.delete(predicate)
                outcome["sessions"] = None  # Lance's delete carries no properties
                handle.adopt(base)
                return base
            ids_table = pa.table({"id": unique})
            transaction, _ = base.merge_insert("id").when_matched_delete().execute_uncommitted(ids_table)
            return handle.commit(base, transaction, props)

        new = handle.call(attempt, "delete records")
        base = outcome["base"]
        if new is None:
            return int(base.version)
        self._after(base, new, outcome["sessions"])
        return int(new.version)

    def _after(self, base: lance.LanceDataset, new: lance.LanceDataset, sessions: set[str] | None) -> None:
        """Keep the tail cache right after this store's own upsert or delete, then maintain."""
        tails = self._state.tails
        if tails is not None:
            tails.changed((self._state.handle.branch, int(base.version)), int(new.version), sessions)
        self._maintainer.after_write(new)

    # ------------------------------------------------------------------ preparing
    def prepare(self, records: ContextRecord | Iterable[ContextRecord]) -> list[ContextRecord]:
        """Validate a batch before anything is written; raise a precise error."""
        if isinstance(records, (str, bytes, dict)) or not isinstance(records, (ContextRecord, Iterable)):
            raise InvalidRecordError(
                f"expected a ContextRecord or an iterable of them, got {type(records).__name__}; "
                "build records with ContextRecord.from_content(...)"
            )
        batch = [records] if isinstance(records, ContextRecord) else list(records)
        limits = self._state.settings.limits
        seen: set[str] = set()
        for record in batch:
            validate_record(record)
            if record.id in seen:
                raise InvalidRecordError(f"record id {record.id!r} appears twice in one batch")
            seen.add(record.id)
            check_content(record, limits)
        return batch

    # ------------------------------------------------------------------ committing
    def _write(
        self,
        records: ContextRecord | Iterable[ContextRecord],
        op: str,
        scope: str | None = None,
        *,
        keep_order: bool = False,
        positions: Mapping[str, int] | None = None,
        scope_sessions: set[str] | None = None,
    ) -> int:
        """Commit ``records`` as one version named ``op``.

        ``scope``: the stored records not in ``records`` to delete in the same commit (their
        sessions ``scope_sessions``, read from the snapshot when not given).
        """
        self._state.check_writable()
        batch = self.prepare(records)
        if not batch:
            return int(self._state.handle.latest().version)
        embedding = self._state.embedding
        dimension = embedding.first_dimension(batch)
        if dimension is not None:
            for record in batch:  # every vector checked before the column (its own version) is added
                if record.embedding is not None:
                    check_embedding(record.embedding, dimension, record.id)
            self._add_vector_column(embedding, dimension)
        vectors = embedding.vectors_for(batch)
        carries_vectors = embedding.embedder is not None or any(r.embedding is not None for r in batch)
        sessions = {r.run_id for r in batch}
        handle = self._state.handle
        seen: dict[str, Any] = {}  # the snapshot the committed attempt was based on, what it touched

        def attempt() -> lance.LanceDataset:
            # Writing fragments and committing them only read the snapshot, so an append
            # works on the shared one; merge_insert borrows its snapshot mutably.
            base = handle.latest() if op == "add" else handle.private_latest()
            seen["base"], seen["touched"] = base, sessions
            first_seq, cipher = commit_seq(int(base.version), len(batch)), self._state.cipher
            schema = seen["schema"] = handle.schema(base)
            if carries_vectors:
                check_still_embedded_as(embedding, schema, handle.display_uri())
            table = records_to_table(batch, vectors, schema, first_seq, cipher)
            if op == "add":
                table = _clustered(table, batch)
                fragments = write_fragments(table, base, schema=schema)
                remember(fragments, sessions)
                keep_written(fragments, table)
                props = commit_properties(op, len(batch), sessions)
                return handle.commit(base, lance.LanceOperation.Append(fragments), props)
            stored = base.to_table(filter=in_("id", [r.id for r in batch]), columns=["id", "run_id", "seq"])
            if keep_order or positions is not None:
                table = _kept_positions(table, stored, positions)
            touched = sessions | set(stored.column("run_id").to_pylist())  # an upsert may move an id
            doomed = scope
            if scope is not None and scope_sessions is None:
                # by their ids (Lance cannot apply a filter on metadata to the rows a merge leaves
                # out), and only when there are any: deleting them makes the merge scan the table
                matched = base.to_table(filter=scope, columns=["id", "run_id"])
                touched |= set(matched.column("run_id").to_pylist())
                extra = set(matched.column("id").to_pylist()) - {r.id for r in batch}
                doomed = in_("id", sorted(extra)) if extra else None
            seen["touched"] = touched | (scope_sessions or set())
            builder = base.merge_insert("id").when_matched_update_all().when_not_matched_insert_all()
            if doomed is not None:
                builder = builder.when_not_matched_by_source_delete(doomed)
            seen["written"] = written_rows(table)
            transaction, stats = builder.execute_uncommitted(_clustered(table, batch))
            seen["rows_written"] = stats["num_inserted_rows"] + stats["num_updated_rows"]
            return handle.commit(base, transaction, commit_properties(op, len(batch), touched))

        new = handle.call(attempt, f"{op} {len(batch)} records")
        tails, base = self._state.tails, seen["base"]
        if op != "add":
            self._after(base, new, seen["touched"])
            # replace() leaves a message another writer appended meanwhile (not lost); an
            # upsert(replace_where=) rewrites one object, so another writer's parts of it go
            rewritten = scope if scope_sessions is None else None
            removed = settle(handle, base, new, seen["written"], rewritten, seen["rows_written"])
            if removed is not None:
                self._after(*removed, None)
                new = removed[1]
            return int(new.version)
        if tails is not None:
            stored = vectors if "embedding" in seen["schema"].names else None
            tails.appended((handle.branch, int(base.version)), int(new.version), batch, stored)
        self._maintainer.after_write(new)
        return int(new.version)

    def _add_vector_column(self, embedding: Embedding, dimension: int) -> None:
        """Give a store without vectors a column of ``dimension`` floats (its own version)."""

        def add(ds: lance.LanceDataset) -> None:
            if "embedding" in ds.schema.names:
                return
            ds.add_columns(embedding_field(dimension))

        self._state.handle.write(add, f"add a {dimension}-dimensional vector column")
        # another writer may have added a column of its own size first: vectors are checked against it
        embedding.dimension = int(self._state.handle.latest().schema.field("embedding").type.list_size)


def _kept_positions(
    table: pa.Table, stored: pa.Table, positions: Mapping[str, int] | None = None
) -> pa.Table:
    """``table`` with the ``seq`` of ``positions``, else the stored one (new ids keep theirs).

    An id stored twice (two concurrent adds of it) keeps the place of its newest copy, the
    one reads show, whatever order compaction left the copies' rows in.
    """
    ids = table.column("id").to_pylist()
    if positions is None:
        stored = stored.sort_by("seq")
        known = dict(zip(stored.column("id").to_pylist(), stored.column("seq").to_pylist(), strict=True))
    else:
        known = dict(positions)
    seqs = [known.get(i, s) for i, s in zip(ids, table.column("seq").to_pylist(), strict=True)]
    return table.set_column(table.schema.get_field_index("seq"), "seq", pa.array(seqs, pa.int64()))


def _clustered(table: pa.Table, batch: Sequence[ContextRecord]) -> pa.Table:
    """Store a batch's rows grouped by session (append order is the ``seq`` column).

    A bulk load of interleaved sessions otherwise scatters each session's rows through
    the file, and reading one session touches a page per row and column: grouped, the
    last 50 messages of a session in 100,000 read in ~1.8 ms instead of ~5.7 ms.
    """
    if len(batch) < 2 or all(r.run_id == batch[0].run_id for r in batch):
        return table
    return table.sort_by([("run_id", "ascending"), ("seq", "ascending")])
