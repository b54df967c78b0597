"""A deterministic, network-free tool-calling chat model for the LangGraph scenarios.

Not a scenario itself: the scenarios import it. The model answers with a function of
the messages it receives (so what it says proves what it saw), supports
``bind_tools`` (which ``create_agent`` calls) and records every call's input.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import Field

_ids = itertools.count(1)


def tool_call(name: str, **args: Any) -> AIMessage:
    """An assistant message asking for one tool call."""
    return AIMessage(
        "", tool_calls=[{"name": name, "args": args, "id": f"call_{next(_ids)}", "type": "tool_call"}]
    )


def last_human(messages: Sequence[BaseMessage]) -> str:
    """The text of the latest user message."""
    return next(m.text for m in reversed(messages) if isinstance(m, HumanMessage))


def humans(messages: Sequence[BaseMessage]) -> list[str]:
    """Every user message, oldest first."""
    return [m.text for m in messages if isinstance(m, HumanMessage)]


def tool_results(messages: Sequence[BaseMessage]) -> list[str]:
    """Every tool result, oldest first."""
    return [m.text for m in messages if isinstance(m, ToolMessage)]


class ScriptedChatModel(BaseChatModel):
    """A chat model whose reply is ``respond(messages)``."""

    respond: Callable[[list[BaseMessage]], AIMessage]
    calls: list[list[BaseMessage]] = Field(default_factory=list)

    @property
    def _llm_type(self) -> str:
        return "scripted"

    def _generate(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kw: Any
    ) -> ChatResult:
        self.calls.append(list(messages))
        return ChatResult(generations=[ChatGeneration(message=self.respond(list(messages)))])

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> ScriptedChatModel:  # type: ignore[override]
        return self
