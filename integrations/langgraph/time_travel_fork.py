"""Scenario 2: time travel through an agent's checkpoints, and forked continuations.

An agent answers two weather questions (Lisbon, then Oslo). Then, as LangGraph
documents time travel:

1. ``get_state_history`` lists every checkpoint of the thread, newest first;
2. invoking from the checkpoint after the first answer with another question (Rome)
   forks the thread there, and the Oslo timeline stays reachable;
3. ``update_state`` edits the tool call of the Oslo turn (Bergen instead) and the
   agent continues from the edit.

Beyond LangGraph: ``saver.at_version(v)`` reads the thread as it was at a store
version (read-only), and ``saver.branch(...)`` forks every thread of the store at once.

    python integrations/langgraph/time_travel_fork.py [STORE_PATH]
"""

from __future__ import annotations

import os
import sys
import tempfile
from typing import Any

THREAD = {"configurable": {"thread_id": "weather"}}


def respond(messages: list[Any]) -> Any:
    from langchain_core.messages import AIMessage, ToolMessage
    from scripted_model import last_human, tool_call

    if isinstance(messages[-1], ToolMessage):
        return AIMessage(f"The weather tool says: {messages[-1].text}")
    return tool_call("get_weather", city=last_human(messages).rstrip("?").split()[-1])


def checkpoint_id(snapshot: Any) -> str:
    return str(snapshot.config["configurable"]["checkpoint_id"])


def lineage(agent: Any, config: Any) -> list[str]:
    """Checkpoint ids from ``config`` back to the thread's first checkpoint (parent links)."""
    ids, snapshot = [], agent.get_state(config)
    while snapshot is not None:
        ids.append(checkpoint_id(snapshot))
        snapshot = agent.get_state(snapshot.parent_config) if snapshot.parent_config else None
    return ids


def ask(text: str) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": text}]}


def main(store_path: str) -> int:
    from langchain.agents import create_agent
    from langchain_core.messages import AIMessage
    from langchain_core.tools import tool
    from scripted_model import ScriptedChatModel

    from lance_context import ReadOnlyError
    from lance_context.langgraph import LanceCheckpointSaver

    @tool
    def get_weather(city: str) -> str:
        """Current weather for a city."""
        return {"Lisbon": "sunny, 24C", "Oslo": "snow, -3C", "Rome": "clear, 19C"}.get(
            city, "rain, 9C"
        ) + f" in {city}"

    saver = LanceCheckpointSaver(uri=store_path)
    agent = create_agent(ScriptedChatModel(respond=respond), [get_weather], checkpointer=saver)

    agent.invoke(ask("What's the weather in Lisbon?"), THREAD)
    after_lisbon_version = saver.store.version()
    agent.invoke(ask("And in Oslo?"), THREAD)

    history = list(agent.get_state_history(THREAD))
    print(f"1. the thread has {len(history)} checkpoints (newest first):")
    for snap in history:
        last = snap.values["messages"][-1] if snap.values.get("messages") else None
        said = "" if last is None else (last.text or f"calls {last.tool_calls[0]['args']}")
        step, source = snap.metadata["step"], snap.metadata["source"]
        print(f"   step {step:>2} {source:<6} next={list(snap.next)} {said}".rstrip())  # step -1: no message

    after_lisbon = next(s for s in history if len(s.values.get("messages", [])) == 4 and not s.next)
    rome = agent.invoke(ask("What about Rome?"), after_lisbon.config)
    print(f"2. from the checkpoint after the Lisbon answer, ask about Rome: {rome['messages'][-1].text!r}")
    latest = agent.get_state(THREAD)
    rome_line = lineage(agent, THREAD)
    oslo_tip = history[0]
    oslo_text = agent.get_state(oslo_tip.config).values["messages"][-1].text
    print(f"   latest now has {len(latest.values['messages'])} messages; the Oslo timeline is kept:")
    print(f"   {oslo_text!r}")

    before_tool = next(
        s for s in history if s.next == ("tools",) and "Oslo" in str(s.values["messages"][-1].tool_calls)
    )
    call = before_tool.values["messages"][-1]
    edited = AIMessage("", id=call.id, tool_calls=[{**call.tool_calls[0], "args": {"city": "Bergen"}}])
    fork = agent.update_state(before_tool.config, {"messages": [edited]})
    bergen = agent.invoke(None, fork)
    print(
        f"3. update_state edits the Oslo tool call to Bergen, then continues: {bergen['messages'][-1].text!r}"
    )

    past = create_agent(
        ScriptedChatModel(respond=respond), [get_weather], checkpointer=saver.at_version(after_lisbon_version)
    )
    then = past.get_state(THREAD).values["messages"]
    print(f"4. saver.at_version({after_lisbon_version}) shows the thread as it was then:")
    print(f"   {len(then)} messages, the last {then[-1].text!r}")
    try:
        past.invoke(ask("Paris?"), THREAD)
        read_only = False
    except ReadOnlyError:
        read_only = True

    what_if = saver.branch("what-if", from_version=after_lisbon_version)
    branch_agent = create_agent(ScriptedChatModel(respond=respond), [get_weather], checkpointer=what_if)
    branch_reply = branch_agent.invoke(ask("And in Paris?"), THREAD)["messages"][-1].text
    print(f"5. a store branch from that version continues every thread its own way: {branch_reply!r}")

    checks = {
        "history lists every checkpoint newest first": [s.metadata["step"] for s in history]
        == sorted((s.metadata["step"] for s in history), reverse=True),
        "the Rome fork answers about Rome": rome["messages"][-1].text
        == "The weather tool says: clear, 19C in Rome",
        "the Rome timeline descends from the Lisbon checkpoint, not from Oslo": checkpoint_id(after_lisbon)
        in rome_line
        and checkpoint_id(oslo_tip) not in rome_line,
        "the Oslo timeline is kept": oslo_text == "The weather tool says: snow, -3C in Oslo",
        "update_state fork continues from the edit": bergen["messages"][-1].text
        == "The weather tool says: rain, 9C in Bergen",
        "at_version shows the past and refuses writes": len(then) == 4 and read_only,
        "the branch forked the thread, main is unchanged": branch_reply.endswith("in Paris")
        and "Paris" not in str(agent.get_state(THREAD).values["messages"]),
    }
    for name, ok in checks.items():
        print(f"{'OK' if ok else 'FAIL'}: {name}")
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(tempfile.mkdtemp(), "travel.lance")
    if os.path.exists(path):  # a second run would find the first run's records and branches
        sys.exit(f"{path} already exists: give a new STORE_PATH (the scenario builds its store from scratch)")
    sys.exit(main(path))
