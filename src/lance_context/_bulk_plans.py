"""What travels between the driver and the workers of a distributed write (all picklable).

See ``_bulk.py`` for how they are used.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pyarrow as pa
from lance.fragment import FragmentMetadata

from ._embedders import Embedder
from ._policies import StoreLimits
from ._schema import EmbedderInfo

__all__ = ["BulkPart", "BulkPlan", "RewritePlan", "Slice"]


@dataclass(frozen=True)
class BulkPlan:
    """What every worker of one bulk append needs (picklable; made by :meth:`BulkWriter.plan`).

    It carries the store's storage options, credentials included: ship it only to
    workers you would give those credentials to.

    Attributes:
        uri: Where the store lives.
        storage_options: Object-store settings (with the store's timeout defaults).
        branch: The branch written.
        read_version: The version the job is based on (``seq`` and conflicts derive from it).
        schema: The store's schema at that version.
        embedder: What embeds records without a vector (None: nothing is embedded).
        dimension: The vector dimension (None: the store has no vector column).
        recorded: The embedder the store records.
        limits: The store's per-record limits.

    Example:
        >>> plan = store.bulk().plan()                      # doctest: +SKIP
        >>> part = BulkWorker(plan).write(records, range(len(records)))  # doctest: +SKIP
        >>> store.bulk().commit(plan, [part])               # doctest: +SKIP
    """

    uri: str
    storage_options: dict[str, str]
    branch: str
    read_version: int
    schema: pa.Schema
    embedder: Embedder | None
    dimension: int | None
    recorded: EmbedderInfo | None
    limits: StoreLimits


@dataclass(frozen=True)
class Slice:
    """Rows ``offset`` to ``offset + limit`` of one fragment, as the plan's version holds it.

    Attributes:
        index: The slice's place in the plan (the rewritten store keeps this order).
        fragment_id: The source fragment.
        offset: First live row of the fragment in the slice.
        limit: Rows in the slice.
        source: The fragment's manifest entry (files, deletions): a slice whose source is
            unchanged in a later plan holds the same rows, so its rewrite can be reused.

    Example:
        >>> Slice(0, fragment_id=3, offset=0, limit=100, source="{}").key
        ('{}', 0, 100)
    """

    index: int
    fragment_id: int
    offset: int
    limit: int
    source: str

    @property
    def key(self) -> tuple[str, int, int]:
        """What the slice holds, independent of its place in a plan."""
        return (self.source, self.offset, self.limit)


@dataclass(frozen=True)
class RewritePlan:
    """What every worker of one distributed re-embed needs (made by :meth:`BulkWriter.plan_reembed`).

    Attributes:
        uri: Where the store lives.
        storage_options: Object-store settings (credentials included).
        branch: The branch rewritten.
        read_version: The version read; the commit fails if another one landed since.
        embedder: The new embedder.
        schema: The store's schema with the new vector column and embedder recorded.
        slices: The work, in store order.
        batch_size: Texts per embedder call.

    Example:
        >>> plan = store.bulk().plan_reembed(HashingEmbedder(32))   # doctest: +SKIP
        >>> parts = [BulkWorker(plan).rewrite(s) for s in plan.slices]  # doctest: +SKIP
        >>> store.bulk().commit_reembed(plan, parts)                # doctest: +SKIP
    """

    uri: str
    storage_options: dict[str, str]
    branch: str
    read_version: int
    embedder: Embedder
    schema: pa.Schema
    slices: tuple[Slice, ...]
    batch_size: int = 256

    @property
    def info(self) -> EmbedderInfo:
        """The embedder the rewritten store records."""
        return EmbedderInfo(self.embedder.name, self.embedder.dimension)


@dataclass(frozen=True)
class BulkPart:
    """Fragments one worker wrote, not committed, and what they hold (picklable).

    Attributes:
        fragments: The written fragments.
        rows: Records in them.
        first: Where the part sits in the job (first input position, or slice index).
        ids: The records' ids (to refuse ids given twice in one job).
        sessions: The sessions written; at most 65 (more than 64 are not listed in the commit).

    Example:
        >>> BulkPart(fragments=(), rows=0, first=0).sessions
        frozenset()
    """

    fragments: tuple[FragmentMetadata, ...]
    rows: int
    first: int
    ids: pa.Array = field(default_factory=lambda: pa.array([], pa.string()))
    sessions: frozenset[str] = frozenset()
