"""Personas: the shipped illustrative set read against the shipped flow, files with faults each
refused with their own one line, loading all or nothing and again as an update, a cohort set
beside a persona with hand-computed shares, and `dibot personas load|list` as staff run them."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from dibot.cli import main
from flows.model import Flow, Question
from impact.personas import (
    ILLUSTRATIVE_PERSONAS,
    PersonaError,
    PersonaSpec,
    all_personas,
    persona_for_cohort,
    read_personas,
    save_persona,
    store_personas,
)
from scoring import cohort_summary, priorities_message, profile
from scoring.personas import compare_with_persona, likely_priorities, persona_profile
from storage.models import Cohort, Persona, table

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
T1 = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
SHIPPED_SLUGS = [
    "offline-no-interest",
    "smartphone-keen-learner",
    "cost-blocked-family",
    "older-health-barrier",
    "jobseeker-work-skills",
    "confident-scam-vulnerable",
    "language-barrier",
    "carer-for-someone-else",
]


def by_slug(flow: Flow) -> dict[str, PersonaSpec]:
    return {spec.slug: spec for spec in read_personas(ILLUSTRATIVE_PERSONAS, flow)}


# --- the shipped set ---------------------------------------------------------------------------


def test_the_shipped_personas_are_eight_full_quick_checks(flow: Flow) -> None:
    specs = read_personas(ILLUSTRATIVE_PERSONAS, flow)
    assert [spec.slug for spec in specs] == SHIPPED_SLUGS
    quick_keys = {step.key for step in flow.modes["quick"].steps if isinstance(step, Question)}
    assert len(quick_keys) == 3 + 5 + 7 * 2
    for spec in specs:
        assert spec.mode == "quick"
        assert set(spec.answers) == quick_keys, spec.slug
        assert spec.cohort is None


def test_the_shipped_personas_say_they_are_illustrative_and_ours(flow: Flow) -> None:
    for spec in read_personas(ILLUSTRATIVE_PERSONAS, flow):
        assert spec.source == (
            "dibot's own illustrative personas (not LOTI's, whose 25 are not public)"
        )
        assert spec.description.startswith(
            "Illustrative persona written for dibot (invented, not a real person and not "
            "one of LOTI's)."
        ), spec.slug


def test_every_shipped_persona_has_a_priority_or_something_in_the_way(flow: Flow) -> None:
    for spec in read_personas(ILLUSTRATIVE_PERSONAS, flow):
        found = persona_profile(flow, spec.answers)
        in_the_way = found.missing_basics + found.barriers
        assert likely_priorities(flow, spec.answers) or in_the_way, spec.slug


def test_the_offline_persona_lacks_interest_and_is_not_told_it_is_doing_well(flow: Flow) -> None:
    answers = by_slug(flow)["offline-no-interest"].answers
    found = persona_profile(flow, answers)
    assert found.missing_basics == ("BA01", "BA02")
    assert found.barriers == ("BL03", "BL04")
    assert likely_priorities(flow, answers) == ()
    message = priorities_message(flow, found, "en")
    assert "doing well" not in message
    assert "lack of interest" in message


def test_likely_priorities_of_two_shipped_personas(flow: Flow) -> None:
    personas = by_slug(flow)
    # TR.skill 3 (score 2), TR.interest 5 (score 4): 4 * (4 - 2) = 8; SS the same: a tie on
    # value and interest goes to the heading first in flow order. PS: 3 * (4 - 2) = 6.
    # AD.skill 2 (score 1) with interest 1 (score 0): 0, below the minimum of 4.
    carer = likely_priorities(flow, personas["carer-for-someone-else"].answers)
    assert [(p.unit, p.value) for p in carer] == [("TR", 8), ("SS", 8), ("PS", 6)]
    # AD.skill 1 (score 0), AD.interest 5 (score 4): 4 * 4 = 16, first; the confident headings
    # (skill 4: score 3) are no priority however keen.
    jobseeker = likely_priorities(flow, personas["jobseeker-work-skills"].answers)
    assert [(p.unit, p.value) for p in jobseeker] == [("AD", 16), ("TR", 6), ("PS", 6), ("SS", 4)]


# --- files with faults -------------------------------------------------------------------------

GOOD_PERSONA = """
[[personas]]
slug = "keen"
name = "Keen"
description = "A test persona."
mode = "quick"
[personas.answers]
"BA01.access" = 5
"GS.skill" = 2
"GS.interest" = 5
"""


def persona_file(tmp_path: Path, body: str, meta: str = '[meta]\nsource = "tests"\n') -> Path:
    path = tmp_path / "personas.toml"
    path.write_text(meta + body, encoding="utf-8")
    return path


def fault(tmp_path: Path, flow: Flow, body: str, **meta: str) -> str:
    path = persona_file(tmp_path, body, **meta)
    with pytest.raises(PersonaError) as error:
        read_personas(path, flow)
    return str(error.value).removeprefix(f"{path}: ")


def test_a_good_file_reads(tmp_path: Path, flow: Flow) -> None:
    [spec] = read_personas(persona_file(tmp_path, GOOD_PERSONA), flow)
    assert spec == PersonaSpec(
        slug="keen",
        name="Keen",
        description="A test persona.",
        mode="quick",
        answers={"BA01.access": 5, "GS.skill": 2, "GS.interest": 5},
        source="tests",
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            ('"GS.skill" = 2', '"GS99.skill" = 2'),
            "persona 'keen': answer 'GS99.skill': no such question in flow digital-inclusion",
        ),
        (
            ('"GS.skill" = 2', '"GS.skill" = 6'),
            "persona 'keen': answer 'GS.skill': 6 is not an option of the skill scale (1 to 5)",
        ),
        (
            ('"GS.skill" = 2', '"GS.skill" = "2"'),
            "persona 'keen': answer 'GS.skill': '2' is not an option of the skill scale (1 to 5)",
        ),
        (
            ('"GS.skill" = 2', '"GS01.skill" = 2'),
            "persona 'keen': answer 'GS01.skill': not asked in quick mode",
        ),
        (
            ('"GS.skill" = 2', "GS.skill = 2"),
            "persona 'keen': answer 'GS': write the question key in quotes, "
            '"GS.skill" = 2 (unquoted, TOML reads GS.skill as a table)',
        ),
        (('name = "Keen"\n', ""), "persona 'keen': no name"),
        (('name = "Keen"', 'name = "  "'), "persona 'keen': name: must be a non-empty text"),
        (('slug = "keen"\n', ""), "persona #1: no slug"),
        (
            ('slug = "keen"', 'slug = "Keen One"'),
            "persona 'Keen One': slug 'Keen One': use lower-case letters and digits in words "
            "joined by hyphens (at most 64 characters)",
        ),
        (
            ('mode = "quick"', 'mode = "long"'),
            "persona 'keen': mode 'long': the flow's modes are quick, full",
        ),
        (
            ('description = "A test persona."', 'desciption = "A test persona."'),
            "persona 'keen': unknown key 'desciption' in a persona (it may have: slug, name, "
            "description, mode, cohort, source, answers)",
        ),
    ],
)
def test_a_fault_in_a_persona_is_named(
    tmp_path: Path, flow: Flow, change: tuple[str, str], message: str
) -> None:
    assert fault(tmp_path, flow, GOOD_PERSONA.replace(*change)) == message


def test_a_slug_twice_is_refused(tmp_path: Path, flow: Flow) -> None:
    assert fault(tmp_path, flow, GOOD_PERSONA + GOOD_PERSONA) == (
        "persona 'keen': duplicate slug (persona #1 has it too; this is persona #2)"
    )


def test_bad_toml_is_refused_with_its_line(tmp_path: Path, flow: Flow) -> None:
    # line 6: after [meta], its source, the blank line, [[personas]] and the slug
    assert fault(tmp_path, flow, GOOD_PERSONA.replace('name = "Keen"', "name = Keen")) == (
        "not valid TOML: Invalid value (at line 6, column 8)"
    )


def test_a_persona_without_a_source_is_refused(tmp_path: Path, flow: Flow) -> None:
    assert fault(tmp_path, flow, GOOD_PERSONA, meta="") == (
        "persona 'keen': no source (here or in [meta])"
    )


def test_a_file_without_personas_is_refused(tmp_path: Path, flow: Flow) -> None:
    assert fault(tmp_path, flow, "") == "no personas: add a [[personas]] table for each"


def test_full_mode_asks_interest_only_after_a_low_skill(tmp_path: Path, flow: Flow) -> None:
    full = GOOD_PERSONA.replace('mode = "quick"', 'mode = "full"').replace("GS.", "GS01.")
    assert [spec.mode for spec in read_personas(persona_file(tmp_path, full), flow)] == ["full"]
    confident = full.replace('"GS01.skill" = 2', '"GS01.skill" = 4')
    assert fault(tmp_path, flow, confident) == (
        "persona 'keen': answer 'GS01.interest': not asked in full mode when GS01.skill is 4 "
        "(interest is asked only where the skill scores at most 2)"
    )


# --- storing -----------------------------------------------------------------------------------


def stored_rows(engine: sa.Engine) -> list[tuple[str, str]]:
    personas = table(Persona)
    with engine.connect() as conn:
        rows = conn.execute(sa.select(personas.c.slug, personas.c.name).order_by(personas.c.id))
        return [(row.slug, row.name) for row in rows]


def add_cohort(engine: sa.Engine, name: str) -> int:
    with engine.begin() as conn:
        cohorts = table(Cohort)
        return int(
            conn.execute(
                cohorts.insert().values(name=name, created_at=T0).returning(cohorts.c.id)
            ).scalar_one()
        )


def test_loading_again_updates_by_slug(engine: sa.Engine, flow: Flow) -> None:
    specs = read_personas(ILLUSTRATIVE_PERSONAS, flow)
    with engine.begin() as conn:
        assert store_personas(conn, specs[:2], "first loader", now=T0) == (2, 0)
    renamed = [replace(specs[0], name="Renamed"), *specs[1:]]
    with engine.begin() as conn:
        assert store_personas(conn, renamed, "second loader", now=T1) == (6, 2)
    assert stored_rows(engine)[:2] == [
        ("offline-no-interest", "Renamed"),
        ("smartphone-keen-learner", "Smartphone, low confidence, keen"),
    ]
    with engine.connect() as conn:
        first, second, third = all_personas(conn)[:3]
    assert (first.created_by, first.created_at, first.updated_at) == ("first loader", T0, T1)
    assert (third.created_by, third.created_at, third.updated_at) == ("second loader", T1, T1)
    assert second.answers == specs[1].answers
    assert first.source == specs[0].source


def test_a_load_is_all_or_nothing(engine: sa.Engine, flow: Flow) -> None:
    specs = read_personas(ILLUSTRATIVE_PERSONAS, flow)
    lost = replace(specs[-1], slug="lost", cohort="No such cohort")
    with pytest.raises(PersonaError) as error, engine.begin() as conn:
        store_personas(conn, [*specs, lost], "loader")
    assert str(error.value) == "persona 'lost': no cohort named 'No such cohort'"
    assert stored_rows(engine) == []


def test_a_persona_can_be_a_cohorts_expected_baseline(engine: sa.Engine, flow: Flow) -> None:
    loans = add_cohort(engine, "Device loans")
    other = add_cohort(engine, "Champions")
    spec = replace(by_slug(flow)["cost-blocked-family"], cohort="Device loans")
    with engine.begin() as conn:
        assert store_personas(conn, [spec], "loader", now=T0) == (1, 0)
    with engine.connect() as conn:
        found = persona_for_cohort(conn, loans)
        assert persona_for_cohort(conn, other) is None
    assert found is not None
    assert (found.slug, found.cohort_id, found.cohort) == (
        "cost-blocked-family",
        loans,
        "Device loans",
    )


def test_a_persona_outlives_its_cohort(engine: sa.Engine, flow: Flow) -> None:
    cohort = add_cohort(engine, "Device loans")
    spec = replace(by_slug(flow)["cost-blocked-family"], cohort="Device loans")
    with engine.begin() as conn:
        store_personas(conn, [spec], "loader", now=T0)
        conn.execute(table(Cohort).delete().where(table(Cohort).c.id == cohort))
    with engine.connect() as conn:
        [kept] = all_personas(conn)
        assert persona_for_cohort(conn, cohort) is None
    assert (kept.slug, kept.cohort_id, kept.cohort) == ("cost-blocked-family", None, None)


def test_the_dashboard_saves_a_persona_it_completed(engine: sa.Engine, flow: Flow) -> None:
    cohort = add_cohort(engine, "Library drop-in")
    answers = {"BA01.access": 5, "GS01.skill": 2, "GS01.interest": 5}
    spec = PersonaSpec("drop-in", "Drop-in regular", "Expected.", "full", answers, "staff")
    with engine.begin() as conn:
        saved = save_persona(conn, flow, spec, by="worker@example.gov.uk", cohort_id=cohort, now=T0)
    assert (saved.slug, saved.mode, saved.answers, saved.cohort) == (
        "drop-in",
        "full",
        answers,
        "Library drop-in",
    )
    quick_key = replace(spec, answers={"GS.skill": 2})
    with pytest.raises(PersonaError) as error, engine.begin() as conn:
        save_persona(conn, flow, quick_key, by="worker@example.gov.uk")
    assert str(error.value) == "persona 'drop-in': answer 'GS.skill': not asked in full mode"


# --- a cohort beside a persona -----------------------------------------------------------------


def test_a_cohort_compared_with_a_persona(flow: Flow) -> None:
    # A: GS skill score 2 (share 2/4), interest 4 (4/4); no device; cost a barrier (score 1).
    # B: GS skill 4 (4/4), interest 2 (2/4); a device always; cost no problem.
    first = profile(flow, {"GS.skill": 3, "GS.interest": 5, "BA01.access": 1, "BL01.blocker": 2})
    second = profile(flow, {"GS.skill": 5, "GS.interest": 3, "BA01.access": 5, "BL01.blocker": 5})
    summary = cohort_summary(flow, [first, second])
    # The persona: GS skill score 1 (1/4), interest 3 (3/4); no device; cost no problem.
    persona = persona_profile(
        flow, {"GS.skill": 2, "GS.interest": 4, "BA01.access": 1, "BL01.blocker": 5}
    )
    compared = compare_with_persona(flow, summary, persona)
    assert compared.count == 2
    gs, cm = compared.headings[:2]
    assert gs.heading == "GS"
    assert gs.cohort_skill == pytest.approx(0.75)  # (2/4 + 4/4) / 2
    assert gs.persona_skill == pytest.approx(0.25)
    assert gs.skill_difference == pytest.approx(0.5)
    assert gs.cohort_interest == pytest.approx(0.75)  # (4/4 + 2/4) / 2
    assert gs.persona_interest == pytest.approx(0.75)
    assert gs.interest_difference == pytest.approx(0.0)
    assert (cm.heading, cm.cohort_skill, cm.persona_skill, cm.skill_difference) == (
        "CM",
        None,
        None,
        None,
    )
    assert [(c.item, c.cohort_share, c.persona_has) for c in compared.missing_basics] == [
        ("BA01", 0.5, True),
        ("BA02", 0.0, False),
        ("BA03", 0.0, False),
    ]
    assert [(c.item, c.cohort_share, c.persona_has) for c in compared.barriers] == [
        ("BL01", 0.5, False),
        ("BL02", 0.0, False),
        ("BL03", 0.0, False),
        ("BL04", 0.0, False),
        ("BL05", 0.0, False),
    ]


def test_an_empty_cohort_compared_with_a_persona_has_no_shares(flow: Flow) -> None:
    persona = persona_profile(flow, {"GS.skill": 2, "BA01.access": 1})
    compared = compare_with_persona(flow, cohort_summary(flow, []), persona)
    assert compared.count == 0
    assert compared.headings[0].persona_skill == pytest.approx(0.25)
    assert compared.headings[0].skill_difference is None
    assert compared.missing_basics[0].cohort_share is None
    assert compared.missing_basics[0].persona_has is True


# --- the command line --------------------------------------------------------------------------


@pytest.fixture
def config_path(tmp_path: Path, database_url: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(
        f'[database]\nurl = "{database_url}"\n[flow]\nlanguages = "en"\n', encoding="utf-8"
    )
    return path


def dibot(
    capsys: pytest.CaptureFixture[str], config_path: Path, *arguments: str
) -> tuple[int, str, str]:
    capsys.readouterr()
    status = main([*arguments, "--config", str(config_path)])
    said = capsys.readouterr()
    return status, said.out, said.err


def test_staff_load_the_illustrative_set_twice_and_list_it(
    capsys: pytest.CaptureFixture[str], config_path: Path, engine: sa.Engine
) -> None:
    loaded = dibot(capsys, config_path, "personas", "load", "--illustrative", "--by", "tester")
    assert loaded == (0, "loaded 8 personas: 8 new, 0 updated\n", "")
    again = dibot(capsys, config_path, "personas", "load", str(ILLUSTRATIVE_PERSONAS))
    assert again == (0, "loaded 8 personas: 0 new, 8 updated\n", "")
    with engine.connect() as conn:
        assert {persona.created_by for persona in all_personas(conn)} == {"tester"}
    status, out, err = dibot(capsys, config_path, "personas", "list")
    assert (status, err) == (0, "")
    lines = out.splitlines()
    assert len(lines) == 1 + 8
    assert lines[0].split() == ["slug", "name", "mode", "cohort", "priorities", "in", "the", "way"]
    offline = lines[1].split("  ")
    assert [cell.strip() for cell in offline if cell.strip()] == [
        "offline-no-interest",
        "Offline and not interested",
        "quick",
        "-",
        "none",
        "a device; internet access; skills or confidence; lack of interest",
    ]
    carer = [cell.strip() for cell in lines[8].split("  ") if cell.strip()]
    assert carer == [
        "carer-for-someone-else",
        "Carer using services for someone else",
        "quick",
        "-",
        "Shopping, banking and forms; Staying safe online; Solving problems",
        "-",
    ]


def test_listing_before_any_load(capsys: pytest.CaptureFixture[str], config_path: Path) -> None:
    assert dibot(capsys, config_path, "personas", "list") == (
        0,
        "no personas yet: `dibot personas load FILE` (or --illustrative) loads some\n",
        "",
    )


def test_a_bad_file_is_one_line_and_exit_2_and_nothing_is_stored(
    capsys: pytest.CaptureFixture[str], config_path: Path, tmp_path: Path, engine: sa.Engine
) -> None:
    path = persona_file(
        tmp_path,
        GOOD_PERSONA
        + GOOD_PERSONA.replace('"keen"', '"two"').replace('"GS.skill" = 2', '"GS.skill" = 9'),
    )
    assert dibot(capsys, config_path, "personas", "load", str(path)) == (
        2,
        "",
        f"dibot: {path}: persona 'two': answer 'GS.skill': 9 is not an option of the skill "
        "scale (1 to 5)\n",
    )
    missing = tmp_path / "nowhere.toml"
    assert dibot(capsys, config_path, "personas", "load", str(missing)) == (
        2,
        "",
        f"dibot: {missing}: cannot read it: No such file or directory\n",
    )
    no_cohort = persona_file(
        tmp_path, GOOD_PERSONA.replace('mode = "quick"', 'mode = "quick"\ncohort = "Nobody"')
    )
    assert dibot(capsys, config_path, "personas", "load", str(no_cohort)) == (
        2,
        "",
        f"dibot: {no_cohort}: persona 'keen': no cohort named 'Nobody'\n",
    )
    assert stored_rows(engine) == []
