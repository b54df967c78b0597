"""The Arrow schema of a context store: the single source of truth for its columns.

A store is one Lance dataset with these columns, in this order:

| column          | type                              | what it holds                                  |
|-----------------|-----------------------------------|------------------------------------------------|
| id              | string, not null                  | the record id, unique in the store             |
| run_id          | string, not null                  | the session / conversation / run it belongs to |
| seq             | int64, not null                   | append order: a hybrid logical clock           |
| created_at      | timestamp[us, UTC], not null      | when the record was made                       |
| role            | string, not null                  | user, assistant, tool, system, ...             |
| content_type    | string, not null                  | MIME type of the payload                       |
| text_payload    | large_string                      | text content (or text extracted for search)    |
| search_text     | large_string                      | what the full-text index holds (default: text) |
| embed_text      | large_string                      | what was embedded, when not the text           |
| binary_payload  | large_binary                      | images, Arrow IPC, raw bytes                   |
| state_metadata  | struct                            | step, active_plan_id, tokens_used, custom JSON |
| metadata        | large_string, not null            | the caller's metadata as exact JSON text       |
| metadata_index  | JSON (Lance JSONB)                | the same metadata, queryable in filters        |
| relationships   | list<struct>                      | GraphRAG edges: target_id, relation, weight    |
| embedding       | fixed_size_list<float32>[dim]     | only when the store has a vector dimension     |

``metadata`` keeps the caller's JSON text byte for byte (key order, big integers);
``metadata_index`` is Lance's JSONB copy used only by filters. ``search_text`` and
``embed_text`` are what an adapter indexes beside the message (a chat turn with its
speaker, time and context); reads never return them, so a message reads back exactly as
written.

Schema-level metadata records the schema version, the adapters' session layout (see
``_namespaces``) and the embedder the store was built with (its name and dimension,
never a secret).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pyarrow as pa

from ._namespaces import LAYOUT_KEY, LAYOUT_VERSION

__all__ = [
    "EMBEDDER_KEY",
    "SCHEMA_VERSION",
    "SCHEMA_VERSION_KEY",
    "EmbedderInfo",
    "build_schema",
    "embedding_dimension",
    "read_embedder_info",
    "with_vectors_of",
]

SCHEMA_VERSION = 2
SCHEMA_VERSION_KEY = "lance_context.schema_version"
EMBEDDER_KEY = "lance_context.embedder"

PRIMARY_KEY = "lance-schema:unenforced-primary-key"

STATE_METADATA_TYPE = pa.struct(
    [
        pa.field("step", pa.int64()),
        pa.field("active_plan_id", pa.string()),
        pa.field("tokens_used", pa.int64()),
        pa.field("custom", pa.large_string()),
    ]
)

RELATIONSHIP_TYPE = pa.struct(
    [
        pa.field("target_id", pa.string(), nullable=False),
        pa.field("relation", pa.string(), nullable=False),
        pa.field("weight", pa.float64()),
    ]
)

BASE_FIELDS: tuple[pa.Field, ...] = (
    # ``id`` is declared the (unenforced) primary key. Lance uses it to detect two concurrent
    # merge inserts of one new id only on its own commit path; the store commits merge inserts
    # itself, so its writer removes such a second copy after the upsert (``Writer._one_copy_each``).
    pa.field("id", pa.string(), nullable=False, metadata={PRIMARY_KEY: "true"}),
    pa.field("run_id", pa.string(), nullable=False),
    pa.field("seq", pa.int64(), nullable=False),
    pa.field("created_at", pa.timestamp("us", tz="UTC"), nullable=False),
    pa.field("role", pa.string(), nullable=False),
    pa.field("content_type", pa.string(), nullable=False),
    pa.field("text_payload", pa.large_string()),
    pa.field("search_text", pa.large_string()),
    pa.field("embed_text", pa.large_string()),
    pa.field("binary_payload", pa.large_binary()),
    pa.field("state_metadata", STATE_METADATA_TYPE),
    pa.field("metadata", pa.large_string(), nullable=False),
    pa.field("metadata_index", pa.json_()),
    pa.field("relationships", pa.list_(RELATIONSHIP_TYPE)),
)

#: Columns read for everything but the vector (cheaper reads where vectors are not needed).
NON_VECTOR_COLUMNS: tuple[str, ...] = tuple(f.name for f in BASE_FIELDS if f.name != "metadata_index")


@dataclass(frozen=True)
class EmbedderInfo:
    """What a store remembers about the embedder it was built with.

    Attributes:
        name: The embedder's stable name, such as ``sentence-transformers/all-MiniLM-L6-v2``.
        dimension: The vector dimension.
    """

    name: str
    dimension: int

    def to_json(self) -> str:
        """Serialize for the schema metadata."""
        return json.dumps({"name": self.name, "dimension": self.dimension})


def embedding_field(dimension: int) -> pa.Field:
    """The ``embedding`` column for vectors of ``dimension`` floats."""
    return pa.field("embedding", pa.list_(pa.float32(), dimension))


def build_schema(
    dimension: int | None, embedder: EmbedderInfo | None, extra: dict[str, str] | None = None
) -> pa.Schema:
    """Build the store schema, with an embedding column when ``dimension`` is known.

    ``extra`` adds schema metadata (the encryption marker of a store created encrypted).
    """
    fields = list(BASE_FIELDS)
    if dimension is not None:
        fields.append(embedding_field(dimension))
    metadata = {**(extra or {}), SCHEMA_VERSION_KEY: str(SCHEMA_VERSION), LAYOUT_KEY: str(LAYOUT_VERSION)}
    if embedder is not None:
        metadata[EMBEDDER_KEY] = embedder.to_json()
    return pa.schema(fields, metadata=metadata)


def embedding_dimension(schema: pa.Schema) -> int | None:
    """The vector dimension of a store schema, or None when it has no vectors."""
    if "embedding" not in schema.names:
        return None
    field_type = schema.field("embedding").type
    return int(field_type.list_size)


def read_embedder_info(schema_metadata: dict[str, str]) -> EmbedderInfo | None:
    """The embedder recorded in a store's schema metadata, if any."""
    raw = schema_metadata.get(EMBEDDER_KEY)
    if not raw:
        return None
    data = json.loads(raw)
    return EmbedderInfo(name=str(data["name"]), dimension=int(data["dimension"]))


def with_vectors_of(schema: pa.Schema, theirs: pa.Schema) -> pa.Schema:
    """``schema`` with ``theirs``' vector column and the embedder ``theirs`` records (for a merge)."""
    dimension = embedding_dimension(theirs)
    assert dimension is not None
    metadata = dict(schema.metadata or {})
    recorded = (theirs.metadata or {}).get(EMBEDDER_KEY.encode())
    if recorded is not None:
        metadata[EMBEDDER_KEY.encode()] = recorded
    return schema.append(embedding_field(dimension)).with_metadata(metadata)
