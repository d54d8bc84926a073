"""The cohort report: who is in it, who is excluded and why, and what changed, from one pass
over the people a selection allows (`impact.records.iter_people`), so memory stays flat.

The rules it keeps:
- The picture is taken at each person's latest *completed* baseline; the impact pairs each
  person's latest completed check-in with the baseline it follows (when that was completed),
  compared by `scoring.gains` (like with like: quick with quick, full with full, or both
  reduced to headings; the report counts each basis). Every pair counts for the changes in
  basics and blockers, even one whose skills were not asked both times (basis "none", e.g.
  someone who first had no device and so skipped the skills).
- A person's gain for a heading (or overall) is the mean of their paired units' gains there;
  a group's estimate is over people, one gain each: n, mean, its t interval, the shares
  improved and worse with Wilson intervals (`scoring.impact`).
- Disclosure: any group of fewer than `min_group` people (10 unless asked) shows its size as
  "fewer than N" and no statistic; the baseline picture of fewer than `min_group` people, and
  the counts of changes among fewer than `min_group` pairs, are withheld the same way.
- Initiatives are shown beside everyone, so a withheld initiative is not left to be worked
  out by subtraction: the smallest other groups are withheld with it until the withheld
  ones hold at least `min_group` people together (`scoring.impact.complementary_withheld`).
- Someone in several initiatives counts in each; someone in none counts under
  `NO_INITIATIVE`, so the work can be set beside no work.
- Outputs made from the same pass (the sector benchmark, a persona comparison) pass a
  `ReportTallies` to be filled in as the people are read, rather than reading them again.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa

from flows.model import Flow
from impact.records import AssessmentRow, Person, Selection, iter_people
from scoring import profile
from scoring.cohort import CohortSummary, CohortTally, mean_of
from scoring.gains import Gains, gains_between
from scoring.impact import (
    MIN_GROUP,
    Estimate,
    GainKey,
    GainTally,
    complementary_withheld,
    withheld,
)
from scoring.outcomes import OutcomeFlag, outcome_flags
from scoring.profile import Profile, unit_order

NO_INITIATIVE = "No initiative"
EVERYONE = "all"
PROGRESS_EVERY = 1000
"""`progress` is called with this many people each time that many more have been read."""
TOP_PRIORITIES = 10
"""How many of the most common priorities the report lists."""
CHANGES = (
    ("basics_gained", "Gained a basic (device, connection, place)"),
    ("basics_lost", "Lost a basic"),
    ("blockers_eased", "A blocker eased"),
    ("blockers_worse", "A blocker got worse"),
    ("barriers_cleared", "A barrier cleared"),
    ("barriers_new", "A new barrier"),
    ("priorities_met", "A priority met (now confident)"),
    ("priorities_new", "A new priority"),
)
"""The changes a pair can show, as `Gains` fields, with what the report calls them: a person
counts once for each kind, however many items show it."""
BASES = (
    ("full", "full assessment with full assessment"),
    ("quick", "quick check with quick check"),
    ("headings", "one quick, one full: both reduced to headings"),
    ("none", "no skill answered both times (skills left out for want of a device)"),
)


@dataclass(frozen=True)
class Funnel:
    people: int
    """Everyone the selection holds."""
    enrolled: int
    """Enrolled by staff (the rest texted in by themselves)."""
    started: int
    """Answered at least one question."""
    completed: int
    """Completed a baseline."""
    checked_in: int
    """Completed a check-in after a completed baseline: the people the impact is about."""
    opted_out: int
    unreachable: int


@dataclass(frozen=True)
class Count:
    id: str
    name: str
    count: int | None
    """None: withheld (the group is smaller than `min_group`)."""
    share: float | None
    """Of the group counted (people at baseline, or pairs)."""


@dataclass(frozen=True)
class HeadingPicture:
    heading: str
    name: str
    answered: int
    """People with a skill score for the heading."""
    skill: float | None
    """Mean skill share (0..1)."""
    interest: float | None
    skill_levels: tuple[int, ...]
    """People at each skill level, by score (0 = no ability … 4 = could teach others)."""
    interest_levels: tuple[int, ...]


@dataclass(frozen=True)
class Picture:
    """The cohort at baseline."""

    people: int
    """Completed baselines."""
    withheld: bool
    """Fewer than `min_group`: nothing below is filled in."""
    missing_basics: tuple[Count, ...] = ()
    barriers: tuple[Count, ...] = ()
    headings: tuple[HeadingPicture, ...] = ()
    top_priorities: tuple[Count, ...] = ()
    skill_levels: tuple[str, ...] = ()
    """The skill scale's labels, by score."""
    interest_levels: tuple[str, ...] = ()


