"""Replies are read as choices the way a person means them, and never guessed when unclear."""

from __future__ import annotations

import pytest

from bot.matching import Match, command_of, edit_distance, match_option, normalise
from flows.loader import load_flow
from flows.model import Flow


@pytest.fixture(scope="module")
def flow() -> Flow:
    return load_flow()


def access(flow: Flow, text: str) -> Match:
    return match_option(flow, flow.scales["access"].options, text, ["en"])


@pytest.mark.parametrize(
    "text",
    [
        "2",
        " 2 ",
        "2.",
        "2)",
        "(2)",
        "two",
        "Two",
        "TWO ",
        "b",
        "B)",
        "b.",
        "2\u200b",
        "\u200b2",
        "２",
        "2\r\n",
        "2 occasionally",
        "occasionally",
        "Occasionally!",
        "ocasionally",
        "occassionally",
    ],
)
def test_every_way_of_saying_option_two(flow: Flow, text: str) -> None:
    assert access(flow, text) == Match(2)


@pytest.mark.parametrize("text", ["6", "0", "99", "f", "z", "12"])
def test_numbers_and_letters_outside_the_options_are_out_of_range(flow: Flow, text: str) -> None:
    assert access(flow, text) == Match(None, out_of_range=True)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "2 or 3",
        "2 always",
        "maybe later?",
        "😀",
        "مرحبا",
        "'; DROP TABLE x; --",
        "<b>1</b>",
        "\x00\x07",
        "1" * 1600,
        "so",
        "al",
    ],
)
def test_unclear_replies_choose_nothing(flow: Flow, text: str) -> None:
    assert access(flow, text).option is None


def test_a_typo_close_to_two_options_is_not_guessed(flow: Flow) -> None:
    skill = flow.scales["skill"].options
    words = {w for o in skill for w in o.words["en"]}
    assert "teach" in words
    assert match_option(flow, skill, "teach", ["en"]) == Match(5)


@pytest.mark.parametrize(
    ("text", "command"),
    [
        ("HELP", "help"),
        ("help", "help"),
        (" Help ", "help"),
        ("/help", "help"),
        ("STOP", "stop"),
        ("stop.", "stop"),
        ("Unsubscribe", "stop"),
        ("quit", "stop"),
        ("/start", "start"),
        ("/start@dibot_bot", "start"),
        ("START", "start"),
        ("back", "back"),
        ("Skip", "skip"),
        ("LATER", "later"),
        ("restart", "restart"),
        ("repeat", "repeat"),
    ],
)
def test_commands_in_any_case(flow: Flow, text: str, command: str) -> None:
    assert command_of(flow, text, ["en"]) == command


@pytest.mark.parametrize(
    "text", ["stop it please", "help me with 2", "2", "", "/foo", "yes please"]
)
def test_a_command_is_the_whole_message(flow: Flow, text: str) -> None:
    assert command_of(flow, text, ["en"]) is None


def test_normalise_folds_what_keyboards_add() -> None:
    assert normalise("  \u201cN\u00f4l\u201d\u200b ") == "nol"
    assert normalise("B)") == "b"
    assert normalise("\u202eright\u202c") == "right"


def test_edit_distance_counts_a_swap_as_one() -> None:
    assert edit_distance("two", "tow", 2) == 1
    assert edit_distance("always", "alwyas", 2) == 1
    assert edit_distance("sometimes", "never", 2) == 3


@pytest.mark.parametrize("text", ["bit", "fine", "done", "gone", "on", "to", "live", "tow", "won"])
def test_a_short_word_one_edit_from_an_option_is_not_taken_for_it(flow: Flow, text: str) -> None:
    """ "bit" is not "big" (a lot) and "fine" is not "five": short words are other words."""
    blocker = flow.scales["blocker"].options
    assert match_option(flow, blocker, text, ["en"]).option is None
    assert access(flow, text).option is None


def test_a_question_mark_alone_asks_for_help(flow: Flow) -> None:
    assert command_of(flow, "?", ["en"]) == "help"
    assert command_of(flow, " ? ", ["en"]) == "help"
