"""LanceStore: LangGraph's BaseStore contract, checked against InMemoryStore where they agree."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from langgraph.store.base import GetOp, InvalidNamespaceError, PutOp, SearchOp
from langgraph.store.memory import InMemoryStore

from lance_context import ContextStore, EmbedderMismatchError, HashingEmbedder, ReadOnlyError
from lance_context.langgraph import LanceStore
from lance_context.langgraph import _store as store_module
from lance_context.langgraph._store_records import ITEM_ROLE, STORE_PREFIX

EMBEDDER = HashingEmbedder(64)


def embed(texts: Sequence[str]) -> list[list[float]]:
    """A LangGraph embedding function (sync)."""
    return EMBEDDER.embed_texts(list(texts)).tolist()


async def aembed(texts: Sequence[str]) -> list[list[float]]:
    """The same, async only (LangGraph calls it from abatch)."""
    await asyncio.sleep(0)
    return embed(texts)


@pytest.fixture
def memory(tmp_path: Path) -> LanceStore:
    return LanceStore(
        uri=str(tmp_path / "memory.lance"), index={"dims": 64, "embed": embed, "fields": ["text"]}
    )


@pytest.fixture
def plain(tmp_path: Path) -> LanceStore:
    return LanceStore(uri=str(tmp_path / "plain.lance"), embedder=None)


def test_put_get_keeps_values_exactly_and_created_at(plain: LanceStore) -> None:
    value = {"z": 1, "a": [1, 2.5, None, True], "big": 2**70, "nested": {"é": "ü"}, "empty": {}}
    plain.put(("users", "u1"), "profile", value)
    first = plain.get(("users", "u1"), "profile")
    assert first is not None and first.value == value
    assert list(first.value) == ["z", "a", "big", "nested", "empty"]
    assert (first.namespace, first.key) == (("users", "u1"), "profile")
    assert first.created_at.tzinfo is not None and first.created_at <= first.updated_at

    plain.put(("users", "u1"), "profile", {"name": "Ada"})
    second = plain.get(("users", "u1"), "profile")
    assert second is not None and second.value == {"name": "Ada"}
    assert second.created_at == first.created_at
    assert second.updated_at > first.updated_at
    assert plain.get(("users", "u1"), "missing") is None
    assert plain.get(("users",), "profile") is None


def test_delete_removes_only_that_item(plain: LanceStore) -> None:
    plain.put(("n",), "a", {"v": 1})
    plain.put(("n",), "b", {"v": 2})
    plain.delete(("n",), "a")
    assert plain.get(("n",), "a") is None
    assert plain.get(("n",), "b") is not None
    plain.delete(("n",), "never-there")


def test_namespaces_are_validated_even_in_raw_batches(plain: LanceStore) -> None:
    with pytest.raises(InvalidNamespaceError):
        plain.put(("a.b",), "k", {"v": 1})
    with pytest.raises(InvalidNamespaceError):
        plain.batch([PutOp(("a.b",), "k", {"v": 1})])
    with pytest.raises(InvalidNamespaceError):
        plain.put(("langgraph",), "k", {"v": 1})


def _fill(store: Any) -> None:
    rows = [
        (("docs", "u1"), "a", {"text": "red apples", "score": 3, "lang": "en", "meta": {"kind": "fruit"}}),
        (("docs", "u1"), "b", {"text": "green tea", "score": 7.5, "lang": "en", "meta": {"kind": "drink"}}),
        (("docs", "u2"), "c", {"text": "pommes rouges", "score": 5, "lang": "fr"}),
        (("docs", "u2", "old"), "d", {"text": "old notes", "score": -1, "lang": None}),
        (("docsx",), "e", {"text": "not under docs", "score": 9}),
        (("other",), "f", {"text": "elsewhere", "score": 1, "lang": "en"}),
    ]
    for namespace, key, value in rows:
        store.put(namespace, key, value, index=False)


@pytest.fixture(scope="module")
def filled(tmp_path_factory: pytest.TempPathFactory) -> tuple[LanceStore, InMemoryStore]:
    """The same items in a LanceStore and in LangGraph's InMemoryStore (read-only tests)."""
    ours = LanceStore(uri=str(tmp_path_factory.mktemp("filled") / "s.lance"), embedder=None)
    oracle = InMemoryStore()
    for store in (ours, oracle):
        _fill(store)
    return ours, oracle


