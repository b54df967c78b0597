"""Which checkpoints ``prune(strategy="keep_latest")`` keeps.

Keeping only the latest checkpoint of each namespace can break a ``DeltaChannel``: it
stores a sentinel instead of its value and rebuilds the value by replaying ancestor
writes back to the nearest ancestor holding a stored value (a ``_DeltaSnapshot``).
So, as LangGraph asks of savers, the kept checkpoint also keeps that chain of ancestors
(with their writes). The channels to rebuild are the keys of the checkpoint's
``counters_since_delta_snapshot`` metadata: LangGraph drops a channel from it when it
snapshots the channel.
"""

from __future__ import annotations

from collections.abc import Sequence

from lance_context import ContextRecord

from ._checkpoint_records import load_checkpoint, load_metadata
from ._serde import PayloadReader

__all__ = ["kept_checkpoints"]


def _delta_ancestors(
    reader: PayloadReader, latest: ContextRecord, by_id: dict[str, ContextRecord]
) -> list[ContextRecord]:
    counters = load_metadata(reader, latest).get("counters_since_delta_snapshot") or {}
    remaining = set(counters) - set(load_checkpoint(reader, latest)["channel_values"])
    chain: list[ContextRecord] = []
    current = latest
    while remaining:
        parent = by_id.get(current.metadata.get("parent_checkpoint_id") or "")
        if parent is None:
            break
        chain.append(parent)
        remaining -= set(load_checkpoint(reader, parent)["channel_values"])
        current = parent
    return chain


def kept_checkpoints(reader: PayloadReader, checkpoints: Sequence[ContextRecord]) -> list[ContextRecord]:
    """The checkpoint records to keep, given every checkpoint of the pruned threads oldest first.

    ``checkpoints`` come in the saver's ``checkpoint_order`` (append order across
    commits, checkpoint id among checkpoints committed at once), so each namespace's
    last one is its latest.
    """
    groups: dict[tuple[str, str], list[ContextRecord]] = {}
    for record in checkpoints:
        groups.setdefault((record.run_id, record.metadata["checkpoint_ns"]), []).append(record)
    kept: list[ContextRecord] = []
    for group in groups.values():
        by_id = {r.metadata["checkpoint_id"]: r for r in group}
        latest = group[-1]
        kept.append(latest)
        kept.extend(_delta_ancestors(reader, latest, by_id))
    return kept
