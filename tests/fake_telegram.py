"""A fake Telegram Bot API server on 127.0.0.1, for python-telegram-bot to talk to over HTTP.

It answers the methods dibot calls (getMe, sendMessage, answerCallbackQuery, getUpdates,
setWebhook, deleteWebhook, getWebhookInfo) with Telegram-shaped JSON, records every call with
its decoded parameters, and can be told to refuse a chat (403, the bot was blocked), to
flood-limit it (429 with `retry_after`), to drop the connection without answering (the
provider may or may not have accepted the message) or to be slow (hold an answer for a while,
as a Telegram under load does, until the test ends the stall; `held` counts the requests held
now). `getUpdates` long-polls a queue of updates
the test pushes, and treats `offset` as Telegram does: updates below it are confirmed and never
served again. The webhook set with setWebhook is remembered for getWebhookInfo, whose
`pending_update_count` is the queue's length and whose last error a test can set.

Provider faults (`inject` for the next sendMessage requests, `fault_mix` for a seeded mix of
all that follow) come in two sorts, told apart by whether the fake read the request:
- it did not act on the request: a 429 with `retry_after`, a JSON 500, a gateway's HTML 502,
  or a reset of the connection before reading it (decided on a peek at the request line, so
  the request stays unread and the close is a TCP reset);
- it acted on it (as `deliveries` records) and the client cannot know: the answer held back
  beyond the client's read timeout (`delay`), or the connection closed without an answer
  (`drop`).
`injected` lists every fault with the request it met (None for a reset: never read).
"""

from __future__ import annotations

import itertools
import json
import random
import socket
import struct
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qsl

from tests.local_server import LocalServer

BOT_ID = 7000000001
JSON_VALUED = frozenset(
    {
        "chat_id",
        "reply_markup",
        "offset",
        "limit",
        "timeout",
        "allowed_updates",
        "message_id",
        "show_alert",
        "cache_time",
        "drop_pending_updates",
        "max_connections",
        "link_preview_options",
        "reply_parameters",
        "disable_notification",
        "protect_content",
    }
)
"""python-telegram-bot form-encodes parameters, JSON-encoding all but plain strings; `text`
must stay a string even when it reads "1"."""


FAULT_KINDS = ("429", "500", "502", "reset", "delay", "drop")
UNANSWERED = frozenset({"delay", "drop"})
"""Faults after which the fake holds the request (delivered) and the client cannot know."""
BAD_GATEWAY_PAGE = "<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"


@dataclass(frozen=True)
class Call:
    method: str
    params: Mapping[str, Any]


@dataclass(frozen=True)
class FaultMix:
    """Each sendMessage request meets fault `kind` with probability `rates[kind]`, drawn in
    arrival order from `random.Random(seed)`; `retry_after` (whole seconds) is what a 429
    says, `delay` how long a delayed answer is held."""

    rates: Mapping[str, float]
    seed: int = 7
    retry_after: int = 1
    delay: float = 1.0

    def draw(self, rng: random.Random) -> str | None:
        roll, edge = rng.random(), 0.0
        for kind in FAULT_KINDS:
            edge += self.rates.get(kind, 0.0)
            if roll < edge:
                return kind
        return None


@dataclass
class _Fault:
    status: int
    description: str
    times: int
    retry_after: int | None = None


@dataclass
class _State:
    calls: list[Call] = field(default_factory=list)
    updates: list[dict[str, Any]] = field(default_factory=list)
    faults: dict[tuple[str, int | None], _Fault] = field(default_factory=dict)
    hang_up: dict[tuple[str, int | None], int] = field(default_factory=dict)
    stalls: dict[tuple[str, int | None], tuple[float, int]] = field(default_factory=dict)
    webhook: dict[str, Any] = field(default_factory=dict)
    webhook_error: tuple[int, str] | None = None
    closed: bool = False
    stalls_ended: bool = False
    held: int = 0
    mix: FaultMix | None = None
    rng: random.Random = field(default_factory=random.Random)
    forced: list[str] = field(default_factory=list)
    injected: list[tuple[str, Call | None]] = field(default_factory=list)
    deliveries: list[Call] = field(default_factory=list)


