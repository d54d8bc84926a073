"""Replies are read as choices the way a person means them, and never guessed when unclear."""

from __future__ import annotations

from dataclasses import replace

import pytest

from bot.matching import Match, command_of, edit_distance, match_option, normalise
from flows.loader import load_flow
from flows.model import Flow, Option


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


def on(flow: Flow, scale: str, text: str, languages: tuple[str, ...] = ("en", "cy")) -> Match:
    chosen = flow.scales[scale]
    return match_option(flow, chosen.options, text, languages, chosen.pairs)


@pytest.mark.parametrize(
    ("scale", "text", "option"),
    [
        ("access", "no", 1),
        ("access", "Nope", 1),
        ("access", "👎", 1),
        ("access", "👎🏿", 1),  # a thumbs-down in any skin tone
        ("access", "not really", 2),
        ("access", "of course", 5),
        ("blocker", "no", 5),  # "How much does it stop you?" "No": not at all
        ("blocker", "not really", 4),
        ("skill", "I'd try", 3),  # the start of "I'd try, may need help"
        ("skill", "I’d try", 3),  # with a phone's curly apostrophe
        ("skill", "i'd try may", 3),
        ("skill", "could", 5),  # "Could teach others"
        ("skill", "only with", 2),
        ("skill", "can't", 1),
        ("skill", "no", 1),
        ("skill", "not really", 2),
        ("skill", "I have no ability", 1),  # the option's full wording
        ("interest", "no", 1),
        ("interest", "not really", 2),
        ("interest", "dunno", 3),
        ("interest", "sure", 5),
        ("interest", "👎", 1),
        ("access", "nac oes", 1),
        ("skill", "ddim go iawn", 2),
        ("interest", "ddim o gwbl", 1),
    ],
)
def test_what_people_type_chooses_the_option_it_means(
    flow: Flow, scale: str, text: str, option: int
) -> None:
    assert on(flow, scale, text) == Match(option)


@pytest.mark.parametrize(
    ("scale", "text", "pair"),
    [
        ("access", "yes", (4, 5)),  # "Do you have…?" "Yes": usually, or always?
        ("access", "Yeah!", (4, 5)),
        ("access", "👍", (4, 5)),
        ("access", "👍🏽", (4, 5)),
        ("access", "oes", (4, 5)),
        ("blocker", "yes", (1, 2)),  # "How much does it stop you?" "Yes": completely, a lot?
        ("skill", "yes", (4, 5)),
        ("skill", "gallaf", (4, 5)),
        ("interest", "yes", (4, 5)),
        ("interest", "I would", (4, 5)),
        ("interest", "byddwn", (4, 5)),
    ],
)
def test_a_word_that_fits_two_options_asks_which(
    flow: Flow, scale: str, text: str, pair: tuple[int, int]
) -> None:
    assert on(flow, scale, text) == Match(None, either=pair)


@pytest.mark.parametrize("text", ["i", "I'd", "I'm", "no way out", "i have"])
def test_too_little_of_an_option_is_not_guessed(flow: Flow, text: str) -> None:
    """One short leading word ("I", "not") begins too many options to choose one."""
    assert on(flow, "skill", text).option is None
    assert on(flow, "skill", text).either is None


def test_leading_words_of_a_prompt_option_choose_it(flow: Flow) -> None:
    restart = flow.prompts["restart"].options  # "Start again", "Carry on where I was"
    assert match_option(flow, restart, "carry on where", ["en"]) == Match(2)
    mode = flow.prompts["mode"].options
    assert match_option(flow, mode, "Full: 56", ["en"]) == Match(2)


def test_leading_words_that_begin_two_options_ask_which(flow: Flow) -> None:
    def option(number: int, sms: str) -> Option:
        return Option(number, number - 1, {"en": sms}, {"en": sms}, {"en": ()})

    often = (option(1, "Every day"), option(2, "Every week"), option(3, "Never"))

    assert match_option(flow, often, "every", ["en"]) == Match(None, either=(1, 2))
    assert match_option(flow, often, "every week", ["en"]) == Match(2)


@pytest.mark.parametrize("text", ["❶", "➀", "⓵", "፩", "9" * 5000, "1" * 7])
def test_signs_that_look_like_digits_and_huge_numbers_are_no_answer_and_no_crash(
    flow: Flow, text: str
) -> None:
    assert on(flow, "skill", text).option is None


@pytest.mark.parametrize(("text", "option"), [("٢", 2), ("२", 2), ("①", 1), ("003", 3)])
def test_decimal_digits_of_any_script_are_numbers(flow: Flow, text: str, option: int) -> None:
    assert on(flow, "skill", text) == Match(option)


def test_long_replies_are_never_cached_so_memory_stays_bounded() -> None:
    from bot.matching import CACHED_MAX_CHARS, _normalise_cached

    before = _normalise_cached.cache_info()
    for number in range(200):
        normalise(f"{number} " + "a long reply that no option could ever be " * 100)
    after = _normalise_cached.cache_info()

    assert after.currsize == before.currsize
    assert normalise("Ÿ" * (CACHED_MAX_CHARS + 1)) == "y" * (CACHED_MAX_CHARS + 1)  # still folded


def test_inbound_text_is_cleaned_and_bounded_once_at_the_edge() -> None:
    from bot.messages import MAX_TEXT_CHARS, clean_text

    assert clean_text("2\x00\ud800\x1b") == "2"
    assert clean_text("line\nbreak\tkept") == "line\nbreak\tkept"
    assert len(clean_text("9" * 100_000)) == MAX_TEXT_CHARS


def test_a_command_is_read_in_the_first_language_that_has_it(flow: Flow) -> None:
    assert command_of(flow, "Beth", ["en", "cy"]) == "repeat"
    assert command_of(flow, "Beth", ["en"]) is None
    # A flow whose Welsh says "help" with the word English uses for "start": the respondent's
    # language comes first, then the others.
    commands = {name: dict(words) for name, words in flow.commands.items()}
    commands["help"]["cy"] = (*commands["help"]["cy"], "resume")
    changed = replace(flow, commands=commands)
    assert command_of(changed, "RESUME", ["cy", "en"]) == "help"
    assert command_of(changed, "RESUME", ["en", "cy"]) == "start"
    # Each flow is read with its own words, however many are in use.
    assert command_of(flow, "RESUME", ["cy", "en"]) == "start"
