"""Real graphs and stores run side by side on LangGraph's reference backends and on ours.

Each scenario runs once on the reference (``InMemorySaver``, ``SqliteStore``) and once on
the Lance adapter, and the observable outcomes must be equal.
"""

from __future__ import annotations

import dataclasses
import logging
import operator
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any, NamedTuple

import pytest
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver, empty_checkpoint
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, StateGraph
from langgraph.store.base import PutOp
from langgraph.store.sqlite import SqliteStore
from langgraph.types import Command, Send, interrupt
from pydantic import BaseModel
from pydantic import v1 as pydantic_v1
from typing_extensions import TypedDict

from lance_context import ContextStore, InvalidRecordError
from lance_context.langgraph import LanceCheckpointSaver, LanceStore


@pytest.fixture(autouse=True)
def _quiet_serde(caplog: pytest.LogCaptureFixture) -> None:
    # the reference serializer logs each type it is about to block in a future version
    caplog.set_level(logging.ERROR, logger="langgraph")


def _thread(name: str) -> RunnableConfig:
    return {"configurable": {"thread_id": name}}


def _both(tmp_path: Path, scenario: Callable[[Any], Any]) -> tuple[Any, Any]:
    """The scenario's outcome on LangGraph's in-memory saver, then on ours."""
    reference = scenario(InMemorySaver())
    ours = scenario(LanceCheckpointSaver(store=ContextStore.open(str(tmp_path / "graphs.lance"))))
    return reference, ours


def _outcome(run: Callable[[], Any]) -> Any:
    try:
        return run()
    except Exception as exc:  # the outcome to compare, not a test failure
        return f"{type(exc).__name__}: {exc}"


# ---------------------------------------------------------------- user types in graphs
@dataclasses.dataclass
class Job:
    name: str


class Question(BaseModel):
    text: str


class Answer(BaseModel):
    ok: bool


class Pair(NamedTuple):
    left: int
    right: int


class LegacyModel(pydantic_v1.BaseModel):
    size: int


@dataclasses.dataclass
class Leaf:
    label: str


class Jobs(TypedDict):
    jobs: list[str]
    done: Annotated[list[str], operator.add]


def test_a_send_payload_keeps_its_type_when_a_failed_branch_is_resumed(tmp_path: Path) -> None:
    """A map step sends dataclasses; one branch fails; resuming reads the pending sends back."""

    def scenario(saver: BaseCheckpointSaver[Any]) -> list[Any]:
        failures = {"left": 1}

        def work(job: Job) -> dict[str, list[str]]:
            if job.name == "b" and failures["left"]:
                failures["left"] -= 1
                raise RuntimeError("flaky")
            return {"done": [f"{type(job).__name__}:{job.name}"]}

        builder = StateGraph(Jobs)
        builder.add_node("start", lambda s: {})
        builder.add_node("work", work)  # type: ignore[arg-type]  # a Send node takes its payload
        builder.add_edge(START, "start")
        builder.add_conditional_edges("start", lambda s: [Send("work", Job(j)) for j in s["jobs"]], ["work"])
        builder.add_edge("work", END)
        graph = builder.compile(checkpointer=saver)
        first = _outcome(lambda: graph.invoke({"jobs": ["a", "b", "c"], "done": []}, _thread("map")))
        resumed = _outcome(lambda: sorted(graph.invoke(None, _thread("map"))["done"]))
        return [first, resumed]

    reference, ours = _both(tmp_path, scenario)
    assert reference == ["RuntimeError: flaky", ["Job:a", "Job:b", "Job:c"]]
    assert ours == reference


class Steps(TypedDict):
    steps: Annotated[list[str], operator.add]


def test_an_interrupt_value_and_a_resume_value_keep_their_model_types(tmp_path: Path) -> None:
    def scenario(saver: BaseCheckpointSaver[Any]) -> list[Any]:
        def ask(state: Steps) -> dict[str, list[str]]:
            answer = interrupt(Question(text="ship it?"))
            return {"steps": [f"{type(answer).__name__}:{answer.ok}"]}

        builder = StateGraph(Steps)
        builder.add_node("ask", ask)
        builder.add_edge(START, "ask")
        builder.add_edge("ask", END)
        graph = builder.compile(checkpointer=saver)
        graph.invoke({"steps": []}, _thread("hitl"))
        waiting = graph.get_state(_thread("hitl"))
        shown = [i.value for task in waiting.tasks for i in task.interrupts]
        resumed = _outcome(lambda: graph.invoke(Command(resume=Answer(ok=True)), _thread("hitl")))
        return [shown, resumed]

    reference, ours = _both(tmp_path, scenario)
    assert reference == [[Question(text="ship it?")], {"steps": ["Answer:True"]}]
    assert ours == reference


