"""Grow a lance-context 0.6.7 store one add at a time; print the per-add seconds as JSON.

Runs inside the separate virtualenv that holds the PyPI wheel (it shares our import
name), started by ``writes.growth_vs_upstream``: ``python upstream_driver.py STORE FEED``
where FEED is JSON lines of ``{"text", "run_id", "role", "embedding"}``.
"""

from __future__ import annotations

import json
import sys
import time


def main() -> None:
    from lance_context import Context

    store_path, feed = sys.argv[1], sys.argv[2]
    with open(feed) as handle:
        rows = [json.loads(line) for line in handle]
    context = Context.create(store_path, embedding_dim=len(rows[0]["embedding"]))
    seconds = []
    for row in rows:
        start = time.perf_counter()
        context.add(row["role"], row["text"], embedding=row["embedding"], run_id=row["run_id"])
        seconds.append(time.perf_counter() - start)
    if context.entries() != len(rows):
        raise SystemExit(f"0.6.7 holds {context.entries()} entries, expected {len(rows)}")
    print(json.dumps(seconds))


if __name__ == "__main__":
    main()
