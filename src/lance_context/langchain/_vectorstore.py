"""LanceVectorStore: a LangChain vector store on a shared context store."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.vectorstores import VectorStore
from typing_extensions import Self

from lance_context import (
    DEFAULT_EMBEDDER,
    ContextRecord,
    ContextStore,
    Embedder,
    EmbedderMismatchError,
    LangChainEmbedder,
    SearchHit,
    as_embedder,
)
from lance_context.adapters import SearchMode, async_twin, embed_query, new_id, open_store

from ._documents import (
    DOCUMENT_ROLE,
    batch_inputs,
    check_kwargs,
    collection_namespace,
    listed,
    metadata_filter,
    record_id,
    relevance,
    to_document,
    to_record,
)
from ._retriever import LanceRetriever

__all__ = ["LanceVectorStore"]


class LanceVectorStore(VectorStore):
    """A LangChain vector store whose documents live in a lance-context store.

    Documents of one ``collection`` share a namespace in the store (many collections,
    chat histories and other adapters can share one store). Search is cosine, filters
    apply before the top-k, and every write is one commit.

    Args:
        embedding: LangChain embeddings. With ``uri`` they become the new store's
            embedder; with a shared ``store`` that has no embedder, documents and
            queries are embedded here. ``None``: the store's own embedder.
        store: A shared :class:`~lance_context.ContextStore`.
        uri: Where to open a store, when ``store`` is not given.
        collection: The document namespace (letters, digits, ``.``, ``_``, ``-``).
        storage_options: Object-store settings for ``uri``.

    Example:
        >>> vs = LanceVectorStore(uri="memory.lance", collection="docs")   # doctest: +SKIP
        >>> vs.add_texts(["Lance stores vectors"], metadatas=[{"src": "a"}])  # doctest: +SKIP
        >>> vs.as_retriever(search_type="hybrid").invoke("vector storage")  # doctest: +SKIP
    """

    def __init__(
        self,
        embedding: Embeddings | None = None,
        *,
        store: ContextStore | None = None,
        uri: str | None = None,
        collection: str = "default",
        storage_options: Mapping[str, str] | None = None,
    ) -> None:
        """Open (or share) a store and bind a document collection of it."""
        self.namespace = collection_namespace(collection)
        self.collection = collection
        opener = DEFAULT_EMBEDDER if embedding is None or store is not None else embedding
        self.store = open_store(
            store, uri, who="LanceVectorStore", storage_options=storage_options, embedder=opener
        )
        self._embedding = embedding
        self._own_embedder = self._bind_embedder(embedding)

    def _bind_embedder(self, embedding: object) -> Embedder | None:
        """The embedder used here (None: the store embeds documents and queries itself)."""
        store_embedder = self.store.embedder
        if embedding is None:
            if store_embedder is None:
                raise ValueError(
                    f"the store at {self.store.uri} has no embedder: pass embedding= "
                    "(the LangChain embeddings its vectors were made with)"
                )
            return None
        wrapped = as_embedder(embedding)
        if store_embedder is not None:
            if store_embedder.name != wrapped.name:
                raise EmbedderMismatchError(
                    f"the store embeds with {store_embedder.name!r} but embedding= is "
                    f"{wrapped.name!r}; pass the same embeddings, or none to use the store's"
                )
            return None
        held = self.store.dimension  # None: no vectors yet, the first ones set it
        if held is not None and held != wrapped.dimension:
            raise EmbedderMismatchError(
                f"embedding= makes {wrapped.dimension}-dimensional vectors but the store at "
                f"{self.store.uri} holds {self.store.dimension}-dimensional ones"
            )
        return wrapped

    def __repr__(self) -> str:
        return f"LanceVectorStore(collection={self.collection!r}, store={self.store!r})"

    @property
    def embeddings(self) -> Embeddings | None:
        """The LangChain embeddings in use, when there are any."""
        if self._embedding is not None:
            return self._embedding
        embedder = self.store.embedder
        return embedder.embeddings if isinstance(embedder, LangChainEmbedder) else None

    def _record_id(self, doc_id: str) -> str:
        return record_id(self.namespace, doc_id)

    def _document(self, record: ContextRecord) -> Document:
        return to_document(self.namespace, record)

    # ------------------------------------------------------------------ writes
    def add_texts(
        self,
        texts: Iterable[str],
        metadatas: list[dict[str, Any]] | None = None,
        *,
        ids: list[str] | None = None,
        **kwargs: Any,
    ) -> list[str]:
        """Embed and store texts in one commit; existing ids are replaced (upsert).

        Returns:
            The document ids, in the order of ``texts``; a ``None`` or empty id (or no
            ``ids``, or an empty list) gets a new one, as in ``InMemoryVectorStore``.
        """
        kwargs.pop("batch_size", None)  # LangChain's add_documents passes it; the whole batch is one commit
        check_kwargs(kwargs, "add_texts")
        text_list, metas, given = batch_inputs(texts, metadatas, ids)
        doc_ids = [i or new_id() for i in given]  # "" too: InMemoryVectorStore makes one
        latest: dict[str, int] = {doc_id: n for n, doc_id in enumerate(doc_ids)}  # last one wins
        keep = sorted(latest.values())
        vectors = self._embed_documents([text_list[n] for n in keep])
        records = [
            to_record(self.namespace, doc_ids[n], text_list[n], metas[n], vectors[row])
            for row, n in enumerate(keep)
        ]
        if any(i is not None for i in given):
            self.store.upsert(records)
        else:
            self.store.add(records)
        return doc_ids

    def add_documents(self, documents: list[Document], **kwargs: Any) -> list[str]:
        """Store documents (see :meth:`add_texts`) under ``ids=``, else their own ``id``.

        ``ids=None`` or ``ids=[]`` keeps the documents' ids, as ``InMemoryVectorStore``
        does (LangChain's base class would make up new ones and lose them).
        """
        docs = listed(documents, "documents")
        for doc in docs:
            if not isinstance(doc, Document):
                raise TypeError(f"documents must be langchain Document objects, got {type(doc).__name__}")
        ids = kwargs.pop("ids", None) or [doc.id for doc in docs]
        return self.add_texts([d.page_content for d in docs], [d.metadata for d in docs], ids=ids, **kwargs)

    def _embed_documents(self, texts: Sequence[str]) -> list[Any]:
        """Vectors made here: all of them with our own embedder, else only for empty texts.

        The store embeds records that have text; an empty ``page_content`` is still a
        document LangChain expects to find, so it is embedded explicitly.
        """
        embedder = self._own_embedder or self.store.embedder
        wanted = [n for n, text in enumerate(texts) if self._own_embedder is not None or not text]
        vectors: list[Any] = [None] * len(texts)
        if embedder is None or not wanted:
            return vectors
        matrix = np.asarray(embedder.embed_texts([texts[n] for n in wanted]), dtype=np.float32)
        for row, n in enumerate(wanted):
            vectors[n] = matrix[row]
        return vectors

    def delete(self, ids: list[str] | None = None, **kwargs: Any) -> bool | None:
        """Delete documents by id (missing ids are ignored); ``None`` empties the collection."""
        check_kwargs(kwargs, "delete")
        if ids is None:
            self.store.delete(run_id=self.namespace)
            return True
        wanted = [self._record_id(i) for i in listed(ids, "ids")]
        if wanted:
            self.store.delete(wanted, run_id=self.namespace)
        return True

    def get_by_ids(self, ids: Sequence[str], /) -> list[Document]:
        """One document per id asked, in that order; missing ids are left out.

        An id asked twice comes back twice, as in LangChain's ``InMemoryVectorStore``.
        """
        wanted = [self._record_id(i) for i in listed(ids, "ids")]
        found = {
            r.id: self._document(r)
            for r in self.store.get_many(list(dict.fromkeys(wanted)))
            if r.run_id == self.namespace and r.role == DOCUMENT_ROLE
        }
        seen: set[str] = set()
        docs = []
        for i in wanted:
            if i in found:  # a repeat is a copy: editing one document's metadata leaves the other
                docs.append(found[i] if i not in seen else found[i].model_copy(deep=True))
                seen.add(i)
        return docs

    # ------------------------------------------------------------------ search
    def _hits(
        self,
        query: str | Sequence[float],
        k: int,
        filter: Mapping[Any, Any] | None,
        *,
        mode: SearchMode = "vector",
        mmr: bool = False,
        fetch_k: int | None = None,
        lambda_mult: float = 0.5,
        record: bool | None = None,
    ) -> list[SearchHit]:
        if k == 0 and not isinstance(k, bool):
            return []  # as LangChain's own stores answer
        vector = None
        if isinstance(query, str) and mode != "text" and self._own_embedder is not None:
            vector = embed_query(self._own_embedder, query)  # embeddings the caller gave, not the store's
        return self.store.search(
            query,
            vector=vector,
            k=k,
            mode=mode,
            run_id=self.namespace,
            roles=DOCUMENT_ROLE,
            where=metadata_filter(filter),
            mmr=mmr,
            fetch_k=fetch_k,
            lambda_mult=lambda_mult,
            record=record,
        )

    def similarity_search(
        self, query: str, k: int = 4, filter: Mapping[Any, Any] | None = None, **kwargs: Any
    ) -> list[Document]:
        """The ``k`` documents most similar to ``query`` (cosine), filtered before the top-k.

        ``record=True`` writes the search to the store's search log (``store.replay``
        re-runs it); every search method of this class takes it.
        """
        return [doc for doc, _ in self.similarity_search_with_score(query, k, filter, **kwargs)]

    def similarity_search_with_score(  # type: ignore[override]
        self, query: str, k: int = 4, filter: Mapping[Any, Any] | None = None, **kwargs: Any
    ) -> list[tuple[Document, float]]:
        """Documents and their cosine similarity to ``query`` (larger is more similar)."""
        record = kwargs.pop("record", None)
        check_kwargs(kwargs, "similarity_search_with_score")
        return [(self._document(h.record), h.score) for h in self._hits(query, k, filter, record=record)]

    def similarity_search_with_score_by_vector(
        self, embedding: list[float], k: int = 4, filter: Mapping[Any, Any] | None = None, **kwargs: Any
    ) -> list[tuple[Document, float]]:
        """Documents nearest to a query vector, with their cosine similarity to it.

        Raises:
            EmbeddingError: The vector's dimension is not the store's.
        """
        record = kwargs.pop("record", None)
        check_kwargs(kwargs, "similarity_search_with_score_by_vector")
        return [(self._document(h.record), h.score) for h in self._hits(embedding, k, filter, record=record)]

    def similarity_search_by_vector(
        self, embedding: list[float], k: int = 4, filter: Mapping[Any, Any] | None = None, **kwargs: Any
    ) -> list[Document]:
        """The ``k`` documents nearest to a query vector, best first."""
        return [doc for doc, _ in self.similarity_search_with_score_by_vector(embedding, k, filter, **kwargs)]

    def _select_relevance_score_fn(self) -> Callable[[float], float]:
        """Cosine similarity to a [0, 1] relevance: ``1 - cosine distance``, clipped."""
        return relevance

    def max_marginal_relevance_search(
        self,
        query: str,
        k: int = 4,
        fetch_k: int = 20,
        lambda_mult: float = 0.5,
        filter: Mapping[Any, Any] | None = None,
        **kwargs: Any,
    ) -> list[Document]:
        """Relevant and diverse documents: MMR over the ``fetch_k`` nearest ones.

        As in LangChain's own stores, the ``k`` documents are chosen among the ``fetch_k``
        fetched: a ``fetch_k`` below ``k`` returns at most ``fetch_k`` documents.
        """
        record = kwargs.pop("record", None)
        check_kwargs(kwargs, "max_marginal_relevance_search")
        if all(isinstance(n, int) and not isinstance(n, bool) for n in (k, fetch_k)) and 0 <= fetch_k < k:
            k = fetch_k  # a negative fetch_k is left to the store, which refuses it
        hits = self._hits(query, k, filter, mmr=True, fetch_k=fetch_k, lambda_mult=lambda_mult, record=record)
        return [self._document(h.record) for h in hits]

    def max_marginal_relevance_search_by_vector(
        self,
        embedding: list[float],
        k: int = 4,
        fetch_k: int = 20,
        lambda_mult: float = 0.5,
        filter: Mapping[Any, Any] | None = None,
        **kwargs: Any,
    ) -> list[Document]:
        """MMR around a query vector."""
        search = self.max_marginal_relevance_search
        return search(embedding, k, fetch_k, lambda_mult, filter, **kwargs)  # type: ignore[arg-type]

    def hybrid_search_with_score(
        self,
        query: str,
        k: int = 4,
        filter: Mapping[Any, Any] | None = None,
        *,
        fetch_k: int | None = None,
        record: bool | None = None,
    ) -> list[tuple[Document, float]]:
        """Vector and BM25 full-text search fused by reciprocal rank (score: the fused rank score).

        Raises:
            SearchError: Neither this vector store's embeddings nor the store can embed the query.
        """
        hits = self._hits(query, k, filter, mode="hybrid", fetch_k=fetch_k, record=record)
        return [(self._document(h.record), h.score) for h in hits]

    def hybrid_search(
        self, query: str, k: int = 4, filter: Mapping[Any, Any] | None = None, **kwargs: Any
    ) -> list[Document]:
        """Documents found by :meth:`hybrid_search_with_score`, best first."""
        fetch_k, record = kwargs.pop("fetch_k", None), kwargs.pop("record", None)
        check_kwargs(kwargs, "hybrid_search")
        hits = self.hybrid_search_with_score(query, k, filter, fetch_k=fetch_k, record=record)
        return [doc for doc, _ in hits]

    def search(self, query: str, search_type: str, **kwargs: Any) -> list[Document]:
        """LangChain's ``search`` with ``hybrid`` as a fourth search type."""
        if search_type == "hybrid":
            return self.hybrid_search(query, **kwargs)
        return super().search(query, search_type, **kwargs)

    def as_retriever(self, **kwargs: Any) -> LanceRetriever:
        """A retriever: ``search_type`` similarity, mmr, similarity_score_threshold or hybrid."""
        tags = kwargs.pop("tags", None) or [*self._get_retriever_tags()]
        return LanceRetriever(vectorstore=self, tags=tags, **kwargs)

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_texts(
        cls,
        texts: list[str],
        embedding: Embeddings | None = None,
        metadatas: list[dict[str, Any]] | None = None,
        *,
        ids: list[str] | None = None,
        store: ContextStore | None = None,
        uri: str | None = None,
        collection: str = "default",
        storage_options: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> Self:
        """A vector store (see the class arguments) holding ``texts``."""
        kwargs.pop("batch_size", None)  # as add_texts: LangChain passes it through; one commit
        check_kwargs(kwargs, "from_texts")
        vs = cls(embedding, store=store, uri=uri, collection=collection, storage_options=storage_options)
        vs.add_texts(texts, metadatas, ids=ids)
        return vs

    # ------------------------------------------------------------------ async twins
    aadd_texts = async_twin(add_texts)
    aadd_documents = async_twin(add_documents)
    adelete = async_twin(delete)
    aget_by_ids = async_twin(get_by_ids)
    asimilarity_search = async_twin(similarity_search)
    asimilarity_search_with_score = async_twin(similarity_search_with_score)
    asimilarity_search_by_vector = async_twin(similarity_search_by_vector)
    asimilarity_search_with_score_by_vector = async_twin(similarity_search_with_score_by_vector)
    amax_marginal_relevance_search = async_twin(max_marginal_relevance_search)
    amax_marginal_relevance_search_by_vector = async_twin(max_marginal_relevance_search_by_vector)
    asearch = async_twin(search)
    ahybrid_search = async_twin(hybrid_search)
    ahybrid_search_with_score = async_twin(hybrid_search_with_score)
