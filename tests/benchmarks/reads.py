"""Read workloads on the large store: the last 50 messages of a session (target 3) and
vector search with and without a session filter (target 4)."""

from __future__ import annotations

import random
import sqlite3
from typing import Any

import numpy as np
import pyarrow as pa
from bulk import Loaded
from common import Bench, Row, check, ms, p50, time_each, time_once
from data import corpus, exact_top_k, queries
from writes import _fill_sql

LAST = 50
K = 10


# ---------------------------------------------------------------------- target 3
def last_messages(bench: Bench, loaded: Loaded) -> None:
    """``records(run_id, last=50)`` against SQLChatMessageHistory on the same messages."""
    from langchain_community.chat_message_histories import SQLChatMessageHistory
    from sqlalchemy import create_engine

    store, data = loaded.store, loaded.data
    sessions = sorted(set(data.run_ids))
    picks = random.Random(3).choices(sessions, k=bench.size(300, 100))
    expected = {s: [t for t, r in zip(data.texts, data.run_ids) if r == s][-LAST:] for s in set(picks)}
    got = store.records(picks[0], last=LAST)
    assert [r.text for r in got] == expected[picks[0]], "records(last=50) returned the wrong messages"
    path = bench.path("history.sqlite")
    engine = create_engine(f"sqlite:///{path}")
    histories = {s: SQLChatMessageHistory(s, connection=engine) for s in set(picks)}
    _fill_sql(path, data, 0, len(data))
    assert [m.content for m in histories[picks[0]].messages[-LAST:]] == expected[picks[0]]

    mine = time_each(lambda s=s: store.records(s, last=LAST) for s in picks)
    theirs = time_each(lambda s=s: histories[s].messages[-LAST:] for s in picks)
    name = f"last {LAST} messages of a session, {len(data):,} messages / {len(sessions):,} sessions"
    row = Row(
        name,
        ms(p50(mine)),
        "ms",
        "SQLChatMessageHistory (SQLite)",
        ms(p50(theirs)),
        target="3",
        goal="≤ 5 ms and ≤ peer",
    )
    bench.add(check(row, row.ours is not None and row.ours <= 5 and row.ratio is not None and row.ratio <= 1))

    with sqlite3.connect(path) as db:
        db.execute("CREATE INDEX IF NOT EXISTS ix_message_store_session ON message_store (session_id)")
    engine.dispose()
    indexed = time_each(lambda s=s: histories[s].messages[-LAST:] for s in picks)
    mine = time_each(lambda s=s: store.records(s, last=LAST) for s in picks)
    bench.add(Row(name, ms(p50(mine)), "ms", "SQLChatMessageHistory + index on session_id", ms(p50(indexed))))
    _in_memory_history(bench, loaded, picks)


def _in_memory_history(bench: Bench, loaded: Loaded, picks: list[str]) -> None:
    from langchain_core.chat_history import InMemoryChatMessageHistory
    from langchain_core.messages import AIMessage, HumanMessage

    kinds = {"user": HumanMessage, "assistant": AIMessage}
    histories: dict[str, InMemoryChatMessageHistory] = {}
    data = loaded.data
    for text, run_id, role in zip(data.texts, data.run_ids, data.roles):
        histories.setdefault(run_id, InMemoryChatMessageHistory()).add_message(kinds[role](text))
    mem = time_each(lambda s=s: histories[s].messages[-LAST:] for s in picks)
    bench.add(
        Row(
            f"last {LAST} messages of a session (in-process list, not durable)",
            None,
            "ms",
            "InMemoryChatMessageHistory",
            ms(p50(mem)),
        )
    )


# ---------------------------------------------------------------------- target 4
def _recall(found: list[int], truth: list[int]) -> float:
    return len(set(found) & set(truth)) / len(truth)


