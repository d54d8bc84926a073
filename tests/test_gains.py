"""Gains across the whole model: skill and interest per unit and heading, basics, blockers,
barriers and priorities, paired only on what both assessments answered, on the shipped flow.

Option n of every shipped scale scores n - 1; the expected values below are worked by hand."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from flows.loader import load_flow
from flows.model import Flow
from impact.records import AnswerRow, AssessmentRow
from scoring import HeadingGain, gains, priorities, profile

NO_ABILITY, WITH_HELP, WOULD_TRY, CONFIDENT, COULD_TEACH = 1, 2, 3, 4, 5
NOT_INTERESTED, UNLIKELY, MAYBE, LIKELY, DEFINITELY = 1, 2, 3, 4, 5
DO_NOT_HAVE, OCCASIONALLY, SOMETIMES, USUALLY, ALWAYS = 1, 2, 3, 4, 5
STOPS_ME, BIG_PROBLEMS, SOME_PROBLEMS, MINOR_PROBLEMS, NO_PROBLEMS = 1, 2, 3, 4, 5


@pytest.fixture(scope="module")
def flow() -> Flow:
    return load_flow(languages=["en"])


def test_full_with_full_pairs_items_and_counts_a_priority_met(flow: Flow) -> None:
    baseline = {
        "GS01.skill": WITH_HELP,  # 1, interest 4: priority 4 * (4 - 1) = 12
        "GS01.interest": DEFINITELY,
        "CM01.skill": NO_ABILITY,  # 0, interest 3: priority 12
        "CM01.interest": LIKELY,
        "TR04.skill": CONFIDENT,  # 3: confident, interest not asked, no priority
        "GS02.skill": NO_ABILITY,  # not re-asked at the check-in
        "HI01.skill": WOULD_TRY,  # skipped at the check-in
        "HI01.interest": MAYBE,
    }
    followup = {
        "GS01.skill": CONFIDENT,  # 1 -> 3: +2, confident now: priority met
        "CM01.skill": WOULD_TRY,  # 0 -> 2: +2, interest 3 -> 4: +1; 4 * 2 = 8 still a priority
        "CM01.interest": DEFINITELY,
        "TR04.skill": WITH_HELP,  # 3 -> 1: -2, interest 3: 3 * 3 = 9, a new priority
        "TR04.interest": LIKELY,
        "HI01.interest": LIKELY,  # its skill skipped: nothing of HI01 pairs but its interest
        "SS01.skill": NO_ABILITY,  # not asked at baseline
        "SS01.interest": DEFINITELY,
    }

    result = gains(flow, baseline, followup)

    assert result.basis == "full"
    assert [(u.unit, u.heading, u.baseline, u.followup, u.gain) for u in result.units] == [
        ("GS01", "GS", 1, 3, 2),
        ("CM01", "CM", 0, 2, 2),
        ("TR04", "TR", 3, 1, -2),
    ]
    assert [(u.unit, u.gain) for u in result.interests] == [("CM01", 1), ("HI01", 1)]
    assert result.overall == pytest.approx(2 / 3)
    by_heading = {
        h.heading: (h.gain, h.compared, h.interest, h.interest_compared) for h in result.headings
    }
    assert by_heading == {
        "GS": (2, 1, None, 0),
        "CM": (2, 1, 1, 1),
        "HI": (None, 0, 1, 1),
        "TR": (-2, 1, None, 0),
        "PS": (None, 0, None, 0),
        "SS": (None, 0, None, 0),
        "AD": (None, 0, None, 0),
    }
    assert result.priorities_met == ("GS01",)
    assert result.priorities_new == ("TR04",)


def test_quick_with_quick_pairs_headings(flow: Flow) -> None:
    baseline = {
        "GS.skill": WITH_HELP,  # 1, interest 3: priority 9
        "GS.interest": LIKELY,
        "TR.skill": NO_ABILITY,  # 0, interest 4: priority 16
        "TR.interest": DEFINITELY,
        "SS.skill": CONFIDENT,  # not asked again
        "SS.interest": MAYBE,
    }
    followup = {
        "GS.skill": CONFIDENT,  # 1 -> 3: met
        "GS.interest": LIKELY,  # 3 -> 3
        "TR.skill": WITH_HELP,  # 0 -> 1, still a priority (4 * 3 = 12)
        "TR.interest": DEFINITELY,
        "AD.skill": NO_ABILITY,  # only now
        "AD.interest": DEFINITELY,
    }

    result = gains(flow, baseline, followup)

    assert result.basis == "quick"
    assert [(u.unit, u.gain) for u in result.units] == [("GS", 2), ("TR", 1)]
    assert [(u.unit, u.gain) for u in result.interests] == [("GS", 0), ("TR", 0)]
    assert result.overall == 1.5
    assert result.priorities_met == ("GS",)
    assert result.priorities_new == ()


def test_quick_with_full_reduces_both_to_headings(flow: Flow) -> None:
    quick = {
        "GS.skill": WITH_HELP,  # 1, interest 4: priority 12
        "GS.interest": DEFINITELY,
        "CM.skill": WOULD_TRY,  # not in the full assessment
        "CM.interest": MAYBE,
        "TR.skill": NO_ABILITY,  # 0, interest 3: priority 12
        "TR.interest": LIKELY,
        "PS.skill": CONFIDENT,  # 3, no priority
    }
    full = {
        # GS: skill (3 + 4 + 2) / 3 = 3, interest 3 (GS03's only): confident
        "GS01.skill": CONFIDENT,
        "GS02.skill": COULD_TEACH,
        "GS03.skill": WOULD_TRY,
        "GS03.interest": LIKELY,
        # TR: skill (0 + 2) / 2 = 1, interest (4 + 4) / 2 = 4: priority 4 * 3 = 12
        "TR01.skill": NO_ABILITY,
        "TR01.interest": DEFINITELY,
        "TR02.skill": WOULD_TRY,
        "TR02.interest": DEFINITELY,
        # PS: skill (1 + 2 + 2) / 3 = 5/3, interest (3 + 3 + 4) / 3 = 10/3:
        # priority 10/3 * (4 - 5/3) = 70/9, about 7.8
        "PS01.skill": WITH_HELP,
        "PS01.interest": LIKELY,
        "PS02.skill": WOULD_TRY,
        "PS02.interest": LIKELY,
        "PS03.skill": WOULD_TRY,
        "PS03.interest": DEFINITELY,
        "HI01.skill": CONFIDENT,  # no HI in the quick check
    }

    result = gains(flow, quick, full)

    assert result.basis == "headings"
    assert [(u.unit, u.heading) for u in result.units] == [
        ("GS", "GS"),
        ("TR", "TR"),
        ("PS", "PS"),
    ]
    assert [u.baseline for u in result.units] == [1, 0, 3]
    assert [u.followup for u in result.units] == pytest.approx([3, 1, 5 / 3])
    assert [u.gain for u in result.units] == pytest.approx([2, 1, -4 / 3])
    assert [(u.unit, u.baseline) for u in result.interests] == [("GS", 4), ("TR", 3)]
    assert [u.gain for u in result.interests] == pytest.approx([-1, 1])
    assert result.overall == pytest.approx((2 + 1 - 4 / 3) / 3)
    gs = result.headings[0]
    assert (gs.heading, gs.gain, gs.compared, gs.interest, gs.interest_compared) == (
        "GS",
        2,
        1,
        -1,
        1,
    )
    assert result.priorities_met == ("GS",)
    assert result.priorities_new == ("PS",)

    # The other way round (a full baseline, a quick check-in) is the same basis, reversed.
    back = gains(flow, full, quick)
    assert back.basis == "headings"
    assert [u.gain for u in back.units] == pytest.approx([-2, -1, 4 / 3])
    assert back.priorities_met == ("PS",)  # 5/3 then, confident at 3 now
    assert back.priorities_new == ("GS",)


def test_basics_gained_and_lost_blockers_eased_and_worse(flow: Flow) -> None:
    baseline = {
        "BA01.access": DO_NOT_HAVE,  # 0: missing -> 4: gained
        "BA02.access": ALWAYS,  # 4 -> 0: lost
        "BA03.access": SOMETIMES,  # not answered again
        "BL01.blocker": STOPS_ME,  # 0 -> 3: eased, a barrier cleared
        "BL02.blocker": MINOR_PROBLEMS,  # 3 -> 1: worse, a new barrier
        "BL03.blocker": STOPS_ME,  # skipped at the check-in: not cleared, as not known
        "BL05.blocker": SOME_PROBLEMS,  # 2 -> 2
    }
    followup = {
        "BA01.access": ALWAYS,
        "BA02.access": DO_NOT_HAVE,
        "BL01.blocker": MINOR_PROBLEMS,
        "BL02.blocker": BIG_PROBLEMS,
        "BL04.blocker": STOPS_ME,  # not asked at baseline: not new, as not known then
        "BL05.blocker": SOME_PROBLEMS,
    }

    result = gains(flow, baseline, followup)

    assert [(c.item, c.baseline, c.followup, c.gain) for c in result.basics] == [
        ("BA01", 0, 4, 4),
        ("BA02", 4, 0, -4),
    ]
    assert result.basics_gained == ("BA01",)
    assert result.basics_lost == ("BA02",)
    assert [(c.item, c.gain) for c in result.blockers] == [
        ("BL01", 3),
        ("BL02", -2),
        ("BL05", 0),
    ]
    assert result.blockers_eased == ("BL01",)
    assert result.blockers_worse == ("BL02",)
    assert result.barriers_cleared == ("BL01",)
    assert result.barriers_new == ("BL02",)
    # No skill was answered either time.
    assert result.basis == "none"
    assert result.units == ()
    assert result.overall is None


def test_lack_of_interest_clears_only_when_known_at_the_check_in(flow: Flow) -> None:
    # No skill and no interest at all: lack of interest (BL04) is a barrier.
    baseline = {"GS01.skill": NO_ABILITY, "GS01.interest": NOT_INTERESTED}

    keen = gains(flow, baseline, {"GS01.skill": NO_ABILITY, "GS01.interest": LIKELY})
    confident = gains(flow, baseline, {"GS01.skill": CONFIDENT})  # interest not asked

    assert keen.barriers_cleared == ("BL04",)
    # Confident now, so interest was not asked and BL04 not answered: nobody knows.
    assert confident.barriers_cleared == ()
    # It was no priority (no interest), so confidence now meets no priority.
    assert confident.priorities_met == ()
    assert keen.priorities_new == ("GS01",)


def test_skipped_answers_are_not_paired(flow: Flow) -> None:
    def assessment(*answers: tuple[str, int | None]) -> AssessmentRow:
        at = datetime(2027, 3, 1, tzinfo=UTC)
        return AssessmentRow(
            id=1,
            kind="baseline",
            mode="full",
            flow_id=flow.id,
            flow_version=flow.version,
            baseline_id=None,
            started_at=at,
            completed_at=at,
            abandoned_at=None,
            skills_basis=None,
            assisted=False,
            answers=tuple(
                AnswerRow(key, key.split(".")[0], key.split(".")[1], option, None, at, "sms")
                for key, option in answers
            ),
        )

    baseline = assessment(("GS01.skill", WITH_HELP), ("GS02.skill", NO_ABILITY))
    followup = assessment(("GS01.skill", None), ("GS02.skill", WOULD_TRY))

    result = gains(flow, baseline.options(), followup.options())

    assert [(u.unit, u.gain) for u in result.units] == [("GS02", 2)]
    assert result.headings[0].compared == 1


def test_an_empty_followup_compares_nothing(flow: Flow) -> None:
    baseline = {
        "BA01.access": ALWAYS,
        "BL01.blocker": STOPS_ME,
        "GS01.skill": WITH_HELP,
        "GS01.interest": DEFINITELY,
    }

    result = gains(flow, baseline, {})

    assert result.basis == "none"
    assert result.units == ()
    assert result.interests == ()
    assert result.overall is None
    assert all(h.gain is None and h.compared == 0 for h in result.headings)
    assert len(result.headings) == 7
    assert (result.basics, result.blockers) == ((), ())
    assert (result.barriers_cleared, result.barriers_new) == ((), ())
    assert (result.priorities_met, result.priorities_new) == ((), ())
    assert gains(flow, {}, {}).basis == "none"


def test_full_assessments_with_no_item_in_common_have_no_basis(flow: Flow) -> None:
    result = gains(flow, {"GS01.skill": WITH_HELP}, {"CM01.skill": WITH_HELP})

    assert result.basis == "none"
    assert result.units == ()


def test_someone_whose_skills_all_fell_met_no_priority(flow: Flow) -> None:
    baseline = {
        "GS01.skill": CONFIDENT,  # 3 -> 1
        "CM01.skill": COULD_TEACH,  # 4 -> 2
        "TR04.skill": CONFIDENT,  # 3 -> 0
    }
    followup = {
        "GS01.skill": WITH_HELP,
        "GS01.interest": DEFINITELY,  # 4 * 3 = 12
        "CM01.skill": WOULD_TRY,
        "CM01.interest": LIKELY,  # 3 * 2 = 6
        "TR04.skill": NO_ABILITY,
        "TR04.interest": LIKELY,  # 3 * 4 = 12
    }

    result = gains(flow, baseline, followup)

    assert [u.gain for u in result.units] == [-2, -2, -3]
    assert result.overall == pytest.approx(-7 / 3)
    assert [h.gain for h in result.headings if h.compared] == [-2, -2, -3]
    assert result.priorities_met == ()
    assert result.priorities_new == ("GS01", "CM01", "TR04")


def test_a_heading_gain_built_the_old_way_has_no_interest() -> None:
    old = HeadingGain("GS", 1.5, 2)

    assert (old.interest, old.interest_compared) == (None, 0)


@pytest.mark.parametrize("shift", range(5))
def test_priorities_met_are_all_of_scorings_priorities_once_confident(
    flow: Flow, shift: int
) -> None:
    # Every skill and interest option in turn across the items and headings, then a check-in
    # confident at everything: each baseline priority, ranked or not, is met.
    units = [item.id for item in flow.items if item.section == "skills"]
    units += [heading.id for heading in flow.headings]
    baseline: dict[str, int] = {}
    for index, unit in enumerate(units):
        baseline[f"{unit}.skill"] = 1 + (index + shift) % 5
        baseline[f"{unit}.interest"] = 1 + (index * 3 + shift) % 5
    followup = {f"{unit}.skill": CONFIDENT for unit in units}

    result = gains(flow, baseline, followup)

    ranked = priorities(flow, profile(flow, baseline))
    assert len(ranked) > flow.priority.top
    assert set(result.priorities_met) == {p.unit for p in ranked}
    assert result.priorities_new == ()
