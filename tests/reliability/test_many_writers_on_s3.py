"""Many application servers on one object-store memory (issue 18).

At least four spawned processes, each a server with its own ``ContextStore``, LangChain
histories, LangGraph graph and LlamaIndex memory, write to one store on the S3 server
at once while another process compacts and cleans up, and one server idles across a
cleanup. Afterwards nothing is lost or duplicated, every writer's order is kept, every
LangGraph thread's checkpoint chain is whole, and no server ever read a shared session
or thread without another server's acknowledged write to it.
"""

from __future__ import annotations

import itertools
import multiprocessing
import queue
import time
from collections import Counter
from typing import Any

import pytest

from lance_context import ContextStore, HashingEmbedder
from lance_context.langchain import LanceChatMessageHistory
from lance_context.langgraph import LanceCheckpointSaver
from lance_context.llama_index import LanceMemory

from . import _servers, scale
from .report import TALLY

pytestmark = pytest.mark.reliability

SPAWN = multiprocessing.get_context("spawn")
STALL = 300
"""Seconds without a new acknowledged write from any server before the run is called hung.

The servers' pace follows the S3 server's (one process serves all of them), so the run
is bounded by progress, not by a total time that a slow machine would exceed.
"""


def _outcomes(results: Any, count: int, acks: Any) -> list[dict[str, Any]]:
    """Each server's outcome; fails if no server acknowledged a write for ``STALL`` seconds."""
    outcomes: list[dict[str, Any]] = []
    seen, since = dict(acks), time.monotonic()
    while len(outcomes) < count:
        try:
            outcomes.append(results.get(timeout=10))
            since = time.monotonic()
        except queue.Empty:
            now = dict(acks)
            if now != seen:
                seen, since = now, time.monotonic()
            assert time.monotonic() - since < STALL, f"no server acknowledged a write in {STALL} s: {now}"
    return outcomes


def _run(uri: str, options: dict[str, str], servers: int, rounds: int) -> tuple[list[dict[str, Any]], Any]:
    with SPAWN.Manager() as manager:
        shared = {
            "acks": manager.dict(),
            "turns": manager.list(),
            "lock": manager.Lock(),
            "idle": servers - 1,
            "idle_started": manager.Event(),
            "cleaned": manager.Event(),
        }
        ready, go, results, stop = SPAWN.Queue(), SPAWN.Event(), SPAWN.Queue(), SPAWN.Event()
        processes = [
            SPAWN.Process(target=_servers.server, args=(uri, options, i, rounds, shared, ready, go, results))
            for i in range(servers)
        ]
        upkeep = SPAWN.Process(target=_servers.maintainer, args=(uri, options, shared, stop, results))
        for process in processes:
            process.start()
        try:
            for _ in processes:
                status, detail = ready.get(timeout=180)
                assert status == "ready", detail
            upkeep.start()
            go.set()
            outcomes = _outcomes(results, len(processes), shared["acks"])
            stop.set()
            maintenance = results.get(timeout=300)
            turns = list(shared["turns"])
        finally:
            stop.set()
            for process in [*processes, upkeep]:
                process.join(timeout=60)
                if process.is_alive():
                    process.kill()
    assert [p.exitcode for p in processes] == [0] * servers
    return outcomes, (maintenance, turns)


def _in_order(found: list[str], written: list[str]) -> bool:
    mine = set(written)
    return [i for i in found if i in mine] == written


def _chain_is_whole(saver: LanceCheckpointSaver, thread: str, turns: list[str]) -> None:
    """Newest to oldest, each checkpoint's parent is the next one; the turns grow one run at a time."""
    history = list(saver.list(_servers.config(thread)))
    assert history, thread
    for newer, older in itertools.pairwise(history):
        assert newer.parent_config is not None, thread
        assert (
            newer.parent_config["configurable"]["checkpoint_id"]
            == older.config["configurable"]["checkpoint_id"]
        )
    assert history[-1].parent_config is None
    states = [c.checkpoint["channel_values"].get("turns", []) for c in reversed(history)]
    assert all(later[: len(earlier)] == earlier for earlier, later in itertools.pairwise(states)), thread
    assert states[-1] == turns, thread


