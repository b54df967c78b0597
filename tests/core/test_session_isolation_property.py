"""No record is lost or shown to another session, on any read path, whatever the run ids.

Stores are grown the way agents grow them (small interleaved adds, upserts that move
records, deletes, ``replace``, compaction, a reopened handle, a second handle writing at
the same time, branches) over sessions whose run ids look alike: prefixes of one another,
SQL and LIKE metacharacters, composed and decomposed accents, whitespace variants, a very
long id. A plain Python model says what each session holds; every read path is compared
with it after each phase. Seeds make every failure reproducible.
"""

from __future__ import annotations

import asyncio
import random
import threading
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from lance_context import (
    CompactionPolicy,
    ContextRecord,
    ContextStore,
    HashingEmbedder,
    IndexPolicy,
    InvalidFilterError,
)
from lance_context.api import Context

#: Run ids a careless filter would confuse with one another.
RUN_IDS: tuple[str, ...] = (
    "a",
    "a:",
    "a:b",
    "ab",
    "A",
    "%",
    "_",
    "'",
    "\\",
    "a%",
    "a_",
    "a'--",
    "a' OR '1'='1",
    "\\'",
    unicodedata.normalize("NFC", "caf\u00e9"),
    unicodedata.normalize("NFD", "caf\u00e9"),
    " a",
    "a ",
    "a\t",
    "a\u00a0",
    "a\x00",
    "a\n",
    "x" * 2000,
    "x" * 1999,
)
ROLES = ("user", "assistant", "tool")
WORDS = ("zebra", "quartz", "violet", "mango", "harbor", "copper")
METADATA: tuple[dict[str, Any], ...] = (
    {},
    {"": ""},
    {"k": None},
    {"run_id": "a"},
    {"run_id": "%"},
    {"tag": "a%"},
)


@dataclass
class Rec:
    """What the model knows of one stored record."""

    id: str
    run_id: str
    text: str
    role: str
    metadata: dict[str, Any]

    def key(self) -> tuple[str, str, str, str]:
        return (self.id, self.run_id, self.text, self.role)


@dataclass
class Model:
    """Every record in append order (each id once, at its newest position)."""

    rows: list[Rec] = field(default_factory=list)

    def snapshot(self) -> Model:
        return Model(list(self.rows))

    def session(self, run_id: str) -> list[Rec]:
        return [r for r in self.rows if r.run_id == run_id]

    def by_id(self) -> dict[str, Rec]:
        return {r.id: r for r in self.rows}

    def put(self, recs: Iterable[Rec]) -> None:
        recs = list(recs)
        ids = {r.id for r in recs}
        self.rows = [r for r in self.rows if r.id not in ids] + recs

    def drop(self, ids: Iterable[str]) -> None:
        gone = set(ids)
        self.rows = [r for r in self.rows if r.id not in gone]

    def sessions(self) -> list[str]:
        return sorted({r.run_id for r in self.rows})


