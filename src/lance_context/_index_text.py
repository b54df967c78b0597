"""The indexed text of a conversation turn: what is embedded and full-text indexed.

A chat message alone is a poor search document: "Yes, I went there last week" names
neither who went nor where. The indexed text adds what a question will mention: the
speaker's name, the day it was said, an image's caption and the turns just before it
(the question it answers), and repeats the message itself so that, in BM25, its own
words weigh more than the context's. It is built once, when the turn is appended,
from that turn and the turns already stored before it (never from later turns, which
do not exist yet), and kept apart from the stored message, which reads return exactly
as written.

Two texts are built per turn (:class:`ChatIndexing`): the full-text index gets the
message with its date, an image's caption and the context, and the embedding gets
``Speaker: text`` alone, which costs the model what it did before. Measured
on the LoCoMo development split (``docs/recall.md``): BM25 R@5 0.59 on ``Speaker:
text`` and 0.73 on the default indexed text; fused hybrid 0.76.

Example:
    >>> turns = [ChatTurn("Where did you go?", speaker="Mel"), ChatTurn("Paris!", speaker="Caro")]
    >>> index_texts(turns, IndexTextOptions(time=False))[1]
    'Caro: Paris! | context: Mel: Where did you go? | Caro: Paris!'
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from ._policies import check_bool, check_int

if TYPE_CHECKING:
    from ._records import ContextRecord
    from ._store import ContextStore

__all__ = [
    "ChatIndexing",
    "ChatTurn",
    "IndexTextOptions",
    "format_time",
    "index_text",
    "index_texts",
    "turn_line",
]

_MONTHS = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)  # fmt: skip


@dataclass(frozen=True)
class IndexTextOptions:
    """What goes into a turn's indexed text beside the message itself.

    The defaults are the best measured for the full-text channel on the LoCoMo
    development split (each field gives BM25 R@5 with it changed, against 0.733 with
    all defaults when the time of day was still written, 0.735 with the date alone;
    the context runs across the store's session).

    Example:
        >>> IndexTextOptions(context_turns=0).context_turns
        0
    """

    speaker: bool = True
    """Prefix each turn with its speaker's name, ``"Caroline: ..."``. Questions name
    people; without it vector R@5 falls from 0.42 to 0.26 and BM25 from 0.59 to 0.54
    (on the message alone)."""

    time: bool = True
    """Start with the day the turn was said, ``"[8 May, 2023]"``: questions ask
    "what did X do on 1 February, 2023". Off: BM25 R@5 0.717 (against 0.733 when the
    time of day was written too). The day of the month is a number because questions
    write it so; BM25 / recall R@5 and R@10 were 0.735 / 0.835 and 0.763 / 0.853 with
    it, 0.729 / 0.830 and 0.756 / 0.848 without it (``"[May 2023]"``), 0.731 / 0.830
    and 0.758 / 0.848 with an ordinal (``"8th"``). Its number still matches a bare
    number in a query ("3 kids" on the 3rd), but it lifts every turn of that day
    alike, so unlike the time of day it hardly reorders turns said the same day."""

    clock: bool = False
    """Also write the time of day, ``"[1:56 pm on 8 May, 2023]"`` (only with
    ``time``). Off by default: for a store the time is when the record was appended,
    so its hour and minute ("7", "31", "pm") matched bare numbers in queries
    ("planet 7", "31 days") and ranked turns up by the minute they were written.
    Dropping it cost nothing on the development split: BM25 0.735 / 0.835 without
    against 0.733 / 0.831 with it, hybrid 0.755 / 0.857 against 0.755 / 0.855, recall
    0.763 / 0.853 against 0.762 / 0.854 (R@5 / R@10)."""

    caption: bool = True
    """Append an image's caption, ``"[shares a photo of a dog]"``: what a shared
    picture shows is often what is asked about. Off: R@5 0.737 but R@10 0.816
    (against 0.831)."""

    context_turns: int = 2
    """How many earlier turns of the same session to add as context (the question
    a turn answers is usually just before it). 0: 0.618, 1: 0.70, 2: 0.733, 3: 0.72."""

    repeat_message: bool = True
    """Repeat the message after the context so that its own words count twice in
    BM25 and the context's once. Off: 0.710."""

    max_chars: int = 4_000
    """Cut the context (never the message) so the text stays under this length."""

    def __post_init__(self) -> None:
        """Reject impossible settings and values of the wrong type."""
        check_bool(self, "speaker", "time", "clock", "caption", "repeat_message")
        check_int(self, "context_turns", 0)
        check_int(self, "max_chars", 1)

    @classmethod
    def plain(cls) -> IndexTextOptions:
        """Index the message text alone (no speaker, time, caption or context)."""
        return cls(speaker=False, time=False, caption=False, context_turns=0, repeat_message=False)


def _role(record: ContextRecord) -> str | None:
    return record.role


def _has_text(record: ContextRecord) -> bool:
    return record.text_payload is not None


def _turn(record: ContextRecord, speaker: Callable[[ContextRecord], str | None]) -> ChatTurn:
    return ChatTurn(record.text_payload or "", speaker=speaker(record), time=record.created_at)


@dataclass(frozen=True)
class ChatIndexing:
    """The two texts of a chat turn: one full-text indexed, one embedded.

    Example:
        >>> ChatIndexing().vector.context_turns
        0
    """

    text: IndexTextOptions = IndexTextOptions()
    """The full-text (BM25) channel's text: the message with its context."""

    vector: IndexTextOptions = IndexTextOptions(
        time=False, caption=False, context_turns=0, repeat_message=False
    )
    """The embedded text: ``"Speaker: text"``, so appends cost the model exactly what
    they did. An image's caption stays in the full-text text: embedding it as well
    (``"Speaker: text [shares caption]"``) cost 7-15% more model time per turn on
    LoCoMo for the same fusion (recall 0.763/0.853 against 0.766/0.853 without it).
    Adding the time (with the time of day, as measured) made the vector channel better
    alone (0.446 against 0.414 R@5) but not the fusion (hybrid 0.755/0.855 either way)
    and cost more model time (+32% characters, 1.68x in one loaded run); embedding the
    full indexed text cost ~5x for a worse fusion (0.753/0.844 at 0.7/0.3)."""

    def __post_init__(self) -> None:
        """Reject channel texts that are not :class:`IndexTextOptions`."""
        for name in ("text", "vector"):
            value = getattr(self, name)
            if not isinstance(value, IndexTextOptions):
                raise ValueError(f"ChatIndexing.{name} takes an IndexTextOptions, got {type(value).__name__}")

    def texts(
        self, turns: Sequence[ChatTurn], history: Sequence[ChatTurn] = ()
    ) -> tuple[list[str], list[str]]:
        """The full-text and the embedded texts of turns appended together."""
        return index_texts(turns, self.text, history), index_texts(turns, self.vector, history)

    def hint(
        self,
        store: ContextStore,
        run_id: str,
        records: Sequence[ContextRecord],
        *,
        speaker: Callable[[ContextRecord], str | None] = _role,
        is_turn: Callable[[ContextRecord], bool] = _has_text,
        after_stored: bool = True,
    ) -> None:
        """Set ``search_text`` and ``embed_text`` on the turns among records about to be appended.

        Args:
            store: The store they go to (its last turns of ``run_id`` are the context).
            run_id: Their session.
            records: The records, in order; those ``is_turn`` rejects (attachments,
                records without text) get no hints and are not context.
            speaker: Who said a turn (default: its role).
            is_turn: Which records are conversation turns.
            after_stored: False when the records replace the session (no stored context).
        """
        turns = [r for r in records if is_turn(r) and r.text_payload]
        if not turns:
            return
        need = max(self.text.context_turns, self.vector.context_turns)
        history: list[ChatTurn] = []
        if need and after_stored:
            stored = store.records(run_id, last=4 * need, with_vectors=False)  # room for attachments
            history = [_turn(r, speaker) for r in stored if is_turn(r) and r.text_payload][-need:]
        texts, embedded = self.texts([_turn(r, speaker) for r in turns], history)
        for record, text, vector_text in zip(turns, texts, embedded, strict=True):
            record.search_text, record.embed_text = text, vector_text


@dataclass(frozen=True)
class ChatTurn:
    """What the indexed text is built from: one turn of a conversation.

    Attributes:
        text: The message text as stored.
        speaker: Who said it (a name, or a role such as ``user``).
        time: When it was said: a datetime (formatted by :func:`format_time`, with
            the time of day only when :attr:`IndexTextOptions.clock` is set) or text
            used as it is.
        caption: A caption of an image shared with the message.

    Example:
        >>> ChatTurn("hi", speaker="Ann").speaker
        'Ann'
    """

    text: str
    speaker: str | None = None
    time: datetime | str | None = None
    caption: str | None = None


def format_time(when: datetime, *, clock: bool = True) -> str:
    """``"1:56 pm on 8 May, 2023"``: English words a question may use, locale-free.

    Args:
        when: The moment to write (its own fields, whatever its time zone).
        clock: Write the time of day; False gives the date alone, ``"8 May, 2023"``.
    """
    date = f"{when.day} {_MONTHS[when.month - 1]}, {when.year}"
    if not clock:
        return date
    hour = when.hour % 12 or 12
    half = "am" if when.hour < 12 else "pm"
    return f"{hour}:{when.minute:02d} {half} on {date}"


def turn_line(turn: ChatTurn, options: IndexTextOptions | None = None) -> str:
    """One turn as ``"Speaker: text [shares caption]"`` (parts per the options)."""
    options = options or IndexTextOptions()
    line = f"{turn.speaker}: {turn.text}" if options.speaker and turn.speaker else turn.text
    if options.caption and turn.caption:
        line += f" [shares {turn.caption}]"
    return line


def index_text(
    turn: ChatTurn, context: Sequence[ChatTurn] = (), options: IndexTextOptions | None = None
) -> str:
    """The indexed text of ``turn`` given the turns before it (oldest first).

    Layout: ``[date] Speaker: text [shares caption] | context: <earlier turns> |
    Speaker: text [shares caption]``. Only the last ``options.context_turns`` of
    ``context`` are used; empty parts are left out.

    Args:
        turn: The turn being appended.
        context: Earlier turns of the same session, oldest first.
        options: What to include; :class:`IndexTextOptions` defaults when None.
    """
    options = options or IndexTextOptions()
    line = turn_line(turn, options)
    head = ""
    if options.time and turn.time is not None:
        when = format_time(turn.time, clock=options.clock) if isinstance(turn.time, datetime) else turn.time
        head = f"[{when}] " if when else ""
    earlier = context[len(context) - options.context_turns :] if options.context_turns else ()
    tail = f" | {line}" if options.repeat_message else ""
    room = options.max_chars - len(head) - len(line) - len(tail) - len(" | context: ")
    middle = " ".join(turn_line(t, options) for t in earlier)
    if len(middle) > room:
        middle = middle[len(middle) - max(room, 0) :]  # keep the turns nearest this one
    if not middle:
        return f"{head}{line}{tail}"
    return f"{head}{line} | context: {middle}{tail}"


def index_texts(
    turns: Sequence[ChatTurn],
    options: IndexTextOptions | None = None,
    history: Sequence[ChatTurn] = (),
) -> list[str]:
    """Indexed texts of turns appended together, in order.

    Each turn's context is the turns before it in ``turns``, preceded by
    ``history`` (the session's last stored turns, oldest first): a batch append
    gets the same texts as one append per turn.

    Args:
        turns: The turns being appended, in conversation order.
        options: What to include; :class:`IndexTextOptions` defaults when None.
        history: Turns already stored in the session, oldest first (only the last
            ``options.context_turns`` matter).
    """
    options = options or IndexTextOptions()
    need = options.context_turns
    window = list(history[len(history) - need :]) if need else []
    out = []
    for turn in turns:
        out.append(index_text(turn, window, options))
        if need:
            window = [*window, turn][-need:]
    return out
