"""The saver's cache of each thread's latest checkpoint is never stale, and is used.

Every check compares a caching saver with a saver that reads Lance on every call
(``cached_threads=0``, its own store handle), after writes made through the caching
saver, through another saver on the same dataset, and by maintenance.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver, Checkpoint, CheckpointTuple, empty_checkpoint
from langgraph.checkpoint.base.id import uuid6

from lance_context import CompactionPolicy, ContextStore
from lance_context.langgraph import LanceCheckpointSaver, _latest

Snapshot = tuple[str, Any, list[Any], Any] | None


def _config(thread: str, ns: str = "", checkpoint_id: str | None = None) -> RunnableConfig:
    conf: dict[str, Any] = {"thread_id": thread, "checkpoint_ns": ns}
    if checkpoint_id:
        conf["checkpoint_id"] = checkpoint_id
    return {"configurable": conf}


def _checkpoint(value: Any, checkpoint_id: str | None = None) -> Checkpoint:
    checkpoint = empty_checkpoint()
    checkpoint["channel_values"] = {"value": value}
    if checkpoint_id:
        checkpoint["id"] = checkpoint_id
    return checkpoint


def _put(
    saver: BaseCheckpointSaver[Any], thread: str, value: Any, ns: str = "", checkpoint_id: str | None = None
) -> str:
    saved = saver.put(_config(thread, ns), _checkpoint(value, checkpoint_id), {"step": value}, {})  # type: ignore[arg-type]
    return str(saved["configurable"]["checkpoint_id"])


def _snap(found: CheckpointTuple | None) -> Snapshot:
    if found is None:
        return None
    return (
        found.checkpoint["id"],
        found.checkpoint["channel_values"],
        list(found.pending_writes or []),
        found.parent_config,
    )


@pytest.fixture
def path(tmp_path: Path) -> str:
    return str(tmp_path / "threads.lance")


def _fresh(path: str) -> LanceCheckpointSaver:
    """A saver on its own handle that reads Lance on every call."""
    return LanceCheckpointSaver(uri=path, cached_threads=0)


class _Loads:
    """Counts the cache's reads from Lance."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        real = _latest._read

        def counted(*args: Any) -> Any:
            self.count += 1
            return real(*args)

        monkeypatch.setattr(_latest, "_read", counted)


