"""ContextStore: an agent's durable, versioned, multimodal memory in one Lance dataset.

The class is a facade: each method hands its work to the collaborator that owns it
(writer, reader, searcher, history, maintainer, re-embedder), all sharing one
:class:`~lance_context._state.StoreState`. See ``docs/architecture.md``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal

from ._bulk import BulkWriter
from ._cache import SessionCache, TailCache
from ._dataset import MAIN_BRANCH, DatasetHandle
from ._embedders import Embedder
from ._embedding import Embedding
from ._encryption import EncryptionPolicy
from ._errors import ReadOnlyError
from ._forget import ForgetReport, Forgetter
from ._fusion import FusionOptions
from ._history import History
from ._keyring import creation_metadata, open_cipher, rotate_key
from ._maintenance import Maintainer
from ._merge import Merger
from ._mergeplan import MergeResult, OnConflict
from ._opening import DEFAULT_EMBEDDER, check_embedder, create_store, resolve_embedder
from ._policies import CachePolicy, CompactionPolicy, IndexPolicy, StoreLimits
from ._reader import Outline, Reader, filter_sql
from ._recall import RecallOptions
from ._recollect import Recall, Recaller
from ._records import ContextRecord
from ._reembed import Reembedder
from ._replay import Replay, Replayer
from ._retention import RetentionPolicy, RetentionReport, apply_retention
from ._review import Review, Reviewer
from ._schema import embedding_dimension, read_embedder_info
from ._sealed import check_query
from ._search import Searcher, SearchMode
from ._searchlog import LoggedSearch, Recorder, SearchResults
from ._snapshot import SnapshotReport, export_snapshot, import_snapshot
from ._state import Settings, StoreState
from ._storage import dataset_exists
from ._versions import RecordChanges, VersionDiff, VersionInfo
from ._writer import Writer

if TYPE_CHECKING:
    from ._async import AsyncContextStore

__all__ = ["DEFAULT_EMBEDDER", "ContextStore"]


class ContextStore:
    """Durable, versioned, multimodal memory for agents, in one Lance dataset.

    Every write is a new version; reads see the latest version of the store's branch,
    or the version checked out with :meth:`checkout`.

    Example:
        >>> store = ContextStore.open("memory.lance", embedder=HashingEmbedder())  # doctest: +SKIP
        >>> store.add(ContextRecord.from_content("hi", role="user", run_id="s1"))  # doctest: +SKIP
        >>> [r.content for r in store.records("s1")]                               # doctest: +SKIP
        ['hi']
    """

    def __init__(self, state: StoreState) -> None:
        """Use :meth:`open`; this wires the collaborators around an opened store's state."""
        self._state = state
        self._history = History(state)
        if state.tails is None and state.pinned is None:
            caches = state.handle.caches
            state.tails = TailCache(
                SessionCache(
                    lambda: state.position,
                    self._history.changes_between,
                    str,
                    lambda tail: tail.nbytes,
                    max_entries=caches.tail_sessions,
                    max_bytes=caches.tail_bytes,
                )
            )
        self._reader = Reader(state)
        self._maintainer = Maintainer(state)
        self._writer = Writer(state, self._maintainer)
        self._searcher = Searcher(state, self._history, self._maintainer)
        self._recaller = Recaller(state, self._history, self._reader, self._searcher)
        self._recorder = Recorder(state, self._searcher)
        self._merger = Merger(state)

    @classmethod
    def open(
        cls,
        uri: str,
        *,
        storage_options: Mapping[str, str] | None = None,
        embedder: Any = DEFAULT_EMBEDDER,
        dimension: int | None = None,
        read_only: bool = False,
        branch: str = MAIN_BRANCH,
        compaction: CompactionPolicy | None = None,
        indexing: IndexPolicy | None = None,
        limits: StoreLimits | None = None,
        caches: CachePolicy | None = None,
        retention: RetentionPolicy | None = None,
        encryption: EncryptionPolicy | None = None,
    ) -> ContextStore:
        """Open the store at ``uri``, creating it when nothing is there.

        Args:
            uri: A local path or an object-store URI (``s3://bucket/prefix``).
            storage_options: Object-store settings (endpoint, region, credentials, timeouts).
                They are never written into the dataset or into error messages.
            embedder: What embeds records on append. Default: the embedder the store was
                built with when it is available here without a download, or
                ``SentenceTransformerEmbedder()`` for a new store. ``None`` turns embedding
                off. LangChain and LlamaIndex embedding objects are accepted as they are.
            dimension: Vector dimension of a new store without an embedder (otherwise it
                is taken from the first vectors written).
            read_only: Refuse every write.
            branch: The branch to open (``main`` by default).
            compaction: Automatic compaction policy.
            indexing: Index policy.
            limits: Per-record limits.
            caches: Memory Lance may use for metadata and index caches.
            retention: Versions to keep as they age, applied by the store's own maintenance
                after writes (at most once per ``retention.every``); None keeps every version.
            encryption: Seal payloads with AES-GCM before they reach Lance (see the README's
                Governance section for what stays visible).

        Raises:
            NotAContextStoreError: The location holds something else.
            EmbedderMismatchError: The embedder differs from the one the store was built with.
            EncryptionError: The key is not the one the store is encrypted with.
        """
        uri = str(uri)
        if not dataset_exists(uri, storage_options):
            if read_only:
                raise ReadOnlyError(f"no store at {uri} and read_only=True: nothing to open")
            chosen_new = resolve_embedder(embedder, None, exists=False)
            create_store(uri, storage_options, chosen_new, dimension, creation_metadata(encryption))
        handle = DatasetHandle(uri, storage_options, branch=branch, caches=caches)
        schema = handle.latest().schema
        recorded = read_embedder_info({k.decode(): v.decode() for k, v in (schema.metadata or {}).items()})
        chosen = resolve_embedder(embedder, recorded, exists=True, uri=handle.display_uri())
        check_embedder(chosen, recorded, embedding_dimension(schema), handle.display_uri())
        cipher = open_cipher(handle, encryption, read_only=read_only)
        settings = Settings(
            compaction or CompactionPolicy(), indexing or IndexPolicy(), limits or StoreLimits(), retention
        )
        embedding = Embedding(chosen, embedding_dimension(schema), recorded)
        return cls(StoreState(handle, embedding, settings, read_only=read_only, cipher=cipher))

    # ------------------------------------------------------------------ identity
    @property
    def uri(self) -> str:
        """Where the store lives."""
        return self._state.handle.uri

    @property
    def storage_options(self) -> dict[str, str]:
        """The object-store settings in use (timeouts included)."""
        return dict(self._state.handle.storage_options)

    @property
    def branch_name(self) -> str:
        """The branch this store is on."""
        return self._state.handle.branch

    @property
    def read_only(self) -> bool:
        """Whether every write is refused."""
        return self._state.read_only

    @property
    def embedder(self) -> Embedder | None:
        """What embeds records and queries (None: nothing is embedded)."""
        return self._state.embedding.embedder

    @property
    def dimension(self) -> int | None:
        """The dimension of the store's vectors (None: it holds no vectors yet)."""
        return self._state.embedding.dimension

    @property
    def compaction(self) -> CompactionPolicy:
        """The automatic compaction policy."""
        return self._state.settings.compaction

    @property
    def indexing(self) -> IndexPolicy:
        """The index policy."""
        return self._state.settings.indexing

    @property
    def limits(self) -> StoreLimits:
        """The per-record limits."""
        return self._state.settings.limits

    @property
    def aio(self) -> AsyncContextStore:
        """The same store with ``async`` methods (each runs the sync method in a worker thread)."""
        from ._async import AsyncContextStore

        return AsyncContextStore(self)

    def close(self) -> None:
        """Release the store (Lance holds no locks; this drops nothing that must be saved)."""

    def __enter__(self) -> ContextStore:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        pinned = self._state.pinned
        where = f"version={pinned}" if pinned is not None else "latest"
        return f"ContextStore({self._state.handle.display_uri()!r}, branch={self.branch_name!r}, {where})"

    # ------------------------------------------------------------------ writes
    def add(self, records: ContextRecord | Iterable[ContextRecord]) -> int:
        """Append records in one atomic commit; return the new version.

        Records without an embedding are embedded in one batched call when the store has
        an embedder. Nothing of the batch is written if any record is invalid or the
        embedder fails.

        Raises:
            InvalidRecordError: A record is invalid (nothing written).
            ReadOnlyVersionError: A past version is checked out.
        """
        return self._writer.add(records)

    def upsert(self, records: ContextRecord | Iterable[ContextRecord], *, keep_order: bool = False) -> int:
        """Insert records, replacing any stored record with the same id; one commit.

        A replaced record moves to the end of the append order unless ``keep_order``.
        """
        return self._writer.upsert(records, keep_order=keep_order)

    def replace(self, run_id: str, records: ContextRecord | Iterable[ContextRecord]) -> int:
        """Make ``records`` the whole content of session ``run_id``, in one commit.

        Raises:
            InvalidRecordError: A record belongs to another session (nothing written).
        """
        return self._writer.replace(run_id, records)

    def delete(
        self,
        ids: str | Iterable[str] | None = None,
        *,
        run_id: str | None = None,
        where: Mapping[Any, Any] | None = None,
    ) -> int:
        """Delete records by id, by session or by filter (all given must match), as a new version.

        Older versions still show the records (:meth:`forget` erases them from history too).
        Returns the new version (the current one when nothing matched).
        """
        check_query(self._state.cipher, where=where)
        return self._writer.delete(ids, run_id=run_id, where=where)

    def reembed(self, embedder: Any, *, batch_size: int = 256, progress: bool | None = None) -> int:
        """Switch the store to another embedder, re-embedding every text as one new version.

        Older versions keep their old vectors; a record appended meanwhile is embedded
        too. A progress bar shows on long work (``progress=None``: from 1,000 records).
        If the embedder fails, nothing is written. Returns the version holding the vectors.
        """
        return Reembedder(self._state).reembed(embedder, batch_size=batch_size, progress=progress)

    # ------------------------------------------------------------------ reads
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
    ) -> list[ContextRecord]:
        """Records in append order, filtered; only the rows returned are read.

        Args:
            run_id: Only this session's records.
            roles: Only these roles.
            since: Created at or after this time.
            until: Created before this time.
            where: A filter dict (see ``lance_context._filters``).
            limit: At most this many, from the start (after ``offset``).
            last: Only the newest ``last`` records (still oldest first).
            offset: Skip this many from the start.
            with_vectors: Read the vectors too (False: ``embedding`` is None, reads less).
        """
        check_query(self._state.cipher, where=where)
        return self._reader.records(
            run_id, roles=roles, since=since, until=until, where=where,
            limit=limit, last=last, offset=offset, with_vectors=with_vectors,
        )  # fmt: skip

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
        check_query(self._state.cipher, where=where)
        return self._reader.count(run_id, roles=roles, since=since, until=until, where=where)

    def get(self, record_id: str) -> ContextRecord | None:
        """The record with this id, or None."""
        found = self._reader.get_many([record_id])
        return found[0] if found else None

    def get_many(self, ids: Iterable[str], *, with_vectors: bool = True) -> list[ContextRecord]:
        """Records with these ids, in the order asked; missing ids are left out."""
        return self._reader.get_many(ids, with_vectors=with_vectors)

    def run_ids(self) -> list[str]:
        """Every session id in the store, sorted."""
        return self._reader.run_ids()

    def outline(
        self, run_id: str, metadata_keys: Sequence[str] = (), *, where: Mapping[Any, Any] | None = None
    ) -> Outline:
        """A light view of a session's rows (order, id, role, chosen metadata) to pick rows from.

        Rows come in append order (one per id); ``outline.table`` holds ``seq``, ``id``,
        ``role``, one string column per metadata key and Lance's ``_rowid``, and
        ``outline.fetch(row_ids)`` reads only the chosen records from the same version.
        """
        check_query(self._state.cipher, where=where, metadata_keys=metadata_keys)
        return self._reader.outline(run_id, metadata_keys, where_sql=filter_sql(run_id, where=where))

    def search(
        self,
        query: Any,
        *,
        k: int = 10,
        mode: SearchMode = "vector",
        run_id: str | None = None,
        roles: str | Iterable[str] | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        where: Mapping[Any, Any] | None = None,
        version: int | str | None = None,
        mmr: bool = False,
        fetch_k: int | None = None,
        lambda_mult: float = 0.5,
        vector: Any = None,
        alpha: float | None = None,
        fusion: FusionOptions | None = None,
        record: bool | None = None,
    ) -> SearchResults:
        """Find the records most relevant to ``query``; a list of hits, best first.

        Args:
            query: Text, a vector, or an image (when the embedder embeds images).
            k: How many hits.
            mode: ``vector`` (cosine), ``text`` (BM25) or ``hybrid`` (both, fused).
            run_id: Only this session's records.
            roles: Only these roles.
            since: Created at or after this time.
            until: Created before this time.
            where: A filter dict, applied before the top-k is cut.
            version: Search the store as it was at this version or tag.
            mmr: Re-rank vector candidates by maximal marginal relevance.
            fetch_k: Candidates fetched for MMR or fusion (default ``4 * k``).
            lambda_mult: MMR trade-off: 1 is pure relevance, 0 pure diversity.
            vector: A query vector for the vector channel (``query`` is then the text
                the text channel searches), for callers that embed queries themselves.
            alpha: Hybrid weight of the vector channel (0: text only, 1: vector only);
                None uses ``fusion``'s weights.
            fusion: How hybrid fuses the channels (default :class:`FusionOptions`: z-scores
                of each channel's top 100, text 0.8 and vector 0.2, measured on conversation).
            record: Write the search to the search log (its id: ``hits.search_id``) so
                :meth:`replay` can re-run it; None follows :attr:`record_searches`.

        Raises:
            SearchError: Unknown mode, bad k, or no way to embed the query.
        """
        check_query(self._state.cipher, where=where, mode=mode)
        return self._recorder.search(
            query, record, k=k, mode=mode, run_id=run_id, roles=roles, since=since, until=until, where=where,
            version=version, mmr=mmr, fetch_k=fetch_k, lambda_mult=lambda_mult, vector=vector, alpha=alpha,
            fusion=fusion,
        )  # fmt: skip

    def recall(
        self,
        query: str,
        *,
        run_id: str | None = None,
        k: int | None = None,
        before: int | None = None,
        after: int | None = None,
        roles: str | Iterable[str] | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        where: Mapping[Any, Any] | None = None,
        vector: Any = None,
        version: int | str | None = None,
        options: RecallOptions | None = None,
    ) -> list[Recall]:
        """What in a conversation is relevant to ``query``: the best matches, each with its neighbours.

        Both channels rank the turns, their scores are fused, and each turn gets part of
        the score of the turn after it; the best ``k`` matches come back best first, each
        with ``before``/``after`` turns around it (in conversation order, none twice).

        Args:
            query: What to look for (text).
            run_id: The conversation (without it: matches across sessions, no neighbours).
            k: Matches to return (default ``options.k``, 10); neighbours come on top.
            before: Turns returned before each match (default 1).
            after: Turns returned after each match (default 1).
            roles: Only these roles.
            since: Created at or after this time.
            until: Created before this time.
            where: A filter dict, applied before ranking.
            vector: A query vector, for callers that embed queries themselves.
            version: Recall as the store was at this version or tag.
            options: Fusion and defaults (:class:`RecallOptions`).
        """
        text_only = vector is None and self._state.embedding.embedder is None
        check_query(self._state.cipher, where=where, mode="text" if text_only else None)
        return self._recaller.recall(
            query, run_id=run_id, k=k, before=before, after=after, roles=roles, since=since, until=until,
            where=where, vector=vector, version=version, options=options,
        )  # fmt: skip

    @property
    def record_searches(self) -> bool:
        """Record every search made through this store object, adapters' included (default False)."""
        return self._recorder.enabled

    @record_searches.setter
    def record_searches(self, on: bool) -> None:
        self._recorder.enabled = bool(on)

    def search_log(self, limit: int | None = None) -> list[LoggedSearch]:
        """Recorded searches of every branch, newest first (the log lives beside the store)."""
        return self._recorder.log.entries(limit)

    def replay(self, search_id: str, *, at: Literal["logged", "latest"] | int = "logged") -> Replay:
        """Re-run a recorded search exactly; ``at="latest"`` (or a version): the reason for each change.

        Raises:
            SearchNotFoundError: No such search in the log.
            VersionNotFoundError: Its version or branch was removed.
        """
        return Replayer(self._state, self._recorder.log).replay(search_id, at)

    # ------------------------------------------------------------------ versions
    def version(self) -> int:
        """The version this store reads: the checked-out one, or the latest."""
        return self._history.version()

    def versions(self) -> list[VersionInfo]:
        """Every version of this branch, oldest first, with what each commit did."""
        return self._history.versions()

    def changes_between(self, since: int, until: int) -> RecordChanges | None:
        """Which sessions the commits after ``since`` up to ``until`` may have changed.

        None when that is not known (long runs of versions, commits that do not say).
        Lets in-memory views of some sessions survive commits that touched others.
        """
        return self._history.changes_between(since, until)

    def checkout(self, version_or_tag: int | str) -> ContextStore:
        """Read the store as it was at a version (or tag); writes are refused until checkout_latest()."""
        self._history.checkout(version_or_tag)
        return self

    def checkout_latest(self) -> ContextStore:
        """Go back to reading (and writing) the latest version."""
        self._history.checkout_latest()
        return self

    def at_version(self, version_or_tag: int | str) -> ContextStore:
        """A separate read-only view of the store at a version; this store is unchanged."""
        return ContextStore(self._history.at_version(version_or_tag))

    def tag(self, name: str, version: int | None = None) -> None:
        """Name a version (default: the one this store reads)."""
        self._history.tag(name, version)

    def tags(self) -> dict[str, int]:
        """Tags of this branch and the versions they name."""
        return self._history.tags()

    def delete_tag(self, name: str) -> None:
        """Remove a tag (the version stays until cleanup)."""
        self._history.delete_tag(name)

    def restore(self, version_or_tag: int | str) -> int:
        """Make a past version the new latest, as a new version; return that version."""
        return self._history.restore(version_or_tag)

    def branch(self, name: str, from_version: int | str | None = None) -> ContextStore:
        """Create a branch from a version (default: the one this store reads); return a store on it.

        Writes on the branch never show on this branch and vice versa.
        """
        return ContextStore(self._history.branch(name, from_version))

    def checkout_branch(self, name: str) -> ContextStore:
        """Switch this store to another branch (``main`` for the main one)."""
        self._history.checkout_branch(name)
        return self

    def branches(self) -> list[str]:
        """``main`` and every other branch."""
        return self._history.branches()

    def delete_branch(self, name: str) -> None:
        """Delete a branch and its versions."""
        self._history.delete_branch(name)

    def merge(self, branch: str, *, into: str = MAIN_BRANCH, on_conflict: OnConflict = "fail") -> MergeResult:
        """Apply everything ``branch`` added, changed and deleted since it forked to ``into``, as one version.

        Merged records sort after the target's; merging again changes nothing.

        Raises:
            MergeConflictError: Records changed on both sides and ``on_conflict="fail"`` (nothing
                written); ``"ours"`` keeps the target's copies, ``"theirs"`` takes the branch's.
        """
        return self._merger.merge(branch, into, on_conflict)

    def review(
        self,
        branch: str,
        queries: Sequence[str] = (),
        *,
        k: int = 5,
        into: str = MAIN_BRANCH,
        mode: SearchMode = "vector",
        where: Mapping[Any, Any] | None = None,
        on_conflict: OnConflict = "fail",
    ) -> Review:
        """What merging ``branch`` changes, per session, and each query's top-k before and after; no write."""
        return Reviewer(self._state, self._merger).review(
            branch, queries, k=k, into=into, mode=mode, where=where, on_conflict=on_conflict
        )

    def diff(self, from_version: int | str, to_version: int | str | None = None) -> VersionDiff:
        """Records added and removed between two versions (``to`` defaults to the one read)."""
        return self._history.diff(from_version, to_version)

    def cleanup(
        self,
        older_than: timedelta = timedelta(days=7),
        *,
        keep_tagged: bool = True,
        keep_versions: int | None = None,
    ) -> dict[str, int]:
        """Delete the files of versions older than ``older_than`` (time travel to them ends).

        Tagged versions are kept unless ``keep_tagged=False``; ``keep_versions`` keeps at
        least that many of the newest. Returns ``{"bytes_removed", "old_versions"}``.
        """
        return self._history.cleanup(older_than, keep_tagged=keep_tagged, keep_versions=keep_versions)

    # ------------------------------------------------------------------ governance
    def forget(
        self,
        ids: str | Iterable[str] | None = None,
        *,
        run_id: str | None = None,
        where: Mapping[Any, Any] | None = None,
        dry_run: bool = False,
    ) -> ForgetReport:
        """Erase matching records (all conditions given must match) from every version and file.

        Every copy of the matched ids goes, on every branch; the versions that held them
        are removed (earlier versions stay), tags on those versions are removed, and every
        remaining file is scanned for what was erased. ``dry_run`` only reports the plan.
        See the README's Governance section.
        """
        check_query(self._state.cipher, where=where)
        return Forgetter(self._state).forget(ids, run_id=run_id, where=where, dry_run=dry_run)

    def apply_retention(
        self, policy: RetentionPolicy | None = None, *, now: datetime | None = None
    ) -> RetentionReport:
        """Remove, on every branch, the versions ``policy`` (default: the store's own) does not keep.

        ``now`` evaluates ages as of another time (for tests and what-if runs).
        """
        chosen = policy or self._state.settings.retention or RetentionPolicy()
        return apply_retention(self._state, chosen, now)

    def export(
        self,
        dest_uri: str,
        *,
        version: int | None = None,
        tag: str | None = None,
        branch: str | None = None,
        history: bool = False,
        storage_options: Mapping[str, str] | None = None,
    ) -> SnapshotReport:
        """Write a self-contained store at ``dest_uri`` that ``ContextStore.open`` reads as is.

        Exports the version read (or ``version=``, ``tag=``, ``branch=``'s latest) with its
        vectors, indexes and embedder; ``history=True`` also copies every later version of
        main, with their tags. ``storage_options`` are the destination's.
        """
        return export_snapshot(
            self._state, dest_uri, version=version, tag=tag, branch=branch, history=history,
            storage_options=storage_options,
        )  # fmt: skip

    @classmethod
    def import_(
        cls,
        source_uri: str,
        into: str | ContextStore,
        *,
        version: int | str | None = None,
        storage_options: Mapping[str, str] | None = None,
        source_storage_options: Mapping[str, str] | None = None,
        encryption: EncryptionPolicy | None = None,
        source_encryption: EncryptionPolicy | None = None,
    ) -> ContextStore:
        """Bring a snapshot into ``into``: a copy where nothing is, else a merge as one version.

        A merge upserts the snapshot's records (their vectors kept, nothing re-embedded)
        and refuses a snapshot built with another embedder. Returns the store at ``into``.
        """
        return import_snapshot(
            cls, source_uri, into, version=version, storage_options=storage_options,
            source_storage_options=source_storage_options, encryption=encryption,
            source_encryption=source_encryption,
        )  # fmt: skip

    def rotate_key(self, encryption: EncryptionPolicy) -> int:
        """Re-encrypt every record with ``encryption``'s key(s) as one new version; return it.

        Also encrypts a store written in plaintext. Older versions keep what sealed them:
        read them with the old key in ``EncryptionPolicy.previous_keys``.
        """
        return rotate_key(self._state, encryption)

    # ------------------------------------------------------------------ maintenance
    def compact(self) -> None:
        """Merge every small fragment now and refresh the indexes (new versions)."""
        self._maintainer.compact()

    def build_vector_index(self) -> None:
        """Build (or rebuild) the approximate vector index now."""
        self._maintainer.build_vector_index()

    def bulk(self) -> BulkWriter:
        """The distributed-write seam (``lance_context.ray`` uses it): plan here, write anywhere, commit here.

        See :class:`lance_context.adapters.BulkWriter`.
        """
        return BulkWriter(self._state, self._maintainer)
