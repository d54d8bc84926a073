"""What a text costs to send: the segment counts a council pays for."""

from __future__ import annotations

import pytest

from flows.segments import SegmentCount, count_segments, gsm7_septets, is_gsm7


@pytest.mark.parametrize(
    ("length", "segments"),
    [(1, 1), (160, 1), (161, 2), (306, 2), (307, 3), (459, 3), (460, 4)],
)
def test_gsm7_is_160_septets_alone_then_153_a_part(length: int, segments: int) -> None:
    assert count_segments("a" * length) == SegmentCount("GSM-7", length, segments)


def test_plain_english_and_gsm7_accents_stay_gsm7() -> None:
    text = "Got it. 3/22 Do you have a place? @ £5 é è à ü ñ ß Ä Δ _ ! ( ) - ' \" / ?"
    assert is_gsm7(text)
    assert count_segments(text).units == len(text)


@pytest.mark.parametrize("char", ["^", "{", "}", "[", "]", "~", "|", "€", "\\"])
def test_extension_characters_cost_two_septets(char: str) -> None:
    assert gsm7_septets(char) == 2
    assert count_segments(char * 80) == SegmentCount("GSM-7", 160, 1)
    assert count_segments("a" + char * 80) == SegmentCount("GSM-7", 161, 2)


def test_an_extension_character_is_never_split_between_parts() -> None:
    # 152 septets then one two-septet character: it goes whole into the second part.
    text = "a" * 152 + "€" + "a" * 152
    assert count_segments(text) == SegmentCount("GSM-7", 306, 3)
    assert count_segments("a" * 151 + "€" + "a" * 153).segments == 2


@pytest.mark.parametrize(
    ("length", "segments"),
    [(1, 1), (70, 1), (71, 2), (134, 2), (135, 3), (201, 3), (202, 4)],
)
def test_ucs2_is_70_units_alone_then_67_a_part(length: int, segments: int) -> None:
    text = "\u201c" + "a" * (length - 1)  # one curly quote makes the whole text UCS-2
    assert count_segments(text) == SegmentCount("UCS-2", length, segments)


@pytest.mark.parametrize(
    "char",
    ["\u2018", "\u2019", "\u201c", "\u201d", "\u2013", "\u2014", "\u2026", "\u00a0", "`"],
)
def test_typographic_punctuation_forces_ucs2(char: str) -> None:
    assert not is_gsm7(f"Got it{char}")
    assert count_segments(f"Got it{char}").encoding == "UCS-2"


def test_an_emoji_counts_two_code_units() -> None:
    assert count_segments("\U0001f600") == SegmentCount("UCS-2", 2, 1)
    assert count_segments("\U0001f600" * 35) == SegmentCount("UCS-2", 70, 1)
    assert count_segments("\U0001f600" * 36) == SegmentCount("UCS-2", 72, 2)
    assert count_segments("Thanks \U0001f44d").units == 9


def test_an_emoji_is_never_split_between_parts() -> None:
    # 66 units then an emoji: its two units go together into the second part.
    text = "\u2019" + "a" * 65 + "\U0001f600" + "a" * 66
    assert count_segments(text) == SegmentCount("UCS-2", 134, 3)


@pytest.mark.parametrize("letter", ["â", "ê", "î", "ô", "û", "ŵ", "ŷ", "Ŵ", "Ŷ", "Â"])
def test_welsh_letters_force_ucs2(letter: str) -> None:
    assert not is_gsm7(letter)
    assert count_segments(letter).encoding == "UCS-2"


def test_a_welsh_question_is_budgeted_as_ucs2_not_stripped() -> None:
    question = "3/22 Oes gennych chi le i fynd ar-lein? Mae'n ddrwg gen i, ŵyr bach."
    count = count_segments(question)
    assert count.encoding == "UCS-2"
    assert count.units == len(question)
    assert count.segments == 1
    assert count_segments(question + " Diolch yn fawr.").segments == 2


def test_the_escape_character_is_not_taken_for_gsm7_text() -> None:
    assert not is_gsm7("a\x1bb")
    assert count_segments("a\x1bb").encoding == "UCS-2"


def test_empty_text_is_one_segment() -> None:
    assert count_segments("") == SegmentCount("GSM-7", 0, 1)
