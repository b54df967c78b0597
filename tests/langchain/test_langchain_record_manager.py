"""LanceRecordManager: LangChain's index() on LanceVectorStore rewrites only what changed."""

from __future__ import annotations

import time
from collections.abc import Iterable
from types import SimpleNamespace
from typing import Any

import pytest
from langchain_core.documents import Document
from langchain_core.indexing import aindex, index

from lance_context import ContextStore
from lance_context.langchain import LanceRecordManager, LanceVectorStore
from lance_context.langchain import _record_manager as clock_module


class CountingVectorStore(LanceVectorStore):
    """Counts the texts written (by the sync path and by the async twin alike)."""

    written = 0

    def add_texts(
        self,
        texts: Iterable[str],
        metadatas: list[dict[str, Any]] | None = None,
        *,
        ids: list[str] | None = None,
        **kwargs: Any,
    ) -> list[str]:
        texts = list(texts)
        self.written += len(texts)
        return super().add_texts(texts, metadatas, ids=ids, **kwargs)


def _docs(*items: tuple[str, str]) -> list[Document]:
    return [Document(text, metadata={"source": source}) for source, text in items]


def _contents(vs: LanceVectorStore) -> list[str]:
    return sorted(r.text_payload or "" for r in vs.store.records(vs.namespace))


def test_reindexing_a_changed_corpus_rewrites_only_what_changed(store: ContextStore) -> None:
    vs = CountingVectorStore(store=store, collection="docs")
    records = LanceRecordManager("lance/docs", store=store)
    run = dict(record_manager=records, vector_store=vs, source_id_key="source", key_encoder="sha256")
    corpus = _docs(("a.md", "alpha one"), ("a.md", "alpha two"), ("b.md", "beta"))
    assert index(corpus, cleanup="incremental", **run)["num_added"] == 3

    unchanged = index(corpus, cleanup="incremental", **run)
    assert (unchanged["num_added"], unchanged["num_skipped"], unchanged["num_deleted"]) == (0, 3, 0)
    assert vs.written == 3

    edited = _docs(("a.md", "alpha one"), ("a.md", "alpha TWO, edited"), ("b.md", "beta"))
    result = index(edited, cleanup="incremental", **run)
    assert (result["num_added"], result["num_skipped"], result["num_deleted"]) == (1, 2, 1)
    assert vs.written == 4
    assert _contents(vs) == ["alpha TWO, edited", "alpha one", "beta"]

    full = index(_docs(("b.md", "beta")), cleanup="full", **run)
    assert (full["num_added"], full["num_skipped"], full["num_deleted"]) == (0, 1, 2)
    assert _contents(vs) == ["beta"] and vs.written == 4
    assert records.list_keys() == records.list_keys(group_ids=["b.md"]) and len(records.list_keys()) == 1


async def test_aindex_does_the_same_through_the_async_twins(store: ContextStore) -> None:
    vs = CountingVectorStore(store=store, collection="docs")
    records = LanceRecordManager("lance/docs", store=store)
    run = dict(record_manager=records, vector_store=vs, source_id_key="source", key_encoder="sha256")
    await aindex(_docs(("a.md", "one"), ("b.md", "two")), cleanup="full", **run)
    result = await aindex(_docs(("a.md", "one")), cleanup="full", **run)
    assert (result["num_skipped"], result["num_deleted"]) == (1, 1)
    assert _contents(vs) == ["one"] and vs.written == 2


def test_index_on_the_plain_vector_store(store: ContextStore) -> None:
    vs = LanceVectorStore(store=store, collection="docs")
    result = index(_docs(("a.md", "one")), LanceRecordManager("docs", store=store), vs, key_encoder="sha256")
    assert result["num_added"] == 1
    assert [d.page_content for d in vs.similarity_search("one", k=3)] == ["one"]


