"""Verifiable forgetting: erase records from the latest version *and* from history.

Deleting a record makes a new version without it, but every older version still
holds it, and so do the files they reference: Lance shares data files between
versions, a delete only writes a deletion vector beside the data, compaction copies
rows into new files, and indexes (the full-text index above all) embed ids and text.
``store.forget(...)`` therefore works on files, on every branch:

1. **Find** every physical copy: read the id (and filtered) columns of every data file
   any listed version of any branch references, deleted rows included, and match the
   filter. The records erased are the ids matched; every copy of those ids goes (an
   older copy of an upserted record too). A data file holding one is *dirty*.
2. **Rewrite each branch head** as one ``Rewrite`` commit: every dirty fragment is
   replaced by a copy of its rows without the erased ones; clean fragments (and their
   deletion files) are kept as they are. Then every index of the head is dropped (an
   index built over a dirty fragment may hold its ids or words) and built again from
   the remaining rows.
3. **Expire history**: on each branch, every version from the first one that
   referenced a dirty file up to the rewrite is removed with Lance's
   ``cleanup_old_versions(versions=...)``, which deletes every file that only those
   versions referenced. Versions before that one never held the records, so time
   travel to them keeps working. Branches go first: a branch holds on to its parent's
   version until its own history no longer needs it.
4. **Tags** that named an expired version are removed (and reported): a tag promises
   one exact state, and that state no longer exists anywhere. Moving the tag to a copy
   without the records would make it name something it never named, and the only place
   such a copy could be committed is after the latest version (an old state would
   become every reader's latest until the next commit).
5. **Recorded searches** that returned an erased record (or filtered on a session now
   gone) are removed from the search log beside the store, and its old files expired.
6. **Verify** (``_verify``): every file under the store's root is scanned, decoded
   and raw, for the erased records and their payloads.

Transaction properties of the forget's own commits carry counts only, never ids or
session names, so the history that remains does not name what was forgotten.
"""

from __future__ import annotations

import functools
import os
import tempfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import lance
import pyarrow as pa
import pyarrow.compute as pc
from lance.fragment import write_fragments

from ._dataset import MAIN_BRANCH
from ._errors import EncryptionError
from ._files import (
    Files,
    Tracked,
    branch_handles,
    delete_tag,
    drop_index,
    expire_versions,
    present,
    restore_indexes,
    tracked,
    version_numbers,
)
from ._filters import in_
from ._forget_checks import check_dry_run, forget_target
from ._scrub import links_in, purge_search_log, quotes_in, unlinked, unquoted
from ._state import StoreState
from ._verify import MIN_NEEDLE, ForgetVerification, needles_of, verify_forgotten
from ._versions import OP_KEY

__all__ = ["ForgetReport", "Forgetter"]

_FILTER_COLUMNS = ("id", "run_id", "role", "content_type", "created_at", "text_payload", "metadata_index")
_PAYLOAD_COLUMNS = ("id", "run_id", "text_payload", "binary_payload", "metadata", "state_metadata",
                    "search_text", "embed_text")  # fmt: skip


@dataclass(frozen=True)
class ForgetReport:
    """What ``store.forget(...)`` erased, rewrote, expired and verified.

    Attributes:
        records: How many records (distinct ids) were erased.
        record_ids: Their ids.
        rows: Physical copies of them found across history (every version, deleted rows
            and older copies of upserted records included).
        versions_written: Branch to the versions forget committed there (the rewritten
            head, index drops and rebuilds).
        versions_expired: Branch to the versions removed from it (every version that
            held the records, or referenced a file that did).
        tags_removed: Tag to the ``(branch, version)`` it named; those versions are gone.
        files_deleted: Files deleted by expiring versions (data, deletion, index and
            transaction files, manifests).
        bytes_deleted: Their bytes.
        searches_removed: Recorded searches (``record=True``) removed from the search log
            because they returned an erased record or filtered on an erased session.
        verification: The scan of every remaining file (None for a dry run).
        dry_run: Nothing was changed; the report says what forgetting would do.

    Example:
        >>> ForgetReport().records
        0
    """

    records: int = 0
    record_ids: tuple[str, ...] = ()
    rows: int = 0
    versions_written: dict[str, tuple[int, ...]] = field(default_factory=dict)
    versions_expired: dict[str, tuple[int, ...]] = field(default_factory=dict)
    tags_removed: dict[str, tuple[str, int]] = field(default_factory=dict)
    files_deleted: int = 0
    bytes_deleted: int = 0
    searches_removed: int = 0
    verification: ForgetVerification | None = None
    dry_run: bool = False

    @property
    def verified(self) -> bool:
        """Whether the scan ran and found nothing of the erased records."""
        return self.verification is not None and self.verification.ok


