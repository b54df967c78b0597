"""An HTTP proxy in front of the S3 server that drops conditional-write headers.

It plays an S3-compatible server that ignores ``If-None-Match`` (as some older
servers do): every request is forwarded to moto without its precondition headers, so
a second ``PUT`` of an existing key replaces it instead of failing.
"""

from __future__ import annotations

import http.client
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

_DROPPED = {"if-none-match", "if-match"}
_HOP = {"connection", "keep-alive", "transfer-encoding", "proxy-connection", "host"}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    target_port = 0

    def log_message(self, format: str, *args: object) -> None:
        """Quiet."""

    def _forward(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        headers = {k: v for k, v in self.headers.items() if k.lower() not in _DROPPED | _HOP}
        upstream = http.client.HTTPConnection("127.0.0.1", self.target_port, timeout=30)
        try:
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


class IgnoringPreconditions:
    """Serve on 127.0.0.1:``port``, forwarding to 127.0.0.1:``target_port`` without preconditions."""

    def __init__(self, target_port: int) -> None:
        handler = type("Handler", (_Handler,), {"target_port": target_port})
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
