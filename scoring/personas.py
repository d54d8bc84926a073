"""Personas scored as respondents are: a persona's answers are a baseline in the same item ids,
so its profile and priorities come from the same rules as anyone's, and a cohort can be set
beside it.

The rule it keeps: a persona is never scored by a rule of its own. `persona_profile` is
`scoring.profile` and `likely_priorities` is `scoring.priorities` on it. In a comparison every
difference is the cohort's value minus the persona's (positive: the cohort is further on than
the persona), and None where either side has nothing; a cohort's share of people missing a
basic (with a barrier) is a count over `CohortSummary.count`, None for an empty cohort.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from flows.model import Flow
from scoring.cohort import CohortSummary
from scoring.priorities import Priority, priorities
from scoring.profile import Profile, profile


@dataclass(frozen=True)
class HeadingComparison:
    heading: str
    cohort_skill: float | None
    """The cohort's mean skill share, 0..1 (`HeadingMeans.skill`)."""
    persona_skill: float | None
    """The persona's skill share, 0..1."""
    skill_difference: float | None
    """cohort_skill - persona_skill."""
    cohort_interest: float | None
    persona_interest: float | None
    interest_difference: float | None
    """cohort_interest - persona_interest."""


@dataclass(frozen=True)
class ConditionComparison:
    """A basic (missing) or a blocker (a barrier): how common in the cohort, and the persona's."""

    item: str
    cohort_share: float | None
    """The share of the cohort with it, 0..1; None for an empty cohort."""
    persona_has: bool


@dataclass(frozen=True)
class PersonaComparison:
    count: int
    """How many people the cohort's summary is over."""
    headings: tuple[HeadingComparison, ...]
    """Every heading of the flow, in order."""
    missing_basics: tuple[ConditionComparison, ...]
    """Every basic, in item order: the share missing it, and whether the persona does."""
    barriers: tuple[ConditionComparison, ...]
    """Every blocker, in item order: the share for whom it is a barrier, and the persona's."""


def persona_profile(flow: Flow, answers: Mapping[str, int]) -> Profile:
    """The persona's profile, exactly as a respondent with these answers would have it."""
    return profile(flow, answers)


def likely_priorities(flow: Flow, answers: Mapping[str, int]) -> tuple[Priority, ...]:
    """The persona's ranked priorities (all of them; the message names `priority.top`)."""
    return priorities(flow, profile(flow, answers))


def compare_with_persona(flow: Flow, summary: CohortSummary, persona: Profile) -> PersonaComparison:
    means = {heading.heading: heading for heading in summary.headings}
    headings = []
    for heading in flow.headings:
        cohort = means.get(heading.id)
        own = persona.heading(heading.id)
        cohort_skill = cohort.skill if cohort is not None else None
        cohort_interest = cohort.interest if cohort is not None else None
        headings.append(
            HeadingComparison(
                heading=heading.id,
                cohort_skill=cohort_skill,
                persona_skill=own.skill,
                skill_difference=_difference(cohort_skill, own.skill),
                cohort_interest=cohort_interest,
                persona_interest=own.interest,
                interest_difference=_difference(cohort_interest, own.interest),
            )
        )
    return PersonaComparison(
        count=summary.count,
        headings=tuple(headings),
        missing_basics=_conditions(
            flow, "basics", summary.count, summary.missing_basics, persona.missing_basics
        ),
        barriers=_conditions(flow, "blockers", summary.count, summary.barriers, persona.barriers),
    )


def _conditions(
    flow: Flow,
    section: str,
    count: int,
    counted: Mapping[str, int],
    persona_has: tuple[str, ...],
) -> tuple[ConditionComparison, ...]:
    return tuple(
        ConditionComparison(
            item=item.id,
            cohort_share=counted.get(item.id, 0) / count if count else None,
            persona_has=item.id in persona_has,
        )
        for item in flow.items
        if item.section == section
    )


def _difference(cohort: float | None, persona: float | None) -> float | None:
    if cohort is None or persona is None:
        return None
    return cohort - persona
