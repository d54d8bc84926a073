"""Retention, erasure and subject access (the bar's item 15), in storage and through the
`dibot` commands: retention removes exactly what is older than the policy, erasure removes one
person and nobody else, a subject-access export holds one person's data and nobody else's.
Runs on SQLite, and on PostgreSQL when DIBOT_DATABASE_URL names it."""

from __future__ import annotations

import json
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from dibot.cli import main
from dibot.privacy_commands import NotAPhoneNumber, phone_urn
from dibot.turns import TurnHandler
from flows.model import Flow
from outreach.followups import FollowUpRequest, send_followup
from outreach.quiet_hours import parse_quiet_hours
from storage.models import (
    Answer,
    Checkin,
    FollowUpThread,
    InboxEntry,
    OutboxEntry,
    Respondent,
    TimelineEntry,
    table,
)
from storage.personal_data import RetentionPolicy, apply_retention
from tests.people import urn_digest
from tests.turn_helpers import send, start_quick_check

URN = "tel:+447700900123"
OTHER = "tel:+447700900124"
T0 = datetime(2020, 3, 2, 9, 0, tzinfo=UTC)
"""Long ago, so the real clock of the commands is past every retention period."""
answers, inbox, outbox = table(Answer), table(InboxEntry), table(OutboxEntry)
respondents = table(Respondent)
timeline, threads, checkins = table(TimelineEntry), table(FollowUpThread), table(Checkin)
ANY_TIME = parse_quiet_hours("", "", "Europe/London")


class Clock:
    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def count(engine: sa.Engine, table_: sa.Table, *where: sa.ColumnElement[bool]) -> int:
    with engine.connect() as conn:
        query = sa.select(sa.func.count()).select_from(table_).where(*where)
        return int(conn.execute(query).scalar_one())


def config_file(tmp_path: Path, database_url: str, **privacy: int) -> str:
    lines = ["[database]", f'url = "{database_url}"', "[privacy]"]
    lines += [f"{key} = {value}" for key, value in privacy.items()]
    path = tmp_path / "config.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


def two_people(engine: sa.Engine, flow: Flow, clock: Clock) -> TurnHandler:
    """URN answers two questions (typed), OTHER one; replies queued as over Telegram."""
    handler = TurnHandler(engine, flow, clock=clock)
    for urn, typed in ((URN, ("Usualy", "Sometims")), (OTHER, ("Alwys",))):
        start_quick_check(handler, urn)
        for text in typed:
            send(handler, urn, text, queue_replies=True)
    return handler


# --- retention -------------------------------------------------------------------------------


def test_retention_removes_exactly_what_is_older_than_the_policy(
    engine: sa.Engine, flow: Flow
) -> None:
    clock = Clock()
    handler = two_people(engine, flow, clock)
    clock.now = T0 + timedelta(days=1)
    send(handler, URN, "3", queue_replies=True)  # a day younger than the rest
    with engine.begin() as conn:
        conn.execute(sa.update(outbox).values(status="sent"))
    policy = RetentionPolicy(raw_text_days=30, inbox_days=7)
    messages, replies = count(engine, inbox), count(engine, outbox)
    young = count(engine, inbox, inbox.c.received_at == clock.now)

    at_the_edge = apply_retention(engine, policy, T0 + timedelta(days=7))
    assert (at_the_edge.raw_texts, at_the_edge.inbox_messages, at_the_edge.outbox_messages) == (
        0,
        0,
        0,
    )
    just_past = apply_retention(engine, policy, T0 + timedelta(days=7, microseconds=1))
    assert just_past.raw_texts == 0
    assert just_past.inbox_messages == messages - young
    assert count(engine, inbox) == young
    assert count(engine, outbox) == replies - just_past.outbox_messages
    assert count(engine, outbox, outbox.c.created_at == T0) == 0

    entries = count(engine, timeline)
    raw_edge = apply_retention(engine, policy, T0 + timedelta(days=30))
    assert (raw_edge.raw_texts, raw_edge.timeline_texts) == (0, 0)
    raw_past = apply_retention(engine, policy, T0 + timedelta(days=30, seconds=1))
    assert raw_past.raw_texts == 3  # the typed ones; "3" a day later is still kept
    assert count(engine, answers, answers.c.raw.is_not(None)) == 1
    assert count(engine, answers, answers.c.option.is_(None)) == 0  # options and scores stay
    assert count(engine, answers) == 4
    assert raw_past.timeline_texts == entries - 2  # "3" and its reply, a day later, kept
    assert count(engine, timeline, timeline.c.text_cipher.is_not(None)) == 2
    assert count(engine, timeline) == entries  # when, which way, what kind: kept


