"""LanceVectorStore: nodes, filters before top-k, query modes, indexes, bad input."""

from __future__ import annotations

from typing import Any

import pytest
from llama_index.core import Document, StorageContext, VectorStoreIndex
from llama_index.core.schema import NodeRelationship, RelatedNodeInfo, TextNode
from llama_index.core.vector_stores.types import (
    FilterCondition,
    FilterOperator,
    MetadataFilter,
    MetadataFilters,
    VectorStoreQuery,
    VectorStoreQueryMode,
)
from llama_index.core.vector_stores.utils import build_metadata_filter_fn

from lance_context import ContextStore, EmbeddingError, HashingEmbedder, InvalidFilterError, SearchError
from lance_context.llama_index import LanceEmbedding, LanceVectorStore

from .conftest import DIM

F = FilterOperator

# VectorStoreIndex resolves its embed model through LlamaIndex's LangChain bridge, which
# imports langchain-community (installed for the benchmarks) and its sunset notice.
pytestmark = pytest.mark.filterwarnings("ignore:`langchain-community` is being sunset:DeprecationWarning")

ROWS: dict[str, tuple[str, dict[str, Any], str]] = {
    "apple": (
        "red apples are sweet fruit",
        {"color": "red", "price": 3, "tags": ["fruit", "sweet"], "note": "", "sizes": [1, 2]},
        "d1",
    ),
    "banana": (
        "yellow bananas are soft fruit",
        {"color": "yellow", "price": 1.5, "tags": ["fruit"], "note": "ripe", "sizes": [1.0, 2.5]},
        "d1",
    ),
    "carrot": (
        "orange carrots are crunchy vegetables",
        {"color": "orange", "price": 2, "tags": ["vegetable"]},
        "d2",
    ),
    "ice": ("clear ice is cold water", {"color": "clear", "price": 0, "tags": [], "note": None}, "d3"),
    "evil": (
        "a node with hostile metadata",
        {"color": "x' OR '1'='1", "price": 10, "tags": ["a'b", "%"]},
        "d3",
    ),
}


def make_nodes(embed_model: LanceEmbedding) -> list[TextNode]:
    nodes = []
    for node_id, (text, metadata, doc) in ROWS.items():
        node = TextNode(
            id_=node_id,
            text=text,
            metadata=dict(metadata),
            relationships={NodeRelationship.SOURCE: RelatedNodeInfo(node_id=doc)},
        )
        node.embedding = embed_model.get_text_embedding(text)
        nodes.append(node)
    return nodes


@pytest.fixture
def vector_store(store: ContextStore, embed_model: LanceEmbedding) -> LanceVectorStore:
    vs = LanceVectorStore(store=store, collection="fruit")
    vs.add(make_nodes(embed_model))
    return vs


def ids_of(nodes: Any) -> set[str]:
    return {n.node_id for n in nodes}


def vector_query(embed_model: LanceEmbedding, text: str, **options: Any) -> VectorStoreQuery:
    return VectorStoreQuery(query_embedding=embed_model.get_query_embedding(text), query_str=text, **options)


def test_nodes_round_trip(vector_store: LanceVectorStore, embed_model: LanceEmbedding) -> None:
    original = {n.node_id: n for n in make_nodes(embed_model)}
    got = vector_store.get_nodes(node_ids=["carrot", "apple", "missing"])
    assert [n.node_id for n in got] == ["carrot", "apple"]
    for node in got:
        assert node == original[node.node_id]
        assert node.ref_doc_id == original[node.node_id].ref_doc_id
    assert ids_of(vector_store.get_nodes()) == set(ROWS)
    assert vector_store.get_nodes(node_ids=[]) == []


