"""Vector, full-text and hybrid search, always filtered before the top-k is cut."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

from lance_context import ContextRecord, ContextStore, HashingEmbedder, IndexPolicy, SearchError
from lance_context.adapters import mmr_select, rrf_fuse

from .conftest import text

FACTS = [
    "cherry blossoms bloom in Kyoto in early April",
    "Lisbon has mild weather and custard tarts",
    "the quarterly budget review is on Monday",
    "bring an umbrella: rain expected in London",
]


@pytest.fixture
def facts(store: ContextStore) -> ContextStore:
    store.add([text(f, id=f"f{i}") for i, f in enumerate(FACTS)])
    return store


def test_vector_search_ranks_and_reports_diagnostics(facts: ContextStore) -> None:
    hits = facts.search("Kyoto cherry blossoms", k=2)
    assert hits[0].record.id == "f0"
    assert hits[0].channels == ("vector",)
    assert hits[0].vector_distance is not None and hits[0].text_score is None
    assert hits[0].score == pytest.approx(1 - hits[0].vector_distance)
    assert hits[0].score >= hits[1].score
    assert len(hits) == 2


def test_text_search_is_bm25(facts: ContextStore) -> None:
    hits = facts.search("umbrella", k=3, mode="text")
    assert [h.record.id for h in hits] == ["f3"]
    assert hits[0].text_score is not None and hits[0].text_score > 0
    assert hits[0].channels == ("text",)


def test_text_search_finds_rows_added_after_the_index(facts: ContextStore) -> None:
    facts.add(text("the umbrella stand is broken", id="late"))
    assert {h.record.id for h in facts.search("umbrella", k=5, mode="text")} == {"f3", "late"}


def test_text_queries_are_not_parsed_as_syntax(facts: ContextStore) -> None:
    assert facts.search("budget AND (review", k=3, mode="text")[0].record.id == "f2"
    assert facts.search("   ", k=3, mode="text") == []


def test_hybrid_fuses_both_channels(facts: ContextStore) -> None:
    hits = facts.search("Lisbon weather", k=4, mode="hybrid")
    assert hits[0].record.id == "f1"
    assert set(hits[0].channels) == {"vector", "text"}
    assert hits[0].vector_distance is not None and hits[0].text_score is not None
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


def test_prefilter_never_misses_a_sessions_records(store_path: str) -> None:
    """One session's few records are found even when other sessions dominate the top-k."""
    store = ContextStore.open(store_path, embedder=HashingEmbedder(16))
    store.add([text("kyoto travel plans", run_id=f"noise-{i}") for i in range(300)])
    store.add(text("a note about something else entirely", run_id="mine", id="mine-1"))
    for mode in ("vector", "hybrid"):
        hits = store.search("kyoto travel plans", k=3, mode=mode, run_id="mine")
        assert [h.record.id for h in hits] == ["mine-1"]
    assert store.search("note", k=3, mode="text", run_id="mine")[0].record.id == "mine-1"
    assert all(h.record.run_id != "mine" for h in store.search("kyoto", k=50, run_id="noise-1")) is True
    assert len(store.search("kyoto", k=50, run_id="noise-1")) == 1


def test_filters_by_roles_time_and_where(store: ContextStore) -> None:
    base = datetime(2025, 1, 1, tzinfo=timezone.utc)
    store.add(
        [
            text("apple pie recipe", id="u", role="user", created_at=base, metadata={"lang": "en"}),
            text(
                "apple tart recipe",
                id="a",
                role="assistant",
                created_at=base + timedelta(days=1),
                metadata={"lang": "fr"},
            ),
        ]
    )
    assert [h.record.id for h in store.search("apple", roles="assistant")] == ["a"]
    assert [h.record.id for h in store.search("apple", since=base + timedelta(hours=1))] == ["a"]
    assert [h.record.id for h in store.search("apple", until=base + timedelta(hours=1))] == ["u"]
    assert [h.record.id for h in store.search("apple", where={"lang": "en"}, mode="hybrid")] == ["u"]