class Grower:
    """Seeded writes applied to a store and to the model alike."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.counter = 0

    def rec(self, run_id: str, record_id: str | None = None) -> Rec:
        self.counter += 1
        words = " ".join(self.rng.sample(WORDS, 2))
        return Rec(
            record_id or f"r{self.counter}",
            run_id,
            f"{words} note {self.counter}",
            self.rng.choice(ROLES),
            dict(self.rng.choice(METADATA)),
        )


def record_of(rec: Rec) -> ContextRecord:
    return ContextRecord.from_content(
        rec.text, role=rec.role, run_id=rec.run_id, id=rec.id, metadata=dict(rec.metadata)
    )


#: How the store lays out its files: merged often (reads go through the session index), or
#: never merged and rarely indexed (reads skip the unindexed files that hold other sessions).
LAYOUTS: dict[str, dict[str, Any]] = {
    "compacting": {
        "compaction": CompactionPolicy(fanout=4),
        "indexing": IndexPolicy(scalar_refresh_rows=16),
    },
    "session_files": {
        "compaction": CompactionPolicy(enabled=False),
        "indexing": IndexPolicy(
            scalar_refresh_rows=16, refresh_unindexed_rows=100_000, refresh_unindexed_share=1.0
        ),
    },
}


def open_store(uri: str, layout: str = "compacting", **options: Any) -> ContextStore:
    return ContextStore.open(uri, embedder=HashingEmbedder(16), **LAYOUTS[layout], **options)


def grow(store: ContextStore, model: Model, g: Grower, steps: int, sessions: tuple[str, ...]) -> None:
    """Small interleaved writes of the kinds agents make."""
    rng = g.rng
    for _ in range(steps):
        kind = rng.choices(["add", "upsert", "move", "delete", "wipe", "replace"], [10, 2, 1, 2, 0.3, 0.5])[0]
        mine = [r for r in model.rows if r.run_id in sessions]  # rows of other sessions are left alone
        if kind == "add" or not mine:
            batch = [g.rec(rng.choice(sessions)) for _ in range(rng.randint(1, 3))]
            store.add([record_of(r) for r in batch])
            model.put(batch)
        elif kind in ("upsert", "move"):
            old = rng.choice(mine)
            target = rng.choice(sessions) if kind == "move" else old.run_id
            new = g.rec(target, old.id)
            store.upsert(record_of(new))
            model.put([new])
        elif kind == "delete":
            doomed = [r.id for r in rng.sample(mine, min(len(mine), rng.randint(1, 2)))]
            store.delete(doomed)
            model.drop(doomed)
        elif kind == "wipe":
            run_id = rng.choice(sessions)
            role = rng.choice(ROLES)
            store.delete(run_id=run_id, where={"role": role})
            model.drop(r.id for r in model.session(run_id) if r.role == role)
        else:
            run_id = rng.choice(sessions)
            kept = [g.rec(run_id, r.id) for r in model.session(run_id)[: rng.randint(0, 2)]]
            fresh = [g.rec(run_id) for _ in range(rng.randint(0, 2))]
            store.replace(run_id, [record_of(r) for r in kept + fresh])
            model.drop(r.id for r in model.session(run_id))
            model.put(kept + fresh)


def keys(records: Iterable[ContextRecord]) -> list[tuple[str, str, str, str]]:
    return [(r.id, r.run_id, r.text or "", r.role) for r in records]


def expected(recs: Iterable[Rec]) -> list[tuple[str, str, str, str]]:
    return [r.key() for r in recs]


def check_session_reads(store: ContextStore, model: Model, run_id: str, *, full: bool = True) -> None:
    """Every record read path of one session against the model (``full=False``: the main ones)."""
    want = model.session(run_id)
    n = len(want)
    shown = f"session {run_id[:40]!r}"
    assert keys(store.records(run_id)) == expected(want), shown
    assert store.count(run_id) == n, shown
    if not full:
        assert keys(store.records(run_id, last=3)) == expected(want[-3:]), shown
        assert keys(store.records(run_id, limit=2)) == expected(want[:2]), shown
        return
    for last in (0, 1, 3, n, n + 2):
        assert keys(store.records(run_id, last=last)) == expected(want[max(0, n - last) :]), (shown, last)
        assert keys(store.records(run_id, last=last, with_vectors=False)) == expected(
            want[max(0, n - last) :]
        ), (shown, last)
    for limit in (1, 2, 4, 7):
        assert keys(store.records(run_id, limit=limit)) == expected(want[:limit]), (shown, limit)
    assert keys(store.records(run_id, limit=2, offset=1)) == expected(want[1:3]), shown
    assert keys(store.records(run_id, offset=n)) == [], shown
    for role in ROLES:
        mine = [r for r in want if r.role == role]
        assert keys(store.records(run_id, roles=role)) == expected(mine), (shown, role)
        assert keys(store.records(run_id, where={"role": role})) == expected(mine), (shown, role)
        assert store.count(run_id, roles=[role]) == len(mine), (shown, role)
    assert keys(store.records(where={"run_id": run_id})) == expected(want), shown
    either = {"$or": [{"run_id": run_id}, {"run_id": "a"}]}
    assert keys(store.records(run_id, where=either)) == expected(want), shown
    assert keys(store.records(run_id, where={"run_id": {"$ne": run_id}})) == [], shown
    assert keys(store.records(run_id, where={"$not": {"run_id": run_id}})) == [], shown
    assert store.count(where={"run_id": {"$in": [run_id]}}) == n, shown
    ever = (datetime(2000, 1, 1, tzinfo=timezone.utc), datetime(2100, 1, 1, tzinfo=timezone.utc))
    assert keys(store.records(run_id, since=ever[0], until=ever[1])) == expected(want), shown
    assert store.count(run_id, until=ever[0]) == 0, shown
    outline = store.outline(run_id)
    assert outline.table.column("id").to_pylist() == [r.id for r in want], shown


def check_session_search(store: ContextStore, model: Model, run_id: str) -> None:
    """Searches and recall scoped to one session return its records and no other's."""
    want = model.session(run_id)
    ids = {r.id for r in want}
    shown = f"session {run_id[:40]!r}"
    k = len(want) + 3
    for mode in ("vector", "hybrid"):
        hits = store.search("zebra harbor", k=k, mode=mode, run_id=run_id)
        assert {h.record.id for h in hits} == ids, (shown, mode)
        assert all(h.record.run_id == run_id for h in hits), (shown, mode)
    word = WORDS[len(run_id) % len(WORDS)]
    hits = store.search(word, k=k, mode="text", run_id=run_id)
    assert {h.record.id for h in hits} == {r.id for r in want if word in r.text.split()}, shown
    role_hits = store.search("quartz", k=k, run_id=run_id, roles="tool")
    assert {h.record.id for h in role_hits} == {r.id for r in want if r.role == "tool"}, shown
    where_hits = store.search("mango", k=k, where={"run_id": run_id})
    assert {h.record.id for h in where_hits} == ids, shown
    mmr_hits = store.search("violet", k=k, run_id=run_id, mmr=True)
    assert {h.record.id for h in mmr_hits} == ids, shown
    for alpha in (0.0, 1.0):
        fused = store.search("copper", k=k, mode="hybrid", run_id=run_id, alpha=alpha)
        assert {h.record.id for h in fused} <= ids, (shown, alpha)
    assert store.search("zebra", k=k, run_id=run_id, where={"run_id": {"$ne": run_id}}) == [], shown
    for match in store.recall(word, run_id=run_id, k=3):
        assert match.match.run_id == run_id, shown
        assert all(turn.run_id == run_id for turn in match.turns), shown


