"""Adapter namespaces: prefix-free, escaped scopes, and the layout recorded in every store."""

from __future__ import annotations

import itertools
from pathlib import Path

import lance
import pyarrow as pa
import pytest

from lance_context import ContextStore, InvalidFilterError, SchemaVersionError
from lance_context.adapters import LAYOUT_VERSION, LLAMA_INDEX_CHAT, NAMESPACES, Namespace, namespace_of


def test_no_namespace_prefix_starts_another() -> None:
    for a, b in itertools.permutations(NAMESPACES.values(), 2):
        assert not b.prefix.startswith(a.prefix), (a.name, b.name)


def test_run_ids_round_trip_and_name_their_namespace() -> None:
    for ns in NAMESPACES.values():
        for key in ("alice", "a:b", "langchain.history:x", "%3A", " "):
            run_id = ns.run_id(key)
            assert namespace_of(run_id) == (ns, key)
            assert ns.key(run_id) == key
    assert namespace_of("chat-1") == (None, "chat-1")
    assert namespace_of("unknown.kind:x") == (None, "unknown.kind:x")


def test_scopes_are_escaped_so_no_pair_names_another() -> None:
    pairs = [
        ("", "team-b:k"),
        ("team-b", "k"),
        ("team-b:", "k"),
        ("team-b%3A", "k"),
        ("a:b", "c"),
        ("a", "b:c"),
    ]
    run_ids = [LLAMA_INDEX_CHAT.run_id(key, scope=scope) for scope, key in pairs]
    assert len(set(run_ids)) == len(pairs)
    for (scope, key), run_id in zip(pairs, run_ids, strict=True):
        assert LLAMA_INDEX_CHAT.key(run_id, scope=scope) == key
        assert all(LLAMA_INDEX_CHAT.key(run_id, scope=s) is None for s, _ in pairs if s != scope)


def test_bad_names_and_keys_are_refused() -> None:
    for name in ("Has:Colon", "UPPER", "", "a..b", "a:b"):
        with pytest.raises(ValueError, match="invalid namespace name"):
            Namespace(name, "x")
    with pytest.raises(InvalidFilterError, match="non-empty string"):
        LLAMA_INDEX_CHAT.run_id("")


def test_a_new_store_records_the_layout(tmp_path: Path) -> None:
    store = ContextStore.open(str(tmp_path / "s.lance"), embedder=None)
    metadata = lance.dataset(store.uri).schema.metadata
    assert metadata[b"lance_context.layout"] == str(LAYOUT_VERSION).encode()


def test_stores_of_another_layout_are_refused(tmp_path: Path) -> None:
    store = ContextStore.open(str(tmp_path / "s.lance"), embedder=None)
    ds = lance.dataset(store.uri)
    for layout, message in (("1", "without namespaces"), ("99", "newer lance-context")):
        schema = ds.schema.with_metadata({**ds.schema.metadata, b"lance_context.layout": layout.encode()})
        path = str(tmp_path / f"layout-{layout}.lance")
        lance.write_dataset(pa.Table.from_pylist([], schema=schema), path, schema=schema)
        with pytest.raises(SchemaVersionError, match=message):
            ContextStore.open(path)
