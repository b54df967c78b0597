"""Every pair of adapters on one store, with ids chosen to collide: no read, write or clear crosses.

For each victim adapter holding a session with key ``"v"`` and each attacker adapter,
the attacker uses ids built to reach the victim: the victim's full run id, its key with
another adapter's prefix, the loose prefixes earlier builds used, and the part after the
first ``:``. Whatever the attacker writes, reads or clears, the victim keeps exactly
what it wrote and the attacker never sees it.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import HumanMessage
from langgraph.checkpoint.base import empty_checkpoint
from llama_index.core.llms import ChatMessage
from llama_index.core.schema import TextNode

from lance_context import ContextStore, HashingEmbedder
from lance_context.adapters import NAMESPACES, namespace_of
from lance_context.api import Context
from lance_context.langchain import LanceChatMessageHistory
from lance_context.langchain import LanceVectorStore as LCVectorStore
from lance_context.langgraph import LanceCheckpointSaver, LanceStore
from lance_context.llama_index import LanceChatStore, LanceMemory
from lance_context.llama_index import LanceVectorStore as LIVectorStore


@dataclass(frozen=True)
class Adapter:
    """How to open one adapter's session by key, write a marker, read markers, clear it."""

    name: str
    open: Callable[[ContextStore, str], Any]
    write: Callable[[Any, str], None]
    read: Callable[[Any], set[str]]
    clear: Callable[[Any], None] | None
    run_id: Callable[[Any], str]


def _checkpoint_put(saver: tuple[LanceCheckpointSaver, str], marker: str) -> None:
    checkpoint = empty_checkpoint()
    checkpoint["channel_values"] = {"m": marker}
    saver[0].put({"configurable": {"thread_id": saver[1], "checkpoint_ns": ""}}, checkpoint, {}, {})


def _checkpoint_read(saver: tuple[LanceCheckpointSaver, str]) -> set[str]:
    found = saver[0].list({"configurable": {"thread_id": saver[1]}})
    return {t.checkpoint["channel_values"]["m"] for t in found}


def _item_clear(memory: tuple[LanceStore, tuple[str, ...]]) -> None:
    for item in memory[0].search(memory[1], limit=100):
        memory[0].delete(memory[1], item.key)


ADAPTERS = [
    Adapter(
        "Context",
        lambda store, key: Context(store, run_id=key),
        lambda ctx, m: ctx.add("user", m) and None,
        lambda ctx: {e.content for e in ctx.entries()},
        None,
        lambda ctx: ctx.session,
    ),
    Adapter(
        "LangChain history",
        lambda store, key: LanceChatMessageHistory(key, store=store),
        lambda h, m: h.add_messages([HumanMessage(m)]),
        lambda h: {m.text for m in h.messages},
        lambda h: h.clear(),
        lambda h: h.run_id,
    ),
    Adapter(
        "LangChain vectors",
        lambda store, key: LCVectorStore(store=store, collection=key),
        lambda vs, m: vs.add_texts([m]) and None,
        lambda vs: {d.page_content for d in vs.similarity_search("marker", k=100)},
        lambda vs: vs.delete() and None,
        lambda vs: vs.namespace,
    ),
    Adapter(
        "LangGraph checkpoints",
        lambda store, key: (LanceCheckpointSaver(store=store), key),
        _checkpoint_put,
        _checkpoint_read,
        lambda s: s[0].delete_thread(s[1]),
        lambda s: "langgraph.checkpoints:" + s[1],
    ),
    Adapter(
        "LangGraph store",
        lambda store, key: (LanceStore(store=store), (key,)),
        lambda s, m: s[0].put(s[1], m, {"m": m}),
        lambda s: {i.value["m"] for i in s[0].search(s[1], limit=100)},
        _item_clear,
        lambda s: "langgraph.store:" + s[1][0],
    ),
    Adapter(
        "LlamaIndex memory",
        lambda store, key: LanceMemory.from_defaults(session_id=key, store=store),
        lambda mem, m: mem.put(ChatMessage(role="user", content=m)),
        lambda mem: {str(x.content) for x in mem.get_all()},
        lambda mem: mem.reset(),
        lambda mem: mem.run_id,
    ),
    Adapter(
        "LlamaIndex chat store",
        lambda store, key: (LanceChatStore(store=store), key),
        lambda c, m: c[0].add_message(c[1], ChatMessage(role="user", content=m)),
        lambda c: {str(x.content) for x in c[0].get_messages(c[1])},
        lambda c: c[0].delete_messages(c[1]) and None,
        lambda c: c[0]._run(c[1]),
    ),
    Adapter(
        "LlamaIndex vectors",
        lambda store, key: LIVectorStore(store=store, collection=key),
        lambda vs, m: vs.add([TextNode(text=m)]) and None,
        lambda vs: {n.get_content() for n in vs.get_nodes()},
        lambda vs: vs.clear(),
        lambda vs: vs.run_id,
    ),
]

OLD_PREFIXES = (
    "langchain:",
    "langgraph:checkpoint:",
    "langgraph:store:",
    "llama_index/chat/",
    "llama_index/nodes/",
)


def colliding_keys(victim_run_id: str) -> list[str]:
    """Ids an attacker would try to reach the victim's session."""
    _, key = namespace_of(victim_run_id)
    tail = victim_run_id.split(":", 1)[1]
    keys = {victim_run_id, tail, key, *(p + key for p in OLD_PREFIXES)}
    keys |= {ns.prefix + key for ns in NAMESPACES.values()}
    return sorted(keys)


@pytest.fixture
def store(tmp_path: Path) -> ContextStore:
    return ContextStore.open(str(tmp_path / "shared.lance"), embedder=HashingEmbedder(32))


def _open(adapter: Adapter, store: ContextStore, key: str) -> Any | None:
    """The adapter's session for ``key``, or None when the adapter refuses such an id."""
    try:
        return adapter.open(store, key)
    except (ValueError, TypeError):
        return None


def _try(fn: Callable[[], Any]) -> bool:
    """Run an attacker step; an id the adapter refuses outright counts as a failed attack."""
    try:
        fn()
    except (ValueError, TypeError):
        return False
    return True


@pytest.mark.parametrize(
    ("victim", "attacker"),
    [(v, a) for v, a in itertools.product(ADAPTERS, ADAPTERS) if v is not a],
    ids=lambda adapter: adapter.name,
)
def test_no_adapter_reaches_another_adapters_session(
    store: ContextStore, victim: Adapter, attacker: Adapter
) -> None:
    target = victim.open(store, "v")
    victim.write(target, "marker of the victim")
    victim_run = victim.run_id(target)
    assert namespace_of(victim_run)[0] is not None, "every adapter keeps its sessions in a namespace"
    for key in colliding_keys(victim_run):
        other = _open(attacker, store, key)
        if other is None:
            continue
        assert attacker.run_id(other) != victim_run
        if _try(lambda other=other: attacker.write(other, "marker of the attacker")):
            assert "marker of the victim" not in attacker.read(other)
        if attacker.clear is not None:
            _try(lambda other=other: attacker.clear(other))  # type: ignore[misc]
        assert victim.read(target) == {"marker of the victim"}, f"attacker key {key!r}"
    assert store.count(victim_run) >= 1
