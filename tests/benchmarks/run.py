"""``make bench``: every workload against lance-context and its peers, side by side, in one run.

Prints one table of medians (p50) and ratios (ours ÷ peer, measured in the same run)
and a last line ``bench: PASS`` or ``bench: FAIL <targets missed>``. ``--quick`` runs
smaller sizes (a smoke run: its PASS/FAIL is indicative only). Data is synthetic and
seeded; vectors are precomputed so the store's own cost is measured, except in the
one workload that runs the real default embedder.

    .venv/bin/python tests/benchmarks/run.py [--quick] [--only add,grow,...] [--markdown FILE]
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import time
import traceback
import warnings
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("LANCE_LOG", "error")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import agent_graph
import bulk
import embedder_cost
import grown
import locomo
import long_session
import multiwriter
import raybulk
import reads
import vectors
import writes
from common import FAIL, INFO, PASS, SKIP, Bench, Row, markdown_table

WORKLOADS = (
    "add",
    "grow",
    "bulk",
    "history",
    "search",
    "threshold",
    "model",
    "appends",
    "langgraph",
    # issue 12: the tail of one long session, cold and warm
    "long-session",
    # issue 14: stores grown the way agents grow them
    "grown",
    "grown-large",
    "graph-loop",
    "vectors",
    "embedder",
    # issue 19: conversational recall on the LoCoMo development split
    "locomo",
    # issue 18: past one machine
    "s3-writers",
    "ray-ingest",
)
LANGGRAPH = Path(__file__).with_name("bench_langgraph.py")


def machine() -> str:
    import lance
    import pyarrow

    cpu = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{os.cpu_count()} cores, {cpu}; {platform.system()} {platform.release()}; "
        f"Python {platform.python_version()}; pylance {lance.__version__}; pyarrow {pyarrow.__version__}"
    )


def run_langgraph(bench: Bench) -> None:
    """Run the LangGraph helper's standalone script and merge its ``ROW|...`` lines."""
    if not LANGGRAPH.exists():
        print("  (no bench_langgraph.py: skipped)")
        return
    command = [sys.executable, str(LANGGRAPH)] + (["--quick"] if bench.quick else [])
    done = subprocess.run(command, capture_output=True, text=True, check=False, timeout=1800)
    found = False
    for line in done.stdout.splitlines():
        parts = line.strip().split("|")
        if len(parts) != 8 or parts[0] != "ROW":
            continue
        found = True
        _, workload, ours, peer, theirs, _ratio, goal, status = parts
        bench.add(
            Row(
                workload,
                float(ours),
                "ms",
                peer,
                float(theirs) if theirs.strip() else None,
                target="LG",
                goal=goal,
                status=status.strip() if status.strip() in (PASS, FAIL) else INFO,
            )
        )
    if done.returncode != 0 or not found:
        bench.add(
            Row(
                "bench_langgraph.py",
                None,
                "ms",
                target="LG",
                status=FAIL,
                note=f"exit {done.returncode}: {(done.stderr or done.stdout).strip()[-200:]}",
            )
        )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke run")
    parser.add_argument("--only", default=",".join(WORKLOADS), help=f"comma list of {', '.join(WORKLOADS)}")
    parser.add_argument(
        "--root", default=str(writes.REPO / ".bench" / "run"), help="scratch folder (git-ignored)"
    )
    parser.add_argument("--markdown", help="also write the machine line and the table to this file")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder")
    args = parser.parse_args()
    chosen = [w.strip() for w in args.only.split(",") if w.strip()]
    unknown = set(chosen) - set(WORKLOADS)
    if unknown:
        parser.error(f"unknown workloads: {sorted(unknown)}")
    warnings.filterwarnings("ignore", message="No results found")  # LanceDB's post-filter finding nothing
    warnings.filterwarnings("ignore", message=".*InMemoryChatMessageHistory.*was deprecated")
    root = Path(args.root)
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    bench = Bench(root=root, quick=args.quick)
    about = machine()
    print(f"machine: {about}\nmode: {'quick (reduced sizes: indicative only)' if args.quick else 'full'}\n")

    loaded: list[bulk.Loaded] = []
    steps: dict[str, Callable[[], object]] = {
        "add": lambda: writes.one_message_add(bench),
        "grow": lambda: writes.growth_vs_upstream(bench),
        "bulk": lambda: loaded.append(bulk.bulk_add(bench)),
        "history": lambda: reads.last_messages(bench, _large(bench, loaded)),
        "search": lambda: reads.vector_search(bench, _large(bench, loaded)),
        "threshold": lambda: reads.index_threshold(bench),
        "model": lambda: bulk.model_add(bench),
        "appends": lambda: writes.appends_disk_and_versions(bench),
        "langgraph": lambda: run_langgraph(bench),
        "long-session": lambda: long_session.long_session(bench),
        "grown": lambda: grown.grown_small(bench),
        "grown-large": lambda: grown.grown_large(bench),
        "graph-loop": lambda: agent_graph.agent_loop_store(bench),
        "vectors": lambda: vectors.vector_search(bench, _large(bench, loaded)),
        "embedder": lambda: embedder_cost.embedder_costs(bench),
        "locomo": lambda: locomo.locomo_recall(bench),
        "s3-writers": lambda: multiwriter.s3_writers(bench),
        "ray-ingest": lambda: raybulk.ray_ingest(bench),
    }
    started = time.perf_counter()
    for name in WORKLOADS:
        if name not in chosen:
            continue
        print(f"[{name}]", flush=True)
        at = time.perf_counter()
        try:
            steps[name]()
        except Exception as exc:  # one broken workload must not hide the others' results
            traceback.print_exc()
            bench.add(
                Row(f"{name} workload", None, "ms", status=FAIL, note=f"error: {type(exc).__name__}: {exc}")
            )
        print(f"  ({time.perf_counter() - at:.0f} s)", flush=True)

    table = markdown_table(bench.rows)
    print(f"\n{table}\n\nmachine: {about}; total {time.perf_counter() - started:.0f} s")
    if args.markdown:
        Path(args.markdown).write_text(f"Machine: {about}\n\n{table}\n")
    for skip in bench.skips:
        print(f"skipped: {skip}")
    if not args.keep:
        shutil.rmtree(root, ignore_errors=True)
    missed = [
        f"{r.target} ({r.workload}{' vs ' + r.peer if r.peer else ''})"
        for r in bench.rows
        if r.status == FAIL
    ]
    if any(r.status == SKIP for r in bench.rows) and not missed:
        print("note: skipped rows are listed above")
    print("bench: PASS" if not missed else "bench: FAIL " + "; ".join(missed))
    return 0 if not missed else 1


def _large(bench: Bench, loaded: list[bulk.Loaded]) -> bulk.Loaded:
    """The large store from the bulk workload (built now when bulk was not selected)."""
    if not loaded:
        loaded.append(bulk.bulk_add(bench))
    return loaded[0]


if __name__ == "__main__":
    sys.exit(main())
