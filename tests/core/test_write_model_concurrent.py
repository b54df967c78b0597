"""Writes of two or three handles on one store, interleaved and raced, against a Python model.

Each handle is opened on the same location, as separate processes would open it. A step
either writes through one handle, or races two or three: the first handle's commit first
runs the second handle's whole write (whose commit may first run the third's), so every
inner write lands between an outer write's read and its commit.

The model applies the writes one after the other, in commit order. Where the store's
documentation leaves a choice, each choice is a candidate model and the store must match
one of them: a write Lance rebases over another reads the snapshot it started from, one
it retries reads the latest version; writes committed on top of one version keep each
write's records together, in either order. ``update_metadata`` always patches what the
other writer left, upserts and deletes of one record leave the later commit's outcome,
and ``upsert(replace_where=...)`` leaves only its own records inside its filter. After
every step a fresh handle reads the store: no record lost or shown twice, every session's
records its own and in the model's order, ``count`` and ``get_many`` agreeing.
An ``add`` of a stored id runs only on its own: the model does not enumerate where a
second copy raced with a rewrite of its id ends up (``test_update_metadata.py`` forces the
race of such an add with a metadata patch).
A smaller run repeats single-handle steps on an encrypted store with sealed metadata.
"""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from dataclasses import replace as evolve
from typing import Any

from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from lance_context import (
    CompactionPolicy,
    ContextRecord,
    ContextStore,
    EncryptionPolicy,
    IndexPolicy,
    _writer,
)

SESSIONS = ("s0", "s1", "s2")
ITEMS = ("i0", "i1", "i2")
KINDS = (
    "add",
    "add_again",
    "upsert",
    "upsert_where",
    "replace",
    "update",
    "delete",
    "delete_where",
    "compact",
)
Shown = tuple[str, str, str | None, dict[str, Any]]


@dataclass(frozen=True)
class Rec:
    """One stored record as the model knows it; ``pos`` orders the records."""

    id: str
    run_id: str
    text: str
    metadata: dict[str, Any]
    pos: int = -1

    def shown(self) -> Shown:
        return (self.id, self.run_id, self.text, self.metadata)


@dataclass
class Model:
    """Every stored record by id, the ids ``add`` stored more than once, the last position used."""

    rows: dict[str, Rec] = field(default_factory=dict)
    copies: dict[str, int] = field(default_factory=dict)
    top: int = 0

    def copy(self) -> Model:
        return Model(dict(self.rows), dict(self.copies), self.top)

    def ordered(self) -> list[Rec]:
        return sorted(self.rows.values(), key=lambda r: r.pos)

    def stored(self) -> tuple[int, int]:
        extra = sum(n - 1 for i, n in self.copies.items() if i in self.rows)
        return len(self.rows), len(self.rows) + extra

    def drop(self, record_id: str) -> None:
        self.rows.pop(record_id, None)
        self.copies.pop(record_id, None)


