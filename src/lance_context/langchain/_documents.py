"""LangChain documents to context records and back, and filters on their metadata.

A document of collection ``c`` is a record with ``run_id = "langchain.vectors:c"``, ``role =
"document"``, ``id = "langchain.vectors:c/<document id>"`` (collections never share ids),
``text_payload = page_content`` and ``metadata`` exactly as given.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

from langchain_core.documents import Document

from lance_context import ContextRecord, InvalidFilterError, InvalidRecordError
from lance_context.adapters import LANGCHAIN_VECTORS

__all__ = [
    "DOCUMENT_ROLE",
    "batch_inputs",
    "check_kwargs",
    "collection_namespace",
    "listed",
    "metadata_filter",
    "record_id",
    "relevance",
    "to_document",
    "to_record",
]

DOCUMENT_ROLE = "document"
_COLLECTION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def collection_namespace(collection: object) -> str:
    """The run id holding a collection's documents; the name is checked first."""
    if not isinstance(collection, str) or not _COLLECTION.match(collection):
        raise ValueError(
            f"invalid collection {collection!r}: use 1-128 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return LANGCHAIN_VECTORS.run_id(collection)


def record_id(namespace: str, doc_id: object) -> str:
    """The store-wide record id of a document id within a namespace."""
    if not isinstance(doc_id, str):
        raise TypeError(f"document ids must be str, got {type(doc_id).__name__}: {doc_id!r}")
    return f"{namespace}/{doc_id}"


def listed(items: object, what: str) -> list[Any]:
    """``items`` as a list, refusing a bare string (it would be read one character at a time).

    Raises:
        TypeError: ``items`` is a ``str`` or ``bytes``, or not iterable.
    """
    if isinstance(items, (str, bytes)):
        raise TypeError(f"{what} must be a list, got the string {items!r}; wrap one in a list: [{items!r}]")
    if not isinstance(items, Iterable):
        raise TypeError(f"{what} must be a list, got {type(items).__name__}")
    return list(items)


def batch_inputs(
    texts: object, metadatas: object, ids: object
) -> tuple[list[str], list[Any], list[str | None]]:
    """The texts, metadatas and ids of one ``add_texts`` call, checked against each other.

    As in LangChain's ``VectorStore.add_texts`` and ``InMemoryVectorStore``, an empty
    ``metadatas`` or ``ids`` list means none were given, and a ``None`` id asks for a
    new one.

    Raises:
        TypeError: A text that is not a ``str``, an id that is neither ``str`` nor ``None``.
        ValueError: ``metadatas`` or ``ids`` of another length than ``texts``.
    """
    text_list = listed(texts, "texts")
    for text in text_list:
        if not isinstance(text, str):
            raise TypeError(f"texts must be str, got {type(text).__name__}")
    metas = listed(metadatas, "metadatas") if metadatas is not None else []
    if metas and len(metas) != len(text_list):
        raise ValueError(f"got {len(metas)} metadatas for {len(text_list)} texts")
    given = listed(ids, "ids") if ids is not None else []
    if given and len(given) != len(text_list):
        raise ValueError(f"got {len(given)} ids for {len(text_list)} texts")
    for doc_id in given:
        if doc_id is not None and not isinstance(doc_id, str):
            raise TypeError(f"document ids must be str, got {type(doc_id).__name__}: {doc_id!r}")
    return (
        text_list,
        metas or [None] * len(text_list),
        given or [None] * len(text_list),
    )


def exact_metadata(metadata: Mapping[str, Any], what: str) -> str:
    """Document metadata as JSON text, refused unless it comes back exactly as given.

    Raises:
        ValueError: Not JSON, or JSON that reads back otherwise (a tuple as a list, an
            int key as a string).
    """
    for key in metadata:
        if not isinstance(key, str):
            raise ValueError(f"{what}: metadata keys must be str, got {key!r}")
    try:
        text = json.dumps(metadata, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{what}: metadata must be JSON-serializable ({exc})") from exc
    if json.loads(text) != metadata:
        raise ValueError(
            f"{what}: metadata would not come back as given from JSON (tuples come back as lists, "
            "keys as strings); store lists and string keys"
        )
    return text


def to_record(
    namespace: str, doc_id: str, text: str, metadata: Mapping[str, Any] | None, vector: Any
) -> ContextRecord:
    """The record storing one document (``vector``: None lets the store embed it).

    Raises:
        InvalidRecordError: Metadata that would not come back exactly.
    """
    if metadata:
        try:
            exact_metadata(dict(metadata), f"document {doc_id!r}")
        except ValueError as exc:
            raise InvalidRecordError(str(exc)) from None
    return ContextRecord(
        id=record_id(namespace, doc_id),
        run_id=namespace,
        role=DOCUMENT_ROLE,
        text_payload=text,
        metadata=dict(metadata) if metadata else {},
        embedding=vector,
    )


def to_document(namespace: str, record: ContextRecord) -> Document:
    """The LangChain document a record stores, with the caller's id and metadata."""
    return Document(
        id=record.id[len(namespace) + 1 :],
        page_content=record.text_payload or "",
        metadata=record.metadata,
    )


def metadata_filter(filter: Mapping[Any, Any] | None) -> dict[Any, Any] | None:
    """Translate a LangChain ``filter`` on document metadata into a store ``where`` dict.

    Every key names a document metadata key (``"id"`` too, which LangChain documents
    often carry in metadata): ``{"topic": "x"}`` becomes ``{"metadata.topic": "x"}``; a
    tuple key is a nested path. ``$and``/``$or``/``$not`` are translated recursively;
    operators are the core ``where`` operators.
    """
    if filter is None:
        return None
    if callable(filter) and not isinstance(filter, Mapping):
        raise InvalidFilterError(
            "filter must be a dict on metadata keys, such as {'topic': 'x'}: a callable filter "
            "(as InMemoryVectorStore takes) cannot run inside the store's search, which filters "
            "before the top-k"
        )
    if not isinstance(filter, Mapping):
        raise InvalidFilterError(f"filter must be a dict on metadata keys, got {type(filter).__name__}")
    out: dict[Any, Any] = {}
    for key, spec in filter.items():
        if key in ("$and", "$or") and isinstance(spec, (list, tuple)):
            out[key] = [metadata_filter(sub) for sub in spec]
        elif key == "$not" and isinstance(spec, Mapping):
            out[key] = metadata_filter(spec)
        elif isinstance(key, tuple):
            out[("metadata", *key)] = spec
        elif isinstance(key, str) and key and not key.startswith("$"):
            out[f"metadata.{key}"] = spec
        else:
            raise InvalidFilterError(f"invalid filter key {key!r}: name a metadata key, $and, $or or $not")
    return out or None


def check_kwargs(kwargs: Mapping[str, Any], method: str) -> None:
    """Refuse keyword arguments a method does not know (a typo would silently do nothing)."""
    if kwargs:
        raise TypeError(f"LanceVectorStore.{method}() got unexpected arguments: {sorted(kwargs)}")


def relevance(similarity: float) -> float:
    """Relevance in [0, 1] from a cosine similarity: LangChain's ``1 - distance``, clipped."""
    return min(1.0, max(0.0, similarity))
