"""Follow-ups (issue 8, item 5): an outreach worker texts a resident with `dibot send`, the bot
stays quiet while their thread is open and keeps what they say for the worker, STOP and START
still work, and the assessment carries on where it was once the thread closes, whether the
worker closes it or it closes by itself. Every message in and out is on their timeline.

Conversations go over the real SMS webhook (signed as Twilio signs) and the Telegram webhook;
`dibot send` runs as the command line runs it, at a time set with time-machine. Runs on SQLite,
and on PostgreSQL when DIBOT_DATABASE_URL names it.
"""

from __future__ import annotations

import getpass
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
import time_machine
from flask import Flask
from flask.testing import FlaskClient

from channels.telegram import SECRET_HEADER
from dibot.cli import main
from dibot.config import (
    Config,
    ConfigError,
    DatabaseConfig,
    OutreachConfig,
    TwilioConfig,
    load_config,
)
from dibot.runtime import load_configured_flow
from dibot.turns import TurnHandler
from dibot.web import create_app
from flows.model import Flow
from flows.segments import count_segments
from outreach.followups import (
    FollowUpError,
    FollowUpRequest,
    fill_template,
    open_thread_id,
    send_followup,
)
from outreach.quiet_hours import parse_quiet_hours
from storage import timeline
from storage.models import Conversation, FollowUpThread, OutboxEntry, Respondent, table
from storage.privacy import keys_of
from tests.fake_telegram import FakeTelegram, text_update
from tests.people import urn_digest
from tests.telegram_support import SECRET, FakeClock, Worker, telegram_config
from tests.test_twilio_webhook import (
    COUNCIL,
    ENGLISH_ONLY,
    PUBLIC_URL,
    TOKEN,
    inbound,
    messages,
    post,
)
from tests.turn_helpers import send, stored_answers

PHONE = "07700 900123"
URN = "tel:+447700900123"
MONDAY = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
"""10:00 GMT on a Monday: within quiet hours."""
TEMPLATES = {
    "callback": "Hi, it's {worker} from {council}. Can I ring you on {day}? Or call {helpline}.",
    "thanks": "Thank you from {council}!",
}
FOLLOW_UP = "Hi, it's Sam from Testshire Council. Can I ring you about the tablet loan?"
QUESTION_3 = "Got it. 3/22 Do you have a good place to do what you need to online?"
QUESTION_4 = "Now, what makes it hard to go online? 4/22 "
ANY_TIME = parse_quiet_hours("", "", "Europe/London")
CHAT = 700900125
threads, outbox, respondents = table(FollowUpThread), table(OutboxEntry), table(Respondent)
conversations = table(Conversation)


class Clock:
    def __init__(self, now: datetime = MONDAY) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@dataclass(frozen=True)
class Said:
    status: int
    out: str
    err: str


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def config_path(tmp_path: Path, database_url: str) -> Path:
    """The configuration `dibot send` reads: the webhook's database, council and templates."""
    templates = "\n".join(f'{name} = "{text}"' for name, text in TEMPLATES.items())
    path = tmp_path / "config.toml"
    path.write_text(
        f'[database]\nurl = "{database_url}"\n'
        f'[council]\nname = "{COUNCIL.name}"\n'
        '[flow]\nlanguages = "en"\n'
        f"[outreach.templates]\n{templates}\n",
        encoding="utf-8",
    )
    return path


@pytest.fixture
def council_flow(config_path: Path) -> Flow:
    return load_configured_flow(load_config(config_path, environ={}))


@pytest.fixture
def handler(engine: sa.Engine, council_flow: Flow, clock: Clock) -> TurnHandler:
    return TurnHandler(engine, council_flow, clock=clock)


@pytest.fixture
def app(database_url: str, council_flow: Flow, handler: TurnHandler) -> Iterator[Flask]:
    config = Config(
        database=DatabaseConfig(url=database_url),
        twilio=TwilioConfig(auth_token=TOKEN, public_url=PUBLIC_URL),
        council=COUNCIL,
        flow=ENGLISH_ONLY,
    )
    app = create_app(config, handler=handler, flow=council_flow)
    yield app
    app.extensions["dibot"].engine.dispose()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def dibot(
    config_path: Path, clock: Clock, capsys: pytest.CaptureFixture[str]
) -> Callable[..., Said]:
    """`dibot send …` as an operator runs it, at the clock's time."""

    def run(*arguments: str) -> Said:
        capsys.readouterr()
        with time_machine.travel(clock.now, tick=False):
            status = main(["send", *arguments, "--config", str(config_path)])
        said = capsys.readouterr()
        return Said(status, said.out, said.err)

    return run


