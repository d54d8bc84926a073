"""Follow-up texts from the dashboard, through Flask's test client on the real database: a worker
writes (or fills in a template), the counter says what it costs, the server refuses what is too
long or unreadable whatever the browser said, the text is queued once however often the form
is sent, the resident's reply comes in over the signed Twilio webhook and shows in the thread,
and the thread closes. The browser's counter (static/followup.js) runs in Node against the
server's on the same texts. Another team's worker gets 404 on every route.
"""

from __future__ import annotations

import json
import re
import subprocess
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from dashboard import followup_pages
from dashboard.followup_pages import describe, prepared
from dibot.config import (
    Config,
    CouncilConfig,
    DatabaseConfig,
    OutreachConfig,
    ServerConfig,
    TwilioConfig,
    WebConfig,
)
from dibot.turns import TurnHandler
from dibot.web import create_app
from flows.model import Flow
from flows.segments import count_segments, gsm7_septets
from outreach.enrolment import EnrolmentRequest, enrol
from outreach.followups import fill_template
from outreach.quiet_hours import NO_QUIET_HOURS
from storage import timeline
from storage.models import AuditEntry, FollowUpThread, OutboxEntry, table
from tests.dashboard_support import (
    NORTH_WORKER,
    SECRET,
    START,
    FakeNow,
    Staff,
    csrf_token,
    enrol_into_team,
    page_text,
    signed_in,
)
from tests.test_twilio_webhook import PUBLIC_URL, TOKEN, inbound, messages, post

STATIC = Path(__file__).resolve().parent.parent / "dashboard" / "static"
PHONE = "07700 900123"  # the number tests.test_twilio_webhook's residents text from
MASKED = "07700 900•••"
COUNCIL = CouncilConfig(name="Testshire Council", helpline="0300 000 1234")
TEMPLATES = {
    "callback": "Hi, it's {worker} from {council}. Can I ring you on {day}? Or call {helpline}.",
    "braces": "Reply {{YES}} to {council}",
    "broken": "Hi {0}, it's {council}",
}
outbox, threads, audit = table(OutboxEntry), table(FollowUpThread), table(AuditEntry)


@pytest.fixture
def app(database_url: str, flow: Flow, clock: FakeNow, engine: sa.Engine) -> Iterator[Flask]:
    config = Config(
        server=ServerConfig(host="127.0.0.1"),
        database=DatabaseConfig(url=database_url),
        web=WebConfig(secret_key=SECRET),
        twilio=TwilioConfig(auth_token=TOKEN, public_url=PUBLIC_URL),
        council=COUNCIL,
        outreach=OutreachConfig(templates=TEMPLATES),
    )
    handler = TurnHandler(engine, flow, clock=clock)
    app = create_app(config, handler=handler, flow=flow, now=clock)
    yield app
    app.extensions["dibot"].engine.dispose()


@pytest.fixture
def resident(engine: sa.Engine, flow: Flow, staff: Staff) -> int:
    """A resident of team North's, enrolled at START."""
    return enrol_into_team(engine, flow, PHONE, staff.north_worker.team_id)


def page(resident: int) -> str:
    return f"/respondents/{resident}/follow-up"


def send(client: FlaskClient, resident: int, **data: str) -> TestResponse:
    token = csrf_token(client, page(resident))
    form = client.get(page(resident)).get_data(as_text=True)
    after = re.search(r'name="after" value="(\d+)"', form)
    assert after, form
    return client.post(
        page(resident),
        data={"csrf_token": token, "after": after[1], "action": "send", **data},
    )


def texts(response: TestResponse) -> str:
    return page_text(response)


def followups(engine: sa.Engine) -> list[Any]:
    with engine.connect() as conn:
        return list(
            conn.execute(sa.select(outbox).where(outbox.c.kind == "followup").order_by(outbox.c.id))
        )


def thread_rows(engine: sa.Engine) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(sa.select(threads).order_by(threads.c.id)))


def audit_actions(engine: sa.Engine) -> list[str]:
    with engine.connect() as conn:
        return list(conn.execute(sa.select(audit.c.action).order_by(audit.c.id)).scalars())


