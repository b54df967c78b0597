"""The search log: searches recorded so they can be replayed exactly, kept beside the store.

Where the log lives, and why. It is a separate Lance dataset at
``<store uri>/_lance_context/search_log.lance``:

- It is never a version of the store. Recording a search changes no record, nothing any
  adapter reads and not the version a user sees; a record in the store, even in a
  namespace of its own, would have made every recorded search a new store version.
- It sits under the store's URI, so it is copied, moved and deleted with the store and
  reached with the same storage options. Lance's compaction, cleanup and branches only
  touch files their manifests name (``data/``, ``_versions/``, ``tree/``...), so they
  leave it alone (a test runs them on local disk and on S3 and reads the log afterwards).
- It is branch-independent: one log for every branch of the store, each entry naming the
  branch and version it searched, so a search on a branch can be replayed after the
  branch was merged.
- Lance commits appends from many processes safely, and the log compacts itself the way
  the store does, so listing it stays fast as it grows.

An entry holds what an exact replay needs: the version and branch searched, the query
text and the query vector actually used, the mode, filters, ``k`` and search options
(with the index settings in force), the embedder's identity, and the ids and scores
returned. An encrypted store's log keeps no query text (the store seals its records'
text, and a query is often a user's own words); the logged vector replays the search.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import secrets
import threading
from collections.abc import Callable, Iterable, Mapping
from datetime import timedelta
from typing import Any

import lance

from ._errors import LanceContextError, ReadOnlyError, SearchError, SearchNotFoundError
from ._filters import eq, in_
from ._fusion import FusionOptions
from ._maintenance import compaction_target
from ._policies import CompactionPolicy
from ._records import utc_now
from ._schema import embedding_dimension, read_embedder_info
from ._search import Searcher, SearchHit
from ._searchentry import LOG_SCHEMA, LoggedSearch, Vector, decode, encode, from_row, to_table
from ._state import StoreState
from ._storage import is_missing

__all__ = ["LOG_PATH", "LoggedSearch", "Recorder", "SearchLog", "SearchResults", "decode", "encode"]

log = logging.getLogger("lance_context")

#: Where the log lives, relative to the store's URI.
LOG_PATH = "_lance_context/search_log.lance"
#: Held while a thread creates a search log, so two threads never both create one.
_CREATING = threading.Lock()
#: Held while a thread merges a search log's files (others skip: their entries wait for the next).
_COMPACTING = threading.Lock()
#: The filter arguments of ``ContextStore.search`` a log entry keeps.
FILTERS = ("run_id", "roles", "since", "until", "where")
#: The other search arguments it keeps.
OPTIONS = ("mmr", "fetch_k", "lambda_mult", "alpha")


class SearchResults(list[SearchHit]):
    """The hits of a search, best first: a plain list, plus the id of its log entry.

    Attributes:
        search_id: The search-log id when the search was recorded, else None.

    Example:
        >>> hits = store.search("peanuts", k=3, record=True)   # doctest: +SKIP
        >>> hits[0].record.text, hits.search_id                # doctest: +SKIP
        ("I'm allergic to peanuts", '3f2a9c1b7d4e')
    """

    def __init__(self, hits: Iterable[SearchHit] = (), search_id: str | None = None) -> None:
        super().__init__(hits)
        self.search_id = search_id


class SearchLog:
    """The search log of one store (every branch), read and appended through the store's handle."""

    def __init__(self, state: StoreState) -> None:
        """The log beside the store ``state`` describes."""
        self._state = state
        self._exists = False  # known to exist: appends skip the check

    @property
    def uri(self) -> str:
        """Where the log's Lance dataset lives."""
        return self._state.handle.uri.rstrip("/") + "/" + LOG_PATH

    def _call(self, fn: Callable[[], Any], action: str) -> Any:
        return self._state.handle.call(fn, action, retry=False)

    def _dataset(self) -> lance.LanceDataset | None:
        options = self._state.handle.storage_options or None

        def open_log() -> lance.LanceDataset | None:
            try:
                return lance.dataset(self.uri, storage_options=options)
            except (OSError, ValueError) as exc:
                if is_missing(exc):
                    return None
                raise

        found: lance.LanceDataset | None = self._call(open_log, "open the search log")
        return found

    def append(self, entry: LoggedSearch) -> None:
        """Add one entry (the log is created by its first entry)."""
        table = to_table(entry)
        options = self._state.handle.storage_options or None

        def append() -> lance.LanceDataset:
            return lance.write_dataset(table, self.uri, mode="append", storage_options=options)

        def write() -> lance.LanceDataset:
            if self._exists or self._dataset() is not None:
                return append()
            with _CREATING:  # threads of this process create the log one at a time
                if self._dataset() is not None:
                    return append()
                try:
                    created = lance.write_dataset(
                        table, self.uri, schema=LOG_SCHEMA, mode="create", storage_options=options
                    )
                except (OSError, ValueError) as exc:
                    if "already exists" in str(exc).lower():  # another process created it
                        return append()
                    raise
            # another process creating it at the same moment may have replaced this first entry
            latest = lance.dataset(self.uri, storage_options=options)
            return created if latest.count_rows(filter=eq("id", entry.id)) else append()

        written: lance.LanceDataset = self._state.handle.call(write, "record the search")
        self._exists = True
        self._compact(written)

    def _compact(self, ds: lance.LanceDataset) -> None:
        """Merge the log's small files like the store does; a failure only waits for the next entry."""
        policy = CompactionPolicy()
        target = compaction_target([f.metadata.physical_rows for f in ds.get_fragments()], policy)
        if target is None or not _COMPACTING.acquire(blocking=False):
            return  # nothing to merge, or another thread of this process is merging it now
        try:
            self._call(
                lambda: ds.optimize.compact_files(target_rows_per_fragment=target), "compact the search log"
            )
            self._call(
                lambda: ds.cleanup_old_versions(older_than=timedelta(hours=1)), "clean up the search log"
            )
        except LanceContextError as exc:
            log.warning("lance-context: search log compaction skipped (%s); it runs after a later entry", exc)
        finally:
            _COMPACTING.release()

    def entries(self, limit: int | None = None) -> list[LoggedSearch]:
        """Logged searches, newest first."""
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
            raise SearchError(f"limit must be a non-negative integer or None, got {limit!r}")
        ds = self._dataset()
        if ds is None:
            return []
        # two steps, as the store's reader does: an outline picks the newest, then only those are read
        outline = self._call(lambda: ds.to_table(columns=["id", "logged_at"]), "read the search log")
        newest = outline.sort_by([("logged_at", "descending"), ("id", "descending")])
        chosen = newest.column("id").to_pylist()[:limit]
        rows: dict[str, LoggedSearch] = {}
        for start in range(0, len(chosen), 1000):
            read = functools.partial(ds.to_table, filter=in_("id", chosen[start : start + 1000]))
            table = self._call(read, "read the search log")
            rows.update((row["id"], from_row(row)) for row in table.to_pylist())
        return [rows[i] for i in chosen]

    def get(self, search_id: str) -> LoggedSearch:
        """The entry with this id.

        Raises:
            SearchNotFoundError: No such entry.
        """
        if not isinstance(search_id, str) or not search_id:
            raise SearchNotFoundError(f"a search id is a non-empty string, got {search_id!r}")
        ds = self._dataset()
        rows = (
            []
            if ds is None
            else self._call(
                lambda: ds.to_table(filter=eq("id", search_id)), "read the search log"
            ).to_pylist()
        )
        if not rows:
            raise SearchNotFoundError(
                f"no search {search_id!r} in the search log; store.search_log() lists the recorded ones"
            )
        return from_row(rows[0])


