"""Every page an admin reaches from the service navigation, and from the first row of each
table on the way (a resident, a cohort), in a real browser: each answers 200, is screenshotted,
and axe-core finds nothing serious or critical on it (all it finds goes in the axe report)."""

from __future__ import annotations

from collections import deque

import pytest
import sqlalchemy as sa

from flows.model import Flow
from tests.browser.support import Visit, links, page_kind, quick_check, sign_in, texts_from
from tests.dashboard_support import NORTH_ADMIN, PASSWORD, FakeNow, Staff, enrol_into_team

MAX_PAGES = 40
MAX_DEPTH = 3
ANSWERED = ("07700 900101", "tel:+447700900101")
COHORT = "Library group"


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


def test_every_page_from_the_navigation_and_first_rows_passes_axe(
    visit: Visit, staff: Staff, residents: list[int]
) -> None:
    sign_in(visit, NORTH_ADMIN, PASSWORD)
    start = visit.path()
    queue = deque((path, 1) for path in links(visit.page, ".govuk-service-navigation"))
    queue.appendleft((start, 0))
    seen: dict[str, str] = {}
    while queue and len(seen) < MAX_PAGES:
        path, depth = queue.popleft()
        kind = page_kind(path)
        if kind in seen or kind == "/":
            continue
        visit.go(path, snap=False)  # check() takes the screenshot
        seen[kind] = path
        visit.check(kind)
        assert visit.page.locator("h1").count() == 1, f"{path} has one main heading"
        if depth < MAX_DEPTH:
            queue.extend((found, depth + 1) for found in links(visit.page, "main"))
    reached = set(seen)
    assert {"/respondents", "/respondents/<id>", "/enrol", "/cohorts", "/checkins"} <= reached
    assert {"/password"} <= reached
    print("pages checked:", *sorted(seen.items()), sep="\n  ")
