"""Telegram respondents for the load: their updates as Telegram posts them to the webhook,
and the check that `dibot worker` sent each of their replies once, in order.

The rule it keeps: the replies a run must see are worked out before it, by the engine itself
(`bot.engine.step`, from the state a new Telegram respondent starts in), so the check compares
what the fake Bot API received with what the turns queued, chat by chat, text by text: a reply
sent twice, lost or overtaken is found, not just counted. A respondent writes "Hi", then taps
the button of the option they choose, as a Telegram user does.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass

from bench.http_load import Request
from bench.turns import GREETING, MAX_MESSAGES_PER_RESPONDENT, RESPONDENTS, START, STORED_KINDS
from bot.engine import step
from bot.messages import Button, Inbound
from bot.render import BUTTON_SEPARATOR
from bot.state import State
from channels.telegram import SECRET_HEADER
from flows.model import Flow
from tests.fake_telegram import FakeTelegram, tap_update, text_update

TELEGRAM_REPLY_RATE = 30.0
"""Telegram's overall limit, which the worker keeps: what a drain can be expected to reach."""
DRAIN_MARGIN_SECONDS = 30.0
DRAIN_LIMIT_SECONDS = 300.0
"""The longest a drain is waited for: three times what Telegram's rate needs, plus the margin,
up to this; a reply not sent by then is reported missing."""
BOT_TOKEN = "123456:bench-token-not-a-secret"
WEBHOOK_SECRET = "bench-webhook-secret-not-a-secret"
TELEGRAM_PATH = "/webhooks/telegram"
FIRST_CHAT = 910_000_000
"""Respondent i is Telegram chat FIRST_CHAT + i."""
FIRST_UPDATE = 1_000_000


@dataclass(frozen=True)
class Update:
    """One Telegram update a respondent sends, what it must store, and the replies it queues."""

    chat_id: int
    update_id: int
    body: bytes
    answers: int
    replies: tuple[str, ...]

    @property
    def message_id(self) -> str:
        return str(self.update_id)


@dataclass(frozen=True)
class Delivery:
    """The Telegram replies the fake Bot API received against those the turns queued."""

    queued: int
    sent: int
    missing: int
    extra: int
    out_of_order: int
    """Chats whose replies came in another order (or with other texts) than queued."""
    drain_seconds: float
    """From the end of the load until the last reply was sent (or the drain gave up)."""

    @property
    def ok(self) -> bool:
        return self.missing == 0 and self.extra == 0 and self.out_of_order == 0

    def describe(self) -> str:
        verdict = "ok" if self.ok else "FAILED"
        return (
            f"{self.queued} replies queued, {self.sent} sent to the Bot API "
            f"{self.drain_seconds:.1f} s after the load, {self.missing} missing, "
            f"{self.extra} extra, {self.out_of_order} chats out of order: {verdict}"
        )


# --- the work ---


def _choice(flow: Flow, state: State, respondent: int) -> str:
    """The option a respondent picks: the first before the questions (the flow's first
    language, agree, the quick check), then one varying by respondent and question."""
    question = flow.questions.get(state.question or "")
    if state.stage != "asking" or question is None:
        return "1"
    options = flow.scale_of(question).options
    return str(options[(respondent + question.number) % len(options)].number)


def conversation(flow: Flow, respondent: int) -> Iterator[tuple[Inbound, int, tuple[str, ...]]]:
    """(inbound, answer rows it stores, reply texts it queues) of each update from "Hi" to the
    priorities message: a text first, then a tap on the button of the chosen option."""
    state = State(language=flow.languages[0])  # what the handler starts an "en" user on
    buttons: tuple[Button, ...] = ()
    for _ in range(MAX_MESSAGES_PER_RESPONDENT):
        if buttons:
            suffix = BUTTON_SEPARATOR + _choice(flow, state, respondent)
            payload = next(button.payload for button in buttons if button.payload.endswith(suffix))
            inbound = Inbound("", button=payload)
        else:
            inbound = Inbound(GREETING)
        turn = step(flow, state, inbound, START)
        state = turn.state
        stored = sum(event.kind in STORED_KINDS for event in turn.events)
        yield inbound, stored, tuple(reply.text for reply in turn.outbound)
        if state.stage == "done":
            return
        buttons = next((reply.buttons for reply in reversed(turn.outbound) if reply.buttons), ())
    raise RuntimeError("the quick check did not finish: the script no longer fits the flow")


