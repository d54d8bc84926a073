"""The respondent's "your priorities" SMS, built only from the flow's texts.

Lines, in order: `priorities_intro`; `priorities_first_basics` naming every missing basic (no
device, no connection) when any; `priorities_first_barriers` naming every barrier when any;
then one `priorities_item` per top priority (at most `priority.top`, named by Item.short or,
for a quick check, Heading.short); last `priorities_end` (the council's signposting). With no
missing basic, no barrier and no priority the message is `priorities_none` then
`priorities_end`. Names in a line are joined with ", " and the flow's `list_and`. An empty
`priorities_end` (no signposting configured) adds no line.

The message must fit its language's SMS segment budget (flow.segment_budgets: two GSM-7
segments in English, three UCS-2 segments in Welsh). When it does not, whole lines are dropped
from the lowest-ranked up: the last priority first, then the others, then the barriers line.
The intro, the missing basics and the signposting always stay, and no line is ever cut
mid-word. The loader checks `worst_case_messages` at start-up, so a council whose
signposting leaves no room fails then, not in front of a respondent.
"""

from __future__ import annotations

from collections.abc import Sequence

from bot.render import fill, pick
from flows.model import Flow, Texts
from flows.segments import count_segments
from scoring.priorities import priorities
from scoring.profile import Profile, unit_order


def priorities_message(flow: Flow, profile: Profile, language: str) -> str:
    ranked = priorities(flow, profile)[: flow.priority.top]
    return compose(
        flow,
        language,
        basics=[_pick(flow, flow.item(i).short, language) for i in profile.missing_basics],
        barriers=[_pick(flow, flow.item(i).short, language) for i in profile.barriers],
        names=[unit_name(flow, p.unit, language) for p in ranked],
    )


def compose(
    flow: Flow,
    language: str,
    basics: Sequence[str],
    barriers: Sequence[str],
    names: Sequence[str],
) -> str:
    """The message for these missing basics, barriers and ranked priority names."""
    end = [text] if (text := flow.text("priorities_end", language)) else []
    if not (basics or barriers or names):
        return "\n".join((flow.text("priorities_none", language), *end))
    kept = [flow.text("priorities_intro", language)]
    if basics:
        template = flow.text("priorities_first_basics", language)
        kept.append(fill(template, basics=join_names(flow, language, basics)))
    droppable = []
    if barriers:
        template = flow.text("priorities_first_barriers", language)
        droppable.append(fill(template, barriers=join_names(flow, language, barriers)))
    template = flow.text("priorities_item", language)
    droppable.extend(fill(template, rank=str(n), name=name) for n, name in enumerate(names, 1))
    budget = flow.segment_budgets[language]
    while droppable and not fits("\n".join((*kept, *droppable, *end)), budget):
        droppable.pop()
    return "\n".join((*kept, *droppable, *end))


def worst_case_messages(flow: Flow, language: str) -> list[str]:
    """The longest priorities messages the flow can send in `language`.

    Every basic missing, every blocker a barrier, and the `priority.top` longest unit names
    (items and headings alike); then the same without basics, without barriers, and the
    "doing well" message.
    """
    basics = [_pick(flow, i.short, language) for i in flow.items if i.section == "basics"]
    barriers = [_pick(flow, i.short, language) for i in flow.items if i.section == "blockers"]
    names = sorted(
        (unit_name(flow, unit_id, language) for unit_id in unit_order(flow)),
        key=lambda name: count_segments(name).units,
        reverse=True,
    )[: flow.priority.top]
    return [
        compose(flow, language, basics, barriers, names),
        compose(flow, language, [], barriers, names),
        compose(flow, language, [], [], names),
        compose(flow, language, [], [], []),
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
