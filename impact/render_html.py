"""The cohort report as HTML: a partial the dashboard includes in its GOV.UK layout
(templates/report_body.html) and a standalone page (templates/report_page.html).

The rules it keeps:
- Every word and number comes from `report_view`, written by impact/render_text.py's
  functions, so the HTML says what the text and the JSON say; the templates only lay it out.
- Every chart is an accessible SVG image (`role="img"`, a `<title>` and a `<desc>` holding
  every value in words, linked by `aria-labelledby`), shows its values as text, never tells
  things apart by colour alone (a fall is striped, a rise solid; levels run 0 to 4 left to
  right, each labelled with its count), and is followed by a table with the same numbers.
- Everything is escaped: the templates run with autoescape on, and the SVG is built only from
  literal markup whose values `Markup.format` escapes. Nothing external is loaded: the
  standalone page carries its own styles and no scripts.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup

from impact.render_text import (
    FUNNEL,
    NO_SKILL_GAINS,
    aspect_title,
    bases_sentence,
    capitalised,
    count_with_share,
    direction,
    gain_with_interval,
    generated,
    item_rows,
    nothing_to_compare,
    percent,
    points,
    shown_pairs,
    withheld,
    withheld_estimate,
)
from impact.report import CohortReport, Count, ImpactRow, Picture
from scoring.impact import Estimate

# --- the view: what the templates show ------------------------------------------------------


@dataclass(frozen=True)
class Cell:
    text: str
    numeric: bool = False
    span: int = 1
    """Columns it covers: a withheld group's words run across the statistics' columns."""


@dataclass(frozen=True)
class Table:
    kind: ClassVar[str] = "table"
    id: str
    caption: str
    head: tuple[Cell, ...]
    rows: tuple[tuple[Cell, ...], ...]
    """Each row's first cell names the row (a row header)."""


@dataclass(frozen=True)
class Chart:
    kind: ClassVar[str] = "chart"
    svg: Markup


@dataclass(frozen=True)
class Paragraph:
    kind: ClassVar[str] = "paragraph"
    text: str


@dataclass(frozen=True)
class Subheading:
    kind: ClassVar[str] = "subheading"
    text: str


Block = Table | Chart | Paragraph | Subheading


@dataclass(frozen=True)
class Section:
    id: str
    title: str
    blocks: tuple[Block, ...]


@dataclass(frozen=True)
class ReportView:
    title: str
    summary: tuple[tuple[str, str], ...]
    """Key and value rows: what the report is about, when, from which questionnaire."""
    sections: tuple[Section, ...]


def report_view(report: CohortReport) -> ReportView:
    """Everything the templates show, as words, numbers and charts."""
    summary = [
        ("About", report.description),
        ("Generated", generated(report)),
        ("Questionnaire", f"{report.flow_id} version {report.flow_version}"),
        ("Small groups", f"Groups of fewer than {report.min_group} people are withheld"),
    ]
    if report.cohorts:
        summary.insert(1, ("Cohorts", ", ".join(report.cohorts)))
    return ReportView(
        title=report.title,
        summary=tuple(summary),
        sections=(
            Section("who", "Who", (_funnel_table(report),)),
            Section("baseline", "At baseline", tuple(_baseline(report))),
            Section("impact", "Impact", tuple(_impact(report))),
        ),
    )


# --- rendering -----------------------------------------------------------------------------


