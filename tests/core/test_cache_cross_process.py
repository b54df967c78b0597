"""The version-checked caches across processes and within their memory bound.

A store caches the tails of the sessions it reads and a LangGraph saver each thread's
latest checkpoint. Another process's commit must show on the next read, exactly as a
store that caches nothing reads it; and the caches must stay within the memory they are
given, whatever the records carry (a chat message keeps a copy of itself in metadata).
"""

from __future__ import annotations

import gc
import multiprocessing
import tracemalloc
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import pytest

from lance_context import CachePolicy, ContextRecord, ContextStore, RetentionPolicy, _tailcache

Snapshot = dict[str, list[tuple[str, str | None]]]


def _msg(content: str, run_id: str = "s1", **fields: Any) -> ContextRecord:
    return ContextRecord.from_content(content, run_id=run_id, **fields)


def _reads(store: ContextStore) -> Snapshot:
    """What the reads a chat makes return: the tail, the first records, everything."""
    found: Snapshot = {}
    for session in ("s1", "s2"):
        for name, records in (
            ("last3", store.records(session, last=3)),
            ("last50", store.records(session, last=50)),
            ("first2", store.records(session, limit=2)),
            ("all", store.records(session)),
        ):
            found[f"{session} {name}"] = [(r.id, r.text) for r in records]
    return found


def _uncached(path: str) -> Snapshot:
    return _reads(ContextStore.open(path, embedder=None, caches=CachePolicy(tail_sessions=0)))


def _other_process(path: str, conn: Connection) -> None:
    """Another program on the same store: runs each step it is sent, then says so."""
    store = ContextStore.open(path, embedder=None)
    while (step := conn.recv()) is not None:
        name, arg = step
        if name == "add":
            store.add(_msg(f"from B {arg}", run_id=arg))
        elif name == "edit":  # upsert the newest record of s1, moved to session ``arg``
            newest = store.records("s1", last=1)[0]
            store.upsert(_msg("edited by B", run_id=arg, id=newest.id))
        elif name == "delete":
            store.delete(store.records("s1", limit=1)[0].id)
        elif name == "forget":
            store.forget(store.records("s1", last=1)[0].id)
        elif name == "restore":
            store.restore(arg)
        elif name == "restore s1":
            store.restore(arg, run_id="s1")
        elif name == "compact":
            store.compact()
        conn.send(store.version())
    conn.close()


@pytest.fixture
def other(tmp_path: Path) -> Iterator[tuple[str, Connection]]:
    """A store at a path and a pipe to another process working on it (spawned: Lance is not fork-safe)."""
    path = str(tmp_path / "shared.lance")
    ContextStore.open(path, embedder=None).add([_msg(f"a{i}") for i in range(6)] + [_msg("b0", "s2")])
    mine, theirs = multiprocessing.get_context("spawn").Pipe()
    child = multiprocessing.get_context("spawn").Process(target=_other_process, args=(path, theirs))
    child.start()
    yield path, mine
    mine.send(None)
    child.join(60)
    assert child.exitcode == 0


def test_every_kind_of_commit_from_another_process_shows_on_the_next_read(
    other: tuple[str, Connection],
) -> None:
    path, conn = other
    store = ContextStore.open(path, embedder=None)
    start = store.version()
    _reads(store)  # every tail cached
    steps = [
        ("add", "s1"),
        ("add", "s2"),  # another session: s1 stays cached, and must still be right
        ("edit", "s1"),
        ("edit", "s2"),  # the id moves to another session
        ("delete", None),
        ("compact", None),
        ("restore s1", start),
        ("add", "s1"),
        ("restore", start),
        ("add", "s1"),
        ("forget", None),
    ]
    for step in steps:
        conn.send(step)
        version = conn.recv()
        assert _reads(store) == _uncached(path), step
        assert store.version() == version


def test_the_byte_bound_counts_what_records_hold_in_metadata(tmp_path: Path) -> None:
    path = str(tmp_path / "meta.lance")
    bound = 1_000_000
    store = ContextStore.open(path, embedder=None, caches=CachePolicy(tail_bytes=bound))
    rows = [{"row": j, "value": f"v{j}"} for j in range(60)]
    for session in range(30):  # ~5 MB as Python objects once read: 5 times the bound
        store.add([_msg("ok", run_id=f"s{session}", metadata={"tool": {"rows": rows}}) for _ in range(10)])
    gc.collect()
    tracemalloc.start()
    try:
        for session in range(30):
            assert len(store.records(f"s{session}", last=10)) == 10
        gc.collect()
        held = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert held < 2 * bound
    fresh = ContextStore.open(path, embedder=None, caches=CachePolicy(tail_sessions=0))
    for session in range(30):  # what eviction left behind still reads right
        assert store.records(f"s{session}", last=3) == fresh.records(f"s{session}", last=3)


