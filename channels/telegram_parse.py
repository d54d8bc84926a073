"""Reading a Telegram update: a pure function from the update to what the turn handler needs.

No network and no database here. An update becomes one of:
- `TelegramInbound`: a turn to take, deduplicated on the update's `update_id` (a unique key,
  never "greater than the last seen"), for the respondent `telegram:<chat id>`;
- `ChatBlocked`: the respondent blocked the bot (`my_chat_member`, status "kicked"), to be
  marked unreachable with no reply;
- `UnusableTap`: a button tap that carries nothing to answer, still to be acknowledged;
- None: anything else (group chats, channel posts, inline queries, service messages).

Choices kept here:
- A button tap is `Inbound(text="", button=<callback data>)`: the payload names the question
  it answers, so the engine can tell a stale tap from a fresh one.
- An edited message is a turn marked `edited`: it can come long after the message it changes,
  and read as an answer it would be taken for whatever question is open by then (a stale
  answer corrupting state). The engine answers nothing with it and tells the respondent how to
  change an answer (BACK), with the open question again.
- Stickers, photos, voice notes and other attachments become `has_media=True` with the
  caption as the text ("" without one), so the engine can say it only reads text.
- Only private chats are conversations: a group the bot was added to is never questioned.
- The sender's Telegram language setting (`language_code`, e.g. "cy") goes with the turn, so a
  new respondent whose Telegram is in Welsh starts in Welsh without being asked.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from telegram import Bot, ChatMember, Message, Update, User
from telegram.constants import ChatType, MessageAttachmentType

from bot.messages import Inbound, clean_text
from channels.identifiers import is_telegram_id

URN_PREFIX = "telegram:"
ALLOWED_UPDATES = ("message", "edited_message", "callback_query", "my_chat_member")
"""The update kinds dibot reads; the rest are not requested from Telegram at all."""
MEDIA_KINDS = frozenset(MessageAttachmentType) - {MessageAttachmentType.SUCCESSFUL_PAYMENT}


@dataclass(frozen=True)
class TelegramInbound:
    """A turn to take. `callback_query_id` is set for a button tap, which must be answered."""

    message_id: str
    urn: str
    inbound: Inbound
    callback_query_id: str | None = None
    language: str | None = None
    """The primary subtag of the sender's Telegram language setting ("cy" for "cy-GB")."""


@dataclass(frozen=True)
class ChatBlocked:
    """The respondent blocked the bot: they are unreachable until they write again."""

    urn: str


@dataclass(frozen=True)
class UnusableTap:
    """A tap with no data or from outside a private chat: acknowledged, nothing else."""

    callback_query_id: str


ParsedUpdate = TelegramInbound | ChatBlocked | UnusableTap


def urn_of(chat_id: int) -> str:
    return f"{URN_PREFIX}{chat_id}"


def chat_id_of(urn: str) -> int:
    """The chat id in a `telegram:<chat id>` URN."""
    if not urn.startswith(URN_PREFIX):
        raise ValueError(f"not a Telegram URN: {urn!r}")
    return int(urn.removeprefix(URN_PREFIX))


def parse_update_json(data: Mapping[str, Any], bot: Bot | None = None) -> ParsedUpdate | None:
    """An update as the webhook received it (a JSON object). Malformed updates give None."""
    try:
        update = Update.de_json(dict(data), bot)
    except Exception:  # whatever the library raises on a malformed update: it never parses
        return None
    return parse_update(update)


def parse_update(update: Update) -> ParsedUpdate | None:
    """An update as python-telegram-bot parsed it (webhook or getUpdates). One whose ids no
    Telegram update has (an update id of 129 digits, a message without a chat) gives None."""
    if not isinstance(update.update_id, int) or not is_telegram_id(update.update_id):
        return None
    parsed = _parse(update)
    if isinstance(parsed, TelegramInbound | ChatBlocked) and not _is_chat_urn(parsed.urn):
        return None
    return parsed


def _is_chat_urn(urn: str) -> bool:
    try:
        return is_telegram_id(chat_id_of(urn))
    except ValueError:
        return False


def _parse(update: Update) -> ParsedUpdate | None:
    message_id = str(update.update_id)
    if update.message is not None:
        return _from_message(message_id, update.message)
    if update.edited_message is not None:
        return _from_message(message_id, update.edited_message, edited=True)
    if update.callback_query is not None:
        query = update.callback_query
        chat = query.message.chat if query.message is not None else None
        if not isinstance(query.data, str) or chat is None or chat.type != ChatType.PRIVATE:
            return UnusableTap(query.id)
        return TelegramInbound(
            message_id,
            urn_of(chat.id),
            Inbound(text="", button=clean_text(query.data)),
            query.id,
            language_of(query.from_user),
        )
    if update.my_chat_member is not None:
        change = update.my_chat_member
        member = change.new_chat_member
        if (
            change.chat is not None
            and change.chat.type == ChatType.PRIVATE
            and member is not None
            and member.status == ChatMember.BANNED
        ):
            return ChatBlocked(urn_of(change.chat.id))
    return None


def _from_message(
    message_id: str, message: Message, edited: bool = False
) -> TelegramInbound | None:
    if message.chat is None or message.chat.type != ChatType.PRIVATE:
        return None
    has_media = any(message[kind] for kind in MEDIA_KINDS)
    written = _text_or_none(message.text)
    text = clean_text(written if written is not None else _text_or_none(message.caption) or "")
    if not has_media and written is None:
        return None  # a service message (pinned, shared users…): nothing the respondent said
    return TelegramInbound(
        message_id,
        urn_of(message.chat.id),
        Inbound(text=text, has_media=has_media, edited=edited),
        language=language_of(message.from_user),
    )


def language_of(user: User | None) -> str | None:
    code = _text_or_none(user.language_code) if user is not None else None
    return code.split("-", 1)[0].lower() if code else None


def _text_or_none(value: object) -> str | None:
    """A field Telegram sends as a string, or None when it is absent or of another type (a
    malformed update is read as far as it goes, never a 500 Telegram would retry for ever)."""
    return value if isinstance(value, str) else None