def environment() -> Environment:
    """The templates, autoescaped whatever their names."""
    return Environment(
        loader=PackageLoader("impact", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render_html(report: CohortReport) -> str:
    """The standalone page: self-contained, no scripts, nothing loaded from elsewhere."""
    return environment().get_template("report_page.html").render(view=report_view(report))


def render_body(report: CohortReport) -> str:
    """The partial alone (for a page that has its own layout and heading)."""
    return environment().get_template("report_body.html").render(view=report_view(report))


# --- sections ------------------------------------------------------------------------------


def _funnel_table(report: CohortReport) -> Table:
    return Table(
        "funnel",
        "People at each step",
        (Cell("Step"), Cell("People", numeric=True)),
        tuple(
            (Cell(name), Cell(str(getattr(report.funnel, key)), numeric=True))
            for key, name in FUNNEL
        ),
    )


def _counts_table(
    table_id: str, caption: str, what: str, counts: Sequence[Count], min_group: int
) -> Table:
    return Table(
        table_id,
        caption,
        (Cell(what), Cell("People", numeric=True)),
        tuple(
            (Cell(capitalised(c.name)), Cell(count_with_share(c, min_group), numeric=True))
            for c in counts
        ),
    )


def _baseline(report: CohortReport) -> list[Block]:
    picture = report.picture
    min_group = report.min_group
    if picture.withheld:
        return [
            Paragraph(
                f"Fewer than {min_group} people have finished a first check: the picture at "
                "baseline is withheld."
            )
        ]
    blocks: list[Block] = [
        Paragraph(f"{picture.people} people, each at their latest first check."),
        _counts_table(
            "missing-basics", "Missing basics", "Basic", picture.missing_basics, min_group
        ),
        _counts_table(
            "barriers",
            "Barriers (a blocker that stops them, or causes major problems)",
            "Blocker",
            picture.barriers,
            min_group,
        ),
    ]
    for aspect, labels in (("skill", picture.skill_levels), ("interest", picture.interest_levels)):
        key = "; ".join(f"{score} {label}" for score, label in enumerate(labels))
        blocks += [
            Subheading(f"{aspect_title(aspect)} per heading"),
            Paragraph(
                "How many people are at each level, and the mean as a share of the most anyone "
                f"could score. Levels: {key}."
            ),
            Chart(_levels_chart(picture, aspect)),
            _levels_table(picture, aspect),
        ]
    blocks.append(Subheading("Most common priorities"))
    if picture.top_priorities:
        blocks.append(
            _counts_table(
                "priorities",
                "Among each person's top few priorities",
                "Priority",
                picture.top_priorities,
                min_group,
            )
        )
    else:
        blocks.append(Paragraph("Nobody has a priority."))
    return blocks


def _levels_table(picture: Picture, aspect: str) -> Table:
    levels = picture.skill_levels if aspect == "skill" else picture.interest_levels
    rows = []
    for heading in picture.headings:
        counts = heading.skill_levels if aspect == "skill" else heading.interest_levels
        mean = heading.skill if aspect == "skill" else heading.interest
        rows.append(
            (
                Cell(heading.name),
                Cell(str(sum(counts)), numeric=True),
                Cell("none" if mean is None else percent(mean), numeric=True),
                *(Cell(str(n), numeric=True) for n in counts),
            )
        )
    return Table(
        f"{aspect}-levels",
        f"{aspect_title(aspect)}: people at each level",
        (
            Cell("Heading"),
            Cell("People", numeric=True),
            Cell("Mean", numeric=True),
            *(Cell(f"Level {score}", numeric=True) for score in range(len(levels))),
        ),
        tuple(rows),
    )


def _impact(report: CohortReport) -> list[Block]:
    impact = report.impact
    min_group = report.min_group
    if impact.pairs == 0:
        return [Paragraph(nothing_to_compare(report))]
    blocks: list[Block] = [
        Paragraph(
            bases_sentence(report) + ". Gains are check-in minus first check, in score points "
            "(levels 0 to 4); a person's gain is the mean over what they answered both times. "
            "“Improved” and “worse” are said only where the whole 95% confidence interval is "
            "above or below no change."
        ),
    ]
    if not impact.overall:
        return [
            *blocks,
            Paragraph(NO_SKILL_GAINS),
            Subheading("Changes"),
            _changes_table(report),
        ]
    blocks.append(Subheading("Skill and confidence per heading"))
    skill = [row for row in (*impact.overall, *impact.headings) if row.aspect == "skill"]
    interest = [row for row in (*impact.overall, *impact.headings) if row.aspect == "interest"]
    charted = [(row.name, row.estimate) for row in skill]
    if _any_shown(charted):
        blocks.append(
            Chart(
                _gain_chart(
                    charted,
                    chart_id="gain-skill",
                    title="Mean skill gain per heading, with 95% confidence intervals",
                    min_group=min_group,
                )
            )
        )
    blocks.append(
        _estimates_table("gains-skill", "Skill gain per heading", skill, min_group, "Heading")
    )
    if interest:
        blocks += [
            Subheading("Interest and motivation per heading"),
            _estimates_table(
                "gains-interest", "Interest gain per heading", interest, min_group, "Heading"
            ),
        ]
    items = item_rows(report)
    if items:
        blocks += [
            Subheading("Skill and confidence per item"),
            _estimates_table("gains-items", "Skill gain per item", items, min_group, "Item"),
        ]
    if impact.initiatives:
        blocks += _initiatives(report)
    blocks += [Subheading("Changes"), _changes_table(report)]
    blocks += [Subheading("Outcome flags"), _outcomes_table(report)]
    return blocks


def _any_shown(rows: Sequence[tuple[str, Estimate]]) -> bool:
    """Whether a gain chart would show anything but withheld rows (else only its table is)."""
    return any(not found.suppressed for _, found in rows)


ESTIMATE_HEAD = (
    Cell("People", numeric=True),
    Cell("Mean gain", numeric=True),
    Cell("Better", numeric=True),
    Cell("Worse", numeric=True),
    Cell("In short"),
)


def _estimate_cells(found: Estimate, min_group: int) -> tuple[Cell, ...]:
    if found.suppressed:
        return (Cell(withheld_estimate(found, min_group), span=len(ESTIMATE_HEAD)),)
    assert found.improved is not None
    assert found.worse is not None
    return (
        Cell(str(found.n), numeric=True),
        Cell(gain_with_interval(found), numeric=True),
        Cell(percent(found.improved), numeric=True),
        Cell(percent(found.worse), numeric=True),
        Cell(direction(found)),
    )


def _estimates_table(
    table_id: str, caption: str, rows: Sequence[ImpactRow], min_group: int, first: str = ""
) -> Table:
    return Table(
        table_id,
        caption,
        (Cell(first), *ESTIMATE_HEAD),
        tuple((Cell(row.name), *_estimate_cells(row.estimate, min_group)) for row in rows),
    )


def _initiatives(report: CohortReport) -> list[Block]:
    min_group = report.min_group
    initiatives = report.impact.initiatives
    blocks: list[Block] = [
        Subheading("By initiative"),
        Paragraph("Someone in two initiatives counts in both; “No initiative” is everyone else."),
        Table(
            "initiative-pairs",
            "Pairs compared in each initiative",
            (Cell("Initiative"), Cell("Pairs", numeric=True)),
            tuple(
                (Cell(i.initiative), Cell(shown_pairs(i, min_group), numeric=True))
                for i in initiatives
            ),
        ),
    ]
    overall = [
        (i.initiative, next((r.estimate for r in i.overall if r.aspect == "skill"), None))
        for i in initiatives
    ]
    shown = [(name, found) for name, found in overall if found is not None]
    if _any_shown(shown):
        blocks.append(
            Chart(
                _gain_chart(
                    shown,
                    chart_id="gain-initiatives",
                    title="Mean skill gain by initiative, with 95% confidence intervals",
                    min_group=min_group,
                )
            )
        )
    names: dict[str, None] = {}
    for initiative in initiatives:
        names.update((row.name, None) for row in (*initiative.overall, *initiative.headings))
    for index, name in enumerate(names):
        rows = [
            (Cell(initiative.initiative), *_estimate_cells(row.estimate, min_group))
            for initiative in initiatives
            for row in (*initiative.overall, *initiative.headings)
            if row.name == name
        ]
        blocks.append(
            Table(
                f"initiatives-{index}",
                f"{name}: by initiative",
                (Cell("Initiative"), *ESTIMATE_HEAD),
                tuple(rows),
            )
        )
    return blocks


def _changes_table(report: CohortReport) -> Table:
    impact = report.impact
    groups = [("All", impact.changes)] + [(i.initiative, i.changes) for i in impact.initiatives]
    rows = []
    for index, change in enumerate(impact.changes):
        cells = []
        for _, changes in groups:
            found = changes[index]
            text = "withheld" if found.count is None else count_with_share(found, 0)
            cells.append(Cell(text, numeric=True))
        rows.append((Cell(change.name), *cells))
    return Table(
        "changes",
        "People among the pairs with each change (each counts once for each kind); "
        f"withheld: fewer than {report.min_group} pairs",
        (Cell("Change"), *(Cell(name, numeric=True) for name, _ in groups)),
        tuple(rows),
    )


def _outcomes_table(report: CohortReport) -> Table:
    rows: list[tuple[Cell, ...]] = []
    for outcome in report.impact.outcomes:
        if outcome.newly_able is None:
            rows.append((Cell(outcome.name), Cell(withheld(report.min_group, "known"), span=3)))
        else:
            rows.append(
                (
                    Cell(outcome.name),
                    Cell(f"{outcome.newly_able} of {outcome.known}", numeric=True),
                    Cell(str(outcome.able_at_baseline), numeric=True),
                    Cell(str(outcome.able_at_checkin), numeric=True),
                )
            )
    return Table(
        "outcomes",
        "For cost-benefit models: pairs whose item was asked both times; able means "
        "confident doing it for themselves, or better",
        (
            Cell("Outcome"),
            Cell("Newly able", numeric=True),
            Cell("Able before", numeric=True),
            Cell("Able after", numeric=True),
        ),
        tuple(rows),
    )


# --- charts --------------------------------------------------------------------------------

WIDTH = 660
LABEL_WIDTH = 200
ROW_HEIGHT = 30
BAR_HEIGHT = 18
AXIS_HEIGHT = 28
FONT = Markup('font-family="Arial, sans-serif" font-size="13"')
TEXT = "#0b0c0c"
RISE = "#1d70b8"
FALL = "#d4351c"
LEVEL_FILLS = ("#f3f2f1", "#c5d8ea", "#8cb2d6", "#2f6fae", "#0b2f52")
"""Light to dark, so the levels read in order even without colour."""
LEVEL_TEXT = (TEXT, TEXT, TEXT, "#ffffff", "#ffffff")
LEVEL_SPAN = 360
GAIN_MARGIN = 50
"""Room each side of the gain axis for a value written beyond its whisker."""
GAIN_SPAN = WIDTH - LABEL_WIDTH - 2 * GAIN_MARGIN


def _svg_open(chart_id: str, height: int, title: str, description: str) -> Markup:
    return Markup(
        '<svg xmlns="http://www.w3.org/2000/svg" class="dibot-chart" role="img" '
        'aria-labelledby="{id}-title {id}-desc" viewBox="0 0 {width} {height}" '
        'width="{width}" height="{height}" preserveAspectRatio="xMinYMin meet">'
        '<title id="{id}-title">{title}</title><desc id="{id}-desc">{desc}</desc>'
    ).format(id=chart_id, width=WIDTH, height=height, title=title, desc=description)


LABEL_CHARACTERS = 28
"""What fits in `LABEL_WIDTH`; a longer name is cut (the description and table hold it whole)."""


def _label(text: str, y: float) -> Markup:
    shown = text if len(text) <= LABEL_CHARACTERS else text[: LABEL_CHARACTERS - 1] + "…"
    return Markup('<text x="0" y="{y:.1f}" fill="{fill}" {font}>{text}</text>').format(
        y=y, fill=TEXT, font=FONT, text=shown
    )


def _levels_chart(picture: Picture, aspect: str) -> Markup:
    """Per heading, a bar split into the people at each level, 0 on the left."""
    labels = picture.skill_levels if aspect == "skill" else picture.interest_levels
    chart_id = f"{aspect}-levels-chart"
    rows = [
        (h.name, h.skill_levels if aspect == "skill" else h.interest_levels)
        for h in picture.headings
    ]
    words = [
        f"{name}: " + ", ".join(f"{n} at level {score}" for score, n in enumerate(counts)) + "."
        for name, counts in rows
    ]
    height = AXIS_HEIGHT + len(rows) * ROW_HEIGHT + 8
    parts = [
        _svg_open(
            chart_id,
            height,
            f"{aspect_title(aspect)}: people at each level per heading",
            f"Levels from 0 ({labels[0]}) to {len(labels) - 1} ({labels[-1]}). " + " ".join(words),
        ),
        Markup('<g aria-hidden="true">'),
    ]
    for score in range(len(labels)):  # the key: a swatch per level, with its number
        key_x = LABEL_WIDTH + score * 76
        parts.append(
            Markup(
                '<rect x="{x}" y="4" width="14" height="14" fill="{fill}" stroke="{text}"/>'
                '<text x="{tx}" y="16" fill="{text}" {font}>Level {score}</text>'
            ).format(
                x=key_x,
                fill=LEVEL_FILLS[score % len(LEVEL_FILLS)],
                text=TEXT,
                tx=key_x + 18,
                font=FONT,
                score=score,
            )
        )
    for index, (name, counts) in enumerate(rows):
        top = AXIS_HEIGHT + index * ROW_HEIGHT
        parts.append(_label(name, top + BAR_HEIGHT - 4))
        total = sum(counts)
        if total == 0:
            parts.append(
                Markup('<text x="{x}" y="{y}" fill="{fill}" {font}>nobody answered</text>').format(
                    x=LABEL_WIDTH, y=top + BAR_HEIGHT - 4, fill=TEXT, font=FONT
                )
            )
            continue
        x = float(LABEL_WIDTH)
        for score, n in enumerate(counts):
            width = n / total * LEVEL_SPAN
            if n == 0:
                continue
            parts.append(
                Markup(
                    '<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="{h}" fill="{fill}" '
                    'stroke="#ffffff"/>'
                ).format(
                    x=x, y=top, w=width, h=BAR_HEIGHT, fill=LEVEL_FILLS[score % len(LEVEL_FILLS)]
                )
            )
            if width >= 22:
                parts.append(
                    Markup(
                        '<text x="{x:.1f}" y="{y}" text-anchor="middle" fill="{fill}" {font}>'
                        "{n}</text>"
                    ).format(
                        x=x + width / 2,
                        y=top + BAR_HEIGHT - 4,
                        fill=LEVEL_TEXT[score % len(LEVEL_TEXT)],
                        font=FONT,
                        n=n,
                    )
                )
            x += width
        parts.append(
            Markup(
                '<rect x="{x}" y="{y}" width="{w}" height="{h}" fill="none" stroke="{edge}"/>'
                '<text x="{tx}" y="{ty}" fill="{fill}" {font}>{n} people</text>'
            ).format(
                x=LABEL_WIDTH,
                y=top,
                w=LEVEL_SPAN,
                h=BAR_HEIGHT,
                edge=TEXT,
                tx=LABEL_WIDTH + LEVEL_SPAN + 8,
                ty=top + BAR_HEIGHT - 4,
                fill=TEXT,
                font=FONT,
                n=total,
            )
        )
    parts.append(Markup("</g></svg>"))
    return Markup("").join(parts)


def _gain_chart(
    rows: Sequence[tuple[str, Estimate]], *, chart_id: str, title: str, min_group: int
) -> Markup:
    """Per row, a bar from 0 to the mean gain (a rise solid, a fall striped) with its 95%
    interval as a whisker, and the mean written beyond it."""
    shown = [found for _, found in rows if not found.suppressed]
    ends = [value for f in shown for value in (f.ci_low, f.ci_high, f.mean) if value is not None]
    reach = max([1.0, *(abs(value) for value in ends)])
    extent = math.ceil(reach * 2) / 2
    zero = LABEL_WIDTH + GAIN_MARGIN + GAIN_SPAN / 2

    def at(value: float) -> float:
        return zero + value / extent * GAIN_SPAN / 2

    words = []
    for name, found in rows:
        if found.suppressed:
            words.append(f"{name}: {withheld_estimate(found, min_group)}.")
        else:
            words.append(f"{name}: {gain_with_interval(found)}, {direction(found)}.")
    height = AXIS_HEIGHT + len(rows) * ROW_HEIGHT + 8
    parts = [
        _svg_open(
            chart_id,
            height,
            title,
            "Mean gain in score points, check-in minus first check. " + " ".join(words),
        ),
        Markup(
            '<defs><pattern id="{id}-fall" patternUnits="userSpaceOnUse" width="6" height="6" '
            'patternTransform="rotate(45)"><rect width="6" height="6" fill="#ffffff"/>'
            '<line x1="0" y1="0" x2="0" y2="6" stroke="{fall}" stroke-width="3"/></pattern>'
            '</defs><g aria-hidden="true">'
        ).format(id=chart_id, fall=FALL),
    ]
    for tick in (-extent, -extent / 2, 0.0, extent / 2, extent):
        parts.append(
            Markup(
                '<line x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{bottom}" stroke="{colour}" '
                'stroke-width="{width}"/>'
                '<text x="{x:.1f}" y="{label}" text-anchor="middle" fill="{fill}" {font}>'
                "{text}</text>"
            ).format(
                x=at(tick),
                top=AXIS_HEIGHT - 6,
                bottom=height - 4,
                colour=TEXT if tick == 0 else "#b1b4b6",
                width=2 if tick == 0 else 1,
                label=AXIS_HEIGHT - 12,
                fill=TEXT,
                font=FONT,
                text=points(tick),
            )
        )
    for index, (name, found) in enumerate(rows):
        top = AXIS_HEIGHT + index * ROW_HEIGHT
        text_y = top + BAR_HEIGHT - 4
        parts.append(_label(name, text_y))
        if found.suppressed:  # on a blank ground, over the axis lines
            parts.append(
                Markup(
                    '<rect x="{x}" y="{y}" width="{w}" height="{h}" fill="#ffffff"/>'
                    '<text x="{x}" y="{ty}" fill="{fill}" {font}>{words}</text>'
                ).format(
                    x=LABEL_WIDTH,
                    y=top,
                    w=WIDTH - LABEL_WIDTH,
                    h=BAR_HEIGHT,
                    ty=text_y,
                    fill=TEXT,
                    font=FONT,
                    words=withheld_estimate(found, min_group),
                )
            )
            continue
        assert found.mean is not None
        assert found.ci_low is not None
        assert found.ci_high is not None
        start, end = sorted((at(0.0), at(found.mean)))
        fill = RISE if found.mean >= 0 else Markup("url(#{}-fall)").format(chart_id)
        middle = top + BAR_HEIGHT / 2
        low, high = at(found.ci_low), at(found.ci_high)
        if found.mean >= 0:
            value_x, anchor = max(end, high) + 6, "start"
        else:
            value_x, anchor = min(start, low) - 6, "end"
        parts.append(
            Markup(
                '<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="{h}" fill="{fill}" '
                'stroke="{edge}"/>'
                '<line x1="{low:.1f}" y1="{mid:.1f}" x2="{high:.1f}" y2="{mid:.1f}" '
                'stroke="{text}" stroke-width="1.5"/>'
                '<line x1="{low:.1f}" y1="{cap_top:.1f}" x2="{low:.1f}" y2="{cap_bottom:.1f}" '
                'stroke="{text}" stroke-width="1.5"/>'
                '<line x1="{high:.1f}" y1="{cap_top:.1f}" x2="{high:.1f}" y2="{cap_bottom:.1f}" '
                'stroke="{text}" stroke-width="1.5"/>'
                '<text x="{vx:.1f}" y="{ty}" text-anchor="{anchor}" fill="{text}" {font}>'
                "{value}</text>"
            ).format(
                x=start,
                y=top,
                w=max(end - start, 2),
                h=BAR_HEIGHT,
                fill=fill,
                edge=RISE if found.mean >= 0 else FALL,
                low=low,
                high=high,
                mid=middle,
                cap_top=middle - 5,
                cap_bottom=middle + 5,
                text=TEXT,
                vx=value_x,
                ty=text_y,
                anchor=anchor,
                font=FONT,
                value=points(found.mean),
            )
        )
    parts.append(Markup("</g></svg>"))
    return Markup("").join(parts)
