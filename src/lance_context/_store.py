"""ContextStore: an agent's durable, versioned, multimodal memory in one Lance dataset.

The class is a facade: each method hands its work to the collaborator that owns it
(writer, reader, searcher, history, maintainer, re-embedder), all sharing one
:class:`~lance_context._state.StoreState`. Its search, version and governance methods are
written in ``_store_retrieval.py``, ``_store_versions.py`` and ``_store_governance.py``
(delegation only, split for size). See ``docs/architecture.md``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any

from ._cache import SessionCache
from ._dataset import MAIN_BRANCH, DatasetHandle
from ._embedders import Embedder
from ._embedding import Embedding
from ._encryption import EncryptionPolicy
from ._errors import ReadOnlyError, VersionNotFoundError
from ._history import History
from ._keyring import creation_metadata, open_cipher
from ._maintenance import Maintainer
from ._merge import Merger
from ._opening import (
    DEFAULT_EMBEDDER,
    check_arguments,
    check_embedder,
    create_store,
    opened_snapshot,
    resolve_embedder,
)
from ._patch import Patch
from ._policies import CachePolicy, CompactionPolicy, IndexPolicy, StoreLimits
from ._reader import Outline, Reader, filter_sql
from ._recollect import Recaller
from ._records import ContextRecord
from ._reembed import Reembedder
from ._retention import RetentionPolicy
from ._schema import embedding_dimension, read_embedder_info
from ._sealed import check_query
from ._search import Searcher
from ._searchlog import Recorder
from ._state import Settings, StoreState
from ._storage import dataset_exists, refuse_inside_store
from ._store_governance import GovernanceMethods
from ._store_retrieval import RetrievalMethods
from ._store_versions import VersionMethods
from ._tailcache import TailCache
from ._writer import Writer

if TYPE_CHECKING:
    from ._async import AsyncContextStore

__all__ = ["DEFAULT_EMBEDDER", "ContextStore"]


class ContextStore(RetrievalMethods, VersionMethods, GovernanceMethods):
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
        caches = state.handle.caches
        if state.tails is None and state.pinned is None and caches.tail_sessions and caches.tail_bytes:
            # none when the cache is off: reads skip its check of the store's version
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
        self._recaller = Recaller(state, self._reader, self._searcher)
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
        check_arguments(
            "ContextStore.open", storage_options=(storage_options, Mapping), read_only=(read_only, bool),
            branch=(branch, str), compaction=(compaction, CompactionPolicy), indexing=(indexing, IndexPolicy),
            limits=(limits, StoreLimits), caches=(caches, CachePolicy),
            retention=(retention, RetentionPolicy),
        )  # fmt: skip
        uri = str(uri)
        if "://" not in uri:  # a local path: absolute, as a branch records where its parent's files are
            uri = os.path.abspath(uri)
        if not dataset_exists(uri, storage_options):
            if read_only:
                raise ReadOnlyError(f"no store at {uri} and read_only=True: nothing to open")
            if branch != MAIN_BRANCH:
                raise VersionNotFoundError(
                    f"no store at {uri} to open on branch {branch!r}: a new store has only {MAIN_BRANCH!r}"
                )
            refuse_inside_store(uri)
            chosen_new = resolve_embedder(embedder, None, exists=False)
            create_store(uri, storage_options, chosen_new, dimension, creation_metadata(encryption))
        handle = DatasetHandle(uri, storage_options, branch=branch, caches=caches)
        schema = handle.schema(opened_snapshot(handle))
        recorded = read_embedder_info({k.decode(): v.decode() for k, v in (schema.metadata or {}).items()})
        chosen = resolve_embedder(embedder, recorded, exists=True, uri=handle.display_uri())
        check_embedder(chosen, recorded, embedding_dimension(schema), handle.display_uri())
        cipher = open_cipher(handle, schema, encryption, read_only=read_only)
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
        embedder fails. Ids are not looked up (that would cost every append a read): a
        record whose id is already stored is stored again, reads show one copy of it (the
        newest in ``records`` and ``get``, the best-ranked in ``search``) and ``count``
        counts both. ``upsert`` replaces the stored copy instead: use it to move a record to
        another session (after ``add`` the old session still shows its own copy).

        Raises:
            InvalidRecordError: A record is invalid (nothing written).
            ReadOnlyVersionError: A past version is checked out.
        """
        return self._writer.add(records)

    def upsert(
        self,
        records: ContextRecord | Iterable[ContextRecord],
        *,
        keep_order: bool = False,
        replace_where: Mapping[Any, Any] | None = None,
    ) -> int:
        """Insert records, replacing any stored record with the same id; one commit.

        A replaced record moves to the end of the append order unless ``keep_order``.
        ``replace_where`` (a filter, as in :meth:`records`) also deletes, in the same
        commit, the stored records it matches that ``records`` do not replace: an object
        kept as several records is rewritten in one step, even beside concurrent writers.
        """
        check_query(self._state.cipher, where=replace_where)
        return self._writer.upsert(records, keep_order=keep_order, replace_where=replace_where)

    def update_metadata(self, ids: str | Iterable[str], patch: Patch) -> int:
        """Change stored records' metadata in place (position, text and vector kept); one commit.

        ``patch`` is a dict of keys to set, or a function from a record's metadata to its
        new metadata. The records are read inside the commit, so a write another process
        makes to them at the same moment is patched, never undone (a copy of an id it
        ``add()``s then is patched by a second commit). Ids not stored are skipped.
        Returns the new version (the current one when none is stored).
        """
        return self._writer.update_metadata(ids, patch)

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
        index_text: bool = False,
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
            index_text: Also return what was indexed and embedded (``search_text``,
                ``embed_text``), to copy records into another store as they were written.
        """
        check_query(self._state.cipher, where=where)
        return self._reader.records(
            run_id, roles=roles, since=since, until=until, where=where,
            limit=limit, last=last, offset=offset, with_vectors=with_vectors, index_text=index_text,
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

    def run_ids(self, roles: str | Iterable[str] | None = None) -> list[str]:
        """Every session id in the store, sorted.

        Args:
            roles: Only sessions holding at least one record of one of these roles.

        Raises:
            InvalidFilterError: ``roles`` is not a role or an iterable of roles.
        """
        return self._reader.run_ids(roles)

    def outline(
        self, run_id: str | None, metadata_keys: Sequence[str] = (), *, where: Mapping[Any, Any] | None = None
    ) -> Outline:
        """A light view of a session's rows (None: every session's) to pick rows from.

        Rows come in append order (one per id); ``outline.table`` holds ``seq``, ``id``,
        ``role``, one string column per metadata key and Lance's ``_rowid``, and
        ``outline.fetch(row_ids)`` reads only the chosen records from the same version.
        """
        check_query(self._state.cipher, where=where, metadata_keys=metadata_keys)
        return self._reader.outline(run_id, metadata_keys, where_sql=filter_sql(run_id, where=where))
