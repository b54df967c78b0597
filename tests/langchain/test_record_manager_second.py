"""LanceRecordManager, second pass: index() on encrypted stores, and parity with InMemoryRecordManager.

An encrypted store seals metadata values unless ``EncryptionPolicy(clear_metadata=...)``
lists the key, so the store cannot filter keys by ``group_id``: the record manager then
filters its (small) key records itself, and ``index()`` cleans up as it does on a plain
store. The rest compares the record manager API with LangChain's own
``InMemoryRecordManager``, call for call, sync and async.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

import pytest
from langchain_core.documents import Document
from langchain_core.embeddings import DeterministicFakeEmbedding
from langchain_core.indexing import InMemoryRecordManager, RecordManager, aindex, index
from langchain_core.vectorstores import InMemoryVectorStore, VectorStore

from lance_context import ContextStore, EncryptionPolicy, InvalidFilterError
from lance_context.langchain import LanceRecordManager, LanceVectorStore

EMBEDDING = DeterministicFakeEmbedding(size=8)
Cleanup = Literal["incremental", "full", "scoped_full"]
LONE = "g\ud800"


def _sealed_store(tmp_path: Path, clear: frozenset[str] = frozenset()) -> ContextStore:
    policy = EncryptionPolicy(key=os.urandom(32), clear_metadata=clear)
    return ContextStore.open(str(tmp_path / "sealed.lance"), embedder=EMBEDDING, encryption=policy)


def _docs(*items: tuple[str, str]) -> list[Document]:
    return [Document(text, metadata={"source": source}) for source, text in items]


def _contents(vs: VectorStore) -> list[str]:
    return sorted(d.page_content for d in vs.similarity_search("x", k=100))


#: Runs of index(): (documents, cleanup, extra arguments).
RUNS: list[tuple[list[Document], Cleanup, dict[str, Any]]] = [
    (_docs(("a.md", "alpha one"), ("a.md", "alpha two"), ("b.md", "beta")), "incremental", {}),
    (_docs(("a.md", "alpha one"), ("a.md", "alpha two"), ("b.md", "beta")), "incremental", {}),
    (_docs(("a.md", "alpha one"), ("a.md", "alpha TWO"), ("c.md", "gamma")), "incremental", {}),
    (_docs(("c.md", "gamma"), ("d.md", "delta")), "full", {}),
    (_docs(("d.md", "delta 2")), "scoped_full", {}),
    (_docs(("e.md", "epsilon")), "full", {"cleanup_batch_size": 1}),
    (_docs(("e.md", "epsilon"), ("f.md", "phi")), "incremental", {"cleanup_batch_size": 0}),
]


def _run_all(records: RecordManager, vs: VectorStore) -> list[Any]:
    seen: list[Any] = []
    for docs, cleanup, extra in RUNS:
        result = index(
            docs, records, vs, cleanup=cleanup, source_id_key="source", key_encoder="sha256", **extra
        )
        seen.append((cleanup, dict(result), _contents(vs)))
    return seen


@pytest.mark.parametrize("clear", [frozenset(), frozenset({"group_id"})], ids=["group-sealed", "group-clear"])
def test_index_on_an_encrypted_store_cleans_up_as_the_reference_does(
    tmp_path: Path, clear: frozenset[str]
) -> None:
    store = _sealed_store(tmp_path, clear)
    ours = _run_all(LanceRecordManager("docs", store=store), LanceVectorStore(EMBEDDING, store=store))
    reference = _run_all(InMemoryRecordManager("docs"), InMemoryVectorStore(EMBEDDING))
    assert ours == reference
    deleted = [result["num_deleted"] for _, result, _ in reference]
    assert deleted == [0, 0, 1, 3, 1, 2, 0]  # every cleanup kind deleted something
    assert ours[-1][2] == ["epsilon", "phi"]


async def test_aindex_on_an_encrypted_store_with_a_sealed_group(tmp_path: Path) -> None:
    store = _sealed_store(tmp_path)
    pairs = [
        (LanceRecordManager("docs", store=store), LanceVectorStore(EMBEDDING, store=store)),
        (InMemoryRecordManager("docs"), InMemoryVectorStore(EMBEDDING)),
    ]
    seen = []
    for records, vs in pairs:
        first = await aindex(
            _docs(("a.md", "one"), ("a.md", "two"), ("b.md", "three")),
            records, vs, cleanup="incremental", source_id_key="source", key_encoder="sha256",
        )  # fmt: skip
        second = await aindex(
            _docs(("a.md", "one"), ("b.md", "three")),
            records, vs, cleanup="incremental", source_id_key="source", key_encoder="sha256",
        )  # fmt: skip
        seen.append((first, second, _contents(vs)))
    assert seen[0] == seen[1]
    assert seen[0][1]["num_deleted"] == 1 and seen[0][2] == ["one", "three"]


def test_group_filters_on_a_sealed_group_match_the_reference(tmp_path: Path) -> None:
    ours, reference = LanceRecordManager("ns", store=_sealed_store(tmp_path)), InMemoryRecordManager("ns")
    times: list[tuple[float, float]] = []
    for batch, groups in ((["k1", "k2"], ["a", "b"]), (["k3", "k4"], ["a", None]), (["k5"], ["a'; --"])):
        times.append((ours.get_time(), reference.get_time()))
        for records in (ours, reference):
            records.update(batch, group_ids=groups)
    times.append((ours.get_time(), reference.get_time()))
    for records in (ours, reference):
        records.delete_keys(["k2"])
    cases: list[dict[str, Any]] = [
        {"group_ids": ["a"]},
        {"group_ids": ["a"], "limit": 2},
        {"group_ids": ["a", "b"], "limit": 0},
        {"group_ids": ["b"]},
        {"group_ids": ["a'; --"]},
        {"group_ids": ["a' OR '1'='1"]},
        {"group_ids": ["zz"]},
        {"group_ids": []},
    ]
    for step in range(1, 3):
        cases.append({"group_ids": ["a"], "before": times[step], "after": times[step - 1]})
    for case in cases:
        ours_case = {k: (v[0] if k in ("before", "after") else v) for k, v in case.items()}
        reference_case = {k: (v[1] if k in ("before", "after") else v) for k, v in case.items()}
        assert ours.list_keys(**ours_case) == reference.list_keys(**reference_case), case


def test_a_bad_group_id_is_still_refused_on_a_sealed_group(tmp_path: Path) -> None:
    records = LanceRecordManager("ns", store=_sealed_store(tmp_path))
    records.update(["k"], group_ids=["g"])
    with pytest.raises(InvalidFilterError, match="not valid unicode: lone surrogate"):
        records.list_keys(group_ids=["g", LONE])
    with pytest.raises(InvalidFilterError, match="group_ids must be a list of str"):
        records.list_keys(group_ids=["g", 7])  # type: ignore[list-item]
    assert records.list_keys(group_ids=["g"]) == ["k"]


# ---------------------------------------------------------------------- parity, call for call
def _pair(store: ContextStore) -> tuple[LanceRecordManager, InMemoryRecordManager]:
    return LanceRecordManager("ns", store=store), InMemoryRecordManager("ns")


def test_limit_zero_and_none_list_every_key_as_the_reference_does(store: ContextStore) -> None:
    ours, reference = _pair(store)
    for records in (ours, reference):
        records.update(["a", "b", "c"], group_ids=["g", "g", "h"])
    for limit in (None, 0):
        assert ours.list_keys(limit=limit) == reference.list_keys(limit=limit) == ["a", "b", "c"]
        assert ours.list_keys(group_ids=["g"], limit=limit) == reference.list_keys(
            group_ids=["g"], limit=limit
        )
    assert ours.list_keys(limit=2) == reference.list_keys(limit=2) == ["a", "b"]
    for bad in (-1, True, 1.5, "2"):
        with pytest.raises(InvalidFilterError, match="limit must be a non-negative integer"):
            ours.list_keys(limit=bad)  # type: ignore[arg-type]


def test_empty_group_ids_in_update_mean_no_groups_as_in_the_reference(store: ContextStore) -> None:
    ours, reference = _pair(store)
    for records in (ours, reference):
        records.update(["a"], group_ids=["g"])
        records.update(["b", "c"], group_ids=[])
        records.update([], group_ids=[])
    assert ours.list_keys() == reference.list_keys() == ["a", "b", "c"]
    assert ours.list_keys(group_ids=["g"]) == reference.list_keys(group_ids=["g"]) == ["a"]
    assert ours.exists(["a", "b", "c", "d"]) == reference.exists(["a", "b", "c", "d"])
    for records in (ours, reference):
        records.update(["a"], group_ids=[])  # re-recorded without its group
    assert ours.list_keys(group_ids=["g"]) == reference.list_keys(group_ids=["g"]) == []


@pytest.mark.parametrize(
    ("keys", "groups"),
    [(["x", "y"], ["g"]), (["x"], ["g", "h"]), ([], ["g"])],
    ids=["fewer-groups", "more-groups", "no-keys"],
)
def test_group_ids_of_another_length_are_refused_as_in_the_reference_and_write_nothing(
    store: ContextStore, keys: list[str], groups: list[str]
) -> None:
    ours, reference = _pair(store)
    before = store.version()
    for records in (ours, reference):
        with pytest.raises(ValueError):
            records.update(keys, group_ids=groups)
    assert store.version() == before
    assert ours.list_keys() == reference.list_keys() == []


def test_time_at_least_is_checked_as_in_the_reference(store: ContextStore) -> None:
    ours, reference = _pair(store)
    before = store.version()
    for records in (ours, reference):
        with pytest.raises(ValueError):
            records.update(["late"], time_at_least=time.time() + 3600)
    assert store.version() == before
    assert ours.exists(["late"]) == reference.exists(["late"]) == [False]
    for records in (ours, reference):
        records.update(["now"], time_at_least=records.get_time())
        records.update(["zero"], time_at_least=0)
        records.update(["none"], time_at_least=None)
        records.update([], time_at_least=time.time() + 3600)  # nothing to record: nothing checked
    assert ours.list_keys() == reference.list_keys() == ["now", "zero", "none"]


async def _script(records: RecordManager, start: Callable[[], float]) -> list[Any]:
    """The same calls, through the async twins; a refused call is recorded as ``"ValueError"``."""
    seen: list[Any] = []

    async def call(make: Callable[[], Any]) -> None:
        try:
            seen.append(await make())
        except ValueError:
            seen.append("ValueError")

    t0 = start()
    await call(lambda: records.aupdate(["a", "b"], group_ids=["g", "h"], time_at_least=t0))
    await call(lambda: records.aupdate(["c"], group_ids=[]))
    await call(lambda: records.aupdate(["d", "e"], group_ids=["g"]))
    await call(lambda: records.aupdate(["f"], time_at_least=time.time() + 3600))
    await call(lambda: records.aexists(["a", "c", "d", "f"]))
    await call(lambda: records.alist_keys(limit=0))
    await call(lambda: records.alist_keys(limit=None, group_ids=["g", "h"]))
    await call(lambda: records.alist_keys(group_ids=[], limit=1))
    await call(lambda: records.alist_keys(after=t0))
    await call(lambda: records.adelete_keys(["a", "missing"]))
    await call(lambda: records.alist_keys())
    now = await records.aget_time()
    await call(lambda: records.alist_keys(before=now))
    return seen


async def test_async_twins_answer_as_the_reference_does(store: ContextStore) -> None:
    ours, reference = _pair(store)
    ours_seen = await _script(ours, ours.get_time)
    reference_seen = await _script(reference, reference.get_time)
    assert ours_seen == reference_seen
    assert ours_seen[-1] == ["b", "c"]


async def test_async_list_keys_on_a_sealed_group(tmp_path: Path) -> None:
    ours, reference = _pair(_sealed_store(tmp_path))
    for records in (ours, reference):
        await records.aupdate(["a", "b", "c"], group_ids=["g", "h", "g"])
    for groups, limit in ((["g"], None), (["g"], 1), (["g", "h"], 0)):
        expected: Sequence[str] = await reference.alist_keys(group_ids=groups, limit=limit)
        assert await ours.alist_keys(group_ids=groups, limit=limit) == expected
