"""LanceChatStore beside LlamaIndex's SimpleChatStore: the same calls give the same answers.

Where ours is deliberately different it says so: an index past the start deletes
nothing (SimpleChatStore raises IndexError), a key with no messages left is not listed
(its messages are the key), and an index that is not an integer is refused.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from llama_index.core.storage.chat_store import SimpleChatStore
from llama_index.core.storage.chat_store.base import BaseChatStore

from lance_context import ContextStore, InvalidFilterError
from lance_context.llama_index import LanceAsyncChatStore, LanceChatStore

from .conftest import answer, assistant, user

Step = Callable[[BaseChatStore], Any]


def seeded(chats: BaseChatStore) -> BaseChatStore:
    chats.set_messages("a", [user("0"), assistant("1"), user("2"), assistant("3")])
    chats.set_messages("b", [user("b0")])
    return chats


STEPS: dict[str, Step] = {
    "insert at 0": lambda c: c.add_message("a", user("x"), idx=0),
    "insert at -1": lambda c: c.add_message("a", user("x"), idx=-1),
    "insert past the end": lambda c: c.add_message("a", user("x"), idx=99),
    "insert before the start": lambda c: c.add_message("a", user("x"), idx=-99),
    "insert on a new key": lambda c: c.add_message("new", user("x"), idx=3),
    "delete at 1": lambda c: c.delete_message("a", 1),
    "delete at -1": lambda c: c.delete_message("a", -1),
    "delete at -4": lambda c: c.delete_message("a", -4),
    "delete past the end": lambda c: c.delete_message("a", 4),
    "delete at a numpy index": lambda c: c.delete_message("a", np.int64(2)),
    "delete on a missing key": lambda c: c.delete_message("missing", 0),
    "delete last": lambda c: c.delete_last_message("a"),
    "delete last on a missing key": lambda c: c.delete_last_message("missing"),
    "delete all": lambda c: c.delete_messages("a"),
    "delete all on a missing key": lambda c: c.delete_messages("missing"),
    "replace": lambda c: c.set_messages("a", [assistant("only")]),
}


@pytest.mark.parametrize("step", list(STEPS), ids=list(STEPS))
def test_each_call_answers_and_leaves_the_keys_as_simple_chat_store_does(
    store: ContextStore, step: str
) -> None:
    got = []
    for chats in (seeded(SimpleChatStore()), seeded(LanceChatStore(store=store))):
        returned = answer(STEPS[step](chats))
        got.append((returned, {k: answer(list(chats.get_messages(k))) for k in sorted(chats.get_keys())}))
    assert got[1] == got[0]


async def test_async_twins_answer_as_simple_chat_store_does(store: ContextStore) -> None:
    got = []
    for chats in (SimpleChatStore(), LanceChatStore(store=store)):
        await chats.aset_messages("k", [user("0"), assistant("1"), user("2")])
        await chats.async_add_message("k", assistant("3"))
        answers = [answer(list(await chats.aget_messages("k"))), await chats.aget_keys()]
        answers.append(answer(await chats.adelete_message("k", 1)))
        answers.append(answer(await chats.adelete_last_message("k")))
        answers.append(answer(await chats.adelete_messages("k")))
        answers.append(await chats.aget_keys())
        got.append(answers)
    assert got[1] == got[0]


@pytest.mark.parametrize("idx", ["1", 1.0, True, None])
@pytest.mark.parametrize("kind", ["sync", "async"])
async def test_an_index_that_is_not_an_integer_is_refused_and_deletes_nothing(
    store: ContextStore, idx: object, kind: str
) -> None:
    # SimpleChatStore raises TypeError for these (and reads True as 1); ours
    # returned None as if the index were out of range, hiding the mistake.
    messages = [user("0"), assistant("1")]
    if kind == "sync":
        chats = LanceChatStore(store=store)
        chats.set_messages("k", messages)
        with pytest.raises(InvalidFilterError, match="integer"):
            chats.delete_message("k", idx)  # type: ignore[arg-type]
        assert chats.get_messages("k") == messages
    else:
        achats = LanceAsyncChatStore(store=store)
        await achats.set_messages("k", messages)
        with pytest.raises(InvalidFilterError, match="integer"):
            await achats.delete_message("k", idx)  # type: ignore[arg-type]
        assert await achats.get_messages("k") == messages


async def test_inserting_a_message_keeps_what_the_async_store_archived(store: ContextStore) -> None:
    # Both chat stores read one key space; an insert must not bring archived messages back.
    achats = LanceAsyncChatStore(store=store)
    await achats.add_messages("k", [user("0"), assistant("1")])
    await achats.archive_oldest_messages("k", 1)
    before = {r.id: r.created_at for r in store.records(store.run_ids()[0])}

    LanceChatStore(store=store).add_message("k", user("first"), idx=0)

    assert await achats.count_messages("k") == 2  # "1" and the new one; "0" stays archived
    assert [m.content for m in LanceChatStore(store=store).get_messages("k")] == ["first", "0", "1"]
    after = {r.id: r.created_at for r in store.records(store.run_ids()[0])}
    assert all(after[i] == t for i, t in before.items())
