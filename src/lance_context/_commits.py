"""Whether an object store can make concurrent commits safe, checked before a process's first write.

Lance commits version N by writing manifest N only if it does not exist yet
(``PUT`` with ``If-None-Match: *`` on S3; Azure and GCS have the same precondition).
Two writers racing for one version then get one success and one conflict, which
Lance rebases and retries. A server that ignores the precondition (some older
S3-compatible servers) lets the second writer silently replace the first one's
manifest: an acknowledged write is lost. One that refuses it, or a client told not to
use it (``aws_conditional_put=disabled``), makes every commit fail with a raw error.

So before the first write of a process to an object store, :func:`check_commits`
makes Lance race itself once in a scratch dataset under the store
(``<uri>/_lance_context/commit-check-<random>``, removed afterwards): it creates
version 2, then commits version 2 again from version 1 with retries off. A safe store
refuses the second commit; an unsafe one accepts it, and the write is refused with a
message naming the fix. The answer is cached per bucket and endpoint for the process.
``s3+ddb://`` stores commit through DynamoDB (Lance's external commit store) and are
not checked; local stores use the filesystem's own atomic operations.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Mapping
from urllib.parse import urlsplit

import lance
import pyarrow as pa

from ._errors import LanceContextError, StoreError, redact, sanitized, translate_lance_error
from ._storage import is_panic, secret_values

__all__ = ["FIX", "check_commits"]

log = logging.getLogger("lance_context")

#: What to do about a store that cannot make commits safe.
FIX = (
    "Lance needs conditional writes (PUT with If-None-Match) to commit safely when several "
    "writers share a store. Use a store that supports them (AWS S3, Google Cloud Storage, "
    "Azure Blob Storage, Cloudflare R2, a recent MinIO or Ceph), make sure the storage options "
    "do not set aws_conditional_put=disabled, or commit through Lance's external commit store "
    "on DynamoDB: open the store as 's3+ddb://bucket/path?ddbTableName=TABLE'."
)

_CHECKED: set[tuple[str, str, str]] = set()
_LOCK = threading.Lock()
_DISABLING_KEYS = ("aws_conditional_put", "conditional_put")


def _needs_check(uri: str) -> bool:
    scheme = urlsplit(uri).scheme.lower() if "://" in uri else ""
    return scheme not in ("", "file", "file-object-store", "memory", "s3+ddb")


def _location(uri: str, options: Mapping[str, str]) -> tuple[str, str, str]:
    parts = urlsplit(uri)
    endpoint = options.get("aws_endpoint") or options.get("endpoint") or ""
    return (f"{parts.scheme}://{parts.netloc}", endpoint, options.get("aws_conditional_put", ""))


def check_commits(uri: str, storage_options: Mapping[str, str]) -> None:
    """Refuse to write to a store whose object store cannot make concurrent commits safe.

    Runs once per bucket and endpoint in a process; a no-op for local stores.

    Raises:
        StoreError: The store ignores or refuses conditional writes (the message names the fix).
        StorageUnavailableError: The object store did not answer.
    """
    if not _needs_check(uri):
        return
    secrets = secret_values(storage_options)
    shown = redact(uri, secrets)
    for key in _DISABLING_KEYS:
        if str(storage_options.get(key, "")).strip().lower() == "disabled":
            raise StoreError(f"refusing to write to {shown}: the storage options set {key}=disabled. {FIX}")
    where = _location(uri, storage_options)
    with _LOCK:
        if where in _CHECKED:
            return
    _race_once(uri, dict(storage_options), shown, secrets)
    with _LOCK:
        _CHECKED.add(where)


def _race_once(uri: str, options: dict[str, str], shown: str, secrets: tuple[str, ...]) -> None:
    """Commit one version twice in a scratch dataset; the second commit must be refused."""
    scratch = f"{uri.rstrip('/')}/_lance_context/commit-check-{uuid.uuid4().hex}"
    schema = pa.schema([pa.field("x", pa.int8())])
    try:
        created = lance.write_dataset(schema.empty_table(), scratch, storage_options=options)
        lance.LanceDataset.commit(
            created, lance.LanceOperation.Overwrite(schema, []), read_version=int(created.version)
        )
        try:  # on the version just replaced, with retries off: a race for the same manifest
            lance.LanceDataset.commit(
                created,
                lance.LanceOperation.Overwrite(schema, []),
                read_version=int(created.version),
                max_retries=0,
            )
        except OSError as exc:
            if type(exc).__name__ == "CommitConflictError" or "conflict" in str(exc).lower():
                return  # the store refused to replace version 2: commits are safe
            raise
        raise StoreError(
            f"refusing to write to {shown}: its object store accepted a second write of a version "
            f"manifest that already existed, so concurrent writers would silently lose commits. {FIX}"
        )
    except LanceContextError:
        raise
    except (OSError, ValueError, RuntimeError) as exc:
        if "conditional put" in str(exc).lower() or "not yet implemented" in str(exc).lower():
            raise StoreError(
                f"refusing to write to {shown}: its object store does not accept conditional writes "
                f"({redact(str(exc).split(',')[0][:200], secrets)}). {FIX}"
            ) from sanitized(exc, secrets)
        raise translate_lance_error(exc, f"check that {shown} can commit safely", secrets) from sanitized(
            exc, secrets
        )
    except BaseException as exc:
        if not is_panic(exc):
            raise
        raise translate_lance_error(RuntimeError(str(exc)), f"check {shown}", secrets) from None
    finally:
        _drop(scratch, options, secrets)


def _drop(scratch: str, options: dict[str, str], secrets: tuple[str, ...]) -> None:
    try:
        lance.LanceDataset.drop(scratch, storage_options=options, ignore_not_found=True)
    except Exception as exc:  # a leftover scratch dataset is harmless: cleanup and reads ignore it
        log.warning("lance-context: could not remove %s (%s)", redact(scratch, secrets), type(exc).__name__)