def sms(app: Flask, body: str) -> list[str]:
    """What the bot texts back to the resident's `body`, over the signed webhook."""
    return messages(post(app.test_client(), inbound(body)))


# --- the whole cycle ---------------------------------------------------------------------------


def test_a_worker_texts_a_resident_reads_the_reply_in_the_thread_and_closes_it(
    app: Flask, engine: sa.Engine, staff: Staff, resident: int, clock: FakeNow
) -> None:
    assert sms(app, "Hi")  # the bot answers them before any thread
    client = signed_in(app, staff.north_worker)
    before = client.get(page(resident))
    assert before.status_code == 200
    assert "No follow-up texts yet" in texts(before)
    assert f"Resident {MASKED}" in texts(before)
    assert "+447700900123" not in before.get_data(as_text=True)

    clock.advance(timedelta(minutes=5))
    sent = send(client, resident, text="Hi, it's Sam from Testshire Council. Can I ring you?")

    assert sent.status_code == 302
    shown = client.get(sent.headers["Location"])
    assert (
        f"Sent to {MASKED}: 1 text. The bot is quiet while the thread is open; it closes on "
        "4 December 2026 at 11:05am, or close it now." in texts(shown)
    )
    [row] = followups(engine)
    assert (row.text, row.segments, row.sent_by, row.status) == (
        "Hi, it's Sam from Testshire Council. Can I ring you?",
        1,
        NORTH_WORKER,
        "pending",
    )
    [thread] = thread_rows(engine)
    assert (thread.opened_by, thread.closed_at) == (NORTH_WORKER, None)
    assert f"{NORTH_WORKER} 1 December 2026 at 11:05am Waiting to send" in texts(shown)

    clock.advance(timedelta(minutes=30))
    assert sms(app, "Yes, ring me\ntomorrow after 2") == []  # the bot keeps quiet: it is theirs
    with engine.begin() as conn:  # the provider reports it delivered
        conn.execute(
            sa.update(outbox)
            .where(outbox.c.id == row.id)
            .values(status="sent", delivery_status="delivered")
        )

    thread_page = client.get(page(resident))
    said = texts(thread_page)
    assert "Can I ring you? Resident 1 December 2026 at 11:35am Yes, ring me tomorrow" in said
    assert "Delivered" in said
    assert "Yes, ring me\ntomorrow after 2</p>" in thread_page.get_data(as_text=True)
    assert "Open: closes by itself on 4 December 2026 at 11:05am" in said

    clock.advance(timedelta(hours=1))
    token = csrf_token(client, page(resident))
    closed = client.post(page(resident) + "/close", data={"csrf_token": token})
    assert closed.status_code == 302
    after = texts(client.get(page(resident)))
    assert "Thread closed: 1 text of theirs came in while it was open." in after
    assert f"Closed by {NORTH_WORKER} on 1 December 2026 at 12:35pm" in after
    assert "No thread is open" in after
    [thread] = thread_rows(engine)
    assert (thread.closed_by, thread.closed_at) == (NORTH_WORKER, clock())
    assert sms(app, "1")  # the bot answers them again
    actions = audit_actions(engine)
    assert {"view thread", "send follow-up", "close thread"} <= set(actions)
    assert actions.count("send follow-up") == actions.count("close thread") == 1


def test_closing_twice_closes_once_and_says_there_was_nothing_to_close(
    app: Flask, engine: sa.Engine, staff: Staff, resident: int
) -> None:
    client = signed_in(app, staff.north_worker)
    send(client, resident, text="Hello")
    token = csrf_token(client, page(resident))
    client.post(page(resident) + "/close", data={"csrf_token": token})
    again = client.post(page(resident) + "/close", data={"csrf_token": token})

    assert "there was nothing to close" in texts(client.get(again.headers["Location"]))
    assert audit_actions(engine).count("close thread") == 1


def test_a_form_sent_twice_texts_the_resident_once(
    app: Flask, engine: sa.Engine, staff: Staff, resident: int
) -> None:
    client = signed_in(app, staff.north_worker)
    token = csrf_token(client, page(resident))
    form = {"csrf_token": token, "after": "0", "action": "send", "text": "Are you free on Monday?"}

    first = client.post(page(resident), data=form)
    second = client.post(page(resident), data=form)  # a double click, or back and resubmit

    assert first.status_code == 302
    assert second.status_code == 409
    assert "A text went to them after you opened this page" in texts(second)
    assert "nothing was sent" in texts(second)
    assert [row.text for row in followups(engine)] == ["Are you free on Monday?"]
    third = send(client, resident, text="Are you free on Monday?")  # deliberately, once more
    assert third.status_code == 302
    assert len(followups(engine)) == 2


