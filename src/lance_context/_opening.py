"""Opening a store: creating the dataset, choosing and checking the embedder.

Opening never loads a model the caller did not choose: a store's schema names the
embedder it was built with, but whoever can write to the store can write that name.
The recorded embedder is used again only when it is available here without any
download (the bundled default model, or the hashing embedder); otherwise the store
opens without embedding and says so.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import lance
import pyarrow as pa

from ._commits import check_commits
from ._embedders import Embedder, as_embedder, bundled_model_available
from ._errors import EmbedderMismatchError, StorageUnavailableError, redact, sanitized, translate_lance_error
from ._schema import EmbedderInfo, build_schema, embedding_dimension, read_embedder_info
from ._storage import is_panic, secret_values, storage_defaults
from ._versions import OP_KEY

__all__ = [
    "DEFAULT_EMBEDDER",
    "RECORDED_EMBEDDER",
    "check_arguments",
    "check_embedder",
    "check_still_embedded_as",
    "create_store",
    "open_store",
    "opened_snapshot",
    "resolve_embedder",
]

if TYPE_CHECKING:
    from ._dataset import DatasetHandle
    from ._embedding import Embedding
    from ._store import ContextStore

log = logging.getLogger("lance_context")


class _DefaultEmbedder:
    """Sentinel: the store's recorded embedder, or the default model for a new store."""

    def __repr__(self) -> str:
        return "DEFAULT_EMBEDDER"


DEFAULT_EMBEDDER: Any = _DefaultEmbedder()


class _RecordedEmbedder:
    """Sentinel: the store's recorded embedder when it exists, no embedder for a new store."""

    def __repr__(self) -> str:
        return "RECORDED_EMBEDDER"


#: For adapters whose framework owns the embedding model: a new store embeds nothing (it
#: takes its dimension from the first vectors); an existing one keeps the embedder it
#: was built with, when that is available here.
RECORDED_EMBEDDER: Any = _RecordedEmbedder()


def resolve_embedder(
    embedder: object, recorded: EmbedderInfo | None, exists: bool, uri: str = "the store"
) -> Embedder | None:
    """The embedder to open with: the caller's, the default for a new store, or the recorded one."""
    if embedder is RECORDED_EMBEDDER:
        embedder = DEFAULT_EMBEDDER if exists else None
    if embedder is DEFAULT_EMBEDDER:
        if not exists:
            from ._embedders import SentenceTransformerEmbedder

            return SentenceTransformerEmbedder()
        if recorded is None:
            return None
        rebuilt = _rebuild_embedder(recorded)
        if rebuilt is None:
            log.warning(
                "lance-context: %s was built with embedder %r, which is not available here without a "
                "download; it is open without embedding (pass embedder= to embed records and queries)",
                uri,
                recorded.name,
            )
        return rebuilt
    if embedder is None:
        return None
    return as_embedder(embedder)


def _rebuild_embedder(info: EmbedderInfo) -> Embedder | None:
    """The recorded embedder, only when it runs here as it is (never a download, never a path)."""
    from ._embedders import HashingEmbedder, SentenceTransformerEmbedder

    if info.name == "hashing":
        return HashingEmbedder(info.dimension)
    default = SentenceTransformerEmbedder()
    if info.name == default.name and info.dimension == default.dimension and bundled_model_available():
        return default
    return None


def check_arguments(where: str, **given: tuple[object, type]) -> None:
    """Refuse an argument of the wrong type before anything is opened or written.

    Args:
        where: The call, for the message (``"ContextStore.open"``).
        **given: Per argument, its value and the type it takes. ``None`` is accepted for
            every type but ``bool`` and ``str``.

    Raises:
        TypeError: Naming the argument, the type it takes and the type it got.
    """
    for name, (value, kind) in given.items():
        if value is None and kind not in (bool, str):
            continue
        if not isinstance(value, kind):
            article = "an" if kind.__name__[0] in "AEIOU" else "a"
            example = "True or False" if kind is bool else f"{article} {kind.__name__}"
            raise TypeError(
                f"{where}({name}=...) takes {example}, got {type(value).__name__} {value!r:.60}; "
                "nothing was opened or written"
            )


def create_store(
    uri: str,
    storage_options: Mapping[str, str] | None,
    embedder: Embedder | None,
    dimension: int | None,
    schema_metadata: dict[str, str] | None = None,
) -> None:
    bad = isinstance(dimension, bool) or not isinstance(dimension, int) or dimension < 1
    if dimension is not None and bad:
        raise EmbedderMismatchError(f"dimension must be a positive integer or None, got {dimension!r}")
    if embedder is not None:
        if dimension is not None and dimension != embedder.dimension:
            raise EmbedderMismatchError(
                f"dimension={dimension} but embedder {embedder.name!r} makes {embedder.dimension}"
            )
        dimension = embedder.dimension
    info = None if embedder is None else EmbedderInfo(embedder.name, embedder.dimension)
    schema = build_schema(dimension, info, schema_metadata)
    options = storage_defaults(uri, storage_options)
    secrets = secret_values(options)
    check_commits(uri, options)
    try:
        lance.write_dataset(
            schema.empty_table(),
            uri,
            schema=schema,
            mode="create",
            storage_options=options or None,
            transaction_properties={OP_KEY: "create"},
        )
    except (OSError, ValueError, RuntimeError) as exc:
        if "already exists" in str(exc).lower():
            return  # another process created it first: open theirs
        raise translate_lance_error(exc, f"create a store at {redact(uri, secrets)}", secrets) from sanitized(
            exc, secrets
        )
    except BaseException as exc:
        if not is_panic(exc):
            raise
        raise StorageUnavailableError(
            f"could not create a store at {redact(uri, secrets)}: Lance rejected the storage settings "
            f"({redact(str(exc)[:200], secrets)}); check the endpoint URL and options"
        ) from sanitized(exc, secrets)


