"""Translations are gettext catalogs: a language is added by dropping one in, and a catalog that
is incomplete, fuzzy, stale or has other placeholders stops the flow loading, named."""

from __future__ import annotations

import shutil
import tomllib
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po, write_po

from bot.engine import step
from bot.messages import Inbound
from bot.state import State
from flows.catalog import FILES, source_texts
from flows.loader import SHIPPED, FlowError, load_flow

NOW = datetime(2026, 11, 2, 9, 0)
POT = SHIPPED / "locale" / "messages.pot"


def english_texts() -> list[tuple[str, str]]:
    texts = []
    for name in FILES:
        with (SHIPPED / name).open("rb") as handle:
            data = tomllib.load(handle)
        texts += [(t.context, t.english) for t in source_texts(name, data)]
    return texts


def drop_in(
    tmp_path: Path,
    language: str = "fr",
    translate: Callable[[str, str], str | None] = lambda context, english: english,
    fuzzy: frozenset[str] = frozenset(),
) -> Path:
    """A copy of the shipped flow with a catalog for `language` made from the English."""
    flow_dir = tmp_path / "flow"
    shutil.copytree(SHIPPED, flow_dir)
    catalog = Catalog(locale=language)
    for context, english in english_texts():
        text = translate(context, english)
        if context == "language.words":
            text = "francais | french"
        elif context == "language.name":
            text = "Francais"
        if text is not None:
            flags = ["fuzzy"] if context in fuzzy else []
            catalog.add(english, text, context=context, flags=flags)
    folder = flow_dir / "locale" / language / "LC_MESSAGES"
    folder.mkdir(parents=True)
    with (folder / "messages.po").open("wb") as handle:
        write_po(handle, catalog)
    return flow_dir


def test_dropping_in_a_catalog_adds_a_language_with_no_code_change(tmp_path: Path) -> None:
    flow = load_flow(drop_in(tmp_path), languages=["en", "fr"])
    assert flow.languages == ("en", "fr")
    first = step(flow, State(), Inbound("hello"), NOW)
    assert first.outbound[0].text.endswith("\n1 English\n2 Francais")
    chosen = step(flow, first.state, Inbound("2"), NOW)
    assert chosen.state.language == "fr"
    assert chosen.state.stage == "consent"


def test_restricting_languages_keeps_english_only(tmp_path: Path) -> None:
    flow = load_flow(drop_in(tmp_path), languages=["en"])
    assert flow.languages == ("en",)
    assert "Choose" not in step(flow, State(), Inbound("hello"), NOW).outbound[0].text


def test_asking_for_a_language_with_no_catalog_names_it(tmp_path: Path) -> None:
    with pytest.raises(FlowError, match=r"no catalog for \['de'\]"):
        load_flow(drop_in(tmp_path), languages=["en", "de"])


def test_a_missing_translation_is_named(tmp_path: Path) -> None:
    def skip_one(context: str, english: str) -> str | None:
        return None if context == "items.TR03.sms" else english

    with pytest.raises(FlowError) as error:
        load_flow(drop_in(tmp_path, translate=skip_one))
    assert str(error.value).startswith("locale/fr/LC_MESSAGES/messages.po: items.TR03.sms:")
    assert "no fr translation of 'pay bills online'" in str(error.value)


def test_a_fuzzy_translation_is_refused(tmp_path: Path) -> None:
    with pytest.raises(FlowError, match=r"messages\.help: the fr translation is marked fuzzy"):
        load_flow(drop_in(tmp_path, fuzzy=frozenset({"messages.help"})))


def test_a_translation_of_older_english_is_refused(tmp_path: Path) -> None:
    flow_dir = drop_in(tmp_path)
    items = flow_dir / "items.toml"
    items.write_text(
        items.read_text(encoding="utf-8").replace(
            'sms.en = "pay bills online"', 'sms.en = "pay your bills online"'
        ),
        encoding="utf-8",
    )
    with pytest.raises(FlowError, match=r"items\.TR03\.sms: translated from older English"):
        load_flow(flow_dir)


def test_placeholders_must_match_the_english(tmp_path: Path) -> None:
    def drop_placeholder(context: str, english: str) -> str:
        return english.replace("{max}", "5") if context == "messages.reask" else english

    with pytest.raises(FlowError, match=r"messages\.reask: placeholders \[\] differ"):
        load_flow(drop_in(tmp_path, translate=drop_placeholder))


def test_the_shipped_template_holds_the_current_english() -> None:
    """messages.pot is what translators start from: `make translations` refreshes it."""
    with POT.open("rb") as handle:
        template = {m.context: m.id for m in read_po(handle) if m.id}
    assert template == dict(english_texts())


def test_every_shipped_catalog_is_complete_and_loads() -> None:
    shipped = sorted(p.parent.parent.name for p in SHIPPED.glob("locale/*/LC_MESSAGES/*.po"))
    flow = load_flow()
    assert list(flow.languages) == ["en", *shipped]
