"""Switching a store to another embedding model, as one new version."""

from __future__ import annotations

import functools

import lance
import numpy as np
import numpy.typing as npt
import pyarrow as pa
from lance.fragment import write_fragments

from ._arrow import vectors_to_array
from ._embedders import Embedder, as_embedder, to_matrix
from ._encryption import open_table
from ._errors import CommitConflictError, EmbeddingError, LanceContextError
from ._files import restore_indexes
from ._maintenance import INDEX_NAMES
from ._schema import EMBEDDER_KEY, EmbedderInfo, embedding_field
from ._state import StoreState
from ._versions import OP_KEY

__all__ = ["Reembedder"]

Vector = npt.NDArray[np.float32]
_PROGRESS_MIN_ROWS = 1_000


def _embed_all(
    embedder: Embedder,
    texts: list[str | None],
    batch_size: int,
    progress: bool | None,
    ids: list[str] | None = None,
) -> list[Vector | None]:
    """A vector for each text (None for a record without one); ``ids`` name records in errors."""
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
            named = None if ids is None else [ids[i] for i in chunk]
            matrix = to_matrix(raw, len(chunk), embedder.dimension, embedder.name, ids=named)
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


def _embedded_texts(table: pa.Table) -> list[str | None]:
    """What was embedded for each row: its embed text when it had one, else its text.

    An empty embed text counts as none, as on append (``Embedding.vectors_for``).
    """
    texts = table.column("text_payload").to_pylist()
    hints = table.column("embed_text").to_pylist()
    return [hint or text for hint, text in zip(hints, texts, strict=True)]


class Reembedder:
    """Switches a store to another embedding model."""

    #: Attempts before giving up when other writers keep committing meanwhile.
    attempts = 3

    def __init__(self, state: StoreState) -> None:
        """Re-embed the store ``state`` describes."""
        self._state = state

    def reembed(self, embedder: object, *, batch_size: int = 256, progress: bool | None = None) -> int:
        """Embed every record's text with ``embedder`` and switch the store to it.

        The new vectors land as one version (older versions keep their old vectors) that
        is committed only if no other commit landed since the records were read: a
        record appended meanwhile is read and embedded in the next attempt, never lost.
        Records without text lose their vectors. If the embedder fails, or other writers
        keep committing through every attempt, nothing is written.

        Returns:
            The version holding the new vectors.

        Raises:
            ValueError: ``batch_size`` is not a positive int.
        """
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, not {batch_size!r}")
        state = self._state
        state.check_writable()
        new = as_embedder(embedder)
        info = EmbedderInfo(new.name, new.dimension)
        handle = state.handle
        known: dict[tuple[str, str | None], Vector | None] = {}
        for _ in range(self.attempts):
            base = handle.latest()
            table = handle.call(base.to_table, "read the records to re-embed", retry=False)
            texts = _embedded_texts(open_table(table, state.cipher))  # sealed rows are embedded opened
            keys = list(zip(table.column("id").to_pylist(), texts, strict=True))
            todo = [key for key in dict.fromkeys(keys) if key not in known]
            ids, todo_texts = [key[0] for key in todo], [key[1] for key in todo]
            vectors = _embed_all(new, todo_texts, batch_size, progress, ids)
            known.update(zip(todo, vectors, strict=True))
            rebuilt = _with_vectors(table, [known[key] for key in keys], info)
            try:
                version = handle.call(
                    functools.partial(self._commit, base, rebuilt),
                    "write the re-embedded records",
                    retry=False,
                )
            except CommitConflictError:
                continue  # another writer committed since ``base``: read again, embed only what is new
            state.embedding.embedder = new
            state.embedding.dimension = new.dimension
            state.embedding.recorded = info
            restore_indexes(state, INDEX_NAMES)  # the overwrite has none
            return version
        raise CommitConflictError(
            f"the store changed during each of {self.attempts} re-embedding attempts; nothing was "
            "written: run reembed() again when fewer writers are active"
        )

    def _commit(self, base: lance.LanceDataset, table: pa.Table) -> int:
        fragments = write_fragments(table, base, schema=table.schema, mode="overwrite")
        operation = lance.LanceOperation.Overwrite(table.schema, fragments)
        new = self._state.handle.commit(base, operation, {OP_KEY: "reembed"}, max_retries=0)
        return int(new.version)
