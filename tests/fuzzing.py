"""Text of every kind for the fuzz tests (test_fuzz.py, test_fuzz_telegram.py): arbitrary
characters of every category (digits and number signs of every script, combining marks,
controls, lone surrogates), words the flow knows, emoji with skin tones and joiners, right-to-left
text and bidi controls, and digit runs thousands long, alone or run together."""

from __future__ import annotations

import unicodedata

from hypothesis import strategies as st

from bot.matching import EDGE_PUNCTUATION

DIGIT_LIKE = "❶➀⓵፩٣３१௩๓᠓𝟑²₃Ⅲ⅓"
"""Decimal digits of other scripts and signs that look like digits but are not decimal."""
EMOJI = ["👍", "👍🏽", "👎🏿", "👩‍👩‍👧", "🏳️‍🌈", "🇬🇧", "😀", "1️⃣", "#️⃣", "🦄"]
RTL = "مرحبا שלום ۱۲۳ \u200f\u200e\u202b\u202e\u2066\u2069\u061c"
WORDS = [
    *("1", "2", "3", "4", "5", "a", "b", "c", "B)", "2.", "two", "dau", "dwy", "un"),
    *("yes", "no", "nope", "ie", "na", "ok", "skip", "back", "stop", "start", "later"),
    *("help", "repeat", "restart", "cymraeg", "english", "nôl", "hepgor", "I'd try"),
    *("not at all", "could", "/start", "/start@dibot_bot"),
]
CHARACTERS = st.one_of(
    st.characters(),
    st.characters(categories=["Nd", "No", "Nl"]),
    st.characters(categories=["Mn", "Me", "Mc"]),
    st.characters(categories=["Cc", "Cf", "Zl", "Zp", "Zs"]),
    st.characters(categories=["Cs"]),
    st.sampled_from(DIGIT_LIKE + RTL + EDGE_PUNCTUATION + "\u200b\u200d\ufe0f\u00a0\u3000"),
)
PIECES = st.one_of(
    st.text(CHARACTERS, max_size=40),
    st.sampled_from(WORDS),
    st.sampled_from(EMOJI),
    st.text("0123456789", min_size=1, max_size=5000),
    st.text(DIGIT_LIKE, min_size=1, max_size=50),
)
TEXTS = st.one_of(
    st.text(CHARACTERS, max_size=3000),
    st.lists(PIECES, max_size=8).map(" ".join),
    st.lists(PIECES, max_size=8).map("".join),
)
"""Any text: arbitrary characters, and words, digits and signs run together."""

HTTP_TEXT = st.text(CHARACTERS.filter(lambda c: unicodedata.category(c) != "Cs"), max_size=2000)
"""What a form or JSON body can carry (UTF-8 has no lone surrogates)."""
