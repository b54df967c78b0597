"""LlamaIndex ``ChatMessage`` <-> ``ContextRecord``, losslessly.

One message is one record: ``role`` is the message role, ``text_payload`` its text
(what is embedded and searched), and the whole message (every block and every
``additional_kwargs`` value, tool calls included) is kept as JSON in the record's
metadata under ``llama_index.message``. The first image block's bytes are lifted into
``binary_payload`` with the image's MIME type as the record's content type, so images
are stored as binary rather than as base64 text.

``additional_kwargs`` hold JSON values as they are; bytes, tuples and pydantic models
are tagged so that they come back as bytes, tuples and the same model class (a model
whose class is not importable comes back as a dict). Anything else is refused with an
:class:`InvalidRecordError` naming the offending key.

Reading never makes a session unreadable. A message stored by a LlamaIndex version that
knows a role or block type this one does not comes back with role ``user`` (the role
that grants the text no authority) and its unknown blocks as text blocks of their
``text`` (a block without one is left out); the stored record keeps the original
untouched, and nothing is added to ``additional_kwargs`` (LLM integrations send those
keys to the provider). A record written without a LlamaIndex message (by the core or
another adapter) is read as a message when its role is a chat role (``human`` and
``ai`` included) and skipped otherwise: it is not a chat message.
"""

from __future__ import annotations

import base64
import math
import sys
from collections.abc import Iterable, Mapping
from datetime import datetime
from io import IOBase
from typing import Any

from llama_index.core.base.llms.types import (
    AudioBlock,
    ChatMessage,
    DocumentBlock,
    ImageBlock,
    MessageRole,
    TextBlock,
    VideoBlock,
)
from llama_index.core.bridge.pydantic import BaseModel, ValidationError
from pydantic_core import PydanticSerializationError

from lance_context import ContextRecord, InvalidRecordError, UnsupportedContentError
from lance_context.adapters import canonical_base64, copy_model, derived_values, sniff_mime

from ._common import FRAMEWORK, FRAMEWORK_KEY

__all__ = [
    "CHAT_ROLES",
    "MESSAGE_KEY",
    "is_system",
    "is_tool_result",
    "message_text",
    "message_list",
    "message_to_record",
    "record_to_message",
    "records_for",
]

MESSAGE_KEY = "llama_index.message"
_FORMAT = 1
_TAG = "__lance_context__"
_BLOCK_CLASSES: dict[str, type[BaseModel]] = {
    "image": ImageBlock,
    "audio": AudioBlock,
    "video": VideoBlock,
    "document": DocumentBlock,
}
#: The field of each media block that may hold the data itself (bytes or a file object).
_DATA_FIELDS: tuple[tuple[type[BaseModel], str], ...] = (
    (ImageBlock, "image"),
    (AudioBlock, "audio"),
    (VideoBlock, "video"),
    (DocumentBlock, "data"),
)
_ROLE_ALIASES = {"human": "user", "ai": "assistant"}
#: Roles whose records read as chat messages without looking at them (see ``has_chat_role``).
CHAT_ROLES = frozenset(MessageRole._value2member_map_) | frozenset(_ROLE_ALIASES)
_TOOL_RESULT_ROLES = frozenset({MessageRole.TOOL, MessageRole.FUNCTION})
_SYSTEM_ROLES = frozenset({MessageRole.SYSTEM, MessageRole.DEVELOPER})


def is_tool_result(message: ChatMessage) -> bool:
    """Whether a message answers a tool call (it must follow that call)."""
    return message.role in _TOOL_RESULT_ROLES


def is_system(message: ChatMessage) -> bool:
    """Whether a message is a system (or developer) instruction."""
    return message.role in _SYSTEM_ROLES


def message_text(message: ChatMessage) -> str | None:
    """The text of a message: its text blocks joined by newlines, or None."""
    texts = [block.text for block in message.blocks if isinstance(block, TextBlock)]
    return "\n".join(texts) if texts else None


# ---------------------------------------------------------------------- kwargs
def _encode(value: object, path: str) -> Any:
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidRecordError(f"{path} is {value!r}: NaN and infinity cannot be stored")
        return value
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {_TAG: "bytes", "data": base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, Mapping):
        items: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise InvalidRecordError(f"{path} has a key {key!r} that is not a str; use string keys")
            items[key] = _encode(item, f"{path}[{key!r}]")
        return {_TAG: "dict", "items": items} if _TAG in items else items
    if isinstance(value, list):
        return [_encode(item, f"{path}[{i}]") for i, item in enumerate(value)]
    if isinstance(value, tuple):
        return {_TAG: "tuple", "items": [_encode(item, f"{path}[{i}]") for i, item in enumerate(value)]}
    if isinstance(value, BaseModel):
        cls = type(value)
        try:
            data = value.model_dump(mode="json")
        except (PydanticSerializationError, TypeError, ValueError) as exc:
            raise InvalidRecordError(f"{path}: {cls.__name__} cannot be serialized: {exc}") from exc
        return {_TAG: "model", "class": f"{cls.__module__}:{cls.__qualname__}", "data": _encode(data, path)}
    raise InvalidRecordError(
        f"{path} holds a {type(value).__name__}, which cannot be stored; keep additional_kwargs to "
        "JSON values, bytes, tuples or pydantic models"
    )


