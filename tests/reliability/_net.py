"""TCP forwarders between a store and the S3 server that the tests can make fail.

``StallableLink.stall()`` keeps accepting connections but never answers (a server or
network that hangs, the case only timeouts can end); ``resume()`` forwards again. The
S3 server and its data stay untouched, so "the store works again" is checked against
the same state. ``ReplyLosingLink`` loses the answer to one request the server carried
out (the case where a client cannot know whether its write happened).
"""

from __future__ import annotations

import re
import select
import socket
import threading


class _Link:
    """Forward 127.0.0.1:``port`` to 127.0.0.1:``target_port``, one thread per connection."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self._closed = threading.Event()
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _track(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.append(sock)

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            self._track(client)
            if not self._silent():  # silent: the connection is held open, unanswered
                threading.Thread(target=self._pipe, args=(client,), daemon=True).start()

    def _silent(self) -> bool:
        """Whether connections, open and new, stay open and unanswered."""
        return False

    def _passes(self, from_client: bool, data: bytes, connection: dict[str, bool]) -> bool:
        """Whether ``data`` is forwarded (False closes the connection)."""
        return True

    def _pipe(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
        except OSError:
            client.close()
            return
        self._track(upstream)
        peers = {client: upstream, upstream: client}
        connection: dict[str, bool] = {}
        try:
            while not self._closed.is_set():
                readable, _, _ = select.select(list(peers), [], [], 0.1)
                if self._silent():
                    return  # the sockets stay open and silent
                for sock in readable:
                    data = sock.recv(65536)
                    if not data or not self._passes(sock is client, data, connection):
                        raise ConnectionResetError
                    peers[sock].sendall(data)
        except OSError:
            client.close()
            upstream.close()

    def close(self) -> None:
        self._closed.set()
        self._listener.close()
        self._close_sockets()

    def _close_sockets(self) -> None:
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()


class StallableLink(_Link):
    """Forward 127.0.0.1:``port`` to 127.0.0.1:``target_port`` until told to stall."""

    def __init__(self, target_port: int) -> None:
        self.stalled = threading.Event()
        super().__init__(target_port)

    def _silent(self) -> bool:
        return self.stalled.is_set()

    def stall(self) -> None:
        """From now on nothing gets an answer."""
        self.stalled.set()

    def resume(self) -> None:
        """Drop the silent connections and forward new ones again."""
        self.stalled.clear()
        self._close_sockets()


class ReplyLosingLink(_Link):
    """Forward to 127.0.0.1:``target_port``; once armed, lose the answer to one request.

    The request whose first bytes match ``pattern`` reaches the server and is carried
    out; its answer never reaches the client, whose connection is closed instead (a
    network that fails after the server acted). ``lost`` holds the requests treated so.
    """

    def __init__(self, target_port: int, pattern: bytes) -> None:
        self.pattern = re.compile(pattern)
        self.armed = threading.Event()
        self.lost: list[bytes] = []
        super().__init__(target_port)

    def _passes(self, from_client: bool, data: bytes, connection: dict[str, bool]) -> bool:
        if not from_client:
            return not connection.get("doomed")  # the server acted; the client never hears
        if self.armed.is_set() and (found := self.pattern.search(data)):
            self.armed.clear()
            self.lost.append(found.group(0))
            connection["doomed"] = True
        return True
