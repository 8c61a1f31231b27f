"""Servers that misbehave on purpose, for the fetch deadline tests and the benchmark.

Each is a real TCP server on 127.0.0.1 run by threads of the test process,
bounded in every way: a lifetime after which it closes everything by itself
(so a hanging client cannot hang the test run), a cap on connections, daemon
threads. They say what they saw (connections accepted, how many are still
held open by a client), so a test can tell a fetch that gave up from one
still hanging.

``SlowLoris``
    Answers ``200`` with a large ``Content-Length`` at once, then sends the
    body one byte every ``interval`` seconds: no per-read timeout ever fires,
    only a total deadline ends the fetch.
``Silent``
    Accepts every connection and reads the request, never sends a byte.
``FixedAnswer``
    Answers every request with a redirect to a URL the test sets, or with a
    small body (status 200, or another); counts requests (to prove a refused fetch never arrived).
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator

LIFETIME_S = 120.0
MAX_CONNECTIONS = 64


class _Server:
    """A listening socket on 127.0.0.1 and a thread per connection, until ``stop()``."""

    def __init__(self, lifetime_s: float = LIFETIME_S) -> None:
        self.lifetime_s = lifetime_s
        self.stopped = threading.Event()
        self.accepted = 0
        self.open = 0
        self.connected = threading.Event()  # set at the first accepted connection
        self.requests: list[bytes] = []
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0), backlog=MAX_CONNECTIONS)
        self._listener.settimeout(0.1)
        self.port = self._listener.getsockname()[1]
        self.base = f"http://127.0.0.1:{self.port}"
        self._threads: list[threading.Thread] = []

    def url(self, path: str = "/x") -> str:
        return f"{self.base}{path}"

    def start(self) -> _Server:
        self._began = time.monotonic()
        self._spawn(self._accept_loop)
        return self

    def stop(self) -> None:
        self.stopped.set()
        for thread in self._threads:
            thread.join(timeout=5)
        self._listener.close()

    def _spawn(self, target, *args) -> None:  # type: ignore[no-untyped-def]
        thread = threading.Thread(target=target, args=args, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _expired(self) -> bool:
        return self.stopped.is_set() or time.monotonic() - self._began > self.lifetime_s

    def _accept_loop(self) -> None:
        while not self._expired():
            try:
                connection, _ = self._listener.accept()
            except TimeoutError:
                continue
            with self._lock:
                if self.accepted >= MAX_CONNECTIONS:
                    connection.close()
                    continue
                self.accepted += 1
                self.open += 1
            self.connected.set()
            self._spawn(self._serve, connection)

    def _serve(self, connection: socket.socket) -> None:
        connection.settimeout(0.2)
        try:
            with connection:
                self.requests.append(self._read_request(connection))
                self.answer(connection)
        except OSError:
            pass  # the client went away: what a fetch that gives up does
        finally:
            with self._lock:
                self.open -= 1

    def _read_request(self, connection: socket.socket) -> bytes:
        data = b""
        while b"\r\n\r\n" not in data and not self._expired():
            try:
                chunk = connection.recv(4096)
            except TimeoutError:
                continue
            if not chunk:
                break
            data += chunk
        return data

    def _still_connected(self, connection: socket.socket) -> bool:
        """False once the client closed its end (a read returns EOF)."""
        try:
            return connection.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) != b""
        except (BlockingIOError, TimeoutError):  # nothing to read: still there
            return True
        except OSError:
            return False

    def answer(self, connection: socket.socket) -> None:
        raise NotImplementedError


class SlowLoris(_Server):
    """Sends a VOTable-typed 200 header, then one body byte every ``interval_s``.

    ``headers_too``: the header itself comes one byte every ``interval_s``.
    """

    HEAD = (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/x-votable+xml\r\n"
        b"Content-Length: 1000000\r\n\r\n<"
    )

    def __init__(
        self, interval_s: float = 0.5, lifetime_s: float = LIFETIME_S, headers_too: bool = False
    ) -> None:
        super().__init__(lifetime_s)
        self.interval_s = interval_s
        self.headers_too = headers_too

    def answer(self, connection: socket.socket) -> None:
        head = iter(self.HEAD) if self.headers_too else iter([])
        if not self.headers_too:
            connection.sendall(self.HEAD)
        while not self._expired() and self._still_connected(connection):
            self.stopped.wait(self.interval_s)
            connection.sendall(bytes([next(head, 32)]))


class Silent(_Server):
    """Reads the request, answers nothing, holds the connection until the client leaves."""

    def answer(self, connection: socket.socket) -> None:
        while not self._expired() and self._still_connected(connection):
            self.stopped.wait(0.1)


class FixedAnswer(_Server):
    """The same answer to every request: ``302`` to ``location`` when set, else ``status``
    with ``body``; counts requests (a refused fetch never arrives)."""

    def __init__(
        self, body: bytes = b"pubdid,label\n", status: str = "200 OK", lifetime_s: float = 60
    ) -> None:
        super().__init__(lifetime_s)
        self.location = ""
        self.body = body
        self.status = status

    def answer(self, connection: socket.socket) -> None:
        if self.location:
            head = f"HTTP/1.1 302 Found\r\nLocation: {self.location}\r\nContent-Length: 0\r\n"
            connection.sendall(f"{head}Connection: close\r\n\r\n".encode())
        else:
            head = f"HTTP/1.1 {self.status}\r\nContent-Length: {len(self.body)}\r\n"
            connection.sendall(f"{head}Connection: close\r\n\r\n".encode() + self.body)


@contextlib.contextmanager
def running(server: _Server) -> Iterator[_Server]:
    server.start()
    try:
        yield server
    finally:
        server.stop()