@dataclass(frozen=True)
class ImpactRow:
    id: str
    """"overall", a heading id or an item id."""
    name: str
    aspect: str
    """"skill" or "interest"."""
    estimate: Estimate


@dataclass(frozen=True)
class InitiativeImpact:
    initiative: str
    people: int
    """Pairs (baseline and check-in) among the initiative's people."""
    overall: tuple[ImpactRow, ...]
    """Skill, then interest."""
    headings: tuple[ImpactRow, ...]
    """Skill per heading."""
    changes: tuple[Count, ...]


@dataclass(frozen=True)
class OutcomeCount:
    """An outcome flag for cost-benefit models, across the pairs whose items were asked."""

    flag: str
    item: str
    name: str
    known: int
    """Pairs that answered the item's skill both times."""
    able_at_baseline: int | None
    able_at_checkin: int | None
    newly_able: int | None
    """None: withheld (fewer than `min_group` known)."""


@dataclass(frozen=True)
class Impact:
    pairs: int
    bases: tuple[Count, ...]
    """How many pairs were compared on each basis (`BASES`)."""
    overall: tuple[ImpactRow, ...]
    headings: tuple[ImpactRow, ...]
    """Skill then interest, per heading in flow order."""
    items: tuple[ImpactRow, ...]
    """Skill per item (or quick-check heading) compared, in flow order."""
    initiatives: tuple[InitiativeImpact, ...]
    changes: tuple[Count, ...]
    outcomes: tuple[OutcomeCount, ...]


@dataclass(frozen=True)
class CohortReport:
    title: str
    description: str
    """What the selection is ("Cohort Spring drive, initiative Device loans")."""
    generated_at: datetime
    flow_id: str
    flow_version: str
    min_group: int
    funnel: Funnel
    picture: Picture
    impact: Impact
    cohorts: tuple[str, ...] = field(default=())
    """The cohorts the report covers, when it is about named cohorts."""


@dataclass
class _Group:
    """Running counts of one group's changes."""

    pairs: int = 0
    changes: Counter[str] = field(default_factory=Counter)


class ReportTallies:
    """What the report's pass counted, before anything is withheld, per group (`EVERYONE`,
    each initiative, `NO_INITIATIVE`): for outputs made from the same pass. Give one to
    `report_on` (or `build_report`) and read it once the report is built."""

    def __init__(self, flow: Flow) -> None:
        self.flow = flow
        self.people: Counter[str] = Counter()
        """Everyone in each group, whether or not they finished anything."""
        self.pictures: dict[str, CohortTally] = {}
        """Each group's profiles at baseline (a person's latest completed baseline)."""
        self.gains = GainTally()
        """The report's own tally: keys as `report_on` adds them, e.g. (group, "overall",
        "skill"), (group, heading, "skill")."""
        self.outcomes: dict[str, dict[str, Counter[str]]] = {}
        """Group -> outcome flag -> "known", "before", "after", "newly" (pairs)."""
        self._groups: dict[str, _Group] = {}

    def groups(self) -> tuple[str, ...]:
        """Every group anyone was counted in, `EVERYONE` first."""
        return tuple(self.people)

    def pairs(self, group: str) -> int:
        found = self._groups.get(group)
        return found.pairs if found is not None else 0

    def changes(self, group: str) -> Counter[str]:
        """Change (a `CHANGES` key) -> pairs that show it."""
        found = self._groups.get(group)
        return Counter(found.changes) if found is not None else Counter()

    def _person(self, groups: Iterable[str]) -> None:
        self.people.update(groups)

    def _baseline(self, groups: Iterable[str], at_baseline: Profile) -> None:
        for group in groups:
            if group != EVERYONE:  # the report's own tally holds everyone's
                self.pictures.setdefault(group, CohortTally(self.flow)).add(at_baseline)

    def _outcomes(self, groups: Iterable[str], flags: Iterable[OutcomeFlag]) -> None:
        known = [
            f for f in flags if f.able_at_baseline is not None and f.able_at_followup is not None
        ]
        for group in groups:
            counted = self.outcomes.setdefault(group, {})
            for flag in known:
                found = counted.setdefault(flag.flag, Counter())
                found["known"] += 1
                found["before"] += flag.able_at_baseline is True
                found["after"] += flag.able_at_followup is True
                found["newly"] += flag.newly_able


