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
from pydantic import model_validator

__all__ = ["LanceRetriever"]


class LanceRetriever(VectorStoreRetriever):
    """A ``VectorStoreRetriever`` that also accepts ``search_type="hybrid"``.

    Hybrid search runs the store's vector and BM25 full-text channels (both filtered
    before their top-k) and fuses them by reciprocal rank. ``k`` may be given to the
    constructor, in ``search_kwargs``, or per call (``invoke(query, k=2)``), and so may
    ``record=True``, which writes each search to the store's search log for
    ``store.replay``.

    Example:
        >>> retriever = LanceRetriever(vectorstore=vs, search_type="hybrid", k=3)  # doctest: +SKIP
        >>> retriever.invoke("how do I roll back a version?")                     # doctest: +SKIP
    """

    k: int | None = None
    """How many documents to return; the same as ``search_kwargs={"k": k}``."""

    record: bool | None = None
    """Record each search in the store's search log; None follows ``store.record_searches``."""

    allowed_search_types: ClassVar[Collection[str]] = (
        "similarity",
        "similarity_score_threshold",
        "mmr",
        "hybrid",
    )

    @model_validator(mode="before")
    @classmethod
    def _k_into_search_kwargs(cls, values: Any) -> Any:
        """Honour ``k=`` and ``record=`` by passing them with the other search arguments."""
        if isinstance(values, dict) and values.get("record") is not None:
            values = {
                **values,
                "search_kwargs": {**(values.get("search_kwargs") or {}), "record": values["record"]},
            }
        if not isinstance(values, dict) or values.get("k") is None:
            return values
        k = values["k"]
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ValueError(f"k must be a positive integer, got {k!r}")
        search_kwargs = dict(values.get("search_kwargs") or {})
        if search_kwargs.get("k", k) != k:
            raise ValueError(f"k={k} and search_kwargs={{'k': {search_kwargs['k']!r}}} disagree; give one")
        return {**values, "search_kwargs": {**search_kwargs, "k": k}}

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
