"""LangChain key-value stores on a shared context store: bytes and documents.

Layout: a store named ``n`` keeps each entry as one record of the session
``langchain.kv:<kind>/n`` (``kind`` is ``bytes`` or ``documents``, so a byte store and a
document store of the same name never read each other's values), with the record id
``langchain.kv:<kind>/n:<key>``. The value is the record's binary payload; records
carry no text, so the store never embeds or full-text indexes them (a docstore holds
whole parent documents that nobody searches by vector).

Every ``mset`` is one commit (a key given twice keeps its last value, as a dict would),
every ``mdelete`` that matches something is one commit, and any bad key or value
refuses the whole batch before anything is written.
"""

from __future__ import annotations

import asyncio
import json
from abc import abstractmethod
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from typing import Any, ClassVar, TypeVar

from langchain_core.documents import Document
from langchain_core.stores import BaseStore

from lance_context import DEFAULT_EMBEDDER, ContextRecord, ContextStore
from lance_context.adapters import LANGCHAIN_KV, async_twin, open_store

from ._documents import exact_metadata
from ._keyspace import KeySpace, check_name

__all__ = ["LanceByteStore", "LanceDocumentStore"]

V = TypeVar("V")

#: Content type of a stored document: ``{"id", "page_content", "metadata"}`` as JSON.
DOCUMENT_JSON = "application/vnd.langchain.document+json"


class _LanceKeyValueStore(BaseStore[str, V]):
    """What both key-value stores share; subclasses say how a value becomes bytes."""

    _kind: ClassVar[str]
    _role: ClassVar[str]
    _content_type: ClassVar[str]

    def __init__(
        self,
        name: str = "default",
        *,
        store: ContextStore | None = None,
        uri: str | None = None,
        storage_options: Mapping[str, str] | None = None,
        embedder: Any = DEFAULT_EMBEDDER,
    ) -> None:
        """Open (or share) a store and bind the key-value store ``name`` of it."""
        self.name = check_name(name, "key-value store")
        self.space = KeySpace(LANGCHAIN_KV, f"{self._kind}/{name}")
        self.store = open_store(
            store, uri, who=type(self).__name__, storage_options=storage_options, embedder=embedder
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, store={self.store!r})"

    @abstractmethod
    def _encode(self, key: str, value: object) -> bytes:
        """The bytes stored for ``value`` (raise TypeError/ValueError naming ``key``)."""

    @abstractmethod
    def _decode(self, data: bytes) -> V:
        """The value stored as ``data``."""

    # ------------------------------------------------------------------ sync
    def mget(self, keys: Sequence[str]) -> list[V | None]:
        """The values of ``keys``, in order; ``None`` for a missing key."""
        ids = self.space.record_ids(keys)
        found = {r.id: r for r in self.store.get_many(ids) if self.space.owns(r)}
        return [None if i not in found else self._decode(found[i].binary_payload or b"") for i in ids]

    def mset(self, key_value_pairs: Sequence[tuple[str, V]]) -> None:
        """Set every pair in one commit; a key given twice keeps its last value.

        Raises:
            TypeError: A key is not a ``str`` or a value has the wrong type (nothing written).
            ValueError: A key or value cannot be stored exactly (nothing written).
        """
        latest: dict[str, bytes] = {}
        for pair in key_value_pairs:
            if not isinstance(pair, (tuple, list)) or len(pair) != 2:
                raise TypeError(f"mset takes (key, value) pairs, got {pair!r}")
            key, value = pair
            latest[self.space.record_id(key)] = self._encode(key, value)
        records = [
            ContextRecord(
                id=record_id,
                run_id=self.space.run_id,
                role=self._role,
                content_type=self._content_type,
                binary_payload=data,
            )
            for record_id, data in latest.items()
        ]
        if records:
            self.store.upsert(records, keep_order=True)  # a key set again keeps its place, as in a dict

    def mdelete(self, keys: Sequence[str]) -> None:
        """Delete ``keys`` in one commit; missing keys are ignored."""
        ids = self.space.record_ids(keys)
        if ids:
            self.store.delete(ids, run_id=self.space.run_id)

    def yield_keys(self, *, prefix: str | None = None) -> Iterator[str]:
        """Every key (starting with ``prefix``, when given), in the order first written."""
        where = self.space.prefix_filter(prefix)  # checked now, not at the first next()
        return self._keys(where)

    def _keys(self, where: dict[str, Any]) -> Iterator[str]:
        start = len(self.space.id_prefix)
        for record_id in self.store.outline(self.space.run_id, where=where).table.column("id").to_pylist():
            yield record_id[start:]  # only ids are read, never the values

    # ------------------------------------------------------------------ async
    amget = async_twin(mget)
    amset = async_twin(mset)
    amdelete = async_twin(mdelete)

    async def ayield_keys(self, *, prefix: str | None = None) -> AsyncIterator[str]:
        """Async :meth:`yield_keys`: the keys are read in a worker thread, then yielded."""
        keys = await asyncio.to_thread(lambda: list(self.yield_keys(prefix=prefix)))
        for key in keys:
            yield key


