"""One lock per session of a store location, shared by everything in the process.

Adapters whose calls read a session and then write it (a LlamaIndex chat store's
``add_message(idx=...)``, a LangChain record manager's clock mark) hold the session's lock
around the two, so calls made at once in one process act as if made one after the other.
Other processes are not held: Lance's optimistic commits are what orders them.
"""

from __future__ import annotations

import threading
import weakref
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._store import ContextStore

__all__ = ["session_lock"]

#: The lock of each session some call holds or waits for, by (location, branch, session).
_LOCKS: weakref.WeakValueDictionary[tuple[str, str, str], threading.Lock] = weakref.WeakValueDictionary()
_GUARD = threading.Lock()


def session_lock(store: ContextStore, run_id: str) -> threading.Lock:
    """The process-wide lock of session ``run_id`` at ``store``'s location and branch.

    Every store object opened on the same location and branch gets the same lock; it
    is dropped once no one holds or waits for it.

    Example:
        >>> with session_lock(store, "chat-1"):  # doctest: +SKIP
        ...     records = store.records("chat-1")
        ...     store.replace("chat-1", records[:-1])
    """
    ident = (store.uri, store.branch_name, run_id)
    with _GUARD:
        lock = _LOCKS.get(ident)
        if lock is None:
            lock = _LOCKS[ident] = threading.Lock()
        return lock
