"""LanceVectorStore: a LlamaIndex vector store on a context store.

Each node is one record of the collection's session,
``"llama_index.vectors:<namespace>:<collection>"`` (the adapter's namespace, split
further by the optional ``namespace`` option). The
record id is derived from the collection and the node id, so the same node id in two
collections never collides, and adding a node again replaces it. The node's text is
the record's text (embedded and indexed for BM25); the rest of the node is kept in the
record's metadata the way LlamaIndex stores do (``node_to_metadata_dict``), so node
metadata filters are plain metadata filters.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

from llama_index.core.base.embeddings.base import BaseEmbedding
from llama_index.core.bridge.pydantic import Field, PrivateAttr
from llama_index.core.schema import BaseNode, ImageNode, IndexNode, MetadataMode
from llama_index.core.vector_stores.types import (
    BasePydanticVectorStore,
    MetadataFilters,
    VectorStoreQuery,
    VectorStoreQueryMode,
    VectorStoreQueryResult,
)
from llama_index.core.vector_stores.utils import metadata_dict_to_node, node_to_metadata_dict

from lance_context import (
    ContextRecord,
    ContextStore,
    EmbeddingError,
    InvalidFilterError,
    InvalidRecordError,
    SearchError,
    SearchHit,
)
from lance_context.adapters import LLAMA_INDEX_VECTORS, RECORDED_EMBEDDER, async_twin

from ._common import check_key, id_list, mmr_scores, query_text, query_vector, resolve_store
from ._embedding import LanceEmbedding
from ._filters import filters_to_where

__all__ = ["DEFAULT_NODE_NAMESPACE", "LanceVectorStore"]

#: Default scope of collections inside the adapter's namespace.
DEFAULT_NODE_NAMESPACE = ""
NODE_ROLE = "node"
#: Node types a ``VectorStoreIndex`` lists in its index struct when the store keeps text.
_STRUCT_NODE_TYPES = [ImageNode.class_name(), IndexNode.class_name()]


class LanceVectorStore(BasePydanticVectorStore):
    """A LlamaIndex vector store (``stores_text=True``) in a lance-context store.

    Supports metadata filters applied before top-k, ``node_ids`` / ``doc_ids``
    restrictions and the query modes DEFAULT (cosine), TEXT_SEARCH (BM25), HYBRID
    (``alpha``-weighted rank fusion) and MMR. ``query(q, record=True)`` (from a retriever:
    ``index.as_retriever(vector_store_kwargs={"record": True})``) writes the search to
    the store's search log, for ``store.replay``.

    Example:
        >>> vector_store = LanceVectorStore(uri="docs.lance", embed_model=embed_model)  # doctest: +SKIP
        >>> index = VectorStoreIndex.from_vector_store(                                 # doctest: +SKIP
        ...     vector_store, embed_model=vector_store.embed_model)
        >>> index.as_retriever(similarity_top_k=2).retrieve("when do cherries bloom?")  # doctest: +SKIP
    """

    stores_text: bool = True
    flat_metadata: bool = False
    collection: str = Field(default="default", description="The collection (one run of the store).")
    namespace: str = Field(
        default=DEFAULT_NODE_NAMESPACE, description="Scope of collections in the LlamaIndex vector namespace."
    )

    _store: ContextStore = PrivateAttr()
    _embed_model: BaseEmbedding | None = PrivateAttr(default=None)
    _gone: set[str] = PrivateAttr(default_factory=set)  # record ids of image/index nodes deleted here

    def __init__(
        self,
        *,
        store: ContextStore | None = None,
        uri: str | None = None,
        collection: str = "default",
        embed_model: Any = None,
        dimension: int | None = None,
        storage_options: Mapping[str, str] | None = None,
        namespace: str = DEFAULT_NODE_NAMESPACE,
        flat_metadata: bool = False,
        **store_options: Any,
    ) -> None:
        """Use an open ``store``, or open one at ``uri``.

        Args:
            store: An open ContextStore.
            uri: Where to open (or create) the store.
            collection: The collection of nodes this vector store reads and writes.
            embed_model: Only when this store should embed nodes and queries itself (a
                LlamaIndex ``BaseEmbedding`` or a lance-context embedder; ``embedder=`` is
                taken as this too). In LlamaIndex
                the index owns the embedding model and hands the store vectors, so by
                default a new store opened at ``uri`` embeds nothing and takes its
                dimension from the first vectors it is given; an existing store keeps the
                embedder it was built with, and a shared ``store`` its own.
            dimension: The vector dimension of a new store, when known in advance.
            storage_options: Object-store settings when opening ``uri``.
            namespace: Run-id prefix of collections.
            flat_metadata: Refuse nodes whose metadata holds nested dicts or lists (as
                LlamaIndex stores that keep only flat metadata do).
            **store_options: Other ``ContextStore.open`` options.
        """
        super().__init__(  # type: ignore[call-arg]
            collection=check_key(collection, "collection"), namespace=namespace, flat_metadata=flat_metadata
        )
        if uri is not None and dimension is not None:
            store_options["dimension"] = dimension
        chosen: Any = RECORDED_EMBEDDER if embed_model is None else embed_model
        if "embedder" in store_options:  # the name the store and the other adapters use (None: no embedding)
            if embed_model is not None:
                raise TypeError("LanceVectorStore takes embed_model= or embedder=, not both")
            embed_model = chosen = store_options.pop("embedder")
        opening: dict[str, Any] = {"embedder": chosen} if uri is not None else {}
        self._store = resolve_store(
            store,
            uri,
            who="LanceVectorStore",
            storage_options=storage_options,
            open_options=store_options,
            **opening,
        )
        if isinstance(embed_model, BaseEmbedding):
            self._embed_model = embed_model

    @classmethod
    def class_name(cls) -> str:
        """The LlamaIndex class name."""
        return "LanceVectorStore"

    @property
    def client(self) -> ContextStore:
        """The ContextStore underneath."""
        return self._store

    @property
    def run_id(self) -> str:
        """The collection's run id in the store."""
        return LLAMA_INDEX_VECTORS.run_id(self.collection, scope=self.namespace)

    @property
    def embed_model(self) -> BaseEmbedding | None:
        """A LlamaIndex embedding model that embeds like the store (None without one)."""
        if self._embed_model is not None:
            return self._embed_model
        return None if self._store.embedder is None else LanceEmbedding(self._store.embedder)

    def at_version(self, version: int | str) -> LanceVectorStore:
        """A read-only vector store as the store was at a version or tag."""
        return LanceVectorStore(
            store=self._store.at_version(version),
            collection=self.collection,
            embed_model=self._embed_model,
            namespace=self.namespace,
            flat_metadata=self.flat_metadata,
        )

    # ------------------------------------------------------------------ translation
    def _record_id(self, node_id: str) -> str:
        check_key(node_id, "node id")
        digest = hashlib.sha256(json.dumps([self.run_id, node_id]).encode()).hexdigest()
        return digest[:32]

    def _to_record(self, node: BaseNode, held: int | None) -> ContextRecord:
        """The record of ``node``; ``held`` is the dimension its embedding must have (None: any)."""
        if not isinstance(node, BaseNode):
            raise InvalidRecordError(f"expected a llama_index node, got {type(node).__name__}")
        try:
            metadata = node_to_metadata_dict(node, remove_text=True, flat_metadata=self.flat_metadata)
        except (TypeError, ValueError) as exc:
            raise InvalidRecordError(f"node {node.node_id!r} cannot be stored: {exc}") from exc
        if node.embedding is not None and held is not None and len(node.embedding) != held:
            raise EmbeddingError(
                f"node {node.node_id!r}: embedding has {len(node.embedding)} dimensions, the store expects "
                f"{held} (use one store per embedding space, or reembed() to switch models)"
            )
        return ContextRecord(
            id=self._record_id(node.node_id),
            run_id=self.run_id,
            role=NODE_ROLE,
            text_payload=node.get_content(metadata_mode=MetadataMode.NONE) or None,
            embedding=None if node.embedding is None else node.embedding,  # type: ignore[arg-type]
            metadata=metadata,
        )

    @staticmethod
    def _to_node(record: ContextRecord) -> BaseNode:
        node = metadata_dict_to_node(record.metadata, text=record.text_payload or "")
        if record.embedding is not None:
            node.embedding = [float(x) for x in record.embedding]
        return node

    def _where(
        self,
        node_ids: Sequence[str] | None,
        doc_ids: Sequence[str] | None,
        filters: MetadataFilters | None,
        *,
        searching: bool = False,
    ) -> dict[str, Any] | None:
        parts: list[dict[str, Any]] = []
        if node_ids is not None:
            listed = {"id": {"$in": [self._record_id(n) for n in id_list(node_ids, "node_ids")]}}
            parts.append(self._search_restriction(listed) if searching else listed)
        if doc_ids is not None:
            parts.append({"metadata.ref_doc_id": {"$in": id_list(doc_ids, "doc_ids")}})
        translated = filters_to_where(filters)
        if translated is not None:
            parts.append(translated)
        return {"$and": parts} if parts else None

    def _search_restriction(self, listed: dict[str, Any]) -> dict[str, Any]:
        """A query's ``node_ids``, read as ``VectorStoreIndex.as_retriever()`` means them.

        On a store that keeps text, the index lists only its image and index nodes in
        ``node_ids`` (its index struct holds no text node), meaning "the nodes of this
        index", not "only these". So a list naming no stored text node but some stored
        image or index node keeps every text node searchable and restricts the image and
        index nodes to the list; any other list restricts the search to exactly its nodes.
        An image or index node this store deleted counts as stored: the index keeps listing it.
        """
        named = self._store.records(self.run_id, where=listed, with_vectors=False)
        kinds = {r.metadata.get("_node_type") for r in named}
        if not kinds and self._gone.intersection(listed["id"]["$in"]):
            kinds = set(_STRUCT_NODE_TYPES)
        if not kinds or not kinds <= set(_STRUCT_NODE_TYPES):
            return listed
        return {"$or": [listed, {"$not": {"metadata._node_type": {"$in": _STRUCT_NODE_TYPES}}}]}

    # ------------------------------------------------------------------ writes
    def add(self, nodes: Sequence[BaseNode], **kwargs: Any) -> list[str]:
        """Add (or replace) nodes in one commit; return their ids."""
        held = self._store.dimension
        if held is None:  # a new store takes the first vector's size: the batch must agree with it
            held = next((len(n.embedding) for n in nodes if isinstance(n, BaseNode) and n.embedding), None)
        # a repeated node: the last wins
        records = {r.id: r for r in (self._to_record(n, held) for n in nodes)}
        if records:
            self._store.upsert(list(records.values()))
            self._gone.difference_update(records)
        return [node.node_id for node in nodes]

    def delete(self, ref_doc_id: str, **delete_kwargs: Any) -> None:
        """Delete every node of a source document."""
        self._delete({"metadata.ref_doc_id": check_key(ref_doc_id, "ref_doc_id")})

    def delete_nodes(
        self,
        node_ids: list[str] | None = None,
        filters: MetadataFilters | None = None,
        **delete_kwargs: Any,
    ) -> None:
        """Delete nodes by id and/or filter (neither: every node, as in LlamaIndex)."""
        self._delete(self._where(node_ids, None, filters) or {})

    def clear(self) -> None:
        """Delete every node of the collection (a new version)."""
        self._delete({})

    def _delete(self, where: dict[str, Any]) -> None:
        """Delete the nodes ``where`` matches ({}: all), noting the image and index nodes among them."""
        struct = {"metadata._node_type": {"$in": _STRUCT_NODE_TYPES}}
        try:
            going = self._store.outline(self.run_id, where={"$and": [where, struct]}).table["id"].to_pylist()
        except InvalidFilterError:  # an encrypted store seals the node type: told apart once opened
            matched = self._store.records(self.run_id, where=where, with_vectors=False)
            going = [r.id for r in matched if r.metadata.get("_node_type") in _STRUCT_NODE_TYPES]
        self._store.delete(run_id=self.run_id, where=where)
        self._gone.update(going)

    # ------------------------------------------------------------------ reads
    def get_nodes(
        self, node_ids: list[str] | None = None, filters: MetadataFilters | None = None
    ) -> list[BaseNode]:
        """Nodes by id and/or filter (in the order of ``node_ids`` when given)."""
        records = self._store.records(self.run_id, where=self._where(node_ids, None, filters))
        nodes = [self._to_node(r) for r in records]
        if node_ids is not None:
            by_id = {n.node_id: n for n in nodes}
            nodes = [by_id[i] for i in dict.fromkeys(node_ids) if i in by_id]
        return nodes

    def query(self, query: VectorStoreQuery, **kwargs: Any) -> VectorStoreQueryResult:
        """Search the collection; filters apply before the top-k is cut.

        ``similarity_top_k`` of 0 or None ranks every node, a negative one returns none,
        as ``SimpleVectorStore`` does. ``node_ids`` naming only image and index nodes (what
        ``VectorStoreIndex.as_retriever()`` passes for them) leaves text nodes searchable:
        see ``_search_restriction``.
        """
        k = self._top_k(query.similarity_top_k)
        if k is None:
            return VectorStoreQueryResult(nodes=[], similarities=[], ids=[])
        where = self._where(query.node_ids or None, query.doc_ids or None, query.filters, searching=True)
        mode = VectorStoreQueryMode(query.mode)
        record: bool | None = kwargs.get("record")
        hits: list[SearchHit]
        if mode == VectorStoreQueryMode.TEXT_SEARCH:
            hits = self._store.search(
                query_text(query), k=k, mode="text", run_id=self.run_id, where=where, record=record
            )
        elif mode == VectorStoreQueryMode.HYBRID:
            hits = self._hybrid(query, query.hybrid_top_k or k, where, record)
        elif mode in (VectorStoreQueryMode.MMR, VectorStoreQueryMode.DEFAULT):
            text, vector = query_vector(query)
            options: dict[str, Any] = {}
            if mode == VectorStoreQueryMode.MMR:  # LlamaIndex's own MMR: against the hit chosen last
                threshold = (
                    query.mmr_threshold if query.mmr_threshold is not None else kwargs.get("mmr_threshold")
                )
                fetch = kwargs.get("mmr_prefetch_k") or k * int(kwargs.get("mmr_prefetch_factor", 4))
                lambda_mult = 0.5 if threshold is None else float(threshold)
                options = {"mmr": "last", "fetch_k": fetch, "lambda_mult": lambda_mult}
            hits = self._store.search(
                text, vector=vector, k=k, run_id=self.run_id, where=where, record=record, **options
            )
            if options:
                nodes = [self._to_node(h.record) for h in hits]
                scores = mmr_scores(hits, options["lambda_mult"])
                return VectorStoreQueryResult(
                    nodes=nodes, similarities=scores, ids=[n.node_id for n in nodes]
                )
        else:
            raise SearchError(
                f"query mode {mode.value!r} is not supported; use default, text_search, hybrid or mmr"
            )
        nodes = [self._to_node(h.record) for h in hits]
        return VectorStoreQueryResult(
            nodes=nodes, similarities=[float(h.score) for h in hits], ids=[n.node_id for n in nodes]
        )

    def _top_k(self, k: int | None) -> int | None:
        """How many hits a query asks for; None: none at all.

        ``SimpleVectorStore`` cuts nothing for a top-k of 0 or None (every node comes
        back, ranked) and keeps nothing for a negative one.
        """
        if k is None or (k == 0 and not isinstance(k, bool)):
            return self._store.count(self.run_id) or None
        if isinstance(k, (int, float)) and k < 0:
            return None
        return k

    def _hybrid(
        self, query: VectorStoreQuery, k: int, where: dict[str, Any] | None, record: bool | None
    ) -> list[SearchHit]:
        """Vector and BM25 ranks fused with weights ``alpha`` and ``1 - alpha`` (in the core)."""
        alpha = 0.5 if query.alpha is None else float(query.alpha)
        fetch = max(4 * k, query.sparse_top_k or 0)
        vector = None if query.query_embedding is None else list(query.query_embedding)
        text = query.query_str or ""
        if not text:
            only, vector = query_vector(query)
            return self._store.search(
                only, vector=vector, k=k, run_id=self.run_id, where=where, record=record
            )
        return self._store.search(
            text,
            vector=vector,
            k=k,
            mode="hybrid",
            alpha=alpha,
            fetch_k=fetch,
            run_id=self.run_id,
            where=where,
            record=record,
        )

    # ------------------------------------------------------------------ async twins
    async_add = async_twin(add)
    adelete = async_twin(delete)
    adelete_nodes = async_twin(delete_nodes)
    aclear = async_twin(clear)
    aget_nodes = async_twin(get_nodes)
    aquery = async_twin(query)
