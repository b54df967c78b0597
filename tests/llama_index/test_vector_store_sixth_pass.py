"""LanceVectorStore against ``SimpleVectorStore``, sixth pass: re-ingestion, deletes, nested filters.

Each scenario runs on LlamaIndex's reference store and on ours; what a LlamaIndex user
sees (nodes, metadata, source documents, scores) must be the same.
"""

from __future__ import annotations

import math
import os
import random
from pathlib import Path
from typing import Any

import pytest
from llama_index.core import Document, StorageContext, VectorStoreIndex
from llama_index.core.base.embeddings.base import BaseEmbedding
from llama_index.core.ingestion import DocstoreStrategy, IngestionPipeline
from llama_index.core.node_parser import SentenceSplitter
from llama_index.core.schema import BaseNode, IndexNode, NodeRelationship, RelatedNodeInfo, TextNode
from llama_index.core.storage.docstore import SimpleDocumentStore
from llama_index.core.vector_stores import SimpleVectorStore
from llama_index.core.vector_stores.types import (
    FilterCondition,
    FilterOperator,
    MetadataFilter,
    MetadataFilters,
    VectorStoreQuery,
)
from llama_index.core.vector_stores.utils import build_metadata_filter_fn

from lance_context import ContextStore, EncryptionPolicy
from lance_context.llama_index import LanceVectorStore

F = FilterOperator
C = FilterCondition

# VectorStoreIndex resolves its embed model through LlamaIndex's LangChain bridge, which
# imports langchain-community (installed for the benchmarks) and its sunset notice.
pytestmark = pytest.mark.filterwarnings("ignore:`langchain-community` is being sunset:DeprecationWarning")


class WordEmbedding(BaseEmbedding):
    """A dense 64-dimension embedding, the sum of one fixed random vector per word.

    Dense, so two texts sharing no word still get distinct scores (no ties to order).
    """

    def _vector(self, text: str) -> list[float]:
        total = [0.0] * 64
        for word in text.lower().split():
            rng = random.Random(word.strip(".,!?"))
            total = [t + rng.uniform(-1.0, 1.0) for t in total]
        norm = math.sqrt(sum(t * t for t in total)) or 1.0
        return [t / norm for t in total]

    def _get_query_embedding(self, query: str) -> list[float]:
        return self._vector(query)

    def _get_text_embedding(self, text: str) -> list[float]:
        return self._vector(text)

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return self._vector(query)


EMBED = WordEmbedding(model_name="words")
QUERIES = ["winter snow", "cherries spring", "dry desert", "fish in the sea", "ripen"]


def first_documents() -> list[Document]:
    return [
        Document(text="Cherries bloom in spring. Apples ripen in autumn.", doc_id="a", metadata={"n": 1}),
        Document(text="The sea is cold in winter. Fish swim deep.", doc_id="b", metadata={"n": 2.5}),
        Document(text="Mountains are tall. Snow falls on peaks.", doc_id="c", metadata={"tags": ["x"]}),
    ]


def second_documents() -> list[Document]:
    """``a`` changed, ``b`` gone, ``c`` unchanged, ``d`` new."""
    return [
        Document(text="Cherries bloom in spring. Pears ripen in summer.", doc_id="a", metadata={"n": 1}),
        first_documents()[2],
        Document(text="Deserts are dry and hot.", doc_id="d", metadata={"tags": ["y", "x"]}),
    ]


def ingest(vector_store: Any, strategy: DocstoreStrategy) -> tuple[list[int], dict[str, BaseNode]]:
    """Two pipeline runs sharing one docstore: (nodes written per run, every node written)."""
    docstore = SimpleDocumentStore()
    counts, written = [], {}
    for documents in (first_documents(), second_documents()):
        pipeline = IngestionPipeline(
            transformations=[SentenceSplitter(chunk_size=64, chunk_overlap=0), EMBED],
            docstore=docstore,
            vector_store=vector_store,
            docstore_strategy=strategy,
        )
        nodes = pipeline.run(documents=documents)
        counts.append(len(nodes))
        written.update({node.node_id: node for node in nodes})
    return counts, written


def seen(node: BaseNode, score: float | None) -> tuple[Any, ...]:
    return (node.get_content(), node.metadata, node.ref_doc_id, round(float(score or 0.0), 5))


