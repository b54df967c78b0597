"""Real graphs run on LangGraph's reference checkpointers and on ours, outcomes compared.

Each checkpointer scenario drives a compiled ``StateGraph`` (interrupts and resume,
``get_state``/``get_state_history`` with filters, ``update_state(as_node=...)``, subgraphs,
a failing node retried from the last checkpoint, every durability mode, the async API)
once on ``InMemorySaver`` (and ``SqliteSaver`` where it is sync) and once on
``LanceCheckpointSaver``. Checkpoint ids, task ids and timestamps are backend-specific:
they are renamed in order of appearance before comparing. Store scenarios are in
``test_langgraph_store_third_pass``.
"""

from __future__ import annotations

import asyncio
import logging
import operator
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any

import pytest
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import Command, StateSnapshot, interrupt
from typing_extensions import TypedDict

from lance_context import ContextStore
from lance_context.langgraph import LanceCheckpointSaver

Graph = CompiledStateGraph[Any, Any, Any, Any]
Scenario = Callable[[BaseCheckpointSaver[Any], "_Names"], Any]


@pytest.fixture(autouse=True)
def _quiet_serde(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR, logger="langgraph")


class State(TypedDict):
    steps: Annotated[list[str], operator.add]


def _thread(name: str) -> RunnableConfig:
    return {"configurable": {"thread_id": name}}


class _Names:
    """Renames backend-specific checkpoint ids in order of appearance."""

    def __init__(self) -> None:
        self.ids: dict[str, str] = {}

    def id(self, value: str | None) -> str | None:
        return None if value is None else self.ids.setdefault(value, f"C{len(self.ids)}")

    def config(self, config: RunnableConfig | None) -> dict[str, Any] | None:
        if config is None:
            return None
        conf = config["configurable"]
        ns = str(conf.get("checkpoint_ns", ""))
        return {
            "thread_id": conf["thread_id"],
            "checkpoint_ns": "|".join(part.split(":")[0] for part in ns.split("|")),  # no task ids
            "checkpoint_id": self.id(conf.get("checkpoint_id")),
        }

    def snapshot(self, snap: StateSnapshot) -> dict[str, Any]:
        metadata = dict(snap.metadata or {})
        metadata.pop("run_id", None)
        metadata["parents"] = {k: self.id(v) for k, v in metadata.get("parents", {}).items()}
        tasks = [
            (
                t.name,
                repr(t.error),
                [i.value for i in t.interrupts],
                t.result,
                self.snapshot(t.state) if isinstance(t.state, StateSnapshot) else self.config(t.state),
            )
            for t in snap.tasks
        ]
        return {
            "values": snap.values,
            "next": snap.next,
            "config": self.config(snap.config),
            "parent": self.config(snap.parent_config),
            "metadata": metadata,
            "tasks": tasks,
            "interrupts": [i.value for i in snap.interrupts],
        }


def _plain(result: dict[str, Any]) -> dict[str, Any]:
    """A graph's output with interrupts reduced to their values (their ids are backend-specific)."""
    return {
        k: sorted(map(repr, (i.value for i in v))) if k == "__interrupt__" else v for k, v in result.items()
    }


def _savers(tmp_path: Path, *, sqlite: bool) -> Iterator[BaseCheckpointSaver[Any]]:
    yield InMemorySaver()
    if sqlite:
        yield SqliteSaver(sqlite3.connect(":memory:", check_same_thread=False))
    yield LanceCheckpointSaver(store=ContextStore.open(str(tmp_path / "graphs.lance")))


def _assert_same(tmp_path: Path, scenario: Scenario, *, sqlite: bool = True) -> None:
    outcomes = [scenario(saver, _Names()) for saver in _savers(tmp_path, sqlite=sqlite)]
    reference, ours = outcomes[0], outcomes[-1]
    assert ours == reference
    for other in outcomes[1:-1]:
        assert other == reference  # the references agree with each other too


# ---------------------------------------------------------------- graphs
def _ask_graph(saver: BaseCheckpointSaver[Any]) -> Graph:
    def ask(state: State) -> dict[str, Any]:
        answer = interrupt({"question": "ok?", "seen": len(state["steps"])})
        return {"steps": [f"answer:{answer}"]}

    builder = StateGraph(State)
    builder.add_node("plan", lambda s: {"steps": ["plan"]})
    builder.add_node("ask", ask)
    builder.add_node("act", lambda s: {"steps": ["act"]})
    builder.add_edge(START, "plan")
    builder.add_edge("plan", "ask")
    builder.add_edge("ask", "act")
    builder.add_edge("act", END)
    return builder.compile(checkpointer=saver)


