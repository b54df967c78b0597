"""LanceStore(search_mode="hybrid"): memories found by a rare word as well as by meaning."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from langgraph.store.base import PutOp

from lance_context import ContextStore, FusionOptions
from lance_context.langgraph import LanceStore

DIMS = 32
NS = ("users", "u1")
WORDS = ["tea", "coffee", "walk", "garden", "music", "film", "book", "train", "city", "rain"]


def blurred(texts: Sequence[str]) -> list[list[float]]:
    """Vectors that carry no meaning (a seeded direction per text): only BM25 can match words."""
    out = []
    for text in texts:
        seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")
        vector = np.random.default_rng(seed).standard_normal(DIMS)
        out.append((vector / np.linalg.norm(vector)).tolist())
    return out


def open_memory(path: Path, **options: Any) -> LanceStore:
    return LanceStore(uri=str(path), index={"dims": DIMS, "embed": blurred, "fields": ["text"]}, **options)


def fill(memory: LanceStore) -> None:
    """30 tastes and one pet, in one batch (one commit)."""
    puts = [
        PutOp(
            NS, f"m{i}", {"text": "likes " + " ".join(WORDS[(i + j) % 10] for j in range(4)), "kind": "taste"}
        )
        for i in range(30)
    ]
    memory.batch([*puts, PutOp(NS, "dog", {"text": "the dog is called Biscuit", "kind": "pet"})])


def test_hybrid_finds_a_memory_by_a_rare_word_the_vectors_miss(tmp_path: Path) -> None:
    vector = open_memory(tmp_path / "m.lance")
    fill(vector)
    hybrid = LanceStore(store=vector.store, index=vector.index_config, search_mode="hybrid")

    ranked = hybrid.search(NS, query="what is Biscuit", limit=5)
    assert ranked[0].key == "dog"
    scores = [i.score for i in ranked]
    assert None not in scores and scores == sorted((x or 0.0 for x in scores), reverse=True)
    # the same query by cosine alone: the meaningless vectors do not put the dog first
    by_cosine = vector.search(NS, query="what is Biscuit", limit=5)
    assert by_cosine[0].key != "dog" and vector.search_mode == "vector" and vector.fusion is None

    # the hybrid score is the core's fused score of the item's best text
    core = vector.store.search("what is Biscuit", vector=blurred(["what is Biscuit"])[0], k=5, mode="hybrid")
    assert ranked[0].score == pytest.approx(core[0].score)


def test_hybrid_applies_filters_before_ranking_and_pages_each_item_once(tmp_path: Path) -> None:
    memory = open_memory(tmp_path / "m.lance", search_mode="hybrid")
    fill(memory)
    tastes = memory.search(NS, query="Biscuit garden", filter={"kind": "taste"}, limit=40)
    assert "dog" not in {i.key for i in tastes} and len(tastes) == 30
    pages = [memory.search(NS, query="Biscuit garden", limit=7, offset=o) for o in range(0, 35, 7)]
    keys = [i.key for page in pages for i in page]
    assert sorted(keys) == sorted([f"m{i}" for i in range(30)] + ["dog"]) and keys[0] == "dog"


def test_hybrid_options_carry_to_views_async_and_custom_fusion(tmp_path: Path) -> None:
    memory = open_memory(tmp_path / "m.lance", search_mode="hybrid")
    fill(memory)
    view = memory.at_version(memory.store.version())
    assert view.search(NS, query="Biscuit")[0].key == "dog"
    assert asyncio.run(memory.asearch(NS, query="Biscuit"))[0].key == "dog"
    # all the weight on the vectors: the rare word no longer decides
    vectors_only = LanceStore(
        store=memory.store,
        index=memory.index_config,
        search_mode="hybrid",
        fusion=FusionOptions(weights={"text": 0.0, "vector": 1.0}),
    )
    assert vectors_only.search(NS, query="what is Biscuit")[0].key != "dog"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"search_mode": "bm25"}, "search_mode must be 'vector' or 'hybrid'"),
        ({"search_mode": "hybrid", "fusion": {"text": 1.0}}, "fusion takes a FusionOptions"),
        ({"fusion": FusionOptions()}, "fusion applies to search_mode='hybrid' only"),
    ],
)
def test_bad_search_options_are_refused_before_a_store_is_opened(
    tmp_path: Path, options: dict[str, Any], message: str
) -> None:
    path = tmp_path / "never.lance"
    with pytest.raises(ValueError, match=message):
        open_memory(path, **options)
    assert not path.exists()
    ContextStore.open(str(path), embedder=None, dimension=DIMS)  # the location stays free
