"""Charts as inline SVG, built by pure functions: data in, escaped SVG markup out.

The rule it keeps: a chart says everything in words as well as in shapes. It is an image with
an accessible name and description (`role="img"`, `<title>` and `<desc>`, linked by
`aria-labelledby`), every bar carries its value as text beside it and its meaning in a text
label (never by colour alone: the two kinds of bar also differ in pattern), a missing value
is written out ("not answered"), and zero is drawn as a visible stub so it never looks
missing. Every text is escaped here; styles are classes (dashboard/static/respondent.css) and
SVG presentation attributes, never `style=` attributes. Shares are 0..1 and shown as whole
percentages by `percent`, which the page's tables use too, so chart and table always agree.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup

WIDTH = 640
LABEL_WIDTH = 90
"""Room on the left for "Skill" and "Interest"."""
BAR_SPAN = 420
"""The length of a 100% bar."""
BAR_HEIGHT = 18
HEADING_HEIGHT = 26
ROW_GAP = 14
AXIS_HEIGHT = 24
ZERO_STUB = 2
"""A 0% bar's width, so that zero is seen as zero and not as missing."""
TICKS = (0.0, 0.25, 0.5, 0.75, 1.0)


@dataclass(frozen=True)
class PairedBars:
    """One group of the chart: a label and two shares (0..1), None when there is none."""

    label: str
    skill: float | None
    interest: float | None
    missing: str = "not answered"
    """What a missing share is called ("not answered", "not asked")."""


def percent(share: float) -> str:
    """A share (0..1) as a whole percentage, halves rounded up: 0.625 -> "63%"."""
    clamped = min(max(share, 0.0), 1.0)
    return f"{math.floor(clamped * 100 + 0.5)}%"


def describe(group: PairedBars) -> str:
    """One group in words: "Getting started: skill 50%, interest 75%"."""
    return (
        f"{group.label}: skill {_value(group.skill, group.missing)}, "
        f"interest {_value(group.interest, group.missing)}"
    )


def skill_interest_chart(
    groups: Sequence[PairedBars], *, chart_id: str, title: str, summary: str = ""
) -> Markup:
    """A horizontal bar chart: per group, a skill bar and an interest bar on a 0-100% axis.

    `chart_id` prefixes the ids of the title and description (it must be unique on the
    page); `summary` opens the description, followed by every group in words. The markup is
    built only from literal templates whose values `Markup.format` escapes.
    """
    description = " ".join(
        part for part in (summary, *(describe(group) + "." for group in groups)) if part
    )
    row_height = HEADING_HEIGHT + 2 * BAR_HEIGHT + 4 + ROW_GAP
    height = AXIS_HEIGHT + max(len(groups), 1) * row_height
    parts = [
        Markup(
            '<svg xmlns="http://www.w3.org/2000/svg" class="dibot-chart" role="img" '
            'aria-labelledby="{id}-title {id}-desc" viewBox="0 0 {width} {height}" '
            'width="{width}" height="{height}" preserveAspectRatio="xMinYMin meet">'
            '<title id="{id}-title">{title}</title><desc id="{id}-desc">{desc}</desc>'
            '<defs><pattern id="{id}-stripes" patternUnits="userSpaceOnUse" width="6" height="6" '
            'patternTransform="rotate(45)">'
            '<rect width="6" height="6" class="dibot-chart__stripes-ground"/>'
            '<line x1="0" y1="0" x2="0" y2="6" stroke-width="3" '
            'class="dibot-chart__stripes-line"/></pattern></defs>'
        ).format(id=chart_id, width=WIDTH, height=height, title=title, desc=description),
        *_axis(height),
    ]
    for index, group in enumerate(groups):
        parts.extend(_group(group, AXIS_HEIGHT + index * row_height, chart_id))
    if not groups:
        parts.append(
            Markup('<text x="0" y="{}" class="dibot-chart__label">Nothing to show</text>').format(
                AXIS_HEIGHT + HEADING_HEIGHT
            )
        )
    parts.append(Markup("</svg>"))
    return Markup("").join(parts)


def _axis(height: int) -> list[Markup]:
    lines = [Markup('<g class="dibot-chart__axis" aria-hidden="true">')]
    for tick in TICKS:
        lines.append(
            Markup(
                '<line x1="{x:g}" y1="{top}" x2="{x:g}" y2="{height}" class="dibot-chart__grid"/>'
                '<text x="{x:g}" y="{label}" text-anchor="middle" class="dibot-chart__tick">'
                "{text}</text>"
            ).format(
                x=LABEL_WIDTH + tick * BAR_SPAN,
                top=AXIS_HEIGHT - 6,
                height=height,
                label=AXIS_HEIGHT - 10,
                text=percent(tick),
            )
        )
    lines.append(Markup("</g>"))
    return lines


def _group(group: PairedBars, top: int, chart_id: str) -> list[Markup]:
    skill_top = top + HEADING_HEIGHT
    interest_top = skill_top + BAR_HEIGHT + 4
    return [
        Markup('<g><text x="0" y="{y}" class="dibot-chart__heading">{label}</text>').format(
            y=top + HEADING_HEIGHT - 8, label=group.label
        ),
        *_bar("Skill", group.skill, group.missing, skill_top, "skill", None),
        *_bar("Interest", group.interest, group.missing, interest_top, "interest", chart_id),
        Markup("</g>"),
    ]


def _bar(
    name: str, share: float | None, missing: str, top: int, kind: str, stripes: str | None
) -> list[Markup]:
    """A labelled bar; `stripes` names the chart whose striped pattern fills it, if any."""
    text_y = top + BAR_HEIGHT - 4
    label = Markup('<text x="0" y="{y}" class="dibot-chart__label">{name}</text>').format(
        y=text_y, name=name
    )
    if share is None:
        return [
            label,
            Markup(
                '<text x="{x}" y="{y}" class="dibot-chart__value dibot-chart__value--missing">'
                "{missing}</text>"
            ).format(x=LABEL_WIDTH, y=text_y, missing=missing),
        ]
    length = max(min(max(share, 0.0), 1.0) * BAR_SPAN, ZERO_STUB)
    fill = Markup(' fill="url(#{}-stripes)"').format(stripes) if stripes else Markup("")
    return [
        label,
        Markup(
            '<rect x="{x}" y="{y}" width="{length:.1f}" height="{height}" '
            'class="dibot-chart__bar dibot-chart__bar--{kind}"{fill}/>'
            '<text x="{value_x:.1f}" y="{text_y}" class="dibot-chart__value">{value}</text>'
        ).format(
            x=LABEL_WIDTH,
            y=top,
            length=length,
            height=BAR_HEIGHT,
            kind=kind,
            fill=fill,
            value_x=LABEL_WIDTH + length + 6,
            text_y=text_y,
            value=percent(share),
        ),
    ]


def _value(share: float | None, missing: str) -> str:
    return missing if share is None else percent(share)
