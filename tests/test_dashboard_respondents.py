"""The residents list (`GET /respondents`) through Flask's test client on a real database: who
sees whom (a worker their own team's, an admin everyone's, team-less residents included),
numbers masked, each status as the resident's own messages made it, the filters, searching by
a whole number however it is typed, keyset paging with nothing shown twice or missed, odd
query values that never make a 500, one audit line per view, and the benchmark run small."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from bench import dashboard_list
from dibot.turns import TurnHandler
from flows.model import Flow
from outreach.enrolment import EnrolmentRequest, enrol
from outreach.quiet_hours import NO_QUIET_HOURS
from storage.models import AuditEntry, Cohort, Conversation, Team, table
from tests.dashboard_support import FakeNow, Staff, enrol_into_team, page_text, signed_in, submit
from tests.turn_helpers import send

ROW = re.compile(r'<tr class="govuk-table__row">(.*?)</tr>', re.S)
ROW_LINK = re.compile(r'href="/respondents/(\d+)"')
NEXT = re.compile(r'<a [^>]*href="([^"]+)" rel="next"')
PREVIOUS = re.compile(r'<a [^>]*href="([^"]+)" rel="prev"')


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).strip()


def listed(response: TestResponse) -> list[int]:
    """The residents' ids in the table, top to bottom."""
    assert response.status_code == 200, response.status_code
    return [int(found) for found in ROW_LINK.findall(response.get_data(as_text=True))]


def search(client: FlaskClient, typed: str) -> TestResponse:
    """The search form as a browser sends it: posted, answered at once when it is a number."""
    response = submit(client, "/respondents", {"q": typed}, form_page="/password")
    assert response.status_code == 200, response.status_code
    return response


def rows(response: TestResponse) -> dict[int, str]:
    """Each listed resident's row, as words."""
    found = {}
    for row in ROW.findall(response.get_data(as_text=True)):
        link = ROW_LINK.search(row)
        if link:
            found[int(link[1])] = _text(row)
    return found


def unescaped(href: str) -> str:
    return href.replace("&amp;", "&")


def team_id(engine: sa.Engine, name: str) -> int:
    teams = table(Team)
    with engine.connect() as conn:
        found: int = conn.execute(sa.select(teams.c.id).where(teams.c.name == name)).scalar_one()
    return found


def give_cohort_to(engine: sa.Engine, cohort: str, team: str | None) -> int:
    cohorts = table(Cohort)
    team_of = team_id(engine, team) if team else None
    with engine.begin() as conn:
        conn.execute(sa.update(cohorts).where(cohorts.c.name == cohort).values(team_id=team_of))
        found: int = conn.execute(
            sa.select(cohorts.c.id).where(cohorts.c.name == cohort)
        ).scalar_one()
    return found


def list_views(engine: sa.Engine) -> list[tuple[int | None, str]]:
    audit = table(AuditEntry)
    with engine.connect() as conn:
        found = conn.execute(
            sa.select(audit.c.staff_id, audit.c.detail)
            .where(audit.c.action == "list respondents")
            .order_by(audit.c.id)
        ).all()
    return [(row.staff_id, row.detail) for row in found]


@pytest.fixture
def handler(engine: sa.Engine, flow: Flow, clock: FakeNow) -> TurnHandler:
    """Residents' own texts, on the dashboard's clock."""
    return TurnHandler(engine, flow, clock=clock)


@pytest.fixture
def teams(engine: sa.Engine, staff: Staff) -> dict[str, int]:
    return {"North": team_id(engine, "North"), "South": team_id(engine, "South")}


# --- who sees whom --------------------------------------------------------------------------


