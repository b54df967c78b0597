"""LanceStore against LangGraph's reference stores on seeded random op sequences.

Every step (put, delete, get, search, list_namespaces, a mixed batch, or an async twin)
runs on ``LanceStore``, on ``InMemoryStore`` and on ``SqliteStore``; the answers are
compared right after it. Normalisations, each where the references leave a choice open:

- items compare by namespace, key and value; ``created_at`` is not compared (both
  references restart it on every put, ``LanceStore`` keeps the first one);
- search without ``query=``: the reference gives the matching set (a whole page);
  ``LanceStore`` lists it newest write first (``SqliteStore`` orders by ``updated_at``,
  a clock with one-second ticks), so the expected page is that set ordered by a write
  counter kept here (the puts of one batch in the batch's item order, last write wins);
- search with ``query=``: the ranked items compare as (namespace, key, score) within
  1e-4 (the scores are cosine similarities of the same vectors on both sides, float32
  here); ties may come in any order. The unindexed items that follow compare as a set,
  and a page must be the matching slice of the whole sequence (``InMemoryStore``
  restarts its unindexed items on every page past the ranked ones);
- range operators on strings: ``InMemoryStore`` raises (``float("x")``), so
  ``SqliteStore`` is the reference; so it is for ``list_namespaces``
  (``InMemoryStore`` also lists the namespaces that a get merely read, or whose
  items were all deleted), with all namespaces sorted and paged as label tuples, as
  ``InMemoryStore`` and ``LanceStore`` sort them (``SqliteStore`` sorts dotted text);
- ``InMemoryStore`` keeps the vectors of an item's earlier values: they are dropped
  after each step (see ``Model._drop_stale_vectors``);
- indexed texts carry a random serial (``InMemoryStore`` fails a batch indexing one
  text twice), and the only integer past 2**53 is 2**62 (a float exactly), as the
  references compare integers as floats (see ``test_ranges_compare_integers_exactly``).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import random
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from langgraph.store.base import (
    BaseStore,
    GetOp,
    ListNamespacesOp,
    MatchCondition,
    Op,
    PutOp,
    SearchOp,
)
from langgraph.store.memory import InMemoryStore
from langgraph.store.sqlite import SqliteStore

from lance_context import ContextStore, HashingEmbedder
from lance_context.langgraph import LanceStore

EMBEDDER = HashingEmbedder(64)
BIG = 1000


def embed(texts: Sequence[str]) -> list[list[float]]:
    """A LangGraph embedding function (deterministic, offline)."""
    return [[float(x) for x in row] for row in EMBEDDER.embed_texts(list(texts))]


INDEX: Any = {"dims": 64, "embed": embed, "fields": ["text", "obj.t"]}
LABELS = ["a", "b", "ab", "ü", "日本", "a_b", "axb", "a%", "x y", "*", "\\", "[a]"]
KEYS = ["k1", "k2", "k3", "ключ", "é", "e\u0301", "a.b", "", "k 4", "%", "_"]
WORDS = ["tea", "coffee", "green", "wine", "chess", "garden", "über", "茶", "milk", "night"]
STRINGS = ["apple", "Banana", "cherry", "ä", "10", "2", "", "zeta"]
NUMBERS: list[Any] = [0, 1, 2, 3, 2.5, -1, 7, True, False, "4", "1.5", "-2", -0.0, 2**62, 1e-7, " 3 "]


def _namespace(rng: random.Random, depth: int | None = None) -> tuple[str, ...]:
    depth = rng.randint(1, 3) if depth is None else depth
    return tuple(rng.choice(LABELS) for _ in range(depth))


def _words(rng: random.Random, count: int) -> str:
    """A text to index: a few words and a serial number (``InMemoryStore`` fails a batch
    that indexes one text twice: it embeds each distinct text once, then counts one
    vector per item path), so texts carry a random serial."""
    return " ".join([*(rng.choice(WORDS) for _ in range(count)), f"n{rng.getrandbits(40)}"])


def _value(rng: random.Random) -> dict[str, Any]:
    value: dict[str, Any] = {"n": rng.choice(NUMBERS)}
    if rng.random() < 0.8:
        value["text"] = _words(rng, rng.randint(1, 3))
    if rng.random() < 0.7:
        value["s"] = rng.choice(STRINGS)
    if rng.random() < 0.5:
        obj: dict[str, Any] = {"k": rng.choice([1, 2, True, "1"]), "t": _words(rng, 1)}
        if rng.random() < 0.4:
            obj["deep"] = {"x": rng.choice([None, 1, "x", [1, 2]])}
        value["obj"] = obj
    if rng.random() < 0.5:
        value["tags"] = [_words(rng, 1) for _ in range(rng.randint(0, 3))]
    if rng.random() < 0.3:
        value["none"] = None
    if rng.random() < 0.2:
        value["ü"] = rng.choice(["日本", 1, [None]])
    if rng.random() < 0.2:
        value["a.b"] = rng.choice([1, "x", {"c": 1}])
    return value


def _index(rng: random.Random) -> Any:
    return rng.choice([None, None, False, ["text"], ["obj.t"], ["tags[*]"], ["text", "obj.t"]])


def _put(rng: random.Random, known: list[tuple[tuple[str, ...], str]]) -> PutOp:
    """A put (or a delete), of an item already written four times in ten."""
    ns, key = rng.choice(known) if known and rng.random() < 0.4 else (_namespace(rng), rng.choice(KEYS))
    if rng.random() < 0.15:
        return PutOp(ns, key, None)  # a delete
    return PutOp(ns, key, _value(rng), index=_index(rng))


def _filter(rng: random.Random) -> tuple[dict[str, Any] | None, bool]:
    """A search filter, and whether only ``SqliteStore`` defines it (string ranges)."""
    kind = rng.randrange(9)
    if kind == 0:
        return None, False
    if kind == 1:
        return {"n": rng.choice(NUMBERS)}, False
    if kind == 2:
        op = rng.choice(["$gt", "$gte", "$lt", "$lte", "$eq", "$ne"])
        return {"n": {op: rng.choice([0, 1, 2, 2.5, -1, True, "2", "1.5", -0.0, 2**62, 1e-8, " 2 "])}}, False
    if kind == 3:
        low, high = sorted(rng.sample([-1, 0, 1, 2, 3, 7], 2))
        return {"n": {"$gte": low, "$lt": high}}, False
    if kind == 4:
        return {"s": rng.choice(STRINGS)}, False
    if kind == 5:
        return {"s": {rng.choice(["$eq", "$ne"]): rng.choice(STRINGS)}}, False
    if kind == 6:
        return {"s": {rng.choice(["$gt", "$gte", "$lt", "$lte"]): rng.choice(["b", "apple", "ä", "1"])}}, True
    if kind == 7:
        return {
            "obj": rng.choice([{"k": 1}, {"k": "1"}, {}, {"deep": {"x": None}}, {"deep": {"x": [1, 2]}}])
        }, False
    extra: list[dict[str, Any]] = [
        {"tags": []},
        {"none": None},
        {"ü": "日本"},
        {"ü": [None]},
        {"none": {"$ne": None}},
        {"a.b": 1},
        {"a.b": {"c": 1}},
    ]
    return rng.choice(extra), False


def _search(rng: random.Random, known: list[tuple[tuple[str, ...], str]]) -> tuple[SearchOp, bool]:
    filter, sqlite_only = _filter(rng)
    # the SqliteStore reference here has no index; without one, a query changes nothing
    query = " ".join(rng.sample(WORDS, rng.randint(1, 2))) if not sqlite_only and rng.random() < 0.5 else None
    depth = rng.choice([0, 0, 1, 1, 2, 3])
    prefix = rng.choice(known)[0][:depth] if known and rng.random() < 0.6 else _namespace(rng, depth)
    limit, offset = rng.choice([0, 1, 2, 3, 5, 10]), rng.choice([0, 0, 1, 2, 4, 30])
    return SearchOp(prefix, filter, limit, offset, query), sqlite_only


def _list_namespaces(rng: random.Random) -> ListNamespacesOp:
    conditions = []
    for match_type in ("prefix", "suffix"):
        if rng.random() < 0.4:
            path = tuple(rng.choice([*LABELS[:4], "*"]) for _ in range(rng.randint(1, 2)))
            conditions.append(MatchCondition(match_type=match_type, path=path))  # type: ignore[arg-type]
    max_depth = rng.choice([None, None, 1, 2])
    return ListNamespacesOp(
        tuple(conditions) or None, max_depth, rng.choice([0, 3, 100]), rng.choice([0, 0, 1, 40])
    )


def _entry(item: Any) -> object:
    """An item as namespace, key and value (as JSON text: ``True`` and ``1`` differ)."""
    return None if item is None else (item.namespace, item.key, json.dumps(item.value, sort_keys=True))


def _listing(op: ListNamespacesOp) -> dict[str, Any]:
    """``list_namespaces`` arguments of an op (at most one prefix and one suffix condition)."""
    found: dict[str, Any] = {"max_depth": op.max_depth, "limit": op.limit, "offset": op.offset}
    for condition in op.match_conditions or ():
        found[condition.match_type] = condition.path
    return found


class Model:
    """The three stores side by side, and the write order ``LanceStore`` lists by."""

    def __init__(self, tmp_path: Path, semantic: bool) -> None:
        index = INDEX if semantic else None
        if semantic:
            self.ours = LanceStore(uri=str(tmp_path / "ours.lance"), index=index)
        else:
            self.ours = LanceStore(store=ContextStore.open(str(tmp_path / "ours.lance"), embedder=None))
        self.memory = InMemoryStore(index=index)
        self.sqlite = SqliteStore(sqlite3.connect(":memory:", check_same_thread=False, isolation_level=None))
        self.sqlite.setup()
        self.semantic = semantic
        self.written: dict[tuple[tuple[str, ...], str], int] = {}
        self.clock = 0

    def run(self, ops: list[Op], sqlite_only: set[int], *, use_async: bool) -> None:
        # each search also runs whole (offset 0, every item) to compare pages with sequences
        whole = {
            i: SearchOp(op.namespace_prefix, op.filter, BIG, 0, op.query)
            for i, op in enumerate(ops)
            if isinstance(op, SearchOp)
        }
        ours_ops = [*ops, *whole.values()]
        memory_ops = [
            whole.get(i, op) if i not in sqlite_only else GetOp(("a",), "k1") for i, op in enumerate(ops)
        ]
        sqlite_ops = [self._for_sqlite(i, op, whole, sqlite_only) for i, op in enumerate(ops)]
        ours: list[Any]
        if len(ops) == 1 and not use_async and self.clock % 2:
            ours = [self._call(op) for op in ours_ops]  # the methods, not a batch
        elif len(ops) == 1 and use_async:
            ours = [asyncio.run(self._acall(op)) for op in ours_ops]
        elif use_async:
            ours = asyncio.run(self.ours.abatch(ours_ops))
        else:
            ours = self.ours.batch(ours_ops)
        memory: list[Any] = (
            asyncio.run(self.memory.abatch(memory_ops)) if use_async else self.memory.batch(memory_ops)
        )
        sqlite: list[Any] = self.sqlite.batch(sqlite_ops)
        wholes = dict(zip(whole, ours[len(ops) :], strict=True))
        for i, op in enumerate(ops):
            if isinstance(op, GetOp):
                assert _entry(ours[i]) == _entry(memory[i]) == _entry(sqlite[i]), op
            elif isinstance(op, ListNamespacesOp):
                assert ours[i] == sorted(sqlite[i])[op.offset : op.offset + op.limit], op
            elif isinstance(op, SearchOp):
                reference = sqlite[i] if i in sqlite_only else memory[i]
                self._check_search(op, ours[i], wholes[i], reference)
        self._wrote([op for op in ops if isinstance(op, PutOp)])
        self._drop_stale_vectors([op for op in ops if isinstance(op, PutOp)])

    def _drop_stale_vectors(self, puts: list[PutOp]) -> None:
        """Forget the vectors ``InMemoryStore`` keeps of an item's earlier values.

        It adds the vectors of each put and never removes the ones a new value (or
        ``index=False``) no longer has, so a query would still find the item by a text
        it lost. ``LanceStore`` indexes exactly the texts of the current value.
        """
        last = {(tuple(op.namespace), op.key): op for op in puts}
        for (ns, key), op in last.items():
            kept = {
                path for refs in self.memory._extract_texts({(ns, key): op}).values() for *_, path in refs
            }
            vectors = self.memory._vectors[ns].get(key, {})
            for path in [p for p in vectors if p not in kept or op.index is False]:
                del vectors[path]

    def _call(self, op: Op) -> Any:
        store = self.ours
        if isinstance(op, PutOp):
            if op.value is None:
                return store.delete(op.namespace, op.key)
            return store.put(op.namespace, op.key, op.value, index=op.index)
        if isinstance(op, GetOp):
            return store.get(op.namespace, op.key)
        if isinstance(op, SearchOp):
            page: dict[str, Any] = {
                "filter": op.filter,
                "limit": op.limit,
                "offset": op.offset,
                "query": op.query,
            }
            return store.search(op.namespace_prefix, **page)
        assert isinstance(op, ListNamespacesOp)
        return store.list_namespaces(**_listing(op))

    async def _acall(self, op: Op) -> Any:
        store = self.ours
        if isinstance(op, PutOp):
            if op.value is None:
                return await store.adelete(op.namespace, op.key)
            return await store.aput(op.namespace, op.key, op.value, index=op.index)
        if isinstance(op, GetOp):
            return await store.aget(op.namespace, op.key)
        if isinstance(op, SearchOp):
            page: dict[str, Any] = {
                "filter": op.filter,
                "limit": op.limit,
                "offset": op.offset,
                "query": op.query,
            }
            return await store.asearch(op.namespace_prefix, **page)
        assert isinstance(op, ListNamespacesOp)
        return await store.alist_namespaces(**_listing(op))

    @staticmethod
    def _for_sqlite(i: int, op: Op, whole: dict[int, SearchOp], sqlite_only: set[int]) -> Op:
        if isinstance(op, SearchOp):
            return whole[i] if i in sqlite_only else GetOp(("a",), "k1")
        if isinstance(op, ListNamespacesOp):
            # SqliteStore sorts the dotted text ("a%" before "a.b"), InMemoryStore and
            # LanceStore the label tuples: every namespace here, sorted and paged as tuples
            return ListNamespacesOp(op.match_conditions, op.max_depth, BIG, 0)
        return op

    def _wrote(self, puts: list[PutOp]) -> None:
        last = {(tuple(op.namespace), op.key): op for op in puts}
        for ref, op in last.items():
            self.clock += 1
            if op.value is None:
                self.written.pop(ref, None)
            else:
                self.written[ref] = self.clock

    def _check_search(self, op: SearchOp, page: Any, whole: list[Any], reference: list[Any]) -> None:
        assert [_entry(i) for i in page] == [_entry(i) for i in whole[op.offset : op.offset + op.limit]], op
        expected = {_entry(i) for i in reference}
        assert len(whole) == len(expected) and {_entry(i) for i in whole} == expected, op
        if not (op.query and self.semantic):
            newest = sorted(whole, key=lambda i: -self.written[(i.namespace, i.key)])
            assert [_entry(i) for i in whole] == [_entry(i) for i in newest], op
            assert all(i.score is None for i in whole)
            return
        ranked = [i for i in whole if i.score is not None]
        assert whole[: len(ranked)] == ranked, "the unindexed items follow the ranked ones"
        scores = [i.score for i in ranked]
        assert all(a >= b - 1e-6 for a, b in itertools.pairwise(scores)), op
        theirs = {(i.namespace, i.key): i.score for i in reference if i.score is not None}
        mine = {(i.namespace, i.key): i.score for i in ranked}
        assert mine.keys() == theirs.keys(), op
        for ref, score in mine.items():
            assert math.isclose(score, theirs[ref], abs_tol=1e-4), (op, ref, score, theirs[ref])


def _step(rng: random.Random, model: Model) -> None:
    kind = rng.randrange(10)
    ops: list[Op] = []
    sqlite_only: set[int] = set()
    count = rng.randint(2, 5) if kind >= 7 else 1
    for _ in range(count):
        choice = rng.randrange(8) if kind >= 7 else kind
        if choice <= 2:
            ops.append(_put(rng, list(model.written)))
        elif choice == 3:
            known = list(model.written)
            ns, key = (
                rng.choice(known) if known and rng.random() < 0.7 else (_namespace(rng), rng.choice(KEYS))
            )
            ops.append(GetOp(ns, key))
        elif choice <= 5:
            op, only = _search(rng, list(model.written))
            if only:
                sqlite_only.add(len(ops))
            ops.append(op)
        else:
            ops.append(_list_namespaces(rng))
    model.run(ops, sqlite_only, use_async=rng.random() < 0.25)


@pytest.mark.parametrize(("seed", "semantic"), [(1, True), (2, True), (3, False), (4, False)])
def test_random_sequences_answer_like_the_reference_stores(tmp_path: Path, seed: int, semantic: bool) -> None:
    rng = random.Random(seed)
    model = Model(tmp_path, semantic)
    for _ in range(100):
        _step(rng, model)


def test_a_query_finds_an_item_only_by_the_texts_of_its_current_value(tmp_path: Path) -> None:
    """A re-put (or ``index=False``) drops the texts the item no longer has.

    ``InMemoryStore`` keeps the vectors of earlier values, so it still ranks the item
    by "garden" after the put that removed it; the fuzz test forgets those vectors.
    """
    ours = LanceStore(uri=str(tmp_path / "ours.lance"), index=INDEX)
    memory = InMemoryStore(index=INDEX)
    for store in (ours, memory):
        store.put(("a",), "k", {"text": "milk", "obj": {"t": "garden"}})
        store.put(("a",), "k", {"text": "green tea"})
        store.put(("a",), "j", {"text": "garden"})
        store.put(("a",), "j", {"text": "garden"}, index=False)

    def scores(store: BaseStore) -> dict[str, float | None]:
        return {i.key: i.score for i in store.search(("a",), query="garden")}

    garden, green = embed(["garden", "green tea"])
    dot = sum(a * b for a, b in zip(garden, green, strict=True))
    cosine = dot / math.sqrt(sum(a * a for a in garden) * sum(b * b for b in green))
    assert scores(ours)["j"] is None  # unindexed now
    assert math.isclose(scores(ours)["k"] or 0.0, cosine, abs_tol=1e-4)
    assert math.isclose(scores(memory)["k"] or 0.0, 1.0, abs_tol=1e-4)  # the stale "garden" text
    assert scores(memory)["j"] is not None


def test_ranges_compare_integers_exactly(tmp_path: Path) -> None:
    """Integers past 2**53 compare exactly; LangGraph's stores compare them as floats.

    ``InMemoryStore`` (``float()``), ``SqliteStore`` (``CAST AS REAL``) and the Postgres
    store (``::float``) all round ``2**53 + 1`` to ``2**53``, so ``$gt 2**53`` misses it
    there; ``LanceStore`` keeps the stored integer as written and compares it as such.
    """
    ours = LanceStore(store=ContextStore.open(str(tmp_path / "x.lance"), embedder=None))
    memory = InMemoryStore()
    for store in (ours, memory):
        store.put(("a",), "big", {"n": 2**53 + 1})

    def found(store: BaseStore, filter: dict[str, Any]) -> list[str]:
        return [i.key for i in store.search(("a",), filter=filter)]

    assert found(ours, {"n": {"$gt": 2**53}}) == ["big"]
    assert found(ours, {"n": {"$lte": 2**53}}) == []
    assert found(memory, {"n": {"$gt": 2**53}}) == []  # rounded
    assert found(memory, {"n": {"$lte": 2**53}}) == ["big"]
