"""Outcome flags for cost-benefit models (such as GMCA's): was a person able to do a counted
thing (bank online, apply for jobs online…) at baseline, and at the follow-up?

One flag per skill item with an `Item.outcome`, in flow order. Able means that item's skill
score is confident, above `priority.skill_at_most`; None where that item's skill was not
answered in that assessment (skipped, not re-asked, or a quick check, which answers headings
only): a heading's answer is never taken for one of its items. Newly able is not able at
baseline and able at the follow-up, both known. Money values stay in the model that counts
these flags.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from flows.model import Flow, Item


@dataclass(frozen=True)
class OutcomeFlag:
    flag: str
    """The outcome's name, e.g. "bank_online"."""
    item: str
    able_at_baseline: bool | None
    able_at_followup: bool | None

    @property
    def newly_able(self) -> bool:
        return self.able_at_baseline is False and self.able_at_followup is True


def outcome_items(flow: Flow) -> tuple[Item, ...]:
    """The items that feed an outcome flag, in flow order."""
    return tuple(item for item in flow.items if item.outcome is not None)


def outcome_flag_names(flow: Flow) -> tuple[str, ...]:
    """Every outcome flag of the flow, in flow order (e.g. for export columns)."""
    return tuple(item.outcome for item in flow.items if item.outcome is not None)


def outcome_flags(
    flow: Flow,
    baseline_answers: Mapping[str, int],
    followup_answers: Mapping[str, int] | None = None,
) -> tuple[OutcomeFlag, ...]:
    """The flags for one person; `followup_answers` None before any check-in."""
    return tuple(
        OutcomeFlag(
            item.outcome,
            item.id,
            able(flow, baseline_answers, item.id),
            None if followup_answers is None else able(flow, followup_answers, item.id),
        )
        for item in flow.items
        if item.outcome is not None
    )


def able(flow: Flow, answers: Mapping[str, int], item_id: str) -> bool | None:
    """Whether the item's skill was answered confident; None when it was not answered. An
    option number the skill scale does not have is a ValueError naming the key."""
    key = f"{item_id}.skill"
    number = answers.get(key)
    if number is None:
        return None
    scale = flow.scales["skill"]
    try:
        score = scale.option(number).score
    except KeyError:
        raise ValueError(
            f"answer to {key!r} is {number!r}, not an option of scale {scale.id}"
        ) from None
    return score > flow.priority.skill_at_most
