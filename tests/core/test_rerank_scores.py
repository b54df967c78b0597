"""Reranker scores that are NaN or infinite, and options objects as dict keys.

A NaN score is no opinion: the candidate ranks after every candidate with a real
score, in the order recall had before reranking, and is never dropped. ``inf`` ranks
first; ``-inf``, as None, drops a candidate. Options that compare equal hash equal.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pytest
from langchain_core.callbacks import Callbacks
from langchain_core.documents import BaseDocumentCompressor, Document
from llama_index.core.postprocessor import SentenceTransformerRerank
from llama_index.core.schema import NodeWithScore, TextNode

from lance_context import ContextStore, FusionOptions, RecallOptions

from .conftest import TURNS

QUERY = "Oslo weather"
Scores = Callable[[str], float]


def _recall(store: ContextStore, reranker: Any = None) -> list[str]:
    options = RecallOptions(reranker=reranker, before=0, after=0)
    return [r.match.id for r in store.recall(QUERY, run_id="chat", k=len(TURNS), options=options)]


def _turn(text: str) -> str:
    return f"t{TURNS.index(text)}"


def _callable(score: Scores) -> Any:
    return lambda query, texts: [score(t) for t in texts]


def _numpy(score: Scores) -> Any:
    return lambda query, texts: np.array([score(t) for t in texts], dtype=np.float32)


class _Predicts:
    """Anything with ``predict(pairs)``, as a sentence-transformers CrossEncoder."""

    def __init__(self, score: Scores) -> None:
        self.score = score

    def predict(self, pairs: list[tuple[str, str]]) -> Any:
        return np.array([self.score(text) for _, text in pairs])


def _sentence_transformer_rerank(score: Scores) -> SentenceTransformerRerank:
    """LlamaIndex's own cross-encoder reranker, around a model that scores with ``score``."""
    rerank = SentenceTransformerRerank.model_construct(
        top_n=len(TURNS), model="scores", device="cpu", keep_retrieval_score=False
    )
    rerank._model = _Predicts(score)
    return rerank


class _RelevanceScores(BaseDocumentCompressor):
    """A LangChain compressor that copies documents with a ``relevance_score``, best first.

    This is what hosted rerankers (Cohere, Jina, Voyage) return.
    """

    score: Callable[[str], float]

    def compress_documents(
        self, documents: Sequence[Document], query: str, callbacks: Callbacks | None = None
    ) -> Sequence[Document]:
        copies = [
            Document(
                page_content=d.page_content,
                metadata={**d.metadata, "relevance_score": self.score(d.page_content)},
            )
            for d in documents
        ]
        return sorted(copies, key=lambda d: d.metadata["relevance_score"], reverse=True)


KINDS: list[Callable[[Scores], Any]] = [
    _callable,
    _numpy,
    _Predicts,
    _sentence_transformer_rerank,
    lambda score: _RelevanceScores(score=score),
]
KIND_IDS = ["callable", "numpy", "predict", "SentenceTransformerRerank", "relevance_score"]


@pytest.mark.parametrize("kind", KINDS, ids=KIND_IDS)
def test_all_nan_scores_keep_the_order_before_reranking(turns_store: ContextStore, kind: Any) -> None:
    plain = _recall(turns_store)
    assert sorted(plain) == [f"t{i}" for i in range(len(TURNS))]
    assert _recall(turns_store, kind(lambda text: math.nan)) == plain


@pytest.mark.parametrize("kind", KINDS, ids=KIND_IDS)
def test_nan_scores_rank_after_the_real_ones_in_their_earlier_order(
    turns_store: ContextStore, kind: Any
) -> None:
    plain = _recall(turns_store)
    real = {"she moved to Oslo in 2019": 2.0, "my sister lives in Oslo": 1.0}

    found = _recall(turns_store, kind(lambda text: real.get(text, math.nan)))

    no_opinion = [key for key in plain if key not in ("t3", "t2")]
    assert found == ["t3", "t2", *no_opinion]


@pytest.mark.parametrize("kind", [_callable, _numpy, _Predicts], ids=["callable", "numpy", "predict"])
def test_inf_sorts_first_and_minus_inf_drops(turns_store: ContextStore, kind: Any) -> None:
    scores = dict(zip(TURNS, [-math.inf, math.nan, math.inf, 0.5, -1e30], strict=True))

    assert _recall(turns_store, kind(scores.__getitem__)) == ["t2", "t3", "t4", "t1"]


def test_nan_from_llama_index_ranks_as_its_reranker_ranks_the_rest(turns_store: ContextStore) -> None:
    """Differential: the real scores keep the order LlamaIndex gives them without the NaN ones."""
    plain = _recall(turns_store)
    text_of = {_turn(t): t for t in TURNS}
    scores = dict(zip(TURNS, [3.0, math.nan, 1.0, math.nan, 2.0], strict=True))
    real = [key for key in plain if not math.isnan(scores[text_of[key]])]
    nodes = [NodeWithScore(node=TextNode(text=text_of[key], id_=key)) for key in real]
    reference = _sentence_transformer_rerank(scores.__getitem__).postprocess_nodes(nodes, query_str=QUERY)

    found = _recall(turns_store, _sentence_transformer_rerank(scores.__getitem__))

    assert found == [n.node.node_id for n in reference] + [k for k in plain if k not in real]
    assert found[:3] == ["t0", "t4", "t2"]


# ---------------------------------------------------------------- options as dict keys


def test_equal_fusion_options_hash_equal_and_work_as_keys() -> None:
    a = FusionOptions()
    b = FusionOptions(weights={"vector": 0.2, "text": 0.8})
    assert a == b and hash(a) == hash(b)
    assert len({a, b, FusionOptions(weights={"text": 1.0})}) == 2
    assert {a: "default"}[b] == "default"
    assert hash(RecallOptions()) == hash(RecallOptions(fusion=b))
    assert {RecallOptions(k=3): 1}[RecallOptions(k=3)] == 1


def test_fusion_weights_stay_read_only_and_print_as_before() -> None:
    given = {"text": 0.5, "vector": 1}
    options = FusionOptions(weights=given)
    given["text"] = 9.0
    assert options.weights == {"text": 0.5, "vector": 1.0}
    with pytest.raises(TypeError):
        options.weights["text"] = 2.0  # type: ignore[index]
    assert repr(options) == (
        "FusionOptions(method='zscore', weights={'text': 0.5, 'vector': 1.0}, depth=100, "
        "rrf_k=60, next_turn_weight=0.3)"
    )
