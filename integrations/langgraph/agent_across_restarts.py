"""Scenario 1: an agent's conversation survives a process restart through LanceCheckpointSaver.

A LangChain ``create_agent`` agent (a scripted tool-calling chat model and a weather
tool) runs one turn in a first process, which exits. A second process builds the agent
again on the same store and asks a follow-up: the model receives the whole first turn,
tool call and tool result included, and answers from it.

    python integrations/langgraph/agent_across_restarts.py [STORE_PATH]
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from typing import Any

THREAD = {"configurable": {"thread_id": "trip-planning"}}
FIRST = "What's the weather in Lisbon?"
SECOND = "Which city did I ask about, and what did the tool say?"


def respond(messages: list[Any]) -> Any:
    from langchain_core.messages import AIMessage, ToolMessage
    from scripted_model import humans, last_human, tool_call, tool_results

    if isinstance(messages[-1], ToolMessage):
        return AIMessage(f"The weather tool says: {messages[-1].text}")
    if last_human(messages) == FIRST:
        return tool_call("get_weather", city="Lisbon")
    asked, said = humans(messages)[0], tool_results(messages)
    return AIMessage(f"You asked: {asked} The tool said: {said[0]}.")


def build_agent(store_path: str) -> tuple[Any, Any]:
    from langchain.agents import create_agent
    from langchain_core.tools import tool
    from scripted_model import ScriptedChatModel

    from lance_context.langgraph import LanceCheckpointSaver

    @tool
    def get_weather(city: str) -> str:
        """Current weather for a city."""
        return f"sunny and 24C in {city}"

    model = ScriptedChatModel(respond=respond)
    agent = create_agent(model, [get_weather], checkpointer=LanceCheckpointSaver(uri=store_path))
    return agent, model


def calls(message: Any) -> str:
    """``calls get_weather(city='Lisbon')``: an AI message's tool calls as a person reads them."""
    shown = []
    for call in message.tool_calls:
        arguments = ", ".join(f"{name}={value!r}" for name, value in call["args"].items())
        shown.append(f"{call['name']}({arguments})")
    return "calls " + ", ".join(shown)


def run_turn(store_path: str, question: str) -> int:
    """One process, one user turn; prints what the model received and answered as JSON."""
    agent, model = build_agent(store_path)
    result = agent.invoke({"messages": [{"role": "user", "content": question}]}, THREAD)
    seen = [f"{m.type}: {m.text or calls(m)}" for m in model.calls[-1]]
    print(json.dumps({"pid": os.getpid(), "seen": seen, "reply": result["messages"][-1].text}))
    return 0


def child(store_path: str, question: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, __file__, store_path, "--ask", question], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        print(done.stdout, done.stderr, sep="\n")
        raise SystemExit(f"FAIL: the process asking {question!r} exited with {done.returncode}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def main(store_path: str) -> int:
    first = child(store_path, FIRST)
    print(f"process {first['pid']}: user asks {FIRST!r}")
    print(f"  agent replies {first['reply']!r}; the process exits")
    second = child(store_path, SECOND)
    print(f"process {second['pid']}: user asks {SECOND!r}")
    print(f"  the model received {len(second['seen'])} messages:")
    for line in second["seen"]:
        print(f"    - {line}")
    print(f"  agent replies {second['reply']!r}")

    agent, _ = build_agent(store_path)
    state = agent.get_state(THREAD)
    history = list(agent.get_state_history(THREAD))
    print(f"the thread now holds {len(state.values['messages'])} messages in {len(history)} checkpoints")
    checks = {
        "two different processes": first["pid"] != second["pid"] != os.getpid(),
        "first turn used the tool": first["reply"] == "The weather tool says: sunny and 24C in Lisbon",
        "second process saw the first turn, tool call and result included": len(second["seen"]) == 5
        and "get_weather" in second["seen"][1]
        and second["seen"][2] == "tool: sunny and 24C in Lisbon",
        "the answer comes from the restored history": second["reply"]
        == f"You asked: {FIRST} The tool said: sunny and 24C in Lisbon.",
        "state reopened from disk has both turns": len(state.values["messages"]) == 6,
    }
    for name, ok in checks.items():
        print(f"{'OK' if ok else 'FAIL'}: {name}")
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    args = sys.argv[1:]
    if "--ask" in args:
        sys.exit(run_turn(args[0], args[args.index("--ask") + 1]))
    path = args[0] if args else os.path.join(tempfile.mkdtemp(), "agent.lance")
    if os.path.exists(path):  # a second run would find the first run's records and branches
        sys.exit(f"{path} already exists: give a new STORE_PATH (the scenario builds its store from scratch)")
    sys.exit(main(path))