@dataclass
class Op:
    """One planned write: what to call, and enough to apply it to a model."""

    kind: str
    recs: list[Rec] = field(default_factory=list)
    keep_order: bool = False
    ids: list[str] = field(default_factory=list)
    run_id: str = "s0"
    item: str = "i0"
    as_function: bool = False

    def run(self, store: ContextStore) -> None:
        records = [
            ContextRecord(id=r.id, run_id=r.run_id, text_payload=r.text, metadata=dict(r.metadata))
            for r in self.recs
        ]
        if self.kind in ("add", "add_again"):
            store.add(records)
        elif self.kind == "upsert":
            store.upsert(records, keep_order=self.keep_order)
        elif self.kind == "upsert_where":
            store.upsert(records, replace_where={"metadata.item": self.item}, keep_order=self.keep_order)
        elif self.kind == "replace":
            store.replace(self.run_id, records)
        elif self.kind == "update":
            if self.as_function:
                store.update_metadata(self.ids, lambda meta: {**meta, "n": meta["n"] + 10, "seen": True})
            else:
                store.update_metadata(self.ids, {"item": self.item})
        elif self.kind == "delete":
            store.delete(self.ids)
        elif self.kind == "delete_where":
            store.delete(run_id=self.run_id, where={"metadata.item": self.item})
        else:
            store.compact()

    def apply(self, model: Model, read: Model, start: int) -> None:
        """Apply to ``model`` this write read from ``read``; its new positions start at ``start``."""
        now = model.rows
        if self.kind == "delete":
            for record_id in self.ids:
                model.drop(record_id)
        elif self.kind == "delete_where":
            for rec in list(read.rows.values()):
                if rec.run_id == self.run_id and rec.metadata["item"] == self.item:
                    model.drop(rec.id)
        elif self.kind == "update":
            for record_id in self.ids:
                if record_id in now:
                    meta = dict(now[record_id].metadata)
                    meta.update(
                        {"n": meta["n"] + 10, "seen": True} if self.as_function else {"item": self.item}
                    )
                    now[record_id] = evolve(now[record_id], metadata=meta)
        elif self.kind == "replace":
            # a rewrite of what it read: records another writer wrote there meanwhile stay
            for rec in list(read.rows.values()):
                if rec.run_id == self.run_id and now.get(rec.id) == rec:
                    model.drop(rec.id)
        elif self.kind == "upsert_where":
            written = {r.id for r in self.recs}
            for rec in list(now.values()):
                if rec.metadata["item"] == self.item and rec.id not in written:
                    model.drop(rec.id)
        for n, rec in enumerate(self.recs):
            pos = start + n
            if self.keep_order and rec.id in read.rows:
                pos = read.rows[rec.id].pos
            copies = model.copies.get(rec.id, 1) + 1 if self.kind.startswith("add") and rec.id in now else 0
            if copies and now[rec.id].pos > pos:  # reads show the copy last in order
                model.copies[rec.id] = copies
                continue
            model.drop(rec.id)
            now[rec.id] = evolve(rec, pos=pos)
            if copies:
                model.copies[rec.id] = copies


def candidates(model: Model, ops: list[Op], started: list[int], order: list[int]) -> Iterator[Model]:
    """Every outcome allowed when ``ops[k]`` read after ``started[k]`` commits and they committed in ``order``.

    Each write read either where it started or just before its own commit (Lance refused
    it and it ran again); writes that read the same version go in any order of their blocks.
    """
    done = {k: place for place, k in enumerate(order)}
    choices = [sorted({started[k], done[k]}) for k in range(len(ops))]
    for reads in itertools.product(*choices):
        groups = sorted(set(reads))
        per_group = [[k for k in range(len(ops)) if reads[k] == g] for g in groups]
        for perms in itertools.product(*(itertools.permutations(g) for g in per_group)):
            starts, at = {}, model.top + 1
            for k in itertools.chain(*perms):
                starts[k], at = at, at + len(ops[k].recs)
            views, out = [model.copy()], model.copy()
            for k in order:
                ops[k].apply(out, views[reads[k]], starts[k])
                views.append(out.copy())
            for logical in _logical_orders(ops, order):
                out = model.copy()
                for k in logical:
                    ops[k].apply(out, views[reads[k]], starts[k])
                out.top = at
                yield out


def _logical_orders(ops: list[Op], order: list[int]) -> Iterator[tuple[int, ...]]:
    """Commit order, then the orders moving appends: ``add`` calls made at once go in either order."""
    yield tuple(order)
    fixed = [k for k in order if not ops[k].kind.startswith("add")]
    for logical in itertools.permutations(order):
        if list(logical) != order and [k for k in logical if k in fixed] == fixed:
            yield logical


