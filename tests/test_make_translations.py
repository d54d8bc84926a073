"""`make translations` can be run at any time: on catalogs that are up to date it changes no
byte (no date, wrapping or order of its own), and a changed English text comes back fuzzy.

It runs the Makefile's own target, with this environment's pybabel, on a copy of the shipped
flow in a temporary directory: never on the checkout, whose texts may be mid-edit.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

from flows.loader import SHIPPED

ROOT = Path(__file__).parent.parent
FLOW_DIR = Path("flows") / SHIPPED.name
"""Where the Makefile and babel.cfg expect the flow, relative to the tree they run in."""
TEMPLATE = FLOW_DIR / "locale" / "messages.pot"


def make_translations(tree: Path, timezone: str) -> None:
    """`make translations` in `tree`, with this environment as its .venv (never reinstalled)
    and the clock read in `timezone`: a date written anywhere would come out differently."""
    venv = Path(sys.prefix)
    subprocess.run(
        [
            "make",
            "--no-print-directory",
            "-f",
            str(ROOT / "Makefile"),
            f"VENV={venv}",
            "-o",
            str(venv / ".installed-dev"),
            "translations",
        ],
        cwd=tree,
        env={**os.environ, "TZ": timezone},
        check=True,
        capture_output=True,
    )


def locale_files(tree: Path) -> dict[str, bytes]:
    locale = tree / FLOW_DIR / "locale"
    return {str(p.relative_to(locale)): p.read_bytes() for p in sorted(locale.rglob("*.po*"))}


def entries(data: bytes) -> object:
    """What a catalog says, whatever its form: header, and every entry in any order."""
    catalog = read_po(data.decode("utf-8").splitlines())
    messages = sorted(
        (str(m.context), str(m.id), str(m.string), sorted(m.flags), m.auto_comments)
        for m in catalog
        if m.id
    )
    return (sorted(catalog.mime_headers), messages)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """babel.cfg and a copy of the shipped flow, laid out as in a checkout."""
    shutil.copy(ROOT / "babel.cfg", tmp_path)
    shutil.copytree(SHIPPED, tmp_path / FLOW_DIR, ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path


def test_on_up_to_date_catalogs_it_changes_no_byte(tree: Path) -> None:
    make_translations(tree, "UTC")  # up to date now, whatever state the checkout is in
    before = locale_files(tree)
    make_translations(tree, "Pacific/Kiritimati")  # 14 hours ahead
    assert locale_files(tree) == before


def test_the_shipped_files_are_in_the_form_it_writes(tree: Path) -> None:
    """Where a run changes no entry, it changes no byte of the file either (an entry it does
    change means the English is being edited: then there is nothing to compare)."""
    shipped = locale_files(tree)
    make_translations(tree, "UTC")
    for name, data in locale_files(tree).items():
        if name in shipped and entries(shipped[name]) == entries(data):
            assert data == shipped[name], f"make translations rewrites {name}"


def test_a_changed_english_text_comes_back_fuzzy(tree: Path) -> None:
    make_translations(tree, "UTC")
    items = tree / FLOW_DIR / "items.toml"
    english = items.read_text(encoding="utf-8")
    assert english.count('sms.en = "pay bills online"') == 1
    items.write_text(
        english.replace('sms.en = "pay bills online"', 'sms.en = "pay your bills online"'),
        encoding="utf-8",
    )
    make_translations(tree, "UTC")
    with (tree / TEMPLATE).open("rb") as handle:
        assert read_po(handle).get("pay your bills online", context="items.TR03.sms") is not None
    for catalog_path in (tree / FLOW_DIR / "locale").glob("*/LC_MESSAGES/messages.po"):
        with catalog_path.open("rb") as handle:
            message = read_po(handle).get("pay your bills online", context="items.TR03.sms")
        assert message is not None
        assert message.fuzzy, catalog_path
