"""Sending one SMS through Twilio's REST API, and judging what the answer means.

The send goes through twilio-python's own `Client` (`messages.create`), with the sender
(`messaging_service_sid`, else `from_number`) and a status callback URL. The library's API
domain is pointed at `api_base_url` (Twilio's by default; a fake on 127.0.0.1 in tests, or a
Twilio-compatible gateway), whatever the process environment says of Twilio edges and
regions. Timeouts are two: for connecting, and for reading the answer.

Every send ends in one `SmsOutcome`, judged by whether Twilio certainly did not take the
message, since a message resent after Twilio took it reaches the resident twice:
- "accepted": Twilio took it; its Message SID and the segments it counts come back;
- "retry_later": certainly not taken: no connection was made (refused, connect timeout, a TLS
  certificate refused), or Twilio answered with an error of its own: 429 (with its
  Retry-After), a 5xx in Twilio's JSON, or 401 (the account's credentials, not the message);
- "unknown": the request may have reached Twilio and no usable answer came back: a read
  timeout, a connection dropped or reset once made (the client cannot tell whether Twilio had
  read the request: urllib3 reports a reset while sending as one while reading), a 5xx page
  from something in between, an accepted answer that cannot be read. Never resent
  automatically: the status callbacks or Twilio's message log settle it;
- "opted_out": error 21610, the recipient has blocked the sender (never retried);
- "refused": any other 4xx, such as 21211 (not a valid number) or 21614 (not a mobile): the
  message itself will never go; Twilio's error code and message are kept.

Only the outcome's kind and Twilio's error code are logged, never a number or a body. Twilio's
own error message can name the number: it is kept on the outcome for the outbox row, not logged.
"""

from __future__ import annotations

import logging
import ssl
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import timedelta
from email.utils import parsedate_to_datetime
from typing import Any, Literal, Protocol
from urllib.parse import urlsplit

from twilio.base.exceptions import TwilioRestException, TwilioServiceException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client
from urllib3.exceptions import (
    ConnectTimeoutError,
    MaxRetryError,
    NameResolutionError,
    NewConnectionError,
    ReadTimeoutError,
)

DEFAULT_API_BASE_URL = "https://api.twilio.com"
STATUS_CALLBACK_PATH = "/webhooks/twilio/status"
UNSUBSCRIBED_RECIPIENT = 21610
UNAUTHORISED = 401
TOO_MANY_REQUESTS = 429
MAX_RETRY_AFTER_DIGITS = 6
TWILIO_MESSAGE_PREFIX = "Unable to create record: "
"""What twilio-python puts before Twilio's own error message."""
IGNORED_ENVIRONMENT = {"TWILIO_EDGE": "", "TWILIO_REGION": ""}
"""Given to the Client instead of os.environ: an edge or region would rewrite the host of
`api_base_url`. Credentials always come from the settings."""

OutcomeKind = Literal["accepted", "retry_later", "unknown", "opted_out", "refused"]

log = logging.getLogger(__name__)
http_log = logging.getLogger(__name__ + ".http")
"""twilio-python's trace of every request and response (URL, headers: no numbers or bodies),
at INFO, a dozen lines a send: kept to warnings unless an operator lowers this logger's level."""
http_log.setLevel(logging.WARNING)


@dataclass(frozen=True)
class SmsOutcome:
    kind: OutcomeKind
    reason: str
    """Short, and free of numbers and bodies: safe to log and to show an operator."""
    message_sid: str | None = None
    segments: int | None = None
    """As Twilio counts them; None when it reports 0 (through a Messaging Service, until a
    sender is chosen) or nothing."""
    retry_after: timedelta | None = None
    error_code: int | None = None
    """Twilio's error code (21610, 21211, 20429…), when Twilio gave one."""
    error_message: str | None = None
    """Twilio's own words. They can name the number: keep them with the message, never log."""
    http_status: int | None = None


@dataclass(frozen=True)
class TwilioSendSettings:
    account_sid: str
    auth_token: str
    messaging_service_sid: str = ""
    """Used when set; `from_number` otherwise."""
    from_number: str = ""
    status_callback_url: str = ""
    """Empty: Twilio uses the Messaging Service's own callback, if any."""
    api_base_url: str = DEFAULT_API_BASE_URL
    connect_timeout: float = 5.0
    read_timeout: float = 15.0

    def __post_init__(self) -> None:
        for key in ("account_sid", "auth_token"):
            if not getattr(self, key):
                raise ValueError(f"twilio.{key} must be set to send SMS")
        if not self.messaging_service_sid and not self.from_number:
            raise ValueError(
                "twilio.messaging_service_sid or twilio.from_number must be set to send SMS"
            )
        _check_url(self.api_base_url, "twilio.api_base_url")
        if self.status_callback_url:
            _check_url(self.status_callback_url, "the status callback URL")
        if not (self.connect_timeout > 0 and self.read_timeout > 0):
            raise ValueError("the Twilio connect and read timeouts must be over 0 seconds")


