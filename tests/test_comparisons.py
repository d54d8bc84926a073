"""A cohort beside a persona and beside other councils' pooled benchmark files, as text, JSON
and HTML (numbers worked out by hand), and `dibot report --persona/--compare` end to end on
residents who really answered, with the benchmark file written from the same database naming
nobody."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path

import jsonschema
import pytest
import sqlalchemy as sa

from dibot.cli import main
from flows.model import Flow
from impact.benchmark import (
    benchmark_of,
    compare_with_pooled,
    pool,
    read_benchmark,
    write_benchmark,
    write_benchmark_file,
)
from impact.comparisons import (
    Comparisons,
    comparison_document,
    comparison_lines,
    persona_side,
    render_comparisons_html,
)
from impact.personas import PersonaSpec, store_personas
from impact.records import Selection
from impact.render_json import SCHEMA
from tests.impact_people import EVERY_BASIC, NO_BLOCKERS
from tests.test_benchmark import DAY, council, gained, person
from tests.test_report_command import config_file, spring_drive

NOW = datetime(2027, 6, 2, 10, 0, tzinfo=UTC)
PERSONA_ANSWERS = {
    **EVERY_BASIC,
    **NO_BLOCKERS,
    "BA01.access": 1,  # no device
    "GS.skill": 2,  # score 1: cautious
    "GS.interest": 4,  # score 3: likely
}


def words_after(lines: list[str], start: str) -> list[str]:
    line = next(line for line in lines if line.strip().startswith(start))
    return line.strip()[len(start) :].split()


def others_file(tmp_path: Path, flow: Flow, name: str) -> Path:
    """A council whose ten people in Device loans gained nothing at all."""
    _, tallies = council(flow, gained([0] * 10), min_group=10)
    path = tmp_path / name
    with path.open("w", encoding="utf-8") as out:
        write_benchmark(benchmark_of(tallies, min_group=10, generated=DAY, label=name), out)
    return path


def test_a_cohort_beside_a_persona(flow: Flow) -> None:
    # Ten people at Getting started skill score 2 (share 50%), interest score 4 (100%); two of
    # them without a device (20%). The persona: skill score 1 (25%), interest 3 (75%), no device.
    no_device = {**EVERY_BASIC, "BA01.access": 1}
    people = [person(n, 2, None, (), no_device if n < 2 else EVERY_BASIC) for n in range(10)]
    report, tallies = council(flow, people, min_group=10)
    side = persona_side(
        flow,
        report,
        tallies,
        slug="cautious-no-device",
        name="Cautious, no device",
        description="Has no device of their own.",
        source="This test",
        answers=PERSONA_ANSWERS,
    )
    lines = comparison_lines(Comparisons(10, persona=side))
    assert "BESIDE A PERSONA: Cautious, no device (cautious-no-device)" in lines
    assert words_after(lines, "Getting started") == ["50%", "25%", "+25", "100%", "75%", "+25"]
    assert words_after(lines, "Their likely priorities:") == ["1.", "Getting", "started."]
    basics = lines[lines.index("  Missing basics") :]
    assert words_after(basics, "a device") == ["20%", "yes"]
    assert all(len(line) <= 100 for line in lines)

    document = comparison_document(Comparisons(10, persona=side))["persona"]
    assert document["headings"][0] == {
        "heading": "GS",
        "name": "Getting started",
        "cohort_skill": 0.5,
        "persona_skill": 0.25,
        "cohort_interest": 1.0,
        "persona_interest": 0.75,
    }
    assert document["missing_basics"][0]["cohort_share"] == 0.2

    # Nine people: the cohort's side is withheld, the persona's priorities still shown.
    few, few_tallies = council(flow, people[:9], min_group=10)
    withheld = persona_side(
        flow,
        few,
        few_tallies,
        slug="cautious-no-device",
        name="Cautious, no device",
        description="Has no device of their own.",
        source="This test",
        answers=PERSONA_ANSWERS,
    )
    assert withheld.comparison is None
    text = " ".join(" ".join(comparison_lines(Comparisons(10, persona=withheld))).split())
    assert "Fewer than 10 people have finished a first check: the cohort's side is withheld." in (
        text
    )
    assert "50%" not in text


def test_a_council_above_the_pooled_councils_reads_so(tmp_path: Path, flow: Flow) -> None:
    first, second = others_file(tmp_path, flow, "a.json"), others_file(tmp_path, flow, "b.json")
    pooled = pool([read_benchmark(first, flow), read_benchmark(second, flow)])
    # Here: ten gained 1 and two lost 1 (mean +0.67, interval +0.17 to +1.16: see
    # tests/test_report.py); the pooled twenty gained exactly 0, so the difference's interval
    # is this council's own: +0.67 (+0.17 to +1.16), wholly above 0.
    people = [person(n, 2, 3, ("Device loans",)) for n in range(10)] + [
        person(n, 2, 1, ("Device loans",)) for n in range(10, 12)
    ]
    report, tallies = council(flow, people, min_group=10)
    sector = compare_with_pooled(report, tallies, pooled)
    lines = comparison_lines(Comparisons(10, sector=sector))
    assert lines[1] == "BESIDE OTHER COUNCILS (pooled from 2 benchmark files)"
    assert words_after(lines, "All skills (skill)") == [
        "+0.67",
        "0.00",
        "20",
        "+0.67",
        "(+0.17",
        "to",
        "+1.16)",
        "gained",
        "more",
        "here",
    ]
    assert all(len(line) <= 100 for line in lines)
    html = render_comparisons_html(Comparisons(10, sector=sector))
    assert 'class="govuk-table"' in html
    assert "gained more here" in html


def test_html_escapes_what_it_is_given(flow: Flow) -> None:
    people = [person(n, 2, None) for n in range(10)]
    report, tallies = council(flow, people, min_group=10)
    side = persona_side(
        flow,
        report,
        tallies,
        slug="x",
        name="<script>alert(1)</script>",
        description="A & B",
        source="S",
        answers=PERSONA_ANSWERS,
    )
    html = render_comparisons_html(Comparisons(10, persona=side))
    assert "<script>" not in html
    assert "&lt;script&gt;" in html
    assert "A &amp; B" in html


# --- end to end -----------------------------------------------------------------------------


def report(
    capsys: pytest.CaptureFixture[str], config: str, *arguments: str
) -> tuple[int, str, str]:
    status = main(["report", *arguments, "--config", config])
    out, err = capsys.readouterr()
    return status, out, err


def test_dibot_report_beside_a_persona_and_other_councils(
    engine: sa.Engine,
    flow: Flow,
    database_url: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    spring_drive(engine, flow)
    with engine.begin() as conn:
        store_personas(
            conn,
            [
                PersonaSpec(
                    slug="cautious-no-device",
                    name="Cautious, no device",
                    description="Has no device of their own.",
                    mode="quick",
                    answers=PERSONA_ANSWERS,
                    source="This test",
                    cohort="Spring drive",
                )
            ],
            by="test",
            now=NOW,
        )
    config = config_file(tmp_path, database_url)

    # The cohort's own persona, without asking: everyone at skill score 1 (25%) everywhere
    # but Messages and calls (skipped), interest "likely" (score 3, 75%), every basic there.
    status, text, err = report(capsys, config, "--cohort", "Spring drive")
    assert (status, err) == (0, "")
    lines = text.splitlines()
    lines = lines[lines.index("BESIDE A PERSONA: Cautious, no device (cautious-no-device)") :]
    assert words_after(lines, "Getting started") == ["25%", "25%", "0", "75%", "75%", "0"]
    basics = lines[lines.index("  Missing basics") :]
    assert words_after(basics, "a device") == ["0%", "yes"]

    # The benchmark file from the same database names no one and no cohort.
    out = tmp_path / "pendle.json"
    with engine.connect() as conn:
        write_benchmark_file(
            conn, flow, Selection(), out, label="Pendle pilot", min_group=10, now=NOW
        )
    written = out.read_text(encoding="utf-8")
    assert "Spring drive" not in written
    assert "7700" not in written
    assert "tel:" not in written
    assert not re.search(r"\bR[A-Z2-7]{13}\b", written), "a pseudonym"
    assert json.loads(written)["generated"] == "2027-06-02"
    assert read_benchmark(out, flow).group("Device loans") is not None

    first, second = others_file(tmp_path, flow, "a.json"), others_file(tmp_path, flow, "b.json")
    status, text, err = report(
        capsys,
        config,
        "--cohort",
        "Spring drive",
        "--compare",
        str(first),
        str(second),
        "--format",
        "json",
    )
    assert (status, err) == (0, "")
    document = json.loads(text)
    jsonschema.validate(document, SCHEMA)
    sector = document["comparisons"]["sector"]
    assert sector["files"] == 2
    assert [g["group"] for g in sector["groups"]] == ["all", "Device loans"]
    overall = sector["groups"][0]["gains"][0]
    assert overall["here"]["mean"] == 0.6667
    assert overall["pooled"] == {
        "n": 20,
        "mean": 0.0,
        "ci_low": 0.0,
        "ci_high": 0.0,
        "withheld": False,
    }
    assert overall["verdict"] == "more"
    assert document["comparisons"]["persona"]["slug"] == "cautious-no-device"

    status, page, err = report(
        capsys, config, "--cohort", "Spring drive", "--compare", str(first), "--format", "html"
    )
    assert (status, err) == (0, "")
    assert page.startswith("<!DOCTYPE html>")
    assert page.index("Beside other councils") < page.index("</main>")

    # A tampered file is refused in one line naming the field, before anything is read.
    tampered = json.loads(first.read_text(encoding="utf-8"))
    tampered["groups"][0]["pairs"] = "ten"
    first.write_text(json.dumps(tampered), encoding="utf-8")
    status, out_text, err = report(capsys, config, "--compare", str(first))
    assert (status, out_text) == (2, "")
    assert err == (
        f"dibot: --compare: {first}: groups[0].pairs: 'ten' is not of type 'integer', 'null'\n"
    )
    # A persona named for everyone, not only the cohort.
    status, text, err = report(capsys, config, "--persona", "cautious-no-device")
    assert (status, err) == (0, "")
    assert text.startswith("All residents\n")
    assert "BESIDE A PERSONA: Cautious, no device (cautious-no-device)" in text.splitlines()
    status, out_text, err = report(capsys, config, "--persona", "nobody-at-all")
    assert (status, out_text) == (2, "")
    assert "no persona has the slug 'nobody-at-all'" in err
