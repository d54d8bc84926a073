"""The dashboard's residents list timed at scale, through Flask's test client.

    .venv/bin/python -m bench.dashboard_list [--respondents N] [--requests N]
                                             [--database-url URL]

A fresh SQLite database (and, given a PostgreSQL URL, a scratch schema of that database) is
filled with N residents by bulk inserts, shaped like a council's: two teams and some residents
who texted in with no team, cohorts of each team, one conversation each, assessments in
progress, completed and abandoned, invitations, opt-outs and unreachable numbers, replies
spread over the last months. Then `/respondents` is asked as an outreach worker (who sees
one team) and as an admin (who sees all): the first page, a deep page reached by its keyset
edge, each filter, and searches; each request `--requests` times after one untimed warm-up.
The table gives the median and the slowest time in ms, and the rows each page showed.

The rules it keeps: timings are reported, never judged (machines differ); every page must
answer 200 and show what the data says it must (a search for a resident's number shows that
resident and only them), else the exit status is 1; phone numbers are 07700 900xxx only (the
rest are Telegram chat ids); traffic stays in process; PostgreSQL is used only inside the scratch
schema `dibot_bench_list`, dropped before and after. Exit status 2 for unusable arguments.
"""

from __future__ import annotations

import argparse
import random
import re
import statistics
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from time import perf_counter
from typing import Any
from urllib.parse import urlencode

import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.exc import OperationalError

from bench.turns import fresh_database, measured_postgresql_url
from bot.state import State
from dashboard.accounts import StaffMember, add_staff
from dibot.config import Config, DatabaseConfig, ServerConfig, WebConfig
from dibot.web import create_app
from flows.loader import load_flow
from flows.model import Flow, Question
from storage.database import make_engine
from storage.models import (
    Assessment,
    Cohort,
    CohortMember,
    Conversation,
    Enrolment,
    OutboxEntry,
    Respondent,
    Team,
    table,
)
from storage.privacy import keys_of, open_privacy

DATABASE_URL_VARIABLE = "DIBOT_DATABASE_URL"
SCRATCH_SCHEMA = "dibot_bench_list"
NOW = datetime(2026, 12, 1, 11, 0, tzinfo=UTC)
SECRET = "bench-secret-key-not-a-secret-" + "b" * 24
PASSWORD = "bench password, not a secret"
ADMIN = "admin@north.bench.example"
WORKER = "worker@north.bench.example"
TEAMS = ("North", "South")
COHORTS_PER_TEAM = 8
TEAMLESS_COHORTS = 4
PILOT_SIZE = 40
PHONES = 1000
"""Residents with a phone number (07700 900000 to 07700 900999); the rest use Telegram."""
TELEGRAM_BASE = 5_000_000_000
MIN_RESPONDENTS = 100
BATCH = 5000
SEED = 20261201
LIST_PATH = "/respondents"
ROW_LINK = re.compile(r'href="/respondents/(\d+)"')


@dataclass(frozen=True)
class Filled:
    """What was put in the database: enough to pick pages and know what they must show."""

    respondents: int
    north_ids: tuple[int, ...]
    """Ids of the North team's residents, oldest first."""
    all_ids: tuple[int, ...]
    north_cohort: tuple[int, str]
    pilot: tuple[int, tuple[int, ...]]
    """A small North cohort of its oldest residents: (id, members), the hardest for a filter
    that walks the newest first."""
    north_phone: str
    """A North resident's number, as a worker would type it."""
    south_phone: str


# --- filling the database -------------------------------------------------------------------


