"""The cohort report as plain text for a terminal, and the words every format shares.

The rules it keeps:
- Every line fits in `WIDTH` (100) columns; a name too long for its column is cut with "…".
- Numbers are written one way in every format (the JSON carries the same values unformatted,
  the HTML calls these functions): a share is a whole percentage with halves rounded up
  (`percent`, the rule of dashboard/charts.py), a gain is in score points with its sign and
  2 decimals, with its 95% interval ("+0.85 (95% CI +0.42 to +1.28)").
- A withheld group (fewer than the report's `min_group` people) is written "fewer than 10
  people: withheld", never with its size or any statistic.
- Words say which way things went only as the numbers do (`direction`): "improved" needs the
  whole interval of the mean gain above 0, "worse" the whole of it below 0; otherwise "no
  clear change" (or "no change" when every gain was 0).
"""

from __future__ import annotations

import math
import shlex
import textwrap
from collections.abc import Sequence
from datetime import UTC

from impact.report import CohortReport, Count, ImpactRow, InitiativeImpact, OutcomeCount
from scoring.impact import Estimate

WIDTH = 100
INDENT = "  "
NAME_WIDTH = 44
GAIN_HEADER = "Mean gain"
BASIS_WORDS = {
    "quick": "quick with quick",
    "full": "full with full",
    "headings": "reduced to headings",
    "none": "with no skill answered both times",
}
"""How a basis reads in "80 quick with quick, 30 full with full, 10 reduced to headings"."""
FUNNEL = (
    ("people", "In this report"),
    ("enrolled", "Enrolled by staff"),
    ("started", "Started the questions"),
    ("completed", "Finished a first check"),
    ("checked_in", "Checked in later"),
    ("opted_out", "Opted out"),
    ("unreachable", "Unreachable"),
)
CHANGE_GROUPS_PER_TABLE = 3
GROUP_WIDTH = 16
"""An initiative's name as a column heading is cut to this (its own tables name it whole)."""


# --- the words every format shares ---------------------------------------------------------


def percent(share: float) -> str:
    """A share (0..1) as a whole percentage, halves rounded up: 0.625 -> "63%"."""
    clamped = min(max(share, 0.0), 1.0)
    return f"{math.floor(clamped * 100 + 0.5)}%"


def points(value: float) -> str:
    """Score points with a sign and 2 decimals: "+0.85", "-1.00", "0.00"."""
    shown = f"{value:+.2f}"
    return "0.00" if shown in ("+0.00", "-0.00") else shown


def withheld(min_group: int, what: str = "people") -> str:
    """What a withheld group says instead of its numbers."""
    return f"fewer than {min_group} {what}: withheld"


def withheld_estimate(found: Estimate, min_group: int) -> str:
    """Why an estimate is withheld: too few people, or (a group big enough to show) so that a
    smaller group cannot be worked out from the total."""
    if found.n < min_group:
        return withheld(min_group)
    return "withheld, so that a smaller group cannot be worked out from the totals"


def fewer_than(min_group: int) -> str:
    return f"fewer than {min_group}"


def gain_with_interval(found: Estimate) -> str:
    """ "+0.85 (95% CI +0.42 to +1.28)"; only for an estimate that is not suppressed."""
    assert found.mean is not None
    assert found.ci_low is not None
    assert found.ci_high is not None
    return f"{points(found.mean)} (95% CI {points(found.ci_low)} to {points(found.ci_high)})"


def direction(found: Estimate) -> str:
    """Which way a group's mean gain went, as far as its interval says."""
    assert found.mean is not None
    assert found.ci_low is not None
    assert found.ci_high is not None
    if found.ci_low > 0:
        return "improved"
    if found.ci_high < 0:
        return "worse"
    if found.mean == 0 and found.ci_low == found.ci_high:
        return "no change"
    return "no clear change"


def count_with_share(count: Count, min_group: int, what: str = "people") -> str:
    """ "12 (10%)", or the withheld words."""
    if count.count is None:
        return withheld(min_group, what)
    if count.share is None:
        return str(count.count)
    return f"{count.count} ({percent(count.share)})"


