"""The seed-compatible facade: one session's context with create/add/version/checkout/entries.

Example:
    >>> from lance_context.api import Context
    >>> ctx = Context.create("context.lance")           # doctest: +SKIP
    >>> ctx.add("user", "Where should I travel in spring?")  # doctest: +SKIP
    >>> first = ctx.version()                             # doctest: +SKIP
    >>> ctx.add("assistant", "Let me fetch suggestions...")  # doctest: +SKIP
    >>> ctx.checkout(first); len(ctx.entries())           # doctest: +SKIP
    1
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any

from ._namespaces import CONTEXT
from ._records import ContextRecord, Relationship, StateMetadata
from ._search import SearchHit
from ._store import DEFAULT_EMBEDDER, ContextStore
from ._versions import VersionDiff, VersionInfo

__all__ = ["Context"]


class Context:
    """One run's (session's) context on a :class:`ContextStore`.

    Every method works on the run given at creation; the store underneath may be shared.
    Its records are the store's session ``"context:" + run_id`` (:attr:`session`), a
    namespace of its own, so no adapter's id can reach it.

    Example:
        >>> ctx = Context.create("context.lance", run_id="trip")  # doctest: +SKIP
        >>> ctx.add("user", "Paris or Rome?")                      # doctest: +SKIP
    """

    def __init__(self, store: ContextStore, run_id: str = "default") -> None:
        """Wrap an open store for one run id.

        Raises:
            TypeError: ``store`` is not an open :class:`ContextStore` (a URI goes to :meth:`create`).
            InvalidFilterError: ``run_id`` is not a non-empty string.
        """
        if not isinstance(store, ContextStore):
            raise TypeError(
                f"Context wraps an open ContextStore, got {type(store).__name__}: "
                "use Context.create(uri) (or Context.open(uri)) to open one by its URI"
            )
        self.session = CONTEXT.run_id(run_id)
        self.store = store
        self.run_id = run_id

    def __repr__(self) -> str:
        return f"Context(run_id={self.run_id!r}, store={self.store!r})"

    @classmethod
    def create(
        cls,
        uri: str,
        *,
        run_id: str = "default",
        embedder: Any = DEFAULT_EMBEDDER,
        storage_options: Mapping[str, str] | None = None,
        **options: Any,
    ) -> Context:
        """Create the store at ``uri`` (or open it if it exists) for ``run_id``.

        Raises:
            InvalidFilterError: ``run_id`` is not a non-empty string (checked first: no store is created).
        """
        CONTEXT.run_id(run_id)  # refuse a bad run id before anything is created at ``uri``
        store = ContextStore.open(uri, embedder=embedder, storage_options=storage_options, **options)
        return cls(store, run_id)

    open = create

    def add(
        self,
        role: str,
        content: object,
        *,
        content_type: str | None = None,
        metadata: dict[str, Any] | None = None,
        state_metadata: StateMetadata | None = None,
        relationships: list[Relationship] | None = None,
        embedding: Any = None,
        text: str | None = None,
    ) -> int:
        """Append one entry (text, image, table, bytes, JSON); return the new version."""
        record = ContextRecord.from_content(
            content,
            role=role,
            run_id=self.session,
            content_type=content_type,
            text=text,
            metadata={} if metadata is None else metadata,  # a non-dict is refused, as by ContextStore.add
            state_metadata=state_metadata,
            relationships=[] if relationships is None else relationships,
            embedding=embedding,
        )
        return self.store.add(record)

    def entries(
        self, *, roles: str | Iterable[str] | None = None, limit: int | None = None, last: int | None = None
    ) -> list[ContextRecord]:
        """This run's entries visible at the checked-out version, in append order."""
        return self.store.records(self.session, roles=roles, limit=limit, last=last)

    def version(self) -> int:
        """The version being read."""
        return self.store.version()

    def versions(self) -> list[VersionInfo]:
        """Every version of the store, oldest first."""
        return self.store.versions()

    def checkout(self, version_or_tag: int | str) -> None:
        """Read the context as it was at a version or tag (read-only until checkout_latest).

        It is the store that is checked out: every ``Context`` sharing it reads that version too.
        """
        self.store.checkout(version_or_tag)

    def checkout_latest(self) -> None:
        """Return to the latest version."""
        self.store.checkout_latest()

    def tag(self, name: str, version: int | None = None) -> None:
        """Name a version (default: the one read)."""
        self.store.tag(name, version)

    def tags(self) -> dict[str, int]:
        """The tags of the store's branch and the versions they name."""
        return self.store.tags()

    def restore(self, version_or_tag: int | str) -> int:
        """Make this run's entries what they were at a past version (a new version).

        Other runs on the same store keep theirs; ``store.restore`` restores every run.
        Afterwards the context reads the latest version.
        """
        return self.store.restore(version_or_tag, run_id=self.session)

    def branch(self, name: str, from_version: int | str | None = None) -> Context:
        """Fork the store into a branch; return this run's context on it."""
        return Context(self.store.branch(name, from_version), self.run_id)

    def diff(self, from_version: int | str, to_version: int | str | None = None) -> VersionDiff:
        """This run's entries added and removed between two versions (``to``: the one read)."""
        change = self.store.diff(from_version, to_version)
        return dataclasses.replace(
            change,
            added=[r for r in change.added if r.run_id == self.session],
            removed=[r for r in change.removed if r.run_id == self.session],
        )

    def search(self, query: Any, *, k: int = 5, **options: Any) -> list[SearchHit]:
        """Search this run's entries (see ContextStore.search; ``run_id`` is always this run's)."""
        options["run_id"] = self.session
        return self.store.search(query, k=k, **options)