def _fusion_dict(fusion: FusionOptions) -> dict[str, Any]:
    return {**dataclasses.asdict(fusion), "weights": dict(fusion.weights)}


class Recorder:
    """Runs a store's searches and records those asked for in the search log.

    Attributes:
        enabled: Record every search made through this store object (the store-level switch).
    """

    def __init__(self, state: StoreState, searcher: Searcher) -> None:
        """Search with ``searcher``; log beside the store ``state`` describes."""
        self._state = state
        self._searcher = searcher
        self.log = SearchLog(state)
        self.enabled = False

    def search(self, query: Any, record: bool | None, **params: Any) -> SearchResults:
        """Run a search (see ``ContextStore.search``); record it when asked or switched on."""
        if not (self.enabled if record is None else record):
            return SearchResults(self._searcher.search(query, **params))
        if self._state.read_only and self._state.pinned is None:
            raise ReadOnlyError("this store was opened read_only=True, so it records no searches")
        filters = {name: params[name] for name in FILTERS if params.get(name) is not None}
        if isinstance(filters.get("roles"), Iterable) and not isinstance(filters["roles"], str):
            filters["roles"] = list(filters["roles"])
        encode(filters)  # refuse what cannot be logged before searching
        seen: list[tuple[lance.LanceDataset, Vector | None]] = []
        hits = self._searcher.search(query, observe=lambda ds, vector: seen.append((ds, vector)), **params)
        ds, vector = seen[-1]
        entry = self._entry(query, params, filters, ds, vector, hits)
        self.log.append(entry)
        return SearchResults(hits, search_id=entry.id)

    def _entry(
        self,
        query: Any,
        params: Mapping[str, Any],
        filters: dict[str, Any],
        ds: lance.LanceDataset,
        vector: Vector | None,
        hits: list[SearchHit],
    ) -> LoggedSearch:
        metadata = {k.decode(): v.decode() for k, v in (ds.schema.metadata or {}).items()}
        info = read_embedder_info(metadata)
        indexing = self._state.settings.indexing
        options: dict[str, Any] = {name: params[name] for name in OPTIONS if params.get(name) is not None}
        if params.get("mode") == "hybrid":  # the fusion in force, so a later default cannot change a replay
            options["fusion"] = _fusion_dict(params.get("fusion") or FusionOptions())
        options.update(
            nprobes=indexing.nprobes,
            refine_factor=indexing.refine_factor,
            flat_search_max_rows=indexing.flat_search_max_rows,
        )
        return LoggedSearch(
            id=secrets.token_hex(6),
            logged_at=utc_now(),
            branch=self._state.handle.branch,
            version=int(ds.version),
            query=query if isinstance(query, str) and self._state.cipher is None else None,
            mode=params.get("mode", "vector"),
            k=int(params.get("k", 10)),
            filters=filters,
            options=options,
            embedder=None if info is None else info.name,
            dimension=embedding_dimension(ds.schema),
            hits=tuple((h.record.id, float(h.score)) for h in hits),
            query_vector=vector,
        )
