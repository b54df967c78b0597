"""LangChain messages to context records and back, losslessly.

A message is stored as one record: ``role`` is the message type, ``text_payload`` its
text (what is embedded and searched), and ``metadata["langchain_message"]`` the output
of :func:`langchain_core.messages.message_to_dict`, which keeps ``tool_calls``,
``usage_metadata``, ``artifact``, ids and list content.

Images in content blocks are not kept as base64 inside that JSON. Each one is lifted
out into a binary payload with its MIME type: the first image becomes the message
record's own ``binary_payload`` (its ``content_type`` is the image's MIME type), and
every further image gets an attachment record of the same session, linked both ways.
``metadata["langchain_images"]`` remembers where each image sat in the message and how
it was written (base64 text, raw bytes or a ``data:`` URL), so the block reads back
exactly as it was given.
"""

from __future__ import annotations

import base64
import copy
import json
import re
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from langchain_core.documents import Document
from langchain_core.load import dumpd, load
from langchain_core.messages import BaseMessage, message_to_dict, messages_from_dict

from lance_context import ContextRecord, InvalidRecordError, Relationship, UnsupportedContentError
from lance_context.adapters import canonical_base64, copy_tree, new_id, sniff_mime

from ._decoded import decoded

__all__ = [
    "ATTACHMENT_KEY",
    "ATTACHMENT_ROLE",
    "IMAGES_KEY",
    "MESSAGE_KEY",
    "attachment_ids",
    "decode_message",
    "decode_messages",
    "encode_message",
    "is_message_record",
]

MESSAGE_KEY = "langchain_message"
IMAGES_KEY = "langchain_images"
ATTACHMENT_KEY = "langchain_attachment_of"
ATTACHMENT_ROLE = "attachment"

Path = list[str | int]

_DATA_URL = re.compile(r"^data:([\w.+-]+/[\w.+-]+)((?:;[\w.+-]+=[\w.+-]+)*);base64,", re.ASCII)


@dataclass(frozen=True)
class _Image:
    """One image lifted out of a message: where it was and how it was written."""

    path: Path
    encoding: str  # "base64", "bytes" or "data_url"
    mime_type: str
    data: bytes
    prefix: str = ""  # the "data:...;base64," head of a data URL


def _mime(given: object, data: bytes) -> str:
    """The MIME type an image block names, or the one its bytes show when it names none.

    An empty or unencodable ``mime_type`` stays in the block as given; only the record's
    content type, which must be a non-empty string, comes from the bytes then.
    """
    if isinstance(given, str) and given:
        try:
            given.encode("utf-8")
        except UnicodeEncodeError:
            return sniff_mime(data)
        return given
    return sniff_mime(data)


def _image_block(block: Mapping[str, Any], path: Path) -> Iterator[_Image]:
    mime = block.get("mime_type")
    for key in ("base64", "data"):
        value = block.get(key)
        if isinstance(value, bytes):
            yield _Image([*path, key], "bytes", _mime(mime, value), value)
        elif isinstance(value, str) and (key == "base64" or block.get("source_type") == "base64"):
            data = canonical_base64(value)
            if data is not None:
                yield _Image([*path, key], "base64", _mime(mime, data), data)
    source = block.get("source")  # Anthropic-style {"source": {"type": "base64", ...}}
    if isinstance(source, Mapping) and source.get("type") == "base64" and isinstance(source.get("data"), str):
        data = canonical_base64(source["data"])
        if data is not None:
            yield _Image([*path, "source", "data"], "base64", _mime(source.get("media_type"), data), data)


def _data_url(url: object, path: Path) -> Iterator[_Image]:
    if not isinstance(url, str):
        return
    match = _DATA_URL.match(url)
    if match is None:
        return
    data = canonical_base64(url[match.end() :])
    if data is not None:
        yield _Image(path, "data_url", match.group(1), data, prefix=url[: match.end()])


def _find_images(node: object, path: Path) -> Iterator[_Image]:
    """Every liftable image in a content tree, depth first."""
    if isinstance(node, list):
        for index, item in enumerate(node):
            yield from _find_images(item, [*path, index])
        return
    if not isinstance(node, dict):
        return
    kind = node.get("type")
    if kind == "image":
        yield from _image_block(node, path)
        return
    if kind == "image_url":
        image_url = node.get("image_url")
        if isinstance(image_url, dict):
            yield from _data_url(image_url.get("url"), [*path, "image_url", "url"])
        else:
            yield from _data_url(image_url, [*path, "image_url"])
        return
    for key, value in node.items():
        if isinstance(value, (list, dict)):
            yield from _find_images(value, [*path, key])


