"""python-telegram-bot's HTTP layer, told apart into "Telegram cannot have it" and "it may".

PTB's `HTTPXRequest` turns every httpx failure into `NetworkError` or `TimedOut`, and httpcore
swallows a failed write to go on and read, so neither the exception nor its httpx cause says
whether the request reached Telegram. `DeliveryRequest` watches each request through httpcore's
`trace` extension (set by an httpx request hook) and raises one of two errors instead:

- `NotDelivered`: Telegram cannot have acted on the request, so sending again is safe:
  - the connection was refused, or never made in time, or no pooled connection came free;
  - the request was not written in full (a partial HTTP request is never acted on);
  - the connection was reset before any byte of an answer: a TCP stack resets a connection
    that is closed with received data still unread, or that it no longer has (a stale
    keep-alive connection), so the server never read the request;
  - Telegram answered with an error of its own: a 5xx (JSON or a gateway's HTML page) other
    than 504, or a 429 that names no `retry_after` (with one, PTB raises `RetryAfter`).
- `MaybeDelivered`: the whole request went out and no usable answer came back: the read timed
  out, the connection was closed in order (or broke off mid-answer), a gateway said 504 (it
  passed the request on and gave up waiting), or a 2xx answer was not Telegram's JSON.

Every other answer (2xx JSON, 400, 401, 403, 404, 409) is left to PTB, which raises its own
errors (`BadRequest`, `Forbidden`, `ChatMigrated`…). `get_updates` keeps a plain request: a
poll may always be repeated.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

import httpx
from telegram.error import NetworkError, TelegramError
from telegram.request import HTTPXRequest

TRACE = "trace"
"""httpcore's request extension: an async callable told of each step of the request."""
CONNECT_FAILURES = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
"""httpx failures that come before any byte of the request is written."""


class NotDelivered(NetworkError):
    """Telegram cannot have acted on the request: safe to send again."""


class MaybeDelivered(NetworkError):
    """The request went out in full and no answer tells what became of it."""


@dataclass
class Progress:
    """How far one request got, from httpcore's trace events (sticky across connections)."""

    written: bool = False
    """The whole request was handed to the connection."""
    answered: bool = False
    """The head of an answer arrived."""

    async def __call__(self, event: str, info: dict[str, Any]) -> None:
        if event.endswith("send_request_body.complete"):
            self.written = True
        elif event.endswith("receive_response_headers.complete"):
            self.answered = True


async def watch(request: httpx.Request) -> None:
    """httpx request hook: follow this request's progress."""
    request.extensions[TRACE] = Progress()


class DeliveryRequest(HTTPXRequest):
    """`HTTPXRequest` that raises `NotDelivered` or `MaybeDelivered` for what fails."""

    def __init__(self, **options: Any) -> None:
        httpx_kwargs = dict(options.pop("httpx_kwargs", None) or {})
        hooks = dict(httpx_kwargs.get("event_hooks") or {})
        hooks["request"] = [*hooks.get("request", ()), watch]
        httpx_kwargs["event_hooks"] = hooks
        super().__init__(**options, httpx_kwargs=httpx_kwargs)

    async def do_request(self, *args: Any, **kwargs: Any) -> tuple[int, bytes]:
        try:
            status, payload = await super().do_request(*args, **kwargs)
        except TelegramError as error:
            raise classify(error) from error.__cause__
        judged = judge_answer(status, payload)
        if judged is not None:
            raise judged
        return status, payload


def classify(error: TelegramError) -> TelegramError:
    """`NotDelivered` or `MaybeDelivered` for a failure of httpx (PTB's error as it was for
    anything else)."""
    cause = error.__cause__
    if not isinstance(cause, httpx.HTTPError):
        return error
    reason = f"httpx.{type(cause).__name__}: {cause}".rstrip(": ")
    if isinstance(cause, CONNECT_FAILURES):
        return NotDelivered(f"{reason} (nothing sent)")
    progress = _progress(cause)
    if progress is None or progress.answered:
        return MaybeDelivered(f"{reason} (sent, no complete answer)")
    if not progress.written:
        return NotDelivered(f"{reason} (the request was not sent in full)")
    if _reset(cause):
        return NotDelivered(f"{reason} (reset before any answer: the request was not read)")
    return MaybeDelivered(f"{reason} (sent, no answer)")


def judge_answer(status: int, payload: bytes) -> TelegramError | None:
    """The error for an answer that PTB would misjudge; None to let PTB read it."""
    body = _json(payload)
    if 200 <= status <= 299:
        if body is None or "result" not in body:
            return MaybeDelivered(f"a {status} answer that is not Telegram's JSON")
        return None
    if _retry_after(body):
        return None  # PTB raises RetryAfter with Telegram's wait
    if status == HTTPStatus.GATEWAY_TIMEOUT:
        return MaybeDelivered(f"{_describe(status, body)} (a gateway passed it on and gave up)")
    if status >= 500 or status == HTTPStatus.TOO_MANY_REQUESTS:
        return NotDelivered(_describe(status, body))
    return None


def _progress(cause: httpx.HTTPError) -> Progress | None:
    try:
        request = cause.request
    except RuntimeError:  # raised outside a request (reading a response's body)
        return None
    progress = request.extensions.get(TRACE)
    return progress if isinstance(progress, Progress) else None


def _reset(error: BaseException) -> bool:
    """Whether a connection reset is at the root of `error`."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        if isinstance(current, ConnectionResetError):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


def _json(payload: bytes) -> dict[str, Any] | None:
    try:
        body = json.loads(payload.decode("utf-8", "replace"))
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def _retry_after(body: dict[str, Any] | None) -> bool:
    parameters = (body or {}).get("parameters")
    return isinstance(parameters, dict) and bool(parameters.get("retry_after"))


def _describe(status: int, body: dict[str, Any] | None) -> str:
    description = (body or {}).get("description")
    if isinstance(description, str) and description:
        return f"{status}: {description}"
    try:
        return f"{status}: {HTTPStatus(status).phrase}"
    except ValueError:
        return f"{status}: an error answer"
