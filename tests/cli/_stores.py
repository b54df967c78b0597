"""A store with every kind of session the command line and the inspector show.

One LangChain chat history (text, an image, a tool call and its result), one LlamaIndex
chat store key, one LangGraph thread (two runs of a tiny graph), and core sessions
holding JSON, hostile text and many records; then a tag, a deletion and a branch.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, TypedDict

import PIL.Image
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages

from lance_context import ContextRecord, ContextStore, HashingEmbedder

HOSTILE = '<script>window.__pwned = 1</script> and <img src=x onerror="window.__pwned = 2"> \x1b[31mred [bold]x[/bold]'
LONG_SESSION = "notes:long"
LONG_RECORDS = 130


@dataclass(frozen=True)
class Built:
    """What a test needs to know about the store it got."""

    uri: str
    tagged: int  # version tagged "before-answer"
    answered: int  # version adding the final answer to the trip
    deleted: int  # version deleting the scratch session
    latest: int


def png(color: str = "teal") -> bytes:
    buffer = io.BytesIO()
    PIL.Image.new("RGB", (2, 2), color=color).save(buffer, format="PNG")
    return buffer.getvalue()


class State(TypedDict):
    messages: Annotated[list[Any], add_messages]
    turns: int


def _graph_thread(store: ContextStore) -> None:
    from lance_context.langgraph import LanceCheckpointSaver

    def bot(state: State) -> dict[str, Any]:
        return {
            "messages": [AIMessage(f"answer {state.get('turns', 0) + 1}")],
            "turns": state.get("turns", 0) + 1,
        }

    graph = StateGraph(State)
    graph.add_node("bot", bot)
    graph.add_edge(START, "bot")
    graph.add_edge("bot", END)
    app = graph.compile(checkpointer=LanceCheckpointSaver(store=store))
    config: Any = {"configurable": {"thread_id": "support-7"}}
    app.invoke({"messages": [HumanMessage("my order is late")]}, config)
    app.invoke({"messages": [HumanMessage("still late")]}, config)


def build_store(uri: str, storage_options: Mapping[str, str] | None = None) -> Built:
    from llama_index.core.llms import ChatMessage

    from lance_context.langchain import LanceChatMessageHistory
    from lance_context.llama_index import LanceChatStore

    store = ContextStore.open(uri, storage_options=storage_options, embedder=HashingEmbedder(32))
    image = base64.b64encode(png()).decode()
    history = LanceChatMessageHistory("trip", store=store)
    history.add_messages(
        [
            HumanMessage("Where should I travel in spring? I love cherry blossoms."),
            HumanMessage(
                content=[
                    {"type": "text", "text": "Here is the colour I like"},
                    {"type": "image", "base64": image, "mime_type": "image/png"},
                ]
            ),
        ]
    )
    history.add_messages(
        [
            AIMessage("", tool_calls=[{"name": "weather", "args": {"city": "Kyoto"}, "id": "call-1"}]),
            ToolMessage("Kyoto: 18C, sakura in full bloom", tool_call_id="call-1", name="weather"),
        ]
    )
    store.tag("before-answer")
    tagged = store.version()
    history.add_messages([AIMessage("Kyoto for the cherry blossoms, or Lisbon for mild weather.")])
    answered = store.version()
    chat = LanceChatStore(store=store)
    chat.add_message("user-42", ChatMessage(role="user", content="Remind me to buy peanuts"))
    chat.add_message("user-42", ChatMessage(role="assistant", content="Noted: peanuts."))
    store.add(
        [
            ContextRecord.from_content(
                {"tool": "calendar", "free": ["mon", "tue"]}, role="tool", run_id="notes:json"
            ),
            ContextRecord.from_content(HOSTILE, role="user", run_id="notes:hostile"),
            ContextRecord.from_content("scratch that", role="user", run_id="scratch"),
        ]
    )
    store.add(
        [
            ContextRecord.from_content(f"long note {i}", role="user", run_id=LONG_SESSION)
            for i in range(LONG_RECORDS)
        ]
    )
    deleted = store.delete(run_id="scratch")
    _graph_thread(store)
    what_if = store.branch("what-if", from_version="before-answer")
    LanceChatMessageHistory("trip", store=what_if).add_messages([AIMessage("Try Patagonia in October.")])
    return Built(uri=uri, tagged=tagged, answered=answered, deleted=deleted, latest=store.version())
