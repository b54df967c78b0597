"""``reembed``: switch a store to another embedding model, the new vectors computed by Ray workers."""

from __future__ import annotations

import dataclasses
from typing import Any

import pyarrow as pa

from lance_context import CommitConflictError, ContextStore
from lance_context.adapters import BulkPart, BulkWorker, RewritePlan

from ._jobs import check_job, check_positive, job_context, job_worker, part_row, require_ray, run_workers

__all__ = ["reembed"]

_SLICE = "_lance_context_slice"


def _rewrite_slice(batch: pa.Table, token: str, plan: RewritePlan) -> pa.Table:
    """A Ray task: rewrites one slice of the store with the new embedder's vectors."""
    worker = job_worker(token, lambda: BulkWorker(plan))
    (index,) = batch.column(_SLICE).to_pylist()
    return part_row(worker.rewrite(plan.slices[index]))


def reembed(
    store: ContextStore,
    embedder: Any,
    *,
    rows_per_task: int = 8192,
    batch_size: int = 256,
    workers: int | None = None,
    max_retries: int = 3,
    attempts: int = 3,
    progress: bool = True,
) -> int:
    """Re-embed every record with ``embedder`` across Ray workers; the new vectors land as one version.

    The same result as ``store.reembed(embedder)``: older versions keep their old
    vectors, records without text get none, and the store embeds with ``embedder``
    from then on. The commit fails rather than drop a record another writer added
    meanwhile; the job then re-reads the store and rewrites only the slices that
    changed, up to ``attempts`` times.

    Args:
        store: An open, writable store (on object storage for a multi-node cluster).
        embedder: The new embedder (any embedder ``ContextStore.open`` accepts; picklable).
        rows_per_task: Records per worker call.
        batch_size: Texts per embedder call.
        workers: Ray tasks at once (default: one per CPU of the cluster).
        max_retries: How often a slice whose worker process dies is run again.
        attempts: Commits tried while other writers keep committing.
        progress: Show Ray Data's progress bars.

    Returns:
        The version holding the new vectors.

    Raises:
        InvalidRecordError: An argument is out of range (nothing written).
        CommitConflictError: Other writers committed during every attempt (nothing written).
        EmbeddingError: The embedder failed (nothing written).
        StoreError: Ray workers failed otherwise (nothing written).

    Example:
        >>> from lance_context.ray import reembed
        >>> reembed(store, SentenceTransformerEmbedder("all-MiniLM-L12-v2"))  # doctest: +SKIP
    """
    check_positive("rows_per_task", rows_per_task)
    check_positive("attempts", attempts)
    check_job(workers, max_retries)
    require_ray()
    writer = store.bulk()
    done: dict[tuple[str, int, int], BulkPart] = {}
    for _ in range(attempts):
        plan = writer.plan_reembed(embedder, rows_per_slice=rows_per_task, batch_size=batch_size)
        todo = [piece.index for piece in plan.slices if piece.key not in done]
        if todo:
            with job_context(progress) as ray:
                work = ray.data.from_items([{_SLICE: i} for i in todo], override_num_blocks=len(todo))
                parts = run_workers(
                    work,
                    _rewrite_slice,
                    (plan,),
                    batch_size=1,
                    workers=workers,
                    retries=max_retries,
                    batches=len(todo),
                )
            for part in parts:
                done[plan.slices[part.first].key] = part
        ordered = [dataclasses.replace(done[piece.key], first=piece.index) for piece in plan.slices]
        try:
            return writer.commit_reembed(plan, ordered)
        except CommitConflictError:
            continue  # another writer committed: plan again, rewrite only what changed
    raise CommitConflictError(
        f"the store changed during each of {attempts} re-embedding attempts; nothing was written: "
        "run reembed() again when fewer writers are active"
    )
