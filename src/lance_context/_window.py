"""Token windows over a conversation, shared by every chat adapter.

A window keeps the newest messages that fit a token budget without breaking a tool
exchange: an assistant message that calls tools and the tool results answering it are
kept or dropped together, and a window never starts on a tool result. A leading system
message can be pinned first.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

__all__ = ["fit_window", "group_exchanges"]

M = TypeVar("M")


def group_exchanges(
    messages: Sequence[M],
    is_tool_result: Callable[[M], bool],
) -> list[list[M]]:
    """Split messages into units: a message plus the tool results that follow it.

    Tool results with no preceding message (a dangling start) form no unit of their
    own: they are dropped, since no window may start on a tool result.
    """
    units: list[list[M]] = []
    for message in messages:
        if is_tool_result(message):
            if units:
                units[-1].append(message)
            continue
        units.append([message])
    return units


def fit_window(
    messages: Sequence[M],
    *,
    is_tool_result: Callable[[M], bool],
    max_tokens: int | None = None,
    token_count: Callable[[Sequence[M]], int] | None = None,
    last: int | None = None,
    pin_system: Callable[[M], bool] | None = None,
) -> list[M]:
    """The newest messages that fit, oldest first.

    Args:
        messages: The conversation, oldest first.
        is_tool_result: Whether a message is a tool result (it must follow its call).
        max_tokens: Token budget for the whole window (None: no budget).
        token_count: Counts the tokens of a list of messages (needed with max_tokens).
        last: At most this many messages (whole exchanges only).
        pin_system: Identifies a leading system message to keep first when it fits.

    Returns:
        The window; empty when not even the newest exchange fits.
    """
    if max_tokens is not None and token_count is None:
        raise ValueError("max_tokens needs a token_count function")
    pinned: list[M] = []
    rest = list(messages)
    if pin_system is not None and rest and pin_system(rest[0]):
        pinned, rest = [rest[0]], rest[1:]
    units = group_exchanges(rest, is_tool_result)
    budget = max_tokens
    if budget is not None and pinned:
        assert token_count is not None
        cost = token_count(pinned)
        if cost > budget:
            pinned = []
        else:
            budget -= cost
    chosen: list[list[M]] = []
    count = 0
    for unit in reversed(units):
        if last is not None and count + len(unit) > last:
            break
        if budget is not None:
            assert token_count is not None
            cost = token_count(unit)
            if cost > budget:
                break
            budget -= cost
        chosen.append(unit)
        count += len(unit)
    window = [m for unit in reversed(chosen) for m in unit]
    return pinned + window
