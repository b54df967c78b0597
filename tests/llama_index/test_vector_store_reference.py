"""LanceVectorStore against LlamaIndex's own reference, ``SimpleVectorStore``.

The same nodes go into both stores and the same operations run on both; what a
LlamaIndex user sees from the reference is what they must see here.
"""

from __future__ import annotations

from typing import Any

import pytest
from llama_index.core.schema import NodeRelationship, RelatedNodeInfo, TextNode
from llama_index.core.vector_stores import SimpleVectorStore
from llama_index.core.vector_stores.types import (
    FilterOperator,
    MetadataFilter,
    MetadataFilters,
    VectorStoreQuery,
)
from llama_index.core.vector_stores.utils import build_metadata_filter_fn

from lance_context import ContextStore, InvalidFilterError, InvalidRecordError
from lance_context.llama_index import LanceEmbedding, LanceVectorStore

F = FilterOperator

METADATA: dict[str, dict[str, Any]] = {
    "on": {"flag": True, "flags": [True], "count": 1},
    "off": {"flag": False, "flags": [False], "count": 0},
    "one": {"flag": 1, "flags": [1, 2], "count": 1.0},
    "two": {"flag": 2, "flags": [], "count": 2},
    "null": {"flag": None, "flags": None, "count": None},
    "bare": {},
}
TEXTS = {
    "on": "red apples",
    "off": "green apples",
    "one": "yellow bananas",
    "two": "cold ice water",
    "null": "orange carrots",
    "bare": "apple pie recipe",
}


def make_nodes(embed_model: LanceEmbedding) -> list[TextNode]:
    return [
        TextNode(
            id_=node_id,
            text=TEXTS[node_id],
            metadata=dict(metadata),
            embedding=embed_model.get_text_embedding(TEXTS[node_id]),
            relationships={NodeRelationship.SOURCE: RelatedNodeInfo(node_id=f"doc-{i % 2}")},
        )
        for i, (node_id, metadata) in enumerate(METADATA.items())
    ]


@pytest.fixture
def stores(store: ContextStore, embed_model: LanceEmbedding) -> tuple[SimpleVectorStore, LanceVectorStore]:
    reference = SimpleVectorStore()
    reference.add(make_nodes(embed_model))
    ours = LanceVectorStore(store=store, collection="reference")
    ours.add(make_nodes(embed_model))
    return reference, ours


def node_ids(store: SimpleVectorStore | LanceVectorStore) -> set[str]:
    if isinstance(store, SimpleVectorStore):
        return set(store.data.embedding_dict)
    return {node.node_id for node in store.get_nodes()}


def reference_matches(filters: MetadataFilters) -> tuple[set[str], set[str]]:
    """(matching node ids, node ids the reference cannot compare and raises on)."""
    matches = build_metadata_filter_fn(lambda node_id: METADATA[node_id], filters)
    matched, undefined = set(), set()
    for node_id in METADATA:
        try:
            if matches(node_id):
                matched.add(node_id)
        except TypeError:  # e.g. 2 in None: the reference has no answer for this node
            undefined.add(node_id)
    return matched, undefined


BOOL_FILTERS = [
    MetadataFilter(key="flag", value=value, operator=operator)
    for operator in (F.EQ, F.NE, F.GT, F.GTE, F.LT, F.LTE)
    for value in (1, 0, 1.0, 0.5, -1, 2)
] + [
    MetadataFilter(key="flag", value=[1], operator=F.IN),
    MetadataFilter(key="flag", value=[0, 2], operator=F.IN),
    MetadataFilter(key="flag", value=[1], operator=F.NIN),
    MetadataFilter(key="flags", value=1, operator=F.CONTAINS),
    MetadataFilter(key="flags", value=0, operator=F.CONTAINS),
    MetadataFilter(key="flags", value=[1], operator=F.ANY),
    MetadataFilter(key="flags", value=[1, 2], operator=F.ALL),
    MetadataFilter(key="count", value=1, operator=F.EQ),
    MetadataFilter(key="flag", value=[], operator=F.ALL),
    MetadataFilter(key="flags", value=[], operator=F.ALL),
]


