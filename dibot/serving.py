"""`dibot serve`'s workers: no client holds a worker while it is still sending its request.

The rule it keeps: a worker process runs the app for one whole request at a time, exactly as
gunicorn's sync worker does, and only once that request has arrived in full. Until then the
connection waits in the worker's event loop, which reads from every waiting connection at once
and holds each request to a size (`MAX_HEAD_BYTES`, `MAX_BODY_BYTES`) and a time
(`REQUEST_TIMEOUT_SECONDS` from connecting to the last byte of the body). A connection that
sends nothing, half its headers or its body a byte a second costs a socket and a few bytes of
memory, never a worker; when its time is up it gets 408 (or, if it sent nothing, is closed).

Why this, and not the alternatives (see also the README's "Serving"):

- gunicorn's gthread workers: a thread reads the request itself once its first byte arrives,
  so a client sending a byte a second still holds a thread; and threads writing to SQLite were
  measured worse at saturation (p99 150-260 ms against about 30 ms for sync workers). gevent
  or eventlet: a new dependency, and SQLite's busy handler sleeps in C, stalling every
  greenlet in the process.
- waitress: it buffers whole requests, but runs the app on threads in one process: the same
  SQLite contention as gthread, plus a dependency.
- A buffering proxy in front of sync workers (what nginx does): right in shape, but one more
  process and one more hop for every request, on the same CPUs as the workers.

This worker is that buffering front moved inside each sync worker: the app still runs one
request at a time per process (no threads, nothing changes for SQLite's single writer), and the
request it runs has already been read. It is gunicorn's `SyncWorker` with another main loop:
the buffered request goes through the sync worker's own `handle` (parser, WSGI environ,
response, error pages) from memory, through `BufferedRequest`. That leans on gunicorn's
internals, which is why gunicorn is pinned and tests/test_serving.py runs a real server. The
loop also takes over the close after a response: gunicorn's sync worker waits up to 2 s for the
client to close its side; here that wait costs the worker nothing.

A worker accepts a new connection only while it has no whole request waiting to run, so a
request that arrives in one piece (Twilio's, Telegram's, a buffering proxy's) goes to a free
worker as with sync workers. What this cannot do: a request that arrives slowly, in a worker
that meanwhile starts running another, waits for that one to finish even if another worker is
free. Bodies must come with Content-Length (chunked bodies get 411): providers and buffering
proxies send it.

Workers are recycled after `MAX_REQUESTS` requests plus up to `MAX_REQUESTS_JITTER` (so that
they do not all restart at once). A worker that is stopping (SIGTERM, or recycled) accepts no
new connection but still serves the requests it holds that arrive in time, then exits.
"""

from __future__ import annotations

import contextlib
import errno
import os
import resource
import selectors
import socket
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from gunicorn.workers.sync import SyncWorker  # type: ignore[import-untyped]

from dibot.web import MAX_REQUEST_BYTES, SECURITY_HEADERS

REQUEST_TIMEOUT_SECONDS = 10.0
"""From connecting to the last byte of the request. Twilio sends a whole webhook in well under a
second and waits 15 s in all for the answer; a client still sending after this is dropped."""
MAX_HEAD_BYTES = 32 * 1024
"""Request line and headers together (a webhook's are about 1 KB); more gets 431."""
MAX_BODY_BYTES = MAX_REQUEST_BYTES
"""The app's own limit: a larger Content-Length gets 413 before a byte of the body is read."""
MAX_BUFFERED_BYTES = 64 * 1024 * 1024
"""All requests one worker holds while they arrive; a connection that would go past it gets 503.
With MAX_CONNECTIONS, it bounds a worker's memory under a flood of large slow bodies."""
MAX_CONNECTIONS = 1000
"""Connections one worker holds at once (arriving, or closing); beyond it, new ones wait in the
listen queue. Set as gunicorn's `worker_connections`, which the worker reads; lowered to what
the process's file descriptor limit leaves room for."""
SPARE_DESCRIPTORS = 64
"""File descriptors a worker keeps for everything but connections (database, logs, pipes)."""
MAX_REQUESTS = 5000
"""A worker is replaced after this many requests (plus jitter), bounding what a slow leak can
grow to. gunicorn's `max_requests`."""
MAX_REQUESTS_JITTER = 500
"""Each worker's limit is MAX_REQUESTS plus a random 0 to this, so workers restart apart."""
CLOSE_LINGER_SECONDS = 2.0
"""After a response, how long a connection may stay open for the client to close its side
(so the kernel does not reset it and lose the response's end), as gunicorn does."""
CLOSE_LINGER_BYTES = 64 * 1024
"""What a closing connection may still send, discarded, before it is closed regardless."""
RECEIVE_BYTES = 64 * 1024
ACCEPT_BURST = 32
"""Connections accepted in a row before the loop looks at the others again."""
LOOP_SECONDS = 1.0
"""The longest the loop sleeps: it tells the arbiter it is alive at least this often."""

CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
HEAD_END = b"\r\n\r\n"


class Refused(Exception):
    """A request that will not be read to its end: answered with `status` and closed."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(f"{status} {reason}")
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class Framing:
    """Where a request ends, once its head has arrived."""

    head_bytes: int
    """Request line and headers, through the blank line."""
    body_bytes: int
    """Content-Length (0 without one)."""
    expects_continue: bool
    """HTTP/1.1 with `Expect: 100-continue`: the client may wait for 100 Continue."""

    @property
    def request_bytes(self) -> int:
        return self.head_bytes + self.body_bytes


def frame(data: bytes | bytearray, search_from: int = 0) -> Framing | None:
    """How long the request at the start of `data` is, or None while its head is incomplete
    (`search_from`: where the blank line may start, given what was searched before). Raises
    `Refused` for a request that must not be read further. Only framing is checked here;
    gunicorn's parser checks everything else once the request is whole."""
    end = data.find(HEAD_END, max(0, search_from))
    if end < 0:
        if len(data) > MAX_HEAD_BYTES:
            raise Refused(431, "Request Header Fields Too Large")
        return None
    head_bytes = end + len(HEAD_END)
    if head_bytes > MAX_HEAD_BYTES:
        raise Refused(431, "Request Header Fields Too Large")
    lines = bytes(data[:end]).split(b"\r\n")
    lengths: set[bytes] = set()
    expects_continue = False
    for line in lines[1:]:
        name, colon, value = line.partition(b":")
        if not colon:
            continue  # malformed: gunicorn's parser refuses it with 400
        name = name.lower()
        if name == b"content-length":
            lengths.add(value.strip(b" \t"))
        elif name == b"transfer-encoding":
            raise Refused(411, "Length Required")
        elif name == b"expect":
            expects_continue = value.strip(b" \t").lower() == b"100-continue"
    if len(lengths) > 1:
        raise Refused(400, "Bad Request")
    body_bytes = 0
    if lengths:
        (length,) = lengths
        if not length.isdigit() or len(length) > 18:
            raise Refused(400, "Bad Request")
        body_bytes = int(length)
    if body_bytes > MAX_BODY_BYTES:
        raise Refused(413, "Content Too Large")
    http_11 = lines[0].endswith(b" HTTP/1.1")
    return Framing(head_bytes, body_bytes, expects_continue and http_11 and body_bytes > 0)


def refusal(status: int, reason: str) -> bytes:
    """A whole response, closing the connection, with the headers every response carries."""
    body = f"{reason}\n".encode()
    headers = [
        f"HTTP/1.1 {status} {reason}",
        "Connection: close",
        "Content-Type: text/plain; charset=utf-8",
        f"Content-Length: {len(body)}",
        "Cache-Control: no-store",
        *(f"{name}: {value}" for name, value in SECURITY_HEADERS.items()),
    ]
    return ("\r\n".join(headers) + "\r\n\r\n").encode("latin-1") + body


@dataclass(eq=False)
class _Connection:
    """One accepted connection while its request arrives, or while it closes."""

    sock: socket.socket
    addr: Any
    listener: Any
    deadline: float
    data: bytearray = field(default_factory=bytearray)
    framing: Framing | None = None
    continued: bool = False
    closing: bool = False
    discarded: int = 0


