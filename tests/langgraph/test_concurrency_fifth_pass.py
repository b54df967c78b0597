"""The LangGraph adapters under concurrent and async use, compared with LangGraph's own backends.

Two servers saving checkpoints of one thread at once may commit them in either order
(both on top of the same store version): among such commits the latest checkpoint and
``list`` order follow checkpoint ids, as in ``InMemorySaver`` (across commits, append
order decides: a merged branch's checkpoints become the newest), on every read path:
the latest checkpoint, a thread's list, filtered lists, every thread's list and prune.
Races are made deterministic: both writers meet at a barrier
in the core's ``commit_seq`` after reading the same version, and the slots are chosen
so the older checkpoint sorts last in append order.
"""

from __future__ import annotations

import asyncio
import itertools
import operator
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Annotated, Any, TypedDict, cast

import pytest
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver, Checkpoint, empty_checkpoint
from langgraph.checkpoint.base.id import uuid6
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, StateGraph
from langgraph.store.memory import InMemoryStore

from lance_context import HashingEmbedder, _writer
from lance_context.langgraph import LanceCheckpointSaver, LanceStore, _locking


def _config(thread: str, checkpoint_id: str | None = None) -> RunnableConfig:
    conf: dict[str, Any] = {"thread_id": thread, "checkpoint_ns": ""}
    if checkpoint_id:
        conf["checkpoint_id"] = checkpoint_id
    return {"configurable": conf}


def _checkpoint(step: int, checkpoint_id: str) -> Checkpoint:
    checkpoint = empty_checkpoint()
    checkpoint["id"] = checkpoint_id
    checkpoint["channel_values"] = {"step": step}
    return checkpoint


def _put(saver: BaseCheckpointSaver[Any], step: int, checkpoint_id: str, parent: str | None) -> None:
    meta: Any = {"step": step, "source": "loop"}
    saver.put(_config("t", parent), _checkpoint(step, checkpoint_id), meta, {})


def _history(saver: BaseCheckpointSaver[Any]) -> dict[str, Any]:
    """What a LangGraph app reads of thread ``t``: latest, history, pages, filtered history."""
    latest = saver.get_tuple(_config("t"))

    def ids(found: Iterator[Any]) -> list[str]:
        return [t.checkpoint["id"] for t in found]

    everything = ids(saver.list(_config("t")))
    return {
        "latest": latest and (latest.checkpoint["id"], latest.pending_writes),
        "list": everything,
        "first": ids(saver.list(_config("t"), limit=1)),
        "before": ids(saver.list(_config("t"), before=_config("t", everything[0]), limit=1)),
        "filtered": ids(saver.list(_config("t"), filter={"source": "loop"}, limit=2)),
        "every_thread": ids(saver.list(None, limit=2)),
    }


