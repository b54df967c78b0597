"""Distributed writes: plan on the driver, write fragments in workers, commit once on the driver.

This is Lance's distributed write, shaped to the store. The driver makes a plan from
an open store (:meth:`BulkWriter.plan`: where the store is, its schema, the version
the job starts from, the embedder); workers anywhere (Ray tasks, processes) turn
records into data files with :class:`BulkWorker` (validated, embedded and laid out
exactly as ``add()`` does, written with ``lance.fragment.write_fragments`` and not
committed); the driver commits every worker's fragments as one version
(:meth:`BulkWriter.commit`), through the store's ``DatasetHandle`` with the same
transaction properties and maintenance as ``add()``. Nothing is visible before that
commit, and a job that fails before it leaves the store at the version it had (the
data files it wrote are referenced by no version).

Append order: every row's ``seq`` is ``seq_base(read version) + its position in the
input``, so a job's records keep their input order whichever worker wrote them, and
sort with other writers' records by the version each commit was based on.

Re-embedding works the same way: :meth:`BulkWriter.plan_reembed` cuts the store
into slices of fragments, workers rewrite each slice with the new vectors
(:meth:`BulkWorker.rewrite`), and :meth:`BulkWriter.commit_reembed` commits one
overwrite that fails, instead of dropping them, if anything landed meanwhile.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

import lance
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from lance.fragment import write_fragments

from ._arrow import records_to_table
from ._bulk_plans import BulkPart, BulkPlan, RewritePlan, Slice
from ._dataset import DatasetHandle
from ._embedders import as_embedder
from ._embedding import Embedding
from ._errors import (
    CommitConflictError,
    EmbeddingError,
    InvalidRecordError,
    StoreError,
    VersionNotFoundError,
)
from ._files import restore_indexes
from ._maintenance import INDEX_NAMES, Maintainer
from ._policies import CompactionPolicy, IndexPolicy
from ._records import ContextRecord
from ._reembed import _embed_all, _embedded_texts, _with_vectors
from ._schema import EmbedderInfo
from ._sealed import refuse_bulk
from ._state import Settings, StoreState
from ._versions import OP_KEY, commit_properties
from ._writer import SEQ_SHIFT, Writer, seq_base

__all__ = ["BulkPart", "BulkPlan", "BulkWorker", "BulkWriter", "RewritePlan", "Slice"]

#: Sessions a commit lists at most (``commit_properties``); a part keeps one more to say "many".
_MAX_LISTED = 64
#: Transaction property naming a bulk job by the data files it commits (see ``BulkWriter.commit``).
JOB_KEY = "lance_context.bulk_job"


class BulkWorker:
    """The worker side: validates, embeds and lays out records, and writes fragments (no commit).

    One per worker process and job (a Ray worker process keeps one per job); it opens the
    store's dataset once.

    Example:
        >>> worker = BulkWorker(plan)                                 # doctest: +SKIP
        >>> part = worker.write(records, positions=range(100, 100 + len(records)))  # doctest: +SKIP
    """

    def __init__(self, plan: BulkPlan | RewritePlan) -> None:
        """Work for ``plan``."""
        self.plan = plan
        self._handle: DatasetHandle | None = None
        self._writer: Writer | None = None
        self._embedding: Embedding | None = None

    @property
    def handle(self) -> DatasetHandle:
        """The store's dataset, opened in this process on first use."""
        if self._handle is None:
            self._handle = DatasetHandle(self.plan.uri, self.plan.storage_options, branch=self.plan.branch)
        return self._handle

    def _append_plan(self) -> BulkPlan:
        if not isinstance(self.plan, BulkPlan):
            raise TypeError("write() needs a BulkPlan (from BulkWriter.plan())")
        return self.plan

    def write(self, records: Sequence[ContextRecord], positions: Sequence[int]) -> BulkPart:
        """Write ``records`` (at these input ``positions``) as uncommitted fragments.

        Raises:
            InvalidRecordError: A record is invalid (the job must not commit).
            EmbeddingError: A vector is wrong, or the embedder failed.
        """
        plan = self._append_plan()
        if len(positions) != len(records):
            raise ValueError(f"{len(records)} records but {len(positions)} positions")
        if self._writer is None:
            self._embedding = Embedding(plan.embedder, plan.dimension, plan.recorded)
            settings = Settings(CompactionPolicy(), IndexPolicy(), plan.limits)
            state = StoreState(self.handle, self._embedding, settings)
            self._writer = Writer(state, Maintainer(state))
        batch = self._writer.prepare(records)  # the same checks as add()
        if not batch:
            return BulkPart((), 0, 0)
        if plan.dimension is None and any(r.embedding is not None for r in batch):
            raise EmbeddingError(
                "records bring vectors but the store has no vector column; add one record with a "
                "vector through store.add() first, or open the store with an embedder"
            )
        assert self._embedding is not None
        vectors = self._embedding.vectors_for(batch)
        table = self._layout(plan, batch, vectors, np.asarray(positions, dtype=np.int64))
        fragments = self.handle.call(
            lambda: write_fragments(table, self.handle.latest(), schema=plan.schema),
            f"write {len(batch)} records",
        )
        sessions = sorted(table.column("run_id").unique().to_pylist())[: _MAX_LISTED + 1]
        return BulkPart(
            tuple(fragments),
            len(batch),
            int(min(positions)),
            table.column("id").combine_chunks(),
            frozenset(sessions),
        )

    @staticmethod
    def _layout(plan: BulkPlan, batch: list[ContextRecord], vectors: Any, positions: Any) -> pa.Table:
        if positions.min() < 0 or positions.max() >= 1 << SEQ_SHIFT:
            raise InvalidRecordError(f"a bulk write holds at most {1 << SEQ_SHIFT:,} records")
        table = records_to_table(batch, vectors, plan.schema, 0)
        seqs = pa.array(seq_base(plan.read_version) + positions, pa.int64())
        table = table.set_column(table.schema.get_field_index("seq"), "seq", seqs)
        # Grouped by session, as add() stores a batch: reading one session touches fewer pages.
        return table.sort_by([("run_id", "ascending"), ("seq", "ascending")])

    def rewrite(self, piece: Slice) -> BulkPart:
        """Rewrite one slice of the store with vectors from the plan's new embedder (no commit).

        Each record's embed text (else its text) is embedded, as ``store.reembed()`` does;
        records with neither get no vector.
        """
        plan = self.plan
        if not isinstance(plan, RewritePlan):
            raise TypeError("rewrite() needs a RewritePlan (from BulkWriter.plan_reembed())")
        handle = self.handle
        source = handle.at(plan.read_version)
        fragment = source.get_fragment(piece.fragment_id)
        if fragment is None:
            raise CommitConflictError(f"fragment {piece.fragment_id} of version {plan.read_version} is gone")
        table = handle.call(
            lambda: fragment.to_table(offset=piece.offset, limit=piece.limit), "read records to re-embed"
        )
        vectors = _embed_all(plan.embedder, _embedded_texts(table), plan.batch_size, False)
        rebuilt = _with_vectors(table, vectors, plan.info)
        rebuilt = pa.Table.from_batches(rebuilt.to_batches(), schema=plan.schema)
        fragments = handle.call(
            lambda: write_fragments(rebuilt, source, schema=plan.schema, mode="overwrite"),
            "write re-embedded records",
        )
        return BulkPart(tuple(fragments), rebuilt.num_rows, piece.index)