def test_a_worker_sees_their_own_teams_residents_and_an_admin_sees_everyone(
    dashboard: Flask,
    engine: sa.Engine,
    flow: Flow,
    staff: Staff,
    teams: dict[str, int],
    handler: TurnHandler,
) -> None:
    north = enrol_into_team(engine, flow, "07700 900101", teams["North"])
    south = enrol_into_team(engine, flow, "07700 900201", teams["South"])
    send(handler, "tel:+447700900301", "Hi")  # texted in: no team
    self_started = max(listed(signed_in(dashboard, staff.north_admin).get("/respondents")))

    assert listed(signed_in(dashboard, staff.north_worker).get("/respondents")) == [north]
    assert listed(signed_in(dashboard, staff.south_worker).get("/respondents")) == [south]
    as_admin = signed_in(dashboard, staff.north_admin).get("/respondents")
    assert listed(as_admin) == [self_started, south, north]  # newest first
    assert rows(as_admin)[self_started].endswith("No team")
    assert rows(as_admin)[south].endswith("South")
    assert rows(as_admin)[north].endswith("North")
    team_column = '<th scope="col" class="govuk-table__header">Team</th>'
    assert team_column in as_admin.get_data(as_text=True)
    as_worker = signed_in(dashboard, staff.north_worker).get("/respondents")
    assert team_column not in as_worker.get_data(as_text=True)


def test_another_teams_resident_found_by_number_is_not_there_for_a_worker(
    dashboard: Flask, engine: sa.Engine, flow: Flow, staff: Staff, teams: dict[str, int]
) -> None:
    south = enrol_into_team(engine, flow, "07700 900201", teams["South"])

    as_north = search(signed_in(dashboard, staff.north_worker), "07700 900201")
    as_admin = search(signed_in(dashboard, staff.north_admin), "07700 900201")

    assert listed(as_north) == []
    assert "No resident you can see has that number" in page_text(as_north)
    assert listed(as_admin) == [south]


def test_phone_numbers_and_chat_ids_are_shown_masked_never_whole(
    dashboard: Flask, engine: sa.Engine, flow: Flow, staff: Staff, teams: dict[str, int]
) -> None:
    enrol_into_team(engine, flow, "07700 900457", teams["North"])
    enrol(
        engine,
        flow,
        EnrolmentRequest(None, "987654321", None, None, None, "a worker", "public_task"),
        NO_QUIET_HOURS,
        datetime(2026, 12, 1, 10, 0, tzinfo=UTC),
    )

    response = signed_in(dashboard, staff.north_admin).get("/respondents")
    html = response.get_data(as_text=True)

    assert "07700 900•••" in page_text(response)
    assert "Telegram chat •••321" in page_text(response)
    for whole in ("900457", "7700900457", "987654321", "654321"):
        assert whole not in html


# --- statuses -------------------------------------------------------------------------------


def _answer_until_done(handler: TurnHandler, engine: sa.Engine, urn: str, rid: int) -> None:
    conversations = table(Conversation)
    for _ in range(120):
        send(handler, urn, "1")
        with engine.connect() as conn:
            state = conn.execute(
                sa.select(conversations.c.state).where(conversations.c.respondent_id == rid)
            ).scalar_one()
        if '"stage":"done"' in state:
            return
    raise AssertionError("the quick check did not end")


def test_each_status_reads_as_what_the_resident_did_and_filters_by_it(
    dashboard: Flask,
    engine: sa.Engine,
    flow: Flow,
    staff: Staff,
    teams: dict[str, int],
    handler: TurnHandler,
) -> None:
    north = teams["North"]
    invited = enrol_into_team(engine, flow, "07700 900001", north)
    talking = enrol_into_team(engine, flow, "07700 900002", north)
    send(handler, "tel:+447700900002", "Hello?")  # wrote back, has not agreed or begun
    asking = enrol_into_team(engine, flow, "07700 900003", north)
    for text in ("1", "1", "1", "1", "1", "1"):  # agree, quick check, then 4 answers
        send(handler, "tel:+447700900003", text)
    done = enrol_into_team(engine, flow, "07700 900004", north)
    send(handler, "tel:+447700900004", "1")
    _answer_until_done(handler, engine, "tel:+447700900004", done)
    stopped = enrol_into_team(engine, flow, "07700 900005", north)
    send(handler, "tel:+447700900005", "STOP")
    unreachable = enrol_into_team(engine, flow, "07700 900006", north)
    handler.mark_unreachable("tel:+447700900006")
    client = signed_in(dashboard, staff.north_worker)

    shown = rows(client.get("/respondents"))

    assert "Invited" in shown[invited]
    assert "Not started" in shown[talking]
    assert "In progress (Q5 of 22)" in shown[asking]
    assert "Completed" in shown[done]
    assert "Opted out" in shown[stopped]
    assert "Unreachable" in shown[unreachable]
    expected = {
        "invited": [invited],
        "not_started": [talking],
        "in_progress": [asking],
        "completed": [done],
        "opted_out": [stopped],
        "unreachable": [unreachable],
    }
    for status, ids in expected.items():
        assert listed(client.get(f"/respondents?status={status}")) == ids, status


