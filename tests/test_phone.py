"""Phone numbers as outreach workers type them: one E.164 form, or a refusal that says why."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from outreach.phone import (
    LineType,
    PhoneNumber,
    PhoneNumberError,
    can_receive_sms,
    normalise_phone,
    parse_phone,
    urn_for_e164,
    urn_for_phone,
)

DRAMA_MOBILE = "+447700900123"


@pytest.mark.parametrize(
    "typed",
    [
        "07700 900123",
        "07700900123",
        "+44 7700 900123",
        "+447700900123",
        "0044 7700 900123",
        "(07700) 900-123",
        "+44 (0) 7700 900123",
        "07700.900.123",
        "  07700 900 123  ",
        "447700900123",
    ],
)
def test_the_ways_a_uk_mobile_is_written_give_one_e164_number(typed: str) -> None:
    assert normalise_phone(typed) == DRAMA_MOBILE
    assert parse_phone(typed) == PhoneNumber(DRAMA_MOBILE, "mobile")


@pytest.mark.parametrize("last", ["000", "123", "999"])
def test_ofcoms_whole_drama_range_counts_as_uk_mobiles(last: str) -> None:
    number = parse_phone(f"07700 900{last}")
    assert number.e164 == f"+447700900{last}"
    assert number.can_receive_sms


@pytest.mark.parametrize(
    ("typed", "e164", "line_type"),
    [
        ("020 7946 0000", "+442079460000", "landline"),
        ("0113 496 0000", "+441134960000", "landline"),
        ("07911 123456", "+447911123456", "mobile"),
        ("07624 123456", "+447624123456", "mobile"),  # Isle of Man, also +44
    ],
)
def test_other_uk_numbers_keep_their_kind(typed: str, e164: str, line_type: LineType) -> None:
    assert parse_phone(typed) == PhoneNumber(e164, line_type)


def test_only_mobiles_can_receive_sms() -> None:
    assert can_receive_sms("07700 900123")
    assert not can_receive_sms("020 7946 0000")


def test_another_region_reads_its_own_national_format() -> None:
    number = parse_phone("(202) 555-0143", region="US")
    assert number == PhoneNumber("+12025550143", "landline_or_mobile")
    assert number.can_receive_sms
    assert parse_phone("+1 202 555 0143", region="us").e164 == "+12025550143"


def test_an_unknown_region_is_a_programming_error_not_a_bad_number() -> None:
    with pytest.raises(ValueError, match="not a region code") as caught:
        parse_phone("07700 900123", region="XX")
    assert not isinstance(caught.value, PhoneNumberError)


@pytest.mark.parametrize(
    ("typed", "problem"),
    [
        ("", "phone number is empty"),
        ("   ", "phone number is empty"),
        ("abc", "has letters in it"),
        ("07700 9OO123", "has letters in it"),  # letter O for zero
        ("07700900123x", "has letters in it"),
        ("tel:+447700900123", "has letters in it"),
        ("０７７００ ９００１２３", "has digits other than 0-9"),
        ("٠٧٧٠٠٩٠٠١٢٣", "has digits other than 0-9"),
        ("①②③", "has digits other than 0-9"),
        ("07700–900123", "has characters other than digits"),  # an en dash
        ("07700_900123", "has characters other than digits"),
        ("07700\x00900123", "has characters other than digits"),
        ("++447700900123", "has a \\+ that is not at the start"),
        ("07700+900123", "has a \\+ that is not at the start"),
        ("5" * 50, "too long: 50 digits, and a number has at most 15"),
        ("0" + " " * 70 + "7700900123", "too long: over 64 characters"),
        ("123", "too short for a UK number"),
        ("+44 7700 9001", "too short for a UK number"),
        ("077009001234", "too long for a UK number"),
        ("0", "not a phone number"),
        ("+", "not a phone number"),
        ("+999 1234 5678", "does not start with a valid country code"),
        ("+33 6 12 34 56 78", "not a UK number: \\+33 is another country's code"),
        ("+1 202 555 0143", "not a UK number: \\+1 is another country's code"),
        ("01632 960000", "not a valid UK mobile or landline number"),
        ("07700 90012", "not a valid UK mobile or landline number"),
        ("0800 123 4567", "a freephone number, not a mobile or landline"),
        ("0909 879 0000", "a premium-rate number, not a mobile or landline"),
        ("056 1234 5678", "an internet \\(VoIP\\) number, not a mobile or landline"),
        ("070 1234 5678", "a personal \\(follow-me\\) number, not a mobile or landline"),
        ("0303 123 4567", "a non-geographic \\(UAN\\) number, not a mobile or landline"),
    ],
)
def test_anything_else_is_refused_naming_what_is_wrong(typed: str, problem: str) -> None:
    with pytest.raises(PhoneNumberError, match=f"^{problem}"):
        parse_phone(typed)


@given(st.text(max_size=30))
def test_any_text_is_a_number_or_a_phone_number_error_never_a_crash(text: str) -> None:
    try:
        number = parse_phone(text)
    except PhoneNumberError as error:
        problem = str(error)
    else:
        assert re.fullmatch(r"\+44[0-9]{9,10}", number.e164)
        assert normalise_phone(number.e164) == number.e164
        return
    assert problem


@given(st.integers(min_value=0, max_value=999))
def test_an_error_never_repeats_the_number_it_refused(last: int) -> None:
    typed = f"07700 900{last:03}0"  # one digit too many
    with pytest.raises(PhoneNumberError) as caught:
        parse_phone(typed)
    assert f"{last:03}" not in str(caught.value)


def test_the_urn_is_tel_and_e164_as_the_twilio_webhook_builds_it() -> None:
    # channels/twilio_sms.py: urn="tel:" + form["From"], and Twilio sends From in E.164.
    twilio_from = "+447700900123"
    assert urn_for_phone("07700 900123") == "tel:" + twilio_from
    assert parse_phone("(07700) 900-123").urn == "tel:" + twilio_from
    assert urn_for_e164(twilio_from) == "tel:+447700900123"
