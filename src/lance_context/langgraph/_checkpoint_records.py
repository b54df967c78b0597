"""How LangGraph checkpoints and pending writes are laid out as context records.

One thread is one session of the store: every record of thread ``t`` has
``run_id = "langgraph.checkpoints:" + t`` (the adapter's namespace), so a thread is read through the store's
``run_id`` index and deleted in one commit. Two kinds of record share it:

| role               | payload                          | metadata                                    |
|--------------------|----------------------------------|---------------------------------------------|
| ``checkpoint``     | ``serde.dumps_typed(checkpoint)`` | thread_id, checkpoint_ns, checkpoint_id,    |
|                    |                                  | parent_checkpoint_id, serde_type,           |
|                    |                                  | checkpoint_metadata (JSON, for ``filter=``) |
| ``checkpoint_write`` | ``serde.dumps_typed(value)``   | thread_id, checkpoint_ns, checkpoint_id,    |
|                    |                                  | task_id, task_path, idx, channel, serde_type |

Record ids are derived from the LangGraph keys, so writing the same checkpoint or
write twice replaces the record instead of duplicating it. Payloads are LangGraph's own
serializer output, never re-encoded; records carry no text, so nothing is embedded.
This module is pure (no I/O): the saver and the benchmark share it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, cast

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    WRITES_IDX_MAP,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    PendingWrite,
    writes_sort_key,
)
from langgraph.checkpoint.serde.base import SerializerProtocol

from lance_context import ContextRecord
from lance_context.adapters import LANGGRAPH_CHECKPOINTS, copy_tree, plain_json

from ._serde import PayloadReader

__all__ = [
    "CHECKPOINT_ROLE",
    "CONTENT_TYPE",
    "THREAD_PREFIX",
    "WRITE_ROLE",
    "checkpoint_record",
    "checkpoint_record_id",
    "json_native",
    "key_clause",
    "load_checkpoint",
    "load_metadata",
    "pending_writes",
    "retarget",
    "thread_key",
    "to_tuple",
    "write_idx",
    "write_record",
    "write_record_id",
]

THREAD_PREFIX = LANGGRAPH_CHECKPOINTS.prefix
CHECKPOINT_ROLE = "checkpoint"
WRITE_ROLE = "checkpoint_write"
CONTENT_TYPE = "application/vnd.langgraph.serde"


def thread_key(thread_id: object) -> str:
    """The store session (``run_id``) holding a thread's records."""
    return THREAD_PREFIX + str(thread_id)


