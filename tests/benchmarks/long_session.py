"""Issue 12: the tail of one long session, through the core and through the LangChain history.

One session of 20,000 messages (``--quick``: 5,000), written through
``LanceChatMessageHistory.add_messages`` in turns of 1,000 messages with the corpus' precomputed
vectors. Each cold read opens a new store handle first (not timed; OS page cache warm), so no
in-process cache helps; warm reads repeat on one handle with no write in between. The peer is the
read the core did before the issue: the whole session, vectors and payloads included, sliced in
Python, timed on the same handles in alternation.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

from common import Bench, Row, check, ms, p50, time_each
from data import corpus
from grown import PrecomputedEmbedder

from lance_context import CachePolicy, ContextStore

LAST = 50
SAMPLES = 60


def long_session(bench: Bench) -> None:
    """Rows: ``records(last=50)`` cold and warm, ``get_messages(last=50)`` cold, against the whole read."""
    from langchain_core.messages import AIMessage, HumanMessage

    from lance_context.langchain import LanceChatMessageHistory

    total = bench.size(20_000, 5_000)
    data = corpus(total, sessions=1, seed=12)
    uri = bench.path("long-session.lance")
    writer = ContextStore.open(uri, embedder=PrecomputedEmbedder(data))
    history = LanceChatMessageHistory("long", store=writer)
    messages = [(HumanMessage if i % 2 == 0 else AIMessage)(content=t) for i, t in enumerate(data.texts)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        for start in range(0, total, 1_000):
            history.add_messages(messages[start : start + 1_000])
    (run_id,) = writer.run_ids()
    expected = data.texts[-LAST:]

    def fresh() -> ContextStore:
        return ContextStore.open(uri, embedder=None)

    assert [r.text for r in fresh().records(run_id, last=LAST)] == expected, "records(last=50) is wrong"
    cold_tail: list[float] = []
    cold_whole: list[float] = []
    cold_messages: list[float] = []
    for _ in range(bench.size(SAMPLES, 20)):
        handles = [fresh(), fresh(), fresh()]
        cold_tail += time_each([lambda s=handles[0]: s.records(run_id, last=LAST)])
        cold_whole += time_each([lambda s=handles[1]: s.records(run_id)[-LAST:]])
        reader = LanceChatMessageHistory("long", store=handles[2])
        cold_messages += time_each([lambda h=reader: h.get_messages(last=LAST)])
    got = [m.content for m in LanceChatMessageHistory("long", store=fresh()).get_messages(last=LAST)]
    assert got == expected, "get_messages(last=50) is wrong"

    warm_tail = _repeated(fresh(), run_id, bench.size(300, 100))
    uncached = ContextStore.open(uri, embedder=None, caches=CachePolicy(tail_sessions=0))
    read_path = _repeated(uncached, run_id, bench.size(300, 100))
    whole_path = _repeated(uncached, run_id, bench.size(60, 20), whole=True)

    name = f"last {LAST} messages of one {total:,}-message session"
    peer = "the whole session read and sliced (the core's read before issue 12)"
    path_row = Row(
        f"{name}: records(last=50), same handle, session cache off", ms(p50(read_path)), "ms",
        f"{peer}, same handle", ms(p50(whole_path)), target="12", goal="≤ 6 ms, < peer",
    )  # fmt: skip
    bench.add(check(path_row, path_row.ours is not None and path_row.ours <= 6 and (path_row.ratio or 1) < 1))
    whole = ms(p50(cold_whole))
    peer = f"{peer}, new handle"
    bench.add(Row(f"{name}: records(last=50), new handle per read", ms(p50(cold_tail)), "ms", peer, whole))
    messages_row = Row(
        f"{name}: LangChain get_messages(last=50), new handle per read", ms(p50(cold_messages)), "ms", peer, whole,
        target="12", goal="< peer",
    )  # fmt: skip
    bench.add(check(messages_row, messages_row.ours is not None and messages_row.ours < whole))
    bench.add(Row(f"{name}: records(last=50), same handle, no new version", ms(p50(warm_tail)), "ms"))


def _repeated(store: ContextStore, run_id: str, n: int, *, whole: bool = False) -> list[float]:
    """Seconds per read of the session's tail on one handle, after 5 warm-up reads."""
    read: Callable[[], object] = (
        (lambda: store.records(run_id)[-LAST:]) if whole else (lambda: store.records(run_id, last=LAST))
    )
    for _ in range(5):
        read()
    return time_each([read] * n)
