"""Conversational recall on the LoCoMo development split (issue 19).

Each conversation is stored as one session, each turn one record; every question
that has evidence is asked in its conversation's session. A question counts as
found at k when any evidence turn is among the first k turns ("R@k"); "share@k" is
the share of its evidence turns found. Modes: the store's ``vector``, ``text`` and
``hybrid`` search on plain ``Speaker: text`` records, the same on records written
with the chat indexing (``ChatIndexing`` write hints, as the chat adapters write
them), and ``ContextStore.recall`` (fused channels with the next-turn support), all
through the real store. Default embedder, no network; latency includes embedding
the query.

    .venv/bin/python tests/benchmarks/locomo.py [--quick]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("LANCE_LOG", "error")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np
from common import FAIL, PASS, SKIP, Bench, Row, check, ms, p50
from locomo_data import (
    CATEGORIES,
    HOW_TO_GET,
    REPO,
    Scores,
    Split,
    chat_turn,
    find_split,
    hit_at,
    load_split,
    share_at,
)
from locomo_modes import Search, build_indexed_store, build_store, store_recall, store_search

from lance_context import ContextStore, RecallOptions, SentenceTransformerEmbedder
from lance_context._index_text import ChatIndexing

QUICK_CONVERSATIONS = ("26", "30")
STORE_RECALL = "recall (ContextStore.recall, the default path)"


# ---------------------------------------------------------------------- measuring
@dataclass
class Measured:
    """Recall sums and per-query seconds of one mode (and its search, to time again)."""

    scores: Scores
    seconds: list[float]
    turns: tuple[float, float] = (5.0, 10.0)
    """Turns returned on average for "k=5" and "k=10"."""
    search: Search | None = None
    after_write: Search | None = None
    """The same search as the first one after a write: the session's outline is read again."""


def measure(split: Split, search: Search) -> Measured:
    scores, seconds = Scores.empty(), []
    for q in split.questions:
        start = time.perf_counter()
        found = search(q)
        seconds.append(time.perf_counter() - start)
        scores.add(q.category, found, q.evidence)
    return Measured(scores, seconds)


def measure_neighbours(split: Split, store: ContextStore) -> Measured:
    """R@k where k counts matches and each match brings the turns before and after it.

    Not comparable with the other rows: "R@5" here looks at up to 15 turns.
    """
    scores, turns = Scores.empty(), []
    for q in split.questions:
        found = store.recall(q.text, k=10, run_id=f"conv-{q.conversation}", before=1, after=1)
        five, ten = ([t.metadata["dia_id"] for r in found[:n] for t in r.turns] for n in (5, 10))
        turns.append((len(five), len(ten)))
        hits = tuple(hit_at(f, q.evidence, len(f)) for f in (five, ten))
        shares = tuple(share_at(f, q.evidence, len(f)) for f in (five, ten))
        scores.record(q.category, hits, shares)  # type: ignore[arg-type]
    return Measured(scores, [], turns=tuple(np.mean(turns, axis=0)))  # type: ignore[arg-type]


def table(results: dict[str, Measured]) -> str:
    head = "| mode | R@5 | R@10 | share@5 | share@10 | p50 ms | " + " | ".join(
        f"{c} {n}" for c, n in CATEGORIES.items()
    )
    lines = [head + " |", "|" + "---|" * (6 + len(CATEGORIES))]
    for mode, m in results.items():
        s = m.scores
        cats = " | ".join(f"{s.mean('hits5', c):.3f} / {s.mean('hits10', c):.3f}" for c in CATEGORIES)
        latency = f"{ms(p50(m.seconds)):.1f}" if m.seconds else "-"
        lines.append(
            f"| {mode} | {s.mean('hits5'):.3f} | {s.mean('hits10'):.3f} | {s.mean('share5'):.3f} | "
            f"{s.mean('share10'):.3f} | {latency} | {cats} |"
        )
    return "\n".join(lines)


def category_gaps(results: dict[str, Measured], fused: str, channels: Sequence[str]) -> float:
    """The smallest margin, over categories and k in (5, 10), of ``fused`` over its best channel."""
    gaps = []
    for c in CATEGORIES:
        if not results[fused].scores.count.get(c):
            continue  # no question of this category in the split (a --quick run)
        for which in ("hits5", "hits10"):
            best = max(results[ch].scores.mean(which, c) for ch in channels)
            gaps.append(results[fused].scores.mean(which, c) - best)
    return min(gaps)


