"""Every error lance-context raises, under one base.

```
LanceContextError
├── StoreError                      the dataset could not be opened, read or written
│   ├── NotAContextStoreError       the path holds something that is not a context store
│   ├── SchemaVersionError          the store was written by a newer lance-context
│   ├── CommitConflictError         a write kept conflicting with other writers
│   ├── ForkSafetyError             a store handle was used in a forked child process
│   ├── StorageUnavailableError     the object store did not answer in time
│   └── UnsafePayloadError          stored data asks to be read in a way the reader does not allow
├── ReadOnlyError                   a write on a read-only store or view
│   └── ReadOnlyVersionError        a write while a past version is checked out
├── VersionNotFoundError (KeyError) no such version, tag or branch
├── SearchNotFoundError (KeyError)  no logged search with that id
├── MergeConflictError              a record changed on both sides of a merge (nothing written)
├── InvalidRecordError (ValueError) a record that cannot be stored as given
│   ├── UnsupportedContentError     content of a type no codec handles
│   ├── PayloadTooLargeError        content over the per-record size limit
│   └── EmbeddingError              an embedding of the wrong size, NaN or inf
├── InvalidFilterError (ValueError) a filter that cannot be compiled
├── EmbedderMismatchError           the store was built with another embedder
├── EmbedderUnavailableError (ImportError) the embedder's package is missing
├── EncryptionError                 a missing or wrong key, or a sealed payload that does not open
│   ├── KeyMissingError             an encrypted store opened without its key
│   └── WrongKeyError               a key other than the one the store, session or record is sealed with
└── SearchError (ValueError)        a search that cannot run as asked
```

Errors from Lance and pyarrow are translated in one place, `translate_lance_error`,
and re-raised with ``from exc`` so the original stays in the traceback.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._mergeplan import MergeConflict

__all__ = [
    "CommitConflictError",
    "EmbedderMismatchError",
    "EmbedderUnavailableError",
    "EmbeddingError",
    "EncryptionError",
    "ForkSafetyError",
    "InvalidFilterError",
    "InvalidRecordError",
    "KeyMissingError",
    "LanceContextError",
    "MergeConflictError",
    "NotAContextStoreError",
    "PayloadTooLargeError",
    "ReadOnlyError",
    "ReadOnlyVersionError",
    "SchemaVersionError",
    "SearchError",
    "SearchNotFoundError",
    "StorageAccessError",
    "StorageUnavailableError",
    "StoreError",
    "UnsafePayloadError",
    "UnsupportedContentError",
    "VersionNotFoundError",
    "WrongKeyError",
    "redact",
    "refused_access",
    "sanitized",
    "translate_lance_error",
]


class LanceContextError(Exception):
    """Base class of every error raised by lance-context."""


class StoreError(LanceContextError):
    """The underlying Lance dataset could not be opened, read or written."""


class NotAContextStoreError(StoreError):
    """The location holds data that is not a lance-context store."""


class SchemaVersionError(StoreError):
    """The store was written by a newer version of lance-context."""


class CommitConflictError(StoreError):
    """A write could not be committed after bounded retries; nothing of it was applied."""


class ForkSafetyError(StoreError):
    """A store opened before ``fork()`` was used in the child process."""


class StorageUnavailableError(StoreError):
    """The storage backend did not answer (for example an object store that went away)."""


class StorageAccessError(StoreError):
    """The storage refused the request; retrying the same call does not help.

    Missing or wrong credentials, no permission, or a bucket that does not exist.
    """


class UnsafePayloadError(StoreError):
    """A stored payload names a format or type the reader does not allow; it was not read.

    Raised instead of deserializing data that could run code (for example a checkpoint
    stored as ``pickle`` when the saver does not use pickle).
    """


class ReadOnlyError(LanceContextError):
    """A write was attempted on a store opened read-only."""


class ReadOnlyVersionError(ReadOnlyError):
    """A write was attempted while a past version is checked out."""


class VersionNotFoundError(LanceContextError, KeyError):
    """No such version, tag or branch."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable.
        return str(self.args[0]) if self.args else ""