def test_two_sends_of_one_page_at_the_same_moment_text_the_resident_once(
    app: Flask, engine: sa.Engine, staff: Staff, resident: int
) -> None:
    clients = [signed_in(app, staff.north_worker), signed_in(app, staff.north_admin)]
    forms = [
        {"csrf_token": csrf_token(client, page(resident)), "after": "0", "action": "send"}
        for client in clients
    ]
    start = threading.Barrier(2)

    def post_form(index: int) -> int:
        start.wait()
        form = {**forms[index], "text": f"Text {index}"}
        return clients[index].post(page(resident), data=form).status_code

    with ThreadPoolExecutor(2) as pool:
        statuses = sorted(pool.map(post_form, range(2)))

    assert statuses == [302, 409]
    assert len(followups(engine)) == 1


def test_a_second_text_keeps_the_open_thread_open_longer(
    app: Flask, engine: sa.Engine, staff: Staff, resident: int, clock: FakeNow
) -> None:
    client = signed_in(app, staff.north_worker)
    send(client, resident, text="First")
    clock.advance(timedelta(hours=2))
    response = send(client, resident, text="Second")

    assert "it closes on 4 December 2026 at 1pm" in texts(client.get(response.headers["Location"]))
    assert len(thread_rows(engine)) == 1


def test_in_quiet_hours_the_text_waits_and_the_page_says_until_when(
    app: Flask, engine: sa.Engine, staff: Staff, resident: int, clock: FakeNow
) -> None:
    clock.at = datetime(2026, 12, 1, 21, 30, tzinfo=UTC)  # after 20:00 in London
    client = signed_in(app, staff.north_worker)
    response = send(client, resident, text="Sorry it's late")

    said = texts(client.get(response.headers["Location"]))
    assert f"Ready to send to {MASKED}: 1 text. It waits for quiet hours until" in said
    assert "until 2 December 2026 at 9am." in said
    assert "Waits to send until 2 December 2026 at 9am" in said


# --- the length, on the server ----------------------------------------------------------------


def test_check_the_length_counts_and_sends_nothing(
    app: Flask, engine: sa.Engine, staff: Staff, resident: int
) -> None:
    client = signed_in(app, staff.north_worker)
    token = csrf_token(client, page(resident))
    checked = client.post(
        page(resident),
        data={"csrf_token": token, "action": "check", "text": "Croeso i'r llyfrgell, ŵyr bach"},
    )

    assert checked.status_code == 200
    said = texts(checked)
    assert (
        "30 characters: 1 text. Uses special characters (UCS-2), such as “ŵ”: 70 characters "
        "a text, 67 each when it needs more." in said
    )
    assert "Croeso i&#39;r llyfrgell, ŵyr bach</textarea>" in checked.get_data(as_text=True)
    assert followups(engine) == []