@pytest.mark.parametrize("strategy", [DocstoreStrategy.UPSERTS, DocstoreStrategy.UPSERTS_AND_DELETE])
def test_reingesting_changed_removed_and_unchanged_documents_matches_simple_vector_store(
    tmp_path: Path, strategy: DocstoreStrategy
) -> None:
    reference = SimpleVectorStore()
    expected_counts, written = ingest(reference, strategy)
    ours = LanceVectorStore(uri=str(tmp_path / "store.lance"), embedder=None)
    counts, _ = ingest(ours, strategy)
    assert counts == expected_counts
    stored = sorted((n.get_content(), n.ref_doc_id) for n in ours.get_nodes())
    assert stored == sorted(
        (written[i].get_content(), written[i].ref_doc_id) for i in reference.data.embedding_dict
    )
    # SimpleVectorStore keeps no text: its hits are read back from the nodes the pipeline wrote.
    retriever = VectorStoreIndex.from_vector_store(ours, embed_model=EMBED).as_retriever(similarity_top_k=3)
    for text in QUERIES:
        query = VectorStoreQuery(query_embedding=EMBED.get_query_embedding(text), similarity_top_k=3)
        found = reference.query(query)
        expected = [seen(written[i], s) for i, s in zip(found.ids or [], found.similarities or [])]
        assert [seen(hit.node, hit.score) for hit in retriever.retrieve(text)] == expected, text


def recursive_nodes() -> list[BaseNode]:
    """An index node (a summary pointing at another index) beside text nodes, each from a document."""

    def source(doc_id: str) -> dict[NodeRelationship, RelatedNodeInfo]:
        return {NodeRelationship.SOURCE: RelatedNodeInfo(node_id=doc_id)}

    return [
        IndexNode(id_="summary", text="all about cherry trees", index_id="trees", relationships=source("s")),
        TextNode(id_="kyoto", text="cherry trees bloom in April", relationships=source("d1")),
        TextNode(id_="winter", text="winters are long and dark", relationships=source("d2")),
    ]


@pytest.mark.parametrize("delete", ["delete_ref_doc", "delete_nodes", "adelete_ref_doc", "adelete_nodes"])
async def test_text_nodes_stay_retrievable_after_the_index_node_is_deleted(
    tmp_path: Path, delete: str
) -> None:
    """The index keeps listing a deleted index node in ``node_ids``: that must not hide the text nodes."""
    results = []
    for vector_store in (SimpleVectorStore(), LanceVectorStore(uri=str(tmp_path / "s.lance"), embedder=None)):
        index = VectorStoreIndex(
            recursive_nodes(),
            storage_context=StorageContext.from_defaults(vector_store=vector_store),
            embed_model=EMBED,
        )
        done = getattr(index, delete)("s" if delete.endswith("ref_doc") else ["summary"])
        if delete.startswith("a"):
            await done
        hits = index.as_retriever(similarity_top_k=3).retrieve("cherry trees")
        results.append([(hit.node.node_id, round(float(hit.score or 0.0), 5)) for hit in hits])
    assert results[1] == results[0] and {i for i, _ in results[0]} == {"kyoto", "winter"}


def test_a_node_id_list_stays_a_restriction_for_everything_but_deleted_index_nodes(tmp_path: Path) -> None:
    ours = LanceVectorStore(uri=str(tmp_path / "s.lance"), embedder=None)
    ours.add(EMBED(recursive_nodes()))
    vector = EMBED.get_query_embedding("cherry trees")

    def ids(node_ids: list[str]) -> set[str]:
        return set(ours.query(VectorStoreQuery(query_embedding=vector, node_ids=node_ids)).ids or [])

    ours.delete_nodes(["winter"])  # a text node: naming it later still restricts
    assert ids(["winter"]) == set() and ids(["missing"]) == set()
    ours.delete("s")
    assert ids(["summary"]) == {"kyoto"}
    ours.add(EMBED([TextNode(id_="summary", text="a text node now")]))  # back, as a text node
    assert ids(["summary"]) == {"summary"}