def _subgraph_graph(saver: BaseCheckpointSaver[Any], own_checkpoints: bool | None) -> Graph:
    inner = StateGraph(State)
    inner.add_node("s1", lambda s: {"steps": ["s1"]})
    inner.add_node("s2", lambda s: {"steps": [f"sub:{interrupt('sub?')}"]})
    inner.add_edge(START, "s1")
    inner.add_edge("s1", "s2")
    inner.add_edge("s2", END)
    outer = StateGraph(State)
    outer.add_node("p", lambda s: {"steps": ["p"]})
    outer.add_node("child", inner.compile(checkpointer=own_checkpoints))
    outer.add_node("q", lambda s: {"steps": ["q"]})
    outer.add_edge(START, "p")
    outer.add_edge("p", "child")
    outer.add_edge("child", "q")
    outer.add_edge("q", END)
    return outer.compile(checkpointer=saver)


def _two_questions(saver: BaseCheckpointSaver[Any]) -> Graph:
    builder = StateGraph(State)
    builder.add_node("start", lambda s: {"steps": ["start"]})
    builder.add_node("ask1", lambda s: {"steps": [f"a1:{interrupt('one')}"]})
    builder.add_node("ask2", lambda s: {"steps": [f"a2:{interrupt('two')}"]})
    builder.add_node("end", lambda s: {"steps": ["end"]})
    builder.add_edge(START, "start")
    builder.add_edge("start", "ask1")
    builder.add_edge("start", "ask2")
    builder.add_edge(["ask1", "ask2"], "end")
    builder.add_edge("end", END)
    return builder.compile(checkpointer=saver)


def _flaky_graph(saver: BaseCheckpointSaver[Any]) -> Graph:
    calls = {"bad": 0}

    def bad(state: State) -> dict[str, Any]:
        calls["bad"] += 1
        if calls["bad"] == 1:
            raise ValueError("boom")
        return {"steps": ["bad-ok"]}

    builder = StateGraph(State)
    builder.add_node("start", lambda s: {"steps": ["start"]})
    builder.add_node("good", lambda s: {"steps": ["good"]})
    builder.add_node("bad", bad)
    builder.add_node("join", lambda s: {"steps": ["join"]})
    builder.add_edge(START, "start")
    builder.add_edge("start", "good")
    builder.add_edge("good", "bad")  # in sequence: parallel branches race the failure
    builder.add_edge("bad", "join")
    builder.add_edge("join", END)
    return builder.compile(checkpointer=saver)


# ---------------------------------------------------------------- checkpointer scenarios
def test_interrupt_resume_and_history_filters_match(tmp_path: Path) -> None:
    def scenario(saver: BaseCheckpointSaver[Any], names: _Names) -> Any:
        graph, config = _ask_graph(saver), _thread("t")
        out: list[Any] = [_plain(graph.invoke({"steps": ["start"]}, config))]
        out.append(names.snapshot(graph.get_state(config)))
        out.append(graph.invoke(Command(resume="yes"), config))
        history = list(graph.get_state_history(config))
        out.append([names.snapshot(s) for s in history])
        for kwargs in (
            {"filter": {"source": "loop"}},
            {"filter": {"step": 1}},
            {"before": history[2].config, "limit": 2},
            {"filter": {"source": "loop"}, "before": history[1].config, "limit": 1},
            {"limit": 0},
        ):
            out.append([names.snapshot(s) for s in graph.get_state_history(config, **kwargs)])
        out.append([names.config(t.config) for t in saver.list(None, filter={"step": 2})])
        return out

    _assert_same(tmp_path, scenario)


def test_update_state_as_node_and_forking_an_old_checkpoint_match(tmp_path: Path) -> None:
    def scenario(saver: BaseCheckpointSaver[Any], names: _Names) -> Any:
        graph, config = _ask_graph(saver), _thread("u")
        graph.invoke({"steps": ["start"]}, config)
        out: list[Any] = [names.config(graph.update_state(config, {"steps": ["edited"]}, as_node="ask"))]
        out.append(names.snapshot(graph.get_state(config)))
        out.append(graph.invoke(None, config))
        oldest_step = list(graph.get_state_history(config))[-2].config
        fork = graph.update_state(oldest_step, {"steps": ["forked"]}, as_node="plan")
        out.append(_plain(graph.invoke(None, fork)))
        out.append([names.snapshot(s) for s in graph.get_state_history(config)])
        return out

    _assert_same(tmp_path, scenario)


