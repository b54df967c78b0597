"""LanceRetriever: LangChain's vector-store retriever plus a ``hybrid`` search type."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any, ClassVar

from langchain_core.callbacks import (
    AsyncCallbackManagerForRetrieverRun,
    CallbackManagerForRetrieverRun,
)
from langchain_core.documents import Document
from langchain_core.vectorstores import VectorStoreRetriever

__all__ = ["LanceRetriever"]


class LanceRetriever(VectorStoreRetriever):
    """A ``VectorStoreRetriever`` that also accepts ``search_type="hybrid"``.

    Hybrid search runs the store's vector and BM25 full-text channels (both filtered
    before their top-k) and fuses them by reciprocal rank.

    Example:
        >>> retriever = vectorstore.as_retriever(search_type="hybrid")  # doctest: +SKIP
        >>> retriever.invoke("how do I roll back a version?")          # doctest: +SKIP
    """

    allowed_search_types: ClassVar[Collection[str]] = (
        "similarity",
        "similarity_score_threshold",
        "mmr",
        "hybrid",
    )

    def _hybrid(self, name: str) -> Any:
        method = getattr(self.vectorstore, name, None)
        if not callable(method):
            raise ValueError(
                f"search_type='hybrid' needs a vector store with {name}(); "
                f"{type(self.vectorstore).__name__} has none"
            )
        return method

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun, **kwargs: Any
    ) -> list[Document]:
        if self.search_type == "hybrid":
            docs: list[Document] = self._hybrid("hybrid_search")(query, **(self.search_kwargs | kwargs))
            return docs
        return super()._get_relevant_documents(query, run_manager=run_manager, **kwargs)

    async def _aget_relevant_documents(
        self, query: str, *, run_manager: AsyncCallbackManagerForRetrieverRun, **kwargs: Any
    ) -> list[Document]:
        if self.search_type == "hybrid":
            search = self._hybrid("ahybrid_search")
            docs: list[Document] = await search(query, **(self.search_kwargs | kwargs))
            return docs
        return await super()._aget_relevant_documents(query, run_manager=run_manager, **kwargs)
