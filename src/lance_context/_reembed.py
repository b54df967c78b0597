"""Switching a store to another embedding model, as one new version."""

from __future__ import annotations

from typing import TYPE_CHECKING

import lance
import numpy as np
import numpy.typing as npt
import pyarrow as pa

from ._arrow import vectors_to_array
from ._embedders import Embedder, as_embedder, to_matrix
from ._errors import CommitConflictError, EmbeddingError, LanceContextError
from ._schema import EMBEDDER_KEY, EmbedderInfo, embedding_field
from ._versions import OP_KEY

if TYPE_CHECKING:
    from ._store import ContextStore

__all__ = ["reembed"]

Vector = npt.NDArray[np.float32]
_PROGRESS_MIN_ROWS = 1_000


def _embed_all(
    embedder: Embedder, texts: list[str | None], batch_size: int, progress: bool | None
) -> list[Vector | None]:
    wanted = [i for i, text in enumerate(texts) if text]
    vectors: list[Vector | None] = [None] * len(texts)
    show = progress if progress is not None else len(wanted) >= _PROGRESS_MIN_ROWS
    from tqdm.auto import tqdm

    with tqdm(total=len(wanted), desc="re-embedding", unit="rec", disable=not show) as bar:
        for start in range(0, len(wanted), batch_size):
            chunk = wanted[start : start + batch_size]
            try:
                raw = embedder.embed_texts([texts[i] or "" for i in chunk])
            except LanceContextError:
                raise
            except Exception as exc:
                raise EmbeddingError(
                    f"embedder {embedder.name!r} failed while re-embedding; nothing was written: {exc}"
                ) from exc
            matrix = to_matrix(raw, len(chunk), embedder.dimension, embedder.name)
            for row, i in enumerate(chunk):
                vectors[i] = matrix[row]
            bar.update(len(chunk))
    return vectors


def _with_vectors(table: pa.Table, vectors: list[Vector | None], info: EmbedderInfo) -> pa.Table:
    base = table.drop_columns(["embedding"]) if "embedding" in table.column_names else table
    metadata = dict(base.schema.metadata or {})
    metadata[EMBEDDER_KEY.encode()] = info.to_json().encode()
    column = vectors_to_array(vectors, info.dimension)
    out = base.append_column(embedding_field(info.dimension), column)
    return out.replace_schema_metadata(metadata)


def reembed(
    store: ContextStore, embedder: object, *, batch_size: int = 256, progress: bool | None = None
) -> int:
    """Embed every record's text with ``embedder`` and switch the store to it.

    The data switch is one new version (older versions keep their old vectors); the
    store's indexes are rebuilt after it. Records without text lose their vectors.
    If the embedder fails, nothing is written.

    Returns:
        The version holding the new vectors.
    """
    from ._opening import ensure_indexes

    store._check_writable()
    new = as_embedder(embedder)
    info = EmbedderInfo(new.name, new.dimension)
    handle = store._handle
    with store._write_lock:
        ds = handle.latest()
        read_version = ds.version
        table = ds.to_table()
        vectors = _embed_all(new, table.column("text_payload").to_pylist(), batch_size, progress)
        rebuilt = _with_vectors(table, vectors, info)
        if handle.latest().version != read_version:
            raise CommitConflictError(
                "the store changed while re-embedding; nothing was written: run reembed() again"
            )

        def overwrite(ds: lance.LanceDataset) -> int:
            written = lance.write_dataset(
                rebuilt,
                ds,
                mode="overwrite",
                transaction_properties={OP_KEY: "reembed"},
            )
            handle.replace(written)
            return int(written.version)

        version = handle.write(overwrite, "write the re-embedded records", retry=False)
        handle.write(ensure_indexes, "rebuild indexes")
        store.embedder = new
        store.dimension = new.dimension
        store._recorded_embedder = info
    return version
