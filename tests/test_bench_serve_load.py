"""bench.serve_load, run tiny: every target in every shape was served, every answer stored
once, every Telegram reply sent once and in order, and its numbers hold together.

No speed is asserted (this machine's speed is what the benchmark reports, not what a test may
judge): only that each run did its work, that the checks passed, and that what the report
quotes agrees with itself. PostgreSQL is measured too when DIBOT_DATABASE_URL names it.
"""

from __future__ import annotations

import pytest

from bench import serve_load, telegram_load
from bench.http_load import Timing
from bench.report import Section
from bench.turns import measured_postgresql_url

LONG_ENOUGH = 120.0
"""Seconds allowed per run: far more than the tiny counts need, so the counts end them."""
REQUESTS = 220
"""Enough that every slot, paced ones too, gets past the questions before the first answer."""
TELEGRAM_REQUESTS = 100

# The fixture starts five servers and two workers a database: minutes on a shared machine.
pytestmark = pytest.mark.timeout(1500)


@pytest.fixture(scope="module")
def section() -> Section:
    return serve_load.section(
        postgresql_url=measured_postgresql_url(None),
        seconds=LONG_ENOUGH,
        requests=REQUESTS,
        telegram_requests=TELEGRAM_REQUESTS,
        progress=lambda _: None,
    )


def _databases() -> list[str]:
    return ["SQLite"] + (["PostgreSQL"] if measured_postgresql_url(None) else [])


def test_every_target_is_served_in_both_shapes_on_every_database(section: Section) -> None:
    runs = section.raw["runs"]
    measured = {(run["target"], run["shape"], run["database"]) for run in runs}

    assert measured == {
        (target, shape.key, database)
        for target in serve_load.TARGETS
        for shape in serve_load.SHAPES
        for database in _databases()
    }
    assert len(runs) == len(measured)
    assert all(run["failed"] == 0 and run["failures"] == {} for run in runs)


def test_every_answer_is_stored_once_and_every_message_once_in_the_inbox(
    section: Section,
) -> None:
    checked = [run for run in section.raw["runs"] if run["target"] != serve_load.CEILING]

    for run in checked:
        check = run["check"]
        assert check["missing"] == check["extra"] == 0, run
        assert check["answers_stored"] == check["answers_sent"], run
        # Every slot's warm-up request is a message too, stored like the timed ones.
        assert check["messages_stored"] == check["messages_sent"]
        assert check["messages_sent"] == run["timed"] + run["in_flight"], run
    for target in (serve_load.SMS, serve_load.TELEGRAM):
        assert sum(run["check"]["answers_stored"] for run in checked if run["target"] == target)


def test_every_telegram_reply_is_sent_once_in_order_by_the_worker(section: Section) -> None:
    telegram = [run for run in section.raw["runs"] if run["target"] == serve_load.TELEGRAM]

    for run in telegram:
        delivery = run["delivery"]
        assert delivery["sent"] == delivery["queued"] > run["timed"], run
        assert delivery["missing"] == delivery["extra"] == delivery["out_of_order"] == 0
        assert run["worker_cpu_s"] > 0


def test_the_numbers_hold_together(section: Section) -> None:
    for run in section.raw["runs"]:
        offered = REQUESTS if run["target"] != serve_load.TELEGRAM else TELEGRAM_REQUESTS
        assert 0 < run["timed"] <= offered, run
        assert 0 < run["p50_ms"] <= run["p99_ms"] <= run["max_ms"], run
        assert run["turns_per_s"] == pytest.approx(run["timed"] / run["elapsed_s"])
        assert 0 < run["machine_busy"] <= 1
        assert run["server_cpu_s"] > 0
    assert section.ok


