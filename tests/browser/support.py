"""What the browser tests share: the real app served on 127.0.0.1, a Chromium page that
screenshots every step, axe-core run on each page (a serious or critical violation fails the
test; every violation of any impact goes into test-artifacts/axe-report.json and
axe-summary.txt), and the keyboard: Tab to a control, with GOV.UK's focus style visible on
every stop.

The rule it keeps: the browser reaches the dashboard only over HTTP on 127.0.0.1, as a member
of staff would, through the pages themselves. What the pages show is made as dibot makes it:
residents enrolled by `outreach.enrolment` and answering by SMS through the real turn handler.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from itertools import count
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import sqlalchemy as sa
from axe_playwright_python.sync_playwright import Axe  # type: ignore[import-untyped]
from flask import Flask
from playwright.sync_api import ConsoleMessage, Error, Page, Response
from werkzeug.serving import make_server

from bot.messages import Inbound
from dibot.turns import TurnHandler
from flows.model import Flow

LOCALHOST = "127.0.0.1"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
SCREENSHOTS = ARTIFACTS / "screenshots"
AXE_REPORT = ARTIFACTS / "axe-report.json"
AXE_SUMMARY = ARTIFACTS / "axe-summary.txt"

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_VARIABLE = "BROWSER_TESTS_CHROMIUM"
"""Another Chromium to use instead (a path); one that is not there counts as none."""
REQUIRE_BROWSER = "REQUIRE_BROWSER_TESTS"
IMPACTS = ("critical", "serious", "moderate", "minor")
BLOCKING = frozenset({"critical", "serious"})
FOCUS_YELLOW = "rgb(255, 221, 0)"  # GOV.UK's focus colour, #ffdd00
MAX_TABS = 60
TOPICS = 7
"""The quick check's skill topics, each asked as skill then interest."""


def find_chromium() -> str | None:
    """BROWSER_TESTS_CHROMIUM if set, else Debian's Chromium, or one on PATH; None when there is
    none."""
    chosen = os.environ.get(CHROMIUM_VARIABLE)
    if chosen:
        return chosen if os.access(chosen, os.X_OK) else None
    if os.access(CHROMIUM, os.X_OK):
        return CHROMIUM
    return shutil.which("chromium") or shutil.which("chromium-browser")


def browser_required() -> bool:
    """Whether a missing Chromium fails the tests (CI) rather than skipping them."""
    return os.environ.get(REQUIRE_BROWSER, "") == "1"


@dataclass(frozen=True)
class LiveServer:
    url: str
    app: Flask


@contextmanager
def serving(app: Flask) -> Iterator[LiveServer]:
    """`app` under werkzeug's threaded server on 127.0.0.1 and a free port, until the block
    ends."""
    server = make_server(LOCALHOST, 0, app, threaded=True)
    host, port = server.server_address[:2]
    assert host == LOCALHOST
    thread = threading.Thread(target=server.serve_forever, name="live-server", daemon=True)
    thread.start()
    try:
        yield LiveServer(url=f"http://{LOCALHOST}:{port}", app=app)
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.]+", "-", text).strip("-").lower()[:80] or "page"


@dataclass
class AxeLedger:
    """Every axe result of the run, per page label (e.g. "Sign in (error)"), written out after
    each page so a failing run still leaves its report."""

    database: str
    engine: str = ""
    pages: dict[str, dict[str, Any]] = field(default_factory=dict)

    def record(
        self, label: str, url: str, title: str, test: str, violations: list[dict[str, Any]]
    ) -> None:
        entry = self.pages.setdefault(
            label, {"url": url, "title": title, "tests": [], "violations": {}}
        )
        if test not in entry["tests"]:
            entry["tests"].append(test)
        for violation in violations:
            known = entry["violations"].setdefault(
                violation["id"],
                {
                    "impact": violation["impact"],
                    "help": violation["help"],
                    "targets": [],
                },
            )
            for node in violation["nodes"]:
                target = " ".join(map(str, node["target"]))
                if target not in known["targets"]:
                    known["targets"].append(target)
        self.write()

    def counts(self, label: str) -> dict[str, int]:
        """How many rules the page breaks, by impact."""
        found = dict.fromkeys(IMPACTS, 0)
        for violation in self.pages[label]["violations"].values():
            found[violation["impact"]] = found.get(violation["impact"], 0) + 1
        return found

    def write(self) -> None:
        ARTIFACTS.mkdir(exist_ok=True)
        report = {"database": self.database, "axe-core": self.engine, "pages": self.pages}
        AXE_REPORT.write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
        lines = [f"axe-core {self.engine} on {self.database}: rules violated, by impact", ""]
        for label in sorted(self.pages):
            counts = self.counts(label)
            numbers = ", ".join(f"{impact} {counts[impact]}" for impact in IMPACTS)
            rules = ", ".join(
                f"{rule} ({found['impact']})"
                for rule, found in sorted(self.pages[label]["violations"].items())
            )
            lines.append(f"{label}: {numbers}" + (f": {rules}" if rules else ""))
        AXE_SUMMARY.write_text("\n".join(lines) + "\n")


