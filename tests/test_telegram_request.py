"""Whether Telegram can have a request that failed: decided from how far it got (httpcore's
trace), how the connection ended, and what answer came, never from PTB's exception alone.

The fake Bot API server shows each fault end to end (test_telegram_send.py); here the cases
it cannot stage on demand, such as a request whose write failed part-way, are built by hand.
"""

from __future__ import annotations

import json

import httpx
import pytest
from telegram.error import BadRequest, NetworkError, TelegramError, TimedOut

from channels.telegram_request import (
    TRACE,
    MaybeDelivered,
    NotDelivered,
    Progress,
    classify,
    judge_answer,
)
from channels.telegram_send import judge


def failed(
    cause: type[httpx.TransportError],
    *,
    written: bool = True,
    answered: bool = False,
    root: BaseException | None = None,
    traced: bool = True,
) -> NetworkError:
    """PTB's error for a request that got so far and then failed with `cause`."""
    request = httpx.Request("POST", "http://127.0.0.1/bot123:x/sendMessage")
    if traced:
        request.extensions[TRACE] = Progress(written=written, answered=answered)
    error = cause("", request=request)
    error.__cause__ = root
    wrapped = TimedOut() if issubclass(cause, httpx.TimeoutException) else NetworkError("x")
    wrapped.__cause__ = error
    return wrapped


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        pytest.param(failed(httpx.ConnectError, written=False), NotDelivered, id="refused"),
        pytest.param(failed(httpx.ConnectTimeout, written=False), NotDelivered, id="connect-slow"),
        pytest.param(failed(httpx.PoolTimeout, written=False), NotDelivered, id="no-connection"),
        pytest.param(
            failed(httpx.RemoteProtocolError, written=False), NotDelivered, id="write-broke-off"
        ),
        pytest.param(
            failed(httpx.ReadError, root=ConnectionResetError(104, "reset")),
            NotDelivered,
            id="reset-before-any-answer",
        ),
        pytest.param(failed(httpx.ReadTimeout), MaybeDelivered, id="answer-too-late"),
        pytest.param(failed(httpx.RemoteProtocolError), MaybeDelivered, id="closed-unanswered"),
        pytest.param(failed(httpx.ReadError), MaybeDelivered, id="read-failed-not-reset"),
        pytest.param(
            failed(httpx.ReadError, answered=True, root=ConnectionResetError(104, "reset")),
            MaybeDelivered,
            id="answer-broke-off",
        ),
        pytest.param(failed(httpx.ReadError, traced=False), MaybeDelivered, id="not-watched"),
    ],
)
def test_a_failure_is_not_delivered_only_when_telegram_cannot_have_acted(
    error: NetworkError, expected: type[TelegramError]
) -> None:
    assert type(classify(error)) is expected


def test_a_failure_of_anything_but_httpx_is_left_as_it_was() -> None:
    error = NetworkError("Unknown error in HTTP implementation")
    error.__cause__ = RuntimeError("not initialized")
    assert classify(error) is error


def answer(body: object) -> bytes:
    return json.dumps(body).encode()


OK = answer({"ok": True, "result": {"message_id": 1}})
FLOOD = answer({"ok": False, "error_code": 429, "parameters": {"retry_after": 3}})


@pytest.mark.parametrize(
    ("status", "payload", "expected"),
    [
        pytest.param(200, OK, None, id="accepted"),
        pytest.param(200, b"<html>ok</html>", MaybeDelivered, id="200-html"),
        pytest.param(200, answer({"ok": True}), MaybeDelivered, id="200-no-result"),
        pytest.param(500, answer({"ok": False, "description": "boom"}), NotDelivered, id="500"),
        pytest.param(502, b"<html>Bad Gateway</html>", NotDelivered, id="502-html"),
        pytest.param(503, b"", NotDelivered, id="503-empty"),
        pytest.param(504, b"<html>Gateway Timeout</html>", MaybeDelivered, id="504"),
        pytest.param(429, b"<html>slow down</html>", NotDelivered, id="429-html"),
        pytest.param(429, FLOOD, None, id="429-retry-after-to-ptb"),
        pytest.param(503, FLOOD, None, id="503-retry-after-to-ptb"),
        pytest.param(400, answer({"ok": False, "description": "Bad Request"}), None, id="400"),
        pytest.param(403, answer({"ok": False, "description": "blocked"}), None, id="403"),
    ],
)
def test_an_answer_is_judged_by_its_status_and_whether_it_is_telegrams(
    status: int, payload: bytes, expected: type[TelegramError] | None
) -> None:
    judged = judge_answer(status, payload)
    assert (None if judged is None else type(judged)) is expected


def test_an_html_error_page_is_described_by_its_status() -> None:
    judged = judge_answer(502, b"<html>Bad Gateway</html>")
    assert judged is not None
    assert judged.message == "502: Bad Gateway"


@pytest.mark.parametrize(
    ("error", "verdict"),
    [
        pytest.param(NotDelivered("reset"), "retry", id="not-delivered"),
        pytest.param(MaybeDelivered("no answer"), "unknown", id="maybe-delivered"),
        pytest.param(BadRequest("chat not found"), "failed", id="bad-request"),
        pytest.param(TelegramError("Invalid server response"), "unknown", id="unplaced"),
        pytest.param(NetworkError("Internal Server Error"), "retry", id="ptb-error-answer"),
        pytest.param(failed(httpx.ConnectError), "retry", id="ptb-connect-error"),
        pytest.param(failed(httpx.ReadTimeout), "unknown", id="ptb-read-timeout"),
    ],
)
def test_the_verdict_on_each_error(error: TelegramError, verdict: str) -> None:
    assert judge(error).verdict == verdict
