"""LanceByteStore and LanceDocumentStore: what users rely on beyond the standard suite."""

from __future__ import annotations

from pathlib import Path

import pytest
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings

from lance_context import ContextStore, HashingEmbedder
from lance_context.adapters import LANGCHAIN_KV
from lance_context.langchain import LanceByteStore, LanceDocumentStore, LanceVectorStore

HOSTILE_KEYS = [
    "it's",
    "100%",
    "%_%",
    "a:b",
    "x' OR '1'='1",
    "a\\b",
    "line\nbreak",
    "東京/キー",
    "emoji-🦜",
    "",
    "k" * 5_000,
]


def test_mset_is_one_commit_and_a_repeated_key_keeps_its_last_value(store: ContextStore) -> None:
    kv = LanceByteStore(store=store)
    before = store.version()
    kv.mset([("a", b"1"), ("b", b"2"), ("a", b"3")])
    assert store.version() == before + 1
    assert kv.mget(["a", "b"]) == [b"3", b"2"]


def test_a_bad_key_or_value_refuses_the_whole_batch(store: ContextStore) -> None:
    kv = LanceByteStore(store=store)
    docs = LanceDocumentStore(store=store)
    before = store.version()
    with pytest.raises(TypeError, match="key 'b' has a str"):
        kv.mset([("a", b"ok"), ("b", "not bytes")])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="keys must be str"):
        kv.mset([("a", b"ok"), (7, b"x")])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="values must be Documents"):
        docs.mset([("a", Document("ok")), ("b", {"page_content": "x"})])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="key 'b': metadata must be JSON-serializable"):
        docs.mset([("a", Document("ok")), ("b", Document("x", metadata={"when": object()}))])
    with pytest.raises(ValueError, match="key 'b': metadata keys must be str, got 1"):
        docs.mset([("a", Document("ok")), ("b", Document("x", metadata={1: "x"}))])  # type: ignore[dict-item]
    with pytest.raises(ValueError, match="key 'b': metadata would not come back as given"):
        docs.mset([("a", Document("ok")), ("b", Document("x", metadata={"span": (1, 2)}))])
    with pytest.raises(ValueError, match="not valid unicode"):
        kv.mget(["\ud800"])
    assert store.version() == before
    assert kv.mget(["a"]) == [None] and docs.mget(["a"]) == [None]


def test_deleting_missing_keys_writes_no_version(store: ContextStore) -> None:
    kv = LanceByteStore(store=store)
    kv.mset([("a", b"1")])
    before = store.version()
    kv.mdelete(["missing", "also-missing"])
    kv.mdelete([])
    assert store.version() == before
    kv.mdelete(["a", "missing"])
    assert store.version() == before + 1 and kv.mget(["a"]) == [None]


def test_hostile_keys_round_trip_and_prefixes_are_literal(store: ContextStore) -> None:
    kv = LanceByteStore(store=store)
    kv.mset([(key, key.encode()) for key in HOSTILE_KEYS])
    assert kv.mget(HOSTILE_KEYS) == [key.encode() for key in HOSTILE_KEYS]
    assert sorted(kv.yield_keys()) == sorted(HOSTILE_KEYS)
    assert list(kv.yield_keys(prefix="%")) == ["%_%"]  # '%' and '_' are not wildcards
    assert list(kv.yield_keys(prefix="x'")) == ["x' OR '1'='1"]
    assert sorted(kv.yield_keys(prefix="a")) == ["a:b", "a\\b"]
    assert list(kv.yield_keys(prefix="nothing")) == []


def test_stores_of_other_names_kinds_and_adapters_share_nothing(store: ContextStore) -> None:
    first, second = LanceByteStore("first", store=store), LanceByteStore("second", store=store)
    docs = LanceDocumentStore("first", store=store)
    vectors = LanceVectorStore(store=store, collection="first")
    vectors.add_texts(["a document"], ids=["k"])
    first.mset([("k", b"first")])
    second.mset([("k", b"second"), ("only-second", b"x")])
    docs.mset([("k", Document("a parent"))])
    assert first.mget(["k", "only-second"]) == [b"first", None]
    assert second.mget(["k"]) == [b"second"]
    assert docs.mget(["k"]) == [Document("a parent")]
    assert list(first.yield_keys()) == ["k"] and list(docs.yield_keys()) == ["k"]
    first.mdelete(["k"])
    assert second.mget(["k"]) == [b"second"] and docs.mget(["k"]) == [Document("a parent")]
    assert [d.page_content for d in vectors.get_by_ids(["k"])] == ["a document"]


def test_invalid_names_are_refused(store: ContextStore) -> None:
    for bad in ("", "a/b", "a:b", " x", None):
        with pytest.raises(ValueError, match="invalid key-value store name"):
            LanceByteStore(bad, store=store)  # type: ignore[arg-type]