class BufferedRequest:
    """What gunicorn's sync handler takes for the client socket: the request is read from
    memory, the response written to the socket (with a bounded timeout), and closing hands the
    socket back to the worker's loop to linger."""

    def __init__(
        self, sock: socket.socket, request: bytes, linger: Any, write_timeout: float
    ) -> None:
        self._sock = sock
        self._request = memoryview(request)
        self._offset = 0
        self._linger = linger
        self._write_timeout = write_timeout
        self.closed = False

    def recv(self, size: int) -> bytes:
        chunk = self._request[self._offset : self._offset + size].tobytes()
        self._offset += len(chunk)
        return chunk

    def send(self, data: bytes) -> int:
        return self._sock.send(data)

    def sendall(self, data: bytes) -> None:
        self._sock.sendall(data)

    def sendfile(self, file: Any, offset: int = 0, count: int | None = None) -> int:
        return self._sock.sendfile(file, offset, count)

    def gettimeout(self) -> float | None:
        return self._sock.gettimeout()

    def settimeout(self, seconds: float | None) -> None:
        # Never unbounded: a client that stops reading cannot hold the worker.
        bounded = self._write_timeout if seconds is None else min(seconds, self._write_timeout)
        self._sock.settimeout(bounded)

    def setblocking(self, flag: bool) -> None:
        self._sock.settimeout(self._write_timeout if flag else 0.0)

    def fileno(self) -> int:
        return self._sock.fileno()

    def getpeername(self) -> Any:
        return self._sock.getpeername()

    def getsockname(self) -> Any:
        return self._sock.getsockname()

    def shutdown(self, how: int) -> None:
        if self.closed:
            raise OSError(errno.EBADF, "closed")
        self._sock.shutdown(how)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._linger(self._sock)


_WAKEUP = object()
_LISTENER = object()


