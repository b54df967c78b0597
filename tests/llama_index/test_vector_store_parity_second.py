"""LanceVectorStore against LlamaIndex's reference, second pass: what the index passes it.

Where the reference has an answer, a scenario runs on ``SimpleVectorStore`` and on
``LanceVectorStore`` and what a LlamaIndex user sees is compared; the other tests pin
what the reference cannot show (a deliberate ``node_ids`` restriction, clear errors).
"""

from __future__ import annotations

import pytest
from llama_index.core import StorageContext, VectorStoreIndex
from llama_index.core.schema import BaseNode, ImageNode, IndexNode, TextNode
from llama_index.core.vector_stores import SimpleVectorStore
from llama_index.core.vector_stores.types import BasePydanticVectorStore, VectorStoreQuery

from lance_context import ContextStore, EmbeddingError
from lance_context.llama_index import LanceEmbedding, LanceVectorStore

# VectorStoreIndex resolves its embed model through LlamaIndex's LangChain bridge, which
# imports langchain-community (installed for the benchmarks) and its sunset notice.
pytestmark = pytest.mark.filterwarnings("ignore:`langchain-community` is being sunset:DeprecationWarning")


def mixed_nodes() -> list[BaseNode]:
    """Text, image and index nodes, as a recursive-retrieval or multimodal index holds them."""
    return [
        IndexNode(id_="summary", text="all about cherry trees in Kyoto", index_id="kyoto-index"),
        ImageNode(id_="photo", text="photo of cherry trees", image_url="http://example.com/c.png"),
        TextNode(id_="kyoto", text="cherry trees bloom in April in Kyoto"),
        TextNode(id_="winter", text="Reykjavik winters are long and dark"),
    ]


def mixed_index(vector_store: BasePydanticVectorStore, embed_model: LanceEmbedding) -> VectorStoreIndex:
    return VectorStoreIndex(
        mixed_nodes(),
        storage_context=StorageContext.from_defaults(vector_store=vector_store),
        embed_model=embed_model,
    )


def test_a_mixed_index_retrieves_its_text_nodes_as_with_simple_vector_store(
    store: ContextStore, embed_model: LanceEmbedding
) -> None:
    """``as_retriever()`` lists only the image and index nodes when the store keeps text.

    That list means "this index's nodes"; read as "only these", every text node vanished
    from retrieval as soon as the index held one image or index node.
    """
    reference = mixed_index(SimpleVectorStore(), embed_model)
    ours = mixed_index(LanceVectorStore(store=store, collection="mixed"), embed_model)
    expected = reference.as_retriever(similarity_top_k=4).retrieve("cherry trees bloom")
    got = ours.as_retriever(similarity_top_k=4).retrieve("cherry trees bloom")
    assert [(h.node.node_id, type(h.node)) for h in got] == [(h.node.node_id, type(h.node)) for h in expected]
    assert [h.score for h in got] == pytest.approx([h.score for h in expected], abs=1e-5)


def test_node_ids_naming_a_text_node_still_restrict_the_search(
    store: ContextStore, embed_model: LanceEmbedding
) -> None:
    vector_store = LanceVectorStore(store=store, collection="mixed")
    mixed_index(vector_store, embed_model)
    vector = embed_model.get_query_embedding("cherry trees bloom")

    def ids(node_ids: list[str]) -> set[str]:
        found = vector_store.query(
            VectorStoreQuery(query_embedding=vector, similarity_top_k=4, node_ids=node_ids)
        )
        return set(found.ids or [])

    assert ids(["winter", "photo"]) == {"winter", "photo"}
    assert ids(["missing"]) == set()
    # Only image/index nodes named: the index's own list, so text nodes stay searchable.
    assert ids(["photo"]) == {"photo", "kyoto", "winter"}


def test_a_batch_of_mixed_sizes_is_refused_naming_the_node_and_writes_nothing(store_path: str) -> None:
    """A new store takes its size from the first vector; the error names the node, not a hash."""
    vector_store = LanceVectorStore(uri=store_path, collection="new")
    nodes = [
        TextNode(id_="four", text="a", embedding=[1.0, 0, 0, 0]),
        TextNode(id_="five", text="b", embedding=[1.0] * 5),
    ]
    with pytest.raises(EmbeddingError, match="node 'five': embedding has 5 dimensions, the store expects 4"):
        vector_store.add(nodes)
    assert vector_store.get_nodes() == [] and vector_store.client.dimension is None
