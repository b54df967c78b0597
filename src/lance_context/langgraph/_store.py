"""LanceStore: LangGraph's long-term memory store (``BaseStore``) on a context store."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Iterable, Mapping, Sequence
from contextvars import ContextVar
from datetime import datetime, timezone
from typing import Any, Literal, get_args

from langchain_core.embeddings import Embeddings
from langgraph.store.base import (
    BaseStore,
    GetOp,
    IndexConfig,
    Item,
    ListNamespacesOp,
    Op,
    Result,
    SearchItem,
    SearchOp,
    TTLConfig,
    ensure_embeddings,
)

from lance_context import (
    DEFAULT_EMBEDDER,
    ContextRecord,
    ContextStore,
    EmbedderMismatchError,
    FusionOptions,
    InvalidFilterError,
)
from lance_context.adapters import open_store

from ._locking import store_lock
from ._store_filters import ValueFilter, matches, value_filter
from ._store_plan import BatchPlan, embed_plan, plan_batch
from ._store_records import (
    ITEM_ROLE,
    STORE_PREFIX,
    ItemTexts,
    Where,
    item_id,
    item_records,
    namespace_key,
    namespace_of,
    namespace_where,
    not_expired,
    refreshed,
    to_item,
    to_search_item,
)
from ._store_search import Hit, newest_items, ranked_items
from ._ttl import TTLSweeper

__all__ = ["LanceStore"]


def _now() -> datetime:
    return datetime.now(timezone.utc)


SearchMode = Literal["vector", "hybrid"]

#: ``record=`` of the ``search`` call in progress (None: ``store.record_searches`` decides).
_RECORD: ContextVar[bool | None] = ContextVar("lance_context_record", default=None)


class LanceStore(BaseStore):
    """LangGraph long-term memory (``BaseStore``) on a lance-context store.

    Items are records of the shared :class:`~lance_context.ContextStore`, one session
    per namespace, values kept as exact JSON. ``search(query=...)`` is semantic when the
    store embeds: through ``index={"dims", "embed", "fields"}`` as in LangGraph, or with
    the context store's own embedder (every item's whole value, ``fields=["$"]``).
    ``filter=`` takes ``$eq $ne $gt $gte $lt $lte`` and is applied before the top-k;
    as in ``InMemoryStore``, values compare as Python does (``True == 1 == 1.0``), a
    dict without operators matches an object holding those members (``{}``: any object),
    a list matches element by element, and ranges read numeric strings as numbers;
    ``search(..., query=..., record=True)`` writes the semantic search to the context
    store's search log (``store.replay`` re-runs it).
    Without ``query=``, ``search`` returns the most recently written items first (a TTL
    refresh on read only moves the expiry, as in ``SqliteStore``). With ``query=``, the
    pages walk the ranked items, then the unindexed ones, each once. TTLs (minutes)
    follow LangGraph's ``TTLConfig``; ``sweep_ttl()`` or ``start_ttl_sweeper()`` delete expired items.

    Args:
        store: An open store to share (with a checkpointer, other adapters...).
        uri: Where to open (or create) a store when ``store`` is not given.
        storage_options: Object-store settings for ``uri``.
        index: LangGraph index config. With ``embed``, this store computes the vectors
            (the context store must have ``dims``-dimensional vectors; a new one is
            created so). Without ``embed``, the context store's embedder is used.
        ttl: LangGraph TTL config (``default_ttl``, ``refresh_on_read``, ``omit_expired``,
            ``sweep_interval_minutes``).
        embedder: The embedder for a store opened from ``uri`` without ``index["embed"]``.
        search_mode: How ``query=`` ranks the indexed texts: ``"vector"`` (default) by
            cosine similarity, the scores ``InMemoryStore`` gives; ``"hybrid"`` by the
            store's hybrid search, BM25 and vectors fused (``fusion``, default
            :class:`~lance_context.FusionOptions`), which also finds an item by a rare
            word (a name, a code) that the embedding blurs; its scores are fused scores.
        fusion: How ``"hybrid"`` fuses the two channels.

    Example:
        >>> memory = LanceStore(uri="memory.lance", embedder=HashingEmbedder())  # doctest: +SKIP
        >>> memory.put(("users", "u1"), "likes", {"text": "likes green tea"})     # doctest: +SKIP
        >>> memory.search(("users", "u1"), query="favourite drink")[0].key        # doctest: +SKIP
        'likes'
    """

    supports_ttl = True

    def __init__(
        self,
        *,
        store: ContextStore | None = None,
        uri: str | None = None,
        storage_options: Mapping[str, str] | None = None,
        index: IndexConfig | None = None,
        ttl: TTLConfig | None = None,
        embedder: Any = DEFAULT_EMBEDDER,
        search_mode: SearchMode = "vector",
        fusion: FusionOptions | None = None,
    ) -> None:
        if search_mode not in get_args(SearchMode):
            raise ValueError(f"search_mode must be 'vector' or 'hybrid', got {search_mode!r}")
        if fusion is not None and not isinstance(fusion, FusionOptions):
            raise ValueError(f"fusion takes a FusionOptions, got {type(fusion).__name__}")
        if fusion is not None and search_mode != "hybrid":
            raise ValueError("fusion applies to search_mode='hybrid' only")
        self.search_mode: SearchMode = search_mode
        self.fusion = (fusion or FusionOptions()) if search_mode == "hybrid" else None
        self.index_config: dict[str, Any] | None = dict(index) if index else None
        self.ttl_config = ttl
        self.embeddings: Embeddings | None = None
        dims = None
        if index and index.get("embed") is not None:
            self.embeddings = ensure_embeddings(index["embed"])
            given = index.get("dims")
            dims = int(given) if given else len(self.embeddings.embed_query("dimension probe"))
        # with an index config that embeds, the store holds its vectors and embeds nothing itself
        opening: dict[str, Any] = {"embedder": None if self.embeddings is not None and uri else embedder}
        if store is None:
            opening["dimension"] = dims
        store = open_store(store, uri, who="LanceStore", storage_options=storage_options, **opening)
        if dims is not None and store.dimension != dims:
            raise EmbedderMismatchError(
                f"index dims={dims} but the context store holds {store.dimension}-dimensional vectors; "
                "use a store made for this index or drop 'embed' to use the store's embedder"
            )
        self.store = store
        self.dims = dims
        fields = (self.index_config or {}).get("fields") or ["$"]
        self.fields: list[str] = list(fields)
        self._sweeper = TTLSweeper(self)

    def __repr__(self) -> str:
        return f"LanceStore({self.store!r})"

    @property
    def semantic(self) -> bool:
        """Whether items are embedded and ``query=`` ranks by similarity."""
        return self.embeddings is not None or self.store.embedder is not None

    def at_version(self, version_or_tag: int | str) -> LanceStore:
        """A read-only view of every namespace as it was at a store version or tag."""
        view = LanceStore.__new__(LanceStore)
        view.__dict__.update(self.__dict__)
        view.store = self.store.at_version(version_or_tag)
        view._sweeper = TTLSweeper(view)
        return view

    def search(
        self,
        namespace_prefix: tuple[str, ...],
        /,
        *,
        query: str | None = None,
        filter: dict[str, Any] | None = None,
        limit: int = 10,
        offset: int = 0,
        refresh_ttl: bool | None = None,
        record: bool | None = None,
    ) -> list[SearchItem]:
        """LangGraph's ``search``; ``record=True`` logs a semantic search for ``store.replay``."""
        token = _RECORD.set(record)
        try:
            return super().search(
                namespace_prefix,
                query=query,
                filter=filter,
                limit=limit,
                offset=offset,
                refresh_ttl=refresh_ttl,
            )
        finally:
            _RECORD.reset(token)

    async def asearch(
        self,
        namespace_prefix: tuple[str, ...],
        /,
        *,
        query: str | None = None,
        filter: dict[str, Any] | None = None,
        limit: int = 10,
        offset: int = 0,
        refresh_ttl: bool | None = None,
        record: bool | None = None,
    ) -> list[SearchItem]:
        """Async :meth:`search` (the context reaches the worker thread that runs the batch)."""
        token = _RECORD.set(record)
        try:
            return await super().asearch(
                namespace_prefix,
                query=query,
                filter=filter,
                limit=limit,
                offset=offset,
                refresh_ttl=refresh_ttl,
            )
        finally:
            _RECORD.reset(token)

    # ------------------------------------------------------------------ batches
    def batch(self, ops: Iterable[Op]) -> list[Result]:
        """Run get, search, put and list-namespaces ops; reads see the state before the puts."""
        op_list = list(ops)
        plan = plan_batch(op_list, semantic=self.semantic, fields=self.fields)
        if self.embeddings is not None and self.dims is not None:
            embed_plan(plan, self.embeddings.embed_documents, self.embeddings.embed_query, self.dims)
        return self._run(op_list, plan)

    async def abatch(self, ops: Iterable[Op]) -> list[Result]:
        """Async :meth:`batch`: embeds with the async embedding methods, then runs in a thread."""
        op_list = list(ops)
        plan = plan_batch(op_list, semantic=self.semantic, fields=self.fields)
        if self.embeddings is not None and self.dims is not None:
            texts = [t for entry in plan.texts.values() for _, t in entry.texts]
            docs = await self.embeddings.aembed_documents(texts) if texts else []
            queries = {q: await self.embeddings.aembed_query(q) for q in plan.queries}
            embed_plan(plan, lambda _: docs, queries.__getitem__, self.dims)
        return await asyncio.to_thread(self._run, op_list, plan)

    def _run(self, ops: Sequence[Op], plan: BatchPlan) -> list[Result]:
        with store_lock(self.store):
            return self._run_locked(ops, plan)

    def _run_locked(self, ops: Sequence[Op], plan: BatchPlan) -> list[Result]:
        results: list[Result] = [None] * len(ops)
        gets = [(i, op) for i, op in enumerate(ops) if isinstance(op, GetOp)]
        if gets:
            for (i, _), item in zip(gets, self._get([op for _, op in gets]), strict=True):
                results[i] = item
        for i, op in enumerate(ops):
            if isinstance(op, SearchOp):
                results[i] = self._search(op, plan)
            elif isinstance(op, ListNamespacesOp):
                results[i] = self._list_namespaces(op)
        if plan.puts:
            self._put(plan)
        return results

    # ------------------------------------------------------------------ reads
    def _live(self) -> list[Where]:
        omit = bool(self.ttl_config and self.ttl_config.get("omit_expired"))
        return [not_expired(_now())] if omit else []

    def _get(self, ops: Sequence[GetOp]) -> list[Item | None]:
        ids = [item_id(op.namespace, str(op.key)) for op in ops]
        found = {r.id: r for r in self.store.get_many(ids)}
        if self._live():
            now = _now().timestamp()
            found = {k: r for k, r in found.items() if (r.metadata.get("expires_at") or now + 1) > now}
        self._refresh([found[i] for i, op in zip(ids, ops, strict=True) if op.refresh_ttl and i in found])
        return [to_item(found[i]) if i in found else None for i in ids]

    def _search(self, op: SearchOp, plan: BatchPlan) -> list[SearchItem]:
        values = value_filter(op.filter)
        try:
            hits = self._found(op, plan, values)
        except InvalidFilterError:
            if not values.clauses:
                raise
            hits = self._found(op, plan, values.in_python())  # values an encrypted store seals
        if op.refresh_ttl:
            self._refresh([r for r, _ in hits])
        return [to_search_item(r, s) for r, s in hits]

    def _found(self, op: SearchOp, plan: BatchPlan, values: ValueFilter) -> list[Hit]:
        clauses = [namespace_where(op.namespace_prefix), *values.clauses, *self._live()]
        if op.query and self.semantic:
            record = _RECORD.get()
            logs = self.store.record_searches if record is None else record
            vector = plan.queries.get(op.query)
            return ranked_items(self.store, op, vector, clauses, values, logs, self.fusion)
        return newest_items(self.store, op, clauses, values)

    def _list_namespaces(self, op: ListNamespacesOp) -> list[tuple[str, ...]]:
        if self._live():
            live = self.store.records(roles=ITEM_ROLE, where={"$and": [namespace_where(()), *self._live()]})
            run_ids = {r.run_id for r in live}
        else:
            run_ids = {r for r in self.store.run_ids() if r.startswith(STORE_PREFIX)}
        namespaces = [namespace_of(r) for r in run_ids]
        for condition in op.match_conditions or ():
            namespaces = [ns for ns in namespaces if matches(condition, ns)]
        if op.max_depth is not None:
            namespaces = [ns[: op.max_depth] for ns in namespaces]
        return sorted(set(namespaces))[op.offset : op.offset + op.limit]

    def _refresh(self, records: Sequence[ContextRecord]) -> None:
        """Restart the TTL of the items these records belong to (all their records).

        Called for reads whose op asks for it (``refresh_ttl``; LangGraph derives the
        default from ``TTLConfig.refresh_on_read``). A read-only view reads without it.
        """
        if self.store.read_only:
            return
        items = {(r.run_id, r.metadata["key"]) for r in records if r.metadata.get("ttl_minutes") is not None}
        if not items:
            return
        everything = self.store.records(
            where={"$or": [{"run_id": run_id, ("metadata", "key"): key} for run_id, key in sorted(items)]}
        )
        now = _now()
        # only the expiry changes, on the records as stored when the commit is made: a put of
        # one of these items by another process meanwhile is refreshed, never undone
        self.store.update_metadata([r.id for r in everything], functools.partial(refreshed, now=now))

    # ------------------------------------------------------------------ writes
    def _put(self, plan: BatchPlan) -> None:
        # One commit: every record of the written items, and the deletion of their other
        # records (texts no longer indexed, deleted items). A concurrent put of one item in
        # another process then leaves one writer's records, never a mix of both; the core
        # refuses a bad record (too deep, too large) before writing anything.
        writes = {ref: op for ref, op in plan.puts.items() if op.value is not None}
        before = {r.id: r for r in self.store.get_many([item_id(*ref) for ref in writes])} if writes else {}
        now = _now()
        records: list[ContextRecord] = []
        for (ns, key), op in writes.items():
            old = before.get(item_id(ns, key))
            assert op.value is not None
            records.extend(
                item_records(
                    ns,
                    key,
                    op.value,
                    created_at=now if old is None else old.created_at,
                    now=now,
                    ttl=op.ttl,
                    indexed=plan.texts.get((ns, key), ItemTexts()),
                )
            )
        self.store.upsert(
            records, replace_where={"$or": [self._item_where(ns, key) for ns, key in plan.puts]}
        )

    @staticmethod
    def _item_where(namespace: Sequence[str], key: str) -> Where:
        return {"run_id": namespace_key(namespace), ("metadata", "key"): key}

    # ------------------------------------------------------------------ TTL
    def sweep_ttl(self) -> int:
        """Delete every item whose TTL has run out; return how many items were deleted."""
        with store_lock(self.store):
            return self._sweep()

    def _sweep(self) -> int:
        expired = {
            "$and": [
                namespace_where(()),
                {("metadata", "expires_at"): {"$lte": _now().timestamp()}},
            ]
        }
        count = self.store.count(roles=ITEM_ROLE, where=expired)
        if count:
            self.store.delete(where=expired)
        return count

    def start_ttl_sweeper(self, sweep_interval_minutes: float | None = None) -> Any:
        """Sweep expired items in a background thread; return a future that stops it when cancelled."""
        return self._sweeper.start(sweep_interval_minutes)

    def stop_ttl_sweeper(self, timeout: float | None = None) -> bool:
        """Stop the background sweeper; False if it did not stop within ``timeout`` seconds."""
        return self._sweeper.stop(timeout)
