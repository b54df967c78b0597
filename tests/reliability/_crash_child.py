"""A writer the crash tests kill with SIGKILL: ``python _crash_child.py PHASE STORE ROUND``.

It writes forever and reports on stdout, flushing each line, so the parent knows exactly
what was acknowledged before the kill:

- ``BEGIN add <batch> <n>`` / ``COMMITTED <batch> <n> <version>`` around every ``add``;
- ``BEGIN compact`` / ``END compact`` around ``compact()`` (phase ``compact``);
- ``BEGIN cleanup`` / ``END cleanup`` around ``cleanup()`` (phase ``cleanup``).

Each batch holds 1-6 records whose metadata names the batch and its size, so a partial
batch is detectable afterwards.
"""

from __future__ import annotations

import random
import sys
from datetime import timedelta

from lance_context import CompactionPolicy, ContextRecord, ContextStore


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def main(phase: str, uri: str, round_: int) -> None:
    rng = random.Random(round_)
    # a small fanout makes the store compact on its own after a few adds, too
    store = ContextStore.open(uri, embedder=None, compaction=CompactionPolicy(fanout=2))
    say("READY")
    step = 0
    while True:
        step += 1
        batch = f"r{round_}-b{step}"
        size = rng.randint(1, 6)
        records = [
            ContextRecord(
                id=f"{batch}-{i}",
                run_id=f"session-{round_ % 3}",
                role="user",
                text_payload=f"round {round_} batch {step} record {i} " + "x" * rng.randint(0, 2000),
                metadata={"batch": batch, "n": size, "i": i},
            )
            for i in range(size)
        ]
        say(f"BEGIN add {batch} {size}")
        version = store.add(records)
        say(f"COMMITTED {batch} {size} {version}")
        if phase == "compact" and step % 2 == 0:
            say("BEGIN compact")
            store.compact()
            say("END compact")
        if phase == "cleanup" and step % 3 == 0:
            say("BEGIN cleanup")
            store.cleanup(older_than=timedelta(0), keep_versions=2)
            say("END cleanup")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