def test_a_residents_last_message_shows_in_the_councils_time_and_filters_by_when(
    dashboard: Flask,
    engine: sa.Engine,
    flow: Flow,
    staff: Staff,
    teams: dict[str, int],
    handler: TurnHandler,
    clock: FakeNow,
) -> None:
    today = clock.at
    north = teams["North"]
    clock.at = datetime(2026, 7, 1, 12, 0, tzinfo=UTC)  # 13:00 in London (summer time)
    summer = enrol_into_team(engine, flow, "07700 900011", north, now=clock.at)
    send(handler, "tel:+447700900011", "1")
    clock.at = today - timedelta(days=20)
    weeks_ago = enrol_into_team(engine, flow, "07700 900012", north, now=clock.at)
    send(handler, "tel:+447700900012", "1")
    clock.at = today - timedelta(days=2)
    lately = enrol_into_team(engine, flow, "07700 900013", north, now=clock.at)
    send(handler, "tel:+447700900013", "1")
    clock.at = today
    silent = enrol_into_team(engine, flow, "07700 900014", north)
    client = signed_in(dashboard, staff.north_worker)

    shown = rows(client.get("/respondents"))

    assert "1 Jul 2026, 13:00" in shown[summer]
    assert "Never" in shown[silent]
    assert listed(client.get("/respondents?contact=7d")) == [lately]
    assert listed(client.get("/respondents?contact=30d")) == [lately, weeks_ago]
    assert listed(client.get("/respondents?contact=over30d")) == [summer]
    assert listed(client.get("/respondents?contact=never")) == [silent]


# --- cohorts --------------------------------------------------------------------------------


def test_the_cohort_filter_offers_and_shows_only_the_members_own_cohorts(
    dashboard: Flask, engine: sa.Engine, flow: Flow, staff: Staff, teams: dict[str, int]
) -> None:
    reading = enrol_into_team(engine, flow, "07700 900021", teams["North"], cohort="Library club")
    enrol_into_team(engine, flow, "07700 900022", teams["North"])
    enrol_into_team(engine, flow, "07700 900023", teams["South"], cohort="Market stall")
    library = give_cohort_to(engine, "Library club", "North")
    market = give_cohort_to(engine, "Market stall", "South")
    client = signed_in(dashboard, staff.north_worker)

    everyone = client.get("/respondents")
    in_library = client.get(f"/respondents?cohort={library}")

    assert "Library club" in page_text(everyone)
    assert "Market stall" not in page_text(everyone)
    assert "Library club" in rows(everyone)[reading]
    assert listed(in_library) == [reading]
    assert client.get(f"/respondents?cohort={market}").status_code == 404
    assert client.get("/respondents?cohort=999999").status_code == 404
    assert (
        signed_in(dashboard, staff.south_worker).get(f"/respondents?cohort={market}").status_code
        == 200
    )


def test_a_cohort_made_on_the_command_line_is_for_admins_only(
    dashboard: Flask, engine: sa.Engine, flow: Flow, staff: Staff, teams: dict[str, int]
) -> None:
    rid = enrol_into_team(engine, flow, "07700 900031", teams["North"], cohort="County pilot")
    pilot = give_cohort_to(engine, "County pilot", None)

    as_worker = signed_in(dashboard, staff.north_worker)
    as_admin = signed_in(dashboard, staff.north_admin)

    assert "County pilot" not in page_text(as_worker.get("/respondents"))
    assert as_worker.get(f"/respondents?cohort={pilot}").status_code == 404
    assert listed(as_admin.get(f"/respondents?cohort={pilot}")) == [rid]
    assert "County pilot" in rows(as_admin.get("/respondents"))[rid]


# --- search ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "typed",
    [
        "07700 900123",
        "07700900123",
        "07700 900 123",
        "+44 7700 900123",
        "+447700900123",
        "0044 7700 900123",
        "(07700) 900-123",
        "  07700 900123  ",
    ],
)
def test_a_whole_number_finds_the_resident_however_it_is_typed(
    dashboard: Flask,
    engine: sa.Engine,
    flow: Flow,
    staff: Staff,
    teams: dict[str, int],
    typed: str,
) -> None:
    enrol_into_team(engine, flow, "07700 900122", teams["North"])
    wanted = enrol_into_team(engine, flow, "07700 900123", teams["North"])
    enrol_into_team(engine, flow, "07700 900124", teams["North"])

    response = search(signed_in(dashboard, staff.north_worker), typed)

    assert listed(response) == [wanted]
    assert "There is a problem" not in page_text(response)