@pytest.mark.long_only  # make reliability only: too slow for make test
def test_application_servers_share_one_memory_on_s3(s3_bucket: Any) -> None:
    sizes = scale.current()
    uri, options = s3_bucket.uri("servers"), s3_bucket.storage_options
    ContextStore.open(uri, storage_options=options, embedder=HashingEmbedder(_servers.DIMENSION))
    outcomes, (maintenance, shared_turns) = _run(uri, options, sizes.servers, sizes.server_rounds)

    store = ContextStore.open(uri, storage_options=options, embedder=HashingEmbedder(_servers.DIMENSION))
    private = {
        o["server"]: [m.id for m in LanceChatMessageHistory(o["server"], store=store).messages]
        for o in outcomes
    }
    common = [m.id for m in LanceChatMessageHistory(_servers.SHARED_SESSION, store=store).messages]
    written = [i for o in outcomes for i in o["private"] + o["shared"]]
    found = [i for ids in private.values() for i in ids] + common
    counts = Counter(found)
    lost = [i for i in written if i not in counts]
    duplicated = sum(n - 1 for n in counts.values())
    stale = [s for o in outcomes for s in o["stale"]]
    memories = sum(len(o["memory"]) for o in outcomes)
    runs = sum(len(o["thread"]) for o in outcomes) + len(shared_turns)
    TALLY.add(
        writes_attempted=len(written) + memories + runs,
        writes_committed=len(written) + memories + runs,
        writes_refused=sum(o["refused"] for o in outcomes),
        writes_lost=len(lost),
        writes_duplicated=duplicated,
        fresh_checks=2 * sizes.servers * sizes.server_rounds,
        stale_reads=len(stale),
    )
    errors = [e for o in outcomes for e in o["errors"]] + maintenance["errors"]
    assert not errors, "a server failed:\n" + errors[0]
    assert stale == [], stale
    assert lost == [] and duplicated == 0
    assert set(found) == set(written)
    for outcome in outcomes:
        assert private[outcome["server"]] == outcome["private"]
        assert _in_order(common, outcome["shared"])
        memory = LanceMemory.from_defaults(session_id=f"memory-{outcome['server']}", store=store)
        assert [m.content for m in memory.get_all()] == outcome["memory"]
    saver = LanceCheckpointSaver(store=store)
    for outcome in outcomes:
        _chain_is_whole(saver, f"thread-{outcome['server']}", outcome["thread"])
    _chain_is_whole(saver, _servers.SHARED_THREAD, shared_turns)
    assert len(shared_turns) == sizes.servers * sizes.server_rounds
    idle = [o for o in outcomes if o["idled"]]
    assert len(idle) == 1, "one server must have stayed idle across a cleanup"
    assert maintenance["compactions"] > 0 and maintenance["cleanups"] > 0, maintenance
    # a merge committed as a compaction (the history itself is cleaned up every round, so
    # the maintainer looks right after its merge)
    assert maintenance["merged"], maintenance


def test_a_write_whose_base_version_is_cleaned_up_while_it_commits_lands_once(
    s3_bucket: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process's cleanup removes a version the commit is reading (seen in the long run).

    Lance then fails the commit before writing anything, with the error injected here on
    the first attempt; the write is retried on the latest version and lands once.
    """
    import lance

    from lance_context import ContextRecord

    uri, options = s3_bucket.uri("vanishing-base"), s3_bucket.storage_options
    store = ContextStore.open(uri, storage_options=options, embedder=None)
    store.add(ContextRecord.from_content("before", run_id="s", id="before"))
    real = lance.LanceDataset.commit
    failed: list[int] = []

    def vanishing_base(base: Any, *args: Any, **kwargs: Any) -> Any:
        if not failed:
            failed.append(int(base.version))
            raise OSError(
                "LanceError(IO): Generic N/A error: Not found: vanishing-base/_versions/"
                "18446744073709551119.manifest, rust/lance-io/src/object_reader.rs:335:56"
            )
        return real(base, *args, **kwargs)

    monkeypatch.setattr(lance.LanceDataset, "commit", staticmethod(vanishing_base))
    store.add(ContextRecord.from_content("after", run_id="s", id="after"))
    monkeypatch.undo()
    assert failed, "the first commit attempt failed"
    assert [r.id for r in store.records("s")] == ["before", "after"]
    TALLY.add(writes_attempted=2, writes_committed=2)


def test_an_upsert_and_a_delete_of_one_record_from_two_servers_end_as_the_later_one(
    s3_bucket: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The README's rule for concurrent upserts and deletes of the same record, in both orders."""
    import lance

    from lance_context import ContextRecord

    uri, options = s3_bucket.uri("upsert-delete"), s3_bucket.storage_options
    one = ContextStore.open(uri, storage_options=options, embedder=None)
    two = ContextStore.open(uri, storage_options=options, embedder=None)
    one.add(ContextRecord.from_content("first", run_id="s", id="x"))
    real = lance.LanceDataset.commit

    def other_server_first(action: Any) -> None:
        done: list[bool] = []

        def commit(base: Any, *args: Any, **kwargs: Any) -> Any:
            if not done:  # the other server commits between this write's read and its commit
                done.append(True)
                monkeypatch.setattr(lance.LanceDataset, "commit", staticmethod(real))
                action()
            return real(base, *args, **kwargs)

        monkeypatch.setattr(lance.LanceDataset, "commit", staticmethod(commit))

    other_server_first(lambda: two.delete("x"))
    one.upsert(ContextRecord.from_content("upserted after the delete", run_id="s", id="x"))
    assert [r.text for r in two.records("s")] == ["upserted after the delete"]

    other_server_first(lambda: two.upsert(ContextRecord.from_content("upserted", run_id="s", id="x")))
    one.delete("x")
    assert two.records("s") == [] and one.count() == 0
    TALLY.add(writes_attempted=4, writes_committed=4)