def bases_sentence(report: CohortReport) -> str:
    """ "120 pairs compared: 80 quick with quick, 30 full with full, 10 reduced to headings"."""
    impact = report.impact
    pairs = f"{impact.pairs} pair{'s' * (impact.pairs != 1)} compared"
    shown = [b for b in impact.bases if b.count is not None]
    if len(shown) < len(impact.bases):
        return f"{pairs} (how: {withheld(report.min_group, 'pairs')})"
    parts = [f"{b.count} {BASIS_WORDS.get(b.id, b.name)}" for b in shown if b.count]
    return f"{pairs}: {', '.join(parts)}" if parts else pairs


NO_SKILL_GAINS = (
    "No skill gains to show: no check-in so far answered a skill that the first check before it "
    "also answered (someone without a device may have left the skills out). The changes in "
    "basics and blockers are below."
)


def nothing_to_compare(report: CohortReport) -> str:
    """What the report says while nobody has been checked in yet, and what to do about it
    (on the dashboard or on the command line)."""
    cohort = shlex.quote(report.cohorts[0]) if len(report.cohorts) == 1 else "NAME"
    return (
        "Nothing to compare yet: nobody here has finished a check-in after a first check. "
        "Schedule check-ins three months on (on the dashboard's Check-ins page, or with "
        f"`dibot checkin --cohort {cohort} --after 3m`), then look at this report again once "
        "residents have answered."
    )


def item_rows(report: CohortReport) -> tuple[ImpactRow, ...]:
    """The per-item rows, without quick checks' headings (the per-heading rows hold those)."""
    headings = {row.id for row in report.impact.headings}
    return tuple(row for row in report.impact.items if row.id not in headings)


def capitalised(name: str) -> str:
    """A name written for a sentence ("a device") as a table's row: "A device"."""
    return name[:1].upper() + name[1:]


def generated(report: CohortReport) -> str:
    return report.generated_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def shown_pairs(initiative: InitiativeImpact, min_group: int) -> str:
    if initiative.people < min_group:
        return fewer_than(min_group)
    return str(initiative.people)


def aspect_title(aspect: str) -> str:
    return "Skill and confidence" if aspect == "skill" else "Interest and motivation"


# --- text ----------------------------------------------------------------------------------


def render_text(report: CohortReport) -> str:
    """The whole report, lines of at most `WIDTH` columns, ending with a newline."""
    lines = [
        *_heading(report),
        "",
        *_who(report),
        "",
        *_baseline(report),
        "",
        *_impact(report),
    ]
    return "\n".join(line.rstrip() for line in lines) + "\n"


def _heading(report: CohortReport) -> list[str]:
    lines = _wrap(report.title, "")
    lines.append("=" * min(max(len(line) for line in lines), WIDTH))
    lines += _wrap(report.description, "")
    lines += _wrap(
        f"Generated {generated(report)} from questionnaire {report.flow_id} "
        f"version {report.flow_version}. Groups of fewer than {report.min_group} people are "
        "withheld.",
        "",
    )
    return lines


def _who(report: CohortReport) -> list[str]:
    funnel = report.funnel
    rows = [(name, str(getattr(funnel, key))) for key, name in FUNNEL]
    return ["WHO", *_table(("", "People"), rows, numeric=(False, True))]


