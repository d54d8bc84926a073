"""Translations are gettext catalogs; the English in the flow's TOML files is their source.

Every text a respondent can read has a stable context (gettext's msgctxt): its place in the
data, such as `items.GS01.sms` or `scales.skill.options.3.sms`. `source_texts` lists them
with their English; Babel's `pybabel extract` reads them through `extract` (registered as the
`dibot_flow` extractor), so translators work on ordinary PO files in the tools they know:

    locale/<lang>/LC_MESSAGES/messages.po   (one per language; dropping one in adds it)

The rule a catalog must keep to be shipped: every text translated (not empty, not fuzzy), from
the English as it stands now (a changed English text needs its translation looked at again),
with the same placeholders. Word lists (the words that choose an option or say a command) are
one entry each, the words separated by `|`; they need not match the English one for one.
"""

from __future__ import annotations

import string
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from babel.messages.pofile import read_po

SOURCE_LANGUAGE = "en"
WORD_SEPARATOR = "|"
CATALOG_GLOB = "locale/*/LC_MESSAGES/messages.po"
FILES = ("flow.toml", "items.toml", "messages.toml")


class CatalogError(ValueError):
    """A catalog is unreadable or incomplete; the message names its file and the entry."""


@dataclass(frozen=True)
class SourceText:
    context: str
    """Where the text lives in the data, e.g. "items.GS01.sms"; the msgctxt in catalogs."""
    english: str
    """The source text; for a word list, its words joined by " | "."""
    comment: str
    """A note for translators (what the text is, where it goes)."""
    put: Callable[[str, str], None]
    """Store a translation (language, msgstr) where the loader will read it."""


def _words(value: list[str]) -> str:
    return f" {WORD_SEPARATOR} ".join(value)


def split_words(translation: str) -> list[str]:
    return [word.strip() for word in translation.split(WORD_SEPARATOR) if word.strip()]


def _text(context: str, holder: Any, comment: str) -> Iterator[SourceText]:
    """The text `holder[SOURCE_LANGUAGE]`, where holder is a {language: text} table."""
    if isinstance(holder, dict) and isinstance(holder.get(SOURCE_LANGUAGE), str):

        def put(language: str, translation: str) -> None:
            holder[language] = translation

        yield SourceText(context, holder[SOURCE_LANGUAGE], comment, put)


def _word_list(context: str, holder: Any, comment: str) -> Iterator[SourceText]:
    if isinstance(holder, dict) and isinstance(holder.get(SOURCE_LANGUAGE), list):

        def put(language: str, translation: str) -> None:
            holder[language] = split_words(translation)

        words = comment + f" Words separated by {WORD_SEPARATOR}; matched case-insensitively."
        yield SourceText(context, _words(holder[SOURCE_LANGUAGE]), words, put)


def _options(prefix: str, options: Any, sms_comment: str) -> Iterator[SourceText]:
    for number, option in enumerate(options if isinstance(options, list) else [], start=1):
        if not isinstance(option, dict):
            continue
        at = f"{prefix}.options.{number}"
        yield from _text(f"{at}.sms", option.get("sms"), sms_comment)
        yield from _text(f"{at}.label", option.get("label"), "The option in full (staff pages).")
        yield from _word_list(f"{at}.words", option.get("words"), "Other replies choosing it.")


def _flow_texts(data: dict[str, Any]) -> Iterator[SourceText]:
    language = data.get("language", {})
    yield from _text("language.name", language.get("name"), "This language's own name.")
    yield from _word_list(
        "language.words", language.get("words"), "Replies that switch to this language."
    )
    for aspect, scale in (data.get("scales") or {}).items():
        if not isinstance(scale, dict):
            continue
        yield from _text(
            f"scales.{aspect}.question",
            scale.get("question"),
            "Question template; {task} is an item's SMS phrase.",
        )
        yield from _options(f"scales.{aspect}", scale.get("options"), "Answer in an SMS list.")
        pairs = scale.get("pairs")
        for number, pair in enumerate(pairs if isinstance(pairs, list) else [], start=1):
            if isinstance(pair, dict):
                yield from _word_list(
                    f"scales.{aspect}.pairs.{number}.words",
                    pair.get("words"),
                    f"Replies that fit options {pair.get('options')} both: the bot asks which.",
                )


def _items_texts(data: dict[str, Any]) -> Iterator[SourceText]:
    notes = {
        "title": "Full wording (staff pages, exports).",
        "short": "Short plain name, at most 30 characters (priorities message).",
        "sms": "Task phrase put into the scale's question as {task}.",
        "intro": "Said before this topic's questions (full assessment).",
    }
    for kind in ("headings", "items"):
        for entry in data.get(kind) or []:
            if not isinstance(entry, dict):
                continue
            for field, note in notes.items():
                yield from _text(f"{kind}.{entry.get('id')}.{field}", entry.get(field), note)