def fill(engine: sa.Engine, flow: Flow, count: int, seed: int = SEED) -> Filled:
    """`count` residents by bulk inserts (a few thousand rows a statement)."""
    rng = random.Random(seed)
    team_ids = _teams(engine)
    with engine.begin() as conn:
        cohort_ids = _cohorts(conn, team_ids)
    privacy = open_privacy(engine)
    questions = [s.key for s in flow.modes["quick"].steps if isinstance(s, Question)]
    done_state = State(stage="done", mode="quick", language_chosen=True).to_json()
    invited_state = State(stage="consent").to_json()
    north_ids: list[int] = []
    all_ids: list[int] = []
    phones: dict[str | None, str] = {}
    tables = [
        table(m)
        for m in (Respondent, Assessment, Conversation, Enrolment, OutboxEntry, CohortMember)
    ]
    for start in range(0, count, BATCH):
        rows: dict[str, list[dict[str, Any]]] = {t.name: [] for t in tables}
        for index in range(start, min(start + BATCH, count)):
            rid = index + 1
            team = rng.choices([*TEAMS, None], weights=(45, 45, 10))[0]
            created = NOW - timedelta(days=365) + timedelta(days=364) * (index / count)
            if index < PHONES:
                number = f"07700 900{index:03d}"
                urn = f"tel:+447700900{index:03d}"
                phones.setdefault(team, number)
            else:
                urn = f"telegram:{TELEGRAM_BASE + index}"
            all_ids.append(rid)
            if team == "North":
                north_ids.append(rid)
            rows["respondents"].append(
                {
                    "id": rid,
                    "urn_cipher": privacy.encrypt(urn),
                    "urn_digest": privacy.digest(urn),
                    "language": "en",
                    "consented_at": None,
                    "opted_out": rng.random() < 0.03,
                    "opted_out_at": None,
                    "unreachable": rng.random() < 0.02,
                    "created_at": created,
                    "team_id": team_ids.get(team) if team else None,
                }
            )
            _story(rows, rng, rid, created, questions, done_state, invited_state, flow)
            pool = cohort_ids[team]
            for cohort_id in rng.sample(pool, rng.choice((0, 1, 1, 2))):
                rows["cohort_members"].append(
                    {"cohort_id": cohort_id, "respondent_id": rid, "added_at": created}
                )
        with engine.begin() as conn:
            for t in tables:
                if rows[t.name]:
                    conn.execute(sa.insert(t), rows[t.name])
    with engine.begin() as conn:
        _advance_sequences(conn, tables)
        north_cohort = conn.execute(
            sa.select(table(Cohort).c.id, table(Cohort).c.name)
            .where(table(Cohort).c.team_id == team_ids["North"])
            .order_by(table(Cohort).c.id)
        ).first()
        pilot_members = tuple(north_ids[:PILOT_SIZE])
        pilot_id = conn.execute(
            sa.insert(table(Cohort))
            .values(name="North pilot", created_at=NOW, team_id=team_ids["North"])
            .returning(table(Cohort).c.id)
        ).scalar_one()
        conn.execute(
            sa.insert(table(CohortMember)),
            [
                {"cohort_id": pilot_id, "respondent_id": rid, "added_at": NOW}
                for rid in pilot_members
            ],
        )
    assert north_cohort is not None
    return Filled(
        pilot=(pilot_id, pilot_members),
        respondents=count,
        north_ids=tuple(north_ids),
        all_ids=tuple(all_ids),
        north_cohort=(north_cohort.id, north_cohort.name),
        north_phone=phones.get("North", ""),
        south_phone=phones.get("South", ""),
    )


def _story(
    rows: dict[str, list[dict[str, Any]]],
    rng: random.Random,
    rid: int,
    created: datetime,
    questions: Sequence[str],
    done_state: str,
    invited_state: str,
    flow: Flow,
) -> None:
    """One resident's conversation, assessments, enrolment and invitation."""
    enrolled = rng.random() < 0.85
    if enrolled:
        rows["outbox"].append(
            {
                "id": rid,
                "channel": "sms",
                "respondent_id": rid,
                "text": "You are invited to a short digital skills check.",
                "buttons": [],
                "status": "sent",
                "attempts": 1,
                "next_attempt_at": created,
                "created_at": created,
                "updated_at": created,
                "kind": "invitation",
            }
        )
        rows["enrolments"].append(
            {
                "respondent_id": rid,
                "cohort_id": None,
                "enrolled_by": WORKER,
                "lawful_basis": "public_task",
                "enrolled_at": created,
                "invitation_id": rid,
            }
        )
    story = rng.choices(("silent", "talking", "asking", "done", "abandoned"), (20, 8, 22, 45, 5))[0]
    if story == "silent" and not enrolled:
        story = "talking"
    last_inbound = None
    if story != "silent":
        span = max((NOW - created).total_seconds(), 60.0)
        last_inbound = NOW - timedelta(seconds=rng.random() * min(span, 200 * 86400))
    state, assessment_id = invited_state, None
    if story in ("asking", "done", "abandoned"):
        assessment_id = rid
        started = created + (last_inbound - created) / 2 if last_inbound else created
        rows["assessments"].append(
            {
                "id": rid,
                "respondent_id": rid,
                "mode": "quick",
                "flow_id": flow.id,
                "flow_version": flow.version,
                "started_at": started,
                "completed_at": last_inbound if story == "done" else None,
                "abandoned_at": last_inbound if story == "abandoned" else None,
                "kind": "baseline",
            }
        )
        if story == "done":
            state = done_state
        else:
            at = rng.randrange(len(questions))
            answered = dict.fromkeys(questions[:at], 1)
            state = State(
                stage="asking",
                mode="quick",
                language_chosen=True,
                question=questions[at],
                answers=answered,
                history=tuple(answered),
            ).to_json()
    rows["conversations"].append(
        {
            "respondent_id": rid,
            "assessment_id": assessment_id,
            "flow_id": flow.id,
            "flow_version": flow.version,
            "state": state,
            "created_at": created,
            "updated_at": last_inbound or created,
            "last_inbound_at": last_inbound,
            "reminders_sent": 0,
        }
    )


