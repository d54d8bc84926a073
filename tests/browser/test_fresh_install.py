"""The issue's "done when", end to end from a fresh install: an admin made with `dibot staff add`
signs in at /login, enrols a resident who then completes the quick check by SMS, sees their
profile and priorities, texts them a follow-up, fills in an assisted assessment with a second
resident and schedules a check-in, all in Chromium, axe-core on every page.

The rule it keeps: nothing in-process. A temporary directory holds config.toml (SQLite beside
it, or the PostgreSQL database DIBOT_DATABASE_URL names); `dibot db upgrade`, `dibot staff add`
and `dibot serve` run as an operator runs them; `dibot worker --once` sends what is queued to
the fake Twilio (tests/fake_twilio.py), which reports it delivered; the resident's texts are
Twilio webhooks signed with twilio's own RequestValidator, each next answer chosen from the
TwiML reply (as a person reads the question). Every wait is bounded; only 127.0.0.1 is
contacted; the server is stopped at the end, pass or fail (its log stays in the test's
tmp_path as serve.log).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
import urllib.parse
import urllib.request
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page
from twilio.request_validator import RequestValidator

from tests.browser.support import LOCALHOST, AxeLedger, Visit, tab_to
from tests.conftest import DATABASE_URL_VARIABLE, reset_postgresql
from tests.fake_twilio import ACCOUNT_SID, AUTH_TOKEN, FakeTwilio, Message
from tests.processes import (
    DIBOT,
    STOP_LIMIT_SECONDS,
    TEST_KEY,
    environment,
    free_port,
    wait_for_health,
)

ADMIN = "admin@testshire.example"
PASSWORD = "correct horse battery staple 42"
COUNCIL = "Testshire Council"
SECRET = "fresh-install-secret-key-not-a-real-one-0123456789"
SMS_PATH = "/webhooks/twilio/sms"
COMMAND_LIMIT_SECONDS = 60
ANSWER_LIMIT_SECONDS = 10
MAX_TEXTS = 60
"""The quick check is 22 questions; with the greeting, consent, a clarification or two, well
under this many texts."""

TEXTED = ("07700 900311", "+447700900311")
"""The resident who answers by SMS: as typed on the Enrol page, and as Twilio sends From."""
ASSISTED = "07700 900312"
MASKED = "07700 900•••"
SENDER = "+447700900999"
"""The council's number, which texts go from."""
COUNTER = "[data-followup-counter] .govuk-character-count__status"
GSM7 = "Plain characters (GSM-7): 160 characters a text, 153 each when it needs more."


@dataclass(frozen=True)
class Install:
    directory: Path
    config: Path
    url: str
    twilio: FakeTwilio


def config_toml(database_url: str, port: int, twilio: str) -> str:
    """A fresh install's config.toml: plain HTTP on 127.0.0.1 (no secure cookie), the Twilio
    account (its REST API at `twilio`, the fake) and this server's address for its webhooks,
    no quiet hours or days (nothing waits), the council named. PostgreSQL is given its keys;
    SQLite makes its own beside the database."""
    secret = keys = ""
    if database_url.startswith("postgresql"):
        secret = f'secret_key = "{SECRET}"'
        keys = f'[privacy]\nencryption_key = "{TEST_KEY}"'
    return f"""\
[server]
host = "{LOCALHOST}"
port = {port}
workers = 2

[web]
cookie_secure = false
{secret}

[database]
url = "{database_url}"

[twilio]
account_sid = "{ACCOUNT_SID}"
auth_token = "{AUTH_TOKEN}"
from_number = "{SENDER}"
api_base_url = "{twilio}"
public_url = "http://{LOCALHOST}:{port}"

[council]
name = "{COUNCIL}"

[outreach]
quiet_hours = ""
quiet_days = ""

{keys}
"""


def dibot(install: Install, *arguments: str, stdin: str = "") -> str:
    """One dibot command with the install's config, its output; it must succeed in time."""
    assert DIBOT is not None, "the dibot console script is not installed in this environment"
    done = subprocess.run(
        [DIBOT, *arguments, "--config", str(install.config)],
        cwd=install.directory,
        env=environment(),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=COMMAND_LIMIT_SECONDS,
        check=False,
    )
    assert done.returncode == 0, (arguments, done.stdout, done.stderr)
    return done.stdout


