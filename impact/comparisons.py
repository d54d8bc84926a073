"""A cohort set beside a persona and beside other councils' pooled benchmark figures: what
`dibot report --persona SLUG --compare FILE…` adds after the report, as text lines, a JSON
object and an HTML partial (templates/comparisons.html).

The rules it keeps:
- Both sides come from the report's own pass (`impact.report.ReportTallies`): nothing is
  read twice. The persona is the one `--persona` names, else the one linked to the cohort
  (`impact.personas.persona_for_cohort`); it is scored as any respondent is
  (`scoring.personas`).
- Disclosure as in the report: when fewer than `min_group` people have finished a first
  check, the cohort's side is withheld; gains of fewer than `min_group` people are withheld.
- Words go the way the numbers go: "gained more here" or "gained less here" only when the
  Welch interval of the difference lies wholly above or below 0 (`impact.benchmark`); a
  pooled figure that some files withheld says how many of the files it covers.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from markupsafe import Markup

from flows.model import Flow
from impact.benchmark import (
    LESS,
    MORE,
    SAME,
    UNCLEAR,
    GainComparison,
    Pooled,
    SectorComparison,
    ShareComparison,
    compare_with_pooled,
    pool,
    read_benchmark,
)
from impact.personas import PersonaError, all_personas, persona_for_cohort
from impact.render_html import environment
from impact.render_json import report_document
from impact.render_text import percent, points
from impact.report import EVERYONE, CohortReport, ReportTallies, unit_name
from scoring.impact import Estimate
from scoring.personas import PersonaComparison, compare_with_persona, likely_priorities
from scoring.profile import profile
from storage.models import Cohort, table

cohorts = table(Cohort)
WIDTH = 100
INDENT = "  "
VERDICTS = {
    MORE: "gained more here",
    LESS: "gained less here",
    UNCLEAR: "no clear difference",
    SAME: "no difference",
}


@dataclass(frozen=True)
class PersonaSide:
    slug: str
    name: str
    description: str
    source: str
    people: int
    """The cohort's completed baselines."""
    withheld: bool
    """Fewer than `min_group` people: `comparison` is None."""
    comparison: PersonaComparison | None
    priorities: tuple[str, ...]
    """The names of the persona's likely priorities (the flow's top few), first first."""
    names: Mapping[str, str]
    """Heading and item id -> its short name."""


@dataclass(frozen=True)
class Comparisons:
    min_group: int
    persona: PersonaSide | None = None
    sector: SectorComparison | None = None
    warnings: tuple[str, ...] = ()
    """Allowed but worth saying (a benchmark file of another questionnaire version)."""

    def __bool__(self) -> bool:
        return self.persona is not None or self.sector is not None


def persona_side(
    flow: Flow,
    report: CohortReport,
    tallies: ReportTallies,
    *,
    slug: str,
    name: str,
    description: str,
    source: str,
    answers: Mapping[str, int],
) -> PersonaSide:
    """The report's people at baseline beside the persona with these answers."""
    picture = tallies.pictures.get(EVERYONE)
    summary = picture.summary() if picture is not None else None
    people = summary.count if summary is not None else 0
    withheld = summary is None or people < report.min_group
    own = profile(flow, answers)
    names = {h.id: _name(h.short) for h in flow.headings}
    names.update({i.id: _name(i.short) for i in flow.items})
    return PersonaSide(
        slug=slug,
        name=name,
        description=description,
        source=source,
        people=people,
        withheld=withheld,
        comparison=None
        if withheld or summary is None
        else compare_with_persona(flow, summary, own),
        priorities=tuple(
            unit_name(flow, p.unit) for p in likely_priorities(flow, answers)[: flow.priority.top]
        ),
        names=names,
    )


@dataclass(frozen=True)
class PooledFiles:
    """Benchmark files read and pooled, with what reading them warned about."""

    pooled: Pooled
    warnings: tuple[str, ...]


def pooled_files(paths: Sequence[str | Path], flow: Flow) -> PooledFiles | None:
    """The files pooled (None for no files); BenchmarkError for one that cannot be used."""
    if not paths:
        return None
    benchmarks = [read_benchmark(path, flow) for path in paths]
    warnings = [
        f"{path}: {warning}"
        for path, benchmark in zip(paths, benchmarks, strict=True)
        for warning in benchmark.warnings
    ]
    return PooledFiles(pool(benchmarks), tuple(warnings))


