"""The recall research on the LoCoMo development split: one line per attempt.

Reproduces the attempts table of ``docs/recall.md`` with the shipped pure functions
(``lance_context._index_text`` builds the indexed texts, ``lance_context._fusion``
fuses): the channels are emulated as in ``locomo_lab`` (exact cosine, Lance BM25).
Development split only; never run it on the held-out conversations.

    PYTHONPATH=src .venv/bin/python tests/benchmarks/locomo_research.py [--only NAME,...]
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("LANCE_LOG", "error")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np
from locomo_data import (
    CATEGORIES,
    HOW_TO_GET,
    REPO,
    Scores,
    Split,
    Turn,
    chat_turn,
    find_split,
    load_split,
    parse_when,
)
from locomo_lab import Matrix, TextChannel, VectorChannel, embed

from lance_context._fusion import FusedScores, FusionOptions, fuse, with_next_turn
from lance_context._index_text import _MONTHS, ChatTurn, IndexTextOptions, index_texts

LAB = REPO / ".bench" / "locomo-lab"
DEFAULT = IndexTextOptions()
CLOCKED = IndexTextOptions(clock=True)
"""The default full-text text before the time of day was left out; the attempts above the
date rows were measured with it."""
LINE = IndexTextOptions(clock=True, context_turns=0, repeat_message=False)
SHORT = IndexTextOptions(time=False, context_turns=0, repeat_message=False)
SPEAKER_ONLY = IndexTextOptions(time=False, caption=False, context_turns=0, repeat_message=False)
PLAIN_RRF = FusionOptions(method="rrf", weights={"text": 1.0, "vector": 1.0}, depth=40)


DateForm = Callable[[datetime], str]


def ordinal(day: int) -> str:
    """``8th``, ``21st``: a day of the month that a bare number in a query does not match."""
    return f"{day}{'th' if 10 <= day % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(day % 10, 'th')}"


DATE_FORMS: dict[str, DateForm] = {
    "no day": lambda d: f"{_MONTHS[d.month - 1]} {d.year}",
    "ordinal day": lambda d: f"{ordinal(d.day)} {_MONTHS[d.month - 1]}, {d.year}",
    "ISO": lambda d: f"{d.year}-{d.month:02d}-{d.day:02d}",
    "month, year and ISO": lambda d: f"{_MONTHS[d.month - 1]} {d.year}, {d.year}-{d.month:02d}-{d.day:02d}",
}
"""Other ways to write a turn's date, tried against ``format_time`` (``"8 May, 2023"``)."""


def dated(turn: Turn, form: str) -> ChatTurn:
    """The turn with its time written as text in the named :data:`DATE_FORMS` form."""
    chat, when = chat_turn(turn), parse_when(turn.when)
    return replace(chat, time=DATE_FORMS[form](when)) if form and when else chat


def indexed(split: Split, options: IndexTextOptions, form: str = "") -> dict[str, list[str]]:
    """Every turn's indexed text; the context runs across LoCoMo sessions, as in a store."""
    return {c: index_texts([dated(t, form) for t in ts], options) for c, ts in split.turns.items()}


@dataclass
class Attempt:
    """One configuration: texts per channel, FTS options, fusion, and query handling."""

    name: str
    text: IndexTextOptions = CLOCKED
    vector: IndexTextOptions = CLOCKED
    fusion: FusionOptions = field(default_factory=FusionOptions)
    fts: dict[str, Any] = field(default_factory=dict)
    next_turn: float = 0.0
    date_form: str = ""
    """A :data:`DATE_FORMS` key: the full-text channel's date written that way."""