class SearchNotFoundError(LanceContextError, KeyError):
    """No search with that id in the search log."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class MergeConflictError(LanceContextError):
    """A merge found records changed on both sides; nothing was written.

    Attributes:
        conflicts: The conflicting records, each with both sides' versions.
    """

    def __init__(self, message: str, conflicts: Sequence[MergeConflict] = ()) -> None:
        super().__init__(message)
        self.conflicts: list[MergeConflict] = list(conflicts)


class InvalidRecordError(LanceContextError, ValueError):
    """A record that cannot be stored as given. Nothing of its batch was written."""


class UnsupportedContentError(InvalidRecordError, TypeError):
    """Content of a type that no codec handles."""


class PayloadTooLargeError(InvalidRecordError):
    """A record's payload is larger than the store's per-record limit."""


class EmbeddingError(InvalidRecordError):
    """An embedding of the wrong dimension, or one holding NaN or infinity."""


class InvalidFilterError(LanceContextError, ValueError):
    """A filter (``where`` dict, roles, time range) that cannot be compiled."""


class EmbedderMismatchError(LanceContextError, ValueError):
    """The store was built with a different embedder or dimension than the one given."""


class EmbedderUnavailableError(LanceContextError, ImportError):
    """The package an embedder needs is not installed."""


class EncryptionError(LanceContextError):
    """A key is missing or wrong, or a sealed payload does not open; nothing was written.

    Raised before any write on an encrypted store opened without its key (or with a
    key other than the one its records were sealed with), and on reading a record whose
    key this store was not given or whose sealed payload was altered.
    """


class KeyMissingError(EncryptionError):
    """An encrypted store was opened without its key: nothing was written or opened.

    Attributes:
        writing: True when a write was refused, False when a sealed record was read.

    Example:
        >>> try:
        ...     store.add("hello")  # store opened without encryption=...
        ... except KeyMissingError:
        ...     store = ContextStore.open(uri, encryption=EncryptionPolicy(key=key))
    """

    def __init__(self, message: str, *, writing: bool = False) -> None:
        super().__init__(message)
        self.writing = writing


class WrongKeyError(EncryptionError):
    """The key given is not the one the store, a session or a record is sealed with.

    Nothing was written. The attributes name keys by their ids (an HMAC of the key
    that does not reveal it), never the keys.

    Attributes:
        sealed_with: The id of the key the store, session or record is sealed with.
        given: The id of the key given (None when no key for it was given).
        uri: The store's address (for a store-level mismatch), else None.
        run_id: The session (for a session or record mismatch), else None.
        record_id: The record (for a record mismatch), else None.

    Example:
        >>> try:
        ...     ContextStore.open(uri, encryption=EncryptionPolicy(key=old_key))
        ... except WrongKeyError as exc:
        ...     print(exc.sealed_with, exc.given)
    """

    def __init__(
        self,
        message: str,
        *,
        sealed_with: str = "",
        given: str | None = None,
        uri: str | None = None,
        run_id: str | None = None,
        record_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.sealed_with = sealed_with
        self.given = given
        self.uri = uri
        self.run_id = run_id
        self.record_id = record_id


class SearchError(LanceContextError, ValueError):
    """A search that cannot run as asked (no embedder, unknown mode, ...)."""


_SECRET_PATTERN = re.compile(
    r"(?i)((?:secret|password|token|key|credential|session)[\w-]*['\"]?\s*[:=]\s*['\"]?)([^'\",\s}]+)"
)


_URL_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/@\s'\"]+@")


def redact(text: str, secrets: tuple[str, ...] = ()) -> str:
    """Return ``text`` with credentials masked.

    Masks the given secrets, credential-looking ``key=value`` pairs and the user and
    password of URLs (``http://user:pass@host``).
    """
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
    text = _URL_USERINFO.sub(r"\1***@", text)
    return _SECRET_PATTERN.sub(r"\1***", text)


def sanitized(exc: BaseException, secrets: tuple[str, ...] = ()) -> BaseException:
    """``exc``, or a copy whose message has its credentials masked, to chain a translated error to.

    A translated error keeps the original as its cause (``raise ... from``) so tracebacks
    show what Lance said; when that message holds a credential (a URL's password, a
    key), the cause shown is this redacted copy instead.
    """
    text = str(exc)
    clean = redact(text, secrets)
    if clean == text:
        return exc
    copy = RuntimeError(f"{type(exc).__name__}: {clean}")
    copy.__traceback__ = exc.__traceback__
    return copy


_NOT_FOUND_MARKERS = ("not found", "does not exist", "no such file", "notfound")
# An object store refusing the caller: recognised before anything else, as their messages also
# say "does not exist" (an unknown access key) or "retryable" (a token error's body).
_ACCESS_MARKERS = (
    "status code: 403",
    "403 forbidden",
    "accessdenied",
    "access denied",
    "invalidaccesskeyid",
    "signaturedoesnotmatch",
    "access key id you provided does not exist",
    "failed to get aws credentials",
    "credentialsnotloaded",
    "expiredtoken",
    "invalidtoken",
)
_NO_BUCKET_MARKERS = ("nosuchbucket", "bucket does not exist", "the specified bucket does not exist")


def refused_access(exc: BaseException) -> bool:
    """Whether an object store refused the request (credentials, permission or bucket)."""
    text = str(exc).lower()
    return any(m in text for m in _ACCESS_MARKERS + _NO_BUCKET_MARKERS)


# "too many concurrent writers" is Lance giving up its own commit retries; its message also
# says "retry_timeout", so it must be recognised before the outage markers below.
# "incompatible transaction": an append that met a restore or re-embed (an overwrite) committed first
_CONFLICT_MARKERS = (
    "commit conflict",
    "conflict",
    "incompatible transaction",
    "retryable",
    "preempted",
    "too many concurrent writers",
)
_UNAVAILABLE_MARKERS = (
    "connection refused",
    "connect error",
    "error trying to connect",
    "timed out",
    "timeout",
    "dns error",
    "broken pipe",
    "connection reset",
    "io error",
    "generic s3 error",
    "error sending request",
)


_RUST_LOCATION = re.compile(r",?\s*[^\s,]*\.rs:\d+:\d+")


def translate_lance_error(
    exc: BaseException, action: str, secrets: tuple[str, ...] = ()
) -> LanceContextError:
    """Map an exception from Lance or pyarrow to the matching lance-context error.

    Args:
        exc: The exception raised by Lance or pyarrow.
        action: What the store was doing, for the message (``"append 3 records"``).
        secrets: Values (object-store keys) that must never appear in the message.

    Returns:
        The error to raise, with ``raise translated from exc``.
    """
    if isinstance(exc, LanceContextError):
        return exc
    # Lance appends the Rust source location of an error (", /home/.../commit.rs:653:26"): not the user's
    detail = redact(_RUST_LOCATION.sub("", str(exc).split("\n", 1)[0])[:500], secrets)
    lowered = detail.lower()
    everything = str(exc).lower()
    if any(m in everything for m in _NO_BUCKET_MARKERS):
        return StorageAccessError(
            f"could not {action}: the bucket does not exist ({detail}); create it, or check the URI. "
            "Nothing was written."
        )
    if any(m in everything for m in _ACCESS_MARKERS):
        return StorageAccessError(
            f"could not {action}: the storage refused access ({detail}); check the credentials in "
            "storage_options (or the environment) and their permissions. Nothing was written."
        )
    if "resolve region" in everything:  # no region given, none in the environment: no request was sent
        return StorageAccessError(
            f"could not {action}: no region for the bucket ({detail}); give it in storage_options "
            '(for example {"region": "us-east-1"}) or set AWS_REGION. Nothing was written.'
        )
    if any(m in lowered for m in _CONFLICT_MARKERS):
        return CommitConflictError(
            f"could not {action}: it conflicted with another writer ({detail}). "
            "Nothing was written; retry the call."
        )
    if any(m in lowered for m in _UNAVAILABLE_MARKERS):
        return StorageUnavailableError(
            f"could not {action}: the storage did not answer ({detail}). "
            "A write interrupted this way is all or nothing: check whether it landed, then retry."
        )
    if any(m in lowered for m in _NOT_FOUND_MARKERS):
        return VersionNotFoundError(f"could not {action}: {detail}")
    return StoreError(f"could not {action}: {detail}")
