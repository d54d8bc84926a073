"""The cohort summary, built one profile at a time: means, distributions per heading (heading
score rounded half up to a level), missing basics, barriers and top priorities, on hand-worked
respondents of the shipped flow."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from flows.loader import load_flow
from flows.model import Flow, Option, Scale
from scoring import profile
from scoring.cohort import CohortSummary, CohortTally, cohort_summary, level
from scoring.profile import Profile

# Option numbers on the shipped 0-4 scales: option n scores n - 1.
NO_ABILITY, WITH_HELP, WOULD_TRY, CONFIDENT, COULD_TEACH = 1, 2, 3, 4, 5
MAYBE, DEFINITELY = 3, 5
DO_NOT_HAVE, ALWAYS = 1, 5
STOPS_ME, BIG_PROBLEMS = 1, 2


@pytest.fixture(scope="module")
def flow() -> Flow:
    return load_flow(languages=["en"])


@pytest.fixture(scope="module")
def people(flow: Flow) -> list[Profile]:
    return [
        # GS skill 1 of 4 = 0.25 -> level 1; GS interest 4 -> level 4; CM by quick check 0.
        profile(
            flow,
            {
                "BA01.access": DO_NOT_HAVE,
                "BL02.blocker": STOPS_ME,
                "GS01.skill": WITH_HELP,
                "GS01.interest": DEFINITELY,
                "CM.skill": NO_ABILITY,
            },
        ),
        # GS skill 2 of 4 = 0.5 -> level 2; GS interest 2 -> level 2.
        profile(
            flow,
            {
                "BA03.access": DO_NOT_HAVE,
                "BL02.blocker": BIG_PROBLEMS,
                "GS01.skill": WOULD_TRY,
                "GS01.interest": MAYBE,
            },
        ),
        # GS skill (2 + 3) / 8 = 0.625, a mean score of 2.5 -> level 3 (half rounds up);
        # CM by quick check 4.
        profile(flow, {"GS01.skill": WOULD_TRY, "GS02.skill": CONFIDENT, "CM.skill": COULD_TEACH}),
        # GS skill (2 + 2 + 2 + 2 + 4) / 20 = 0.6, a mean score of 2.4 -> level 2.
        profile(
            flow,
            {
                "GS01.skill": WOULD_TRY,
                "GS02.skill": WOULD_TRY,
                "GS03.skill": WOULD_TRY,
                "GS04.skill": WOULD_TRY,
                "GS05.skill": COULD_TEACH,
            },
        ),
        # Only a basic, which they have.
        profile(flow, {"BA01.access": ALWAYS}),
    ]


def test_levels_distribute_each_headings_respondents(flow: Flow, people: list[Profile]) -> None:
    summary = cohort_summary(flow, people)

    levels = {d.heading: (d.skill, d.interest) for d in summary.distributions}
    assert [d.heading for d in summary.distributions] == [h.id for h in flow.headings]
    assert levels["GS"] == ((0, 1, 2, 1, 0), (0, 0, 1, 0, 1))
    assert levels["CM"] == ((1, 0, 0, 0, 1), (0, 0, 0, 0, 0))
    assert levels["AD"] == ((0, 0, 0, 0, 0), (0, 0, 0, 0, 0))


def test_means_basics_barriers_and_priorities(flow: Flow, people: list[Profile]) -> None:
    summary = cohort_summary(flow, people)

    assert summary.count == 5
    means = {h.heading: h for h in summary.headings}
    assert means["GS"].skill == pytest.approx((0.25 + 0.5 + 0.625 + 0.6) / 4)
    assert means["GS"].interest == pytest.approx((1.0 + 0.5) / 2)
    assert means["GS"].answered == 4
    assert means["CM"].skill == pytest.approx(0.5)
    assert means["CM"].interest is None
    assert means["CM"].answered == 2
    assert (means["TR"].skill, means["TR"].answered) == (None, 0)
    assert dict(summary.missing_basics) == {"BA01": 1, "BA02": 0, "BA03": 1}
    assert dict(summary.barriers) == {"BL01": 0, "BL02": 2, "BL03": 0, "BL04": 0, "BL05": 0}
    # GS01: interest 4 x (4 - 1) = 12 for the first, 2 x (4 - 2) = 4 for the second; the
    # others gave no interest, so nothing else reaches the threshold of 4.
    assert dict(summary.top_priorities) == {"GS01": 2}


def test_a_nobody_cohort_is_empty_not_an_error(flow: Flow) -> None:
    summary = cohort_summary(flow, [])

    assert summary.count == 0
    assert all(h.skill is None and h.answered == 0 for h in summary.headings)
    assert all(sum(d.skill) == 0 for d in summary.distributions)
    assert set(summary.missing_basics.values()) == {0}
    assert dict(summary.top_priorities) == {}


def test_the_streaming_tally_equals_the_batch_summary(flow: Flow, people: list[Profile]) -> None:
    tally = CohortTally(flow)
    for person in people[:2]:
        tally.add(person)
    halfway = tally.summary()
    for person in people[2:]:
        tally.add(person)

    assert halfway == cohort_summary(flow, people[:2])
    assert tally.summary() == cohort_summary(flow, people)


def test_the_summary_reads_profiles_once_as_they_stream(flow: Flow, people: list[Profile]) -> None:
    def once() -> Iterator[Profile]:
        yield from people

    streamed: CohortSummary = cohort_summary(flow, once())

    assert streamed == cohort_summary(flow, list(people))
    assert streamed.count == 5


def _scale(*scores: int) -> Scale:
    return Scale(
        id="skill",
        question={"en": "{task}?"},
        options=tuple(
            Option(number, score, {"en": str(score)}, {"en": str(score)}, {})
            for number, score in enumerate(scores, start=1)
        ),
    )


@pytest.mark.parametrize(
    ("scores", "share", "expected"),
    [
        ((0, 1, 2, 3, 4), 0.0, 0),
        ((0, 1, 2, 3, 4), 0.375, 2),  # 1.5 rounds up
        ((0, 1, 2, 3, 4), 0.3, 1),  # 1.2
        ((0, 1, 2, 3, 4), 1.0, 4),
        ((0, 1, 2, 3), 5 / 6, 3),  # 2.5 on a 0-3 scale
        # A float a last bit under a tie still counts as the tie.
        ((0, 1, 2, 3), 5 / 6 - 1e-15, 3),
        ((0, 1, 2, 3), 5 / 6 - 1e-6, 2),
        ((0, 1, 2, 3), 1 / 6, 1),  # 0.5 rounds up
        # A scale whose scores skip: the nearest score, a tie to the higher.
        ((0, 2, 4), 0.25, 2),  # 1.0, between 0 and 2
        ((0, 2, 4), 0.2, 0),  # 0.8 is nearer 0
        ((0, 2, 4), 0.75, 4),  # 3.0, between 2 and 4
    ],
)
def test_a_share_becomes_the_nearest_level_rounding_half_up(
    scores: tuple[int, ...], share: float, expected: int
) -> None:
    assert level(_scale(*scores), share) == expected