@contextmanager
def dibot_serve(install: Install) -> Iterator[None]:
    """`dibot serve`, healthy before the block runs; SIGTERM after it (SIGKILL to its process
    group if it has not stopped in time), its log kept in the install's directory."""
    assert DIBOT is not None
    log = install.directory / "serve.log"
    with log.open("w") as stderr:
        server = subprocess.Popen(
            [DIBOT, "serve", "--config", str(install.config)],
            cwd=install.directory,
            env=environment(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            text=True,
            start_new_session=True,
        )
        try:
            status, _ = wait_for_health(f"{install.url}/healthz", server)
            assert status == 200, f"dibot serve did not become healthy: {log.read_text()[-3000:]}"
            yield
        finally:
            if server.poll() is None:
                server.send_signal(signal.SIGTERM)
            try:
                server.wait(timeout=STOP_LIMIT_SECONDS)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait(timeout=STOP_LIMIT_SECONDS)


@pytest.fixture
def install(tmp_path: Path) -> Iterator[Install]:
    with ExitStack() as stack:
        yield fresh_install(tmp_path, stack)


def fresh_install(tmp_path: Path, stack: ExitStack) -> Install:
    """A fresh install on a free port: config.toml, `dibot db upgrade`, the admin added with
    `dibot staff add`, then `dibot serve`, with the fake Twilio, until `stack` closes."""
    url = os.environ.get(DATABASE_URL_VARIABLE)
    if url:
        reset_postgresql(url)
    else:
        url = f"sqlite:///{tmp_path / 'dibot.db'}"
    port = free_port()
    config = tmp_path / "config.toml"
    twilio = stack.enter_context(FakeTwilio())
    config.write_text(config_toml(url, port, twilio.base_url), encoding="utf-8")
    fresh = Install(tmp_path, config, f"http://{LOCALHOST}:{port}", twilio)
    dibot(fresh, "db", "upgrade")
    added = dibot(
        fresh,
        "staff",
        "add",
        "--email",
        ADMIN,
        "--team",
        "North",
        "--role",
        "admin",
        "--password-stdin",
        stdin=PASSWORD + "\n",
    )
    assert added.strip() == f"staff added: {ADMIN} (admin, team North)"
    stack.enter_context(dibot_serve(fresh))
    return fresh


def send_queued(install: Install, count: int) -> list[Message]:
    """`dibot worker --once`: what is due goes to the fake Twilio, which must by then have
    taken `count` messages in all; those messages."""
    dibot(install, "worker", "--once")
    install.twilio.wait_for(count, timeout=ANSWER_LIMIT_SECONDS)
    taken = install.twilio.messages
    assert len(taken) == count, taken
    return taken


def text_in(install: Install, sender: str, body: str) -> str:
    """The resident texts `body`: a webhook signed as Twilio signs it; the reply's text."""
    params = {
        "MessageSid": f"SM{uuid.uuid4().hex}",
        "AccountSid": ACCOUNT_SID,
        "From": sender,
        "To": SENDER,
        "Body": body,
        "NumMedia": "0",
        "NumSegments": "1",
    }
    url = install.url + SMS_PATH
    request = urllib.request.Request(
        url,
        data=urllib.parse.urlencode(params).encode(),
        headers={"X-Twilio-Signature": RequestValidator(AUTH_TOKEN).compute_signature(url, params)},
    )
    with urllib.request.urlopen(request, timeout=ANSWER_LIMIT_SECONDS) as response:
        assert response.status == 200
        messages = ET.fromstring(response.read()).findall("Message")
    return "\n".join(message.text or "" for message in messages)


SKILLS = {
    # The start of the question -> (skill, interest) as the resident texts them.
    "switch on, log in": ("4", "likely"),
    "text, email and make video calls": ("confidently", "3"),
    "search, use maps": ("4", "4"),
    "shop, bank and fill in forms": ("2", "definitely"),
    "fix problems": ("4", "3"),
    "spot scams": ("I'd try", "5"),
    "apply for jobs": ("4", "not interested"),
}


def answer_for(reply: str) -> str:
    """What this resident texts back to the bot's last reply: the quick check; a device, a
    connection and a place to go online; nothing holds them back; confident at most things,
    but only with help at shopping, banking and forms, and "I'd try" at staying safe, both of
    which they are keen on."""
    if "Which check" in reply:
        return "quick"
    clarify = re.search(r"Which do you mean, (\d) or (\d)\?", reply)
    if clarify:
        return clarify[2]
    question = re.search(r"\d+/22 (.*)", reply)
    assert question is not None, reply
    asked = question[1]
    if "Do you have" in asked:
        return "yes"  # "Usually" or "Always": asked which, they say the second
    if asked.startswith("How much does"):
        return "not at all"
    for topic, (skill, interest) in SKILLS.items():
        if topic in asked:
            return interest if "regularly" in asked else skill
    raise AssertionError(f"an unexpected question: {reply}")


def completes_quick_check_by_sms(install: Install, sender: str) -> tuple[list[str], str]:
    """The resident answers the invitation, then each reply, until the priorities message
    arrives: what they texted, and that message."""
    texts = ["yes"]
    reply = text_in(install, sender, texts[0])
    for _ in range(MAX_TEXTS):
        if reply.startswith("Your priorities"):
            return texts, reply
        texts.append(answer_for(reply))
        reply = text_in(install, sender, texts[-1])
    raise AssertionError(f"no priorities message after {MAX_TEXTS} texts; the last: {reply}")


def sign_in(visit: Visit) -> None:
    visit.go("/login", snap=False)
    visit.check("/login (fresh install)")
    visit.page.get_by_label("Email address").fill(ADMIN)
    visit.page.get_by_label("Password", exact=True).fill(PASSWORD)
    with visit.page.expect_navigation():
        visit.page.get_by_role("button", name="Sign in").click()
    assert f"Signed in as {ADMIN}" in visit.text("body"), visit.text("body")
    assert visit.page.locator("main tbody tr").count() == 0  # a fresh install: nobody yet
    assert "No residents yet" in visit.text("main")
    visit.check("/respondents (fresh install, none yet)")


def enrol(visit: Visit, phone: str) -> int:
    """Enrol `phone` on the Enrol page, reached from the navigation; the new resident's id."""
    page = visit.page
    with page.expect_navigation():
        page.locator(".govuk-service-navigation a[href='/enrol']").click()
    visit.check("/enrol (fresh install)")
    page.get_by_label("Mobile phone number").fill(phone)
    page.get_by_label("English", exact=True).check()
    page.get_by_label("The resident agreed to be contacted").check()
    with page.expect_navigation():
        page.get_by_role("button", name="Enrol and invite").click()
    visit.wait_for_path(r"/respondents/\d+")
    assert f"{MASKED} is enrolled." in visit.text(".govuk-notification-banner")
    assert phone.replace(" ", "")[-3:] + " " not in visit.text("main")
    visit.check("/respondents/<id> (fresh install, enrolled)")
    return int(visit.path().split("?")[0].rsplit("/", 1)[1])


def test_from_a_fresh_install_to_a_check_in(
    chromium: Browser, ledger: AxeLedger, install: Install
) -> None:
    """The issue's "done when", step by step (the browser first, so that without one the
    test is skipped before anything is installed)."""
    started = time.monotonic()
    context = chromium.new_context(
        base_url=install.url,
        locale="en-GB",
        timezone_id="Europe/London",
        viewport={"width": 1024, "height": 768},
    )
    context.set_default_timeout(10_000)
    try:
        visit = Visit(context.new_page(), "fresh-install", ledger)
        journey(install, visit)
    finally:
        context.close()
    print(f"\nfresh install to a check-in: {time.monotonic() - started:.1f} s")


def journey(install: Install, visit: Visit) -> None:
    page = visit.page
    sign_in(visit)
    texted = enrol(visit, TEXTED[0])

    # The invitation goes out (`dibot worker --once`, through the fake Twilio) and is
    # delivered; the resident answers it and the quick check by SMS.
    sent = send_queued(install, 1)
    assert sent[0].to == TEXTED[1]
    assert sent[0].body.startswith(f"Hi, this is {COUNCIL}'s free digital skills check.")
    assert install.twilio.post_status_callback(sent[0].sid, "delivered") == 204
    texts, priorities = completes_quick_check_by_sms(install, TEXTED[1])
    assert texts[0] == "yes"  # to the invitation: they agree
    assert {"quick", "not at all", "definitely", "I'd try", "2", "5"} <= set(texts)
    assert priorities.splitlines()[:4] == [
        "Your priorities:",
        "Topics to learn next:",
        "1. Shopping, banking and forms",
        "2. Staying safe online",
    ], priorities
    assert "First, you need" not in priorities  # a device, a connection, a place: all there
    assert "What holds you back" not in priorities  # nothing does, they said

    # Their page: the profile as a chart with an accessible name and its numbers in a table,
    # and the same priorities, in the same order, as the text they were sent.
    visit.go(f"/respondents/{texted}", snap=False)
    heading = page.get_by_role("heading", level=1).inner_text()
    assert MASKED in heading
    assert "Completed" in heading
    chart = page.locator("svg.dibot-chart")
    assert chart.count() == 1
    labelled = (chart.get_attribute("aria-labelledby") or "").split()
    name = " ".join(page.locator(f"[id='{part}']").text_content() or "" for part in labelled)
    assert page.get_by_role("img", name=name, exact=True).count() == 1
    assert name.startswith("Skill and interest per heading"), name
    assert "Transacting: skill 25%, interest 100%." in name
    assert "Staying safe: skill 50%, interest 100%." in name
    assert "Advanced skills: skill 75%, interest 0%." in name
    assert profile_numbers(visit) == {
        "Getting started": ("75%", "75%"),
        "Communicating": ("75%", "50%"),
        "Handling information and content": ("75%", "75%"),
        "Transacting": ("25%", "100%"),
        "Problem solving": ("75%", "50%"),
        "Staying safe": ("50%", "100%"),
        "Advanced skills": ("75%", "0%"),
    }
    assert "Basics (device, connection, a place to go online): 100%" in visit.text("main")
    top = page.locator("#priorities ~ ol").first.locator("li").all_inner_texts()
    # named as their text named them
    assert [line.split(" (", 1)[0] for line in top] == [
        "Shopping, banking and forms",
        "Staying safe online",
    ], top
    assert "“I'm cautious/reluctant to do anything without help”" in top[0]
    assert "“I'll definitely do this regularly”" in top[0]
    timeline = visit.text(".dibot-timeline")
    assert "Delivered" in timeline  # the invitation
    assert "1. Shopping, banking and forms 2. Staying safe online" in timeline
    visit.check("/respondents/<id> (fresh install, completed by SMS)")

    # A follow-up text, counted as it is typed; it goes out and shows in the thread.
    with page.expect_navigation():
        page.get_by_role("button", name="Send a follow-up text").click()
    visit.wait_for_path(rf"/respondents/{texted}/follow-up")
    visit.check("/respondents/<id>/follow-up (fresh install)")
    follow_up = "Hello from Testshire Council. Our library runs free online banking sessions."
    tab_to(page, "#text")
    page.keyboard.type(follow_up)
    assert visit.text(COUNTER) == f"{len(follow_up)} characters: 1 text. {GSM7}"
    with page.expect_navigation():
        page.get_by_role("button", name="Send text").click()
    assert f"Sent to {MASKED}: 1 text." in visit.text(".govuk-notification-banner")
    assert follow_up in visit.text(".dibot-thread")
    visit.check("/respondents/<id>/follow-up (fresh install, sent)")
    sent = send_queued(install, 2)
    assert (sent[1].to, sent[1].body) == (TEXTED[1], follow_up)
    assert install.twilio.post_status_callback(sent[1].sid, "delivered") == 204
    reply = "Yes please, Tuesday mornings suit me"
    assert text_in(install, TEXTED[1], reply) == ""  # the thread is open: the bot keeps quiet
    page.reload()
    thread = visit.text(".dibot-thread")
    assert thread.index(follow_up) < thread.index(reply)
    ours = page.locator(".dibot-thread__message--out").all_inner_texts()
    assert len(ours) == 1, ours
    assert follow_up in ours[0]
    assert "Delivered" in ours[0]
    visit.check("/respondents/<id>/follow-up (fresh install, reply)")

    # A second resident, enrolled and assessed with the admin's help in the browser.
    assisted = enrol(visit, ASSISTED)
    assisted_assessment(visit, assisted)

    # A check-in for the first resident, then listed as due.
    visit.go(f"/respondents/{texted}", snap=False)
    with page.expect_navigation():
        page.get_by_role("button", name="Schedule a check-in").click()
    visit.wait_for_path(rf"/respondents/{texted}/checkins")
    visit.check("/respondents/<id>/checkins (fresh install)")
    page.get_by_label("In 1 month").check()
    with page.expect_navigation():
        page.get_by_role("button", name="Schedule the check-in").click()
    banner = visit.text(".govuk-notification-banner")
    scheduled = re.search(r"Scheduled a check-in for (\d{1,2} \w+ \d{4})", banner)
    assert scheduled is not None, banner
    assert "not finished a first assessment" not in banner  # they have
    visit.check("/respondents/<id>/checkins (fresh install, scheduled)")
    with page.expect_navigation():
        page.locator(".govuk-service-navigation a[href='/checkins']").click()
    visit.check("/checkins (fresh install)")
    visit.go("/checkins?state=due", snap=False)
    rows = page.locator("main table tbody tr").all_inner_texts()
    assert len(rows) == 1, rows
    assert MASKED in rows[0]
    assert scheduled[1] in rows[0]
    assert "Due" in rows[0]
    visit.check("/checkins?state (fresh install)")


def profile_numbers(visit: Visit) -> dict[str, tuple[str, str]]:
    """The profile table: heading -> (skill, interest)."""
    found = {}
    for row in visit.page.locator("#profile-numbers tbody tr").all():
        cells = row.locator("th, td").all_inner_texts()
        found[cells[0].strip()] = (cells[1].strip(), cells[2].strip())
    return found


def assisted_assessment(visit: Visit, respondent: int) -> None:
    """The admin fills in the quick check with the resident, by clicks: a device and a
    connection always, the cost holds them back a lot, only with help at everything but
    keen on getting started."""
    page = visit.page
    with page.expect_navigation():
        page.get_by_role("button", name="Fill in the assessment with them").click()
    visit.wait_for_path(rf"/respondents/{respondent}/assisted")
    visit.check("/respondents/<id>/assisted (fresh install)")
    assert page.get_by_role("heading", level=1).inner_text() == "Privacy notice"
    choose(page, 1)  # they agree
    visit.check("/respondents/<id>/assisted (fresh install, quick or full)")
    choose(page, 1)  # the quick check
    asked = 0
    for _ in range(MAX_TEXTS):
        if not page.locator("input[name=option]").count():
            break
        main = visit.text("main")
        question = re.search(r"Question (\d+) of 22", main)
        if question is None:  # a screen between sections
            visit.check("/respondents/<id>/assisted (fresh install, between)")
            choose(page, 1)
            continue
        asked += 1
        assert int(question[1]) == asked
        if asked == 4:
            assert "cost" in main, main
        if asked == 10:
            assert "switch on" in main, main
            assert "regularly" in main, main
        visit.check("/respondents/<id>/assisted (fresh install, a question)")
        if asked <= 3:
            choose(page, 5)  # always
        elif asked == 4:
            choose(page, 2)  # cost: a lot
        elif asked <= 8:
            choose(page, 5)  # not at all
        elif asked == 10:
            choose(page, 5)  # getting started: definitely
        elif asked % 2:
            choose(page, 2)  # only with help
        else:
            choose(page, 3)  # maybe
    assert asked == 22
    assert "Assessment complete" in visit.text(".govuk-panel")
    visit.check("/respondents/<id>/assisted (fresh install, complete)")
    visit.go(f"/respondents/{respondent}", snap=False)
    answers = " ".join((page.locator("main").text_content() or "").split())
    assert f"Filled in with a member of staff: {ADMIN}" in answers
    getting_started = profile_numbers(visit)["Getting started"]
    assert getting_started == ("25%", "100%")  # only with help, definitely
    main = visit.text("main")
    assert "What holds them back: cost" in main, main
    top = page.locator("#priorities ~ ol").first.locator("li").all_inner_texts()
    assert top[0].startswith("Getting started"), top
    visit.check("/respondents/<id> (fresh install, assisted)")


def choose(page: Page, option: int) -> None:
    page.locator(f"input[name=option][value='{option}']").check()
    with page.expect_navigation():
        page.locator("#continue").click()
