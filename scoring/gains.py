"""Gains between a baseline assessment and a check-in months later: follow-up minus baseline,
across the whole model (skill, interest, basics, blockers, barriers, priorities).

The pairing rule: a thing is compared only when both assessments answered it (a skipped
question is unanswered), so a check-in compares like with like.

- Basis, from the skill and interest answer keys. An assessment with any item key
  ("GS01.skill") is full; one with only heading keys ("GS.skill") is quick.
  - "full" (both full) and "quick" (both quick): a unit is paired with the same unit, an item
    with the same item, a quick-check heading with the same heading.
  - "headings" (one quick, one full): both are reduced to headings first. A heading's score is
    the mean of its items' answered scores, else (no item of it answered) its own quick-check
    score, so it may be a fraction. Units are then headings, paired heading with heading.
  - "none": no unit's skill was paired (an empty or skills-free assessment on either side).
- `units`: skill gains per paired unit; `interests`: interest gains per unit whose interest
  was answered both times (a full assessment asks interest only for low skills, so there are
  usually fewer). Both in flow order, in skill (interest) score points.
- `headings`: every heading of the flow, with the mean of its paired units' skill (interest)
  gains and how many were paired (in the "headings" basis at most 1); None when none were.
  `overall`: the mean of all paired units' skill gains, None when none were.
- `basics` and `blockers`: the items answered both times, by score. A basic is gained when it
  was missing at baseline (score at most `priority.missing_basic_at_most`) and is not at the
  follow-up; lost, the reverse. A blocker eased when its score rose, worse when it fell.
- Barriers are the profile's (`Profile.barriers`, lack of interest included). One is cleared
  when it was a barrier at baseline and is known not to be one at the follow-up; new, the
  reverse. A barrier is known when its blocker was answered or, for
  `priority.no_interest_blocker`, when some skill at most `priority.skill_at_most` had its
  interest answered; an unknown one is neither cleared nor new.
- Priorities, among paired units only: met, a baseline priority (any of them, not only the top
  few: `scoring.priorities`) whose follow-up skill is confident (above
  `priority.skill_at_most`); new, a follow-up priority that was not one at baseline. In the
  "headings" basis the same rule runs on the reduced headings (formula over the mean skill and
  mean interest, an unanswered interest counted as 0). Unit ids, in flow order.

Each assessment's profile is computed once; everything else is looked up by id.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from flows.model import Flow
from scoring.cohort import mean_of
from scoring.formula import compile_formula
from scoring.profile import Profile, UnitScore, profile

Basis = Literal["full", "quick", "headings", "none"]


@dataclass(frozen=True)
class UnitGain:
    unit: str
    """An item id, or a heading id (a quick check's unit, or any unit in the "headings" basis)."""
    heading: str
    baseline: float
    """A score; a whole number except for a heading reduced from a full assessment's items."""
    followup: float

    @property
    def gain(self) -> float:
        return self.followup - self.baseline


@dataclass(frozen=True)
class HeadingGain:
    heading: str
    gain: float | None
    """Mean skill gain of the heading's paired units."""
    compared: int
    """How many of the heading's units had their skill answered both times."""
    interest: float | None = None
    """Mean interest gain of the heading's units whose interest was answered both times."""
    interest_compared: int = 0


@dataclass(frozen=True)
class Change:
    """A basic's or a blocker's score at baseline and at the follow-up."""

    item: str
    baseline: int
    followup: int

    @property
    def gain(self) -> int:
        return self.followup - self.baseline


@dataclass(frozen=True)
class Gains:
    units: tuple[UnitGain, ...]
    """Skill gains, in flow order."""
    headings: tuple[HeadingGain, ...]
    """Every heading of the flow, in order."""
    overall: float | None
    basis: Basis
    interests: tuple[UnitGain, ...]
    """Interest gains, in flow order."""
    basics: tuple[Change, ...]
    blockers: tuple[Change, ...]
    basics_gained: tuple[str, ...]
    basics_lost: tuple[str, ...]
    blockers_eased: tuple[str, ...]
    blockers_worse: tuple[str, ...]
    barriers_cleared: tuple[str, ...]
    barriers_new: tuple[str, ...]
    priorities_met: tuple[str, ...]
    priorities_new: tuple[str, ...]


class _Scores(Protocol):
    """A unit's scores on one side of the comparison (fractions after reduction to headings)."""

    @property
    def id(self) -> str: ...
    @property
    def heading(self) -> str: ...
    @property
    def skill(self) -> float | None: ...
    @property
    def interest(self) -> float | None: ...


@dataclass(frozen=True)
class _Heading:
    id: str
    heading: str
    skill: float | None
    interest: float | None


def gains(
    flow: Flow, baseline_answers: Mapping[str, int], followup_answers: Mapping[str, int]
) -> Gains:
    """Follow-up minus baseline; answers map question keys to option numbers."""
    return gains_between(flow, profile(flow, baseline_answers), profile(flow, followup_answers))


def gains_between(flow: Flow, before: Profile, after: Profile) -> Gains:
    """The same, from profiles already computed (a report that has them saves the work)."""
    asked_before, asked_after = _asked(before), _asked(after)
    if asked_before is None or asked_after is None or asked_before == asked_after:
        pairing: Basis = asked_before or "none"
        earlier: Sequence[_Scores] = before.units
        later: dict[str, _Scores] = {unit.id: unit for unit in after.units}
    else:
        pairing = "headings"
        earlier = _reduced(flow, before.units)
        later = {unit.id: unit for unit in _reduced(flow, after.units)}

    units: list[UnitGain] = []
    interests: list[UnitGain] = []
    for unit in earlier:
        match = later.get(unit.id)
        if match is None:
            continue
        if unit.skill is not None and match.skill is not None:
            units.append(UnitGain(unit.id, unit.heading, unit.skill, match.skill))
        if unit.interest is not None and match.interest is not None:
            interests.append(UnitGain(unit.id, unit.heading, unit.interest, match.interest))

    was = _priorities(flow, earlier)
    now = _priorities(flow, later.values())
    confident = flow.priority.skill_at_most
    missing = flow.priority.missing_basic_at_most
    basics = _changes(before.basics, after.basics)
    blockers = _changes(before.blockers, after.blockers)
    return Gains(
        units=tuple(units),
        headings=_heading_gains(flow, units, interests),
        overall=mean_of([gain.gain for gain in units]),
        basis=pairing if units else "none",
        interests=tuple(interests),
        basics=basics,
        blockers=blockers,
        basics_gained=tuple(c.item for c in basics if c.baseline <= missing < c.followup),
        basics_lost=tuple(c.item for c in basics if c.followup <= missing < c.baseline),
        blockers_eased=tuple(c.item for c in blockers if c.gain > 0),
        blockers_worse=tuple(c.item for c in blockers if c.gain < 0),
        barriers_cleared=_left(flow, before.barriers, after),
        barriers_new=_left(flow, after.barriers, before),
        priorities_met=tuple(
            gain.unit for gain in units if gain.unit in was and gain.followup > confident
        ),
        priorities_new=tuple(
            gain.unit for gain in units if gain.unit in now and gain.unit not in was
        ),
    )


def _asked(found: Profile) -> Basis | None:
    """ "full" with any item answered, "quick" with only headings answered, else None."""
    quick = False
    for unit in found.units:
        if unit.id != unit.heading:
            return "full"
        quick = True
    return "quick" if quick else None


def _reduced(flow: Flow, units: Sequence[UnitScore]) -> list[_Scores]:
    """One unit per heading answered: its items' mean scores, else its own quick-check scores."""
    own: dict[str, UnitScore] = {}
    skills: dict[str, list[int]] = {}
    interests: dict[str, list[int]] = {}
    for unit in units:
        if unit.id == unit.heading:
            own[unit.id] = unit
            continue
        if unit.skill is not None:
            skills.setdefault(unit.heading, []).append(unit.skill)
        if unit.interest is not None:
            interests.setdefault(unit.heading, []).append(unit.interest)
    reduced: list[_Scores] = []
    for heading in flow.headings:
        mine = own.get(heading.id)
        skill = mean_of(skills.get(heading.id, []))
        interest = mean_of(interests.get(heading.id, []))
        if skill is None and mine is not None:
            skill = mine.skill
        if interest is None and mine is not None:
            interest = mine.interest
        if skill is not None or interest is not None:
            reduced.append(_Heading(heading.id, heading.id, skill, interest))
    return reduced


def _priorities(flow: Flow, units: Iterable[_Scores]) -> set[str]:
    """The units that are priorities by `scoring.priorities`' rule, unranked (ranking is not
    needed here); over reduced headings too, whose scores may be fractions."""
    rule = flow.priority
    formula = compile_formula(rule.formula)
    maximum = flow.scales["skill"].max_score
    return {
        unit.id
        for unit in units
        if unit.skill is not None
        and unit.skill <= rule.skill_at_most
        and formula(unit.skill, unit.interest or 0, maximum) >= rule.min_priority
    }


def _heading_gains(
    flow: Flow, units: Sequence[UnitGain], interests: Sequence[UnitGain]
) -> tuple[HeadingGain, ...]:
    skill_gains: dict[str, list[float]] = {}
    interest_gains: dict[str, list[float]] = {}
    for gain in units:
        skill_gains.setdefault(gain.heading, []).append(gain.gain)
    for gain in interests:
        interest_gains.setdefault(gain.heading, []).append(gain.gain)
    result = []
    for heading in flow.headings:
        skill = skill_gains.get(heading.id, [])
        interest = interest_gains.get(heading.id, [])
        result.append(
            HeadingGain(heading.id, mean_of(skill), len(skill), mean_of(interest), len(interest))
        )
    return tuple(result)


def _changes(before: Mapping[str, int], after: Mapping[str, int]) -> tuple[Change, ...]:
    """Items scored both times, in the baseline's (item) order."""
    return tuple(
        Change(item, score, after[item]) for item, score in before.items() if item in after
    )


def _left(flow: Flow, barriers: Sequence[str], other: Profile) -> tuple[str, ...]:
    """The barriers that `other` knows about and does not have."""
    return tuple(
        barrier
        for barrier in barriers
        if barrier not in other.barriers and _knows_barrier(flow, other, barrier)
    )


def _knows_barrier(flow: Flow, found: Profile, barrier: str) -> bool:
    rule = flow.priority
    if barrier in found.blockers:
        return True
    return barrier == rule.no_interest_blocker and any(
        unit.skill is not None and unit.skill <= rule.skill_at_most and unit.interest is not None
        for unit in found.units
    )
