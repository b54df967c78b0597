"""Vector search at 100,000 records, the store against Lance's own query (issue 14, target 3).

Runs on the bulk-loaded store of the ``bulk`` workload (100,000 records, 1,000 sessions
of 100; its vector index is built before timing). The peer is the floor under our
call: pylance's ``to_table(nearest=...)`` on the same dataset, with the same index and
the parameters the store uses (``IndexPolicy.nprobes``/``refine_factor``), reading only
``id`` and the distance; within a session, the same exact prefiltered query the store
runs (``use_index=False``, ``prefilter=True``). Queries alternate between the two;
recall@10 is against exact numpy search.
"""

from __future__ import annotations

import random
import time
from collections import defaultdict

import lance
import numpy as np
from bulk import Loaded
from common import Bench, Row, check, ms, p50
from data import exact_top_k, queries

K = 10


def _recall(found: list[int], truth: list[int]) -> float:
    return len(set(found) & set(truth)) / len(truth)


def vector_search(bench: Bench, loaded: Loaded) -> None:
    """``vectors``: k=10 over the whole store and within one session, ours vs the Lance floor."""
    store, data = loaded.store, loaded.data
    row_of = {record_id: i for i, record_id in enumerate(loaded.ids)}
    qs = queries(bench.size(200, 60), seed=97)
    store.search(qs[0], k=K)  # builds the vector index when due (timed in the search workload)
    ds = lance.dataset(store.uri)
    policy = store.indexing
    indexed = any(i.name == "embedding_idx" for i in ds.describe_indices())
    run_ids = np.array(data.run_ids)
    rng = random.Random(14)
    sessions = [rng.choice(data.run_ids) for _ in qs]
    rows_of = {s: np.flatnonzero(run_ids == s) for s in set(sessions)}

    def floor(q: np.ndarray, session: str | None) -> list[str]:
        nearest = {"column": "embedding", "q": q, "k": K, "metric": "cosine"}
        if session is None and indexed:
            nearest |= {"nprobes": policy.nprobes, "refine_factor": policy.refine_factor}
            table = ds.to_table(nearest=nearest, columns=["id"])
        else:
            nearest["use_index"] = False
            table = ds.to_table(
                nearest=nearest, columns=["id"], filter=f"run_id = '{session}'", prefilter=True
            )
        return [str(x) for x in table.column("id").to_pylist()]

    for scope in ("all", "session"):
        times: dict[str, list[float]] = defaultdict(list)
        recall: dict[str, list[float]] = defaultdict(list)
        for n, (q, s) in enumerate(zip(qs, sessions)):
            session = None if scope == "all" else s
            truth = exact_top_k(data.vectors, q, K, None if session is None else rows_of[session])
            calls = [
                (
                    "ours",
                    lambda q=q, session=session: [h.record.id for h in store.search(q, k=K, run_id=session)],
                ),
                ("floor", lambda q=q, session=session: floor(q, session)),
            ]
            for key, call in calls if n % 2 == 0 else calls[::-1]:
                start = time.perf_counter()
                ids = call()
                times[key].append(time.perf_counter() - start)
                recall[key].append(_recall([row_of[i] for i in ids], truth))
        ours_recall, floor_recall = float(np.mean(recall["ours"])), float(np.mean(recall["floor"]))
        where = (
            f"{len(data):,} records" if scope == "all" else f"one session of ~100 in {len(data):,} records"
        )
        peer = (
            f"pylance alone: same index, nprobes={policy.nprobes}, refine_factor={policy.refine_factor}, id only"
            if scope == "all"
            else "pylance alone: exact prefiltered search, id only"
        )
        row = Row(
            f"vector search k={K}, {where}",
            ms(p50(times["ours"])),
            "ms",
            peer,
            ms(p50(times["floor"])),
            target="14.3",
            goal="≤ 3 ms, recall ≥ 0.95",
            note=f"recall@{K} ours {ours_recall:.3f}, pylance {floor_recall:.3f}",
        )
        bench.add(check(row, row.ours is not None and row.ours <= 3 and ours_recall >= 0.95))
