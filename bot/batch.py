"""Reading one text that answers a run of questions on one scale ("3 4 2 5").

The rule it keeps: an answer is kept only where it is plain which item it answers, and
nothing is guessed. Answers go to the items in order ("3 4 2 5", "3,4,2,5", "3-4-2-5", or
"3425": digits run together are one an item), or by letter ("B 4", "b4 d2"); a word or a
number word that chooses an option counts as one answer ("two", "dau", "sometimes"). A
token that is not an answer (an "x", a 7 on a 1 to 5 scale) leaves its item unanswered, so
the others are kept and only it is asked again. More answers than items keeps none: which
one is extra cannot be told. A whole text that chooses one option ("not at all", a lone
digit) answers the first item.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from bot.matching import as_number, match_option, normalise
from flows.model import Flow, Option, OptionPair

SEPARATORS = re.compile(r"[\s,;/+&.\-]+")
LETTERED = re.compile(r"([a-z])\s*[=:)]?\s*(\d+)")
FILLERS = frozenset({"and", "then", "a", "ac", "yna", "wedyn"})
"""Words people put between answers ("3 and 4"; Welsh "a", "ac"): not answers, not holes."""


@dataclass(frozen=True)
class Reading:
    answers: dict[int, int] = field(default_factory=dict)
    """Position in the run (0-based) -> option number."""
    unread: int = 0
    """Tokens that answered nothing (their items are asked again)."""
    sent: int = 0
    """How many answers the text held, when that was more than the run has (else 0)."""


def read_answers(
    flow: Flow,
    options: tuple[Option, ...],
    text: str,
    count: int,
    languages: Iterable[str],
    pairs: tuple[OptionPair, ...] = (),
) -> Reading:
    """What `text` answers of a run of `count` questions whose scale has `options`."""
    languages = tuple(languages)
    numbers = {option.number for option in options}
    folded = normalise(text)
    if not folded:
        return Reading()
    lettered = _lettered(folded, count, numbers)
    if lettered is not None:
        return lettered
    whole = match_option(flow, options, text, languages, pairs)
    if whole.option is not None:
        return Reading({0: whole.option})
    if folded.isdigit() and len(folded) > 1:  # "3425": one digit an item
        if len(folded) > count:
            return Reading(sent=len(folded))
        return _in_order(list(folded), numbers, flow, options, languages)
    tokens = [t for t in SEPARATORS.split(folded) if t and t not in FILLERS]
    if len(tokens) > count:
        return Reading(sent=len(tokens))
    return _in_order(tokens, numbers, flow, options, languages)


def _lettered(folded: str, count: int, numbers: set[int]) -> Reading | None:
    """ "B 4", "b4 d2", "A=3, C=1": answers by item letter, or None when the text is not
    wholly such pairs."""
    pairs = LETTERED.findall(folded)
    if not pairs or SEPARATORS.sub("", LETTERED.sub("", folded)):
        return None
    answers: dict[int, int] = {}
    unread = 0
    for letter, digits in pairs:
        position = ord(letter) - ord("a")
        if position >= count:  # a letter the run does not have: nothing is guessed
            return Reading(unread=len(pairs))
        number = as_number(digits)
        if number in numbers and number is not None:
            answers[position] = number
        else:
            unread += 1
    return Reading(answers, unread)


def _in_order(
    tokens: list[str],
    numbers: set[int],
    flow: Flow,
    options: tuple[Option, ...],
    languages: tuple[str, ...],
) -> Reading:
    answers: dict[int, int] = {}
    unread = 0
    for position, token in enumerate(tokens):
        number = as_number(token)
        if number is None and not (len(token) == 1 and token.isalpha()):
            # a lone letter among others is no answer ("<b>hmm</b>" holds a "b")
            number = match_option(flow, options, token, languages).option
        if number in numbers and number is not None:
            answers[position] = number
        else:
            unread += 1
    return Reading(answers, unread)