def test_a_telegram_chat_id_finds_its_resident(
    dashboard: Flask, engine: sa.Engine, flow: Flow, staff: Staff
) -> None:
    enrolled = enrol(
        engine,
        flow,
        EnrolmentRequest(None, "987654321", None, None, None, "a worker", "public_task"),
        NO_QUIET_HOURS,
        datetime(2026, 12, 1, 10, 0, tzinfo=UTC),
    )

    response = search(signed_in(dashboard, staff.north_admin), "987654321")

    assert listed(response) == [enrolled.respondent_id]


@pytest.mark.parametrize(
    ("typed", "says"),
    [
        ("07700 9001", "(not a valid UK mobile or landline number)"),
        ("+1 202 555 0123", "another country"),
        ("٠٧٧٠٠ ٩٠٠١٢٣", "digits other than 0-9"),
        ("x" * 500, "at most 100 characters"),
        ("07700\x00900123", "control characters"),
    ],
)
def test_a_search_that_cannot_be_a_whole_number_says_why(
    dashboard: Flask,
    engine: sa.Engine,
    flow: Flow,
    staff: Staff,
    teams: dict[str, int],
    typed: str,
    says: str,
) -> None:
    enrol_into_team(engine, flow, "07700 900123", teams["North"])

    response = search(signed_in(dashboard, staff.north_worker), typed)

    assert response.status_code == 200
    assert listed(response) == []
    text = page_text(response)
    assert text.startswith("Error: Residents")
    assert "There is a problem" in text
    assert says in text
    assert "Enter a whole phone number" in text or "Search for" in text


def test_part_of_a_number_finds_no_one_and_says_the_whole_number_is_needed(
    dashboard: Flask, engine: sa.Engine, flow: Flow, staff: Staff, teams: dict[str, int]
) -> None:
    enrol_into_team(engine, flow, "07700 900123", teams["North"])

    response = search(signed_in(dashboard, staff.north_worker), "900123")

    assert listed(response) == []
    assert "No resident you can see has that number" in page_text(response)
    assert "the whole number" in page_text(response)


def test_words_look_for_cohorts_by_name_and_say_so_when_none_has_them(
    dashboard: Flask, engine: sa.Engine, flow: Flow, staff: Staff, teams: dict[str, int]
) -> None:
    reader = enrol_into_team(engine, flow, "07700 900041", teams["North"], cohort="Library club")
    enrol_into_team(engine, flow, "07700 900042", teams["North"])
    enrol_into_team(engine, flow, "07700 900043", teams["South"], cohort="Library south")
    give_cohort_to(engine, "Library club", "North")
    give_cohort_to(engine, "Library south", "South")
    client = signed_in(dashboard, staff.north_worker)

    found = client.get("/respondents?q=library")
    nothing = client.get("/respondents?q=bingo")
    wildcard = client.get("/respondents?q=%25")

    assert listed(found) == [reader]
    assert "Residents in the cohort Library club" in page_text(found)
    assert "Library south" not in page_text(found)
    assert listed(nothing) == []
    assert "No cohort you can see has “bingo” in its name" in page_text(nothing)
    assert listed(wildcard) == []


# --- paging ---------------------------------------------------------------------------------


def walk(client: FlaskClient, start: str, link: re.Pattern[str]) -> Iterator[list[int]]:
    """The ids of each page from `start`, following `link` (Next or Previous) to the end."""
    path: str | None = start
    for _ in range(100):
        if path is None:
            return
        response = client.get(path)
        yield listed(response)
        following = link.search(response.get_data(as_text=True))
        path = unescaped(following[1]) if following else None
    raise AssertionError("paging did not end")


