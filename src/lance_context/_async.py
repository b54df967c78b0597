"""The async layer, written once: every async method runs its sync twin in a worker thread.

The store's work is synchronous Lance I/O; an ``async`` method that ran it inline
would block the event loop. So async methods are *generated* from their sync twins
(:func:`async_twin`, :func:`forward`) with the same signature, never written by hand:
they cannot drift apart, and a test compares every pair across the package.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Coroutine
from types import TracebackType
from typing import Any, Concatenate, ParamSpec, TypeVar

from ._store import ContextStore

__all__ = ["AsyncContextStore", "async_twin", "forward"]

P = ParamSpec("P")
R = TypeVar("R")


def async_twin(method: Callable[..., R]) -> Callable[..., Coroutine[Any, Any, R]]:
    """The ``async`` twin of a sync method: same parameters, run in a worker thread.

    Its runtime signature is the sync method's (``inspect.signature`` shows it, and a
    test compares every pair); its static type is loose because framework base classes
    declare their async methods themselves.

    Example:
        >>> class History:
        ...     def messages(self, last: int = 10) -> list[str]: ...
        ...     amessages = async_twin(messages)
    """
    name = method.__name__

    @functools.wraps(method)
    async def twin(self: object, /, *args: Any, **kwargs: Any) -> R:
        # looked up on the instance, so a subclass that overrides the sync method gets its own
        result: R = await asyncio.to_thread(getattr(self, name), *args, **kwargs)
        return result

    twin.__doc__ = f"Async ``{method.__name__}`` (runs it in a worker thread)."
    return twin


def forward(
    method: Callable[Concatenate[ContextStore, P], R],
) -> Callable[Concatenate[AsyncContextStore, P], Coroutine[Any, Any, R]]:
    """An ``AsyncContextStore`` method running ``ContextStore.<method>`` in a worker thread.

    The method is looked up on the wrapped store, as :func:`async_twin` does, so a
    ``ContextStore`` subclass that overrides it gets its own override in async code too.
    """
    name = method.__name__

    @functools.wraps(method)
    async def forwarded(self: AsyncContextStore, /, *args: P.args, **kwargs: P.kwargs) -> R:
        result: R = await asyncio.to_thread(getattr(self.store, name), *args, **kwargs)
        return result

    forwarded.__doc__ = f"Async :meth:`ContextStore.{method.__name__}` (runs it in a worker thread)."
    return forwarded


class AsyncContextStore:
    """A :class:`ContextStore` with ``async`` methods (``store.aio``).

    Every method has the signature of its ``ContextStore`` twin, runs it in a worker
    thread (``asyncio.to_thread``, the loop's default executor) and returns what it
    returns, raising what it raises; so the event loop never waits on Lance I/O, and
    coroutines gathered on one store run as concurrent threads do (no write is lost).
    Methods that return a store (``checkout``, ``branch``, ``at_version``...) return the
    ``ContextStore``, as their twins do: use its ``.aio``. Like threads, coroutines share
    the store's checked-out version and branch: a ``checkout`` is seen by every one of them.
    Cancelling an ``await`` does not stop the call in its thread: a write may still commit.

    Example:
        >>> store = ContextStore.open("memory.lance")                      # doctest: +SKIP
        >>> await store.aio.add(ContextRecord.from_content("hi", run_id="s"))  # doctest: +SKIP
        >>> [r.text for r in await store.aio.records("s", last=10)]         # doctest: +SKIP
        >>> async with await AsyncContextStore.open("memory.lance") as astore:  # doctest: +SKIP
        ...     await astore.count()
    """

    def __init__(self, store: ContextStore) -> None:
        """Wrap an open store."""
        if not isinstance(store, ContextStore):
            raise TypeError(
                f"AsyncContextStore wraps an open ContextStore, got {type(store).__name__}: "
                "use store.aio, or await AsyncContextStore.open(uri) to open one by its URI"
            )
        self.store = store

    @classmethod
    async def open(cls, uri: str, **options: Any) -> AsyncContextStore:
        """Async :meth:`ContextStore.open` (same arguments; opening or creating runs in a worker thread).

        Returns the opened store's async view (its ``.store`` is the ``ContextStore``).
        """
        return cls(await asyncio.to_thread(ContextStore.open, uri, **options))

    def __repr__(self) -> str:
        return f"AsyncContextStore({self.store!r})"

    add = forward(ContextStore.add)
    upsert = forward(ContextStore.upsert)
    update_metadata = forward(ContextStore.update_metadata)
    replace = forward(ContextStore.replace)
    delete = forward(ContextStore.delete)
    reembed = forward(ContextStore.reembed)
    records = forward(ContextStore.records)
    count = forward(ContextStore.count)
    get = forward(ContextStore.get)
    get_many = forward(ContextStore.get_many)
    run_ids = forward(ContextStore.run_ids)
    outline = forward(ContextStore.outline)
    search = forward(ContextStore.search)
    recall = forward(ContextStore.recall)
    search_log = forward(ContextStore.search_log)
    replay = forward(ContextStore.replay)
    version = forward(ContextStore.version)
    versions = forward(ContextStore.versions)
    changes_between = forward(ContextStore.changes_between)
    checkout = forward(ContextStore.checkout)
    checkout_latest = forward(ContextStore.checkout_latest)
    at_version = forward(ContextStore.at_version)
    tag = forward(ContextStore.tag)
    tags = forward(ContextStore.tags)
    delete_tag = forward(ContextStore.delete_tag)
    restore = forward(ContextStore.restore)
    branch = forward(ContextStore.branch)
    checkout_branch = forward(ContextStore.checkout_branch)
    branches = forward(ContextStore.branches)
    delete_branch = forward(ContextStore.delete_branch)
    diff = forward(ContextStore.diff)
    merge = forward(ContextStore.merge)
    review = forward(ContextStore.review)
    cleanup = forward(ContextStore.cleanup)
    forget = forward(ContextStore.forget)
    apply_retention = forward(ContextStore.apply_retention)
    export = forward(ContextStore.export)
    rotate_key = forward(ContextStore.rotate_key)
    compact = forward(ContextStore.compact)
    build_vector_index = forward(ContextStore.build_vector_index)
    close = forward(ContextStore.close)

    async def __aenter__(self) -> AsyncContextStore:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()