def build_report(
    conn: sa.Connection,
    flow: Flow,
    selection: Selection,
    *,
    title: str,
    description: str,
    now: datetime,
    min_group: int = MIN_GROUP,
    progress: Callable[[int], None] | None = None,
    tallies: ReportTallies | None = None,
) -> CohortReport:
    """Read everyone `selection` allows once, and report on them."""
    return report_on(
        flow,
        iter_people(conn, selection, answers=False),
        title=title,
        description=description,
        now=now,
        min_group=min_group,
        progress=progress,
        tallies=tallies,
    )


def report_on(
    flow: Flow,
    people: Iterable[Person],
    *,
    title: str,
    description: str,
    now: datetime,
    min_group: int = MIN_GROUP,
    progress: Callable[[int], None] | None = None,
    tallies: ReportTallies | None = None,
) -> CohortReport:
    """The report on `people`, read once (filling in `tallies` as they are read, if given)."""
    funnel: Counter[str] = Counter()
    picture = CohortTally(flow)
    tally = GainTally()
    groups: dict[str, _Group] = {EVERYONE: _Group()}
    if tallies is not None:
        tallies.pictures[EVERYONE] = picture
        tallies.gains = tally
        tallies._groups = groups
    bases: Counter[str] = Counter()
    outcomes: dict[str, Counter[str]] = {}
    for done, person in enumerate(people):
        if progress is not None and done and done % PROGRESS_EVERY == 0:
            progress(PROGRESS_EVERY)
        _count(funnel, person)
        in_groups = (EVERYONE, *(person.initiatives or (NO_INITIATIVE,)))
        if tallies is not None:
            tallies._person(in_groups)
        baseline, checkin = latest_pair(person)
        if baseline is None:
            continue
        before = baseline.options()
        at_baseline = profile(flow, before)
        picture.add(at_baseline)
        if tallies is not None:
            tallies._baseline(in_groups, at_baseline)
        if checkin is not None:
            funnel["checked_in"] += 1
            after = checkin.options()
            compared = gains_between(flow, at_baseline, profile(flow, after))
            bases[compared.basis] += 1
            for group in in_groups:
                _add_pair(tally, groups.setdefault(group, _Group()), group, compared)
            flags = outcome_flags(flow, before, after)
            if tallies is not None:
                tallies._outcomes(in_groups, flags)
            for flag in flags:
                found = outcomes.setdefault(flag.flag, Counter())
                if flag.able_at_baseline is not None and flag.able_at_followup is not None:
                    found["known"] += 1
                    found["before"] += flag.able_at_baseline
                    found["after"] += flag.able_at_followup
                    found["newly"] += flag.newly_able
    estimates = tally.estimates(min_group)
    return CohortReport(
        title=title,
        description=description,
        generated_at=now,
        flow_id=flow.id,
        flow_version=flow.version,
        min_group=min_group,
        funnel=Funnel(
            people=funnel["people"],
            enrolled=funnel["enrolled"],
            started=funnel["started"],
            completed=funnel["completed"],
            checked_in=funnel["checked_in"],
            opted_out=funnel["opted_out"],
            unreachable=funnel["unreachable"],
        ),
        picture=_picture(flow, picture.summary(), min_group),
        impact=Impact(
            pairs=groups[EVERYONE].pairs,
            bases=tuple(
                _withheld_count(key, name, bases[key], sum(bases.values()), min_group)
                for key, name in BASES
            ),
            overall=_overall(estimates, EVERYONE),
            headings=tuple(
                ImpactRow(h.id, _name(h.short), aspect, estimates[(EVERYONE, h.id, aspect)])
                for aspect in ("skill", "interest")
                for h in flow.headings
                if (EVERYONE, h.id, aspect) in estimates
            ),
            items=tuple(
                ImpactRow(unit, unit_name(flow, unit), "skill", estimates[key])
                for unit in unit_order(flow)
                if (key := (EVERYONE, "unit", unit, "skill")) in estimates
            ),
            initiatives=_initiatives(flow, groups, tally, estimates, min_group),
            changes=_changes(groups[EVERYONE], min_group),
            outcomes=tuple(
                _outcome(
                    flow, item.outcome, item.id, outcomes.get(item.outcome, Counter()), min_group
                )
                for item in flow.items
                if item.outcome is not None
            ),
        ),
    )