def test_a_thread_read_or_written_here_is_answered_from_memory(
    path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    saver = LanceCheckpointSaver(uri=path)
    first = _put(saver, "t", 1)
    loads = _Loads(monkeypatch)
    assert _snap(saver.get_tuple(_config("t")))[0] == first  # type: ignore[index]
    assert loads.count == 1
    second = _put(saver, "t", 2)
    saver.put_writes(_config("t", checkpoint_id=second), [("value", 3)], "task")
    found = saver.get_tuple(_config("t"))
    assert loads.count == 1  # the saver's own writes updated the cache
    assert _snap(found) == _snap(_fresh(path).get_tuple(_config("t")))
    assert found is not None and found.pending_writes == [("task", "value", 3)]
    assert found.checkpoint["id"] == second


def test_changing_what_a_read_returned_changes_no_later_read(path: str) -> None:
    saver = LanceCheckpointSaver(uri=path)
    _put(saver, "t", {"items": [1]})
    first = saver.get_tuple(_config("t"))
    assert first is not None
    first.metadata["step"] = 99  # user code editing what get_state() returned
    first.metadata.setdefault("parents", {})["x"] = "y"  # type: ignore[typeddict-item]
    first.checkpoint["channel_values"]["value"]["items"].append(2)
    again = saver.get_tuple(_config("t"))
    assert _snap(again) == _snap(_fresh(path).get_tuple(_config("t")))
    assert (
        again is not None
        and again.metadata.get("step") != 99
        and "x" not in again.metadata.get("parents", {})
    )
    assert again.checkpoint["channel_values"]["value"] == {"items": [1]}


def test_another_savers_writes_are_seen_at_once(path: str) -> None:
    mine, other = LanceCheckpointSaver(uri=path), LanceCheckpointSaver(uri=path)
    _put(mine, "t", 1)
    assert _snap(mine.get_tuple(_config("t")))[1] == {"value": 1}  # type: ignore[index]
    newer = _put(other, "t", 2)
    assert _snap(mine.get_tuple(_config("t")))[0] == newer  # type: ignore[index]
    other.put_writes(_config("t", checkpoint_id=newer), [("value", "w")], "task")
    found = mine.get_tuple(_config("t"))
    assert found is not None and found.pending_writes == [("task", "value", "w")]
    other.delete_thread("t")
    assert mine.get_tuple(_config("t")) is None


def test_appends_to_other_threads_keep_this_one_cached(path: str, monkeypatch: pytest.MonkeyPatch) -> None:
    mine, other = LanceCheckpointSaver(uri=path), LanceCheckpointSaver(uri=path)
    kept = _put(mine, "mine", 1)
    theirs = _put(other, "theirs", 1)
    for saver, thread in ((mine, "mine"), (mine, "theirs")):
        saver.get_tuple(_config(thread))
    loads = _Loads(monkeypatch)
    # new pending writes are appends naming their thread: only that thread is read again
    other.put_writes(_config("theirs", checkpoint_id=theirs), [("value", "w")], "task")
    assert _snap(mine.get_tuple(_config("mine")))[0] == kept  # type: ignore[index]
    assert loads.count == 0
    found = mine.get_tuple(_config("theirs"))
    assert found is not None and found.pending_writes == [("task", "value", "w")]
    assert loads.count == 1


def test_maintenance_keeps_the_cache_and_restore_empties_it(
    path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = ContextStore.open(path, embedder=None, compaction=CompactionPolicy(enabled=False))
    saver = LanceCheckpointSaver(store=store)
    first = _put(saver, "t", 1)
    version = store.version()
    for value in range(2, 6):
        _put(saver, "t", value)
    before = _snap(saver.get_tuple(_config("t")))
    loads = _Loads(monkeypatch)
    store.compact()
    assert store.version() > version + 4
    assert _snap(saver.get_tuple(_config("t"))) == before
    assert loads.count == 0  # compaction left every record as it was
    store.restore(version)
    restored = saver.get_tuple(_config("t"))
    assert restored is not None and restored.checkpoint["id"] == first
    assert loads.count == 1


def test_writes_saved_before_their_checkpoint_are_kept(path: str) -> None:
    saver = LanceCheckpointSaver(uri=path)
    _put(saver, "t", 1)
    saver.get_tuple(_config("t"))  # cached
    upcoming = str(uuid6())
    saver.put_writes(_config("t", checkpoint_id=upcoming), [("value", "early")], "task")
    stored_earlier = str(uuid6())
    _fresh(path).put_writes(_config("t", checkpoint_id=stored_earlier), [("value", "elsewhere")], "task")
    _put(saver, "t", 2, checkpoint_id=upcoming)
    found = saver.get_tuple(_config("t"))
    assert found is not None and found.pending_writes == [("task", "value", "early")]
    assert _snap(found) == _snap(_fresh(path).get_tuple(_config("t")))
    # the same through a first read: writes stored before their checkpoint are found too
    _put(_fresh(path), "t", 3, checkpoint_id=stored_earlier)
    cold = LanceCheckpointSaver(uri=path).get_tuple(_config("t"))
    assert cold is not None and cold.pending_writes == [("task", "value", "elsewhere")]


def test_an_older_checkpoint_written_again_keeps_its_place(path: str) -> None:
    """As in InMemorySaver (and LangGraph's SQL savers), rewriting an old checkpoint never rolls the thread back."""
    from langgraph.checkpoint.memory import InMemorySaver

    saver, oracle = LanceCheckpointSaver(uri=path), InMemorySaver()
    checkpointers: tuple[BaseCheckpointSaver[Any], ...] = (saver, oracle)

    def history(checkpointer: Any) -> tuple[str | None, list[tuple[str, Any]]]:
        latest = checkpointer.get_tuple(_config("t"))
        listed = [(t.checkpoint["id"], t.metadata["step"]) for t in checkpointer.list(_config("t"))]
        return (latest and latest.checkpoint["id"]), listed

    ids = [str(uuid6(clock_seq=i)) for i in range(2)]
    for checkpointer in checkpointers:
        _put(checkpointer, "t", 1, checkpoint_id=ids[0])
        checkpointer.put_writes(_config("t", checkpoint_id=ids[0]), [("value", "old write")], "task")
        _put(checkpointer, "t", 2, checkpoint_id=ids[1])
        assert history(checkpointer)[0] == ids[1]  # warm the cache
        _put(checkpointer, "t", 10, checkpoint_id=ids[0])
    assert history(saver) == history(oracle) == (ids[1], [(ids[1], 2), (ids[0], 10)])
    assert history(LanceCheckpointSaver(uri=path)) == history(oracle)  # a cold read agrees
    again = saver.get_tuple(_config("t", checkpoint_id=ids[0]))
    assert again is not None and again.pending_writes == [("task", "value", "old write")]
    assert _snap(saver.get_tuple(_config("t"))) == _snap(_fresh(path).get_tuple(_config("t")))


@pytest.mark.parametrize(("cached_threads", "loads_expected"), [(4, 4), (2, 8), (0, 8)])
def test_the_cache_holds_at_most_cached_threads_and_stays_right(
    path: str, monkeypatch: pytest.MonkeyPatch, cached_threads: int, loads_expected: int
) -> None:
    saver = LanceCheckpointSaver(uri=path, cached_threads=cached_threads)
    for thread in "abcd":
        _put(saver, thread, thread)
    loads = _Loads(monkeypatch)
    for _ in range(2):
        for thread in "abcd":
            assert _snap(saver.get_tuple(_config(thread)))[1] == {"value": thread}  # type: ignore[index]
    # cycling 4 threads: all stay when 4 fit; otherwise each read evicted the next one needed
    assert loads.count == loads_expected


@pytest.mark.parametrize("bad", [-1, 1.5, "10"])
def test_cached_threads_must_be_a_count(path: str, bad: Any) -> None:
    with pytest.raises(ValueError, match="cached_threads"):
        LanceCheckpointSaver(uri=path, cached_threads=bad)


def test_random_interleavings_match_uncached_reads(path: str) -> None:
    """Two caching savers and maintenance, in a seeded random order, against plain reads."""
    rng = random.Random(20261126)
    store = ContextStore.open(path, embedder=None, compaction=CompactionPolicy(enabled=False))
    savers = [LanceCheckpointSaver(store=store), LanceCheckpointSaver(uri=path)]
    plain = _fresh(path)
    keys = [("a", ""), ("a", "sub"), ("b", "")]
    ids: dict[tuple[str, str], list[str]] = {key: [] for key in keys}
    versions = [store.version()]
    for step in range(60):
        saver = rng.choice(savers)
        thread, ns = key = rng.choice(keys)
        action = rng.random()
        if action < 0.35 or not ids[key]:
            ids[key].append(_put(saver, thread, step, ns))
        elif action < 0.6:
            target = rng.choice([ids[key][-1], ids[key][-1], str(uuid6()), rng.choice(ids[key])])
            writes = [("value", step)] if rng.random() < 0.7 else [("__error__", f"failed {step}")]
            saver.put_writes(_config(thread, ns, target), writes, rng.choice(["t1", "t2"]))
        elif action < 0.7:
            _put(saver, thread, step, ns, checkpoint_id=rng.choice(ids[key]))
        elif action < 0.8:
            store.compact()
        elif action < 0.87:
            saver.delete_thread(thread)
            for other in keys:
                if other[0] == thread:
                    ids[other].clear()
        elif action < 0.93:
            store.restore(rng.choice(versions))
            for other in keys:  # ids may exist again: read them back
                ids[other] = [str(c.checkpoint["id"]) for c in plain.list(_config(*other))][::-1]
        else:
            by_id = _config(thread, ns, rng.choice(ids[key]))
            assert _snap(saver.get_tuple(by_id)) == _snap(plain.get_tuple(by_id)), step
        versions.append(store.version())
        for thread, ns in keys:
            expected = _snap(plain.get_tuple(_config(thread, ns)))
            for reader in savers:
                assert _snap(reader.get_tuple(_config(thread, ns))) == expected, (step, thread, ns)


def test_the_cache_is_bounded_by_bytes_too(path: str, monkeypatch: pytest.MonkeyPatch) -> None:
    big = "x" * 300_000  # each thread's latest checkpoint holds ~300 KB
    saver = LanceCheckpointSaver(uri=path, cache_bytes=1_000_000)  # room for three of them
    for thread in "abcdef":
        _put(saver, thread, big + thread)
    assert len(saver._latest) <= 3
    loads = _Loads(monkeypatch)
    for thread in "abcdef":
        found = saver.get_tuple(_config(thread))
        assert found is not None and found.checkpoint["channel_values"]["value"] == big + thread
    assert loads.count == 6  # every read went to Lance: the cache never held them all
    assert sum(entry.nbytes for entry in saver._latest.entries()) <= 1_000_000
    with pytest.raises(ValueError, match="cache_bytes"):
        LanceCheckpointSaver(uri=path, cache_bytes=-1)
