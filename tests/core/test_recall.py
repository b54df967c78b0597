"""recall(): the best matches of a conversation, each with the turns around it; indexed-text hints."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from lance_context import ContextRecord, ContextStore, HashingEmbedder, RecallOptions, SearchError
from lance_context.adapters import ChatIndexing, ChatTurn

TURNS = [
    ("Mel", "Hi! How was your weekend?"),
    ("Caro", "Great, I went hiking in the Alps."),
    ("Mel", "Which trail did you take?"),
    ("Caro", "The one above Chamonix, past the glacier."),
    ("Mel", "Did you take photos?"),
    ("Caro", "Lots. I will send you the best ones."),
    ("Mel", "Also, my sister adopted a puppy."),
    ("Caro", "A puppy! What breed?"),
    ("Mel", "A border collie named Pip."),
]


@pytest.fixture
def store(tmp_path: Path) -> ContextStore:
    store = ContextStore.open(str(tmp_path / "chat.lance"), embedder=HashingEmbedder(64))
    store.add(
        [
            ContextRecord.from_content(f"{who}: {text}", run_id="chat", id=f"t{i}")
            for i, (who, text) in enumerate(TURNS)
        ]
    )
    store.add(ContextRecord.from_content("Caro: the glacier was in another chat", run_id="other", id="x"))
    return store


def test_matches_come_with_their_neighbours_best_first(store: ContextStore) -> None:
    found = store.recall("the glacier above Chamonix", run_id="chat", k=1)
    assert [r.match.id for r in found] == ["t3"]
    assert [t.id for t in found[0].turns] == ["t2", "t3", "t4"]  # the question before, the reply after
    wider = store.recall("puppy breed", run_id="chat", k=2, before=0, after=0)
    assert {r.match.id for r in wider} <= {"t6", "t7", "t8"} and len(wider) == 2
    assert all(len(r.turns) <= 1 for r in wider)


def test_k_counts_matches_and_no_turn_comes_twice(store: ContextStore) -> None:
    found = store.recall("hiking Alps glacier Chamonix trail", run_id="chat", k=3)
    assert len(found) == 3
    turns = [t.id for r in found for t in r.turns]
    assert len(turns) == len(set(turns))
    assert all(t.run_id == "chat" for r in found for t in r.turns)  # never another session's turn


def test_without_a_session_matches_come_alone(store: ContextStore) -> None:
    found = store.recall("glacier", k=2, options=RecallOptions(before=1, after=1))
    assert {r.match.id for r in found} <= {"t3", "x"}
    assert all([t.id for t in r.turns] == [r.match.id] for r in found)
    with pytest.raises(SearchError, match="non-empty text"):
        store.recall("   ", run_id="chat")


def test_indexed_text_hints_are_searched_but_never_read_back(tmp_path: Path) -> None:
    store = ContextStore.open(str(tmp_path / "hints.lance"), embedder=HashingEmbedder(64))
    turns = [ChatTurn("Where did you go?", speaker="Mel"), ChatTurn("Lisbon, for the tiles.", speaker="Caro")]
    texts, embedded = ChatIndexing().texts(turns)
    store.add(
        [
            ContextRecord(run_id="chat", id=f"m{i}", text_payload=t.text, search_text=s, embed_text=e)
            for i, (t, s, e) in enumerate(zip(turns, texts, embedded, strict=True))
        ]
    )
    hits = store.search("Caro", k=1, mode="text")  # the speaker is only in the indexed text
    assert [h.record.id for h in hits] == ["m1"]
    assert hits[0].record.text == "Lisbon, for the tiles." and hits[0].record.search_text is None
    back = store.records("chat")
    assert [r.text for r in back] == ["Where did you go?", "Lisbon, for the tiles."]
    assert all(r.search_text is None and r.embed_text is None for r in back)
    embedded_vector = HashingEmbedder(64).embed_texts([embedded[1]])[0]
    assert store.search(embedded_vector.tolist(), k=1)[0].record.id == "m1"  # the embedded text's vector
    with pytest.raises(Exception, match="search_text must be a str"):
        store.add(ContextRecord(run_id="chat", text_payload="x", search_text=3))  # type: ignore[arg-type]


def test_the_time_a_turn_was_appended_does_not_match_numbers_in_a_query(tmp_path: Path) -> None:
    # Short turns appended one evening (7:31 pm) and, the next morning, one long turn
    # that holds the answer. With the time of day in the indexed text, "7" was in
    # every evening turn: it no longer told the answer apart, and the short turns won
    # on "planet" alone.
    store = ContextStore.open(str(tmp_path / "clock.lance"), embedder=HashingEmbedder(64))
    evening = [
        ContextRecord(
            run_id="chat",
            id=f"p{n}",
            text_payload=f"planet {n} is red",
            created_at=datetime(2026, 11, 29, 19, 31, n, tzinfo=timezone.utc),
        )
        for n in (1, 2, 3, 4, 5, 6, 8, 9)
    ]
    answer = ContextRecord(
        run_id="chat",
        id="answer",
        text_payload="planet 7 has two moons, a thin ring and a long winter that lasts for years",
        created_at=datetime(2026, 11, 30, 9, 5, tzinfo=timezone.utc),
    )
    records = [*evening, answer]
    ChatIndexing().hint(store, "chat", records, speaker=lambda r: "Ann")
    assert all("pm" not in (r.search_text or "") and "19" not in (r.search_text or "") for r in records)
    assert answer.search_text is not None and answer.search_text.startswith(
        "[30 November, 2026] Ann: planet 7"
    )
    store.add(records)
    for query in ("planet 7", "what about planet 7?"):
        assert [h.record.id for h in store.search(query, k=1, mode="text", run_id="chat")] == ["answer"]
    assert [r.match.id for r in store.recall("planet 7", k=1, run_id="chat")] == ["answer"]
    hits = store.search("31", k=10, mode="text", run_id="chat")  # the minute the evening turns were written
    assert hits == []


def test_recall_and_hybrid_search_fill_k_beyond_the_fusion_depth(tmp_path: Path) -> None:
    from lance_context import FusionOptions

    store = ContextStore.open(str(tmp_path / "many.lance"), embedder=HashingEmbedder(16))
    store.add(
        [ContextRecord.from_content(f"turn {i} about apples", run_id="s", id=f"t{i}") for i in range(40)]
    )
    shallow = FusionOptions(depth=5)
    assert len(store.search("apples", k=20, mode="hybrid", fusion=shallow)) == 20
    deep = RecallOptions(fusion=shallow, before=0, after=0)
    assert len(store.recall("apples", run_id="s", k=20, options=deep)) == 20
    assert len(store.recall("apples", k=20, options=deep)) == 20
    with pytest.raises(SearchError, match="before must be a non-negative integer"):
        store.recall("apples", run_id="s", before=-1)


def test_a_reranker_reorders_recall_with_or_without_a_session(store: ContextStore) -> None:
    import numpy as np

    def by_length(query: str, texts: Sequence[str]) -> list[Any]:  # numpy scores, one NaN dropped
        return [np.float32("nan") if "glacier" in t else np.float32(len(t)) for t in texts]

    options = RecallOptions(reranker=by_length, before=0, after=0)
    for run_id in ("chat", None):
        found = store.recall("glacier hiking Chamonix trail", run_id=run_id, k=2, options=options)
        texts = [r.match.text or "" for r in found]
        assert texts and all("glacier" not in t for t in texts)
        assert [len(t) for t in texts] == sorted((len(t) for t in texts), reverse=True)