def blocking(violations: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The serious and critical violations: every one fails the test."""
    return [violation for violation in violations if violation["impact"] in BLOCKING]


def describe(violations: list[dict[str, Any]]) -> str:
    """Each violation as rule id, impact, help and the elements it was found on."""
    lines = []
    for violation in violations:
        lines.append(f"{violation['id']} ({violation['impact']}): {violation['help']}")
        lines.extend(f"    at {' '.join(map(str, node['target']))}" for node in violation["nodes"])
    return "\n".join(lines)


FOCUS_SCRIPT = """() => {
  const el = document.activeElement;
  if (!el || el === document.body) return null;
  const style = getComputedStyle(el);
  let before = "";
  if (el.matches("input[type=radio], input[type=checkbox]") && el.labels && el.labels[0]) {
    before = getComputedStyle(el.labels[0], "::before").boxShadow;
  }
  return {
    tag: el.tagName.toLowerCase(),
    id: el.id,
    name: el.getAttribute("name") || "",
    type: el.getAttribute("type") || "",
    text: (el.innerText || el.value || "").trim().slice(0, 60),
    outline: style.outlineStyle !== "none" ? style.outlineColor : "",
    outlineWidth: parseFloat(style.outlineWidth) || 0,
    background: style.backgroundColor,
    boxShadow: style.boxShadow,
    labelBefore: before,
  };
}"""


def focused(page: Page) -> dict[str, Any] | None:
    """What has the keyboard focus, with the styles that show it."""
    found: dict[str, Any] | None = page.evaluate(FOCUS_SCRIPT)
    return found


def focus_is_visible(found: dict[str, Any]) -> bool:
    """GOV.UK's focus style: a yellow outline (inputs), yellow background (links, buttons) or
    yellow ring (a radio's or checkbox's label)."""
    return (
        (found["outline"] == FOCUS_YELLOW and found["outlineWidth"] >= 2)
        or found["background"] == FOCUS_YELLOW
        or FOCUS_YELLOW in found["boxShadow"]
        or FOCUS_YELLOW in found["labelBefore"]
    )


def tab_to(page: Page, selector: str, *, backwards: bool = False) -> list[dict[str, Any]]:
    """Press Tab (Shift+Tab if `backwards`) until the element matching `selector` has focus,
    asserting GOV.UK's visible focus style at every stop; the stops on the way."""
    stops: list[dict[str, Any]] = []
    for _ in range(MAX_TABS):
        page.keyboard.press("Shift+Tab" if backwards else "Tab")
        found = focused(page)
        if found is None:
            continue
        assert focus_is_visible(found), f"focus not visible on {found}"
        stops.append(found)
        if page.evaluate("s => document.activeElement.matches(s)", selector):
            return stops
    raise AssertionError(f"{selector} not reached in {MAX_TABS} Tabs: {stops}")


@dataclass
class Visit:
    """One test's browser tab on the live server: every step screenshotted as
    test-artifacts/screenshots/<test>-<nn>-<step>.png, console errors (a CSP refusal among
    them) and uncaught script errors collected."""

    page: Page
    test: str
    ledger: AxeLedger
    steps: int = 0
    problems: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.page.on("console", self._console)
        self.page.on("pageerror", self._page_error)
        self.page.on("response", self._response)

    def _console(self, message: ConsoleMessage) -> None:
        # A response's status is judged in `_response` (a form's 400 page is no fault), not
        # by the console's "Failed to load resource".
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            self.problems.append(f"console: {message.text} at {message.location}")

    def _page_error(self, error: Error) -> None:
        self.problems.append(f"script error: {error}")

    def _response(self, response: Response) -> None:
        """A server error anywhere, or a missing script, stylesheet or image, is a fault; the
        browser's own request for /favicon.ico (the dashboard has none) is not."""
        document = response.request.resource_type == "document"
        if response.status >= 500 or (
            response.status >= 400 and not document and not response.url.endswith("/favicon.ico")
        ):
            self.problems.append(f"{response.status} for {response.url}")

    def go(
        self, path: str, step: str | None = None, *, status: int = 200, snap: bool = True
    ) -> Response:
        """Open `path` (on the live server) and screenshot it (unless `snap` is false because
        `check` follows, which takes one)."""
        response = self.page.goto(path)
        assert response is not None
        assert response.status == status, (path, response.status, self.page.content()[:2000])
        if snap:
            self.snap(step or path)
        return response

    def snap(self, step: str) -> Path:
        """A screenshot of the whole page as it is now."""
        self.steps += 1
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{self.test}-{self.steps:02d}-{slug(step)}.png"
        self.page.screenshot(path=path, full_page=True)
        return path

    def check(self, label: str) -> dict[str, int]:
        """Screenshot the page, run axe-core on it, record every violation under `label`, and
        fail on a serious or critical one (or on any console or script error so far); the
        page's violated rules by impact."""
        self.snap(label)
        results = Axe().run(self.page)
        response: dict[str, Any] = results.response
        self.ledger.engine = response["testEngine"]["version"]
        violations: list[dict[str, Any]] = response["violations"]
        self.ledger.record(label, self.page.url, self.page.title(), self.test, violations)
        failing = blocking(violations)
        assert not failing, f"axe on {label} ({self.page.url}):\n{describe(failing)}"
        assert not self.problems, self.problems
        return self.ledger.counts(label)

    def text(self, selector: str = "main") -> str:
        """What a person reads in `selector`, spaces collapsed."""
        return re.sub(r"\s+", " ", self.page.inner_text(selector)).strip()

    def wait_for_path(self, path: str) -> None:
        """Wait until the browser is on `path` (a regular expression for the whole path; the
        query and fragment aside), loaded."""
        self.page.wait_for_url(lambda url: re.fullmatch(path, urlsplit(url).path) is not None)
        self.page.wait_for_load_state()

    def path(self) -> str:
        """The current URL's path and query."""
        return re.sub(r"^https?://[^/]+", "", self.page.url)


Browse = Callable[..., Visit]
"""`browse(javascript=True)`: a new browser context on the live server (conftest.py)."""


def sign_in(visit: Visit, email: str, password: str, *, then: str | None = None) -> None:
    """Sign in through the login page (with the mouse: the keyboard has its own tests), on
    to `then` if given."""
    visit.go(f"/login?next={then}" if then else "/login", "sign in")
    visit.page.get_by_label("Email address").fill(email)
    visit.page.get_by_label("Password", exact=True).fill(password)
    with visit.page.expect_navigation():
        visit.page.get_by_role("button", name="Sign in").click()
    assert f"Signed in as {email}" in visit.text("body"), visit.text("body")


LINKS_SCRIPT = """(scope) => Array.from(document.querySelectorAll(scope + " a[href]"))
  .filter(a => !a.hasAttribute("download"))
  .filter(a => { const row = a.closest("tbody tr"); return !row || !row.previousElementSibling; })
  .map(a => a.href)"""


def links(page: Page, scope: str) -> list[str]:
    """The paths of the links in `scope` on this site (in a table, the first row's only)."""
    origin = urlsplit(page.url).netloc
    found: list[str] = page.evaluate(LINKS_SCRIPT, scope)
    paths = []
    for url in found:
        parts = urlsplit(url)
        if parts.netloc == origin and not parts.path.startswith("/dashboard-assets"):
            paths.append(parts.path + (f"?{parts.query}" if parts.query else ""))
    return paths


def page_kind(path: str) -> str:
    """A page's label in the axe report: its path with ids as <id>, and the names (not the
    values) of its query's parameters: /cohorts/<id>, /checkins?cohort."""
    parts = urlsplit(path)
    kind = re.sub(r"/\d+(?=/|$)", "/<id>", parts.path)
    names = sorted({name for name, _ in parse_qsl(parts.query, keep_blank_values=True)})
    return kind + (f"?{'&'.join(names)}" if names else "")


def texts_from(
    engine: sa.Engine, flow: Flow, clock: Callable[[], datetime], urn: str, *texts: str
) -> None:
    """The resident sends each of `texts` by SMS, through the real turn handler."""
    handler = TurnHandler(engine, flow, clock=clock)
    for text in texts:
        handler.handle(
            channel="sms", message_id=f"SM{next(_message_ids):032d}", urn=urn, inbound=Inbound(text)
        )


_message_ids = count(1)


def quick_check(skill: str, interest: str, basics: str = "5", blockers: str = "5") -> list[str]:
    """Greeting, consent, the quick check, then the same option for every answer of a kind."""
    return ["Hi", "1", "1", *[basics] * 3, *[blockers] * 5, *[skill, interest] * TOPICS]
