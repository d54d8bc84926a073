"""A cohort at a glance: aggregates over many respondents' profiles, for staff and reports.

- `count`: how many profiles.
- Per heading, the mean of the respondents' skill (interest) shares, over those who have
  one; None when nobody does.
- For every basic and every blocker (in item order), how many respondents have it missing or
  as a barrier, by the flow's priority thresholds.
- How many respondents have each unit among their top `priority.top` priorities, most
  frequent first, ties in flow order; units nobody has as a top priority are left out.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from flows.model import Flow
from scoring.priorities import priorities
from scoring.profile import Profile, unit_order


@dataclass(frozen=True)
class HeadingMeans:
    heading: str
    skill: float | None
    interest: float | None
    answered: int
    """How many respondents have a skill share for this heading."""


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


def cohort_summary(flow: Flow, profiles: Iterable[Profile]) -> CohortSummary:
    every = tuple(profiles)
    missing = Counter(basic for p in every for basic in p.missing_basics)
    barriers = Counter(blocker for p in every for blocker in p.barriers)
    top = Counter(
        priority.unit for p in every for priority in priorities(flow, p)[: flow.priority.top]
    )
    order = unit_order(flow)
    headings = []
    for heading in flow.headings:
        scores = [p.heading(heading.id) for p in every]
        skills = [s.skill for s in scores if s.skill is not None]
        interests = [s.interest for s in scores if s.interest is not None]
        headings.append(HeadingMeans(heading.id, mean_of(skills), mean_of(interests), len(skills)))
    return CohortSummary(
        count=len(every),
        headings=tuple(headings),
        missing_basics={i.id: missing[i.id] for i in flow.items if i.section == "basics"},
        barriers={i.id: barriers[i.id] for i in flow.items if i.section == "blockers"},
        top_priorities={
            unit: top[unit] for unit in sorted(top, key=lambda unit: (-top[unit], order[unit]))
        },
    )


def mean_of(values: Sequence[float]) -> float | None:
    """The mean, or None for no values."""
    return sum(values) / len(values) if values else None