def _matching(table: pa.Table, ids: list[str] | None, run_id: str | None, where_sql: str | None) -> pa.Array:
    """Which physical rows match the forget filter."""
    mask = pa.array([True] * table.num_rows, pa.bool_())
    if ids is not None:
        mask = pc.and_(mask, pc.is_in(table.column("id"), value_set=pa.array(ids, pa.string())))
    if run_id is not None:
        mask = pc.and_(mask, pc.equal(table.column("run_id"), run_id))
    if where_sql is not None and table.num_rows:
        numbered = table.append_column("_n", pa.array(range(table.num_rows), pa.int64()))
        with tempfile.TemporaryDirectory(prefix="lance-context-forget-") as folder:
            scratch = lance.write_dataset(numbered, os.path.join(folder, "rows.lance"))
            hits = scratch.to_table(filter=where_sql, columns=["_n"]).column("_n")
        mask = pc.and_(mask, pc.is_in(numbered.column("_n"), value_set=hits))
    return mask


@dataclass
class _Tally:
    """Files and bytes deleted so far."""

    files: int = 0
    bytes: int = 0


@dataclass
class _Plan:
    """What forgetting will erase, per branch."""

    erased: set[str]
    dirty: set[str]  # data file names holding a copy
    known: set[str]  # data file names read while planning
    rows: int
    history: dict[str, Tracked]
    first_dirty: dict[str, int]
    broken: dict[str, set[int]]  # versions whose data files are gone (an expiry cut short)
    tags: dict[str, tuple[str, int]]
    quotes: tuple[str, ...] = ()  # erased texts a kept turn's index text may quote

    def doomed(self, name: str, clean: int) -> list[int]:
        """The versions of a branch to expire, up to (not including) its first clean version."""
        first = self.first_dirty.get(name, clean)
        return sorted(v for v in self.history[name].versions
                      if v < clean and (v >= first or v in self.broken.get(name, ())))  # fmt: skip


