"""The LangChain chat history on an ``s3://`` store: concurrent sessions, hostile ids,
exact round trips, isolation, and reopening from the URI.
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
