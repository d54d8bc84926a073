"""Reading a reply as a choice: digits, letters, number words, the option's words, its text
and that text's leading words, safe typos; and words that fit two options.

"2", " 2 ", "2.", "B)", "two", "sometimes" and "sometmes" all choose option 2 of a
five-option scale; "I'd try" chooses "I'd try, may need help". Text is normalised first
(Unicode NFKC, case, accents, zero-width and control characters, emoji skin tones, surrounding
punctuation), so what a phone keyboard adds never matters. A typo is accepted only in a word
of five letters or more, one edit from a single option's words (two for long words): a short
word one edit away is usually another word ("bit", "fine"). Leading words count when they are
at least two words, or one word of four letters or more ("could" for "Could teach others").
A reply that fits exactly two options (a scale's pair words such as "yes", or leading words or
a typo close to two) is not guessed: the match says which two, so the respondent is asked.
"""

from __future__ import annotations

import re
import unicodedata
import weakref
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache

from flows.model import Flow, Option, OptionPair

EDGE_PUNCTUATION = " .,;:!?()[]{}<>\"'`-_*#/\\|~"
SKIN_TONES = range(0x1F3FB, 0x1F400)
"""Emoji modifiers: a thumbs-up is a thumbs-up in any skin tone."""
WORD = re.compile(r"\w+(?:'\w+)*")
LEADING_WORD_MIN_LETTERS = 4
"""One leading word counts only this long: "i", "not" or "no" begin too many options."""
QUOTES = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"'})


CACHED_MAX_CHARS = 64
"""Only short texts are cached: the flow's own words (folded again on every turn) and short
replies. A cache of whole long messages grew a worker by 640 MB over 16,384 of them."""


def normalise(text: str) -> str:
    """Fold a reply to the form words are compared in."""
    if len(text) <= CACHED_MAX_CHARS:
        return _normalise_cached(text)
    return _normalise(text)


@lru_cache(maxsize=16384)
def _normalise_cached(text: str) -> str:
    return _normalise(text)


def _normalise(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).translate(QUOTES)
    kept = []
    for char in unicodedata.normalize("NFD", text):
        category = unicodedata.category(char)
        if category == "Mn" or ord(char) in SKIN_TONES:  # accents: "nôl" matches "nol"
            continue
        if category in {"Cc", "Cf", "Zl", "Zp"}:
            kept.append(" ")
            continue
        kept.append(char)
    folded = " ".join("".join(kept).casefold().split())
    return folded.strip(EDGE_PUNCTUATION)