def observe(uri: str, policy: EncryptionPolicy | None) -> tuple[list[Shown], int, set[str]]:
    """What a fresh handle reads: every record in order, the count, the ids a session shows apart.

    Each session shows the store's records of that session, in order; an id ``add`` stored
    again in another session also shows its older copy in its own session.
    """
    store = ContextStore.open(uri, embedder=None, encryption=policy)
    everything = [(r.id, r.run_id, r.text, r.metadata) for r in store.records(with_vectors=False)]
    ids = [row[0] for row in everything]
    assert len(ids) == len(set(ids)), f"an id shown twice: {ids}"
    apart: set[str] = set()
    for run_id in SESSIONS:
        got = [(r.id, r.run_id, r.text, r.metadata) for r in store.records(run_id, with_vectors=False)]
        assert all(row[1] == run_id for row in got), f"session {run_id} shows another's records: {got}"
        assert len({row[0] for row in got}) == len(got), f"an id shown twice in {run_id}: {got}"
        apart |= {row[0] for row in got if row not in everything}
        assert [row for row in got if row in everything] == [r for r in everything if r[1] == run_id], run_id
    found = store.get_many([*reversed(ids), "missing"], with_vectors=False)
    assert [(r.id, r.run_id, r.text, r.metadata) for r in found] == list(reversed(everything))
    return everything, store.count(), apart