class Forgetter:
    """Erases records from every version, branch and file of one store."""

    def __init__(self, state: StoreState) -> None:
        """Forget in the store ``state`` describes (on every branch)."""
        self._state = state
        self._handles = branch_handles(state.handle)

    def forget(
        self,
        ids: str | Iterable[str] | None,
        *,
        run_id: str | None,
        where: Mapping[Any, Any] | None,
        dry_run: bool = False,
    ) -> ForgetReport:
        """Erase the records matching every condition given; see the module docstring."""
        check_dry_run(dry_run)
        id_list, run_id, where_sql = forget_target(ids, run_id, where)
        if not dry_run:
            self._state.check_writable()
        plan = self._plan(id_list, run_id, where_sql)
        expired = {}
        for name in self._handles:
            history = plan.history[name]
            head = max(history.versions)
            # as _rewrite_branch will: a head with a copy is rewritten, and its indexes are dropped
            # when the branch held one anywhere; a head neither touches stays, and expiry stops below it
            files = history.files[head]
            touched = any(os.path.basename(p) in plan.dirty for p, _ in files) or (
                name in plan.first_dirty and any(kind == "index file" for _, kind in files)
            )
            clean = head + 1 if touched else head
            if doomed := plan.doomed(name, clean):
                expired[name] = tuple(doomed)
        report = ForgetReport(len(plan.erased), tuple(sorted(plan.erased)), plan.rows, {}, expired, plan.tags)
        if dry_run:
            return replace(report, dry_run=True)
        if not expired:  # nothing left: a forget cut short before its search-log step is finished here
            sessions = set() if run_id is None else {run_id}  # the log's step drops only sessions now gone
            searches = purge_search_log(self._state, self._handles.values(), self._gone(id_list), sessions)
            return replace(report, searches_removed=searches)
        erased_rows = self._erased_rows(plan)
        needles = needles_of(erased_rows)
        if "text_payload" in erased_rows.column_names:
            texts = {t for t in erased_rows.column("text_payload").to_pylist() if t}
            plan.quotes = tuple(sorted(t for t in texts if len(t.encode()) >= MIN_NEEDLE))
        written: dict[str, tuple[int, ...]] = {}
        removed: dict[str, tuple[int, ...]] = {}
        tally = _Tally()
        for name in reversed(list(self._handles)):  # children first
            if name in expired:
                written[name], removed[name] = self._rewrite_branch(name, plan, tally)
        sessions = set(erased_rows.column("run_id").to_pylist())
        searches = purge_search_log(self._state, self._handles.values(), plan.erased, sessions, needles)
        verification = verify_forgotten(
            self._handles[MAIN_BRANCH], self._handles.values(), plan.erased, needles
        )
        return ForgetReport(
            len(plan.erased), tuple(sorted(plan.erased)), plan.rows, written, removed, plan.tags,
            tally.files, tally.bytes, searches, verification,
        )  # fmt: skip

    def _gone(self, ids: list[str] | None) -> set[str]:
        """Those of ``ids`` that no branch holds any more."""
        held = [
            h.latest().to_table(columns=["id"], filter=in_("id", ids)) for h in self._handles.values() if ids
        ]
        return set(ids or ()) - {i for table in held for i in table.column("id").to_pylist()}

    # ------------------------------------------------------------------ finding
    def _plan(self, ids: list[str] | None, run_id: str | None, where_sql: str | None) -> _Plan:
        history = {name: tracked(h, h.latest()) for name, h in self._handles.items()}
        main = self._handles[MAIN_BRANCH]
        files, on_disk = Files(main), present(main)
        columns = ["id", "run_id"] if where_sql is None else list(_FILTER_COLUMNS)
        file_ids: dict[str, pa.Array] = {}
        erased: set[str] = set()
        paths = set().union(*(h.paths("data file") for h in history.values()))
        missing = {p for p in paths if p not in on_disk and not (p.startswith("/") or "://" in p)}
        for path in sorted(paths - missing):
            table = files.table_if(path, columns)
            if table is None:
                continue  # a column added later (vectors): its fragment's other file is checked
            file_ids[path] = table.column("id")
            erased |= set(table.column("id").filter(_matching(table, ids, run_id, where_sql)).to_pylist())
        wanted = pa.array(sorted(erased), pa.string())
        rows, dirty = 0, set()
        for path, column in file_ids.items():
            held = pc.sum(pc.is_in(column, value_set=wanted).cast(pa.int64())).as_py() or 0
            if held:
                rows += held
                dirty.add(path)
        first_dirty: dict[str, int] = {}
        broken: dict[str, set[int]] = {}
        for name, refs in history.items():
            hits = [v for v, files_of in refs.files.items() if any(p in dirty for p, _ in files_of)]
            if hits:
                first_dirty[name] = min(hits)
            latest = max(refs.versions)
            broken[name] = {v for v, files_of in refs.files.items()
                            if v != latest and any(p in missing for p, _ in files_of)}  # fmt: skip
        known = {os.path.basename(p) for p in file_ids}
        return _Plan(erased, {os.path.basename(p) for p in dirty}, known, rows, history, first_dirty, broken,
                     self._doomed_tags(first_dirty))  # fmt: skip

    def _doomed_tags(self, first_dirty: dict[str, int]) -> dict[str, tuple[str, int]]:
        listed = self._handles[MAIN_BRANCH].latest().tags.list()
        doomed = {}
        for tag, info in listed.items():
            branch = info.get("branch") or MAIN_BRANCH
            if branch in first_dirty and int(info["version"]) >= first_dirty[branch]:
                doomed[tag] = (branch, int(info["version"]))
        return doomed

    def _erased_rows(self, plan: _Plan) -> pa.Table:
        """Every physical copy of the erased records, with their payloads (for the scan)."""
        files = Files(self._handles[MAIN_BRANCH])
        wanted = pa.array(sorted(plan.erased), pa.string())
        paths = {p for h in plan.history.values() for p in h.paths("data file")}
        found = []
        for path in sorted(p for p in paths if os.path.basename(p) in plan.dirty):
            table = files.table(path, [c for c in _PAYLOAD_COLUMNS if c in files.columns(path)])
            found.append(table.filter(pc.is_in(table.column("id"), value_set=wanted)))
        if not found:  # nothing left to erase (a forget cut short is being finished)
            return pa.table({"id": pa.array([], pa.string()), "run_id": pa.array([], pa.string())})
        stored = pa.concat_tables(found, promote_options="default")
        cipher = self._state.cipher
        if cipher is None or cipher.policy is None:
            return stored
        try:  # search for the plaintext too, where this store can open it
            return pa.concat_tables([stored, cipher.open(stored)], promote_options="default")
        except EncryptionError:
            return stored

    # ------------------------------------------------------------------ rewriting
    def _dirty(
        self, fragment: Any, plan: _Plan, head: Callable[[], dict[str, str]], wanted: pa.Array
    ) -> bool:
        """Whether a head fragment holds an erased row (files written since planning are read)."""
        names = [os.path.basename(f.path) for f in fragment.metadata.files]
        if any(name in plan.dirty for name in names):
            return True
        new = [name for name in names if name not in plan.known]
        if not new:
            return False
        # another writer's compaction may have copied erased rows into a new file meanwhile
        located = head()
        files = Files(self._handles[MAIN_BRANCH])
        for name in new:
            path = located.get(name)
            if path is None or "id" not in files.columns(path):
                continue
            ids = files.table(path, ["id"]).column("id")
            if pc.any(pc.is_in(ids, value_set=wanted)).as_py():
                plan.dirty.add(name)
                return True
        return False

    def _rewrite_branch(
        self, name: str, plan: _Plan, tally: _Tally
    ) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """Rewrite one branch's head, drop its indexes, expire its history, rebuild indexes."""
        handle = self._handles[name]
        start = int(handle.latest().version)
        wanted = pa.array(sorted(plan.erased), pa.string())
        props = {OP_KEY: "forget", "lance_context.rows": str(plan.rows)}

        def rewrite() -> lance.LanceDataset:
            base = handle.private_latest()
            version = int(base.version)

            @functools.cache
            def head() -> dict[str, str]:  # file name to path, for the base version's files
                refs = tracked(handle, base, since=version).files[version]
                return {os.path.basename(path): path for path, _ in refs}

            groups = []
            for fragment in base.get_fragments():
                if not (
                    self._dirty(fragment, plan, head, wanted)
                    or quotes_in(fragment, plan.quotes)
                    or links_in(fragment, wanted)
                ):
                    continue
                table = fragment.to_table()
                rest = table.filter(pc.invert(pc.is_in(table.column("id"), value_set=wanted)))
                kept = unlinked(unquoted(rest, plan.quotes), wanted)
                new = write_fragments(kept, base, schema=base.schema) if kept.num_rows else []
                groups.append(lance.LanceOperation.RewriteGroup([fragment.metadata], new))
            if not groups:
                return base
            return handle.commit(base, lance.LanceOperation.Rewrite(groups, []), props)

        had: list[str] = []
        if name in plan.first_dirty:
            # indexes first: one built over a dirty fragment may hold its ids or words
            had = [index.name for index in handle.latest().describe_indices()]
            for index in had:
                drop_index(handle, index)
            handle.call(rewrite, f"rewrite branch {name!r} without the forgotten records")
            while built := [i.name for i in handle.latest().describe_indices()]:  # another writer's
                for index in built:
                    drop_index(handle, index)
        clean = int(handle.latest().version)
        for tag, (branch, _) in plan.tags.items():
            if branch == name:
                delete_tag(handle, tag)
        listed = set(version_numbers(handle))
        first = plan.first_dirty.get(name, clean)
        doomed = sorted(v for v in listed if first <= v < clean) + sorted(
            v for v in plan.broken.get(name, ()) if v < first and v in listed
        )
        files, size = expire_versions(handle, doomed, "expire the versions holding forgotten records")
        tally.files, tally.bytes = tally.files + files, tally.bytes + size
        after = version_numbers(handle)
        # Lance keeps a version a branch was made from, even once that branch (rewritten first)
        # no longer needs it: only its manifest is left, naming files that are gone
        branches = handle.latest().branches.list()
        forks = {int(info["parent_version"]) for info in branches.values()
                 if (info.get("parent_branch") or MAIN_BRANCH) == name}  # fmt: skip
        manifests = [path for v in doomed if v in after and v in forks
                     for path, kind in plan.history[name].files.get(v, ()) if kind == "manifest"]  # fmt: skip
        if manifests:  # their paths are from the store's root, where a branch's own files live too
            store_files = Files(self._handles[MAIN_BRANCH])
            for path in manifests:
                store_files.delete(path)
            tally.files += len(manifests)
        restore_indexes(self._state.view(handle=handle, read_only=False), had)
        after = version_numbers(handle)
        # the versions the forget made and expired on its way (dropping indexes) are not reported
        return tuple(v for v in after if v > start), tuple(v for v in doomed if v not in after and v <= start)
