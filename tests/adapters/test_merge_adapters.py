"""Merging branches whose records were written through every adapter, read back through them."""

from __future__ import annotations

import operator
import warnings
from pathlib import Path
from typing import Annotated, Any

import pytest
from langchain_core.language_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.prompts import ChatPromptTemplate, MessagesPlaceholder
from langchain_core.runnables import RunnableConfig
from langchain_core.runnables.history import RunnableWithMessageHistory
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from llama_index.core import VectorStoreIndex
from llama_index.core.schema import TextNode
from typing_extensions import TypedDict

from lance_context import ContextStore, HashingEmbedder
from lance_context.langchain import LanceChatMessageHistory
from lance_context.langchain import LanceVectorStore as LCVectorStore
from lance_context.langgraph import LanceCheckpointSaver
from lance_context.llama_index import LanceEmbedding
from lance_context.llama_index import LanceVectorStore as LIVectorStore

# VectorStoreIndex resolves its embed model through LlamaIndex's LangChain bridge, which
# imports langchain-community (installed for the benchmark) and it warns on import.
pytestmark = pytest.mark.filterwarnings("ignore:`langchain-community` is being sunset:DeprecationWarning")


def open_store(tmp_path: Path) -> ContextStore:
    return ContextStore.open(str(tmp_path / "memory.lance"), embedder=HashingEmbedder(64))


def chat_turn(store: ContextStore, question: str, answer: str) -> None:
    prompt = ChatPromptTemplate.from_messages([MessagesPlaceholder("history"), ("human", "{q}")])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        chain = RunnableWithMessageHistory(
            prompt | GenericFakeChatModel(messages=iter([answer])),
            lambda session_id: LanceChatMessageHistory(session_id, store=store),
            input_messages_key="q",
            history_messages_key="history",
        )
    chain.invoke({"q": question}, config={"configurable": {"session_id": "trip"}})


