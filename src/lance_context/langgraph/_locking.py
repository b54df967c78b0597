"""One lock per store branch, shared by every LangGraph adapter using it.

LangGraph calls its checkpointer and store from several threads at once (a checkpoint
is saved in the background while the next step runs). Several adapter operations read
and then write (``put_writes`` keeps stored regular writes, TTL refreshes, ``copy_thread``,
``prune``), so they run under one lock per store branch within a process, as
``SqliteSaver`` does with its connection lock. The core store itself is thread-safe;
this lock only makes those read-then-write sequences atomic. Views from ``at_version``
share their store's handle, so the lock is keyed by it.
"""

from __future__ import annotations

import functools
import threading
import weakref
from collections.abc import Callable
from typing import Any, Concatenate, ParamSpec, Protocol, TypeVar

from .._store import ContextStore

__all__ = ["serialized", "store_lock"]

P = ParamSpec("P")
R = TypeVar("R")

_LOCKS: weakref.WeakKeyDictionary[Any, threading.RLock] = weakref.WeakKeyDictionary()
_GUARD = threading.Lock()


def store_lock(store: ContextStore) -> threading.RLock:
    """The lock guarding ``store``'s dataset object (the same for its version views)."""
    key = store._handle  # the object every view of this branch reads through
    with _GUARD:
        lock = _LOCKS.get(key)
        if lock is None:
            lock = _LOCKS[key] = threading.RLock()
        return lock


class _Locked(Protocol):
    store: ContextStore


S = TypeVar("S", bound=_Locked)


def serialized(method: Callable[Concatenate[S, P], R]) -> Callable[Concatenate[S, P], R]:
    """Run a method while holding its store's lock."""

    @functools.wraps(method)
    def locked(self: S, /, *args: P.args, **kwargs: P.kwargs) -> R:
        with store_lock(self.store):
            return method(self, *args, **kwargs)

    return locked
