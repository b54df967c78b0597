"""The version-checked cache of session tails: ``records(run_id, last=n)`` from memory, never stale."""

from __future__ import annotations

import random
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from lance_context import (
    CachePolicy,
    CompactionPolicy,
    ContextRecord,
    ContextStore,
    Relationship,
    StateMetadata,
)
from lance_context._cache import SessionCache
from lance_context._reader import Reader
from lance_context._tailcache import TailCache
from lance_context.adapters import shared_ends, shared_records


class _Reads:
    """Counts the calls of one ``Reader`` step that reach Lance (default: two-step reads)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, step: str = "_outline_rows") -> None:
        self.count = 0
        real = getattr(Reader, step)

        def counted(reader: Reader, *args: Any, **kwargs: Any) -> Any:
            self.count += 1
            return real(reader, *args, **kwargs)

        monkeypatch.setattr(Reader, step, counted)


def _msg(text: str, run_id: str = "chat", **fields: Any) -> ContextRecord:
    return ContextRecord.from_content(text, run_id=run_id, **fields)


def _texts(records: list[ContextRecord]) -> list[str | None]:
    return [r.text for r in records]


@pytest.fixture
def path(tmp_path: Path) -> str:
    return str(tmp_path / "tails.lance")


def test_a_session_tail_read_twice_is_read_from_lance_once(
    path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = ContextStore.open(path, embedder=None)
    store.add([_msg(f"m{i}") for i in range(10)])
    reads = _Reads(monkeypatch)
    assert _texts(store.records("chat", last=3)) == ["m7", "m8", "m9"]
    assert _texts(store.records("chat", last=3)) == ["m7", "m8", "m9"]
    assert _texts(store.records("chat", last=2)) == ["m8", "m9"]
    assert reads.count == 1
    store.add(_msg("m10"))  # this store's own append: the cache follows it
    assert _texts(store.records("chat", last=3)) == ["m8", "m9", "m10"]
    assert reads.count == 1
    assert _texts(store.records("chat", last=50)) == [f"m{i}" for i in range(11)]  # more than cached
    assert reads.count == 2
    assert _texts(store.records("chat", last=50)) == [f"m{i}" for i in range(11)]  # now the whole session
    assert reads.count == 2


def test_a_whole_session_read_each_turn_is_read_from_lance_once(
    path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A chat history reads every message each turn (LangChain's ``messages``): served from memory."""
    store = ContextStore.open(path, embedder=None, compaction=CompactionPolicy(enabled=False))
    other = ContextStore.open(path, embedder=None)  # another process's handle
    store.add([_msg(f"m{i}") for i in range(5)] + [_msg("elsewhere", run_id="other")])
    scans = _Reads(monkeypatch, "_scan")  # whole-session scans
    assert _texts(store.records("chat")) == [f"m{i}" for i in range(5)]
    first = store.records("chat")
    first[0].metadata["changed"] = True  # a caller's copy: the next read is unchanged
    assert scans.count == 1 and "changed" not in store.records("chat")[0].metadata
    store.add(_msg("m5"))  # this store's own append: the whole session stays known
    assert _texts(store.records("chat")) == [f"m{i}" for i in range(6)] and scans.count == 1
    assert _texts(store.records("chat", last=2)) == ["m4", "m5"] and scans.count == 1
    other.add(_msg("other again", run_id="other"))  # another session: still known
    assert _texts(store.records("chat"))[-1] == "m5" and scans.count == 1
    other.add(_msg("m6"))  # this session, from elsewhere: read again
    assert _texts(store.records("chat"))[-1] == "m6" and scans.count == 2
    assert len(store.records("chat", with_vectors=False)) == 7 and scans.count == 2
    assert _texts(store.records("chat", roles="user")) and scans.count == 3  # filtered: always read
    monkeypatch.setattr(TailCache, "most", 3)  # a session longer than a tail is never kept whole
    other.add(_msg("m7"))
    store.records("chat")
    assert _texts(store.records("chat"))[-1] == "m7" and scans.count == 5


