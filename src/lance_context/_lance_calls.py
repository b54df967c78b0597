"""Running one Lance call for a store handle: conflict retries, error translation, cleanup races.

:func:`call_lance` is the body of ``DatasetHandle.call``: every Lance or pyarrow call of
a store runs through it. :func:`at_latest` opens a version named by the manifests and
falls back to Lance's own latest when cleanup removed that version meanwhile.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import TypeVar

import pyarrow as pa

from ._errors import (
    CommitConflictError,
    LanceContextError,
    StorageUnavailableError,
    redact,
    sanitized,
    translate_lance_error,
)
from ._storage import is_missing, is_panic

__all__ = ["at_latest", "call_lance"]

T = TypeVar("T")


def call_lance(fn: Callable[[], T], action: str, secrets: tuple[str, ...], attempts: int) -> T:
    """Run ``fn``, retrying commit conflicts up to ``attempts`` times in all, translating errors.

    Conflicts wait with jittered, bounded backoff. Anything else Lance or pyarrow raises
    becomes the store's own error (``translate_lance_error``), a Rust panic included: it
    is a ``BaseException`` that would escape every ``except Exception``. ``secrets`` never
    appear in the messages.
    """
    for attempt in range(attempts):
        try:
            return fn()
        except LanceContextError:
            raise
        except (OSError, ValueError, RuntimeError, pa.ArrowException) as exc:
            translated = translate_lance_error(exc, action, secrets)
            # Only conflicts are retried here: Lance's object-store client already
            # retries each request, and retrying an outage again multiplies the wait.
            if isinstance(translated, CommitConflictError) and attempt + 1 < attempts:
                time.sleep(min(2.0, 0.02 * 2**attempt) * (0.5 + random.random()))
                continue
            raise translated from sanitized(exc, secrets)
        except BaseException as exc:
            if not is_panic(exc):
                raise
            detail = redact(str(exc).split("\n", 1)[0][:300], secrets)
            raise StorageUnavailableError(
                f"could not {action}: Lance failed on this store's settings or storage ({detail}); "
                "check the URI and storage options (endpoint, region, credentials)"
            ) from sanitized(exc, secrets)
    raise AssertionError("unreachable")


def at_latest(open_at: Callable[[int | None], T], found: int | None) -> T:
    """``open_at(found)``; ``open_at(None)`` (Lance finds the latest) if it was cleaned up meanwhile."""
    try:
        return open_at(found)
    except (OSError, ValueError, RuntimeError) as exc:
        if found is None or not is_missing(exc):
            raise
        return open_at(None)