def test_an_append_to_a_long_cached_session_measures_only_what_it_appends(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = ContextStore.open(str(tmp_path / "long.lance"), embedder=None)
    store.add([_msg(f"m{i}") for i in range(500)])
    assert len(store.records("s1", last=500)) == 500  # cached whole
    measured: list[str] = []
    real = _tailcache.record_size

    def counted(record: ContextRecord) -> int:
        measured.append(record.id)
        return real(record)

    monkeypatch.setattr(_tailcache, "record_size", counted)
    new = _msg("one more")
    store.add(new)
    assert measured == [new.id]
    assert [r.text for r in store.records("s1", last=2)] == ["m499", "one more"]


def test_vectors_and_index_hints_come_back_as_a_fresh_read_gives_them(tmp_path: Path) -> None:
    path = str(tmp_path / "vectors.lance")
    store = ContextStore.open(path, embedder=None)
    store.add(_msg("read back", embedding=[1.0, 0.0]))
    store.records("s1", last=5)  # cached from a read, then followed through this store's append
    store.add(_msg("appended", embedding=[0.0, 1.0], search_text="hint", embed_text="Speaker: appended"))
    for got in store.records("s1", last=5):
        assert got.embedding is not None
        got.embedding[:] = 42.0  # the caller's own array: the cache keeps its copy
    again = store.records("s1", last=5)
    fresh = ContextStore.open(path, embedder=None, caches=CachePolicy(tail_sessions=0)).records("s1", last=5)
    assert [r.embedding.tolist() for r in again if r.embedding is not None] == [[1.0, 0.0], [0.0, 1.0]]
    assert [(r.search_text, r.embed_text) for r in again] == [(r.search_text, r.embed_text) for r in fresh]
    assert again[1].search_text is None and again[1].embed_text is None


def test_a_store_sees_versions_committed_past_a_gap_left_by_cleanup(tmp_path: Path) -> None:
    path = str(tmp_path / "gap.lance")
    reader = ContextStore.open(path, embedder=None)
    reader.add([_msg(f"a{i}") for i in range(3)])
    reader.tag("kept")
    assert [r.text for r in reader.records("s1", last=1)] == ["a2"]
    writer = ContextStore.open(path, embedder=None)
    for i in range(3):
        writer.add(_msg(f"later {i}"))
    nothing_kept = RetentionPolicy(keep_all=timedelta(0), hourly=timedelta(0), daily=timedelta(0))
    writer.apply_retention(nothing_kept, now=datetime.now(timezone.utc) + timedelta(days=1))
    writer.add(_msg("newest"))
    assert [r.text for r in reader.records("s1", last=1)] == ["newest"]


def test_a_store_keeps_finding_gaps_after_reading_the_hint_of_the_last_one(tmp_path: Path) -> None:
    path = str(tmp_path / "gaps.lance")
    reader = ContextStore.open(path, embedder=None)
    writer = ContextStore.open(path, embedder=None)
    nothing_kept = RetentionPolicy(keep_all=timedelta(0), hourly=timedelta(0), daily=timedelta(0))
    reader.add(_msg("first"))
    newest = "first"
    for round_ in range(3):
        reader.tag(f"kept-{round_}")
        assert [r.text for r in reader.records("s1", last=1)] == [newest]
        for i in range(2):
            writer.add(_msg(f"later {round_}.{i}"))
        writer.apply_retention(nothing_kept, now=datetime.now(timezone.utc) + timedelta(days=1))
        writer.add(_msg(f"newest {round_}"))
        newest = f"newest {round_}"
        for _ in range(2):  # the second read answers from the hint read by the first
            assert [r.text for r in reader.records("s1", last=1)] == [newest]
        assert reader.version() == writer.version()


def test_the_hint_is_read_again_only_when_replaced_and_never_on_coarse_times(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json
    import os

    from lance_context import _manifests

    path = str(tmp_path / "hint.lance")
    store = ContextStore.open(path, embedder=None)
    for i in range(4):
        store.add(_msg(f"m{i}"))
    newest = store.version()
    hint = os.path.join(path, "_versions", "latest_version_hint.json")
    with open(hint, encoding="utf-8") as file:
        saved = json.load(file)
    reads: list[str] = []
    real = _manifests._read_hint
    monkeypatch.setattr(_manifests, "_read_hint", lambda folder: reads.append("hint") or real(folder))
    manifests = _manifests.LocalManifests.find(path, "main", newest)

    def gap_from(version: int) -> int | None:
        manifests._stamp = None  # as within a second of a commit: the folder's time cannot tell
        return manifests.past_gap(version)

    def replace_hint(version: int, mtime_ns: int | None = None) -> None:
        with open(hint + ".tmp", "w", encoding="utf-8") as file:
            json.dump({**saved, "version": version}, file)
        if mtime_ns is not None:
            os.utime(hint + ".tmp", ns=(mtime_ns, mtime_ns))
        os.replace(hint + ".tmp", hint)

    assert (gap_from(1), gap_from(1), gap_from(newest)) == (newest, newest, None)
    assert reads == ["hint"]  # unchanged hint: read once
    replace_hint(newest + 5)  # a hinted manifest that does not exist: no gap to follow
    assert gap_from(1) is None and reads == ["hint"] * 2
    replace_hint(2)  # a hint lagging behind a commit: probing forward still finds the newest
    assert gap_from(1) == newest and reads == ["hint"] * 3
    whole_second = os.stat(hint).st_mtime_ns // 1_000_000_000 * 1_000_000_000
    replace_hint(newest, whole_second)  # coarse ticks: two hints may share a time
    assert (gap_from(1), gap_from(1)) == (newest, newest) and reads == ["hint"] * 5


def test_the_read_after_a_write_finds_the_hint_already_read_by_the_commit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lance_context import _manifests

    path = str(tmp_path / "loop.lance")
    store = ContextStore.open(path, embedder=None)
    other = ContextStore.open(path, embedder=None)
    store.add(_msg("first"))
    store.version()  # the first probe finds the layout
    reads: list[str] = []
    real = _manifests._read_hint
    monkeypatch.setattr(_manifests, "_read_hint", lambda folder: reads.append("hint") or real(folder))
    for i in range(3):
        store.add(_msg(f"turn {i}"))
        during_commit = len(reads)
        assert during_commit >= 1
        assert [r.text for r in store.records("s1", last=1)] == [f"turn {i}"]
        assert len(reads) == during_commit  # the read's version check did not read it again
    other.add(_msg("from another handle"))
    assert [r.text for r in store.records("s1", last=1)] == ["from another handle"]


def _other_saver(path: str) -> None:
    from lance_context.langgraph import LanceCheckpointSaver

    saver = LanceCheckpointSaver(uri=path)
    newest = _put(saver, "t1", "from B")
    saver.put_writes(_config("t1", newest), [("value", "written by B")], "task")
    _put(saver, "t2", "other thread")
    saver.delete_thread("t3")


def _config(thread: str, checkpoint_id: str | None = None) -> Any:
    conf = {"thread_id": thread, "checkpoint_ns": ""}
    return {"configurable": conf if checkpoint_id is None else {**conf, "checkpoint_id": checkpoint_id}}


def _put(saver: Any, thread: str, value: Any, metadata: dict[str, Any] | None = None) -> str:
    from langgraph.checkpoint.base import empty_checkpoint

    checkpoint = empty_checkpoint()
    checkpoint["channel_values"] = {"value": value}
    saved = saver.put(_config(thread), checkpoint, {"step": 1, **(metadata or {})}, {})
    return str(saved["configurable"]["checkpoint_id"])


def _threads(saver: Any) -> list[Any]:
    found = []
    for thread in ("t1", "t2", "t3"):
        latest = saver.get_tuple(_config(thread))
        listed = [(t.checkpoint["id"], t.pending_writes) for t in saver.list(_config(thread))]
        found.append(None if latest is None else (latest.checkpoint, latest.pending_writes, listed))
    return found


def test_a_savers_cached_threads_follow_another_processs_checkpoints(tmp_path: Path) -> None:
    pytest.importorskip("langgraph.checkpoint.base")
    from lance_context.langgraph import LanceCheckpointSaver

    path = str(tmp_path / "threads.lance")
    saver = LanceCheckpointSaver(uri=path)
    for thread in ("t1", "t2", "t3"):
        _put(saver, thread, f"first of {thread}")
    _threads(saver)  # every thread's latest checkpoint cached
    child = multiprocessing.get_context("spawn").Process(target=_other_saver, args=(path,))
    child.start()
    child.join(60)
    assert child.exitcode == 0
    got = _threads(saver)
    assert got == _threads(LanceCheckpointSaver(uri=path, cached_threads=0))
    assert got[0][0]["channel_values"] == {"value": "from B"} and got[2] is None


def test_the_savers_byte_bound_counts_checkpoint_metadata(tmp_path: Path) -> None:
    pytest.importorskip("langgraph.checkpoint.base")
    from lance_context.langgraph import LanceCheckpointSaver

    path = str(tmp_path / "metadata.lance")
    writer = LanceCheckpointSaver(uri=path)
    metadata = {"source": {"rows": [{"row": j, "value": f"v{j}"} for j in range(200)]}}
    for thread in range(40):  # ~60 KB a thread once read: ~2.4 MB
        _put(writer, f"t{thread}", thread, metadata)
    bound = 500_000
    saver = LanceCheckpointSaver(uri=path, cache_bytes=bound)
    gc.collect()
    tracemalloc.start()
    try:
        for thread in range(40):
            assert saver.get_tuple(_config(f"t{thread}")) is not None
        gc.collect()
        held = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert held < 2 * bound
