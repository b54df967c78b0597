"""The configs ``get_tuple``, ``aget_tuple`` and ``list`` return match LangGraph's own savers.

LangGraph's ``InMemorySaver`` and ``SqliteSaver`` return the caller's config unchanged
(extra configurable keys kept) when it names a ``checkpoint_id``, and build a new config
(thread, namespace, checkpoint id) when reading the latest checkpoint and in ``list``;
``parent_config`` is always built. Each check runs the same writes on the references and
on the Lance saver, and compares what comes back with checkpoint ids replaced by labels
(each backend's ids are the ones its own ``put`` returned).
"""

from __future__ import annotations

import copy
import sqlite3
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver, Checkpoint, CheckpointTuple, empty_checkpoint
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

from lance_context import ContextStore
from lance_context.langgraph import LanceCheckpointSaver

THREAD = "thread-1"
#: Keys a caller's config may carry besides the checkpoint keys (LangGraph adds several).
EXTRA = {"user_id": "u-7", "checkpoint_map": {"": "x"}}


def _checkpoint(step: int) -> Checkpoint:
    checkpoint = empty_checkpoint()
    version = f"{step:032}.0"
    checkpoint["channel_values"] = {"value": step}
    checkpoint["channel_versions"] = {"value": version}
    return checkpoint


def _fill(saver: BaseCheckpointSaver[Any]) -> dict[str, str]:
    """Write two checkpoints (the second with pending writes); their ids by label."""
    first = saver.put(
        {"configurable": {"thread_id": THREAD, "checkpoint_ns": ""}},
        _checkpoint(1),
        {"source": "input", "step": 1},
        {"value": f"{1:032}.0"},
    )
    second = saver.put(first, _checkpoint(2), {"source": "loop", "step": 2}, {"value": f"{2:032}.0"})
    saver.put_writes(second, [("value", 3)], task_id="task-1")
    return {"c1": first["configurable"]["checkpoint_id"], "c2": second["configurable"]["checkpoint_id"]}


def _labelled(value: Any, ids: dict[str, str]) -> Any:
    """``value`` with this backend's checkpoint ids replaced by their labels."""
    names = {v: k for k, v in ids.items()}
    if isinstance(value, dict):
        return {k: _labelled(v, ids) for k, v in value.items()}
    if isinstance(value, str):
        return names.get(value, value)
    return value


def _configs(found: CheckpointTuple | None, ids: dict[str, str]) -> Any:
    if found is None:
        return None
    return _labelled(found.config, ids), _labelled(found.parent_config, ids)


@pytest.fixture
def savers(tmp_path: Path) -> Iterator[dict[str, BaseCheckpointSaver[Any]]]:
    connection = sqlite3.connect(":memory:", check_same_thread=False)
    store = ContextStore.open(str(tmp_path / "agent.lance"))
    yield {
        "memory": InMemorySaver(),
        "sqlite": SqliteSaver(connection),
        "lance": LanceCheckpointSaver(store=store),
    }
    connection.close()


@pytest.fixture
async def async_savers(tmp_path: Path) -> AsyncIterator[dict[str, BaseCheckpointSaver[Any]]]:
    store = ContextStore.open(str(tmp_path / "agent.lance"))
    async with AsyncSqliteSaver.from_conn_string(":memory:") as sqlite_saver:
        yield {
            "memory": InMemorySaver(),
            "sqlite": sqlite_saver,
            "lance": LanceCheckpointSaver(store=store),
        }


def _by_id(ids: dict[str, str], label: str, *, ns: bool = True) -> RunnableConfig:
    conf: dict[str, Any] = {"thread_id": THREAD, "checkpoint_id": ids[label], **copy.deepcopy(EXTRA)}
    if ns:
        conf["checkpoint_ns"] = ""
    return {"configurable": conf, "tags": ["caller"]}


@pytest.mark.parametrize("label", ["c1", "c2"])  # c2 is the latest: the Lance saver's cache answers it
@pytest.mark.parametrize("ns", [True, False])
def test_get_tuple_by_id_returns_the_callers_config(
    savers: dict[str, BaseCheckpointSaver[Any]], label: str, ns: bool
) -> None:
    results = {}
    for name, saver in savers.items():
        ids = _fill(saver)
        saver.get_tuple({"configurable": {"thread_id": THREAD}})  # the latest is read (and cached) first
        config = _by_id(ids, label, ns=ns)
        found = saver.get_tuple(config)
        assert found is not None, name
        assert found.config is config, name
        assert found.config == _by_id(ids, label, ns=ns), name  # not changed either
        results[name] = _configs(found, ids)
    assert results["lance"] == results["memory"] == results["sqlite"]
    parent = (
        None
        if label == "c1"
        else {"configurable": {"thread_id": THREAD, "checkpoint_ns": "", "checkpoint_id": "c1"}}
    )
    assert results["lance"][1] == parent


