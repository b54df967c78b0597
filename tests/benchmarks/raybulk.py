"""Bulk ingest on Ray (issue 18): ``lance_context.ray.ingest`` on 1 and 2 workers against one
in-process ``add()`` of the same rows, with the same deterministic embedder doing real work.

The local Ray cluster (2 CPUs, no dashboard) is started before timing: a job's time
includes numbering the input, the workers (convert, validate, embed, write) and the one
commit, not the cluster's start (~7 s here).
"""

from __future__ import annotations

import logging
import os
import warnings
from typing import Any

from common import Bench, Row, p50, time_each, time_once
from data import texts

from lance_context import ContextRecord, ContextStore, HashingEmbedder

DIMENSION = 384


def _items(total: int) -> list[dict[str, Any]]:
    return [{"id": f"d{i}", "run_id": f"s{i % 100}", "text": t} for i, t in enumerate(texts(total, seed=11))]


def ray_ingest(bench: Bench) -> None:
    """Records per second: in-process bulk add, then Ray ingest on 1 and 2 workers."""
    total = bench.size(40_000, 4_000)
    items = _items(total)
    store = ContextStore.open(bench.path("ray-inprocess"), embedder=HashingEmbedder(DIMENSION))

    def add_in_process() -> None:
        store.add([ContextRecord.from_content(i["text"], run_id=i["run_id"], id=i["id"]) for i in items])

    in_process = total / time_once(add_in_process)
    bench.add(Row(f"in-process bulk add of {total:,} texts, hashing embedder", in_process, "rec/s"))

    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    # Ray starts its processes with fork + exec, which Lance's and LanceDB's fork hooks warn about.
    warnings.filterwarnings("ignore", message="lance is not fork-safe")
    warnings.filterwarnings("ignore", message="lancedb fork support is experimental")
    import ray
    from lance_context.ray import ingest

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    logging.getLogger("ray.data").setLevel(logging.WARNING)  # one table, not Ray Data's per-job lines
    try:
        small = ContextStore.open(bench.path("ray-fixed"), embedder=HashingEmbedder(DIMENSION))
        first = time_once(lambda: ingest(items[:200], small, workers=2, progress=False))
        bench.add(
            Row(
                "Ray ingest fixed cost, first job on a new cluster (200 texts, 2 workers)",
                first,
                "s",
                note="numbering the input, Ray's worker processes importing the store, one commit",
            )
        )
        later = p50(
            time_each(lambda: ingest(items[:200], small, workers=2, progress=False) for _ in range(5))
        )
        bench.add(
            Row(
                "Ray ingest fixed cost, a later job (200 texts, 2 workers; median of 5)",
                later,
                "s",
                note="numbering the input, tasks in the worker processes Ray keeps, one commit",
            )
        )
        for workers in (1, 2):
            target = ContextStore.open(bench.path(f"ray-{workers}"), embedder=HashingEmbedder(DIMENSION))
            seconds = time_once(
                lambda t=target, w=workers: ingest(items, t, batch_size=4_096, workers=w, progress=False)
            )
            assert target.count() == total
            bench.add(
                Row(
                    f"Ray ingest of {total:,} texts, {workers} worker{'s' if workers > 1 else ''}",
                    total / seconds,
                    "rec/s",
                    "in-process bulk add",
                    in_process,
                    note="2-CPU local cluster shared with the driver",
                )
            )
    finally:
        ray.shutdown()