def test_time_travel_search(facts: ContextStore) -> None:
    before = facts.version()
    facts.add(text("Kyoto cherry blossoms festival tickets", id="new"))
    assert facts.search("Kyoto cherry blossoms festival", k=1)[0].record.id == "new"
    assert facts.search("Kyoto cherry blossoms festival", k=1, version=before)[0].record.id == "f0"
    facts.tag("old", before)
    assert "new" not in {h.record.id for h in facts.search("Kyoto", k=10, mode="text", version="old")}


def test_a_record_added_twice_is_one_hit_in_every_mode(store: ContextStore) -> None:
    store.add(text("status: packing for Porto", id="status"))
    store.add(text("status: boarding for Porto", id="status"))  # add(), not upsert(): two stored copies

    for mode in ("vector", "text", "hybrid"):
        hits = store.search("status Porto", mode=mode, k=5)
        assert [h.record.id for h in hits] == ["status"], mode
        assert hits[0].record.text in {"status: packing for Porto", "status: boarding for Porto"}
    assert [h.record.id for h in store.search("status Porto", k=5, mmr=True)] == ["status"]
    store.add(text("Porto weather", id="other"))
    for mode in ("vector", "text", "hybrid"):  # the copies never crowd another record out of the top k
        assert sorted(h.record.id for h in store.search("status Porto", mode=mode, k=2)) == [
            "other",
            "status",
        ]


def test_search_by_vector(facts: ContextStore) -> None:
    vector = facts.records()[2].embedding
    assert vector is not None
    assert facts.search(vector, k=1)[0].record.id == "f2"
    assert facts.search(vector.tolist(), k=1)[0].record.id == "f2"


def test_mmr_prefers_diverse_results(store: ContextStore) -> None:
    store.add(
        [
            text("kyoto temples kyoto temples", id="d1"),
            text("kyoto temples kyoto temples", id="d2"),
            text("kyoto food markets", id="other"),
        ]
    )
    plain = [h.record.id for h in store.search("kyoto temples", k=2)]
    diverse = [h.record.id for h in store.search("kyoto temples", k=2, mmr=True, lambda_mult=0.3)]
    assert set(plain) == {"d1", "d2"}
    assert "other" in diverse


def test_mmr_select_unit() -> None:
    candidates = np.array([[1, 0], [1, 0], [0, 1]], dtype=np.float32)
    assert mmr_select(np.array([1, 0.1], dtype=np.float32), candidates, 2, 0.3) == [0, 2]
    assert mmr_select(np.array([1, 0], dtype=np.float32), candidates[:0], 2, 0.5) == []


def _seeded_candidates(dim: int) -> tuple[np.ndarray, np.ndarray]:
    """Eight vectors and a query on which the two MMR redundancies pick differently."""
    rng = np.random.default_rng(1)
    vectors, query = rng.normal(size=(8, 4)), rng.normal(size=4)
    pad = np.zeros((9, dim - 4))
    return np.hstack([vectors, pad[:8]]).astype(np.float32), np.hstack([query, pad[8]]).astype(np.float32)


def test_mmr_redundancy_against_every_hit_chosen_or_the_last_one(store: ContextStore) -> None:
    vectors, query = _seeded_candidates(32)
    store.add(
        [ContextRecord(id=f"r{i}", text_payload=f"note {i}", embedding=v) for i, v in enumerate(vectors)]
    )

    def ids(**options: object) -> list[str]:
        return [h.record.id for h in store.search(query, k=4, fetch_k=8, **options)]  # type: ignore[arg-type]

    # after r2, r0, r3: under "all" r7 pays for its cosine 0.62 to r0 (-0.22 against r5's
    # -0.09); under "last" only r3 counts, and r7, opposite to it (-0.72), scores 0.45
    assert ids(mmr=True) == ids(mmr="all") == ["r2", "r0", "r3", "r5"]
    assert ids(mmr="last") == ["r2", "r0", "r3", "r7"]
    hits = store.search(query, k=4, fetch_k=8, mmr="last")
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    cosines = unit @ (query / np.linalg.norm(query))
    assert [h.score for h in hits] == pytest.approx([cosines[int(h.record.id[1:])] for h in hits], abs=1e-5)
    for bad in ("first", 1, None, np.array([True, False])):
        with pytest.raises(SearchError, match="mmr must be True, False, 'all' or 'last'"):
            store.search(query, k=4, mmr=bad)  # type: ignore[arg-type]
    logged = store.search(query, k=4, fetch_k=8, mmr="last", record=True)
    replay = store.replay(logged.search_id or "")
    assert replay.identical and replay.ids == ["r2", "r0", "r3", "r7"]


