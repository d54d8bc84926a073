"""How many SMS segments a text costs: GSM-7 160/153 septets, otherwise UCS-2 70/67.

GSM-7 extension characters (^ { } [ ] ~ | € \\) cost two septets. One character outside
GSM-7 (a curly quote, an en dash, an emoji, a Welsh ŵ) turns the whole message into UCS-2,
where each UTF-16 code unit counts (an emoji outside the BMP costs two). A long message is
sent in parts that never split a character: an extension character's two septets, or an
emoji's two code units, go together into the next part when only one unit is left.
"""

from __future__ import annotations

from dataclasses import dataclass

import gsm0338  # noqa: F401  (registers the "gsm03.38" codec)

GSM7_SINGLE = 160
GSM7_PART = 153
UCS2_SINGLE = 70
UCS2_PART = 67
ESCAPE = "\x1b"
"""Announces an extension character in GSM-7; never a character of its own in a text."""


@dataclass(frozen=True)
class SegmentCount:
    encoding: str
    """"GSM-7" or "UCS-2"."""
    units: int
    """Septets for GSM-7, UTF-16 code units for UCS-2."""
    segments: int


def _parts(costs: list[int], part: int) -> int:
    """Parts of at most `part` units each, a character's units never split between two."""
    parts, used = 1, 0
    for cost in costs:
        if used + cost > part:
            parts, used = parts + 1, 0
        used += cost
    return parts


def gsm7_septets(text: str) -> int | None:
    """Septets `text` costs in GSM-7, or None when it cannot be sent as GSM-7."""
    if ESCAPE in text:
        return None
    try:
        return len(text.encode("gsm03.38"))
    except UnicodeEncodeError:
        return None


def count_segments(text: str) -> SegmentCount:
    septets = gsm7_septets(text)
    if septets is not None:
        if septets <= GSM7_SINGLE:
            return SegmentCount("GSM-7", septets, 1)
        costs = [len(char.encode("gsm03.38")) for char in text]
        return SegmentCount("GSM-7", septets, _parts(costs, GSM7_PART))
    units = len(text.encode("utf-16-le")) // 2
    if units <= UCS2_SINGLE:
        return SegmentCount("UCS-2", units, 1)
    costs = [len(char.encode("utf-16-le")) // 2 for char in text]
    return SegmentCount("UCS-2", units, _parts(costs, UCS2_PART))


def is_gsm7(text: str) -> bool:
    return gsm7_septets(text) is not None
