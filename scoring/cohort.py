"""A cohort at a glance: aggregates over many respondents' profiles, for staff and reports.

- `count`: how many profiles.
- Per heading, the mean of the respondents' skill (interest) shares, over those who have
  one; None when nobody does.
- Per heading, the distribution of skill (interest): how many respondents sit at each score
  of the scale, 0..max. A respondent's level for a heading is their heading share times the
  scale's maximum (their mean score), rounded half up to the nearest option score: a mean of
  2.5 is level 3, 2.4 is level 2. Respondents with no share for the heading are not counted,
  so the skill counts add up to `HeadingMeans.answered`.
- For every basic and every blocker (in item order), how many respondents have it missing or
  as a barrier, by the flow's priority thresholds.
- How many respondents have each unit among their top `priority.top` priorities, most
  frequent first, ties in flow order; units nobody has as a top priority are left out.

It streams: `CohortTally` takes one profile at a time and keeps only counts and sums, so its
memory grows with the flow's size, never with the number of respondents.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from flows.model import Flow, Scale
from scoring.priorities import priorities
from scoring.profile import Profile, unit_order

LEVEL_TOLERANCE = 1e-9
"""A share is a quotient and times the maximum a product, each rounded to a float, so a true
tie such as 2.5 could land a last bit below it; within this of a tie counts as the tie."""


@dataclass(frozen=True)
class HeadingMeans:
    heading: str
    skill: float | None
    interest: float | None
    answered: int
    """How many respondents have a skill share for this heading."""


@dataclass(frozen=True)
class HeadingDistribution:
    heading: str
    skill: tuple[int, ...]
    """Respondents at each skill level, indexed by score 0..the skill scale's maximum."""
    interest: tuple[int, ...]
    """Respondents at each interest level, indexed by score 0..the interest scale's maximum."""


@dataclass(frozen=True)
class CohortSummary:
    count: int
    headings: tuple[HeadingMeans, ...]
    missing_basics: Mapping[str, int]
    """Basic item id -> respondents missing it (every basic listed)."""
    barriers: Mapping[str, int]
    """Blocker item id -> respondents for whom it is a barrier (every blocker listed)."""
    top_priorities: Mapping[str, int]
    """Unit id -> respondents with it among their top priorities, most frequent first."""
    distributions: tuple[HeadingDistribution, ...] = ()
    """Every heading of the flow, in order."""


class CohortTally:
    """A cohort summary built one profile at a time."""

    def __init__(self, flow: Flow) -> None:
        self._flow = flow
        self._skill_scale = flow.scales["skill"]
        self._interest_scale = flow.scales["interest"]
        self._count = 0
        self._missing: Counter[str] = Counter()
        self._barriers: Counter[str] = Counter()
        self._top: Counter[str] = Counter()
        self._skill_sums = {heading.id: 0.0 for heading in flow.headings}
        self._interest_sums = {heading.id: 0.0 for heading in flow.headings}
        self._skill_levels = {
            heading.id: [0] * (self._skill_scale.max_score + 1) for heading in flow.headings
        }
        self._interest_levels = {
            heading.id: [0] * (self._interest_scale.max_score + 1) for heading in flow.headings
        }

    def add(self, profile: Profile) -> None:
        flow = self._flow
        self._count += 1
        self._missing.update(profile.missing_basics)
        self._barriers.update(profile.barriers)
        self._top.update(p.unit for p in priorities(flow, profile)[: flow.priority.top])
        for score in profile.headings:
            if score.skill is not None:
                self._skill_sums[score.id] += score.skill
                self._skill_levels[score.id][level(self._skill_scale, score.skill)] += 1
            if score.interest is not None:
                self._interest_sums[score.id] += score.interest
                self._interest_levels[score.id][level(self._interest_scale, score.interest)] += 1

    def summary(self) -> CohortSummary:
        """The summary of the profiles added so far (the tally can go on after it)."""
        flow = self._flow
        order = unit_order(flow)
        headings = []
        for heading in flow.headings:
            skilled = sum(self._skill_levels[heading.id])
            interested = sum(self._interest_levels[heading.id])
            headings.append(
                HeadingMeans(
                    heading.id,
                    self._skill_sums[heading.id] / skilled if skilled else None,
                    self._interest_sums[heading.id] / interested if interested else None,
                    skilled,
                )
            )
        top = self._top
        return CohortSummary(
            count=self._count,
            headings=tuple(headings),
            missing_basics={i.id: self._missing[i.id] for i in flow.items if i.section == "basics"},
            barriers={i.id: self._barriers[i.id] for i in flow.items if i.section == "blockers"},
            top_priorities={
                unit: top[unit] for unit in sorted(top, key=lambda unit: (-top[unit], order[unit]))
            },
            distributions=tuple(
                HeadingDistribution(
                    heading.id,
                    tuple(self._skill_levels[heading.id]),
                    tuple(self._interest_levels[heading.id]),
                )
                for heading in flow.headings
            ),
        )


def cohort_summary(flow: Flow, profiles: Iterable[Profile]) -> CohortSummary:
    tally = CohortTally(flow)
    for profile in profiles:
        tally.add(profile)
    return tally.summary()


def level(scale: Scale, share: float) -> int:
    """The option score nearest to `share` times the scale's maximum, ties to the higher."""
    mean = share * scale.max_score
    nearest = math.floor(mean + 0.5 + LEVEL_TOLERANCE)
    if any(option.score == nearest for option in scale.options):
        return nearest
    # A scale whose scores skip values (0, 2, 4…): the closest score, ties to the higher.
    return min(
        (option.score for option in scale.options),
        key=lambda score: (abs(score - mean) - LEVEL_TOLERANCE * (score > mean), -score),
    )


def mean_of(values: Sequence[float]) -> float | None:
    """The mean, or None for no values."""
    return sum(values) / len(values) if values else None
