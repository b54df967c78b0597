"""``get_messages`` fits a window once per state of the session's cached records.

A window read again while nothing touched the session is handed out again as fresh
copies; any change to the session (this handle's append, another handle's or another
process's write, a clear), and any other arguments, fit a window of their own.
"""

from __future__ import annotations

import multiprocessing
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage

from lance_context import CachePolicy, ContextRecord, ContextStore
from lance_context.adapters import LANGCHAIN_HISTORY, keep_built, kept_built, shares_records
from lance_context.langchain import LanceChatMessageHistory, _history


def _texts(messages: Sequence[BaseMessage]) -> list[str]:
    return [str(m.content) for m in messages]


def _chat(store: ContextStore, session: str = "s", turns: int = 30) -> LanceChatMessageHistory:
    history = LanceChatMessageHistory(session, store=store)
    history.add_messages([SystemMessage("be brief")])
    for i in range(turns):
        history.add_messages([HumanMessage(f"q{i}") if i % 2 == 0 else AIMessage(f"a{i}")])
    return history


@pytest.fixture
def decodes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many records each decode of a read rebuilt messages from."""
    calls: list[int] = []
    real = _history.decode_messages

    def counting(records: Sequence[ContextRecord]) -> Any:
        calls.append(len(records))
        return real(records)

    monkeypatch.setattr(_history, "decode_messages", counting)
    return calls


def test_a_window_read_again_is_not_fitted_again_and_each_read_gets_its_own_copies(
    tmp_path: Path, decodes: list[int]
) -> None:
    store = ContextStore.open(str(tmp_path / "m.lance"), embedder=None)
    history = _chat(store)
    first = history.get_messages(last=5)
    assert _texts(first) == ["be brief", "a25", "q26", "a27", "q28", "a29"]
    fitted = len(decodes)
    again = LanceChatMessageHistory("s", store=store).get_messages(last=5)
    assert len(decodes) == fitted  # the same cached records: the kept window, no decoding
    assert again == first and all(a is not b for a, b in zip(again, first, strict=True))
    first[1].content = "changed by the caller"
    again[2].additional_kwargs["mine"] = True
    third = history.get_messages(last=5)
    assert _texts(third) == ["be brief", "a25", "q26", "a27", "q28", "a29"]
    assert "mine" not in third[2].additional_kwargs


def test_an_append_through_this_handle_is_in_the_next_window(tmp_path: Path) -> None:
    store = ContextStore.open(str(tmp_path / "m.lance"), embedder=None)
    history = _chat(store)
    assert _texts(history.get_messages(last=2)) == ["be brief", "q28", "a29"]
    history.add_messages([HumanMessage("new question")])
    assert _texts(history.get_messages(last=2)) == ["be brief", "a29", "new question"]
    history.clear()
    assert history.get_messages(last=2) == []
    history.add_messages([HumanMessage("fresh start")])
    assert _texts(history.get_messages(last=2)) == ["fresh start"]


def test_a_write_through_another_handle_is_in_the_next_window(tmp_path: Path) -> None:
    path = str(tmp_path / "m.lance")
    store = ContextStore.open(path, embedder=None)
    history = _chat(store)
    assert _texts(history.get_messages(last=2)) == ["be brief", "q28", "a29"]
    other = LanceChatMessageHistory("s", store=ContextStore.open(path, embedder=None))
    other.add_messages([AIMessage("from elsewhere")])
    assert _texts(history.get_messages(last=2)) == ["be brief", "a29", "from elsewhere"]
    other.clear()
    other.add_messages([SystemMessage("new rules"), HumanMessage("hello")])
    assert _texts(history.get_messages(last=2)) == ["new rules", "hello"]


def _append_elsewhere(path: str) -> None:
    store = ContextStore.open(path, embedder=None)
    LanceChatMessageHistory("s", store=store).add_messages([HumanMessage("from a process")])


def test_a_write_from_another_process_is_in_the_next_window(tmp_path: Path) -> None:
    path = str(tmp_path / "m.lance")
    store = ContextStore.open(path, embedder=None)
    history = _chat(store)
    assert _texts(history.get_messages(last=2)) == ["be brief", "q28", "a29"]
    process = multiprocessing.get_context("spawn").Process(target=_append_elsewhere, args=(path,))
    process.start()
    process.join(120)
    assert process.exitcode == 0
    assert _texts(history.get_messages(last=2)) == ["be brief", "a29", "from a process"]


def test_other_arguments_get_windows_of_their_own(tmp_path: Path) -> None:
    store = ContextStore.open(str(tmp_path / "m.lance"), embedder=None)
    history = _chat(store)

    def per_message(cost: int) -> Any:
        return lambda messages: cost * len(messages)

    cheap, dear = per_message(1), per_message(3)
    for _ in range(2):  # alternating, so each call could find the other's window kept
        assert _texts(history.get_messages(last=2)) == ["be brief", "q28", "a29"]
        assert _texts(history.get_messages(last=3)) == ["be brief", "a27", "q28", "a29"]
        assert _texts(history.get_messages(last=2, include_system=False)) == ["q28", "a29"]
        assert _texts(history.get_messages(max_tokens=4, token_counter=cheap)) == [
            "be brief",
            "a27",
            "q28",
            "a29",
        ]
        assert _texts(history.get_messages(max_tokens=4, token_counter=dear)) == ["be brief"]
        assert _texts(history.get_messages(max_tokens=9, token_counter=dear)) == ["be brief", "q28", "a29"]


def test_a_window_that_read_further_back_is_fitted_again_and_still_right(
    tmp_path: Path, decodes: list[int]
) -> None:
    """A call's tool results reaching past the first read are never cut from their call."""
    path = str(tmp_path / "m.lance")
    history = LanceChatMessageHistory("s", store=ContextStore.open(path, embedder=None))
    calls = [{"name": "f", "args": {}, "id": f"c{i}"} for i in range(25)]
    history.add_messages([HumanMessage("go"), AIMessage("", tool_calls=calls)])
    history.add_messages([ToolMessage(f"r{i}", tool_call_id=f"c{i}") for i in range(25)])
    history.add_messages([AIMessage("done")])
    wide = history.get_messages(last=30)
    assert [m.type for m in wide] == ["human", "ai", *["tool"] * 25, "ai"]  # all 28 fit
    assert history.get_messages(last=30) == wide
    decodes.clear()
    narrow = history.get_messages(last=12)
    assert _texts(narrow) == ["done"]  # the call with its 25 results does not fit in 12
    assert len(decodes) == 2  # the first read (20 records) was all results: it read further back
    assert history.get_messages(last=12) == narrow and len(decodes) == 4  # fitted again: not kept