def comparisons_for(
    conn: sa.Connection,
    flow: Flow,
    report: CohortReport,
    tallies: ReportTallies,
    *,
    cohort: str | None,
    persona: str | None,
    pooled: PooledFiles | None = None,
) -> Comparisons:
    """What `dibot report` adds: the persona `persona` names (else the one linked to the
    cohort named `cohort`, if any), and the pooled benchmark files. PersonaError for a slug
    nobody has."""
    found = None
    if persona is not None:
        found = next((p for p in all_personas(conn) if p.slug == persona), None)
        if found is None:
            raise PersonaError(
                f"no persona has the slug {persona!r}: `dibot personas list` shows them"
            )
    elif cohort is not None:
        cohort_id = conn.execute(
            sa.select(cohorts.c.id).where(cohorts.c.name == cohort)
        ).scalar_one_or_none()
        found = persona_for_cohort(conn, cohort_id) if cohort_id is not None else None
    side = None
    if found is not None:
        side = persona_side(
            flow,
            report,
            tallies,
            slug=found.slug,
            name=found.name,
            description=found.description,
            source=found.source,
            answers=found.answers,
        )
    sector = None
    if pooled is not None:
        sector = compare_with_pooled(report, tallies, pooled.pooled)
    warnings = pooled.warnings if pooled is not None else ()
    return Comparisons(report.min_group, side, sector, warnings)


def with_comparisons(
    fmt: str, rendered: str, report: CohortReport, comparisons: Comparisons
) -> str:
    """The report as `fmt` ("text", "json" or "html") renders it, with the comparisons after
    it (as they are, when there are none)."""
    if not comparisons:
        return rendered
    if fmt == "text":
        return rendered + "\n".join(comparison_lines(comparisons)) + "\n"
    if fmt == "json":
        document = {**report_document(report), "comparisons": comparison_document(comparisons)}
        return json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    if fmt == "html":
        end = rendered.rindex("</main>")
        # str(): adding a Markup to a str would escape the str.
        return rendered[:end] + str(render_comparisons_html(comparisons)) + rendered[end:]
    raise ValueError(f"no such format: {fmt!r}")


# --- text -----------------------------------------------------------------------------------


def comparison_lines(comparisons: Comparisons) -> list[str]:
    """The sections as text lines of at most `WIDTH` columns (none when there is nothing)."""
    lines: list[str] = []
    if comparisons.persona is not None:
        lines += ["", *_persona_lines(comparisons.persona, comparisons.min_group)]
    if comparisons.sector is not None:
        lines += ["", *_sector_lines(comparisons.sector)]
    return [line.rstrip() for line in lines]


def _persona_lines(side: PersonaSide, min_group: int) -> list[str]:
    lines = [f"BESIDE A PERSONA: {side.name} ({side.slug})"]
    lines += _wrap(side.description)
    lines += _wrap(f"Source: {side.source}")
    lines += _wrap("Their likely priorities: " + _numbered(side.priorities) + ".")
    if side.withheld or side.comparison is None:
        return lines + _wrap(
            f"Fewer than {min_group} people have finished a first check: the cohort's side "
            "is withheld."
        )
    lines += [
        "",
        *_wrap(
            "Per heading, the cohort's mean at baseline and the persona's, each as a share of "
            "the most anyone could score; the difference is the cohort's minus the persona's."
        ),
    ]
    lines += _table(*_persona_headings(side))
    for title, rows in (
        ("Missing basics", side.comparison.missing_basics),
        ("Barriers", side.comparison.barriers),
    ):
        lines += ["", INDENT + title]
        lines += _table(
            ("", "Cohort", "Persona"),
            [
                (
                    side.names[row.item],
                    _share(row.cohort_share),
                    "yes" if row.persona_has else "no",
                )
                for row in rows
            ],
        )
    return lines


def _persona_headings(side: PersonaSide) -> tuple[tuple[str, ...], list[tuple[str, ...]]]:
    assert side.comparison is not None
    head: tuple[str, ...] = (
        "Heading",
        "Skill here",
        "Persona",
        "Difference",
        "Interest here",
        "Persona",
        "Diff.",
    )
    rows: list[tuple[str, ...]] = [
        (
            side.names[h.heading],
            _share(h.cohort_skill),
            _share(h.persona_skill),
            _share_points(h.skill_difference),
            _share(h.cohort_interest),
            _share(h.persona_interest),
            _share_points(h.interest_difference),
        )
        for h in side.comparison.headings
    ]
    return head, rows


def _sector_lines(sector: SectorComparison) -> list[str]:
    lines = [f"BESIDE OTHER COUNCILS (pooled from {_files(sector.files)})"]
    for paragraph in _sector_intro(sector):
        lines += _wrap(paragraph)
    if not sector.groups:
        return lines
    for group in sector.groups:
        title = "Everyone" if group.group == EVERYONE else group.group
        lines += ["", INDENT + title]
        if group.gains:
            lines += _table(
                ("", "Here", "Pooled", "Pooled n", "Difference (95% CI)", "In short"),
                [_gain_cells(row, sector.min_group) for row in group.gains],
            )
        for what, rows in (("missing it", group.missing_basics), ("barrier", group.barriers)):
            if rows:
                lines += [""]
                lines += _table(
                    (f"At baseline: {what}", "Here", "Pooled", "Pooled from"), _share_rows(rows)
                )
    return lines


