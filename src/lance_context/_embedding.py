"""How a store embeds: records on append, queries on search, and the dimension it holds.

One :class:`Embedding` is shared by a store and its views (``at_version``, branches),
so a re-embed or the first caller-made vectors of an embedder-less store are seen by all.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from ._arrow import table_to_records, vectors_to_array
from ._embedders import Embedder, embed_query, to_matrix
from ._encryption import Cipher
from ._errors import EmbeddingError, LanceContextError, SearchError
from ._records import ContextRecord, check_embedding
from ._schema import EmbedderInfo, read_embedder_info

__all__ = ["Embedding", "Vector", "Vectors", "embed_rows", "embeds_as"]

Vector = npt.NDArray[np.float32]
#: One entry per record (None: no vector), or one checked matrix for the whole batch.
Vectors = list[Vector | None] | Vector


class Embedding:
    """The embedder of a store and the dimension of its vectors.

    Attributes:
        embedder: What embeds records without a vector of their own (None: nothing is embedded).
        dimension: The store's vector dimension (None: it holds no vector column yet).
        recorded: The embedder recorded in the store's schema, if any.
    """

    def __init__(
        self, embedder: Embedder | None, dimension: int | None, recorded: EmbedderInfo | None
    ) -> None:
        """Describe how a store embeds."""
        self.embedder = embedder
        self.dimension = dimension
        self.recorded = recorded

    def first_dimension(self, batch: Sequence[ContextRecord]) -> int | None:
        """The dimension a store without vectors takes from this batch's caller-made vectors."""
        if self.dimension is not None:
            return None
        for record in batch:
            if record.embedding is not None:
                return len(check_embedding(record.embedding, -1, record.id, any_size=True))
        return None

    def vectors_for(self, batch: Sequence[ContextRecord]) -> Vectors:
        """Every record's vector: its own, else the embedder's, else None.

        Raises:
            EmbeddingError: A vector of the wrong size or with NaN, or the embedder failed
                (nothing is written).
        """
        if self.dimension is not None:
            matrix = _given_matrix(batch, self.dimension)
            if matrix is not None:
                return matrix  # every record brought a valid vector: nothing to embed
        vectors: list[Vector | None] = []
        for record in batch:
            given = record.embedding
            vectors.append(None if given is None else check_embedding(given, self.dimension, record.id))
        if self.embedder is not None and self.dimension is not None:
            self._embed_missing(self.embedder, batch, vectors)
        return vectors

    @staticmethod
    def _embed_missing(
        embedder: Embedder, batch: Sequence[ContextRecord], vectors: list[Vector | None]
    ) -> None:
        texts = [i for i, r in enumerate(batch) if vectors[i] is None and (r.embed_text or r.text_payload)]
        images_fn = getattr(embedder, "embed_images", None)
        images = [
            i
            for i, r in enumerate(batch)
            if vectors[i] is None
            and not r.text_payload
            and callable(images_fn)
            and r.binary_payload is not None
            and r.content_type.startswith("image/")
        ]
        try:
            if texts:
                out = embedder.embed_texts(
                    [batch[i].embed_text or batch[i].text_payload or "" for i in texts]
                )
                ids = [batch[i].id for i in texts]
                matrix = to_matrix(out, len(texts), embedder.dimension, embedder.name, ids=ids)
                for row, i in enumerate(texts):
                    vectors[i] = matrix[row]
            if images and callable(images_fn):
                out = images_fn([batch[i].content for i in images])
                ids = [batch[i].id for i in images]
                matrix = to_matrix(out, len(images), embedder.dimension, embedder.name, ids=ids)
                for row, i in enumerate(images):
                    vectors[i] = matrix[row]
        except LanceContextError:
            raise
        except Exception as exc:
            raise EmbeddingError(
                f"embedder {embedder.name!r} failed ({type(exc).__name__}: {exc}); nothing was written"
            ) from exc

    def query_vector(self, query: object) -> Vector:
        """The vector to search with: the query itself, or its embedding.

        Raises:
            SearchError: The store holds no vectors, or cannot embed this query.
        """
        if isinstance(query, (list, tuple, np.ndarray)):
            if self.dimension is None:
                raise SearchError("this store holds no vectors yet; use mode='text' or add vectors first")
            return check_embedding(query, self.dimension, "<query>")
        if self.dimension is None:
            raise SearchError("this store holds no vectors; use mode='text' or reembed(embedder)")
        if isinstance(query, str):
            if self.embedder is None:
                raise SearchError(
                    "this store was opened without an embedder, so text cannot be embedded; "
                    "pass a vector, use mode='text', or open the store with its embedder"
                )
            return embed_query(self.embedder, query)
        images = getattr(self.embedder, "embed_images", None)
        if self.embedder is not None and callable(images):
            vector: Vector = to_matrix(images([query]), 1, self.embedder.dimension, self.embedder.name)[0]
            return vector
        raise SearchError(f"cannot search with a {type(query).__name__}: give text or a vector")


def _given_matrix(batch: Sequence[ContextRecord], dimension: int) -> Vector | None:
    """All the batch's vectors as one checked matrix, or None.

    Used when every record brings a float32 vector of the right size (the bulk-load
    case: one check instead of one per record). None sends the batch through the
    per-record path, which converts other inputs and names the record at fault.
    """
    given = [r.embedding for r in batch]
    shape = (dimension,)
    if not all(type(v) is np.ndarray and v.dtype == np.float32 and v.shape == shape for v in given):
        return None
    matrix = np.stack(given)  # type: ignore[arg-type]
    return matrix if bool(np.isfinite(matrix).all()) else None


def embeds_as(embedding: Embedding, schema: pa.Schema) -> bool:
    """Whether the store's embedder makes the vectors of ``schema``'s column (same model and size)."""
    embedder = embedding.embedder
    if embedder is None or "embedding" not in schema.names:
        return False
    recorded = read_embedder_info({k.decode(): v.decode() for k, v in (schema.metadata or {}).items()})
    size = schema.field("embedding").type.list_size
    return recorded is not None and recorded.name == embedder.name and size == embedding.dimension


def embed_rows(embedding: Embedding, table: pa.Table, cipher: Cipher | None) -> pa.Table:
    """``table`` (rows in the store's layout) with its rows that have no vector embedded.

    For records written where there was no vector column (a branch that forked before
    the store had one, merged into a branch that has): with this store's embedder, when
    it is the one ``table``'s schema records, they arrive searchable by vector as an
    append would make them. Unchanged otherwise.
    """
    if (
        not table.num_rows
        or not embeds_as(embedding, table.schema)
        or not table.column("embedding").null_count
    ):
        return table
    field = table.schema.field("embedding")
    records = table_to_records(table, cipher, index_text=True)
    column = vectors_to_array(embedding.vectors_for(records), field.type.list_size)
    # vectors are never sealed: an encrypted table needs only this column replaced
    return table.set_column(table.schema.get_field_index("embedding"), field, column)
