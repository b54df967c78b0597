"""LanceCheckpointSaver beyond the conformance suite: layout, versions, branches, semantics."""

from __future__ import annotations

import math
import operator
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated, Any

import pytest
from langchain_core.runnables import RunnableConfig
from langgraph.channels.delta import DeltaChannel
from langgraph.checkpoint.base import Checkpoint, empty_checkpoint
from langgraph.checkpoint.serde.types import ERROR
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from typing_extensions import TypedDict

from lance_context import ContextStore, ReadOnlyError
from lance_context.langgraph import LanceCheckpointSaver
from lance_context.langgraph._checkpoint_records import CHECKPOINT_ROLE, THREAD_PREFIX, WRITE_ROLE


class State(TypedDict):
    steps: Annotated[list[str], operator.add]


def _graph(saver: LanceCheckpointSaver) -> CompiledStateGraph[Any, Any, Any, Any]:
    builder = StateGraph(State)
    builder.add_node("echo", lambda s: {"steps": [f"echo {s['steps'][-1]}"]})
    builder.add_edge(START, "echo")
    builder.add_edge("echo", END)
    return builder.compile(checkpointer=saver)


def _thread(name: str, **extra: Any) -> RunnableConfig:
    return {"configurable": {"thread_id": name, **extra}}


def _put(saver: LanceCheckpointSaver, thread: str, metadata: dict[str, Any], **values: Any) -> RunnableConfig:
    checkpoint: Checkpoint = empty_checkpoint()
    checkpoint["channel_values"] = values
    return saver.put(_thread(thread, checkpoint_ns=""), checkpoint, metadata, {})  # type: ignore[arg-type]


def test_needs_exactly_one_of_store_or_uri(store: ContextStore) -> None:
    with pytest.raises(TypeError):
        LanceCheckpointSaver()
    with pytest.raises(TypeError):
        LanceCheckpointSaver(store=store, uri="elsewhere.lance")


def test_records_use_the_documented_layout_and_are_never_embedded(
    saver: LanceCheckpointSaver, store: ContextStore
) -> None:
    graph = _graph(saver)
    graph.invoke({"steps": ["hi"]}, _thread("t1"))
    records = store.records(THREAD_PREFIX + "t1")
    assert {r.role for r in records} == {CHECKPOINT_ROLE, WRITE_ROLE}
    assert all(r.embedding is None and r.text_payload is None for r in records)
    checkpoints = [r for r in records if r.role == CHECKPOINT_ROLE]
    latest = graph.get_state(_thread("t1"))
    assert checkpoints[-1].metadata["checkpoint_id"] == latest.config["configurable"]["checkpoint_id"]
    # the payload is LangGraph's own serializer output, decodable by it alone
    decoded = saver.serde.loads_typed(
        (checkpoints[-1].metadata["serde_type"], checkpoints[-1].binary_payload)
    )
    assert decoded["channel_values"]["steps"] == ["hi", "echo hi"]
    assert checkpoints[-1].metadata["checkpoint_metadata"]["source"] == "loop"


def test_put_is_idempotent(saver: LanceCheckpointSaver, store: ContextStore) -> None:
    checkpoint: Checkpoint = empty_checkpoint()
    for _ in range(2):
        saver.put(_thread("t", checkpoint_ns=""), checkpoint, {"source": "input", "step": -1}, {})
    assert store.count(THREAD_PREFIX + "t") == 1


def test_regular_writes_are_kept_and_special_writes_replaced(saver: LanceCheckpointSaver) -> None:
    config = _put(saver, "t", {"step": 0})
    saver.put_writes(config, [("answer", "first"), (ERROR, "boom")], task_id="task")
    saver.put_writes(config, [("answer", "second"), (ERROR, "boom again")], task_id="task")
    tup = saver.get_tuple(config)
    assert tup is not None
    assert sorted(tup.pending_writes or []) == [
        ("task", "__error__", "boom again"),
        ("task", "answer", "first"),
    ]


def test_list_filters_on_metadata_including_nested_values(saver: LanceCheckpointSaver) -> None:
    _put(saver, "t", {"source": "input", "step": -1, "parents": {}, "tags": {"team": "a"}})
    _put(saver, "t", {"source": "loop", "step": 0, "parents": {}, "tags": {"team": "b"}, "score": 0.5})
    assert [t.metadata["step"] for t in saver.list(_thread("t"), filter={"tags": {"team": "b"}})] == [0]
    assert [t.metadata["step"] for t in saver.list(_thread("t"), filter={"score": 0.5})] == [0]
    assert [t.metadata["step"] for t in saver.list(_thread("t"), filter={"source": "input"})] == [-1]
    assert list(saver.list(_thread("t"), filter={"source": "nope"})) == []
    assert list(saver.list(_thread("t"), limit=0)) == []


def test_metadata_json_cannot_hold_round_trips_exactly(saver: LanceCheckpointSaver) -> None:
    when = datetime(2024, 5, 4, 6, 32, tzinfo=timezone.utc)
    config = _put(saver, "t", {"source": "update", "step": 3, "at": when, "blob": b"\x00\x01"})
    tup = saver.get_tuple(config)
    assert tup is not None
    assert tup.metadata["at"] == when and tup.metadata["blob"] == b"\x00\x01"
    assert [t.metadata["step"] for t in saver.list(None, filter={"source": "update"})] == [3]
    odd = _put(saver, "nan", {"source": "loop", "step": 4, "score": float("nan"), "runs": [float("inf")]})
    back = saver.get_tuple(odd)
    assert back is not None and math.isnan(back.metadata["score"]) and back.metadata["runs"] == [float("inf")]
    assert [t.metadata["step"] for t in saver.list(None, filter={"source": "loop"})] == [4]