FILTERS: list[dict[str, Any]] = [
    {},
    {"lang": "en"},
    {"lang": {"$eq": "fr"}},
    {"lang": {"$ne": "en"}},
    {"score": {"$gt": 3}},
    {"score": {"$gte": 3}},
    {"score": {"$lt": 5}},
    {"score": {"$lte": 5, "$gt": -1}},
    {"lang": None},
    {"meta": {"kind": "drink"}},
    {"score": 7.5, "lang": "en"},
]


@pytest.mark.parametrize("prefix", [(), ("docs",), ("docs", "u2"), ("docs", "u2", "old"), ("nope",)])
@pytest.mark.parametrize("filter", FILTERS)
def test_search_filters_match_in_memory_store(
    filled: tuple[LanceStore, InMemoryStore], prefix: tuple[str, ...], filter: dict[str, Any]
) -> None:
    def found(store: Any) -> set[tuple[tuple[str, ...], str]]:
        return {(i.namespace, i.key) for i in store.search(prefix, filter=filter, limit=100)}

    ours, oracle = filled
    assert found(ours) == found(oracle)


def test_search_pages_newest_first(plain: LanceStore) -> None:
    for i in range(5):
        plain.put(("log",), f"k{i}", {"i": i})
    plain.put(("log",), "k1", {"i": 1, "edited": True})
    keys = [i.key for i in plain.search(("log",), limit=10)]
    assert keys == ["k1", "k4", "k3", "k2", "k0"]
    assert [i.key for i in plain.search(("log",), limit=2, offset=1)] == ["k4", "k3"]
    assert all(i.score is None for i in plain.search(("log",)))


def test_unknown_filter_operator_is_rejected(plain: LanceStore) -> None:
    with pytest.raises(ValueError, match="Unsupported operator"):
        plain.search(("docs",), filter={"score": {"$in": [1]}})


@pytest.mark.parametrize(
    ("kwargs"),
    [
        {},
        {"prefix": ("docs",)},
        {"prefix": ("docs", "*")},
        {"suffix": ("old",)},
        {"suffix": ("*", "u2")},
        {"prefix": ("docs",), "max_depth": 2},
        {"max_depth": 1},
        {"limit": 2, "offset": 1},
    ],
)
def test_list_namespaces_matches_in_memory_store(
    filled: tuple[LanceStore, InMemoryStore], kwargs: dict[str, Any]
) -> None:
    ours, oracle = filled
    assert ours.list_namespaces(**kwargs) == oracle.list_namespaces(**kwargs)


def test_semantic_search_through_the_index_config(memory: LanceStore) -> None:
    memory.put(("mem", "u1"), "tea", {"text": "I drink green tea every morning"})
    memory.put(("mem", "u1"), "bike", {"text": "commutes by bicycle"})
    memory.put(("mem", "u2"), "tea2", {"text": "hates green tea"})
    memory.put(("mem", "u1"), "secret", {"text": "green tea password"}, index=False)
    hits = memory.search(("mem", "u1"), query="green tea drink", limit=2)
    assert hits[0].key == "tea"
    assert hits[0].score is not None and hits[0].score > hits[1].score  # type: ignore[operator]
    assert {h.key for h in memory.search(("mem",), query="green tea", limit=3)} >= {"tea", "tea2"}
    # an item put with index=False is never ranked, but fills the page when nothing else does
    assert [h.key for h in memory.search(("mem", "u1"), query="green tea", limit=3)][-1] == "secret"
    assert memory.search(("mem", "u1"), query="green tea", limit=3)[-1].score is None