class LanceByteStore(_LanceKeyValueStore[bytes]):
    """A LangChain ``ByteStore`` (``BaseStore[str, bytes]``) on a lance-context store.

    Use it wherever LangChain takes a byte store: ``CacheBackedEmbeddings``,
    ``MultiVectorRetriever(byte_store=...)``, or ``create_kv_docstore``. Values come
    back byte for byte; each ``mset``/``mdelete`` is one store version.

    Args:
        name: The key-value store (letters, digits, ``.``, ``_``, ``-``); stores of
            different names share nothing.
        store: A shared :class:`~lance_context.ContextStore`.
        uri: Where to open a store, when ``store`` is not given.
        storage_options: Object-store settings for ``uri``.
        embedder: The embedder of a store opened at ``uri`` (the byte store embeds nothing).

    Example:
        >>> kv = LanceByteStore("embeddings-cache", store=store)  # doctest: +SKIP
        >>> kv.mset([("a", b"raw bytes")]); kv.mget(["a", "b"])   # doctest: +SKIP
        [b'raw bytes', None]
    """

    _kind = "bytes"
    _role = "bytes"
    _content_type = "application/octet-stream"

    def _encode(self, key: str, value: object) -> bytes:
        if isinstance(value, (bytes, bytearray, memoryview)):
            return bytes(value)
        raise TypeError(f"LanceByteStore values must be bytes; key {key!r} has a {type(value).__name__}")

    def _decode(self, data: bytes) -> bytes:
        return data


class LanceDocumentStore(_LanceKeyValueStore[Document]):
    """A LangChain document store (``BaseStore[str, Document]``) on a lance-context store.

    The docstore of ``ParentDocumentRetriever`` and ``MultiVectorRetriever``: documents
    come back equal to what was stored (``page_content``, ``metadata``, ``id``).
    Metadata must be JSON (as in the vector store); anything else is refused with
    nothing written.

    Args:
        name: The document store (letters, digits, ``.``, ``_``, ``-``).
        store: A shared :class:`~lance_context.ContextStore`.
        uri: Where to open a store, when ``store`` is not given.
        storage_options: Object-store settings for ``uri``.
        embedder: The embedder of a store opened at ``uri`` (documents here are not embedded).

    Example:
        >>> docstore = LanceDocumentStore("parents", store=store)                # doctest: +SKIP
        >>> retriever = ParentDocumentRetriever(vectorstore=LanceVectorStore(store=store),
        ...     docstore=docstore, child_splitter=RecursiveCharacterTextSplitter(chunk_size=400))
        >>> retriever.add_documents(docs)                                        # doctest: +SKIP
    """

    _kind = "documents"
    _role = "document"
    _content_type = DOCUMENT_JSON

    def _encode(self, key: str, value: object) -> bytes:
        if not isinstance(value, Document):
            raise TypeError(
                f"LanceDocumentStore values must be Documents; key {key!r} has a {type(value).__name__}"
            )
        try:
            exact_metadata(value.metadata, f"document of key {key!r}")
            body = {"id": value.id, "page_content": value.page_content, "metadata": value.metadata}
            text = json.dumps(body, ensure_ascii=False)
        except RecursionError:
            raise ValueError(
                f"the metadata of the document of key {key!r} nests too deeply to store"
            ) from None
        # surrogatepass: text extracted from PDFs can hold lone surrogates; they round-trip
        return text.encode("utf-8", "surrogatepass")

    def _decode(self, data: bytes) -> Document:
        body = json.loads(data.decode("utf-8", "surrogatepass"))
        return Document(id=body["id"], page_content=body["page_content"], metadata=body["metadata"])
