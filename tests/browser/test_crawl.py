"""Every page an admin reaches from the service navigation, and from the first row of each
table on the way (a resident, a cohort), in a real browser: each answers 200, is screenshotted,
and axe-core finds nothing serious or critical on it (all it finds goes in the axe report)."""

from __future__ import annotations

from collections import deque

from tests.browser.support import Visit, links, page_kind, sign_in
from tests.dashboard_support import NORTH_ADMIN, PASSWORD, Staff

MAX_PAGES = 40
MAX_DEPTH = 3


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
    assert {"/password", "/reports", "/exports", "/personas", "/personas/new"} <= reached
    print("pages checked:", *sorted(seen.items()), sep="\n  ")
