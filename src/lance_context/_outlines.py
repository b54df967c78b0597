"""Session outlines that ``recall()`` read at one version, reused while the store stays there.

Recall orders a session by its outline (and, for a session of few rows, ranks the
outline's vectors), read from the session's files on every call. An agent that recalls
several times between two writes, or a reader of a memory nobody is writing to, reads
the same rows again each time. :class:`OutlineMemo` keeps those outlines for exactly
one (branch, version) of the store: the data of a version never changes, so an entry
is never stale; a lookup at any other version empties the memo first, so no entry
outlives the reads of the version it was read at. Bounded by count and by bytes.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from ._fusion import TurnOrder
from ._ranking import ExactRows
from ._reader import Outline

__all__ = ["Conversation", "OutlineMemo"]

#: At most this many outlines are kept (sessions, or filters of one session).
MAX_ENTRIES = 8
#: About how many bytes of outline tables are kept (a 2,000-turn session with 384-d
#: vectors takes about 3.3 MB).
MAX_BYTES = 32 * 2**20

Key = tuple[str | None, str | None, int | None]


@dataclass(frozen=True)
class Conversation:
    """A session's outline, indexed once for every recall at its version.

    Attributes:
        outline: The outline read.
        order: Its ids in conversation order, as a :class:`TurnOrder` (``order.ids``;
            each turn's next, its position). Never changed by a reader.
        row_of: Each id's row id.
        exact: The rows with their vectors, ready to rank (None when read without them).
    """

    outline: Outline
    order: TurnOrder = field(init=False)
    row_of: dict[str, int] = field(init=False)
    exact: ExactRows | None = field(init=False)

    def __post_init__(self) -> None:
        """Convert the ``id`` and ``_rowid`` columns and the vectors once."""
        table = self.outline.table
        ids = table.column("id").to_pylist()
        object.__setattr__(self, "order", TurnOrder(ids))
        object.__setattr__(self, "row_of", dict(zip(ids, table.column("_rowid").to_pylist(), strict=True)))
        vectors = "embedding" in table.column_names
        object.__setattr__(self, "exact", ExactRows.of(table) if vectors else None)


class OutlineMemo:
    """Conversations read at one (branch, version), least recently used dropped first.

    Example:
        >>> memo = OutlineMemo()
        >>> len(memo)
        0
    """

    def __init__(self, max_entries: int = MAX_ENTRIES, max_bytes: int = MAX_BYTES) -> None:
        """Keep at most ``max_entries`` outlines of about ``max_bytes`` in all."""
        self.max_entries, self.max_bytes = max_entries, max_bytes
        self._at: tuple[str, int] | None = None
        self._entries: OrderedDict[Key, tuple[Conversation, int]] = OrderedDict()
        self._total = 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        """Drop every outline kept."""
        with self._lock:
            self._entries.clear()
            self._total = 0

    def get(self, at: tuple[str, int], key: Key, read: Callable[[], Outline]) -> Conversation:
        """The conversation ``key`` names at ``at``, read with ``read`` unless kept.

        Args:
            at: The branch and version the outline is of.
            key: The session, the filter and how many rows are read with vectors.
            read: Reads the outline at ``at`` (outside the lock).
        """
        with self._lock:
            if at != self._at:
                self._entries.clear()
                self._total, self._at = 0, at
            found = self._entries.get(key)
            if found is not None:
                self._entries.move_to_end(key)
                return found[0]
        conversation = Conversation(read())
        size = int(conversation.outline.table.nbytes)
        with self._lock:
            if at == self._at and key not in self._entries and size <= self.max_bytes:
                self._entries[key] = (conversation, size)
                self._total += size
                while len(self._entries) > self.max_entries or self._total > self.max_bytes:
                    self._total -= self._entries.popitem(last=False)[1][1]
        return conversation