def edit_distance(a: str, b: str, limit: int) -> int:
    """Optimal string alignment distance (a swap of neighbours is one edit), capped at limit+1."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    previous2: list[int] = []
    previous = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        current = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                current[j] = min(current[j], previous2[j - 2] + 1)
        previous2, previous = previous, current
    return min(previous[len(b)], limit + 1)


def typo_allowance(word: str) -> int:
    """Edits forgiven against an option word of this length: none below five letters, where
    one edit makes another word ("bit" is not "big", "fine" is not "five")."""
    if len(word) >= 8:
        return 2
    if len(word) >= 5:
        return 1
    return 0


@dataclass(frozen=True)
class Match:
    option: int | None
    """The chosen option number, or None."""
    out_of_range: bool = False
    """The reply was a number or letter, but no option has it."""
    either: tuple[int, int] | None = None
    """The reply fits these two options (and no other): ask which."""


MAX_NUMBER_DIGITS = 6
"""A longer run of digits is no option number (and `int()` refuses 4,300 digits or more)."""


def as_number(word: str) -> int | None:
    """The number a word of decimal digits writes (any script's: "٢" is 2), else None. Signs
    that look like digits but are not decimal ("❶", "፩") and over-long numbers are not numbers."""
    if not word or len(word) > MAX_NUMBER_DIGITS:
        return None
    try:
        return int("".join(str(unicodedata.decimal(char)) for char in word))
    except (TypeError, ValueError):
        return None


def command_form(text: str) -> str:
    """A message as commands are compared: Telegram's "/start@bot" as "start", and a lone
    symbol such as "?" kept (normalising would leave nothing)."""
    stripped = text.strip()
    if stripped.startswith("/"):
        stripped = stripped[1:].split("@", 1)[0]
    return normalise(stripped) or stripped


def command_of(flow: Flow, text: str, languages: Iterable[str]) -> str | None:
    """The command a whole message says (HELP, /start, "Stop ", ?), in any listed language:
    the first language that has one wins, and within it the flow's first command."""
    word = command_form(text)
    if not word:
        return None
    by_language = _command_index(flow)
    for language in languages:
        name = by_language.get(language, {}).get(word)
        if name is not None:
            return name
    return None


_command_indexes: dict[int, tuple[weakref.ref[Flow], Mapping[str, Mapping[str, str]]]] = {}


def _command_index(flow: Flow) -> Mapping[str, Mapping[str, str]]:
    """Language -> a command word's `command_form` -> the command, built once per flow (every
    message is checked for a command, against every word of every command)."""
    known = _command_indexes.get(id(flow))
    if known is not None and known[0]() is flow:
        return known[1]
    index: dict[str, dict[str, str]] = {}
    for name, words in flow.commands.items():
        for language, forms in words.items():
            for form in forms:
                index.setdefault(language, {}).setdefault(command_form(form), name)
    _command_indexes[id(flow)] = (weakref.ref(flow, _forget_commands(id(flow))), index)
    return index


def _forget_commands(flow_id: int) -> Callable[[weakref.ref[Flow]], None]:
    def forget(_: weakref.ref[Flow]) -> None:
        _command_indexes.pop(flow_id, None)

    return forget


def language_named(flow: Flow, text: str) -> str | None:
    """The language a whole message names ("Cymraeg", "ENGLISH"), to switch to it."""
    word = normalise(text.strip().lstrip("/"))
    for language in flow.languages:
        if any(normalise(w) == word for w in flow.language_words.get(language, ())):
            return language
    return None


def _option_words(option: Option, languages: Iterable[str]) -> set[str]:
    """What chooses the option whole: its words, its SMS text and its full label."""
    words: set[str] = set()
    for language in languages:
        words.update(normalise(w) for w in option.words.get(language, ()))
        for texts in (option.sms, option.label):
            if language in texts:
                words.add(normalise(texts[language]))
    return words


def _starts(option: Option, reply: list[str], languages: Iterable[str]) -> bool:
    """Whether the reply's words are the leading words of the option's SMS text."""
    for language in languages:
        if language in option.sms:
            words = WORD.findall(normalise(option.sms[language]))
            if len(reply) < len(words) and words[: len(reply)] == reply:
                return True
    return False


def _one_or_two(found: set[int]) -> Match | None:
    """One option: chosen; two: ask which; none or more: no answer from this rule."""
    if len(found) == 1:
        return Match(found.pop())
    if len(found) == 2:
        first, second = sorted(found)
        return Match(None, either=(first, second))
    return None


def _number_word(
    number_words: Mapping[str, tuple[tuple[str, ...], ...]],
    word: str,
    languages: Iterable[str],
    count: int,
) -> int | None:
    """The number a word names ("two", "dwy"); number words are short, so no typos."""
    found = {
        index
        for language in languages
        for index, forms in enumerate(number_words.get(language, ())[:count], start=1)
        if any(normalise(form) == word for form in forms)
    }
    return found.pop() if len(found) == 1 else None


def match_option(
    flow: Flow,
    options: tuple[Option, ...],
    text: str,
    languages: Iterable[str],
    pairs: tuple[OptionPair, ...] = (),
) -> Match:
    """Which of `options` a reply chooses, trying `languages` in order of preference; `pairs`
    are the scale's words that fit two options."""
    languages = tuple(languages)
    word = normalise(text)
    if not word:
        return Match(None)
    numbers = {o.number for o in options}
    first, _, rest = word.partition(" ")
    first = first.strip(EDGE_PUNCTUATION)
    number = as_number(first)
    if number is not None:
        if not rest.strip(EDGE_PUNCTUATION):
            return Match(number) if number in numbers else Match(None, out_of_range=True)
        chosen = [o for o in options if o.number == number]
        if chosen and normalise(rest) in _option_words(chosen[0], languages):
            return Match(number)
        return Match(None)
    if len(word) == 1 and word.isalpha() and word.isascii():
        number = ord(word) - ord("a") + 1
        if number in numbers:
            return Match(number)
    for language in languages:  # the respondent's own language first
        exact = [o.number for o in options if word in _option_words(o, (language,))]
        if len(exact) == 1:
            return Match(exact[0])
        for pair in pairs:
            if word in {normalise(w) for w in pair.words.get(language, ())}:
                return Match(None, either=pair.options)
    by_words = {o.number: _option_words(o, languages) for o in options}
    named = _number_word(flow.number_words, word, languages, len(options))
    if named is not None:
        return Match(named)
    reply = WORD.findall(word)
    if len(reply) > 1 or (reply and len(reply[0]) >= LEADING_WORD_MIN_LETTERS):
        leading = _one_or_two({o.number for o in options if _starts(o, reply, languages)})
        if leading is not None:
            return leading
    close = {
        n
        for n, words in by_words.items()
        for candidate in words
        if typo_allowance(candidate)
        and edit_distance(word, candidate, typo_allowance(candidate)) <= typo_allowance(candidate)
    }
    guessed = _one_or_two(close)
    if guessed is not None:
        return guessed
    if len(word) == 1 and word.isalpha() and word.isascii():
        return Match(None, out_of_range=True)
    return Match(None)