@pytest.mark.parametrize("own_checkpoints", [None, True])
def test_subgraph_interrupt_update_and_resume_match(tmp_path: Path, own_checkpoints: bool | None) -> None:
    def scenario(saver: BaseCheckpointSaver[Any], names: _Names) -> Any:
        graph, config = _subgraph_graph(saver, own_checkpoints), _thread("sg")
        graph.invoke({"steps": ["in"]}, config)
        state = graph.get_state(config, subgraphs=True)
        out: list[Any] = [names.snapshot(state)]
        child = state.tasks[0].state
        assert isinstance(child, StateSnapshot)
        out.append([names.snapshot(s) for s in graph.get_state_history(child.config)])
        listed = saver.list(_thread("sg"))
        out.append(sorted((names.config(t.config) or {})["checkpoint_ns"] for t in listed))
        graph.update_state(child.config, {"steps": ["sub-edit"]}, as_node="s2")
        out.append(names.snapshot(graph.get_state(config, subgraphs=True)))
        out.append(graph.invoke(None, config))
        for namespace, update in graph.stream({"steps": ["again"]}, config, subgraphs=True):
            out.append(([part.split(":")[0] for part in namespace], _plain(update)))
        out.append(graph.invoke(Command(resume="go"), config))
        saver.delete_thread("sg")
        out.append((graph.get_state(config).values, len(list(saver.list(None)))))
        return out

    _assert_same(tmp_path, scenario)


@pytest.mark.parametrize("durability", ["exit", "async", "sync"])
def test_a_failed_node_is_retried_from_the_last_checkpoint(tmp_path: Path, durability: Any) -> None:
    def scenario(saver: BaseCheckpointSaver[Any], names: _Names) -> Any:
        graph, config = _flaky_graph(saver), _thread("e")
        with pytest.raises(ValueError, match="boom"):
            graph.invoke({"steps": []}, config, durability=durability)
        failed = saver.get_tuple(config)
        assert failed is not None
        out: list[Any] = [names.snapshot(graph.get_state(config))]
        out.append(sorted((channel, repr(value)) for _, channel, value in failed.pending_writes or []))
        out.append(graph.invoke(None, config, durability=durability))  # resumes at "bad"
        out.append([names.snapshot(s) for s in graph.get_state_history(config)])
        return out

    _assert_same(tmp_path, scenario)


@pytest.mark.parametrize("durability", ["exit", "async", "sync"])
def test_parallel_interrupts_resumed_one_at_a_time_match(tmp_path: Path, durability: Any) -> None:
    def scenario(saver: BaseCheckpointSaver[Any], names: _Names) -> Any:
        graph, config = _two_questions(saver), _thread("d")
        first = graph.invoke({"steps": ["in"]}, config, durability=durability)
        one, two = sorted(first["__interrupt__"], key=lambda i: str(i.value))
        out: list[Any] = [names.snapshot(graph.get_state(config))]
        out.append(_plain(graph.invoke(Command(resume={one.id: "x"}), config, durability=durability)))
        out.append(names.snapshot(graph.get_state(config)))
        out.append(graph.invoke(Command(resume={two.id: "y"}), config, durability=durability))
        out.append([names.snapshot(s) for s in graph.get_state_history(config)])
        return out

    _assert_same(tmp_path, scenario)


@pytest.mark.parametrize("durability", ["exit", "async", "sync"])
def test_the_async_graph_api_matches(tmp_path: Path, durability: Any) -> None:
    async def run(saver: BaseCheckpointSaver[Any], names: _Names) -> Any:
        graph, config = _two_questions(saver), _thread("a")
        out: list[Any] = [
            [_plain(c) async for c in graph.astream({"steps": ["in"]}, config, durability=durability)]
        ]
        state = await graph.aget_state(config)
        out.append(names.snapshot(state))
        resume = {i.id: str(i.value).upper() for i in state.interrupts}
        out.append(await graph.ainvoke(Command(resume=resume), config, durability=durability))
        history = [s async for s in graph.aget_state_history(config)]
        out.append([names.snapshot(s) for s in history])
        limited = graph.aget_state_history(config, filter={"source": "loop"}, limit=2)
        out.append([names.snapshot(s) async for s in limited])
        await graph.aupdate_state(history[1].config, {"steps": ["edit"]}, as_node="end")
        out.append(names.snapshot(await graph.aget_state(config)))
        await saver.adelete_thread("a")
        out.append((await graph.aget_state(config)).values)
        return out

    _assert_same(tmp_path, lambda saver, names: asyncio.run(run(saver, names)), sqlite=False)