def test_kept_built_answers_only_for_the_same_record_objects_in_the_same_order() -> None:
    records = [ContextRecord.from_content(f"m{i}", run_id=LANGCHAIN_HISTORY.run_id("s")) for i in range(3)]
    assert kept_built(records, "k") is None
    keep_built(records, "k", "window")
    assert kept_built(records, "k") == "window"
    assert kept_built(list(records), "k") == "window"  # another list of the same objects
    assert kept_built(records, "other key") is None
    assert kept_built([records[1], records[0], records[2]], "k") is None
    assert kept_built(records[1:], "k") is None
    copies = [ContextRecord.from_content(r.text_payload or "", run_id=r.run_id) for r in records]
    assert kept_built([*records[:2], copies[2]], "k") is None
    assert kept_built([], "k") is None
    keep_built([], "k", "ignored")
    for n in range(10):  # bounded per newest record: the oldest keys go first
        keep_built(records, ("n", n), n)
    assert kept_built(records, ("n", 9)) == 9 and kept_built(records, ("n", 0)) is None


def test_readers_beside_a_writer_always_see_a_whole_recent_window(tmp_path: Path) -> None:
    """Threads reading windows while one thread appends: each window is a run of the newest messages."""
    store = ContextStore.open(str(tmp_path / "m.lance"), embedder=None)
    writer = LanceChatMessageHistory("s", store=store)
    writer.add_messages([HumanMessage("m0")])
    total, problems = 60, []
    done = threading.Event()

    def read() -> None:
        history, seen = LanceChatMessageHistory("s", store=store), -1
        while not done.is_set():
            numbers = [int(str(m.content)[1:]) for m in history.get_messages(last=5)]
            newest = numbers[-1]
            if numbers != list(range(max(0, newest - 4), newest + 1)) or newest < seen:
                problems.append(numbers)
            seen = newest

    readers = [threading.Thread(target=read) for _ in range(2)]
    for thread in readers:
        thread.start()
    for i in range(1, total):
        writer.add_messages([HumanMessage(f"m{i}")])
    done.set()
    for thread in readers:
        thread.join(60)
    assert problems == []
    assert _texts(writer.get_messages(last=5)) == [f"m{i}" for i in range(total - 5, total)]