def sms(client: FlaskClient, body: str, sid: str | None = None) -> list[str]:
    """What the bot texts back (the TwiML's messages) to `body` from the resident."""
    return messages(post(client, inbound(body, sid)))


def at_question_3(client: FlaskClient) -> None:
    """Consent, the quick check, two questions answered: asked the third."""
    for body in ("Hi", "1", "1", "2"):
        assert sms(client, body)
    [asked] = sms(client, "2")
    assert asked.startswith(QUESTION_3)


def their_timeline(engine: sa.Engine, urn: str = URN) -> list[timeline.TimelineItem]:
    with engine.connect() as conn:
        respondent_id = conn.execute(
            sa.select(respondents.c.id).where(respondents.c.urn_digest == urn_digest(engine, urn))
        ).scalar_one()
        return timeline.read(conn, respondent_id, keys_of(engine))


def outbox_rows(engine: sa.Engine) -> list[sa.Row[tuple[object, ...]]]:
    with engine.connect() as conn:
        return list(conn.execute(sa.select(outbox).order_by(outbox.c.id)))


def thread_rows(engine: sa.Engine) -> list[sa.Row[tuple[object, ...]]]:
    with engine.connect() as conn:
        return list(conn.execute(sa.select(threads).order_by(threads.c.id)))


# --- the conversation ------------------------------------------------------------------------


def test_a_reply_to_a_follow_up_waits_for_the_worker_and_the_check_carries_on_after(
    client: FlaskClient, engine: sa.Engine, clock: Clock, dibot: Callable[..., Said]
) -> None:
    at_question_3(client)

    clock.now += timedelta(minutes=5)
    sent = dibot("--phone", PHONE, "--text", FOLLOW_UP, "--by", "Sam")
    assert (sent.status, sent.err) == (0, "")
    assert sent.out == (
        "follow-up queued: 1 message, 1 SMS segment; thread open until 2026-11-26 10:05 GMT\n"
    )
    [*_, followup] = outbox_rows(engine)
    assert (followup.kind, followup.channel, followup.sent_by) == ("followup", "sms", "Sam")
    assert (followup.text, followup.segments, followup.status) == (FOLLOW_UP, 1, "pending")

    clock.now += timedelta(minutes=30)
    assert sms(client, "thanks, can you ring me tomorrow?") == []  # the bot says nothing
    assert sms(client, "2") == []  # not an answer while they talk to Sam

    *_, out, held, held_too = their_timeline(engine)
    assert (out.direction, out.kind, out.text, out.by) == ("out", "followup", FOLLOW_UP, "Sam")
    assert (held.direction, held.kind, held.text) == (
        "in",
        "held",
        "thanks, can you ring me tomorrow?",
    )
    assert held.thread_id == held_too.thread_id == out.thread_id is not None
    assert [answer[:2] for answer in stored_answers(engine, URN)] == [
        ("BA01.access", 2),
        ("BA02.access", 2),
    ]

    clock.now += timedelta(hours=2)
    closed = dibot("--phone", PHONE, "--close", "--by", "Sam")
    assert closed.out == (
        "thread closed (opened by Sam 2026-11-23 10:05 GMT; 2 texts of theirs held in it); "
        "the bot carries on where they were\n"
    )
    [next_question] = sms(client, "2")
    assert next_question.startswith(QUESTION_4)  # "2" answered the question they were at
    assert len(stored_answers(engine, URN)) == 3
    [thread] = thread_rows(engine)
    assert (thread.closed_by, thread.closed_at) == ("Sam", clock.now)
    *_, taken, reply = their_timeline(engine)
    assert (taken.kind, taken.text, taken.thread_id) == ("message", "2", None)
    assert (reply.direction, reply.kind, reply.text) == ("out", "reply", next_question)


