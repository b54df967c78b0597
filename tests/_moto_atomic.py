"""Run moto's server with conditional writes made atomic, as S3 and DynamoDB make them.

moto checks a write's condition and then writes without a lock: an S3 ``PUT`` with
``If-None-Match: *`` looks the key up and only later stores the object, and a DynamoDB
conditional ``PutItem`` evaluates its condition before storing the item. Two
such requests handled at the same time can then both succeed (measured on moto 5.2:
2 of 400 versions had two winners among four DynamoDB writers racing for each). Lance
commits a version with exactly these writes, so two writers could both claim one
version and the later manifest would replace the earlier: a lost commit that the real
services never allow. Here every conditional request and every DynamoDB request is
handled one at a time; everything else stays concurrent.

Usage (what ``tests.conftest.MotoServer`` runs): ``python tests/_moto_atomic.py -H 127.0.0.1 -p PORT``.
"""

from __future__ import annotations

import io
import sys
import threading
from pathlib import Path
from typing import Any

# Run as a script, this file's folder would come first on the import path, and its
# subpackages are named like real packages (``ray``, ``langchain``).
_HERE = Path(__file__).resolve().parent
sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != _HERE]

from moto import backends  # noqa: E402
from moto.moto_server.werkzeug_app import DomainDispatcherApplication  # noqa: E402
from moto.server import main  # noqa: E402

# moto lists its own package folder (a stat of every entry) for every request, under a
# lock all requests share: about a fifth of its time when several stores write at once.
# The folder does not change while the server runs, so it is read once.
_MODULES = tuple(backends.list_of_moto_modules())
backends.list_of_moto_modules = lambda: _MODULES  # type: ignore[assignment]

_ONE_AT_A_TIME = threading.Lock()
_CONDITIONS = ("HTTP_IF_NONE_MATCH", "HTTP_IF_MATCH", "HTTP_X_AMZ_COPY_SOURCE_IF_NONE_MATCH")
_dispatch = DomainDispatcherApplication.__call__


def _conditional(environ: dict[str, Any]) -> bool:
    if str(environ.get("HTTP_X_AMZ_TARGET", "")).startswith("DynamoDB"):
        return True
    return environ.get("REQUEST_METHOD") != "GET" and any(environ.get(name) for name in _CONDITIONS)


def _body(environ: dict[str, Any]) -> bytes:
    stream, length = environ["wsgi.input"], environ.get("CONTENT_LENGTH")
    if length:
        return bytes(stream.read(int(length)))
    if environ.get("wsgi.input_terminated"):  # chunked: the server ends the stream
        return bytes(stream.read())
    return b""  # no length and no end: reading would wait for the client to hang up


def _atomic_dispatch(self: DomainDispatcherApplication, environ: dict[str, Any], start_response: Any) -> Any:
    if not _conditional(environ):
        return _dispatch(self, environ, start_response)
    # The body is read before the lock: a client that stalls while sending it holds up
    # only its own request, not every other conditional write.
    environ["wsgi.input"] = io.BytesIO(_body(environ))
    with _ONE_AT_A_TIME:
        return _dispatch(self, environ, start_response)


DomainDispatcherApplication.__call__ = _atomic_dispatch  # type: ignore[method-assign]

if __name__ == "__main__":
    main()
