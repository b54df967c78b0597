"""How LangGraph store items are laid out as context records, and which records an op reads.

A namespace is one session of the store: ``run_id = "langgraph.store:" + ".".join(ns)``.
LangGraph forbids ``.`` in namespace labels (checked on every op), so the encoding is
unambiguous and a namespace prefix is a ``run_id`` prefix ending at a label boundary.

| role              | text (embedded)          | metadata                                   |
|-------------------|--------------------------|--------------------------------------------|
| ``store_item``    | the item's first indexed | namespace, key, value (exact JSON),        |
|                   | text, if any             | updated_at, ttl_minutes, expires_at, path  |
| ``store_item_text`` | each further text       | the same, with its own ``path``            |

Every record of an item carries the whole value, so ``filter=`` is applied before the
vector top-k for any of them; search results are pooled per item (best text wins).
This module is pure (no I/O).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import numpy as np
import numpy.typing as npt
from langgraph.store.base import (
    Item,
    PutOp,
    SearchItem,
    SearchOp,
    get_text_at_path,
    tokenize_path,
)

from lance_context import ContextRecord, InvalidRecordError, SearchError
from lance_context.adapters import LANGGRAPH_STORE, json_problem

__all__ = [
    "ITEM_ROLE",
    "STORE_PREFIX",
    "TEXT_ROLE",
    "ItemTexts",
    "check_put",
    "check_search",
    "item_id",
    "item_records",
    "namespace_key",
    "namespace_of",
    "namespace_where",
    "not_expired",
    "texts_for",
    "to_item",
    "to_search_item",
]

STORE_PREFIX = LANGGRAPH_STORE.prefix
ITEM_ROLE = "store_item"
TEXT_ROLE = "store_item_text"
CONTENT_TYPE = "application/vnd.langgraph.store-item+json"

Where = dict[Any, Any]
Vector = npt.NDArray[np.float32]


def namespace_key(namespace: Sequence[str]) -> str:
    """The store session holding a namespace's items."""
    return STORE_PREFIX + ".".join(namespace)


def namespace_of(run_id: str) -> tuple[str, ...]:
    """The namespace a store session holds."""
    return tuple(run_id[len(STORE_PREFIX) :].split("."))


def _digest(*parts: object) -> str:
    text = json.dumps(parts, ensure_ascii=False, separators=(",", ":"))
    # surrogatepass: a lone surrogate (refused by ``check_put``) still names no item, never crashes a read
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def item_id(namespace: Sequence[str], key: str) -> str:
    """The record id of an item (its first record)."""
    return "lg-item-" + _digest(list(namespace), key)


def _text_id(namespace: Sequence[str], key: str, path: str) -> str:
    return "lg-item-text-" + _digest(list(namespace), key, path)


def _refuse(namespace: Sequence[str], key: str, problem: str) -> InvalidRecordError:
    return InvalidRecordError(f"store item {tuple(namespace)!r} / {key!r}: {problem}; nothing was written")


def check_put(op: PutOp) -> None:
    """Refuse a put that cannot be stored as LangGraph's SQL stores keep it (JSON), before any write.

    Checked for every put of a batch first, so a bad one writes nothing (not even the
    batch's deletes).
    """
    ns, key = op.namespace, str(op.key)
    for text, what in [(key, "the key"), *((label, "a namespace label") for label in ns)]:
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise _refuse(ns, key, f"{what} is not valid unicode (a lone surrogate)") from None
    if op.value is None:
        return
    if not isinstance(op.value, Mapping):
        raise _refuse(ns, key, f"the value must be a dict, got {type(op.value).__name__}")
    try:
        json.dumps(op.value, ensure_ascii=False, allow_nan=False).encode("utf-8")
    except (TypeError, ValueError, RecursionError) as exc:
        problem = "is not valid unicode" if isinstance(exc, UnicodeEncodeError) else f"is not JSON ({exc})"
        raise _refuse(ns, key, f"the value {problem}: store only JSON types and finite numbers") from None
    changed = json_problem(op.value, "the value")  # a non-str key JSON would turn into another one
    if changed is not None:
        raise _refuse(ns, key, changed)
    ttl = op.ttl
    if ttl is not None and (isinstance(ttl, bool) or not isinstance(ttl, (int, float)) or not ttl >= 0):
        raise _refuse(ns, key, f"ttl must be None or a number of minutes >= 0, got {ttl!r}")
    if ttl is not None and not math.isfinite(ttl):
        raise _refuse(ns, key, f"ttl must be finite (None keeps the item forever), got {ttl!r}")
    index = op.index
    if index is None or index is False:
        return
    if isinstance(index, (str, bytes)) or not isinstance(index, (list, tuple)):
        raise _refuse(ns, key, f"index must be None, False or a list of field paths, got {index!r}")
    if not all(isinstance(path, str) and path for path in index):
        raise _refuse(ns, key, f"index paths must be non-empty strings, got {index!r}")


