"""Token windows over a conversation, shared by every chat adapter.

A window keeps the newest messages that fit a token budget without breaking a tool
exchange: an assistant message that calls tools and the tool results answering it are
kept or dropped together, and a window never starts on a tool result. A leading system
message can be pinned first.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

__all__ = ["fit_window", "group_exchanges", "newest_window"]

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


def newest_window(
    read_newest: Callable[[int], tuple[list[M], bool]],
    fit: Callable[[list[M]], list[M]],
    *,
    is_tool_result: Callable[[M], bool],
    pinned: Sequence[M] = (),
    chunk: int = 40,
) -> list[M]:
    """A window fitted to the newest messages, reading only as many as it needs.

    Args:
        read_newest: Returns the newest ``n`` messages (oldest first, without the pinned
            one) and whether they reach back to the conversation's start.
        fit: Fits a window to a list of messages (``pinned`` first, when given).
        is_tool_result: Whether a message is a tool result.
        pinned: A leading message read separately (the conversation's system message).
        chunk: How many messages to read first; each further read takes four times more.

    Returns:
        The window ``fit`` gives for the whole conversation, read a chunk at a time
        until the window stops short of the chunk's start (a dangling tool result at
        the start does not count as room left).

    Raises:
        ValueError: ``chunk`` is not a positive integer (no read would ever grow).
    """
    if isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 1:
        raise ValueError(f"chunk must be a positive integer, got {chunk!r}")
    while True:
        body, complete = read_newest(chunk)
        window = fit([*pinned, *body])
        leading = 0
        while leading < len(body) and is_tool_result(body[leading]):
            leading += 1
        shown = len(window) - (1 if pinned and window and window[0] is pinned[0] else 0)
        if complete or shown < len(body) - leading:
            return window
        chunk *= 4
