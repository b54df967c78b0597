"""Model-based random test: the saver against LangGraph's reference ``InMemorySaver``.

Seeded random sequences of every saver operation (sync and async twins) run on a
:class:`LanceCheckpointSaver` and on a reference model, and every read is compared.

The model is LangGraph's ``InMemorySaver`` plus ``delete_for_runs``, ``copy_thread`` and
``prune``, which it does not implement, written from the base class's contract and the
conformance suite. Within one thread, ``list`` order is checked against the order every
LangGraph saver gives: ``checkpoint_id`` descending, across namespaces too
(``InMemorySaver`` itself orders only within one namespace, so its answers are sorted).

Normalisations (what legitimately differs, everything else must be equal):

- checkpoint ids grow with every new checkpoint, as LangGraph makes them (uuid6), and a
  checkpoint is written again only in its own thread and namespace: the saver orders by
  append order, documented to equal id order for such ids;
- ``copy_thread`` copies into a new thread, as LangGraph's "copy thread" does; its copies
  are appended, so a listing across threads (``config=None``) puts them first, in the
  saver's documented append order, where SQL savers order by id: listings across threads
  are checked against append order (tracked by the model), within one thread against
  ``checkpoint_id`` descending;
- filter values hold no tuples: ``InMemorySaver`` reads stored metadata back with lists
  and compares with ``==``, so a tuple never matches there, where this saver (as
  ``PostgresSaver``) reads a tuple as a list (see ``test_a_tuple_filter_matches_a_list``);
- ``new_versions`` names every channel of the checkpoint with a version of its own, so
  ``InMemorySaver``'s blobs (keyed by version) rebuild the ``channel_values`` the saver
  stores inline.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import Checkpoint, CheckpointTuple, empty_checkpoint
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.serde.types import ERROR, INTERRUPT, RESUME, SCHEDULED

from lance_context import ContextStore, HashingEmbedder
from lance_context.langgraph import LanceCheckpointSaver

THREADS = ("t1", "t1%_'\"", "t3 ü")
NAMESPACES = ("", "child:1", "child:1|grand:2'%")
CHANNELS = ("a", "b", "c", ERROR, INTERRUPT, SCHEDULED, RESUME)
RUN_IDS = ("run-1", "run-2", "run-3")
#: Metadata values JSON cannot hold as they are (the saver keeps the serializer's exact copy).
EXOTIC = (
    datetime(2026, 1, 2, tzinfo=timezone.utc),
    UUID(int=7),
    b"raw",
    {1: "one"},
    float("inf"),
    {"n": {2: [1]}},
)


class ModelSaver(InMemorySaver):
    """``InMemorySaver`` with the maintenance operations it leaves to other savers."""

    def delete_for_runs(self, run_ids: Sequence[str]) -> None:
        for thread_id, namespaces in self.storage.items():
            for ns, checkpoints in namespaces.items():
                for checkpoint_id, (_, metadata, _) in list(checkpoints.items()):
                    if self.serde.loads_typed(metadata).get("run_id") in run_ids:
                        del checkpoints[checkpoint_id]
                        self.writes.pop((thread_id, ns, checkpoint_id), None)

    def __init__(self) -> None:
        super().__init__()
        #: Append position of each (thread, namespace, checkpoint id): the saver's documented order.
        self.seq: dict[tuple[str, str, str], int] = {}

    def put(self, config: RunnableConfig, *args: Any, **kwargs: Any) -> RunnableConfig:
        saved = super().put(config, *args, **kwargs)
        conf = saved["configurable"]
        self.seq.setdefault((conf["thread_id"], conf["checkpoint_ns"], conf["checkpoint_id"]), len(self.seq))
        return saved

    def copy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        copied = sorted((s, k) for k, s in self.seq.items() if k[0] == source_thread_id)
        for _, (_, ns, checkpoint_id) in copied:
            if checkpoint_id in self.storage.get(source_thread_id, {}).get(ns, {}):
                self.seq[(target_thread_id, ns, checkpoint_id)] = len(self.seq)
        # every checkpoint and write of the source, merged into the target (same keys replaced)
        for ns, checkpoints in list(self.storage.get(source_thread_id, {}).items()):
            self.storage[target_thread_id][ns].update(checkpoints)
        for (thread_id, ns, checkpoint_id), writes in list(self.writes.items()):
            if thread_id == source_thread_id:
                self.writes[(target_thread_id, ns, checkpoint_id)].update(writes)
        for (thread_id, ns, channel, version), blob in list(self.blobs.items()):
            if thread_id == source_thread_id:
                self.blobs[(target_thread_id, ns, channel, version)] = blob

    def prune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        for thread_id in thread_ids:
            if strategy == "delete":
                self.delete_thread(thread_id)
                continue
            for checkpoints in self.storage.get(thread_id, {}).values():
                latest = max(checkpoints, default=None)
                for checkpoint_id in [c for c in checkpoints if c != latest]:
                    del checkpoints[checkpoint_id]
            # writes of checkpoints gone (and of checkpoints never stored) go with them
            for key in [k for k in self.writes if k[0] == thread_id]:
                if key[2] not in self.storage.get(thread_id, {}).get(key[1], {}):
                    del self.writes[key]


def _key(t: CheckpointTuple) -> tuple[str, str, str]:
    conf = t.config["configurable"]
    return (conf["thread_id"], conf["checkpoint_ns"], conf["checkpoint_id"])


def _plain(t: CheckpointTuple | None) -> Any:
    if t is None:
        return None
    return (t.config, t.checkpoint, t.metadata, t.parent_config, t.pending_writes)


class Fuzz:
    """One seeded random run, comparing the saver with the model after every read."""

    def __init__(self, seed: int, saver: LanceCheckpointSaver) -> None:
        self.rng = random.Random(seed)
        self.saver = saver
        self.model = ModelSaver()
        self.counter = 0
        self.versions = 0
        self.ids: list[str] = []  # every checkpoint id made, for reads, parents and writes
        self.log: list[str] = []
        self.threads = list(THREADS)

    # ---------------------------------------------------------------- random values
    def value(self, depth: int = 0) -> Any:
        kind = self.rng.randrange(8 if depth < 2 else 5)
        if kind == 0:
            return self.rng.choice([None, True, False])
        if kind == 1:
            return self.rng.choice([0, 1, -3, 2**40])
        if kind == 2:
            return self.rng.choice([0.0, 1.0, 2.5])
        if kind in (3, 4):
            return self.rng.choice(["", "x", "hello", "é"])
        if kind in (5, 6):
            return {k: self.value(depth + 1) for k in self.rng.sample(["p", "q", "r"], self.rng.randrange(3))}
        return [self.value(depth + 1) for _ in range(self.rng.randrange(3))]

    def metadata(self) -> dict[str, Any]:
        meta: dict[str, Any] = {
            "source": self.rng.choice(["input", "loop", "update"]),
            "step": self.rng.randrange(4),
        }
        if self.rng.random() < 0.7:
            meta["run_id"] = self.rng.choice(RUN_IDS)
        if self.rng.random() < 0.5:
            meta["extra"] = self.value() if self.rng.random() < 0.8 else self.rng.choice(EXOTIC)
        return meta

    def config(self, *, ns: bool = True, checkpoint_id: str | None = None) -> RunnableConfig:
        conf: dict[str, Any] = {"thread_id": self.rng.choice(self.threads)}
        if ns:
            conf["checkpoint_ns"] = self.rng.choice(NAMESPACES)
        if checkpoint_id is not None:
            conf["checkpoint_id"] = checkpoint_id
        return {"configurable": conf}

    def some_id(self) -> str:
        if not self.ids or self.rng.random() < 0.1:
            return f"missing-{self.rng.randrange(5)}"
        return self.rng.choice(self.ids)

    # ---------------------------------------------------------------- operations
    def call(self, name: str, *args: Any, **kwargs: Any) -> tuple[Any, Any]:
        """Run ``name`` on both savers, through the async twin half of the time."""
        self.log.append(f"{name}{args}{kwargs}")
        if self.rng.random() < 0.5 and name != "list":
            ours = asyncio.run(getattr(self.saver, "a" + name)(*args, **kwargs))
        elif name == "list" and self.rng.random() < 0.5:

            async def collect() -> list[CheckpointTuple]:
                return [t async for t in self.saver.alist(*args, **kwargs)]

            ours = asyncio.run(collect())
        else:
            ours = getattr(self.saver, name)(*args, **kwargs)
        theirs = getattr(self.model, name)(*args, **kwargs)
        return (list(ours), list(theirs)) if name == "list" else (ours, theirs)

    def put(self) -> None:
        config = self.config()
        stored = [k for k in self.model.seq if k[2] in self.model.storage.get(k[0], {}).get(k[1], {})]
        if stored and self.rng.random() < 0.1:  # the same checkpoint again (e.g. an update of its metadata)
            thread_id, ns, checkpoint_id = self.rng.choice(stored)
            config["configurable"].update(thread_id=thread_id, checkpoint_ns=ns)
        else:
            self.counter += 1
            checkpoint_id = f"1f0{self.counter:05x}-0000-6000-8000-{self.counter:012x}"
            self.ids.append(checkpoint_id)
        if self.ids and self.rng.random() < 0.7:
            config["configurable"]["checkpoint_id"] = self.rng.choice(self.ids)  # the parent
        if self.rng.random() < 0.3:
            config["metadata"] = {"user": self.rng.choice(["ann", "bob"]), "run_id": self.rng.choice(RUN_IDS)}
        channels = self.rng.sample(["a", "b", "c"], self.rng.randrange(4))
        self.versions += (
            1  # a new version per value, as LangGraph makes them (its blobs are keyed by version)
        )
        versions = {ch: f"{self.versions:032}.{i}" for i, ch in enumerate(channels)}
        checkpoint: Checkpoint = {
            "v": 4,
            "id": checkpoint_id,
            "ts": f"2026-01-01T00:00:{self.counter % 60:02}+00:00",
            "channel_values": {ch: self.value() for ch in channels},
            "channel_versions": versions,
            "versions_seen": {"node": dict(versions)},
            "updated_channels": channels,
        }
        ours, theirs = self.call("put", config, checkpoint, self.metadata(), dict(versions))
        assert ours == theirs

    def put_writes(self) -> None:
        config = self.config(checkpoint_id=self.some_id())
        writes = [(self.rng.choice(CHANNELS), self.value()) for _ in range(self.rng.randrange(4))]
        task_id = self.rng.choice(["task-1", "task-2"])  # the same task often writes again
        task_path = self.rng.choice(["", "~__pregel_pull, node", "~__pregel_push, 0"])
        self.call("put_writes", config, writes, task_id, task_path)

    def get_tuple(self) -> None:
        checkpoint_id = self.some_id() if self.rng.random() < 0.5 else None
        config = self.config(ns=self.rng.random() < 0.8, checkpoint_id=checkpoint_id)
        ours, theirs = self.call("get_tuple", config)
        assert _plain(ours) == _plain(theirs), self.log[-1]

    def list(self) -> None:
        config: RunnableConfig | None = None
        if self.rng.random() < 0.7:
            config = self.config(ns=self.rng.random() < 0.5)
            if self.rng.random() < 0.1:
                config["configurable"]["checkpoint_id"] = self.some_id()
        kwargs: dict[str, Any] = {}
        if self.rng.random() < 0.4:
            kwargs["filter"] = self.rng.choice(
                [
                    {"source": "loop"},
                    {"run_id": self.rng.choice(RUN_IDS)},
                    {"step": 1, "source": "input"},
                    {"user": "ann"},
                    {"extra": self.value()},
                    {"extra": self.rng.choice(EXOTIC)},
                    {"extra": self.rng.choice(EXOTIC), "source": "loop"},
                    {"step": True},
                    {"missing": None},
                ]
            )
        if self.rng.random() < 0.3:
            kwargs["before"] = {"configurable": {"checkpoint_id": self.some_id()}}
        if self.rng.random() < 0.4:
            kwargs["limit"] = self.rng.randrange(0, 4)
        limit = kwargs.pop("limit", None)
        ours, _ = self.call("list", config, **kwargs, limit=limit)
        # the model's own order holds only within a thread and namespace: sort its whole answer
        full = list(self.model.list(config, **kwargs))
        if config is None:  # across threads: append order
            full.sort(key=lambda t: self.model.seq[_key(t)], reverse=True)
        else:  # one thread: checkpoint id descending, as every LangGraph saver
            full.sort(key=lambda t: _key(t)[2], reverse=True)
        expected = full if limit is None else full[:limit]
        assert [_key(t) for t in ours] == [_key(t) for t in expected], self.log[-1]
        assert [_plain(t) for t in ours] == [_plain(t) for t in expected], self.log[-1]

    def delete_thread(self) -> None:
        self.call("delete_thread", self.rng.choice(self.threads))

    def delete_for_runs(self) -> None:
        self.call("delete_for_runs", self.rng.sample(RUN_IDS, self.rng.randrange(3)))

    def copy_thread(self) -> None:
        target = f"copy-{len(self.threads)}"
        self.call("copy_thread", self.rng.choice(self.threads), target)
        self.threads.append(target)

    def prune(self) -> None:
        strategy = self.rng.choice(["keep_latest", "keep_latest", "delete"])
        self.call("prune", self.rng.sample(self.threads, self.rng.randrange(1, 3)), strategy=strategy)

    def everything(self) -> None:
        """Every checkpoint of every thread and namespace, and each latest one, agree."""
        ours = sorted(map(_plain, self.saver.list(None)), key=repr)
        assert ours == sorted(map(_plain, self.model.list(None)), key=repr)
        for thread_id in self.threads:
            for ns in NAMESPACES:
                config: RunnableConfig = {"configurable": {"thread_id": thread_id, "checkpoint_ns": ns}}
                assert _plain(self.saver.get_tuple(config)) == _plain(self.model.get_tuple(config)), self.log

    def run(self, steps: int) -> None:
        ops = [
            (self.put, 6),
            (self.put_writes, 5),
            (self.get_tuple, 4),
            (self.list, 4),
            (self.delete_thread, 1),
            (self.delete_for_runs, 1),
            (self.copy_thread, 1),
            (self.prune, 1),
        ]
        actions = [op for op, weight in ops for _ in range(weight)]
        for _ in range(steps):
            self.rng.choice(actions)()
        self.everything()


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
def test_saver_matches_the_reference_model(tmp_path: Path, seed: int) -> None:
    store = ContextStore.open(str(tmp_path / "agent.lance"), embedder=HashingEmbedder(32))
    Fuzz(seed, LanceCheckpointSaver(store=store)).run(160)


def _both(tmp_path: Path) -> tuple[LanceCheckpointSaver, InMemorySaver]:
    store = ContextStore.open(str(tmp_path / "agent.lance"), embedder=HashingEmbedder(32))
    return LanceCheckpointSaver(store=store), InMemorySaver()


def _put_all(savers: Sequence[Any], thread_id: str, metadata: dict[str, Any]) -> None:
    checkpoint = empty_checkpoint()
    checkpoint["id"] = f"1f0-{thread_id}"
    for saver in savers:
        saver.put({"configurable": {"thread_id": thread_id, "checkpoint_ns": ""}}, checkpoint, metadata, {})


def test_metadata_with_int_keys_is_stored_and_read_back_exactly(tmp_path: Path) -> None:
    ours, reference = _both(tmp_path)
    metadata = {"source": "loop", "per_task": {1: "done", 2: ["x"]}}
    _put_all([ours, reference], "t", metadata)  # raised InvalidRecordError: JSON would make the keys strings
    config: RunnableConfig = {"configurable": {"thread_id": "t"}}
    expected = reference.get_tuple(config)
    assert expected is not None and expected.metadata == metadata
    assert _plain(ours.get_tuple(config)) == _plain(expected)
    assert [_plain(t) for t in ours.list(None, filter={"per_task": {1: "done", 2: ["x"]}})] == [
        _plain(expected)
    ]


@pytest.mark.parametrize("value", EXOTIC, ids=repr)
def test_a_filter_on_a_value_json_cannot_hold_compares_it_exactly(tmp_path: Path, value: Any) -> None:
    ours, reference = _both(tmp_path)
    _put_all([ours, reference], "a", {"extra": value, "step": 1})
    _put_all([ours, reference], "b", {"extra": "other", "step": 1})
    for config in (None, {"configurable": {"thread_id": "a"}}):
        for flt in ({"extra": value}, {"extra": value, "step": 1}, {"extra": value, "step": 2}):
            # raised InvalidFilterError (the value reached the store's filter compiler)
            expected = [_plain(t) for t in reference.list(config, filter=flt)]
            assert [_plain(t) for t in ours.list(config, filter=flt)] == expected
            assert [_plain(t) for t in ours.list(config, filter=flt, limit=1)] == expected[:1]
    assert len(list(ours.list(None, filter={"extra": value}))) == 1


def test_a_tuple_filter_matches_a_list(tmp_path: Path) -> None:
    ours, reference = _both(tmp_path)
    _put_all([ours, reference], "t", {"path": ("a", 1)})
    # both read the tuple back as a list
    assert next(ours.list(None)).metadata == next(reference.list(None)).metadata == {"path": ["a", 1]}
    # the reference savers never find what was stored with a tuple: InMemorySaver compares
    # ``("a", 1) == ["a", 1]`` (False), SqliteSaver compares the JSON text with ``str(("a", 1))``;
    # PostgresSaver (jsonb containment) finds it, as does this saver: a tuple reads as a list
    assert [t.metadata for t in ours.list(None, filter={"path": ("a", 1)})] == [{"path": ["a", 1]}]
    assert [
        t.metadata for t in ours.list({"configurable": {"thread_id": "t"}}, filter={"path": ("a", 1)})
    ] == [{"path": ["a", 1]}]
