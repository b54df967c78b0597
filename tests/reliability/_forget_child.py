"""A process the forget crash test kills with SIGKILL: ``python _forget_child.py STORE``.

It prints ``READY`` once the store is open, ``BEGIN`` just before ``forget()`` and ``END``
after it, flushing each line, so the parent knows whether the kill cut it short.
"""

from __future__ import annotations

import sys

from lance_context import ContextStore


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def main(uri: str) -> None:
    store = ContextStore.open(uri, embedder=None)
    say("READY")
    say("BEGIN")
    report = store.forget(run_id="victim-session")
    say(f"END {report.verified}")


if __name__ == "__main__":
    main(sys.argv[1])