def opened_snapshot(handle: DatasetHandle) -> lance.LanceDataset:
    """The snapshot ``handle`` opened a moment ago, taken without another look for newer versions.

    ``ContextStore.open`` reads the schema it opens with (embedder, dimension, encryption
    marker) from it: on an object store each look costs a LIST, and opening made two
    more than the one that found the store. It is only read while opening: every read,
    search and write after that (and every view or branch of the store) asks for the
    latest version as before.
    """
    return handle.snapshot


def follow_schema(embedding: Embedding, schema: pa.Schema, uri: str) -> None:
    """Make a store's embedding match its latest schema after a restore changed it.

    Restoring a version from before a ``reembed()`` brings back the vectors of the model
    it replaced: the store then embeds with that model when it runs here (as ``open``
    would), and otherwise stops embedding, with a warning, rather than mix vector spaces.
    """
    metadata = {k.decode(): v.decode() for k, v in (schema.metadata or {}).items()}
    dimension, recorded = embedding_dimension(schema), read_embedder_info(metadata)
    if dimension == embedding.dimension and recorded == embedding.recorded:
        return
    embedding.dimension, embedding.recorded = dimension, recorded
    current = embedding.embedder
    if current is None or (
        current.dimension == dimension and (recorded is None or recorded.name == current.name)
    ):
        return
    embedding.embedder = None if recorded is None else _rebuild_embedder(recorded)
    if embedding.embedder is None:
        log.warning(
            "lance-context: %s now holds %s-dimensional vectors from %r, not %r's: it no longer embeds "
            "(reopen it with that embedder, or reembed())",
            uri, dimension, recorded.name if recorded else None, current.name,
        )  # fmt: skip


def check_still_embedded_as(embedding: Embedding, schema: pa.Schema, uri: str) -> None:
    """Refuse a write whose vectors come from another model than the store now holds.

    A store object opened before another object or process ran ``reembed()`` (or restored
    a version from before one) still embeds with the model it opened with: its vectors
    would land in another vector space, or fail to fit the column. Checked on each
    write's snapshot; nothing is written.

    Raises:
        EmbedderMismatchError: The store's vectors are now another dimension or embedder.
    """
    dimension = embedding_dimension(schema)
    if dimension is None or embedding.dimension is None:
        return  # no vectors here, or this object adds the column itself
    metadata = {k.decode(): v.decode() for k, v in (schema.metadata or {}).items()}
    recorded = read_embedder_info(metadata)
    same_model = recorded is None or embedding.recorded is None or recorded == embedding.recorded
    if dimension == embedding.dimension and same_model:
        return
    now = f"{recorded.name!r} ({dimension} dimensions)" if recorded else f"{dimension}-dimensional vectors"
    raise EmbedderMismatchError(
        f"{uri} was re-embedded by another writer and now holds {now}, while this store object "
        f"embeds for {embedding.dimension}-dimensional vectors; nothing was written: open the store "
        "again (with the embedder it now records)"
    )


def check_embedder(
    embedder: Embedder | None, recorded: EmbedderInfo | None, dimension: int | None, uri: str
) -> None:
    if embedder is None:
        return
    if dimension is None:
        raise EmbedderMismatchError(
            f"{uri} was built without vectors; to add them, open it with embedder=None and call "
            "store.reembed(embedder)"
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


def open_store(
    store: Any = None,
    uri: str | None = None,
    *,
    who: str,
    storage_options: Mapping[str, str] | None = None,
    embedder: Any = DEFAULT_EMBEDDER,
    **options: Any,
) -> ContextStore:
    """The store an adapter works on: the open one it was given, or one opened at ``uri``.

    Args:
        store: An open, shared :class:`~lance_context.ContextStore`.
        uri: Where to open (or create) a store when ``store`` is not given.
        who: The adapter's name, for messages.
        storage_options: Object-store settings for ``uri``.
        embedder: The embedder for ``uri`` (see ``ContextStore.open``).
        **options: Other ``ContextStore.open`` options for ``uri``.

    Raises:
        TypeError: Neither or both of ``store`` and ``uri``; ``store`` is not a
            ContextStore; or opening options given with an already open store (it was
            opened with its own).
    """
    from ._store import ContextStore

    if (store is None) == (uri is None):
        raise TypeError(
            f"{who} needs exactly one of store= (an open ContextStore) or uri= (where to open one)"
        )
    if store is not None:
        if not isinstance(store, ContextStore):
            raise TypeError(f"{who}: store must be a lance_context.ContextStore, got {type(store).__name__}")
        given = sorted(options) + (["storage_options"] if storage_options is not None else [])
        given += [] if embedder is DEFAULT_EMBEDDER else ["embedder"]
        if given:
            raise TypeError(
                f"{who}: {', '.join(given)} apply when opening a store by uri=; "
                "the store you passed is already open with its own"
            )
        return store
    return ContextStore.open(str(uri), storage_options=storage_options, embedder=embedder, **options)