FILTERS = [
    MetadataFilters(filters=[MetadataFilter(key="color", value="red")]),
    MetadataFilters(filters=[MetadataFilter(key="color", value="red", operator=F.NE)]),
    MetadataFilters(filters=[MetadataFilter(key="price", value=2, operator=F.GT)]),
    MetadataFilters(filters=[MetadataFilter(key="price", value=2, operator=F.GTE)]),
    MetadataFilters(filters=[MetadataFilter(key="price", value=1.5, operator=F.LT)]),
    MetadataFilters(filters=[MetadataFilter(key="price", value=1.5, operator=F.LTE)]),
    MetadataFilters(filters=[MetadataFilter(key="color", value=["red", "orange"], operator=F.IN)]),
    MetadataFilters(filters=[MetadataFilter(key="price", value=[0, 3], operator=F.IN)]),
    MetadataFilters(filters=[MetadataFilter(key="color", value=["red", "orange"], operator=F.NIN)]),
    MetadataFilters(filters=[MetadataFilter(key="tags", value="fruit", operator=F.CONTAINS)]),
    MetadataFilters(filters=[MetadataFilter(key="tags", value="a'b", operator=F.CONTAINS)]),
    MetadataFilters(filters=[MetadataFilter(key="note", value="rip", operator=F.TEXT_MATCH)]),
    MetadataFilters(filters=[MetadataFilter(key="note", value="RIP", operator=F.TEXT_MATCH_INSENSITIVE)]),
    MetadataFilters(filters=[MetadataFilter(key="color", value="ReD", operator=F.TEXT_MATCH_INSENSITIVE)]),
    MetadataFilters(filters=[MetadataFilter(key="note", value=None, operator=F.IS_EMPTY)]),
    MetadataFilters(filters=[MetadataFilter(key="tags", value=None, operator=F.IS_EMPTY)]),
    MetadataFilters(filters=[MetadataFilter(key="color", value="x' OR '1'='1")]),
    MetadataFilters(filters=[MetadataFilter(key="color", value="' OR 1=1 --")]),
    MetadataFilters(filters=[MetadataFilter(key="no'such key", value="red")]),
    MetadataFilters(filters=[MetadataFilter(key="tags", value=["fruit", "vegetable"], operator=F.ANY)]),
    MetadataFilters(filters=[MetadataFilter(key="tags", value=["fruit", "sweet"], operator=F.ALL)]),
    MetadataFilters(filters=[MetadataFilter(key="tags", value=[], operator=F.ALL)]),
    MetadataFilters(filters=[MetadataFilter(key="sizes", value=[], operator=F.ALL)]),
    MetadataFilters(filters=[MetadataFilter(key="sizes", value=2.0, operator=F.CONTAINS)]),
    MetadataFilters(filters=[MetadataFilter(key="sizes", value=[1], operator=F.ANY)]),
    MetadataFilters(filters=[MetadataFilter(key="sizes", value=[1.0, 2], operator=F.ALL)]),
    MetadataFilters(
        filters=[
            MetadataFilter(key="color", value="red"),
            MetadataFilter(key="price", value=1, operator=F.LT),
        ],
        condition=FilterCondition.OR,
    ),
    MetadataFilters(
        filters=[
            MetadataFilter(key="tags", value="fruit", operator=F.CONTAINS),
            MetadataFilter(key="price", value=2, operator=F.GT),
        ],
        condition=FilterCondition.AND,
    ),
    MetadataFilters(
        filters=[MetadataFilter(key="color", value="red"), MetadataFilter(key="color", value="clear")],
        condition=FilterCondition.NOT,
    ),
]


@pytest.mark.parametrize("filters", FILTERS, ids=lambda f: repr(f.filters[0])[:60] + str(f.condition))
def test_filters_match_llama_index_semantics(
    vector_store: LanceVectorStore, embed_model: LanceEmbedding, filters: MetadataFilters
) -> None:
    reference = build_metadata_filter_fn(lambda node_id: ROWS[node_id][1], filters)
    expected = {node_id for node_id in ROWS if reference(node_id)}
    assert ids_of(vector_store.get_nodes(filters=filters)) == expected
    # Applied before the top-k: a top-1 search still finds a match when there is one.
    result = vector_store.query(vector_query(embed_model, "cold water", similarity_top_k=1, filters=filters))
    assert len(result.ids or []) == min(1, len(expected)) and set(result.ids or []) <= expected


def test_nested_filters(vector_store: LanceVectorStore) -> None:
    nested = MetadataFilters(
        filters=[
            MetadataFilter(key="tags", value="fruit", operator=F.CONTAINS),
            MetadataFilters(
                filters=[
                    MetadataFilter(key="color", value="red"),
                    MetadataFilters(
                        filters=[MetadataFilter(key="price", value=1, operator=F.GT)],
                        condition=FilterCondition.NOT,
                    ),
                ],
                condition=FilterCondition.OR,
            ),
        ]
    )
    assert ids_of(vector_store.get_nodes(filters=nested)) == {"apple"}
    empty_group = MetadataFilters(
        filters=[MetadataFilter(key="color", value="red"), MetadataFilters(filters=[])]
    )
    assert ids_of(vector_store.get_nodes(filters=empty_group)) == {"apple"}


