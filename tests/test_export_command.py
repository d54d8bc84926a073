"""`dibot export` end to end: residents who really answered (through the turn handler), exported
from the command line in every format, read back as an analyst's tools would; pseudonymous
unless --identified; one audit line per export; nothing left behind when an export cannot be
made or fails part-way; an existing file never replaced without --force. And the outcome flags
for cost-benefit models, worked out by hand."""

from __future__ import annotations

import csv
import io
import json
import tracemalloc
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import openpyxl
import pytest
import sqlalchemy as sa

import impact.columns
from dibot.cli import main
from flows.model import Flow
from impact.benchmark import read_benchmark
from impact.export_outcomes import COUNT_COLUMNS, FLAG_COLUMNS, write_outcomes
from impact.records import AnswerRow, AssessmentRow, Person
from storage.models import Answer, Assessment, AuditEntry, table
from tests.test_checkins import Town, new_town
from tests.test_export_floip import package_problems
from tests.test_report_command import config_file, enrol_into, urn

FULL = "07700 900301"
"""Full baseline: confident at every Transacting item but banking online ("Only with help",
score 1); at the full check-in, banking online "Confidently" (score 3)."""
QUICK = "07700 900302"
"""A quick baseline (headings only), no check-in yet."""
NEW = "07700 900303"
"""Enrolled into another cohort, nothing answered yet."""
BY = "A. Analyst"
PSEUDONYM_LENGTH = 14
MEMORY_BOUND = 2 * 1024 * 1024
MADE_BY_EXPORT = ("datapackage.json", "exported-responses.json")


def full_baseline(town: Town, phone: str) -> None:
    """Consent, the full assessment, every basic there and no blockers, Getting started,
    Communicating and Handling information skipped, Transacting answered: "Could teach others"
    everywhere but banking online ("Only with help", then "Likely" to do it regularly), the
    last three topics skipped."""
    town.say(urn(phone), "Hi", "1", "2", *["5"] * 8, "2", "2", "2", "1")
    town.say(urn(phone), "5", "5", "5", "2", "4", "5", "5", "5", "5", "2", "2", "2")
    assert town.assessments(urn(phone))[-1].completed_at is not None


def full_checkin(town: Town, phone: str) -> None:
    """The check-in re-asks what the baseline answered: banking online now "Confidently"."""
    done = town.schedule(phone=phone, after="3m")
    town.run(done.due_at)
    town.say(urn(phone), "1", *["5"] * 8, "1", "5", "5", "5", "4", "5", "5", "5", "5")
    assert town.assessments(urn(phone))[-1].completed_at is not None


def three_residents(engine: sa.Engine, flow: Flow) -> Town:
    town = new_town(engine, flow)
    enrol_into(town, FULL, "Spring drive", "Device loans")
    enrol_into(town, QUICK, "Spring drive", "Device loans")
    enrol_into(town, NEW, "Autumn drive", "Digital champions")
    full_baseline(town, FULL)
    town.baseline(urn(QUICK), skip_topic="CM", skill="2")
    full_checkin(town, FULL)
    return town


def export(
    capsys: pytest.CaptureFixture[str], config: str, *arguments: str
) -> tuple[int, str, str]:
    status = main(["export", *arguments, "--config", config, "--by", BY])
    out, err = capsys.readouterr()
    return status, out, err


def audit_lines(engine: sa.Engine) -> list[tuple[object, ...]]:
    audit = table(AuditEntry)
    with engine.connect() as conn:
        return [
            tuple(row)
            for row in conn.execute(
                sa.select(
                    audit.c.staff_id, audit.c.action, audit.c.respondent_id, audit.c.detail
                ).order_by(audit.c.id)
            )
        ]


def read_csv(path: Path) -> list[dict[str, str]]:
    data = path.read_bytes()
    assert data.startswith(b"\xef\xbb\xbf")  # the byte order mark Excel needs
    return list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"), newline="")))