def test_other_writers_and_maintenance(path: str, monkeypatch: pytest.MonkeyPatch) -> None:
    store = ContextStore.open(path, embedder=None, compaction=CompactionPolicy(enabled=False))
    other = ContextStore.open(path, embedder=None)  # another process's handle
    store.add([_msg("a1"), _msg("b1", run_id="other")])
    reads = _Reads(monkeypatch)
    store.records("chat", last=5)
    other.add(_msg("b2", run_id="other"))  # another session: the tail stays cached
    other.compact()  # maintenance: no record changes
    assert _texts(store.records("chat", last=5)) == ["a1"] and reads.count == 1
    other.add(_msg("a2"))  # this session, from elsewhere: read again
    assert _texts(store.records("chat", last=5)) == ["a1", "a2"] and reads.count == 2
    other.upsert(_msg("a2, edited", id=store.records("chat", last=1)[0].id))
    assert _texts(store.records("chat", last=5)) == ["a1", "a2, edited"] and reads.count == 3
    other.delete(run_id="chat")
    assert store.records("chat", last=5) == [] and reads.count == 4
    version = store.version()
    other.add(_msg("a3"))
    store.restore(version)  # a restore says nothing about sessions: everything is read again
    assert store.records("chat", last=5) == [] and reads.count == 5


def test_checkouts_branches_and_vectors_bypass_or_miss_the_cache(path: str) -> None:
    store = ContextStore.open(path, embedder=None)
    first = store.add(_msg("one", embedding=[1.0, 0.0]))
    store.add(_msg("two", embedding=[0.0, 1.0]))
    assert [r.embedding is None for r in store.records("chat", last=2, with_vectors=False)] == [True, True]
    with_vectors = store.records("chat", last=2)  # cached without vectors: read again, with them
    assert [r.embedding is not None for r in with_vectors] == [True, True]
    store.checkout(first)
    assert _texts(store.records("chat", last=5)) == ["one"]
    store.checkout_latest()
    branch = store.branch("side")
    branch.add(_msg("only on the branch"))
    assert _texts(store.records("chat", last=5)) == ["one", "two"]
    assert _texts(branch.records("chat", last=5)) == ["one", "two", "only on the branch"]


def test_callers_may_change_what_they_get(path: str) -> None:
    store = ContextStore.open(path, embedder=None)
    store.add(_msg("hello", metadata={"n": 1}))
    got = store.records("chat", last=1)
    got[0].metadata["n"] = 99
    got[0].text_payload = "changed"
    again = store.records("chat", last=1)
    assert again[0].text == "hello" and again[0].metadata == {"n": 1}


@pytest.mark.parametrize("read", ["last", "limit", "all"])
def test_nested_values_a_caller_changes_stay_its_own(path: str, read: str) -> None:
    store = ContextStore.open(path, embedder=None)
    state = StateMetadata(step=1, custom={"plan": {"steps": ["a"]}})
    store.add(_msg("hello", metadata={"tags": ["x"], "user": {"name": "ada"}}, state_metadata=state))
    kwargs: dict[str, Any] = {"last": 1} if read == "last" else {"limit": 1} if read == "limit" else {}
    for _ in range(2):  # the first read fills the cache, the second is served from it
        got = store.records("chat", **kwargs)[0]
        assert got.metadata == {"tags": ["x"], "user": {"name": "ada"}}
        assert got.state_metadata is not None and got.state_metadata.custom == {"plan": {"steps": ["a"]}}
        got.metadata["tags"].append("y")
        got.metadata["user"]["name"] = "changed"
        got.state_metadata.custom["plan"]["steps"].append("b")


def test_every_copy_read_from_the_cache_is_its_own(path: str) -> None:
    store = ContextStore.open(path, embedder=None)
    store.add(
        _msg(
            "hello",
            metadata={"tags": ["x"]},
            embedding=np.ones(4, dtype=np.float32),
            relationships=[Relationship("m0", "replies_to")],
        )
    )
    first = store.records("chat", last=1)[0]  # fills the cache
    for _ in range(3):  # every later read is a copy of the cached record
        got = store.records("chat", last=1)[0]
        assert got == first and got is not first
        assert got.embedding is not None and got.embedding.tolist() == [1.0] * 4
        assert got.relationships == [Relationship("m0", "replies_to")] and got.metadata == {"tags": ["x"]}
        got.embedding *= 2
        got.relationships.append(Relationship("m9", "cites"))
        got.metadata["tags"].append("y")
        got.text_payload = "changed"
    texts = store.records("chat", last=1, with_vectors=False)
    assert texts[0].embedding is None and texts[0].text == "hello"
    again = ContextStore.open(path, embedder=None, caches=CachePolicy(tail_sessions=0))
    assert again.records("chat", last=1) == [first]


