"""Where a store lives: object-store settings, credentials, and whether a location holds a store.

Object stores get bounded timeouts unless the caller sets their own; credentials never
reach messages; a Rust panic from Lance (a ``BaseException``) is recognised so the
store can turn it into an error its callers can catch.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import lance
from lance.file import LanceFileSession

from ._errors import (
    NotAContextStoreError,
    SchemaVersionError,
    StorageUnavailableError,
    redact,
    refused_access,
    sanitized,
    translate_lance_error,
)
from ._namespaces import LAYOUT_KEY, LAYOUT_VERSION
from ._policies import CachePolicy
from ._schema import SCHEMA_VERSION, SCHEMA_VERSION_KEY

__all__ = [
    "check_context_schema",
    "dataset_exists",
    "is_missing",
    "is_panic",
    "probed_dataset",
    "refuse_inside_store",
    "secret_values",
    "shared_session",
    "storage_defaults",
]

_Session: Any = getattr(lance, "Session")  # noqa: B009 - pylance exports it without a type stub
_SESSIONS: OrderedDict[tuple[str, CachePolicy], Any] = OrderedDict()
_SESSIONS_LOCK = threading.Lock()


def shared_session(uri: str, caches: CachePolicy) -> Any:
    """One Lance session (its caches) per store in this process, bounded by ``caches``.

    Every handle on a store (branches, views at a version, adapters opening the same
    URI) shares it: the caches hold one copy, and a new handle starts warm.
    """
    key = (uri, caches)
    with _SESSIONS_LOCK:
        session = _SESSIONS.get(key)
        if session is None:
            session = _Session(
                index_cache_size_bytes=caches.index_bytes, metadata_cache_size_bytes=caches.metadata_bytes
            )
            _SESSIONS[key] = session
            while len(_SESSIONS) > 32:
                _SESSIONS.popitem(last=False)
        _SESSIONS.move_to_end(key)
        return session


#: Datasets the object-store probe of :func:`dataset_exists` opened, for the handle that
#: opens the same store right after it (``ContextStore.open``) to take instead of listing
#: the manifests again: (process, when, session, dataset) by URI and options.
_PROBED: OrderedDict[tuple[str, tuple[tuple[str, str], ...]], tuple[int, float, Any, lance.LanceDataset]]
_PROBED = OrderedDict()
#: A probe not taken within this many seconds was not made for an open; it is dropped.
_PROBE_LIFETIME = 5.0


def _probe_key(uri: str, options: Mapping[str, str]) -> tuple[str, tuple[tuple[str, str], ...]]:
    return uri, tuple(sorted(options.items()))


def probed_dataset(uri: str, options: Mapping[str, str], session: Any) -> lance.LanceDataset | None:
    """The dataset :func:`dataset_exists` just opened at ``uri`` on ``session``, taken once.

    Its version may be a moment old: the caller looks for newer versions before reading.
    """
    with _SESSIONS_LOCK:
        entry = _PROBED.pop(_probe_key(uri, options), None)
    if entry is None:
        return None
    pid, when, probe_session, ds = entry
    fresh = time.monotonic() - when < _PROBE_LIFETIME
    return ds if fresh and pid == os.getpid() and probe_session is session else None


#: Object-store client settings applied unless the caller gives their own. Lance makes up
#: to about seven requests in a row before a call on a silent endpoint gives up, each
#: waiting ``timeout`` per attempt, so a call fails within ~7 x (retries + 1) x timeout:
#: ~105 s with these (measured: ~725 s with Lance's own, which retry for 180 s per request).
_STORAGE_DEFAULTS = {
    "connect_timeout": "5s",
    "timeout": "5s",
    "client_max_retries": "2",
    "client_retry_timeout": "30",
}


#: Object-store client options Lance reads as durations ("5s", "500ms"); a bare number given
#: for one of them (``timeout=5``) means seconds, as it does for ``client_retry_timeout``.
_DURATION_KEYS = frozenset(
    {
        "timeout",
        "connect_timeout",
        "pool_idle_timeout",
        "http2_keep_alive_interval",
        "http2_keep_alive_timeout",
    }
)


def _is_number(text: str) -> bool:
    try:
        return math.isfinite(float(text)) and float(text) >= 0
    except ValueError:
        return False


def _seconds(text: str) -> float | None:
    units = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
    for unit in ("ms", "s", "m", "h"):
        if text.endswith(unit):
            try:
                return float(text[: -len(unit)]) * units[unit]
            except ValueError:
                return None
    try:
        return float(text)
    except ValueError:
        return None


def storage_defaults(uri: str, options: Mapping[str, str] | None) -> dict[str, str]:
    """The caller's storage options plus bounded timeouts for object stores.

    A caller who sets ``timeout`` but not ``client_max_retries`` gets no client retries,
    so a silent endpoint fails a call within about seven timeouts (14 s at ``2s``).
    """
    given = {str(k): str(v) for k, v in (options or {}).items()}
    if "://" not in uri or uri.startswith("file://"):
        return given
    for key in _DURATION_KEYS & given.keys():
        if _is_number(given[key]):  # Lance refuses a bare number ("failed to parse as Duration")
            given[key] = f"{round(float(given[key]) * 1000)}ms"
    merged = {**_STORAGE_DEFAULTS, **given}
    if "timeout" in given and "client_max_retries" not in given:
        merged["client_max_retries"] = "0"
    timeout = _seconds(merged["timeout"])
    if timeout is not None and "client_retry_timeout" not in given:
        merged["client_retry_timeout"] = str(max(1, min(30, round(5 * timeout))))  # whole seconds
    return merged


_SECRET_KEYS = ("key", "secret", "token", "password", "credential", "session", "sas", "signature")


def secret_values(storage_options: Mapping[str, str] | None) -> tuple[str, ...]:
    """The storage-option values that are credentials (keys naming a key, secret, token...)."""
    return tuple(
        value
        for name, value in (storage_options or {}).items()
        if isinstance(value, str) and any(word in name.lower() for word in _SECRET_KEYS)
    )


def is_panic(exc: BaseException) -> bool:
    """Whether ``exc`` is a Rust panic surfaced by pyo3 (a ``BaseException``, not an ``Exception``)."""
    return type(exc).__name__ == "PanicException"


def is_missing(exc: BaseException) -> bool:
    """Whether Lance says a dataset or version is absent (not that the storage refused access)."""
    if refused_access(exc):
        return False
    text = str(exc).lower()
    return "not found" in text or "does not exist" in text or "no such file" in text


def check_context_schema(ds: lance.LanceDataset, uri: str) -> None:
    """Raise unless ``ds`` is a context store this version of lance-context can read."""
    metadata = ds.schema.metadata or {}
    raw = metadata.get(SCHEMA_VERSION_KEY.encode())
    if raw is None:
        raise NotAContextStoreError(
            f"{uri} is a Lance dataset but not a lance-context store; open a new path to create one"
        )
    if int(raw) > SCHEMA_VERSION:
        raise SchemaVersionError(
            f"{uri} was written by a newer lance-context (schema version {int(raw)}, "
            f"this one reads up to {SCHEMA_VERSION}); upgrade lance-context"
        )
    if int(raw) < SCHEMA_VERSION:
        raise SchemaVersionError(
            f"{uri} was written by a development build of lance-context (schema version {int(raw)}, "
            f"without the indexed-text columns of version {SCHEMA_VERSION}); read its records with "
            "that build and add them to a new store"
        )
    layout = int(metadata.get(LAYOUT_KEY.encode(), b"1"))
    if layout > LAYOUT_VERSION:
        raise SchemaVersionError(
            f"{uri} lays out adapter sessions as a newer lance-context does (layout {layout}, "
            f"this one knows up to {LAYOUT_VERSION}); upgrade lance-context"
        )
    if layout < LAYOUT_VERSION:
        raise SchemaVersionError(
            f"{uri} was written by a development build of lance-context that kept adapter "
            f"sessions without namespaces (layout {layout}); read its records with that build "
            "and add them to a new store"
        )


#: What Lance writes before the first manifest: a creation killed before its commit
#: leaves only these, and creating the store again over them is safe.
_LANCE_LEFTOVERS = frozenset({"data", "_transactions", "_versions", "_indices", "_deletions"})


def _has_manifest(folder: str) -> bool:
    """Whether ``folder`` holds a manifest, stopping at the first (a grown store has thousands)."""
    with os.scandir(folder) as entries:
        return any(entry.name.endswith(".manifest") for entry in entries)


def refuse_inside_store(uri: str) -> None:
    """Before creating a local store: refuse a folder inside another store's root.

    The outer store counts every file under its root as its own: ``forget()`` would
    delete the inner store's files as leftovers of forgotten versions.

    Raises:
        NotAContextStoreError: A parent folder of ``uri`` is a store.
    """
    if "://" in uri and not uri.startswith("file://"):
        return  # an object store: the outer store's file listings leave nested stores out
    path = os.path.abspath(uri.removeprefix("file://"))
    parent = os.path.dirname(path)
    while parent != path:
        versions = os.path.join(parent, "_versions")
        if os.path.isdir(versions) and _has_manifest(versions):
            raise NotAContextStoreError(
                f"{uri} is inside the store at {parent}, which treats every file under its folder "
                "as its own; choose a location outside it"
            )
        path, parent = parent, os.path.dirname(parent)


def dataset_exists(uri: str, storage_options: Mapping[str, str] | None) -> bool:
    """Whether a Lance dataset exists at ``uri``; raise if the path holds something else."""
    if "://" not in uri or uri.startswith("file://"):
        path = uri.removeprefix("file://")
        if not os.path.exists(path):
            return False
        if not os.path.isdir(path):
            raise NotAContextStoreError(f"{uri} is a file, not a lance-context store")
        versions = os.path.join(path, "_versions")
        if os.path.isdir(versions) and _has_manifest(versions):
            return True
        if set(os.listdir(path)) - _LANCE_LEFTOVERS:
            raise NotAContextStoreError(f"{uri} is a non-empty folder that is not a lance-context store")
        return False  # empty, or what a creation killed before its first commit left behind
    options = storage_defaults(uri, storage_options)
    secrets = secret_values(options)
    session = shared_session(uri, CachePolicy())
    try:
        ds = lance.dataset(uri, storage_options=options or None, session=session)
    except (OSError, ValueError, RuntimeError) as exc:
        if is_missing(exc):
            _refuse_occupied(uri, options, secrets)
            return False
        raise translate_lance_error(exc, f"open {redact(uri, secrets)}", secrets) from sanitized(exc, secrets)
    except BaseException as exc:
        if not is_panic(exc):
            raise
        raise StorageUnavailableError(
            f"could not open {redact(uri, secrets)}: Lance rejected the storage settings "
            f"({redact(str(exc)[:200], secrets)}); check the endpoint URL and options"
        ) from sanitized(exc, secrets)
    with _SESSIONS_LOCK:
        _PROBED[_probe_key(uri, options)] = (os.getpid(), time.monotonic(), session, ds)
        while len(_PROBED) > 8:
            _PROBED.popitem(last=False)
    return True


#: What may sit under an object-store prefix without a manifest: what a creation killed before
#: its first commit leaves, plus the commit check's scratch datasets (``_commits``).
_OBJECT_STORE_LEFTOVERS = _LANCE_LEFTOVERS | {"_lance_context"}


def _listable(uri: str) -> tuple[str, str, str] | None:
    """``uri`` as a plain object-store location (no query), its parent and its last name."""
    parts = urlsplit(uri)
    scheme = "s3" if parts.scheme.lower() == "s3+ddb" else parts.scheme.lower()
    if scheme in ("", "file", "file-object-store", "memory"):
        return None
    path = parts.path.strip("/")
    base = f"{scheme}://{parts.netloc}"
    if not path:
        return base, "", ""
    parent, _, name = path.rpartition("/")
    return f"{base}/{path}", f"{base}/{parent}" if parent else base, name


def _refuse_occupied(uri: str, options: Mapping[str, str], secrets: tuple[str, ...]) -> None:
    """Refuse to create a store where an object store already holds other objects.

    Lance found no manifest at ``uri``; a local folder holding other files is refused the
    same way by :func:`dataset_exists`. On an object store a prefix "exists" only through
    its objects, so the objects under it (one listing level) and an object named exactly
    ``uri`` are looked for: creating a store over either would mix it with someone else's data.
    """
    where = _listable(uri)
    if where is None:
        return
    location, parent, name = where
    shown = redact(uri, secrets)
    given = dict(options) or None
    try:
        listing = LanceFileSession(location, storage_options=given).list_with_delimiter()
        is_object = bool(name) and LanceFileSession(parent, storage_options=given).contains(name)
    except (OSError, ValueError, RuntimeError) as exc:
        raise translate_lance_error(exc, f"open {shown}", secrets) from sanitized(exc, secrets)
    if is_object:
        raise NotAContextStoreError(f"{shown} is an object, not a lance-context store")
    others = sorted(set(listing.common_prefixes) - _OBJECT_STORE_LEFTOVERS) + sorted(listing.objects)
    if others:
        raise NotAContextStoreError(
            f"{shown} holds other objects ({', '.join(others[:3])}{', ...' if len(others) > 3 else ''}) "
            "and is not a lance-context store; open a new prefix to create one"
        )
