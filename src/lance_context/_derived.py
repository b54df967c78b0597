"""What an adapter built from a read of cached records, kept until those records change.

The store's tail cache hands an adapter the same record objects on every read of a
session until a commit touches it (:func:`lance_context._tailcache.shared_records`). What the
adapter builds from one such read (a window of messages fitted to a budget) depends on
those records alone, so it can be kept beside them and used again while a later read
returns exactly the same objects in the same order. Anything else (another order, one new
or replaced record, a read that put new objects in the cache) builds it again.
"""

from __future__ import annotations

import threading
from collections.abc import Hashable, Sequence
from typing import Any

from ._handouts import derived_values
from ._records import ContextRecord

__all__ = ["MAX_KEPT", "keep_built", "kept_built"]

#: At most this many built values are kept per newest record (one per distinct key).
MAX_KEPT = 4
_SLOT = "lance_context.built"
_LOCK = threading.Lock()


def kept_built(records: Sequence[ContextRecord], key: Hashable) -> Any | None:
    """The value kept for ``key`` from exactly these record objects, or None.

    Args:
        records: The cached records a read returned, in the order it returned them.
        key: What was built and with which arguments (compared with ``==``).
    """
    if not records:
        return None
    found = derived_values(records[-1]).get(_SLOT, {}).get(key)
    if found is None:
        return None
    sources, value = found
    if len(sources) != len(records) or any(a is not b for a, b in zip(sources, records, strict=True)):
        return None
    return value


def keep_built(records: Sequence[ContextRecord], key: Hashable, value: Any) -> None:
    """Keep ``value``, built from these cached records alone, for :func:`kept_built`.

    The value must never be handed out or changed: hand out copies of it. It lives as long
    as the newest record stays in the store's cache.
    """
    if not records:
        return
    with _LOCK:
        kept: dict[Hashable, tuple[tuple[ContextRecord, ...], Any]]
        kept = derived_values(records[-1]).setdefault(_SLOT, {})
        kept.pop(key, None)
        kept[key] = (tuple(records), value)
        while len(kept) > MAX_KEPT:
            del kept[next(iter(kept))]