def test_get_tuple_of_the_latest_builds_a_new_config(savers: dict[str, BaseCheckpointSaver[Any]]) -> None:
    results = {}
    for name, saver in savers.items():
        ids = _fill(saver)
        config: RunnableConfig = {"configurable": {"thread_id": THREAD, "checkpoint_ns": "", **EXTRA}}
        found = saver.get_tuple(config)
        assert found is not None, name
        assert found.config is not config, name
        results[name] = _configs(found, ids)
    expected = (
        {"configurable": {"thread_id": THREAD, "checkpoint_ns": "", "checkpoint_id": "c2"}},
        {"configurable": {"thread_id": THREAD, "checkpoint_ns": "", "checkpoint_id": "c1"}},
    )
    assert results["lance"] == results["memory"] == results["sqlite"] == expected


def test_get_tuple_of_a_missing_id_is_none(savers: dict[str, BaseCheckpointSaver[Any]]) -> None:
    for name, saver in savers.items():
        ids = _fill(saver)
        config = _by_id({"missing": ids["c1"][:-4] + "ffff"}, "missing")
        assert saver.get_tuple(config) is None, name


def test_list_builds_new_configs(savers: dict[str, BaseCheckpointSaver[Any]]) -> None:
    results = {}
    for name, saver in savers.items():
        ids = _fill(saver)
        listed = [_configs(t, ids) for t in saver.list({"configurable": {"thread_id": THREAD, **EXTRA}})] + [
            _configs(t, ids) for t in saver.list(_by_id(ids, "c2"))
        ]
        results[name] = listed
    assert results["lance"] == results["memory"] == results["sqlite"]
    assert [config["configurable"]["checkpoint_id"] for config, _ in results["lance"]] == ["c2", "c1", "c2"]


async def test_aget_tuple_configs_match(async_savers: dict[str, BaseCheckpointSaver[Any]]) -> None:
    results = {}
    for name, saver in async_savers.items():
        first = await saver.aput(
            {"configurable": {"thread_id": THREAD, "checkpoint_ns": ""}},
            _checkpoint(1),
            {"source": "input", "step": 1},
            {"value": f"{1:032}.0"},
        )
        second = await saver.aput(
            first, _checkpoint(2), {"source": "loop", "step": 2}, {"value": f"{2:032}.0"}
        )
        ids = {"c1": first["configurable"]["checkpoint_id"], "c2": second["configurable"]["checkpoint_id"]}
        latest = await saver.aget_tuple({"configurable": {"thread_id": THREAD, **EXTRA}})
        got = []
        for label in ("c1", "c2"):
            config = _by_id(ids, label)
            found = await saver.aget_tuple(config)
            assert found is not None and found.config is config, name
            got.append(_configs(found, ids))
        results[name] = [_configs(latest, ids), *got]
    assert results["lance"] == results["memory"] == results["sqlite"]


def test_mutating_a_returned_tuple_never_changes_later_reads(tmp_path: Path) -> None:
    saver = LanceCheckpointSaver(store=ContextStore.open(str(tmp_path / "agent.lance")))
    reference = InMemorySaver()
    ids = _fill(saver)
    ref_ids = _fill(reference)
    latest: RunnableConfig = {"configurable": {"thread_id": THREAD}}
    for config in (latest, _by_id(ids, "c2"), _by_id(ids, "c1")):
        found = saver.get_tuple(config)
        assert found is not None
        # a caller edits everything it got back (its own config included)
        found.config["configurable"]["checkpoint_id"] = "edited"
        found.config["configurable"]["thread_id"] = "edited"
        if found.parent_config is not None:
            found.parent_config["configurable"]["checkpoint_id"] = "edited"
        found.metadata["step"] = 99
        found.checkpoint["channel_values"]["value"] = "edited"
        found.pending_writes.append(("t", "c", "edited"))
    again = saver.get_tuple(latest)
    expected = reference.get_tuple({"configurable": {"thread_id": THREAD}})
    assert again is not None and expected is not None
    assert _configs(again, ids) == _configs(expected, ref_ids)
    assert again.metadata == expected.metadata == {"source": "loop", "step": 2}
    assert again.checkpoint["channel_values"] == expected.checkpoint["channel_values"] == {"value": 2}
    assert again.pending_writes == expected.pending_writes == [("task-1", "value", 3)]
    by_id = saver.get_tuple(_by_id(ids, "c1"))
    assert by_id is not None and by_id.metadata == {"source": "input", "step": 1}
    assert by_id.checkpoint["channel_values"] == {"value": 1}