class BulkWriter:
    """The driver side of a distributed write: plans, and the one commit (see the module doc).

    Example:
        >>> writer = store.bulk()              # doctest: +SKIP
        >>> plan = writer.plan()               # doctest: +SKIP
        >>> writer.commit(plan, parts)         # doctest: +SKIP
        7
    """

    def __init__(self, state: StoreState, maintainer: Maintainer) -> None:
        """Write to the store ``state`` describes; maintain it after the commit."""
        self._state = state
        self._maintainer = maintainer

    def plan(self) -> BulkPlan:
        """A plan for appending records, based on the latest version.

        Raises:
            ReadOnlyError: The store may not write now.
        """
        state = self._state
        state.check_writable()
        handle = state.handle
        base = handle.latest()
        refuse_bulk(state.cipher, base, "a bulk write")
        embedding = state.embedding
        return BulkPlan(
            uri=handle.uri,
            storage_options=dict(handle.storage_options),
            branch=handle.branch,
            read_version=int(base.version),
            schema=base.schema,
            embedder=embedding.embedder,
            dimension=embedding.dimension,
            recorded=embedding.recorded,
            limits=state.settings.limits,
        )

    def commit(self, plan: BulkPlan, parts: Sequence[BulkPart]) -> int:
        """Commit every part's fragments as one new version on top of ``plan.read_version``.

        Lance rebases the append over commits made meanwhile (appends never conflict).
        Committing the same parts again (a driver that retries after a lost reply) commits
        nothing and returns the version of the first commit: the job is named in the
        commit by the data files it wrote.

        Returns:
            The new version (the current one when the parts hold no records).

        Raises:
            InvalidRecordError: An id appears twice in the job (nothing is committed).
            CommitConflictError: The store was re-embedded, overwritten or restored meanwhile,
                or the job's base version was cleaned up (nothing is committed; run the job again).
        """
        state = self._state
        state.check_writable()
        handle = state.handle
        rows = sum(p.rows for p in parts)
        if rows == 0:
            return int(handle.latest().version)
        _check_unique(parts)
        ordered = sorted((p for p in parts if p.rows), key=lambda p: p.first)
        fragments = [f for p in ordered for f in p.fragments]
        sessions = frozenset().union(*(p.sessions for p in ordered))  # over 64: "many", not listed
        job = _job_key(fragments)
        props = {**commit_properties("add", rows, sessions), JOB_KEY: job}
        base = self._base(plan.read_version)
        latest = handle.latest()
        done = _committed(latest, plan.read_version, job)
        if done is not None:
            return done
        _refuse_committed_parts(latest, fragments)
        try:
            new = handle.call(
                lambda: handle.commit(base, lance.LanceOperation.Append(fragments), props),
                f"commit {rows} records",
            )
        except StoreError as exc:
            if "incompatible" not in str(exc).lower():
                raise
            # Lance never rebases an append over an overwrite or a restore (a re-embed, a
            # restore(v)): the job's rows were laid out for the store as it was.
            raise CommitConflictError(
                f"the store was re-embedded, overwritten or restored while the job ran; nothing was "
                f"written: run the job again ({exc})"
            ) from exc
        self._maintainer.after_write(new)
        return int(new.version)

    def plan_reembed(
        self, embedder: object, *, rows_per_slice: int = 8192, batch_size: int = 256
    ) -> RewritePlan:
        """A plan for re-embedding every record with ``embedder``, in slices of at most ``rows_per_slice``."""
        for name, value in (("rows_per_slice", rows_per_slice), ("batch_size", batch_size)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InvalidRecordError(f"{name} must be a positive integer, got {value!r}")
        state = self._state
        state.check_writable()
        new = as_embedder(embedder)
        handle = state.handle
        base = handle.latest()
        refuse_bulk(state.cipher, base, "a bulk re-embedding")
        slices: list[Slice] = []
        for fragment in base.get_fragments():
            live = int(fragment.count_rows())
            source = json.dumps(fragment.metadata.to_json(), sort_keys=True, default=str)
            for offset in range(0, live, rows_per_slice):
                limit = min(rows_per_slice, live - offset)
                slices.append(Slice(len(slices), int(fragment.fragment_id), offset, limit, source))
        info = EmbedderInfo(new.name, new.dimension)
        schema = _with_vectors(base.schema.empty_table(), [], info).schema
        return RewritePlan(
            uri=handle.uri,
            storage_options=dict(handle.storage_options),
            branch=handle.branch,
            read_version=int(base.version),
            embedder=new,
            schema=schema,
            slices=tuple(slices),
            batch_size=batch_size,
        )

    def commit_reembed(self, plan: RewritePlan, parts: Sequence[BulkPart]) -> int:
        """Commit the rewritten store as one version, only if nothing landed since ``plan.read_version``.

        Older versions keep their vectors. On success the store embeds with the new
        embedder from now on.

        Raises:
            CommitConflictError: Another commit landed meanwhile (nothing written: plan
                again; slices whose source is unchanged can reuse their parts).
        """
        state = self._state
        state.check_writable()
        handle = state.handle
        if sorted(p.first for p in parts) != [s.index for s in plan.slices]:
            raise ValueError("commit_reembed() needs exactly one part per slice of the plan")
        fragments = [f for p in sorted(parts, key=lambda p: p.first) for f in p.fragments]
        base = self._base(plan.read_version)
        operation = lance.LanceOperation.Overwrite(plan.schema, fragments)
        new = handle.call(
            lambda: handle.commit(base, operation, {OP_KEY: "reembed"}, max_retries=0),
            "write the re-embedded records",
            retry=False,
        )
        embedding = state.embedding
        embedding.embedder = plan.embedder
        embedding.dimension = plan.embedder.dimension
        embedding.recorded = plan.info
        restore_indexes(state, INDEX_NAMES)  # the overwrite has none
        return int(new.version)

    def _base(self, read_version: int) -> lance.LanceDataset:
        try:
            return self._state.handle.at(read_version)
        except VersionNotFoundError as exc:
            raise CommitConflictError(
                f"version {read_version}, which this job started from, was cleaned up while it ran; "
                "nothing was written: run the job again (or clean up with a longer older_than)"
            ) from exc


def _job_key(fragments: Sequence[Any]) -> str:
    """A name for the job: a digest of the data files its fragments hold (unique per write)."""
    paths = sorted(str(f.path) for fragment in fragments for f in fragment.files)
    return hashlib.sha256("\n".join(paths).encode()).hexdigest()


def _committed(latest: lance.LanceDataset, read_version: int, job: str) -> int | None:
    """The version that already committed ``job`` after ``read_version``, if one did."""
    for version in range(int(latest.version), read_version, -1):
        try:
            transaction = latest.read_transaction(version)
        except (OSError, ValueError, RuntimeError, TypeError):
            continue  # cleaned up or not decodable: not this job's append
        props = (transaction.transaction_properties or {}) if transaction is not None else {}
        if props.get(JOB_KEY) == job:
            return version
    return None


def _refuse_committed_parts(latest: lance.LanceDataset, fragments: Sequence[Any]) -> None:
    """Refuse a job holding a part some earlier commit took (its rows would be stored twice)."""
    ours = {str(f.path) for fragment in fragments for f in fragment.files}
    stored = {str(f.path) for fragment in latest.get_fragments() for f in fragment.metadata.files}
    if ours & stored:
        raise InvalidRecordError(
            "some of these parts were committed already (by another commit of this job); "
            "commit only the parts not committed yet; nothing was written"
        )


def _check_unique(parts: Sequence[BulkPart]) -> None:
    """Refuse a job that gives one id twice, as ``add()`` refuses it within one batch."""
    ids = pa.chunked_array([p.ids for p in parts if len(p.ids)], pa.string())
    if len(ids) == pc.count_distinct(ids).as_py():
        return
    counts = pc.value_counts(ids)
    twice = counts.filter(pc.greater(counts.field("counts"), 1))
    raise InvalidRecordError(
        f"record id {twice[0]['values'].as_py()!r} appears twice in one bulk write; nothing was written"
    )