def _baseline(report: CohortReport) -> list[str]:
    picture = report.picture
    min_group = report.min_group
    if picture.withheld:
        return [
            "AT BASELINE",
            *_wrap(
                f"Fewer than {min_group} people have finished a first check: the picture at "
                "baseline is withheld."
            ),
        ]
    lines = [f"AT BASELINE ({picture.people} people, each at their latest first check)"]
    for title, found in (
        ("Missing basics", picture.missing_basics),
        ("Barriers (a blocker that stops them, or causes major problems)", picture.barriers),
    ):
        lines += ["", INDENT + title]
        lines += _table(
            ("", "People"),
            [(capitalised(c.name), count_with_share(c, min_group)) for c in found],
            numeric=(False, True),
        )
    levels = len(picture.skill_levels)
    lines += [
        "",
        *_wrap(
            "Skills and interest per heading: the mean as a share of the most anyone could "
            f"score, and how many people are at each level, 0 to {levels - 1}"
        ),
    ]
    head = ("Heading", "Aspect", "People", "Mean", *(str(level) for level in range(levels)))
    rows: list[Sequence[str]] = []
    for heading in picture.headings:
        for aspect, mean, counts in (
            ("skill", heading.skill, heading.skill_levels),
            ("interest", heading.interest, heading.interest_levels),
        ):
            rows.append(
                (
                    heading.name if aspect == "skill" else "",
                    aspect,
                    str(sum(counts)),
                    "none" if mean is None else percent(mean),
                    *(str(n) for n in counts),
                )
            )
    lines += _table(head, rows, numeric=(False, False, *([True] * (len(head) - 2))))
    for aspect, labels in (("Skill", picture.skill_levels), ("Interest", picture.interest_levels)):
        key = "; ".join(f"{score} {label}" for score, label in enumerate(labels))
        lines += _wrap(f"{aspect} levels: {key}.", INDENT + "  ")
    lines += ["", INDENT + "Most common priorities (among each person's top few)"]
    if picture.top_priorities:
        lines += _table(
            ("", "People"),
            [(p.name, count_with_share(p, min_group)) for p in picture.top_priorities],
            numeric=(False, True),
        )
    else:
        lines.append(INDENT * 2 + "none")
    return lines


def _impact(report: CohortReport) -> list[str]:
    impact = report.impact
    min_group = report.min_group
    if impact.pairs == 0:
        return ["IMPACT", *_wrap(nothing_to_compare(report))]
    lines = [
        "IMPACT",
        *_wrap(
            bases_sentence(report) + ". Gains are check-in minus first check, in score points"
            " (levels 0 to 4); a person's gain is the mean over what they answered both times."
        ),
    ]
    if not impact.overall:
        return [*lines, "", *_wrap(NO_SKILL_GAINS), "", *_changes(report)]
    lines += ["", INDENT + "Overall", *_estimates(impact.overall, min_group)]
    for aspect in ("skill", "interest"):
        rows = [row for row in impact.headings if row.aspect == aspect]
        if rows:
            lines += ["", INDENT + f"Per heading: {aspect_title(aspect).lower()}"]
            lines += _estimates(rows, min_group)
    items = item_rows(report)
    if items:
        lines += ["", INDENT + "Per item: skill and confidence", *_estimates(items, min_group)]
    if impact.initiatives:
        lines += ["", *_initiatives(impact.initiatives, min_group)]
    lines += ["", *_changes(report)]
    lines += ["", *_outcomes(impact.outcomes, min_group)]
    return lines


def _estimate_cells(found: Estimate, min_group: int) -> tuple[str, ...]:
    if found.suppressed:
        return (withheld_estimate(found, min_group),)
    assert found.improved is not None
    assert found.worse is not None
    return (
        str(found.n),
        gain_with_interval(found),
        percent(found.improved),
        percent(found.worse),
        direction(found),
    )


ESTIMATE_HEAD = ("n", GAIN_HEADER, "Better", "Worse", "In short")
ESTIMATE_NUMERIC = (False, True, False, True, True, False)


def _estimates(rows: Sequence[ImpactRow], min_group: int, label: str = "") -> list[str]:
    return _table(
        (label, *ESTIMATE_HEAD),
        [(row.name, *_estimate_cells(row.estimate, min_group)) for row in rows],
        numeric=ESTIMATE_NUMERIC,
    )


def _initiatives(initiatives: Sequence[InitiativeImpact], min_group: int) -> list[str]:
    lines = [INDENT + "By initiative, side by side (someone in two initiatives counts in both)"]
    lines += _table(
        ("", "Pairs"),
        [(i.initiative, shown_pairs(i, min_group)) for i in initiatives],
        numeric=(False, True),
    )
    names: list[str] = []
    for initiative in initiatives:
        names += [row.name for row in (*initiative.overall, *initiative.headings)]
    for name in dict.fromkeys(names):
        rows = []
        for initiative in initiatives:
            for row in (*initiative.overall, *initiative.headings):
                if row.name == name:
                    rows.append((initiative.initiative, *_estimate_cells(row.estimate, min_group)))
        lines += ["", INDENT + name]
        lines += _table(("", *ESTIMATE_HEAD), rows, numeric=ESTIMATE_NUMERIC)
    return lines


