"""LangChain adapters under concurrency, fifth pass: gathered async calls, threads, two stores.

Each test runs the same concurrent calls on LangChain's own reference backend and on
ours, and compares what a user reads back. Races are forced with events and barriers on
a hook, never left to chance.
"""

from __future__ import annotations

import asyncio
import threading
import warnings
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from langchain_core.caches import InMemoryCache
from langchain_core.chat_history import BaseChatMessageHistory, InMemoryChatMessageHistory
from langchain_core.documents import Document
from langchain_core.embeddings import DeterministicFakeEmbedding
from langchain_core.indexing import InMemoryRecordManager, RecordManager, aindex, index
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.outputs import Generation
from langchain_core.stores import InMemoryByteStore
from langchain_core.vectorstores import InMemoryVectorStore, VectorStore

import lance_context._writer as writer_module
import lance_context.langchain._record_manager as record_manager_module
from lance_context import ContextStore, HashingEmbedder
from lance_context.langchain import (
    LanceByteStore,
    LanceCache,
    LanceChatMessageHistory,
    LanceRecordManager,
    LanceVectorStore,
)


def _open(path: str, *, embedder: bool = True) -> ContextStore:
    return ContextStore.open(path, embedder=HashingEmbedder(16) if embedder else None)


def _same_base(monkeypatch: pytest.MonkeyPatch, writers: int) -> None:
    """Hold the first ``writers`` writes until all of them have read the same version."""
    barrier = threading.Barrier(writers, timeout=30)
    left = [writers]
    guard = threading.Lock()
    real = writer_module.commit_seq

    def held(read_version: int, rows: int) -> int:
        with guard:
            wait, left[0] = left[0] > 0, left[0] - 1
        if wait:
            barrier.wait()
        return real(read_version, rows)

    monkeypatch.setattr(writer_module, "commit_seq", held)


