"""LangChain adapters, fourth pass: record manager key order and time bounds, history search modes.

Each record manager test replays the same calls on LangChain's own record managers
(``InMemoryRecordManager``, and ``SQLRecordManager`` on an in-memory SQLite database)
and on ours, and compares what ``list_keys`` answers.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from langchain_core.indexing import InMemoryRecordManager, RecordManager
from langchain_core.messages import AIMessage, HumanMessage

from lance_context import ContextStore, EncryptionPolicy, HashingEmbedder, SearchError
from lance_context.langchain import LanceChatMessageHistory, LanceRecordManager


def _sql_record_manager() -> RecordManager | None:
    """LangChain's SQL record manager on an in-memory SQLite database, when installed."""
    try:
        from langchain_classic.indexes import SQLRecordManager
    except ImportError:  # pragma: no cover - a dev dependency
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        manager = SQLRecordManager("ns", db_url="sqlite:///:memory:")
    manager.create_schema()
    return manager


@pytest.fixture(params=["plain", "sealed"])
def ours(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LanceRecordManager]:
    """Our record manager on a plain store, and on one that seals ``group_id`` (filtered here)."""
    encryption = EncryptionPolicy(key=os.urandom(32)) if request.param == "sealed" else None
    store = ContextStore.open(str(tmp_path / "s.lance"), embedder=HashingEmbedder(16), encryption=encryption)
    yield LanceRecordManager("ns", store=store)


def _references() -> list[RecordManager]:
    sql = _sql_record_manager()
    return [InMemoryRecordManager("ns"), *([sql] if sql is not None else [])]


def _replay(managers: list[RecordManager]) -> None:
    for manager in managers:
        manager.update(["a", "b", "c"], group_ids=["g", "h", "g"])
        manager.update(["d"])
        manager.update(["b", "a"], group_ids=["x", "x"])  # updated keys keep their place
        manager.delete_keys(["c"])
        manager.update(["c", "c", "e"], group_ids=["g", "k", None])  # a deleted key comes back last


def test_list_keys_lists_keys_in_first_recorded_order_as_the_references_do(ours: LanceRecordManager) -> None:
    references = _references()
    _replay([ours, *references])
    cases: list[dict[str, object]] = [
        {},
        {"limit": 2},
        {"limit": 4},
        {"group_ids": ["x", "k"]},
        {"group_ids": ["x", "k", "h"], "limit": 2},
    ]
    for reference in references:
        for case in cases:
            assert ours.list_keys(**case) == reference.list_keys(**case), (type(reference).__name__, case)  # type: ignore[arg-type]
    assert ours.list_keys() == ["a", "b", "d", "c", "e"]


async def test_a_zero_before_or_after_is_no_time_bound_as_in_the_references(ours: LanceRecordManager) -> None:
    references = _references()
    _replay([ours, *references])
    expected = ["a", "b", "d", "c", "e"]
    cases: list[dict[str, object]] = [
        {"before": 0},
        {"before": 0.0},
        {"after": 0},
        {"before": 0, "after": 0},
        {"before": 0, "group_ids": ["x"]},
        {"before": 0, "limit": 3},
    ]
    for case in cases:
        wanted = [reference.list_keys(**case) for reference in references]  # type: ignore[arg-type]
        assert all(w == wanted[0] for w in wanted), case
        assert ours.list_keys(**case) == wanted[0], case  # type: ignore[arg-type]
        assert await ours.alist_keys(**case) == wanted[0], case  # type: ignore[arg-type]
    assert ours.list_keys(before=0) == expected
    # a real bound still bounds: nothing was stamped before the epoch's first second
    assert ours.list_keys(before=1.0) == [] == references[0].list_keys(before=1.0)


def test_a_bad_before_is_still_refused(ours: LanceRecordManager) -> None:
    from lance_context import InvalidFilterError

    ours.update(["a"])
    for bad in (False, -1, float("nan"), "0"):
        with pytest.raises(InvalidFilterError):
            ours.list_keys(before=bad)  # type: ignore[arg-type]


def test_a_history_search_in_an_unknown_mode_names_every_mode(store: ContextStore) -> None:
    history = LanceChatMessageHistory("s", store=store)
    history.add_messages([HumanMessage("the kangaroo"), AIMessage("it hops")])
    version = store.version()
    with pytest.raises(SearchError, match="'recall', 'vector', 'text' or 'hybrid'.*'semantic'"):
        history.search("kangaroo", mode="semantic")  # type: ignore[arg-type]
    assert store.version() == version
    assert [m.content for m in history.search("kangaroo", k=1, mode="text")] == ["the kangaroo"]