def test_metadata_filters_compare_values_as_the_reference_savers_do(tmp_path: Path) -> None:
    # LangGraph's savers compare filter values with == (SQLite through JSON): True matches 1
    def scenario(saver: BaseCheckpointSaver[Any], names: _Names) -> Any:
        builder = StateGraph(State)
        builder.add_node("a", lambda s: {"steps": ["a"]})
        builder.add_edge(START, "a")
        builder.add_edge("a", END)
        graph = builder.compile(checkpointer=saver)
        metadata: list[dict[str, Any]] = [
            {"user": "alice", "n": 1, "tags": ["x", "y"], "obj": {"k": 1}, "flag": True, "none": None},
            {"user": "bob", "n": 2.0, "tags": [], "obj": {}, "flag": False},
            {"user": "alice", "n": 0, "obj": {"k": 1, "j": 2}, "flag": 1},
        ]
        for i, meta in enumerate(metadata):
            graph.invoke({"steps": [str(i)]}, {"configurable": {"thread_id": f"f{i}"}, "metadata": meta})
        filters: list[dict[str, Any]] = [
            {"user": "alice"},
            {"n": 1},
            {"n": 1.0},
            {"n": 2},
            {"n": True},
            {"n": False},
            {"flag": True},
            {"flag": 1},
            {"flag": False},
            {"tags": ["x", "y"]},
            {"obj": {"k": 1}},
            {"obj": {}},
            {"none": None},
            {"missing": None},
            {"source": "input", "user": "bob"},
            {"step": 0, "n": 0},
        ]
        out = []
        for spec in filters:
            everywhere = saver.list(None, filter=spec)
            one_thread = saver.list(_thread("f0"), filter=spec, limit=2)
            out.append(
                (
                    sorted((t.config["configurable"]["thread_id"], t.metadata["step"]) for t in everywhere),
                    [t.metadata["step"] for t in one_thread],
                )
            )
        return out

    _assert_same(tmp_path, scenario)


def test_a_deleted_thread_starts_afresh(tmp_path: Path) -> None:
    def scenario(saver: BaseCheckpointSaver[Any], names: _Names) -> Any:
        graph, config = _ask_graph(saver), _thread("r")
        graph.invoke({"steps": ["1"]}, config)
        graph.invoke(Command(resume="a"), config)
        saver.delete_thread("r")
        out: list[Any] = [names.snapshot(graph.get_state(config))]
        out.append(_plain(graph.invoke({"steps": ["2"]}, config)))
        out.append(graph.invoke(Command(resume="b"), config))
        out.append([names.snapshot(s) for s in graph.get_state_history(config)])
        return out

    _assert_same(tmp_path, scenario)


def test_a_copied_thread_has_the_same_history_and_resumes_on_its_own(tmp_path: Path) -> None:
    saver = LanceCheckpointSaver(store=ContextStore.open(str(tmp_path / "copy.lance")))
    reference = _subgraph_graph(InMemorySaver(), None)
    reference.invoke({"steps": ["in"]}, _thread("src"))
    graph = _subgraph_graph(saver, None)
    graph.invoke({"steps": ["in"]}, _thread("src"))
    saver.copy_thread("src", "dst")

    def seen(thread: str) -> list[Any]:
        names, config = _Names(), _thread(thread)
        views = [names.snapshot(graph.get_state(config, subgraphs=True))]
        views += [names.snapshot(s) for s in graph.get_state_history(config)]
        return _without_thread(views)

    assert seen("dst") == seen("src")
    expected = reference.invoke(Command(resume="D"), _thread("src"))
    assert graph.invoke(Command(resume="D"), _thread("dst")) == expected
    assert graph.get_state(_thread("src")).next == ("child",)  # the source still waits
    saver.prune(["src"])
    assert graph.invoke(Command(resume="D"), _thread("src")) == expected


def _without_thread(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_thread(v) for k, v in value.items() if k != "thread_id"}
    if isinstance(value, (list, tuple)):
        return type(value)(_without_thread(v) for v in value)
    return value