def test_every_message_in_and_out_is_on_the_timeline_in_order(
    client: FlaskClient, engine: sa.Engine, clock: Clock, dibot: Callable[..., Said]
) -> None:
    at_question_3(client)
    dibot("--phone", PHONE, "--text", FOLLOW_UP, "--by", "Sam")

    items = their_timeline(engine)

    assert [(item.direction, item.kind) for item in items] == [
        *[("in", "message"), ("out", "reply")] * 5,
        ("out", "followup"),
    ]
    assert [item.text for item in items if item.direction == "in"] == ["Hi", "1", "1", "2", "2"]
    assert str(items[-2].text).startswith(QUESTION_3)
    assert items[-1].send_status == "pending"
    assert items[-1].outbox_id == outbox_rows(engine)[-1].id


def test_stop_in_a_thread_opts_them_out_and_closes_it(
    client: FlaskClient,
    engine: sa.Engine,
    clock: Clock,
    handler: TurnHandler,
    dibot: Callable[..., Said],
) -> None:
    at_question_3(client)
    dibot("--phone", PHONE, "--text", FOLLOW_UP, "--by", "Sam")

    clock.now += timedelta(minutes=1)
    assert sms(client, "STOP") == []  # Twilio confirms its own opt-out words itself

    *_, stop = their_timeline(engine)  # no confirmation of ours: Twilio sent its own
    assert (stop.kind, stop.text, stop.thread_id is not None) == ("message", "STOP", True)
    [thread] = thread_rows(engine)
    assert (thread.closed_by, thread.closed_at) == ("resident", clock.now)
    refused = dibot("--phone", PHONE, "--text", "Are you there?")
    assert refused.status == 2
    assert refused.err == "dibot: they opted out (they can text START); nothing queued\n"

    [welcome_back] = sms(client, "START")
    assert welcome_back.startswith("Welcome back. 3/22 ")
    assert (
        send(handler, URN, "stop", channel="telegram")
        .replies[0]
        .text.startswith("You won't get any more texts from us.")
    )


def test_start_in_a_thread_closes_it_and_the_bot_carries_on(
    client: FlaskClient, engine: sa.Engine, clock: Clock, dibot: Callable[..., Said]
) -> None:
    at_question_3(client)
    dibot("--phone", PHONE, "--text", FOLLOW_UP, "--by", "Sam")

    [welcome_back] = sms(client, "Start")

    assert welcome_back.startswith("Welcome back. 3/22 ")
    assert sms(client, "2")[0].startswith(QUESTION_4)
    [thread] = thread_rows(engine)
    assert thread.closed_by == "resident"


def test_a_held_message_delivered_twice_is_held_once(
    client: FlaskClient, engine: sa.Engine, dibot: Callable[..., Said]
) -> None:
    at_question_3(client)
    dibot("--phone", PHONE, "--text", FOLLOW_UP)
    sid = "SM" + "7" * 32

    assert sms(client, "Tomorrow at 10 is fine", sid) == []
    assert sms(client, "Tomorrow at 10 is fine", sid) == []

    held = [item for item in their_timeline(engine) if item.kind == "held"]
    assert [item.text for item in held] == ["Tomorrow at 10 is fine"]
    with engine.connect() as conn:
        seen = conn.execute(sa.text("SELECT count(*) FROM inbox")).scalar_one()
    assert seen == 6


def test_the_thread_closes_by_itself_after_thread_hours_across_the_clock_change(
    client: FlaskClient, engine: sa.Engine, clock: Clock, dibot: Callable[..., Said]
) -> None:
    clock.now = datetime(2026, 10, 23, 11, 0, tzinfo=UTC)  # Friday noon BST
    at_question_3(client)

    sent = dibot("--phone", PHONE, "--text", FOLLOW_UP)

    # 72 hours later in real time; the clocks went back on Sunday 25 October, so the council's
    # clock shows 11:00 on Monday, not noon
    assert sent.out.endswith("; thread open until 2026-10-26 11:00 GMT\n")
    clock.now = datetime(2026, 10, 26, 10, 59, 59, tzinfo=UTC)
    assert sms(client, "Did you ring?") == []
    clock.now = datetime(2026, 10, 26, 11, 0, tzinfo=UTC)
    assert sms(client, "2")[0].startswith(QUESTION_4)
    [thread] = thread_rows(engine)
    assert thread.closed_at is None  # it closed by itself: nobody closed it
    assert dibot("--phone", PHONE, "--close").err == (
        "dibot: no follow-up thread is open with them: nothing to close\n"
    )