def latest_pair(person: Person) -> tuple[AssessmentRow | None, AssessmentRow | None]:
    """The person's latest completed baseline, and their latest completed check-in with the
    completed baseline it follows (which then replaces the first: the pair is what the
    impact compares)."""
    completed = {a.id: a for a in person.assessments if a.completed_at is not None}
    baselines = [a for a in completed.values() if a.kind == "baseline"]
    checkins = [
        a
        for a in completed.values()
        if a.kind == "checkin" and a.baseline_id is not None and a.baseline_id in completed
    ]
    if checkins:
        checkin = checkins[-1]
        assert checkin.baseline_id is not None
        return completed[checkin.baseline_id], checkin
    return (baselines[-1] if baselines else None), None


def unit_name(flow: Flow, unit: str) -> str:
    """An item's or a quick-check heading's short English name."""
    if any(heading.id == unit for heading in flow.headings):
        return _name(flow.heading(unit).short)
    return _name(flow.item(unit).short)


def _name(texts: Mapping[str, str]) -> str:
    return texts.get("en") or next(iter(texts.values()))


def _count(funnel: Counter[str], person: Person) -> None:
    funnel["people"] += 1
    funnel["enrolled"] += person.enrolled_at is not None
    funnel["started"] += any(a.answer_count() for a in person.assessments)
    funnel["completed"] += any(
        a.kind == "baseline" and a.completed_at is not None for a in person.assessments
    )
    funnel["opted_out"] += person.opted_out
    funnel["unreachable"] += person.unreachable


def _add_pair(tally: GainTally, group: _Group, name: str, compared: Gains) -> None:
    group.pairs += 1
    if compared.overall is not None:
        tally.add((name, "overall", "skill"), compared.overall)
    interest = mean_of([unit.gain for unit in compared.interests])
    if interest is not None:
        tally.add((name, "overall", "interest"), interest)
    for heading in compared.headings:
        if heading.gain is not None:
            tally.add((name, heading.heading, "skill"), heading.gain)
        if name == EVERYONE and heading.interest is not None:
            tally.add((name, heading.heading, "interest"), heading.interest)
    if name == EVERYONE:
        for unit in compared.units:
            tally.add((name, "unit", unit.unit, "skill"), unit.gain)
    for change, _ in CHANGES:
        group.changes[change] += bool(getattr(compared, change))


def _overall(estimates: Mapping[GainKey, Estimate], group: str) -> tuple[ImpactRow, ...]:
    return tuple(
        ImpactRow("overall", f"All skills ({aspect})", aspect, estimates[key])
        for aspect in ("skill", "interest")
        if (key := (group, "overall", aspect)) in estimates
    )