@pytest.fixture
def two_servers(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each store handle gets its own lock, as two server processes would have."""
    locks: dict[int, threading.RLock] = {}
    guard = threading.Lock()

    def own_lock(store: Any) -> threading.RLock:
        with guard:
            return locks.setdefault(id(store), threading.RLock())

    monkeypatch.setattr(_locking, "store_lock", own_lock)


def _commit_at_once(monkeypatch: pytest.MonkeyPatch, slots: dict[str, int]) -> threading.local:
    """Make the next write of each thread naming a checkpoint wait for the other, then take ``slots``."""
    barrier, real, local = threading.Barrier(len(slots), timeout=20), _writer.commit_seq, threading.local()

    def commit_seq(read_version: int, rows: int) -> int:
        checkpoint_id = getattr(local, "checkpoint_id", None)
        if checkpoint_id is None:
            return real(read_version, rows)
        local.checkpoint_id = None
        barrier.wait()  # both writers have read the same version
        return _writer.seq_base(read_version) + (slots[checkpoint_id] << 16)

    monkeypatch.setattr(_writer, "commit_seq", commit_seq)
    return local


def _saved_at_once(
    monkeypatch: pytest.MonkeyPatch, path: str, put: Any
) -> tuple[list[str], list[LanceCheckpointSaver], InMemorySaver]:
    """Thread ``t``: a first checkpoint, then two saved at once by two servers, the newer one first.

    Returns the checkpoint ids, the two servers' savers and a fresh one, and an
    ``InMemorySaver`` given the same checkpoints one after the other.
    """
    first, second, oracle = LanceCheckpointSaver(uri=path), LanceCheckpointSaver(uri=path), InMemorySaver()
    ids = [str(uuid6(clock_seq=i)) for i in range(3)]
    for saver in (first, oracle):
        put(saver, 0, ids[0], None)
    assert second.get_tuple(_config("t")) is not None  # both caches warm
    local = _commit_at_once(monkeypatch, {ids[1]: 1, ids[2]: 0})  # the newer one first in append order

    def save(saver: LanceCheckpointSaver, step: int) -> None:
        local.checkpoint_id = ids[step]
        put(saver, step, ids[step], ids[0])

    workers = [threading.Thread(target=save, args=(s, i)) for s, i in ((first, 1), (second, 2))]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    for step in (1, 2):
        put(oracle, step, ids[step], ids[0])
    return ids, [first, second, LanceCheckpointSaver(uri=path)], oracle


def test_two_servers_saving_checkpoints_at_once_agree_with_in_memory_saver(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, two_servers: None
) -> None:
    """The latest checkpoint is the highest id, whichever commit lands first (as InMemorySaver)."""
    path = str(tmp_path / "threads.lance")
    ids, savers, oracle = _saved_at_once(monkeypatch, path, _put)
    expected = _history(oracle)
    assert expected["latest"] == (ids[2], [])
    assert [_history(saver) for saver in savers] == [expected] * 3

    savers[0].prune(["t"])  # keeps the latest one
    assert [t.checkpoint["id"] for t in LanceCheckpointSaver(uri=path).list(_config("t"))] == [ids[2]]


def _put_marked(saver: BaseCheckpointSaver[Any], step: int, checkpoint_id: str, parent: str | None) -> None:
    """A checkpoint whose metadata holds a list of numbers (a filter on it is checked in Python)."""
    meta: Any = {"step": step, "source": "loop", "marks": [1, step > 0]}
    saver.put(_config("t", parent), _checkpoint(step, checkpoint_id), meta, {})


def _filtered_lists(saver: BaseCheckpointSaver[Any], newest: str) -> dict[str, list[str]]:
    """Thread ``t`` listed with metadata filters, and every thread listed, with and without limits."""

    def ids(config: RunnableConfig | None, **kwargs: Any) -> list[str]:
        return [t.checkpoint["id"] for t in saver.list(config, **kwargs)]

    loop, marked = {"source": "loop"}, {"marks": [True, 1.0]}
    return {
        "filtered": ids(_config("t"), filter=loop),
        "filtered_first": ids(_config("t"), filter=loop, limit=1),
        "filtered_before": ids(_config("t"), filter=loop, before=_config("t", newest), limit=1),
        "checked": ids(_config("t"), filter=marked),
        "checked_first": ids(_config("t"), filter=marked, limit=1),
        "every_thread": ids(None),
        "every_thread_first": ids(None, limit=1),
        "every_thread_filtered": ids(None, filter=loop, limit=2),
        "every_thread_checked_first": ids(None, filter=marked, limit=1),
        "every_thread_before": ids(None, before=_config("t", newest)),
    }


def test_filtered_and_every_thread_lists_after_servers_save_at_once_agree_with_in_memory_saver(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, two_servers: None
) -> None:
    """``list`` with a metadata filter, or over every thread: checkpoint-id order, as InMemorySaver."""
    ids, savers, oracle = _saved_at_once(monkeypatch, str(tmp_path / "threads.lance"), _put_marked)
    expected = _filtered_lists(oracle, ids[2])
    assert expected["filtered"] == expected["every_thread"] == ids[::-1]
    assert expected["checked"] == [ids[2], ids[1]]
    for saver in savers:
        assert _filtered_lists(saver, ids[2]) == expected


class _Fan(TypedDict):
    items: Annotated[list[str], operator.add]
    total: int


def _fan_out(checkpointer: BaseCheckpointSaver[Any]) -> Any:
    """Three parallel branches writing in one superstep, then a join."""
    graph = StateGraph(_Fan)

    def branch(name: str, delay: float) -> Any:
        async def run(state: _Fan) -> dict[str, Any]:
            await asyncio.sleep(delay)
            return {"items": [name]}

        return run

    async def join(state: _Fan) -> dict[str, Any]:
        return {"total": len(state["items"])}

    graph.add_node("join", join)
    for name, delay in (("a", 0.02), ("b", 0.0), ("c", 0.01)):
        graph.add_node(name, branch(name, delay))
        graph.add_edge(START, name)
        graph.add_edge(name, "join")
    graph.add_edge("join", END)
    return graph.compile(checkpointer=checkpointer)


async def _fan_histories(checkpointer: BaseCheckpointSaver[Any]) -> list[Any]:
    graph = _fan_out(checkpointer)
    threads = [{"configurable": {"thread_id": f"t{i}"}} for i in range(3)]
    for start in ([], ["x"]):  # two runs per thread, the threads at once
        await asyncio.gather(*(graph.ainvoke({"items": start, "total": 0}, c) for c in threads))
    histories = []
    for config in threads:
        states = [s async for s in graph.aget_state_history(config)]
        histories.append(
            [
                (s.values, s.next, s.metadata["step"], sorted((t.name, str(t.result)) for t in s.tasks))
                for s in states
            ]
        )
    return histories


async def test_parallel_branches_of_gathered_runs_match_in_memory_saver(tmp_path: Path) -> None:
    """Fan-out writes of one superstep, threads run at once: the same history as InMemorySaver."""
    lance = await _fan_histories(LanceCheckpointSaver(uri=str(tmp_path / "threads.lance")))
    assert lance == await _fan_histories(InMemorySaver())
    assert [len(h) for h in lance] == [8, 8, 8]


async def test_gathered_store_writes_and_reads_match_in_memory_store(tmp_path: Path) -> None:
    """``aput``, ``abatch``, ``aget`` and ``asearch`` gathered: the same items as InMemoryStore."""

    async def run(store: Any) -> tuple[Any, ...]:
        await asyncio.gather(*(store.aput(("u", str(i % 2)), f"k{i}", {"n": i}) for i in range(8)))
        await asyncio.gather(
            store.aput(("u", "0"), "k0", {"n": 100}), store.adelete(("u", "1"), "k1"), store.asearch(("u",))
        )
        got = await asyncio.gather(*(store.aget(("u", str(i % 2)), f"k{i}") for i in range(8)))
        found = await asyncio.gather(
            store.asearch(("u", "0"), filter={"n": {"$gte": 4}}), store.asearch(("u",))
        )
        return (
            [None if g is None else g.value for g in got],
            [sorted((i.key, i.value["n"]) for i in page) for page in found],
            await store.alist_namespaces(prefix=("u",)),
        )

    assert await run(LanceStore(uri=str(tmp_path / "memory.lance"), embedder=None)) == await run(
        InMemoryStore()
    )


def _embed(texts: Sequence[str]) -> list[list[float]]:
    return [[float(x) for x in row] for row in HashingEmbedder(64).embed_texts(list(texts))]


_INDEX: Any = {"dims": 64, "embed": _embed, "fields": ["title", "body"]}
#: Two servers put one item at once: the first drops its body, the second rewrites both fields.
_PUTS = [{"title": "cherry"}, {"title": "damson", "body": "elder"}]


def _item_state(store: Any) -> list[Any]:
    """What a reader sees of the item: its value, and the items each query finds with their scores."""
    item = store.get(("docs",), "k")
    found = [
        [(h.key, h.value, round(h.score, 5)) for h in store.search(("docs",), query=q)]
        for q in ("apple", "banana", "cherry", "damson", "elder")
    ]
    return [item and item.value, found]


def test_two_servers_putting_one_item_at_once_leave_one_put_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, two_servers: None
) -> None:
    """Each put is one step: the second server's put lands just before each commit of the first's.

    The reader then sees the item as after the two puts one after the other, in one order
    or the other, never one put's value with the other's indexed texts. (The orders are
    run on this store: ``InMemoryStore`` keeps the vector of a field a later put dropped.)
    """
    serial = []
    for n, order in enumerate(([0, 1], [1, 0])):
        alone = LanceStore(uri=str(tmp_path / f"serial-{n}.lance"), index=_INDEX)
        alone.put(("docs",), "k", {"title": "apple", "body": "banana"})
        for i in order:
            alone.put(("docs",), "k", _PUTS[i])
        serial.append(_item_state(alone))
    assert serial[0] != serial[1]
    fired = 0
    for before_commit in itertools.count(1):
        path = str(tmp_path / f"store-{before_commit}.lance")
        first, second = LanceStore(uri=path, index=_INDEX), LanceStore(uri=path, index=_INDEX)
        first.put(("docs",), "k", {"title": "apple", "body": "banana"})
        handle, real, commits = (
            first.store._state.handle,
            first.store._state.handle.commit,
            itertools.count(1),
        )

        def commit(*args: Any, **kwargs: Any) -> Any:
            if next(commits) == before_commit:  # noqa: B023 - each round's own count
                second.put(("docs",), "k", _PUTS[1])  # noqa: B023
            return real(*args, **kwargs)  # noqa: B023

        monkeypatch.setattr(handle, "commit", commit)
        first.put(("docs",), "k", _PUTS[0])
        if next(commits) <= before_commit + 1:  # the other put ran before no commit: all interleavings seen
            break
        fired += 1
        assert _item_state(LanceStore(uri=path, index=_INDEX)) in serial, (
            f"second put before commit {before_commit}"
        )
    assert fired >= 1


def test_a_ttl_refresh_never_undoes_another_servers_put(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, two_servers: None
) -> None:
    """A read that restarts an item's TTL, while another server puts the item: the put stays."""
    path, ttl = str(tmp_path / "ttl.lance"), cast(Any, {"default_ttl": 60, "refresh_on_read": True})
    reader, writer = (
        LanceStore(uri=path, ttl=ttl, embedder=None),
        LanceStore(uri=path, ttl=ttl, embedder=None),
    )
    reader.put(("docs",), "k", {"v": "old"})
    handle, real, puts = reader.store._state.handle, reader.store._state.handle.commit, []

    def commit(*args: Any, **kwargs: Any) -> Any:
        if not puts:  # the other server's put lands after the refresh read the item
            puts.append(writer.put(("docs",), "k", {"v": "new"}))
        return real(*args, **kwargs)

    monkeypatch.setattr(handle, "commit", commit)
    item = reader.get(("docs",), "k")  # refreshes the TTL
    assert puts and item is not None and item.value == {"v": "old"}  # read before the put
    found = LanceStore(uri=path, ttl=ttl, embedder=None).get(("docs",), "k", refresh_ttl=False)
    assert found is not None and found.value == {"v": "new"}