def test_another_follow_up_keeps_the_thread_open_longer(
    client: FlaskClient, engine: sa.Engine, clock: Clock, dibot: Callable[..., Said]
) -> None:
    at_question_3(client)
    dibot("--phone", PHONE, "--text", FOLLOW_UP)
    clock.now += timedelta(hours=48)

    again = dibot("--phone", PHONE, "--text", "Ringing you at 2 then.", "--by", "Sam")

    assert again.out.endswith("; thread kept open until 2026-11-28 10:00 GMT\n")
    [thread] = thread_rows(engine)
    assert thread.closes_at == clock.now + timedelta(hours=72)
    clock.now += timedelta(hours=71)
    assert sms(client, "OK") == []


def test_a_follow_up_waits_for_quiet_hours_and_the_thread_counts_from_when_it_goes(
    client: FlaskClient, engine: sa.Engine, clock: Clock, dibot: Callable[..., Said]
) -> None:
    at_question_3(client)
    clock.now = datetime(2026, 11, 28, 21, 0, tzinfo=UTC)  # Saturday night: Monday 09:00 next

    sent = dibot("--phone", PHONE, "--text", FOLLOW_UP)

    assert sent.out == (
        "follow-up queued: 1 message, 1 SMS segment, held by quiet hours until "
        "2026-11-30 09:00 GMT; thread open until 2026-12-03 09:00 GMT\n"
    )
    monday_nine = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
    assert outbox_rows(engine)[-1].next_attempt_at == monday_nine


def test_the_exact_form_sends_as_the_operator_running_it(
    client: FlaskClient, engine: sa.Engine, dibot: Callable[..., Said]
) -> None:
    at_question_3(client)

    assert dibot("--phone", PHONE, "--text", FOLLOW_UP).status == 0

    [thread] = thread_rows(engine)
    assert thread.opened_by == outbox_rows(engine)[-1].sent_by == getpass.getuser()
    assert their_timeline(engine)[-1].by == getpass.getuser()


# --- refusals ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("arguments", "said"),
    [
        (
            ("--phone", "07700 900999", "--text", "Hello"),
            "nobody with that number is held: enrol them first (dibot enrol --phone NUMBER); "
            "nothing queued",
        ),
        (
            ("--phone", PHONE, "--text", "  \n "),
            "the follow-up is empty: give --text TEXT or --template NAME",
        ),
        (
            ("--phone", PHONE, "--text", "x" * 1531),
            "the follow-up is 11 SMS segments (GSM-7); at most 10 go: shorten it",
        ),
        (
            ("--phone", PHONE, "--text", "ŵ" * 671),
            "the follow-up is 11 SMS segments (UCS-2); at most 10 go: shorten it",
        ),
        (("--phone", "0770", "--text", "Hello"), "--phone: "),
        (("--telegram", "@someone", "--text", "Hello"), "--telegram must be a Telegram chat id"),
        (
            ("--phone", PHONE, "--template", "nope"),
            "--template: no template named 'nope' (templates: callback, thanks)",
        ),
        (
            ("--phone", PHONE, "--template", "callback"),
            "the template's placeholder {day} has no value: give --value day=…",
        ),
        (
            ("--phone", PHONE, "--template", "thanks", "--value", "day=Tuesday"),
            "--value day: the template 'thanks' has no {day}",
        ),
        (
            ("--phone", PHONE, "--template", "callback", "--value", "worker=Bob"),
            "--value worker: {worker} is filled in already (--by, [council])",
        ),
        (("--phone", PHONE, "--text", "Hi", "--value", "a=b"), "--value fills in a --template"),
        (("--phone", PHONE, "--text", "Hi", "--by", " "), "--by must name who wrote it"),
        (("--phone", PHONE, "--close"), "no follow-up thread is open with them"),
    ],
)
def test_what_cannot_be_sent_is_refused_in_one_line_and_nothing_is_queued(
    client: FlaskClient,
    engine: sa.Engine,
    dibot: Callable[..., Said],
    arguments: tuple[str, ...],
    said: str,
) -> None:
    at_question_3(client)

    refused = dibot(*arguments)

    assert refused.status == 2
    assert refused.err.startswith(f"dibot: {said}")
    assert refused.err.count("\n") == 1
    assert not {"900123", "900999"} & set(refused.err.split())
    assert outbox_rows(engine) == []
    assert thread_rows(engine) == []


