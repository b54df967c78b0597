"""HTTP proxies in front of the moto server, changing what kind of server it plays.

:class:`IgnoringPreconditions` plays an S3-compatible server that ignores
``If-None-Match`` (as some older servers do): every request is forwarded to moto
without its precondition headers, so a second ``PUT`` of an existing key replaces it
instead of failing.

:class:`OneAtATime` forwards one request at a time. moto checks a DynamoDB condition
and then writes the item without a lock, so two concurrent conditional puts of one key
can both succeed (measured: 2 versions of 400 had two winners among 4 racing
writers); real DynamoDB makes each conditional write atomic, and so does this proxy.
"""

from __future__ import annotations

import contextlib
import http.client
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

_DROPPED = frozenset({"if-none-match", "if-match"})
_HOP = {"connection", "keep-alive", "transfer-encoding", "proxy-connection", "host"}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    target_port = 0
    dropped: frozenset[str] = frozenset()
    serial: threading.Lock | None = None

    def log_message(self, format: str, *args: object) -> None:
        """Quiet."""

    def _forward(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        headers = {k: v for k, v in self.headers.items() if k.lower() not in self.dropped | _HOP}
        upstream = http.client.HTTPConnection("127.0.0.1", self.target_port, timeout=30)
        try:
            with self.serial or contextlib.nullcontext():
                upstream.request(self.command, self.path, body=body, headers=headers)
                response = upstream.getresponse()
                data = response.read()
        finally:
            upstream.close()
        self.send_response(response.status, response.reason)
        for key, value in response.getheaders():
            if key.lower() not in _HOP | {"content-length"}:
                self.send_header(key, value)
        # a HEAD answer has no body but the object's length, which clients read as its size
        length = response.getheader("Content-Length") if self.command == "HEAD" else None
        self.send_header("Content-Length", length or str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _forward


class _Proxy:
    """Serve on 127.0.0.1:``port``, forwarding to 127.0.0.1:``target_port``."""

    dropped: frozenset[str] = frozenset()
    serialized = False

    def __init__(self, target_port: int) -> None:
        settings: dict[str, object] = {"target_port": target_port, "dropped": self.dropped}
        if self.serialized:
            settings["serial"] = threading.Lock()
        handler = type("Handler", (_Handler,), settings)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class IgnoringPreconditions(_Proxy):
    """Forwards every request without its precondition headers."""

    dropped = _DROPPED


class OneAtATime(_Proxy):
    """Forwards one request at a time (a DynamoDB whose conditional writes are atomic)."""

    serialized = True
