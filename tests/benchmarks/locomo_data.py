"""The LoCoMo development split as turns and questions, and the recall metrics.

LoCoMo (Maharana et al., "Evaluating Very Long-Term Conversational Memory of LLM
Agents", ACL 2024) is ten long two-person conversations, each a series of dated
sessions, with questions annotated with the turns (``dia_id`` such as ``D1:3``) that
answer them. The development split is five of them; the other five are held out and
must never be used for tuning.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from lance_context._index_text import ChatTurn

REPO = Path(__file__).resolve().parents[2]
DEV_CONVERSATIONS = ("26", "30", "41", "42", "43")
CATEGORIES = {1: "multi-hop", 2: "temporal", 3: "open-domain", 4: "single-hop", 5: "adversarial"}
HOW_TO_GET = (
    "LoCoMo development split not found. Get data/locomo10.zip from the public GitHub repository "
    "snap-research/locomo, and put the conversations "
    "with sample_id conv-26, conv-30, conv-41, conv-42 and conv-43 (the development split), each "
    "as <number>.json holding that conversation's 'conversation' object plus its 'qa' list, in "
    "../shared/benchmarks/locomo-dev/ beside the repository, or point $LOCOMO_DIR at the folder. "
    "The other five conversations are held out: do not tune on them."
)
_DIA = re.compile(r"D(\d+):(\d+)")
_SESSION = re.compile(r"session_(\d+)")
_WHEN = re.compile(r"(\d{1,2}):(\d{2}) (am|pm) on (\d{1,2}) (\w+), (\d{4})")
_MONTHS = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
]


@dataclass(frozen=True)
class Turn:
    """One turn of a conversation, in conversation order."""

    conversation: str
    dia_id: str
    session: int
    position: int
    speaker: str
    text: str
    caption: str | None
    when: str


@dataclass(frozen=True)
class Question:
    """One question with the turns that answer it."""

    conversation: str
    text: str
    category: int
    evidence: tuple[str, ...]


@dataclass(frozen=True)
class Split:
    """Turns per conversation (in order) and the questions that have evidence."""

    turns: dict[str, list[Turn]]
    questions: list[Question]
    dropped: int

    @property
    def turn_count(self) -> int:
        return sum(len(t) for t in self.turns.values())


def _main_checkout() -> Path:
    """The main checkout of the repository (differs from REPO inside a git worktree)."""
    marker = REPO / ".git"
    if marker.is_file():  # a worktree: "gitdir: <main>/.git/worktrees/<name>"
        gitdir = Path(marker.read_text().split(":", 1)[1].strip())
        if gitdir.parent.name == "worktrees":
            return gitdir.parent.parent.parent
    return REPO


def find_split() -> Path | None:
    """``$LOCOMO_DIR`` or ``<repo>/../shared/benchmarks/locomo-dev`` when it holds the split."""
    candidates = [os.environ.get("LOCOMO_DIR")]
    candidates += [str(r.parent / "shared" / "benchmarks" / "locomo-dev") for r in (REPO, _main_checkout())]
    for candidate in candidates:
        if candidate and all((Path(candidate) / f"{c}.json").is_file() for c in DEV_CONVERSATIONS):
            return Path(candidate)
    return None


def _dia(raw: str) -> str | None:
    match = _DIA.fullmatch(raw.strip())
    return f"D{int(match[1])}:{int(match[2])}" if match else None


def _evidence(raw: Iterable[str]) -> list[str]:
    # One annotation packs two ids in one string ("D8:6; D9:17"): split on ';' and spaces.
    return [d for item in raw for part in re.split(r"[;\s]+", item) if part and (d := _dia(part))]


def load_conversation(path: Path) -> tuple[list[Turn], list[Question], int]:
    """Turns in order, the questions whose evidence exists, and how many were dropped."""
    data = json.loads(path.read_text())
    conversation = data.get("conversation", data)
    name = path.stem
    sessions = sorted(
        (int(m[1]), key) for key in conversation if (m := _SESSION.fullmatch(key)) and conversation[key]
    )
    turns: list[Turn] = []
    for number, key in sessions:
        when = str(conversation.get(f"{key}_date_time", ""))
        for raw in conversation[key]:
            turns.append(
                Turn(
                    conversation=name,
                    dia_id=_dia(raw["dia_id"]) or raw["dia_id"],
                    session=number,
                    position=len(turns),
                    speaker=raw["speaker"],
                    text=raw["text"],
                    caption=raw.get("blip_caption"),
                    when=when,
                )
            )
    known = {t.dia_id for t in turns}
    questions, dropped = [], 0
    for qa in data["qa"]:
        evidence = tuple(dict.fromkeys(e for e in _evidence(qa.get("evidence", [])) if e in known))
        if not evidence:
            dropped += 1
            continue
        questions.append(Question(name, str(qa["question"]), int(qa["category"]), evidence))
    return turns, questions, dropped


def load_split(folder: Path, conversations: Sequence[str] = DEV_CONVERSATIONS) -> Split:
    """The chosen conversations of the split in ``folder``."""
    turns: dict[str, list[Turn]] = {}
    questions: list[Question] = []
    dropped = 0
    for name in conversations:
        got, asked, lost = load_conversation(folder / f"{name}.json")
        turns[name] = got
        questions += asked
        dropped += lost
    return Split(turns, questions, dropped)


def parse_when(text: str) -> datetime | None:
    """LoCoMo's session time (``"1:56 pm on 8 May, 2023"``) as a datetime."""
    m = _WHEN.fullmatch(text.strip())
    if not m:
        return None
    hour = int(m[1]) % 12 + (12 if m[3] == "pm" else 0)
    return datetime(int(m[6]), _MONTHS.index(m[5].lower()) + 1, int(m[4]), hour, int(m[2]))