def test_someone_messages_cannot_reach_is_refused(
    client: FlaskClient, engine: sa.Engine, handler: TurnHandler, dibot: Callable[..., Said]
) -> None:
    at_question_3(client)
    handler.mark_unreachable(URN)

    refused = dibot("--phone", PHONE, "--text", FOLLOW_UP)

    assert refused.status == 2
    assert refused.err.startswith("dibot: messages cannot reach them")
    assert outbox_rows(engine) == []


# --- templates and segments --------------------------------------------------------------------


def test_a_template_is_filled_in_with_the_council_the_worker_and_the_values_given(
    client: FlaskClient, engine: sa.Engine, dibot: Callable[..., Said]
) -> None:
    at_question_3(client)

    sent = dibot(
        "--phone", PHONE, "--template", "CallBack", "--value", "day=Tuesday", "--by", "Sam"
    )

    assert sent.status == 0
    assert outbox_rows(engine)[-1].text == (
        "Hi, it's Sam from Testshire Council. Can I ring you on Tuesday? Or call 0300 000 0000."
    )


def test_placeholders_are_names_and_braces_can_be_written() -> None:
    assert fill_template("{{not one}} {a}", {"a": "A"}) == "{not one} A"
    for template, said in (
        ("{0}", "{0} is not a placeholder"),
        ("{a.b}", "{a.b} is not a placeholder"),
        ("{a!r}", "{a} is not a placeholder"),
        ("{a", "a brace in the template does not pair up"),
    ):
        with pytest.raises(FollowUpError, match=f"^{said}".replace("{", r"\{").replace("}", r"\}")):
            fill_template(template, {"a": "A"})