def check_store(store: ContextStore, model: Model, *, search: bool = True, full: bool = True) -> None:
    """The whole store against the model: sessions, prefixes, ids, each session's reads."""
    assert store.run_ids() == model.sessions()
    assert store.count() == len(model.rows)
    assert sorted(keys(store.records())) == sorted(expected(model.rows))
    by_id = model.by_id()
    asked = [*by_id, "missing", "r0"]
    assert sorted(keys(store.get_many(asked))) == sorted(expected(by_id.values()))
    for record_id in list(by_id)[:5]:
        got = store.get(record_id)
        assert got is not None and keys([got]) == expected([by_id[record_id]])
    for prefix in ("a", "a:", "a%", "a_", "%", "_", "'", "\\", "x" * 1999, "caf"):
        matching = [r for r in model.rows if r.run_id.startswith(prefix)]
        found = store.records(where={"run_id": {"$prefix": prefix}})
        assert sorted(keys(found)) == sorted(expected(matching)), prefix
    for run_id in RUN_IDS:
        check_session_reads(store, model, run_id, full=full)
        if search:
            check_session_search(store, model, run_id)


async def check_async(store: ContextStore, model: Model) -> None:
    aio = store.aio
    assert await aio.run_ids() == model.sessions()
    for run_id in RUN_IDS:
        want = model.session(run_id)
        assert keys(await aio.records(run_id)) == expected(want)
        assert keys(await aio.records(run_id, last=2)) == expected(want[-2:] if want else [])
        assert await aio.count(run_id) == len(want)
        hits = await aio.search("violet", k=len(want) + 1, run_id=run_id)
        assert {h.record.id for h in hits} == {r.id for r in want}
    assert sorted(keys(await aio.get_many([r.id for r in model.rows]))) == sorted(expected(model.rows))


