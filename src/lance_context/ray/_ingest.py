"""``ingest``: a corpus into a store as one version, embedded and written by Ray workers."""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from lance_context import ContextStore
from lance_context.adapters import BulkPlan, BulkWorker

from ._jobs import (
    POSITION,
    as_dataset,
    check_job,
    check_positive,
    job_context,
    job_failure,
    job_worker,
    part_row,
    require_ray,
    run_workers,
)
from ._mixed import mixed_types, tag_block, untag
from ._rows import row_to_record

__all__ = ["ingest"]


def _write_part(batch: pa.Table, token: str, plan: BulkPlan, run_id: str, role: str) -> pa.Table:
    """A Ray task: a batch of rows to records, then validated, embedded and written as fragments."""
    worker = job_worker(token, lambda: BulkWorker(plan))
    positions = batch.column(POSITION).to_pylist()
    rows = batch.drop_columns([POSITION]).to_pylist()
    records = [row_to_record(untag(row), run_id=run_id, role=role) for row in rows]
    return part_row(worker.write(records, positions))


def _numbered(ray: Any, dataset: Any, batch_size: int) -> tuple[Any, int, int]:
    """``dataset`` with each row's position in the input (so append order follows it), its size, its batches.

    Ray Data does not number rows across blocks, so the blocks are materialized in order,
    counted, and numbered from their offsets (each by a small task next to its block).
    A content column whose type differs between blocks is tagged there (see ``_mixed``).
    Each batch becomes a block of its own: a large block would otherwise reach one worker
    only, however many workers the job has.
    """
    blocks = dataset.to_arrow_refs()
    describe = ray.remote(lambda block: (block.num_rows, block.schema))
    described = ray.get([describe.remote(block) for block in blocks])
    sizes = [size for size, _ in described]
    # A content column typed differently by block is tagged (see _mixed).
    mixed = mixed_types([schema for _, schema in described])

    def number(block: pa.Table, start: int, offset: int, length: int) -> pa.Table:
        piece = tag_block(block.slice(offset, length), mixed)
        first = start + offset
        return piece.append_column(POSITION, pa.array(range(first, first + piece.num_rows), pa.int64()))

    numbering = ray.remote(number)
    numbered, start = [], 0
    for block, size in zip(blocks, sizes, strict=True):
        for offset in range(0, size, batch_size):
            numbered.append(numbering.remote(block, start, offset, min(batch_size, size - offset)))
        start += size
    return ray.data.from_arrow_refs(numbered) if numbered else None, start, len(numbered)


def ingest(
    items: Any,
    store: ContextStore,
    *,
    run_id: str = "default",
    role: str = "user",
    batch_size: int = 1024,
    workers: int | None = None,
    max_retries: int = 3,
    progress: bool = True,
) -> int:
    """Add every item to ``store`` as one new version, embedded and written across Ray workers.

    Workers validate each record as ``store.add()`` does, embed the ones without a
    vector with the store's embedder (it must be picklable: Ray sends it to them),
    and write data files; the driver then commits all of them at once. Nothing is
    visible before that commit; if the job fails, the store stays at the version it
    had. Records keep the input's order (``store.records()``), after everything
    committed before the job started.

    Args:
        items: A Ray Dataset, a pandas DataFrame, a pyarrow Table, a path Ray Data can
            read (Parquet, JSON Lines, CSV, Lance), or an iterable of texts, dicts or
            ``ContextRecord`` objects. Columns are read as in ``lance_context.ray._rows``:
            ``text``/``content``/``image``, ``id``, ``run_id``, ``role``, ``metadata``,
            ``embedding``, ``created_at``; other columns become metadata. A ``content``
            column may mix texts, bytes and JSON values across rows (see ``_mixed``);
            pass such rows as a list or DataFrame: ``ray.data.from_items`` already turns
            texts into bytes when a block holds both.
        store: An open, writable store; Ray workers open it again from its URI, so a
            multi-node cluster needs a store on object storage.
        run_id: The session of rows without a ``run_id``.
        role: The role of rows without a ``role``.
        batch_size: Records per worker call (and per data file).
        workers: Ray tasks writing at once (default: one per CPU of the cluster).
        max_retries: How often a batch whose worker process dies is run again.
        progress: Show Ray Data's progress bars.

    Returns:
        The new version (the current one when there was nothing to add).

    Raises:
        InvalidRecordError: A row is not a valid record, an id appears twice, or an argument
            is out of range (nothing written).
        EmbeddingError: The embedder failed (nothing written).
        CommitConflictError: The store was overwritten or restored during the job.
        StoreError: Ray workers failed otherwise (nothing written).
        ImportError: Ray is not installed (``pip install 'lance-context[ray]'``).

    Example:
        >>> import ray
        >>> from lance_context.ray import ingest
        >>> version = ingest(ray.data.read_parquet("corpus/"), store, run_id="docs")  # doctest: +SKIP
    """
    check_positive("batch_size", batch_size)
    check_job(workers, max_retries)
    require_ray()
    writer = store.bulk()
    plan = writer.plan()
    with job_context(progress) as ray:
        dataset = as_dataset(items)
        try:
            numbered, rows, batches = _numbered(ray, dataset, batch_size)
        except Exception as exc:  # reading the input failed (Ray raises its own wrappers)
            raise job_failure(exc) from None
        if rows == 0:
            return int(store.version())
        parts = run_workers(
            numbered,
            _write_part,
            (plan, run_id, role),
            batch_size=batch_size,
            workers=workers,
            retries=max_retries,
            batches=batches,
        )
    return writer.commit(plan, parts)
