"""Graph time travel with a real StateGraph, as LangGraph documents it."""

from __future__ import annotations

import itertools
import operator
from pathlib import Path
from typing import Annotated, Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import Command, interrupt
from typing_extensions import TypedDict

from lance_context.langgraph import LanceCheckpointSaver


class State(TypedDict):
    steps: Annotated[list[str], operator.add]


def _graph(saver: LanceCheckpointSaver) -> CompiledStateGraph[Any, Any, Any, Any]:
    builder = StateGraph(State)
    builder.add_node("plan", lambda s: {"steps": ["plan"]})
    builder.add_node("act", lambda s: {"steps": [f"act after {s['steps'][-1]}"]})
    builder.add_edge(START, "plan")
    builder.add_edge("plan", "act")
    builder.add_edge("act", END)
    return builder.compile(checkpointer=saver)


def _thread(name: str) -> RunnableConfig:
    return {"configurable": {"thread_id": name}}


def test_history_lists_every_step_newest_first(saver: LanceCheckpointSaver) -> None:
    graph = _graph(saver)
    graph.invoke({"steps": ["ask"]}, _thread("t"))
    history = list(graph.get_state_history(_thread("t")))
    assert [s.values.get("steps") for s in history] == [
        ["ask", "plan", "act after plan"],
        ["ask", "plan"],
        ["ask"],
        [],
    ]
    assert [s.next for s in history] == [(), ("act",), ("plan",), ("__start__",)]
    assert [s.metadata["step"] for s in history if s.metadata] == [2, 1, 0, -1]
    # each snapshot points at its parent
    for newer, older in itertools.pairwise(history):
        assert newer.parent_config is not None
        assert (
            newer.parent_config["configurable"]["checkpoint_id"]
            == older.config["configurable"]["checkpoint_id"]
        )
    assert list(graph.get_state_history(_thread("t"), limit=2)) == history[:2]
    older = list(graph.get_state_history(_thread("t"), before=history[1].config))
    assert [s.config for s in older] == [s.config for s in history[2:]]


def test_replay_from_an_earlier_checkpoint_forks_the_thread(saver: LanceCheckpointSaver) -> None:
    graph = _graph(saver)
    graph.invoke({"steps": ["ask"]}, _thread("t"))
    history = list(graph.get_state_history(_thread("t")))
    before_act = next(s for s in history if s.next == ("act",))

    replayed = graph.invoke(None, before_act.config)
    assert replayed["steps"] == ["ask", "plan", "act after plan"]
    # LangGraph records the replay as a "fork" checkpoint copied from the one replayed
    latest, fork = list(graph.get_state_history(_thread("t")))[:2]
    assert fork.metadata is not None and fork.metadata["source"] == "fork"
    assert fork.values == before_act.values
    assert latest.parent_config == fork.config
    assert fork.parent_config is not None
    assert (
        fork.parent_config["configurable"]["checkpoint_id"]
        == before_act.config["configurable"]["checkpoint_id"]
    )
    # the original branch is still there
    assert len(list(graph.get_state_history(_thread("t")))) == len(history) + 2


def _shape(graph: CompiledStateGraph[Any, Any, Any, Any], config: RunnableConfig) -> list[tuple[Any, ...]]:
    """A thread's history with checkpoint ids replaced by their position (ids are random)."""
    history = list(graph.get_state_history(config))
    position = {s.config["configurable"]["checkpoint_id"]: i for i, s in enumerate(history)}
    return [
        (
            s.values,
            s.next,
            s.metadata and (s.metadata["source"], s.metadata["step"]),
            s.parent_config and position[s.parent_config["configurable"]["checkpoint_id"]],
            [(w[1], w[2]) for w in s.tasks and [(t.id, t.name, t.result) for t in s.tasks]],
        )
        for s in history
    ]


def test_time_travel_matches_langgraphs_in_memory_saver(saver: LanceCheckpointSaver) -> None:
    shapes = []
    for checkpointer in (InMemorySaver(), saver):
        graph = _graph(checkpointer)  # type: ignore[arg-type]
        graph.invoke({"steps": ["ask"]}, _thread("t"))
        before_act = next(s for s in graph.get_state_history(_thread("t")) if s.next == ("act",))
        graph.invoke(None, before_act.config)
        fork = graph.update_state(before_act.config, {"steps": ["edited"]})
        graph.invoke(None, fork)
        graph.invoke({"steps": ["again"]}, _thread("t"))
        shapes.append(_shape(graph, _thread("t")))
    assert shapes[1] == shapes[0]
    assert len(shapes[1]) == 12


def test_update_state_forks_and_continues_from_the_edit(saver: LanceCheckpointSaver) -> None:
    graph = _graph(saver)
    graph.invoke({"steps": ["ask"]}, _thread("t"))
    before_act = next(s for s in graph.get_state_history(_thread("t")) if s.next == ("act",))

    fork = graph.update_state(before_act.config, {"steps": ["edited"]})
    assert fork["configurable"]["checkpoint_id"] != before_act.config["configurable"]["checkpoint_id"]
    forked = graph.get_state(fork)
    assert forked.values["steps"] == ["ask", "plan", "edited"]
    assert forked.metadata is not None and forked.metadata["source"] == "update"
    assert forked.next == ("act",)

    result = graph.invoke(None, fork)
    assert result["steps"] == ["ask", "plan", "edited", "act after edited"]
    assert graph.get_state(_thread("t")).values == result
    # the checkpoint we forked from is unchanged
    assert graph.get_state(before_act.config).values["steps"] == ["ask", "plan"]


