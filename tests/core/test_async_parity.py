"""AsyncContextStore against ContextStore: same results, same errors, same versions; nothing lost at once.

One scripted session runs twice on two fresh stores, once through the sync methods and once
through ``store.aio``; every step's return value (or error class and message) must match.
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from lance_context import AsyncContextStore, ContextRecord, ContextStore, HashingEmbedder
from lance_context.api import Context

T0 = datetime(2024, 5, 1, tzinfo=timezone.utc)
Call = Callable[..., Awaitable[Any]]


def _records(prefix: str, run_id: str, n: int) -> list[ContextRecord]:
    return [
        ContextRecord.from_content(
            f"{prefix} turn {i} about ferries to kyoto",
            role="user" if i % 2 == 0 else "assistant",
            run_id=run_id,
            id=f"{run_id}-{prefix}-{i}",
            created_at=T0 + timedelta(minutes=i),
            metadata={"i": i, "topic": prefix},
        )
        for i in range(n)
    ]


def _normal(value: Any, root: str) -> Any:
    """A comparable form: records by content, no times, store paths and random ids made equal."""
    if isinstance(value, ContextRecord):
        return ("record", value.id, value.run_id, value.role, value.text, value.metadata, value.created_at)
    if isinstance(value, ContextStore):
        return ("store", value.branch_name, value.version(), value.read_only)
    if isinstance(value, datetime):
        return "<time>"
    if isinstance(value, float):
        return round(value, 6)
    if isinstance(value, str):
        return value.replace(root, "<root>")
    if isinstance(value, (list, tuple)):
        items = [_normal(v, root) for v in value]
        search_id = getattr(value, "search_id", None)
        return (items, search_id is not None) if hasattr(value, "search_id") else items
    if isinstance(value, (set, frozenset)):
        return sorted(_normal(v, root) for v in value)
    if isinstance(value, dict):
        return {k: _normal(v, root) for k, v in value.items()}
    if hasattr(value, "table") and hasattr(value, "fetch"):  # an Outline
        # rows come in append order; the seq values themselves differ between stores (see commit_seq)
        return ("outline", value.table.drop_columns(["_rowid", "seq"]).to_pylist())
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        skip = {
            "timestamp",
            "bytes",
            "bytes_removed",
            "bytes_deleted",
            "files_deleted",
            "verification",
            "search_id",
        }
        fields = {f.name: getattr(value, f.name) for f in dataclasses.fields(value) if f.name not in skip}
        return (type(value).__name__, _normal(fields, root))
    return value


async def _script(call: Call, root: str) -> list[tuple[str, Any]]:
    """The same session for both stores: each step's result or error."""
    steps: list[tuple[str, Any]] = []

    async def step(name: str, *args: Any, **kwargs: Any) -> Any:
        try:
            result = await call(name, *args, **kwargs)
        except Exception as error:
            steps.append((name, ("error", type(error).__name__, str(error).replace(root, "<root>"))))
            return None
        steps.append((name, ("ok", _normal(result, root))))
        return result

    await step("add", _records("a", "s1", 4))
    await step("add", _records("b", "s2", 3))
    await step("add", ContextRecord.from_content("single", run_id="s1", id="one", created_at=T0))
    await step("upsert", _records("a", "s1", 2), keep_order=True)
    await step("upsert", _records("z", "s3", 1))
    await step("records", "s1", last=3)
    await step("records", roles="user", with_vectors=False, offset=1, limit=3)
    await step("records", None, where={"metadata.i": {"$gte": 2}})
    await step("count")
    await step("count", "s1", roles=["user"])
    await step("get", "s1-a-0")
    await step("get", "missing")
    await step("get_many", ["s1-a-1", "missing", "s2-b-0"], with_vectors=False)
    await step("run_ids")
    await step("outline", "s1", ["topic"])
    await step("search", "kyoto ferries", k=3, run_id="s1")
    await step("search", "ferries", k=3, mode="text")
    await step("search", "ferries", k=3, mode="hybrid", where={"role": "user"})
    await step("search", "ferries", k=2, mmr=True, fetch_k=6)
    await step("search", "ferries", k=2, record=True)
    await step("recall", "kyoto", run_id="s1", k=2)
    await step("version")
    await step("tag", "first")
    await step("tags")
    await step("versions")
    await step("changes_between", 2, 3)
    await step("replace", "s2", _records("c", "s2", 2))
    await step("delete", ["one"])
    await step("delete", run_id="nobody")
    await step("delete", where={"metadata.topic": "z"})
    await step("diff", "first")
    await step("diff", 2, 4)
    await step("checkout", "first")
    await step("version")
    await step("add", _records("x", "s1", 1))  # refused: a past version is checked out
    await step("checkout_latest")
    await step("at_version", 2)
    await step("restore", "first", run_id="s2")
    await step("restore", 3)
    await step("branch", "what-if")
    branch = await step("branches")
    assert branch == ["main", "what-if"]
    await step("checkout_branch", "what-if")
    await step("add", _records("w", "s1", 2))
    await step("checkout_branch", "main")
    await step("review", "what-if", ["ferries"], k=2)
    await step("merge", "what-if")
    await step("merge", "what-if")  # again: nothing changes
    await step("delete_branch", "what-if")
    await step("delete_tag", "first")
    await step("reembed", HashingEmbedder(16), batch_size=3)
    await step("search", "ferries", k=2)
    await step("build_vector_index")
    await step("compact")
    await step("cleanup", older_than=timedelta(days=365))
    await step("apply_retention", dry_run=True)
    await step("forget", ["s1-a-3"], dry_run=True)
    await step("export", root + "/exported.lance", version=2)
    await step("version")
    # errors: the same class and message
    await step("add", [ContextRecord.from_content("bad", run_id="")])
    await step("add", "not a record")
    await step("upsert", _records("u", "s1", 1), True)  # keep_order is keyword-only
    await step("records", "s1", "user")
    await step("records", last=-1)
    await step("records", limit="ten")
    await step("count", 5)
    await step("get", None)
    await step("get_many", None)
    await step("get_many", "s1-a-1")
    await step("search", "x", k=0)
    await step("search", "x", mode="bogus")
    await step("search", "x", bogus=1)
    await step("recall", "x", k=-1)
    await step("checkout", 999)
    await step("checkout", "no-such-tag")
    await step("checkout", None)
    await step("checkout_branch", "no-such-branch")
    await step("tag", "")
    await step("tag", "t", 999)
    await step("tag", "dup")
    await step("tag", "dup")
    await step("delete_tag", "no-such-tag")
    await step("restore", 999)
    await step("restore", 2, run_id="")
    await step("branch", "main")
    await step("delete_branch", "main")
    await step("delete_branch", "no-such-branch")
    await step("merge", "no-such-branch")
    await step("review", "no-such-branch")
    await step("replay", "no-such-search")
    await step("diff", 999)
    await step("changes_between", 5)
    await step("forget")
    await step("export", root + "/exported.lance")  # something is there already
    await step("version")
    return steps