def vector_search(bench: Bench, loaded: Loaded) -> None:
    """k=10 vector search over the large store, then with a session filter; recall
    against exact search. Peers: InMemoryVectorStore and langchain-community LanceDB."""
    store, data = loaded.store, loaded.data
    row_of = {record_id: i for i, record_id in enumerate(loaded.ids)}
    qs = queries(bench.size(200, 60))
    truth = [exact_top_k(data.vectors, q, K) for q in qs]
    run_ids = np.array(data.run_ids)
    rng = random.Random(4)
    sessions = [rng.choice(data.run_ids) for _ in qs]
    session_rows = {s: np.flatnonzero(run_ids == s) for s in set(sessions)}
    ftruth = [exact_top_k(data.vectors, q, K, session_rows[s]) for q, s in zip(qs, sessions)]

    first = time_once(lambda: store.search(qs[0], k=K))
    bench.add(Row("first vector search (builds the vector index when due)", ms(first), "ms"))
    found: list[list[int]] = []
    mine = time_each(
        lambda q=q: found.append([row_of[h.record.id] for h in store.search(q, k=K)]) for q in qs
    )
    recall = float(np.mean([_recall(f, t) for f, t in zip(found, truth)]))
    ffound: list[list[int]] = []
    fmine = time_each(
        lambda q=q, s=s: ffound.append([row_of[h.record.id] for h in store.search(q, k=K, run_id=s)])
        for q, s in zip(qs, sessions)
    )
    frecall = float(np.mean([_recall(f, t) for f, t in zip(ffound, ftruth)]))

    peers = _vector_peers(bench, loaded, qs, truth, sessions, ftruth)
    total = f"{len(data):,}"
    for peer, (value, peer_recall) in peers["plain"].items():
        row = Row(
            f"vector search k={K}, {total} records",
            ms(p50(mine)),
            "ms",
            peer,
            value,
            target="4",
            goal="≤ 5 ms, recall ≥ 0.95, < peer",
            note=f"recall ours {recall:.3f}, peer {peer_recall:.3f}",
        )
        bench.add(
            check(
                row,
                row.ours is not None
                and row.ours <= 5
                and recall >= 0.95
                and row.ratio is not None
                and row.ratio < 1,
            )
        )
    for peer, (value, peer_recall) in peers["filtered"].items():
        row = Row(
            f"vector search k={K} in one session, {total} records",
            ms(p50(fmine)),
            "ms",
            peer,
            value,
            target="4",
            goal="recall ≥ 0.95, < peer",
            note=f"recall ours {frecall:.3f}, peer {peer_recall:.3f}",
        )
        bench.add(check(row, frecall >= 0.95 and row.ratio is not None and row.ratio < 1))


class _Precomputed:
    """A LangChain Embeddings that returns the corpus' precomputed vectors (no model runs)."""

    def __init__(self, by_text: dict[str, list[float]]) -> None:
        self.by_text = by_text

    def embed_documents(self, batch: list[str]) -> list[list[float]]:
        return [self.by_text[t] for t in batch]

    def embed_query(self, text: str) -> list[float]:
        return self.by_text[text]


def _vector_peers(
    bench: Bench,
    loaded: Loaded,
    qs: np.ndarray,
    truth: list[list[int]],
    sessions: list[str],
    ftruth: list[list[int]],
) -> dict[str, dict[str, tuple[float, float]]]:
    out: dict[str, dict[str, tuple[float, float]]] = {"plain": {}, "filtered": {}}
    for name, search in (
        ("InMemoryVectorStore", _in_memory_store),
        ("langchain-community LanceDB", _lancedb),
    ):
        plain, filtered = search(bench, loaded)
        n = bench.size(20, 8) if "LanceDB" in name else bench.size(5, 3)
        for key, fn, expect, args in (
            ("plain", plain, truth, [None] * n),
            ("filtered", filtered, ftruth, sessions),
        ):
            found: list[list[int]] = []
            seconds = time_each(
                lambda q=q, s=s, f=fn, out=found: out.append(f(q, s)) for q, s in zip(qs[:n], args[:n])
            )
            recall = float(np.mean([_recall(f, t) for f, t in zip(found, expect[:n])]))
            out[key][name] = (ms(p50(seconds)), recall)
    return out