def test_rrf_fuse_unit() -> None:
    scores = rrf_fuse({"v": ["a", "b"], "t": ["b", "c"]}, k=60)
    assert scores["b"] == pytest.approx(1 / 62 + 1 / 61)
    assert max(scores, key=scores.__getitem__) == "b"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"k": 0}, "k must be an integer from 1"),
        ({"k": 2**63, "mode": "text"}, "k must be an integer from 1"),
        ({"mode": "fuzzy"}, "mode must be"),
        ({"since": "2024-01-01"}, "since/until take timezone-aware datetimes"),
        ({"until": 1700000000, "mode": "text"}, "since/until take timezone-aware datetimes"),
        ({"roles": 5}, "roles must be a role or an iterable"),
        ({"roles": ["user", 5]}, "roles are strings"),
        ({"fetch_k": "10", "mmr": True}, "fetch_k must be a positive integer"),
        ({"fetch_k": 2.5, "mode": "hybrid"}, "fetch_k must be a positive integer"),
        ({"alpha": "0.5", "mode": "hybrid"}, "alpha must be a number from 0 to 1"),
        ({"lambda_mult": "x", "mmr": True}, "lambda_mult must be a number from 0 to 1"),
        ({"fusion": {"method": "rrf"}, "mode": "hybrid"}, "fusion takes a FusionOptions"),
        ({"mode": "text", "query": [1.0] * 32}, "text query"),
        ({"query": [1.0, 2.0]}, "2 dimensions"),
        ({"query": object()}, "cannot search with a object"),
    ],
)
def test_search_errors(facts: ContextStore, kwargs: dict, message: str) -> None:
    query = kwargs.pop("query", "hello")
    with pytest.raises((SearchError, ValueError), match=message):
        facts.search(query, **kwargs)


def test_store_without_vectors_explains(store_path: str) -> None:
    plain = ContextStore.open(store_path, embedder=None)
    plain.add(text("hello there"))
    with pytest.raises(SearchError, match="no vectors"):
        plain.search("hello")
    assert plain.search("hello", mode="text")[0].record.text == "hello there"


def test_text_query_on_store_opened_without_its_embedder(store_path: str) -> None:
    ContextStore.open(store_path, embedder=HashingEmbedder(8)).add(text("x"))
    detached = ContextStore.open(store_path, embedder=None)
    with pytest.raises(SearchError, match="without an embedder"):
        detached.search("x")
    assert len(detached.search(HashingEmbedder(8).embed_texts(["x"])[0], k=1)) == 1


def test_vector_index_is_used_and_filtered_search_stays_exact(store_path: str) -> None:
    policy = IndexPolicy(vector_index_min_rows=512, flat_search_max_rows=100)
    store = ContextStore.open(store_path, embedder=None, dimension=16, indexing=policy)
    rng = np.random.default_rng(7)
    vectors = rng.normal(size=(600, 16)).astype(np.float32)
    store.add(
        [
            ContextRecord(run_id=f"s{i % 20}", id=f"r{i}", text_payload=f"t{i}", embedding=vectors[i])
            for i in range(600)
        ]
    )
    import lance

    assert "embedding_idx" in {i.name for i in lance.dataset(store_path).describe_indices()}
    query = vectors[5]
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    exact_in_session = [
        f"r{i}" for i in np.argsort(-(unit @ (query / np.linalg.norm(query)))) if i % 20 == 5
    ][:10]
    hits = store.search(query, k=10, run_id="s5")
    assert [h.record.id for h in hits] == exact_in_session  # a selective filter searches exactly
    assert store.search(query, k=1)[0].record.id == "r5"