Z7 = FusionOptions(weights={"text": 0.7, "vector": 0.3})
ATTEMPTS: list[Attempt] = [
    Attempt("baseline: 'Speaker: text' both channels, RRF", SPEAKER_ONLY, SPEAKER_ONLY, PLAIN_RRF),
    Attempt("message only (no speaker), RRF", IndexTextOptions.plain(), IndexTextOptions.plain(), PLAIN_RRF),
    Attempt("+ time + caption (no context), RRF", LINE, LINE, PLAIN_RRF),
    Attempt("+ time + caption (no context), z-score 0.7/0.3", LINE, LINE, Z7),
    Attempt("one indexed text, RRF (k=60, depth 40)", fusion=PLAIN_RRF),
    Attempt("one indexed text, RRF text weight 3", fusion=FusionOptions(method="rrf", weights={"text": 3.0, "vector": 1.0})),
    Attempt("one indexed text, min-max 0.6/0.4 depth 50", fusion=FusionOptions(method="minmax", weights={"text": 0.6, "vector": 0.4}, depth=50)),
    Attempt("one indexed text, min-max 0.7/0.3", fusion=FusionOptions(method="minmax", weights={"text": 0.7, "vector": 0.3})),
    Attempt("one indexed text, z-score 0.5/0.5", fusion=FusionOptions(weights={"text": 0.5, "vector": 0.5})),
    Attempt("one indexed text, z-score 0.7/0.3 depth 50", fusion=FusionOptions(weights={"text": 0.7, "vector": 0.3}, depth=50)),
    Attempt("one indexed text, z-score 0.7/0.3", fusion=Z7),
    Attempt("one indexed text, context 1 turn", replace(CLOCKED, context_turns=1), replace(CLOCKED, context_turns=1), Z7),
    Attempt("one indexed text, context 3 turns", replace(CLOCKED, context_turns=3), replace(CLOCKED, context_turns=3), Z7),
    Attempt("one indexed text, message not repeated", replace(CLOCKED, repeat_message=False), replace(CLOCKED, repeat_message=False), Z7),
    Attempt("one indexed text, no time", replace(CLOCKED, time=False), replace(CLOCKED, time=False), Z7),
    Attempt("one indexed text, no caption", replace(CLOCKED, caption=False), replace(CLOCKED, caption=False), Z7),
    Attempt("one indexed text, FTS stem=False", fusion=Z7, fts={"stem": False}),
    Attempt("one indexed text, FTS remove_stop_words=False", fusion=Z7, fts={"remove_stop_words": False}),
    Attempt("one indexed text, z-score 0.7/0.3, next turn 0.3", fusion=Z7, next_turn=0.3),
    Attempt("two texts (vector: + 1 context turn), z-score 0.7/0.3", vector=IndexTextOptions(clock=True, context_turns=1, repeat_message=False), fusion=Z7),
    Attempt("two texts (vector: time+speaker+caption), z-score 0.7/0.3", vector=LINE, fusion=Z7),
    Attempt("two texts, z-score 0.7/0.3, next turn 0.3", vector=LINE, fusion=Z7, next_turn=0.3),
    Attempt("two texts (vector: time+speaker+caption), z-score 0.8/0.2", vector=LINE),
    Attempt("two texts (vector: time+speaker+caption), z-score 0.8/0.2, next turn 0.3", vector=LINE, next_turn=0.3),
    Attempt("two texts (vector: speaker+caption), z-score 0.7/0.3", vector=SHORT, fusion=Z7),
    Attempt("with the time of day (the default before): hybrid, two texts (vector: speaker+caption), z-score 0.8/0.2", vector=SHORT),
    Attempt("with the time of day (the default before): recall, the same + next turn 0.3", vector=SHORT, next_turn=0.3),
    Attempt("date without the day ('May 2023'): hybrid", DEFAULT, SHORT, date_form="no day"),
    Attempt("date without the day ('May 2023'): recall", DEFAULT, SHORT, next_turn=0.3, date_form="no day"),
    Attempt("date with an ordinal day ('8th May, 2023'): hybrid", DEFAULT, SHORT, date_form="ordinal day"),
    Attempt("date with an ordinal day ('8th May, 2023'): recall", DEFAULT, SHORT, next_turn=0.3, date_form="ordinal day"),
    Attempt("ISO date ('2023-05-08'): hybrid", DEFAULT, SHORT, date_form="ISO"),
    Attempt("ISO date ('2023-05-08'): recall", DEFAULT, SHORT, next_turn=0.3, date_form="ISO"),
    Attempt("month, year and ISO date ('May 2023, 2023-05-08'): hybrid", DEFAULT, SHORT, date_form="month, year and ISO"),
    Attempt("month, year and ISO date ('May 2023, 2023-05-08'): recall", DEFAULT, SHORT, next_turn=0.3, date_form="month, year and ISO"),
    Attempt("date only ('8 May, 2023'), two texts (vector: speaker+caption), z-score 0.8/0.2: hybrid", DEFAULT, SHORT),
    Attempt("date only, vector: speaker+caption: recall, the same + next turn 0.3", DEFAULT, SHORT, next_turn=0.3),
    Attempt("DEFAULT hybrid: date only, two texts (vector: 'Speaker: text', the caption in the full text only), z-score 0.8/0.2", DEFAULT, SPEAKER_ONLY),
    Attempt("DEFAULT recall: the same + next turn 0.3", DEFAULT, SPEAKER_ONLY, next_turn=0.3),
]  # fmt: skip