def test_semantic_search_pools_every_indexed_text_per_item(tmp_path: Path) -> None:
    memory = LanceStore(
        uri=str(tmp_path / "m.lance"), index={"dims": 64, "embed": embed, "fields": ["notes[*]"]}
    )
    memory.put(("n",), "travel", {"notes": ["flights to Lisbon", "hotel near the river"]})
    memory.put(("n",), "food", {"notes": ["sourdough recipe", "river fish stew"]})
    hits = memory.search(("n",), query="hotel river", limit=5)
    assert [h.key for h in hits] == ["travel", "food"]  # one result per item, best text wins
    memory.put(("n",), "travel", {"notes": ["museum tickets"]})  # fewer texts: stale ones go
    assert store_records(memory, "travel") == 1
    assert [h.key for h in memory.search(("n",), query="hotel river", limit=1)] == ["food"]


def test_items_without_an_indexed_field_are_stored_unindexed(tmp_path: Path) -> None:
    memory = LanceStore(uri=str(tmp_path / "u.lance"), index={"dims": 64, "embed": embed, "fields": ["text"]})
    memory.batch([
        PutOp(("d",), "plain", {"other": "no text field"}),
        PutOp(("d",), "skipped", {"text": "harbour boats"}, index=["missing"]),
        PutOp(("d",), "none", {"text": "harbour boats"}, index=[]),
        PutOp(("d",), "boats", {"text": "harbour boats"}),
    ])  # fmt: skip
    hits = memory.search(("d",), query="harbour boats", limit=10)
    assert hits[0].key == "boats" and hits[0].score is not None
    assert sorted(h.key for h in hits[1:]) == ["none", "plain", "skipped"]
    assert all(h.score is None for h in hits[1:])  # unindexed items come after, without a score
    assert memory.get(("d",), "plain").value == {"other": "no text field"}  # type: ignore[union-attr]


def store_records(memory: LanceStore, key: str) -> int:
    return memory.store.count(where={"run_id": {"$prefix": STORE_PREFIX}, ("metadata", "key"): key})


def test_filters_apply_before_the_vector_top_k(memory: LanceStore) -> None:
    for i in range(30):
        memory.put(("f",), f"tea{i}", {"text": "green tea", "n": i})
    memory.put(("f",), "coffee", {"text": "black coffee", "n": 100})
    hits = memory.search(("f",), query="green tea", filter={"n": {"$gte": 100}}, limit=1)
    assert [h.key for h in hits] == ["coffee"]


def test_the_stores_own_embedder_serves_queries(tmp_path: Path) -> None:
    store = ContextStore.open(str(tmp_path / "own.lance"), embedder=HashingEmbedder(32))
    memory = LanceStore(store=store)
    memory.put(("m",), "a", {"text": "sailing boats in the harbour"})
    memory.put(("m",), "b", {"text": "tax forms and receipts"})
    assert memory.search(("m",), query="boats harbour", limit=1)[0].key == "a"
    assert all(r.embedding is not None for r in store.records(roles=ITEM_ROLE))


async def test_async_batches_use_async_embedders(tmp_path: Path) -> None:
    memory = LanceStore(
        uri=str(tmp_path / "async.lance"), index={"dims": 64, "embed": aembed, "fields": ["text"]}
    )
    await memory.aput(("a",), "x", {"text": "mountain hiking trails"})
    await memory.aput(("a",), "y", {"text": "quarterly budget"})
    hits = await memory.asearch(("a",), query="hiking in the mountains", limit=1)
    assert [h.key for h in hits] == ["x"]
    assert (await memory.aget(("a",), "y")) is not None
    assert await memory.alist_namespaces() == [("a",)]
    results = await memory.abatch(
        [GetOp(("a",), "x"), SearchOp(("a",), limit=5), PutOp(("a",), "z", {"text": "z"})]
    )
    assert results[0] is not None and len(results[1]) == 2 and results[2] is None  # type: ignore[arg-type]
    await memory.adelete(("a",), "x")
    assert await memory.aget(("a",), "x") is None


def test_reads_in_a_batch_see_the_state_before_its_puts(plain: LanceStore) -> None:
    results = plain.batch([PutOp(("b",), "k", {"v": 1}), GetOp(("b",), "k")])
    assert results == [None, None]
    assert plain.get(("b",), "k") is not None


def test_index_dims_must_match_the_context_store(tmp_path: Path) -> None:
    store = ContextStore.open(str(tmp_path / "s.lance"), embedder=HashingEmbedder(32))
    with pytest.raises(EmbedderMismatchError):
        LanceStore(store=store, index={"dims": 64, "embed": embed})
    with pytest.raises(TypeError):
        LanceStore()


