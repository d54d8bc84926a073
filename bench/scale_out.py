"""Scale-out on PostgreSQL: two `dibot serve` nodes and two `dibot worker`s on one database.

    .venv/bin/python -m bench.scale_out --database-url URL [--seconds N] [--requests N]
                                        [--in-flight N] [--telegram-slots N]

Respondents complete quick checks, over signed Twilio webhooks and over Telegram updates, each
respondent one message at a time (the next only once the last was answered, as a phone does).
The same work runs twice, each time on a freshly migrated scratch schema with two `dibot
worker` processes sending the Telegram replies to a fake Bot API on 127.0.0.1 (a process of its
own, counting what it receives):
1. against one node: every message to node A;
2. against two nodes (A and B, each `dibot serve` with 2 sync workers on its own port, the same
   database and secrets): one respondent's consecutive messages alternate between the nodes
   (message 1 to A, 2 to B, ...; every other respondent starts on B), as behind a load balancer
   that keeps no affinity. Twilio signs the URL it calls, the balancer's: `twilio.public_url`
   names it on both nodes, so either node verifies any request. Then a few respondents' messages
   are each delivered to both nodes at the same moment (a provider's retry landing on the other
   node while the first delivery is being answered).

Afterwards, each time: every message is in the inbox once, every answer stored once, each
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
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import OperationalError

from bench.fake_bot_api import TELEGRAM_TOKEN, FakeBotApi, Received, fake_bot_api
from bench.http_load import (
    STOP_LIMIT_SECONDS,
    WORKERS,
    Request,
    Timing,
    serving,
)
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
    """The respondent's number in the plan: which node their first message goes to."""
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
    """Hands out respondents, each with their whole quick check planned."""

    def __init__(self, flow: Flow) -> None:
        self.flow = flow
        self.count = 0
        self.sms = 0
        self.chats = 0
        self.updates = 0

    def next(self, channel: str) -> list[Planned]:
        number = self.count
        self.count += 1
        if channel == "sms":
            if self.sms >= len(RESPONDENTS):
                raise ValueError(f"more SMS respondents than the {len(RESPONDENTS)} numbers")
            urn = "tel:" + RESPONDENTS[self.sms]
            self.sms += 1
        else:
            urn = f"telegram:{FIRST_CHAT_ID + self.chats}"
            self.chats += 1
        planned = []
        for position, (body, questions) in enumerate(script(self.flow, number)):
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
    slots: tuple[tuple[Planned, ...], ...]
    """Each in-flight slot's messages: its respondents one after another."""
    at_once: tuple[Planned, ...]
    """Messages each delivered to both nodes at once (respondents of their own)."""
    telegram_slots: int