def write_cost(split: Split, rounds: int = 3) -> Row:
    """Model time per appended turn: what is embedded now against ``Speaker: text``.

    On the largest conversation, the two alternated ``rounds`` times (medians), so
    load from other processes hits both alike; the full indexed text once, for scale.
    """
    embedder = SentenceTransformerEmbedder()
    embedder.embed_texts(["warm up"])
    largest = max(split.turns, key=lambda c: len(split.turns[c]))
    turns = split.turns[largest]
    chat = [chat_turn(t) for t in turns]
    base = [f"{t.speaker}: {t.text}" for t in turns]
    texts, embedded = ChatIndexing().texts(chat)

    def seconds(batch: list[str]) -> float:
        start = time.perf_counter()
        embedder.embed_texts(batch)
        return time.perf_counter() - start

    before, after = [], []
    for _ in range(rounds):
        before.append(seconds(base))
        after.append(seconds(embedded))
    full = seconds(texts)
    n = len(turns)
    row = Row(
        f"model time per appended turn ({n} turns): embedded text vs 'Speaker: text'",
        ms(p50(after)) / n,
        "ms",
        "'Speaker: text' (main)",
        ms(p50(before)) / n,
        target="19.4",
        goal="not slower (ratio ≤ 1.1)",
        note=f"embedding the full-text text instead: {ms(full) / n:.2f} ms",
    )
    return check(row, p50(after) <= 1.1 * p50(before))


def run_all(bench: Bench, split: Split) -> dict[str, Measured]:
    """Every mode on the split: plain ``Speaker: text`` records, then the chat indexing."""
    plain, _ = build_store(bench.path("locomo-store.lance"), split)
    results: dict[str, Measured] = {}
    for mode in ("vector", "text", "hybrid"):
        store_search(plain, mode)(split.questions[0])  # warm caches and the model
        results[f"{mode} (plain 'Speaker: text' records)"] = measure(split, store_search(plain, mode))
    indexed = build_indexed_store(bench.path("locomo-indexed.lance"), split)
    for mode in ("vector", "text", "hybrid"):
        store_search(indexed, mode)(split.questions[0])
        results[f"{mode} (indexed text)"] = measure(split, store_search(indexed, mode))
    recall = store_recall(indexed)
    results[STORE_RECALL] = measure(split, recall)
    results[STORE_RECALL].search = recall
    # a write empties the store's memo of recalled outlines (it keeps one version's)
    memo = indexed._recaller._outlines
    results[STORE_RECALL].after_write = lambda q: (memo.clear(), recall(q))[1]
    spread = measure_neighbours(split, indexed)
    results[f"recall, 5/10 matches each with ±1 turn ({spread.turns[0]:.1f}/{spread.turns[1]:.1f} turns)"] = (
        spread
    )
    return results


def session_latency(bench: Bench, split: Split, results: dict[str, Measured], key: str) -> list[Row]:
    """p50 of the recall path on the largest session: the default embedder against torch's path.

    The default embedder runs a query (one text) through ONNX Runtime; the peer is the
    same store opened with ``SentenceTransformerEmbedder(onnx=False)``, which runs it
    through torch (its default threads). The two alternate question by question, so load
    from other processes hits both alike. Each question is asked twice in a row: as the
    first recall after a write (the session's outline is read again), then again at that
    version (the outline is reused).
    """
    largest = max(split.turns, key=lambda c: len(split.turns[c]))
    size = len(split.turns[largest])
    search, after_write = results[key].search, results[key].after_write
    assert search is not None and after_write is not None
    torch_store = ContextStore.open(
        str(bench.root / "locomo-indexed.lance"), embedder=SentenceTransformerEmbedder(onnx=False)
    )
    torch_search = store_recall(torch_store)
    memo = torch_store._recaller._outlines
    paths = {
        "default": {"after a write": after_write, "asked again": search},
        "torch": {"after a write": lambda q: (memo.clear(), torch_search(q))[1], "asked again": torch_search},
    }
    asked = [q for q in split.questions if q.conversation == largest]
    for path in paths.values():
        path["asked again"](asked[0])  # warm the model and the path
    timed: dict[tuple[str, str], list[float]] = {}
    for n, q in enumerate(asked):
        for name in ("default", "torch") if n % 2 else ("torch", "default"):
            for when, run in paths[name].items():
                start = time.perf_counter()
                run(q)
                timed.setdefault((name, when), []).append(time.perf_counter() - start)
    rows = []
    for when in ("after a write", "asked again"):
        ours, peer = ms(p50(timed[("default", when)])), ms(p50(timed[("torch", when)]))
        row = Row(
            f"ContextStore.recall p50 per query on the {size}-turn session, query embedding included, {when}",
            ours,
            "ms",
            "the same, query embedded through torch (SentenceTransformerEmbedder(onnx=False))",
            peer,
            target="19.3",
            goal="≤ 20 ms",
        )
        rows.append(check(row, ours <= 20))
    return rows


