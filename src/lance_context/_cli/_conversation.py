"""A session's records as a person reads them: turns, tool calls folded, binaries summarised.

Records are what the store holds; a *turn* is what the command line and the inspector
show. Adapters store messages in their own shape, so tool calls are recognised in the
forms they use:

- LangChain: ``metadata.langchain_message.data.tool_calls`` on an AI message, and
  ``tool_call_id`` on the tool message answering it; extra images of a message are
  ``attachment`` records linked to it.
- LlamaIndex: OpenAI-style ``additional_kwargs.tool_calls`` (``function.name`` and
  ``.arguments``) and ``additional_kwargs.tool_call_id``.
- Records written through the core: the same OpenAI or LangChain shapes directly in
  ``metadata`` (``tool_calls`` / ``tool_call_id``).

A tool result whose call is on the same page is folded under that call; otherwise it
stays a turn of its own, marked as a tool result.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from lance_context import ContextRecord, ContextStore
from lance_context.adapters import namespace_of

__all__ = [
    "Binary",
    "ToolCall",
    "Turn",
    "build_turns",
    "diff_groups",
    "human_bytes",
    "session_kind",
    "session_order",
    "short",
]

#: Raster formats a browser may show inline (SVG can carry script, so it is a download).
INLINE_IMAGES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp", "image/bmp"})
_LANGCHAIN = "langchain_message"
_LLAMA_INDEX = "llama_index.message"
_ATTACHMENT_OF = "langchain_attachment_of"


def session_order(store: ContextStore, run_ids: Iterable[str]) -> dict[str, list[str]]:
    """Record ids of each session in append order (to place a search hit in its conversation).

    Reads each session's outline (ids and order only, no payloads).
    """
    return {run_id: store.outline(run_id).table.column("id").to_pylist() for run_id in sorted(set(run_ids))}


def session_kind(run_id: str) -> str:
    """What a person calls a session: its adapter's label (``LangGraph thread``) or ``session``."""
    namespace = namespace_of(run_id)[0]
    return namespace.label if namespace is not None else "session"


def human_bytes(size: int) -> str:
    """``71 B``, ``1.2 kB``, ``3.4 MB``: sizes as a person reads them."""
    value = float(size)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{size} B"


def short(text: str, limit: int = 120) -> str:
    """``text`` on one line, cut to ``limit`` characters with an ellipsis."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


@dataclass(frozen=True)
class Binary:
    """A binary payload, described rather than shown.

    Attributes:
        record_id: The record holding it (the inspector serves it from there).
        content_type: Its MIME type.
        size: Its size in bytes.
        width: Image width in pixels, when it is an image that could be read.
        height: Image height in pixels.
    """

    record_id: str
    content_type: str
    size: int
    width: int | None = None
    height: int | None = None

    @property
    def inline(self) -> bool:
        """Whether a browser may show it as an image."""
        return self.content_type.split(";")[0].strip().lower() in INLINE_IMAGES

    def summary(self) -> str:
        """``<image/png 2x2, 71 B>``."""
        dims = f" {self.width}x{self.height}" if self.width and self.height else ""
        return f"<{self.content_type}{dims}, {human_bytes(self.size)}>"


def _image_size(data: bytes) -> tuple[int | None, int | None]:
    try:
        from PIL import Image
    except ImportError:
        if data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) >= 24:
            return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
        return None, None
    try:
        with Image.open(io.BytesIO(data)) as image:  # reads the header only
            return int(image.width), int(image.height)
    except Exception:
        return None, None


def _binary(record: ContextRecord) -> Binary | None:
    data = record.binary_payload
    if data is None:
        return None
    width = height = None
    if record.content_type.startswith("image/"):
        width, height = _image_size(data)
    return Binary(record.id, record.content_type, len(data), width, height)


@dataclass
class ToolCall:
    """A tool call made in a turn, with its result when it is known.

    Attributes:
        name: The tool's name.
        arguments: Its arguments as compact JSON text.
        call_id: The id that links the call to its result.
        result: The turn holding the tool's answer, once folded in.
    """

    name: str
    arguments: str
    call_id: str | None = None
    result: Turn | None = None


@dataclass
class Turn:
    """One message (or other record) of a conversation, ready to show.

    Attributes:
        record_id: The record's id.
        run_id: Its session.
        role: Who produced it.
        created_at: When.
        position: Its index in the session (0-based), when known.
        text: The text to show (JSON content pretty-printed), or None.
        content_type: The record's MIME type.
        binaries: Binary payloads of the message (attachments included).
        tool_calls: Tool calls it made, with their results folded in.
        tool_call_id: For a tool result left unfolded: the call it answers.
        tool_name: For a tool result: the tool that answered.
        metadata: The record's metadata, shown on demand.
    """

    record_id: str
    run_id: str
    role: str
    created_at: datetime
    position: int | None = None
    text: str | None = None
    content_type: str = "text/plain"
    binaries: list[Binary] = field(default_factory=list)
    tool_calls: list[ToolCall] = field(default_factory=list)
    tool_call_id: str | None = None
    tool_name: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """A JSON-able description (the ``--json`` output of ``show``)."""
        return {
            "id": self.record_id,
            "run_id": self.run_id,
            "role": self.role,
            "created_at": self.created_at.isoformat(),
            "position": self.position,
            "content_type": self.content_type,
            "text": self.text,
            "binaries": [
                {
                    "content_type": b.content_type,
                    "bytes": b.size,
                    "width": b.width,
                    "height": b.height,
                    "summary": b.summary(),
                }
                for b in self.binaries
            ],
            "tool_calls": [
                {
                    "name": c.name,
                    "arguments": c.arguments,
                    "id": c.call_id,
                    "result": None if c.result is None else c.result.to_json(),
                }
                for c in self.tool_calls
            ],
            "tool_call_id": self.tool_call_id,
            "metadata": self.metadata,
        }


def _dict(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _compact(value: object) -> str:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return str(value)
    return json.dumps(value, ensure_ascii=False, separators=(", ", ": "), default=str)


def _calls(raw: object) -> list[ToolCall]:
    calls = []
    for item in raw if isinstance(raw, list) else []:
        call = _dict(item)
        function = _dict(call.get("function"))
        name = call.get("name") or function.get("name") or call.get("tool_name") or "tool"
        arguments = call.get("args", function.get("arguments", call.get("tool_kwargs", {})))
        call_id = call.get("id") or call.get("tool_call_id")
        calls.append(ToolCall(str(name), _compact(arguments), None if call_id is None else str(call_id)))
    return calls


def _message_fields(metadata: Mapping[str, Any]) -> Mapping[str, Any]:
    """The adapter's message fields where tool calls live (or the metadata itself)."""
    langchain = _dict(_dict(metadata.get(_LANGCHAIN)).get("data"))
    if langchain:
        return langchain
    llama = _dict(_dict(metadata.get(_LLAMA_INDEX)).get("additional_kwargs"))
    return llama or metadata


