"""Helpers for tests that look at respondents in the database, where their URNs are held only
encrypted (`urn_cipher`) and found by digest (`urn_digest`): the same keys the code uses."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from storage.privacy import keys_of, open_privacy


def urn_digest(engine: sa.Engine, urn: str) -> bytes:
    """What `respondents.urn_digest` holds for `urn`."""
    return open_privacy(engine).digest(urn)


def urn_of(engine: sa.Engine, cipher: str) -> str:
    """The URN a `respondents.urn_cipher` value holds (or the text of any other token)."""
    return keys_of(engine).decrypt(cipher)


def respondent_columns(engine: sa.Engine, urn: str) -> dict[str, Any]:
    """`urn_cipher` and `urn_digest` for inserting a respondent by hand."""
    privacy = open_privacy(engine)
    return {"urn_cipher": privacy.encrypt(urn), "urn_digest": privacy.digest(urn)}
