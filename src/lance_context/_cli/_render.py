"""Turns, diffs and hits as terminal text (Rich renderables built from plain strings)."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterator, Sequence

from rich.cells import cell_len
from rich.console import Group, RenderableType
from rich.padding import Padding
from rich.text import Text

from lance_context import ContextRecord

from ._common import safe, styled, when
from ._conversation import Turn, build_turns, short
from ._refs import NotFound

__all__ = ["ROLE_STYLES", "find_session", "plural", "record_line", "render_turns"]

ROLE_STYLES = {
    "user": "bold cyan",
    "human": "bold cyan",
    "assistant": "bold green",
    "ai": "bold green",
    "system": "bold yellow",
    "tool": "bold magenta",
}


def _header(turn: Turn, label: str | None = None) -> Text:
    text = Text()
    text.append(safe(label or turn.role), style=ROLE_STYLES.get(turn.role, "bold"))
    position = "" if turn.position is None else f"  #{turn.position + 1}"
    stamp = when(turn.created_at) + ("" if turn.created_at is None else " UTC")  # as the tables say
    text.append(f"  {stamp}{position}", style="dim")
    return text


def _body(turn: Turn) -> Iterator[RenderableType]:
    if turn.text:
        yield Padding(styled(turn.text), (0, 0, 0, 2), expand=False)
    for binary in turn.binaries:
        yield Padding(styled(binary.summary(), "cyan"), (0, 0, 0, 2), expand=False)
    for call in turn.tool_calls:
        line = Text("  → ", style="magenta")
        line.append(safe(f"{call.name}({call.arguments})"), style="magenta")
        yield line
        if call.result is not None:
            answer = call.result.text or "; ".join(b.summary() for b in call.result.binaries) or "(empty)"
            yield Padding(styled("← " + answer), (0, 0, 0, 4), expand=False)


def render_turns(turns: list[Turn]) -> Group:
    """A conversation, one block per turn, tool results under their calls."""
    blocks: list[RenderableType] = []
    for turn in turns:
        label = None
        if turn.tool_call_id is not None:
            label = f"{turn.role} result" + (f" of {turn.tool_name}" if turn.tool_name else "")
        blocks.append(_header(turn, label))
        blocks.extend(_body(turn))
        blocks.append(Text(""))
    return Group(*blocks)


def heading(parts: Sequence[str], style: str, width: int) -> Text:
    """``parts`` joined by `` · `` on a line of their own, broken between parts, never inside one.

    In a narrow terminal ``memory.lance · branch main · 20 versions`` becomes two lines ending
    and starting at a separator, rather than leaving ``versions`` alone on the next line; a
    part wider than the terminal still folds.
    """
    lines: list[str] = []
    for part in parts:
        if lines and cell_len(lines[-1]) + 3 + cell_len(part) <= width:
            lines[-1] += f" · {part}"
        else:
            if lines:
                lines[-1] += " ·"
            lines.append(part)
    return styled("\n".join(lines), style)


def plural(count: int, word: str) -> str:
    """``1 session``, ``2 sessions``, ``3 LangChain chat histories``, ``11,450 versions``."""
    if count == 1:
        return f"{count} {word}"
    if word.endswith("y") and not word.endswith(("ay", "ey", "oy")):
        return f"{count:,} {word[:-1]}ies"
    return f"{count:,} {word}s"


def record_line(record: ContextRecord, mark: str, style: str, width: int = 120) -> Text:
    """``+ human  Where should I travel?`` for a diff, on one line of at most ``width`` cells."""
    turn = build_turns([record], None)[0] if record.role != "attachment" else None
    content = ""
    if turn is not None:
        content = turn.text or " ".join(f"{c.name}({c.arguments})" for c in turn.tool_calls)
    if not content:
        binary = (
            turn.binaries[0].summary() if turn is not None and turn.binaries else f"<{record.content_type}>"
        )
        content = binary
    line = Text(f"  {mark} ", style=style)
    line.append(f"{safe(record.role):<10} ", style=style + " bold")  # padded as shown
    line.append(safe(short(content, 100)), style=style)
    line.truncate(max(width, 40), overflow="ellipsis")  # wide characters count twice
    return line


def find_session(run_ids: list[str], name: str) -> str:
    """The run id ``name`` means: itself, or the one session whose adapter key it is.

    Raises:
        NotFound: No such session, or a key several adapters use.
    """
    from lance_context.adapters import namespace_of

    if name in run_ids:
        return name
    # "été" typed (composed) names a session stored decomposed: they print the same
    wanted = unicodedata.normalize("NFC", name)
    matches = [run_id for run_id in run_ids if unicodedata.normalize("NFC", run_id) == wanted]
    if not matches:  # only adapters' sessions are named by their key; a core session by its run id
        keys = {
            run_id: unicodedata.normalize("NFC", key)
            for run_id in run_ids
            for space, key in [namespace_of(run_id)]
            if space is not None
        }
        matches = [run_id for run_id, key in keys.items() if key == wanted]
        if not matches:  # a key inside an adapter's scope: "<scope>:<key>"
            matches = [run_id for run_id, key in keys.items() if key.rsplit(":", 1)[-1] == wanted]
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise NotFound(f"{name!r} names several sessions: {safe(', '.join(matches))}; give the full run id")
    raise NotFound(f"no session {name!r} in this version (lance-context sessions URI lists them)")
