"""Ranked priorities: skills the respondent wants to do but cannot yet do alone.

A unit's priority value is the flow's formula (`priority.formula`, e.g.
"interest * (max - skill)") with `max` the skill scale's maximum score. An unanswered
interest counts as 0 (it is not asked when skill is already high); a unit whose skill was
skipped is never a priority. Only values of at least `priority.min_priority` count. Higher
values rank first; ties go to the earlier heading (Getting started first, as the
prerequisite), then the earlier unit in flow order (a heading's own quick-check unit before
its items).
"""

from __future__ import annotations

from dataclasses import dataclass

from flows.model import Flow
from scoring.formula import compile_formula
from scoring.profile import Profile, unit_order


@dataclass(frozen=True)
class Priority:
    unit: str
    """An item id ("TR03") or a heading id ("TR") for a quick-check answer."""
    heading: str
    value: float
    skill: int
    interest: int | None
    """As answered; None when interest was not asked (counted as 0)."""


def priorities(flow: Flow, profile: Profile) -> tuple[Priority, ...]:
    formula = compile_formula(flow.priority.formula)
    maximum = flow.scales["skill"].max_score
    heading_rank = {heading.id: index for index, heading in enumerate(flow.headings)}
    order = unit_order(flow)
    found = [
        Priority(unit.id, unit.heading, value, unit.skill, unit.interest)
        for unit in profile.units
        if unit.skill is not None
        and (value := formula(unit.skill, unit.interest or 0, maximum))
        >= flow.priority.min_priority
    ]
    found.sort(key=lambda p: (-p.value, heading_rank[p.heading], order[p.unit]))
    return tuple(found)