@pytest.mark.parametrize("view", ["cache off", "pinned version"])
def test_a_read_that_never_returns_the_same_records_keeps_no_window(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, view: str
) -> None:
    """Without the tail cache, or on a past version, each read is new records: nothing is kept."""
    path = str(tmp_path / "m.lance")
    history = _chat(ContextStore.open(path, embedder=None))
    if view == "cache off":
        reader = LanceChatMessageHistory(
            "s", store=ContextStore.open(path, embedder=None, caches=CachePolicy(tail_sessions=0))
        )
    else:
        reader = history.at_version(history.store.version())
    assert shares_records(reader.store) is False and shares_records(history.store) is True
    kept: list[object] = []
    real = _history.keep_built
    monkeypatch.setattr(_history, "keep_built", lambda *args: (kept.append(args), real(*args)))
    for _ in range(3):
        assert _texts(reader.get_messages(last=3)) == ["be brief", "a27", "q28", "a29"]
    assert kept == []
    assert _texts(history.get_messages(last=3)) == ["be brief", "a27", "q28", "a29"]
    assert len(kept) == 1  # the latest version with its cache keeps its window


def test_every_message_read_again_is_not_decoded_again_and_each_read_gets_its_own_copies(
    tmp_path: Path, decodes: list[int]
) -> None:
    """``history.messages``, what ``RunnableWithMessageHistory`` reads each turn."""
    path = str(tmp_path / "m.lance")
    store = ContextStore.open(path, embedder=None)
    history = _chat(store, turns=4)
    first = history.messages
    assert _texts(first) == ["be brief", "q0", "a1", "q2", "a3"]
    decoded = len(decodes)
    again = LanceChatMessageHistory("s", store=store).messages
    assert len(decodes) == decoded  # the same cached records: the messages kept, no decoding
    assert again == first and all(a is not b for a, b in zip(again, first, strict=True))
    again[1].content = "changed"
    again[1].additional_kwargs["k"] = 1
    assert _texts(history.messages) == ["be brief", "q0", "a1", "q2", "a3"]
    assert history.messages[1].additional_kwargs == {}
    history.add_messages([HumanMessage("q4")])
    assert _texts(history.messages)[-1] == "q4"
    other = LanceChatMessageHistory("s", store=ContextStore.open(path, embedder=None))
    other.add_messages([AIMessage("from elsewhere")])
    assert _texts(history.messages)[-2:] == ["q4", "from elsewhere"]
    off = ContextStore.open(path, embedder=None, caches=CachePolicy(tail_sessions=0))
    assert LanceChatMessageHistory("s", store=off).messages == history.messages


def test_a_session_too_long_for_the_cache_keeps_no_messages(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A whole session past what the cache keeps (1,024 records) is read afresh each time."""
    store = ContextStore.open(str(tmp_path / "m.lance"), embedder=None)
    assert shares_records(store, whole=1024) is True and shares_records(store, whole=1025) is False
    long, short = LanceChatMessageHistory("long", store=store), LanceChatMessageHistory("short", store=store)
    long.add_messages([HumanMessage(f"m{i}") for i in range(1025)])
    short.add_messages([HumanMessage(f"m{i}") for i in range(1024)])
    kept: list[object] = []
    real = _history.keep_built
    monkeypatch.setattr(_history, "keep_built", lambda *args: (kept.append(args), real(*args)))
    for _ in range(2):
        assert _texts(long.messages) == [f"m{i}" for i in range(1025)]
    assert kept == []  # new records on every read: nothing kept beside them
    for _ in range(2):
        assert _texts(short.messages) == [f"m{i}" for i in range(1024)]
    assert len(kept) == 1  # kept once, then found again
