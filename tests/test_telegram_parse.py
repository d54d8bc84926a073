"""Reading Telegram updates: what each kind of update means for the conversation."""

from __future__ import annotations

from bot.messages import Inbound
from channels.telegram_parse import (
    ALLOWED_UPDATES,
    ChatBlocked,
    TelegramInbound,
    UnusableTap,
    chat_id_of,
    parse_update_json,
    urn_of,
)
from tests.fake_telegram import (
    edited_update,
    media_update,
    member_update,
    tap_update,
    text_update,
)

CHAT = 424242


def test_a_text_message_is_a_turn_keyed_on_its_update_id() -> None:
    parsed = parse_update_json(text_update(CHAT, "1", update_id=77))
    assert parsed == TelegramInbound("77", "telegram:424242", Inbound(text="1"), language="en")


def test_a_button_tap_carries_its_payload_and_must_be_answered() -> None:
    update = tap_update(CHAT, "consent:1", update_id=78)
    parsed = parse_update_json(update)
    assert parsed == TelegramInbound(
        "78",
        "telegram:424242",
        Inbound(text="", button="consent:1"),
        callback_query_id=update["callback_query"]["id"],
        language="en",
    )


def test_start_mid_way_is_just_the_text() -> None:
    parsed = parse_update_json(text_update(CHAT, "/start"))
    assert isinstance(parsed, TelegramInbound)
    assert parsed.inbound == Inbound(text="/start")


def test_an_edited_message_is_a_turn_marked_edited() -> None:
    parsed = parse_update_json(edited_update(CHAT, "3", update_id=79))
    assert parsed == TelegramInbound(
        "79", "telegram:424242", Inbound(text="3", edited=True), language="en"
    )
    assert "edited_message" in ALLOWED_UPDATES


def test_stickers_photos_and_voice_notes_are_media_with_their_caption() -> None:
    for kind in ("sticker", "photo", "voice"):
        parsed = parse_update_json(media_update(CHAT, kind))
        assert isinstance(parsed, TelegramInbound)
        assert parsed.inbound == Inbound(text="", has_media=True)
    captioned = parse_update_json(media_update(CHAT, "photo", caption="2"))
    assert isinstance(captioned, TelegramInbound)
    assert captioned.inbound == Inbound(text="2", has_media=True)


def test_blocking_the_bot_is_noticed_and_unblocking_is_not_a_turn() -> None:
    assert parse_update_json(member_update(CHAT, "kicked")) == ChatBlocked("telegram:424242")
    assert parse_update_json(member_update(CHAT, "member")) is None


def test_group_chats_and_other_updates_are_ignored() -> None:
    group = text_update(CHAT, "1")
    group["message"]["chat"] = {"id": -100123, "type": "group", "title": "Neighbours"}
    assert parse_update_json(group) is None
    assert parse_update_json({"update_id": 5, "poll": None}) is None
    assert parse_update_json({"update_id": 6}) is None


def test_a_tap_without_data_is_only_acknowledged() -> None:
    update = tap_update(CHAT, "x")
    del update["callback_query"]["data"]
    assert parse_update_json(update) == UnusableTap(update["callback_query"]["id"])


def test_malformed_updates_are_ignored_not_raised() -> None:
    assert parse_update_json({"message": {"text": "1"}}) is None
    assert parse_update_json({"update_id": 7, "message": {"text": "1"}}) is None


def test_urns_round_trip() -> None:
    assert chat_id_of(urn_of(CHAT)) == CHAT
    assert chat_id_of(urn_of(-5)) == -5


def test_the_senders_telegram_language_goes_with_the_turn() -> None:
    update = text_update(CHAT, "Helo")
    update["message"]["from"]["language_code"] = "cy-GB"
    parsed = parse_update_json(update)
    assert isinstance(parsed, TelegramInbound)
    assert parsed.language == "cy"