def test_next_and_previous_walk_every_resident_once_newest_first(
    dashboard: Flask, engine: sa.Engine, flow: Flow, staff: Staff, teams: dict[str, int]
) -> None:
    filled = dashboard_list.fill(engine, flow, 300)
    client = signed_in(dashboard, staff.north_worker)

    pages = list(walk(client, "/respondents", NEXT))
    seen = [rid for page in pages for rid in page]

    assert seen == sorted(filled.north_ids, reverse=True)
    assert all(len(page) == 50 for page in pages[:-1])
    last = client.get(f"/respondents?before={seen[-51]}")
    back = list(walk(client, f"/respondents?before={seen[-51]}", PREVIOUS))
    assert listed(last) == seen[-50:]
    assert [rid for page in reversed(back) for rid in page] == seen
    past_the_end = client.get(f"/respondents?before={seen[-1]}").get_data(as_text=True)
    assert NEXT.search(past_the_end) is None


def test_an_admin_pages_through_everyone_and_a_filter_stays_on_every_page(
    dashboard: Flask, engine: sa.Engine, flow: Flow, staff: Staff, teams: dict[str, int]
) -> None:
    filled = dashboard_list.fill(engine, flow, 300)
    client = signed_in(dashboard, staff.north_admin)

    everyone = [rid for page in walk(client, "/respondents", NEXT) for rid in page]
    completed_pages = list(walk(client, "/respondents?status=completed", NEXT))
    completed = [rid for page in completed_pages for rid in page]
    statuses = rows(client.get("/respondents"))

    assert everyone == sorted(filled.all_ids, reverse=True)
    assert len(completed_pages) > 1
    assert len(set(completed)) == len(completed)
    assert completed == sorted(completed, reverse=True)
    for rid, text in statuses.items():
        assert ("Completed" in text) == (rid in completed), text


def test_a_resident_added_while_paging_is_neither_shown_twice_nor_skipped(
    dashboard: Flask, engine: sa.Engine, flow: Flow, staff: Staff, teams: dict[str, int]
) -> None:
    dashboard_list.fill(engine, flow, 300)
    client = signed_in(dashboard, staff.north_worker)
    first = client.get("/respondents")
    second_path = unescaped(NEXT.search(first.get_data(as_text=True))[1])  # type: ignore[index]

    newcomer = enrol_into_team(engine, flow, "07700 900999", teams["North"])
    second = client.get(second_path)
    back = client.get(unescaped(PREVIOUS.search(second.get_data(as_text=True))[1]))  # type: ignore[index]
    top = client.get(unescaped(PREVIOUS.search(back.get_data(as_text=True))[1]))  # type: ignore[index]

    assert not set(listed(first)) & set(listed(second))
    assert listed(second)[0] < listed(first)[-1]
    assert listed(back) == listed(first)
    assert listed(top) == [newcomer]


# --- odd input ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "query",
    [
        "before=abc",
        "before=-1",
        "before=0",
        "before=99999999999999999999999999",
        "before=1e3",
        "before=%EF%BC%91",  # a full-width digit one
        "after=abc",
        "after=99999999999999999999999999",
        "status=forgotten",
        "status=",
        "contact=forever",
        "cohort=abc",
        "cohort=-4",
        "cohort=99999999999999999999999999",
        "q=",
        "q=%F0%9F%99%82",
        "q=%ED%A0%80",
        "before=2&after=1",
        "status=completed&status=invited",
    ],
)
def test_odd_query_values_are_treated_as_absent_never_a_500(
    dashboard: Flask,
    engine: sa.Engine,
    flow: Flow,
    staff: Staff,
    teams: dict[str, int],
    query: str,
) -> None:
    rid = enrol_into_team(engine, flow, "07700 900051", teams["North"])
    client = signed_in(dashboard, staff.north_worker)

    response = client.get(f"/respondents?{query}")

    assert response.status_code == 200, query
    assert listed(response) in ([rid], [])
    assert "07700 900051" not in response.get_data(as_text=True)


def test_a_page_edge_past_the_oldest_resident_says_there_are_no_more(
    dashboard: Flask, engine: sa.Engine, flow: Flow, staff: Staff, teams: dict[str, int]
) -> None:
    rid = enrol_into_team(engine, flow, "07700 900061", teams["North"])
    client = signed_in(dashboard, staff.north_worker)

    past = client.get(f"/respondents?before={rid}")
    huge = client.get("/respondents?before=99999999999999999999999999")

    assert listed(past) == []
    assert "No more residents" in page_text(past)
    assert "Go to the first page" in page_text(past)
    assert listed(huge) == [rid]