def _teams(engine: sa.Engine) -> dict[str | None, int]:
    teams = table(Team)
    with engine.connect() as conn:
        found = conn.execute(sa.select(teams.c.name, teams.c.id)).all()
    return dict(found)


def _cohorts(conn: sa.Connection, team_ids: dict[str | None, int]) -> dict[str | None, list[int]]:
    cohorts = table(Cohort)
    made: dict[str | None, list[int]] = {}
    plan = [(team, COHORTS_PER_TEAM) for team in TEAMS] + [(None, TEAMLESS_COHORTS)]
    for team, how_many in plan:
        for number in range(1, how_many + 1):
            name = f"{team or 'County'} library drive {number}"
            made.setdefault(team, []).append(
                conn.execute(
                    sa.insert(cohorts)
                    .values(
                        name=name,
                        initiative="Digital champions",
                        created_at=NOW - timedelta(days=400),
                        team_id=team_ids.get(team) if team else None,
                    )
                    .returning(cohorts.c.id)
                ).scalar_one()
            )
    return made


def _advance_sequences(conn: sa.Connection, tables: Sequence[sa.Table]) -> None:
    """PostgreSQL's id sequences past the ids given explicitly (SQLite needs nothing)."""
    if conn.dialect.name != "postgresql":
        return
    for t in tables:
        if "id" in t.c:
            conn.exec_driver_sql(
                f"SELECT setval(pg_get_serial_sequence('{t.name}', 'id'), "
                f"(SELECT coalesce(max(id), 1) FROM {t.name}))"
            )


# --- asking for pages -----------------------------------------------------------------------


@dataclass(frozen=True)
class Scenario:
    name: str
    query: dict[str, str]
    check: Callable[[list[int]], str | None]
    """What the page's resident ids must be: None if right, else what is wrong."""
    posted: bool = False
    """Sent as the search form sends a number: a POST (a number never goes in an address)."""


@dataclass(frozen=True)
class Measured:
    name: str
    member: str
    times: tuple[float, ...]
    rows: int
    problem: str | None

    @property
    def median_ms(self) -> float:
        return statistics.median(self.times) * 1000

    @property
    def max_ms(self) -> float:
        return max(self.times) * 1000


def _some(ids: list[int]) -> str | None:
    return None if ids else "no rows"


def _exactly(expected: Sequence[int]) -> Callable[[list[int]], str | None]:
    def check(ids: list[int]) -> str | None:
        return None if ids == list(expected) else f"{ids[:5]} not {list(expected)[:5]}"

    return check


def _within(allowed: Sequence[int]) -> Callable[[list[int]], str | None]:
    permitted = set(allowed)

    def check(ids: list[int]) -> str | None:
        outside = [rid for rid in ids if rid not in permitted]
        return f"shows residents it may not: {outside[:3]}" if outside else None

    return check