def _sector_intro(sector: SectorComparison) -> list[str]:
    paragraphs = []
    if sector.labels:
        paragraphs.append("Files: " + "; ".join(sector.labels) + ".")
    paragraphs.append(
        "Mean gains in score points. The difference is this council's minus the pooled mean, "
        "with its 95% interval (Welch); it says more or less only when the whole interval is "
        f"above or below 0. Groups of fewer than {sector.min_group} people are withheld; a "
        "pooled figure some files withheld says how many files it covers."
    )
    if not sector.groups:
        paragraphs.append("No group here is in the benchmark files.")
    return paragraphs


def _gain_cells(row: GainComparison, min_group: int) -> tuple[str, ...]:
    name = row.name if row.id == "overall" else f"{row.name} (skill)"
    here = _mean(row.council)
    theirs = _mean(row.pooled)
    n = "withheld" if row.pooled.suppressed else str(row.pooled.n)
    if row.pooled_covers < row.pooled_files and not row.pooled.suppressed:
        n += f" ({row.pooled_covers} of {row.pooled_files} files)"
    if row.difference is None or row.difference_ci is None:
        return (name, here, theirs, n, f"fewer than {min_group} people", "withheld")
    low, high = row.difference_ci
    difference = f"{points(row.difference)} ({points(low)} to {points(high)})"
    return (name, here, theirs, n, difference, VERDICTS[row.verdict])


def _share_rows(rows: Sequence[ShareComparison]) -> list[tuple[str, ...]]:
    return [
        (
            row.name,
            "withheld" if row.council is None else percent(row.council),
            "withheld" if row.pooled is None else percent(row.pooled),
            f"{row.pooled_covers} of {row.pooled_files} files",
        )
        for row in rows
    ]


def _mean(found: Estimate) -> str:
    return "withheld" if found.suppressed or found.mean is None else points(found.mean)


def _share(value: float | None) -> str:
    return "none" if value is None else percent(value)


def _share_points(value: float | None) -> str:
    """A difference of shares in percentage points: "+20", "-5", "0"."""
    if value is None:
        return "none"
    whole = round(value * 100)
    return f"{whole:+d}" if whole else "0"


def _files(count: int) -> str:
    return f"{count} benchmark file{'s' * (count != 1)}"


def _numbered(names: Sequence[str]) -> str:
    if not names:
        return "none"
    return ", ".join(f"{number}. {name}" for number, name in enumerate(names, start=1))


def _wrap(text: str, indent: str = INDENT) -> list[str]:
    return textwrap.wrap(
        text, WIDTH, initial_indent=indent, subsequent_indent=indent, break_on_hyphens=False
    ) or [""]


def _table(head: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """Columns sized to fit; the first (names) left-aligned and cut to what is left of WIDTH,
    the others right-aligned."""
    columns = len(head)
    widths = [max(len(head[i]), *(len(row[i]) for row in rows)) for i in range(columns)]
    room = WIDTH - len(INDENT * 2) - sum(widths[1:]) - 2 * (columns - 1)
    widths[0] = max(min(widths[0], room), 8)
    lines = []
    for row in (head, *rows):
        first = row[0] if len(row[0]) <= widths[0] else row[0][: widths[0] - 1] + "…"
        cells = [first.ljust(widths[0])] + [
            c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)
        ]
        lines.append(INDENT * 2 + "  ".join(cells))
    return lines


def _name(texts: Mapping[str, str]) -> str:
    return texts.get("en") or next(iter(texts.values()))


# --- JSON -----------------------------------------------------------------------------------


def comparison_document(comparisons: Comparisons) -> dict[str, Any]:
    """{"persona": {...} or null, "sector": {...} or null, "warnings": [...]}: shares 0..1 and
    gains in score points rounded to 4 places, withheld values null."""
    return {
        "persona": _persona_document(comparisons.persona),
        "sector": _sector_document(comparisons.sector),
        "warnings": list(comparisons.warnings),
    }


def _persona_document(side: PersonaSide | None) -> dict[str, Any] | None:
    if side is None:
        return None
    found = side.comparison
    return {
        "slug": side.slug,
        "name": side.name,
        "source": side.source,
        "people": side.people,
        "withheld": side.withheld,
        "priorities": list(side.priorities),
        "headings": None
        if found is None
        else [
            {
                "heading": h.heading,
                "name": side.names[h.heading],
                "cohort_skill": _round(h.cohort_skill),
                "persona_skill": _round(h.persona_skill),
                "cohort_interest": _round(h.cohort_interest),
                "persona_interest": _round(h.persona_interest),
            }
            for h in found.headings
        ],
        "missing_basics": None if found is None else _conditions(side, found.missing_basics),
        "barriers": None if found is None else _conditions(side, found.barriers),
    }


