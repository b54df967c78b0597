"""Options of the wrong type are refused when a store or adapter is opened, before anything is written.

A dict where a policy object belongs used to pass ``open()`` and fail at the first write
with an ``AttributeError``; a string for ``read_only`` used to make the store read-only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from lance_context import CompactionPolicy, ContextRecord, ContextStore, HashingEmbedder, StoreLimits


@pytest.mark.parametrize(
    ("argument", "value", "takes"),
    [
        ("compaction", {"fanout": 3}, "a CompactionPolicy"),
        ("indexing", {"vector_index_type": "IVF_SQ"}, "an IndexPolicy"),
        ("limits", {"max_text_bytes": 10}, "a StoreLimits"),
        ("caches", {"index_bytes": 1}, "a CachePolicy"),
        ("retention", {"keep_all": 3}, "a RetentionPolicy"),
        ("read_only", "no", "True or False"),
        ("branch", 3, "a str"),
        ("storage_options", "region=us-east-1", "a Mapping"),
    ],
)
def test_open_refuses_an_option_of_the_wrong_type_and_creates_nothing(
    tmp_path: Path, argument: str, value: Any, takes: str
) -> None:
    uri = tmp_path / "s.lance"
    with pytest.raises(TypeError, match=rf"ContextStore\.open\({argument}=\.\.\.\) takes {takes}, got"):
        ContextStore.open(str(uri), embedder=HashingEmbedder(8), **{argument: value})
    assert not uri.exists()


def test_open_refuses_a_wrong_option_on_an_existing_store_without_writing(tmp_path: Path) -> None:
    uri = str(tmp_path / "s.lance")
    store = ContextStore.open(uri, embedder=HashingEmbedder(8))
    store.add(ContextRecord.from_content("hello", run_id="r"))
    before = store.version()
    with pytest.raises(TypeError, match="compaction"):
        ContextStore.open(uri, embedder=HashingEmbedder(8), compaction={"fanout": 2})
    assert ContextStore.open(uri, embedder=HashingEmbedder(8)).version() == before


def test_the_right_types_and_none_still_open(tmp_path: Path) -> None:
    store = ContextStore.open(
        str(tmp_path / "s.lance"),
        embedder=HashingEmbedder(8),
        compaction=CompactionPolicy(fanout=3),
        limits=StoreLimits(),
        indexing=None,
        caches=None,
        storage_options={},
        read_only=False,
    )
    store.add(ContextRecord.from_content("hello", run_id="r"))
    assert store.compaction.fanout == 3 and store.count() == 1


def test_chat_history_refuses_indexing_and_recall_of_the_wrong_type(tmp_path: Path) -> None:
    from lance_context.langchain import LanceChatMessageHistory

    uri = tmp_path / "h.lance"
    with pytest.raises(TypeError, match=r"LanceChatMessageHistory\(indexing=\.\.\.\) takes a ChatIndexing"):
        LanceChatMessageHistory("chat", uri=str(uri), embedder=None, indexing={"speaker": False})  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"LanceChatMessageHistory\(recall=\.\.\.\) takes a RecallOptions"):
        LanceChatMessageHistory("chat", uri=str(uri), embedder=None, recall={"k": 3})  # type: ignore[arg-type]
    assert not uri.exists()


def test_llama_index_memory_refuses_indexing_of_the_wrong_type(tmp_path: Path) -> None:
    from lance_context.llama_index import LanceMemory

    uri = tmp_path / "m.lance"
    with pytest.raises(TypeError, match=r"LanceMemory\(indexing=\.\.\.\) takes a ChatIndexing"):
        LanceMemory.from_defaults("chat", uri=str(uri), embedder=None, indexing={"speaker": False})  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"LanceMemory\(recall_options=\.\.\.\) takes a RecallOptions"):
        LanceMemory.from_defaults("chat", uri=str(uri), embedder=None, recall_options=3)  # type: ignore[arg-type]
    assert not uri.exists()
    store = ContextStore.open(str(uri), embedder=None)
    with pytest.raises(TypeError, match="indexing"):
        LanceMemory(store=store, session_id="chat", indexing="speaker")  # type: ignore[arg-type]
