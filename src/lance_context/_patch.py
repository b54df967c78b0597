"""Changing stored records' metadata in place, read and written inside one commit attempt.

A caller that reads records, changes their metadata and upserts them undoes a write
another process committed in between (its value comes back as read). Here the records
are read from the snapshot the commit is based on; when another commit touched them
first, Lance refuses this one as a conflict and the attempt runs again on the new
version, so the change applies to what the other writer left. Ids not stored are
skipped (a record deleted meanwhile stays deleted); each record keeps its place, text,
vector and index text. An ``add()`` of a stored id committed meanwhile is an append
Lance rebases this commit over without a conflict: its new copy, the one reads show, is
patched by a second commit, as one step after the other would have patched it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import lance
import pyarrow.compute as pc

from ._arrow import records_to_table, table_to_records
from ._content_checks import check_content
from ._errors import InvalidRecordError
from ._filters import in_
from ._reader import ordered
from ._state import StoreState
from ._validation import validate_record
from ._versions import commit_properties

__all__ = ["Patch", "copies_added_meanwhile", "patch_ids", "patch_metadata"]

Row = tuple[str, int]  # (id, seq)

#: New metadata from a record's current metadata, or the keys to set in it.
Patch = Callable[[dict[str, Any]], Mapping[str, Any]] | Mapping[str, Any]


def patch_ids(ids: str | Iterable[str]) -> list[str]:
    """The ids asked for, checked (a str is one id)."""
    if isinstance(ids, (bytes, Mapping)) or not isinstance(ids, (str, Iterable)):
        raise InvalidRecordError(
            f"ids must be an id or an iterable of ids, got {ids!r:.60}; nothing was written"
        )
    wanted = [ids] if isinstance(ids, str) else list(dict.fromkeys(ids))
    if not all(isinstance(i, str) for i in wanted):
        raise InvalidRecordError(f"ids must be strings, got {wanted!r:.60}; nothing was written")
    return wanted


def _patched(metadata: dict[str, Any], patch: Patch) -> dict[str, Any]:
    new = patch(dict(metadata)) if callable(patch) else {**metadata, **patch}
    if not isinstance(new, Mapping):
        raise InvalidRecordError(
            f"the patch must return the metadata dict, got {new!r:.60}; nothing was written"
        )
    return dict(new)


def patch_metadata(
    state: StoreState, ids: list[str], patch: Patch
) -> tuple[lance.LanceDataset, lance.LanceDataset, set[str], set[Row]] | None:
    """Commit the patched metadata of the stored ``ids``.

    Returns (base, new, sessions touched, the ``(id, seq)`` rows read), or None when
    none of them is stored.
    """
    handle, cipher, limits = state.handle, state.cipher, state.settings.limits
    outcome: dict[str, Any] = {}

    def attempt() -> lance.LanceDataset | None:
        base = handle.private_latest()
        outcome["base"] = base
        schema = handle.schema(base)
        rows = ordered(base.to_table(filter=in_("id", ids), columns=schema.names))
        if rows.num_rows == 0:
            return None
        ids_read = rows.column("id").to_pylist()
        outcome["read"] = set(zip(ids_read, rows.column("seq").to_pylist(), strict=True))
        newest = rows.take(_last_of_each(ids_read))  # an id stored twice: its newest copy
        records = [
            dataclasses.replace(r, metadata=_patched(r.metadata, patch))
            for r in table_to_records(newest, cipher, index_text=True)
        ]
        for record in records:
            validate_record(record)
            check_content(record, limits)
        table = records_to_table(records, [r.embedding for r in records], schema, 0, cipher)
        table = table.set_column(table.schema.get_field_index("seq"), "seq", newest.column("seq"))
        sessions = set(pc.unique(rows.column("run_id")).to_pylist())
        outcome["sessions"] = sessions
        transaction, _ = base.merge_insert("id").when_matched_update_all().execute_uncommitted(table)
        return handle.commit(base, transaction, commit_properties("update", len(records), sessions))

    new = handle.call(attempt, f"update the metadata of {len(ids)} records")
    return None if new is None else (outcome["base"], new, outcome["sessions"], outcome["read"])


def copies_added_meanwhile(
    state: StoreState, base: lance.LanceDataset, new: lance.LanceDataset, read: set[Row]
) -> list[str]:
    """The ids of ``read`` that gained a copy the patch did not read (an ``add()`` rebased under it)."""
    if int(new.version) == int(base.version) + 1:
        return []
    ids = sorted({record_id for record_id, _ in read})
    found = state.handle.call(
        lambda: new.to_table(filter=in_("id", ids), columns=["id", "seq"]), "check the patched records"
    )
    rows = zip(found.column("id").to_pylist(), found.column("seq").to_pylist(), strict=True)
    return sorted({record_id for record_id, seq in rows if (record_id, seq) not in read})


def _last_of_each(ids: list[str]) -> list[int]:
    """Row positions of each id's last row, in first-seen order."""
    last = {record_id: position for position, record_id in enumerate(ids)}
    return sorted(last.values())