def _set(tree: Any, path: Path, value: object) -> None:
    node = tree
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = value


def _restore(image: Mapping[str, Any], data: bytes) -> object:
    if image["encoding"] == "bytes":
        return data
    text = base64.b64encode(data).decode("ascii")
    return str(image.get("prefix", "")) + text if image["encoding"] == "data_url" else text


_SURROGATE = re.compile("[\ud800-\udfff]")


def _message_text(message: BaseMessage) -> str:
    """The searchable text of a message: a lone surrogate becomes U+FFFD (the message keeps it)."""
    return _SURROGATE.sub("\ufffd", str(message.text))


def _dumps(value: object) -> str:
    """JSON text storable as UTF-8, a lone surrogate kept as an escape that reads back as itself.

    Text extracted from PDFs can hold lone surrogates; LangChain's own histories keep them.

    Raises:
        TypeError: ``value`` holds something JSON cannot.
        ValueError: ``value`` holds NaN or an infinity.
    """
    text = json.dumps(value, ensure_ascii=False, allow_nan=False)
    return text if _SURROGATE.search(text) is None else json.dumps(value, allow_nan=False)


def _check_message(message: object, index: int) -> BaseMessage:
    if not isinstance(message, BaseMessage):
        raise UnsupportedContentError(
            f"message {index} is a {type(message).__name__}, not a LangChain BaseMessage; "
            "wrap text in HumanMessage/AIMessage before adding it"
        )
    return message


def _rebuild(payload: Mapping[str, Any]) -> BaseMessage:
    payload = dict(payload)
    if payload.pop(_ARTIFACT_KEY, None) == _DUMPD:
        data = payload["data"] = dict(payload["data"])
        # only Documents are built: a stored constructor of anything else is refused
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="The function `load` is in beta")
            data["artifact"] = load(data["artifact"], allowed_objects=[Document])
    return messages_from_dict([payload])[0]


#: Marks a message payload whose tool ``artifact`` is stored with LangChain's ``dumpd``.
_ARTIFACT_KEY = "lance_context_artifact"
_DUMPD = "langchain_dumpd"


def _holds_documents(value: object) -> bool:
    """Whether a tool artifact holds Documents (as a retriever tool's does), and nothing else built."""
    if isinstance(value, Document):
        return True
    if isinstance(value, (list, tuple)):
        return any(_holds_documents(v) for v in value)
    if isinstance(value, Mapping):
        return any(_holds_documents(v) for v in value.values())
    return False


def _message_payload(msg: BaseMessage) -> dict[str, Any]:
    """``message_to_dict`` of a message, its Documents in a tool artifact kept as Documents."""
    payload = copy.deepcopy(message_to_dict(msg))
    artifact = getattr(msg, "artifact", None)
    if _holds_documents(artifact):
        payload["data"]["artifact"] = dumpd(artifact)
        payload[_ARTIFACT_KEY] = _DUMPD
    return payload


def _stored_payload(msg: BaseMessage, index: int) -> tuple[dict[str, Any], list[_Image], str]:
    """A message's stored JSON (its images lifted out, as ``None``), checked to rebuild it exactly."""
    payload = _message_payload(msg)
    content = payload.get("data", {}).get("content")
    images = list(_find_images(content, ["data", "content"]))
    for image in images:
        _set(payload, image.path, None)
    try:
        text = _dumps(payload)
    except (TypeError, ValueError) as exc:
        raise InvalidRecordError(
            f"message {index} ({msg.type}) cannot be stored: {exc}. Its additional_kwargs, "
            "response_metadata, artifact and content must be JSON-serializable"
        ) from exc
    _check_round_trip(msg, json.loads(text), images, index)
    return payload, images, text


