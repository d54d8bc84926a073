"""Fixtures for the browser tests: one headless Chromium for the whole package, the real app
served on 127.0.0.1 per test (on the test's own database: `database_url`), and a fresh browser
context per test (`visit`; `browse(javascript=False)` for another, e.g. with scripts off).

Without Chromium (Debian: `apt-get install chromium`; BROWSER_TESTS_CHROMIUM names another) the
tests are skipped with that reason, unless REQUIRE_BROWSER_TESTS=1 (CI sets it), when they fail.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from playwright.sync_api import Browser, BrowserContext, sync_playwright

from dibot.config import Config, DatabaseConfig, OutreachConfig, ServerConfig, WebConfig
from dibot.web import create_app
from flows.model import Flow
from tests.browser.support import (
    CHROMIUM,
    CHROMIUM_VARIABLE,
    LOCALHOST,
    REQUIRE_BROWSER,
    SCREENSHOTS,
    AxeLedger,
    Browse,
    LiveServer,
    Visit,
    browser_required,
    find_chromium,
    quick_check,
    serving,
    texts_from,
)
from tests.dashboard_support import SECRET, FakeNow, Staff, enrol_into_team

ANSWERED = ("07700 900101", "tel:+447700900101")
"""The resident who answered the quick check: their number as typed, and their URN."""
COHORT = "Library group"


@pytest.fixture(scope="package")
def chromium() -> Iterator[Browser]:
    """One headless Chromium for every browser test (Playwright cannot fetch its own here)."""
    path = find_chromium()
    if path is None:
        reason = (
            f"no Chromium at {os.environ.get(CHROMIUM_VARIABLE) or CHROMIUM} or on PATH "
            "(Debian: apt-get install chromium)"
        )
        if browser_required():
            pytest.fail(f"{reason}, and {REQUIRE_BROWSER}=1 requires the browser tests")
        pytest.skip(reason)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=path, headless=True)
        yield browser
        browser.close()


@pytest.fixture(scope="package")
def ledger() -> AxeLedger:
    """The run's axe results; the screenshots of an earlier run are cleared first."""
    shutil.rmtree(SCREENSHOTS, ignore_errors=True)
    url = os.environ.get("DIBOT_DATABASE_URL", "")
    return AxeLedger(database="PostgreSQL" if url.startswith("postgresql") else "SQLite")


@pytest.fixture
def live_server(database_url: str, flow: Flow, clock: FakeNow) -> Iterator[LiveServer]:
    """The real dashboard on the test's database and fake clock, over plain HTTP on
    127.0.0.1 (the one host where the session cookie may go without HTTPS)."""
    config = Config(
        server=ServerConfig(host=LOCALHOST),
        database=DatabaseConfig(url=database_url),
        web=WebConfig(secret_key=SECRET, cookie_secure=False),
        outreach=OutreachConfig(),
    )
    app = create_app(config, flow=flow, now=clock)
    with serving(app) as server:
        yield server
    app.extensions["dibot"].engine.dispose()


@pytest.fixture
def browse(
    chromium: Browser, live_server: LiveServer, ledger: AxeLedger, request: pytest.FixtureRequest
) -> Iterator[Browse]:
    """`browse(javascript=True)`: a new browser context (no cookies) on the live server."""
    contexts: list[tuple[BrowserContext, Visit]] = []
    test = re.sub(r"[^A-Za-z0-9_]+", "-", request.node.name).strip("-")

    def open_context(*, javascript: bool = True) -> Visit:
        context = chromium.new_context(
            base_url=live_server.url,
            java_script_enabled=javascript,
            locale="en-GB",
            timezone_id="Europe/London",
            viewport={"width": 1024, "height": 768},
        )
        context.set_default_timeout(10_000)
        name = test if not contexts else f"{test}-{len(contexts) + 1}"
        visit = Visit(context.new_page(), name, ledger)
        contexts.append((context, visit))
        return visit

    yield open_context
    for context, _ in contexts:
        context.close()
    problems = [problem for _, visit in contexts for problem in visit.problems]
    assert not problems, problems


@pytest.fixture
def visit(browse: Browse) -> Visit:
    return browse()


@pytest.fixture
def residents(engine: sa.Engine, flow: Flow, clock: FakeNow, staff: Staff) -> list[int]:
    """South: one only invited; North: one only invited, and (the newest, so the first row)
    one in a cohort who answered the quick check (some skills, keen to learn)."""
    north, south = staff.north_worker.team_id, staff.south_worker.team_id
    invited = [
        enrol_into_team(engine, flow, "07700 900201", south),
        enrol_into_team(engine, flow, "07700 900102", north),
    ]
    answered = enrol_into_team(engine, flow, ANSWERED[0], north, cohort=COHORT)
    texts_from(engine, flow, clock, ANSWERED[1], *quick_check(skill="2", interest="1"))
    return [*invited, answered]