def locomo_recall(bench: Bench) -> None:
    """The workload: recall per mode and category, latency, and the issue's targets."""
    folder = find_split()
    if folder is None:
        print(HOW_TO_GET)
        bench.skips.append("LoCoMo recall: development split not found (see the message above)")
        bench.add(Row("LoCoMo recall (issue 19)", None, "recall", status=SKIP, note="split not found"))
        return
    split = load_split(folder, QUICK_CONVERSATIONS) if bench.quick else load_split(folder)
    results = run_all(bench, split)
    print(f"\nLoCoMo dev: {len(split.questions)} questions, {split.turn_count} turns\n{table(results)}\n")
    keys = list(results)
    main_keys, new = keys[:3], keys[3:6]
    for key in keys:
        s = results[key].scores
        note = f"R@10 {s.mean('hits10'):.3f}, share@5/10 {s.mean('share5'):.3f}/{s.mean('share10'):.3f}"
        bench.add(Row(f"LoCoMo dev R@5, {key}", s.mean("hits5"), "recall", note=note))
    recall = results[STORE_RECALL].scores
    bench.add(
        check(
            Row("LoCoMo dev ContextStore.recall R@5 / R@10 (k counts turns)", recall.mean("hits5"), "recall",
                target="19.1", goal="R@5 ≥ 0.80, R@10 ≥ 0.90", note=f"R@10 {recall.mean('hits10'):.3f}"),
            recall.mean("hits5") >= 0.80 and recall.mean("hits10") >= 0.90,
        )
    )  # fmt: skip
    for fused, channels in ((new[2], new[:2]), (keys[2], main_keys[:2])):
        gap = category_gaps(results, fused, channels)
        row = Row(f"{fused}: worst margin over its best channel, any category, k=5/10", gap, "recall",
                  target="19.2", goal="≥ 0 in every category")  # fmt: skip
        bench.add(check(row, gap >= -1e-9))
    for row in session_latency(bench, split, results, STORE_RECALL):
        bench.add(row)
    bench.add(write_cost(split))
    rerank_row(bench, split)


def offline_cross_encoder() -> object | None:
    """A sentence-transformers CrossEncoder from the local model cache, or None.

    ``LOCOMO_RERANKER`` names one (a local path or a cached model name); the default
    is ``cross-encoder/ms-marco-MiniLM-L-6-v2``. Nothing is downloaded.
    """
    name = os.environ.get("LOCOMO_RERANKER", "cross-encoder/ms-marco-MiniLM-L-6-v2")
    try:
        from sentence_transformers import CrossEncoder

        return CrossEncoder(name, local_files_only=True)
    except Exception as exc:  # not cached, or no such model: the row is skipped
        print(f"LoCoMo rerank: no cross-encoder {name!r} available offline ({type(exc).__name__}); "
              "set LOCOMO_RERANKER to a local CrossEncoder path or cached model name to measure it")  # fmt: skip
        return None


def rerank_row(bench: Bench, split: Split) -> None:
    """``recall`` with a cross-encoder reranking its best 20 matches, when one is available offline."""
    reranker = offline_cross_encoder()
    label = "LoCoMo dev R@5, recall reranked by a cross-encoder (top 20)"
    if reranker is None:
        bench.skips.append("LoCoMo rerank: no cross-encoder available offline (see the message above)")
        bench.add(Row(label, None, "recall", status=SKIP, note="no cross-encoder offline"))
        return
    # the store run_all built (bench.path would empty it)
    indexed = ContextStore.open(
        str(bench.root / "locomo-indexed.lance"), embedder=SentenceTransformerEmbedder()
    )
    measured = measure(split, store_recall(indexed, RecallOptions(reranker=reranker)))
    s = measured.scores
    bench.add(Row(label, s.mean("hits5"), "recall",
                  note=f"R@10 {s.mean('hits10'):.3f}, p50 {ms(p50(measured.seconds)):.0f} ms"))  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--quick", action="store_true", help=f"conversations {', '.join(QUICK_CONVERSATIONS)} only"
    )
    parser.add_argument(
        "--root", default=str(REPO / ".bench" / "locomo"), help="scratch folder (git-ignored)"
    )
    args = parser.parse_args()
    root = Path(args.root)
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    bench = Bench(root=root, quick=args.quick)
    locomo_recall(bench)
    shutil.rmtree(root, ignore_errors=True)
    missed = [r.workload for r in bench.rows if r.status == FAIL]
    print("locomo: PASS" if not missed else "locomo: FAIL " + "; ".join(missed))
    return 0 if all(r.status in (PASS, "info", SKIP) for r in bench.rows) else 1


if __name__ == "__main__":
    sys.exit(main())
