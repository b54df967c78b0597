"""lance-context: durable, versioned, multimodal memory for AI agents, in one Lance dataset.

Example:
    >>> from lance_context import ContextStore, ContextRecord, HashingEmbedder
    >>> store = ContextStore.open("memory.lance", embedder=HashingEmbedder())  # doctest: +SKIP
    >>> store.add(ContextRecord.from_content("Paris in spring", run_id="trip"))  # doctest: +SKIP
"""

from __future__ import annotations

from ._async import AsyncContextStore
from ._embedders import (
    Embedder,
    HashingEmbedder,
    LangChainEmbedder,
    LlamaIndexEmbedder,
    SentenceTransformerEmbedder,
    as_embedder,
)
from ._encryption import EncryptionPolicy
from ._errors import (
    CommitConflictError,
    EmbedderMismatchError,
    EmbedderUnavailableError,
    EmbeddingError,
    EncryptionError,
    ForkSafetyError,
    InvalidFilterError,
    InvalidRecordError,
    KeyMissingError,
    LanceContextError,
    MergeConflictError,
    NotAContextStoreError,
    PayloadTooLargeError,
    ReadOnlyError,
    ReadOnlyVersionError,
    SchemaVersionError,
    SearchError,
    SearchNotFoundError,
    StorageAccessError,
    StorageUnavailableError,
    StoreError,
    UnsafePayloadError,
    UnsupportedContentError,
    VersionNotFoundError,
    WrongKeyError,
)
from ._forget import ForgetReport
from ._fusion import FusionOptions
from ._mergeplan import MergeConflict, MergePlan, MergeResult, RecordChange, SessionChanges
from ._policies import CachePolicy, CompactionPolicy, IndexPolicy, StoreLimits
from ._recall import RecallOptions
from ._recollect import Recall
from ._records import ContextRecord, Relationship, StateMetadata
from ._replay import Replay, ReplayChange
from ._retention import RetentionPolicy, RetentionReport
from ._review import HitSummary, QueryReview, Review
from ._search import SearchHit
from ._searchlog import LoggedSearch, SearchResults
from ._snapshot import SnapshotReport
from ._store import DEFAULT_EMBEDDER, ContextStore
from ._verify import ForgetVerification
from ._versions import VersionDiff, VersionInfo

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_EMBEDDER",
    "AsyncContextStore",
    "CachePolicy",
    "CommitConflictError",
    "CompactionPolicy",
    "ContextRecord",
    "ContextStore",
    "Embedder",
    "EmbedderMismatchError",
    "EmbedderUnavailableError",
    "EmbeddingError",
    "EncryptionError",
    "EncryptionPolicy",
    "ForgetReport",
    "ForgetVerification",
    "ForkSafetyError",
    "FusionOptions",
    "HashingEmbedder",
    "HitSummary",
    "IndexPolicy",
    "InvalidFilterError",
    "InvalidRecordError",
    "KeyMissingError",
    "LanceContextError",
    "LangChainEmbedder",
    "LlamaIndexEmbedder",
    "LoggedSearch",
    "MergeConflict",
    "MergeConflictError",
    "MergePlan",
    "MergeResult",
    "NotAContextStoreError",
    "PayloadTooLargeError",
    "QueryReview",
    "ReadOnlyError",
    "ReadOnlyVersionError",
    "Recall",
    "RecallOptions",
    "RecordChange",
    "Relationship",
    "Replay",
    "ReplayChange",
    "RetentionPolicy",
    "RetentionReport",
    "Review",
    "SchemaVersionError",
    "SearchError",
    "SearchHit",
    "SearchNotFoundError",
    "SearchResults",
    "SentenceTransformerEmbedder",
    "SessionChanges",
    "SnapshotReport",
    "StateMetadata",
    "StorageAccessError",
    "StorageUnavailableError",
    "StoreError",
    "StoreLimits",
    "UnsafePayloadError",
    "UnsupportedContentError",
    "VersionDiff",
    "VersionInfo",
    "VersionNotFoundError",
    "WrongKeyError",
    "__version__",
    "as_embedder",
]

# Public classes and functions report the public path in reprs, errors and docs (as httpx does).
for _name in __all__:
    _obj = globals()[_name]
    if isinstance(_obj, type) or callable(_obj):
        _obj.__module__ = __name__
del _name, _obj