def test_the_report_has_a_table_per_database_and_the_four_goals(section: Section) -> None:
    for database in _databases():
        assert f"| {database} | shape |" in section.markdown
    for target in serve_load.TARGETS:
        assert f"| {target} | {serve_load.CLOSED.name} |" in section.markdown
        assert f"| {target} | {serve_load.PACED.name} |" in section.markdown
    assert "FAILED" not in section.markdown

    assert len(section.goals) == 4
    assert all(goal.measured and goal.target for goal in section.goals)
    assert all(goal.met or goal.why for goal in section.goals)
    postgresql_goal = section.goals[1]
    if measured_postgresql_url(None) is None:
        assert (postgresql_goal.measured, postgresql_goal.met) == ("not measured", False)


def test_a_reply_sent_twice_lost_or_reordered_fails_the_check() -> None:
    queued = {1: ["Q1", "Q2"], 2: ["Q1", "Q2"], 3: ["Q1"]}
    received = {1: ["Q1", "Q1", "Q2"], 2: ["Q2", "Q1"], 3: []}

    delivery = telegram_load.compare_replies(queued, received, drain_seconds=0.0)

    assert (delivery.queued, delivery.sent) == (5, 5)
    assert (delivery.missing, delivery.extra, delivery.out_of_order) == (1, 1, 2)
    assert not delivery.ok
    assert telegram_load.compare_replies(queued, queued, drain_seconds=0.0).ok


def _run(
    target: str, shape: serve_load.Shape, latencies: list[float], busy: float
) -> serve_load.Run:
    """A run of these latencies, back to back, with the server on one CPU throughout."""
    elapsed = sum(latencies)
    return serve_load.Run(target, shape, "SQLite", Timing(tuple(latencies), elapsed), busy, elapsed)


def test_a_missed_throughput_goal_says_whether_the_machine_was_cpu_bound() -> None:
    ceiling = _run(serve_load.CEILING, serve_load.CLOSED, [0.001] * 1000, busy=0.95)
    waiting = _run(serve_load.SMS, serve_load.CLOSED, [0.004] * 250, busy=0.55)
    computing = _run(serve_load.SMS, serve_load.CLOSED, [0.004] * 250, busy=0.97)
    enough = _run(serve_load.SMS, serve_load.CLOSED, [0.0025] * 400, busy=0.97)

    missed = serve_load.goal_throughput([ceiling, waiting])
    assert (missed.met, missed.measured) == (False, "0.25 (250 / 1,000 turns/s)")
    assert "55% busy" in missed.why
    assert "not CPU-bound" in missed.why
    assert "CPU-bound" in serve_load.goal_throughput([ceiling, computing]).why
    assert "not CPU-bound" not in serve_load.goal_throughput([ceiling, computing]).why
    assert serve_load.goal_throughput([ceiling, enough]).met


def test_one_turn_over_five_times_p99_is_a_spike() -> None:
    steady = [0.01] * 200
    spiked = _run(serve_load.SMS, serve_load.CLOSED, [*steady, 0.06], busy=0.5)
    paced = _run(serve_load.SMS, serve_load.PACED, steady, busy=0.2)

    goal = serve_load.goal_spikes([spiked, paced])

    assert not goal.met
    assert "1 of 201 turns over 5× p99" in goal.why
    assert serve_load.goal_spikes([paced]).met


def test_the_paced_goal_compares_p99_with_the_ceilings_in_the_same_pass() -> None:
    ceiling = _run(serve_load.CEILING, serve_load.PACED, [0.002] * 100, busy=0.2)
    within = _run(serve_load.SMS, serve_load.PACED, [0.006] * 100, busy=0.3)
    beyond = _run(serve_load.SMS, serve_load.PACED, [0.007] * 100, busy=0.3)

    assert serve_load.goal_paced([ceiling, within]).met
    missed = serve_load.goal_paced([ceiling, beyond])
    assert (missed.met, missed.measured) == (False, "SQLite 3.5× (7.0 / 2.0 ms)")


def test_the_command_refuses_unusable_arguments(capsys: pytest.CaptureFixture[str]) -> None:
    assert serve_load.main(["--seconds", "0"]) == 2
    assert serve_load.main(["--database-url", "sqlite:///x.db"]) == 2
    assert "must name PostgreSQL" in capsys.readouterr().err