def _sync_call(store: ContextStore) -> Call:
    async def call(name: str, *args: Any, **kwargs: Any) -> Any:
        return getattr(store, name)(*args, **kwargs)

    return call


def _async_call(store: ContextStore) -> Call:
    async def call(name: str, *args: Any, **kwargs: Any) -> Any:
        return await getattr(store.aio, name)(*args, **kwargs)

    return call


async def test_every_async_method_returns_and_raises_what_its_sync_twin_does(tmp_path: Path) -> None:
    (tmp_path / "sync").mkdir()
    (tmp_path / "async").mkdir()
    sync_root, async_root = str(tmp_path / "sync"), str(tmp_path / "async")
    sync_store = ContextStore.open(sync_root + "/s.lance", embedder=HashingEmbedder(16))
    async_store = ContextStore.open(async_root + "/s.lance", embedder=HashingEmbedder(16))
    expected = await _script(_sync_call(sync_store), sync_root)
    got = await _script(_async_call(async_store), async_root)
    assert len(got) == len(expected)
    for (name, want), (_, have) in zip(expected, got, strict=True):
        assert have == want, name
    errors = [name for name, (kind, *_) in expected if kind == "error"]
    assert len(errors) >= 30  # the error steps did fail, on both sides
    # the same versions, written by the same operations
    assert [(v.version, v.operation, v.rows) for v in async_store.versions()] == [
        (v.version, v.operation, v.rows) for v in sync_store.versions()
    ]
    assert async_store.search_log() and len(async_store.search_log()) == len(sync_store.search_log())


