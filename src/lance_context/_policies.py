"""Small typed settings of a store: compaction, indexes, per-record limits, caches.

Each default carries the measurement or reason it was chosen for.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from numbers import Integral, Real

__all__ = ["CachePolicy", "CompactionPolicy", "IndexPolicy", "StoreLimits"]

#: The largest count or size any option takes (what Lance stores in 64 bits).
_MOST = 2**63 - 1

#: The vector index kinds :attr:`IndexPolicy.vector_index_type` accepts.
VECTOR_INDEX_TYPES = ("IVF_SQ", "IVF_FLAT", "IVF_PQ", "IVF_HNSW_SQ")


def check_int(options: object, name: str, least: int, most: int = _MOST) -> int:
    """Check that ``options.<name>`` is an integer within ``least..most``; store it as an ``int``.

    Args:
        options: A frozen options dataclass, during ``__post_init__``.
        name: The field.
        least: The smallest value accepted.
        most: The largest value accepted.

    Returns:
        The value as a plain ``int`` (a numpy integer too).

    Raises:
        ValueError: Naming the field and the accepted range.
    """
    value = getattr(options, name)
    where = f"{type(options).__name__}.{name}"
    if isinstance(value, bool) or not isinstance(value, Integral) or not least <= int(value) <= most:
        limit = f"of at least {least}" if most == _MOST else f"from {least} to {most}"
        raise ValueError(f"{where} must be an integer {limit}, got {value!r}")
    object.__setattr__(options, name, int(value))
    return int(value)


def check_real(options: object, name: str, least: float, most: float = math.inf) -> float:
    """Check that ``options.<name>`` is a finite number within ``least..most``; store it as a ``float``.

    Raises:
        ValueError: Naming the field and the accepted range.
    """
    value = getattr(options, name)
    where = f"{type(options).__name__}.{name}"
    number = float(value) if isinstance(value, Real) and not isinstance(value, bool) else math.nan
    if not (math.isfinite(number) and least <= number <= most):
        limit = f"of at least {least:g}" if most == math.inf else f"from {least:g} to {most:g}"
        raise ValueError(f"{where} must be a finite number {limit}, got {value!r}")
    object.__setattr__(options, name, number)
    return number


def check_bool(options: object, *names: str) -> None:
    """Check that each of ``options.<name>`` is True or False (a string such as "false" is not).

    Raises:
        ValueError: Naming the field.
    """
    for name in names:
        value = getattr(options, name)
        if not isinstance(value, bool):
            raise ValueError(f"{type(options).__name__}.{name} must be True or False, got {value!r}")


@dataclass(frozen=True)
class CompactionPolicy:
    """When and how the store merges small fragments.

    Example:
        >>> CompactionPolicy(fanout=4).fanout
        4
    """

    enabled: bool = True
    """Compact automatically after writes. ``compact()`` always works."""

    fanout: int = 8
    """How many adjacent fragments of one level are merged into the next level.

    A trade between rewrites (each row is copied once per level) and fragments (a cold
    read opens each fragment that holds the session, ~0.3 ms apiece, and every
    version's manifest lists each live fragment). Measured on a store grown by 10,000
    one-message adds over 100 sessions through the LangChain history (cold tail read
    of 50 messages on a new handle, p50 at six points of the growth; mean add
    including compaction; disk with every version kept): fanout 4: 5.1 ms, 4.94 ms,
    351 MB; 6: 5.7 ms, 4.33 ms, 285 MB; 8: 5.9 ms, 4.36 ms, 273 MB; 16: 7.3-7.6 ms,
    4.15-4.34 ms, 257 MB (8-40 fragments as the store grows).
    """

    max_rows_per_fragment: int = 1_048_576
    """Fragments are never merged beyond this many rows."""

    def __post_init__(self) -> None:
        """Reject policies that could never compact, and values of the wrong type."""
        check_bool(self, "enabled")
        fanout = check_int(self, "fanout", 2)
        if check_int(self, "max_rows_per_fragment", 1) < fanout:
            raise ValueError("max_rows_per_fragment must be at least fanout")


@dataclass(frozen=True)
class IndexPolicy:
    """Which indexes the store keeps and when it refreshes them.

    The store keeps a BITMAP index on ``run_id``, a BTREE index on ``id`` and a
    full-text (INVERTED) index on the text, built once the store holds
    ``scalar_refresh_rows`` rows (below that, reading every row is as fast, and a new
    store's first write stays its version 2). Rows appended after a build are still
    found (Lance searches them without the index, with the index's tokenizer) until a
    refresh folds them in.

    Example:
        >>> IndexPolicy(vector_index_min_rows=10_000).vector_index_min_rows
        10000
    """

    refresh_unindexed_rows: int = 4_096
    """Build, then refresh, the indexes once this many rows are not covered by them."""

    refresh_unindexed_share: float = 0.1
    """Also refresh once this share of the rows (and at least ``scalar_refresh_rows``) is not
    covered: rows outside the full-text index are searched without it, slower and ranked on
    other statistics (measured on LoCoMo conversations of ~600 turns added one at a time, a
    store 85 % unindexed took 15 ms per BM25 query where the indexed one took 2 ms)."""

    scalar_refresh_rows: int = 256
    """Build the indexes once the store holds this many rows, and refresh the session and
    id indexes after each compaction that made fragments of this many rows or more (with
    the default fanout 8: every 512 one-record adds)."""

    vector_index_min_rows: int = 20_000
    """Build an approximate vector index once the store has this many rows.

    Measured on 2 shared cores (``make bench``, 384-d vectors): exact (flat) search
    costs ~1.2 ms per 1,000 rows (12 ms at 10,000, 19 ms at 20,000, 83 ms at 50,000);
    an indexed search 5-7 ms at any of these sizes, and a build ~0.03 ms per row. Below
    20,000 rows the index is at most ~2x faster and, on small stores, approximate
    (recall@10 0.81 at 5,000); at 20,000 it is 3x faster at recall 0.997 and repays its
    build in ~40 searches. The write that crosses the threshold builds it (while the
    store holds under twice the threshold, so an ``add()`` never pays for more than
    that); a bulk load that jumps far past it is indexed by the first vector search."""

    vector_index_type: str = "IVF_SQ"
    """``IVF_SQ`` (8-bit vectors, candidates re-ranked with exact distances; builds in
    ~2-3 s per 100,000 384-d rows here, where ``IVF_PQ`` took 38-150 s), ``IVF_FLAT``,
    ``IVF_PQ`` or ``IVF_HNSW_SQ``."""

    flat_search_max_rows: int = 20_000
    """A filtered vector search that matches at most this many rows is exact."""

    nprobes: int = 10
    """IVF partitions searched per query when the index is used (of ~sqrt(rows): 316 at
    100,000 rows). Measured there with exact re-ranking (``refine_factor=2``): 10 probes
    gave recall@10 0.997 in 2.0-2.4 ms, 20 probes 1.000 in 2.9 ms."""

    refine_factor: int = 2
    """Candidates re-ranked with exact distances, as a multiple of k (exact scores)."""

    def __post_init__(self) -> None:
        """Reject counts and shares out of range, and index kinds Lance is not asked to build."""
        for name in ("refresh_unindexed_rows", "scalar_refresh_rows", "vector_index_min_rows"):
            check_int(self, name, 1)
        check_real(self, "refresh_unindexed_share", 0.0, 1.0)
        if self.vector_index_type not in VECTOR_INDEX_TYPES:
            raise ValueError(
                f"IndexPolicy.vector_index_type must be one of {', '.join(VECTOR_INDEX_TYPES)}, "
                f"got {self.vector_index_type!r}"
            )
        check_int(self, "flat_search_max_rows", 0)
        check_int(self, "nprobes", 1)
        check_int(self, "refine_factor", 1)


@dataclass(frozen=True)
class StoreLimits:
    """Guards on what one record may hold.

    Example:
        >>> StoreLimits(max_record_bytes=1024).max_record_bytes
        1024
    """

    max_record_bytes: int = 64 * 1024 * 1024
    """Largest text plus binary payload of one record, in bytes."""

    max_json_depth: int = 200
    """Deepest nesting of JSON content and metadata (deeper data is refused, never recursed into)."""

    max_image_pixels: int = 89_478_485
    """Largest image (width x height) accepted, as Pillow's own decompression-bomb bound."""

    def __post_init__(self) -> None:
        """Reject limits that are not positive integers."""
        for name in ("max_record_bytes", "max_json_depth", "max_image_pixels"):
            check_int(self, name, 1)


@dataclass(frozen=True)
class CachePolicy:
    """How much memory Lance may keep per open store for metadata and index pages.

    Lance caches manifests, fragment metadata and index pages in a session, shared by
    every handle on one store in a process. Left at Lance's defaults, a long-running
    writer grows by tens of KB per commit (each new version's metadata is cached);
    bounded, its memory levels off (``make reliability`` measures it).

    Example:
        >>> CachePolicy(metadata_bytes=64 * 2**20).metadata_bytes
        67108864
    """

    metadata_bytes: int = 32 * 2**20
    """Manifests, fragment and file metadata (Lance's default is 1 GiB). Reads of a session
    use 1-2 MB of it; with the default, a writer grew ~80 KB per add (1 GB after 10,000)."""

    tail_sessions: int = 1024
    """Sessions whose newest records are kept in memory for ``records(run_id, last=n)``, and
    whole, up to 1,024 records, for ``records(run_id)`` (0 turns it off). Checked against
    the store version on every read, never stale."""

    tail_bytes: int = 32 * 2**20
    """About how much memory those cached records may hold. The chat adapters keep each
    rebuilt message beside its cached record, and the LangChain history a copy of each
    window it fitted (up to 4 per session, one per set of arguments), which together take
    up to about twice as much again."""

    index_bytes: int = 256 * 2**20
    """Index pages: scalar, full-text and vector index partitions (Lance's default is 6 GiB).
    An IVF_SQ index of 100,000 384-d vectors uses ~5 MB of it."""

    def __post_init__(self) -> None:
        """Reject sizes and counts that are not integers of at least 0."""
        for name in ("metadata_bytes", "tail_sessions", "tail_bytes", "index_bytes"):
            check_int(self, name, 0)