def test_templates_come_from_the_file_and_the_environment(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('[outreach.templates]\nhello = "Hello from {council}"\n', encoding="utf-8")

    config = load_config(path, environ={"DIBOT_OUTREACH_TEMPLATES_BYE": "Bye, {worker}"})

    assert config.outreach.templates == {"hello": "Hello from {council}", "bye": "Bye, {worker}"}
    assert OutreachConfig().templates == {}
    path.write_text('[outreach.templates]\nhello = "Hello {"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"\[outreach\] templates hello: a brace"):
        load_config(path, environ={})
    path.write_text('[outreach.templates]\n"Hello there" = "Hi"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="'Hello there' is not a template name"):
        load_config(path, environ={})
    with pytest.raises(ConfigError, match="DIBOT_OUTREACH_TEMPLATES_<NAME>"):
        load_config(environ={"DIBOT_OUTREACH_TEMPLATE": "x"})


@pytest.mark.parametrize(
    ("text", "segments", "encoding"),
    [
        ("x" * 160, 1, "GSM-7"),
        ("x" * 161, 2, "GSM-7"),
        ("x" * 68 + "👍", 1, "UCS-2"),  # the emoji is two UTF-16 units: 70 in all
        ("x" * 69 + "👍", 2, "UCS-2"),
        ("Diolch! Bydda i'n eich ffonio chi ddydd Mawrth am ddau o'r gloch. Sam", 1, "GSM-7"),
        (
            "Diolch! Bydda i'n eich ffonio chi ddydd Mawrth. Ydy hynny'n iawn? Sam, Cyngor Gŵyr",
            2,
            "UCS-2",
        ),
        ("It’s Sam – can I ring you?", 1, "UCS-2"),
    ],
)
def test_the_segment_count_is_what_the_sms_costs(
    client: FlaskClient,
    engine: sa.Engine,
    dibot: Callable[..., Said],
    text: str,
    segments: int,
    encoding: str,
) -> None:
    assert count_segments(text).encoding == encoding
    at_question_3(client)

    sent = dibot("--phone", PHONE, "--text", text)

    lines = sent.out.splitlines()
    assert lines[0].startswith(
        f"follow-up queued: 1 message, {segments} SMS segment{'s' * (segments > 1)};"
    )
    assert len(lines) == (2 if encoding == "UCS-2" else 1)
    if encoding == "UCS-2":
        assert lines[1].startswith("it goes as UCS-2")
    assert outbox_rows(engine)[-1].segments == segments


# --- the turn itself -----------------------------------------------------------------------------


def test_a_held_message_changes_nothing_of_the_conversation(
    engine: sa.Engine, council_flow: Flow, handler: TurnHandler, clock: Clock
) -> None:
    for text in ("Hi", "1", "1"):
        send(handler, URN, text)
    with engine.begin() as conn:
        before = conn.execute(sa.select(conversations.c.state)).one()
        conn.execute(sa.update(conversations).values(reminders_sent=1))
    request = FollowUpRequest(phone=PHONE, text=FOLLOW_UP, by="Sam")
    sent = send_followup(engine, council_flow, request, ANY_TIME, 72, clock.now)
    clock.now += timedelta(hours=1)

    for held in ("yes", "1", "BACK", "Cymraeg"):
        result = send(handler, URN, held, queue_replies=True)
        assert (result.replies, result.queued, result.events) == ((), (), ())

    with engine.connect() as conn:
        after = conn.execute(
            sa.select(
                conversations.c.state,
                conversations.c.reminders_sent,
                conversations.c.last_inbound_at,
            )
        ).one()
        assert open_thread_id(conn, sent.respondent_id, clock.now) == sent.thread_id
        assert open_thread_id(conn, sent.respondent_id, clock.now + timedelta(hours=71)) is None
    assert after.state == before.state
    assert after.reminders_sent == 0  # they wrote: reminders count afresh
    assert after.last_inbound_at == clock.now
    assert [o.kind for o in outbox_rows(engine)] == ["followup"]


def test_a_tap_on_an_old_button_in_a_thread_is_held(
    engine: sa.Engine, council_flow: Flow, handler: TurnHandler, clock: Clock
) -> None:
    from bot.messages import Inbound

    for text in ("Hi", "1", "1"):
        send(handler, URN, text)
    send_followup(
        engine, council_flow, FollowUpRequest(PHONE, FOLLOW_UP, "Sam"), ANY_TIME, 72, clock.now
    )

    result = handler.handle(
        channel="telegram",
        message_id="update-1",
        urn=URN,
        inbound=Inbound(text="", button="BA03.access:2"),
    )

    assert result.replies == ()
    assert their_timeline(engine)[-1].kind == "held"
    assert stored_answers(engine, URN) == []


# --- Telegram --------------------------------------------------------------------------------


def test_a_follow_up_to_a_telegram_respondent_goes_by_telegram_and_their_reply_waits(
    fake: FakeTelegram,
    database_url: str,
    engine: sa.Engine,
    council_flow: Flow,
    handler: TurnHandler,
    clock: Clock,
    dibot: Callable[..., Said],
) -> None:
    config = telegram_config(fake, database_url)
    app = create_app(config, handler=handler, flow=council_flow)
    client = app.test_client()

    def telegram(text: str) -> None:
        response = client.post(
            "/webhooks/telegram", json=text_update(CHAT, text), headers={SECRET_HEADER: SECRET}
        )
        assert response.status_code == 200

    with Worker(config, handler, engine, FakeClock(clock.now)) as worker:
        for text in ("/start", "1", "1"):
            telegram(text)
        worker.deliver()
        replies = len(fake.sent(CHAT))

        sent = dibot("--telegram", str(CHAT), "--text", FOLLOW_UP, "--by", "Sam")
        assert sent.out.startswith("follow-up queued: 1 message, 1 SMS segment; thread open")
        assert worker.deliver() == 1
        assert fake.sent(CHAT)[-1].params["text"] == FOLLOW_UP

        telegram("Thanks! Thursday morning is good")
        assert worker.deliver() == 0  # Telegram sends nothing
        assert len(fake.sent(CHAT)) == replies + 1
    app.extensions["dibot"].engine.dispose()
    *_, followup, held = their_timeline(engine, f"telegram:{CHAT}")
    assert (followup.channel, followup.kind, followup.send_status) == (
        "telegram",
        "followup",
        "sent",
    )
    assert (held.channel, held.kind, held.text) == (
        "telegram",
        "held",
        "Thanks! Thursday morning is good",
    )
