"""Transcript fixtures: what a respondent sends and what the bot answers, as plain text files.

Format, one line each:
    # a comment                 ignored
    @ +15d / @ +2h / @ +30m     move the clock forward before the next message
    > 2                         the respondent sends "2" (`> ` then the text, kept verbatim)
    > [tap GS01.skill:3]        the respondent taps a button with that payload
    > [media]                   a picture with no text
    < text                      a line of the bot's reply; consecutive `<` lines are one message
A `>` line followed by another `>` line means the bot said nothing to it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from bot.messages import Inbound
from dibot.config import Config, CouncilConfig
from dibot.runtime import council_parameters

TRANSCRIPTS = Path(__file__).parent / "transcripts"
START = datetime(2026, 11, 2, 9, 0, 0)
TURN_GAP = timedelta(minutes=1)
SHIFT = re.compile(r"^@ \+(\d+)([dhm])$")
UNITS = {"d": "days", "h": "hours", "m": "minutes"}
TEST_COUNCIL_CONFIG = CouncilConfig(
    name="Testshire Council",
    privacy_url="testshire.gov.uk/privacy",
    helpline="0300 000 0000",
    signposting="Free help: call {helpline} or visit your library.",
    help_device="Borrow a tablet: call 07700 900100.",
    help_data="Free data: ask at your library.",
    help_skills="Free classes: call 07700 900101.",
    translations={
        "cy": {
            "name": "Cyngor Testshire",
            "signposting": "Help am ddim: ffoniwch {helpline} neu ewch i'ch llyfrgell.",
            "help_device": "Benthyg llechen: ffoniwch 07700 900100.",
            "help_data": "Data am ddim: gofynnwch yn eich llyfrgell.",
            "help_skills": "Dosbarthiadau am ddim: ffoniwch 07700 900101.",
        }
    },
)
"""The council the transcripts were recorded for, with its Welsh name and signposting."""
TEST_COUNCIL = council_parameters(Config(council=TEST_COUNCIL_CONFIG))


@dataclass
class Exchange:
    sent: str
    inbound: Inbound
    at: datetime
    replies: list[str] = field(default_factory=list)


def inbound_for(sent: str) -> Inbound:
    if sent.startswith("[tap ") and sent.endswith("]"):
        return Inbound(text="", button=sent[5:-1])
    if sent == "[media]":
        return Inbound(text="", has_media=True)
    return Inbound(text=sent)


def parse(path: Path) -> list[Exchange]:
    exchanges: list[Exchange] = []
    now = START
    reply_lines: list[str] | None = None

    def close_reply() -> None:
        nonlocal reply_lines
        if reply_lines is not None:
            exchanges[-1].replies.append("\n".join(reply_lines))
            reply_lines = None

    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if line.startswith("#") or not line.strip():
            close_reply()
            continue
        shift = SHIFT.match(line)
        if shift:
            close_reply()
            now += timedelta(**{UNITS[shift.group(2)]: int(shift.group(1))})
            continue
        if line.startswith(">"):
            close_reply()
            sent = line[2:]
            now += TURN_GAP
            exchanges.append(Exchange(sent, inbound_for(sent), now))
            continue
        if line.startswith("<"):
            if not exchanges:
                raise ValueError(f"{path.name}:{number}: a reply before any message")
            if reply_lines is None:
                reply_lines = []
            reply_lines.append(line[2:])
            continue
        raise ValueError(f"{path.name}:{number}: a line must start with #, @, > or <")
    close_reply()
    return exchanges


def render(exchanges: list[tuple[str, list[str]]], gaps: dict[int, str] | None = None) -> str:
    """Write exchanges in the transcript format (used by `dibot chat --record`)."""
    lines: list[str] = []
    for index, (sent, replies) in enumerate(exchanges):
        if gaps and index in gaps:
            lines.append(f"@ {gaps[index]}")
        lines.append(f"> {sent}")
        for reply in replies:
            lines.extend(f"< {part}" for part in reply.split("\n"))
    return "\n".join(lines) + "\n"


def all_transcripts() -> list[Path]:
    return sorted(TRANSCRIPTS.glob("*.txt"))
