"""Scenario 3: a VectorStoreIndex over LanceVectorStore answers paraphrased questions.

Documents are indexed with the real default embedder (all-MiniLM-L6-v2, bundled, no
network). Every question is a paraphrase that shares almost no words with its answer,
so only semantic retrieval finds it. The index is then rebuilt from the store in a
fresh ``LanceVectorStore`` to show the nodes persist, and a metadata filter narrows a
search before its top-k.

    python integrations/llama_index/paraphrase_retrieval.py [STORE_PATH]
"""

from __future__ import annotations

import os
import sys
import tempfile
import warnings

# VectorStoreIndex imports LlamaIndex's LangChain bridge; with langchain-community
# installed that prints a sunset notice unrelated to this demo.
warnings.filterwarnings("ignore", message=".*langchain-community.*is being sunset")

DOCUMENTS = {
    "refunds": ("Customers can return any purchase within 30 days for a full refund.", "billing"),
    "shipping": ("Parcels leave our warehouse within two business days of the order.", "logistics"),
    "passwords": ("To reset your password, open Settings and choose Security.", "account"),
    "hours": ("Our support team answers calls from 9 am to 5 pm, Monday to Friday.", "support"),
    "pets": ("Dogs and cats are welcome in every room of the hotel.", "hotel"),
    "breakfast": ("The morning buffet is served between seven and ten in the lobby.", "hotel"),
    "parking": ("Guests may leave their car in the underground garage for free.", "hotel"),
}
QUESTIONS = {
    "Can I get my money back if I change my mind about something I bought?": "refunds",
    "How soon will my package be sent out?": "shipping",
    "I forgot my login credentials, what should I do?": "passwords",
    "When can I phone customer service?": "hours",
    "Is it okay to bring my puppy along?": "pets",
    "What time is the first meal of the day available?": "breakfast",
    "Where do I put my vehicle during my stay?": "parking",
}


def main(store_path: str) -> int:
    from llama_index.core import Document, StorageContext, VectorStoreIndex
    from llama_index.core.vector_stores.types import MetadataFilter, MetadataFilters

    from lance_context import SentenceTransformerEmbedder
    from lance_context.llama_index import LanceEmbedding, LanceVectorStore

    embed_model = LanceEmbedding(SentenceTransformerEmbedder())
    vector_store = LanceVectorStore(uri=store_path, collection="faq", embed_model=embed_model)
    print(f"embedder: {vector_store.client.embedder.name if vector_store.client.embedder else None}")
    documents = [
        Document(text=text, id_=doc_id, metadata={"topic": topic})
        for doc_id, (text, topic) in DOCUMENTS.items()
    ]
    VectorStoreIndex.from_documents(
        documents,
        storage_context=StorageContext.from_defaults(vector_store=vector_store),
        embed_model=embed_model,
    )
    print(f"indexed {len(documents)} documents into {store_path} (collection 'faq')")

    reopened = LanceVectorStore(uri=store_path, collection="faq")  # the store remembers its embedder
    index = VectorStoreIndex.from_vector_store(reopened, embed_model=reopened.embed_model)
    retriever = index.as_retriever(similarity_top_k=1)
    right = 0
    for question, expected in QUESTIONS.items():
        hit = retriever.retrieve(question)[0]
        ok = hit.node.ref_doc_id == expected
        right += ok
        print(
            f"{'OK  ' if ok else 'FAIL'} {question!r}\n     -> {hit.node.get_content()!r} ({hit.score:.2f})"
        )
    print(f"{right}/{len(QUESTIONS)} paraphrased questions retrieved the right document first")

    hotel_only = index.as_retriever(
        similarity_top_k=1, filters=MetadataFilters(filters=[MetadataFilter(key="topic", value="hotel")])
    )
    filtered = hotel_only.retrieve("How do I get a refund?")[0].node.ref_doc_id
    checks = {
        "every paraphrase found its document": right == len(QUESTIONS),
        "a metadata filter applies before the top-k": DOCUMENTS[str(filtered)][1] == "hotel",
    }
    print(f"filtered to topic=hotel, 'How do I get a refund?' -> {filtered}")
    for name, ok in checks.items():
        print(f"{'OK' if ok else 'FAIL'}: {name}")
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(tempfile.mkdtemp(), "faq.lance")
    if os.path.exists(path):  # a second run would find the first run's records and branches
        sys.exit(f"{path} already exists: give a new STORE_PATH (the scenario builds its store from scratch)")
    sys.exit(main(path))