def _in_memory_store(bench: Bench, loaded: Loaded) -> tuple[Any, Any]:
    from langchain_core.documents import Document
    from langchain_core.vectorstores import InMemoryVectorStore

    data = loaded.data
    vectors = data.vectors.tolist()
    embeddings = _Precomputed(dict(zip(data.texts, vectors)))
    vs = InMemoryVectorStore(embeddings)
    docs = [
        Document(t, metadata={"row": i, "run_id": r})
        for i, (t, r) in enumerate(zip(data.texts, data.run_ids))
    ]
    vs.add_documents(docs)

    def plain(q: np.ndarray, _: object) -> list[int]:
        return [d.metadata["row"] for d in vs.similarity_search_by_vector(q.tolist(), k=K)]

    def filtered(q: np.ndarray, session: str) -> list[int]:
        hits = vs.similarity_search_by_vector(
            q.tolist(), k=K, filter=lambda d: d.metadata["run_id"] == session
        )
        return [d.metadata["row"] for d in hits]

    return plain, filtered


def _lancedb(bench: Bench, loaded: Loaded) -> tuple[Any, Any]:
    import lancedb
    from langchain_community.vectorstores import LanceDB

    data = loaded.data
    table = pa.table(
        {
            "vector": pa.FixedSizeListArray.from_arrays(
                pa.array(data.vectors.reshape(-1)), data.vectors.shape[1]
            ),
            "id": pa.array([str(i) for i in range(len(data))]),
            "text": pa.array(data.texts),
            "metadata": pa.StructArray.from_arrays(
                [pa.array(np.arange(len(data))), pa.array(data.run_ids)], names=["row", "run_id"]
            ),
        }
    )
    db = lancedb.connect(bench.path("lancedb"))
    tbl = db.create_table("vectorstore", data=table)
    vs = LanceDB(connection=db, embedding=_Precomputed({}), table=tbl)

    def plain(q: np.ndarray, _: object) -> list[int]:
        return [d.metadata["row"] for d in vs.similarity_search_by_vector(q.tolist(), k=K)]

    def filtered(q: np.ndarray, session: str) -> list[int]:
        hits = vs.similarity_search_by_vector(q.tolist(), k=K, filter={"metadata.run_id": session})
        return [d.metadata["row"] for d in hits]

    return plain, filtered


# ---------------------------------------------------------------------- the vector-index threshold
def index_threshold(bench: Bench) -> None:
    """Where a vector index starts to pay: exact (flat) search against the default index
    (built explicitly here) on stores of growing size, with its build time and recall."""
    qs = queries(bench.size(60, 30), seed=98)
    for total in bench.size((5_000, 10_000, 20_000, 50_000), (5_000, 20_000)):
        _threshold_at(bench, total, qs)


def _threshold_at(bench: Bench, total: int, qs: np.ndarray) -> None:
    from writes import records

    from lance_context import ContextStore, IndexPolicy

    data = corpus(total, sessions=total // 100, seed=total)
    batch = records(data, 0, total)
    row_of = {r.id: i for i, r in enumerate(batch)}
    policy = IndexPolicy(vector_index_min_rows=10**12)  # no automatic index: both are measured here
    store = ContextStore.open(
        bench.path(f"threshold-{total}"), embedder=None, dimension=data.vectors.shape[1], indexing=policy
    )
    store.add(batch)
    flat = time_each(lambda q=q: store.search(q, k=K) for q in qs)
    build = time_once(store.build_vector_index)
    found: list[list[int]] = []
    indexed = time_each(
        lambda q=q: found.append([row_of[h.record.id] for h in store.search(q, k=K)]) for q in qs
    )
    recall = float(np.mean([_recall(f, exact_top_k(data.vectors, q, K)) for f, q in zip(found, qs)]))
    bench.add(
        Row(
            f"vector search k={K}, {total:,} records: indexed vs exact",
            ms(p50(indexed)),
            "ms",
            "exact (flat) search, same store",
            ms(p50(flat)),
            note=f"index build {build:.2f} s, recall {recall:.3f}",
        )
    )
