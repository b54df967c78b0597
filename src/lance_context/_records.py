"""The record model: what one entry of an agent's context holds."""

from __future__ import annotations

import io
import json
import math
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import numpy as np
import numpy.typing as npt

from ._codecs import decode_content, encode_content
from ._copies import CopyOnFirstRead
from ._errors import InvalidRecordError

__all__ = [
    "ContextRecord",
    "Relationship",
    "StateMetadata",
    "check_unicode",
    "describe_content",
    "json_depth",
    "new_id",
    "utc_now",
]

Vector = npt.NDArray[np.float32]


def new_id() -> str:
    """A new random record id."""
    return uuid.uuid4().hex


def utc_now() -> datetime:
    """The current time, timezone-aware in UTC."""
    return datetime.now(timezone.utc)


@dataclass(frozen=True)
class StateMetadata:
    """Agent state at the time of a record (the seed's ``state_metadata``).

    Attributes:
        step: The agent's step counter.
        active_plan_id: The plan the agent was following.
        tokens_used: Tokens spent so far.
        custom: Any other JSON-able state.

    Example:
        >>> StateMetadata(step=3, active_plan_id="plan-1", tokens_used=120).step
        3
    """

    step: int | None = None
    active_plan_id: str | None = None
    tokens_used: int | None = None
    custom: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Relationship:
    """An edge from a record to another record (GraphRAG-style links).

    Attributes:
        target_id: The id of the record this one points to.
        relation: The kind of link, such as ``"replies_to"`` or ``"cites"``.
        weight: An optional strength of the link.

    Example:
        >>> Relationship("msg-1", "replies_to").relation
        'replies_to'
    """

    target_id: str
    relation: str
    weight: float | None = None


@dataclass(kw_only=True)
class ContextRecord:
    """One entry of an agent's context: a message, an image, a table, a tool result...

    Build one from a Python object with :meth:`from_content`; read it back with
    :attr:`content`.

    Attributes:
        id: Unique id in the store; generated when not given.
        run_id: The session, conversation or run the record belongs to.
        role: Who produced it: ``user``, ``assistant``, ``tool``, ``system``, ...
        created_at: Timezone-aware creation time (UTC); set when not given.
        content_type: MIME type of the payload.
        text_payload: The text content, if any.
        binary_payload: The binary content, if any.
        state_metadata: Agent state at the time of the record.
        embedding: A float32 vector, produced on append when the store embeds.
        metadata: JSON-able metadata, returned exactly as given.
        relationships: Links to other records.
        search_text: What the full-text index should hold instead of the text (a chat
            turn with its speaker, time and context); None: the text itself. A write
            hint: reads do not return it.
        embed_text: What to embed instead of the text (``"Speaker: text"``); None: the
            text itself. A write hint: reads do not return it.

    Example:
        >>> record = ContextRecord.from_content("hello", role="user", run_id="chat-1")
        >>> record.content, record.content_type
        ('hello', 'text/plain')
    """

    run_id: str = "default"
    role: str = "user"
    id: str = field(default_factory=new_id)
    created_at: datetime = field(default_factory=utc_now)
    content_type: str = "text/plain"
    text_payload: str | None = None
    binary_payload: bytes | None = None
    state_metadata: StateMetadata | None = None
    embedding: Vector | None = field(default=None, repr=False)
    metadata: dict[str, Any] = field(default_factory=dict)
    relationships: list[Relationship] = field(default_factory=list)
    search_text: str | None = field(default=None, repr=False)
    embed_text: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self._metadata_json: tuple[object, str] | None = None

    @classmethod
    def with_metadata_json(
        cls, metadata_json: str, *, metadata: dict[str, Any], **fields: Any
    ) -> ContextRecord:
        """A record whose metadata the caller has already serialized (it is not encoded again).

        ``metadata_json`` must be the JSON text of ``metadata``; it is stored as given
        while ``metadata`` stays the same object (a record copied or given new metadata
        is encoded afresh).
        """
        record = cls(metadata=metadata, **fields)
        record._metadata_json = (metadata, metadata_json)
        return record

    def known_metadata_json(self) -> str | None:
        """The caller's JSON text of ``metadata``, if it still describes it."""
        known = self._metadata_json
        return known[1] if known is not None and known[0] is self.metadata else None

    @classmethod
    def from_content(
        cls,
        content: object,
        *,
        role: str = "user",
        run_id: str = "default",
        content_type: str | None = None,
        text: str | None = None,
        **fields: Any,
    ) -> ContextRecord:
        """Build a record from a Python object (see the codecs table in ``_codecs``).

        Args:
            content: A str, dict/list, bytes, PIL image, Arrow table or DataFrame.
            role: Who produced the content.
            run_id: The session the record belongs to.
            content_type: The MIME type of str or bytes content; for an image, the
                ``image/...`` format to store it in; other kinds are refused unless it is theirs.
            text: Searchable text for binary content (a caption, alt text).
            **fields: Any other record field (``id``, ``metadata``, ``embedding``...).
        """
        encoded = encode_content(content, content_type)
        return cls(
            role=role,
            run_id=run_id,
            content_type=encoded.content_type,
            text_payload=encoded.text if encoded.text is not None else text,
            binary_payload=encoded.data,
            **fields,
        )

    @property
    def content(self) -> Any:
        """The stored content decoded into the kind of object it was made from."""
        return decode_content(self.content_type, self.text_payload, self.binary_payload)

    @property
    def text(self) -> str | None:
        """The text payload (the message text, or a caption for binary content)."""
        return self.text_payload

    def __repr__(self) -> str:
        return (
            f"ContextRecord(id={self.id!r}, run_id={self.run_id!r}, role={self.role!r}, "
            f"content={describe_content(self)}, created_at={self.created_at.isoformat()!r})"
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ContextRecord):
            return NotImplemented
        mine, theirs = self.embedding, other.embedding
        same_vector = (mine is None and theirs is None) or (
            mine is not None and theirs is not None and np.array_equal(mine, theirs)
        )
        return same_vector and _comparable(self) == _comparable(other)

    __hash__ = None  # type: ignore[assignment]


