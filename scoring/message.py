"""The respondent's "your priorities" SMS, built only from the flow's texts.

What the resident most needs comes first and is never dropped:
1. `priorities_intro`;
2. `priorities_first_basics` naming every missing basic (no device, no connection);
3. `priorities_first_barriers` naming every barrier (lack of interest counts as one);
4. `priorities_learn_items` ("Things to learn next:") or, when the priorities are a quick
   check's topics, `priorities_learn_topics`, then one `priorities_item` per top priority
   (at most `priority.top`, named by Item.short or Heading.short);
5. the council's help for the needs their answers show (`priorities_help_device`, `_data`,
   `_skills`: the needs of their missing basics and barriers (Item.help), and
   `priority.low_skill_help` for anyone with a skill at most `priority.skill_at_most`), in
   that order, each left out when the council gave none;
6. `priorities_end`, the council's general signposting (left out when empty);
7. `priorities_checkin` with the date, when a check-in is planned.
After a check-in, one line before all of it says what changed since the baseline
(`change_line`): more confident with n things, some harder, or much the same.
With no missing basic, no barrier and no priority, lines 1-4 are one line instead:
`priorities_none` ("doing well") only when they answered some skill and none is low, else
`priorities_unclear`, never "doing well" to someone with low skills or no answers.

Names in a line are joined with ", " and the flow's `list_and`. The message must fit its
language's `[segments.priorities]` budget; when it does not, the lower-ranked priorities are
dropped, last first, then the check-in date, then the line on what changed, and nothing else.
The loader checks `worst_case_messages` at start-up, so a council whose texts leave no room
for what the neediest resident most needs fails then, naming its texts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from bot.render import fill, pick
from flows.model import HELP_NEEDS, Flow, Texts
from flows.segments import count_segments
from scoring.gains import gains
from scoring.priorities import priorities
from scoring.profile import Profile, unit_order

CHECKIN_DATE_SAMPLE = "Gorffennaf 2027"
"""The longest check-in date ({date} is a month and year; Welsh July is the longest month
name in the shipped languages), for the worst case the loader checks."""


@dataclass(frozen=True)
class Findings:
    """What the priorities message says, as names in the respondent's language."""

    basics: Sequence[str] = ()
    barriers: Sequence[str] = ()
    names: Sequence[str] = ()
    """The top priorities' short names, in rank order."""
    topics: bool = False
    """The priorities are a quick check's topics rather than single skills."""
    needs: Sequence[str] = ()
    """The kinds of help (HELP_NEEDS) their answers call for."""
    doing_well: bool = False
    """They answered some skill and none is low: said only when nothing else is."""
    change: str = ""
    """After a check-in, what changed since the baseline (`change_line`), said first."""


def priorities_message(
    flow: Flow, profile: Profile, language: str, checkin: str | None = None, change: str = ""
) -> str:
    """The message for this profile; `checkin` is when the council will text again, if a
    check-in is planned (e.g. "March 2027"); `change`, after a check-in, what changed."""
    ranked = priorities(flow, profile)[: flow.priority.top]
    headings = {heading.id for heading in flow.headings}
    findings = Findings(
        basics=[_pick(flow, flow.item(i).short, language) for i in profile.missing_basics],
        barriers=[_pick(flow, flow.item(i).short, language) for i in profile.barriers],
        names=[unit_name(flow, p.unit, language) for p in ranked],
        topics=bool(ranked) and ranked[0].unit in headings,
        needs=help_needs(flow, profile),
        doing_well=_doing_well(flow, profile),
        change=change,
    )
    return compose(flow, language, findings, checkin)


def change_line(
    flow: Flow,
    baseline: Mapping[str, int],
    answers: Mapping[str, int],
    since: str,
    language: str,
) -> str:
    """One line on what changed since the baseline, from skills answered both times: more
    confident with n things, else some things harder, else much the same."""
    compared = gains(flow, baseline, answers).units
    better = sum(unit.gain > 0 for unit in compared)
    worse = sum(unit.gain < 0 for unit in compared)
    if better:
        key = "change_better_one" if better == 1 else "change_better_many"
    else:
        key = "change_worse" if worse else "change_same"
    return fill(flow.text(key, language), n=better, since=since)


def help_needs(flow: Flow, profile: Profile) -> tuple[str, ...]:
    """The kinds of help the answers call for, in HELP_NEEDS order."""
    needs = {
        need for i in (*profile.missing_basics, *profile.barriers) for need in flow.item(i).help
    }
    if any(_is_low(flow, unit.skill) for unit in profile.units):
        needs.add(flow.priority.low_skill_help)
    return tuple(need for need in HELP_NEEDS if need in needs)