def check_diff(store: ContextStore, old: Model, new: Model, v_old: int, v_new: int) -> None:
    """diff() names exactly the records that changed, each with the session it was in."""
    before, after = old.by_id(), new.by_id()
    diff = store.diff(v_old, v_new)
    added = {r.id: r.run_id for r in diff.added}
    removed = {r.id: r.run_id for r in diff.removed}
    moved_or_changed = {i for i in before.keys() & after.keys() if before[i].key() != after[i].key()}
    assert set(added) == (after.keys() - before.keys()) | moved_or_changed
    assert set(removed) == (before.keys() - after.keys()) | moved_or_changed
    assert all(after[i].run_id == s for i, s in added.items())
    assert all(before[i].run_id == s for i, s in removed.items())


@pytest.mark.parametrize(("seed", "layout"), [(1, "compacting"), (2, "session_files")])
def test_every_read_path_shows_each_session_exactly_its_records(
    tmp_path: Path, seed: int, layout: str
) -> None:
    uri = str(tmp_path / "store.lance")
    g = Grower(seed)
    model = Model()
    store = open_store(uri, layout)
    # warm every session's tail cache, so later reads check that writes keep it right
    grow(store, model, g, 30, RUN_IDS)
    for run_id in RUN_IDS:
        store.records(run_id, last=5)
        store.records(run_id, limit=2)
    v1, m1 = store.version(), model.snapshot()
    grow(store, model, g, 30, RUN_IDS)
    check_store(store, model)
    store.compact()
    v2, m2 = store.version(), model.snapshot()
    check_store(store, model, search=False, full=False)
    grow(store, model, g, 20, RUN_IDS)
    # a second handle writes after this one cached its tails: the cache must catch up
    other = open_store(uri, layout)
    grow(other, model, g, 12, RUN_IDS)
    check_store(store, model, search=False, full=False)
    # a reopened handle sees the same
    check_store(open_store(uri, layout), model, search=False, full=False)
    # past versions read exactly as they were
    for version, then in ((v1, m1), (v2, m2)):
        view = store.at_version(version)
        for run_id in RUN_IDS:
            assert keys(view.records(run_id)) == expected(then.session(run_id))
            assert keys(view.records(run_id, last=2)) == expected(then.session(run_id)[-2:])
            assert view.count(run_id) == len(then.session(run_id))
            hits = view.search("copper", k=50, run_id=run_id)
            assert {h.record.id for h in hits} == {r.id for r in then.session(run_id)}
            for mode in ("vector", "hybrid"):
                hits = store.search("copper", k=50, run_id=run_id, version=version, mode=mode)
                assert {h.record.id for h in hits} == {r.id for r in then.session(run_id)}
        hits = store.search("copper", k=500, version=version)
        assert sorted(h.record.id for h in hits) == sorted(then.by_id())
    check_diff(store, m1, m2, v1, v2)
    check_diff(store, m2, model, v2, store.version())
    store.checkout(v1)
    for run_id in RUN_IDS:
        assert keys(store.records(run_id, last=3)) == expected(m1.session(run_id)[-3:])
        assert keys(store.records(run_id, limit=3)) == expected(m1.session(run_id)[:3])
    store.checkout_latest()
    check_store(store, model, search=False)
    asyncio.run(check_async(store, model))
    # one session goes back to v1; an id another session holds by now stays there
    target = g.rng.choice(RUN_IDS)
    now = model.by_id()
    store.restore(v1, run_id=target)
    model.drop(r.id for r in model.session(target))
    model.put(r for r in m1.session(target) if r.id not in now or now[r.id].run_id == target)
    check_store(store, model, search=False, full=False)
    # a logged search replays in its own session only
    for run_id in RUN_IDS[:6]:
        hits = store.search("violet", k=50, run_id=run_id, record=True)
        assert hits.search_id is not None
        replayed = store.replay(hits.search_id, at="latest")
        assert {h.record.id for h in replayed.hits} == {r.id for r in model.session(run_id)}


