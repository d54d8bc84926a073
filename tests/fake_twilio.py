"""A fake Twilio REST API on 127.0.0.1, for twilio-python's `Client` to send SMS through.

It serves POST /2010-04-01/Accounts/{AccountSid}/Messages.json as Twilio does: HTTP Basic
auth is checked (401, error 20003, otherwise), the account in the path must be the one
authenticated (404, error 20404), `To`, `From` or `MessagingServiceSid`, and `Body` are
required (21604, 21603, 21602), and an accepted message gets 201 with Twilio-shaped JSON: a
sid of "SM" and 32 hex digits, status "queued" and `num_segments` counted with
`flows.segments` when sent from a number, or status "accepted" and `num_segments` "0" through
a Messaging Service, as Twilio reports until it has picked a sender. Every request it reads is
recorded with its form parameters and whether its credentials were right.

A test can make it, for one recipient or for all, `times` times:
- `reset_connection()`: reset the connection (TCP RST) as a request arrives, before reading its
  body; nothing is recorded or taken; `reset_connection(to=number)`: read (and record) a send
  to that number, then reset the connection unanswered; nothing is taken;
- `stall(seconds)`: read, record and take the message, then hold the answer for a while (a
  client with a shorter read timeout never learns that it was taken);
- `hang_up()`: read, record and take the message, then close the connection unanswered;
- `refuse(code)` with Twilio's error JSON: `opt_out(to)` (21610), `invalid_number(to)` (21211),
  `not_mobile(to)` (21614); `rate_limit(retry_after)` (429, 20429, with Retry-After);
  `fail(500)` (20500), or `fail(502, from_twilio=False)`: an HTML page from a gateway.
Faults for one recipient apply before faults for all.

For the delivery-status side, `status_callback(sid, status)` gives the URL, parameters and
`X-Twilio-Signature` Twilio would send for a message it took (signed with the auth token by
twilio's `RequestValidator`), and `post_status_callback` posts them.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import itertools
import json
import re
import socket
import struct
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qsl, urlencode

from twilio.request_validator import RequestValidator

from flows.segments import count_segments
from tests.local_server import LocalServer

ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
AUTH_TOKEN = "fake-twilio-auth-token"
MESSAGING_SERVICE_SID = "MG" + "fedcba9876543210" * 2
SERVICE_SENDER = "+447700900001"
"""The number a Messaging Service picks, as From in its status callbacks."""
MESSAGES_PATH = re.compile(r"/2010-04-01/Accounts/([^/]+)/Messages\.json")
DATE = "Wed, 01 Dec 2027 10:00:00 +0000"
MAX_BODY = 1600
SIGNATURE_HEADER = "X-Twilio-Signature"

OPTED_OUT = (21610, "Attempt to send to unsubscribed recipient")
INVALID_NUMBER = (21211, "The 'To' number {to} is not a valid phone number.")
NOT_MOBILE = (21614, "'To' number {to} is not a valid mobile number")


class _Reset:
    """An answer that is a reset connection."""


RESET = _Reset()


@dataclass(frozen=True)
class Received:
    """One request as the fake read it."""

    method: str
    path: str
    params: Mapping[str, str]
    authorised: bool
    username: str | None


@dataclass(frozen=True)
class Message:
    """A message the fake took."""

    sid: str
    to: str
    body: str
    from_: str | None
    messaging_service_sid: str | None
    status_callback: str | None
    num_segments: int


@dataclass
class _Fault:
    status: int
    code: int
    message: str
    times: int
    retry_after: int | None = None
    from_twilio: bool = True


@dataclass
class _State:
    received: list[Received] = field(default_factory=list)
    messages: list[Message] = field(default_factory=list)
    faults: dict[str | None, list[_Fault]] = field(default_factory=dict)
    stalls: dict[str | None, tuple[float, int]] = field(default_factory=dict)
    hang_ups: dict[str | None, int] = field(default_factory=dict)
    resets: int = 0
    resets_for: dict[str, int] = field(default_factory=dict)
    resets_done: int = 0
    closed: bool = False


class FakeTwilio(LocalServer[_State]):
    """The server, running in a thread until `close()`; use as a context manager."""

    def __init__(self, account_sid: str = ACCOUNT_SID, auth_token: str = AUTH_TOKEN) -> None:
        self.account_sid = account_sid
        self.auth_token = auth_token
        self._state = _State()
        self._sids = itertools.count(1)
        super().__init__()

    @property
    def base_url(self) -> str:
        """What `twilio.api_base_url` should say."""
        return self.origin

    # What a test arranges.

    def refuse(
        self,
        code: int,
        message: str,
        to: str | None = None,
        *,
        status: int = 400,
        times: int = 1_000_000,
    ) -> None:
        """Answer sends (to one number, or to all) with Twilio's error JSON. `{to}` in
        `message` is replaced by the number, as Twilio's own messages name it."""
        self._add_fault(to, _Fault(status, code, message, times))

    def opt_out(self, to: str) -> None:
        """The recipient texted STOP: every send to them is refused with 21610."""
        self.refuse(*OPTED_OUT, to)

    def invalid_number(self, to: str) -> None:
        self.refuse(*INVALID_NUMBER, to)

    def not_mobile(self, to: str) -> None:
        self.refuse(*NOT_MOBILE, to)

    def rate_limit(
        self, retry_after: int | None = 1, to: str | None = None, times: int = 1
    ) -> None:
        """429 (error 20429) with `Retry-After: retry_after` (none when None)."""
        self._add_fault(to, _Fault(429, 20429, "Too Many Requests", times, retry_after))

    def fail(
        self, status: int = 500, to: str | None = None, times: int = 1, from_twilio: bool = True
    ) -> None:
        """A 5xx: Twilio's JSON (error 20500), or an HTML page from a gateway in front."""
        message = "An internal server error has occurred"
        self._add_fault(to, _Fault(status, 20500, message, times, from_twilio=from_twilio))

    def stall(self, seconds: float, to: str | None = None, times: int = 1) -> None:
        """Take the message, then hold the answer `seconds` (less if the server closes)."""
        with self._changed:
            self._state.stalls[to] = (seconds, times)

    def hang_up(self, to: str | None = None, times: int = 1) -> None:
        """Take the message, then close the connection without answering."""
        with self._changed:
            self._state.hang_ups[to] = times

    def reset_connection(self, times: int = 1, to: str | None = None) -> None:
        """Reset the next `times` connections as a request arrives, before reading its body;
        with `to`, the next `times` sends to that number once read (nothing taken)."""
        with self._changed:
            if to is None:
                self._state.resets += times
            else:
                self._state.resets_for[to] = self._state.resets_for.get(to, 0) + times

    # What a test asserts on.

    @property
    def received(self) -> list[Received]:
        with self._changed:
            return list(self._state.received)

    @property
    def messages(self) -> list[Message]:
        """The messages taken, in order."""
        with self._changed:
            return list(self._state.messages)

    @property
    def resets_done(self) -> int:
        with self._changed:
            return self._state.resets_done

    def message(self, sid: str) -> Message:
        return next(message for message in self.messages if message.sid == sid)

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Received]:
        """Block until `count` requests were read (or the timeout passed)."""
        with self._changed:
            self._changed.wait_for(lambda: len(self._state.received) >= count, timeout)
        return self.received

    # Delivery status callbacks, as Twilio posts them.

    def status_callback(
        self,
        sid: str,
        status: str,
        error_code: int | None = None,
        url: str | None = None,
    ) -> tuple[str, dict[str, str], str]:
        """(URL, form parameters, X-Twilio-Signature) of the callback for a message taken;
        the URL is the message's StatusCallback unless given."""
        message = self.message(sid)
        target = url or message.status_callback
        if not target:
            raise ValueError("the message has no StatusCallback: give a url")
        params = {
            "AccountSid": self.account_sid,
            "ApiVersion": "2010-04-01",
            "From": message.from_ or SERVICE_SENDER,
            "MessageSid": sid,
            "MessageStatus": status,
            "SmsSid": sid,
            "SmsStatus": status,
            "To": message.to,
        }
        if message.messaging_service_sid:
            params["MessagingServiceSid"] = message.messaging_service_sid
        if error_code is not None:
            params["ErrorCode"] = str(error_code)
        signature = RequestValidator(self.auth_token).compute_signature(target, params)
        return target, params, signature

    def post_status_callback(
        self,
        sid: str,
        status: str,
        error_code: int | None = None,
        url: str | None = None,
        timeout: float = 10.0,
    ) -> int:
        """POST the signed callback; the HTTP status the receiver answered."""
        target, params, signature = self.status_callback(sid, status, error_code, url)
        request = urllib.request.Request(
            target,
            data=urlencode(params).encode(),
            headers={
                SIGNATURE_HEADER: signature,
                "Content-Type": "application/x-www-form-urlencoded",
            },
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return int(response.status)
        except urllib.error.HTTPError as error:
            return int(error.code)

    # The server side.

    def _add_fault(self, to: str | None, fault: _Fault) -> None:
        with self._changed:
            self._state.faults.setdefault(to, []).append(fault)

    def _take_reset(self) -> bool:
        with self._changed:
            if self._state.resets <= 0:
                return False
            self._state.resets -= 1
            self._state.resets_done += 1
            return True

    def _take_reset_for(self, to: str) -> bool:
        with self._changed:
            if self._state.resets_for.get(to, 0) <= 0:
                return False
            self._state.resets_for[to] -= 1
            self._state.resets_done += 1
            return True

    def _answer(
        self, method: str, path: str, params: dict[str, str], authorization: str
    ) -> tuple[int, str, dict[str, str]] | _Reset | None:
        """(status, body, headers), None to hang up, or RESET."""
        username = _basic_username(authorization, self.auth_token)
        authorised = username is not None
        with self._changed:
            self._state.received.append(Received(method, path, params, authorised, username))
            self._changed.notify_all()
        if not authorised:
            return _error(401, 20003, "Authenticate")
        match = MESSAGES_PATH.fullmatch(path)
        if method != "POST" or match is None or match.group(1) != username:
            return _error(404, 20404, f"The requested resource {path} was not found")
        to = params.get("To", "")
        if self._take_reset_for(to):
            return RESET
        fault = self._fault_for(to)
        if fault is not None:
            return _fault_answer(fault, to)
        problem = _missing(params)
        if problem is not None:
            return _error(400, *problem)
        message = self._take(params)
        self._stall_if_told(to)
        if self._hang_up_if_told(to):
            return None
        return 201, json.dumps(self._resource(message)), {"Content-Type": "application/json"}

    def _stall_if_told(self, to: str) -> None:
        with self._changed:
            for key in (to, None):
                seconds, times = self._state.stalls.get(key, (0.0, 0))
                if times > 0:
                    self._state.stalls[key] = (seconds, times - 1)
                    self._changed.wait_for(lambda: self._state.closed, timeout=seconds)
                    return

    def _hang_up_if_told(self, to: str) -> bool:
        with self._changed:
            for key in (to, None):
                if self._state.hang_ups.get(key, 0) > 0:
                    self._state.hang_ups[key] -= 1
                    return True
        return False

    def _fault_for(self, to: str) -> _Fault | None:
        with self._changed:
            for key in (to, None):
                for fault in self._state.faults.get(key, []):
                    if fault.times > 0:
                        fault.times -= 1
                        return fault
        return None

    def _take(self, params: Mapping[str, str]) -> Message:
        body = params["Body"]
        message = Message(
            sid=f"SM{next(self._sids):032x}",
            to=params["To"],
            body=body,
            from_=params.get("From") or None,
            messaging_service_sid=params.get("MessagingServiceSid") or None,
            status_callback=params.get("StatusCallback") or None,
            num_segments=count_segments(body).segments,
        )
        with self._changed:
            self._state.messages.append(message)
            self._changed.notify_all()
        return message

    def _resource(self, message: Message) -> dict[str, Any]:
        """Twilio's JSON for a message it has just taken."""
        through_service = message.from_ is None
        uri = f"/2010-04-01/Accounts/{self.account_sid}/Messages/{message.sid}"
        return {
            "account_sid": self.account_sid,
            "api_version": "2010-04-01",
            "body": message.body,
            "date_created": DATE,
            "date_sent": None,
            "date_updated": DATE,
            "direction": "outbound-api",
            "error_code": None,
            "error_message": None,
            "from": message.from_,
            "messaging_service_sid": message.messaging_service_sid,
            "num_media": "0",
            "num_segments": "0" if through_service else str(message.num_segments),
            "price": None,
            "price_unit": "GBP",
            "sid": message.sid,
            "status": "accepted" if through_service else "queued",
            "subresource_uris": {"media": f"{uri}/Media.json"},
            "to": message.to,
            "uri": f"{uri}.json",
        }

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def do_POST(self) -> None:
                self._serve()

            def do_GET(self) -> None:
                self._serve()

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _serve(self) -> None:
                if fake._take_reset():
                    self._reset()
                    return
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                params = dict(parse_qsl(raw.decode(), keep_blank_values=True))
                answer = fake._answer(
                    self.command,
                    self.path.split("?", 1)[0],
                    params,
                    self.headers.get("Authorization", ""),
                )
                if isinstance(answer, _Reset):
                    self._reset()
                    return
                if answer is None:
                    self.close_connection = True
                    return
                self._reply(*answer)

            def _reset(self) -> None:
                """Close with SO_LINGER 0: the peer gets a TCP RST, not an orderly FIN."""
                self.connection.setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                )
                self.close_connection = True
                self.rfile.close()
                self.connection.close()

            def _reply(self, status: int, body: str, headers: Mapping[str, str]) -> None:
                payload = body.encode()
                try:
                    self.send_response(status)
                    for name, value in headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up waiting
                    self.close_connection = True

        return Handler


