"""Gains between a baseline assessment and a check-in months later: follow-up minus baseline.

Only skill is compared, and only where both assessments answered the same unit's skill (an
item with the same item, a quick-check heading with the same heading), so a check-in compares
like with like. Gains are in skill score points: per unit, per heading (the mean of its units'
gains) and overall (the mean of all compared units' gains); None where nothing was compared.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from flows.model import Flow
from scoring.cohort import mean_of
from scoring.profile import profile


@dataclass(frozen=True)
class UnitGain:
    unit: str
    heading: str
    baseline: int
    followup: int

    @property
    def gain(self) -> int:
        return self.followup - self.baseline


@dataclass(frozen=True)
class HeadingGain:
    heading: str
    gain: float | None
    compared: int
    """How many of the heading's units were answered both times."""


@dataclass(frozen=True)
class Gains:
    units: tuple[UnitGain, ...]
    """In flow order."""
    headings: tuple[HeadingGain, ...]
    """Every heading of the flow, in order."""
    overall: float | None


def gains(
    flow: Flow, baseline_answers: Mapping[str, int], followup_answers: Mapping[str, int]
) -> Gains:
    before = profile(flow, baseline_answers)
    after = profile(flow, followup_answers)
    units = tuple(
        UnitGain(unit.id, unit.heading, unit.skill, later.skill)
        for unit in before.units
        if unit.skill is not None
        and (later := after.unit(unit.id)) is not None
        and later.skill is not None
    )
    headings = tuple(
        HeadingGain(
            heading.id,
            mean_of([u.gain for u in units if u.heading == heading.id]),
            sum(1 for u in units if u.heading == heading.id),
        )
        for heading in flow.headings
    )
    return Gains(units, headings, mean_of([u.gain for u in units]))
