"""The benchmarks run, with tiny counts, and their checks mean something.

No timing is asserted: only that each stage did its work, that every answer it sent is stored
exactly once, and that the check notices an answer that was not.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import sqlalchemy as sa

from bench import impact, sms_cost, sms_send, turns
from flows.loader import load_flow
from flows.model import Flow
from storage.database import make_engine
from storage.models import Answer, table

LONG_ENOUGH = 120.0
"""Seconds allowed per stage: far more than the tiny counts need, so the count ends them."""


def test_the_in_process_stages_take_every_turn_and_store_every_answer_once(
    flow: Flow, database_url: str
) -> None:
    messages = turns.interleave(turns.plan(flow, 20, slots=2))
    engine = turns.engine_stage(flow, messages, LONG_ENOUGH)
    handler = turns.handler_stage(flow, database_url, messages, LONG_ENOUGH)

    assert len(engine.sent) == len(handler.sent) == 20
    assert engine.timing.count == handler.timing.count > 0
    assert 3 <= handler.statements_per_turn <= 12  # counted, and few
    check = turns.verify_stored(database_url, handler.sent)
    assert check.ok, check.describe()
    assert check.answers_sent == check.answers_stored > 0
    assert check.messages_sent == check.messages_stored == 20


def test_a_turn_sends_fewer_statements_on_sqlite_than_it_used_to(
    flow: Flow, database_url: str
) -> None:
    """Six statements a turn before the turn's SQL was prepared (BEGIN aside): the lock, the
    duplicate check, the answer, the state, the inbox, the timeline. On SQLite the duplicate
    check is now part of the lock; PostgreSQL still reads it after the lock, in its own."""
    messages = turns.interleave(turns.plan(flow, 40, slots=2))
    handler = turns.handler_stage(flow, database_url, messages, LONG_ENOUGH)
    expected = 6.2 if database_url.startswith("postgresql") else 5.2
    assert handler.statements_per_turn <= expected


def test_the_hot_path_section_reports_each_in_process_stage(
    monkeypatch: pytest.MonkeyPatch, database_url: str
) -> None:
    monkeypatch.setattr(turns, "SECTION_TURNS", 20)
    postgresql = database_url if database_url.startswith("postgresql") else None
    section = turns.section(postgresql_url=postgresql, seconds=LONG_ENOUGH)

    assert section.key == "hot_path"
    assert section.ok
    databases = {"SQLite", "PostgreSQL"} if postgresql else {"SQLite"}
    assert set(section.raw["handler"]) == databases
    for database in databases:
        assert section.raw["handler"][database]["statements_per_turn"] > 0
        assert f"`TurnHandler.handle`, {database}" in section.markdown
    assert "`bot.engine.step` alone" in section.markdown


def test_the_integrity_check_notices_an_answer_that_was_lost(flow: Flow, database_url: str) -> None:
    messages = turns.interleave(turns.plan(flow, 20, slots=2))
    handler = turns.handler_stage(flow, database_url, messages, LONG_ENOUGH)
    answers = table(Answer)
    engine = make_engine(database_url)
    with engine.begin() as conn:
        lost = conn.execute(sa.select(sa.func.min(answers.c.id))).scalar_one()
        conn.execute(sa.delete(answers).where(answers.c.id == lost))
    engine.dispose()

    check = turns.verify_stored(database_url, handler.sent)
    assert not check.ok
    assert (check.missing, check.extra) == (1, 0)


def test_the_http_stage_serves_signed_webhooks_and_stores_every_answer_once(
    database_url: str, tmp_path: Path
) -> None:
    slots = turns.plan(load_flow(), 50, slots=4)  # the flow `dibot serve` loads by default
    result = turns.http_stage(database_url, slots, LONG_ENOUGH, tmp_path)

    assert result.baseline.failures == result.webhooks.failures == ()
    assert result.webhooks.count == result.baseline.count == 50 - 4 * turns.HTTP_WARMUP
    assert result.check.ok, result.check.describe()
    assert result.check.answers_sent == result.check.answers_stored > 0
    assert len(result.workers_after_webhooks) == 2
    assert all(worker.peak_kib > 0 for worker in result.workers_after_webhooks)


def test_the_command_prints_the_table_and_passes_its_checks(
    capsys: pytest.CaptureFixture[str],
) -> None:
    status = turns.main(["--turns", "20", "--requests", "50", "--in-flight", "4"])

    table_printed = capsys.readouterr().out
    assert status == 0, table_printed
    assert "engine.step (baseline)" in table_printed
    assert "POST /webhooks/twilio/sms" in table_printed
    assert "FAILED" not in table_printed
    assert "in the inbox: ok" in table_printed


def test_the_sms_cost_counts_whole_assessments_in_every_language() -> None:
    """Each scenario reaches the end having answered what it says: a run cut short by a
    prompt it did not expect (say, the skills choice) would report a cheap, wrong cost."""
    flow = load_flow()
    for language in flow.languages:
        answered = {
            (cost.way, cost.name): cost.answers for cost in sms_cost.scenarios(flow, language)
        }
        one, several = "one a text", "several a text"
        assert answered == {
            (one, "quick check"): 22,
            (one, "full, all skills confident"): 56,  # no interest where skill is confident
            (one, "full, skills mixed"): 85,
            (one, "full, all skills low"): 104,
            (several, "full, all skills confident"): 56,
            (several, "full, skills mixed"): 85,
            (several, "full, all skills low"): 104,
            (several, "full, all skills low, two answers changed"): 106,  # two answered again
        }


def test_the_sms_send_bench_sends_every_text_once_and_prints_its_rates(
    capsys: pytest.CaptureFixture[str],
) -> None:
    status = sms_send.main(["--messages", "30", "--seconds", str(LONG_ENOUGH)])

    table_printed = capsys.readouterr().out
    assert status == 0, table_printed
    assert "TwilioSms.send alone (baseline)" in table_printed
    assert "SmsSender.send_due on SQLite" in table_printed
    assert "30 of 30 rows sent (30 tried), 30 texts taken by Twilio, 0 twice" in table_printed
    assert "FAILED" not in table_printed


def test_the_sms_send_check_notices_a_text_taken_twice() -> None:
    check = sms_send.SendCheck(rows=3, tried=3, rows_sent=3, taken=3, taken_twice=1, unmatched=0)
    assert not check.ok
    assert check.describe().endswith("FAILED")


IMPACT_STEPS = (
    "bare start (baseline)",
    "report (text)",
    "report (json)",
    "export csv",
    "export csv-wide",
    "export xlsx",
    "export floip",
    "export outcomes",
    "export benchmark",
)


def test_the_impact_bench_runs_every_report_and_export_and_prints_their_rows(
    capsys: pytest.CaptureFixture[str],
) -> None:
    status = impact.main(["--answers", "1000", "--database", "sqlite"])

    printed = capsys.readouterr().out
    assert status == 0, printed
    held = re.search(r"(\d+) people, [\d,]+ assessments, ([\d,]+) answer rows", printed)
    assert held is not None, printed
    people, answers = held.group(1), held.group(2)
    assert int(answers.replace(",", "")) >= 1000
    # step (24 characters), people, rows, seconds, CPU s, -bare s, µs/ans, peak MiB, +bare, out
    table = {line[:24].strip(): line[24:].split() for line in printed.splitlines()}
    for step in IMPACT_STEPS:
        assert step in table, printed
        assert table[step][0] == people
        peak_mib = float(table[step][6])
        assert 10 < peak_mib < 2000, table[step]  # a whole Python process, and no runaway
        assert float(table[step][3]) > 0  # CPU seconds of that child alone
    for step in IMPACT_STEPS[1:]:
        assert float(table[step][8]) >= 0  # MiB written
    assert table["export csv"][1] == answers  # every answer row the database holds
    assert table["export xlsx"][1] == answers
    assert table["report (text)"][1] == people
    assert "memory flat (CSV export)" in printed
    assert "FAILED" not in printed
    assert printed.rstrip().endswith("ok")


def test_the_impact_bench_sizes_its_demo_by_answer_rows(database_url: str) -> None:
    """The fewest residents whose answers reach the count: one fewer falls short."""
    flow = load_flow()
    needed = impact.respondents_for(flow, 1000)
    filled = impact.fill(database_url, flow, needed - 1)
    assert filled.respondents == filled.people == needed - 1
    assert filled.answers < 1000