def _basic_username(authorization: str, auth_token: str) -> str | None:
    """The account SID of a Basic `Authorization` whose password is the auth token."""
    scheme, _, encoded = authorization.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    username, colon, password = decoded.partition(":")
    if not colon or not hmac.compare_digest(password.encode(), auth_token.encode()):
        return None
    return username


def _missing(params: Mapping[str, str]) -> tuple[int, str] | None:
    """Twilio's own refusals of an incomplete send."""
    if not params.get("To"):
        return 21604, "A 'To' phone number is required."
    if not params.get("From") and not params.get("MessagingServiceSid"):
        return 21603, "A 'From' phone number is required."
    if not params.get("Body"):
        return 21602, "Message body is required."
    if len(params["Body"]) > MAX_BODY:
        return 21617, "The concatenated message body exceeds the 1600 character limit."
    return None


def _error(status: int, code: int, message: str) -> tuple[int, str, dict[str, str]]:
    body = {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }
    return status, json.dumps(body), {"Content-Type": "application/json"}


def _fault_answer(fault: _Fault, to: str) -> tuple[int, str, dict[str, str]]:
    if not fault.from_twilio:
        page = f"<html><body><h1>{fault.status} Bad Gateway</h1></body></html>"
        return fault.status, page, {"Content-Type": "text/html"}
    status, body, headers = _error(fault.status, fault.code, fault.message.format(to=to))
    if fault.retry_after is not None:
        headers["Retry-After"] = str(fault.retry_after)
    return status, body, headers
