"""Recall embeds its query beside the session's read when the embedder runs well on another thread."""

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
