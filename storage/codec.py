"""Outbound messages and buttons as JSON-ready lists, and back: one format for inbox replies
and outbox rows, `{"text": …, "buttons": [{"label": …, "payload": …}]}`."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from bot.messages import Button, Outbound


def dump_buttons(buttons: Iterable[Button]) -> list[dict[str, str]]:
    return [{"label": button.label, "payload": button.payload} for button in buttons]


def load_buttons(data: Iterable[dict[str, str]]) -> tuple[Button, ...]:
    return tuple(Button(label=entry["label"], payload=entry["payload"]) for entry in data)


def dump_replies(replies: Iterable[Outbound]) -> list[dict[str, Any]]:
    return [{"text": reply.text, "buttons": dump_buttons(reply.buttons)} for reply in replies]


def load_replies(data: Iterable[dict[str, Any]]) -> tuple[Outbound, ...]:
    return tuple(
        Outbound(text=entry["text"], buttons=load_buttons(entry["buttons"])) for entry in data
    )