class FakeTelegram(LocalServer[_State]):
    """The server, running in a thread until `close()`; use as a context manager."""

    def __init__(self, token: str = "123456:TEST-token") -> None:
        self.token = token
        self._state = _State()
        self._message_ids = itertools.count(1)
        self._update_ids = itertools.count(100_000)
        super().__init__()

    @property
    def base_url(self) -> str:
        """What `telegram.api_base_url` should say: the token is appended to it."""
        return f"{self.origin}/bot"

    # What a test arranges.

    def push_update(self, update: Mapping[str, Any]) -> dict[str, Any]:
        """Queue an update for getUpdates; an `update_id` is assigned when it has none."""
        queued = {"update_id": next(self._update_ids), **update}
        with self._changed:
            self._state.updates.append(queued)
            self._changed.notify_all()
        return queued

    def refuse(
        self,
        method: str,
        chat_id: int | None = None,
        *,
        status: int = 403,
        description: str = "Forbidden: bot was blocked by the user",
        retry_after: int | None = None,
        times: int = 1_000_000,
    ) -> None:
        """Answer `method` (for one chat, or for all) with an error, `times` times."""
        if retry_after is not None:
            status, description = 429, f"Too Many Requests: retry after {retry_after}"
        with self._changed:
            self._state.faults[(method, chat_id)] = _Fault(status, description, times, retry_after)

    def block(self, chat_id: int) -> None:
        """The respondent blocked the bot: every sendMessage to them is a 403."""
        self.refuse("sendMessage", chat_id)

    def flood(self, chat_id: int, retry_after: int, times: int = 1) -> None:
        """Flood control: the next `times` sendMessage calls to the chat get 429."""
        self.refuse("sendMessage", chat_id, retry_after=retry_after, times=times)

    def hang_up_on(self, method: str, chat_id: int | None = None, times: int = 1) -> None:
        """Close the connection without an answer, after reading (and recording) the request."""
        with self._changed:
            self._state.hang_up[(method, chat_id)] = times

    def stall(
        self, method: str, seconds: float, chat_id: int | None = None, times: int = 1
    ) -> None:
        """Hold the answer to `method` (for one chat, or for all) for `seconds` after reading
        and recording the request (less if the server closes first), `times` times."""
        with self._changed:
            self._state.stalls[(method, chat_id)] = (seconds, times)

    def end_stalls(self) -> None:
        """Answer every request held by `stall` now, and hold no more (Telegram recovered)."""
        with self._changed:
            self._state.stalls_ended = True
            self._state.stalls.clear()
            self._changed.notify_all()

    def inject(self, *kinds: str) -> None:
        """The next sendMessage requests meet these faults (of `FAULT_KINDS`), in order."""
        with self._changed:
            self._state.forced.extend(kinds)

    def fault_mix(self, mix: FaultMix) -> None:
        """From now on, sendMessage requests meet faults drawn from `mix`."""
        with self._changed:
            self._state.mix, self._state.rng = mix, random.Random(mix.seed)

    def webhook_failed(self, message: str, at: int = 1_790_000_000) -> None:
        """Telegram's last attempt to call the webhook failed (as getWebhookInfo reports)."""
        with self._changed:
            self._state.webhook_error = (at, message)

    # What a test asserts on.

    @property
    def webhook(self) -> dict[str, Any]:
        """The parameters of the setWebhook in force ({} when there is no webhook)."""
        with self._changed:
            return dict(self._state.webhook)

    @property
    def calls(self) -> list[Call]:
        with self._changed:
            return list(self._state.calls)

    def calls_to(self, method: str) -> list[Call]:
        return [call for call in self.calls if call.method == method]

    def sent(self, chat_id: int | None = None) -> list[Call]:
        """sendMessage calls (to one chat, or to all), in the order they arrived."""
        return [
            call
            for call in self.calls_to("sendMessage")
            if chat_id is None or call.params.get("chat_id") == chat_id
        ]

    @property
    def deliveries(self) -> list[Call]:
        """sendMessage requests the fake acted on (a real Telegram would deliver them), in the
        order they arrived: answered, or read and then left without an answer."""
        with self._changed:
            return list(self._state.deliveries)

    @property
    def injected(self) -> list[tuple[str, Call | None]]:
        with self._changed:
            return list(self._state.injected)

    @property
    def held(self) -> int:
        """Requests held by a stall at this moment: read and recorded, not yet answered."""
        with self._changed:
            return self._state.held

    def injected_counts(self) -> Counter[str]:
        return Counter(kind for kind, _ in self.injected)

    def wait_for(self, method: str, count: int, timeout: float = 10.0) -> list[Call]:
        """Block until `count` calls to `method` arrived (or the timeout passed)."""
        with self._changed:
            self._changed.wait_for(
                lambda: sum(c.method == method for c in self._state.calls) >= count, timeout
            )
        return self.calls_to(method)

    # The server side.

    def _fault_for(self, request_line: bytes) -> str | None:
        """The fault the request beginning with `request_line` meets, if any."""
        if b"/sendMessage" not in request_line.split(b"\r\n", 1)[0]:
            return None
        with self._changed:
            state = self._state
            fault = state.forced.pop(0) if state.forced else None
            if fault is None and state.mix is not None:
                fault = state.mix.draw(state.rng)
            if fault == "reset":
                state.injected.append((fault, None))
            return fault

    def _answer(
        self, method: str, params: dict[str, Any], fault: str | None = None
    ) -> tuple[int, dict[str, Any] | str] | None:
        """(status, body: JSON, or an HTML page), or None to hang up."""
        chat_id = params.get("chat_id")
        call = Call(method, params)
        with self._changed:
            self._state.calls.append(call)
            self._changed.notify_all()
            if fault is not None:
                self._state.injected.append((fault, call))
                if fault in UNANSWERED:
                    self._state.deliveries.append(call)
                return self._faulty_answer(fault, method, params)
            for key in ((method, chat_id), (method, None)):
                seconds, times = self._state.stalls.get(key, (0.0, 0))
                if times > 0:
                    self._state.stalls[key] = (seconds, times - 1)
                    self._state.held += 1
                    self._changed.wait_for(
                        lambda: self._state.closed or self._state.stalls_ended, timeout=seconds
                    )
                    self._state.held -= 1
                    break
            for key in ((method, chat_id), (method, None)):
                if self._state.hang_up.get(key, 0) > 0:
                    self._state.hang_up[key] -= 1
                    if method == "sendMessage":
                        self._state.deliveries.append(call)
                    return None
            for key in ((method, chat_id), (method, None)):
                refusal = self._state.faults.get(key)
                if refusal is not None and refusal.times > 0:
                    refusal.times -= 1
                    body: dict[str, Any] = {
                        "ok": False,
                        "error_code": refusal.status,
                        "description": refusal.description,
                    }
                    if refusal.retry_after is not None:
                        body["parameters"] = {"retry_after": refusal.retry_after}
                    return refusal.status, body
            if method in ("setWebhook", "deleteWebhook", "getWebhookInfo"):
                return 200, {"ok": True, "result": self._webhook(method, params)}
            if method == "sendMessage":
                self._state.deliveries.append(call)
        if method == "getUpdates":
            return 200, {"ok": True, "result": self._updates(params)}
        return 200, {"ok": True, "result": self._result(method, params)}

    def _faulty_answer(
        self, fault: str, method: str, params: Mapping[str, Any]
    ) -> tuple[int, dict[str, Any] | str] | None:
        """Called with the lock held, for a request the fake read."""
        mix = self._state.mix or FaultMix({})
        if fault == "429":
            return 429, {
                "ok": False,
                "error_code": 429,
                "description": f"Too Many Requests: retry after {mix.retry_after}",
                "parameters": {"retry_after": mix.retry_after},
            }
        if fault == "500":
            return 500, {"ok": False, "error_code": 500, "description": "Internal Server Error"}
        if fault == "502":
            return 502, BAD_GATEWAY_PAGE
        if fault == "drop":
            return None
        self._changed.wait_for(lambda: self._state.closed, timeout=mix.delay)  # "delay"
        return 200, {"ok": True, "result": self._result(method, params)}

    def _result(self, method: str, params: Mapping[str, Any]) -> Any:
        if method == "getMe":
            return {
                "id": BOT_ID,
                "is_bot": True,
                "first_name": "dibot",
                "username": "dibot_test_bot",
                "can_join_groups": False,
                "can_read_all_group_messages": False,
                "supports_inline_queries": False,
            }
        if method == "sendMessage":
            chat_id = params["chat_id"]
            message: dict[str, Any] = {
                "message_id": next(self._message_ids),
                "date": 1_790_000_000,
                "chat": {"id": chat_id, "type": "private", "first_name": "Resident"},
                "from": {"id": BOT_ID, "is_bot": True, "first_name": "dibot"},
                "text": params.get("text", ""),
            }
            if "reply_markup" in params:
                message["reply_markup"] = params["reply_markup"]
            return message
        return True  # answerCallbackQuery, editMessageReplyMarkup

    def _webhook(self, method: str, params: Mapping[str, Any]) -> Any:
        """Called with the lock held."""
        state = self._state
        if method == "setWebhook":
            state.webhook = dict(params)
            return True
        if method == "deleteWebhook":
            state.webhook = {}
            if params.get("drop_pending_updates"):
                state.updates = []
            return True
        info: dict[str, Any] = {
            "url": state.webhook.get("url", ""),
            "has_custom_certificate": False,
            "pending_update_count": len(state.updates),
        }
        if state.webhook.get("allowed_updates") is not None:
            info["allowed_updates"] = state.webhook["allowed_updates"]
        if state.webhook_error is not None:
            info["last_error_date"], info["last_error_message"] = state.webhook_error
        return info

    def _updates(self, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        offset = int(params.get("offset") or 0)
        limit = int(params.get("limit") or 100)
        timeout = float(params.get("timeout") or 0)
        with self._changed:
            self._state.updates = [u for u in self._state.updates if u["update_id"] >= offset]
            self._changed.wait_for(
                lambda: bool(self._state.updates) or self._state.closed, timeout=timeout
            )
            return [dict(u) for u in self._state.updates[:limit]]

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body go in two writes

            fault: str | None = None

            def handle_one_request(self) -> None:
                self.fault = fake._fault_for(self._peek())
                if self.fault == "reset":
                    self._reset()
                    return
                super().handle_one_request()

            def _peek(self) -> bytes:
                """The start of the next request, left unread (b"" once the client closed)."""
                data = b""
                for _ in range(100):
                    try:
                        data = self.connection.recv(4096, socket.MSG_PEEK)
                    except OSError:
                        return b""
                    if not data or b"\r\n" in data:
                        break
                    time.sleep(0.001)
                return data

            def _reset(self) -> None:
                """Close without reading the request: a TCP reset, with the data unread."""
                linger = struct.pack("ii", 1, 0)
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
                self.connection.close()  # the socket goes once rfile is closed, in finish()
                self.close_connection = True

            def do_POST(self) -> None:
                self._serve()

            def do_GET(self) -> None:
                self._serve()

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _serve(self) -> None:
                path = self.path.split("?", 1)[0]
                prefix = f"/bot{fake.token}/"
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                if not path.startswith(prefix):
                    self._reply(404, {"ok": False, "error_code": 404, "description": "Not Found"})
                    return
                answer = fake._answer(
                    path[len(prefix) :],
                    _decode(raw, self.headers.get("Content-Type", "")),
                    self.fault,
                )
                if answer is None:
                    self.close_connection = True
                    return
                self._reply(*answer)

            def _reply(self, status: int, body: Mapping[str, Any] | str) -> None:
                html = isinstance(body, str)
                payload = body.encode() if isinstance(body, str) else json.dumps(body).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "text/html" if html else "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up waiting
                    self.close_connection = True

        return Handler


def _decode(raw: bytes, content_type: str) -> dict[str, Any]:
    if content_type.startswith("application/json"):
        data = json.loads(raw or b"{}")
        return dict(data) if isinstance(data, dict) else {}
    params: dict[str, Any] = {}
    for name, value in parse_qsl(raw.decode(), keep_blank_values=True):
        params[name] = json.loads(value) if name in JSON_VALUED else value
    return params


def private_chat(chat_id: int) -> dict[str, Any]:
    return {"id": chat_id, "type": "private", "first_name": "Resident"}


def user(chat_id: int) -> dict[str, Any]:
    return {"id": chat_id, "is_bot": False, "first_name": "Resident", "language_code": "en"}


_message_numbers = itertools.count(1)


def text_update(chat_id: int, text: str, update_id: int | None = None) -> dict[str, Any]:
    """A respondent's text message, as Telegram delivers it."""
    return _with_id(
        {
            "message": {
                "message_id": next(_message_numbers),
                "date": 1_790_000_000,
                "chat": private_chat(chat_id),
                "from": user(chat_id),
                "text": text,
            }
        },
        update_id,
    )


def tap_update(chat_id: int, data: str, update_id: int | None = None) -> dict[str, Any]:
    """A tap on an inline keyboard button under one of the bot's messages."""
    return _with_id(
        {
            "callback_query": {
                "id": f"cq-{next(_message_numbers)}",
                "from": user(chat_id),
                "chat_instance": "-1000",
                "data": data,
                "message": {
                    "message_id": next(_message_numbers),
                    "date": 1_790_000_000,
                    "chat": private_chat(chat_id),
                    "from": {"id": BOT_ID, "is_bot": True, "first_name": "dibot"},
                    "text": "the question",
                },
            }
        },
        update_id,
    )


def media_update(
    chat_id: int, kind: str = "sticker", caption: str | None = None, update_id: int | None = None
) -> dict[str, Any]:
    """A sticker, photo or voice note (with an optional caption) and no text."""
    attachments: dict[str, Any] = {
        "sticker": {
            "file_id": "s1",
            "file_unique_id": "s1u",
            "type": "regular",
            "width": 512,
            "height": 512,
            "is_animated": False,
            "is_video": False,
        },
        "photo": [{"file_id": "p1", "file_unique_id": "p1u", "width": 90, "height": 90}],
        "voice": {"file_id": "v1", "file_unique_id": "v1u", "duration": 3},
    }
    message: dict[str, Any] = {
        "message_id": next(_message_numbers),
        "date": 1_790_000_000,
        "chat": private_chat(chat_id),
        "from": user(chat_id),
        kind: attachments[kind],
    }
    if caption is not None:
        message["caption"] = caption
    return _with_id({"message": message}, update_id)


def edited_update(chat_id: int, text: str, update_id: int | None = None) -> dict[str, Any]:
    update = text_update(chat_id, text, update_id)
    message = update.pop("message")
    message["edit_date"] = 1_790_000_060
    update["edited_message"] = message
    return update


def member_update(chat_id: int, status: str, update_id: int | None = None) -> dict[str, Any]:
    """The respondent blocked ("kicked") or unblocked ("member") the bot."""
    bot_user = {"id": BOT_ID, "is_bot": True, "first_name": "dibot"}
    old = "member" if status == "kicked" else "kicked"
    old_member: dict[str, Any] = {"status": old, "user": bot_user}
    new_member: dict[str, Any] = {"status": status, "user": bot_user}
    if "kicked" in (old, status):
        banned = old_member if old == "kicked" else new_member
        banned["until_date"] = 0
    return _with_id(
        {
            "my_chat_member": {
                "chat": private_chat(chat_id),
                "from": user(chat_id),
                "date": 1_790_000_000,
                "old_chat_member": old_member,
                "new_chat_member": new_member,
            }
        },
        update_id,
    )


_update_numbers = itertools.count(500_000)


def _with_id(update: dict[str, Any], update_id: int | None) -> dict[str, Any]:
    return {"update_id": next(_update_numbers) if update_id is None else update_id, **update}


def keyboard_labels(call: Call) -> list[list[str]]:
    markup = call.params.get("reply_markup") or {}
    return [[button["text"] for button in row] for row in markup.get("inline_keyboard", [])]


def keyboard_payloads(call: Call) -> Iterator[str]:
    markup = call.params.get("reply_markup") or {}
    for row in markup.get("inline_keyboard", []):
        for button in row:
            yield button["callback_data"]
