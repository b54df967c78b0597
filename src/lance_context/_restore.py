"""Restoring one session to a past version, leaving every other session as it is.

A whole-store restore is Lance's own (``History.restore``): the past manifest becomes the
latest. One session instead is written back as records, in one commit that replaces the
session: each record as it was written (index text included) and at the position it had,
so the session reads exactly as it did then.
"""

from __future__ import annotations

import dataclasses

import lance

from ._errors import EmbedderMismatchError
from ._filters import in_
from ._reader import stored_records
from ._schema import read_embedder_info
from ._state import StoreState
from ._writer import Writer

__all__ = ["restore_session"]


def restore_session(then: StoreState, now: StoreState, writer: Writer, run_id: str) -> int:
    """Make session ``run_id`` of ``now``'s store what it was in the snapshot ``then`` reads.

    An id that another session holds by now stays there. A vector of another model or
    size than the store's (from before a ``reembed()``) is left out, so today's model
    embeds the record again. Returns the new version.
    """
    past, positions = stored_records(then, run_id)
    latest, handle = now.snapshot(), now.handle
    owners = handle.call(
        lambda: latest.to_table(filter=in_("id", list(positions)), columns=["id", "run_id"]),
        "read where the session's ids are now",
    )
    moved = {
        i
        for i, owner in zip(owners.column("id").to_pylist(), owners.column("run_id").to_pylist())
        if owner != run_id
    }
    dimension = now.embedding.dimension
    then_model, now_model = _model(then, then.snapshot()), _model(now, latest)
    other_model = None not in (then_model, now_model) and then_model != now_model
    back = [r for r in past if r.id not in moved]
    stale = [r for r in back if r.embedding is not None and (other_model or len(r.embedding) != dimension)]
    if stale and now.embedding.embedder is None:
        old = {len(r.embedding) for r in stale if r.embedding is not None}
        raise EmbedderMismatchError(
            f"{len(stale)} record(s) of session {run_id!r} hold {min(old)}-dimensional "
            f"vectors of {then_model or 'another model'} from before a reembed() and the store now holds "
            f"{dimension}-dimensional ones of {now_model or 'its current model'}; "
            "restoring them needs today's model to embed them again: open the store with its "
            "embedder (nothing was written)"
        )
    again = {id(r) for r in stale}
    kept = [dataclasses.replace(r, embedding=None) if id(r) in again else r for r in back]
    return writer.replace(run_id, kept, op="restore", positions=positions)


def _model(state: StoreState, ds: lance.LanceDataset) -> str | None:
    """The embedder a version of the store was written with, as its schema records it."""
    schema = state.handle.schema(ds)
    info = read_embedder_info({k.decode(): v.decode() for k, v in (schema.metadata or {}).items()})
    return None if info is None else info.name
