"""Phone numbers as an outreach worker types them, read once into E.164 or refused by name.

A number is read in a region (the UK by default): "07700 900123", "+44 7700 900123",
"0044 7700 900123" and "(07700) 900-123" are all +447700900123. It must be a valid mobile or
landline number of that region's country code (+44 takes in the Isle of Man, Jersey and
Guernsey); anything else is refused with a `PhoneNumberError` that says what is wrong (empty,
letters, digits other than 0-9, too short, too long, another country, a freephone number…)
and never repeats the number itself, which is personal data. Ofcom's drama range, 07700
900000 to 07700 900999, counts as a UK mobile: no phone has one, and it is what tests and
documentation use. A number can be texted when it is a mobile (or, in countries that do not
tell them apart, a landline-or-mobile). Its urn is "tel:" and the E.164 form, as
`channels.twilio_sms` builds it from Twilio's `From`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberType, ValidationResult

DEFAULT_REGION = "GB"
MAX_INPUT_LENGTH = 64
"""Characters, spaces and brackets included: "+44 (0) 7700 900 123" is 20."""
MAX_DIGITS = 17
"""E.164 allows 15 digits; "00" before the country code makes 17."""
ALLOWED_CHARACTERS = re.compile(r"[0-9 +()\-.]*")
DRAMA_RANGE = re.compile(r"\+447700900[0-9]{3}")
"""Ofcom's numbers for drama: +447700900000 to +447700900999."""
REGION_NAMES = {"GB": "UK"}

LineType = Literal["mobile", "landline", "landline_or_mobile"]
LINE_TYPES: dict[int, LineType] = {
    PhoneNumberType.MOBILE: "mobile",
    PhoneNumberType.FIXED_LINE: "landline",
    PhoneNumberType.FIXED_LINE_OR_MOBILE: "landline_or_mobile",
}
OTHER_TYPES = {
    PhoneNumberType.TOLL_FREE: "a freephone number",
    PhoneNumberType.PREMIUM_RATE: "a premium-rate number",
    PhoneNumberType.SHARED_COST: "a shared-cost number",
    PhoneNumberType.VOIP: "an internet (VoIP) number",
    PhoneNumberType.PERSONAL_NUMBER: "a personal (follow-me) number",
    PhoneNumberType.PAGER: "a pager number",
    PhoneNumberType.UAN: "a non-geographic (UAN) number",
    PhoneNumberType.VOICEMAIL: "a voicemail access number",
}
TEXTABLE: frozenset[LineType] = frozenset({"mobile", "landline_or_mobile"})


class PhoneNumberError(ValueError):
    """The text is not a number dibot can use; the message says why, without the number."""


@dataclass(frozen=True)
class PhoneNumber:
    e164: str
    """"+447700900123"."""
    line_type: LineType

    @property
    def can_receive_sms(self) -> bool:
        return self.line_type in TEXTABLE

    @property
    def urn(self) -> str:
        return urn_for_e164(self.e164)


def parse_phone(text: str, region: str = DEFAULT_REGION) -> PhoneNumber:
    """Read a number typed in `region`; raises `PhoneNumberError` naming what is wrong."""
    region = _checked_region(region)
    _check_characters(text)
    parsed = _parse(text, region)
    e164 = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    _check_country(parsed, region)
    if region == "GB" and DRAMA_RANGE.fullmatch(e164):
        return PhoneNumber(e164, "mobile")
    _check_length(parsed, region)
    if not phonenumbers.is_valid_number(parsed):
        raise PhoneNumberError(f"not a valid {_name(region)} mobile or landline number")
    return PhoneNumber(e164, _line_type(parsed))


def normalise_phone(text: str, region: str = DEFAULT_REGION) -> str:
    """The number in E.164 ("+447700900123"); raises `PhoneNumberError`."""
    return parse_phone(text, region).e164


def can_receive_sms(text: str, region: str = DEFAULT_REGION) -> bool:
    """Whether the number is a mobile (or landline-or-mobile); raises `PhoneNumberError`."""
    return parse_phone(text, region).can_receive_sms


def urn_for_phone(text: str, region: str = DEFAULT_REGION) -> str:
    """ "tel:+447700900123": the respondent's urn, as the Twilio webhook builds it."""
    return parse_phone(text, region).urn


def urn_for_e164(e164: str) -> str:
    return "tel:" + e164


