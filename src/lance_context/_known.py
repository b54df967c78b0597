"""What a store handle knows of recent versions of its branch without asking Lance again.

Three small bounded memos, each keyed by version number (a branch's version numbers
are never reused while a handle is open on it):

- the manifest **facts** of a version (its fragments and what each index covers), read
  once per version, and derived without a read for the version an append of this
  handle made;
- the Arrow **schema** of a version (pylance builds it anew on every access);
- the transaction **properties** of the commits this handle made, so caches learn what
  those commits changed without reading their transaction files back.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import lance
import pyarrow as pa

__all__ = ["Facts", "KnownVersions"]

V = TypeVar("V")

#: Versions whose facts and schema are kept.
_VERSIONS = 8
#: This handle's recent commits whose properties are kept.
_COMMITS = 64


@dataclass(frozen=True)
class Facts:
    """What the manifest of one version says about its files and indexes (no data read).

    Attributes:
        version: The version described.
        fragments: ``(fragment id, physical rows)`` in storage order.
        indexes: Index name to the fragment ids it covers.
    """

    version: int
    fragments: tuple[tuple[int, int], ...]
    indexes: Mapping[str, frozenset[int]]

    @property
    def rows(self) -> int:
        """Physical rows (deleted rows included until compaction drops them)."""
        return sum(rows for _, rows in self.fragments)

    def unindexed(self, name: str) -> int:
        """Rows the named index does not cover (all of them when it is missing)."""
        covered = self.indexes.get(name, frozenset())
        return sum(rows for fragment, rows in self.fragments if fragment not in covered)

    @classmethod
    def of(cls, ds: lance.LanceDataset) -> Facts:
        """Read the facts of ``ds``'s version from its manifest."""
        indexes: dict[str, set[int]] = {}
        for index in ds.describe_indices():
            covered = indexes.setdefault(index.name, set())
            for segment in index.segments:
                covered.update(int(i) for i in segment.fragment_ids)
        fragments = tuple((int(f.fragment_id), int(f.physical_rows)) for f in ds.get_fragments())
        return cls(int(ds.version), fragments, {k: frozenset(v) for k, v in indexes.items()})


class KnownVersions:
    """Facts, schemas and own commits' properties of recent versions (thread-safe)."""

    def __init__(self) -> None:
        """Start knowing nothing."""
        self._lock = threading.Lock()
        self._facts: OrderedDict[int, Facts] = OrderedDict()
        self._schemas: OrderedDict[int, pa.Schema] = OrderedDict()
        self._properties: OrderedDict[int, dict[str, str]] = OrderedDict()

    def facts(self, version: int) -> Facts | None:
        """The facts of ``version``, if known."""
        with self._lock:
            return self._facts.get(version)

    def schema(self, version: int) -> pa.Schema | None:
        """The schema of ``version``, if known."""
        with self._lock:
            return self._schemas.get(version)

    def properties(self, version: int) -> dict[str, str] | None:
        """The transaction properties of ``version`` if this handle committed it."""
        with self._lock:
            return self._properties.get(version)

    def keep_facts(self, facts: Facts) -> None:
        """Remember the facts of ``facts.version``."""
        self._keep(self._facts, facts.version, facts, _VERSIONS)

    def keep_schema(self, version: int, schema: pa.Schema) -> None:
        """Remember the schema of ``version``."""
        self._keep(self._schemas, version, schema, _VERSIONS)

    def keep_properties(self, version: int, properties: Mapping[str, str]) -> None:
        """Remember what this handle's commit of ``version`` said it did."""
        self._keep(self._properties, version, dict(properties), _COMMITS)

    def after_append(self, base: lance.LanceDataset, new: lance.LanceDataset, written: Iterable[Any]) -> None:
        """Carry the base's schema and facts to the version this handle's append made.

        The facts are derived when the append directly followed ``base``: its fragments
        ``written`` took the ids after the base's highest, which is checked (a fragment
        id freed by a deletion is never reused, so Lance may have started higher: then
        the facts are read from the manifest when asked for).
        """
        version, before = int(new.version), int(base.version)
        schema, facts = self.schema(before), self.facts(before)
        if schema is not None:
            self.keep_schema(version, schema)
        if facts is None or not facts.fragments or version != before + 1:
            return
        first = max(fragment for fragment, _ in facts.fragments) + 1
        added = []
        for offset, fragment in enumerate(written):
            found = new.get_fragment(first + offset)
            if found is None or int(found.physical_rows) != int(fragment.physical_rows):
                return
            added.append((first + offset, int(fragment.physical_rows)))
        self.keep_facts(Facts(version, facts.fragments + tuple(added), facts.indexes))

    def _keep(self, memo: OrderedDict[int, V], version: int, value: V, bound: int) -> None:
        with self._lock:
            memo[version] = value
            memo.move_to_end(version)
            while len(memo) > bound:
                memo.popitem(last=False)
