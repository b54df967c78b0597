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
    ``store.replay``. Arguments of the other search types in ``search_kwargs``
    (``fetch_k``, ``lambda_mult``, ``score_threshold``) are ignored, as LangChain's
    own stores ignore them, so ``search_type`` can be switched on its own.

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

    def _search(self, kwargs: dict[str, Any], prefix: str = "") -> tuple[Any, dict[str, Any]]:
        """The vector-store method of this search type and the arguments it takes.

        ``search_kwargs`` often hold every search type's arguments (``fetch_k`` for mmr,
        ``score_threshold`` for the threshold search) so that ``search_type`` can be
        switched alone; as LangChain's own stores ignore the other types' arguments,
        they are dropped here, while a misspelt argument still reaches the store's check.
        """
        name = prefix + _METHODS[self.search_type]
        method = getattr(self.vectorstore, name, None)
        if not callable(method):
            raise ValueError(
                f"search_type={self.search_type!r} needs a vector store with {name}(); "
                f"{type(self.vectorstore).__name__} has none"
            )
        unused = _OTHER_TYPES_ARGUMENTS[self.search_type]
        return method, {k: v for k, v in (self.search_kwargs | kwargs).items() if k not in unused}

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun, **kwargs: Any
    ) -> list[Document]:
        search, arguments = self._search(kwargs)
        found = search(query, **arguments)
        return _documents(found) if self.search_type == "similarity_score_threshold" else list(found)

    async def _aget_relevant_documents(
        self, query: str, *, run_manager: AsyncCallbackManagerForRetrieverRun, **kwargs: Any
    ) -> list[Document]:
        search, arguments = self._search(kwargs, prefix="a")
        found = await search(query, **arguments)
        return _documents(found) if self.search_type == "similarity_score_threshold" else list(found)


#: The vector-store method (``a`` + name for the async one) of each search type.
_METHODS: dict[str, str] = {
    "similarity": "similarity_search",
    "similarity_score_threshold": "similarity_search_with_relevance_scores",
    "mmr": "max_marginal_relevance_search",
    "hybrid": "hybrid_search",
}

#: Arguments of the other search types, which a search type ignores.
_OTHER_TYPES_ARGUMENTS: dict[str, frozenset[str]] = {
    "similarity": frozenset({"fetch_k", "lambda_mult", "score_threshold"}),
    "similarity_score_threshold": frozenset({"fetch_k", "lambda_mult"}),
    "mmr": frozenset({"score_threshold"}),
    "hybrid": frozenset({"lambda_mult", "score_threshold"}),
}


def _documents(scored: list[tuple[Document, float]]) -> list[Document]:
    return [doc for doc, _ in scored]