@pytest.mark.parametrize("item", BOOL_FILTERS, ids=lambda f: f"{f.key}-{f.operator.name}-{f.value}")
def test_bool_metadata_matches_numbers_as_llama_index_does(
    stores: tuple[SimpleVectorStore, LanceVectorStore], embed_model: LanceEmbedding, item: MetadataFilter
) -> None:
    """``MetadataFilter`` takes no bool, so ``1``/``0`` is how a flag is matched (``True == 1``)."""
    _, ours = stores
    filters = MetadataFilters(filters=[item])
    expected, undefined = reference_matches(filters)
    assert {n.node_id for n in ours.get_nodes(filters=filters)} - undefined == expected
    query = VectorStoreQuery(
        query_embedding=embed_model.get_query_embedding("apples"), similarity_top_k=10, filters=filters
    )
    assert set(ours.query(query).ids or []) - undefined == expected


def test_a_bool_filter_value_matches_like_its_number(
    stores: tuple[SimpleVectorStore, LanceVectorStore],
) -> None:
    """A bool that bypassed validation (``model_construct``) matches as the reference compares it."""
    _, ours = stores
    for value in (True, False):
        filters = MetadataFilters(filters=[MetadataFilter.model_construct(key="flag", value=value)])
        expected, _ = reference_matches(filters)
        assert {n.node_id for n in ours.get_nodes(filters=filters)} == expected


@pytest.mark.parametrize(
    "delete",
    [
        {"node_ids": []},
        {"node_ids": ["on", "two", "missing"]},
        {},
        {"filters": MetadataFilters(filters=[MetadataFilter(key="flag", value=1)])},
        {"filters": MetadataFilters(filters=[])},
        {
            "node_ids": ["on", "off"],
            "filters": MetadataFilters(filters=[MetadataFilter(key="count", value=0)]),
        },
        {"node_ids": [], "filters": MetadataFilters(filters=[MetadataFilter(key="count", value=0)])},
        {"filters": MetadataFilters(filters=[MetadataFilter(key="ref_doc_id", value="doc-1")])},
    ],
    ids=repr,
)
def test_delete_nodes_matches_simple_vector_store(
    stores: tuple[SimpleVectorStore, LanceVectorStore], delete: dict[str, Any]
) -> None:
    reference, ours = stores
    reference.delete_nodes(**delete)
    ours.delete_nodes(**delete)
    assert node_ids(ours) == node_ids(reference)


def test_delete_by_document_and_clear_match_simple_vector_store(
    stores: tuple[SimpleVectorStore, LanceVectorStore],
) -> None:
    reference, ours = stores
    for store in stores:
        store.delete("doc-0")
        store.delete("no-such-document")
    assert node_ids(ours) == node_ids(reference) == {"off", "two", "bare"}
    for store in stores:
        store.clear()
    assert node_ids(ours) == node_ids(reference) == set()


@pytest.mark.parametrize("k", [1, 3, 6, 50])
def test_default_query_ranks_and_scores_like_simple_vector_store(
    stores: tuple[SimpleVectorStore, LanceVectorStore], embed_model: LanceEmbedding, k: int
) -> None:
    """Same order and cosine similarities, so a ``similarity_cutoff`` means the same here."""
    reference, ours = stores
    query = VectorStoreQuery(query_embedding=embed_model.get_query_embedding("apples"), similarity_top_k=k)
    expected, got = reference.query(query), ours.query(query)
    scores = dict(zip(expected.ids or [], expected.similarities or []))
    assert len(got.ids or []) == len(scores)
    assert dict(zip(got.ids or [], got.similarities or [])) == pytest.approx(scores, abs=1e-5)
    assert got.similarities == sorted(got.similarities or [], reverse=True)  # ties may come in any order


@pytest.mark.parametrize("call", ["get_nodes", "delete_nodes"])
def test_a_lone_string_of_node_ids_is_refused_and_nothing_is_deleted(
    stores: tuple[SimpleVectorStore, LanceVectorStore], call: str
) -> None:
    """Iterating ``"on"`` would name the nodes ``"o"`` and ``"n"``: refused instead."""
    _, ours = stores
    version = ours.client.version()
    with pytest.raises(InvalidFilterError, match="node_ids must be a list of ids, got 'on'"):
        getattr(ours, call)(node_ids="on")
    assert ours.client.version() == version and node_ids(ours) == set(METADATA)


def test_flat_metadata_refuses_nested_metadata(store: ContextStore) -> None:
    flat = LanceVectorStore(store=store, collection="flat", flat_metadata=True)
    assert flat.flat_metadata and flat.at_version(store.version()).flat_metadata
    flat.add([TextNode(id_="ok", text="plain", metadata={"k": 1})])
    with pytest.raises(InvalidRecordError, match="node 'nested' cannot be stored"):
        flat.add([TextNode(id_="nested", text="deep", metadata={"k": {"a": 1}})])
    assert {n.node_id for n in flat.get_nodes()} == {"ok"}