def test_unsupported_filters_are_clear_errors(vector_store: LanceVectorStore) -> None:
    insensitive = MetadataFilters(
        filters=[MetadataFilter(key="color", value=3, operator=F.TEXT_MATCH_INSENSITIVE)]
    )
    with pytest.raises(InvalidFilterError, match="TEXT_MATCH_INSENSITIVE takes a string"):
        vector_store.get_nodes(filters=insensitive)
    with pytest.raises(InvalidFilterError, match="list"):
        vector_store.get_nodes(
            filters=MetadataFilters(filters=[MetadataFilter(key="c", value="x", operator=F.IN)])
        )


def test_default_mode_with_node_and_doc_restrictions(
    vector_store: LanceVectorStore, embed_model: LanceEmbedding
) -> None:
    result = vector_store.query(vector_query(embed_model, "red apples", similarity_top_k=2))
    assert result.ids is not None and result.ids[0] == "apple"
    assert result.similarities is not None and result.similarities[0] > result.similarities[1]
    assert [n.node_id for n in result.nodes or []] == result.ids
    unrestricted = vector_store.query(
        vector_query(embed_model, "red apples", similarity_top_k=5, node_ids=[])
    )
    assert len(unrestricted.ids or []) == 5  # an empty list is no restriction
    only = vector_store.query(
        vector_query(embed_model, "red apples", similarity_top_k=5, node_ids=["ice", "carrot"])
    )
    assert set(only.ids or []) == {"ice", "carrot"}
    docs = vector_store.query(vector_query(embed_model, "red apples", similarity_top_k=5, doc_ids=["d3"]))
    assert set(docs.ids or []) == {"ice", "evil"}


def test_text_hybrid_and_mmr_modes(vector_store: LanceVectorStore, embed_model: LanceEmbedding) -> None:
    text = vector_store.query(
        VectorStoreQuery(query_str="bananas", mode=VectorStoreQueryMode.TEXT_SEARCH, similarity_top_k=3)
    )
    assert text.ids == ["banana"]
    dense = vector_store.query(vector_query(embed_model, "cold crunchy", similarity_top_k=5))
    sparse = vector_store.query(
        vector_query(embed_model, "cold crunchy", similarity_top_k=5, mode=VectorStoreQueryMode.TEXT_SEARCH)
    )
    only_vector = vector_store.query(
        vector_query(
            embed_model, "cold crunchy", similarity_top_k=5, mode=VectorStoreQueryMode.HYBRID, alpha=1.0
        )
    )
    only_text = vector_store.query(
        vector_query(
            embed_model, "cold crunchy", similarity_top_k=5, mode=VectorStoreQueryMode.HYBRID, alpha=0.0
        )
    )
    assert only_vector.ids == dense.ids
    assert only_text.ids == sparse.ids
    both = vector_store.query(
        vector_query(embed_model, "cold crunchy", similarity_top_k=2, mode=VectorStoreQueryMode.HYBRID)
    )
    assert set(both.ids or []) == {"ice", "carrot"}
    with pytest.raises(SearchError, match="alpha"):
        vector_store.query(vector_query(embed_model, "x", mode=VectorStoreQueryMode.HYBRID, alpha=2.0))


def test_mmr_prefers_diverse_results(store: ContextStore, embed_model: LanceEmbedding) -> None:
    vs = LanceVectorStore(store=store, collection="mmr")
    texts = {"a1": "red apples", "a2": "red apples", "a3": "red apples", "g": "green apples are sour"}
    nodes = [TextNode(id_=k, text=v, embedding=embed_model.get_text_embedding(v)) for k, v in texts.items()]
    vs.add(nodes)
    plain = vs.query(vector_query(embed_model, "red apples", similarity_top_k=2))
    assert set(plain.ids or []) <= {"a1", "a2", "a3"}
    diverse = vs.query(
        vector_query(
            embed_model, "red apples", similarity_top_k=2, mode=VectorStoreQueryMode.MMR, mmr_threshold=0.3
        )
    )
    assert "g" in (diverse.ids or [])
    assert len(diverse.ids or []) == 2


def test_empty_results_are_empty(
    store: ContextStore, embed_model: LanceEmbedding, vector_store: LanceVectorStore
) -> None:
    empty = LanceVectorStore(store=store, collection="nothing-here")
    for mode in (
        VectorStoreQueryMode.DEFAULT,
        VectorStoreQueryMode.TEXT_SEARCH,
        VectorStoreQueryMode.HYBRID,
        VectorStoreQueryMode.MMR,
    ):
        result = empty.query(vector_query(embed_model, "anything", mode=mode, similarity_top_k=3))
        assert (result.nodes, result.similarities, result.ids) == ([], [], [])
    none_match = MetadataFilters(filters=[MetadataFilter(key="color", value="purple")])
    result = vector_store.query(vector_query(embed_model, "apples", similarity_top_k=3, filters=none_match))
    assert (result.nodes, result.similarities, result.ids) == ([], [], [])
    # as SimpleVectorStore: a top k of 0 cuts nothing, so every node comes back, ranked
    result = vector_store.query(vector_query(embed_model, "apples", similarity_top_k=0))
    assert sorted(result.ids) == sorted(n.node_id for n in vector_store.get_nodes())
    with pytest.raises(SearchError, match="not supported"):
        vector_store.query(vector_query(embed_model, "apples", mode=VectorStoreQueryMode.SVM))