def _is_low(flow: Flow, skill: int | None) -> bool:
    return skill is not None and skill <= flow.priority.skill_at_most


def _doing_well(flow: Flow, profile: Profile) -> bool:
    skills = [unit.skill for unit in profile.units if unit.skill is not None]
    return bool(skills) and not any(_is_low(flow, skill) for skill in skills)


def compose(flow: Flow, language: str, findings: Findings, checkin: str | None = None) -> str:
    """The message for these findings, within the language's priorities budget: when it does
    not fit, the lower priorities go first (the last first), then the check-in date, then
    the line on what changed; never what the resident most needs."""

    def text(key: str, **values: object) -> str:
        return fill(flow.text(key, language), **values)

    change = [findings.change] if findings.change else []
    kept: list[str] = []
    lower: list[str] = []
    if not (findings.basics or findings.barriers or findings.names):
        kept.append(text("priorities_none" if findings.doing_well else "priorities_unclear"))
    else:
        kept.append(text("priorities_intro"))
        if findings.basics:
            basics = join_names(flow, language, findings.basics)
            kept.append(text("priorities_first_basics", basics=basics))
        if findings.barriers:
            barriers = join_names(flow, language, findings.barriers)
            kept.append(text("priorities_first_barriers", barriers=barriers))
        if findings.names:
            kept.append(
                text("priorities_learn_topics" if findings.topics else "priorities_learn_items")
            )
            items = [
                text("priorities_item", rank=str(rank), name=name)
                for rank, name in enumerate(findings.names, 1)
            ]
            kept.append(items[0])
            lower = items[1:]
    helps = [text(f"priorities_help_{need}") for need in findings.needs]
    tail = [line for line in (*helps, text("priorities_end")) if line]
    date = [text("priorities_checkin", date=checkin)] if checkin else []

    def message() -> str:
        return "\n".join((*change, *kept, *lower, *tail, *date))

    budget = flow.priorities_budgets[language]
    for optional in (lower, date, change):
        while optional and not fits(message(), budget):
            optional.pop()
    return message()


def worst_case_messages(flow: Flow, language: str) -> list[str]:
    """The longest priorities messages the flow can send in `language`: every basic missing,
    every blocker a barrier, the `priority.top` longest unit names, every kind of help and a
    check-in date; and the one-line "doing well" and "nothing stood out" forms with the help."""
    basics = [_pick(flow, i.short, language) for i in flow.items if i.section == "basics"]
    barriers = [_pick(flow, i.short, language) for i in flow.items if i.section == "blockers"]
    names = sorted(
        (unit_name(flow, unit_id, language) for unit_id in unit_order(flow)),
        key=lambda name: count_segments(name).units,
        reverse=True,
    )[: flow.priority.top]
    topics = (
        count_segments(flow.text("priorities_learn_topics", language)).units
        > count_segments(flow.text("priorities_learn_items", language)).units
    )
    change = max(
        (
            fill(flow.text(key, language), n=48, since=CHECKIN_DATE_SAMPLE)
            for key in ("change_better_one", "change_better_many", "change_worse", "change_same")
        ),
        key=lambda line: count_segments(line).units,
    )
    needy = Findings(basics, barriers, names, topics, HELP_NEEDS, change=change)
    return [
        compose(flow, language, needy, CHECKIN_DATE_SAMPLE),
        compose(flow, language, Findings(needs=HELP_NEEDS, change=change), CHECKIN_DATE_SAMPLE),
        compose(flow, language, Findings(doing_well=True, change=change), CHECKIN_DATE_SAMPLE),
    ]


def unit_name(flow: Flow, unit_id: str, language: str) -> str:
    """A skill unit's plain short name: the item's, or the heading's for a quick check."""
    for heading in flow.headings:
        if heading.id == unit_id:
            return _pick(flow, heading.short, language)
    return _pick(flow, flow.item(unit_id).short, language)


def join_names(flow: Flow, language: str, names: Sequence[str]) -> str:
    """ "a", "a and b", "a, b and c" (the "and" from the flow's `list_and`)."""
    if len(names) == 1:
        return names[0]
    return fill(flow.text("list_and", language), first=", ".join(names[:-1]), last=names[-1])


def fits(text: str, budget: int) -> bool:
    return count_segments(text).segments <= budget


def _pick(flow: Flow, texts: Texts, language: str) -> str:
    return pick(texts, language, flow.languages[0])
