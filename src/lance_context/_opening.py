"""Opening a store: creating the dataset, choosing and checking the embedder."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import lance

from ._dataset import secret_values
from ._embedders import Embedder, as_embedder
from ._errors import EmbedderMismatchError, translate_lance_error
from ._maintenance import index_names
from ._schema import EmbedderInfo, build_schema
from ._versions import OP_KEY

__all__ = ["DEFAULT_EMBEDDER", "check_embedder", "create_store", "ensure_indexes", "resolve_embedder"]


class _DefaultEmbedder:
    """Sentinel: the store's recorded embedder, or the default model for a new store."""

    def __repr__(self) -> str:
        return "DEFAULT_EMBEDDER"


DEFAULT_EMBEDDER: Any = _DefaultEmbedder()

_INDEXES: tuple[tuple[str, Literal["BITMAP", "BTREE", "INVERTED"]], ...] = (
    ("run_id", "BITMAP"),
    ("id", "BTREE"),
    ("text_payload", "INVERTED"),
)


def resolve_embedder(
    embedder: object, recorded: EmbedderInfo | None, exists: bool
) -> Embedder | None:
    if embedder is DEFAULT_EMBEDDER:
        if not exists:
            from ._embedders import SentenceTransformerEmbedder

            return SentenceTransformerEmbedder()
        if recorded is None:
            return None
        return _rebuild_embedder(recorded)
    if embedder is None:
        return None
    return as_embedder(embedder)


def _rebuild_embedder(info: EmbedderInfo) -> Embedder | None:
    from ._embedders import HashingEmbedder, SentenceTransformerEmbedder

    if info.name.startswith("sentence-transformers/"):
        return SentenceTransformerEmbedder(info.name.removeprefix("sentence-transformers/"))
    if info.name == "hashing":
        return HashingEmbedder(info.dimension)
    return None  # a framework object: the caller must pass it again to embed


def create_store(
    uri: str, storage_options: Mapping[str, str] | None, embedder: Embedder | None, dimension: int | None
) -> None:
    if embedder is not None:
        if dimension is not None and dimension != embedder.dimension:
            raise EmbedderMismatchError(
                f"dimension={dimension} but embedder {embedder.name!r} makes {embedder.dimension}"
            )
        dimension = embedder.dimension
    info = None if embedder is None else EmbedderInfo(embedder.name, embedder.dimension)
    schema = build_schema(dimension, info)
    options = dict(storage_options or {}) or None
    try:
        ds = lance.write_dataset(
            schema.empty_table(),
            uri,
            schema=schema,
            mode="create",
            storage_options=options,
            transaction_properties={OP_KEY: "create"},
        )
        ensure_indexes(ds)
    except (OSError, ValueError, RuntimeError) as exc:
        if "already exists" in str(exc).lower():
            return  # another process created it first: open theirs
        secrets = secret_values(storage_options)
        raise translate_lance_error(exc, f"create a store at {uri}", secrets) from exc


def ensure_indexes(ds: lance.LanceDataset) -> None:
    """Create the scalar and full-text indexes a store relies on, when missing.

    They are created on the empty dataset at creation, so every version has them; this
    also repairs a store whose creating process died before they were committed.
    """
    present = index_names(ds)
    for column, kind in _INDEXES:
        if f"{column}_idx" not in present:
            ds.create_scalar_index(column, kind, name=f"{column}_idx")


def check_embedder(
    embedder: Embedder | None, recorded: EmbedderInfo | None, dimension: int | None, uri: str
) -> None:
    if embedder is None:
        return
    if dimension is None:
        raise EmbedderMismatchError(
            f"{uri} was built without vectors; call reembed(embedder) to add them"
        )
    if embedder.dimension != dimension:
        raise EmbedderMismatchError(
            f"embedder {embedder.name!r} makes {embedder.dimension}-dimensional vectors but "
            f"{uri} holds {dimension}-dimensional ones; open it with the embedder it was built "
            "with or call reembed(embedder) to switch"
        )
    if recorded is not None and recorded.name != embedder.name:
        raise EmbedderMismatchError(
            f"{uri} was built with embedder {recorded.name!r}, not {embedder.name!r}; open it "
            "with that embedder or call reembed(embedder) to switch"
        )
