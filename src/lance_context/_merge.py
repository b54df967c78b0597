"""Merging one branch of a store into another, as one new version of the target.

The merge base is where the two branches last shared history: the fork point, found from
Lance's branch records (each branch knows its parent branch and the version it forked
at), or the version of one branch last merged into the other, found in the merge commits'
transaction properties. The
decisions are made in :mod:`._mergeplan`; this module reads the three versions, then
writes everything the branch added, changed and deleted in one ``merge_insert``
transaction: upserts for added and changed records, deletes by id. Nothing is written
when there is nothing to apply, or on ``on_conflict="fail"`` when a record changed on
both sides.

Merged records get positions after every record of the target: ``seq`` values from
:func:`~._writer.seq_base` of the target version the merge is based on, in the branch's
order (a record the branch updated in place keeps its target position). So records
appended to one session on both sides keep each side's order, the target's first, and
later appends to the target still sort after them. A LangGraph thread continued on a
branch therefore has the branch's checkpoints as its newest ones after the merge, and
their parent links point at checkpoints both sides hold.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import lance
import pyarrow as pa
import pyarrow.compute as pc
from lance.fragment import write_fragments

from ._dataset import MAIN_BRANCH, DatasetHandle
from ._embedding import embed_rows
from ._encryption import open_table, seal_table
from ._errors import EmbedderMismatchError, InvalidFilterError, MergeConflictError, VersionNotFoundError
from ._files import version_numbers
from ._filters import in_
from ._fingerprints import fingerprint_columns
from ._maintenance import Maintainer
from ._mergebase import merge_base, since_merges
from ._mergeplan import (
    MergeConflict,
    MergePlan,
    MergeResult,
    OnConflict,
    RecordChange,
    RowState,
    ThreeWay,
    Upsert,
    row_states,
    summarize,
    three_way,
)
from ._opening import follow_schema
from ._schema import embedding_dimension, read_embedder_info, with_vectors_of
from ._settle import settle, written_rows
from ._state import StoreState
from ._versions import MERGE_KEY, SESSIONS_KEY, commit_properties
from ._writer import seq_base

__all__ = ["Merger", "Sides"]

_CHUNK = 1000


@dataclass
class Sides:
    """The three versions a merge compares, and what it decided."""

    source: DatasetHandle
    target: DatasetHandle
    theirs: lance.LanceDataset
    ours: lance.LanceDataset
    base: tuple[str, int]
    decided: ThreeWay
    states: tuple[dict[str, RowState], dict[str, RowState], dict[str, RowState]]


class Merger:
    """Plans and applies merges between the branches of one store."""

    def __init__(self, state: StoreState) -> None:
        """Merge branches of the store ``state`` describes."""
        self._state = state

    def handle(self, branch: str) -> DatasetHandle:
        """A handle on ``branch`` (this store's own when it is on that branch)."""
        own = self._state.handle
        return own if own.branch == branch else own.on_branch(branch)

    # ------------------------------------------------------------------ planning
    def compare(self, branch: str, into: str) -> Sides:
        """Read the base, the target and the branch, and decide what a merge applies."""
        for name in (branch, into):
            if not isinstance(name, str) or not name:
                raise InvalidFilterError(f"branch names are non-empty strings, got {name!r}")
        own = self._state.handle
        listed = own.call(lambda: own.latest().branches.list(), "list branches", retry=False)
        for name in (branch, into):
            if name != MAIN_BRANCH and name not in listed:
                raise VersionNotFoundError(
                    f"no branch named {name!r}; branches: {', '.join([MAIN_BRANCH, *sorted(listed)])}"
                )
        source, target = self.handle(branch), self.handle(into)
        theirs, ours = source.latest(), target.latest()
        fork = merge_base(listed, branch, into)
        base, renumbered_at = since_merges(fork, branch, into, theirs, ours)
        _check_embedders(ours, theirs, into, branch)
        real = base
        base, base_ds = self._base_snapshot(base, listed, climb=base == fork)
        # A fork point forget() erased: both sides hold the records written up to it in its order.
        unknown = range(seq_base(base[1]), seq_base(real[1])) if real == fork and base != real else None
        states = (self._read(own, base_ds), self._read(target, ours), self._read(source, theirs))
        on_branch = None
        if renumbered_at is not None:
            try:
                on_branch = self._read(source, source.at(renumbered_at))
            except VersionNotFoundError:
                pass  # cleaned up: positions are compared as the target numbered them
        decided = three_way(*states, on_branch, unknown)
        return Sides(source, target, theirs, ours, base, decided, states)

    def _base_snapshot(
        self, base: tuple[str, int], listed: Mapping[str, Mapping[str, Any]], *, climb: bool
    ) -> tuple[tuple[str, int], lance.LanceDataset]:
        """The base version and its snapshot: on its branch, or on a child that forked there.

        A fork point that ``forget()`` erased is gone; the newest older version of its branch
        is then the base, or, when that branch kept none (``climb``: the base is a fork point),
        of the branch it was made from, and so on up (both sides descend from it too, so at
        worst more records conflict).
        """
        name, version = base
        children = [b for b, info in listed.items() if (info.get("parent_branch") or MAIN_BRANCH) == name]
        candidates = [name] + [b for b in children if listed[b].get("parent_version") == version]
        for candidate in candidates:
            try:
                return base, self.handle(candidate).at(version)
            except VersionNotFoundError:
                continue
        branch, below, seen = name, version, set[str]()
        while branch not in seen:  # up the lineage: a branch whose fork point is gone too starts older
            seen.add(branch)
            handle = self.handle(branch)
            for earlier in sorted((v for v in version_numbers(handle) if v < below), reverse=True):
                try:
                    return (branch, earlier), handle.at(earlier)
                except VersionNotFoundError:
                    continue
            if not climb or branch == MAIN_BRANCH or branch not in listed:
                break
            info = listed[branch]
            branch, below = str(info.get("parent_branch") or MAIN_BRANCH), int(info["parent_version"]) + 1
        raise VersionNotFoundError(
            f"version {version} of {name!r}, where the branches last shared history, was removed by cleanup; "
            "a merge needs it to tell what each side changed"
        )

    def _read(self, handle: DatasetHandle, ds: lance.LanceDataset) -> dict[str, RowState]:
        """Each record's state; sealed records by what they hold, not by their ciphertext."""
        cipher = self._state.cipher
        columns = fingerprint_columns(ds.schema, cipher)
        table = handle.call(lambda: ds.to_table(columns=columns), "read records to merge", retry=False)
        return row_states(table, cipher)

    def plan(self, branch: str, into: str, on_conflict: OnConflict = "fail") -> tuple[MergePlan, Sides]:
        """What merging ``branch`` into ``into`` would apply, and the conflicts, without writing."""
        sides = self.compare(branch, into)
        upserts, deletes = _applied(sides, on_conflict)
        summaries = _Summaries(sides)
        changes = [RecordChange(u.kind, u.id, *summaries.branch(u.id)) for u in upserts]
        changes += [RecordChange("deleted", i, *summaries.target(i)) for i in deletes]
        conflicts = [MergeConflict(i, *summaries.conflict(i)) for i in sides.decided.conflicts]
        plan = MergePlan(
            branch, into, sides.base, int(sides.ours.version), int(sides.theirs.version), changes, conflicts
        )
        return plan, sides

    # ------------------------------------------------------------------ merging
    def merge(self, branch: str, into: str, on_conflict: OnConflict) -> MergeResult:
        """Apply every change ``branch`` made since it forked to ``into``, as one new version."""
        if on_conflict not in ("fail", "ours", "theirs"):
            raise InvalidFilterError(f"on_conflict must be 'fail', 'ours' or 'theirs', got {on_conflict!r}")
        if self._state.read_only or into == self._state.handle.branch:
            self._state.check_writable()
        target = self.handle(into)

        def attempt() -> MergeResult:
            plan, sides = self.plan(branch, into, on_conflict)
            if plan.conflicts and on_conflict == "fail":
                raise MergeConflictError(_conflict_message(plan), plan.conflicts)
            result = MergeResult(
                branch, into, plan.target_version, False, on_conflict, plan.changes, plan.conflicts,
                plan.base, plan.branch_version,
            )  # fmt: skip
            if not plan.changes and not (plan.conflicts and on_conflict == "ours"):
                return result  # (conflicts kept "ours" are written: the merge commit records them resolved)
            new = self._commit(sides, plan, on_conflict)
            Maintainer(self._state.view(handle=sides.target)).after_write(new)
            return replace(result, version=int(new.version), merged=True)

        return target.call(attempt, f"merge branch {branch!r} into {into!r}")

    def _commit(self, sides: Sides, plan: MergePlan, on_conflict: OnConflict) -> lance.LanceDataset:
        target = sides.target
        upserts, deletes = _applied(sides, on_conflict)
        counts = {kind: sum(c.kind == kind for c in plan.changes) for kind in ("added", "changed", "deleted")}
        _, mine, theirs = sides.states
        touched = {theirs[u.id].run_id for u in upserts} | {mine[i].run_id for i in deletes}
        touched |= {mine[u.id].run_id for u in upserts if u.id in mine}  # an upsert may move an id
        props = commit_properties("merge", len(upserts) + len(deletes), touched)
        props[MERGE_KEY] = json.dumps(
            {"branch": plan.branch, "branch_version": plan.branch_version, "base": list(plan.base), **counts}
        )
        # merge_insert and commit borrow their dataset mutably: a private copy, as the writer does
        shared, version = sides.ours, int(sides.ours.version)
        ours = target.call(lambda: shared.checkout_version((target.branch, version)), "prepare the merge")
        if "embedding" in sides.theirs.schema.names and "embedding" not in ours.schema.names:
            return self._commit_adding_vectors(sides, ours, upserts, deletes, props)
        table = self._sealed(_source_table(sides, upserts, ours.schema, seq_base(version)), ours.schema)
        if "embedding" not in sides.theirs.schema.names:  # the branch forked before the column was added
            table = embed_rows(self._state.embedding, table, self._state.cipher)
        builder = ours.merge_insert("id").when_matched_update_all().when_not_matched_insert_all()
        if deletes:
            builder = builder.when_not_matched_by_source_delete(in_("id", deletes))
        transaction, stats = builder.execute_uncommitted(table)
        new = target.commit(ours, transaction, props)
        # an id the target stores twice (add() of it again) had both copies updated, and a
        # commit rebased over another writer's may sit beside its rows: one copy stays, as an upsert's
        written = stats["num_inserted_rows"] + stats["num_updated_rows"]
        settled = settle(target, ours, new, written_rows(table), None, written)
        return new if settled is None else settled[1]

    def _sealed(self, table: pa.Table, schema: pa.Schema) -> pa.Table:
        """``table`` sealed again with the target's key (the branch may hold a retired one)."""
        cipher = self._state.cipher
        return table if cipher is None else seal_table(open_table(table, cipher), schema, cipher)

    def _commit_adding_vectors(
        self,
        sides: Sides,
        ours: lance.LanceDataset,
        upserts: Sequence[Upsert],
        deletes: Sequence[str],
        props: dict[str, str],
    ) -> lance.LanceDataset:
        """Merge a branch with vectors into a target without: column, embedder and records in one commit.

        The target's records, less those the merge replaces or deletes, are written again
        with the merged ones in the schema that has the vector column and names the
        branch's embedder, as one ``Overwrite`` (as ``reembed()`` does: every older version
        stays readable; the indexes are built again when due). It commits only if nothing
        landed since ``ours``; a conflict plans the merge again, so a concurrent write is
        never lost.
        """
        target = sides.target
        schema = with_vectors_of(ours.schema, sides.theirs.schema)
        kept = target.call(ours.to_table, "read the target's records")
        dropped = pa.array(list(dict.fromkeys([u.id for u in upserts] + list(deletes))), pa.string())
        kept = kept.filter(pc.invert(pc.is_in(kept.column("id"), value_set=dropped)))
        kept = kept.append_column(
            schema.field("embedding"), pa.nulls(kept.num_rows, schema.field("embedding").type)
        )
        merged = self._sealed(_source_table(sides, upserts, schema, seq_base(int(ours.version))), schema)
        table = pa.concat_tables([kept.select(schema.names).cast(schema), merged])
        fragments = write_fragments(table, ours, schema=schema, mode="overwrite")
        props.pop(SESSIONS_KEY, None)  # every session's rows gain the column: readers refresh them all
        operation = lance.LanceOperation.Overwrite(schema, fragments)
        new = target.commit(ours, operation, props, max_retries=0)
        if target is self._state.handle:  # this store now holds vectors of the branch's model
            follow_schema(self._state.embedding, new.schema, target.uri)
        return new


def _applied(sides: Sides, on_conflict: OnConflict) -> tuple[list[Upsert], list[str]]:
    """The upserts (in the branch's order) and deletes a merge writes under ``on_conflict``."""
    upserts, deletes = list(sides.decided.upserts), list(sides.decided.deletes)
    if on_conflict == "theirs":  # the branch's copy of each conflicting record wins, deletions included
        base, _, theirs = sides.states
        for i in sides.decided.conflicts:
            if i in theirs:
                upserts.append(Upsert(i, theirs[i].seq, None, "changed" if i in base else "added"))
            else:
                deletes.append(i)
        upserts.sort(key=lambda u: (u.branch_seq, u.id))
    return upserts, deletes


def _check_embedders(ours: lance.LanceDataset, theirs: lance.LanceDataset, into: str, branch: str) -> None:
    """Refuse to mix vectors of two embedding models (or sizes) in one branch."""
    infos = []
    for ds in (ours, theirs):
        metadata = {k.decode(): v.decode() for k, v in (ds.schema.metadata or {}).items()}
        infos.append((read_embedder_info(metadata), embedding_dimension(ds.schema)))
    (mine, my_dim), (its, its_dim) = infos
    if (mine and its and mine.name != its.name) or (my_dim and its_dim and my_dim != its_dim):
        raise EmbedderMismatchError(
            f"{into!r} embeds with {mine.name if mine else '?'} ({my_dim} dimensions) and {branch!r} with "
            f"{its.name if its else '?'} ({its_dim}); reembed() one of them with the other's model first"
        )


def _source_table(sides: Sides, upserts: Sequence[Upsert], schema: pa.Schema, first_seq: int) -> pa.Table:
    """The branch's rows for ``upserts`` in the target's schema, with their target positions."""
    theirs = sides.theirs
    columns = [name for name in schema.names if name in theirs.schema.names]
    ids = [u.id for u in upserts]
    chunks = [
        sides.source.call(
            functools.partial(theirs.to_table, filter=in_("id", chunk), columns=columns),
            "read the branch's records",
        )
        for chunk in (ids[i : i + _CHUNK] for i in range(0, len(ids), _CHUNK))
    ]
    found = pa.concat_tables(chunks) if chunks else schema.empty_table().select(columns)
    newest: dict[str, tuple[int, int]] = {}  # id -> (seq, row): the newest copy of an id wins
    for row, (record_id, seq) in enumerate(zip(found["id"].to_pylist(), found["seq"].to_pylist())):
        if record_id not in newest or seq >= newest[record_id][0]:
            newest[record_id] = (seq, row)
    rows = found.take(pa.array([newest[i][1] for i in ids], pa.int64()))  # typed: ids may be empty
    seqs, fresh = [], first_seq
    for upsert in upserts:
        if upsert.kept_seq is not None:
            seqs.append(upsert.kept_seq)
        else:
            seqs.append(fresh)
            fresh += 1
    arrays = []
    for column in schema:
        if column.name == "seq":
            arrays.append(pa.array(seqs, pa.int64()))
        elif column.name in rows.column_names:
            arrays.append(rows.column(column.name).cast(column.type))
        else:
            arrays.append(pa.nulls(rows.num_rows, column.type))
    return pa.Table.from_arrays(arrays, schema=schema)


def _conflict_message(plan: MergePlan) -> str:
    shown = "; ".join(str(c) for c in plan.conflicts[:3])
    more = f" (and {len(plan.conflicts) - 3} more)" if len(plan.conflicts) > 3 else ""
    return (
        f"{len(plan.conflicts)} records changed on both {plan.into!r} and {plan.branch!r} since they forked: "
        f"{shown}{more}. Nothing was written; merge with on_conflict='ours' to keep the copies of "
        f"{plan.into!r} or on_conflict='theirs' to take those of {plan.branch!r} (see the error's .conflicts)"
    )


class _Summaries:
    """Readable summaries of the records a plan names (only those rows are read)."""

    def __init__(self, sides: Sides) -> None:
        _, ours, theirs = sides.states
        decided = sides.decided
        wanted_theirs = [u.id for u in decided.upserts] + [i for i in decided.conflicts if i in theirs]
        wanted_ours = decided.deletes + [i for i in decided.conflicts if i in ours]
        self._theirs = self._read(sides.source, sides.theirs, wanted_theirs)
        self._ours = self._read(sides.target, sides.ours, wanted_ours)

    @staticmethod
    def _read(
        handle: DatasetHandle, ds: lance.LanceDataset, ids: Sequence[str]
    ) -> dict[str, tuple[str, str, str]]:
        columns = {
            "id": "id", "run_id": "run_id", "role": "role", "seq": "seq", "content_type": "content_type",
            "text_payload": "text_payload", "binary_payload": "binary_payload",
        }  # fmt: skip
        found: dict[str, tuple[int, tuple[str, str, str]]] = {}
        unique = list(dict.fromkeys(ids))
        for start in range(0, len(unique), _CHUNK):
            read = functools.partial(
                ds.to_table, filter=in_("id", unique[start : start + _CHUNK]), columns=columns
            )
            for row in handle.call(read, "read records to describe", retry=False).to_pylist():
                data = row["binary_payload"]
                size = None if data is None else len(data)
                text = summarize(row["text_payload"], row["content_type"], size)
                entry = (row["run_id"], row["role"], text)
                if row["id"] not in found or row["seq"] >= found[row["id"]][0]:
                    found[row["id"]] = (row["seq"], entry)
        return {record_id: entry for record_id, (_, entry) in found.items()}

    def branch(self, record_id: str) -> tuple[str, str, str]:
        """(run_id, role, summary) of the branch's copy."""
        return self._theirs[record_id]

    def target(self, record_id: str) -> tuple[str, str, str]:
        """(run_id, role, summary) of the target's copy."""
        return self._ours[record_id]

    def conflict(self, record_id: str) -> tuple[str, str | None, str | None]:
        """(run_id, target summary or None, branch summary or None) of a conflicting record."""
        ours, theirs = self._ours.get(record_id), self._theirs.get(record_id)
        run_id = (ours or theirs or ("?", "", ""))[0]
        return run_id, None if ours is None else ours[2], None if theirs is None else theirs[2]
