"""Properties of the priorities over random complete answer sets, in both languages.

- Quick and full agree: the same skill and interest answers make the same priorities, in the
  same order, whether asked of a heading (quick check) or of an item (full assessment, where
  interest is asked only where skill is low).
- The neediest hear what they most need: every missing basic and every barrier is named, and
  the first priority, whatever else the message holds.
- Never "doing well" to anyone with a missing basic, a barrier or a low skill.
- Always within the language's budget, with the longest council texts the loader accepts.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flows.loader import FlowError, load_flow
from flows.model import Flow
from flows.segments import count_segments
from scoring import priorities, priorities_message, profile
from scoring.message import unit_name

LANGUAGES = ("en", "cy")
OPTIONS = st.integers(min_value=1, max_value=5)
MAYBE_OPTION = st.one_of(st.none(), OPTIONS)
"""An answer, or none (skipped)."""
NEEDY_OPTION = st.one_of(st.just(1), st.just(1), OPTIONS, st.none())
"""Answers leaning to the first option ("No", "Completely", "Not at all"): the neediest
residents, whose messages are the longest, come up often."""


def longest_accepted_council() -> dict[str, str]:
    """Council texts, every help text and the signposting equally long, as long as the loader
    accepts in every language: the worst a council can make the priorities message."""

    def council(length: int) -> dict[str, str]:
        line = ("Call 07700 900123 for help " * 20)[:length].strip()
        welsh = ("Ffoniwch 07700 900123 am gymorth â chroeso " * 20)[:length].strip()
        texts: dict[str, str] = {"council": "Testshire Council"}
        for key in ("signposting", "help_device", "help_data", "help_skills"):
            texts[key] = line
            texts[f"{key}.cy"] = welsh
        return texts

    low, high = 1, 400  # accepted at `low`, refused at `high`
    while high - low > 1:
        middle = (low + high) // 2
        try:
            load_flow(council=council(middle))
            low = middle
        except FlowError:
            high = middle
    return council(low)


@cache
def english_flow() -> Flow:
    return load_flow(languages=["en"])


@pytest.fixture(scope="module")
def flow() -> Flow:
    return load_flow(council={"council": "Testshire Council"})


@pytest.fixture(scope="module")
def longest_flow() -> Flow:
    return load_flow(council=longest_accepted_council())


def test_the_longest_council_texts_are_long_enough_to_matter(longest_flow: Flow) -> None:
    """A refused length is one character more: the property below is at the very edge."""
    assert len(longest_flow.text("priorities_help_device", "en")) > 20


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(OPTIONS, MAYBE_OPTION), min_size=7, max_size=7))
def test_quick_and_full_agree_on_what_is_a_priority(answers: list[tuple[int, int | None]]) -> None:
    flow = english_flow()
    asked_if = flow.modes["full"].interest_if_skill_at_most
    assert asked_if is not None
    quick: dict[str, int] = {}
    full: dict[str, int] = {}
    for heading, (skill, interest) in zip(flow.headings, answers, strict=True):
        item = next(i.id for i in flow.items if i.heading == heading.id)
        quick[f"{heading.id}.skill"] = full[f"{item}.skill"] = skill
        if interest is None:
            continue
        quick[f"{heading.id}.interest"] = interest
        if flow.scales["skill"].option(skill).score <= asked_if:  # as the full mode asks
            full[f"{item}.interest"] = interest

    from_quick = [(p.heading, p.value) for p in priorities(flow, profile(flow, quick))]
    from_full = [(p.heading, p.value) for p in priorities(flow, profile(flow, full))]

    assert from_quick == from_full


def answer_sets(flow: Flow) -> st.SearchStrategy[dict[str, int]]:
    """A complete assessment in either mode, any question possibly skipped."""
    basics = [i.id for i in flow.items if i.section == "basics"]
    blockers = [i.id for i in flow.items if i.section == "blockers"]

    @st.composite
    def build(draw: st.DrawFn) -> dict[str, int]:
        answers: dict[str, int] = {}
        for item in basics:
            if (option := draw(NEEDY_OPTION)) is not None:
                answers[f"{item}.access"] = option
        for item in blockers:
            if (option := draw(NEEDY_OPTION)) is not None:
                answers[f"{item}.blocker"] = option
        quick = draw(st.booleans())
        units = (
            [h.id for h in flow.headings]
            if quick
            else [i.id for i in flow.items if i.section == "skills"]
        )
        for unit in units:
            if (skill := draw(NEEDY_OPTION)) is not None:
                answers[f"{unit}.skill"] = skill
            if (interest := draw(MAYBE_OPTION)) is not None:
                answers[f"{unit}.interest"] = interest
        return answers

    return build()


def named(flow: Flow, item_ids: tuple[str, ...], language: str) -> list[str]:
    return [flow.item(item_id).short[language] for item_id in item_ids]


def check_message(flow: Flow, answers: Mapping[str, int], language: str) -> None:
    mine = profile(flow, answers)
    text = priorities_message(flow, mine, language, checkin="Gorffennaf 2027")
    count = count_segments(text)
    assert count.segments <= flow.priorities_budgets[language], text
    if language == "en":
        assert count.encoding == "GSM-7", text
    lines = text.splitlines()
    for name in named(flow, mine.missing_basics, language):
        assert name in lines[1], text
    barriers_line = lines[2 if mine.missing_basics else 1] if mine.barriers else ""
    for name in named(flow, mine.barriers, language):
        assert name in barriers_line, text
    ranked = priorities(flow, mine)
    if ranked:
        assert f"1. {unit_name(flow, ranked[0].unit, language)}" in lines, text
    low = any(
        unit.skill is not None and unit.skill <= flow.priority.skill_at_most for unit in mine.units
    )
    if mine.missing_basics or mine.barriers or low or ranked:
        assert not text.startswith(flow.text("priorities_none", language)), text


@pytest.mark.parametrize("language", LANGUAGES)
@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_the_message_names_what_matters_within_budget_with_the_longest_council_texts(
    longest_flow: Flow, language: str, data: st.DataObject
) -> None:
    check_message(longest_flow, data.draw(answer_sets(longest_flow)), language)


@pytest.mark.parametrize("language", LANGUAGES)
@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_the_message_names_what_matters_with_the_shipped_council_texts(
    flow: Flow, language: str, data: st.DataObject
) -> None:
    check_message(flow, data.draw(answer_sets(flow)), language)
