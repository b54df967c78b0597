"""LanceMemory's helpers over entries, ``(record id, message)`` pairs oldest first."""

from __future__ import annotations

from llama_index.core.base.llms.types import ChatMessage, MessageRole

from ._messages import is_system, message_text

__all__ = ["Entry", "conversational", "query_text", "turns"]

Entry = tuple[str, ChatMessage]  # (record id, message)


def turns(window: list[Entry]) -> bool:
    """Whether a window holds a message that is not a system one."""
    return any(not is_system(message) for _, message in window)


def conversational(window: list[Entry], first: list[Entry]) -> list[Entry]:
    """A window cut short starts on a user message, as LlamaIndex's ``ChatMemoryBuffer``'s.

    ``first``: the session's first two messages (to tell whether the window reaches back there).
    Only the session's own leading system message is stepped over: a window that starts
    on a later system message keeps what follows it, as ``ChatMemoryBuffer``'s does.
    """
    pinned = bool(window) and bool(first) and window[0][0] == first[0][0] and is_system(window[0][1])
    start = 1 if pinned else 0
    opening = next((key for key, message in first if not is_system(message)), None)
    if start >= len(window) or window[start][0] == opening:
        return window
    end = start
    while end < len(window) and window[end][1].role in (MessageRole.ASSISTANT, MessageRole.TOOL):
        end += 1
    return window[:start] + window[end:]


def query_text(input: str | ChatMessage | None, entries: list[Entry]) -> str | None:
    """The text recall looks for: the input's, or else the latest user message's."""
    if isinstance(input, ChatMessage):
        return message_text(input)
    if isinstance(input, str):
        return input or None
    for _, message in reversed(entries):
        if message.role == MessageRole.USER:
            return message_text(message)
    return None