async def test_logged_search_replays_the_same_through_both(tmp_path: Path) -> None:
    store = ContextStore.open(str(tmp_path / "s.lance"), embedder=HashingEmbedder(16))
    store.add(_records("a", "s1", 4))
    hits = await store.aio.search("ferries", k=2, record=True)
    assert hits.search_id is not None
    store.add(_records("b", "s1", 2))
    sync_replay = store.replay(hits.search_id, at="latest")
    async_replay = await store.aio.replay(hits.search_id, at="latest")
    assert _normal(async_replay.to_dict(), "") == _normal(sync_replay.to_dict(), "")
    assert [e.id for e in await store.aio.search_log()] == [e.id for e in store.search_log()]


async def test_rotate_key_has_an_async_twin_that_writes_one_version(tmp_path: Path) -> None:
    pytest.importorskip("cryptography")
    from lance_context import EncryptionPolicy

    store = ContextStore.open(str(tmp_path / "s.lance"), embedder=HashingEmbedder(16))
    store.add(_records("a", "s1", 3))
    before = store.version()
    version = await store.aio.rotate_key(EncryptionPolicy(key=bytes(range(32))))
    assert version == before + 1 == store.version()
    assert [r.text for r in await store.aio.records("s1")] == [r.text for r in _records("a", "s1", 3)]
    not_a_policy: Any = "not a policy"
    want = _error(lambda: store.rotate_key(not_a_policy))
    with pytest.raises(type(want)) as raised:
        await store.aio.rotate_key(not_a_policy)
    assert str(raised.value) == str(want) and store.version() == version


def _error(action: Callable[[], Any]) -> BaseException:
    try:
        action()
    except Exception as error:
        return error
    raise AssertionError("no error")


SYNC_ONLY = {
    "close": "does nothing",
    "bulk": "returns a BulkWriter without I/O; its plan/commit are the distributed seam",
}


def test_every_public_sync_method_has_an_async_twin_with_its_parameters() -> None:
    own = [c for c in reversed(ContextStore.__mro__) if c.__module__.startswith("lance_context")]
    methods = {
        name: value
        for cls in own
        for name, value in vars(cls).items()
        if inspect.isfunction(value) and not name.startswith("_")
    }
    missing = sorted(set(methods) - set(SYNC_ONLY) - set(vars(AsyncContextStore)))
    assert missing == []
    for name, method in methods.items():
        if name in SYNC_ONLY:
            continue
        twin = getattr(AsyncContextStore, name)
        assert inspect.iscoroutinefunction(twin), name
        assert inspect.signature(twin) == inspect.signature(method), name
        assert name in (twin.__doc__ or ""), name


async def test_an_override_in_a_store_subclass_runs_in_async_code_too(tmp_path: Path) -> None:
    calls: list[str] = []

    class Audited(ContextStore):
        def add(self, records: Any) -> int:
            calls.append("add")
            return super().add(records)

    store = Audited.open(str(tmp_path / "s.lance"), embedder=HashingEmbedder(16))
    assert isinstance(store, Audited)
    await store.aio.add(_records("a", "s1", 1))
    store.add(_records("b", "s1", 1))
    assert calls == ["add", "add"]
    fork = await store.aio.branch("b")
    assert isinstance(fork, Audited)  # returns what the sync method does: a store of the same class