def _messages_texts(data: dict[str, Any]) -> Iterator[SourceText]:
    for key, holder in (data.get("messages") or {}).items():
        yield from _text(f"messages.{key}", holder, "System message.")
    for key, prompt in (data.get("prompts") or {}).items():
        if isinstance(prompt, dict):
            yield from _text(f"prompts.{key}.text", prompt.get("text"), "A numbered choice.")
            yield from _options(f"prompts.{key}", prompt.get("options"), "A choice's words.")
    for name, holder in (data.get("commands") or {}).items():
        yield from _word_list(f"commands.{name}", holder, f"Words for the {name.upper()} command.")
    numbers = (data.get("number_words") or {}).get(SOURCE_LANGUAGE)
    if isinstance(numbers, list):
        for index, word in enumerate(numbers, start=1):
            yield _number_word(data["number_words"], index, word, len(numbers))


def _number_word(table: dict[str, Any], index: int, word: Any, count: int) -> SourceText:
    def put(language: str, translation: str) -> None:
        words = table.setdefault(language, [[] for _ in range(count)])
        words[index - 1] = split_words(translation)

    english = _words(word) if isinstance(word, list) else str(word)
    return SourceText(
        f"number_words.{index}", english, f"The number {index} as a word (any forms, |).", put
    )


WALKERS: Mapping[str, Callable[[dict[str, Any]], Iterator[SourceText]]] = {
    "flow.toml": _flow_texts,
    "items.toml": _items_texts,
    "messages.toml": _messages_texts,
}


def source_texts(file_name: str, data: dict[str, Any]) -> Iterator[SourceText]:
    """Every translatable English text of one flow file, in file order."""
    return WALKERS[file_name](data)


def placeholders(text: str) -> frozenset[str]:
    """The `{name}` placeholders in `text`; ValueError if a brace is unmatched."""
    return frozenset(name for _, name, _, _ in string.Formatter().parse(text) if name)


@dataclass(frozen=True)
class Translation:
    english: str
    text: str
    fuzzy: bool


def read_catalog(path: Path) -> dict[str, Translation]:
    """A PO file's entries by context."""
    try:
        with path.open("rb") as handle:
            catalog = read_po(handle)
    except (OSError, ValueError, UnicodeDecodeError) as error:
        raise CatalogError(f"{path}: cannot read it as a PO file: {error}") from None
    entries: dict[str, Translation] = {}
    for message in catalog:
        if not message.id or not message.context or not isinstance(message.id, str):
            continue
        text = message.string if isinstance(message.string, str) else ""
        entries[message.context] = Translation(message.id, text, message.fuzzy)
    return entries


def catalogs(directory: Path) -> dict[str, Path]:
    """Language code -> its catalog, for every catalog dropped into the flow's locale/."""
    return {path.parent.parent.name: path for path in sorted(directory.glob(CATALOG_GLOB))}


def translate(texts: list[SourceText], language: str, path: Path, shown: str) -> None:
    """Store every translation of `language`; CatalogError naming the first gap."""
    entries = read_catalog(path)
    for source in texts:
        where = f"{shown}: {source.context}"
        entry = entries.get(source.context)
        if entry is None or not entry.text.strip():
            raise CatalogError(f"{where}: no {language} translation of {source.english!r}")
        if entry.fuzzy:
            raise CatalogError(f"{where}: the {language} translation is marked fuzzy")
        if entry.english != source.english:
            raise CatalogError(
                f"{where}: translated from older English {entry.english!r}; "
                f"the English is now {source.english!r}"
            )
        try:
            same = placeholders(entry.text) == placeholders(source.english)
        except ValueError:
            raise CatalogError(f"{where}: unmatched {{ or }} in the translation") from None
        if not same:
            raise CatalogError(
                f"{where}: placeholders {sorted(placeholders(entry.text))} differ from the "
                f"English {sorted(placeholders(source.english))}"
            )
        source.put(language, entry.text.strip())


def extract(
    fileobj: BinaryIO, keywords: object, comment_tags: object, options: object
) -> Iterator[tuple[int, str, tuple[str, str], list[str]]]:
    """Babel extractor (`dibot_flow`): the flow file's texts as pgettext messages."""
    import tomllib

    name = Path(getattr(fileobj, "name", "")).name
    if name not in WALKERS:
        return
    data = tomllib.load(fileobj)
    for line, source in enumerate(source_texts(name, data), start=1):
        yield line, "pgettext", (source.context, source.english), [source.comment]
