"""recall() against exact oracles, its neighbours and edges, and rerankers good and bad.

The vector oracle is numpy cosine over the very vectors stored; the hybrid oracle is the
public fusion functions over that cosine and the store's own BM25 scores; text-only
recall is compared with a plain BM25 computed here.
"""

from __future__ import annotations

import asyncio
import math
import random
from collections import Counter
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from langchain_core.callbacks import Callbacks
from langchain_core.documents import BaseDocumentCompressor, Document
from llama_index.core.postprocessor.types import BaseNodePostprocessor
from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode

from lance_context import (
    ContextRecord,
    ContextStore,
    FusionOptions,
    HashingEmbedder,
    RecallOptions,
    SearchError,
    _recollect,
)
from lance_context._fusion import fuse, with_next_turn
from lance_context._search import Searcher
from lance_context.adapters import ChatIndexing, as_reranker, newest_window

VOCAB = ["river", "mountain", "cloud", "stone", "forest", "ocean", "desert", "valley", "meadow", "canyon",
         "glacier", "island", "harbor", "castle", "bridge"]  # fmt: skip
DIM = 6
N = 90


def vector_only(**fields: Any) -> RecallOptions:
    """The vector channel alone, no next-turn support: recall ranks by cosine."""
    return RecallOptions(fusion=FusionOptions(weights={"vector": 1.0}, next_turn_weight=0.0), **fields)


@pytest.fixture
def corpus(tmp_path: Path) -> tuple[ContextStore, list[str], np.ndarray]:
    """Two sessions interleaved, given vectors, a metadata group per record."""
    rng, words = np.random.default_rng(11), random.Random(11)
    vectors = rng.normal(size=(N, DIM)).astype(np.float32)
    texts = [" ".join(words.choices(VOCAB, k=words.randint(3, 9))) for _ in range(N)]
    store = ContextStore.open(str(tmp_path / "oracle.lance"), embedder=None, dimension=DIM)
    store.add(
        [
            ContextRecord(
                run_id="a" if i % 3 else "b",
                id=f"d{i}",
                text_payload=texts[i],
                embedding=vectors[i],
                metadata={"g": i % 2},
            )
            for i in range(N)
        ]
    )
    return store, texts, vectors


def _in(i: int, run_id: str | None, group: int | None) -> bool:
    session = run_id is None or (run_id == "a") == bool(i % 3)
    return session and (group is None or i % 2 == group)


def _cosine(vectors: np.ndarray, query: np.ndarray, keep: list[int]) -> list[tuple[str, float]]:
    sims = vectors[keep] @ query / (np.linalg.norm(vectors[keep], axis=1) * np.linalg.norm(query))
    return sorted(((f"d{i}", float(s)) for i, s in zip(keep, sims, strict=True)), key=lambda p: -p[1])


