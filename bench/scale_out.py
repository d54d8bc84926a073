"""Scale-out on PostgreSQL: two `dibot serve` nodes and two `dibot worker`s on one database.

    .venv/bin/python -m bench.scale_out --database-url URL [--seconds N] [--requests N]
                                        [--in-flight N] [--telegram-slots N]

Respondents complete quick checks, over signed Twilio webhooks and over Telegram updates, each
respondent one message at a time (the next only once the last was answered, as a phone does).
On one freshly migrated scratch schema, with two `dibot worker` processes sending the Telegram
replies to a fake Bot API on 127.0.0.1 (a process of its own, counting what it receives), the
same work (as many messages, from other respondents with the same scripts) runs twice:
1. against one node: every message to node A (`dibot serve`, 2 sync workers);
2. against two nodes, node B started beside A (its own port, the same database and secrets):
   one respondent's consecutive messages alternate between the nodes (message 1 to A, 2 to B,
   ...; every other respondent starts on B), as behind a load balancer that keeps no
   affinity. Twilio signs the URL it calls, the balancer's: `twilio.public_url` names it on
   both nodes, so either node verifies any request. Then a few respondents' messages are each
   delivered to both nodes at the same moment (a provider's retry landing on the other node
   while the first delivery is being answered).
After each load the workers are given time to send every Telegram reply.

Afterwards: every message is in the inbox once, every answer stored once, each
respondent's answers stored in the order they were sent (by id and by `answered_at`, question
by question as the script answered them), every Telegram reply received by the fake exactly
once and each chat's in the order queued; no request failed; a message delivered to both nodes
at once was one turn and both deliveries got the same reply.

The rules it keeps: throughput is reported as the ratio two nodes / one node measured in this
run, never judged against seconds; on one machine both nodes share its cores (2 here), so the
ratio shows correctness and overhead more than capacity. Bounded in count and in time
(`--seconds` per load); traffic to 127.0.0.1 only; PostgreSQL only inside the scratch schema
`dibot_bench_scale_out` of the database named, dropped before and after. Exit status 1 when a
check failed, 2 for unusable arguments.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import urllib.parse
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import OperationalError

from bench.fake_bot_api import TELEGRAM_TOKEN, FakeBotApi, Received, fake_bot_api
from bench.http_load import WORKERS, Request, Timing, serving, working
from bench.report import Goal, Section, goals_table
from bench.split_load import Answer, Routed, at_once, run_split_load
from bench.turns import (
    ACCOUNT_SID,
    BOT_NUMBER,
    RESPONDENTS,
    START,
    STORED_KINDS,
    TOKEN,
    WEBHOOK_PATH,
    fresh_database,
    measured_postgresql_url,
    quick_check,
)
from bot.engine import step
from bot.messages import Inbound
from bot.state import State
from channels.telegram import SECRET_HEADER
from channels.twilio_sms import SIGNATURE_HEADER
from flows.loader import load_flow
from flows.model import Flow
from storage.database import make_engine
from storage.models import Answer as AnswerRow
from storage.models import InboxEntry, OutboxEntry, table

SCHEMA = "dibot_bench_scale_out"
PUBLIC_URL = "https://dibot.example.gov.uk"
"""The load balancer's address: what Twilio signs, and `twilio.public_url` on both nodes. It is
never contacted."""
TELEGRAM_SECRET = "bench-webhook-secret-not-a-secret"
WEB_SECRET_KEY = "bench-web-secret-key-not-a-secret-0123456789"
TELEGRAM_PATH = "/webhooks/telegram"
FIRST_CHAT_ID = 5_000_000
"""Telegram chat ids of the respondents: this and up."""
SEND_WORKERS = 2
"""`dibot worker` processes sending the outbox."""
WARMUP = 2
"""Untimed requests per slot before the clock starts: one to each node when there are two."""
DUPLICATE_SMS_RESPONDENTS = 6
DUPLICATE_TELEGRAM_RESPONDENTS = 2
DUPLICATE_MESSAGES = 6
"""Messages per respondent delivered to both nodes at once: greeting, language, consent,
quick check, then two answers."""
SCRIPTS = 20
"""Different quick checks (answers vary with the script's number): enough that respondents'
answers and priorities differ, few enough that planning stays quick."""
DRAIN_LIMIT_SECONDS = 120.0
"""The longest the workers get, after the load, to send every Telegram reply."""
UNSETTLED = ("pending", "claimed", "sending")
DEFAULT_SECONDS = 30.0
DEFAULT_REQUESTS = 2400
DEFAULT_IN_FLIGHT = 16
DEFAULT_TELEGRAM_SLOTS = 4


# --- the work -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Message:
    """One message a respondent sends, and what it must leave stored."""

    channel: str
    """"sms" or "telegram" (the inbox's and answers' channel)."""
    respondent: int
    """The respondent's number in their load, and the script they follow: which node their
    first message goes to, and what they answer."""
    urn: str
    position: int
    """Its place among the respondent's messages, from 0."""
    message_id: str
    """Twilio's MessageSid, or the Telegram update id."""
    body: str
    questions: tuple[str, ...]
    """The questions it answers (or skips), in the order the engine records them."""


@dataclass(frozen=True)
class Planned:
    message: Message
    request: Request
    """Signed for the public URL, so any node takes it."""


def script(flow: Flow, respondent: int) -> list[tuple[str, tuple[str, ...]]]:
    """The quick check of `bench.turns.quick_check`: each message's body and the questions it
    answers."""
    state, taken = State(), []
    for body, _ in quick_check(flow, respondent):
        turn = step(flow, state, Inbound(body), START)
        state = turn.state
        questions = tuple(e.question or "" for e in turn.events if e.kind in STORED_KINDS)
        taken.append((body, questions))
    return taken


def sms_request(message: Message) -> Request:
    """The form Twilio posts for an inbound SMS, signed for the balancer's URL."""
    from twilio.request_validator import RequestValidator

    params = {
        "MessageSid": message.message_id,
        "SmsMessageSid": message.message_id,
        "AccountSid": ACCOUNT_SID,
        "From": message.urn.removeprefix("tel:"),
        "To": BOT_NUMBER,
        "Body": message.body,
        "NumMedia": "0",
        "NumSegments": "1",
    }
    signature = RequestValidator(TOKEN).compute_signature(PUBLIC_URL + WEBHOOK_PATH, params)
    headers = (
        ("Content-Type", "application/x-www-form-urlencoded"),
        (SIGNATURE_HEADER, signature),
    )
    return Request("POST", WEBHOOK_PATH, urllib.parse.urlencode(params).encode(), headers)


def telegram_request(message: Message) -> Request:
    """A Telegram text update, as Telegram posts it to the webhook (no language setting, so the
    bot asks, as it asks on SMS)."""
    chat_id = int(message.urn.removeprefix("telegram:"))
    person = {"id": chat_id, "first_name": "Resident"}
    update = {
        "update_id": int(message.message_id),
        "message": {
            "message_id": message.position + 1,
            "date": 1_790_000_000,
            "chat": {**person, "type": "private"},
            "from": {**person, "is_bot": False},
            "text": message.body,
        },
    }
    headers = (("Content-Type", "application/json"), (SECRET_HEADER, TELEGRAM_SECRET))
    return Request("POST", TELEGRAM_PATH, json.dumps(update).encode(), headers)


class _Respondents:
    """Hands out respondents, each new (a number or chat of their own), with their whole quick
    check planned: script `number` mod SCRIPTS of `bench.turns.quick_check`."""

    def __init__(self, flow: Flow) -> None:
        self.flow = flow
        self.sms = 0
        self.chats = 0
        self.updates = 0
        self._scripts: dict[int, list[tuple[str, tuple[str, ...]]]] = {}

    def next(self, channel: str, number: int) -> list[Planned]:
        if channel == "sms":
            if self.sms >= len(RESPONDENTS):
                raise ValueError(f"more SMS respondents than the {len(RESPONDENTS)} numbers")
            urn = "tel:" + RESPONDENTS[self.sms]
            self.sms += 1
        else:
            urn = f"telegram:{FIRST_CHAT_ID + self.chats}"
            self.chats += 1
        kind = number % SCRIPTS
        if kind not in self._scripts:
            self._scripts[kind] = script(self.flow, kind)
        planned = []
        for position, (body, questions) in enumerate(self._scripts[kind]):
            if channel == "sms":
                message_id = f"SM{uuid.uuid4().hex}"
            else:
                self.updates += 1
                message_id = str(self.updates)
            message = Message(channel, number, urn, position, message_id, body, questions)
            make = sms_request if channel == "sms" else telegram_request
            planned.append(Planned(message, make(message)))
        return planned


@dataclass(frozen=True)
class Plan:
    alone: tuple[tuple[Planned, ...], ...]
    """The load against one node: each in-flight slot's messages, its respondents one after
    another."""
    spread: tuple[tuple[Planned, ...], ...]
    """The same load (as many messages, slots and scripts) from other respondents, against
    both nodes."""
    at_once: tuple[Planned, ...]
    """Messages each delivered to both nodes at once (respondents of their own)."""
    telegram_slots: int


def plan(flow: Flow, requests: int, in_flight: int, telegram_slots: int) -> Plan:
    """Twice `requests` messages over `in_flight` slots, the last `telegram_slots` of them
    Telegram respondents; then the messages delivered to both nodes at once."""
    respondents = _Respondents(flow)
    quotas = [requests // in_flight + (slot < requests % in_flight) for slot in range(in_flight)]

    def load() -> tuple[tuple[Planned, ...], ...]:
        slots, number = [], 0
        for slot, quota in enumerate(quotas):
            channel = "telegram" if slot >= in_flight - telegram_slots else "sms"
            messages: list[Planned] = []
            while len(messages) < quota:
                messages.extend(respondents.next(channel, number)[: quota - len(messages)])
                number += 1
            slots.append(tuple(messages))
        return tuple(slots)

    alone, spread = load(), load()
    twice: list[Planned] = []
    channels = ["sms"] * DUPLICATE_SMS_RESPONDENTS + ["telegram"] * DUPLICATE_TELEGRAM_RESPONDENTS
    for number, channel in enumerate(channels):
        twice.extend(respondents.next(channel, number)[:DUPLICATE_MESSAGES])
    return Plan(alone, spread, tuple(twice), telegram_slots)


def routed(slots: Sequence[Sequence[Planned]], nodes: int) -> list[list[Routed]]:
    """Each message to node (respondent + position) mod `nodes`: a respondent's consecutive
    messages alternate, and every other respondent starts on the second node."""
    return [
        [Routed((p.message.respondent + p.message.position) % nodes, p.request) for p in slot]
        for slot in slots
    ]


# --- the processes ---------------------------------------------------------------------------


def settings_for(fake: FakeBotApi) -> dict[str, str]:
    """What both nodes and both workers are configured with: the same secrets and addresses."""
    return {
        "DIBOT_TWILIO_AUTH_TOKEN": TOKEN,
        "DIBOT_TWILIO_PUBLIC_URL": PUBLIC_URL,
        "DIBOT_TELEGRAM_BOT_TOKEN": TELEGRAM_TOKEN,
        "DIBOT_TELEGRAM_WEBHOOK_SECRET": TELEGRAM_SECRET,
        "DIBOT_TELEGRAM_API_BASE_URL": fake.base_url,
        "DIBOT_WEB_SECRET_KEY": WEB_SECRET_KEY,
    }


def wait_for_outbox(database_url: str, limit: float) -> tuple[float, int]:
    """Until no Telegram row waits to be sent (or `limit` seconds): (seconds waited, rows
    still unsettled)."""
    outbox = table(OutboxEntry)
    count = (
        sa.select(sa.func.count())
        .select_from(outbox)
        .where(outbox.c.channel == "telegram", outbox.c.status.in_(UNSETTLED))
    )
    engine = make_engine(database_url, poolclass=sa.NullPool)
    began = time.monotonic()
    try:
        while True:
            with engine.connect() as conn:
                waiting = int(conn.execute(count).scalar_one())
            waited = time.monotonic() - began
            if waiting == 0 or waited >= limit:
                return waited, waiting
            time.sleep(0.1)
    finally:
        engine.dispose()


# --- the checks -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Integrity:
    messages_sent: int
    inbox_rows: int
    missing_messages: int
    extra_messages: int
    """Inbox rows beyond one for each message sent."""
    answers_sent: int
    answers_stored: int
    missing_answers: int
    extra_answers: int
    respondents: int
    respondents_in_order: int
    """Respondents whose answers are stored question by question in the order sent (by id and
    by answered_at)."""
    replies_queued: int
    replies_unsent: int
    """Telegram outbox rows not "sent"."""
    replies_received: int
    """sendMessage calls the fake Bot API received."""
    replies_missing: int
    replies_duplicated: int
    """Replies the fake received more often than they were queued."""
    chats_out_of_order: int
    """Chats that received their replies in another order than they were queued."""

    @property
    def duplicates(self) -> int:
        return self.extra_messages + self.extra_answers + self.replies_duplicated

    @property
    def in_order(self) -> bool:
        return self.respondents_in_order == self.respondents and self.chats_out_of_order == 0

    @property
    def ok(self) -> bool:
        lost = self.missing_messages + self.missing_answers + self.replies_missing
        return self.duplicates == 0 and lost == 0 and self.replies_unsent == 0 and self.in_order


def verify(database_url: str, sent: Sequence[Message], received: Received) -> Integrity:
    """The database and the fake Bot API against what was sent (see the module)."""
    answers, inbox, outbox = table(AnswerRow), table(InboxEntry), table(OutboxEntry)
    engine = make_engine(database_url, poolclass=sa.NullPool)
    try:
        with engine.connect() as conn:
            stored = conn.execute(
                sa.select(
                    answers.c.channel,
                    answers.c.provider_message_id,
                    answers.c.question,
                    answers.c.answered_at,
                ).order_by(answers.c.id)
            ).all()
            seen = conn.execute(
                sa.select(inbox.c.id, inbox.c.channel, inbox.c.provider_message_id)
            ).all()
            queued = conn.execute(
                sa.select(outbox.c.inbox_id, outbox.c.text, outbox.c.status)
                .where(outbox.c.channel == "telegram")
                .order_by(outbox.c.id)
            ).all()
    finally:
        engine.dispose()
    by_id = {(m.channel, m.message_id): m for m in sent}

    expected_messages = Counter(by_id.keys())
    in_inbox = Counter((row.channel, row.provider_message_id) for row in seen)
    expected_answers = Counter({key: len(m.questions) for key, m in by_id.items() if m.questions})
    in_answers = Counter((row.channel, row.provider_message_id) for row in stored)

    order = answers_in_order(sent, by_id, stored)
    replies = replies_against(by_id, seen, queued, received)
    return Integrity(
        messages_sent=len(sent),
        inbox_rows=in_inbox.total(),
        missing_messages=(expected_messages - in_inbox).total(),
        extra_messages=(in_inbox - expected_messages).total(),
        answers_sent=expected_answers.total(),
        answers_stored=in_answers.total(),
        missing_answers=(expected_answers - in_answers).total(),
        extra_answers=(in_answers - expected_answers).total(),
        respondents=order[0],
        respondents_in_order=order[1],
        replies_queued=len(queued),
        replies_unsent=sum(row.status != "sent" for row in queued),
        replies_received=len(received.sends),
        **replies,
    )


def answers_in_order(
    sent: Sequence[Message], by_id: Mapping[tuple[str, str], Message], stored: Sequence[Any]
) -> tuple[int, int]:
    """(respondents, respondents whose answers are stored as sent): answer rows by id give
    each respondent's (message position, question) in the order sent, at times that never go
    back."""
    expected: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for message in sorted(sent, key=lambda m: (m.urn, m.position)):
        expected[message.urn].extend((message.position, q) for q in message.questions)
    found: dict[str, list[tuple[int, str]]] = defaultdict(list)
    times: dict[str, list[datetime]] = defaultdict(list)
    for row in stored:
        origin = by_id.get((row.channel, row.provider_message_id))
        urn = origin.urn if origin is not None else "?"
        found[urn].append((origin.position if origin is not None else -1, row.question))
        times[urn].append(row.answered_at)
    respondents = [urn for urn, wanted in expected.items() if wanted]
    in_order = sum(
        found.get(urn) == expected[urn] and times[urn] == sorted(times[urn]) for urn in respondents
    )
    return len(respondents), in_order


def replies_against(
    by_id: Mapping[tuple[str, str], Message],
    seen: Sequence[Any],
    queued: Sequence[Any],
    received: Received,
) -> dict[str, int]:
    """Each chat's queued replies (in the order of the messages they answer, then queued)
    against what the fake received for that chat, in the order it arrived."""
    inbound = {row.id: by_id.get((row.channel, row.provider_message_id)) for row in seen}
    wanted: dict[int, list[tuple[int, int, str]]] = defaultdict(list)
    for number, row in enumerate(queued):
        message = inbound.get(row.inbox_id)
        chat = int(message.urn.removeprefix("telegram:")) if message is not None else -1
        wanted[chat].append((message.position if message is not None else -1, number, row.text))
    got: dict[int, list[str]] = defaultdict(list)
    for chat, text in received.sends:
        got[chat].append(text)
    missing = duplicated = out_of_order = 0
    for chat in wanted.keys() | got.keys():
        expected = [text for _, _, text in sorted(wanted.get(chat, []))]
        arrived = got.get(chat, [])
        missing += (Counter(expected) - Counter(arrived)).total()
        duplicated += (Counter(arrived) - Counter(expected)).total()
        out_of_order += Counter(expected) == Counter(arrived) and expected != arrived
    return {
        "replies_missing": missing,
        "replies_duplicated": duplicated,
        "chats_out_of_order": out_of_order,
    }


# --- the runs ------------------------------------------------------------------------------


@dataclass(frozen=True)
class AtOnce:
    """Messages each delivered to both nodes at the same moment."""

    messages: int
    same_reply: int
    """Messages whose two deliveries got the same answer (status and body)."""
    failures: tuple[str, ...]


@dataclass(frozen=True)
class Run:
    """One load, against one node or both."""

    nodes: int
    timing: Timing
    per_node: tuple[int, ...]
    """Requests each node was sent (timed and warm-up)."""
    drain_seconds: float
    """From the end of the load until no Telegram reply waited to be sent."""


@dataclass(frozen=True)
class Outcome:
    runs: tuple[Run, Run]
    """Against one node, then against both."""
    at_once: AtOnce
    check: Integrity
    """Over everything sent: both loads and the messages delivered to both nodes at once."""
    fake_calls: Mapping[str, int]
    wall_seconds: float
    """Everything: the schema, the processes started and stopped, the loads, the checks."""

    @property
    def failures(self) -> int:
        return sum(run.timing.errors for run in self.runs) + len(self.at_once.failures)

    @property
    def ratio(self) -> float:
        one, two = (run.timing.rate for run in self.runs)
        return two / one if one else 0.0

    @property
    def ok(self) -> bool:
        """No check failed, no request failed, every message delivered twice got one reply."""
        same = self.at_once.same_reply == self.at_once.messages
        return self.check.ok and self.failures == 0 and same


def load(
    ports: Sequence[int], slots: Sequence[Sequence[Planned]], seconds: float, url: str
) -> tuple[Run, list[Message]]:
    """The slots' messages against the nodes at `ports`, then the wait for the workers to send
    the Telegram replies; the run and the messages sent."""
    requests = routed(slots, len(ports))
    result = run_split_load(ports, requests, warmup=WARMUP, seconds=seconds)
    done = [slot.sent for slot in result.slots]
    per_node = Counter(r.node for slot, n in zip(requests, done, strict=True) for r in slot[:n])
    drain_seconds, _ = wait_for_outbox(url, DRAIN_LIMIT_SECONDS)
    run = Run(
        nodes=len(ports),
        timing=result.timing,
        per_node=tuple(per_node[node] for node in range(len(ports))),
        drain_seconds=drain_seconds,
    )
    sent = [p.message for slot, n in zip(slots, done, strict=True) for p in slot[:n]]
    return run, sent


def deliver_at_once(ports: Sequence[int], messages: Sequence[Planned]) -> AtOnce:
    """Each message to every node at once, one message after another."""
    same, failures = 0, list[str]()
    for planned in messages:
        answers: tuple[Answer, ...] = at_once(ports, planned.request)
        failures.extend(answer.failure for answer in answers if answer.failure is not None)
        first = answers[0]
        same += all((a.status, a.body) == (first.status, first.body) for a in answers)
    return AtOnce(len(messages), same, tuple(failures))


def measure(
    postgresql_url: str,
    work: Plan,
    seconds: float,
    workdir: Path,
    say: Callable[[str], None] = lambda _: None,
) -> Outcome:
    """On a fresh scratch schema, with the fake Bot API, node A and SEND_WORKERS workers: the
    plan's first load against node A alone; then node B started, the second load against both,
    and the messages delivered to both at once; then every check over all of it."""
    began = time.monotonic()
    with fresh_database(postgresql_url, workdir, "scale_out", schema=SCHEMA) as url:
        with fake_bot_api() as fake:
            settings = settings_for(fake)
            with ExitStack() as processes:
                say("starting node A and the workers")
                node_a = processes.enter_context(serving(url, workdir, settings))
                for _ in range(SEND_WORKERS):
                    processes.enter_context(working(url, workdir, settings))
                say("the load against node A alone, then the Telegram replies sent")
                alone, sent = load([node_a.port], work.alone, seconds, url)
                say("starting node B")
                node_b = processes.enter_context(serving(url, workdir, settings))
                ports = [node_a.port, node_b.port]
                say("the load against both nodes, then the Telegram replies sent")
                spread, sent_spread = load(ports, work.spread, seconds, url)
                say("messages delivered to both nodes at once")
                both = deliver_at_once(ports, work.at_once)
                wait_for_outbox(url, DRAIN_LIMIT_SECONDS)
                say("stopping")
            received = fake.received()
        say("checking")
        everything = [*sent, *sent_spread, *(planned.message for planned in work.at_once)]
        check = verify(url, everything, received)
    return Outcome(
        runs=(alone, spread),
        at_once=both,
        check=check,
        fake_calls=received.calls,
        wall_seconds=time.monotonic() - began,
    )


# --- the report ------------------------------------------------------------------------------


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}"


def markdown(outcome: Outcome, work: Plan, seconds: float) -> str:
    slots = len(work.alone)
    check, both = outcome.check, outcome.at_once
    lines = [
        f"Respondents complete quick checks with {slots} in flight ({work.telegram_slots} of the "
        f"slots Telegram respondents, the rest SMS), each respondent one message at a time; "
        f"{sum(len(s) for s in work.alone):,} messages a run (stopped after {seconds:g} s), "
        f"the first {WARMUP} of each slot untimed. One fresh schema; {SEND_WORKERS} `dibot "
        f"worker` processes send the Telegram replies to a fake Bot API; each node is `dibot "
        f"serve` with {WORKERS} sync workers, node B started for the second run, which has "
        "other respondents with the same scripts. There one respondent's consecutive messages "
        "alternate between the nodes. Both nodes check Twilio's signatures against "
        "`twilio.public_url`, the balancer's URL, so either verifies any request. All on one "
        f"machine with {os.cpu_count()} CPUs: both nodes, both workers, PostgreSQL and the "
        "client share them, so the ratio shows correctness and overhead more than capacity.",
        "",
        "| run | timed requests | turns/s | p50 ms | p99 ms | max ms | failed | to node A "
        "| to node B | Telegram replies all sent (s after the load) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for run in outcome.runs:
        timing = run.timing
        lines.append(
            f"| {'one node' if run.nodes == 1 else 'two nodes'} | {timing.count:,} "
            f"| {timing.rate:.1f} | {_ms(timing.percentile(0.5))} "
            f"| {_ms(timing.percentile(0.99))} | {_ms(max(timing.latencies, default=0.0))} "
            f"| {timing.errors} | {run.per_node[0]:,} "
            f"| {f'{run.per_node[1]:,}' if run.nodes > 1 else '-'} | {run.drain_seconds:.1f} |"
        )
    lines += [
        "",
        f"Throughput, two nodes / one node: **{outcome.ratio:.2f}**. The whole stage took "
        f"{outcome.wall_seconds:.0f} s (the schema, starting and stopping the processes, the "
        "loads, the checks).",
        "",
        f"- The same message delivered to both nodes at once: {both.messages} messages "
        f"({DUPLICATE_SMS_RESPONDENTS} SMS and {DUPLICATE_TELEGRAM_RESPONDENTS} Telegram "
        f"respondents' first {DUPLICATE_MESSAGES}), {both.same_reply} of {both.messages} with "
        f"the same reply from both nodes, {len(both.failures)} failed deliveries; each one turn "
        "(one inbox row, its answers once, its replies sent once: checked below).",
        f"- Over everything sent: {check.messages_sent:,} messages, {check.inbox_rows:,} in the "
        f"inbox ({check.missing_messages} missing, {check.extra_messages} extra); "
        f"{check.answers_sent:,} answers sent, {check.answers_stored:,} stored "
        f"({check.missing_answers} missing, {check.extra_answers} extra); "
        f"{check.respondents_in_order} of {check.respondents} respondents' answers stored in the "
        f"order sent; {check.replies_queued:,} Telegram replies queued, "
        f"{check.replies_received:,} received by the fake ({check.replies_missing} missing, "
        f"{check.replies_duplicated} twice, {check.chats_out_of_order} chats out of order, "
        f"{check.replies_unsent} unsent): {'ok' if check.ok else '**FAILED**'}.",
        "",
        goals_table(goals(outcome)),
    ]
    return "\n".join(lines)


def goals(outcome: Outcome) -> tuple[Goal, ...]:
    check, both = outcome.check, outcome.at_once
    one, two = (run.timing.rate for run in outcome.runs)
    in_order = check.in_order
    return (
        Goal(
            name="Scale-out: duplicates (inbox, answers, Telegram replies sent)",
            target="0",
            measured=(
                f"{check.duplicates} ({check.extra_messages} inbox, {check.extra_answers} "
                f"answers, {check.replies_duplicated} replies)"
            ),
            met=check.duplicates == 0,
            why="" if check.duplicates == 0 else "a message, answer or reply was taken twice",
        ),
        Goal(
            name="Scale-out: every respondent's answers in order",
            target="all",
            measured=(
                f"{check.respondents_in_order} of {check.respondents}; "
                f"{check.chats_out_of_order} chats' replies out of order"
            ),
            met=in_order,
            why="" if in_order else "answers or replies stored or sent out of order",
        ),
        Goal(
            name="Scale-out: the same message at both nodes at once",
            target="one turn, the same reply",
            measured=f"{both.same_reply} of {both.messages} the same reply",
            met=both.same_reply == both.messages and check.duplicates == 0,
            why="" if both.same_reply == both.messages else "answered differently by the nodes",
        ),
        Goal(
            name="Scale-out: failed requests",
            target="0",
            measured=str(outcome.failures),
            met=outcome.failures == 0,
            why="" if outcome.failures == 0 else "see the raw failures",
        ),
        Goal(
            name="Scale-out: throughput, two nodes / one node (reported)",
            target=f"reported; one {os.cpu_count()}-CPU machine",
            measured=f"{outcome.ratio:.2f} ({two:.0f} / {one:.0f} turns/s)",
            met=True,
        ),
    )


def _listed(values: dict[str, Any]) -> dict[str, Any]:
    """Tuples as lists, as they come back from JSON."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in values.items()}


def raw(outcome: Outcome, work: Plan, seconds: float) -> dict[str, Any]:
    return {
        "seconds_limit": seconds,
        "in_flight": len(work.alone),
        "telegram_slots": work.telegram_slots,
        "messages_per_run": sum(len(s) for s in work.alone),
        "cpus": os.cpu_count(),
        "load_average_at_end": list(os.getloadavg()),
        "throughput_ratio": outcome.ratio,
        "wall_seconds": outcome.wall_seconds,
        "runs": [
            {
                "nodes": run.nodes,
                "timed": run.timing.count,
                "elapsed_seconds": run.timing.elapsed,
                "turns_per_second": run.timing.rate,
                "p50_ms": run.timing.percentile(0.5) * 1000,
                "p99_ms": run.timing.percentile(0.99) * 1000,
                "max_ms": max(run.timing.latencies, default=0.0) * 1000,
                "failures": dict(Counter(run.timing.failures)),
                "per_node": list(run.per_node),
                "drain_seconds": run.drain_seconds,
            }
            for run in outcome.runs
        ],
        "at_once": _listed(asdict(outcome.at_once)),
        "check": {**asdict(outcome.check), "ok": outcome.check.ok},
        "fake_bot_api_calls": dict(outcome.fake_calls),
    }


def scale_out(
    postgresql_url: str,
    *,
    seconds: float,
    requests: int,
    in_flight: int,
    telegram_slots: int,
    progress: bool = False,
) -> tuple[Outcome, Plan]:
    began = time.monotonic()

    def say(text: str) -> None:
        if progress:
            print(f"bench.scale_out: {time.monotonic() - began:6.1f} s {text}", file=sys.stderr)

    work = plan(load_flow(), requests, in_flight, telegram_slots)
    with tempfile.TemporaryDirectory(prefix="dibot-scale-out-") as workdir:
        return measure(postgresql_url, work, seconds, Path(workdir), say), work


def section(
    *,
    postgresql_url: str | None,
    seconds: float = DEFAULT_SECONDS,
    requests: int = DEFAULT_REQUESTS,
    in_flight: int = DEFAULT_IN_FLIGHT,
    telegram_slots: int = DEFAULT_TELEGRAM_SLOTS,
) -> Section:
    """The stage for `make bench` (key "scale_out"): one node, then two, on PostgreSQL."""
    title = "Scale-out: two nodes and two workers on one PostgreSQL"
    if postgresql_url is None:
        return Section(
            key="scale_out",
            title=title,
            markdown="Not measured: PostgreSQL's scale-out needs a PostgreSQL database.",
            ok=False,
        )
    outcome, work = scale_out(
        postgresql_url,
        seconds=seconds,
        requests=requests,
        in_flight=in_flight,
        telegram_slots=telegram_slots,
    )
    return Section(
        key="scale_out",
        title=title,
        markdown=markdown(outcome, work, seconds),
        raw=raw(outcome, work, seconds),
        goals=goals(outcome),
        ok=outcome.ok,
    )


# --- the command -----------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    assert __doc__ is not None
    parser = argparse.ArgumentParser(
        prog="python -m bench.scale_out",
        description=__doc__.split("\n\n")[0],
        epilog=__doc__.split("\n\n", 2)[2],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--database-url",
        help=f"the PostgreSQL database, used only inside schema {SCHEMA} "
        "(default: $DIBOT_DATABASE_URL when it names PostgreSQL)",
    )
    parser.add_argument(
        "--seconds",
        type=float,
        default=DEFAULT_SECONDS,
        help=f"time limit of each run's load (default {DEFAULT_SECONDS:g})",
    )
    parser.add_argument(
        "--requests",
        type=int,
        default=DEFAULT_REQUESTS,
        help=f"messages per run (default {DEFAULT_REQUESTS})",
    )
    parser.add_argument(
        "--in-flight",
        type=int,
        default=DEFAULT_IN_FLIGHT,
        help=f"respondents answering at once (default {DEFAULT_IN_FLIGHT})",
    )
    parser.add_argument(
        "--telegram-slots",
        type=int,
        default=DEFAULT_TELEGRAM_SLOTS,
        help=f"how many of them are Telegram respondents (default {DEFAULT_TELEGRAM_SLOTS})",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    arguments = _parser().parse_args(argv)
    try:
        if arguments.seconds <= 0 or arguments.requests < 1:
            raise ValueError("--seconds and --requests must be positive")
        if not 1 <= arguments.in_flight <= arguments.requests:
            raise ValueError("--in-flight must be between 1 and --requests")
        if not 0 <= arguments.telegram_slots <= arguments.in_flight:
            raise ValueError("--telegram-slots must be between 0 and --in-flight")
        url = measured_postgresql_url(arguments.database_url)
        if url is None:
            raise ValueError("give --database-url (PostgreSQL): the scale-out is PostgreSQL's")
    except ValueError as error:
        print(f"bench.scale_out: {error}", file=sys.stderr)
        return 2
    try:
        outcome, work = scale_out(
            url,
            seconds=arguments.seconds,
            requests=arguments.requests,
            in_flight=arguments.in_flight,
            telegram_slots=arguments.telegram_slots,
            progress=True,
        )
    except OperationalError as error:
        reason = str(error.orig).strip().splitlines()[0] if error.orig else type(error).__name__
        print(f"bench.scale_out: cannot use the database: {reason}", file=sys.stderr)
        return 2
    print(markdown(outcome, work, arguments.seconds))
    return 0 if outcome.ok else 1


if __name__ == "__main__":
    sys.exit(main())