def plan(flow: Flow, total: int, slots: int) -> tuple[tuple[Update, ...], ...]:
    """As `bench.turns.plan`, for Telegram: respondent i in slot i % slots, in order."""
    quotas = [total // slots + (slot < total % slots) for slot in range(slots)]
    update_ids = iter(range(FIRST_UPDATE, FIRST_UPDATE + total))
    planned = []
    for slot, quota in enumerate(quotas):
        updates: list[Update] = []
        for respondent in range(slot, len(RESPONDENTS), slots):
            chat_id = FIRST_CHAT + respondent
            for inbound, answers, replies in conversation(flow, respondent):
                if len(updates) == quota:
                    break
                update_id = next(update_ids)
                if inbound.button is None:
                    update = text_update(chat_id, inbound.text, update_id)
                else:
                    update = tap_update(chat_id, inbound.button, update_id)
                body = json.dumps(update).encode()
                updates.append(Update(chat_id, update_id, body, answers, replies))
            if len(updates) == quota:
                break
        planned.append(tuple(updates))
    return tuple(planned)


def request(update: Update) -> Request:
    headers = (
        ("Content-Type", "application/json"),
        (SECRET_HEADER, WEBHOOK_SECRET),
    )
    return Request("POST", TELEGRAM_PATH, update.body, headers)


# --- the check ---


def compare_replies(
    expected: dict[int, list[str]], received: dict[int, list[str]], drain_seconds: float
) -> Delivery:
    """Each chat's replies as the Bot API received them against those queued, in order."""
    missing = extra = out_of_order = 0
    for chat in expected.keys() | received.keys():
        want, got = expected.get(chat, []), received.get(chat, [])
        missing += max(0, len(want) - len(got))
        extra += max(0, len(got) - len(want))
        shared = min(len(want), len(got))
        out_of_order += want[:shared] != got[:shared]
    return Delivery(
        queued=sum(len(texts) for texts in expected.values()),
        sent=sum(len(texts) for texts in received.values()),
        missing=missing,
        extra=extra,
        out_of_order=out_of_order,
        drain_seconds=drain_seconds,
    )


def _received(fake: FakeTelegram) -> dict[int, list[str]]:
    by_chat: dict[int, list[str]] = defaultdict(list)
    for call in fake.sent():
        by_chat[int(call.params["chat_id"])].append(str(call.params.get("text", "")))
    return by_chat


def drain(fake: FakeTelegram, expected: dict[int, list[str]]) -> Delivery:
    """Wait (bounded) until the fake has received as many replies as were queued."""
    queued = sum(len(texts) for texts in expected.values())
    limit = min(DRAIN_LIMIT_SECONDS, 3 * queued / TELEGRAM_REPLY_RATE + DRAIN_MARGIN_SECONDS)
    began = time.monotonic()
    fake.wait_for("sendMessage", queued, timeout=limit)
    return compare_replies(expected, _received(fake), time.monotonic() - began)


def settings(fake: FakeTelegram) -> dict[str, str]:
    """`dibot serve`'s and `dibot worker`'s Telegram configuration, pointed at the fake."""
    return {
        "DIBOT_TELEGRAM_BOT_TOKEN": BOT_TOKEN,
        "DIBOT_TELEGRAM_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "DIBOT_TELEGRAM_API_BASE_URL": fake.base_url,
    }


def fake_bot_api() -> FakeTelegram:
    return FakeTelegram(BOT_TOKEN)