def test_delete_clear_and_collections(
    store: ContextStore, embed_model: LanceEmbedding, vector_store: LanceVectorStore
) -> None:
    other = LanceVectorStore(store=store, collection="other")
    other.add(make_nodes(embed_model)[:2])  # same node ids as in "fruit"
    vector_store.delete("d1")
    assert ids_of(vector_store.get_nodes()) == {"carrot", "ice", "evil"}
    assert ids_of(other.get_nodes()) == {"apple", "banana"}
    vector_store.delete_nodes(node_ids=["ice"])
    vector_store.delete_nodes(
        filters=MetadataFilters(filters=[MetadataFilter(key="price", value=5, operator=F.GT)])
    )
    assert ids_of(vector_store.get_nodes()) == {"carrot"}
    version = store.version()
    vector_store.clear()
    assert vector_store.get_nodes() == []
    assert ids_of(vector_store.at_version(version).get_nodes()) == {"carrot"}
    assert ids_of(other.get_nodes()) == {"apple", "banana"}


def test_adding_a_node_again_replaces_it(vector_store: LanceVectorStore, embed_model: LanceEmbedding) -> None:
    node = TextNode(id_="apple", text="apples can be green too", metadata={"color": "green"})
    node.embedding = embed_model.get_text_embedding(node.text)
    vector_store.add([node, node])
    got = vector_store.get_nodes(node_ids=["apple"])
    assert len(got) == 1 and got[0].metadata == {"color": "green"}
    assert len(vector_store.get_nodes()) == len(ROWS)


def test_nodes_without_embeddings_are_embedded_by_the_store(
    store: ContextStore, embed_model: LanceEmbedding
) -> None:
    vs = LanceVectorStore(store=store, collection="plain")
    vs.add([TextNode(id_="n", text="tulips bloom in spring")])
    result = vs.query(VectorStoreQuery(query_str="spring tulips", similarity_top_k=1))
    assert result.ids == ["n"]


def test_a_store_of_caller_made_vectors(store_path: str, embed_model: LanceEmbedding) -> None:
    vs = LanceVectorStore(uri=store_path, collection="external", dimension=DIM)
    assert vs.client.embedder is None and vs.embed_model is None
    vs.add(make_nodes(embed_model))
    assert vs.query(vector_query(embed_model, "bananas", similarity_top_k=1)).ids == ["banana"]
    with pytest.raises(SearchError, match="without an embedder"):
        vs.query(VectorStoreQuery(query_str="bananas", similarity_top_k=1))
    text = vs.query(VectorStoreQuery(query_str="bananas", mode=VectorStoreQueryMode.TEXT_SEARCH))
    assert text.ids == ["banana"]


def test_lance_embedding_matches_the_store_embedder(embed_model: LanceEmbedding) -> None:
    direct = HashingEmbedder(DIM).embed_texts(["red apples"])[0]
    assert embed_model.get_text_embedding("red apples") == [float(x) for x in direct]
    assert embed_model.get_query_embedding("red apples") == [float(x) for x in direct]
    assert embed_model.dimension == DIM and embed_model.model_name == "hashing"


def test_mismatched_dimensions_are_refused(vector_store: LanceVectorStore) -> None:
    wrong = TextNode(id_="w", text="wrong size", embedding=[0.1] * (DIM + 1))
    with pytest.raises(
        EmbeddingError, match=f"node 'w': embedding has {DIM + 1} dimensions, the store expects {DIM}"
    ):
        vector_store.add([wrong])
    assert "w" not in ids_of(vector_store.get_nodes())
    with pytest.raises(EmbeddingError):
        vector_store.query(VectorStoreQuery(query_embedding=[0.5] * 3, similarity_top_k=1))


def test_a_uri_with_a_differently_sized_embed_model_is_refused(store_path: str, store: ContextStore) -> None:
    from lance_context import EmbedderMismatchError

    with pytest.raises(EmbedderMismatchError):
        LanceVectorStore(uri=store_path, embed_model=LanceEmbedding(HashingEmbedder(DIM * 2)))