# ---------------------------------------------------------------------- the record manager API
def test_list_keys_filters_by_time_group_and_limit(store: ContextStore) -> None:
    records = LanceRecordManager("ns", store=store)
    t0 = records.get_time()
    records.update(["a1", "a2"], group_ids=["a", "a"])
    t1 = records.get_time()
    records.update(["b1", "none"], group_ids=["b", None], time_at_least=t1)
    t2 = records.get_time()
    assert t0 < t1 < t2
    assert records.list_keys() == ["a1", "a2", "b1", "none"]  # the clock mark is never a key
    assert records.list_keys(before=t1) == ["a1", "a2"]
    assert records.list_keys(after=t1) == ["b1", "none"]
    assert records.list_keys(after=t0, before=t1) == ["a1", "a2"]
    assert records.list_keys(before=t0) == [] and records.list_keys(after=t2) == []
    assert records.list_keys(group_ids=["b"]) == ["b1"]
    assert records.list_keys(group_ids=[]) == records.list_keys()
    assert records.list_keys(limit=1) == ["a1"]
    assert records.list_keys(limit=0) == records.list_keys()  # as InMemoryRecordManager
    assert records.exists(["a1", "zz", "none"]) == [True, False, True]
    for bad in ({"limit": -1}, {"group_ids": "a"}, {"before": float("nan")}, {"after": -1.0}):
        with pytest.raises(ValueError):
            records.list_keys(**bad)


def test_writes_are_one_commit_and_bad_input_writes_nothing(store: ContextStore) -> None:
    records = LanceRecordManager("ns", store=store)
    before = store.version()
    records.update(["a", "b", "a"], group_ids=["g1", "g2", "g3"])
    assert store.version() == before + 1
    assert records.list_keys(group_ids=["g3"]) == ["a"]  # a repeated key keeps its last group
    before = store.version()
    with pytest.raises(ValueError, match="2 group_ids for 3 keys"):
        records.update(["x", "y", "z"], group_ids=["g", "g"])
    with pytest.raises(ValueError, match="group ids must be str or None"):
        records.update(["x"], group_ids=[7])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="keys must be str"):
        records.update(["x", 7])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="later than the record manager's clock"):
        records.update(["x"], time_at_least=time.time() + 3600)
    records.update([])
    records.delete_keys(["missing"])
    assert store.version() == before and records.exists(["x"]) == [False]
    records.delete_keys(["a", "missing"])
    assert store.version() == before + 1 and records.list_keys() == ["b"]


def test_namespaces_share_nothing_whatever_their_characters(store: ContextStore) -> None:
    outer, inner = LanceRecordManager("a", store=store), LanceRecordManager("a:b", store=store)
    outer.update(["b:c"])
    inner.update(["c"])
    assert outer.list_keys() == ["b:c"] and inner.list_keys() == ["c"]
    assert outer.exists(["c"]) == [False] and inner.exists(["b:c"]) == [False]
    inner.delete_keys(["c"])
    assert outer.exists(["b:c"]) == [True]
    with pytest.raises(ValueError, match="non-empty str"):
        LanceRecordManager("", store=store)


# ---------------------------------------------------------------------- the clock
def _fake_wall_clock(monkeypatch: pytest.MonkeyPatch, offset_seconds: float) -> None:
    shifted = SimpleNamespace(time_ns=lambda: time.time_ns() + int(offset_seconds * 1e9))
    monkeypatch.setattr(clock_module, "time", shifted)


def test_time_never_goes_backwards_when_the_wall_clock_does(
    store: ContextStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    records = LanceRecordManager("ns", store=store)
    start = records.get_time()
    _fake_wall_clock(monkeypatch, -3600)  # NTP stepped the clock back an hour
    records.update(["written-during-the-run"], time_at_least=start)
    assert records.get_time() > start
    assert records.list_keys(before=start) == []  # a cleanup from `start` keeps it


def test_a_writer_with_a_lagging_clock_still_stamps_after_what_the_store_holds(
    store: ContextStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fake_wall_clock(monkeypatch, +3600)  # another machine, an hour ahead, indexed first
    LanceRecordManager("ns", store=store).update(["old"])
    monkeypatch.undo()
    monkeypatch.setattr(clock_module, "_last_us", 0)  # and this is a new process
    records = LanceRecordManager("ns", store=ContextStore.open(store.uri))
    start = records.get_time()
    assert start > time.time() + 3000
    assert records.list_keys(before=start) == ["old"]  # a full cleanup now can remove it


async def test_async_twins(store: ContextStore) -> None:
    records = LanceRecordManager("ns", store=store)
    await records.acreate_schema()
    start = await records.aget_time()
    await records.aupdate(["a"], group_ids=["g"], time_at_least=start)
    assert await records.aexists(["a", "b"]) == [True, False]
    assert await records.alist_keys(after=start, group_ids=["g"], limit=5) == ["a"]
    await records.adelete_keys(["a"])
    assert records.list_keys() == []
