"""A respondent's profile: what their answers say, per skill, heading, basic and blocker.

Answers map a question key ("GS01.skill", "GS.interest", "BA01.access") to the option number
chosen; scores always come from the flow's scales, never from the number. A key the flow does
not know, or a number its scale does not have, is a ValueError naming the key.

- A skill unit is whatever was asked: an item ("GS01") in a full assessment, a heading ("GS")
  in a quick check; a mix of both is allowed. Units appear in flow order (each heading's own
  unit, then its items) and only when at least one of skill or interest was answered; a
  missing aspect is None.
- A heading's skill (interest) is the mean answered score as a share of the scale's maximum,
  0..1: from its items' answers when any item of it was answered, else from the heading's own
  quick-check answer, else None.
- The basics index is the mean answered basics score as a share of the maximum (None if no
  basic was answered). A basic scored at most `priority.missing_basic_at_most` is missing; a
  blocker scored at most `priority.barrier_at_most` is a barrier; both listed in item order.
- Lack of interest is a barrier in itself: `priority.no_interest_blocker` is one too when the
  respondent has skills at most `priority.skill_at_most` whose interest was asked, and every
  one of those has interest at most `priority.no_interest_at_most`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from flows.model import Flow


@dataclass(frozen=True)
class UnitScore:
    id: str
    """An item id ("GS01") or, for a quick-check answer, a heading id ("GS")."""
    heading: str
    skill: int | None
    interest: int | None


@dataclass(frozen=True)
class HeadingScore:
    id: str
    skill: float | None
    """Mean skill score as a share of the maximum, 0..1; None when nothing was answered."""
    interest: float | None


@dataclass(frozen=True)
class Profile:
    units: tuple[UnitScore, ...]
    headings: tuple[HeadingScore, ...]
    """Every heading of the flow, in order."""
    basics: Mapping[str, int]
    """Basic item id -> score, for the basics answered."""
    blockers: Mapping[str, int]
    """Blocker item id -> score, for the blockers answered."""
    basics_index: float | None
    missing_basics: tuple[str, ...]
    barriers: tuple[str, ...]

    def unit(self, unit_id: str) -> UnitScore | None:
        for unit in self.units:
            if unit.id == unit_id:
                return unit
        return None

    def heading(self, heading_id: str) -> HeadingScore:
        for heading in self.headings:
            if heading.id == heading_id:
                return heading
        raise KeyError(f"profile has no heading {heading_id}")


def unit_order(flow: Flow) -> dict[str, int]:
    """Every skill unit id -> its rank in flow order: each heading, then that heading's items."""
    return {unit_id: index for index, unit_id in enumerate(flow.unit_headings)}


def answer_scores(flow: Flow, answers: Mapping[str, int]) -> dict[str, dict[str, int]]:
    """Item or heading id -> aspect -> score; raises ValueError naming a bad key or number."""
    scores: dict[str, dict[str, int]] = {}
    option_scores = flow.option_scores
    for key, number in answers.items():
        found = option_scores.get(key)
        if found is None:
            raise ValueError(f"unknown question key {key!r} for flow {flow.id}")
        if type(number) is not int:
            raise ValueError(f"answer to {key!r} must be an option number, not {number!r}")
        item, aspect, by_number = found
        score = by_number.get(number)
        if score is None:
            scale = flow.scale_of(flow.questions[key])
            raise ValueError(
                f"answer to {key!r} is {number}, not an option of scale {scale.id} "
                f"(1 to {len(scale.options)})"
            )
        scores.setdefault(item, {})[aspect] = score
    return scores


def profile(flow: Flow, answers: Mapping[str, int]) -> Profile:
    scores = answer_scores(flow, answers)
    units = tuple(
        UnitScore(unit_id, heading_id, found.get("skill"), found.get("interest"))
        for unit_id, heading_id in flow.unit_headings.items()
        if (found := scores.get(unit_id)) and ("skill" in found or "interest" in found)
    )
    skill_max = flow.scales["skill"].max_score
    interest_max = flow.scales["interest"].max_score
    under: dict[str, list[UnitScore]] = {}
    for unit in units:
        under.setdefault(unit.heading, []).append(unit)
    headings = tuple(
        HeadingScore(
            heading.id,
            _heading_share(under.get(heading.id, ()), heading.id, "skill", skill_max),
            _heading_share(under.get(heading.id, ()), heading.id, "interest", interest_max),
        )
        for heading in flow.headings
    )
    rule = flow.priority
    basics = _section_scores(flow, scores, "basics", "access")
    blockers = _section_scores(flow, scores, "blockers", "blocker")
    return Profile(
        units=units,
        headings=headings,
        basics=basics,
        blockers=blockers,
        basics_index=_share(list(basics.values()), flow.scales["access"].max_score),
        missing_basics=tuple(i for i, s in basics.items() if s <= rule.missing_basic_at_most),
        barriers=_barriers(flow, blockers, units),
    )


def _barriers(
    flow: Flow, blockers: Mapping[str, int], units: Sequence[UnitScore]
) -> tuple[str, ...]:
    rule = flow.priority
    found = {item for item, score in blockers.items() if score <= rule.barrier_at_most}
    interests = [
        unit.interest
        for unit in units
        if unit.skill is not None and unit.skill <= rule.skill_at_most and unit.interest is not None
    ]
    if interests and max(interests) <= rule.no_interest_at_most:
        found.add(rule.no_interest_blocker)
    return tuple(item.id for item in flow.items if item.id in found)


def _section_scores(
    flow: Flow, scores: Mapping[str, Mapping[str, int]], section: str, aspect: str
) -> dict[str, int]:
    return {
        item.id: scores[item.id][aspect]
        for item in flow.items
        if item.section == section and aspect in scores.get(item.id, {})
    }


def _heading_share(
    under: Sequence[UnitScore], heading_id: str, aspect: str, maximum: int
) -> float | None:
    """The heading's share of `maximum` from its items' scores (`under`: the units under the
    heading), or else from its own (a quick check asks the heading as one question)."""
    skill = aspect == "skill"
    from_items = [
        score
        for unit in under
        if unit.id != heading_id and (score := unit.skill if skill else unit.interest) is not None
    ]
    if from_items:
        return _share(from_items, maximum)
    own = [
        score
        for unit in under
        if unit.id == heading_id and (score := unit.skill if skill else unit.interest) is not None
    ]
    return _share(own, maximum)


def _share(scores: Sequence[int], maximum: int) -> float | None:
    if not scores:
        return None
    return sum(scores) / (len(scores) * maximum)