def _model_class(name: str) -> type[BaseModel] | None:
    """The pydantic class named ``module:qualname``, if that module is already imported.

    Nothing is imported on the strength of stored data.
    """
    module_name, _, qualname = name.partition(":")
    target: Any = sys.modules.get(module_name)
    for part in qualname.split("."):
        target = getattr(target, part, None)
    if isinstance(target, type) and issubclass(target, BaseModel):
        return target
    return None


def _decode(value: Any) -> Any:
    if isinstance(value, list):
        return [_decode(item) for item in value]
    if not isinstance(value, dict):
        return value
    tag = value.get(_TAG)
    if tag is None:
        return {key: _decode(item) for key, item in value.items()}
    if tag == "bytes":
        return base64.b64decode(value["data"])
    if tag == "tuple":
        return tuple(_decode(item) for item in value["items"])
    if tag == "dict":
        return {key: _decode(item) for key, item in value["items"].items()}
    if tag != "model" or "data" not in value:  # a tag of a newer format: kept as the dict it is
        return {key: _decode(item) for key, item in value.items()}
    data = _decode(value["data"])
    cls = _model_class(str(value.get("class", "")))
    if cls is not None:
        try:
            return cls.model_validate(data)
        except ValidationError:
            return data
    return data


# ---------------------------------------------------------------------- blocks
def _image_bytes(block: ImageBlock) -> bytes | None:
    """The raw image bytes of a block that holds them inline (not a path, URL or stream)."""
    image = block.image
    if isinstance(image, bytes) and image:
        decoded = canonical_base64(image)  # LlamaIndex keeps inline images base64-encoded
        return image if decoded is None else decoded
    return None


def _dump_block(block: Any, index: int) -> tuple[dict[str, Any], bytes | None]:
    """The block as JSON, and what its file object held (read once), if it holds one."""
    # A media block may hold a file object: store what it reads, base64-encoded as
    # LlamaIndex keeps inline data (its own dump would give raw bytes, not JSON).
    field = next((name for cls, name in _DATA_FIELDS if isinstance(block, cls)), None)
    stream = getattr(block, field) if field else None
    raw = None
    if isinstance(stream, IOBase):
        stream.seek(0)
        raw = stream.read()
        if not isinstance(raw, bytes):
            raise InvalidRecordError(
                f"block {index} ({type(block).__name__}) holds a text stream; open the file in binary mode"
            )
        block = block.model_copy(update={field: base64.b64encode(raw)})
    try:
        dumped: dict[str, Any] = block.model_dump(mode="json")
    except (PydanticSerializationError, TypeError, ValueError) as exc:
        raise InvalidRecordError(
            f"block {index} ({type(block).__name__}) cannot be serialized: {exc}"
        ) from exc
    return dumped, raw


def _role(message: ChatMessage) -> str:
    try:
        return MessageRole(message.role).value
    except ValueError as exc:
        roles = ", ".join(r.value for r in MessageRole)
        raise InvalidRecordError(f"unknown message role {message.role!r}; use one of {roles}") from exc