def plan(flow: Flow, requests: int, in_flight: int, telegram_slots: int) -> Plan:
    """`requests` messages over `in_flight` slots, the last `telegram_slots` of them Telegram
    respondents; then the messages delivered to both nodes at once."""
    respondents = _Respondents(flow)
    quotas = [requests // in_flight + (slot < requests % in_flight) for slot in range(in_flight)]
    slots = []
    for slot, quota in enumerate(quotas):
        channel = "telegram" if slot >= in_flight - telegram_slots else "sms"
        messages: list[Planned] = []
        while len(messages) < quota:
            messages.extend(respondents.next(channel)[: quota - len(messages)])
        slots.append(tuple(messages))
    twice: list[Planned] = []
    for channel, count in (
        ("sms", DUPLICATE_SMS_RESPONDENTS),
        ("telegram", DUPLICATE_TELEGRAM_RESPONDENTS),
    ):
        for _ in range(count):
            twice.extend(respondents.next(channel)[:DUPLICATE_MESSAGES])
    return Plan(tuple(slots), tuple(twice), telegram_slots)


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


def _dibot_command() -> list[str]:
    script = shutil.which("dibot", path=str(Path(sys.executable).parent))
    return [script] if script else [sys.executable, "-m", "dibot.cli"]


@contextmanager
def working(
    database_url: str, workdir: Path, settings: Mapping[str, str], number: int
) -> Iterator[int]:
    """`dibot worker` (its pid), configured only by `settings` and the database URL (with its
    encryption key); stopped with SIGTERM after the block, as an operator stops it."""
    from storage.privacy import KEY_VARIABLE

    environment = {k: v for k, v in os.environ.items() if not k.startswith("DIBOT_")}
    if KEY_VARIABLE in os.environ:
        environment[KEY_VARIABLE] = os.environ[KEY_VARIABLE]
    environment.update(DIBOT_DATABASE_URL=database_url, **settings)
    with (workdir / f"worker-{number}.log").open("w") as log:
        worker = subprocess.Popen(
            [*_dibot_command(), "worker"],
            cwd=workdir,
            env=environment,
            stdout=subprocess.DEVNULL,
            stderr=log,
            start_new_session=True,
        )
    try:
        yield worker.pid
    finally:
        if worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(timeout=STOP_LIMIT_SECONDS)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait()


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


# --- a run -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class AtOnce:
    """Messages each delivered to both nodes at the same moment."""

    messages: int
    same_reply: int
    """Messages whose two deliveries got the same answer (status and body)."""
    failures: tuple[str, ...]


@dataclass(frozen=True)
class Run:
    nodes: int
    timing: Timing
    per_node: tuple[int, ...]
    """Requests each node was sent (timed and warm-up)."""
    drain_seconds: float
    """From the end of the load to the last Telegram reply sent."""
    at_once: AtOnce | None
    check: Integrity
    fake_calls: Mapping[str, int]
    wall_seconds: float
    """The whole run: schema, processes started and stopped, load, drain, checks."""

    @property
    def failures(self) -> int:
        return self.timing.errors + (len(self.at_once.failures) if self.at_once else 0)


def deliver_at_once(ports: Sequence[int], messages: Sequence[Planned]) -> AtOnce:
    """Each message to every node at once, one message after another."""
    same, failures = 0, list[str]()
    for planned in messages:
        answers: tuple[Answer, ...] = at_once(ports, planned.request)
        failures.extend(answer.failure for answer in answers if answer.failure is not None)
        first = answers[0]
        same += all((a.status, a.body) == (first.status, first.body) for a in answers)
    return AtOnce(len(messages), same, tuple(failures))


def run(
    postgresql_url: str, work: Plan, nodes: int, seconds: float, workdir: Path, *, twice: bool
) -> Run:
    """The plan's load on a fresh schema against `nodes` nodes with SEND_WORKERS workers; with
    `twice`, then the messages delivered to every node at once."""
    began = time.monotonic()
    with fresh_database(postgresql_url, workdir, "scale_out", schema=SCHEMA) as url:
        with fake_bot_api() as fake:
            settings = settings_for(fake)
            with ExitStack() as processes:
                servers = [
                    processes.enter_context(serving(url, workdir, settings)) for _ in range(nodes)
                ]
                for number in range(SEND_WORKERS):
                    processes.enter_context(working(url, workdir, settings, number))
                ports = [server.port for server in servers]
                slots = routed(work.slots, nodes)
                load = run_split_load(ports, slots, warmup=WARMUP, seconds=seconds)
                sent = [
                    planned.message
                    for slot, done in zip(work.slots, load.slots, strict=True)
                    for planned in slot[: done.sent]
                ]
                per_node = Counter(
                    routed_request.node
                    for slot, done in zip(slots, load.slots, strict=True)
                    for routed_request in slot[: done.sent]
                )
                both = deliver_at_once(ports, work.at_once) if twice else None
                if twice:
                    sent.extend(planned.message for planned in work.at_once)
                drain_seconds, _ = wait_for_outbox(url, DRAIN_LIMIT_SECONDS)
            received = fake.received()
        check = verify(url, sent, received)
    return Run(
        nodes=nodes,
        timing=load.timing,
        per_node=tuple(per_node[node] for node in range(nodes)),
        drain_seconds=drain_seconds,
        at_once=both,
        check=check,
        fake_calls=received.calls,
        wall_seconds=time.monotonic() - began,
    )


# --- the report --------------------------------------------------------------------------------


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}"


def passed(runs: Sequence[Run]) -> bool:
    """No check failed, no request failed, every message delivered twice got one reply."""
    return all(
        r.check.ok
        and r.failures == 0
        and (r.at_once is None or r.at_once.same_reply == r.at_once.messages)
        for r in runs
    )


