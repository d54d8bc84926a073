"""Scoring: profiles, ranked priorities, the formula, gains and cohorts, on the shipped flow."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from flows.loader import SHIPPED, FlowError, load_flow
from flows.model import Flow
from scoring import (
    FormulaError,
    UnitScore,
    cohort_summary,
    compile_formula,
    gains,
    priorities,
    profile,
)

# Option numbers (what the respondent types) on the shipped 0-4 scales: option n scores n - 1.
NO_ABILITY, WITH_HELP, WOULD_TRY, CONFIDENT, COULD_TEACH = 1, 2, 3, 4, 5
NOT_INTERESTED, UNLIKELY, MAYBE, LIKELY, DEFINITELY = 1, 2, 3, 4, 5
DO_NOT_HAVE, ALWAYS = 1, 5
STOPS_ME, BIG_PROBLEMS, SOME_PROBLEMS = 1, 2, 3


@pytest.fixture(scope="module")
def flow() -> Flow:
    return load_flow(council={"signposting": "For free help call 0300 000 0000."})


def test_the_questionnaires_example_is_a_priority_of_12(flow: Flow) -> None:
    answers = {"TR03.skill": WITH_HELP, "TR03.interest": DEFINITELY}

    found = priorities(flow, profile(flow, answers))

    assert [(p.unit, p.heading, p.value, p.skill, p.interest) for p in found] == [
        ("TR03", "TR", 12, 1, 4)
    ]


def test_high_interest_no_skill_ranks_above_medium_interest_medium_skill(flow: Flow) -> None:
    answers = {
        "GS01.skill": WOULD_TRY,  # 2 -> (4 - 2) * 2 = 4, in the first heading
        "GS01.interest": MAYBE,
        "SS01.skill": NO_ABILITY,  # 0 -> (4 - 0) * 4 = 16, in a later heading
        "SS01.interest": DEFINITELY,
    }

    found = priorities(flow, profile(flow, answers))

    assert [(p.unit, p.value) for p in found] == [("SS01", 16), ("GS01", 4)]


def test_ties_go_to_the_higher_interest_then_the_earlier_item(flow: Flow) -> None:
    answers = {
        "GS01.skill": NO_ABILITY,  # (4 - 0) * 3 = 12, interest 3
        "GS01.interest": LIKELY,
        "SS01.skill": WITH_HELP,  # (4 - 1) * 4 = 12, interest 4: first
        "SS01.interest": DEFINITELY,
    }

    found = priorities(flow, profile(flow, answers))

    assert [(p.unit, p.value) for p in found] == [("SS01", 12), ("GS01", 12)]


def test_equal_ties_go_to_the_earlier_heading_then_the_earlier_item(flow: Flow) -> None:
    tied = ("SS01", "TR03", "GS02", "TR01", "GS01")
    answers: dict[str, int] = {}
    for unit in tied:
        answers[f"{unit}.skill"] = WITH_HELP  # 1
        answers[f"{unit}.interest"] = MAYBE  # 2: (4 - 1) * 2 = 6 for every one

    found = priorities(flow, profile(flow, answers))

    assert [p.unit for p in found] == ["GS01", "GS02", "TR01", "TR03", "SS01"]
    assert {p.value for p in found} == {6}


def test_only_values_at_least_the_minimum_count(flow: Flow) -> None:
    assert flow.priority.min_priority == 4
    answers = {
        "GS01.skill": WOULD_TRY,  # 2: (4 - 2) * 2 = 4, kept
        "GS01.interest": MAYBE,
        "GS02.skill": WOULD_TRY,  # 2: (4 - 2) * 1 = 2, dropped
        "GS02.interest": UNLIKELY,
        "GS03.skill": NO_ABILITY,  # 0: (4 - 0) * 0 = 0, dropped
        "GS03.interest": NOT_INTERESTED,
    }

    assert [p.unit for p in priorities(flow, profile(flow, answers))] == ["GS01"]


def test_a_confident_skill_is_never_a_priority_however_keen(flow: Flow) -> None:
    """The formula alone gives "Confidently" and "Definitely" 4, the minimum: the rule's
    skill limit keeps the quick check (which asks interest always) agreeing with the full
    assessment (which asks it only where skill is low)."""
    assert flow.priority.skill_at_most == 2
    for quick_or_full in ("GS", "GS01"):
        answers = {f"{quick_or_full}.skill": CONFIDENT, f"{quick_or_full}.interest": DEFINITELY}
        assert priorities(flow, profile(flow, answers)) == ()


def test_no_interest_in_any_low_skill_is_the_lack_of_interest_barrier(flow: Flow) -> None:
    uninterested = {"GS01.skill": NO_ABILITY, "GS01.interest": NOT_INTERESTED}
    uninterested |= {"TR03.skill": WITH_HELP, "TR03.interest": UNLIKELY}
    uninterested |= {"SS01.skill": CONFIDENT}  # confident: its interest is not asked
    keen_once = {**uninterested, "HI01.skill": NO_ABILITY, "HI01.interest": MAYBE}

    assert profile(flow, uninterested).barriers == ("BL04",)
    assert profile(flow, keen_once).barriers == ()
    assert profile(flow, {"GS01.skill": NO_ABILITY}).barriers == ()  # interest not asked


def test_unasked_interest_counts_as_zero_and_a_skipped_skill_is_never_a_priority(
    flow: Flow,
) -> None:
    answers = {
        "GS01.skill": NO_ABILITY,  # interest not asked: 4 * 0 = 0
        "GS02.interest": DEFINITELY,  # skill skipped
    }

    mine = profile(flow, answers)

    assert priorities(flow, mine) == ()
    assert mine.unit("GS01") == UnitScore("GS01", "GS", skill=0, interest=None)
    assert mine.unit("GS02") == UnitScore("GS02", "GS", skill=None, interest=4)


def test_heading_shares_come_from_items_else_from_the_quick_check(flow: Flow) -> None:
    answers = {
        "GS01.skill": WOULD_TRY,  # 2
        "GS02.skill": COULD_TEACH,  # 4
        "GS01.interest": DEFINITELY,  # 4
        "GS.skill": NO_ABILITY,  # ignored for GS: its items were answered
        "CM.skill": WITH_HELP,  # 1: CM comes from its quick-check answer
    }

    mine = profile(flow, answers)

    assert mine.heading("GS").skill == pytest.approx(6 / 8)
    assert mine.heading("GS").interest == pytest.approx(1.0)
    assert mine.heading("CM").skill == pytest.approx(1 / 4)
    assert mine.heading("CM").interest is None
    assert mine.heading("TR").skill is None
    assert [u.id for u in mine.units] == ["GS", "GS01", "GS02", "CM"]


def test_basics_index_missing_basics_and_barriers(flow: Flow) -> None:
    answers = {
        "BA02.access": ALWAYS,  # 4
        "BA01.access": DO_NOT_HAVE,  # 0
        "BL05.blocker": STOPS_ME,  # 0: barrier
        "BL01.blocker": BIG_PROBLEMS,  # 1: barrier
        "BL02.blocker": SOME_PROBLEMS,  # 2: not a barrier
    }

    mine = profile(flow, answers)

    assert mine.basics_index == pytest.approx(4 / 8)
    assert mine.missing_basics == ("BA01",)
    assert mine.barriers == ("BL01", "BL05")
    assert dict(mine.blockers) == {"BL01": 1, "BL02": 2, "BL05": 0}
    assert profile(flow, {}).basics_index is None


def test_unknown_keys_and_numbers_are_refused_by_name(flow: Flow) -> None:
    with pytest.raises(ValueError, match=r"'GS99\.skill'"):
        profile(flow, {"GS99.skill": 1})
    with pytest.raises(ValueError, match=r"'BA01\.skill'"):
        profile(flow, {"BA01.skill": 1})
    with pytest.raises(ValueError, match=r"'GS01\.skill' is 6"):
        profile(flow, {"GS01.skill": 6})


def test_gains_compare_only_what_both_assessments_answered(flow: Flow) -> None:
    baseline = {
        "GS01.skill": NO_ABILITY,  # 0 -> 3
        "GS02.skill": WITH_HELP,  # 1 -> 1
        "CM01.skill": WOULD_TRY,  # 2 -> 4
        "TR03.skill": NO_ABILITY,  # not re-asked
        "HI.skill": WITH_HELP,  # quick check: 1 -> 3
    }
    followup = {
        "GS01.skill": CONFIDENT,
        "GS02.skill": WITH_HELP,
        "CM01.skill": COULD_TEACH,
        "HI01.skill": CONFIDENT,  # not asked at baseline
        "HI.skill": CONFIDENT,
    }

    result = gains(flow, baseline, followup)

    assert [(u.unit, u.gain) for u in result.units] == [
        ("GS01", 3),
        ("GS02", 0),
        ("CM01", 2),
        ("HI", 2),
    ]
    by_heading = {h.heading: (h.gain, h.compared) for h in result.headings}
    assert by_heading["GS"] == (1.5, 2)
    assert by_heading["CM"] == (2, 1)
    assert by_heading["HI"] == (2, 1)
    assert by_heading["TR"] == (None, 0)
    assert result.overall == 7 / 4
    assert gains(flow, {}, followup).overall is None


def test_cohort_summary_counts_barriers_basics_and_top_priorities(flow: Flow) -> None:
    first = profile(
        flow,
        {
            "BA01.access": DO_NOT_HAVE,
            "BL01.blocker": STOPS_ME,
            "GS01.skill": NO_ABILITY,  # 16
            "GS01.interest": DEFINITELY,
            "TR03.skill": WITH_HELP,  # 12
            "TR03.interest": DEFINITELY,
        },
    )
    second = profile(
        flow,
        {
            "BL01.blocker": BIG_PROBLEMS,
            "BL03.blocker": STOPS_ME,
            "TR03.skill": NO_ABILITY,  # 16
            "TR03.interest": DEFINITELY,
            "GS01.skill": COULD_TEACH,  # 0
        },
    )
    third = profile(flow, {"BA01.access": ALWAYS})

    summary = cohort_summary(flow, [first, second, third])

    assert summary.count == 3
    assert dict(summary.missing_basics) == {"BA01": 1, "BA02": 0, "BA03": 0}
    assert dict(summary.barriers) == {"BL01": 2, "BL02": 0, "BL03": 1, "BL04": 0, "BL05": 0}
    assert list(summary.top_priorities.items()) == [("TR03", 2), ("GS01", 1)]
    means = {h.heading: h for h in summary.headings}
    assert means["GS"].skill == pytest.approx((0 / 4 + 4 / 4) / 2)
    assert means["GS"].interest == pytest.approx(1.0)
    assert means["GS"].answered == 2
    assert means["TR"].skill == pytest.approx((1 / 4 + 0 / 4) / 2)
    assert means["AD"].skill is None


def test_the_shipped_formula_evaluates_as_written(flow: Flow) -> None:
    formula = compile_formula(flow.priority.formula)

    assert formula(skill=1, interest=4, maximum=4) == 12
    assert compile_formula("(interest - skill) / 2 + -1")(skill=1, interest=4, maximum=4) == 0.5
    assert compile_formula(flow.priority.formula) is formula


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("__import__('os')", "calls are not allowed"),
        ("skill.real", "attribute access is not allowed"),
        ("abs(skill)", "calls are not allowed"),
        ("interest * cost", "unknown name 'cost'"),
        ("skill ** 2", "operator Pow is not allowed"),
        ("skill * 1.5", "whole-number literals"),
        ("interest if skill else 0", "IfExp is not allowed"),
        ("skill < 2", "Compare is not allowed"),
        ("[skill]", "List is not allowed"),
        ("skill +", "not an expression"),
        ("skill; import os", "not an expression"),
    ],
)
def test_the_formula_evaluator_refuses_anything_but_arithmetic(text: str, problem: str) -> None:
    with pytest.raises(FormulaError, match="priority formula") as refused:
        compile_formula(text)

    assert problem in str(refused.value)
    assert text[:10] in str(refused.value)


def test_division_by_zero_is_a_formula_error_naming_the_formula() -> None:
    with pytest.raises(FormulaError, match=r"'interest / skill' divides by zero"):
        compile_formula("interest / skill")(skill=0, interest=4, maximum=4)


def test_a_flow_with_an_unsafe_formula_fails_at_load(tmp_path: Path) -> None:
    directory = tmp_path / "flow"
    shutil.copytree(SHIPPED, directory)
    flow_toml = directory / "flow.toml"
    text = flow_toml.read_text()
    flow_toml.write_text(
        text.replace('formula = "interest * (max - skill)"', "formula = \"__import__('os')\"")
    )

    with pytest.raises(FlowError, match=r"flow\.toml: priority\.formula: .*calls are not allowed"):
        load_flow(directory)