def check_search(op: SearchOp) -> None:
    """Refuse a search page that LangGraph's stores would each read differently (negative bounds)."""
    for name in ("limit", "offset"):
        value = getattr(op, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise SearchError(f"search {name} must be an int >= 0, got {value!r}")
    if op.filter is not None and not isinstance(op.filter, Mapping):
        raise SearchError(
            f"search filter must be a dict of field: value or {{operator: value}}, got {op.filter!r}"
        )


def namespace_where(prefix: Sequence[str]) -> Where:
    """Records of every namespace starting with ``prefix`` (all namespaces for ``()``)."""
    if not prefix:
        return {"run_id": {"$prefix": STORE_PREFIX}}
    exact = namespace_key(prefix)
    return {"$or": [{"run_id": exact}, {"run_id": {"$prefix": exact + "."}}]}


def not_expired(now: datetime) -> Where:
    """Records without a TTL or whose TTL has not run out."""
    path = ("metadata", "expires_at")
    return {"$or": [{path: None}, {path: {"$gt": now.timestamp()}}]}


def texts_for(value: Mapping[str, Any], paths: Iterable[str]) -> list[tuple[str, str]]:
    """The (path, text) pairs LangGraph embeds for a value; arrays give ``path.i`` names.

    One text per name: a path given twice (``index=["a", "a"]``) is indexed once, as
    LangGraph's stores keep one vector per item and name (the last one wins).
    """
    found: dict[str, str] = {}
    for path in paths:
        texts = get_text_at_path(dict(value), path if path == "$" else tokenize_path(path))
        if len(texts) > 1:
            found.update((f"{path}.{i}", text) for i, text in enumerate(texts))
        elif texts:
            found[path] = texts[0]
    return list(found.items())


@dataclass
class ItemTexts:
    """The texts of one item to index, with vectors when the index config embeds them."""

    texts: list[tuple[str, str]] = field(default_factory=list)
    vectors: list[Vector] | None = None


def item_records(
    namespace: Sequence[str],
    key: str,
    value: Mapping[str, Any],
    *,
    created_at: datetime,
    now: datetime,
    ttl: float | None,
    indexed: ItemTexts,
) -> list[ContextRecord]:
    """Every record of one item: the item itself, then one per further indexed text."""
    meta: dict[str, Any] = {
        "namespace": list(namespace),
        "key": key,
        "value": dict(value),
        "updated_at": now.isoformat(),
        "ttl_minutes": ttl,
        "expires_at": None if ttl is None else (now + timedelta(minutes=ttl)).timestamp(),
        "texts": len(indexed.texts),
    }
    texts: list[tuple[str | None, str | None]] = [*indexed.texts] or [(None, None)]
    records = []
    for i, (path, text) in enumerate(texts):
        records.append(
            ContextRecord(
                id=item_id(namespace, key) if i == 0 else _text_id(namespace, key, str(path)),
                run_id=namespace_key(namespace),
                role=ITEM_ROLE if i == 0 else TEXT_ROLE,
                created_at=created_at,
                content_type=CONTENT_TYPE,
                text_payload=text,
                embedding=indexed.vectors[i] if indexed.vectors else None,  # none for an item without text
                metadata={**meta, "path": path},
            )
        )
    return records


def refreshed(metadata: dict[str, Any], now: datetime) -> dict[str, Any]:
    """An item record's metadata with its TTL restarted ``now``."""
    ttl = metadata.get("ttl_minutes")
    return {**metadata, "expires_at": None if ttl is None else (now + timedelta(minutes=ttl)).timestamp()}


def _updated_at(record: ContextRecord) -> datetime:
    return datetime.fromisoformat(record.metadata["updated_at"]).astimezone(timezone.utc)


def to_item(record: ContextRecord) -> Item:
    """The LangGraph item a record belongs to."""
    meta = record.metadata
    return Item(
        value=meta["value"],
        key=meta["key"],
        namespace=tuple(meta["namespace"]),
        created_at=record.created_at,
        updated_at=_updated_at(record),
    )


def to_search_item(record: ContextRecord, score: float | None = None) -> SearchItem:
    """The LangGraph search result for a record."""
    meta = record.metadata
    return SearchItem(
        namespace=tuple(meta["namespace"]),
        key=meta["key"],
        value=meta["value"],
        created_at=record.created_at,
        updated_at=_updated_at(record),
        score=score,
    )