def _initiatives(
    flow: Flow,
    groups: Mapping[str, _Group],
    tally: GainTally,
    estimates: Mapping[GainKey, Estimate],
    min_group: int,
) -> tuple[InitiativeImpact, ...]:
    """Each initiative's impact, beside everyone's: a group withheld for being small is not
    left to be worked out from the total and the others (`complementary_withheld`), for its
    changes (by pairs) and for each of its rows (by the people in that row)."""
    names = sorted((n for n in groups if n != EVERYONE), key=lambda n: (n == NO_INITIATIVE, n))
    hidden_pairs = complementary_withheld({n: groups[n].pairs for n in names}, min_group)
    rows = [("overall", "skill"), ("overall", "interest")]
    rows += [(h.id, "skill") for h in flow.headings]
    hidden_rows = {
        row: complementary_withheld({n: tally.count((n, *row)) for n in names}, min_group)
        for row in rows
    }

    def shown(name: str, row: tuple[str, str]) -> Estimate:
        found = estimates[(name, *row)]
        return withheld(found) if name in hidden_rows[row] else found

    return tuple(
        InitiativeImpact(
            initiative=name,
            people=groups[name].pairs,
            overall=tuple(
                ImpactRow("overall", f"All skills ({aspect})", aspect, shown(name, row))
                for aspect in ("skill", "interest")
                if (name, *(row := ("overall", aspect))) in estimates
            ),
            headings=tuple(
                ImpactRow(h.id, _name(h.short), "skill", shown(name, (h.id, "skill")))
                for h in flow.headings
                if (name, h.id, "skill") in estimates
            ),
            changes=_changes(groups[name], min_group, hidden=name in hidden_pairs),
        )
        for name in names
    )


def _changes(group: _Group, min_group: int, *, hidden: bool = False) -> tuple[Count, ...]:
    if hidden:
        return tuple(Count(key, name, None, None) for key, name in CHANGES)
    return tuple(
        _withheld_count(key, name, group.changes[key], group.pairs, min_group)
        for key, name in CHANGES
    )


def _withheld_count(key: str, name: str, count: int, of: int, min_group: int) -> Count:
    if of < min_group:
        return Count(key, name, None, None)
    return Count(key, name, count, count / of if of else None)


def _outcome(flow: Flow, flag: str, item: str, found: Counter[str], min_group: int) -> OutcomeCount:
    known = found["known"]
    shown = known >= min_group
    return OutcomeCount(
        flag=flag,
        item=item,
        name=_name(flow.item(item).short),
        known=known,
        able_at_baseline=found["before"] if shown else None,
        able_at_checkin=found["after"] if shown else None,
        newly_able=found["newly"] if shown else None,
    )


def _picture(flow: Flow, summary: CohortSummary, min_group: int) -> Picture:
    if summary.count < min_group:
        return Picture(people=summary.count, withheld=True)
    people = summary.count
    distributions = {d.heading: d for d in summary.distributions}
    return Picture(
        people=people,
        withheld=False,
        missing_basics=tuple(
            Count(i, _name(flow.item(i).short), n, n / people)
            for i, n in summary.missing_basics.items()
        ),
        barriers=tuple(
            Count(i, _name(flow.item(i).short), n, n / people) for i, n in summary.barriers.items()
        ),
        headings=tuple(
            HeadingPicture(
                heading=means.heading,
                name=_name(flow.heading(means.heading).short),
                answered=means.answered,
                skill=means.skill,
                interest=means.interest,
                skill_levels=distributions[means.heading].skill,
                interest_levels=distributions[means.heading].interest,
            )
            for means in summary.headings
        ),
        top_priorities=tuple(
            Count(unit, unit_name(flow, unit), n, n / people)
            for unit, n in list(summary.top_priorities.items())[:TOP_PRIORITIES]
        ),
        skill_levels=_levels(flow, "skill"),
        interest_levels=_levels(flow, "interest"),
    )


def _levels(flow: Flow, aspect: str) -> tuple[str, ...]:
    by_score = {option.score: _name(option.label) for option in flow.scales[aspect].options}
    return tuple(by_score.get(score, str(score)) for score in range(max(by_score) + 1))