def _checked_region(region: str) -> str:
    code = region.upper()
    if code not in phonenumbers.SUPPORTED_REGIONS:
        raise ValueError(f"{region!r} is not a region code such as GB")
    return code


def _check_characters(text: str) -> None:
    stripped = text.strip()
    if not stripped:
        raise PhoneNumberError("phone number is empty")
    if any(char.isdigit() and not char.isascii() for char in stripped):
        raise PhoneNumberError("has digits other than 0-9")
    if any(char.isalpha() for char in stripped):
        raise PhoneNumberError("has letters in it: a phone number is digits only")
    if not ALLOWED_CHARACTERS.fullmatch(stripped):
        raise PhoneNumberError("has characters other than digits, spaces, +, -, ( and )")
    if "+" in stripped[1:]:
        raise PhoneNumberError("has a + that is not at the start")
    digits = sum(char.isdigit() for char in stripped)
    if digits > MAX_DIGITS:
        raise PhoneNumberError(f"too long: {digits} digits, and a number has at most 15")
    if len(stripped) > MAX_INPUT_LENGTH:
        raise PhoneNumberError(f"too long: over {MAX_INPUT_LENGTH} characters")


def _parse(text: str, region: str) -> phonenumbers.PhoneNumber:
    try:
        return phonenumbers.parse(text, region)
    except NumberParseException as error:
        raise PhoneNumberError(_parse_problem(error.error_type)) from None


def _parse_problem(error_type: int) -> str:
    if error_type == NumberParseException.INVALID_COUNTRY_CODE:
        return "does not start with a valid country code"
    if error_type in (
        NumberParseException.TOO_SHORT_NSN,
        NumberParseException.TOO_SHORT_AFTER_IDD,
    ):
        return "too short"
    if error_type == NumberParseException.TOO_LONG:
        return "too long"
    return "not a phone number"


def _check_country(parsed: phonenumbers.PhoneNumber, region: str) -> None:
    expected = phonenumbers.country_code_for_region(region)
    if parsed.country_code != expected:
        raise PhoneNumberError(
            f"not a {_name(region)} number: +{parsed.country_code} is another country's code"
        )


def _check_length(parsed: phonenumbers.PhoneNumber, region: str) -> None:
    reason = phonenumbers.is_possible_number_with_reason(parsed)
    if reason == ValidationResult.TOO_SHORT:
        raise PhoneNumberError(f"too short for a {_name(region)} number")
    if reason == ValidationResult.TOO_LONG:
        raise PhoneNumberError(f"too long for a {_name(region)} number")
    if reason == ValidationResult.IS_POSSIBLE_LOCAL_ONLY:
        raise PhoneNumberError(f"too short for a {_name(region)} number: is the area code missing?")
    if reason != ValidationResult.IS_POSSIBLE:
        raise PhoneNumberError(f"the wrong length for a {_name(region)} number")


def _line_type(parsed: phonenumbers.PhoneNumber) -> LineType:
    kind = phonenumbers.number_type(parsed)
    if kind in LINE_TYPES:
        return LINE_TYPES[kind]
    if kind in OTHER_TYPES:
        raise PhoneNumberError(f"{OTHER_TYPES[kind]}, not a mobile or landline")
    raise PhoneNumberError("not a mobile or landline number")


def _name(region: str) -> str:
    return REGION_NAMES.get(region, region)


MASK = "•••"
MASKED_DIGITS = 3


def masked_urn(urn: str) -> str:
    """A URN as an operator may see it: "07700 900•••", "Telegram chat •••456"."""
    scheme, _, address = urn.partition(":")
    if scheme == "tel":
        try:
            national = phonenumbers.format_number(
                phonenumbers.parse(address), phonenumbers.PhoneNumberFormat.NATIONAL
            )
        except phonenumbers.NumberParseException:
            national = address
        return _mask_last_digits(national)
    if scheme == "telegram":
        return f"Telegram chat {MASK}{address[-MASKED_DIGITS:]}"
    return f"{scheme} {MASK}"


def _mask_last_digits(text: str) -> str:
    hidden, characters = 0, list(text)
    for index in range(len(characters) - 1, -1, -1):
        if hidden == MASKED_DIGITS:
            break
        if characters[index].isdigit():
            characters[index] = "•"
            hidden += 1
    return "".join(characters)