def scenarios(filled: Filled, visible: Sequence[int], worker: bool) -> list[Scenario]:
    """The pages asked for, for a member who sees `visible` (ids, oldest first)."""
    newest = sorted(visible, reverse=True)
    deep = newest[int(len(newest) * 0.9)] if newest else 1
    phone = filled.north_phone if worker else filled.south_phone
    other = filled.south_phone if worker else filled.north_phone
    number_owner = _owner(filled, phone)
    other_owner = [] if worker else _owner(filled, other)
    in_scope = _within(visible)

    def both(*checks: Callable[[list[int]], str | None]) -> Callable[[list[int]], str | None]:
        def check(ids: list[int]) -> str | None:
            return next((p for c in checks if (p := c(ids)) is not None), None)

        return check

    return [
        Scenario("first page", {}, both(_exactly(newest[:50]), in_scope)),
        Scenario("deep page (90% down, keyset)", {"before": str(deep)}, both(_some, in_scope)),
        Scenario("status: in progress", {"status": "in_progress"}, both(_some, in_scope)),
        Scenario("status: completed", {"status": "completed"}, both(_some, in_scope)),
        Scenario("status: opted out (rare)", {"status": "opted_out"}, both(_some, in_scope)),
        Scenario("cohort", {"cohort": str(filled.north_cohort[0])}, both(_some, in_scope)),
        Scenario(
            "cohort: small, oldest residents",
            {"cohort": str(filled.pilot[0])},
            _exactly(sorted(filled.pilot[1], reverse=True)),
        ),
        Scenario("last heard: last 7 days", {"contact": "7d"}, both(_some, in_scope)),
        Scenario("last heard: over 30 days", {"contact": "over30d"}, both(_some, in_scope)),
        Scenario("last heard: never", {"contact": "never"}, both(_some, in_scope)),
        Scenario(
            "status + cohort + last heard",
            {"status": "completed", "cohort": str(filled.north_cohort[0]), "contact": "30d"},
            in_scope,
        ),
        Scenario(
            "deep page of a rare status",
            {"status": "opted_out", "before": str(deep)},
            in_scope,
        ),
        Scenario(
            "matching no one (reads all)",
            {"status": "not_started", "contact": "never"},
            _exactly([]),
        ),
        Scenario("search: a number", {"q": phone}, _exactly(number_owner), posted=True),
        Scenario("search: a cohort name", {"q": "library drive 1"}, both(_some, in_scope)),
        Scenario("search: another team's number", {"q": other}, _exactly(other_owner), posted=True),
    ]


def _owner(filled: Filled, phone: str) -> list[int]:
    if not phone:
        return []
    return [int(phone[-3:]) + 1]  # the resident filled with that number has id index + 1


def _form_token(client: FlaskClient) -> str:
    token = re.search(r'name="csrf_token"[^>]* value="([^"]+)"', client.get("/password").text)
    if token is None:
        raise RuntimeError("the account page has no CSRF token")
    return token[1]


