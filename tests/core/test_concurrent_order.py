"""Writes made at once on top of the same version keep each write's records together.

Lance rebases concurrent appends, so several ``add()`` calls can commit on top of one
version. Each write must still read back as one run of records (a question next to its
answer), whichever thread, task or adapter made it. A barrier inside the fragment
write holds every writer until all of them have read the same version, so the race
these tests need happens every time.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage

import lance_context._writer as writer_module
from lance_context import ContextRecord, ContextStore, HashingEmbedder
from lance_context._writer import SEQ_SHIFT, commit_seq, seq_base
from lance_context.langchain import LanceChatMessageHistory

WRITERS = 4


@pytest.fixture
def same_base(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """Hold each append's fragment write until ``WRITERS`` appends have read their version."""
    barrier = threading.Barrier(WRITERS, timeout=30)
    bases: list[int] = []
    real = writer_module.write_fragments

    def held(table: Any, base: Any, **kwargs: Any) -> Any:
        bases.append(int(base.version))
        barrier.wait()
        return real(table, base, **kwargs)

    monkeypatch.setattr(writer_module, "write_fragments", held)
    yield bases


def _pair(writer: int) -> list[ContextRecord]:
    # ids chosen so that ordering ties by id would alternate the writers' records
    return [
        ContextRecord.from_content(f"question {writer}", run_id="chat", id=f"a-{writer}", role="user"),
        ContextRecord.from_content(f"answer {writer}", run_id="chat", id=f"b-{writer}", role="assistant"),
    ]


def _runs(texts: list[str]) -> list[tuple[str, str]]:
    assert len(texts) % 2 == 0
    return [(texts[i], texts[i + 1]) for i in range(0, len(texts), 2)]


def test_threads_adding_at_once_keep_each_write_together(tmp_path: Path, same_base: list[int]) -> None:
    store = ContextStore.open(str(tmp_path / "s.lance"), embedder=HashingEmbedder(16))
    threads = [threading.Thread(target=store.add, args=(_pair(w),)) for w in range(WRITERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(same_base)) == 1  # every write read the same version
    pairs = _runs([r.text for r in store.records("chat")])
    assert sorted(pairs) == sorted((f"question {w}", f"answer {w}") for w in range(WRITERS))
    # a store opened afresh reads the same order
    again = ContextStore.open(str(tmp_path / "s.lance"), embedder=HashingEmbedder(16))
    assert [r.id for r in again.records("chat")] == [r.id for r in store.records("chat")]


async def test_gathered_async_adds_keep_each_write_together(tmp_path: Path, same_base: list[int]) -> None:
    store = ContextStore.open(str(tmp_path / "s.lance"), embedder=HashingEmbedder(16))
    await asyncio.gather(*(store.aio.add(_pair(w)) for w in range(WRITERS)))
    assert len(set(same_base)) == 1
    pairs = _runs([r.text for r in store.records("chat")])
    assert sorted(pairs) == sorted((f"question {w}", f"answer {w}") for w in range(WRITERS))
    last = [r.text for r in store.records("chat", last=3)]
    assert last == [r.text for r in store.records("chat")][-3:]


async def test_langchain_history_gathered_turns_stay_paired(tmp_path: Path, same_base: list[int]) -> None:
    history = LanceChatMessageHistory("chat", uri=str(tmp_path / "h.lance"), embedder=None)
    await asyncio.gather(
        *(
            history.aadd_messages([HumanMessage(f"question {w}"), AIMessage(f"answer {w}")])
            for w in range(WRITERS)
        )
    )
    messages = await history.aget_messages()
    pairs = _runs([str(m.content) for m in messages])
    assert sorted(pairs) == sorted((f"question {w}", f"answer {w}") for w in range(WRITERS))
    assert [type(m) for m in messages] == [HumanMessage, AIMessage] * WRITERS


def _writer_process(uri: str, name: str, first_slot: int, barrier: Any, rounds: int) -> None:
    # two processes' slots meet only by chance: give each half of them, so the test is exact
    writer_module._FIRST_SLOT, writer_module._STRIDE = first_slot, 2
    real = writer_module.write_fragments

    def held(table: Any, base: Any, **kwargs: Any) -> Any:
        barrier.wait(60)  # both processes have read the same version before either commits
        return real(table, base, **kwargs)

    writer_module.write_fragments = held  # type: ignore[assignment]
    store = ContextStore.open(uri, embedder=HashingEmbedder(16))
    for i in range(rounds):
        store.add(
            [
                ContextRecord.from_content(f"question {name}{i}", run_id="chat", id=f"a-{name}{i}"),
                ContextRecord.from_content(f"answer {name}{i}", run_id="chat", id=f"b-{name}{i}"),
            ]
        )
        barrier.wait(60)  # both have committed before either reads for the next round


def test_processes_adding_at_once_keep_each_write_together(tmp_path: Path) -> None:
    uri, rounds = str(tmp_path / "s.lance"), 10
    ContextStore.open(uri, embedder=HashingEmbedder(16))
    spawn = multiprocessing.get_context("spawn")
    barrier = spawn.Barrier(2)
    children = [
        spawn.Process(target=_writer_process, args=(uri, name, slot, barrier, rounds))
        for name, slot in (("x", 0), ("y", 1))
    ]
    for child in children:
        child.start()
    for child in children:
        child.join(120)
        assert child.exitcode == 0
    store = ContextStore.open(uri, embedder=HashingEmbedder(16))
    seqs = store.outline("chat").table.column("seq").to_pylist()
    assert sorted({seq >> SEQ_SHIFT for seq in seqs}) == sorted(seq >> SEQ_SHIFT for seq in seqs[::4])
    assert len(seqs) == 4 * rounds  # every round: two writes on top of one version
    pairs = _runs([r.text for r in store.records("chat")])
    assert all(q.split()[1] == a.split()[1] for q, a in pairs), pairs


def test_each_write_takes_its_own_slot_of_the_version_range() -> None:
    firsts = [commit_seq(7, 1_000) for _ in range(4_096)]
    assert len(set(firsts)) == 4_096  # one process never hands out a slot twice in a row of 4,096
    for first in firsts:
        assert seq_base(7) <= first and first + 1_000 <= seq_base(8)  # later versions still sort after
        assert (first - seq_base(7)) % (1 << 16) == 0
    assert commit_seq(7, 1 << 17) == seq_base(7)  # a large write takes the whole range
    assert seq_base(8) - seq_base(7) == 1 << SEQ_SHIFT


async def test_the_async_store_is_an_async_context_manager(tmp_path: Path) -> None:
    from lance_context import AsyncContextStore

    uri = str(tmp_path / "s.lance")
    async with await AsyncContextStore.open(uri, embedder=HashingEmbedder(16)) as astore:
        await astore.add(_pair(0))
        assert await astore.count("chat") == 2
    async with ContextStore.open(uri, embedder=HashingEmbedder(16)).aio as again:
        assert [r.text for r in await again.records("chat")] == ["question 0", "answer 0"]
