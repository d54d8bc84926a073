"""The terminal channel: type as a respondent would, read what the bot answers.

It goes through the same turn handler as SMS and Telegram (so the database keeps the
conversation and `dibot chat` resumes where it stopped), and can record the session in the
transcript format the tests replay (`--record FILE`). A language given (`--lang`) is the
respondent's own choice: a new conversation starts in it, whichever it is, without asking.
"""

from __future__ import annotations

import uuid
from typing import TextIO

from bot.messages import Inbound, clean_text
from dibot.turns import TurnHandler

PROMPT = "> "


def run_chat(
    handler: TurnHandler,
    urn: str,
    input: TextIO,
    output: TextIO,
    record: TextIO | None = None,
    language: str | None = None,
) -> int:
    """Read lines from `input` until end of file, answering each; returns the turns taken."""
    interactive = input.isatty()
    if interactive:
        output.write(f"Talking to dibot as {urn}. Type your replies; Ctrl-D to leave.\n")
    turns = 0
    while True:
        if interactive:
            output.write(PROMPT)
            output.flush()
        line = input.readline()
        if not line:
            break
        text = line.rstrip("\n")
        result = handler.handle(
            channel="terminal",
            message_id=f"terminal-{uuid.uuid4()}",
            urn=urn,
            inbound=Inbound(text=clean_text(text)),
            language=language,
            language_chosen=language is not None,
        )
        turns += 1
        if record is not None:
            record.write(f"> {text}\n")
        for reply in result.replies:
            output.write(reply.text + "\n\n")
            if record is not None:
                record.write("".join(f"< {part}\n" for part in reply.text.split("\n")))
        output.flush()
    if interactive:
        output.write("\n")
    return turns