def chat_turn(turn: Turn) -> ChatTurn:
    """A LoCoMo turn as the input of the indexed text (time parsed back to a datetime)."""
    return ChatTurn(
        turn.text, speaker=turn.speaker, time=parse_when(turn.when) or turn.when, caption=turn.caption
    )


# ---------------------------------------------------------------------- metrics
def hit_at(found: Sequence[str], evidence: Sequence[str], k: int) -> float:
    """1.0 when any evidence turn is among the first ``k`` found, else 0.0."""
    top = set(found[:k])
    return 1.0 if any(e in top for e in evidence) else 0.0


def share_at(found: Sequence[str], evidence: Sequence[str], k: int) -> float:
    """The share of the evidence turns that are among the first ``k`` found."""
    top = set(found[:k])
    return sum(e in top for e in evidence) / len(evidence)


@dataclass
class Scores:
    """Recall sums per category, for one mode; ``row()`` gives the means."""

    hits5: dict[int, float]
    hits10: dict[int, float]
    share5: dict[int, float]
    share10: dict[int, float]
    count: dict[int, int]

    @classmethod
    def empty(cls) -> Scores:
        return cls({}, {}, {}, {}, {})

    def add(self, category: int, found: Sequence[str], evidence: Sequence[str]) -> None:
        """Count one question whose ranking is ``found`` (k counts turns)."""
        self.record(
            category,
            (hit_at(found, evidence, 5), hit_at(found, evidence, 10)),
            (share_at(found, evidence, 5), share_at(found, evidence, 10)),
        )

    def record(self, category: int, hits: tuple[float, float], shares: tuple[float, float]) -> None:
        """Count one question from its values at k=5 and k=10."""
        for total, value in zip(
            (self.hits5, self.hits10, self.share5, self.share10), (*hits, *shares), strict=True
        ):
            total[category] = total.get(category, 0.0) + value
        self.count[category] = self.count.get(category, 0) + 1

    def mean(self, which: str, category: int | None = None) -> float:
        """Mean of ``hits5``, ``hits10``, ``share5`` or ``share10`` (all categories when None)."""
        totals: dict[int, float] = getattr(self, which)
        keys = list(self.count) if category is None else [category]
        n = sum(self.count.get(c, 0) for c in keys)
        return sum(totals.get(c, 0.0) for c in keys) / n if n else float("nan")
