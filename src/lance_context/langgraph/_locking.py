"""One lock per store branch, shared by every LangGraph adapter using it.

LangGraph calls its checkpointer and store from several threads at once (a checkpoint
is saved in the background while the next step runs). Several adapter operations read
and then write (``put_writes`` keeps stored regular writes, TTL refreshes, ``copy_thread``,
``prune``), so they run under one lock per store branch within a process, as
``SqliteSaver`` does with its connection lock. The core store itself is thread-safe;
this lock only makes those read-then-write sequences atomic. It is keyed by the store's
URI and branch, so views from ``at_version`` and other handles on the same data share it.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Concatenate, ParamSpec, Protocol, TypeVar

from lance_context import ContextStore

__all__ = ["serialized", "store_lock"]

P = ParamSpec("P")
R = TypeVar("R")

_LOCKS: dict[tuple[str, str], threading.RLock] = {}
_GUARD = threading.Lock()


def store_lock(store: ContextStore) -> threading.RLock:
    """The lock of ``store``'s branch in this process (shared by every handle on it)."""
    key = (store.uri, store.branch_name)
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