@pytest.mark.parametrize(
    ("text", "segments", "refused"),
    [
        ("a" * 1530, 10, None),
        ("a" * 1531, 11, "The text is 11 texts long (1,531 characters, GSM-7)"),
        ("€" * 760, 10, None),  # 76 a part: an extension character is never split
        ("€" * 761, 11, "The text is 11 texts long (1,522 characters, GSM-7)"),
        ("ŵ" * 670, 10, None),
        ("ŵ" * 671, 11, "The text is 11 texts long (671 characters, UCS-2)"),
        ("\U0001f44d" * 336, 11, "The text is 11 texts long (672 characters, UCS-2)"),
        ("x" * 50_000, 327, "The text is 327 texts long (50,000 characters, GSM-7)"),
    ],
)
def test_the_server_refuses_more_than_ten_texts_whatever_the_browser_said(
    app: Flask,
    engine: sa.Engine,
    staff: Staff,
    resident: int,
    text: str,
    segments: int,
    refused: str | None,
) -> None:
    client = signed_in(app, staff.north_worker)
    response = send(client, resident, text=text)

    if refused is None:
        assert response.status_code == 302
        [row] = followups(engine)
        assert (row.text, row.segments) == (text, segments)
    else:
        assert response.status_code == 400
        assert "There is a problem" in texts(response)
        assert f"{refused}: at most 10 texts can go, so shorten it" in texts(response)
        assert "Too long: at most 10 texts can go" in texts(response)
        assert followups(engine) == []


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("", "Enter the text to send"),
        ("   \n\t  ", "Enter the text to send"),
        ("Hello\x00there", "cannot go in a text message (a control character): remove it"),
        ("Bell\x07", "cannot go in a text message (a control character): remove it"),
        ("Escape \x1b[31m", "cannot go in a text message (a control character): remove it"),
        ("Hi \x85", "cannot go in a text message (a control character): remove it"),
        ("Broken \ufffd", "could not be read (shown as \ufffd): type it again"),
    ],
)
def test_an_empty_or_unsendable_text_is_refused_clearly(
    app: Flask, engine: sa.Engine, staff: Staff, resident: int, text: str, error: str
) -> None:
    client = signed_in(app, staff.north_worker)
    response = send(client, resident, text=text)

    assert response.status_code == 400
    assert "There is a problem" in texts(response)
    assert error in texts(response)
    assert 'href="#text"' in response.get_data(as_text=True)
    assert followups(engine) == []


def test_a_lone_surrogate_as_a_browser_posts_it_is_refused(
    app: Flask, engine: sa.Engine, staff: Staff, resident: int
) -> None:
    client = signed_in(app, staff.north_worker)
    token = csrf_token(client, page(resident))
    # A browser encodes a lone surrogate (pasted half an emoji) as U+FFFD in UTF-8.
    body = f"csrf_token={token}&after=0&action=send&text=Hi%20%EF%BF%BD"

    response = client.post(
        page(resident), data=body, content_type="application/x-www-form-urlencoded"
    )

    assert response.status_code == 400
    assert "could not be read" in texts(response)
    assert followups(engine) == []


def test_windows_line_breaks_are_sent_and_counted_as_one_character_each(
    app: Flask, engine: sa.Engine, staff: Staff, resident: int
) -> None:
    client = signed_in(app, staff.north_worker)
    send(client, resident, text="  Line one\r\nLine two\r\n\r\n")

    [row] = followups(engine)
    assert row.text == "Line one\nLine two"
    assert count_segments(row.text).units == 17


# --- templates ---------------------------------------------------------------------------------


def test_a_template_is_picked_then_its_blanks_filled_in_and_sent(
    app: Flask, engine: sa.Engine, staff: Staff, resident: int
) -> None:
    client = signed_in(app, staff.north_worker)
    picked = client.get(page(resident) + "?template=callback")

    said = texts(picked)
    assert "Template: callback" in said
    assert "{worker}: your name, as the resident knows you" in said
    assert "{day}" in said
    assert "{council}" not in said.split("Template: callback")[1]  # filled in by the council
    assert "Hi, it&#39;s  from Testshire Council. Can I ring you on ? Or call 0300 000 1234." in (
        picked.get_data(as_text=True)
    )
    token = csrf_token(client, page(resident))
    after = re.search(r'name="after" value="(\d+)"', picked.get_data(as_text=True))
    assert after

    missing = client.post(
        page(resident),
        data={
            "csrf_token": token,
            "after": after[1],
            "action": "send",
            "template": "callback",
            "value_worker": "Sam",
            "value_day": "  ",
        },
    )
    assert missing.status_code == 400
    assert "Enter a value for {day}" in texts(missing)
    assert 'href="#value_day"' in missing.get_data(as_text=True)
    assert followups(engine) == []

    sent = client.post(
        page(resident),
        data={
            "csrf_token": token,
            "after": after[1],
            "action": "send",
            "template": "callback",
            "value_worker": "Sam",
            "value_day": "Thursday",
        },
    )
    assert sent.status_code == 302
    [row] = followups(engine)
    assert row.text == (
        "Hi, it's Sam from Testshire Council. Can I ring you on Thursday? Or call 0300 000 1234."
    )