def test_ttl_refresh_expiry_and_sweep(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [datetime(2030, 1, 1, tzinfo=timezone.utc)]
    monkeypatch.setattr(store_module, "_now", lambda: clock[0])
    memory = LanceStore(uri=str(tmp_path / "ttl.lance"), embedder=None, ttl={"omit_expired": True})
    memory.put(("t",), "short", {"v": 1}, ttl=10)
    memory.put(("t",), "forever", {"v": 2})

    clock[0] += timedelta(minutes=8)
    assert memory.get(("t",), "short") is not None  # a read restarts the 10 minutes
    clock[0] += timedelta(minutes=8)
    assert memory.get(("t",), "short", refresh_ttl=False) is not None
    # without a query, the most recently written first; a TTL refresh only moves the expiry
    # (as SqliteStore does), so repeated paginated passes agree
    assert [i.key for i in memory.search(("t",), refresh_ttl=False)] == ["forever", "short"]
    pages = [memory.search(("t",), limit=1, offset=n, refresh_ttl=False) for _ in range(2) for n in (0, 1)]
    passes = [[i.key for i in page] for page in pages]
    assert passes == [["forever"], ["short"]] * 2
    clock[0] += timedelta(minutes=3)
    assert memory.get(("t",), "short") is None  # expired: omitted before the sweep
    assert [i.key for i in memory.search(("t",))] == ["forever"]
    assert memory.sweep_ttl() == 1
    assert memory.store.count(where={("metadata", "key"): "short"}) == 0
    assert memory.get(("t",), "forever") is not None


def test_ttl_config_defaults_and_sweeper(tmp_path: Path) -> None:
    memory = LanceStore(
        uri=str(tmp_path / "ttl.lance"), embedder=None, ttl={"default_ttl": 5, "refresh_on_read": False}
    )
    memory.put(("t",), "k", {"v": 1})
    record = memory.store.records(roles=ITEM_ROLE)[0]
    assert record.metadata["ttl_minutes"] == 5
    memory.get(("t",), "k")
    assert memory.store.records(roles=ITEM_ROLE)[0].metadata["expires_at"] == record.metadata["expires_at"]
    future = memory.start_ttl_sweeper(sweep_interval_minutes=60)
    assert not future.done()
    assert memory.stop_ttl_sweeper(timeout=5)
    assert future.done()
    assert LanceStore(store=memory.store).start_ttl_sweeper().done()  # no TTL config: nothing to run


def test_at_version_shows_the_memories_as_they_were(plain: LanceStore) -> None:
    plain.put(("m",), "k", {"v": 1})
    version = plain.store.version()
    plain.put(("m",), "k", {"v": 2})
    plain.put(("m",), "ttl", {"v": 1}, ttl=60)
    past = plain.at_version(version)
    item = past.get(("m",), "k")
    assert item is not None and item.value == {"v": 1}
    assert plain.at_version(plain.store.version()).get(("m",), "ttl") is not None  # no refresh write
    with pytest.raises(ReadOnlyError):
        past.put(("m",), "k", {"v": 3})


async def test_graph_nodes_share_memories_across_threads(tmp_path: Path) -> None:
    from langgraph.graph import END, START, StateGraph
    from langgraph.store.base import BaseStore
    from typing_extensions import TypedDict

    from lance_context.langgraph import LanceCheckpointSaver

    class State(TypedDict):
        text: str
        found: list[str]

    def remember_or_recall(state: State, *, store: BaseStore) -> dict[str, Any]:
        if state["text"].startswith("remember "):
            store.put(("mem", "ada"), state["text"][9:], {"text": state["text"][9:]})
            return {"found": []}
        return {
            "found": [i.value["text"] for i in store.search(("mem", "ada"), query=state["text"], limit=1)]
        }

    shared = ContextStore.open(str(tmp_path / "one.lance"), embedder=HashingEmbedder(64))
    builder = StateGraph(State)
    builder.add_node("memory", remember_or_recall)
    builder.add_edge(START, "memory")
    builder.add_edge("memory", END)
    graph = builder.compile(checkpointer=LanceCheckpointSaver(store=shared), store=LanceStore(store=shared))

    graph.invoke({"text": "remember likes sailing boats", "found": []}, {"configurable": {"thread_id": "a"}})
    graph.invoke({"text": "remember pays taxes in april", "found": []}, {"configurable": {"thread_id": "a"}})
    out = await graph.ainvoke({"text": "boats sailing", "found": []}, {"configurable": {"thread_id": "b"}})
    assert out["found"] == ["likes sailing boats"]
    # one dataset holds both the threads and the memories
    assert {r.split(":")[0] for r in shared.run_ids()} == {"langgraph.checkpoints", "langgraph.store"}


def test_embedding_output_is_checked_and_dims_probed(tmp_path: Path) -> None:
    from lance_context import EmbeddingError

    probed = LanceStore(uri=str(tmp_path / "probe.lance"), index={"embed": embed})  # type: ignore[typeddict-item]
    assert probed.store.dimension == 64
    broken = LanceStore(
        uri=str(tmp_path / "bad.lance"), index={"dims": 64, "embed": lambda texts: [[0.0] * 3 for _ in texts]}
    )
    with pytest.raises(EmbeddingError):
        broken.put(("n",), "k", {"text": "x"})
    assert broken.get(("n",), "k") is None  # nothing written


def test_a_langchain_embeddings_object_is_accepted(tmp_path: Path) -> None:
    from langchain_core.embeddings import DeterministicFakeEmbedding

    memory = LanceStore(
        uri=str(tmp_path / "lc.lance"),
        index={"dims": 8, "embed": DeterministicFakeEmbedding(size=8), "fields": ["text"]},
    )
    memory.put(("n",), "a", {"text": "alpha"})
    memory.put(("n",), "b", {"text": "beta"})
    hits = memory.search(("n",), query="alpha", limit=2)
    assert hits[0].key == "a"  # the fake embeds equal texts equally
    assert hits[0].score == pytest.approx(1.0, abs=1e-5)
    assert memory.store.dimension == 8


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (PutOp(("n",), "bad", {"x": float("nan")}), "not JSON"),
        (PutOp(("n",), "bad", {"x": b"bytes"}), "not JSON"),
        (PutOp(("n",), "bad", {"x": "\ud800"}), "not valid unicode"),
        (PutOp(("n",), "\ud800", {"x": 1}), "the key is not valid unicode"),
        (PutOp(("n",), "bad", ["not", "a", "dict"]), "must be a dict"),  # type: ignore[arg-type]
        (PutOp(("n",), "bad", {"x": 1}, ttl=-5), "ttl"),
        (PutOp(("n",), "bad", {"x": 1}, ttl=float("inf")), "ttl"),
        (PutOp(("n",), "bad", {"x": 1}, ttl="10"), "ttl"),  # type: ignore[arg-type]
        (PutOp(("n",), "bad", {"text": "x"}, index="text"), "index"),  # type: ignore[arg-type]
    ],
)
def test_a_bad_put_is_refused_and_its_batch_writes_nothing(
    memory: LanceStore, bad: PutOp, message: str
) -> None:
    from lance_context import InvalidRecordError

    memory.put(("n",), "kept", {"text": "stays"})
    version = memory.store.version()
    with pytest.raises(InvalidRecordError, match=message):
        memory.batch([PutOp(("n",), "kept", None), PutOp(("n",), "new", {"text": "new"}), bad])
    assert memory.store.version() == version  # not even the batch's delete ran
    assert memory.get(("n",), "kept") is not None and memory.get(("n",), "new") is None
    assert memory.get(("n",), "\ud800") is None  # a key that can never be stored reads as missing


@pytest.mark.parametrize("page", [{"limit": -1}, {"offset": -1}, {"limit": 1.5}])
def test_a_negative_search_page_is_refused(plain: LanceStore, page: dict[str, Any]) -> None:
    from lance_context import SearchError

    plain.put(("n",), "k", {"v": 1})
    with pytest.raises(SearchError, match="must be an int >= 0"):
        plain.search(("n",), **page)
    with pytest.raises(SearchError):
        asyncio.run(plain.asearch(("n",), **page))