class ConcurrentWrites(RuleBasedStateMachine):
    """Writes of several handles on one store, applied to a model in commit order."""

    handles_count = 3
    policy: EncryptionPolicy | None = None

    def __init__(self) -> None:
        super().__init__()
        # the slots writes made at once take, fixed: each run draws the same steps (both orders are allowed)
        self._slots = (_writer._FIRST_SLOT, _writer._STRIDE, _writer._writes)
        _writer._FIRST_SLOT, _writer._STRIDE, _writer._writes = 0, 1, itertools.count()
        self.dir = tempfile.mkdtemp(prefix="write-model-concurrent-")
        self.uri = f"{self.dir}/s.lance"
        self.handles = [
            ContextStore.open(
                self.uri,
                embedder=None,
                encryption=self.policy,
                compaction=CompactionPolicy(fanout=4),
                indexing=IndexPolicy(scalar_refresh_rows=8, refresh_unindexed_rows=8),
            )
            for _ in range(self.handles_count)
        ]
        self.model = Model()
        self.counter = 0
        self.steps: list[str] = []

    # ------------------------------------------------------------------ planning
    def _rec(self, run_id: str, item: str, record_id: str | None = None) -> Rec:
        self.counter += 1
        n = self.counter
        return Rec(record_id or f"r{n}", run_id, f"text u{n}", {"item": item, "n": n % 3})

    def _plan(self, data: st.DataObject, kind: str) -> Op:
        ids = sorted(self.model.rows)  # not by position: which order won must not steer the draws
        draw = data.draw
        known = st.sampled_from(ids) if ids else st.just("r-new")
        if kind == "add":
            spec = draw(
                st.lists(st.tuples(st.sampled_from(SESSIONS), st.sampled_from(ITEMS)), min_size=1, max_size=3)
            )
            return Op(kind, [self._rec(*s) for s in spec])
        if kind == "add_again":
            record_id = draw(known)
            old = self.model.rows.get(record_id)
            meta = old.metadata["item"] if old else "i1"
            return Op(kind, [self._rec(old.run_id if old else "s0", meta, record_id)])
        if kind in ("upsert", "upsert_where"):
            item = draw(st.sampled_from(ITEMS))
            chosen = draw(st.lists(st.one_of(known, st.sampled_from(["n1", "n2"])), max_size=3, unique=True))
            if kind == "upsert" and not chosen:
                chosen = ["n1"]
            recs = [self._rec(draw(st.sampled_from(SESSIONS)), item, i) for i in chosen]
            return Op(kind, recs, keep_order=draw(st.booleans()), item=item)
        if kind == "replace":
            run_id = draw(st.sampled_from(SESSIONS))
            chosen = draw(st.lists(st.one_of(st.none(), known), max_size=3))
            batch: list[Rec] = []
            for record_id in chosen:
                if record_id is None or all(r.id != record_id for r in batch):
                    batch.append(self._rec(run_id, "i2", record_id))
            return Op(kind, batch, run_id=run_id)
        if kind in ("update", "delete"):
            chosen = draw(st.lists(known, min_size=1, max_size=3, unique=True))
            return Op(
                kind,
                ids=[*chosen, "missing"],
                item=draw(st.sampled_from(ITEMS)),
                as_function=draw(st.booleans()),
            )
        if kind == "delete_where":
            return Op(kind, run_id=draw(st.sampled_from(SESSIONS)), item=draw(st.sampled_from(ITEMS)))
        return Op(kind)

    # ------------------------------------------------------------------ running
    def _race(self, ops: list[Op], handles: list[int]) -> None:
        """Run ``ops[0]`` on its handle; its first commit first runs ``ops[1]`` (and so on)."""
        committed: list[int] = []
        started = [0] * len(ops)

        def run(k: int) -> None:
            started[k] = len(committed)
            store = self.handles[handles[k]]
            if k + 1 < len(ops):
                handle, real = store._state.handle, store._state.handle.commit
                fired: list[bool] = []

                def commit(*args: Any, **kwargs: Any) -> Any:
                    if not fired:
                        fired.append(True)
                        del handle.commit
                        run(k + 1)
                    return real(*args, **kwargs)

                handle.commit = commit  # type: ignore[method-assign]
                try:
                    ops[k].run(store)
                finally:
                    handle.__dict__.pop("commit", None)
                if not fired:  # no commit of its own: the next write runs after it
                    committed.append(k)
                    run(k + 1)
                    return
            else:
                ops[k].run(store)
            committed.append(k)

        run(0)
        self.steps.append(f"{[(o.kind, h) for o, h in zip(ops, handles, strict=True)]} committed {committed}")
        seen, count, apart = observe(self.uri, self.policy)
        tried = list(candidates(self.model, ops, started, committed))
        for model in tried:
            if [r.shown() for r in model.ordered()] == seen:
                least, most = model.stored()
                assert least <= count <= most, (count, least, most, self.steps)
                assert apart <= set(model.copies), (apart, self.steps)
                self.model = model
                return
        expected = [r.shown() for r in tried[0].ordered()]
        raise AssertionError(
            f"no allowed outcome:\n steps {self.steps}\n ops {ops}\n"
            f" found    {seen}\n expected {expected} (or one of {len(tried)} orders)"
        )

    @rule(data=st.data(), kind=st.sampled_from(KINDS), handle=st.integers(0, 2))
    def write(self, data: st.DataObject, kind: str, handle: int) -> None:
        self._race([self._plan(data, kind)], [handle % self.handles_count])

    @precondition(lambda self: self.handles_count > 1)
    @rule(
        data=st.data(),
        # an add of a stored id races nothing (see the module docstring)
        kinds=st.lists(st.sampled_from([k for k in KINDS if k != "add_again"]), min_size=2, max_size=3),
        first=st.integers(0, 2),
    )
    def race(self, data: st.DataObject, kinds: list[str], first: int) -> None:
        ops = [self._plan(data, kind) for kind in kinds[: self.handles_count]]
        self._race(ops, [(first + k) % self.handles_count for k in range(len(ops))])

    @invariant()
    def every_handle_reads_the_model(self) -> None:
        want = [r.shown() for r in self.model.ordered()]
        for store in self.handles:
            got = [(r.id, r.run_id, r.text, r.metadata) for r in store.records(with_vectors=False)]
            assert got == want, self.steps

    def teardown(self) -> None:
        _writer._FIRST_SLOT, _writer._STRIDE, _writer._writes = self._slots
        shutil.rmtree(self.dir, ignore_errors=True)


class SealedWrites(ConcurrentWrites):
    """One handle on an encrypted store: ``n`` and ``seen`` sealed, ``item`` left filterable."""

    handles_count = 1
    policy = EncryptionPolicy(key=os.urandom(32), clear_metadata=frozenset({"item"}))


_base = settings(
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    # a failure prints its steps at once; shrinking a store's history takes many minutes
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
)
ConcurrentWrites.TestCase.settings = settings(_base, max_examples=14, stateful_step_count=20)
SealedWrites.TestCase.settings = settings(_base, max_examples=5, stateful_step_count=15)
test_concurrent_writes_agree_with_the_model = ConcurrentWrites.TestCase
test_sealed_writes_agree_with_the_model = SealedWrites.TestCase
