"""The adapters on an ``s3://`` store: the LangChain chat history (concurrent sessions,
hostile ids, exact round trips, isolation, reopening from the URI), a LangGraph graph's
checkpoints and a LlamaIndex memory, each reopened from the URI.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage

from lance_context import ContextStore, HashingEmbedder
from lance_context.langchain import LanceChatMessageHistory

from .report import TALLY

pytestmark = pytest.mark.reliability

SESSIONS = ["alice", "bob's \\ %_ chat", "'; DROP TABLE records; --", "🙂\x00\n"]


def _conversation(session: str, turns: int) -> list[BaseMessage]:
    messages: list[BaseMessage] = [SystemMessage(f"you help {session!r}")]
    for turn in range(turns):
        messages.append(HumanMessage(f"{session} asks question {turn}", id=f"{session}-h{turn}"))
        if turn % 3 == 2:
            call = {
                "name": "lookup",
                "args": {"q": session, "turn": turn},
                "id": f"call-{turn}",
                "type": "tool_call",
            }
            messages.append(AIMessage("", tool_calls=[call], id=f"{session}-c{turn}"))
            messages.append(
                ToolMessage(
                    f"result {turn} for {session}", tool_call_id=f"call-{turn}", id=f"{session}-t{turn}"
                )
            )
        messages.append(AIMessage(f"answer {turn} to {session}", id=f"{session}-a{turn}"))
    return messages


def _shape(messages: list[BaseMessage]) -> list[tuple[Any, ...]]:
    return [
        (m.type, m.content, m.id, getattr(m, "tool_calls", None), getattr(m, "tool_call_id", None))
        for m in messages
    ]


def test_langchain_chat_history_on_s3(s3_bucket: Any) -> None:
    uri, options = s3_bucket.uri("chat"), s3_bucket.storage_options
    store = ContextStore.open(uri, storage_options=options, embedder=HashingEmbedder(16))
    written = {session: _conversation(session, 6) for session in SESSIONS}

    def talk(session: str) -> None:  # one history object per thread, all on the shared store
        history = LanceChatMessageHistory(session, store=store)
        messages = written[session]
        for start in range(0, len(messages), 3):
            history.add_messages(messages[start : start + 3])

    threads = [threading.Thread(target=talk, args=(s,)) for s in SESSIONS]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    total = sum(len(m) for m in written.values())
    TALLY.add(writes_attempted=total, writes_committed=total)

    reopened = ContextStore.open(uri, storage_options=options, embedder=HashingEmbedder(16))
    for session in SESSIONS:
        for history in (
            LanceChatMessageHistory(session, store=store),
            LanceChatMessageHistory(session, store=reopened),
            LanceChatMessageHistory(session, uri=uri, storage_options=options, embedder=HashingEmbedder(16)),
        ):
            found = history.messages
            TALLY.add(leak_checks=1, leaks_found=sum(1 for m in found if m not in written[session]))
            assert _shape(found) == _shape(written[session])

    LanceChatMessageHistory(SESSIONS[1], store=store).clear()
    assert LanceChatMessageHistory(SESSIONS[1], store=store).messages == []
    for session in (SESSIONS[0], SESSIONS[2], SESSIONS[3]):
        assert _shape(LanceChatMessageHistory(session, store=store).messages) == _shape(written[session])


def test_langgraph_checkpointer_on_s3(s3_bucket: Any) -> None:
    from typing import TypedDict

    from langgraph.graph import END, START, StateGraph

    from lance_context.langgraph import LanceCheckpointSaver

    class State(TypedDict):
        turns: list[str]

    def step(state: State) -> State:
        return {"turns": [*state["turns"], f"turn {len(state['turns'])}"]}

    builder = StateGraph(State)
    builder.add_node("step", step)
    builder.add_edge(START, "step")
    builder.add_edge("step", END)
    uri, options = s3_bucket.uri("graph"), s3_bucket.storage_options
    threads = {"t1": {"configurable": {"thread_id": "t1"}}, "x'y": {"configurable": {"thread_id": "x'y"}}}

    from langgraph.checkpoint.memory import InMemorySaver

    reference = builder.compile(checkpointer=InMemorySaver())
    graph = builder.compile(checkpointer=LanceCheckpointSaver(uri=uri, storage_options=options))
    for config in threads.values():
        for compiled in (graph, reference):
            state: State = {"turns": []}
            for _ in range(3):
                state = compiled.invoke(state, config)  # type: ignore[assignment]

    reopened = builder.compile(checkpointer=LanceCheckpointSaver(uri=uri, storage_options=options))
    for config in threads.values():
        assert reopened.get_state(config).values == {"turns": ["turn 0", "turn 1", "turn 2"]}
        ours = [s.values for s in reopened.get_state_history(config)]
        assert ours == [s.values for s in reference.get_state_history(config)]
        TALLY.add(leak_checks=1)
    assert reopened.get_state({"configurable": {"thread_id": "other"}}).values == {}


def test_llama_index_memory_on_s3(s3_bucket: Any) -> None:
    from llama_index.core.base.llms.types import ChatMessage

    from lance_context.llama_index import LanceMemory

    uri, options = s3_bucket.uri("memory"), s3_bucket.storage_options
    written = {
        session: [ChatMessage(role="user", content=f"{session} says {i}") for i in range(4)]
        for session in SESSIONS
    }
    for session, messages in written.items():
        memory = LanceMemory.from_defaults(
            session_id=session, uri=uri, storage_options=options, embedder=HashingEmbedder(16)
        )
        memory.put_messages(messages)
    TALLY.add(writes_attempted=len(SESSIONS) * 4, writes_committed=len(SESSIONS) * 4)
    for session, messages in written.items():
        again = LanceMemory.from_defaults(
            session_id=session, uri=uri, storage_options=options, embedder=HashingEmbedder(16)
        )
        found = again.get_all()
        TALLY.add(leak_checks=1, leaks_found=sum(1 for m in found if m not in messages))
        assert [m.content for m in found] == [m.content for m in messages]