def test_a_chat_history_continued_on_a_branch_merges_after_mains_turns(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    chat_turn(store, "Plan Porto", "Day 1: Ribeira")
    branch = store.branch("alt")
    chat_turn(branch, "Make it cheaper", "Stay in a hostel")
    chat_turn(store, "Add a dinner", "Book The Yeatman")
    chat_turn(branch, "And a museum?", "Serralves")

    store.merge("alt")

    history = LanceChatMessageHistory("trip", store=store)
    assert [m.text for m in history.messages] == [
        "Plan Porto", "Day 1: Ribeira", "Add a dinner", "Book The Yeatman",
        "Make it cheaper", "Stay in a hostel", "And a museum?", "Serralves",
    ]  # fmt: skip
    assert [type(m) for m in history.messages[-2:]] == [HumanMessage, AIMessage]
    assert [m.text for m in history.get_messages(last=2)] == ["And a museum?", "Serralves"]
    chat_turn(store, "Thanks", "You're welcome")  # the conversation goes on after the merged turns
    assert [m.text for m in history.messages][-3:] == ["Serralves", "Thanks", "You're welcome"]


def test_vector_documents_added_on_a_branch_are_found_after_the_merge(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    docs = LCVectorStore(store=store, collection="faq")
    docs.add_texts(["Returns are accepted within 30 days"], ids=["returns"], metadatas=[{"topic": "refund"}])
    branch = store.branch("kb")
    LCVectorStore(store=branch, collection="faq").add_texts(
        ["Shipping to Europe takes 3 days"], ids=["shipping"], metadatas=[{"topic": "shipping"}]
    )
    LCVectorStore(store=branch, collection="faq").delete(["returns"])

    store.merge("kb")

    assert [d.id for d in docs.get_by_ids(["returns", "shipping"])] == ["shipping"]
    found = docs.similarity_search("how long does shipping to Europe take", k=1, filter={"topic": "shipping"})
    assert found[0].id == "shipping" and found[0].metadata == {"topic": "shipping"}
    assert docs.as_retriever(search_type="hybrid", k=1).invoke("shipping Europe")[0].id == "shipping"


def test_llama_index_nodes_added_on_a_branch_are_retrieved_after_the_merge(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    embed = LanceEmbedding(HashingEmbedder(64))
    nodes = LIVectorStore(store=store, collection="docs")
    nodes.add([TextNode(id_="n1", text="Cherry blossoms peak in early April",
                        embedding=embed.get_text_embedding("Cherry blossoms peak in early April"))])  # fmt: skip
    branch = store.branch("kb")
    text = "The lighthouse tour leaves from Foz at 10:00"
    LIVectorStore(store=branch, collection="docs").add(
        [TextNode(id_="n2", text=text, embedding=embed.get_text_embedding(text), metadata={"city": "Porto"})]
    )

    store.merge("kb")

    index = VectorStoreIndex.from_vector_store(nodes, embed_model=embed)
    retrieved = index.as_retriever(similarity_top_k=1).retrieve("when does the lighthouse tour leave")
    assert retrieved[0].node.node_id == "n2" and retrieved[0].node.metadata == {"city": "Porto"}
    assert [n.node_id for n in nodes.get_nodes()] == ["n1", "n2"]


class State(TypedDict):
    steps: Annotated[list[str], operator.add]


def graph_on(store: ContextStore) -> CompiledStateGraph[Any, Any, Any, Any]:
    builder = StateGraph(State)
    builder.add_node("plan", lambda s: {"steps": ["plan"]})
    builder.add_node("act", lambda s: {"steps": [f"act after {s['steps'][-2]}"]})
    builder.add_edge(START, "plan")
    builder.add_edge("plan", "act")
    builder.add_edge("act", END)
    return builder.compile(checkpointer=LanceCheckpointSaver(store=store))


def thread(name: str) -> RunnableConfig:
    return {"configurable": {"thread_id": name}}


def test_langgraph_threads_checkpointed_on_a_branch_keep_order_and_parents(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    graph = graph_on(store)
    graph.invoke({"steps": ["ask"]}, thread("t1"))
    forked_at = graph.get_state(thread("t1")).config["configurable"]["checkpoint_id"]
    branch = store.branch("what-if")
    on_branch = graph_on(branch)
    on_branch.invoke({"steps": ["try Rome"]}, thread("t1"))
    on_branch.invoke({"steps": ["new thread"]}, thread("t2"))
    graph.invoke({"steps": ["try Oslo"]}, thread("t1"))  # main goes on too
    branch_history = list(on_branch.get_state_history(thread("t1")))
    main_history = list(graph.get_state_history(thread("t1")))

    store.merge("what-if")

    graph = graph_on(store)  # a fresh process's view
    assert graph.get_state(thread("t1")).values == on_branch.get_state(thread("t1")).values
    assert graph.get_state(thread("t2")).values == {"steps": ["new thread", "plan", "act after new thread"]}
    history = list(graph.get_state_history(thread("t1")))
    checkpoint_ids = [s.config["configurable"]["checkpoint_id"] for s in history]
    assert len(set(checkpoint_ids)) == len(checkpoint_ids) == len(branch_history) + len(main_history) - 4
    branch_new = [s.config["configurable"]["checkpoint_id"] for s in branch_history[:4]]
    main_new = [s.config["configurable"]["checkpoint_id"] for s in main_history[:4]]
    assert checkpoint_ids[:4] == branch_new and checkpoint_ids[4:8] == main_new  # the branch's are newest
    for snapshot in history:  # every parent is in the thread
        if snapshot.parent_config is not None:
            assert snapshot.parent_config["configurable"]["checkpoint_id"] in checkpoint_ids
    assert history[3].parent_config["configurable"]["checkpoint_id"] == forked_at  # type: ignore[index]

    final = graph.invoke({"steps": ["after merge"]}, thread("t1"))
    assert final["steps"][-6:-3] == ["try Rome", "plan", "act after try Rome"]
    assert final["steps"][-3:] == ["after merge", "plan", "act after after merge"]