def listing(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir())


@pytest.fixture
def setting(engine: sa.Engine, flow: Flow, database_url: str, tmp_path: Path) -> tuple[str, Path]:
    three_residents(engine, flow)
    folder = tmp_path / "exports"
    folder.mkdir()
    return config_file(tmp_path, database_url), folder


# --- every format ------------------------------------------------------------------------------


def test_long_csv_of_a_cohort_pseudonymous_and_audited(
    engine: sa.Engine, setting: tuple[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    config, folder = setting
    out = folder / "spring.csv"

    status, printed, err = export(
        capsys, config, "--format", "csv", "--out", str(out), "--cohort", "Spring drive"
    )

    assert (status, err) == (0, "")
    found = read_csv(out)
    assert printed == f"wrote {out} (csv): 2 people, {len(found)} answers\n"
    assert listing(folder) == ["spring.csv"]
    assert out.stat().st_mode & 0o777 == 0o600
    labels = {row["respondent"] for row in found}
    assert len(labels) == 2
    assert all(label.startswith("R") and len(label) == PSEUDONYM_LENGTH for label in labels)
    assert "7700" not in out.read_text(encoding="utf-8-sig")
    banking = [
        (row["kind"], row["mode"], row["option"], row["score"], row["option_label"])
        for row in found
        if row["question"] == "TR04.skill"
    ]
    assert banking == [
        ("baseline", "full", "2", "1", "I'm cautious/reluctant to do anything without help"),
        ("checkin", "full", "4", "3", "I'm confident doing it for myself"),
    ]
    assert {row["cohorts"] for row in found} == {"Spring drive"}
    assert audit_lines(engine) == [
        (None, "export", None, f"format=csv cohort=Spring drive identified=no people=2 by={BY}")
    ]


def test_the_exact_form_in_the_readme_works(
    setting: tuple[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    config, folder = setting
    out = folder / "everyone.csv"

    status = main(["export", "--format", "csv", "--out", str(out), "--config", config])

    printed, err = capsys.readouterr()
    assert (status, err) == (0, "")
    assert printed.startswith(f"wrote {out} (csv): 3 people, ")


def test_wide_csv_one_row_per_assessment(
    engine: sa.Engine, setting: tuple[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    config, folder = setting
    out = folder / "wide.csv"

    status, printed, err = export(capsys, config, "--format", "csv-wide", "--out", str(out))

    assert (status, err) == (0, "")
    assert printed == f"wrote {out} (csv-wide): 3 people, 3 assessments\n"
    found = read_csv(out)
    assert [(row["kind"], row["mode"], row["TR04.skill"]) for row in found] == [
        ("baseline", "full", "1"),
        ("checkin", "full", "3"),
        ("baseline", "quick", ""),
    ]
    assert audit_lines(engine) == [
        (None, "export", None, f"format=csv-wide identified=no people=3 by={BY}")
    ]


def test_xlsx_identified_names_people_by_urn_and_warns(
    engine: sa.Engine, setting: tuple[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    config, folder = setting
    out = folder / "spring.xlsx"

    status, printed, err = export(
        capsys,
        config,
        "--format",
        "xlsx",
        "--out",
        str(out),
        "--cohort",
        "Spring drive",
        "--identified",
    )

    assert status == 0
    assert err == (
        f"dibot: warning: {out} holds personal data (people are named by phone number or "
        "Telegram id); this export was recorded in the audit log\n"
    )
    book = openpyxl.load_workbook(out, read_only=True)
    try:
        assert book.sheetnames == ["About", "Assessments", "Answers", "Items", "Scales"]
        about = {row[0]: row[1] for row in book["About"].iter_rows(values_only=True)}
        assessments = list(book["Assessments"].iter_rows(min_row=2, values_only=True))
        answers = list(book["Answers"].iter_rows(min_row=2, values_only=True))
    finally:
        book.close()
    assert about["Selection"] == "Cohort Spring drive (initiative Device loans)"
    assert about["Made by"] == BY
    assert "personal data" in about["Respondents"]
    assert [row[0] for row in assessments] == [urn(FULL), urn(FULL), urn(QUICK)]
    assert {row[0] for row in answers} == {urn(FULL), urn(QUICK)}
    assert printed == (f"wrote {out} (xlsx): 2 people, 3 assessments, {len(answers)} answers\n")
    assert audit_lines(engine) == [
        (None, "export", None, f"format=xlsx cohort=Spring drive identified=yes people=2 by={BY}")
    ]


def test_floip_as_a_directory_and_as_a_zip_are_valid_packages(
    engine: sa.Engine,
    setting: tuple[str, Path],
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    config, folder = setting
    directory = folder / "exported"
    archive = folder / "exported.zip"

    status, printed, err = export(capsys, config, "--format", "floip", "--out", str(directory))
    assert (status, err) == (0, "")
    status, zipped, err = export(capsys, config, "--format", "floip", "--out", str(archive))
    assert (status, err) == (0, "")

    assert listing(folder) == ["exported", "exported.zip"]
    assert listing(directory) == sorted(MADE_BY_EXPORT)
    assert package_problems(directory) == set()
    rows = json.loads((directory / "exported-responses.json").read_text(encoding="utf-8"))
    assert printed == f"wrote {directory} (floip): 3 people, {len(rows)} responses\n"
    assert zipped == f"wrote {archive} (floip): 3 people, {len(rows)} responses\n"
    assert {row[2][:1] for row in rows} == {"R"}
    assert "7700" not in json.dumps(rows)
    banking = [(row[3], row[5]) for row in rows if row[4] == "TR04.skill"]
    assert [label for _, label in banking] == [
        "I'm cautious/reluctant to do anything without help",
        "I'm confident doing it for myself",
    ]
    unpacked = tmp_path / "unpacked"
    with zipfile.ZipFile(archive) as opened:
        assert opened.namelist() == list(MADE_BY_EXPORT)  # the descriptor first
        opened.extractall(unpacked)
    assert package_problems(unpacked) == set()
    assert json.loads((unpacked / "exported-responses.json").read_text("utf-8")) == rows
    detail = f"format=floip identified=no people=3 by={BY}"
    assert audit_lines(engine) == [(None, "export", None, detail)] * 2


def test_outcome_flags_per_person_and_counts_per_cohort(
    engine: sa.Engine, setting: tuple[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    config, folder = setting
    out = folder / "outcomes.csv"
    counts = folder / "outcomes-counts.csv"

    status, printed, err = export(capsys, config, "--format", "outcomes", "--out", str(out))

    assert (status, err) == (0, "")
    assert printed == (
        f"wrote {out} and {counts} (outcomes): 3 people, 2 with a completed baseline, "
        "16 flag rows\n"
    )
    found = read_csv(out)
    assert list(found[0]) == list(FLAG_COLUMNS)
    full, quick = found[:8], found[8:]
    assert len(quick) == 8
    columns = ("flag", "item", "able_at_baseline", "able_at_checkin", "newly_able")
    assert [tuple(row[column] for column in columns) for row in full] == [
        ("use_email", "CM02", "", "", ""),  # Communicating was skipped: not known
        ("video_call", "CM05", "", "", ""),
        ("buy_online", "TR02", "yes", "yes", "no"),
        ("pay_bills_online", "TR03", "yes", "yes", "no"),
        ("bank_online", "TR04", "no", "yes", "yes"),
        ("use_government_services_online", "TR05", "yes", "yes", "no"),
        ("use_nhs_services_online", "TR08", "yes", "yes", "no"),
        ("apply_for_jobs_online", "AD01", "", "", ""),
    ]
    first = full[0]
    assert (first["baseline_mode"], first["checkin_mode"]) == ("full", "full")
    assert first["baseline_completed_at"] == "2027-03-02T10:00:00Z"
    assert first["checkin_completed_at"].startswith("2027-06-")
    assert int(first["checkin_id"]) > int(first["baseline_id"])
    assert (first["cohorts"], first["initiatives"]) == ("Spring drive", "Device loans")
    # A quick check answers headings only: no item's flag is known.
    assert {
        (row["able_at_baseline"], row["able_at_checkin"], row["newly_able"], row["checkin_id"])
        for row in quick
    } == {("", "", "", "")}
    assert quick[0]["baseline_mode"] == "quick"
    assert len({row["respondent"] for row in found}) == 2
    assert "7700" not in out.read_text(encoding="utf-8-sig")

    shared = read_csv(counts)
    assert list(shared[0]) == list(COUNT_COLUMNS)
    groups = [(row["group_type"], row["group"]) for row in shared[::8]]
    assert groups == [
        ("everyone", "Everyone"),
        ("cohort", "Spring drive"),
        ("initiative", "Device loans"),
    ]
    # Two people at most in any group: every count is withheld.
    assert {row[column] for row in shared for column in COUNT_COLUMNS[4:]} == {"<10"}
    assert audit_lines(engine) == [
        (None, "export", None, f"format=outcomes identified=no people=3 by={BY}")
    ]


def test_a_benchmark_file_names_nobody_and_cannot_be_identified(
    engine: sa.Engine, setting: tuple[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    config, folder = setting
    out = folder / "benchmark.json"

    refused = export(capsys, config, "--format", "benchmark", "--out", str(out), "--identified")
    status, printed, err = export(
        capsys, config, "--format", "benchmark", "--out", str(out), "--cohort", "Spring drive"
    )

    assert refused == (
        2,
        "",
        "dibot: --identified: a benchmark file names nobody, so it cannot identify\n",
    )
    assert (status, err) == (0, "")
    found = read_benchmark(out)
    assert printed == f"wrote {out} (benchmark): 2 people, {len(found.groups)} groups\n"
    assert found.label is None  # the council's name is still the shipped placeholder
    # Two people: every count is withheld.
    assert [(group.group, group.people) for group in found.groups] == [
        ("all", None),
        ("Device loans", None),
    ]
    text = out.read_text(encoding="utf-8")
    assert "7700" not in text
    assert "Spring drive" not in text
    assert listing(folder) == ["benchmark.json"]
    assert audit_lines(engine) == [
        (
            None,
            "export",
            None,
            f"format=benchmark cohort=Spring drive identified=no people=2 by={BY}",
        )
    ]


# --- refusals and failures ---------------------------------------------------------------------


def test_an_existing_file_is_kept_unless_forced(
    engine: sa.Engine, setting: tuple[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    config, folder = setting
    out = folder / "spring.csv"
    out.write_text("an older export", encoding="utf-8")
    (folder / "flags-counts.csv").write_text("older counts", encoding="utf-8")
    (folder / "package").mkdir()
    (folder / "package" / "notes.txt").write_text("older", encoding="utf-8")

    refused = export(capsys, config, "--format", "csv", "--out", str(out))
    counts_refused = export(
        capsys, config, "--format", "outcomes", "--out", str(folder / "flags.csv")
    )
    package_refused = export(capsys, config, "--format", "floip", "--out", str(folder / "package"))

    assert refused == (
        2,
        "",
        f"dibot: --out: {out} exists: give a new path, or --force to replace it\n",
    )
    assert counts_refused[:2] == (2, "")
    assert f"{folder / 'flags-counts.csv'} exists" in counts_refused[2]
    assert package_refused[:2] == (2, "")
    assert out.read_text(encoding="utf-8") == "an older export"
    assert listing(folder) == ["flags-counts.csv", "package", "spring.csv"]
    assert audit_lines(engine) == []

    status, _, err = export(capsys, config, "--format", "csv", "--out", str(out), "--force")
    assert (status, err) == (0, "")
    assert read_csv(out)[0]["respondent"].startswith("R")
    status, _, err = export(
        capsys, config, "--format", "floip", "--out", str(folder / "package"), "--force"
    )
    assert (status, err) == (0, "")
    assert listing(folder / "package") == ["datapackage.json", "package-responses.json"]
    assert listing(folder) == ["flags-counts.csv", "package", "spring.csv"]
    assert len(audit_lines(engine)) == 2


def test_a_directory_that_does_not_exist_and_an_unknown_cohort_are_refused(
    engine: sa.Engine, setting: tuple[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    config, folder = setting
    missing = folder / "not-made" / "spring.csv"

    assert export(capsys, config, "--format", "csv", "--out", str(missing)) == (
        2,
        "",
        f"dibot: --out: {missing.parent} is not a directory: make it first\n",
    )
    assert export(
        capsys, config, "--format", "xlsx", "--out", str(folder / "x.xlsx"), "--cohort", "Winter"
    ) == (
        2,
        "",
        "dibot: no cohort is named 'Winter': the dashboard's Cohorts page (/cohorts) lists "
        "them, or leave out --cohort to export everyone\n",
    )
    assert listing(folder) == []
    assert audit_lines(engine) == []


def test_a_writer_that_fails_part_way_leaves_no_file_and_no_audit_line(
    engine: sa.Engine,
    setting: tuple[str, Path],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config, folder = setting
    rows_of = impact.columns.LongView.rows
    seen: list[str] = []

    def fail_on_the_second_person(self: impact.columns.LongView, person: Person) -> Any:
        seen.append(person.label)
        if len(seen) == 2:
            raise OSError(28, "No space left on device")
        return rows_of(self, person)

    monkeypatch.setattr(impact.columns.LongView, "rows", fail_on_the_second_person)

    status, printed, err = export(capsys, config, "--format", "csv", "--out", str(folder / "a"))

    assert (status, printed) == (1, "")
    assert err == "dibot: [Errno 28] No space left on device\n"
    assert len(seen) == 2
    assert listing(folder) == []
    assert audit_lines(engine) == []


def test_an_answer_the_flow_cannot_describe_stops_the_package_cleanly(
    engine: sa.Engine, setting: tuple[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    config, folder = setting
    assessments, answers = table(Assessment), table(Answer)
    with engine.begin() as conn:
        # An answer to a question this flow does not have (as if from another flow).
        last = conn.execute(sa.select(sa.func.max(assessments.c.id))).scalar_one()
        conn.execute(
            sa.update(answers)
            .where(answers.c.assessment_id == last, answers.c.question == "TR04.skill")
            .values(question="ZZ99.skill", item_id="ZZ99")
        )

    for out in (folder / "package", folder / "package.zip"):
        status, printed, err = export(capsys, config, "--format", "floip", "--out", str(out))
        assert (status, printed) == (1, "")
        assert err == (
            "dibot: the export stopped, nothing was written: answer ZZ99.skill=4 is not in "
            "the flow\n"
        )
    assert listing(folder) == []
    assert audit_lines(engine) == []


# --- the counts, by hand -----------------------------------------------------------------------

START = datetime(2027, 3, 1, 9, 0, tzinfo=UTC)


def assessment(
    number: int, kind: str, skill: int | None, *, baseline: int | None = None
) -> AssessmentRow:
    """A full assessment (or a quick one, `skill` None) answering banking online's skill with
    option `skill` and buying online's with 5 ("I could teach others")."""
    at = START + timedelta(days=number)
    answers: tuple[AnswerRow, ...] = (AnswerRow("GS.skill", "GS", "skill", 3, 2, at, "sms"),)
    if skill is not None:
        answers = (
            AnswerRow("TR02.skill", "TR02", "skill", 5, 4, at, "sms"),
            AnswerRow("TR04.skill", "TR04", "skill", skill, skill - 1, at, "sms"),
        )
    return AssessmentRow(
        id=number,
        kind=kind,
        mode="quick" if skill is None else "full",
        flow_id="digital-inclusion",
        flow_version="test",
        baseline_id=baseline,
        started_at=at,
        completed_at=at,
        abandoned_at=None,
        skills_basis=None,
        assisted=False,
        answers=answers,
    )


def resident(number: int, cohorts: tuple[str, ...], *taken: AssessmentRow) -> Person:
    return Person(
        respondent_id=number,
        label=f"R{number:013d}",
        language="en",
        created_at=START,
        enrolled_at=START,
        consented=True,
        opted_out=False,
        unreachable=False,
        cohorts=cohorts,
        initiatives=("Device loans",) if cohorts else (),
        assessments=taken,
    )


def test_counts_of_ten_or_more_are_shown_and_smaller_ones_withheld(flow: Flow) -> None:
    people = [
        # Twelve in "Spring drive": banking online from "Only with help" to "Confidently".
        *(
            resident(
                n,
                ("Spring drive",),
                assessment(2 * n, "baseline", 2),
                assessment(2 * n + 1, "checkin", 4, baseline=2 * n),
            )
            for n in range(1, 13)
        ),
        # Three more there, already confident, not checked in yet.
        *(resident(n, ("Spring drive",), assessment(2 * n, "baseline", 4)) for n in range(13, 16)),
        # Eleven with quick checks before and after, in no cohort.
        *(
            resident(
                n,
                (),
                assessment(2 * n, "baseline", None),
                assessment(2 * n + 1, "checkin", None, baseline=2 * n),
            )
            for n in range(16, 27)
        ),
    ]
    flags, counts = io.BytesIO(), io.BytesIO()

    written = write_outcomes(people, flow, flags, counts)

    assert (written.people, written.with_baseline, written.rows) == (26, 26, 26 * 8)
    shared = list(csv.DictReader(io.StringIO(counts.getvalue().decode("utf-8-sig"))))

    def row(group: str, flag: str) -> list[str]:
        (found,) = (r for r in shared if r["group"] == group and r["flag"] == flag)
        return [found[column] for column in COUNT_COLUMNS[4:]]

    # people, checked in, known, able at baseline, able at check-in, newly able
    assert row("Everyone", "bank_online") == ["26", "23", "12", "<10", "12", "12"]
    assert row("Everyone", "buy_online") == ["26", "23", "12", "12", "12", "<10"]
    assert row("Everyone", "use_email") == ["26", "23", "<10", "<10", "<10", "<10"]
    assert row("Spring drive", "bank_online") == ["15", "12", "12", "<10", "12", "12"]
    assert row("Device loans", "bank_online") == ["15", "12", "12", "<10", "12", "12"]
    assert row("No initiative", "bank_online") == ["11", "11", "<10", "<10", "<10", "<10"]
    assert [r["group"] for r in shared[::8]] == [
        "Everyone",
        "Spring drive",
        "Device loans",
        "No initiative",
    ]


def test_outcomes_memory_stays_flat(flow: Flow, tmp_path: Path) -> None:
    """Five thousand pairs: holding them, or their 40,000 rows, would take well over 2 MB."""

    def pairs() -> Iterator[Person]:
        for n in range(5_000):
            yield resident(
                n,
                (f"Cohort {n % 7}",),
                assessment(2 * n, "baseline", 2),
                assessment(2 * n + 1, "checkin", 4, baseline=2 * n),
            )

    with (
        (tmp_path / "flags.csv").open("wb") as flags,
        (tmp_path / "counts.csv").open("wb") as counts,
    ):
        tracemalloc.start()
        try:
            written = write_outcomes(pairs(), flow, flags, counts)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    assert written.rows == 40_000
    assert peak < MEMORY_BOUND, f"peak {peak / 1e6:.2f} MB"