# ---------------------------------------------------------------------- record manager clock
async def test_gathered_updates_leave_the_latest_stamp_for_a_server_whose_clock_lags(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An update that stamped first but commits last must not put an earlier clock mark back.

    Update ``a`` stamps, then stalls before its commit while update ``b`` stamps later
    and commits. Another server on the same store whose clock lags then runs a full
    cleanup: as with LangChain's record managers, it must see both keys as older.
    """
    path = str(tmp_path / "s.lance")
    ours = LanceRecordManager("ns", store=_open(path, embedder=False))
    store = ours.store
    a_stamped, b_done = threading.Event(), threading.Event()
    real_upsert = store.upsert

    def upsert(records: Any, **kwargs: Any) -> Any:
        if any(r.id.endswith(":a") for r in records):
            a_stamped.set()
            b_done.wait(1.0)  # b commits first, unless it has to wait for a
        return real_upsert(records, **kwargs)

    monkeypatch.setattr(store, "upsert", upsert)
    reference = InMemoryRecordManager("ns")
    for manager in (reference, ours):
        first = asyncio.create_task(manager.aupdate(["a"]))
        if manager is ours:
            await asyncio.to_thread(a_stamped.wait, 10)
        await manager.aupdate(["b"])
        if manager is ours:
            b_done.set()
        await first

    # another server: a process of its own (no stamps handed out yet) whose clock is behind
    monkeypatch.setattr(record_manager_module, "_last_us", 0)
    monkeypatch.setattr(record_manager_module, "time", SimpleNamespace(time_ns=lambda: 0))
    server = LanceRecordManager("ns", store=_open(path, embedder=False))
    vectors = LanceVectorStore(DeterministicFakeEmbedding(size=8), store=server.store)
    expected = index(
        [],
        reference,
        InMemoryVectorStore(DeterministicFakeEmbedding(size=8)),
        cleanup="full",
        key_encoder="sha256",
    )
    assert expected["num_deleted"] == 2
    assert index([], server, vectors, cleanup="full", key_encoder="sha256") == expected
    assert server.list_keys() == reference.list_keys() == []


async def test_aindex_twice_at_once_matches_the_reference(tmp_path: Path) -> None:
    """The same corpus indexed twice at once, then shrunk: the reference's counts and documents."""
    docs = [Document(page_content=f"doc {i}", metadata={"source": f"s{i % 2}"}) for i in range(5)]
    store = _open(str(tmp_path / "s.lance"), embedder=False)
    setups: list[tuple[RecordManager, VectorStore]] = [
        (InMemoryRecordManager("ns"), InMemoryVectorStore(DeterministicFakeEmbedding(size=8))),
        (
            LanceRecordManager("ns", store=store),
            LanceVectorStore(DeterministicFakeEmbedding(size=8), store=store),
        ),
    ]
    outcomes = []
    for manager, vectors in setups:
        kwargs: dict[str, Any] = {"source_id_key": "source", "key_encoder": "sha256", "batch_size": 2}
        together = await asyncio.gather(
            aindex(docs, manager, vectors, cleanup="incremental", **kwargs),
            aindex(docs, manager, vectors, cleanup="full", **kwargs),
        )
        after = await aindex(docs[:3], manager, vectors, cleanup="full", **kwargs)
        found = sorted(d.page_content for d in await vectors.asimilarity_search("doc", k=20))
        # how the two runs split the work depends on timing; every document counts once in each
        seen = [(r["num_added"] + r["num_skipped"], r["num_updated"], r["num_deleted"]) for r in together]
        outcomes.append((seen, after, len(await manager.alist_keys()), found))
    assert outcomes[1] == outcomes[0]
    assert outcomes[0][3] == ["doc 0", "doc 1", "doc 2"]


# ---------------------------------------------------------------------- chat history
async def test_two_histories_of_one_session_on_two_stores_keep_each_call_together(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = str(tmp_path / "s.lance")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        reference: BaseChatMessageHistory = InMemoryChatMessageHistory()
    ours = [LanceChatMessageHistory("chat", store=_open(path)) for _ in range(2)]
    turns = [[HumanMessage(f"q{i}"), AIMessage(f"a{i}")] for i in range(4)]
    await asyncio.gather(*(reference.aadd_messages(turn) for turn in turns))
    _same_base(monkeypatch, len(turns))
    await asyncio.gather(*(ours[i % 2].aadd_messages(turn) for i, turn in enumerate(turns)))
    for history in ours:
        got = [m.content for m in await history.aget_messages()]
        pairs = sorted(zip(got[::2], got[1::2], strict=True))
        want = [m.content for m in await reference.aget_messages()]
        assert pairs == sorted(zip(want[::2], want[1::2], strict=True))
        assert [m.content for m in history.get_messages(last=3)] == got[-3:]
    await asyncio.gather(ours[0].aclear(), reference.aclear())
    assert await ours[1].aget_messages() == await reference.aget_messages() == []


# ---------------------------------------------------------------------- kv store, cache, vectors
async def test_gathered_kv_writes_of_one_key_leave_one_entry_as_the_reference(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ours = LanceByteStore(store=_open(str(tmp_path / "s.lance")))
    reference = InMemoryByteStore()
    values = [b"v0", b"v1", b"v2"]
    await asyncio.gather(*(reference.amset([("k", v)]) for v in values))
    _same_base(monkeypatch, len(values))
    await asyncio.gather(*(ours.amset([("k", v)]) for v in values))
    assert [key async for key in ours.ayield_keys()] == [key async for key in reference.ayield_keys()]
    assert (await ours.amget(["k"]))[0] in values
    await asyncio.gather(ours.amdelete(["k"]), reference.amdelete(["k"]))
    assert await ours.amget(["k"]) == await reference.amget(["k"]) == [None]


async def test_gathered_cache_updates_of_one_prompt_leave_one_answer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = _open(str(tmp_path / "s.lance"))
    ours, reference = LanceCache(store=store), InMemoryCache()
    answers = [[Generation(text=f"answer {i}")] for i in range(3)]
    await asyncio.gather(*(reference.aupdate("p", "llm", a) for a in answers))
    _same_base(monkeypatch, len(answers))
    await asyncio.gather(*(ours.aupdate("p", "llm", a) for a in answers), ours.alookup("p", "llm"))
    assert await ours.alookup("p", "llm") in answers
    assert await reference.alookup("p", "llm") in answers
    assert store.count() == 1  # one entry, not one per writer


async def test_gathered_upserts_of_one_new_document_id_leave_one_document(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    embedding = DeterministicFakeEmbedding(size=8)
    ours = LanceVectorStore(embedding, store=_open(str(tmp_path / "s.lance"), embedder=False))
    reference = InMemoryVectorStore(embedding)
    batches = [([f"text {i}", "other"], ["same", f"own {i}"]) for i in range(3)]
    await asyncio.gather(*(reference.aadd_texts(texts, ids=ids) for texts, ids in batches))
    _same_base(monkeypatch, len(batches))
    await asyncio.gather(*(ours.aadd_texts(texts, ids=ids) for texts, ids in batches))
    for vectors in (ours, reference):
        found = await vectors.asimilarity_search("text", k=20)
        assert sorted(str(d.id) for d in found) == ["own 0", "own 1", "own 2", "same"]
    assert len(await ours.aget_by_ids(["same"])) == 1
