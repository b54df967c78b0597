"""What a store handle knows of recent versions of its branch without asking Lance again.

Small bounded memos, each keyed by version number (a branch's version numbers are
never reused while a handle is open on it; :func:`manifest_stamp` tells when they were):

- the manifest **facts** of a version (its fragments and what each index covers), read
  once per version, and derived without a read for the version an append of this
  handle made;
- the Arrow **schema** of a version (pylance builds it anew on every access);
- the transaction **properties** of the commits this handle made, so caches learn what
  those commits changed without reading their transaction files back;
- the **stamp** of a local branch's manifest of a version, as this handle first saw it:
  a branch deleted and made again under its name writes new manifests, maybe with the
  very version numbers the handle read, and a changed stamp shows that for one ``stat``.

And one memo for the whole process, :class:`Committed`: what a committed version of a
store's branch is (when, how many rows, what its commit did). A committed version never
changes, so each is read from storage once per process (on S3 two requests per version),
however many handles list the versions or ask what commits changed.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import lance
import pyarrow as pa

from ._manifests import LocalManifests

__all__ = ["Committed", "Facts", "KnownVersions", "Stamp", "StoreKey", "manifest_stamp"]

V = TypeVar("V")

#: Versions whose facts and schema are kept.
_VERSIONS = 8
#: This handle's recent commits whose properties are kept.
_COMMITS = 64
#: Stores (branches) and versions per branch whose committed facts the process keeps.
_STORES, _PER_STORE = 64, 32_768

#: Which history a version number belongs to: (URI, branch, the branch's identifier), as
#: a branch deleted and made again under its name numbers its versions anew.
StoreKey = tuple[str, str, object]

#: Which file a local manifest is: (inode, size, modification time in ns). Manifests are
#: written once and never changed, so another stamp means another file of the same name.
Stamp = tuple[int, int, int]


def manifest_stamp(manifests: LocalManifests, version: int) -> Stamp | None:
    """The stamp of ``version``'s manifest (one ``stat``); None when it does not exist.

    ``manifests`` must be ``known`` (a local store whose layout was recognised).

    Example:
        >>> manifest_stamp(LocalManifests.find("/tmp/store.lance", "main", 1), 1)  # doctest: +SKIP
        (1311, 368, 1796247900260094892)
    """
    assert manifests.folder is not None and manifests.naming is not None
    name = manifests.naming.format(version=version, inverted=2**64 - 1 - version)
    try:
        found = os.stat(os.path.join(manifests.folder, name))
    except OSError:
        return None
    return (found.st_ino, found.st_size, found.st_mtime_ns)


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
    """Facts, schemas, manifest stamps and own commits' properties of recent versions (thread-safe)."""

    def __init__(self) -> None:
        """Start knowing nothing."""
        self._lock = threading.Lock()
        self._facts: OrderedDict[int, Facts] = OrderedDict()
        self._schemas: OrderedDict[int, pa.Schema] = OrderedDict()
        self._properties: OrderedDict[int, dict[str, str]] = OrderedDict()
        self._stamps: OrderedDict[int, Stamp] = OrderedDict()

    def same_manifest(self, manifests: LocalManifests, version: int) -> bool | None:
        """Whether ``version``'s manifest is the file this handle first saw there (one ``stat``).

        None when that cannot be told: manifests not ``known`` (an object store), or none
        for ``version`` (cleaned up, or the branch was deleted, or made again without it).
        """
        seen = manifest_stamp(manifests, version) if manifests.known else None
        if seen is None:
            return None
        with self._lock:
            first = self._stamps.setdefault(version, seen)
            while len(self._stamps) > _VERSIONS:
                self._stamps.popitem(last=False)
        return first == seen

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


class Committed(Generic[V]):
    """What committed versions of each store branch are, for the whole process (thread-safe).

    Keyed by :data:`StoreKey` and version number. Whoever reads a version also checks,
    for free, that a version it knows still is what it was (its commit time): a store
    deleted and created again at the same place starts a new history, which
    :meth:`forget` drops.
    """

    def __init__(self, stores: int = _STORES, per_store: int = _PER_STORE) -> None:
        """Remember up to ``per_store`` versions of each of the ``stores`` most recent branches."""
        self._lock = threading.Lock()
        self._stores: OrderedDict[StoreKey, dict[int, V]] = OrderedDict()
        self._bounds = (stores, per_store)

    def get(self, key: StoreKey, version: int) -> V | None:
        """What ``version`` of the branch ``key`` is, if known."""
        with self._lock:
            known = self._stores.get(key)
            return None if known is None else known.get(version)

    def keep(self, key: StoreKey, version: int, value: V) -> None:
        """Remember what ``version`` of the branch ``key`` is."""
        stores, per_store = self._bounds
        with self._lock:
            known = self._stores.setdefault(key, {})
            self._stores.move_to_end(key)
            known[version] = value
            while len(known) > per_store:
                del known[min(known)]
            while len(self._stores) > stores:
                self._stores.popitem(last=False)

    def keep_only(self, key: StoreKey, versions: Iterable[int]) -> None:
        """Forget the versions of ``key`` not in ``versions`` (removed by cleanup)."""
        alive = set(versions)
        with self._lock:
            known = self._stores.get(key)
            if known is not None:
                for version in [v for v in known if v not in alive]:
                    del known[version]

    def forget(self, key: StoreKey) -> None:
        """Forget every version of ``key`` (its history was replaced)."""
        with self._lock:
            self._stores.pop(key, None)
