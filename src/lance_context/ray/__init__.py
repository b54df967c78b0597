"""Bulk jobs on Ray: ingest a corpus, or re-embed a store, as one version written by many workers.

``pip install 'lance-context[ray]'``. Both functions run Lance's distributed write
through the store's own seam (``store.bulk()``): Ray Data tasks validate, embed and
write data files in parallel; the driver commits them once. Nothing is visible
before the commit; a failed job leaves the store at the version it had; the batch of a
worker that dies is written again in another process, up to ``max_retries`` times (its
half-written files are referenced by no version, so no record is lost or duplicated).

Why not ``lance-ray``'s writers: its ``LanceDatasink``/``LanceFragmentWriter`` write
and commit raw tables, and its column backfill commits a ``Merge`` of new columns.
A store's write must validate and embed each record as ``add()`` does, number rows
in input order from the version the job started from, commit through the store's
handle with the properties its caches read, and (for a re-embed) replace the vector
column in one commit that conflicts with concurrent appends instead of rebasing
over them. Those steps are the store's; around them Ray Data already does what is
left (reading inputs, task pools, retries, progress). This module therefore depends
on ``ray[data]`` only.

Example:
    >>> import ray
    >>> from lance_context import ContextStore
    >>> from lance_context.ray import ingest, reembed
    >>> store = ContextStore.open("s3://bucket/memory", storage_options=options)  # doctest: +SKIP
    >>> ingest(ray.data.read_parquet("s3://bucket/corpus/"), store, run_id="docs")  # doctest: +SKIP
    >>> reembed(store, new_embedder)  # doctest: +SKIP
"""

from __future__ import annotations

from ._ingest import ingest
from ._reembed import reembed

__all__ = ["ingest", "reembed"]
