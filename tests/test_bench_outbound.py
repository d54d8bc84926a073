"""bench.outbound runs, with tiny counts, and its checks and pacing figures mean something.

No timing is asserted: only that every queued text reached a fake once and its row holds that
text's SID, that a text taken twice or a row with another SID is noticed, and that the pacing
figures (rate achieved, worst sliding second) are what the times say.
"""

from __future__ import annotations

import os

import pytest

from bench import outbound
from bench.outbound import Taken

POSTGRESQL_URL = os.environ.get("DIBOT_DATABASE_URL") or None


def texts_at(times: list[float], segments: int = 1, fake: int = 0) -> list[Taken]:
    return [
        Taken(fake, at, f"SM{fake}{n}", "+447700900001", f"text {fake} {n}", segments)
        for n, at in enumerate(times)
    ]


def test_a_steady_twenty_a_second_is_kept_and_two_senders_at_twenty_are_not() -> None:
    one = texts_at([n / 20 for n in range(200)])
    other = texts_at([n / 20 + 0.01 for n in range(200)], fake=1)

    alone = outbound.pace_of(one, 20)
    together = outbound.pace_of(one + other, 20)

    assert alone.achieved == pytest.approx(20.0)
    assert (alone.worst_window, alone.windows_over) == (20, 0)
    assert alone.kept()
    assert together.achieved == pytest.approx(40.0, rel=0.01)
    assert together.worst_window >= 40
    assert not together.kept()


def test_a_burst_in_one_second_is_the_worst_window_even_when_the_average_is_kept() -> None:
    steady = [n / 20 for n in range(100)]
    burst = texts_at(
        [*steady, *(5.0 + n / 1000 for n in range(30)), *(n / 20 + 7 for n in range(60))]
    )

    pace = outbound.pace_of(burst, 20)

    assert pace.worst_window >= 30
    assert not pace.kept()


@pytest.mark.timeout(600)
def test_the_stage_sends_every_text_once_with_its_sid_and_reports_its_goals() -> None:
    section = outbound.section(
        postgresql_url=POSTGRESQL_URL, messages=60, rate=20, rate_seconds=2, limit_seconds=300
    )

    assert section.key == "outbound"
    assert section.ok, section.markdown
    lifted, paced = section.raw["lifted"], section.raw["paced"]
    assert lifted["check"]["rows_sent"] == lifted["check"]["taken"] == 60
    assert lifted["check"]["taken_twice"] == lifted["check"]["wrong_sid"] == 0
    assert paced["check"]["ok"]
    assert sum(worker["tried"] for worker in lifted["workers"]) == 60
    assert len(lifted["workers"]) == (2 if POSTGRESQL_URL else 1)
    [speed, duplicates, rate] = section.goals
    assert duplicates.met
    assert "segments/s" in speed.name
    assert "20 segments/s" in rate.target


def test_the_check_notices_a_text_taken_twice_and_a_row_without_its_sid(
    database_url: str,
) -> None:
    queued = outbound.queue(database_url, 3)
    assert queued.messages == 3
    # Nothing was sent: every row is still pending.
    nothing = outbound.check_sent(database_url, [], 3)
    assert not nothing.ok
    assert nothing.rows_sent == 0

    taken = texts_at([0.0, 0.1])
    twice = [*taken, taken[0]]
    check = outbound.check_sent(database_url, twice, 3)
    assert check.taken_twice == 1
    assert not check.ok
