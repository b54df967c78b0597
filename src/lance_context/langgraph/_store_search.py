"""How ``LanceStore.search`` finds items: newest first, or ranked by a query's meaning.

An item is one record (role ``ITEM_ROLE``) holding its value, plus one record per indexed
text (``TEXT_ROLE``). A query ranks the texts and keeps each item's best (max pooling);
items with no indexed text then fill the page, in store order, as ``InMemoryStore``
lists them after its ranked ones.
"""

from __future__ import annotations

from typing import Literal

from langgraph.store.base import SearchOp

from lance_context import ContextRecord, ContextStore, FusionOptions, InvalidFilterError

from ._store_filters import ValueFilter, first_kept
from ._store_records import ITEM_ROLE, TEXT_ROLE, Vector, Where

__all__ = ["Hit", "newest_items", "ranked_items"]

#: An item's record and its score (None: found without a query, or not indexed).
Hit = tuple[ContextRecord, float | None]


def newest_items(store: ContextStore, op: SearchOp, clauses: list[Where], values: ValueFilter) -> list[Hit]:
    """The page ``op`` asks for of the items matching ``clauses`` and ``values``, newest first."""
    where = {"$and": clauses}
    newest = first_kept(
        lambda n: store.records(roles=ITEM_ROLE, where=where, last=n)[::-1],
        values.check,
        op.offset + op.limit,
    )
    return [(r, None) for r in newest[op.offset : op.offset + op.limit]]


def ranked_items(
    store: ContextStore,
    op: SearchOp,
    vector: Vector | None,
    clauses: list[Where],
    values: ValueFilter,
    record: bool,
    fusion: FusionOptions | None = None,
) -> list[Hit]:
    """One page of: items by best-matching text (max pooling), then the unindexed items.

    The pages of a query walk one sequence, so paging with ``offset`` lists every
    item once and then ends. ``InMemoryStore`` instead restarts the unindexed items on
    every page that passes its ranked ones (the same items again, page after page).

    ``record``: whether the store's search log keeps this search (once, however many
    times the texts are read again to fill the page). ``fusion``: rank the texts by the
    store's hybrid search (BM25 and vectors fused so); None ranks by cosine similarity,
    the scores ``InMemoryStore`` gives.
    """
    mode: Literal["vector", "hybrid"] = "vector" if fusion is None else "hybrid"
    wanted = op.offset + op.limit
    fetch = max(2 * wanted, 10)
    where = {"$and": [{"role": {"$in": [ITEM_ROLE, TEXT_ROLE]}}, *clauses]}

    def pooled(k: int, record: bool) -> tuple[int, dict[tuple[str, str], Hit]]:
        hits = store.search(
            op.query, vector=vector, k=k, where=where, record=record, mode=mode, fusion=fusion
        )
        found: dict[tuple[str, str], Hit] = {}
        for hit in hits:
            if values.check is None or values.check(hit.record.metadata["value"]):
                found.setdefault((hit.record.run_id, hit.record.metadata["key"]), (hit.record, hit.score))
        return len(hits), found

    count, items = pooled(fetch, record)
    while len(items) < wanted and count == fetch:  # texts of the same items filled the top k
        fetch *= 2
        count, items = pooled(fetch, False)
    ranked = list(items.values())[op.offset : wanted]
    if len(ranked) < op.limit:  # every ranked item is known: the unindexed ones follow them
        skip = max(op.offset - len(items), 0)
        fill = _unindexed(store, clauses, values, skip + op.limit - len(ranked))[skip:]
        ranked.extend((r, None) for r in fill)
    return ranked


def _unindexed(
    store: ContextStore, clauses: list[Where], values: ValueFilter, room: int
) -> list[ContextRecord]:
    """Up to ``room`` items without indexed text, in store order, that pass the filter."""
    unindexed = {"$and": [{"role": ITEM_ROLE, "text": {"$exists": False}}, *clauses]}
    try:
        return first_kept(lambda n: store.records(where=unindexed, limit=n), values.check, room)[:room]
    except InvalidFilterError:  # an encrypted store seals every text: told apart once opened
        items = store.records(where={"$and": [{"role": ITEM_ROLE}, *clauses]})
        kept = (r for r in items if r.text_payload is None)
        return [r for r in kept if values.check is None or values.check(r.metadata["value"])][:room]
