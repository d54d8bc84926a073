"""Ranked priorities: skills the respondent wants to do but cannot yet do alone.

One rule in every mode, for an item (full assessment) and a heading (quick check) alike: a
unit is a priority when its skill score is at most `priority.skill_at_most` ("may need help")
and its value, the flow's formula (`priority.formula`, e.g. "interest * (max - skill)") with
`max` the skill scale's maximum score, is at least `priority.min_priority`. Someone confident
at a thing has no priority there, however keen. An unanswered interest counts as 0; a unit
whose skill was skipped is never a priority. Higher values rank first; ties go to the higher
interest, then to the earlier unit in flow order (Getting started first, as the prerequisite;
a heading's own quick-check unit before its items).
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
    rule = flow.priority
    formula = compile_formula(rule.formula)
    maximum = flow.scales["skill"].max_score
    order = unit_order(flow)
    found = [
        Priority(unit.id, unit.heading, value, unit.skill, unit.interest)
        for unit in profile.units
        if unit.skill is not None
        and unit.skill <= rule.skill_at_most
        and (value := formula(unit.skill, unit.interest or 0, maximum)) >= rule.min_priority
    ]
    found.sort(key=lambda p: (-p.value, -(p.interest or 0), order[p.unit]))
    return tuple(found)
