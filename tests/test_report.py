"""The cohort report rendered as text, JSON and HTML: the same numbers in each (worked out by
hand below), words that go the way the numbers go, small groups withheld in every format,
nothing to compare said plainly, and HTML that escapes what it is given and loads nothing."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import replace

import jsonschema
import pytest

from flows.model import Flow
from impact.records import Person
from impact.render_html import render_body, render_html
from impact.render_json import FORMAT, SCHEMA, render_json, report_document
from impact.render_text import WIDTH, percent, points, render_text
from impact.report import CohortReport, report_on
from tests.impact_people import EVERY_BASIC, NO_BLOCKERS, T0, T1, assessment

WITHHELD = "fewer than 10 people: withheld"
COMPLEMENT = "withheld, so that a smaller group cannot be worked out from the totals"

# Ten people whose GS skill rose by exactly 1 (option 3 -> 4: score 2 -> 3) and two whose fell
# by 1 (score 2 -> 1). Gains: ten +1, two -1.
#   mean = (10 - 2) / 12 = 0.666667 -> "+0.67"
#   squared deviations: 10 * (1/3)^2 + 2 * (5/3)^2 = 10/9 + 50/9 = 6.666667
#   sd = sqrt(6.666667 / 11) = 0.778499; standard error = 0.778499 / sqrt(12) = 0.224733
#   t(0.975, 11) = 2.200985 (table), half width = 2.200985 * 0.224733 = 0.494635
#   interval 0.172032 to 1.161301 -> "+0.17 to +1.16"; JSON 0.172 and 1.1613
#   improved 10/12 = 83.3% -> "83%", worse 2/12 = 16.7% -> "17%"
ROSE_AND_FELL = "+0.67 (95% CI +0.17 to +1.16)"


def person(
    number: int,
    before: Mapping[str, int],
    after: Mapping[str, int] | None,
    initiatives: Sequence[str] = (),
) -> Person:
    taken = [assessment(2 * number, "baseline", {**EVERY_BASIC, **NO_BLOCKERS, **before})]
    if after is not None:
        taken.append(
            assessment(
                2 * number + 1, "checkin", {**EVERY_BASIC, **NO_BLOCKERS, **after}, 2 * number
            )
        )
    return Person(
        respondent_id=number,
        label=f"R{number:013d}",
        language="en",
        created_at=T0,
        enrolled_at=T0,
        consented=True,
        opted_out=False,
        unreachable=False,
        cohorts=("Spring drive",),
        initiatives=tuple(initiatives),
        assessments=tuple(taken),
    )


def gs(skill: int, interest: int = 4) -> dict[str, int]:
    """A quick check answering only Getting started (option numbers: score + 1)."""
    return {"GS.skill": skill, "GS.interest": interest}


def rose_and_fell(initiative: str = "Device loans") -> list[Person]:
    return [person(n, gs(3), gs(4), (initiative,)) for n in range(10)] + [
        person(n, gs(3), gs(2), (initiative,)) for n in range(10, 12)
    ]


def report(flow: Flow, people: Sequence[Person], **options: object) -> CohortReport:
    return report_on(
        flow,
        people,
        title=str(options.pop("title", "Spring drive")),
        description=str(options.pop("description", "Cohort Spring drive, initiative Device loans")),
        now=T1,
        **options,  # type: ignore[arg-type]
    )


def line_with(text: str, start: str) -> list[str]:
    """The words of the first line that starts (after its indent) with `start`, after it."""
    for line in text.splitlines():
        if line.strip().startswith(start):
            return line.strip()[len(start) :].split()
    raise AssertionError(f"no line starts with {start!r}")


def section(text: str, title: str) -> str:
    """From the line `title` to the next blank line."""
    start = text.index("\n  " + title) + 1
    end = text.find("\n\n", start)
    return text[start : end if end >= 0 else None]


# --- the words every format shares --------------------------------------------------------


def test_shares_are_whole_percentages_halves_up_and_gains_have_a_sign() -> None:
    assert [percent(s) for s in (0, 0.004, 0.005, 0.625, 0.8333, 1)] == [
        "0%",
        "0%",
        "1%",
        "63%",
        "83%",
        "100%",
    ]
    assert [points(v) for v in (0.849, -1, 0, -0.001, 1.2)] == [
        "+0.85",
        "-1.00",
        "0.00",
        "0.00",
        "+1.20",
    ]


# --- text ----------------------------------------------------------------------------------


def test_ten_who_rose_and_two_who_fell(flow: Flow) -> None:
    text = render_text(report(flow, rose_and_fell()))

    assert text.startswith(
        "Spring drive\n============\nCohort Spring drive, initiative Device loans\n"
    )
    assert "Generated 2027-06-02 10:00 UTC from questionnaire digital-inclusion" in text
    assert line_with(text, "All skills (skill)") == [
        "12",
        *ROSE_AND_FELL.split(),
        "83%",
        "17%",
        "improved",
    ]
    assert line_with(section(text, "Per heading: skill"), "Getting started") == [
        "12",
        *ROSE_AND_FELL.split(),
        "83%",
        "17%",
        "improved",
    ]
    # Nobody's interest changed: no spread, so the interval is the mean itself.
    assert line_with(text, "All skills (interest)") == [
        "12",
        "0.00",
        "(95%",
        "CI",
        "0.00",
        "to",
        "0.00)",
        "0%",
        "0%",
        "no",
        "change",
    ]
    assert "12 pairs compared: 12 quick with quick." in text
    # At baseline everyone was at level 2 ("willing to give it a go") with interest 3 (likely):
    # a skill share of 2/4 = 50%, interest 3/4 = 75%.
    levels = section(text, "Skills and interest per heading")
    assert line_with(levels, "Getting started") == ["skill", "12", "50%", "0", "0", "12", "0", "0"]
    assert line_with(levels, "interest") == ["12", "75%", "0", "0", "0", "12", "0"]
    assert line_with(levels, "Messages and calls") == [
        "skill",
        "0",
        "none",
        "0",
        "0",
        "0",
        "0",
        "0",
    ]
    # GS was everyone's priority (interest 3 x (4 - skill 2) = 6); ten became confident.
    assert line_with(section(text, "Most common priorities"), "Getting started") == ["12", "(100%)"]
    assert line_with(text, "A priority met (now confident)") == ["10", "(83%)", "10", "(83%)"]
    assert line_with(text, "Gained a basic (device, connection, place)") == [
        "0",
        "(0%)",
        "0",
        "(0%)",
    ]
    assert all(len(line) <= WIDTH for line in text.splitlines())


def test_skills_that_fell_read_as_worse_never_as_improvement(flow: Flow) -> None:
    fell = [person(n, gs(4), gs(3)) for n in range(12)]

    text = render_text(report(flow, fell))

    assert line_with(text, "All skills (skill)") == [
        "12",
        "-1.00",
        "(95%",
        "CI",
        "-1.00",
        "to",
        "-1.00)",
        "0%",
        "100%",
        "worse",
    ]
    assert "improved" not in text.lower()


def test_a_change_within_chance_is_not_called_an_improvement(flow: Flow) -> None:
    # Seven up by 1, five down by 1: mean 2/12 = +0.17, but the interval spans 0.
    mixed = [person(n, gs(3), gs(4)) for n in range(7)] + [
        person(n, gs(3), gs(2)) for n in range(7, 12)
    ]

    text = render_text(report(flow, mixed))

    words = line_with(text, "All skills (skill)")
    assert words[:2] == ["12", "+0.17"]
    assert words[-3:] == ["no", "clear", "change"]
    assert "improved" not in text.lower()


def test_a_group_of_nine_is_withheld(flow: Flow) -> None:
    nine = rose_and_fell()[:9]

    text = render_text(report(flow, nine))

    assert (
        "Fewer than 10 people have finished a first check: the picture at baseline is withheld."
        in " ".join(text.split())
    )
    assert line_with(text, "All skills (skill)") == WITHHELD.split()
    assert line_with(text, "Getting started") == WITHHELD.split()
    assert "9 pairs compared (how: fewer than 10 pairs: withheld)" in text
    assert line_with(text, "A priority met (now confident)") == ["withheld", "withheld"]
    assert "Device loans" in text
    assert line_with(text, "Device loans") == ["fewer", "than", "10"]
    assert "+1.00" not in text
    assert "83%" not in text
    assert "(100%)" not in text


def test_a_small_initiative_is_withheld_and_so_is_the_next_smallest(flow: Flow) -> None:
    """Nine in Classes (withheld), twelve in Device loans, fifteen in Library: everyone's
    figures less Library's would give away Classes' if Device loans were shown, so Device
    loans (the smallest of the others) is withheld too, and Library is shown."""
    people = [
        *rose_and_fell("Device loans"),
        *(person(n, gs(3), gs(5), ("Classes",)) for n in range(20, 29)),
        *(person(n, gs(2), gs(3), ("Library",)) for n in range(40, 55)),
    ]

    text = render_text(report(flow, people))

    initiatives = text[text.index("By initiative") :]
    assert line_with(initiatives, "Classes") == ["fewer", "than", "10"]
    assert line_with(initiatives, "Device loans") == ["12"]
    overall = section(initiatives, "All skills (skill)")
    assert line_with(overall, "Classes") == WITHHELD.split()
    assert line_with(overall, "Device loans") == COMPLEMENT.split()
    assert " ".join(line_with(overall, "Library")[:7]) == "15 +1.00 (95% CI +1.00 to +1.00)"
    assert "+2.00" not in text  # the nine in Classes each gained 2
    assert ROSE_AND_FELL not in text.split("By initiative")[1]
    changes = section(text, "Changes")
    # 10 rose to confident in Device loans and 9 in Classes: 19 of 36, the groups withheld.
    assert line_with(changes, "A priority met (now confident)") == [
        "19",
        "(53%)",
        "withheld",
        "withheld",
    ]
    page = render_html(report(flow, people))
    assert f"Classes: {WITHHELD}." in page  # the initiatives chart's description
    assert f"Device loans: {COMPLEMENT}." in page
    classes_rows = re.findall(
        r'<th scope="row" class="govuk-table__header">Classes</th>\s*(.*?)</tr>', page, re.S
    )
    assert len(classes_rows) == 4  # pairs; overall skill, interest; Getting started (all asked)
    assert classes_rows[0].strip() == (
        '<td class="govuk-table__cell govuk-table__cell--numeric">fewer than 10</td>'
    )
    for row in classes_rows[1:]:
        assert row.strip() == f'<td class="govuk-table__cell" colspan="5">{WITHHELD}</td>'


def test_pairs_are_counted_by_basis_and_items_reported(flow: Flow) -> None:
    quick = rose_and_fell()
    # Ten full assessments: banking online (TR04) from "cautious" (score 1) to "confident".
    full = [
        person(n, {"TR04.skill": 2, "TR04.interest": 5}, {"TR04.skill": 4, "TR04.interest": 5})
        for n in range(30, 40)
    ]
    mixed = [person(n, gs(3), {"GS01.skill": 4, "GS02.skill": 5}) for n in range(40, 42)]

    text = render_text(report(flow, [*quick, *full, *mixed]))

    assert (
        "24 pairs compared: 10 full with full, 12 quick with quick, 2 reduced to headings."
        in " ".join(text.split())
    )
    items = section(text, "Per item")
    assert line_with(items, "Banking online") == [
        "10",
        "+2.00",
        "(95%",
        "CI",
        "+2.00",
        "to",
        "+2.00)",
        "100%",
        "0%",
        "improved",
    ]
    assert "Getting started" not in items  # quick checks' headings are under "Per heading"
    assert line_with(section(text, "Outcome flags"), "Banking online") == [
        "10",
        "of",
        "10",
        "0",
        "10",
    ]
    assert line_with(section(text, "Outcome flags"), "Using email") == [
        "fewer",
        "than",
        "10",
        "known:",
        "withheld",
    ]


def test_with_nobody_checked_in_it_says_what_to_do(flow: Flow) -> None:
    waiting = [person(n, gs(3), None) for n in range(12)]
    found = replace(report(flow, waiting), cohorts=("Spring drive",))

    text = render_text(found)
    page = render_html(found)

    said = " ".join(text.split())
    assert (
        "Nothing to compare yet: nobody here has finished a check-in after a first check." in said
    )
    assert "`dibot checkin --cohort 'Spring drive' --after 3m`" in said
    assert "on the dashboard's Check-ins page" in said
    assert "Nothing to compare yet" in page
    assert "dibot checkin --cohort &#39;Spring drive&#39; --after 3m" in page
    assert report_document(found)["impact"]["pairs"] == 0


def test_check_ins_that_compared_no_skill_say_so_and_still_count_changes(flow: Flow) -> None:
    skipped = [person(n, gs(3), {"CM.skill": 3}) for n in range(12)]

    said = " ".join(render_text(report(flow, skipped)).split())

    assert words_after_start(said, "Checked in later") == "12"
    assert "12 pairs compared: 12 with no skill answered both times" in said
    assert "No skill gains to show: no check-in so far answered a skill" in said
    assert "Mean gain" not in said
    page = " ".join(render_html(report(flow, skipped)).split())
    assert "No skill gains to show" in page
    assert "Mean skill gain" not in page


def words_after_start(said: str, start: str) -> str:
    return said[said.index(start) + len(start) :].split()[0]


def test_every_format_shows_the_same_numbers(flow: Flow) -> None:
    people = [
        *rose_and_fell("Device loans"),
        *(person(n, gs(5), gs(2), ("Classes",)) for n in range(20, 32)),
        *(
            person(n, {"TR04.skill": 2, "TR04.interest": 5}, {"TR04.skill": 3 + n % 2})
            for n in range(40, 55)
        ),
    ]
    found = report(flow, people)
    text, page = render_text(found), render_html(found)
    document = report_document(found)

    rows = [*found.impact.overall, *found.impact.headings, *found.impact.items]
    rows += [r for i in found.impact.initiatives for r in (*i.overall, *i.headings)]
    assert len(rows) > 10
    for row in rows:
        estimate = row.estimate
        assert estimate.mean is not None
        assert estimate.ci_low is not None
        assert estimate.ci_high is not None
        shown = (
            f"{points(estimate.mean)} (95% CI {points(estimate.ci_low)} to "
            f"{points(estimate.ci_high)})"
        )
        assert shown in text
        assert shown in page
    means = [
        row["estimate"]["mean"]
        for row in (*document["impact"]["overall"], *document["impact"]["headings"])
    ]
    assert means == [
        round(row.estimate.mean, 4)
        for row in (*found.impact.overall, *found.impact.headings)
        if row.estimate.mean is not None
    ]
    # Classes fell by 3 (score 4 -> 1) every time: worse, in each format.
    assert (
        line_with(section(text[text.index("By initiative") :], "All skills (skill)"), "Classes")[-1]
        == "worse"
    )
    assert "Classes: -3.00 (95% CI -3.00 to -3.00), worse." in page


def test_long_names_stay_within_the_width(flow: Flow) -> None:
    name = "A very long initiative name that a council might well give its work " * 2
    found = report(flow, rose_and_fell(name), title="T" * 150, description="Cohort " + "word " * 60)

    text = render_text(found)

    assert all(len(line) <= WIDTH for line in text.splitlines())


# --- JSON ----------------------------------------------------------------------------------


def test_json_carries_the_same_numbers(flow: Flow) -> None:
    document = json.loads(render_json(report(flow, rose_and_fell())))

    jsonschema.validate(document, SCHEMA)
    assert document["format"] == FORMAT == "dibot-report/1"
    assert document["generated_at"] == "2027-06-02T10:00:00Z"
    assert document["min_group"] == 10
    skill = document["impact"]["overall"][0]
    assert (skill["id"], skill["aspect"]) == ("overall", "skill")
    assert skill["estimate"] == {
        "n": 12,
        "mean": 0.6667,
        "ci_low": 0.172,
        "ci_high": 1.1613,
        "improved": 0.8333,
        "improved_ci": skill["estimate"]["improved_ci"],
        "worse": 0.1667,
        "worse_ci": skill["estimate"]["worse_ci"],
        "withheld": False,
    }
    low, high = skill["estimate"]["improved_ci"]
    assert low < 0.8333 < high
    gs_levels = document["picture"]["headings"][0]
    assert (gs_levels["heading"], gs_levels["skill"], gs_levels["skill_levels"]) == (
        "GS",
        0.5,
        [0, 0, 12, 0, 0],
    )
    met = next(c for c in document["impact"]["changes"] if c["id"] == "priorities_met")
    assert met == {
        "id": "priorities_met",
        "name": "A priority met (now confident)",
        "count": 10,
        "share": 0.8333,
        "withheld": False,
    }
    (loans,) = document["impact"]["initiatives"]
    assert (loans["initiative"], loans["people"], loans["withheld"]) == ("Device loans", 12, False)


def test_json_nulls_what_is_withheld(flow: Flow) -> None:
    document = json.loads(render_json(report(flow, rose_and_fell()[:9])))

    jsonschema.validate(document, SCHEMA)
    assert document["picture"]["withheld"] is True
    skill = document["impact"]["overall"][0]["estimate"]
    assert skill["withheld"] is True
    assert {key: value for key, value in skill.items() if key != "withheld"} == dict.fromkeys(
        ("n", "mean", "ci_low", "ci_high", "improved", "improved_ci", "worse", "worse_ci")
    )
    for count in document["impact"]["changes"]:
        assert (count["count"], count["share"], count["withheld"]) == (None, None, True)
    (loans,) = document["impact"]["initiatives"]
    assert (loans["people"], loans["withheld"]) == (None, True)
    outcome = document["impact"]["outcomes"][0]
    assert (outcome["newly_able"], outcome["withheld"]) == (None, True)


# --- HTML ----------------------------------------------------------------------------------


def test_html_shows_the_same_numbers_with_every_chart_followed_by_its_table(
    flow: Flow,
) -> None:
    page = render_html(report(flow, rose_and_fell()))

    assert page.startswith("<!DOCTYPE html>")
    assert '<html lang="en">' in page
    assert ROSE_AND_FELL in page
    assert ">83%<" in page
    assert ">17%<" in page
    assert ">improved<" in page
    charts = re.findall(r"<svg.*?</svg>", page, re.S)
    assert len(charts) == 4  # skill levels, interest levels, gain per heading, per initiative
    for chart in charts:
        assert 'role="img"' in chart
        assert re.search(r'aria-labelledby="([\w-]+)-title \1-desc"', chart)
        after = page[page.index(chart) + len(chart) :]
        assert re.match(r"\s*</figure>\s*<table class=\"govuk-table\"", after)
    gain_chart = next(c for c in charts if "Mean skill gain per heading" in c)
    assert f"Getting started: {ROSE_AND_FELL}, improved." in gain_chart
    assert ">+0.67</text>" in gain_chart
    assert 'class="govuk-table__cell govuk-table__cell--numeric">12 (100%)<' in page


def test_html_withholds_a_group_of_nine(flow: Flow) -> None:
    page = render_html(report(flow, rose_and_fell()[:9]))

    assert f'colspan="5">{WITHHELD}</td>' in page
    assert "Mean skill gain" not in page  # a chart of nothing but withheld rows is left out
    assert "the picture at baseline is withheld" in page
    assert "+1.00" not in page
    assert "83%" not in page


def test_html_is_escaped_self_contained_and_script_free(flow: Flow) -> None:
    found = report(
        flow,
        rose_and_fell("<script>alert(2)</script>"),
        title="<script>alert(1)</script>",
        description='Cohort "<b>bold</b>" & co',
    )

    for html in (render_html(found), render_body(found)):
        assert "<script" not in html
        assert "<b>" not in html
        assert "&lt;script&gt;alert(2)&lt;/script&gt;" in html
        assert "&lt;b&gt;bold&lt;/b&gt;" in html
        assert not re.search(r"""(src|href)=|@import|url\((?!#)""", html)
        assert re.findall(r"https?://[^\"' ]+", html) == ["http://www.w3.org/2000/svg"] * 4
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in render_html(found)


def test_the_partial_uses_govuk_frontend_classes(flow: Flow) -> None:
    body = render_body(report(flow, rose_and_fell()))

    assert body.lstrip().startswith('<div class="dibot-report">')
    assert "<html" not in body
    assert "<style" not in body
    for name in ("govuk-summary-list", "govuk-heading-l", "govuk-heading-m", "govuk-table"):
        assert f'class="{name}' in body


@pytest.mark.parametrize("count", [0, 1, 10])
def test_every_format_renders_any_size_of_group(flow: Flow, count: int) -> None:
    found = report(flow, rose_and_fell()[:count])

    assert render_text(found).endswith("\n")
    jsonschema.validate(json.loads(render_json(found)), SCHEMA)
    assert render_html(found).rstrip().endswith("</html>")