def ratio_of(runs: Sequence[Run]) -> float:
    one, two = runs[0].timing.rate, runs[-1].timing.rate
    return two / one if one else 0.0


def markdown(runs: Sequence[Run], work: Plan, seconds: float) -> str:
    slots = len(work.slots)
    lines = [
        f"Respondents complete quick checks with {slots} in flight ({work.telegram_slots} of the "
        f"slots Telegram respondents, the rest SMS), each respondent one message at a time; "
        f"{sum(len(s) for s in work.slots):,} messages per run (at most {seconds:g} s each), "
        f"the first {WARMUP} of each slot untimed. Every run has its own fresh schema and "
        f"{SEND_WORKERS} `dibot worker` processes sending the Telegram replies to a fake Bot "
        f"API; each node is `dibot serve` with {WORKERS} sync workers. With two nodes one "
        "respondent's consecutive messages alternate between them. All on one machine with "
        f"{os.cpu_count()} CPUs: both nodes, both workers, PostgreSQL and the client share "
        "them, so the ratio shows correctness and overhead more than capacity.",
        "",
        "| run | timed requests | turns/s | p50 ms | p99 ms | max ms | failed | to node A "
        "| to node B | Telegram replies sent within (s after the load) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for result in runs:
        timing = result.timing
        to_b = str(result.per_node[1]) if result.nodes > 1 else "-"
        lines.append(
            f"| {'one node' if result.nodes == 1 else 'two nodes'} | {timing.count:,} "
            f"| {timing.rate:.1f} | {_ms(timing.percentile(0.5))} "
            f"| {_ms(timing.percentile(0.99))} | {_ms(max(timing.latencies, default=0.0))} "
            f"| {result.failures} | {result.per_node[0]:,} | {to_b} "
            f"| {result.drain_seconds:.1f} |"
        )
    walls = ", ".join(f"{r.wall_seconds:.0f} s" for r in runs)
    lines += [
        "",
        f"Throughput, two nodes / one node: **{ratio_of(runs):.2f}**. Both nodes check Twilio's "
        "signatures against `twilio.public_url`, the balancer's URL, so either verifies any "
        f"request. Each run in all (schema, processes, load, drain, checks): {walls}.",
        "",
    ]
    for result in runs:
        check = result.check
        name = "one node" if result.nodes == 1 else "two nodes"
        lines.append(
            f"- {name}: {check.messages_sent:,} messages, {check.inbox_rows:,} in the inbox; "
            f"{check.answers_sent:,} answers sent, {check.answers_stored:,} stored "
            f"({check.missing_answers} missing, {check.extra_answers} extra); "
            f"{check.respondents_in_order} of {check.respondents} respondents' answers in the "
            f"order sent; {check.replies_queued:,} Telegram replies queued, "
            f"{check.replies_received:,} received by the fake ({check.replies_missing} missing, "
            f"{check.replies_duplicated} twice, {check.chats_out_of_order} chats out of order, "
            f"{check.replies_unsent} unsent): {'ok' if check.ok else '**FAILED**'}."
        )
        if result.at_once is not None:
            both = result.at_once
            lines.append(
                f"- the same message delivered to both nodes at once: {both.messages} messages "
                f"({DUPLICATE_SMS_RESPONDENTS} SMS and {DUPLICATE_TELEGRAM_RESPONDENTS} Telegram "
                f"respondents' first {DUPLICATE_MESSAGES}), each one turn (checked above), "
                f"{both.same_reply} of {both.messages} with the same reply from both nodes, "
                f"{len(both.failures)} failed deliveries."
            )
    lines += ["", goals_table(goals(runs))]
    return "\n".join(lines)


def goals(runs: Sequence[Run]) -> tuple[Goal, ...]:
    duplicates = sum(r.check.duplicates for r in runs)
    failures = sum(r.failures for r in runs)
    respondents = sum(r.check.respondents for r in runs)
    in_order = sum(r.check.respondents_in_order for r in runs)
    chats_out = sum(r.check.chats_out_of_order for r in runs)
    both = [r.at_once for r in runs if r.at_once is not None]
    same = sum(b.same_reply for b in both)
    delivered = sum(b.messages for b in both)
    one, two = runs[0].timing.rate, runs[-1].timing.rate
    duplicates_why = "" if duplicates == 0 else "a message, answer or reply was taken twice"
    return (
        Goal(
            name="Scale-out: duplicates (inbox, answers, Telegram replies sent)",
            target="0",
            measured=(
                f"{duplicates} ({sum(r.check.extra_messages for r in runs)} inbox, "
                f"{sum(r.check.extra_answers for r in runs)} answers, "
                f"{sum(r.check.replies_duplicated for r in runs)} replies)"
            ),
            met=duplicates == 0,
            why=duplicates_why,
        ),
        Goal(
            name="Scale-out: every respondent's answers in order",
            target="all",
            measured=f"{in_order} of {respondents}; {chats_out} chats' replies out of order",
            met=in_order == respondents and chats_out == 0,
            why="" if in_order == respondents and chats_out == 0 else "see the checks above",
        ),
        Goal(
            name="Scale-out: the same message at both nodes at once",
            target="one turn, the same reply",
            measured=f"{same} of {delivered} the same reply",
            met=same == delivered and all(r.check.ok for r in runs),
            why="" if same == delivered else "the two deliveries were answered differently",
        ),
        Goal(
            name="Scale-out: failed requests",
            target="0",
            measured=str(failures),
            met=failures == 0,
            why="" if failures == 0 else "see the raw failures",
        ),
        Goal(
            name="Scale-out: throughput, two nodes / one node (reported)",
            target="reported; one 2-core machine",
            measured=f"{ratio_of(runs):.2f} ({two:.0f} / {one:.0f} turns/s)",
            met=True,
        ),
    )


def raw(runs: Sequence[Run], work: Plan, seconds: float) -> dict[str, Any]:
    return {
        "seconds_limit": seconds,
        "in_flight": len(work.slots),
        "telegram_slots": work.telegram_slots,
        "messages_per_run": sum(len(s) for s in work.slots),
        "cpus": os.cpu_count(),
        "throughput_ratio": ratio_of(runs),
        "runs": [
            {
                "nodes": r.nodes,
                "timed": r.timing.count,
                "elapsed_seconds": r.timing.elapsed,
                "turns_per_second": r.timing.rate,
                "p50_ms": r.timing.percentile(0.5) * 1000,
                "p99_ms": r.timing.percentile(0.99) * 1000,
                "max_ms": max(r.timing.latencies, default=0.0) * 1000,
                "failures": dict(Counter(r.timing.failures)),
                "per_node": list(r.per_node),
                "drain_seconds": r.drain_seconds,
                "at_once": _listed(asdict(r.at_once)) if r.at_once else None,
                "check": {**asdict(r.check), "ok": r.check.ok},
                "fake_bot_api_calls": dict(r.fake_calls),
                "wall_seconds": r.wall_seconds,
            }
            for r in runs
        ],
    }


def _listed(values: dict[str, Any]) -> dict[str, Any]:
    """Tuples as lists, as they come back from JSON."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in values.items()}


def measure(
    postgresql_url: str,
    *,
    seconds: float,
    requests: int,
    in_flight: int,
    telegram_slots: int,
    progress: bool = False,
) -> tuple[list[Run], Plan]:
    work = plan(load_flow(), requests, in_flight, telegram_slots)
    runs = []
    with tempfile.TemporaryDirectory(prefix="dibot-scale-out-") as workdir:
        for nodes in (1, 2):
            if progress:
                print(f"bench.scale_out: {nodes} node(s)", file=sys.stderr, flush=True)
            runs.append(run(postgresql_url, work, nodes, seconds, Path(workdir), twice=nodes > 1))
    return runs, work


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
    runs, work = measure(
        postgresql_url,
        seconds=seconds,
        requests=requests,
        in_flight=in_flight,
        telegram_slots=telegram_slots,
    )
    return Section(
        key="scale_out",
        title=title,
        markdown=markdown(runs, work, seconds),
        raw=raw(runs, work, seconds),
        goals=goals(runs),
        ok=passed(runs),
    )


# --- the command ------------------------------------------------------------------------------


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
        runs, work = measure(
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
    print(markdown(runs, work, arguments.seconds))
    return 0 if passed(runs) else 1


if __name__ == "__main__":
    sys.exit(main())