def sign_in(app: Flask, email: str) -> FlaskClient:
    client = app.test_client()
    client.environ_base["wsgi.url_scheme"] = "https"
    login = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token"[^>]* value="([^"]+)"', login)
    if token is None:
        raise RuntimeError("the login page has no CSRF token")
    answer = client.post(
        "/login", data={"csrf_token": token[1], "email": email, "password": PASSWORD}
    )
    if answer.status_code != 302:
        raise RuntimeError(f"could not sign in as {email}: {answer.status_code}")
    return client


def measure(client: FlaskClient, member: str, scenario: Scenario, requests: int) -> Measured:
    path = LIST_PATH + ("?" + urlencode(scenario.query) if scenario.query else "")
    form = {"csrf_token": _form_token(client), **scenario.query} if scenario.posted else {}
    times: list[float] = []
    problem = None
    ids: list[int] = []
    for attempt in range(requests + 1):
        began = perf_counter()
        response = client.post(LIST_PATH, data=form) if scenario.posted else client.get(path)
        took = perf_counter() - began
        if attempt:
            times.append(took)
        if response.status_code != 200:
            problem = f"HTTP {response.status_code}"
            break
        ids = [int(found) for found in ROW_LINK.findall(response.get_data(as_text=True))]
    if problem is None:
        problem = scenario.check(ids)
    return Measured(scenario.name, member, tuple(times) or (0.0,), len(ids), problem)


def run_pages(database_url: str, flow: Flow, filled: Filled, requests: int) -> list[Measured]:
    config = Config(
        server=ServerConfig(host="127.0.0.1"),
        database=DatabaseConfig(url=database_url),
        web=WebConfig(secret_key=SECRET),
    )
    app = create_app(config, flow=flow, now=lambda: NOW)
    results: list[Measured] = []
    try:
        for email, worker in ((WORKER, True), (ADMIN, False)):
            client = sign_in(app, email)
            visible = filled.north_ids if worker else filled.all_ids
            member = "worker" if worker else "admin"
            for scenario in scenarios(filled, visible, worker):
                results.append(measure(client, member, scenario, requests))
    finally:
        app.extensions["dibot"].engine.dispose()
    return results


# --- databases ------------------------------------------------------------------------------


def _analyse(engine: sa.Engine) -> None:
    """Fresh statistics, as a database that has lived a while has (autovacuum, ANALYZE)."""
    with engine.begin() as conn:
        conn.exec_driver_sql("ANALYZE")


# --- the report -----------------------------------------------------------------------------


def render(respondents: int, requests: int, results: dict[str, list[Measured]]) -> str:
    lines = [
        f"GET {LIST_PATH} with {respondents} residents: median and slowest of {requests} "
        f"requests (after one warm-up), in ms; rows = residents the page showed",
        f"{'database':10} {'member':6} {'page':32} {'median':>8} {'max':>8} {'rows':>5}  check",
    ]
    for database, measured in results.items():
        for m in measured:
            verdict = "ok" if m.problem is None else f"FAILED: {m.problem}"
            lines.append(
                f"{database:10} {m.member:6} {m.name:32} {m.median_ms:8.1f} {m.max_ms:8.1f}"
                f" {m.rows:5}  {verdict}"
            )
    return "\n".join(lines)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench.dashboard_list", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--respondents", type=int, default=100_000, help="residents to fill")
    parser.add_argument("--requests", type=int, default=10, help="timed requests per page")
    parser.add_argument(
        "--database-url",
        help=f"a PostgreSQL database to measure too, inside schema {SCRATCH_SCHEMA} "
        f"(default: ${DATABASE_URL_VARIABLE} when it names PostgreSQL)",
    )
    return parser


def _progress(text: str) -> None:
    print(f"bench.dashboard_list: {text}", file=sys.stderr, flush=True)


def measure_database(
    url: str | None, flow: Flow, arguments: argparse.Namespace, workdir: Path, name: str
) -> list[Measured]:
    with fresh_database(url, workdir, "list", schema=SCRATCH_SCHEMA) as ready:
        engine = make_engine(ready)
        try:
            _staff(engine)
            began = perf_counter()
            filled = fill(engine, flow, arguments.respondents)
            _analyse(engine)
            _progress(f"{name}: {arguments.respondents} residents in {perf_counter() - began:.0f}s")
            keys_of(engine)  # the keys are read once, before anything is timed
        finally:
            engine.dispose()
        return run_pages(ready, flow, filled, arguments.requests)


def _staff(engine: sa.Engine) -> tuple[StaffMember, ...]:
    return (
        add_staff(engine, email=ADMIN, team="North", role="admin", password=PASSWORD, now=NOW),
        add_staff(engine, email=WORKER, team="North", role="worker", password=PASSWORD, now=NOW),
        add_staff(
            engine,
            email="worker@south.bench.example",
            team="South",
            role="worker",
            password=PASSWORD,
            now=NOW,
        ),
    )


def main(argv: Sequence[str] | None = None) -> int:
    arguments = _parser().parse_args(argv)
    try:
        if arguments.respondents < MIN_RESPONDENTS or arguments.requests < 1:
            raise ValueError(
                f"--respondents must be at least {MIN_RESPONDENTS}, --requests at least 1"
            )
        postgresql_url = measured_postgresql_url(arguments.database_url)
    except ValueError as error:
        print(f"bench.dashboard_list: {error}", file=sys.stderr)
        return 2
    flow = load_flow()
    databases: dict[str, str | None] = {"SQLite": None}
    if postgresql_url is not None:
        databases["PostgreSQL"] = postgresql_url
    results: dict[str, list[Measured]] = {}
    with tempfile.TemporaryDirectory(prefix="dibot-bench-") as workdir:
        for name, url in databases.items():
            try:
                results[name] = measure_database(url, flow, arguments, Path(workdir), name)
            except OperationalError as error:
                reason = str(error.orig).strip().splitlines()[0] if error.orig else str(error)
                print(f"bench.dashboard_list: cannot use the database: {reason}", file=sys.stderr)
                return 2
    print(render(arguments.respondents, arguments.requests, results))
    failed = any(m.problem for measured in results.values() for m in measured)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
