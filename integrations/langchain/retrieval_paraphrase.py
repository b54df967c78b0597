"""Scenario 3: a retrieval chain over LanceVectorStore with the real default embedder.

The store embeds documents with its default model (all-MiniLM-L6-v2, bundled, offline).
Questions are paraphrases that share almost no words with the documents; the retriever
still brings the right document first, and the chain (retriever | prompt | fake chat
model) answers from it.

    python integrations/langchain/retrieval_paraphrase.py [STORE_PATH]
"""

from __future__ import annotations

import os
import sys
import tempfile
from typing import Any

from langchain_core.documents import Document
from langchain_core.language_models import GenericFakeChatModel
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import RunnableLambda, RunnablePassthrough

from lance_context.langchain import LanceVectorStore

DOCUMENTS = {
    "refund": "Customers may return any purchase within 30 days for a full refund of the price paid.",
    "shipping": "Parcels leave our warehouse in Rotterdam and arrive in two to four working days.",
    "password": "To reset your password, open Settings, choose Security and follow the emailed link.",
    "warranty": "Every laptop comes with a two-year guarantee covering manufacturing defects.",
    "hours": "Our support team answers phone calls Monday to Friday from 9am to 6pm CET.",
    "privacy": "We never sell personal data; analytics cookies are only set after you consent.",
    "pets": "Dogs under 8 kg may travel in the cabin in a closed carrier placed under the seat.",
    "battery": "Charge the device fully before first use and avoid leaving it in hot cars.",
}

QUESTIONS = {
    "Can I send back something I bought and get my money back?": "refund",
    "How long until my package shows up?": "shipping",
    "I forgot my login credentials, what now?": "password",
    "My notebook computer broke after a year, is that covered?": "warranty",
    "When can I phone a human for help?": "hours",
    "Do you hand my information to advertisers?": "privacy",
    "Can my small puppy fly with me?": "pets",
}


def main(store_path: str) -> int:
    store = LanceVectorStore(uri=store_path, collection="faq")  # default embedder: all-MiniLM-L6-v2
    print(f"embedder: {store.store.embedder.name if store.store.embedder else None}")
    store.add_documents([Document(text, metadata={"topic": key}, id=key) for key, text in DOCUMENTS.items()])
    retriever = store.as_retriever(search_kwargs={"k": 2})

    seen: dict[str, list[str]] = {}

    def remember(inputs: dict[str, Any]) -> dict[str, Any]:
        seen[inputs["question"]] = [d.id or "" for d in inputs["context"]]
        return {
            "question": inputs["question"],
            "context": "\n".join(d.page_content for d in inputs["context"]),
        }

    prompt = ChatPromptTemplate.from_messages(
        [("system", "Answer from this context only:\n{context}"), ("human", "{question}")]
    )
    model = GenericFakeChatModel(messages=iter([f"(answer {n})" for n in range(len(QUESTIONS))]))
    chain = (
        {"context": retriever, "question": RunnablePassthrough()} | RunnableLambda(remember) | prompt | model
    )

    hits = 0
    for question, expected in QUESTIONS.items():
        chain.invoke(question)
        top = seen[question][0]
        hits += top == expected
        print(f"{'OK' if top == expected else 'FAIL'}: {question!r} -> {top} (expected {expected})")

    hybrid = store.as_retriever(search_type="hybrid", search_kwargs={"k": 1})
    top_hybrid = hybrid.invoke("Rotterdam warehouse dispatch")[0].id
    print(f"{'OK' if top_hybrid == 'shipping' else 'FAIL'}: hybrid retriever on exact words -> {top_hybrid}")
    threshold = store.as_retriever(
        search_type="similarity_score_threshold", search_kwargs={"score_threshold": 0.3, "k": 3}
    )
    unrelated = threshold.invoke("quantum chromodynamics lattice simulations")
    print(f"{'OK' if not unrelated else 'FAIL'}: an unrelated question passes no document over the threshold")
    print(f"{hits}/{len(QUESTIONS)} paraphrased questions retrieved the right document first")
    return 0 if hits == len(QUESTIONS) and top_hybrid == "shipping" and not unrelated else 1


if __name__ == "__main__":
    path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(tempfile.mkdtemp(), "faq.lance")
    if os.path.exists(path):  # a second run would find the first run's records and branches
        sys.exit(f"{path} already exists: give a new STORE_PATH (the scenario builds its store from scratch)")
    sys.exit(main(path))