#: Copies the store's cache hands out take their metadata from the cached record when first read.
METADATA_ON_READ = CopyOnFirstRead("metadata")
setattr(ContextRecord, "metadata", METADATA_ON_READ)  # noqa: B010 (mypy: a dataclass field)
#: And their relationships (a list of frozen items: a shallow copy is the copy).
RELATIONSHIPS_ON_READ = CopyOnFirstRead("relationships", lambda items: list(items) if items else [])
setattr(ContextRecord, "relationships", RELATIONSHIPS_ON_READ)  # noqa: B010 (mypy: a dataclass field)


def _comparable(record: ContextRecord) -> tuple[object, ...]:
    return (
        record.id,
        record.run_id,
        record.role,
        record.created_at,
        record.content_type,
        record.text_payload,
        record.binary_payload,
        record.state_metadata,
        record.metadata,
        record.relationships,
    )


def check_unicode(text: str, name: str) -> str:
    """Refuse text that cannot be stored as UTF-8 (it holds a lone surrogate code point)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidRecordError(
            f"{name} is not valid unicode: lone surrogate {text[exc.start]!r} at position {exc.start}"
        ) from exc
    return text


def _check_json(value: object, name: str) -> str:
    try:
        text = json.dumps(value, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidRecordError(f"{name} must be JSON-serializable: {exc}") from exc
    except RecursionError as exc:
        raise InvalidRecordError(f"{name} is nested too deeply to store as JSON") from exc
    return check_unicode(text, name)


def json_depth(text: str, limit: int) -> int:
    """How deeply the JSON ``text`` nests arrays and objects, counted without parsing.

    Stops counting past ``limit`` (the answer is then ``limit + 1``), so a hostile
    document costs one pass over its characters and no recursion.
    """
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > limit:
                    return deepest
        elif char in "]}":
            depth -= 1
    return deepest


def describe_content(record: ContextRecord, width: int = 80) -> str:
    """The record's content as a person reads it: text cut to ``width``, binaries summarised.

    ``'hello'``, ``<image/png 2x2, 71 B>``, ``<application/octet-stream, 5 B>``.
    """
    if record.binary_payload is not None:
        size = len(record.binary_payload)
        detail = _image_size(record.binary_payload) if record.content_type.startswith("image/") else None
        kind = record.content_type.split(";", 1)[0]
        caption = f" {record.text_payload[:width]!r}" if record.text_payload else ""
        return f"<{kind}{' ' + detail if detail else ''}, {size:,} B>{caption}"
    text = record.text_payload
    if text is None:
        return "None"
    return repr(text if len(text) <= width else text[: width - 1] + "…")


def _image_size(data: bytes) -> str | None:
    try:
        from PIL import Image
    except ImportError:
        return None
    try:
        with Image.open(io.BytesIO(data)) as image:  # reads the header only
            return f"{image.width}x{image.height}"
    except Exception:  # a summary never fails a repr
        return None


def check_embedding(
    vector: object, dimension: int | None, record_id: str, *, any_size: bool = False
) -> Vector:
    """Validate one vector: right dimension (any, with ``any_size``), finite values. Returns float32."""
    from ._errors import EmbeddingError

    try:
        with np.errstate(over="ignore"):  # values beyond float32 become inf: refused below
            array = np.asarray(vector, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise EmbeddingError(f"record {record_id!r}: embedding is not numeric: {exc}") from exc
    if array.ndim != 1 or array.shape[0] == 0:
        raise EmbeddingError(f"record {record_id!r}: embedding must be a non-empty one-dimensional vector")
    if any_size:
        dimension = array.shape[0]
    if dimension is None:
        raise EmbeddingError(
            f"record {record_id!r} has an embedding but the store has no vector column; "
            "open the store with an embedder or dimension="
        )
    if array.shape[0] != dimension:
        raise EmbeddingError(
            f"record {record_id!r}: embedding has {array.shape[0]} dimensions, the store expects {dimension} "
            "(use one store per embedding space, or reembed() to switch models)"
        )
    if not np.isfinite(array).all():
        raise EmbeddingError(f"record {record_id!r}: embedding contains NaN or infinity")
    return array


def plain_json(value: object) -> Any:
    """A copy of ``value`` that strict JSON holds.

    NaN and infinities become text (``'nan'``), anything else JSON cannot hold its ``repr``.
    """

    def finite(item: Any) -> Any:
        if isinstance(item, float) and not math.isfinite(item):
            return repr(item)
        if isinstance(item, dict):
            return {key: finite(inner) for key, inner in item.items()}
        if isinstance(item, list):
            return [finite(inner) for inner in item]
        return item

    return finite(json.loads(json.dumps(value, ensure_ascii=False, default=repr)))


def state_to_row(state: StateMetadata | None) -> dict[str, Any] | None:
    """Arrow struct value for a StateMetadata."""
    if state is None:
        return None
    if not isinstance(state, StateMetadata):
        raise InvalidRecordError("state_metadata must be a StateMetadata")
    return {
        "step": state.step,
        "active_plan_id": state.active_plan_id,
        "tokens_used": state.tokens_used,
        "custom": _check_json(state.custom, "state_metadata.custom"),
    }


def metadata_to_json(metadata: Mapping[str, Any], record_id: str) -> str:
    """The exact JSON text stored for a record's metadata."""
    return _check_json(dict(metadata), f"record {record_id!r}: metadata")


def row_to_record(row: Mapping[str, Any]) -> ContextRecord:
    """Build a ContextRecord from one row (a dict of column values)."""
    state = row.get("state_metadata")
    vector = row.get("embedding")
    relationships: Sequence[Mapping[str, Any]] = row.get("relationships") or ()
    return ContextRecord(
        id=row["id"],
        run_id=row["run_id"],
        role=row["role"],
        created_at=row["created_at"].astimezone(timezone.utc),
        content_type=row["content_type"],
        text_payload=row.get("text_payload"),
        binary_payload=row.get("binary_payload"),
        state_metadata=None
        if state is None
        else StateMetadata(
            step=state["step"],
            active_plan_id=state["active_plan_id"],
            tokens_used=state["tokens_used"],
            custom=json.loads(state["custom"]) if state["custom"] else {},
        ),
        embedding=None if vector is None else np.asarray(vector, dtype=np.float32),
        metadata=json.loads(row["metadata"]) if row.get("metadata") else {},
        relationships=[Relationship(r["target_id"], r["relation"], r["weight"]) for r in relationships],
        search_text=row.get("search_text"),
        embed_text=row.get("embed_text"),
    )
