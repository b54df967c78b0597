"""LangGraph threads as the inspector and ``show`` present them: checkpoints, newest first.

Checkpoints are read through the public :class:`lance_context.langgraph.LanceCheckpointSaver`
with LangGraph's serializer in its *safe* mode (``allowed_msgpack_modules=None``): by
default that serializer imports and calls any module a stored checkpoint names, and an
inspector must never run what a store holds. Messages in a checkpoint's state are shown
as conversation turns; other channels as JSON.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from lance_context import ContextRecord, UnsafePayloadError
from lance_context.adapters import LANGGRAPH_CHECKPOINTS, plain_json

from ._conversation import Turn, build_turns
from ._refs import View

__all__ = ["CheckpointState", "LangGraphMissing", "thread_checkpoints", "thread_id_of"]

_INSTALL = "reading LangGraph threads needs LangGraph: pip install 'lance-context[langgraph]'"


class LangGraphMissing(ImportError):
    """LangGraph is not installed, so checkpoints cannot be decoded."""


@dataclass
class CheckpointState:
    """One checkpoint of a thread and the state it holds.

    Attributes:
        checkpoint_id: LangGraph's checkpoint id.
        namespace: The checkpoint namespace (``""`` for the root graph).
        step: The step number LangGraph recorded.
        source: ``input``, ``loop``, ``update`` or ``fork``.
        created_at: When LangGraph made it.
        parent_id: The checkpoint it follows.
        pending_writes: How many pending writes it has.
        message_count: How many messages the ``messages`` channel holds.
        messages: The ``messages`` channel as turns (a tool's result folded into the turn that called it).
        channels: Every other channel, as JSON-able values.
        sealed: The serialization type of a payload this reader cannot open (an encrypting
            serializer's, such as ``msgpack+aes``); its state is then not shown.
    """

    checkpoint_id: str
    namespace: str
    step: int | None
    source: str | None
    created_at: datetime | None
    parent_id: str | None
    pending_writes: int
    message_count: int = 0
    messages: list[Turn] = field(default_factory=list)
    channels: dict[str, Any] = field(default_factory=dict)
    sealed: str | None = None

    def to_json(self) -> dict[str, Any]:
        """A JSON-able description."""
        return {
            "checkpoint_id": self.checkpoint_id,
            "namespace": self.namespace,
            "step": self.step,
            "source": self.source,
            "created_at": None if self.created_at is None else self.created_at.isoformat(),
            "parent_id": self.parent_id,
            "pending_writes": self.pending_writes,
            "message_count": self.message_count,
            "messages": [t.to_json() for t in self.messages],
            "channels": self.channels,
            "sealed": self.sealed,
        }


def thread_id_of(run_id: str) -> str | None:
    """The LangGraph thread id of a session, or None when it is not a thread."""
    return LANGGRAPH_CHECKPOINTS.key(run_id)


def _message_turns(thread: str, messages: list[Any], when: datetime) -> list[Turn]:
    from langchain_core.messages import BaseMessage, message_to_dict

    records = [
        ContextRecord(
            id=str(message.id or f"message-{index}"),
            run_id=thread,
            role=message.type,
            created_at=when,
            text_payload=str(message.text) or None,
            metadata={"langchain_message": plain_json(message_to_dict(message))},
        )
        for index, message in enumerate(messages)
        if isinstance(message, BaseMessage)
    ]
    return build_turns(records)


def _state(thread: str, item: Any) -> CheckpointState:
    checkpoint, metadata = item.checkpoint, item.metadata or {}
    configurable = item.config["configurable"]
    parent = (item.parent_config or {}).get("configurable", {}).get("checkpoint_id")
    stamp = checkpoint.get("ts")
    when = datetime.fromisoformat(stamp) if isinstance(stamp, str) else None
    if when is not None and when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    values = dict(checkpoint.get("channel_values") or {})
    messages = values.pop("messages", None)
    turns = (
        _message_turns(thread, messages, when or datetime.now(timezone.utc))
        if isinstance(messages, list)
        else []
    )
    if messages is not None and not turns:
        values["messages"] = messages
    return CheckpointState(
        checkpoint_id=str(configurable["checkpoint_id"]),
        namespace=str(configurable.get("checkpoint_ns", "")),
        step=metadata.get("step"),
        source=metadata.get("source"),
        created_at=when,
        parent_id=None if parent is None else str(parent),
        pending_writes=len(item.pending_writes or []),
        message_count=len(messages) if isinstance(messages, list) else 0,
        messages=turns,
        channels={key: plain_json(value) for key, value in sorted(values.items())},
    )


def thread_checkpoints(view: View, thread_id: str, limit: int | None = None) -> list[CheckpointState]:
    """A thread's checkpoints as of the view, newest first (at most ``limit``).

    Raises:
        LangGraphMissing: LangGraph is not installed.
    """
    try:
        from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer

        from lance_context.langgraph import LanceCheckpointSaver
    except ImportError as exc:
        if (exc.name or "").partition(".")[0] != "langgraph":  # a failure of its own: shown as it is
            raise
        raise LangGraphMissing(_INSTALL) from exc
    saver = LanceCheckpointSaver(
        store=view.store, serde=JsonPlusSerializer(allowed_msgpack_modules=None), cached_threads=0
    )
    config: Any = {"configurable": {"thread_id": thread_id}}
    thread = LANGGRAPH_CHECKPOINTS.run_id(thread_id)
    try:
        return [_state(thread, item) for item in saver.list(config, limit=limit)]
    except UnsafePayloadError:  # encrypted (or foreign) payloads: list what the records say of them
        return _sealed_states(view, thread, limit)


def _sealed_states(view: View, thread: str, limit: int | None) -> list[CheckpointState]:
    """A thread's checkpoints from their records alone, newest first, when payloads cannot be read."""
    records = view.store.records(thread, roles=["checkpoint", "checkpoint_write"], with_vectors=False)
    writes: dict[str, int] = {}
    for record in records:
        if record.role == "checkpoint_write":
            key = str(record.metadata.get("checkpoint_id"))
            writes[key] = writes.get(key, 0) + 1
    states = []
    for record in reversed([r for r in records if r.role == "checkpoint"]):
        meta = record.metadata
        found = meta.get("checkpoint_metadata")
        info: dict[str, Any] = found if isinstance(found, dict) else {}
        checkpoint_id = str(meta.get("checkpoint_id"))
        parent = meta.get("parent_checkpoint_id")
        states.append(
            CheckpointState(
                checkpoint_id=checkpoint_id,
                namespace=str(meta.get("checkpoint_ns", "")),
                step=info.get("step"),
                source=info.get("source"),
                created_at=record.created_at,
                parent_id=None if parent is None else str(parent),
                pending_writes=writes.get(checkpoint_id, 0),
                sealed=str(meta.get("serde_type") or "an unknown type"),
            )
        )
    return states[:limit] if limit is not None else states
