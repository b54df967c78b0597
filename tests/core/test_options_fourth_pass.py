"""Option and policy objects refuse bad values when built, naming the field and what it accepts."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from langchain_core.callbacks import Callbacks
from langchain_core.documents import BaseDocumentCompressor, Document
from llama_index.core.postprocessor.types import BaseNodePostprocessor
from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode

from lance_context import (
    CachePolicy,
    CompactionPolicy,
    ContextStore,
    FusionOptions,
    IndexPolicy,
    RecallOptions,
    SearchError,
    StoreLimits,
)
from lance_context._fusion import fuse
from lance_context._index_text import ChatIndexing, IndexTextOptions

README = Path(__file__).resolve().parents[2] / "README.md"

# (class, field, a bad value, what the error must say)
BAD = [
    (CompactionPolicy, "enabled", "false", "CompactionPolicy.enabled must be True or False"),
    (CompactionPolicy, "enabled", None, "CompactionPolicy.enabled must be True or False"),
    (CompactionPolicy, "fanout", "8", "CompactionPolicy.fanout must be an integer of at least 2"),
    (CompactionPolicy, "fanout", 3.5, "CompactionPolicy.fanout must be an integer of at least 2"),
    (CompactionPolicy, "fanout", True, "CompactionPolicy.fanout must be an integer of at least 2"),
    (CompactionPolicy, "fanout", math.nan, "CompactionPolicy.fanout must be an integer"),
    (CompactionPolicy, "max_rows_per_fragment", None, "CompactionPolicy.max_rows_per_fragment"),
    (CompactionPolicy, "max_rows_per_fragment", math.inf, "CompactionPolicy.max_rows_per_fragment"),
    (
        IndexPolicy,
        "refresh_unindexed_rows",
        -1,
        "IndexPolicy.refresh_unindexed_rows must be an integer of at least 1",
    ),
    (IndexPolicy, "refresh_unindexed_rows", "4096", "IndexPolicy.refresh_unindexed_rows"),
    (
        IndexPolicy,
        "refresh_unindexed_share",
        "0.1",
        "IndexPolicy.refresh_unindexed_share must be a finite number from 0 to 1",
    ),
    (IndexPolicy, "refresh_unindexed_share", None, "IndexPolicy.refresh_unindexed_share"),
    (IndexPolicy, "refresh_unindexed_share", math.nan, "IndexPolicy.refresh_unindexed_share"),
    (IndexPolicy, "refresh_unindexed_share", True, "IndexPolicy.refresh_unindexed_share"),
    (
        IndexPolicy,
        "scalar_refresh_rows",
        0,
        "IndexPolicy.scalar_refresh_rows must be an integer of at least 1",
    ),
    (IndexPolicy, "scalar_refresh_rows", 2.5, "IndexPolicy.scalar_refresh_rows"),
    (IndexPolicy, "vector_index_min_rows", None, "IndexPolicy.vector_index_min_rows"),
    (IndexPolicy, "vector_index_min_rows", 10**30, "IndexPolicy.vector_index_min_rows"),
    (
        IndexPolicy,
        "vector_index_type",
        "HNSW",
        "IndexPolicy.vector_index_type must be one of IVF_SQ, IVF_FLAT",
    ),
    (IndexPolicy, "vector_index_type", "", "IndexPolicy.vector_index_type"),
    (IndexPolicy, "vector_index_type", None, "IndexPolicy.vector_index_type"),
    (
        IndexPolicy,
        "flat_search_max_rows",
        -1,
        "IndexPolicy.flat_search_max_rows must be an integer of at least 0",
    ),
    (IndexPolicy, "nprobes", 0, "IndexPolicy.nprobes must be an integer of at least 1"),
    (IndexPolicy, "nprobes", "10", "IndexPolicy.nprobes"),
    (IndexPolicy, "refine_factor", 0, "IndexPolicy.refine_factor must be an integer of at least 1"),
    (IndexPolicy, "refine_factor", 1.5, "IndexPolicy.refine_factor"),
    (StoreLimits, "max_record_bytes", 0, "StoreLimits.max_record_bytes must be an integer of at least 1"),
    (StoreLimits, "max_record_bytes", "64MB", "StoreLimits.max_record_bytes"),
    (StoreLimits, "max_record_bytes", math.inf, "StoreLimits.max_record_bytes"),
    (StoreLimits, "max_json_depth", -5, "StoreLimits.max_json_depth"),
    (StoreLimits, "max_json_depth", None, "StoreLimits.max_json_depth"),
    (StoreLimits, "max_image_pixels", 1e6, "StoreLimits.max_image_pixels"),
    (CachePolicy, "metadata_bytes", -1, "CachePolicy.metadata_bytes must be an integer of at least 0"),
    (CachePolicy, "metadata_bytes", "32MB", "CachePolicy.metadata_bytes"),
    (CachePolicy, "metadata_bytes", 2**64, "CachePolicy.metadata_bytes"),
    (CachePolicy, "tail_sessions", None, "CachePolicy.tail_sessions"),
    (CachePolicy, "tail_sessions", 1.5, "CachePolicy.tail_sessions"),
    (CachePolicy, "tail_bytes", -1, "CachePolicy.tail_bytes"),
    (CachePolicy, "index_bytes", math.nan, "CachePolicy.index_bytes"),
    (FusionOptions, "weights", "text", "FusionOptions.weights must be a mapping"),
    (FusionOptions, "weights", None, "FusionOptions.weights must be a mapping"),
    (FusionOptions, "weights", {"text": "0.8"}, "weights must be finite and non-negative numbers"),
    (FusionOptions, "weights", {"text": True}, "weights must be finite and non-negative numbers"),
    (FusionOptions, "weights", {"text": None}, "weights must be finite and non-negative numbers"),
    (FusionOptions, "rrf_k", math.nan, "FusionOptions.rrf_k must be an integer of at least 0"),
    (FusionOptions, "rrf_k", "60", "FusionOptions.rrf_k"),
    (FusionOptions, "rrf_k", None, "FusionOptions.rrf_k"),
    (FusionOptions, "next_turn_weight", "0.3", "FusionOptions.next_turn_weight must be a finite number"),
    (FusionOptions, "next_turn_weight", None, "FusionOptions.next_turn_weight"),
    (FusionOptions, "next_turn_weight", True, "FusionOptions.next_turn_weight"),
    (FusionOptions, "depth", None, "FusionOptions.depth must be an integer of at least 1"),
    (IndexTextOptions, "speaker", "no", "IndexTextOptions.speaker must be True or False"),
    (IndexTextOptions, "time", 0, "IndexTextOptions.time must be True or False"),
    (IndexTextOptions, "clock", None, "IndexTextOptions.clock"),
    (IndexTextOptions, "caption", "false", "IndexTextOptions.caption"),
    (IndexTextOptions, "repeat_message", "false", "IndexTextOptions.repeat_message"),
    (
        IndexTextOptions,
        "context_turns",
        1.5,
        "IndexTextOptions.context_turns must be an integer of at least 0",
    ),
    (IndexTextOptions, "context_turns", "2", "IndexTextOptions.context_turns"),
    (IndexTextOptions, "context_turns", None, "IndexTextOptions.context_turns"),
    (IndexTextOptions, "max_chars", math.inf, "IndexTextOptions.max_chars must be an integer of at least 1"),
    (IndexTextOptions, "max_chars", "4000", "IndexTextOptions.max_chars"),
    (ChatIndexing, "text", {"time": False}, "ChatIndexing.text takes an IndexTextOptions, got dict"),
    (ChatIndexing, "vector", None, "ChatIndexing.vector takes an IndexTextOptions, got NoneType"),
]


@pytest.mark.parametrize(("cls", "name", "value", "message"), BAD, ids=lambda x: repr(x)[:30])
def test_a_bad_value_is_refused_at_construction(cls: Any, name: str, value: Any, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        cls(**{name: value})
    assert message in str(caught.value)


@pytest.mark.parametrize(("cls", "name", "value", "message"), BAD[::3], ids=lambda x: repr(x)[:30])
def test_replace_validates_again(cls: Any, name: str, value: Any, message: str) -> None:
    good = cls()
    with pytest.raises(ValueError) as caught:
        dataclasses.replace(good, **{name: value})
    assert message in str(caught.value)
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(good, name, value)


def test_numpy_numbers_are_taken_as_plain_numbers() -> None:
    policy = IndexPolicy(nprobes=np.int64(12), refresh_unindexed_share=np.float32(0.25))
    assert policy.nprobes == 12 and type(policy.nprobes) is int
    assert policy.refresh_unindexed_share == 0.25 and type(policy.refresh_unindexed_share) is float
    caches = CachePolicy(tail_sessions=np.int32(0))
    assert caches.tail_sessions == 0 and type(caches.tail_sessions) is int
    fusion = FusionOptions(weights={"text": np.float64(0.5), "vector": 1}, rrf_k=np.int16(10))
    assert fusion.weights == {"text": 0.5, "vector": 1.0} and type(fusion.rrf_k) is int
    assert IndexTextOptions(context_turns=np.int8(3)).context_turns == 3


def test_weights_the_caller_changes_later_leave_the_options_unchanged() -> None:
    weights = {"text": 0.0, "vector": 1.0}
    options = FusionOptions(weights=weights)
    weights["text"], weights["vector"] = 1.0, 0.0  # after validation
    weights["txt"] = 5.0
    assert options.weights == {"text": 0.0, "vector": 1.0}
    fused = fuse({"text": [("a", 9.0), ("b", 1.0)], "vector": [("b", 0.9), ("a", 0.1)]}, options)
    assert [key for key, _ in fused.ranked()] == ["b", "a"]  # still the vector channel alone


def test_a_policy_built_wrong_writes_nothing(tmp_path: Path) -> None:
    uri = str(tmp_path / "s.lance")
    with pytest.raises(ValueError, match="IndexPolicy.vector_index_type"):
        ContextStore.open(uri, indexing=IndexPolicy(vector_index_type="ivf_hnsw"))
    assert not (tmp_path / "s.lance").exists()


def test_reprs_are_readable() -> None:
    assert repr(FusionOptions()) == (
        "FusionOptions(method='zscore', weights={'text': 0.8, 'vector': 0.2}, depth=100, "
        "rrf_k=60, next_turn_weight=0.3)"
    )
    assert repr(CompactionPolicy()) == (
        "CompactionPolicy(enabled=True, fanout=8, max_rows_per_fragment=1048576)"
    )
    assert "IndexTextOptions(speaker=True, time=True, clock=False" in repr(ChatIndexing())


def test_readme_defaults_match_the_code() -> None:
    readme = " ".join(README.read_text(encoding="utf-8").split())
    indexing = IndexPolicy()
    assert f"`fanout` ({CompactionPolicy().fanout})" in readme
    assert f"built once the store holds {indexing.scalar_refresh_rows} rows" in readme
    share = f"{indexing.refresh_unindexed_share:.0%}".replace("%", " %")
    assert f"once {share} of the rows (at least {indexing.scalar_refresh_rows}) or " in readme
    assert f"{indexing.refresh_unindexed_rows:,} rows are outside them" in readme
    assert f"An approximate vector index ({indexing.vector_index_type}" in readme
    assert f"built once a store holds {indexing.vector_index_min_rows:,} vectors" in readme
    assert f"`StoreLimits.max_record_bytes` ({StoreLimits().max_record_bytes // 2**20} MiB)" in readme
    assert f"`StoreLimits.max_json_depth` ({StoreLimits().max_json_depth})" in readme
    assert "the two turns before it" in readme and IndexTextOptions().context_turns == 2


# ---------------------------------------------------------------- rerankers through recall


@pytest.fixture
def store(turns_store: ContextStore) -> ContextStore:
    """The five chat turns of ``conftest.TURNS``."""
    return turns_store


def _recall(store: ContextStore, reranker: Any) -> list[str]:
    options = RecallOptions(reranker=reranker, before=0, after=0)
    return [r.match.id for r in store.recall("Oslo weather", run_id="chat", options=options)]


def test_a_reranker_with_the_wrong_signature_is_refused_when_the_options_are_built() -> None:
    with pytest.raises(TypeError, match=r"must be callable as \(query, texts\).*\(texts\)"):
        RecallOptions(reranker=lambda texts: [1.0] * len(texts))
    with pytest.raises(TypeError, match=r"must be callable as \(query, texts\)"):
        RecallOptions(reranker=lambda query, texts, extra: [])

    class NoPairs:
        def predict(self) -> list[float]:
            return []

    with pytest.raises(TypeError, match=r"must be callable as predict\(pairs\)"):
        RecallOptions(reranker=NoPairs())
    RecallOptions(reranker=lambda *args, **kwargs: [])  # anything that can take (query, texts)


@pytest.mark.parametrize(
    ("reranker", "message"),
    [
        (lambda q, t: [1.0] * (len(t) - 1), "returned 4 scores for 5 candidates"),
        (lambda q, t: ["high"] * len(t), "returned 'high' for candidate 0: a score must be a number"),
        (lambda q, t: np.zeros((len(t), 2)), "got an array of shape"),
        (lambda q, t: {x: 1.0 for x in t}, "got dict"),
        (lambda q, t: None, "got NoneType"),
    ],
    ids=["fewer", "strings", "2d", "dict", "none"],
)
def test_a_callable_returning_the_wrong_shape_fails_clearly(
    store: ContextStore, reranker: Any, message: str
) -> None:
    with pytest.raises(SearchError, match=message):
        _recall(store, reranker)


def test_none_drops_a_candidate_and_nan_ranks_it_last(store: ContextStore) -> None:
    def no_weather(query: str, texts: Sequence[str]) -> list[float | None]:
        return [math.nan if "weather" in t else (None if "sister" in t else 1.0) for t in texts]

    assert _recall(store, no_weather) == ["t3", "t1", "t0", "t4"]


class Reversed(BaseDocumentCompressor):
    """Returns new documents (no metadata) in reverse order, the way some compressors copy."""

    def compress_documents(
        self, documents: Sequence[Document], query: str, callbacks: Callbacks | None = None
    ) -> Sequence[Document]:
        return [Document(page_content=d.page_content) for d in reversed(documents)]


class Invents(BaseDocumentCompressor):
    def compress_documents(
        self, documents: Sequence[Document], query: str, callbacks: Callbacks | None = None
    ) -> Sequence[Document]:
        return [Document(page_content="a summary of everything")]


class ReversedNodes(BaseNodePostprocessor):
    def _postprocess_nodes(
        self, nodes: list[NodeWithScore], query_bundle: QueryBundle | None = None
    ) -> list[NodeWithScore]:
        return [NodeWithScore(node=TextNode(text=n.node.get_content())) for n in reversed(nodes)]


class Repeats(BaseNodePostprocessor):
    def _postprocess_nodes(
        self, nodes: list[NodeWithScore], query_bundle: QueryBundle | None = None
    ) -> list[NodeWithScore]:
        return [*nodes, nodes[0]]


def test_framework_rerankers_that_copy_work_and_ones_that_invent_fail(store: ContextStore) -> None:
    plain = _recall(store, lambda q, t: [0.0] * len(t))  # ties keep the fused order
    assert _recall(store, Reversed()) == plain[::-1]
    assert _recall(store, ReversedNodes()) == plain[::-1]
    with pytest.raises(SearchError, match="none of the candidates it was given"):
        _recall(store, Invents())
    with pytest.raises(SearchError, match="twice"):
        _recall(store, Repeats())
    with pytest.raises(TypeError, match="is a class: pass an instance"):
        RecallOptions(reranker=Reversed)
