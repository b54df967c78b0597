"""Rerankers: any reranking object a user already has, as one callable.

A reranker reorders the best fused candidates of :meth:`ContextStore.recall` (or an
adapter's recall) by reading query and text together, as a cross-encoder does. Any of
these is accepted, and :func:`as_reranker` turns it into ``(query, texts) -> scores``:

- a plain callable ``(query, texts) -> scores`` (larger is better; ``None`` or
  ``-inf`` drops a candidate);
- a sentence-transformers ``CrossEncoder`` (anything with ``predict(pairs)``);
- a LangChain document compressor (``compress_documents``), such as
  ``CrossEncoderReranker``: documents it drops are dropped;
- a LlamaIndex node postprocessor (``postprocess_nodes``), such as
  ``SentenceTransformerRerank``: nodes it drops are dropped.

The framework translations import their framework only when such an object is given.

Example:
    >>> rerank = as_reranker(lambda query, texts: [float(query in t) for t in texts])
    >>> rerank("tea", ["coffee", "green tea"])
    [0.0, 1.0]
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from ._errors import SearchError

__all__ = ["Reranker", "as_reranker", "rerank_order"]

Reranker = Callable[[str, Sequence[str]], Sequence[float | None]]
"""``(query, texts) -> one score per text`` (larger is better; None drops the text)."""


def as_reranker(reranker: object) -> Reranker:
    """The ``(query, texts) -> scores`` form of a callable, cross-encoder, compressor or postprocessor.

    Raises:
        TypeError: The object is none of those.
    """
    if hasattr(reranker, "compress_documents"):
        return lambda query, texts: _by_position(_compressed(reranker, query, texts), len(texts))
    if hasattr(reranker, "postprocess_nodes"):
        return lambda query, texts: _by_position(_postprocessed(reranker, query, texts), len(texts))
    predict = getattr(reranker, "predict", None)
    if callable(predict):
        return lambda query, texts: [float(s) for s in predict([(query, t) for t in texts])]
    if callable(reranker):
        return reranker  # type: ignore[return-value]
    raise TypeError(
        f"a reranker must be a callable (query, texts) -> scores, a CrossEncoder, a LangChain "
        f"document compressor or a LlamaIndex node postprocessor, got {type(reranker).__name__}"
    )


def rerank_order(reranker: Reranker, query: str, texts: Sequence[str]) -> list[int]:
    """Positions of ``texts`` best first by the reranker's scores, dropped ones left out.

    Ties keep the incoming order.

    Raises:
        SearchError: The reranker returned a different number of scores.
    """
    scores = list(reranker(query, list(texts)))
    if len(scores) != len(texts):
        raise SearchError(f"the reranker returned {len(scores)} scores for {len(texts)} candidates")
    kept = [(i, float(s)) for i, s in enumerate(scores) if s is not None]
    kept = [(i, s) for i, s in kept if not math.isnan(s) and s != -math.inf]  # numpy scalars too
    return [i for i, _ in sorted(kept, key=lambda pair: (-pair[1], pair[0]))]


def _by_position(kept: Sequence[int], n: int) -> list[float | None]:
    """Scores that reproduce the order ``kept`` (positions best first); the rest dropped."""
    scores: list[float | None] = [None] * n
    for rank, position in enumerate(kept):
        scores[position] = float(len(kept) - rank)
    return scores


def _compressed(compressor: Any, query: str, texts: Sequence[str]) -> list[int]:
    from langchain_core.documents import Document

    documents = [Document(page_content=t, metadata={"_position": i}) for i, t in enumerate(texts)]
    return [d.metadata["_position"] for d in compressor.compress_documents(documents, query)]


def _postprocessed(postprocessor: Any, query: str, texts: Sequence[str]) -> list[int]:
    from llama_index.core.schema import NodeWithScore, TextNode

    nodes = [NodeWithScore(node=TextNode(text=t, id_=str(i)), score=0.0) for i, t in enumerate(texts)]
    kept = postprocessor.postprocess_nodes(nodes, query_str=query)
    return [int(n.node.node_id) for n in kept]
