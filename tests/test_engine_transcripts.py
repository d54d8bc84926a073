"""Every transcript in tests/transcripts replays through step() exactly, state reloaded from
JSON between turns, and every message it sends in English is GSM-7, within its budget (two
segments; the priorities message three; a run of questions asked in one text four)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.engine import step
from bot.state import State
from flows.loader import load_flow
from flows.model import Flow
from flows.segments import count_segments
from tests.transcript import TEST_COUNCIL, all_transcripts, parse


@pytest.fixture(scope="module")
def council_flow() -> Flow:
    return load_flow(council=TEST_COUNCIL)


@pytest.mark.parametrize("path", all_transcripts(), ids=lambda p: p.stem)
def test_transcript_replays_through_the_engine(council_flow: Flow, path: Path) -> None:
    state = State()
    for index, exchange in enumerate(parse(path), start=1):
        turn = step(council_flow, State.from_json(state.to_json()), exchange.inbound, exchange.at)
        said = [message.text for message in turn.outbound]
        assert said == exchange.replies, f"{path.name}, message {index}: {exchange.sent!r}"
        budgets = council_flow.segment_budgets
        if turn.state.stage == "done":  # the priorities message has a budget of its own
            budgets = council_flow.priorities_budgets
        elif turn.state.batch and turn.state.stage == "asking":  # a run in one text too
            budgets = council_flow.batch_budgets
        budget = budgets[turn.state.language]
        for text in said:
            count = count_segments(text)
            assert count.segments <= budget, text
            if turn.state.language == "en":
                assert count.encoding == "GSM-7", text
        state = turn.state


def test_there_are_transcripts_for_both_assessments() -> None:
    names = {path.stem for path in all_transcripts()}
    assert {"quick_check_digits", "full_assessment_digits"} <= names