async def test_async_open_opens_or_creates_and_raises_what_open_raises(tmp_path: Path) -> None:
    uri = str(tmp_path / "s.lance")
    astore = await AsyncContextStore.open(uri, embedder=HashingEmbedder(16))
    assert isinstance(astore, AsyncContextStore) and isinstance(astore.store, ContextStore)
    await astore.add(_records("a", "s1", 2))
    again = await AsyncContextStore.open(uri, embedder=HashingEmbedder(16), read_only=True)
    assert [r.id for r in await again.records("s1")] == ["s1-a-0", "s1-a-1"]
    bad_opens: list[tuple[str, dict[str, Any]]] = [
        (uri, {"embedder": HashingEmbedder(8)}),
        (str(tmp_path / "none.lance"), {"read_only": True}),
        (uri, {"bogus": 1}),
    ]
    for where, kwargs in bad_opens:
        want = _error(lambda: ContextStore.open(where, **kwargs))  # noqa: B023
        with pytest.raises(type(want)) as raised:
            await AsyncContextStore.open(where, **kwargs)
        assert str(raised.value) == str(want)


def test_wrapping_something_else_than_a_store_is_refused_clearly(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match=r"AsyncContextStore\.open\(uri\)"):
        AsyncContextStore(str(tmp_path / "s.lance"))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"Context\.create\(uri\)"):
        Context(str(tmp_path / "s.lance"))  # type: ignore[arg-type]


async def test_gathered_writes_and_reads_lose_nothing(tmp_path: Path) -> None:
    store = ContextStore.open(str(tmp_path / "s.lance"), embedder=HashingEmbedder(16))
    n = 40
    records = [
        ContextRecord.from_content(f"turn {i}", run_id=f"s{i % 4}", id=f"id-{i}", created_at=T0)
        for i in range(n)
    ]
    results = await asyncio.gather(
        *(store.aio.add(r) for r in records),
        *(store.aio.count() for _ in range(10)),
        *(store.aio.search("turn", k=3) for _ in range(5)),
        *(
            store.aio.upsert(ContextRecord.from_content(f"same {i}", run_id="u", id="same"))
            for i in range(10)
        ),
    )
    versions = results[:n]
    assert len(set(versions)) == n
    assert sorted(r.id for r in store.records() if r.run_id != "u") == sorted(r.id for r in records)
    assert store.count() == n + 1 and store.count("u") == 1
    assert {r.text for r in store.records("u")} <= {f"same {i}" for i in range(10)}
    for run in range(4):  # every record once; at once, append order ties go by id (see seq_base)
        mine = [r.id for r in store.records(f"s{run}")]
        assert sorted(mine) == sorted(r.id for r in records if r.run_id == f"s{run}")


async def test_each_coroutine_keeps_its_own_order_while_others_write(tmp_path: Path) -> None:
    store = ContextStore.open(str(tmp_path / "s.lance"), embedder=HashingEmbedder(16))

    async def writer(run_id: str) -> None:
        for i in range(8):
            await store.aio.add(
                ContextRecord.from_content(f"{run_id} {i}", run_id=run_id, id=f"{run_id}-{99 - i}")
            )

    await asyncio.gather(*(writer(f"w{n}") for n in range(4)))
    for n in range(4):
        assert [r.id for r in store.records(f"w{n}")] == [f"w{n}-{99 - i}" for i in range(8)]


class _SlowEmbedder(HashingEmbedder):
    """Takes ``delay`` seconds per batch, in whatever thread calls it."""

    def __init__(self, delay: float) -> None:
        super().__init__(16)
        self.delay = delay
        self.threads: set[int] = set()

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        import threading

        self.threads.add(threading.get_ident())
        time.sleep(self.delay)
        return super().embed_texts(texts)