def test_a_template_with_a_brace_and_an_unusable_or_unknown_template(
    app: Flask, engine: sa.Engine, staff: Staff, resident: int
) -> None:
    client = signed_in(app, staff.north_worker)
    response = send(client, resident, template="braces")
    assert response.status_code == 302
    assert followups(engine)[0].text == "Reply {YES} to Testshire Council"

    broken = client.get(page(resident) + "?template=broken")
    assert "The template “broken” cannot be used: {0} is not a placeholder" in texts(broken)
    unknown = client.get(page(resident) + "?template=nonsense")
    assert "Choose a template from the list" in texts(unknown)
    assert 'href="#template-pick"' in unknown.get_data(as_text=True)
    assert 'name="text"' in unknown.get_data(as_text=True)  # writing a text still works


def test_a_telegram_resident_is_sent_a_message_on_telegram(
    app: Flask, engine: sa.Engine, flow: Flow, staff: Staff
) -> None:
    enrolled = enrol(
        engine,
        flow,
        EnrolmentRequest(
            phone=None,
            telegram="700900125",
            cohort=None,
            initiative=None,
            language=None,
            enrolled_by=NORTH_WORKER,
            lawful_basis="public_task",
            team_id=staff.north_worker.team_id,
        ),
        NO_QUIET_HOURS,
        START,
    )
    client = signed_in(app, staff.north_worker)
    response = send(client, enrolled.respondent_id, text="Hello from the library \U0001f44b")

    said = texts(client.get(response.headers["Location"]))
    assert "Sent to Telegram chat •••125: 1 message." in said
    [row] = followups(engine)
    assert (row.channel, row.text) == ("telegram", "Hello from the library \U0001f44b")


# --- who may, and who cannot be texted ---------------------------------------------------------


def test_nothing_is_offered_to_send_to_a_resident_who_opted_out(
    app: Flask, engine: sa.Engine, staff: Staff, resident: int
) -> None:
    sms(app, "Hi")
    sms(app, "STOP")
    client = signed_in(app, staff.north_worker)
    shown = client.get(page(resident))

    assert "They opted out of texts (they texted STOP)" in texts(shown)
    assert 'name="text"' not in shown.get_data(as_text=True)
    assert "Send text" not in texts(shown)
    token = csrf_token(client, page(resident))
    forced = client.post(
        page(resident), data={"csrf_token": token, "action": "send", "text": "Still there?"}
    )
    assert forced.status_code == 400
    assert "They opted out (they can text START); nothing queued" in texts(forced)
    assert followups(engine) == []


def test_another_teams_worker_gets_404_on_every_route(
    app: Flask, engine: sa.Engine, staff: Staff, resident: int
) -> None:
    north = signed_in(app, staff.north_worker)
    token = csrf_token(north, page(resident))
    south = signed_in(app, staff.south_worker)
    south_token = csrf_token(south, "/password")
    send(north, resident, text="Hello")

    assert south.get(page(resident)).status_code == 404
    assert south.get(page(resident) + "?template=callback").status_code == 404
    attempt = {"csrf_token": south_token, "action": "send", "text": "Hi", "after": "999"}
    assert south.post(page(resident), data=attempt).status_code == 404
    checked = {"csrf_token": south_token, "action": "check", "text": "Hi"}
    assert south.post(page(resident), data=checked).status_code == 404
    wrong = {"csrf_token": south_token, "action": "send", "text": "\x00", "after": "x"}
    assert south.post(page(resident), data=wrong).status_code == 404  # not a 400 that tells
    closing = {"csrf_token": south_token}
    assert south.post(page(resident) + "/close", data=closing).status_code == 404
    for missing in (resident + 1000, 0):
        assert north.get(page(missing)).status_code == 404
        closing = {"csrf_token": token}
        assert north.post(page(missing) + "/close", data=closing).status_code == 404
    assert north.get("/respondents/-1/follow-up").status_code == 404
    assert len(followups(engine)) == 1
    assert [row.closed_at for row in thread_rows(engine)] == [None]
    assert signed_in(app, staff.north_admin).get(page(resident)).status_code == 200