@pytest.mark.parametrize(("seed", "layout"), [(1, "compacting"), (2, "session_files")])
def test_two_handles_writing_at_once_lose_nothing_and_mix_no_sessions(
    tmp_path: Path, seed: int, layout: str
) -> None:
    uri = str(tmp_path / "store.lance")
    first, second = open_store(uri, layout), open_store(uri, layout)
    halves = (RUN_IDS[::2], RUN_IDS[1::2])
    models, growers = (Model(), Model()), (Grower(seed), Grower(seed + 100))
    for g, prefix in zip(growers, ("p", "q"), strict=True):
        g.counter = 0
        g.rec = _prefixed(g, prefix)  # type: ignore[method-assign]
    for handle in (first, second):  # both handles hold cached tails
        for run_id in RUN_IDS:
            handle.records(run_id, last=3)
    errors: list[BaseException] = []

    def run(handle: ContextStore, model: Model, g: Grower, sessions: tuple[str, ...]) -> None:
        try:
            grow(handle, model, g, 25, sessions)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [
        threading.Thread(target=run, args=(h, m, g, s))
        for h, m, g, s in zip((first, second), models, growers, halves, strict=True)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    for handle in (first, second, open_store(uri, layout)):
        assert handle.run_ids() == sorted(set(models[0].sessions()) | set(models[1].sessions()))
        for model, sessions in zip(models, halves, strict=True):
            for run_id in sessions:
                want = model.session(run_id)
                assert keys(handle.records(run_id)) == expected(want), run_id
                assert keys(handle.records(run_id, last=3)) == expected(want[-3:]), run_id
                assert keys(handle.records(run_id, limit=2)) == expected(want[:2]), run_id
                assert handle.count(run_id) == len(want), run_id


def _prefixed(g: Grower, prefix: str) -> Any:
    plain = Grower.rec

    def rec(run_id: str, record_id: str | None = None) -> Rec:
        made = plain(g, run_id, record_id)
        if record_id is None:
            made.id = prefix + made.id
        return made

    return rec


@pytest.mark.parametrize(("seed", "layout"), [(4, "session_files")])
def test_branches_keep_their_sessions_apart(tmp_path: Path, seed: int, layout: str) -> None:
    uri = str(tmp_path / "store.lance")
    g = Grower(seed)
    main_model = Model()
    store = open_store(uri, layout)
    grow(store, main_model, g, 30, RUN_IDS)
    for run_id in RUN_IDS:
        store.records(run_id, last=4)
    branch = store.branch("side")
    side_model = main_model.snapshot()
    # the branch and main change disjoint halves of the sessions, so a merge has no conflict
    ours, theirs = RUN_IDS[1::2], RUN_IDS[::2]
    grow(branch, side_model, g, 20, theirs)
    grow(store, main_model, g, 20, ours)
    check_store(store, main_model, search=False, full=False)
    check_store(branch, side_model, search=False, full=False)
    store.checkout_branch("side")
    check_store(store, side_model, search=False, full=False)
    store.checkout_branch("main")
    check_store(store, main_model, search=False, full=False)
    reopened = open_store(uri, layout, branch="side")
    check_store(reopened, side_model, search=False, full=False)
    store.merge("side")
    merged = Model(
        [r for r in main_model.rows if r.run_id in ours] + [r for r in side_model.rows if r.run_id in theirs]
    )
    check_store(store, merged, search=False, full=False)
    check_store(open_store(uri, layout), merged, search=False, full=False)


def test_a_run_id_is_matched_exactly_never_as_a_pattern(tmp_path: Path) -> None:
    store = open_store(str(tmp_path / "store.lance"))
    store.add(
        [ContextRecord.from_content(f"text of {i}", run_id=r, id=f"id{i}") for i, r in enumerate(RUN_IDS)]
    )
    for i, run_id in enumerate(RUN_IDS):
        assert [r.id for r in store.records(run_id)] == [f"id{i}"]
        assert store.count(run_id) == 1
        assert [h.record.id for h in store.search("text", k=5, run_id=run_id)] == [f"id{i}"]
        store.delete(run_id=run_id)
        assert store.count() == len(RUN_IDS) - i - 1
        assert store.count(run_id) == 0


def test_the_context_api_reads_only_its_own_run(tmp_path: Path) -> None:
    store = open_store(str(tmp_path / "store.lance"))
    contexts = {run_id: Context(store, run_id) for run_id in RUN_IDS}
    rng = random.Random(7)
    written: dict[str, list[str]] = {run_id: [] for run_id in RUN_IDS}
    for n in range(60):
        run_id = rng.choice(RUN_IDS)
        contexts[run_id].add("user", f"entry {n}")
        written[run_id].append(f"entry {n}")
    assert all(r.startswith("context:") for r in store.run_ids())
    for run_id, context in contexts.items():
        assert [r.text for r in context.entries()] == written[run_id]
        assert [r.text for r in context.entries(last=2)] == written[run_id][-2:]
        assert [r.text for r in context.entries(limit=1)] == written[run_id][:1]


@pytest.mark.parametrize("key", ["seq", "id", "role", "_rowid"])
def test_an_outline_refuses_a_metadata_key_named_like_its_own_columns(tmp_path: Path, key: str) -> None:
    store = open_store(str(tmp_path / "store.lance"))
    store.add(
        [
            ContextRecord.from_content(
                f"m{i}", run_id="a", id=f"x{i}", metadata={key: "same", "seq": str(9 - i)}
            )
            for i in range(5)
        ]
    )
    with pytest.raises(InvalidFilterError, match=f"metadata key {key!r}"):
        store.outline("a", [key])
    view = store.outline("a", ["topic"])
    assert view.table.column("id").to_pylist() == [f"x{i}" for i in range(5)]
    assert [r.id for r in view.fetch(view.table.column("_rowid").to_pylist())] == [f"x{i}" for i in range(5)]


@pytest.mark.parametrize(("seed", "layout"), [(1, "compacting"), (2, "session_files")])
def test_reads_interleaved_with_two_handles_writes_always_match_the_model(
    tmp_path: Path, seed: int, layout: str
) -> None:
    """Every read, through either handle, right after any write: the tail caches never go stale."""
    uri = str(tmp_path / "store.lance")
    handles = [open_store(uri, layout), open_store(uri, layout)]
    sessions = RUN_IDS[:8]
    model, g, rng = Model(), Grower(seed), random.Random(seed)
    long = [g.rec("a") for _ in range(90)]  # a long session: its newest rows are picked without ordering all
    handles[0].add([record_of(r) for r in long])
    model.put(long)
    for step in range(150):
        handle = rng.choice(handles)
        if rng.random() < 0.4:
            grow(handle, model, g, 1, sessions)
            continue
        if rng.random() < 0.05:
            handle.compact()
            continue
        run_id = rng.choice(sessions)
        want = model.session(run_id)
        n = rng.choice([0, 1, 2, 3, 4, 5, 20])
        kind = rng.choice(["last", "last without vectors", "limit", "all"])
        if kind == "last":
            got, wanted = handle.records(run_id, last=n), want[max(0, len(want) - n) :]
        elif kind == "last without vectors":
            got, wanted = handle.records(run_id, last=n, with_vectors=False), want[max(0, len(want) - n) :]
        elif kind == "limit":
            got, wanted = handle.records(run_id, limit=n), want[:n]
        else:
            got, wanted = handle.records(run_id), want
        assert keys(got) == expected(wanted), (step, kind, n, run_id)
