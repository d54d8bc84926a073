"""How many SMS segments a text costs: GSM-7 160/153 septets, otherwise UCS-2 70/67.

GSM-7 extension characters (^ { } [ ] ~ | € \\) cost two septets. One character outside
GSM-7 (a curly quote, an en dash, an emoji, a Welsh ŵ) turns the whole message into UCS-2,
where each UTF-16 code unit counts (an emoji outside the BMP costs two).
"""

from __future__ import annotations

from dataclasses import dataclass

import gsm0338  # noqa: F401  (registers the "gsm03.38" codec)

GSM7_SINGLE = 160
GSM7_PART = 153
UCS2_SINGLE = 70
UCS2_PART = 67


@dataclass(frozen=True)
class SegmentCount:
    encoding: str
    """"GSM-7" or "UCS-2"."""
    units: int
    """Septets for GSM-7, UTF-16 code units for UCS-2."""
    segments: int


def gsm7_septets(text: str) -> int | None:
    """Septets `text` costs in GSM-7, or None when it cannot be sent as GSM-7."""
    try:
        return len(text.encode("gsm03.38"))
    except UnicodeEncodeError:
        return None


def count_segments(text: str) -> SegmentCount:
    septets = gsm7_septets(text)
    if septets is not None:
        parts = 1 if septets <= GSM7_SINGLE else -(-septets // GSM7_PART)
        return SegmentCount("GSM-7", septets, parts)
    units = len(text.encode("utf-16-le")) // 2
    parts = 1 if units <= UCS2_SINGLE else -(-units // UCS2_PART)
    return SegmentCount("UCS-2", units, parts)


def is_gsm7(text: str) -> bool:
    return gsm7_septets(text) is not None