class Shapes(TypedDict, total=False):
    pair: Pair
    legacy: LegacyModel
    tree: list[Any]
    turns: int


def test_named_tuples_legacy_models_and_deep_values_survive_the_next_turn(tmp_path: Path) -> None:
    """The second turn reads the first turn's checkpoint: every value must come back as written."""

    def deep(depth: int) -> list[Any]:
        tree: list[Any] = [Leaf("bottom")]
        for _ in range(depth):
            tree = [{"level": tree}]
        return tree

    def turn(state: Shapes) -> Shapes:
        pair, legacy = state.get("pair", Pair(0, 0)), state.get("legacy", LegacyModel(size=0))
        return {
            "pair": Pair(pair.left + 1, pair.right),
            "legacy": LegacyModel(size=legacy.size + 1),
            "tree": state.get("tree") or deep(12),
            "turns": state.get("turns", 0) + 1,
        }

    def scenario(saver: BaseCheckpointSaver[Any]) -> Any:
        builder = StateGraph(Shapes)
        builder.add_node("turn", turn)
        builder.add_edge(START, "turn")
        builder.add_edge("turn", END)
        graph = builder.compile(checkpointer=saver)
        graph.invoke({"turns": 0}, _thread("shapes"))
        return _outcome(lambda: graph.invoke({}, _thread("shapes")))

    reference, ours = _both(tmp_path, scenario)
    assert isinstance(reference, dict) and reference["pair"] == Pair(2, 0)
    assert reference["legacy"] == LegacyModel(size=2) and reference["tree"] == deep(12)
    assert ours == reference
    assert type(ours["pair"]) is Pair


def test_a_fresh_process_still_reads_unlisted_types_as_plain_data(tmp_path: Path) -> None:
    """Learning what this process wrote never trusts what another process wrote."""
    uri = str(tmp_path / "shared.lance")
    writer = LanceCheckpointSaver(store=ContextStore.open(uri))
    config: RunnableConfig = {"configurable": {"thread_id": "t", "checkpoint_ns": ""}}
    checkpoint = empty_checkpoint()
    checkpoint["channel_values"] = {"v": [Send("work", Job("a")), Pair(1, 2)]}
    checkpoint["channel_versions"] = {"v": "1"}
    writer.put(config, checkpoint, {}, {"v": "1"})
    stored = writer.get_tuple(config)
    assert stored is not None and stored.checkpoint["channel_values"]["v"][1] == Pair(1, 2)

    fresh = LanceCheckpointSaver(store=ContextStore.open(uri)).get_tuple(config)
    assert fresh is not None
    send, pair = fresh.checkpoint["channel_values"]["v"]
    assert send.arg == {"name": "a"} and pair == {"left": 1, "right": 2}


# ---------------------------------------------------------------- store: bad puts write nothing
@pytest.fixture
def sqlite_store() -> Iterator[SqliteStore]:
    conn = sqlite3.connect(":memory:", check_same_thread=False, isolation_level=None)
    store = SqliteStore(conn)
    store.setup()
    yield store
    conn.close()


@pytest.mark.parametrize("bad", [{1: "one"}, {"nested": [{"k": {None: 1}}]}, {"flag": {True: "yes"}}])
def test_a_value_with_non_string_keys_is_refused_and_its_batch_deletes_nothing(
    tmp_path: Path, sqlite_store: SqliteStore, bad: dict[Any, Any]
) -> None:
    ours = LanceStore(uri=str(tmp_path / "memory.lance"), embedder=None)
    outcomes = []
    for store in (sqlite_store, ours):
        store.put(("n",), "kept", {"v": 1})
        with pytest.raises((TypeError, ValueError)):
            store.batch([PutOp(("n",), "kept", None), PutOp(("n",), "bad", bad)])
        item = store.get(("n",), "kept")
        outcomes.append((item and item.value, store.get(("n",), "bad")))
    assert outcomes[1] == outcomes[0] == ({"v": 1}, None)
    with pytest.raises(InvalidRecordError, match=r"\('n',\) / 'bad'.*str keys.*nothing was written"):
        ours.put(("n",), "bad", bad)


def test_a_value_the_core_refuses_leaves_the_batchs_deletes_undone(tmp_path: Path) -> None:
    ours = LanceStore(uri=str(tmp_path / "memory.lance"), embedder=None)
    ours.put(("n",), "kept", {"v": 1})
    too_deep: Any = "bottom"
    for _ in range(ours.store.limits.max_json_depth + 5):
        too_deep = [too_deep]
    version = ours.store.version()
    with pytest.raises(InvalidRecordError, match="nests deeper"):
        ours.batch([PutOp(("n",), "kept", None), PutOp(("n",), "deep", {"v": too_deep})])
    assert ours.store.version() == version
    kept = ours.get(("n",), "kept")
    assert kept is not None and kept.value == {"v": 1}
