"""Provider identifiers are checked at the edge, once, before anything is stored or looked up.

A message id, a phone number or a chat id that no provider would send (too long, NUL or other
characters outside its form, a number of 129 digits) is refused by the channel with a specific
error, never passed on to fail in the database (PostgreSQL refuses what SQLite keeps) as a
5xx the provider would retry for ever. The values themselves are never echoed or logged.
"""

from __future__ import annotations

import re

MESSAGE_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
"""A Twilio SID ("SM" and 32 hex digits) or a gateway's id: letters, digits, _ and -."""
PHONE_NUMBER = re.compile(r"\+?[A-Za-z0-9]{1,20}")
"""E.164 (+447700900123), a short code, or an alphanumeric sender id."""
TELEGRAM_ID_LIMIT = 2**53
"""Telegram's update and chat ids fit in 52 bits (signed for chats)."""


def is_message_id(value: str) -> bool:
    return MESSAGE_ID.fullmatch(value) is not None


def is_phone_number(value: str) -> bool:
    return PHONE_NUMBER.fullmatch(value) is not None


def is_telegram_id(value: int) -> bool:
    return -TELEGRAM_ID_LIMIT < value < TELEGRAM_ID_LIMIT