def test_vector_store_index_retrieval_and_delete(store_path: str, embed_model: LanceEmbedding) -> None:
    vs = LanceVectorStore(uri=store_path, collection="docs", embed_model=embed_model)
    documents = [
        Document(text="The cherry trees bloom in April in Kyoto.", id_="kyoto"),
        Document(text="Reykjavik has long dark winters and northern lights.", id_="iceland"),
        Document(text="Lisbon trams climb steep hills by the river.", id_="lisbon"),
    ]
    index = VectorStoreIndex.from_documents(
        documents, storage_context=StorageContext.from_defaults(vector_store=vs), embed_model=embed_model
    )
    hits = index.as_retriever(similarity_top_k=1).retrieve("when do cherry trees bloom")
    assert hits[0].node.ref_doc_id == "kyoto" and "April" in hits[0].node.get_content()
    index.delete_ref_doc("kyoto")
    reopened = LanceVectorStore(uri=store_path, collection="docs", embed_model=embed_model)
    again = VectorStoreIndex.from_vector_store(reopened, embed_model=reopened.embed_model)
    hits = again.as_retriever(similarity_top_k=3).retrieve("when do cherry trees bloom")
    assert {h.node.ref_doc_id for h in hits} == {"iceland", "lisbon"}
    assert reopened.client.embedder is not None and reopened.client.embedder.name == "hashing"


async def test_async_twins(store: ContextStore, embed_model: LanceEmbedding) -> None:
    vs = LanceVectorStore(store=store, collection="async")
    assert await vs.async_add(make_nodes(embed_model)) == list(ROWS)
    result = await vs.aquery(vector_query(embed_model, "bananas", similarity_top_k=1))
    assert result.ids == ["banana"]
    assert ids_of(await vs.aget_nodes(node_ids=["ice"])) == {"ice"}
    await vs.adelete("d1")
    await vs.adelete_nodes(node_ids=["ice"])
    assert ids_of(await vs.aget_nodes()) == {"carrot", "evil"}
    await vs.aclear()
    assert await vs.aget_nodes() == []


def test_bad_arguments(store: ContextStore) -> None:
    with pytest.raises(InvalidFilterError):
        LanceVectorStore(store=store, collection="")
    with pytest.raises(TypeError, match="exactly one"):
        LanceVectorStore(collection="x")
    vs = LanceVectorStore(store=store, collection="c")
    with pytest.raises(InvalidFilterError):
        vs.get_nodes(filters="color = red")  # type: ignore[arg-type]


def test_the_index_owns_the_embedding_model(store_path: str) -> None:
    """A new store embeds nothing and takes whatever size of vectors the index's model makes."""
    wide = LanceEmbedding(HashingEmbedder(48))  # not the store default's 384 dimensions
    vector_store = LanceVectorStore(uri=store_path)
    assert vector_store.client.embedder is None
    index = VectorStoreIndex.from_documents(
        [Document(text="cherry trees bloom in april"), Document(text="tax forms are due in spring")],
        storage_context=StorageContext.from_defaults(vector_store=vector_store),
        embed_model=wide,
    )
    assert vector_store.client.dimension == 48
    found = index.as_retriever(similarity_top_k=1).retrieve("when do cherry trees bloom?")
    assert found[0].node.get_content() == "cherry trees bloom in april"
    reopened = VectorStoreIndex.from_vector_store(LanceVectorStore(uri=store_path), embed_model=wide)
    assert (
        reopened.as_retriever(similarity_top_k=1)
        .retrieve("tax forms")[0]
        .node.get_content()
        .startswith("tax")
    )


def test_a_store_of_another_embedding_space_is_refused_clearly(store: ContextStore) -> None:
    narrow = LanceEmbedding(HashingEmbedder(12))  # the shared store holds DIM-dimensional vectors
    vector_store = LanceVectorStore(store=store, collection="other")
    node = TextNode(text="hello", embedding=narrow.get_text_embedding("hello"))
    with pytest.raises(EmbeddingError, match="one store per embedding space"):
        vector_store.add([node])
    assert vector_store.get_nodes() == []


def test_embedder_is_taken_as_embed_model(store_path: str) -> None:
    nodes = LanceVectorStore(uri=store_path, embedder=HashingEmbedder(16))
    assert nodes.client.dimension == 16 and nodes.client.embedder is not None
    plain = LanceVectorStore(uri=store_path, embedder=None)  # None: this handle embeds nothing
    assert plain.client.embedder is None
    with pytest.raises(TypeError, match="embed_model= or embedder="):
        LanceVectorStore(uri=store_path, embedder=HashingEmbedder(16), embed_model=HashingEmbedder(16))
