"""Scenario 2: a tool-calling turn stored and replayed losslessly, then trimmed.

A fake chat model asks for two tools; the tools run (one returns an artifact); the
whole exchange goes into LanceChatMessageHistory. A fresh store handle reads it back
equal, message for message, and token windows never split the tool exchange.

    python integrations/langchain/tool_calling_roundtrip.py [STORE_PATH]
"""

from __future__ import annotations

import os
import sys
import tempfile

from langchain_core.language_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.messages.utils import count_tokens_approximately
from langchain_core.tools import tool

from lance_context import ContextStore, HashingEmbedder
from lance_context.langchain import LanceChatMessageHistory

SESSION = "tool-session"


@tool
def get_weather(city: str) -> str:
    """Current weather for a city."""
    return f"{city}: 18C, light rain"


@tool(response_format="content_and_artifact")
def search_flights(origin: str, destination: str) -> tuple[str, dict[str, object]]:
    """Flights between two airports; the raw rows are the artifact."""
    rows = [{"flight": "AF1234", "departs": "09:10", "price_eur": 129}, {"flight": "KL998", "price_eur": 142}]
    return f"{len(rows)} flights from {origin} to {destination}", {"rows": rows}


TOOLS = {t.name: t for t in (get_weather, search_flights)}


def run_conversation(history: LanceChatMessageHistory) -> list[BaseMessage]:
    model = GenericFakeChatModel(
        messages=iter(
            [
                AIMessage(
                    content="Let me check the weather and flights.",
                    tool_calls=[
                        {"name": "get_weather", "args": {"city": "Lisbon"}, "id": "call_weather"},
                        {
                            "name": "search_flights",
                            "args": {"origin": "CDG", "destination": "LIS"},
                            "id": "call_flights",
                        },
                    ],
                    usage_metadata={"input_tokens": 52, "output_tokens": 31, "total_tokens": 83},
                    response_metadata={"model_name": "fake-tool-model", "finish_reason": "tool_calls"},
                    id="run-1",
                ),
                "Lisbon is rainy (18C); AF1234 at 09:10 is the cheapest flight at 129 EUR.",
            ]
        )
    )
    history.add_messages(
        [SystemMessage("You plan trips."), HumanMessage("Weather in Lisbon, and flights from Paris?")]
    )
    ai = model.invoke(history.messages)
    history.add_message(ai)
    assert isinstance(ai, AIMessage)
    history.add_messages([TOOLS[call["name"]].invoke(call) for call in ai.tool_calls])
    history.add_message(model.invoke(history.messages))
    history.add_messages([HumanMessage("Thanks!"), AIMessage("Have a good trip.")])
    return history.messages


def window_ok(window: list[BaseMessage]) -> bool:
    body = window[1:] if window and isinstance(window[0], SystemMessage) else window
    if body and isinstance(body[0], ToolMessage):
        return False
    for i, message in enumerate(window):
        if isinstance(message, AIMessage) and message.tool_calls:
            answered = [m.tool_call_id for m in window[i + 1 :] if isinstance(m, ToolMessage)]
            if [c["id"] for c in message.tool_calls] != answered[: len(message.tool_calls)]:
                return False
    return True


def main(store_path: str) -> int:
    written = run_conversation(LanceChatMessageHistory(SESSION, uri=store_path, embedder=HashingEmbedder(64)))
    fresh = ContextStore.open(store_path, embedder=HashingEmbedder(64))  # a new handle: nothing cached
    replayed = LanceChatMessageHistory(SESSION, store=fresh).messages
    print(f"stored {len(written)} messages; replayed {len(replayed)} from a fresh store handle:")
    for message in replayed:
        extra = ""
        if isinstance(message, AIMessage) and message.tool_calls:
            extra = f" tool_calls={[c['name'] for c in message.tool_calls]} usage={message.usage_metadata}"
        if isinstance(message, ToolMessage):
            extra = f" tool_call_id={message.tool_call_id} artifact={message.artifact}"
        print(f"  {message.type:>6}: {message.text[:60]!r}{extra}")
    lossless = replayed == written
    print(
        f"{'OK' if lossless else 'FAIL'}: replay is lossless (==), tool_calls, usage and artifacts included"
    )

    history = LanceChatMessageHistory(SESSION, store=fresh)
    total = count_tokens_approximately(replayed)
    all_ok = lossless
    for budget in (total, total - 10, 120, 40, 20):
        window = history.get_messages(max_tokens=budget)
        ok = window_ok(window) and count_tokens_approximately(window) <= budget
        all_ok &= ok
        print(f"{'OK' if ok else 'FAIL'}: max_tokens={budget:>3} -> {[m.type for m in window]}")
    whole = history.get_messages(max_tokens=total - 10)
    kept = [m.type for m in whole] == ["system", "ai", "tool", "tool", "ai", "human", "ai"]
    print(
        f"{'OK' if kept else 'FAIL'}: just under the total, the oldest question goes, the tool exchange stays"
    )
    trimmed = history.get_messages(max_tokens=120)
    dropped = [m.type for m in trimmed] == ["system", "ai", "human", "ai"]
    print(f"{'OK' if dropped else 'FAIL'}: at 120 tokens the tool exchange is dropped as a unit, not cut")
    return 0 if all_ok and kept and dropped else 1


if __name__ == "__main__":
    path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(tempfile.mkdtemp(), "tools.lance")
    if os.path.exists(path):  # a second run would find the first run's records and branches
        sys.exit(f"{path} already exists: give a new STORE_PATH (the scenario builds its store from scratch)")
    sys.exit(main(path))
