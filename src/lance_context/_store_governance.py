"""Forgetting, retention, snapshots, key rotation, maintenance: part of :class:`ContextStore`'s surface.

Split out of ``_store.py`` for size only. It holds no state and no logic: each method hands
its call to the module that owns the work, with the store's
:class:`~lance_context._state.StoreState`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

from ._bulk import BulkWriter
from ._encryption import EncryptionPolicy
from ._forget import ForgetReport, Forgetter
from ._keyring import rotate_key
from ._maintenance import Maintainer
from ._retention import RetentionPolicy, RetentionReport, apply_retention
from ._sealed import check_query
from ._snapshot import SnapshotReport, export_snapshot, import_snapshot
from ._state import StoreState

if TYPE_CHECKING:
    from ._store import ContextStore

__all__ = ["GovernanceMethods"]


class GovernanceMethods:
    """The governance and maintenance methods of :class:`~lance_context.ContextStore`."""

    _state: StoreState
    _maintainer: Maintainer

    def forget(
        self,
        ids: str | Iterable[str] | None = None,
        *,
        run_id: str | None = None,
        where: Mapping[Any, Any] | None = None,
        dry_run: bool = False,
    ) -> ForgetReport:
        """Erase matching records (all conditions given must match) from every version and file.

        Every copy of the matched ids goes, on every branch; the versions that held them
        are removed (earlier versions stay), tags on those versions are removed, and every
        remaining file is scanned for what was erased. ``dry_run`` only reports the plan.
        See the README's Governance section.
        """
        check_query(self._state.cipher, where=where)
        return Forgetter(self._state).forget(ids, run_id=run_id, where=where, dry_run=dry_run)

    def apply_retention(
        self, policy: RetentionPolicy | None = None, *, now: datetime | None = None, dry_run: bool = False
    ) -> RetentionReport:
        """Remove, on every branch, the versions ``policy`` (default: the store's own) does not keep.

        ``now`` evaluates ages as of another time (for tests and what-if runs); ``dry_run``
        reports what would be removed and removes nothing. A version another branch was
        made from is kept (the branch reads it).
        """
        chosen = policy if policy is not None else self._state.settings.retention or RetentionPolicy()
        return apply_retention(self._state, chosen, now, dry_run=dry_run)

    def export(
        self,
        dest_uri: str,
        *,
        version: int | None = None,
        tag: str | None = None,
        branch: str | None = None,
        history: bool = False,
        storage_options: Mapping[str, str] | None = None,
    ) -> SnapshotReport:
        """Write a self-contained store at ``dest_uri`` that ``ContextStore.open`` reads as is.

        Exports the version read (or ``version=``, ``tag=``, ``branch=``'s latest) with its
        vectors, indexes and embedder; ``history=True`` also copies every later version of
        main, with their tags. ``storage_options`` are the destination's.
        """
        return export_snapshot(
            self._state, dest_uri, version=version, tag=tag, branch=branch, history=history,
            storage_options=storage_options,
        )  # fmt: skip

    def rotate_key(self, encryption: EncryptionPolicy) -> int:
        """Re-encrypt every record with ``encryption``'s key(s) as one new version; return it.

        Also encrypts a store written in plaintext. Older versions keep what sealed them:
        read them with the old key in ``EncryptionPolicy.previous_keys``.
        """
        return rotate_key(self._state, encryption)

    # ------------------------------------------------------------------ snapshots
    @classmethod
    def import_(
        cls,
        source_uri: str,
        into: str | ContextStore,
        *,
        version: int | str | None = None,
        storage_options: Mapping[str, str] | None = None,
        source_storage_options: Mapping[str, str] | None = None,
        encryption: EncryptionPolicy | None = None,
        source_encryption: EncryptionPolicy | None = None,
    ) -> ContextStore:
        """Bring a snapshot into ``into``: a copy where nothing is, else a merge as one version.

        A merge upserts the snapshot's records (their vectors kept, nothing re-embedded)
        and refuses a snapshot built with another embedder. Returns the store at ``into``.
        """
        return import_snapshot(
            cast("type[ContextStore]", cls), source_uri, into, version=version,
            storage_options=storage_options,
            source_storage_options=source_storage_options, encryption=encryption,
            source_encryption=source_encryption,
        )  # fmt: skip

    # ------------------------------------------------------------------ maintenance
    def compact(self) -> None:
        """Merge every small fragment now and refresh the indexes (new versions).

        With other processes writing meanwhile, "every" means the fragments present when
        the call began: a retry after another writer's compaction won merges what is left
        of them, and leaves the fragments written since to their writers' own compaction.
        """
        self._maintainer.compact()

    def build_vector_index(self) -> None:
        """Build (or rebuild) the approximate vector index now."""
        self._maintainer.build_vector_index()

    def bulk(self) -> BulkWriter:
        """The distributed-write seam (``lance_context.ray`` uses it): plan here, write anywhere, commit here.

        See :class:`lance_context.adapters.BulkWriter`.
        """
        return BulkWriter(self._state, self._maintainer)
