"""The indexed text of a conversation turn: speaker, time, caption, context, repetition."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from lance_context._index_text import (
    ChatIndexing,
    ChatTurn,
    IndexTextOptions,
    format_time,
    index_text,
    index_texts,
    turn_line,
)

WHEN = datetime(2023, 5, 8, 13, 56, tzinfo=timezone.utc)
ASK = ChatTurn("Where did you go?", speaker="Mel", time=WHEN)
ANSWER = ChatTurn("Paris!", speaker="Caro", time=WHEN, caption="a photo of the Eiffel tower")


def test_format_time_is_english_and_locale_free() -> None:
    assert format_time(WHEN) == "1:56 pm on 8 May, 2023"
    assert format_time(datetime(2023, 1, 1, 0, 5)) == "12:05 am on 1 January, 2023"
    assert format_time(datetime(2023, 12, 31, 12, 0)) == "12:00 pm on 31 December, 2023"
    assert format_time(WHEN, clock=False) == "8 May, 2023"


def test_turn_line() -> None:
    assert turn_line(ANSWER) == "Caro: Paris! [shares a photo of the Eiffel tower]"
    assert turn_line(ANSWER, IndexTextOptions(caption=False)) == "Caro: Paris!"
    assert turn_line(ANSWER, IndexTextOptions(speaker=False)) == "Paris! [shares a photo of the Eiffel tower]"
    assert turn_line(ChatTurn("hi")) == "hi"


def test_default_layout() -> None:
    text = index_text(ANSWER, [ASK])
    line = "Caro: Paris! [shares a photo of the Eiffel tower]"
    assert text == f"[8 May, 2023] {line} | context: Mel: Where did you go? | {line}"


def test_the_time_of_day_is_left_out_unless_asked_for() -> None:
    # The time is when a record was appended: its hour and minute must not match
    # numbers in a query ("planet 7", "31 days").
    evening = ChatTurn("hello", speaker="Ann", time=datetime(2026, 11, 30, 19, 31, tzinfo=timezone.utc))
    text = index_text(evening, options=IndexTextOptions(repeat_message=False))
    assert text == "[30 November, 2026] Ann: hello"
    assert not {"7", "19", "31", "pm"} & set(text.replace(":", " ").replace(",", " ").split())
    with_clock = IndexTextOptions(clock=True, repeat_message=False)
    assert index_text(evening, options=with_clock) == "[7:31 pm on 30 November, 2026] Ann: hello"
    assert (
        index_text(evening, options=IndexTextOptions(time=False, clock=True, repeat_message=False))
        == "Ann: hello"
    )


def test_first_turn_has_no_context_part() -> None:
    assert index_text(ASK, []) == "[8 May, 2023] Mel: Where did you go? | Mel: Where did you go?"


def test_time_given_as_text_is_used_as_it_is() -> None:
    turn = ChatTurn("hi", speaker="A", time="yesterday evening")
    assert index_text(turn, options=IndexTextOptions(repeat_message=False)) == "[yesterday evening] A: hi"
    assert index_text(ChatTurn("hi", time=""), options=IndexTextOptions.plain()) == "hi"


def test_plain_options_index_the_message_alone() -> None:
    assert index_text(ANSWER, [ASK], IndexTextOptions.plain()) == "Paris!"


def test_only_the_last_context_turns_are_used() -> None:
    history = [ChatTurn(f"m{i}") for i in range(5)]
    options = IndexTextOptions(context_turns=2, repeat_message=False, time=False)
    assert index_text(ChatTurn("now"), history, options) == "now | context: m3 m4"
    options = IndexTextOptions(context_turns=0, repeat_message=False)
    assert index_text(ChatTurn("now"), history, options) == "now"


def test_long_context_is_cut_from_the_oldest_end() -> None:
    history = [ChatTurn("x" * 50), ChatTurn("recent words")]
    options = IndexTextOptions(time=False, repeat_message=False, max_chars=40)
    text = index_text(ChatTurn("msg"), history, options)
    assert len(text) <= 40
    assert text.startswith("msg | context: ") and text.endswith("recent words")


def test_the_message_is_never_cut() -> None:
    options = IndexTextOptions(max_chars=10)
    text = index_text(ChatTurn("a long message that exceeds"), [ChatTurn("ctx")], options)
    assert text == "a long message that exceeds | a long message that exceeds"


def test_batch_equals_one_append_per_turn() -> None:
    turns = [ChatTurn(f"t{i}", speaker="A" if i % 2 else "B", time=WHEN) for i in range(6)]
    history = [ChatTurn("h1", speaker="B"), ChatTurn("h2", speaker="A")]
    batch = index_texts(turns, history=history)
    seen = list(history)
    one_by_one = []
    for turn in turns:
        one_by_one.append(index_texts([turn], history=seen)[0])
        seen.append(turn)
    assert batch == one_by_one
    assert batch[0] == index_text(turns[0], history)


def test_no_context_needed_ignores_history() -> None:
    options = IndexTextOptions(context_turns=0)
    assert index_texts([ASK], options, history=[ANSWER]) == [index_text(ASK, [], options)]


@pytest.mark.parametrize("options", [{"context_turns": -1}, {"max_chars": 0}])
def test_bad_options_are_refused(options: dict[str, int]) -> None:
    with pytest.raises(ValueError):
        IndexTextOptions(**options)


def test_chat_indexing_gives_a_full_text_and_a_short_embedded_text() -> None:
    full, embedded = ChatIndexing().texts([ASK, ANSWER])
    assert full == index_texts([ASK, ANSWER])
    assert embedded == ["Mel: Where did you go?", "Caro: Paris!"]  # the caption: full text only
    assert "[shares a photo of the Eiffel tower]" in full[1]
    history_full, _ = ChatIndexing().texts([ANSWER], history=[ASK])
    assert history_full == [full[1]]