def message_to_record(
    message: object,
    run_id: str,
    *,
    created_at: datetime | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> ContextRecord:
    """Build the record that stores one ``ChatMessage``.

    Raises:
        UnsupportedContentError: ``message`` is not a ``ChatMessage``.
        InvalidRecordError: An unknown role, or content that cannot be serialized.
    """
    if not isinstance(message, ChatMessage):
        raise UnsupportedContentError(
            f"expected a llama_index ChatMessage, got {type(message).__name__}; "
            "build one with ChatMessage(role=..., content=...)"
        )
    role = _role(message)
    blocks: list[dict[str, Any]] = []
    binary: bytes | None = None
    binary_block: int | None = None
    content_type = "text/plain"
    for index, block in enumerate(message.blocks):
        dumped, streamed = _dump_block(block, index)
        if binary is None and isinstance(block, ImageBlock):
            raw = streamed if streamed is not None else _image_bytes(block)
            if raw is not None:
                binary, binary_block = raw, index
                content_type = block.image_mimetype or sniff_mime(raw)
                dumped["image"] = None
        blocks.append(dumped)
    payload = {
        "format": _FORMAT,
        "role": role,
        "blocks": blocks,
        "additional_kwargs": _encode(message.additional_kwargs, "additional_kwargs"),
        "binary_block": binary_block,
    }
    fields: dict[str, Any] = {} if created_at is None else {"created_at": created_at}
    return ContextRecord(
        run_id=run_id,
        role=role,
        content_type=content_type,
        text_payload=message_text(message),
        binary_payload=binary,
        metadata={FRAMEWORK_KEY: FRAMEWORK, **dict(metadata or {}), MESSAGE_KEY: payload},
        **fields,
    )


def has_chat_role(role: str) -> bool:
    """Whether a record with this role reads as a chat message without looking at it.

    Every record this adapter writes has one; a record of another role is a message
    only when ``record_to_message`` makes one of it (a newer LlamaIndex's role).
    """
    return role in CHAT_ROLES


def _foreign_message(record: ContextRecord) -> ChatMessage | None:
    """A message for a record written by something else (another adapter, the core)."""
    role = _ROLE_ALIASES.get(record.role, record.role)
    if role not in MessageRole._value2member_map_:
        return None
    blocks: list[Any] = []
    if record.text_payload:
        blocks.append(TextBlock(text=record.text_payload))
    if record.binary_payload is not None and record.content_type.startswith("image/"):
        blocks.append(ImageBlock(image=record.binary_payload, image_mimetype=record.content_type))
    return ChatMessage(role=MessageRole(role), blocks=blocks)


def _validate_blocks(blocks: list[Any]) -> list[Any]:
    """Validate stored blocks.

    A media block that no longer validates (say, an image path that is gone) is rebuilt
    without validation, and a block of a type this LlamaIndex does not know becomes a
    text block of its ``text`` (or is left out), rather than making the whole session
    unreadable.
    """
    try:
        return list(ChatMessage.model_validate({"blocks": blocks}).blocks)
    except ValidationError:
        pass
    out: list[Any] = []
    for block in blocks:
        try:
            out.extend(ChatMessage.model_validate({"blocks": [block]}).blocks)
        except ValidationError:
            if not isinstance(block, dict):
                continue
            cls = _BLOCK_CLASSES.get(str(block.get("block_type")))
            if cls is not None:
                out.append(cls.model_construct(**block))
            elif isinstance(block.get("text"), str):
                out.append(TextBlock(text=block["text"]))
    return out


def _stored_role(value: object) -> MessageRole:
    """The role a stored message is read with: ``user`` for one this LlamaIndex does not know."""
    try:
        return MessageRole(value)
    except ValueError:
        return MessageRole.USER


def read_message(record: ContextRecord) -> ChatMessage | None:
    """``record_to_message`` for a record the store just read: rebuilt once per cached record.

    The rebuilt message is kept with the cached record (``derived_values``) and each call
    gets its own copy; a record that is not a message this adapter wrote is read afresh.
    """
    payload = record.metadata.get(MESSAGE_KEY)
    if not isinstance(payload, dict):
        return record_to_message(record)
    message = _kept(record, payload)
    return None if message is None else copy_model(message)


def shared_message(record: ContextRecord) -> ChatMessage | None:
    """The message kept with a cached record itself, for a reader that copies only what it returns.

    The message must not be changed or handed out: ``copy_model`` what leaves the adapter.
    """
    payload = record.metadata.get(MESSAGE_KEY)
    if not isinstance(payload, dict):
        return record_to_message(record)  # a record this adapter did not write: read afresh
    return _kept(record, payload)


def _kept(record: ContextRecord, payload: dict[str, Any]) -> ChatMessage | None:
    values = derived_values(record)
    found = values.get(_KEPT)
    if found is None or found[0] is not payload or found[1] is not record.binary_payload:
        found = values[_KEPT] = (payload, record.binary_payload, record_to_message(record))
    message: ChatMessage | None = found[2]
    return message


_KEPT = "llama_index.message"


def record_to_message(record: ContextRecord) -> ChatMessage | None:
    """The ``ChatMessage`` a record stores; None for a record that is not a chat message."""
    payload = record.metadata.get(MESSAGE_KEY)
    if not isinstance(payload, dict) or "blocks" not in payload:
        return _foreign_message(record)
    blocks = [dict(block) if isinstance(block, dict) else block for block in payload["blocks"] or ()]
    index = payload.get("binary_block")
    image = record.binary_payload
    if (
        isinstance(index, int)
        and image is not None
        and 0 <= index < len(blocks)
        and isinstance(blocks[index], dict)
    ):
        blocks[index]["image"] = base64.b64encode(image)
    message = ChatMessage(
        role=_stored_role(payload.get("role", record.role)), blocks=_validate_blocks(blocks)
    )
    # Set after validation: ChatMessage's validator would turn an "images" kwarg into
    # extra image blocks a second time.
    message.additional_kwargs = _decode(payload.get("additional_kwargs") or {})
    return message


def message_list(messages: object) -> list[Any]:
    """The messages of a list argument; a single message (or a string) is refused.

    Raises:
        UnsupportedContentError: ``messages`` is a single message, a string or not iterable.
    """
    if isinstance(messages, (ChatMessage, str, bytes)) or not isinstance(messages, Iterable):
        raise UnsupportedContentError(
            f"expected a list of llama_index ChatMessage, got {type(messages).__name__}; "
            "wrap a single message in a list"
        )
    return list(messages)


def records_for(
    messages: Iterable[object], run_id: str, metadata: Mapping[str, Any] | None = None
) -> list[ContextRecord]:
    """Records for messages, in order; every message is checked before anything is written."""
    return [message_to_record(m, run_id, metadata=metadata) for m in message_list(messages)]