def test_empty_lists_read_sensibly(
    dashboard: Flask, engine: sa.Engine, flow: Flow, staff: Staff, teams: dict[str, int]
) -> None:
    client = signed_in(dashboard, staff.north_worker)
    nobody = page_text(client.get("/respondents"))
    enrol_into_team(engine, flow, "07700 900071", teams["North"])
    no_match = page_text(client.get("/respondents?status=completed"))

    assert "No residents yet" in nobody
    assert "Enrol a resident" in nobody
    assert "No residents match" in no_match
    assert "Clear filters" in no_match


def test_the_filters_show_what_is_in_force(
    dashboard: Flask, engine: sa.Engine, flow: Flow, staff: Staff, teams: dict[str, int]
) -> None:
    enrol_into_team(engine, flow, "07700 900081", teams["North"])
    html = (
        signed_in(dashboard, staff.north_worker)
        .get("/respondents?status=invited&contact=never&status_bogus=1")
        .get_data(as_text=True)
    )

    assert re.search(r'<option value="invited" selected>', html)
    assert re.search(r'<option value="never" selected>', html)
    assert '<form method="post" action="/respondents"' in html


def test_a_number_is_searched_for_by_post_and_never_put_in_an_address(
    dashboard: Flask, engine: sa.Engine, flow: Flow, staff: Staff, teams: dict[str, int]
) -> None:
    wanted = enrol_into_team(engine, flow, "07700 900456", teams["North"])
    client = signed_in(dashboard, staff.north_worker)

    answered = search(client, "07700 900456")
    in_address = client.get("/respondents?q=07700+900456")
    by_name = submit(client, "/respondents", {"q": "library", "status": "invited"})

    assert listed(answered) == [wanted]
    links = re.findall(r'(?:href|action)="([^"]*)"', answered.get_data(as_text=True))
    assert links
    assert not [link for link in links if "900456" in link or "q=" in link]
    assert listed(in_address) == []
    assert "never put in the page’s address" in page_text(in_address)
    assert by_name.status_code == 302
    assert by_name.headers["Location"] == "/respondents?q=library&status=invited"


# --- audit ----------------------------------------------------------------------------------


def test_each_view_of_the_list_writes_one_audit_line_with_its_filters_not_the_number(
    dashboard: Flask, engine: sa.Engine, flow: Flow, staff: Staff, teams: dict[str, int]
) -> None:
    for number in range(91, 96):
        enrol_into_team(engine, flow, f"07700 9000{number}", teams["North"])
    client = signed_in(dashboard, staff.north_worker)

    client.get("/respondents")
    client.get("/respondents?status=invited&contact=never")
    search(client, "07700 900093")
    client.get("/respondents?q=Mrs+Example+07700900094")

    views = list_views(engine)
    assert [who for who, _ in views] == [staff.north_worker.id] * 4
    assert views[0][1] == "all"
    assert "status=invited" in views[1][1]
    assert "contact=never" in views[1][1]
    assert "phone number" in views[2][1]
    assert "900093" not in views[2][1]
    assert "Mrs Example" in views[3][1]
    assert not re.search(r"\d", views[3][1])


def test_someone_signed_out_is_sent_to_log_in_and_nothing_is_audited(
    dashboard: Flask, engine: sa.Engine, staff: Staff
) -> None:
    client = dashboard.test_client()
    client.environ_base["wsgi.url_scheme"] = "https"

    response = client.get("/respondents?status=invited")

    assert response.status_code == 302
    assert "/login" in response.headers["Location"]
    assert list_views(engine) == []


# --- the benchmark --------------------------------------------------------------------------


def test_the_list_benchmark_runs_small_and_its_checks_pass(
    capsys: pytest.CaptureFixture[str],
) -> None:
    status = dashboard_list.main(["--respondents", "300", "--requests", "1"])

    printed = capsys.readouterr().out
    assert status == 0, printed
    assert "worker first page" in printed
    assert "admin  search: a number" in printed
    assert "FAILED" not in printed


def test_the_benchmarks_checks_notice_a_page_that_shows_the_wrong_residents() -> None:
    check = dashboard_list._exactly([3, 2, 1])

    assert check([3, 2, 1]) is None
    assert check([3, 1]) is not None