async def test_slow_work_runs_off_the_event_loop(tmp_path: Path) -> None:
    import threading

    embedder = _SlowEmbedder(0.3)
    store = await AsyncContextStore.open(str(tmp_path / "s.lance"), embedder=embedder)
    ticks = 0
    done = asyncio.Event()

    async def heartbeat() -> None:
        nonlocal ticks
        while not done.is_set():
            await asyncio.sleep(0.01)
            ticks += 1

    beating = asyncio.create_task(heartbeat())
    started = time.perf_counter()
    await asyncio.gather(*(store.add(_records("a", f"s{i}", 1)) for i in range(3)))
    await store.search("ferries", k=1)
    elapsed = time.perf_counter() - started
    done.set()
    await beating
    assert threading.get_ident() not in embedder.threads  # the loop's thread never embedded
    assert elapsed >= 0.3 and ticks >= 10  # the loop kept running while the embedder slept
    assert await store.count() == 3


async def test_a_cancelled_await_may_still_commit_as_documented(tmp_path: Path) -> None:
    store = ContextStore.open(str(tmp_path / "s.lance"), embedder=_SlowEmbedder(0.3))
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(store.aio.add(_records("a", "s1", 1)), timeout=0.05)
    deadline = time.monotonic() + 10
    while store.count() == 0 and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert store.count() == 1  # the thread finished the write
    assert "may still commit" in (AsyncContextStore.__doc__ or "")


async def test_checkout_through_aio_is_seen_by_every_coroutine(tmp_path: Path) -> None:
    store = ContextStore.open(str(tmp_path / "s.lance"), embedder=HashingEmbedder(16))
    first = await store.aio.add(_records("a", "s1", 1))
    await store.aio.add(_records("b", "s1", 1))
    assert await store.aio.checkout(first) is store
    assert await store.aio.count() == 1 and store.version() == first
    view = await store.aio.at_version(first + 1)
    assert view.read_only and view.count() == 2 and store.version() == first
    assert await store.aio.checkout_latest() is store
    assert await store.aio.count() == 2


# ---------------------------------------------------------------------- api.Context


def test_context_tags_repr_and_run_ids(tmp_path: Path) -> None:
    ctx = Context.create(str(tmp_path / "c.lance"), run_id="trip", embedder=HashingEmbedder(16))
    assert repr(ctx).startswith("Context(run_id='trip', store=ContextStore(")
    first = ctx.add("user", "Kyoto or Lisbon?")
    ctx.tag("asked")
    ctx.add("assistant", "Lisbon")
    assert ctx.tags() == {"asked": first} == ctx.store.tags()
    ctx.checkout("asked")
    assert ctx.version() == first and [e.text for e in ctx.entries()] == ["Kyoto or Lisbon?"]
    ctx.checkout_latest()
    assert ctx.versions()[-1].version == ctx.version()
    for bad in ("", None, 5):
        with pytest.raises(Exception, match="non-empty string"):
            Context(ctx.store, bad)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="3 positional"):
        ctx.add("user", "x", "text/plain")  # type: ignore[misc]


def test_context_add_refuses_what_the_store_refuses(tmp_path: Path) -> None:
    ctx = Context.create(str(tmp_path / "c.lance"), embedder=HashingEmbedder(16))
    before = ctx.version()
    for bad in ([], "", ["topic"]):  # an empty list was taken for "no metadata"
        with pytest.raises(Exception, match="metadata must be a dict"):
            ctx.add("user", "x", metadata=bad)  # type: ignore[arg-type]
    assert ctx.version() == before and ctx.entries() == []
    ctx.add("user", "x", metadata={}, relationships=[])
    assert ctx.entries()[0].metadata == {}
