"""What a merge of one branch into another would do: pure decisions and their plain-data results.

Three versions are compared record by record: the *base* (where the two branches last
shared history), *ours* (the target's latest) and *theirs* (the branch's latest). Each
record is reduced to a :class:`RowState`: its session, its position (``seq``) and a
digest of everything else, its vector included (payloads are hashed by Lance, never read).
Whatever the branch changed since the base is applied to the target, unless the target
changed the same record differently: that is a conflict. Both sides making the same
change is not a conflict, which is also why merging twice changes nothing.

The result types here (:class:`MergePlan`, :class:`MergeResult` and what they hold)
are plain data: they print as a person reads them and ``to_dict()`` gives JSON.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import pyarrow as pa

from ._encryption import Cipher
from ._fingerprints import row_digests

__all__ = [
    "ChangeKind",
    "MergeConflict",
    "MergePlan",
    "MergeResult",
    "OnConflict",
    "RecordChange",
    "RowState",
    "SessionChanges",
    "ThreeWay",
    "Upsert",
    "row_states",
    "summarize",
    "three_way",
]

ChangeKind = Literal["added", "changed", "deleted"]
OnConflict = Literal["fail", "ours", "theirs"]
MAIN = "main"


@dataclass(frozen=True)
class RowState:
    """One record at one version, as a merge compares it.

    Attributes:
        seq: Its position in append order.
        run_id: Its session.
        digest: A hash of everything stored but ``seq``, the vector included.
    """

    seq: int
    run_id: str
    digest: str


def row_states(table: pa.Table, cipher: Cipher | None = None) -> dict[str, RowState]:
    """Each id's state from a table read with :func:`fingerprint_columns` (the newest copy of an id wins).

    Sealed rows are compared by what they hold when ``cipher`` can open them.
    """
    states: dict[str, RowState] = {}
    ids, seqs, runs = (table.column(name).to_pylist() for name in ("id", "seq", "run_id"))
    for record_id, seq, run_id, digest in zip(ids, seqs, runs, row_digests(table, cipher), strict=True):
        known = states.get(record_id)
        if known is None or seq >= known.seq:
            states[record_id] = RowState(int(seq), run_id, digest)
    return states


@dataclass(frozen=True)
class Upsert:
    """A record the branch wrote that the merge writes into the target.

    Attributes:
        id: The record id.
        branch_seq: Its position on the branch (merged records keep the branch's order).
        kept_seq: The target position it keeps (an update in place on the branch), else None.
        kind: ``added`` or ``changed``.
    """

    id: str
    branch_seq: int
    kept_seq: int | None
    kind: ChangeKind


@dataclass
class ThreeWay:
    """The decisions of a three-way comparison (ids only)."""

    upserts: list[Upsert] = field(default_factory=list)
    deletes: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)


def _same(a: RowState | None, b: RowState | None) -> bool:
    return (a is None and b is None) or (a is not None and b is not None and a.digest == b.digest)


def three_way(
    base: Mapping[str, RowState],
    ours: Mapping[str, RowState],
    theirs: Mapping[str, RowState],
    base_on_branch: Mapping[str, RowState] | None = None,
    unknown: range | None = None,
) -> ThreeWay:
    """What to apply to ``ours`` so it gets every change ``theirs`` made since ``base``.

    A position-only change (an upsert of identical content) moves the record to the end
    of the target unless the target changed the record itself. Upserts come in the
    branch's order. ``base_on_branch`` gives the base's positions as the branch numbered
    them, when the base came to the branch through a merge (which renumbers what it brings).
    ``unknown`` holds the positions of records written after ``base`` and up to the real
    base, when ``forget()`` erased that one and an older version stands in: such a record
    missing from ``base`` and from one side was deleted there after the real base, and
    whether the other side changed it meanwhile cannot be told, so it is a conflict
    (rather than added back, or its deletion undone).
    """
    out = ThreeWay()
    for record_id in sorted(set(base) | set(ours) | set(theirs)):
        b, o, t = base.get(record_id), ours.get(record_id), theirs.get(record_id)
        if b is None and unknown is not None and (o is None) != (t is None):
            present = o if o is not None else t
            if present is not None and present.seq in unknown:
                out.conflicts.append(record_id)
                continue
        b_seq = b.seq if b is not None else None
        if base_on_branch is not None:
            on_branch = base_on_branch.get(record_id)
            b_seq = on_branch.seq if on_branch is not None else None
        if b is not None and t is not None and b.digest == t.digest:
            if b_seq != t.seq and o == b:  # moved on the branch only: move it here too
                out.upserts.append(Upsert(record_id, t.seq, None, "changed"))
            continue
        if _same(b, t):
            continue  # the branch left it alone
        if _same(o, t):
            continue  # both sides made the same change (or it was merged already)
        elif not _same(b, o):
            out.conflicts.append(record_id)
        elif t is None:
            out.deletes.append(record_id)
        else:
            kept = o.seq if b is not None and o is not None and t.seq == b_seq else None
            out.upserts.append(Upsert(record_id, t.seq, kept, "added" if b is None else "changed"))
    out.upserts.sort(key=lambda u: (u.branch_seq, u.id))
    return out


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\x80-\x9f]")


def summarize(text: str | None, content_type: str, nbytes: int | None, width: int = 72) -> str:
    """A record's content as a person reads it: text cut to ``width``, binaries as type and size."""
    if nbytes is not None and (text is None or not content_type.startswith("text/")):
        caption = f" {text[:width]!r}" if text else ""
        return f"<{content_type.split(';', 1)[0]}, {nbytes:,} B>{caption}"
    if text is None:
        return "<empty>"
    # control characters (a terminal escape in stored text) are shown as \x1b, so columns line up
    flat = _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", " ".join(text.split()))
    return flat if len(flat) <= width else flat[: width - 1] + "…"


@dataclass(frozen=True)
class RecordChange:
    """One record a merge adds to, changes in or deletes from the target.

    Attributes:
        kind: ``added``, ``changed`` or ``deleted``.
        id: The record id.
        run_id: Its session.
        role: Its role.
        summary: Its content (the branch's copy; the target's for a delete).

    Example:
        >>> RecordChange("added", "r1", "chat-1", "assistant", "Summary: ...").kind
        'added'
    """

    kind: ChangeKind
    id: str
    run_id: str
    role: str
    summary: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-able fields."""
        return asdict(self)

    def __str__(self) -> str:
        sign = {"added": "+", "changed": "~", "deleted": "-"}[self.kind]
        return f"{sign} [{self.role}] {self.summary}"


@dataclass(frozen=True)
class MergeConflict:
    """A record both sides changed differently since they forked.

    Attributes:
        id: The record id.
        run_id: Its session.
        ours: The target's copy (None: the target deleted it).
        theirs: The branch's copy (None: the branch deleted it).

    Example:
        >>> MergeConflict("r1", "chat-1", "v1 text", None).theirs is None
        True
    """

    id: str
    run_id: str
    ours: str | None
    theirs: str | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-able fields."""
        return asdict(self)

    def __str__(self) -> str:
        ours = "deleted" if self.ours is None else repr(self.ours)
        theirs = "deleted" if self.theirs is None else repr(self.theirs)
        return f"! {self.id} in {self.run_id}: target {ours}, branch {theirs}"


@dataclass(frozen=True)
class SessionChanges:
    """The changes a merge makes to one session.

    Example:
        >>> SessionChanges("chat-1").added
        []
    """

    run_id: str
    added: list[RecordChange] = field(default_factory=list)
    changed: list[RecordChange] = field(default_factory=list)
    deleted: list[RecordChange] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able fields."""
        return {
            "run_id": self.run_id,
            **{kind: [c.to_dict() for c in getattr(self, kind)] for kind in ("added", "changed", "deleted")},
        }


def by_session(changes: Sequence[RecordChange]) -> list[SessionChanges]:
    """Changes grouped by session, sessions sorted by name, changes in merge order."""
    sessions: dict[str, SessionChanges] = {}
    for change in changes:
        entry = sessions.setdefault(change.run_id, SessionChanges(change.run_id))
        getattr(entry, change.kind).append(change)
    return [sessions[name] for name in sorted(sessions)]


def _counts(changes: Sequence[RecordChange]) -> str:
    counts = {kind: sum(c.kind == kind for c in changes) for kind in ("added", "changed", "deleted")}
    return ", ".join(f"{n} {kind}" for kind, n in counts.items())


def _lines(changes: Sequence[RecordChange], conflicts: Sequence[MergeConflict]) -> list[str]:
    lines = []
    for session in by_session(changes):
        lines.append(f"  {session.run_id}")
        for change in [*session.added, *session.changed, *session.deleted]:
            lines.append(f"    {change}")
    lines.extend(f"  {conflict}" for conflict in conflicts)
    return lines


@dataclass(frozen=True)
class MergePlan:
    """What merging ``branch`` into ``into`` would do, computed without writing.

    Attributes:
        branch: The branch merged.
        into: The branch merged into.
        base: Where the two last shared history, ``(branch, version)``: where they forked,
            or the version of one that was last merged into the other.
        target_version: The version of ``into`` compared.
        branch_version: The version of ``branch`` compared.
        changes: What the merge applies, in the branch's order.
        conflicts: Records both sides changed differently (not in ``changes``).

    Example:
        >>> plan = store.review("consolidate").plan   # doctest: +SKIP
        >>> [s.run_id for s in plan.sessions]         # doctest: +SKIP
    """

    branch: str
    into: str
    base: tuple[str, int]
    target_version: int
    branch_version: int
    changes: list[RecordChange] = field(default_factory=list)
    conflicts: list[MergeConflict] = field(default_factory=list)

    @property
    def sessions(self) -> list[SessionChanges]:
        """The changes grouped by session."""
        return by_session(self.changes)

    def header(self) -> str:
        """One line naming the branches and versions compared."""
        return (
            f"{self.branch}@{self.branch_version} into {self.into}@{self.target_version}, "
            f"last shared at {self.base[0]}@{self.base[1]}"
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-able fields, changes grouped by session."""
        return {
            "branch": self.branch,
            "into": self.into,
            "base": {"branch": self.base[0], "version": self.base[1]},
            "target_version": self.target_version,
            "branch_version": self.branch_version,
            "sessions": [s.to_dict() for s in self.sessions],
            "conflicts": [c.to_dict() for c in self.conflicts],
        }

    def __str__(self) -> str:
        summary = f"  {_counts(self.changes)}, {len(self.conflicts)} conflicts"
        return "\n".join([self.header(), summary, *_lines(self.changes, self.conflicts)])


@dataclass(frozen=True)
class MergeResult:
    """What a merge did.

    Attributes:
        branch: The branch merged.
        into: The branch merged into.
        version: The version of ``into`` after the merge (unchanged when nothing was written).
        merged: Whether a new version was written.
        on_conflict: The conflict rule used.
        changes: What was applied (conflicts resolved ``theirs`` included).
        conflicts: The conflicts found (resolved by ``on_conflict``).
        base: Where the two branches last shared history: ``(branch, version)``.
        branch_version: The version of ``branch`` merged.

    Example:
        >>> result = store.merge("consolidate")   # doctest: +SKIP
        >>> result.version, len(result.changes)   # doctest: +SKIP
        (14, 7)
    """

    branch: str
    into: str
    version: int
    merged: bool
    on_conflict: OnConflict
    changes: list[RecordChange] = field(default_factory=list)
    conflicts: list[MergeConflict] = field(default_factory=list)
    base: tuple[str, int] = (MAIN, 0)
    branch_version: int = 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-able fields, changes grouped by session."""
        return {
            "branch": self.branch,
            "into": self.into,
            "version": self.version,
            "merged": self.merged,
            "on_conflict": self.on_conflict,
            "base": {"branch": self.base[0], "version": self.base[1]},
            "branch_version": self.branch_version,
            "sessions": [s.to_dict() for s in by_session(self.changes)],
            "conflicts": [c.to_dict() for c in self.conflicts],
        }

    @property
    def summary(self) -> str:
        """One line: what was merged into what, as which version, and the counts."""
        if not self.merged:
            return f"nothing to merge from {self.branch} into {self.into} (still {self.into}@{self.version})"
        resolved = f", {len(self.conflicts)} conflicts kept {self.on_conflict}" if self.conflicts else ""
        return (
            f"merged {self.branch}@{self.branch_version} into {self.into}, now {self.into}@{self.version}: "
            f"{_counts(self.changes)}{resolved}"
        )

    def __str__(self) -> str:
        return "\n".join([self.summary, *_lines(self.changes, [])])
