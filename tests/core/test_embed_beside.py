"""Recall and hybrid search embed the query beside their reads when the embedder runs well there."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from lance_context import ContextRecord, ContextStore, HashingEmbedder, SentenceTransformerEmbedder

TURNS = [
    ("user", "I adopted a grey cat called Miso last spring."),
    ("assistant", "Lovely! How is Miso settling in?"),
    ("user", "She hides under the sofa, but loves the balcony."),
    ("assistant", "Cats often need a few weeks. Does she eat well?"),
    ("user", "Yes, mostly salmon. My sister Ana is visiting from Porto next week."),
    ("assistant", "Will Ana stay with you and Miso?"),
]


class Watched:
    """Wraps an embedder and notes the thread of each query it embeds (or raises on demand)."""

    def __init__(self, inner: object) -> None:
        self.inner = inner
        self.threads: list[str] = []
        self.fail = False
        real = inner.embed_texts  # type: ignore[attr-defined]

        def embed_texts(texts: Sequence[str]) -> np.ndarray:
            if len(texts) == 1:
                self.threads.append(threading.current_thread().name)
                if self.fail:
                    raise RuntimeError("the embedder is down")
            return np.asarray(real(texts))

        inner.embed_texts = embed_texts  # type: ignore[attr-defined]


def conversation(path: Path, embedder: object) -> tuple[ContextStore, Watched]:
    store = ContextStore.open(str(path), embedder=embedder)
    store.add([ContextRecord.from_content(text, role=role, run_id="chat") for role, text in TURNS])
    return store, Watched(embedder)


def recalled(store: ContextStore, query: str) -> list[tuple[str, list[str]]]:
    return [(r.match.text, [t.text for t in r.turns]) for r in store.recall(query, run_id="chat", k=2)]


def test_the_default_embedder_embeds_the_query_while_the_session_is_read(tmp_path: Path) -> None:
    store, watched = conversation(tmp_path / "onnx.lance", SentenceTransformerEmbedder())
    serial, plain = conversation(tmp_path / "torch.lance", SentenceTransformerEmbedder(onnx=False))
    assert watched.inner.embeds_beside_reads() and not plain.inner.embeds_beside_reads()
    for query in ("Who is coming to visit?", "What does the cat eat?"):
        assert recalled(store, query) == recalled(serial, query)  # the same turns, the same order
    assert any(
        "Ana is visiting" in turn for _, turns in recalled(store, "Who is visiting?") for turn in turns
    )
    assert all(name.startswith("lance-context-query") for name in watched.threads)
    assert plain.threads and all(name == threading.current_thread().name for name in plain.threads)


def test_other_embedders_and_recalls_across_sessions_embed_on_the_callers_thread(tmp_path: Path) -> None:
    store, watched = conversation(tmp_path / "hashing.lance", HashingEmbedder(64))
    assert recalled(store, "cat salmon")
    default, onnx = conversation(tmp_path / "default.lance", SentenceTransformerEmbedder())
    assert default.recall("What does the cat eat?", k=2)  # no run_id: nothing to read beside it
    here = threading.current_thread().name
    assert watched.threads == [here] and onnx.threads == [here]


def test_an_embedding_error_beside_the_read_reaches_the_caller(tmp_path: Path) -> None:
    store, watched = conversation(tmp_path / "failing.lance", SentenceTransformerEmbedder())
    watched.fail = True
    version = store.version()
    with pytest.raises(RuntimeError, match="the embedder is down"):
        store.recall("Who is coming to visit?", run_id="chat")
    assert store.version() == version and watched.threads[0].startswith("lance-context-query")
    watched.fail = False
    assert recalled(store, "Who is coming to visit?")


def searched(store: ContextStore, query: str) -> list[tuple[str, float, tuple[str, ...]]]:
    hits = store.search(query, k=3, mode="hybrid", run_id="chat")
    return [(h.record.text, round(h.score, 4), h.channels) for h in hits]


def test_hybrid_search_embeds_the_query_while_the_text_channel_reads(tmp_path: Path) -> None:
    store, watched = conversation(tmp_path / "onnx.lance", SentenceTransformerEmbedder())
    serial, plain = conversation(tmp_path / "torch.lance", SentenceTransformerEmbedder(onnx=False))
    for query in ("Who is coming to visit?", "What does the cat eat?", "balcony"):
        assert searched(store, query) == searched(serial, query)  # the same hits, scores and channels
    assert any(
        text.startswith("Yes, mostly salmon") for text, _, _ in searched(store, "Does she like salmon?")
    )
    assert watched.threads and all(name.startswith("lance-context-query") for name in watched.threads)
    here = threading.current_thread().name
    assert plain.threads and all(name == here for name in plain.threads)
    before = len(watched.threads)
    store.search("What does the cat eat?", k=3, mode="vector", run_id="chat")  # nothing to read beside
    assert watched.threads[before:] == [here]


class OptingIn(HashingEmbedder):
    """A hashing embedder that says it may embed beside the store's reads."""

    def embeds_beside_reads(self) -> bool:
        return True


def test_any_embedder_can_opt_in_and_its_error_reaches_the_caller(tmp_path: Path) -> None:
    store, watched = conversation(tmp_path / "opting.lance", OptingIn(64))
    assert [t for _, t, _ in searched(store, "cat salmon")]
    assert recalled(store, "cat salmon")
    assert len(watched.threads) == 2 and all(n.startswith("lance-context-query") for n in watched.threads)
    watched.fail = True
    version = store.version()
    with pytest.raises(RuntimeError, match="the embedder is down"):
        store.search("cat salmon", mode="hybrid", run_id="chat")
    assert store.version() == version
    watched.fail = False
    assert searched(store, "cat salmon")