def encode_message(message: object, session_id: str, index: int = 0) -> list[ContextRecord]:
    """The records storing one message: the message record, then its extra images.

    Raises:
        UnsupportedContentError: Not a LangChain message.
        InvalidRecordError: A message type LangChain cannot rebuild, or fields (such as
            ``additional_kwargs`` or a tool ``artifact``) that do not survive JSON.
    """
    msg = _check_message(message, index)
    try:
        payload, images, text = _stored_payload(msg, index)
    except RecursionError:
        raise InvalidRecordError(
            f"message {index} ({msg.type}) nests too deeply to be stored; flatten its "
            "additional_kwargs, response_metadata, artifact or content"
        ) from None
    record_id = new_id()
    extra = [
        ContextRecord(
            run_id=session_id,
            role=ATTACHMENT_ROLE,
            content_type=image.mime_type,
            binary_payload=image.data,
            metadata={ATTACHMENT_KEY: record_id},
            relationships=[Relationship(record_id, "attachment_of")],
        )
        for image in images[1:]
    ]
    metadata: dict[str, Any] = {MESSAGE_KEY: payload}
    metadata_json = f"{{{json.dumps(MESSAGE_KEY)}: {text}"  # the message's JSON is dumped once
    if images:
        metadata[IMAGES_KEY] = [
            {
                "path": image.path,
                "encoding": image.encoding,
                "mime_type": image.mime_type,
                "prefix": image.prefix,
                "record": None if position == 0 else extra[position - 1].id,
            }
            for position, image in enumerate(images)
        ]
        metadata_json += f", {json.dumps(IMAGES_KEY)}: {_dumps(metadata[IMAGES_KEY])}"
    text_payload = _message_text(msg)
    head = ContextRecord.with_metadata_json(
        metadata_json + "}",
        id=record_id,
        run_id=session_id,
        role=msg.type,
        content_type=images[0].mime_type if images else "text/plain",
        text_payload=text_payload if text_payload or not images else None,
        binary_payload=images[0].data if images else None,
        metadata=metadata,
        relationships=[Relationship(r.id, "attachment") for r in extra],
    )
    return [head, *extra]


def _check_round_trip(
    message: BaseMessage, payload: dict[str, Any], images: Sequence[_Image], index: int
) -> None:
    for image in images:
        _set(payload, image.path, _restore({"encoding": image.encoding, "prefix": image.prefix}, image.data))
    try:
        back = _rebuild(payload)
    except NotImplementedError as exc:  # ``dumpd`` met an object beside the artifact's Documents
        raise InvalidRecordError(
            f"message {index} ({message.type}) cannot be stored: its artifact holds, beside "
            "Documents, an object LangChain cannot serialize (such as bytes or a datetime); "
            "keep Documents and plain JSON values in it"
        ) from exc
    except (ValueError, TypeError, KeyError) as exc:
        raise InvalidRecordError(
            f"message {index} has type {message.type!r}, which LangChain cannot rebuild "
            f"({exc}); store one of human, ai, system, tool, chat, function or their chunks"
        ) from exc
    if back != message:
        fields = [
            f for f in type(message).model_fields if getattr(back, f, None) != getattr(message, f, None)
        ]
        where = f"its {' and '.join(fields)}" if fields else "a field"
        raise InvalidRecordError(
            f"message {index} ({message.type}) would not read back equal: {where} holds "
            "tuples, non-string dict keys or objects that JSON turns into something else "
            "(Documents in a tool artifact are kept; other objects are not); convert them to "
            "lists, str keys or plain values first"
        )


def is_message_record(record: ContextRecord) -> bool:
    """Whether a record holds a LangChain message (not an attachment or foreign record)."""
    return isinstance(record.metadata.get(MESSAGE_KEY), dict)


def decode_message(record: ContextRecord, attachments: Mapping[str, ContextRecord]) -> BaseMessage:
    """Rebuild the message a record stores, putting its images back in place.

    Each call returns a message of its own; one without images is rebuilt once per cached
    record (see ``_decoded``).
    """
    stored = record.metadata[MESSAGE_KEY]
    if not record.metadata.get(IMAGES_KEY):
        return decoded(record, stored, lambda: _rebuild(copy_tree(stored)))
    payload = copy_tree(stored)
    for image in record.metadata.get(IMAGES_KEY, ()):
        source = record if image["record"] is None else attachments.get(image["record"])
        if source is None or source.binary_payload is None:
            raise InvalidRecordError(
                f"message record {record.id!r} lost its image attachment {image['record']!r}"
            )
        _set(payload, image["path"], _restore(image, source.binary_payload))
    return _rebuild(payload)


def attachment_ids(record: ContextRecord) -> list[str]:
    """Ids of the attachment records a message record needs."""
    return [i["record"] for i in record.metadata.get(IMAGES_KEY, ()) if i["record"] is not None]


def decode_messages(records: Sequence[ContextRecord]) -> list[tuple[ContextRecord, BaseMessage]]:
    """Messages stored in ``records`` (append order), skipping attachments and foreign records."""
    attachments = {r.id: r for r in records if ATTACHMENT_KEY in r.metadata}
    return [(r, decode_message(r, attachments)) for r in records if is_message_record(r)]