def _text(record: ContextRecord) -> str | None:
    text = record.text_payload
    if text is not None and record.content_type.split(";")[0].strip() == "application/json":
        try:
            return json.dumps(json.loads(text), ensure_ascii=False, indent=2)
        except ValueError:
            return text
    return text


def _checkpoint_text(record: ContextRecord) -> str | None:
    """A LangGraph checkpoint or pending write record, in words."""
    meta = record.metadata
    checkpoint = str(meta.get("checkpoint_id", ""))
    if record.role == "checkpoint":
        info = meta.get("checkpoint_metadata")
        step = info.get("step") if isinstance(info, dict) else None
        source = info.get("source") if isinstance(info, dict) else None
        return f"{checkpoint} (step {step}, {source})"
    if record.role == "checkpoint_write":
        return f"to {meta.get('channel')!s} for checkpoint {checkpoint}"
    return None


#: What the LangGraph store writes for an item (its own record, then one per further indexed text).
_STORE_ITEM = "application/vnd.langgraph.store-item+json"


def _store_item_text(record: ContextRecord) -> str | None:
    """A LangGraph store item as ``key = value`` (its indexed text is only the search's)."""
    if record.content_type.split(";")[0].strip() != _STORE_ITEM:
        return None
    key = record.metadata.get("key")
    if record.role != "store_item":  # a further indexed text of the item
        return f"{key} · {record.metadata.get('path')}: {record.text_payload or ''}"
    value = json.dumps(record.metadata.get("value"), ensure_ascii=False, indent=2)
    return f"{key} = {value}"


def _turn_text(record: ContextRecord) -> str | None:
    """What a turn says ('' for an empty message; None when it has no text at all)."""
    for text in (_store_item_text(record), _text(record), _checkpoint_text(record)):
        if text is not None:
            return text
    return None


def _turn(record: ContextRecord, position: int | None) -> Turn:
    fields = _message_fields(record.metadata)
    binary = _binary(record)
    result_of = fields.get("tool_call_id")
    return Turn(
        record_id=record.id,
        run_id=record.run_id,
        role=record.role,
        created_at=record.created_at,
        position=position,
        text=_turn_text(record),
        content_type=record.content_type,
        binaries=[binary] if binary is not None else [],
        tool_calls=_calls(fields.get("tool_calls")),
        tool_call_id=None if result_of is None else str(result_of),
        tool_name=None if fields.get("name") is None else str(fields.get("name")),
        metadata=dict(record.metadata),
    )


def build_turns(records: Sequence[ContextRecord], first_position: int | None = 0) -> list[Turn]:
    """Turns of consecutive records of one session (``first_position``: the first one's index).

    Attachments join the message they belong to; tool results join the call they
    answer when it is among ``records``.
    """
    turns: list[Turn] = []
    by_id: dict[str, Turn] = {}
    calls: dict[str, ToolCall] = {}
    for offset, record in enumerate(records):
        position = None if first_position is None else first_position + offset
        owner = by_id.get(str(record.metadata.get(_ATTACHMENT_OF, "")))
        binary = _binary(record)
        if owner is not None and binary is not None and record.role == "attachment":
            owner.binaries.append(binary)
            continue
        turn = _turn(record, position)
        call = calls.get(turn.tool_call_id or "") if turn.tool_call_id else None
        if call is not None and call.result is None:
            call.result = turn
            continue
        turns.append(turn)
        by_id[turn.record_id] = turn
        for made in turn.tool_calls:
            if made.call_id:
                calls[made.call_id] = made
    return turns


def diff_groups(
    added: list[ContextRecord], removed: list[ContextRecord]
) -> dict[str, dict[str, list[ContextRecord]]]:
    """Added and removed records per session, sessions sorted."""
    groups: dict[str, dict[str, list[ContextRecord]]] = {}
    for name, records in (("added", added), ("removed", removed)):
        for record in records:
            groups.setdefault(record.run_id, {"added": [], "removed": []})[name].append(record)
    return dict(sorted(groups.items()))