def test_retention_leaves_unsent_messages_alone(engine: sa.Engine, flow: Flow) -> None:
    two_people(engine, flow, Clock())
    pending = count(engine, outbox)
    report = apply_retention(engine, RetentionPolicy(0, 1), T0 + timedelta(days=365))
    assert report.outbox_messages == 0
    assert count(engine, outbox) == pending
    assert count(engine, inbox) == 0


def test_the_retention_command_says_what_it_removed(
    engine: sa.Engine,
    flow: Flow,
    database_url: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    two_people(engine, flow, Clock())
    messages = count(engine, inbox)
    config = config_file(tmp_path, database_url, raw_text_days=0, inbox_days=1)
    assert main(["retention", "--config", config]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "typed answer text older than 0 days: removed from 3 answers",
        f"message texts on timelines older than 0 days: removed from {2 * messages} messages",
        f"inbox messages older than 1 days: {messages} removed",
        "outbox messages sent or given up over 1 days ago: 0 removed",
    ]
    assert count(engine, answers, answers.c.raw.is_not(None)) == 0


# --- erasure ---------------------------------------------------------------------------------


def held(engine: sa.Engine, urn: str) -> dict[str, int]:
    digest = urn_digest(engine, urn)
    with engine.connect() as conn:
        found = conn.execute(
            sa.select(respondents.c.id).where(respondents.c.urn_digest == digest)
        ).scalar_one_or_none()
        if found is None:
            return {}
        return {
            name: int(conn.execute(sa.text(query), {"id": found}).scalar_one())
            for name, query in (
                (
                    "answers",
                    "SELECT count(*) FROM answers a JOIN assessments s"
                    " ON s.id = a.assessment_id WHERE s.respondent_id = :id",
                ),
                ("inbox", "SELECT count(*) FROM inbox WHERE respondent_id = :id"),
                ("outbox", "SELECT count(*) FROM outbox WHERE respondent_id = :id"),
                ("timeline", "SELECT count(*) FROM timeline WHERE respondent_id = :id"),
                ("threads", "SELECT count(*) FROM threads WHERE respondent_id = :id"),
                ("checkins", "SELECT count(*) FROM checkins WHERE respondent_id = :id"),
            )
        }


def test_erase_by_phone_removes_that_person_and_nobody_else(
    engine: sa.Engine,
    flow: Flow,
    database_url: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    two_people(engine, flow, Clock())
    theirs, others = held(engine, URN), held(engine, OTHER)
    config = config_file(tmp_path, database_url)
    assert main(["erase", "--phone", "07700 900123", "--config", config]) == 0
    assert capsys.readouterr().out == (
        f"erased: {theirs['answers']} answers, {theirs['outbox']} outbox messages, "
        f"{theirs['inbox']} inbox messages, {theirs['timeline']} timeline entries, "
        "1 conversations, 1 assessments, 1 respondents\n"
    )
    assert held(engine, URN) == {}
    assert held(engine, OTHER) == others
    assert count(engine, respondents) == 1


def test_erasure_takes_their_follow_ups_and_check_ins_and_leaves_everyone_elses(
    engine: sa.Engine,
    flow: Flow,
    database_url: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    clock = Clock()
    handler = two_people(engine, flow, clock)
    followed_up(engine, flow, handler, clock)
    followed_up(engine, flow, handler, clock, urn=OTHER)
    others = held(engine, OTHER)
    assert others["threads"] == others["checkins"] == 1
    config = config_file(tmp_path, database_url)

    assert main(["erase", "--phone", "07700 900123", "--config", config]) == 0

    said = capsys.readouterr().out
    assert "1 follow-up threads, 1 check-ins" in said
    assert held(engine, URN) == {}
    assert held(engine, OTHER) == others
    assert count(engine, threads) == count(engine, checkins) == 1


def followed_up(
    engine: sa.Engine, flow: Flow, handler: TurnHandler, clock: Clock, urn: str = URN
) -> None:
    """A worker's follow-up, the resident's reply held in its thread, and a check-in."""
    request = FollowUpRequest(
        phone=urn.removeprefix("tel:"),
        text="Hi, it's Sam from the council. Can I ring you?",
        by="Sam",
    )
    sent = send_followup(engine, flow, request, ANY_TIME, 72, clock.now)
    assert send(handler, urn, "Yes please, after 2").replies == ()
    with engine.begin() as conn:
        conn.execute(
            sa.insert(checkins).values(
                respondent_id=sent.respondent_id,
                due_at=clock.now + timedelta(days=90),
                status="scheduled",
                scheduled_by="Sam",
                scheduled_at=clock.now,
            )
        )


def test_erase_by_urn_and_of_nobody(
    engine: sa.Engine,
    flow: Flow,
    database_url: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    handler = TurnHandler(engine, flow, clock=Clock())
    send(handler, "telegram:700900125", "Hi")
    config = config_file(tmp_path, database_url)
    assert main(["erase", "--urn", "telegram:700900125", "--config", config]) == 0
    assert count(engine, respondents) == 0
    capsys.readouterr()
    assert main(["erase", "--urn", "telegram:700900125", "--config", config]) == 1
    assert capsys.readouterr().err == (
        "dibot: nobody with that number or URN is held; nothing removed\n"
    )


def test_a_person_erased_who_texts_again_starts_afresh(engine: sa.Engine, flow: Flow) -> None:
    from storage.personal_data import erase
    from storage.privacy import open_privacy

    handler = two_people(engine, flow, Clock())
    assert erase(engine, open_privacy(engine), URN) is not None
    (reply,) = send(handler, URN, "Hi").replies
    assert held(engine, URN) == {
        "answers": 0,
        "inbox": 1,
        "outbox": 0,
        "timeline": 2,
        "threads": 0,
        "checkins": 0,
    }
    assert reply.text


# --- subject access ----------------------------------------------------------------------------


def test_a_subject_access_export_holds_one_person_decrypted_and_nobody_else(
    engine: sa.Engine,
    flow: Flow,
    database_url: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    clock = Clock()
    handler = two_people(engine, flow, clock)
    followed_up(engine, flow, handler, clock)
    theirs = held(engine, URN)
    out = tmp_path / "sar.json"
    config = config_file(tmp_path, database_url)
    assert main(["sar", "--phone", "+44 7700 900123", "--out", str(out), "--config", config]) == 0
    assert capsys.readouterr().out == (
        f"wrote {out}: 1 assessments, {theirs['answers']} answers, {theirs['inbox']} inbox and "
        f"{theirs['outbox']} outbox messages, {theirs['timeline']} timeline messages, "
        "1 follow-up threads, 1 check-ins\n"
    )
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    text = out.read_text(encoding="utf-8")
    export = json.loads(text)
    assert export["respondent"]["urn"] == URN
    assert export["conversation"]["state"]["stage"] == "asking"
    [assessment] = export["assessments"]
    typed = [answer["typed_text"] for answer in assessment["answers"]]
    assert typed == ["Usualy", "Sometims"]
    assert len(export["inbox"]) == theirs["inbox"]
    assert len(export["outbox"]) == theirs["outbox"]
    assert all(message["text"] for message in export["outbox"])
    assert (assessment["kind"], assessment["baseline_id"]) == ("baseline", None)
    assert [(m["direction"], m["kind"], m["text"]) for m in export["timeline"][-3:]] == [
        ("out", "reply", export["timeline"][-3]["text"]),
        ("out", "followup", "Hi, it's Sam from the council. Can I ring you?"),
        ("in", "held", "Yes please, after 2"),
    ]
    assert export["timeline"][-2]["by"] == "Sam"
    [thread] = export["followup_threads"]
    assert (thread["opened_by"], thread["closed_at"]) == ("Sam", None)
    assert export["timeline"][-1]["thread_id"] == thread["id"]
    [checkin] = export["checkins"]
    assert (checkin["status"], checkin["scheduled_by"]) == ("scheduled", "Sam")
    assert "900124" not in text
    assert "Alwys" not in text


def test_a_subject_access_export_never_overwrites_and_says_when_nobody_is_held(
    database_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = config_file(tmp_path, database_url)
    out = tmp_path / "sar.json"
    assert main(["sar", "--urn", URN, "--out", str(out), "--config", config]) == 1
    assert not out.exists()
    out.write_text("kept")
    assert main(["sar", "--urn", URN, "--out", str(out), "--config", config]) == 2
    assert out.read_text() == "kept"
    assert capsys.readouterr().err.splitlines()[-1] == f"dibot: --out {out} exists: give a new file"


# --- phone numbers -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "number",
    [
        "07700 900123",
        "07700900123",
        "+44 7700 900123",
        "+447700900123",
        "0044 7700 900123",
        "(07700) 900-123",
    ],
)
def test_a_phone_number_is_normalised_as_the_twilio_channel_stores_it(number: str) -> None:
    assert phone_urn(number) == URN


@pytest.mark.parametrize("number", ["", "hello", "0770", "+44 7700 9001234567890", "٠٧٧٠٠٩٠٠١٢٣"])
def test_what_is_not_a_phone_number_is_one_line(number: str) -> None:
    with pytest.raises(NotAPhoneNumber, match=r"^--phone: "):
        phone_urn(number)