def status_callback_url(public_url: str) -> str:
    """Where Twilio reports delivery: `twilio.public_url` + /webhooks/twilio/status."""
    return public_url.rstrip("/") + STATUS_CALLBACK_PATH if public_url else ""


class _Answered(Protocol):
    """What a requests response hook is handed (a `requests.Response`)."""

    headers: Mapping[str, str]


class TwilioSms:
    """One account's SMS sender, safe to share between threads; `close()` when done."""

    def __init__(self, settings: TwilioSendSettings) -> None:
        self.settings = settings
        self._answers = threading.local()
        http_client = TwilioHttpClient(
            request_hooks={"response": [self._remember_answer]}, logger=http_log
        )
        http_client.timeout = (settings.connect_timeout, settings.read_timeout)
        self._client = Client(
            settings.account_sid,
            settings.auth_token,
            http_client=http_client,
            environment=IGNORED_ENVIRONMENT,
            user_agent_extensions=["dibot"],
        )
        self._client.api.base_url = settings.api_base_url.rstrip("/")

    def __enter__(self) -> TwilioSms:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        session = self._client.http_client.session
        if session is not None:
            session.close()

    def send(self, to: str, body: str) -> SmsOutcome:
        """Send `body` to `to` (E.164); never raises for what Twilio or the network does."""
        self._answers.last = None
        try:
            message = self._client.messages.create(to=to, body=body, **self._sender_params())
        except (TwilioRestException, TwilioServiceException) as error:
            outcome = judge_refusal(*_refusal(error), self._last_headers())
        except OSError as error:  # requests' exceptions, connection failures among them
            outcome = judge_network_failure(error, self.settings.read_timeout)
        except ValueError:  # a 2xx whose body is not JSON
            outcome = SmsOutcome("unknown", "Twilio's answer to the send could not be read")
        else:
            outcome = _accepted(message.sid, message.num_segments)
        _log(outcome)
        return outcome

    def _sender_params(self) -> dict[str, str]:
        settings = self.settings
        params = (
            {"messaging_service_sid": settings.messaging_service_sid}
            if settings.messaging_service_sid
            else {"from_": settings.from_number}
        )
        if settings.status_callback_url:
            params["status_callback"] = settings.status_callback_url
        return params

    def _remember_answer(self, response: _Answered, **_: Any) -> None:
        """A requests response hook: Twilio's exceptions drop the headers (Retry-After)."""
        self._answers.last = response.headers

    def _last_headers(self) -> Mapping[str, str]:
        headers: Mapping[str, str] | None = getattr(self._answers, "last", None)
        return headers if headers is not None else {}


def _accepted(sid: object, num_segments: object) -> SmsOutcome:
    if not isinstance(sid, str) or not sid:
        return SmsOutcome("unknown", "Twilio accepted the send but gave no Message SID")
    segments = _int(num_segments)
    return SmsOutcome("accepted", "accepted by Twilio", message_sid=sid, segments=segments or None)


def judge_refusal(
    status: int, code: int | None, message: str | None, headers: Mapping[str, str]
) -> SmsOutcome:
    """Twilio (or something in front of it) answered `status`; see the module docstring."""
    from_twilio = _is_json(headers)
    code = code if from_twilio else None
    details: dict[str, Any] = {
        "error_code": code,
        "error_message": message if from_twilio else None,
        "http_status": status,
    }
    said = f"HTTP {status}" + (f", error {code}" if code is not None else "")
    if code == UNSUBSCRIBED_RECIPIENT:
        return SmsOutcome("opted_out", f"the recipient has opted out ({said})", **details)
    if status == TOO_MANY_REQUESTS:
        wait = retry_after(headers)
        return SmsOutcome(
            "retry_later", f"Twilio is limiting the rate ({said})", retry_after=wait, **details
        )
    if status == UNAUTHORISED:
        return SmsOutcome(
            "retry_later",
            f"Twilio refused the account's credentials ({said}): "
            "check twilio.account_sid and twilio.auth_token",
            **details,
        )
    if 500 <= status < 600 and from_twilio:
        wait = retry_after(headers)
        return SmsOutcome(
            "retry_later", f"Twilio had an error of its own ({said})", retry_after=wait, **details
        )
    if 500 <= status < 600:
        return SmsOutcome(
            "unknown",
            f"{said} from something in front of Twilio: it may have passed the send on",
            **details,
        )
    if 400 <= status < 500:
        return SmsOutcome("refused", f"Twilio refused the message ({said})", **details)
    return SmsOutcome("unknown", f"an answer that is neither success nor error ({said})", **details)