def test_documents_round_trip_exactly_and_are_not_embedded(store: ContextStore) -> None:
    docs = LanceDocumentStore("parents", store=store)
    stored = [
        Document("plain"),
        Document("with id and metadata", id="d-1", metadata={"n": 10**30, "nested": {"a": [1, None]}}),
        Document("pdf text with a lone surrogate \udcff", metadata={"page": 3}),
    ]
    docs.mset([(str(n), doc) for n, doc in enumerate(stored)])
    assert docs.mget(["0", "1", "2"]) == stored
    records = store.records(LANGCHAIN_KV.run_id("documents/parents"))
    assert len(records) == 3 and all(r.embedding is None and r.text_payload is None for r in records)


def test_values_persist_when_the_store_is_opened_again(tmp_path: Path) -> None:
    uri = str(tmp_path / "kv.lance")
    LanceByteStore(uri=uri, embedder=None).mset([("a", b"\x00\xff")])
    assert LanceByteStore(uri=uri).mget(["a"]) == [b"\x00\xff"]


async def test_async_twins_see_the_same_entries(store: ContextStore) -> None:
    kv = LanceByteStore(store=store)
    await kv.amset([("a", b"1"), ("b", b"2")])
    assert kv.mget(["a", "b"]) == [b"1", b"2"]
    await kv.amdelete(["a"])
    assert await kv.amget(["a", "b"]) == [None, b"2"]
    assert [key async for key in kv.ayield_keys(prefix="b")] == ["b"]


# ---------------------------------------------------------------------- in LangChain's retrievers
class CountingEmbeddings(Embeddings):
    def __init__(self) -> None:
        self.inner = HashingEmbedder(64)
        self.calls = 0

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        self.calls += len(texts)
        return self.inner.embed_texts(texts).tolist()

    def embed_query(self, text: str) -> list[float]:
        return self.embed_documents([text])[0]


def test_cache_backed_embeddings_embed_each_text_once_across_reopens(tmp_path: Path) -> None:
    import langchain_classic.embeddings as classic

    uri = str(tmp_path / "cache.lance")
    underlying = CountingEmbeddings()
    cached = classic.CacheBackedEmbeddings.from_bytes_store(
        underlying,
        LanceByteStore("embeddings", uri=uri, embedder=None),
        namespace="hashing-64",
        key_encoder="sha256",
    )
    first = cached.embed_documents(["alpha", "beta"])
    assert cached.embed_documents(["beta", "alpha"]) == [first[1], first[0]]
    reopened = classic.CacheBackedEmbeddings.from_bytes_store(
        underlying, LanceByteStore("embeddings", uri=uri), namespace="hashing-64", key_encoder="sha256"
    )
    assert reopened.embed_documents(["alpha", "gamma"])[0] == first[0]
    assert underlying.calls == 3


def test_parent_document_retriever_returns_whole_parents(store: ContextStore) -> None:
    import langchain_classic.retrievers as retrievers
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    parents = [
        Document("Porto sits on the Douro river. Its old town is full of tiled churches.", metadata={"n": 1}),
        Document("Lance keeps every version of a dataset. Old versions stay readable.", metadata={"n": 2}),
    ]
    retriever = retrievers.ParentDocumentRetriever(
        vectorstore=LanceVectorStore(store=store, collection="children"),
        docstore=LanceDocumentStore("parents", store=store),
        child_splitter=RecursiveCharacterTextSplitter(chunk_size=40, chunk_overlap=0),
    )
    retriever.add_documents(parents)
    assert retriever.invoke("which versions stay readable?")[0] == parents[1]


def test_multi_vector_retriever_over_a_byte_store(store: ContextStore) -> None:
    import langchain_classic.retrievers as retrievers

    vectors = LanceVectorStore(store=store, collection="summaries")
    retriever = retrievers.MultiVectorRetriever(
        vectorstore=vectors, byte_store=LanceByteStore("full-docs", store=store), id_key="doc_id"
    )
    full = Document("The full text of a long report about Lance versions.", metadata={"src": "r.pdf"})
    retriever.docstore.mset([("r1", full)])
    vectors.add_texts(["summary: dataset versions"], metadatas=[{"doc_id": "r1"}])
    assert retriever.invoke("versions") == [full]


def test_keys_come_in_the_order_first_written_as_in_langchains_own_store(store: ContextStore) -> None:
    from langchain_core.stores import InMemoryByteStore

    lance, memory = LanceByteStore(store=store), InMemoryByteStore()
    for kv in (lance, memory):
        kv.mset([("a", b"1"), ("b", b"2"), ("c", b"3")])
        kv.mset([("a", b"4")])  # set again: keeps its place
        kv.mdelete(["b"])
        kv.mset([("b", b"5")])  # deleted, then set: a new key at the end
    assert list(lance.yield_keys()) == list(memory.yield_keys()) == ["a", "c", "b"]
    assert lance.mget(["a", "b", "c"]) == memory.mget(["a", "b", "c"]) == [b"4", b"5", b"3"]