def test_session_search_skips_records_without_a_vector(store_path: str) -> None:
    """A session's exact search ranks the records that have a vector and leaves the others out."""
    store = ContextStore.open(store_path, embedder=None, dimension=8)
    rng = np.random.default_rng(11)
    vectors = rng.normal(size=(6, 8)).astype(np.float32)
    records = [
        ContextRecord(run_id="s", id=f"v{i}", text_payload=f"t{i}", embedding=vectors[i]) for i in range(6)
    ]
    records[2:2] = [ContextRecord(run_id="s", id=f"plain{i}", text_payload=f"p{i}") for i in range(3)]
    store.add(records)
    store.add(ContextRecord(run_id="other", id="o", embedding=vectors[0]))
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    expected = [f"v{i}" for i in np.argsort(-(unit @ unit[3]))]
    hits = store.search(vectors[3], k=10, run_id="s")
    assert [h.record.id for h in hits] == expected
    assert hits[0].vector_distance == pytest.approx(0.0, abs=1e-5)


def test_ivf_pq_index_option(store_path: str) -> None:
    policy = IndexPolicy(vector_index_min_rows=512, vector_index_type="IVF_PQ")
    store = ContextStore.open(store_path, embedder=None, dimension=16, indexing=policy)
    vectors = np.random.default_rng(3).normal(size=(600, 16)).astype(np.float32)
    store.add([ContextRecord(run_id="s", id=f"r{i}", embedding=vectors[i]) for i in range(600)])
    import lance

    assert "embedding_idx" in {i.name for i in lance.dataset(store_path).describe_indices()}
    assert store.search(vectors[42], k=1)[0].record.id == "r42"


def test_full_text_index_folds_in_new_rows_once_a_share_of_the_store_is_outside_it(store_path: str) -> None:
    import lance

    store = ContextStore.open(store_path, embedder=None)

    def unindexed() -> int:
        return int(lance.dataset(store_path).stats.index_stats("search_text_idx")["num_unindexed_rows"])

    def add(start: int, n: int) -> None:
        store.add(
            [
                ContextRecord(run_id="s", text_payload=f"turn {i} about lisbon")
                for i in range(start, start + n)
            ]
        )

    add(0, 2_000)  # builds the indexes
    assert unindexed() == 0
    add(2_000, 150)  # under scalar_refresh_rows: searched without the index for now
    assert unindexed() == 150
    add(2_150, 120)  # 270 rows outside: over 256 and over 10 % of 2,270 rows
    assert unindexed() == 0
    assert [h.record.text for h in store.search("turn 2269", k=1, mode="text")] == ["turn 2269 about lisbon"]
    with pytest.raises(ValueError, match="refresh_unindexed_share"):
        IndexPolicy(refresh_unindexed_share=1.5)


def test_recall_builds_a_due_vector_index_as_search_does(store_path: str) -> None:
    """A store loaded in one large write has its vector index built by the first read that ranks by vector."""
    policy = IndexPolicy(vector_index_min_rows=100)
    store = ContextStore.open(store_path, embedder=HashingEmbedder(16), indexing=policy)
    store.add([ContextRecord(run_id=f"s{i % 3}", id=f"r{i}", text_payload=f"turn {i}") for i in range(300)])
    import lance

    assert "embedding_idx" not in {i.name for i in lance.dataset(store_path).describe_indices()}
    recalled = store.recall("turn 7", run_id="s1", k=1, before=0, after=0)
    assert [r.match.id for r in recalled] == ["r7"]
    assert "embedding_idx" in {i.name for i in lance.dataset(store_path).describe_indices()}
    pinned = ContextStore.open(store_path, embedder=HashingEmbedder(16), indexing=policy, read_only=True)
    assert [r.match.id for r in pinned.recall("turn 8", run_id="s2", k=1, before=0, after=0)] == ["r8"]