def test_interrupt_and_resume_keep_pending_writes(saver: LanceCheckpointSaver) -> None:
    def approve(state: State) -> dict[str, list[str]]:
        answer = interrupt({"question": "ship it?"})
        return {"steps": [f"approved={answer}"]}

    builder = StateGraph(State)
    builder.add_node("approve", approve)
    builder.add_edge(START, "approve")
    builder.add_edge("approve", END)
    graph = builder.compile(checkpointer=saver)

    first = graph.invoke({"steps": ["draft"]}, _thread("hitl"))
    assert first["__interrupt__"][0].value == {"question": "ship it?"}
    waiting = graph.get_state(_thread("hitl"))
    assert waiting.next == ("approve",)
    assert waiting.tasks[0].interrupts[0].value == {"question": "ship it?"}

    # a new saver on the same store (another process would do the same) resumes the thread
    again = LanceCheckpointSaver(store=saver.store)
    resumed = builder.compile(checkpointer=again).invoke(Command(resume="yes"), _thread("hitl"))
    assert resumed["steps"] == ["draft", "approved=yes"]


def test_parallel_branches_store_every_task_write(saver: LanceCheckpointSaver) -> None:
    builder = StateGraph(State)
    builder.add_node("left", lambda s: {"steps": ["left"]})
    builder.add_node("right", lambda s: {"steps": ["right"]})
    builder.add_node("join", lambda s: {"steps": ["join"]})
    builder.add_edge(START, "left")
    builder.add_edge(START, "right")
    builder.add_edge(["left", "right"], "join")
    builder.add_edge("join", END)
    graph = builder.compile(checkpointer=saver)
    out = graph.invoke({"steps": []}, _thread("fan"))
    assert sorted(out["steps"][:2]) == ["left", "right"]
    assert out["steps"][2] == "join"


async def test_async_graph_round_trip(tmp_path: Path) -> None:
    saver = LanceCheckpointSaver(uri=str(tmp_path / "async.lance"))
    graph = _graph(saver)
    await graph.ainvoke({"steps": ["ask"]}, _thread("a"))
    states = [s async for s in graph.aget_state_history(_thread("a"))]
    assert states[0].values["steps"] == ["ask", "plan", "act after plan"]
    fork = await graph.aupdate_state(states[1].config, {"steps": ["edited"]})
    result = await graph.ainvoke(None, fork)
    assert result["steps"][-1] == "act after edited"


def test_threads_survive_reopening_the_store(tmp_path: Path) -> None:
    uri = str(tmp_path / "durable.lance")
    _graph(LanceCheckpointSaver(uri=uri)).invoke({"steps": ["ask"]}, _thread("t"))
    reopened = _graph(LanceCheckpointSaver(uri=uri))
    assert reopened.get_state(_thread("t")).values["steps"] == ["ask", "plan", "act after plan"]
    assert len(list(reopened.get_state_history(_thread("t")))) == 4


def test_list_of_one_thread_matches_the_in_memory_saver_for_every_argument(
    saver: LanceCheckpointSaver,
) -> None:
    """before, limit, namespace and checkpoint id, with pending writes, as LangGraph's reference lists them."""

    def listing(checkpointer: Any) -> list[list[tuple[Any, ...]]]:
        graph = _graph(checkpointer)
        for word in ("ask", "more", "again"):
            graph.invoke({"steps": [word]}, _thread("t"))
        graph.invoke({"steps": ["other"]}, _thread("u"))
        every = list(checkpointer.list(_thread("t")))
        middle = every[len(every) // 2].config
        calls: list[dict[str, Any]] = [
            {},
            {"limit": 3},
            {"before": middle},
            {"before": middle, "limit": 2},
            {"ns": ""},
            {"ns": "", "checkpoint_id": middle["configurable"]["checkpoint_id"]},
        ]
        out = []
        for call in calls:
            conf = dict(_thread("t")["configurable"])
            if "ns" in call:
                conf["checkpoint_ns"] = call["ns"]
            if "checkpoint_id" in call:
                conf["checkpoint_id"] = call["checkpoint_id"]
            found = checkpointer.list(
                {"configurable": conf}, before=call.get("before"), limit=call.get("limit")
            )
            out.append(
                [
                    (
                        t.checkpoint["channel_values"].get("steps"),
                        t.metadata.get("step"),
                        t.metadata.get("source"),
                        sorted((w[1], repr(w[2])) for w in t.pending_writes or []),
                        t.parent_config is not None,
                    )
                    for t in found
                ]
            )
        return out

    reference, ours = listing(InMemorySaver()), listing(saver)
    assert ours == reference
    assert len(ours[0]) > 6 and len(ours[1]) == 3 and ours[2] and len(ours[5]) == 1