def _digest(*parts: object) -> str:
    text = json.dumps(parts, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def checkpoint_record_id(thread_id: str, checkpoint_ns: str, checkpoint_id: str) -> str:
    """The record id of one checkpoint (the same keys always give the same id)."""
    return "lg-ckpt-" + _digest(thread_id, checkpoint_ns, checkpoint_id)


def write_record_id(thread_id: str, checkpoint_ns: str, checkpoint_id: str, task_id: str, idx: int) -> str:
    """The record id of one pending write."""
    return "lg-write-" + _digest(thread_id, checkpoint_ns, checkpoint_id, task_id, idx)


def write_idx(channel: str, position: int) -> int:
    """LangGraph's index for a write: special channels (errors, interrupts) are negative."""
    return WRITES_IDX_MAP.get(channel, position)


def json_native(value: object) -> bool:
    """Whether JSON holds ``value`` as it is: str keys, finite numbers (a tuple reads back as a list)."""
    if value is None or isinstance(value, (str, bool, int)):
        return True
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, (list, tuple)):
        return all(json_native(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and json_native(v) for k, v in value.items())
    return False


def _metadata_fields(serde: SerializerProtocol, metadata: Mapping[str, Any]) -> dict[str, Any]:
    """Checkpoint metadata as JSON for filters; the serializer's exact copy if JSON cannot hold it."""
    if not json_native(dict(metadata)):  # e.g. a datetime, or an int key JSON would turn into a string
        kind, data = serde.dumps_typed(dict(metadata))
        readable = plain_json(metadata)
        return {
            "checkpoint_metadata": readable,
            "checkpoint_metadata_serde": [kind, base64.b64encode(data).decode()],
        }
    return {"checkpoint_metadata": dict(metadata)}


def checkpoint_record(
    serde: SerializerProtocol,
    *,
    thread_id: str,
    checkpoint_ns: str,
    checkpoint: Checkpoint,
    metadata: Mapping[str, Any],
    parent_checkpoint_id: str | None,
) -> ContextRecord:
    """The record of one checkpoint (``metadata`` as LangGraph passes it to ``put``)."""
    kind, data = serde.dumps_typed(checkpoint)
    return ContextRecord(
        id=checkpoint_record_id(thread_id, checkpoint_ns, checkpoint["id"]),
        run_id=thread_key(thread_id),
        role=CHECKPOINT_ROLE,
        content_type=CONTENT_TYPE,
        binary_payload=data,
        metadata={
            "thread_id": thread_id,
            "checkpoint_ns": checkpoint_ns,
            "checkpoint_id": checkpoint["id"],
            "parent_checkpoint_id": parent_checkpoint_id,
            "serde_type": kind,
            **_metadata_fields(serde, metadata),
        },
    )


def write_record(
    serde: SerializerProtocol,
    *,
    thread_id: str,
    checkpoint_ns: str,
    checkpoint_id: str,
    task_id: str,
    task_path: str,
    idx: int,
    channel: str,
    value: Any,
) -> ContextRecord:
    """The record of one pending write of a task."""
    kind, data = serde.dumps_typed(value)
    return ContextRecord(
        id=write_record_id(thread_id, checkpoint_ns, checkpoint_id, task_id, idx),
        run_id=thread_key(thread_id),
        role=WRITE_ROLE,
        content_type=CONTENT_TYPE,
        binary_payload=data,
        metadata={
            "thread_id": thread_id,
            "checkpoint_ns": checkpoint_ns,
            "checkpoint_id": checkpoint_id,
            "task_id": task_id,
            "task_path": task_path,
            "idx": idx,
            "channel": channel,
            "serde_type": kind,
        },
    )


def retarget(record: ContextRecord, thread_id: str) -> ContextRecord:
    """A copy of a checkpoint or write record moved to another thread."""
    meta = dict(record.metadata, thread_id=thread_id)
    ns, checkpoint_id = meta["checkpoint_ns"], meta["checkpoint_id"]
    if record.role == CHECKPOINT_ROLE:
        new_id = checkpoint_record_id(thread_id, ns, checkpoint_id)
    else:
        new_id = write_record_id(thread_id, ns, checkpoint_id, meta["task_id"], meta["idx"])
    return ContextRecord(
        id=new_id,
        run_id=thread_key(thread_id),
        role=record.role,
        content_type=record.content_type,
        binary_payload=record.binary_payload,
        metadata=meta,
    )


def _load(reader: PayloadReader, record: ContextRecord) -> Any:
    where = f"{record.role} record {record.id!r}"
    return reader.loads(record.metadata.get("serde_type"), record.binary_payload or b"", where)


def load_checkpoint(reader: PayloadReader, record: ContextRecord) -> Checkpoint:
    """The checkpoint stored on a checkpoint record."""
    return cast(Checkpoint, _load(reader, record))


def load_metadata(reader: PayloadReader, record: ContextRecord) -> CheckpointMetadata:
    """The checkpoint metadata stored on a checkpoint record."""
    exact = record.metadata.get("checkpoint_metadata_serde")
    if exact is not None:
        kind, data = exact if isinstance(exact, list) and len(exact) == 2 else (None, "")
        where = f"the metadata of checkpoint record {record.id!r}"
        return cast(CheckpointMetadata, reader.loads(kind, base64.b64decode(str(data)), where))
    # a copy: the record may be the saver's cached one, and callers edit what they get
    return cast(CheckpointMetadata, copy_tree(record.metadata.get("checkpoint_metadata") or {}))


def pending_writes(reader: PayloadReader, writes: Iterable[ContextRecord]) -> list[PendingWrite]:
    """Decoded pending writes in ``writes_sort_key`` order (the order LangGraph replays them)."""
    ordered = sorted(
        writes,
        key=lambda w: writes_sort_key(w.metadata["task_path"], w.metadata["task_id"], w.metadata["idx"]),
    )
    return [(w.metadata["task_id"], w.metadata["channel"], _load(reader, w)) for w in ordered]


def _config(thread_id: str, checkpoint_ns: str, checkpoint_id: str) -> RunnableConfig:
    return {
        "configurable": {
            "thread_id": thread_id,
            "checkpoint_ns": checkpoint_ns,
            "checkpoint_id": checkpoint_id,
        }
    }


def to_tuple(
    reader: PayloadReader,
    record: ContextRecord,
    writes: Sequence[ContextRecord],
    config: RunnableConfig | None = None,
) -> CheckpointTuple:
    """Rebuild LangGraph's ``CheckpointTuple`` from a checkpoint record and its writes.

    Args:
        reader: Decodes the stored payloads.
        record: The checkpoint record.
        writes: Its pending write records.
        config: The config to return as the tuple's ``config`` (a ``get_tuple`` by id
            returns the caller's config unchanged, as LangGraph's savers do); None builds
            a new one naming the thread, namespace and checkpoint.
    """
    meta = record.metadata
    thread_id, ns, parent = meta["thread_id"], meta["checkpoint_ns"], meta["parent_checkpoint_id"]
    return CheckpointTuple(
        config=_config(thread_id, ns, meta["checkpoint_id"]) if config is None else config,
        checkpoint=load_checkpoint(reader, record),
        metadata=load_metadata(reader, record),
        parent_config=_config(thread_id, ns, parent) if parent else None,
        pending_writes=pending_writes(reader, writes),
    )


def key_clause(record: ContextRecord) -> dict[str, Any]:
    """Filter matching a checkpoint and its writes (same thread, namespace and id)."""
    meta = record.metadata
    return {
        "run_id": record.run_id,
        "checkpoint_ns": meta["checkpoint_ns"],
        "checkpoint_id": meta["checkpoint_id"],
    }
