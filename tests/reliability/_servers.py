"""Application servers sharing one object-store memory, each in its own spawned process.

A server opens its own ``ContextStore`` and adapters on the S3 store and, round after
round, writes: a private LangChain history and a shared one, a private LangGraph thread
and a shared one (runs taken under a cross-process lock, as one thread's runs are
serialized in production), and a private LlamaIndex memory. After each acknowledged
write it publishes what it wrote; before each read of a shared session or thread it
snapshots what the others have published, and the read must show all of it (the
in-process caches are checked against the store, never trusted). One process compacts
and cleans up meanwhile, and one server stays idle across a cleanup, then writes again.
"""

from __future__ import annotations

import time
import traceback
from datetime import timedelta
from typing import Any, TypedDict

from langchain_core.messages import AIMessage, HumanMessage
from llama_index.core.base.llms.types import ChatMessage

from lance_context import CommitConflictError, ContextStore, HashingEmbedder
from lance_context.langchain import LanceChatMessageHistory
from lance_context.langgraph import LanceCheckpointSaver
from lance_context.llama_index import LanceMemory

DIMENSION = 16
SHARED_SESSION = "shared"
SHARED_THREAD = "shared-thread"
CLEANUP_AFTER = timedelta(seconds=2)


class GraphState(TypedDict, total=False):
    turns: list[str]
    label: str


def graph(saver: Any) -> Any:
    """A one-node graph whose state is the list of turns taken on its thread.

    Each run's input is only the new turn's label: the turns so far come from the
    latest checkpoint, so a stale read of it would drop turns.
    """
    from langgraph.graph import END, START, StateGraph

    def step(state: GraphState) -> GraphState:
        return {"turns": [*state.get("turns", []), state["label"]]}

    builder = StateGraph(GraphState)
    builder.add_node("step", step)
    builder.add_edge(START, "step")
    builder.add_edge("step", END)
    return builder.compile(checkpointer=saver)


def config(thread: str) -> dict[str, Any]:
    return {"configurable": {"thread_id": thread}}


def server(
    uri: str, options: dict[str, str], index: int, rounds: int, shared: Any, ready: Any, go: Any, results: Any
) -> None:
    """One application server; ``shared`` holds the cross-process acks, lock and events."""
    name = f"p{index}"
    outcome: dict[str, Any] = {"server": name, "private": [], "shared": [], "memory": [], "thread": []}
    outcome.update(stale=[], refused=0, errors=[], idled=False)
    try:
        store = ContextStore.open(uri, storage_options=options, embedder=HashingEmbedder(DIMENSION))
        private = LanceChatMessageHistory(name, store=store)
        common = LanceChatMessageHistory(SHARED_SESSION, store=store)
        app = graph(LanceCheckpointSaver(store=store))
        memory = LanceMemory.from_defaults(session_id=f"memory-{name}", store=store)
    except BaseException:
        ready.put(("error", traceback.format_exc()))
        return
    ready.put(("ready", index))
    go.wait(120)
    idle_round = rounds // 2 if shared["idle"] == index else -1
    try:
        for k in range(rounds):
            if k == idle_round:
                shared["idle_started"].set()
                outcome["idled"] = shared["cleaned"].wait(180)  # compacted and cleaned up meanwhile
            try:
                _round(name, k, (private, common, app, memory), shared, outcome)
            except CommitConflictError:
                outcome["refused"] += 1
    except BaseException:
        outcome["errors"].append(traceback.format_exc())
    results.put(outcome)


def _round(name: str, k: int, adapters: tuple[Any, ...], shared: Any, outcome: Any) -> None:
    private, common, app, memory = adapters
    pair = [
        HumanMessage(f"{name} asks {k}", id=f"{name}-h{k}"),
        AIMessage(f"{name} answers {k}", id=f"{name}-a{k}"),
    ]
    private.add_messages(pair)
    outcome["private"] += [m.id for m in pair]
    said = f"s-{name}-{k}"
    common.add_messages([HumanMessage(f"{name} tells everyone {k}", id=said)])
    outcome["shared"].append(said)
    shared["acks"][name] = k + 1  # acknowledged: every later read anywhere must show it
    _check_shared_history(name, common, shared, outcome)
    app.invoke({"label": f"{name}-{k}"}, config(f"thread-{name}"))
    outcome["thread"].append(f"{name}-{k}")
    with shared["lock"]:  # one run at a time on the shared thread, from any server
        expected = list(shared["turns"])
        seen = app.get_state(config(SHARED_THREAD)).values.get("turns", [])
        if seen != expected:
            outcome["stale"].append(f"{name} saw {len(seen)} turns of {SHARED_THREAD}, {len(expected)} done")
        app.invoke({"label": f"{name}-{k}"}, config(SHARED_THREAD))
        shared["turns"].append(f"{name}-{k}")
    memory.put(ChatMessage(role="user", content=f"{name} remembers {k}"))
    outcome["memory"].append(f"{name} remembers {k}")


def _check_shared_history(name: str, common: Any, shared: Any, outcome: Any) -> None:
    acked = dict(shared["acks"])  # snapshot before the read
    seen: dict[str, int] = {}
    for message in common.messages:
        writer = str(message.id).split("-")[1]
        seen[writer] = seen.get(writer, 0) + 1
    for writer, count in acked.items():
        if seen.get(writer, 0) < count:
            outcome["stale"].append(f"{name} saw {seen.get(writer, 0)} of {writer}'s {count} shared messages")


def maintainer(uri: str, options: dict[str, str], shared: Any, stop: Any, results: Any) -> None:
    """Compact and clean up again and again; during the idle server's pause, once more after it."""
    store = ContextStore.open(uri, storage_options=options, embedder=HashingEmbedder(DIMENSION))
    done: dict[str, Any] = {"compactions": 0, "cleanups": 0, "conflicts": 0, "errors": [], "merged": False}
    while not stop.is_set():
        try:
            before = store.version()
            store.compact()
            done["compactions"] += 1
            if not done["merged"] and store.version() > before:  # the history is cleaned every round: short
                done["merged"] = any(v.operation == "compact" for v in store.versions() if v.version > before)
            if shared["idle_started"].is_set() and not shared["cleaned"].is_set():
                time.sleep(CLEANUP_AFTER.total_seconds() + 0.5)  # the idle server's version grows old
                store.compact()
                store.cleanup(older_than=CLEANUP_AFTER)
                shared["cleaned"].set()
            else:
                store.cleanup(older_than=CLEANUP_AFTER)
            done["cleanups"] += 1
        except CommitConflictError:
            done["conflicts"] += 1
        except BaseException:
            done["errors"].append(traceback.format_exc())
            shared["cleaned"].set()
            break
        stop.wait(0.5)
    results.put(done)