class Lab:
    """Channels per distinct text, built once and shared by the attempts that use it."""

    def __init__(self, split: Split) -> None:
        self.split = split
        self.queries: Matrix = embed([q.text for q in split.questions])
        self._vectors: dict[IndexTextOptions, VectorChannel] = {}
        self._texts: dict[tuple[IndexTextOptions, str], TextChannel] = {}

    def vector(self, options: IndexTextOptions) -> VectorChannel:
        if options not in self._vectors:
            self._vectors[options] = VectorChannel.build(indexed(self.split, options))
        return self._vectors[options]

    def text(self, options: IndexTextOptions, fts: dict[str, Any], form: str = "") -> TextChannel:
        key = (options, repr(sorted(fts.items())), form)
        if key not in self._texts:
            path = LAB / f"fts-{len(self._texts)}"
            self._texts[key] = TextChannel(indexed(self.split, options, form), path, **fts)
        return self._texts[key]


def ranked(scores: Matrix, ids: list[str], depth: int, positive: bool = False) -> list[tuple[str, float]]:
    """The top ``depth`` ``(id, score)`` of a dense score array (BM25: matches only)."""
    order = np.argsort(-scores, kind="stable")[:depth]
    return [(ids[i], float(scores[i])) for i in order if not positive or scores[i] > 0]


def next_turns(turns: list[Turn]) -> dict[str, str | None]:
    """Each turn's following turn in the conversation (what the store's order gives)."""
    return {t.dia_id: (turns[i + 1].dia_id if i + 1 < len(turns) else None) for i, t in enumerate(turns)}


def run(lab: Lab, attempt: Attempt) -> dict[str, Scores]:
    """Scores of the vector, text and fused rankings of one attempt."""
    split, depth = lab.split, attempt.fusion.depth
    vectors, texts = lab.vector(attempt.vector), lab.text(attempt.text, attempt.fts, attempt.date_form)
    out = {mode: Scores.empty() for mode in ("vector", "text", "fused")}
    follow = {c: next_turns(ts) for c, ts in split.turns.items()}
    for i, q in enumerate(split.questions):
        ids = [t.dia_id for t in split.turns[q.conversation]]
        v = ranked(vectors.scores(q.conversation, lab.queries[i]), ids, max(depth, 10))
        t = ranked(texts.scores(q.conversation, q.text, max(depth, 10)), ids, max(depth, 10), positive=True)
        fused = fused_for(attempt, {"text": t, "vector": v}, follow[q.conversation])
        out["vector"].add(q.category, [k for k, _ in v], q.evidence)
        out["text"].add(q.category, [k for k, _ in t], q.evidence)
        out["fused"].add(q.category, [k for k, _ in fused.ranked(10)], q.evidence)
    return out


def fused_for(
    attempt: Attempt, channels: dict[str, list[tuple[str, float]]], follow: dict[str, str | None]
) -> FusedScores:
    fused = fuse(channels, attempt.fusion)
    return with_next_turn(fused, follow, attempt.next_turn) if attempt.next_turn else fused


def line(name: str, scores: Scores) -> str:
    cats = " | ".join(
        f"{scores.mean('hits5', c):.2f}/{scores.mean('hits10', c):.2f}" for c in sorted(CATEGORIES)
    )
    return (
        f"| {name} | {scores.mean('hits5'):.3f} | {scores.mean('hits10'):.3f} | "
        f"{scores.mean('share5'):.3f} | {scores.mean('share10'):.3f} | {cats} |"
    )


HEADER = (
    "| attempt | R@5 | R@10 | share@5 | share@10 | "
    + " | ".join(f"{n} R@5/R@10" for n in CATEGORIES.values())
    + " |\n|"
    + "---|" * 10
)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--only", default="", help="comma list of substrings of attempt names")
    args = parser.parse_args()
    folder = find_split()
    if folder is None:
        print(HOW_TO_GET)
        return 0
    split = load_split(folder)
    print(f"{len(split.questions)} questions, {split.turn_count} turns ({split.dropped} without evidence)\n")
    print(HEADER)
    lab = Lab(split)
    wanted = [w for w in args.only.split(",") if w]
    for attempt in ATTEMPTS:
        if wanted and not any(w in attempt.name for w in wanted):
            continue
        got = run(lab, attempt)
        for mode in ("vector", "text", "fused"):
            print(line(f"{attempt.name} — {mode}", got[mode]), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