def test_signed_out_visitors_are_sent_to_log_in(app: Flask, resident: int) -> None:
    response = app.test_client().get(page(resident), base_url="https://localhost")
    assert response.status_code == 302
    assert "/login" in response.headers["Location"]


def test_the_page_links_its_script_and_styles_and_they_are_served(
    app: Flask, staff: Staff, resident: int
) -> None:
    client = signed_in(app, staff.north_worker)
    html = client.get(page(resident)).get_data(as_text=True)

    assert '<script type="module" src="/dashboard-assets/followup.js">' in html
    assert 'href="/dashboard-assets/followup.css"' in html
    assert 'aria-describedby="text-info"' in html
    assert 'data-module="govuk-character-count"' not in html  # our counting, not GOV.UK's
    assert " style=" not in html
    for asset in ("followup.js", "followup.css"):
        served = client.get(f"/dashboard-assets/{asset}")
        assert served.status_code == 200
        served.close()


# --- the browser's counter against the server's, in Node ---------------------------------------

CORPUS = [
    "",
    "   ",
    "Hello",
    "Hi, it's Sam from Testshire Council. Can I ring you tomorrow?",
    "Price: €5 [approx] ^ {braces} ~ | \\ back",
    "Emoji \U0001f600 and \U0001f44d\U0001f3fd",
    "Welsh: ŵ ŷ Ŵ Ŷ â ê î ô û",
    "Curly \u2018quotes\u2019 and \u201cdouble\u201d \u2013 dash\u2026",
    "Tab\there",
    "Non\u00a0breaking",
    "zero\u200bwidth",
    "\u3000ideographic space trimmed\u3000",
    "\ufeffbyte order mark",
    "Line\r\nbreaks\rand\nmore\r\n",
    "  \n  padded  \n ",
    "é è à ü ñ ß Ä Δ Ω ç Ç",
    "a" * 160,
    "a" * 161,
    "a" * 306,
    "a" * 307,
    "a" * 1530,
    "a" * 1531,
    "€" * 80,
    "a" + "€" * 80,
    "a" * 152 + "€" + "a" * 152,
    "a" * 151 + "€" + "a" * 153,
    "\u201c" + "a" * 69,
    "\u201c" + "a" * 70,
    "\u2019" + "a" * 65 + "\U0001f600" + "a" * 66,
    "\U0001f600" * 35,
    "\U0001f600" * 36,
    "ŵ" * 670,
    "ŵ" * 671,
    "x" * 5000,
    "Null\x00byte",
    "Escape\x1b",
    "Form\x0cfeed",
    "C1\x85control",
    "Lone \ud800 surrogate",
    "Lone low \udc00",
    "Replacement \ufffd",
    "Cyrillic Привет",
    "中文短信",
]


def node(script: str, given: Any) -> Any:
    """Run `script` (an ES module importing static/followup.js as `counter`) with `given` as
    JSON on stdin; what it prints, parsed."""
    module = (STATIC / "followup.js").as_uri()
    program = (
        f'import * as counter from "{module}";\n'
        'import { readFileSync } from "node:fs";\n'
        'const given = JSON.parse(readFileSync(0, "utf8"));\n' + script
    )
    ran = subprocess.run(
        ["node", "--input-type=module", "-e", program],
        input=json.dumps(given),
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=60,
        check=False,
    )
    assert ran.returncode == 0, ran.stderr
    return json.loads(ran.stdout)


def test_the_browser_counts_every_text_as_the_server_does() -> None:
    counted = node(
        "const out = given.map((text) => {\n"
        "  const sent = counter.prepared(text);\n"
        "  const ok = counter.problem(text) === null;\n"
        "  const m = ok ? counter.measure(sent) : null;\n"
        "  return [counter.describe(text), ok ? [m.encoding, m.units, m.segments] : null];\n"
        "});\n"
        "process.stdout.write(JSON.stringify(out));",
        CORPUS,
    )

    for text, (said, count) in zip(CORPUS, counted, strict=True):
        assert said == describe(text), text
        if followup_pages.problem(text) is None:
            server = count_segments(prepared(text))
            assert count == [server.encoding, server.units, server.segments], text
        else:
            assert count is None, text