@pytest.mark.parametrize("run_id", ["a", None])
@pytest.mark.parametrize("group", [None, 0, 1])
@pytest.mark.parametrize("session_rows", ["few", "many"])
def test_vector_ranking_is_exact_cosine_filtered_before_top_k(
    corpus: tuple[ContextStore, list[str], np.ndarray],
    run_id: str | None,
    group: int | None,
    session_rows: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store, _, vectors = corpus
    if session_rows == "many":  # the session is outlined without vectors, the channel reads them
        monkeypatch.setattr(_recollect, "EXACT_MAX", 10)
    rng = np.random.default_rng(5)
    where = None if group is None else {"g": group}
    for _ in range(5):
        query = rng.normal(size=DIM).astype(np.float32)
        found = store.recall("zzz", run_id=run_id, vector=query, k=7, where=where, options=vector_only())
        expected = _cosine(vectors, query, [i for i in range(N) if _in(i, run_id, group)])[:7]
        assert [r.match.id for r in found] == [key for key, _ in expected]
        assert all(r.match.metadata["g"] == group for r in found if group is not None)


def test_a_small_session_is_read_once_for_its_order_and_its_vectors(
    corpus: tuple[ContextStore, list[str], np.ndarray], monkeypatch: pytest.MonkeyPatch
) -> None:
    store, _, vectors = corpus
    query = np.random.default_rng(3).normal(size=DIM).astype(np.float32)
    scans: list[str] = []
    real = Searcher._vector
    monkeypatch.setattr(
        Searcher, "_vector", lambda self, *a, **k: scans.append("vector") or real(self, *a, **k)
    )
    few = store.recall("zzz", run_id="a", vector=query, k=5, before=0, after=0, options=vector_only())
    assert scans == []  # ranked from the outline's own read of the session
    monkeypatch.setattr(_recollect, "EXACT_MAX", 10)
    many = store.recall("zzz", run_id="a", vector=query, k=5, before=0, after=0, options=vector_only())
    assert scans == ["vector"]
    expected = [key for key, _ in _cosine(vectors, query, [i for i in range(N) if _in(i, "a", None)])[:5]]
    assert [r.match.id for r in few] == [r.match.id for r in many] == expected


def test_hybrid_recall_equals_the_fusion_of_exact_cosine_and_the_stores_bm25(
    corpus: tuple[ContextStore, list[str], np.ndarray],
) -> None:
    store, _, vectors = corpus
    words, rng = random.Random(2), np.random.default_rng(2)
    for _ in range(12):
        query, vector = " ".join(words.choices(VOCAB, k=2)), rng.normal(size=DIM).astype(np.float32)
        group = words.choice([None, 0, 1])
        where = None if group is None else {"g": group}
        keep = [i for i in range(N) if _in(i, "a", group)]
        text = [
            (h.record.id, h.text_score or 0.0)
            for h in store.search(query, k=100, mode="text", run_id="a", where=where)
        ]
        order = [f"d{i}" for i in keep]
        following = {key: (order[j + 1] if j + 1 < len(order) else None) for j, key in enumerate(order)}
        fused = with_next_turn(fuse({"text": text, "vector": _cosine(vectors, vector, keep)}), following, 0.3)
        expected = fused.ranked(8)
        found = store.recall(query, run_id="a", vector=vector, k=8, before=0, after=0, where=where)
        assert [r.match.id for r in found] == [key for key, _ in expected]
        assert [r.score for r in found] == pytest.approx([score for _, score in expected], abs=1e-5)


def _bm25(documents: list[list[str]], query: list[str]) -> list[float]:
    n, average = len(documents), sum(map(len, documents)) / len(documents)
    df = Counter(w for d in documents for w in set(d))
    scores = []
    for d in documents:
        tf, score = Counter(d), 0.0
        for w in query:
            if tf[w]:
                idf = math.log(1 + (n - df[w] + 0.5) / (df[w] + 0.5))
                score += idf * tf[w] * 2.2 / (tf[w] + 1.2 * (0.25 + 0.75 * len(d) / average))
        scores.append(score)
    return scores


def test_text_only_recall_ranks_as_bm25_does(tmp_path: Path) -> None:
    words = random.Random(1)
    texts = [" ".join(words.choices(VOCAB, k=words.randint(3, 12))) for _ in range(60)]
    store = ContextStore.open(str(tmp_path / "text.lance"), embedder=None)
    store.add([ContextRecord.from_content(t, run_id="a", id=f"d{i}") for i, t in enumerate(texts)])
    plain = RecallOptions(fusion=FusionOptions(next_turn_weight=0.0), before=0, after=0)
    for query in ("glacier", "castle bridge", "ocean desert valley", "harbor", "meadow canyon"):
        scores = _bm25([t.split() for t in texts], query.split())
        found = store.recall(query, run_id="a", k=5, options=plain)
        fifth = sorted(scores, reverse=True)[4]
        assert all(scores[int(r.match.id[1:])] >= fifth - 1e-9 for r in found)  # the same top 5 (ties aside)
        best = [int(r.match.id[1:]) for r in found]
        assert [scores[i] for i in best] == sorted((scores[i] for i in best), reverse=True)
    with pytest.raises(SearchError, match="recall without vector="):
        store.recall("glacier", run_id="a", vector=[1.0, 0.0])  # a store without vectors


@pytest.fixture
def chat(tmp_path: Path) -> ContextStore:
    store = ContextStore.open(str(tmp_path / "chat.lance"), embedder=None, dimension=4)
    basis = np.eye(4, dtype=np.float32)
    store.add(
        [
            ContextRecord(run_id="c", id=f"t{i}", text_payload=f"turn {i}", embedding=basis[i % 4] + 0.01 * i)
            for i in range(10)
        ]
    )
    return store


@pytest.mark.parametrize(
    ("before", "after", "match", "turns"),
    [
        (0, 0, "t0", ["t0"]),
        (1, 1, "t0", ["t0", "t1"]),  # the session's start
        (1, 1, "t9", ["t8", "t9"]),  # its end
        (2, 1, "t5", ["t3", "t4", "t5", "t6"]),
        (100, 100, "t5", [f"t{i}" for i in range(10)]),
    ],
)
def test_neighbour_windows_at_the_edges(
    chat: ContextStore, before: int, after: int, match: str, turns: list[str]
) -> None:
    index = int(match[1:])
    vector = np.eye(4, dtype=np.float32)[index % 4] + 0.01 * index
    found = chat.recall(
        "zzz", run_id="c", vector=vector, k=1, before=before, after=after, options=vector_only()
    )
    assert [r.match.id for r in found] == [match]
    assert [t.id for t in found[0].turns] == turns


def test_neighbours_that_are_hits_come_once_in_conversation_order(chat: ContextStore) -> None:
    vector = np.array([0.0, 1.0, 0.0, 0.0], dtype=np.float32)  # t1, t5, t9 point there
    found = chat.recall("zzz", run_id="c", vector=vector, k=10, before=2, after=2, options=vector_only())
    assert [r.match.id for r in found][:3] == ["t1", "t5", "t9"]  # the later ones lean away
    turns = [t.id for r in found for t in r.turns]
    assert sorted(turns, key=lambda t: int(t[1:])) == [f"t{i}" for i in range(10)]  # each turn once
    for r in found:
        assert [int(t.id[1:]) for t in r.turns] == sorted(int(t.id[1:]) for t in r.turns)
    assert len(found) == 10 and any(not r.turns for r in found)  # later matches may bring nothing new


def test_k_edges(chat: ContextStore) -> None:
    vector = np.ones(4, dtype=np.float32)
    assert len(chat.recall("zzz", run_id="c", vector=vector, k=1, before=0, after=0)) == 1
    assert len(chat.recall("zzz", run_id="c", vector=vector, k=500, before=0, after=0)) == 10
    assert len(chat.recall("zzz", run_id="c", vector=vector, k=1_000_000, before=0, after=0)) == 10
    for k in (0, -1, 1_000_001, 2.0, True):
        with pytest.raises(SearchError, match="k must be"):
            chat.recall("zzz", run_id="c", vector=vector, k=k)  # type: ignore[arg-type]
    assert chat.recall("zzz", run_id="nobody", vector=vector) == []


def test_deleted_and_upserted_turns(tmp_path: Path) -> None:
    store = ContextStore.open(str(tmp_path / "edits.lance"), embedder=HashingEmbedder(16))
    store.add(
        [ContextRecord.from_content(f"{w} talk", run_id="a", id=f"t{i}") for i, w in enumerate(VOCAB[:6])]
    )
    before_delete = store.version()
    store.delete(ids=["t2"])
    found = store.recall("cloud stone", run_id="a", k=6)
    assert "t2" not in {t.id for r in found for t in (r.match, *r.turns)}
    (then,) = store.recall("cloud", run_id="a", k=1, version=before_delete)
    assert [t.id for t in then.turns] == ["t1", "t2", "t3"]
    store.upsert(ContextRecord.from_content("stone soup", run_id="a", id="t3"))  # moves to the end
    (moved,) = store.recall("soup", run_id="a", k=1)
    assert moved.match.text == "stone soup" and [t.id for t in moved.turns] == ["t5", "t3"]
    store.upsert(ContextRecord.from_content("forest fire", run_id="a", id="t4"), keep_order=True)
    (kept,) = store.recall("fire", run_id="a", k=1)
    assert [t.id for t in kept.turns] == ["t1", "t4", "t5"]


def test_an_id_added_twice_is_recalled_as_its_session_reads_it(tmp_path: Path) -> None:
    store = ContextStore.open(str(tmp_path / "twice.lance"), embedder=HashingEmbedder(16))
    store.add(
        [ContextRecord.from_content(f"{w} talk", run_id="a", id=f"t{i}") for i, w in enumerate(VOCAB[:5])]
    )
    store.add(ContextRecord.from_content("ocean liner newer", run_id="a", id="t1"))  # stored again
    assert store.get("t1").text == "ocean liner newer"  # type: ignore[union-attr]
    for query in ("mountain", "ocean liner"):
        found = store.recall(query, run_id="a", k=5, before=1, after=1)
        seen = {t.id: t.text for r in found for t in (r.match, *r.turns)}
        assert seen.get("t1") in (None, "ocean liner newer")  # never the older copy's text
    (best,) = store.recall("ocean liner newer", run_id="a", k=1)
    assert best.match.id == "t1" and [t.id for t in best.turns] == ["t4", "t1"]  # at its newest place


def test_turns_without_text_and_indexed_hints_read_back_as_written(tmp_path: Path) -> None:
    store = ContextStore.open(str(tmp_path / "media.lance"), embedder=HashingEmbedder(32))
    start = datetime(2024, 5, 1, 12, tzinfo=timezone.utc)
    records = [
        ContextRecord(run_id="c", id="m0", text_payload="we hiked the Alps", metadata={"name": "Ann"}, created_at=start),
        ContextRecord.from_content(b"\x00\x01raw", run_id="c", id="bin", created_at=start + timedelta(minutes=1)),
        ContextRecord.from_content(
            b"\x89PNG\r\n", content_type="image/png", text="Mont Blanc at dawn", run_id="c", id="img",
            metadata={"name": "Bob"}, created_at=start + timedelta(minutes=2),
        ),
        ContextRecord(run_id="c", id="m3", text_payload="wow", metadata={"name": "Ann", "n": [1, None]}),
    ]  # fmt: skip
    ChatIndexing().hint(store, "c", records, speaker=lambda r: r.metadata.get("name"))
    assert records[2].search_text is not None and "Bob" in records[2].search_text
    store.add(records)
    stored = {r.id: r for r in store.records("c")}
    seen: list[list[str]] = []

    def sees(query: str, texts: Sequence[str]) -> list[float]:
        seen.append(list(texts))
        return [0.0] * len(texts)

    for options in (None, RecallOptions(reranker=sees)):
        found = store.recall("Bob Mont Blanc", run_id="c", k=4, before=3, after=3, options=options)
        assert found[0].match.id == "img"
        for turn in (t for r in found for t in (r.match, *r.turns)):
            assert turn == stored[turn.id] and turn.search_text is None and turn.embed_text is None
        assert stored["bin"].binary_payload == b"\x00\x01raw"
    assert seen and "" in seen[0] and "Mont Blanc at dawn" in seen[0]  # the caption, not the hint


# ---------------------------------------------------------------- rerankers

TURNS = ["we talked about the weather", "the weather in Oslo was grey", "my sister lives in Oslo",
         "she moved to Oslo in 2019", "the weather was fine later", "Oslo has a fjord"]  # fmt: skip


@pytest.fixture
def oslo(tmp_path: Path) -> ContextStore:
    store = ContextStore.open(str(tmp_path / "oslo.lance"), embedder=HashingEmbedder(64))
    store.add([ContextRecord.from_content(t, run_id="chat", id=f"t{i}") for i, t in enumerate(TURNS)])
    return store


def _shortest_first(texts: Sequence[str]) -> list[int]:
    return sorted(range(len(texts)), key=lambda i: (len(texts[i]), i))


COMPRESSED: list[list[str]] = []  # what ShortestFirst was given, call by call


class ShortestFirst(BaseDocumentCompressor):
    """A deterministic LangChain compressor: shortest text first, the weather dropped."""

    def compress_documents(
        self, documents: Sequence[Document], query: str, callbacks: Callbacks | None = None
    ) -> Sequence[Document]:
        COMPRESSED.append([d.page_content for d in documents])
        kept = [d for d in documents if "weather" not in d.page_content]
        return sorted(kept, key=lambda d: len(d.page_content))


class ShortestFirstNodes(BaseNodePostprocessor):
    """The same as a LlamaIndex node postprocessor."""

    def _postprocess_nodes(
        self, nodes: list[NodeWithScore], query_bundle: QueryBundle | None = None
    ) -> list[NodeWithScore]:
        kept = [n for n in nodes if "weather" not in n.node.get_content()]
        return sorted(kept, key=lambda n: len(n.node.get_content()))


def _shortest_callable(query: str, texts: Sequence[str]) -> list[float | None]:
    return [None if "weather" in t else -float(len(t)) for t in texts]


@pytest.mark.parametrize("reranker", [_shortest_callable, ShortestFirst(), ShortestFirstNodes()], ids=type)
def test_each_reranker_sees_the_candidates_and_its_order_is_kept(oslo: ContextStore, reranker: Any) -> None:
    seen: list[list[str]] = []

    def spy(query: str, texts: Sequence[str]) -> list[float | None]:
        seen.append(list(texts))
        return as_reranker(reranker)(query, texts)

    options = RecallOptions(reranker=spy, before=0, after=0, rerank_depth=6)
    found = oslo.recall("Oslo weather", run_id="chat", k=6, options=options)
    fused = oslo.recall("Oslo weather", run_id="chat", k=6, before=0, after=0)
    assert seen == [[r.match.text for r in fused]]  # the fused candidates, best first
    texts = [r.match.text or "" for r in found]
    kept = [t for t in TURNS if "weather" not in t]
    assert texts == [kept[i] for i in _shortest_first(kept)]
    assert [r.score for r in found] == sorted((r.score for r in found), reverse=True)


class Rewrites(BaseDocumentCompressor):
    """Returns new documents without the metadata it was given (matched by text)."""

    def compress_documents(
        self, documents: Sequence[Document], query: str, callbacks: Callbacks | None = None
    ) -> Sequence[Document]:
        return [Document(page_content=d.page_content) for d in reversed(documents)]


class Splits(BaseDocumentCompressor):
    """Splits each document into words, keeps those naming Oslo (as a splitting pipeline)."""

    def compress_documents(
        self, documents: Sequence[Document], query: str, callbacks: Callbacks | None = None
    ) -> Sequence[Document]:
        parts = [
            Document(page_content=w, metadata=d.metadata) for d in documents for w in d.page_content.split()
        ]
        return [p for p in parts if p.page_content == "Oslo"][::-1]


class NewNodes(BaseNodePostprocessor):
    def _postprocess_nodes(
        self, nodes: list[NodeWithScore], query_bundle: QueryBundle | None = None
    ) -> list[NodeWithScore]:
        return [NodeWithScore(node=TextNode(text=n.node.get_content()), score=1.0) for n in reversed(nodes)]


@pytest.mark.parametrize("reranker", [Rewrites(), NewNodes()], ids=type)
def test_new_objects_for_the_same_candidates_are_matched(oslo: ContextStore, reranker: Any) -> None:
    options = RecallOptions(reranker=reranker, before=0, after=0)
    fused = [r.match.id for r in oslo.recall("Oslo weather", run_id="chat", k=6, before=0, after=0)]
    found = [r.match.id for r in oslo.recall("Oslo weather", run_id="chat", k=6, options=options)]
    assert found == fused[::-1]


def test_a_splitting_compressor_ranks_each_candidate_by_its_best_part(oslo: ContextStore) -> None:
    options = RecallOptions(reranker=Splits(), before=0, after=0)
    found = oslo.recall("Oslo", run_id="chat", k=6, options=options)
    assert {r.match.text for r in found} == {t for t in TURNS if "Oslo" in t}


class Twice(BaseDocumentCompressor):
    def compress_documents(
        self, documents: Sequence[Document], query: str, callbacks: Callbacks | None = None
    ) -> Sequence[Document]:
        return [*documents, documents[0]]


class TwiceNodes(BaseNodePostprocessor):
    def _postprocess_nodes(
        self, nodes: list[NodeWithScore], query_bundle: QueryBundle | None = None
    ) -> list[NodeWithScore]:
        return [*nodes, nodes[0]]


class Invents(BaseDocumentCompressor):
    def compress_documents(
        self, documents: Sequence[Document], query: str, callbacks: Callbacks | None = None
    ) -> Sequence[Document]:
        return [Document(page_content="something else entirely")]


class Strings(BaseDocumentCompressor):
    def compress_documents(
        self, documents: Sequence[Document], query: str, callbacks: Callbacks | None = None
    ) -> Sequence[Document]:
        return [d.page_content for d in documents]  # type: ignore[misc]


class NodeTexts(BaseNodePostprocessor):
    def _postprocess_nodes(
        self, nodes: list[NodeWithScore], query_bundle: QueryBundle | None = None
    ) -> list[NodeWithScore]:
        return None  # type: ignore[return-value]


class AsyncOnlyNodes(BaseNodePostprocessor):
    def _postprocess_nodes(
        self, nodes: list[NodeWithScore], query_bundle: QueryBundle | None = None
    ) -> list[NodeWithScore]:
        raise NotImplementedError("use apostprocess_nodes")


class Boom(BaseDocumentCompressor):
    def compress_documents(
        self, documents: Sequence[Document], query: str, callbacks: Callbacks | None = None
    ) -> Sequence[Document]:
        raise RuntimeError("the model is down")


@pytest.mark.parametrize(
    ("reranker", "error", "message"),
    [
        (Twice(), SearchError, "twice"),
        (TwiceNodes(), SearchError, "twice"),
        (Invents(), SearchError, "none of the candidates"),
        (Strings(), SearchError, "returned a str where a Document"),
        (NodeTexts(), SearchError, "must return a list of NodeWithScores, got NoneType"),
        (AsyncOnlyNodes(), SearchError, "no synchronous form"),
        (Boom(), RuntimeError, "the model is down"),  # its own error, unchanged
        (lambda q, t: None, SearchError, "one score per candidate"),
        (lambda q, t: 1.0, SearchError, "one score per candidate"),
        (lambda q, t: {x: 1.0 for x in t}, SearchError, "one score per candidate"),
        (lambda q, t: ["high"] * len(t), SearchError, "a score must be a number"),
        (lambda q, t: ["1"] * len(t), SearchError, "a score must be a number"),
        (lambda q, t: [[1.0]] * len(t), SearchError, "a score must be a number"),
        (lambda q, t: np.ones((len(t), 2)), SearchError, "an array of shape"),
        (lambda q, t: [1.0], SearchError, "returned 1 scores for"),
    ],
    ids=[
        "twice",
        "twice-nodes",
        "invents",
        "strings",
        "none-nodes",
        "async-only-nodes",
        "raises",
        "none",
        "scalar",
        "dict",
        "words",
        "numeric-strings",
        "lists",
        "2d-array",
        "too-few",
    ],
)
def test_bad_rerankers_get_clear_errors(
    oslo: ContextStore, reranker: Any, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        oslo.recall("Oslo weather", run_id="chat", options=RecallOptions(reranker=reranker))


def test_async_rerankers_and_classes_are_refused_up_front(oslo: ContextStore) -> None:
    async def scores(query: str, texts: Sequence[str]) -> list[float]:
        return [1.0] * len(texts)

    class AsyncCall:
        async def __call__(self, query: str, texts: Sequence[str]) -> list[float]:
            return [1.0] * len(texts)

    class OnlyAsync:
        async def acompress_documents(self, documents: Sequence[Document], query: str) -> Sequence[Document]:
            return documents

    for reranker, message in (
        (scores, "is async"),
        (AsyncCall(), "is async"),
        (OnlyAsync(), "only an async acompress_documents"),
        (ShortestFirst, "is a class: pass an instance"),
    ):
        with pytest.raises(TypeError, match=message):
            RecallOptions(reranker=reranker)

    def sneaky(query: str, texts: Sequence[str]) -> Any:  # a plain function handing back a coroutine
        return scores(query, texts)

    with pytest.raises(SearchError, match="returned an awaitable"):
        oslo.recall("Oslo", run_id="chat", options=RecallOptions(reranker=sneaky))


def test_bad_option_types_are_refused() -> None:
    for fields in ({"k": "3"}, {"k": True}, {"before": 1.5}, {"rerank_depth": 2.5}, {"fusion": {}}):
        with pytest.raises(ValueError):
            RecallOptions(**fields)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="depth must be an integer"):
        FusionOptions(depth=2.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="chunk must be a positive integer"):
        newest_window(lambda n: ([], False), lambda ms: ms, is_tool_result=lambda m: False, chunk=0)


def test_reranking_through_the_chat_adapters(tmp_path: Path) -> None:
    from langchain_core.messages import AIMessage, HumanMessage

    from lance_context.langchain import LanceChatMessageHistory

    store = ContextStore.open(str(tmp_path / "adapters.lance"), embedder=HashingEmbedder(64))
    options = RecallOptions(reranker=ShortestFirst(), before=0, after=0)
    history = LanceChatMessageHistory("c1", store=store, recall=options)
    history.add_messages(
        [HumanMessage(TURNS[0]), AIMessage(TURNS[1]), HumanMessage(TURNS[2]), AIMessage(TURNS[3])]
    )
    COMPRESSED.clear()
    found = [m.content for m in history.search("Oslo weather", k=2)]
    assert found == ["my sister lives in Oslo", "she moved to Oslo in 2019"]
    assert COMPRESSED and sorted(COMPRESSED[0]) == sorted(TURNS[:4])  # messages only
    with pytest.raises(SearchError, match="twice"):
        LanceChatMessageHistory("c1", store=store, recall=RecallOptions(reranker=Twice())).search("Oslo")


def test_async_recall_is_the_same_recall(oslo: ContextStore) -> None:
    options = RecallOptions(reranker=ShortestFirstNodes())
    found = asyncio.run(oslo.aio.recall("Oslo weather", run_id="chat", k=3, options=options))
    same = oslo.recall("Oslo weather", run_id="chat", k=3, options=options)
    assert [(r.match.id, [t.id for t in r.turns]) for r in found] == [
        (r.match.id, [t.id for t in r.turns]) for r in same
    ]


class Planet107First(BaseNodePostprocessor):
    """A LlamaIndex postprocessor putting the turns about planet 107 first, the rest kept."""

    def _postprocess_nodes(
        self, nodes: list[NodeWithScore], query_bundle: QueryBundle | None = None
    ) -> list[NodeWithScore]:
        return sorted(nodes, key=lambda n: "planet 107 " not in n.node.get_content())


def test_reranking_through_the_llama_index_memory(tmp_path: Path) -> None:
    from llama_index.core.llms import ChatMessage

    from lance_context.llama_index import LanceMemory

    store = ContextStore.open(str(tmp_path / "memory.lance"), embedder=HashingEmbedder(64))
    fact = "my dog is called biscuit and she loves carrots"
    messages = [ChatMessage(role="user", content=fact), ChatMessage(role="assistant", content="noted")]
    for i in range(100, 120):
        messages += [
            ChatMessage(role="user", content=f"tell me about planet number {i} please"),
            ChatMessage(role="assistant", content=f"planet {i} is a gas giant"),
        ]

    def memory(reranker: Any) -> LanceMemory:
        return LanceMemory.from_defaults(
            session_id="s",
            store=store,
            token_limit=60,
            semantic_top_k=1,
            tokenizer_fn=str.split,
            recall_options=RecallOptions(reranker=reranker),
        )

    memory(None).put_messages(messages)
    plain = [m.content for m in memory(None).get(input="what is my dog called")]
    assert fact in plain and "planet 107 is a gas giant" not in plain
    contents = [m.content for m in memory(Planet107First()).get(input="what is my dog called")]
    assert "planet 107 is a gas giant" in contents and fact not in contents
    with pytest.raises(SearchError, match="twice"):
        memory(TwiceNodes()).get(input="what is my dog called")


def test_a_version_from_before_the_store_held_vectors(tmp_path: Path) -> None:
    """Recall there ranks by text; a vector search of it says why it cannot, writing nothing."""
    path = str(tmp_path / "later.lance")
    plain = ContextStore.open(path, embedder=None)
    plain.add([ContextRecord.from_content(f"river stone {i}", run_id="a", id=f"r{i}") for i in range(4)])
    plain.add([ContextRecord.from_content("ocean cloud", run_id="a", id="o")])
    before = plain.version()
    plain.reembed(HashingEmbedder(8), progress=False)
    store = ContextStore.open(path)
    latest = store.version()
    found = store.recall("ocean", run_id="a", k=1, before=0, after=0, version=before)
    assert [r.match.id for r in found] == ["o"]
    assert [r.match.id for r in store.recall("ocean", run_id="a", k=1, before=0, after=0)] == ["o"]
    for mode in ("vector", "hybrid"):
        with pytest.raises(SearchError, match=rf"version {before} holds no vectors .*mode='text'"):
            store.search("ocean", mode=mode, version=before)  # type: ignore[arg-type]
    with pytest.raises(SearchError, match=rf"version {before} holds no vectors"):
        store.recall("ocean", run_id="a", vector=[1.0] * 8, version=before)
    assert [h.record.id for h in store.search("ocean", mode="text", k=1, version=before)] == ["o"]
    assert store.version() == latest