def judge_network_failure(error: BaseException, read_timeout: float) -> SmsOutcome:
    """No answer came: "retry_later" only when no connection was ever made."""
    causes = list(_causes(error))
    if any(isinstance(cause, ConnectTimeoutError) for cause in causes):
        return SmsOutcome(
            "retry_later", f"could not connect to Twilio ({_connect_problem(causes)})"
        )
    if any(isinstance(cause, ssl.SSLCertVerificationError) for cause in causes):
        return SmsOutcome("retry_later", "Twilio's TLS certificate was not accepted")
    if any(isinstance(cause, ReadTimeoutError | TimeoutError) for cause in causes):
        return SmsOutcome(
            "unknown", f"no answer from Twilio in {read_timeout:g} s: it may have taken it"
        )
    return SmsOutcome(
        "unknown", "the connection to Twilio failed once made: it may have taken the send"
    )


def _connect_problem(causes: list[BaseException]) -> str:
    """urllib3's NewConnectionError (refused, no such host) is a ConnectTimeoutError too."""
    if any(isinstance(cause, NameResolutionError) for cause in causes):
        return "no such host"
    if any(isinstance(cause, ConnectionRefusedError) for cause in causes):
        return "connection refused"
    if any(isinstance(cause, NewConnectionError) for cause in causes):
        return "no connection"
    return "connect timeout"


def retry_after(headers: Mapping[str, str]) -> timedelta | None:
    """Retry-After in seconds, or as a date (counted from the answer's Date)."""
    value = (headers.get("Retry-After") or "").strip()
    if value.isascii() and value.isdigit() and len(value) <= MAX_RETRY_AFTER_DIGITS:
        return timedelta(seconds=int(value))
    try:
        when = parsedate_to_datetime(value)
        sent = parsedate_to_datetime(headers.get("Date") or "")
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None or sent.tzinfo is None:
        return None
    return max(when - sent, timedelta(0))


def _refusal(error: TwilioRestException | TwilioServiceException) -> tuple[int, int | None, str]:
    """(HTTP status, Twilio error code, Twilio's message) from either of the library's errors."""
    status = _int(error.status) or 0
    if isinstance(error, TwilioServiceException):
        words = error.detail or error.title or ""
        return status, _int(error.code), str(words)
    message = str(error.msg or "")
    return status, _int(error.code), message.removeprefix(TWILIO_MESSAGE_PREFIX)


def _causes(error: BaseException) -> Iterator[BaseException]:
    """The error and what it wraps: requests wraps urllib3's errors in its own."""
    seen: set[int] = set()
    waiting: list[BaseException] = [error]
    while waiting:
        cause = waiting.pop()
        if id(cause) in seen:
            continue
        seen.add(id(cause))
        yield cause
        waiting.extend(arg for arg in cause.args if isinstance(arg, BaseException))
        if isinstance(cause, MaxRetryError) and cause.reason is not None:
            waiting.append(cause.reason)
        waiting.extend(link for link in (cause.__cause__, cause.__context__) if link is not None)


def _is_json(headers: Mapping[str, str]) -> bool:
    content_type = (headers.get("Content-Type") or "").split(";")[0].strip().lower()
    return content_type == "application/json" or content_type.endswith("+json")


def _int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isascii() and value.isdigit():
        return int(value)
    return None


def _check_url(url: str, name: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query:
        raise ValueError(f"{name} must be an http(s) URL such as {DEFAULT_API_BASE_URL}")


def _log(outcome: SmsOutcome) -> None:
    level = logging.WARNING if outcome.kind == "unknown" else logging.INFO
    if outcome.error_code is None:
        log.log(level, "SMS send: %s", outcome.kind)
    else:
        log.log(level, "SMS send: %s (Twilio error %d)", outcome.kind, outcome.error_code)