def _conditions(side: PersonaSide, rows: Sequence[Any]) -> list[dict[str, Any]]:
    return [
        {
            "item": row.item,
            "name": side.names[row.item],
            "cohort_share": _round(row.cohort_share),
            "persona_has": row.persona_has,
        }
        for row in rows
    ]


def _sector_document(sector: SectorComparison | None) -> dict[str, Any] | None:
    if sector is None:
        return None
    return {
        "files": sector.files,
        "labels": list(sector.labels),
        "flow_versions": list(sector.flow_versions),
        "groups": [
            {
                "group": group.group,
                "gains": [
                    {
                        "id": row.id,
                        "name": row.name,
                        "aspect": row.aspect,
                        "here": _estimate(row.council),
                        "pooled": _estimate(row.pooled),
                        "pooled_covers": row.pooled_covers,
                        "pooled_files": row.pooled_files,
                        "difference": _round(row.difference),
                        "difference_ci": None
                        if row.difference_ci is None
                        else [_round(v) for v in row.difference_ci],
                        "verdict": row.verdict,
                    }
                    for row in group.gains
                ],
                "missing_basics": [_share_document(r) for r in group.missing_basics],
                "barriers": [_share_document(r) for r in group.barriers],
            }
            for group in sector.groups
        ],
    }


def _estimate(found: Estimate) -> dict[str, Any]:
    return {
        "n": None if found.suppressed else found.n,
        "mean": _round(found.mean),
        "ci_low": _round(found.ci_low),
        "ci_high": _round(found.ci_high),
        "withheld": found.suppressed,
    }


def _share_document(row: ShareComparison) -> dict[str, Any]:
    return {
        "item": row.item,
        "name": row.name,
        "here": _round(row.council),
        "pooled": _round(row.pooled),
        "pooled_covers": row.pooled_covers,
        "pooled_files": row.pooled_files,
    }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


# --- HTML -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class HtmlTable:
    caption: str
    head: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


@dataclass(frozen=True)
class HtmlSection:
    id: str
    title: str
    paragraphs: tuple[str, ...]
    tables: tuple[HtmlTable, ...]


def render_comparisons_html(comparisons: Comparisons) -> Markup:
    """The sections as an HTML partial (GOV.UK classes, everything escaped)."""
    sections = []
    min_group = comparisons.min_group
    if comparisons.persona is not None:
        side = comparisons.persona
        paragraphs = [
            side.description,
            f"Source: {side.source}",
            "Their likely priorities: " + _numbered(side.priorities) + ".",
        ]
        tables = []
        if side.withheld or side.comparison is None:
            paragraphs.append(
                f"Fewer than {min_group} people have finished a first check: the cohort's "
                "side is withheld."
            )
        else:
            head, rows = _persona_headings(side)
            tables.append(HtmlTable("Per heading at baseline", head, tuple(rows)))
            for caption, found in (
                ("Missing basics", side.comparison.missing_basics),
                ("Barriers", side.comparison.barriers),
            ):
                tables.append(
                    HtmlTable(
                        caption,
                        ("", "Cohort", "Persona"),
                        tuple(
                            (
                                side.names[r.item],
                                _share(r.cohort_share),
                                "yes" if r.persona_has else "no",
                            )
                            for r in found
                        ),
                    )
                )
        sections.append(
            HtmlSection(
                "persona",
                f"Beside a persona: {side.name}",
                tuple(paragraphs),
                tuple(tables),
            )
        )
    if comparisons.sector is not None:
        sector = comparisons.sector
        tables = []
        for group in sector.groups:
            title = "Everyone" if group.group == EVERYONE else group.group
            if group.gains:
                tables.append(
                    HtmlTable(
                        f"{title}: mean gains",
                        ("", "Here", "Pooled", "Pooled n", "Difference (95% CI)", "In short"),
                        tuple(_gain_cells(row, min_group) for row in group.gains),
                    )
                )
            for what, shares in (
                ("missing basics", group.missing_basics),
                ("barriers", group.barriers),
            ):
                if shares:
                    tables.append(
                        HtmlTable(
                            f"{title}: {what} at baseline",
                            ("", "Here", "Pooled", "Pooled from"),
                            tuple(_share_rows(shares)),
                        )
                    )
        sections.append(
            HtmlSection(
                "sector",
                f"Beside other councils (pooled from {_files(sector.files)})",
                tuple(_sector_intro(sector)),
                tuple(tables),
            )
        )
    template = environment().get_template("comparisons.html")
    # Safe: the template autoescapes every value it is given.
    return Markup(template.render(sections=sections, warnings=comparisons.warnings))  # noqa: S704
