"""LanceCheckpointSaver: LangGraph checkpoints and pending writes in a context store."""

from __future__ import annotations

import asyncio
import builtins
import random
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    BaseCheckpointSaver,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    get_checkpoint_id,
    get_checkpoint_metadata,
)
from langgraph.checkpoint.serde.base import SerializerProtocol
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer

from lance_context import ContextStore
from lance_context.adapters import async_twin, open_store

from ._checkpoint_records import (
    CHECKPOINT_ROLE,
    THREAD_PREFIX,
    checkpoint_record,
    key_clause,
    retarget,
    thread_key,
    to_tuple,
    write_idx,
    write_record,
)
from ._latest import LatestCheckpoints
from ._listing import list_checkpoints, newest_checkpoints, thread_checkpoints
from ._locking import serialized
from ._prune import kept_checkpoints
from ._serde import PayloadReader, inner_serde, strict_serde, written_types

__all__ = ["LanceCheckpointSaver"]

#: Clauses per delete filter when deleting many checkpoints by key.
_DELETE_CHUNK = 256


class LanceCheckpointSaver(BaseCheckpointSaver[str]):
    """A LangGraph checkpointer on a lance-context store: durable, versioned threads.

    Checkpoints and pending writes are records of the shared
    :class:`~lance_context.ContextStore` (one session per thread, payloads serialized
    by LangGraph's ``serde``). Every write is a Lance version, so
    :meth:`at_version` reads every thread as it was at any past store version, and
    :meth:`branch` (or ``store.branch(...)``) forks all threads at once.

    The latest checkpoint of a thread is the one first written last (append order; a
    checkpoint written again keeps its place; of checkpoints committed at once, by two
    servers, the highest id); LangGraph writes checkpoints in id order, so this is also
    the highest checkpoint id. ``list`` returns checkpoints newest first in that order.

    Args:
        store: An open store to share (with a :class:`LanceStore`, other adapters...).
        uri: Where to open (or create) a store when ``store`` is not given; it is
            opened without an embedder, as checkpoints are never embedded. To keep
            threads and a :class:`LanceStore` in one dataset, open the
            :class:`~lance_context.ContextStore` once and pass it as ``store=`` to both.
        storage_options: Object-store settings for ``uri``.
        serde: LangGraph serializer. Default: ``JsonPlusSerializer`` in strict msgpack
            mode (LangGraph's safe types, the types in ``allowed_msgpack_modules``, the
            models, dataclasses, named tuples and enums this process wrote, and those
            LangGraph derives from a compiled graph's state when
            ``LANGGRAPH_STRICT_MSGPACK`` is set), never pickle; any other type named in
            stored data comes back as plain data. A
            ``JsonPlusSerializer`` allowing every module is refused; LangGraph's
            ``EncryptedSerializer`` works as it is. See "Reading untrusted data".
        allowed_msgpack_modules: Extra types the default serializer may rebuild from
            stored data, as classes or ``(module, name)`` pairs.
        cached_threads: How many threads' latest checkpoints to keep in memory (0: none).
            The cache is checked against the store version on every read, so it never
            serves stale data; see "Reading the latest checkpoint" below.
        cache_bytes: About how much memory that cache may hold (default 64 MiB); the
            least recently used threads are dropped first.

    Reading the latest checkpoint:
        ``get_tuple`` of a thread's latest checkpoint is answered from memory while the
        thread has not changed since this saver last read or wrote it: one
        file-existence check on a local store. Maintenance commits (compaction,
        indexes) keep the cache; an append forgets the threads it touched; any other
        commit made elsewhere (an upsert, a delete, a restore) empties it. A thread's
        first read reads only its latest checkpoint and that checkpoint's writes.

    Reading untrusted data:
        Whoever can write to the store's location can write records that look like
        checkpoints. Each stored payload carries its serialization type; the saver
        reads only the types its own serializer writes (so stored data never picks
        ``pickle`` or an unencrypted format when the saver encrypts) and raises
        :class:`~lance_context.UnsafePayloadError` otherwise.

    Example:
        >>> from langgraph.graph import StateGraph                      # doctest: +SKIP
        >>> saver = LanceCheckpointSaver(uri="agent.lance")              # doctest: +SKIP
        >>> graph = builder.compile(checkpointer=saver)                  # doctest: +SKIP
        >>> graph.invoke(inputs, {"configurable": {"thread_id": "t1"}})  # doctest: +SKIP
    """

    store: ContextStore

    def __init__(
        self,
        *,
        store: ContextStore | None = None,
        uri: str | None = None,
        storage_options: Mapping[str, str] | None = None,
        serde: SerializerProtocol | None = None,
        allowed_msgpack_modules: Sequence[tuple[str, ...] | type] = (),
        cached_threads: int = 1024,
        cache_bytes: int = 64 * 2**20,
    ) -> None:
        if serde is not None and allowed_msgpack_modules:
            raise TypeError("allowed_msgpack_modules applies to the default serializer; configure your serde")
        super().__init__(serde=serde or strict_serde(allowed_msgpack_modules))
        self._reader = PayloadReader(self.serde)
        self._learned: set[tuple[str, str]] = set()
        if not isinstance(cached_threads, int) or cached_threads < 0:
            raise ValueError(f"cached_threads must be an int >= 0, got {cached_threads!r}")
        opening: dict[str, Any] = {} if uri is None else {"embedder": None}  # checkpoints are never embedded
        self.store = open_store(
            store, uri, who="LanceCheckpointSaver", storage_options=storage_options, **opening
        )
        self._cached_threads = cached_threads
        if not isinstance(cache_bytes, int) or cache_bytes < 0:
            raise ValueError(f"cache_bytes must be an int >= 0, got {cache_bytes!r}")
        self._cache_bytes = cache_bytes
        self._latest = LatestCheckpoints(self.store, cached_threads, cache_bytes)

    def __repr__(self) -> str:
        return f"LanceCheckpointSaver({self.store!r})"

    @property
    def _payloads(self) -> PayloadReader:
        """The reader for this saver's serializer (``with_allowlist`` clones swap the serializer)."""
        if self._reader.serde is not self.serde:
            self._reader = PayloadReader(self.serde)
        return self._reader

    def _learn(self, value: Any) -> None:
        """Let this saver read back the state types its own process writes (see "Reading untrusted data")."""
        if not isinstance(inner_serde(self.serde), JsonPlusSerializer):
            return  # another serializer has no allowlist to extend (LangGraph would warn each time)
        found = written_types(value) - self._learned
        if found:
            self._learned = self._learned | found  # a with_allowlist clone keeps its own
            self.serde = self.with_allowlist(found).serde

    # ------------------------------------------------------------------ versions
    def at_version(self, version_or_tag: int | str) -> LanceCheckpointSaver:
        """A read-only saver showing every thread as it was at a store version or tag."""
        return LanceCheckpointSaver(
            store=self.store.at_version(version_or_tag),
            serde=self.serde,
            cached_threads=self._cached_threads,
            cache_bytes=self._cache_bytes,
        )

    def branch(self, name: str, from_version: int | str | None = None) -> LanceCheckpointSaver:
        """Fork every thread onto a new store branch; return a saver writing there.

        Writes through the returned saver never show on this one, and vice versa.
        """
        return LanceCheckpointSaver(
            store=self.store.branch(name, from_version),
            serde=self.serde,
            cached_threads=self._cached_threads,
            cache_bytes=self._cache_bytes,
        )

    # ------------------------------------------------------------------ reads
    @serialized
    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        """The checkpoint named by ``config``, or the thread's latest one, with its pending writes."""
        conf = config["configurable"]
        key = (thread_key(conf["thread_id"]), str(conf.get("checkpoint_ns", "")))
        checkpoint_id = get_checkpoint_id(config)
        latest = self._latest.get(key)
        if checkpoint_id and (latest is None or latest.checkpoint_id != checkpoint_id):
            # one outline of the thread, then the checkpoint and its writes
            found = thread_checkpoints(
                self.store, key[0], ns=key[1], checkpoint_id=checkpoint_id, before_id=None, limit=1
            )
            return to_tuple(self._payloads, *found[0], config=config) if found else None
        if latest is None:
            latest = self._latest.load(key)
        if latest.checkpoint is None:
            return None
        # a read by id returns the caller's config as given (as LangGraph's savers do)
        asked = config if checkpoint_id else None
        return to_tuple(self._payloads, latest.checkpoint, list(latest.writes.values()), config=asked)

    def list(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> Iterator[CheckpointTuple]:
        """Checkpoints matching ``config``, metadata ``filter`` and ``before``, newest first."""
        yield from self._list(config, filter, before, limit)

    @serialized
    def _list(
        self,
        config: RunnableConfig | None,
        filter: Mapping[str, Any] | None,
        before: RunnableConfig | None,
        limit: int | None,
    ) -> builtins.list[CheckpointTuple]:
        if limit is not None and limit <= 0:
            return []
        found = list_checkpoints(self.store, config, filter, before, limit, self._payloads)
        return [to_tuple(self._payloads, record, writes) for record, writes in found]

    # ------------------------------------------------------------------ writes
    @serialized
    def put(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        """Store a checkpoint (idempotent: the same checkpoint id replaces itself)."""
        conf = config["configurable"]
        thread_id, ns = str(conf["thread_id"]), str(conf.get("checkpoint_ns", ""))
        self._learn(checkpoint["channel_values"])
        record = checkpoint_record(
            self.serde,
            thread_id=thread_id,
            checkpoint_ns=ns,
            checkpoint=checkpoint,
            metadata=get_checkpoint_metadata(config, metadata),
            parent_checkpoint_id=conf.get("checkpoint_id"),
        )
        key = (record.run_id, ns)
        before = self._latest.sync()
        stored = self._latest.knows_stored(key, checkpoint["id"])
        if stored is None:
            stored = bool(self.store.get_many([record.id], with_vectors=False))
        # a new checkpoint is appended (an upsert's merge costs ~10x more); one written again replaces
        # itself in place: as in LangGraph's savers, rewriting an older checkpoint never makes it the latest
        version = self.store.upsert(record, keep_order=True) if stored else self.store.add(record)
        self._latest.wrote_checkpoint(before, version, key, record)
        saved = {"thread_id": thread_id, "checkpoint_ns": ns, "checkpoint_id": checkpoint["id"]}
        return {"configurable": saved}

    @serialized
    def put_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        """Store a task's pending writes for a checkpoint, as LangGraph's savers do.

        A regular write already stored for the same task and index is kept; special
        writes (errors, interrupts...) replace the stored one.
        """
        conf = config["configurable"]
        thread_id, ns = str(conf["thread_id"]), str(conf.get("checkpoint_ns", ""))
        checkpoint_id = str(conf["checkpoint_id"])
        self._learn([value for _, value in writes])
        records = [
            write_record(
                self.serde,
                thread_id=thread_id,
                checkpoint_ns=ns,
                checkpoint_id=checkpoint_id,
                task_id=task_id,
                task_path=task_path,
                idx=write_idx(channel, position),
                channel=channel,
                value=value,
            )
            for position, (channel, value) in enumerate(writes)
        ]
        unique = list({r.id: r for r in records}.values())
        if not unique:
            return
        key = (thread_key(thread_id), ns)
        before = self._latest.sync()
        known = self._latest.writes_of(key, checkpoint_id)
        if known is not None:
            stored = {r.id for r in unique if r.id in known}
        else:
            stored = {r.id for r in self.store.get_many([r.id for r in unique], with_vectors=False)}
        fresh = [r for r in unique if r.metadata["idx"] < 0 or r.id not in stored]
        if not fresh:
            return
        write = self.store.upsert if any(r.id in stored for r in fresh) else self.store.add
        version = write(fresh)
        self._latest.wrote_writes(before, version, key, checkpoint_id, fresh)

    @serialized
    def delete_thread(self, thread_id: str) -> None:
        """Delete every checkpoint and write of a thread (older store versions keep them)."""
        self.store.delete(run_id=thread_key(thread_id))

    @serialized
    def delete_for_runs(self, run_ids: Sequence[str]) -> None:
        """Delete the checkpoints made by these runs (``metadata["run_id"]``) and their writes."""
        if not run_ids:
            return
        doomed = self.store.records(
            roles=CHECKPOINT_ROLE,
            where={
                "run_id": {"$prefix": THREAD_PREFIX},
                ("metadata", "checkpoint_metadata", "run_id"): {"$in": [str(r) for r in run_ids]},
            },
        )
        for start in range(0, len(doomed), _DELETE_CHUNK):
            chunk = doomed[start : start + _DELETE_CHUNK]
            self.store.delete(where={"$or": [key_clause(r) for r in chunk]})

    @serialized
    def copy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        """Copy every checkpoint and write of a thread, in order, to another thread."""
        source = self.store.records(thread_key(source_thread_id))
        if source:
            self.store.upsert([retarget(r, str(target_thread_id)) for r in source])

    @serialized
    def prune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        """Drop old checkpoints of these threads.

        ``"keep_latest"`` keeps the latest checkpoint of each namespace with its writes,
        plus the ancestors a ``DeltaChannel`` still needs to rebuild its value;
        ``"delete"`` removes the threads entirely.
        """
        if strategy not in ("keep_latest", "delete"):
            raise ValueError(f"unknown prune strategy {strategy!r}: use 'keep_latest' or 'delete'")
        keys = [thread_key(t) for t in thread_ids]
        if not keys:
            return
        if strategy == "delete":
            self.store.delete(where={"run_id": {"$in": keys}})
            return
        view, newest = newest_checkpoints(self.store, None, {"run_id": {"$in": keys}})
        checkpoints = view.fetch(newest(None)[::-1])
        kept = kept_checkpoints(self._payloads, checkpoints)
        if len(kept) == len(checkpoints):
            return
        keep_clause: dict[str, Any] = (
            {"$or": [key_clause(r) for r in kept]} if kept else {"run_id": {"$in": []}}
        )
        self.store.delete(where={"run_id": {"$in": keys}, "$not": keep_clause})

    def get_next_version(self, current: str | None, channel: None) -> str:
        """Channel versions as LangGraph's own savers make them: ``<counter>.<random>``."""
        if current is None:
            counter = 0
        elif isinstance(current, int):
            counter = current
        else:
            counter = int(current.split(".")[0])
        return f"{counter + 1:032}.{random.random():016}"

    # ------------------------------------------------------------------ async twins
    aget_tuple = async_twin(get_tuple)

    async def alist(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        """Async :meth:`list` (reads in a worker thread)."""
        found = await asyncio.to_thread(self._list, config, filter, before, limit)
        for item in found:
            yield item

    aput = async_twin(put)
    aput_writes = async_twin(put_writes)
    adelete_thread = async_twin(delete_thread)
    adelete_for_runs = async_twin(delete_for_runs)
    acopy_thread = async_twin(copy_thread)
    aprune = async_twin(prune)