def test_list_without_config_spans_threads_and_namespaces(saver: LanceCheckpointSaver) -> None:
    _put(saver, "a", {"step": 0})
    _put(saver, "b", {"step": 1})
    checkpoint: Checkpoint = empty_checkpoint()
    saver.put(_thread("a", checkpoint_ns="child:1"), checkpoint, {"step": 2}, {})  # type: ignore[typeddict-item]
    assert sorted(t.metadata["step"] for t in saver.list(None)) == [0, 1, 2]
    assert sorted(t.metadata["step"] for t in saver.list(_thread("a"))) == [0, 2]  # every namespace
    assert [t.metadata["step"] for t in saver.list(_thread("a", checkpoint_ns=""))] == [0]


def test_at_version_reads_every_thread_as_it_was(saver: LanceCheckpointSaver, store: ContextStore) -> None:
    graph = _graph(saver)
    graph.invoke({"steps": ["one"]}, _thread("a"))
    graph.invoke({"steps": ["first"]}, _thread("b"))
    version = store.version()
    graph.invoke({"steps": ["two"]}, _thread("a"))
    saver.delete_thread("b")

    past = _graph(saver.at_version(version))
    assert past.get_state(_thread("a")).values["steps"] == ["one", "echo one"]
    assert past.get_state(_thread("b")).values["steps"] == ["first", "echo first"]
    assert graph.get_state(_thread("b")).values == {}
    with pytest.raises(ReadOnlyError):
        past.invoke({"steps": ["x"]}, _thread("a"))


def test_branching_the_store_forks_every_thread(saver: LanceCheckpointSaver, store: ContextStore) -> None:
    graph = _graph(saver)
    for thread in ("a", "b"):
        graph.invoke({"steps": [thread]}, _thread(thread))

    experiment = _graph(LanceCheckpointSaver(store=store.branch("experiment")))
    forked = _graph(saver.branch("other"))
    for branch in (experiment, forked):
        assert branch.get_state(_thread("a")).values["steps"] == ["a", "echo a"]
        assert branch.get_state(_thread("b")).values["steps"] == ["b", "echo b"]

    experiment.invoke({"steps": ["try"]}, _thread("a"))
    graph.invoke({"steps": ["main"]}, _thread("b"))
    assert experiment.get_state(_thread("a")).values["steps"][-1] == "echo try"
    assert graph.get_state(_thread("a")).values["steps"][-1] == "echo a"
    assert experiment.get_state(_thread("b")).values["steps"][-1] == "echo b"
    assert forked.get_state(_thread("a")).values["steps"][-1] == "echo a"


class DeltaState(TypedDict):
    items: Annotated[
        list[Any],
        DeltaChannel(
            lambda state, writes: [*(state or []), *(x for w in writes for x in w)], snapshot_frequency=3
        ),
    ]


def test_prune_keeps_what_a_delta_channel_needs(saver: LanceCheckpointSaver) -> None:
    builder = StateGraph(DeltaState)
    builder.add_node("count", lambda s: {"items": [len(s["items"])]})
    builder.add_edge(START, "count")
    builder.add_edge("count", END)
    graph = builder.compile(checkpointer=saver)
    for i in range(7):
        graph.invoke({"items": [f"in{i}"]}, _thread("d"))
    before = graph.get_state(_thread("d")).values
    assert len(before["items"]) == 14

    saver.prune(["d"], strategy="keep_latest")
    kept = list(graph.get_state_history(_thread("d")))
    assert 1 < len(kept) < 21  # the latest plus its chain back to the last snapshot
    assert graph.get_state(_thread("d")).values == before
    graph.invoke({"items": ["more"]}, _thread("d"))
    assert graph.get_state(_thread("d")).values["items"][-2:] == ["more", 15]


def test_prune_rejects_unknown_strategies(saver: LanceCheckpointSaver) -> None:
    with pytest.raises(ValueError, match="strategy"):
        saver.prune(["t"], strategy="keep_some")


def test_get_next_version_is_monotonic(saver: LanceCheckpointSaver) -> None:
    first = saver.get_next_version(None, None)
    second = saver.get_next_version(first, None)
    assert first < second and second.startswith("0" * 31 + "2.")


def test_concurrent_threads_share_one_saver_safely(tmp_path: Path) -> None:
    saver = LanceCheckpointSaver(uri=str(tmp_path / "busy.lance"))
    graph = _graph(saver)
    errors: list[BaseException] = []

    def run(name: str) -> None:
        try:
            for i in range(4):
                graph.invoke({"steps": [f"{name}{i}"]}, _thread(name))
                assert graph.get_state(_thread(name)).values["steps"][-1] == f"echo {name}{i}"
        except BaseException as exc:  # a pyo3 panic is a BaseException
            errors.append(exc)

    workers = [threading.Thread(target=run, args=(f"w{n}",)) for n in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert errors == []
    assert sorted({t.config["configurable"]["thread_id"] for t in saver.list(None)}) == [
        "w0",
        "w1",
        "w2",
        "w3",
    ]