def test_deleting_on_an_encrypted_store_that_seals_the_node_type(tmp_path: Path) -> None:
    """Deleting and clearing work where ``_node_type`` cannot be filtered (as before they noted index nodes)."""
    policy = EncryptionPolicy(key=os.urandom(32), clear_metadata={"ref_doc_id"})
    ours = LanceVectorStore(
        store=ContextStore.open(str(tmp_path / "s.lance"), embedder=None, encryption=policy)
    )
    ours.add(EMBED(recursive_nodes()))
    vector = EMBED.get_query_embedding("cherry trees")
    ours.delete("s")
    found = ours.query(VectorStoreQuery(query_embedding=vector, similarity_top_k=3))
    assert set(found.ids or []) == {"kyoto", "winter"}
    ours.clear()
    assert ours.query(VectorStoreQuery(query_embedding=vector, similarity_top_k=3)).ids == []


METADATA: dict[str, dict[str, Any]] = {
    "str": {"k": "Apple Pie", "o": "x"},
    "empty": {"k": "", "o": "x"},
    "null": {"k": None, "o": "x"},
    "int": {"k": 3, "o": "x"},
    "float": {"k": 3.0, "o": "y"},
    "half": {"k": 2.5, "o": "y"},
    "zero": {"k": 0, "o": "y"},
    "strs": {"k": ["a", "b"], "o": "x"},
    "ints": {"k": [1, 2], "o": "y"},
    "none": {"k": [], "o": "x"},
    "missing": {"o": "y"},
}
LEAVES = [
    MetadataFilter(key="k", value=3, operator=F.GT),
    MetadataFilter(key="k", value=3, operator=F.LTE),
    MetadataFilter(key="k", value=2.5, operator=F.GTE),
    MetadataFilter(key="k", value="Apple Pie", operator=F.NE),
    MetadataFilter(key="k", value=["a", "x"], operator=F.ANY),
    MetadataFilter(key="k", value=["a", "b"], operator=F.ALL),
    MetadataFilter(key="k", value=1, operator=F.CONTAINS),
    MetadataFilter(key="k", value="pp", operator=F.TEXT_MATCH),
    MetadataFilter(key="k", value="apple", operator=F.TEXT_MATCH_INSENSITIVE),
    MetadataFilter(key="k", value=None, operator=F.IS_EMPTY),
    MetadataFilter(key="k", value=[3, 0], operator=F.IN),
    MetadataFilter(key="k", value=[3, 0], operator=F.NIN),
    MetadataFilter(key="o", value="x"),
    MetadataFilter(key="o", value=["y"], operator=F.NIN),
    MetadataFilter(key="absent", value=1, operator=F.NE),
    MetadataFilter(key="absent", value=None, operator=F.IS_EMPTY),
]


class Undefined(Exception):
    """The reference cannot compare this node (e.g. ``3 > "Apple Pie"`` raises)."""


def reference_match(filters: MetadataFilters, node_id: str) -> bool:
    """The reference's answer; it refuses nested filters, so groups combine its leaf answers."""
    answers = []
    for item in filters.filters:
        if isinstance(item, MetadataFilters):
            answers.append(reference_match(item, node_id))
            continue
        try:
            answers.append(
                build_metadata_filter_fn(METADATA.__getitem__, MetadataFilters(filters=[item]))(node_id)
            )
        except TypeError:
            raise Undefined from None
    condition = filters.condition or C.AND
    if condition == C.AND:
        return all(answers)
    return any(answers) if condition == C.OR else not any(answers)


def random_filters(rng: random.Random, depth: int = 0) -> MetadataFilters:
    items: list[MetadataFilter | MetadataFilters] = [
        random_filters(rng, depth + 1) if depth < 2 and rng.random() < 0.35 else rng.choice(LEAVES)
        for _ in range(rng.randint(1, 3))
    ]
    return MetadataFilters(filters=items, condition=rng.choice([C.AND, C.OR, C.NOT]))


def test_nested_and_or_not_filters_match_the_reference_leaf_by_leaf(tmp_path: Path) -> None:
    ours = LanceVectorStore(uri=str(tmp_path / "s.lance"), embedder=None)
    ours.add(EMBED([TextNode(id_=i, text=f"node {i}", metadata=m) for i, m in METADATA.items()]))
    rng = random.Random(7)
    for _ in range(120):
        filters = random_filters(rng)
        expected, undefined = set(), set()
        for node_id in METADATA:
            try:
                if reference_match(filters, node_id):
                    expected.add(node_id)
            except Undefined:
                undefined.add(node_id)
        assert {n.node_id for n in ours.get_nodes(filters=filters)} - undefined == expected, filters