class BufferingWorker(SyncWorker):  # type: ignore[misc]  # gunicorn is untyped
    """gunicorn's sync worker, fed only whole requests by an event loop (see the module)."""

    alive: bool
    """False once the worker is to stop (gunicorn's: SIGTERM, max_requests, a new parent)."""

    def run(self) -> None:
        self._selector = selectors.DefaultSelector()
        self._arriving: dict[_Connection, None] = {}  # in order of deadline (accept time)
        self._closing: dict[_Connection, None] = {}  # in order of deadline
        self._whole: deque[_Connection] = deque()
        self._buffered = 0
        self._listening = False
        self._accept_after = 0.0
        descriptors, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
        self._capacity = self.cfg.worker_connections
        if descriptors != resource.RLIM_INFINITY:
            self._capacity = max(1, min(self._capacity, descriptors - SPARE_DESCRIPTORS))
        self._selector.register(self.PIPE[0], selectors.EVENT_READ, _WAKEUP)
        for listener in self.sockets:
            listener.setblocking(False)
        try:
            self._loop()
        finally:
            for connection in [*self._arriving, *self._closing, *self._whole]:
                connection.sock.close()
            self._selector.close()

    def _loop(self) -> None:
        while self.alive or self._arriving or self._whole or self._closing:
            self.notify()
            if self.alive and not self.is_parent_alive():
                self.alive = False
            self._listen(
                self.alive
                and self._connections() < self._capacity
                and time.monotonic() >= self._accept_after
            )
            timeout = 0.0 if self._whole else self._sleep()
            for key, _ in self._selector.select(timeout):
                if key.data is _WAKEUP:
                    self._drain_wakeups()
                elif key.data is _LISTENER:
                    self._accept(key.fileobj)
                else:
                    self._readable(key.data)
            self._expire(time.monotonic())
            if self._whole:
                self._serve(self._whole.popleft())

    def _connections(self) -> int:
        return len(self._arriving) + len(self._closing) + len(self._whole)

    def _listen(self, on: bool) -> None:
        if on == self._listening:
            return
        for listener in self.sockets:
            if on:
                self._selector.register(listener, selectors.EVENT_READ, _LISTENER)
            else:
                self._selector.unregister(listener)
        self._listening = on

    def _sleep(self) -> float:
        now = time.monotonic()
        deadlines = [
            next(iter(waiting)).deadline for waiting in (self._arriving, self._closing) if waiting
        ]
        limit = min(LOOP_SECONDS, self.timeout or LOOP_SECONDS)
        return max(0.0, min([limit, *(deadline - now for deadline in deadlines)]))

    def _drain_wakeups(self) -> None:
        try:
            while os.read(self.PIPE[0], 4096):
                pass
        except BlockingIOError:
            pass

    def _accept(self, listener: Any) -> None:
        for _ in range(ACCEPT_BURST):
            if self._whole or not self.alive or self._connections() >= self._capacity:
                return
            try:
                sock, addr = listener.accept()
            except OSError as error:
                if error.errno in (errno.EAGAIN, errno.EWOULDBLOCK, errno.ECONNABORTED):
                    return
                if error.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    # Out of descriptors or memory: leave new connections queued for a while.
                    self.log.warning("cannot accept connections for now: %s", error)
                    self._accept_after = time.monotonic() + LOOP_SECONDS
                    return
                raise
            sock.setblocking(False)
            connection = _Connection(
                sock, addr, listener, time.monotonic() + REQUEST_TIMEOUT_SECONDS
            )
            self._arriving[connection] = None
            self._selector.register(sock, selectors.EVENT_READ, connection)
            self._readable(connection)  # usually the whole request is already there

    def _readable(self, connection: _Connection) -> None:
        try:
            chunk = connection.sock.recv(RECEIVE_BYTES)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._close(connection)
            return
        if connection.closing:
            connection.discarded += len(chunk)
            if not chunk or connection.discarded >= CLOSE_LINGER_BYTES:
                self._close(connection)
            return
        if not chunk:  # the client gave up before its request was whole
            self._close(connection)
            return
        if self._buffered + len(chunk) > MAX_BUFFERED_BYTES:
            self._refuse(connection, Refused(503, "Service Unavailable"))
            return
        searched = max(0, len(connection.data) - len(HEAD_END) + 1)
        connection.data += chunk
        self._buffered += len(chunk)
        try:
            if connection.framing is None:
                connection.framing = frame(connection.data, searched)
        except Refused as refused:
            self._refuse(connection, refused)
            return
        framing = connection.framing
        if framing is None:
            return
        if len(connection.data) >= framing.request_bytes:
            self._selector.unregister(connection.sock)
            del self._arriving[connection]
            self._buffered -= len(connection.data) - framing.request_bytes
            del connection.data[framing.request_bytes :]  # nothing after it is read
            self._whole.append(connection)
        elif framing.expects_continue and not connection.continued:
            connection.continued = True
            self._send_quietly(connection.sock, CONTINUE)

    def _expire(self, now: float) -> None:
        for waiting in (self._arriving, self._closing):
            while waiting:
                connection = next(iter(waiting))
                if connection.deadline > now:
                    break
                if connection.closing or not connection.data:
                    self._close(connection)  # an idle connection is simply closed
                else:
                    self._refuse(connection, Refused(408, "Request Timeout"))

    def _refuse(self, connection: _Connection, refused: Refused) -> None:
        # Slow clients time out by the dozen under attack: that is no news at info level.
        report = self.log.debug if refused.status == 408 else self.log.info
        report("refused a request: %s", refused)
        self._selector.unregister(connection.sock)
        del self._arriving[connection]
        self._buffered -= len(connection.data)
        if self._send_quietly(connection.sock, refusal(refused.status, refused.reason)):
            self._linger(connection.sock)
        else:
            connection.sock.close()

    @staticmethod
    def _send_quietly(sock: socket.socket, data: bytes) -> bool:
        """Send what the socket takes now (a short answer fits its buffer); False if it is gone."""
        try:
            sock.send(data)
        except OSError:
            return False
        return True

    def _serve(self, connection: _Connection) -> None:
        self._buffered -= len(connection.data)
        request = BufferedRequest(
            connection.sock, bytes(connection.data), self._linger, REQUEST_TIMEOUT_SECONDS
        )
        connection.sock.settimeout(REQUEST_TIMEOUT_SECONDS)
        try:
            self.handle(connection.listener, request, connection.addr)
        finally:
            if not request.closed:
                connection.sock.close()

    def handle_request(self, listener: Any, req: Any, client: Any, addr: Any) -> None:
        # The body is already here: a 100 Continue now would only follow it.
        req._expected_100_continue = False
        super().handle_request(listener, req, client, addr)

    def _linger(self, sock: socket.socket) -> None:
        """Half-closed: wait (in the loop) for the client to close, discarding what it sends."""
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_WR)
        try:
            sock.setblocking(False)
            connection = _Connection(sock, None, None, time.monotonic() + CLOSE_LINGER_SECONDS)
            connection.closing = True
            self._selector.register(sock, selectors.EVENT_READ, connection)
        except (OSError, ValueError):
            sock.close()
            return
        self._closing[connection] = None

    def _close(self, connection: _Connection) -> None:
        with contextlib.suppress(KeyError, ValueError):
            self._selector.unregister(connection.sock)
        if connection.closing:
            self._closing.pop(connection, None)
        elif connection in self._arriving:
            del self._arriving[connection]
            self._buffered -= len(connection.data)
        connection.sock.close()
