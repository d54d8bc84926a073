"""A provider's API faked as a real HTTP server on 127.0.0.1, in a thread until `close()`.

The fakes of the Bot API and of Twilio's REST API share this: the server and its thread, the
condition their requests and tests wait on, and the address clients are pointed at. Each fake
keeps its own state (with a `closed` flag, set under the condition when the server closes).
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Generic, Protocol, Self, TypeVar


class _Closable(Protocol):
    closed: bool


StateT = TypeVar("StateT", bound=_Closable)


class LocalServer(Generic[StateT]):
    _state: StateT

    def __init__(self) -> None:
        """Subclasses set their state first: requests may arrive as soon as this returns."""
        self._changed = threading.Condition()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        raise NotImplementedError

    @property
    def origin(self) -> str:
        """http://127.0.0.1:<port>"""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        with self._changed:
            self._state.closed = True
            self._changed.notify_all()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
