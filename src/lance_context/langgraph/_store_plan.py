"""What a store batch must embed before it touches the context store (so async embedders stay async)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from langgraph.store.base import GetOp, ListNamespacesOp, Op, PutOp, SearchOp, validate_op_namespace

from lance_context.adapters import to_matrix

from ._store_records import ItemTexts, Vector, check_put, check_search, texts_for

__all__ = ["BatchPlan", "embed_plan", "plan_batch"]


@dataclass
class BatchPlan:
    """A batch's puts (the last write of each item wins), the texts to embed and the queries."""

    puts: dict[tuple[tuple[str, ...], str], PutOp] = field(default_factory=dict)
    texts: dict[tuple[tuple[str, ...], str], ItemTexts] = field(default_factory=dict)
    queries: dict[str, Vector | None] = field(default_factory=dict)


def plan_batch(ops: Sequence[Op], *, semantic: bool, fields: Sequence[str]) -> BatchPlan:
    """Check every op of a batch (a bad one stops it before anything is embedded or written).

    Args:
        ops: The batch.
        semantic: Whether items are embedded and ``query=`` ranks by similarity.
        fields: The index config's field paths (for puts with ``index=None``).

    Returns:
        The plan: puts by item, the texts of each item to index, the search queries.

    Raises:
        ValueError: An op of a type this store does not know.
    """
    plan = BatchPlan()
    for op in ops:
        validate_op_namespace(op)
        if isinstance(op, PutOp):
            check_put(op)  # every put of the batch, before anything is embedded or written
            plan.puts[(tuple(op.namespace), str(op.key))] = op  # the last write wins
        elif isinstance(op, SearchOp):
            check_search(op)
            if op.query and semantic:
                plan.queries[op.query] = None
        elif not isinstance(op, (GetOp, ListNamespacesOp)):
            raise ValueError(f"Unknown operation type: {type(op).__name__}")
    for ref, op in plan.puts.items():
        if op.value is not None and op.index is not False and semantic:
            paths = list(fields) if op.index is None else list(op.index)
            plan.texts[ref] = ItemTexts(texts_for(op.value, paths))
    return plan


def embed_plan(
    plan: BatchPlan,
    documents: Callable[[list[str]], object],
    query: Callable[[str], object],
    dims: int,
) -> None:
    """Fill in the vectors of a plan's texts and queries (checked to be ``dims`` wide)."""
    who = "the index config's embed"
    texts = [t for entry in plan.texts.values() for _, t in entry.texts]
    vectors = iter(to_matrix(documents(texts), len(texts), dims, who)) if texts else iter(())
    for entry in plan.texts.values():
        entry.vectors = [next(vectors) for _ in entry.texts]
    for text in plan.queries:
        plan.queries[text] = to_matrix([query(text)], 1, dims, who)[0]
