"""Sector benchmark files: moments that pool exactly (worked out by hand), two councils' files
pooled to the figures of all their people's gains together, small groups and small counts
withheld in the file, nothing in it that names a person or a cohort, a tampered file refused
naming its field, and a council set beside the pooled figures in words that go the way the
numbers go."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from datetime import date
from pathlib import Path

import pytest

from flows.model import Flow
from impact.benchmark import (
    LESS,
    MORE,
    UNCLEAR,
    Benchmark,
    BenchmarkError,
    benchmark_of,
    compare_with_pooled,
    pool,
    read_benchmark,
    welch_interval,
    write_benchmark,
)
from impact.records import Person
from impact.report import CohortReport, ReportTallies, report_on
from scoring.impact import GainTally, Moments, estimate
from scoring.impact import pool as pool_moments
from tests.impact_people import EVERY_BASIC, NO_BLOCKERS, T0, T1, assessment

DAY = date(2027, 6, 2)
COHORT = "Pendle spring drive"
OPTION_FOR_SCORE = {score: score + 1 for score in range(5)}


def person(
    number: int,
    before: int,
    after: int | None,
    initiatives: Sequence[str] = (),
    basics: Mapping[str, int] = EVERY_BASIC,
) -> Person:
    """A quick check answering Getting started's skill at score `before` (interest 4), and a
    check-in at score `after`: their gain (overall and for GS) is `after - before`."""
    first = {**basics, **NO_BLOCKERS, "GS.skill": OPTION_FOR_SCORE[before], "GS.interest": 5}
    taken = [assessment(2 * number, "baseline", first)]
    if after is not None:
        later = {**first, "GS.skill": OPTION_FOR_SCORE[after]}
        taken.append(assessment(2 * number + 1, "checkin", later, 2 * number))
    return Person(
        respondent_id=number,
        label=f"RPSEUDONYM{number:04d}",
        language="en",
        created_at=T0,
        enrolled_at=T0,
        consented=True,
        opted_out=False,
        unreachable=False,
        cohorts=(COHORT,),
        initiatives=tuple(initiatives),
        assessments=tuple(taken),
    )


def gained(gains: Sequence[int], initiative: str = "Device loans", start: int = 0) -> list[Person]:
    """People from score 0 who gained these many points, in one initiative."""
    return [person(start + n, 0, gain, (initiative,)) for n, gain in enumerate(gains)]


def council(
    flow: Flow, people: Sequence[Person], min_group: int
) -> tuple[CohortReport, ReportTallies]:
    tallies = ReportTallies(flow)
    report = report_on(
        flow,
        people,
        title=COHORT,
        description=f"Cohort {COHORT}, initiative Device loans",
        now=T1,
        min_group=min_group,
        tallies=tallies,
    )
    return report, tallies


def benchmark_file(
    tmp_path: Path,
    flow: Flow,
    people: Sequence[Person],
    *,
    min_group: int,
    name: str = "council.json",
    label: str | None = None,
) -> Path:
    _, tallies = council(flow, people, min_group)
    path = tmp_path / name
    with path.open("w", encoding="utf-8") as out:
        write_benchmark(benchmark_of(tallies, min_group=min_group, generated=DAY, label=label), out)
    return path


# --- moments --------------------------------------------------------------------------------


def test_moments_of_two_groups_pool_to_the_moments_of_all_their_gains() -> None:
    tally = GainTally()
    for gain in (1, 2, 3):
        tally.add("first", gain)
    for gain in (2, 4):
        tally.add("second", gain)
    # [1, 2, 3]: mean 2, squared deviations 1 + 0 + 1 = 2. [2, 4]: mean 3, 1 + 1 = 2.
    assert tally.moments("first") == Moments(n=3, mean=2.0, m2=2.0, improved=3, worse=0)
    assert tally.moments("second") == Moments(n=2, mean=3.0, m2=2.0, improved=2, worse=0)
    # Together [1, 2, 3, 2, 4]: mean 12 / 5 = 2.4; deviations -1.4, -0.4, 0.6, -0.4, 1.6:
    # squares 1.96 + 0.16 + 0.36 + 0.16 + 2.56 = 5.2.
    both = pool_moments(tally.moments("first"), tally.moments("second"))
    assert both.n == 5
    assert both.mean == pytest.approx(2.4)
    assert both.m2 == pytest.approx(5.2)
    assert (both.improved, both.worse) == (5, 0)
    assert tally.moments("never") == Moments(0, 0.0, 0.0, 0, 0)
    assert pool_moments() == Moments(0, 0.0, 0.0, 0, 0)


def test_an_estimate_from_moments_is_the_estimate_from_the_gains() -> None:
    gains = [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, -1, -1]
    tally = GainTally()
    for gain in gains:
        tally.add("group", gain)
    assert tally.moments("group").estimate(10) == estimate(gains, 10)
    assert tally.moments("group").estimate(13).suppressed


def test_moments_that_no_gains_could_have_are_refused() -> None:
    with pytest.raises(ValueError, match="not the moments of any gains"):
        pool_moments(Moments(n=2, mean=1.0, m2=0.0, improved=2, worse=1))
    with pytest.raises(ValueError, match="not the moments of any gains"):
        pool_moments(Moments(n=2, mean=1.0, m2=-1.0, improved=0, worse=0))


# --- the file -------------------------------------------------------------------------------


def test_two_councils_files_pool_to_the_figures_of_all_their_gains(
    tmp_path: Path, flow: Flow
) -> None:
    first = benchmark_file(tmp_path, flow, gained([1, 2, 3]), min_group=2, name="first.json")
    second = benchmark_file(tmp_path, flow, gained([2, 4]), min_group=2, name="second.json")
    pooled = pool([read_benchmark(first, flow), read_benchmark(second, flow)])
    assert pooled.files == 2
    for group in ("all", "Device loans"):
        found = pooled.group(group)
        assert found is not None
        assert found.people.count == 5
        assert found.pairs.count == 5
        assert not found.people.partial
        for moments in (found.overall["skill"], found.headings["GS"]):
            assert moments.moments is not None
            assert moments.moments.n == 5
            assert moments.moments.mean == pytest.approx(2.4)
            assert moments.moments.m2 == pytest.approx(5.2)
            assert (moments.covers, moments.files) == (2, 2)
        # Everyone started at skill level 0 for Getting started: 3 + 2 people.
        assert found.levels["GS"]["skill"][0].count == 5
    everyone = pooled.group("all")
    assert everyone is not None
    # The pooled variance: 5.2 / 4 = 1.3.
    assert everyone.overall["skill"].moments is not None
    assert everyone.overall["skill"].moments.m2 / 4 == pytest.approx(1.3)


def test_small_groups_and_small_counts_are_null_in_the_file(tmp_path: Path, flow: Flow) -> None:
    # Nine people in Device loans (one is missing a device), twelve in Skills cafe, fifteen in
    # Library: at the default min_group of 10 Device loans has nothing but nulls, a count of 1
    # is null, and Skills cafe (the smallest of the others) is null too, or "all" less Library
    # would give Device loans away.
    no_device = {**EVERY_BASIC, "BA01.access": 1}
    people = (
        [person(n, 0, 1, ("Device loans",), no_device if n == 0 else EVERY_BASIC) for n in range(9)]
        + gained([2] * 12, "Skills cafe", start=100)
        + gained([1] * 15, "Library", start=200)
    )
    path = benchmark_file(tmp_path, flow, people, min_group=10)
    document = json.loads(path.read_text(encoding="utf-8"))
    groups = {g["group"]: g for g in document["groups"]}
    assert list(groups) == ["all", "Device loans", "Library", "Skills cafe"]
    for hidden in ("Device loans", "Skills cafe"):
        group = groups[hidden]
        assert [group["people"], group["completed"], group["pairs"]] == [None, None, None]
        assert group["impact"]["overall"] == {"skill": None, "interest": None}
        assert set(group["impact"]["headings"].values()) == {None}
        assert group["baseline"]["headings"]["GS"]["skill"] == [None] * 5
        assert set(group["changes"].values()) == {None}
    library = groups["Library"]
    assert [library["people"], library["completed"], library["pairs"]] == [15, 15, 15]
    assert library["impact"]["overall"]["skill"] == {
        "n": 15,
        "mean": 1.0,
        "m2": 0.0,
        "improved": 15,
        "worse": 0,
    }
    assert library["baseline"]["headings"]["GS"]["skill"] == [15, None, None, None, None]
    everyone = groups["all"]
    assert everyone["people"] == 36
    # One person without a device among 36: below 10, so withheld even though "all" is shown.
    assert everyone["baseline"]["missing_basics"]["BA01"] is None
    assert everyone["impact"]["overall"]["skill"]["n"] == 36
    assert document["min_group"] == 10
    assert document["generated"] == "2027-06-02"
    assert document["label"] is None


def test_the_file_names_no_person_no_cohort_and_no_time(tmp_path: Path, flow: Flow) -> None:
    path = benchmark_file(
        tmp_path, flow, gained([1, 2, 3] * 4), min_group=10, label="North West pilot"
    )
    text = path.read_text(encoding="utf-8")
    assert COHORT not in text
    assert "PSEUDONYM" not in text
    assert "respondent" not in text
    assert "tel:" not in text
    assert not re.search(r"\d\d:\d\d", text), "a time of day"
    document = json.loads(text)
    assert document["label"] == "North West pilot"
    # The only "id" anywhere is the questionnaire's.
    assert re.findall(r'"id"', text) == ['"id"']
    assert document["flow"]["id"] == flow.id


def test_a_tampered_file_is_refused_naming_the_field(tmp_path: Path, flow: Flow) -> None:
    path = benchmark_file(tmp_path, flow, gained([1, 2, 3] * 4), min_group=10)
    document = json.loads(path.read_text(encoding="utf-8"))
    document["groups"][1]["people"] = "twelve"
    path.write_text(json.dumps(document), encoding="utf-8")
    with pytest.raises(BenchmarkError) as refused:
        read_benchmark(path, flow)
    assert (
        str(refused.value) == f"{path}: groups[1].people: 'twelve' is not of type 'integer', 'null'"
    )


def test_a_count_that_should_have_been_withheld_is_refused(tmp_path: Path, flow: Flow) -> None:
    path = benchmark_file(tmp_path, flow, gained([1, 2, 3] * 4), min_group=10)
    document = json.loads(path.read_text(encoding="utf-8"))
    document["groups"][0]["changes"]["basics_lost"] = 3
    path.write_text(json.dumps(document), encoding="utf-8")
    with pytest.raises(BenchmarkError, match=r"groups\[0\]\.changes\.basics_lost: 3 is below"):
        read_benchmark(path, flow)


def test_another_questionnaire_is_refused_and_another_version_warned_about(
    tmp_path: Path, flow: Flow
) -> None:
    path = benchmark_file(tmp_path, flow, gained([1, 2, 3] * 4), min_group=10)
    document = json.loads(path.read_text(encoding="utf-8"))
    document["flow"]["version"] = "0.1-old"
    path.write_text(json.dumps(document), encoding="utf-8")
    found = read_benchmark(path, flow)
    assert found.warnings == (
        f"questionnaire version 0.1-old, not {flow.version}: items changed between versions "
        "may not compare exactly",
    )
    document["flow"]["id"] = "someone-elses"
    path.write_text(json.dumps(document), encoding="utf-8")
    with pytest.raises(BenchmarkError, match=r"flow\.id: 'someone-elses', not this questionnaire"):
        read_benchmark(path, flow)
    document["flow"]["id"] = flow.id
    document["format"] = "dibot-benchmark/2"
    path.write_text(json.dumps(document), encoding="utf-8")
    with pytest.raises(BenchmarkError, match="format"):
        read_benchmark(path, flow)


def test_a_cell_withheld_in_one_file_is_pooled_partial(tmp_path: Path, flow: Flow) -> None:
    # First council: 12 people in Device loans. Second: 9 in Device loans (withheld), 12 in
    # Skills cafe (withheld with it) and 15 in Library.
    first = benchmark_file(tmp_path, flow, gained([1] * 12), min_group=10, name="a.json")
    second = benchmark_file(
        tmp_path,
        flow,
        gained([3] * 9)
        + gained([2] * 12, "Skills cafe", start=100)
        + gained([1] * 15, "Library", start=200),
        min_group=10,
        name="b.json",
    )
    pooled = pool([read_benchmark(first, flow), read_benchmark(second, flow)])
    loans = pooled.group("Device loans")
    assert loans is not None
    assert (loans.people.count, loans.people.covers, loans.people.files) == (12, 1, 2)
    assert loans.people.partial
    cafe = pooled.group("Skills cafe")
    assert cafe is not None
    assert (cafe.people.covers, cafe.people.files) == (0, 1)
    library = pooled.group("Library")
    assert library is not None
    assert (library.people.count, library.people.covers, library.people.files) == (15, 1, 1)
    assert not library.people.partial
    everyone = pooled.group("all")
    assert everyone is not None
    assert everyone.people.count == 12 + 36
    assert everyone.overall["skill"].moments is not None
    # 12 gains of 1, 9 of 3, 12 of 2, 15 of 1: (12 + 27 + 24 + 15) / 48 = 78 / 48 = 1.625.
    assert everyone.overall["skill"].moments.mean == pytest.approx(78 / 48)


# --- the comparison -------------------------------------------------------------------------


def test_welch_interval_by_hand() -> None:
    # Four gains of 4 (no spread) against the pooled [1, 2, 3, 2, 4] (mean 2.4, m2 5.2):
    # difference 1.6; variance of the means 0 + 5.2 / 4 / 5 = 0.26, sd 0.509902;
    # df = 0.26^2 / (0.26^2 / 4) = 4, t(0.975, 4) = 2.776445, half width 1.415715.
    low, high = welch_interval(Moments(4, 4.0, 0.0, 4, 0), Moments(5, 2.4, 5.2, 5, 0))
    assert low == pytest.approx(1.6 - 1.415715, abs=1e-6)
    assert high == pytest.approx(1.6 + 1.415715, abs=1e-6)


def test_a_council_above_the_pooled_councils_is_said_to_be(tmp_path: Path, flow: Flow) -> None:
    first = benchmark_file(tmp_path, flow, gained([1, 2, 3]), min_group=2, name="a.json")
    second = benchmark_file(tmp_path, flow, gained([2, 4]), min_group=2, name="b.json")
    others = pool([read_benchmark(first, flow), read_benchmark(second, flow)])
    report, tallies = council(flow, gained([4, 4, 4, 4]), min_group=2)
    compared = compare_with_pooled(report, tallies, others)
    assert [g.group for g in compared.groups] == ["all", "Device loans"]
    everyone = compared.groups[0]
    overall = everyone.gains[0]
    assert (overall.id, overall.aspect) == ("overall", "skill")
    assert overall.council.mean == 4
    assert overall.pooled.mean == pytest.approx(2.4)
    assert overall.pooled.n == 5
    assert overall.difference == pytest.approx(1.6)
    assert overall.verdict == MORE
    heading = next(g for g in everyone.gains if g.id == "GS")
    assert heading.verdict == MORE
    # Nobody misses a basic, here or there.
    assert [(s.item, s.council, s.pooled) for s in everyone.missing_basics] == [
        ("BA01", 0.0, None),
        ("BA02", 0.0, None),
        ("BA03", 0.0, None),
    ]

    below, below_tallies = council(flow, gained([0, 0, 0, 0]), min_group=2)
    assert compare_with_pooled(below, below_tallies, others).groups[0].gains[0].verdict == LESS
    close, close_tallies = council(flow, gained([1, 4, 2, 3]), min_group=2)
    assert compare_with_pooled(close, close_tallies, others).groups[0].gains[0].verdict == UNCLEAR


def test_pooling_needs_one_questionnaire() -> None:
    one = Benchmark("digital-inclusion", "1", None, DAY, 10, ())
    other = Benchmark("another", "1", None, DAY, 10, ())
    with pytest.raises(BenchmarkError, match="different questionnaires"):
        pool([one, other])
    with pytest.raises(BenchmarkError, match="nothing to pool"):
        pool([])
