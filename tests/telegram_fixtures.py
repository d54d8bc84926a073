"""Fixtures for every Telegram test, registered in conftest.py: the fake Bot API server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fake_telegram import FakeTelegram


@pytest.fixture
def fake() -> Iterator[FakeTelegram]:
    """A fake Bot API server on 127.0.0.1, stopped after the test."""
    with FakeTelegram() as server:
        yield server