def test_the_counter_says_it_plainly() -> None:
    assert describe("Hello") == (
        "5 characters: 1 text. Plain characters (GSM-7): 160 characters a text, 153 each when "
        "it needs more."
    )
    assert describe("a" * 161).startswith("161 characters: 2 texts.")
    assert describe("a" * 1530).startswith("1,530 characters: 10 texts.")
    assert describe("€5").startswith("3 characters: 1 text.")
    assert describe("€5").endswith("Each ^ { } [ ] ~ | € and \\ counts as 2.")
    assert describe("Thanks \U0001f44d") == (
        "9 characters: 1 text. Uses special characters (UCS-2), such as “\U0001f44d”: "
        "70 characters a text, 67 each when it needs more. Each emoji counts as 2."
    )
    assert "such as a tab" in describe("a\tb")
    assert "such as an unusual space" in describe("a\u00a0b")
    assert describe("  ") == "0 characters."


def test_the_browsers_character_tables_are_the_servers() -> None:
    tables = node(
        "process.stdout.write(JSON.stringify([counter.GSM7_BASIC, counter.GSM7_EXTENSION, "
        "counter.PYTHON_SPACES, counter.MAX_SEGMENTS, counter.CONTROL_PROBLEM, "
        "counter.UNREADABLE_PROBLEM]));",
        None,
    )
    basic, extension, spaces, limit, control, unreadable = tables
    characters = [chr(code) for code in range(0x110000) if not 0xD800 <= code <= 0xDFFF]
    costs = {char: gsm7_septets(char) for char in characters}

    assert {char for char, cost in costs.items() if cost == 1} == set(basic)
    assert {char for char, cost in costs.items() if cost == 2} == set(extension)
    assert {char for char in characters if char.isspace()} == set(spaces)
    assert set(spaces) == followup_pages.PYTHON_SPACES
    assert (limit, control, unreadable) == (
        10,
        followup_pages.CONTROL_PROBLEM,
        followup_pages.UNREADABLE_PROBLEM,
    )


def test_the_browser_fills_in_templates_as_the_server_does() -> None:
    cases = [
        (
            TEMPLATES["callback"],
            {"worker": "Sam", "day": "Friday", "council": "C", "helpline": "1"},
        ),
        ("Reply {{YES}} or {{NO}} }}{{ to {council}", {"council": "Testshire"}),
        ("{a}{b}{a}", {"a": "x", "b": "{y}"}),
        ("Hi {name}, ŵ \U0001f600", {"name": ""}),
        ("{constructor}", {"constructor": "kept"}),
    ]
    filled = node(
        "process.stdout.write(JSON.stringify(given.map(([t, v]) => counter.fillTemplate(t, v))));",
        cases,
    )

    assert filled == [fill_template(template, values) for template, values in cases]


def test_times_are_the_councils_and_delivery_is_said_plainly() -> None:
    london = ZoneInfo("Europe/London")
    assert followup_pages.when(datetime(2026, 7, 1, 10, 0, tzinfo=UTC), london) == (
        "1 July 2026 at 11am"  # BST
    )
    assert followup_pages.when(datetime(2026, 12, 1, 13, 30, tzinfo=UTC), london) == (
        "1 December 2026 at 1:30pm"
    )
    assert followup_pages.when(datetime(2026, 12, 1, 0, 5, tzinfo=UTC), london) == (
        "1 December 2026 at 12:05am"
    )

    def item(send_status: str, delivery: str | None = None, code: int | None = None) -> Any:
        return timeline.TimelineItem(
            id=1,
            at=START,
            direction="out",
            channel="sms",
            kind="followup",
            text="Hi",
            thread_id=1,
            outbox_id=1,
            by=NORTH_WORKER,
            send_status=send_status,
            delivery_status=delivery,
            delivery_error_code=code,
            send_error=None,
        )

    said = [
        followup_pages.delivery(it, None, START, london)[0]
        for it in (
            item("pending"),
            item("sending"),
            item("sent"),
            item("sent", "delivered"),
            item("sent", "undelivered", 30007),
            item("failed"),
            item("unknown"),
        )
    ]
    assert said == [
        "Waiting to send",
        "Sending",
        "Sent",
        "Delivered",
        "Not delivered (error 30007)",
        "Not sent",
        "May not have been sent",
    ]