def _changes(report: CohortReport) -> list[str]:
    impact = report.impact
    min_group = report.min_group
    groups = [("All", impact.changes)] + [(i.initiative, i.changes) for i in impact.initiatives]
    lines = [INDENT + "Changes: people among the pairs (each counts once for each kind)"]
    for start in range(0, len(groups), CHANGE_GROUPS_PER_TABLE):
        chunk = groups[start : start + CHANGE_GROUPS_PER_TABLE]
        rows = []
        for index, name in enumerate(c.name for c in impact.changes):
            rows.append((name, *(_change_cell(changes[index], min_group) for _, changes in chunk)))
        if start:
            lines.append("")
        lines += _table(
            ("", *(_cut(group, GROUP_WIDTH) for group, _ in chunk)),
            rows,
            numeric=(False, *[True] * len(chunk)),
        )
    return lines


def _change_cell(count: Count, min_group: int) -> str:
    if count.count is None:
        return "withheld"
    return count_with_share(count, min_group)


def _outcomes(outcomes: Sequence[OutcomeCount], min_group: int) -> list[str]:
    lines = [
        INDENT + "Outcome flags (for cost-benefit models): pairs whose item was asked both times",
    ]
    rows: list[Sequence[str]] = []
    for outcome in outcomes:
        if outcome.newly_able is None:
            rows.append((outcome.name, withheld(min_group, "known")))
        else:
            rows.append(
                (
                    outcome.name,
                    f"{outcome.newly_able} of {outcome.known}",
                    str(outcome.able_at_baseline),
                    str(outcome.able_at_checkin),
                )
            )
    lines += _table(
        ("", "Newly able", "Able before", "Able after"),
        rows,
        numeric=(False, True, True, True),
    )
    lines += _wrap("Able: confident doing it for themselves, or better.", INDENT + "  ")
    return lines


# --- layout ----------------------------------------------------------------------------------


def _wrap(text: str, indent: str = INDENT) -> list[str]:
    return textwrap.wrap(
        text, WIDTH, initial_indent=indent, subsequent_indent=indent, break_on_hyphens=False
    ) or [""]


def _table(
    head: Sequence[str], rows: Sequence[Sequence[str]], *, numeric: Sequence[bool]
) -> list[str]:
    """Columns sized to fit, the first one (names) cut to what is left of `WIDTH`; a row with
    fewer cells than the head (a withheld group's words) runs on from its second column."""
    columns = len(head)
    widths = [len(head[i]) for i in range(columns)]
    for row in rows:
        if len(row) == columns:
            for i, cell in enumerate(row):
                widths[i] = max(widths[i], len(cell))
    widths[0] = min(widths[0], NAME_WIDTH)
    for row in rows:
        widths[0] = max(widths[0], min(len(row[0]), NAME_WIDTH))
    room = WIDTH - len(INDENT * 2) - sum(widths[1:]) - 2 * (columns - 1)
    widths[0] = max(min(widths[0], room), 8)
    lines = []
    if any(head):
        lines.append(_row(head, widths, numeric))
    for row in rows:
        if len(row) == columns:
            lines.append(_row(row, widths, numeric))
        else:
            first = _cut(row[0], widths[0]).ljust(widths[0])
            lines.append((INDENT * 2 + first + "  " + "  ".join(row[1:]))[:WIDTH])
    return lines


def _row(cells: Sequence[str], widths: Sequence[int], numeric: Sequence[bool]) -> str:
    parts = []
    for i, cell in enumerate(cells):
        text = _cut(cell, widths[i]) if i == 0 else cell
        parts.append(text.rjust(widths[i]) if numeric[i] else text.ljust(widths[i]))
    return INDENT * 2 + "  ".join(parts)


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


__all__ = [
    "NO_SKILL_GAINS",
    "WIDTH",
    "bases_sentence",
    "count_with_share",
    "direction",
    "fewer_than",
    "gain_with_interval",
    "nothing_to_compare",
    "percent",
    "points",
    "render_text",
    "withheld",
    "withheld_estimate",
]
