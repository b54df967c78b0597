"""The first read in a fresh process, ours and the SQLite peer's, each timed alone.

Started once per sample by the grown-store workloads: ``python first_read.py SPEC``
where SPEC is JSON ``{"kind", "uri", "sqlite", "key", "first"}``. ``kind`` is
``records`` or ``get_messages`` (the last 50 messages of session ``key``) or
``checkpoint`` (LangGraph ``get_tuple`` of thread ``key``'s latest checkpoint), or
``lance-tail`` / ``lance-thread`` for the floor alone (:func:`floor_only`).
Everything is imported and both sides are opened before the clock starts; ``first``
says which side reads first. Prints JSON ``{"ours", "peer", "open"}`` in seconds
(``open``: opening our store, not included in ``ours``).
"""

from __future__ import annotations

import json
import os
import sqlite3
import sys
import time
import warnings
from typing import Any

os.environ.setdefault("LANCE_LOG", "error")
warnings.simplefilter("ignore", DeprecationWarning)

LAST = 50


def floor_only(spec: dict[str, Any]) -> None:
    """The floor in a process of its own: pylance alone does the read's Lance calls.

    ``lance-tail``: the filtered scan and take under the last 50 messages of session
    ``key``; ``lance-thread``: the scan and take under thread ``key``'s latest
    checkpoint. Prints JSON ``{"floor", "open"}``.
    """
    import lance
    from agent_graph import _lance_thread
    from grown import _lance_tail

    from lance_context.adapters import LANGCHAIN_HISTORY

    start = time.perf_counter()
    ds = lance.dataset(spec["uri"])
    opened = time.perf_counter() - start
    start = time.perf_counter()
    if spec["kind"] == "lance-tail":
        _lance_tail(ds, LANGCHAIN_HISTORY.run_id(spec["key"]))
    else:
        _lance_thread(ds, spec["key"])
    print(json.dumps({"floor": time.perf_counter() - start, "open": opened}))


def main() -> None:
    spec = json.loads(sys.argv[1])
    kind, key = spec["kind"], spec["key"]
    from langchain_community.chat_message_histories import SQLChatMessageHistory
    from langgraph.checkpoint.sqlite import SqliteSaver
    from sqlalchemy import create_engine

    from lance_context import ContextStore
    from lance_context.adapters import LANGCHAIN_HISTORY
    from lance_context.langchain import LanceChatMessageHistory
    from lance_context.langgraph import LanceCheckpointSaver

    if kind in ("lance-tail", "lance-thread"):
        floor_only(spec)
        return
    start = time.perf_counter()
    ours: Any
    peer: Any
    if kind == "checkpoint":
        saver = LanceCheckpointSaver(uri=spec["uri"])
        opened = time.perf_counter() - start
        config = {"configurable": {"thread_id": key, "checkpoint_ns": ""}}
        sql = SqliteSaver(sqlite3.connect(spec["sqlite"], check_same_thread=False))

        def ours() -> object:
            return saver.get_tuple(config)

        def peer() -> object:
            return sql.get_tuple(config)

    else:
        store = ContextStore.open(spec["uri"], embedder=None)
        opened = time.perf_counter() - start
        history = SQLChatMessageHistory(key, connection=create_engine(f"sqlite:///{spec['sqlite']}"))
        if kind == "records":

            def ours() -> object:
                return store.records(LANGCHAIN_HISTORY.run_id(key), last=LAST, with_vectors=False)

        else:

            def ours() -> object:
                return LanceChatMessageHistory(key, store=store).get_messages(last=LAST)

        def peer() -> object:
            return history.messages[-LAST:]

    out = {"open": opened}
    order = [("ours", ours), ("peer", peer)]
    for name, call in order if spec["first"] == "ours" else order[::-1]:
        start = time.perf_counter()
        call()
        out[name] = time.perf_counter() - start
    print(json.dumps(out))


if __name__ == "__main__":
    main()
