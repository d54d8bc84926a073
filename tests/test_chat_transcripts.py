"""The resident's cases replay in `dibot chat` exactly as over SMS: the same council texts
(as environment variables), the inputs of a transcript typed in, every reply the same."""

from __future__ import annotations

import subprocess
from dataclasses import fields
from pathlib import Path

import pytest

from tests.processes import DIBOT, STARTUP_LIMIT_SECONDS, environment
from tests.transcript import TEST_COUNCIL_CONFIG, TRANSCRIPTS, parse

CASES = (
    "quick_all_confident_and_keen",
    "quick_no_skills_no_interest",
    "no_basics_every_blocker",
    "no_device_answers_as_if",
    "natural_replies",
    "welsh_natural_replies",
    "welsh_no_basics_every_blocker",
)
"""Transcripts without clock shifts or taps (a terminal has neither)."""


def council_environment() -> dict[str, str]:
    settings = {}
    for setting in fields(TEST_COUNCIL_CONFIG):
        value = getattr(TEST_COUNCIL_CONFIG, setting.name)
        if isinstance(value, str):
            settings[f"DIBOT_COUNCIL_{setting.name.upper()}"] = value
    for language, texts in TEST_COUNCIL_CONFIG.translations.items():
        for key, value in texts.items():
            settings[f"DIBOT_COUNCIL_{language.upper()}_{key.upper()}"] = value
    return settings


@pytest.mark.parametrize("name", CASES)
def test_a_transcript_replays_in_dibot_chat(tmp_path: Path, name: str) -> None:
    assert DIBOT is not None
    exchanges = parse(TRANSCRIPTS / f"{name}.txt")
    recorded = tmp_path / "recorded.txt"
    typed = "".join(f"{exchange.sent}\n" for exchange in exchanges)

    result = subprocess.run(
        [DIBOT, "chat", "--record", str(recorded)],
        cwd=tmp_path,
        env=environment(
            DIBOT_DATABASE_URL=f"sqlite:///{tmp_path / 'chat.db'}", **council_environment()
        ),
        input=typed,
        capture_output=True,
        text=True,
        timeout=STARTUP_LIMIT_SECONDS * 2,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    replayed = parse(recorded)
    assert [e.sent for e in replayed] == [e.sent for e in exchanges]
    for expected, got in zip(exchanges, replayed, strict=True):
        assert got.replies == expected.replies, f"{name}: {expected.sent!r}"