def test_the_cache_is_bounded(path: str, monkeypatch: pytest.MonkeyPatch) -> None:
    store = ContextStore.open(path, embedder=None, caches=CachePolicy(tail_sessions=2))
    store.add([_msg(f"in {s}", run_id=s) for s in "abc"])
    reads = _Reads(monkeypatch)
    for _ in range(2):
        for session in "abc":
            assert _texts(store.records(session, last=1)) == [f"in {session}"]
    assert reads.count == 6  # three sessions cycled through room for two
    off = ContextStore.open(path, embedder=None, caches=CachePolicy(tail_sessions=0))
    for _ in range(2):
        off.records("a", last=1)
    assert reads.count == 8


def test_the_byte_bound_counts_tails_grown_by_this_stores_appends(
    path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = ContextStore.open(path, embedder=None, caches=CachePolicy(tail_bytes=60_000))
    store.add([_msg("x" * 10_000, run_id=s) for s in "ab"])
    for session in "ab":
        store.records(session, last=5)
    reads = _Reads(monkeypatch)
    store.records("b", last=5)
    assert reads.count == 0  # both tails fit; b is the most recently read
    store.add([_msg("y" * 30_000, run_id="b")])  # b's cached tail grows in place past the bound
    assert [t[:1] for t in _texts(store.records("b", last=5)) if t] == ["x", "y"]
    assert reads.count == 0  # b was kept, grown by the append
    store.records("a", last=5)
    assert reads.count == 1  # a made room for it


def test_records_come_back_as_a_fresh_read_gives_them(path: str) -> None:
    store = ContextStore.open(path, embedder=None)
    store.records("chat", last=5)  # the (empty) session is cached, then followed through appends
    when = datetime(2030, 1, 1, 12, tzinfo=timezone(timedelta(hours=2)))
    store.add(_msg("meta", metadata={"t": (1, 2), "nested": {"k": [1.5]}}, created_at=when))
    cached = store.records("chat", last=5)
    fresh = ContextStore.open(path, embedder=None, caches=CachePolicy(tail_sessions=0)).records(
        "chat", last=5
    )
    assert cached == fresh
    assert cached[0].metadata == {"t": [1, 2], "nested": {"k": [1.5]}}
    assert cached[0].created_at.tzinfo == timezone.utc


def test_random_interleavings_match_uncached_reads(path: str) -> None:
    rng = random.Random(20261130)
    cached = ContextStore.open(path, embedder=None, compaction=CompactionPolicy(fanout=4))
    other = ContextStore.open(path, embedder=None)
    plain = ContextStore.open(path, embedder=None, caches=CachePolicy(tail_sessions=0))
    sessions = ["s1", "s2", "s3"]
    for step in range(60):
        writer = rng.choice([cached, other])
        action = rng.random()
        session = rng.choice(sessions)
        if action < 0.5:
            writer.add([_msg(f"{step}-{i}", run_id=session) for i in range(rng.randint(1, 3))])
        elif action < 0.65 and writer.count(session):
            target = rng.choice(writer.records(session))
            writer.upsert(_msg(f"{step} edit", run_id=rng.choice(sessions), id=target.id))
        elif action < 0.75:
            writer.delete(run_id=session, where={"text": {"$contains": str(step % 7)}})
        elif action < 0.8:
            writer.compact()
        for name in sessions:
            n = rng.randint(0, 6)
            assert _texts(cached.records(name, last=n)) == _texts(plain.records(name, last=n)), (
                step,
                name,
                n,
            )
            whole, fresh = cached.records(name), plain.records(name)
            assert [(r.id, r.text, r.metadata) for r in whole] == [(r.id, r.text, r.metadata) for r in fresh]


def test_shared_records_read_what_records_reads_without_copying_the_cache(
    path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = ContextStore.open(path, embedder=None)
    store.add([_msg(f"m{i}", metadata={"n": {"i": i}}) for i in range(6)])
    whole = shared_records(store, "chat")  # the whole session, read from Lance, then cached
    assert _texts(whole) == [f"m{i}" for i in range(6)] and all(r.embedding is None for r in whole)
    scans, outlines = _Reads(monkeypatch, "_scan"), _Reads(monkeypatch)
    tail, again = shared_records(store, "chat", last=4), shared_records(store, "chat", last=4)
    assert scans.count == outlines.count == 0  # from the cache
    assert _texts(tail) == ["m2", "m3", "m4", "m5"]
    assert [r.metadata for r in tail] == [{"n": {"i": i}} for i in range(2, 6)]
    assert all(a is b for a, b in zip(tail, again, strict=True))  # the cached records themselves
    copies = store.records("chat", last=4)
    assert all(
        c is not s and c.metadata["n"] is not s.metadata["n"] for c, s in zip(copies, tail, strict=True)
    )


@pytest.mark.parametrize("read", ["last", "limit", "all"])
def test_a_read_that_fills_the_cache_hands_out_what_it_kept(path: str, read: str) -> None:
    """Uncopied, the records it read are the cached ones; copied, none of them is."""
    store = ContextStore.open(path, embedder=None)
    store.add([_msg(f"m{i}", metadata={"n": {"i": i}}) for i in range(3)])
    kwargs: dict[str, Any] = {"last": 2} if read == "last" else {"limit": 2} if read == "limit" else {}
    first = shared_records(store, "chat", **kwargs)  # a miss: read from Lance, then cached
    assert all(a is b for a, b in zip(first, shared_records(store, "chat", **kwargs), strict=True))
    other = ContextStore.open(path, embedder=None)
    copies = other.records("chat", **kwargs)  # a miss on another handle, copies handed out
    cached = shared_records(other, "chat", **kwargs)
    assert [r.id for r in copies] == [r.id for r in cached] == [r.id for r in first]
    assert all(
        c is not k and c.metadata["n"] is not k.metadata["n"] for c, k in zip(copies, cached, strict=True)
    )


def test_shared_ends_read_a_sessions_first_and_newest_records_after_one_version_check(
    path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = ContextStore.open(path, embedder=None)
    other = ContextStore.open(path, embedder=None)
    plain = ContextStore.open(path, embedder=None, caches=CachePolicy(tail_sessions=0))
    store.add([_msg("system prompt", role="system")] + [_msg(f"m{i}") for i in range(30)])
    checks = Counter()
    real_sync = SessionCache.sync

    def counted_sync(cache: SessionCache[Any, Any]) -> Any:
        checks["sync"] += 1
        return real_sync(cache)

    monkeypatch.setattr(SessionCache, "sync", counted_sync)
    for step in range(3):
        if step == 2:
            other.add([_msg("from another process")])  # the next read sees it
        checks.clear()
        head, newest = shared_ends(store, "chat", first=1, last=5)
        served = checks["sync"]
        assert _texts(head) == _texts(plain.records("chat", limit=1)) == ["system prompt"]
        assert _texts(newest) == _texts(plain.records("chat", last=5))
        if step == 1:
            assert served == 1  # served from the cache: one check for both ends
    assert _texts(newest)[-1] == "from another process"
    checks.clear()
    assert _texts(plain.records("chat", last=1)) == ["from another process"]
    assert checks["sync"] == 0  # a store with its cache off does not check the cache's version
    pinned = ContextStore.open(path, embedder=None).at_version(store.version() - 1)
    head, newest = shared_ends(pinned, "chat", first=1, last=2)
    assert _texts(head) == ["system prompt"] and _texts(newest) == ["m28", "m29"]


def test_what_a_caller_changes_after_adding_a_record_is_not_read_back(path: str) -> None:
    store = ContextStore.open(path, embedder=None)
    store.add(_msg("first"))
    store.records("chat", last=5)  # the session is cached: the next add goes into it as stored
    links = [Relationship("m0", "replies_to")]
    meta = {"tags": ["x"]}
    record = _msg("second", relationships=links, metadata=meta)
    store.add(record)
    links.append(Relationship("m9", "cites"))
    meta["tags"].append("y")
    record.relationships.append(Relationship("m8", "cites"))
    got = store.records("chat", last=1)[0]
    assert got.relationships == [Relationship("m0", "replies_to")] and got.metadata == {"tags": ["x"]}
