"""Sector benchmark files: a council's cohort aggregates that councils can pool, and the
comparison of one council's cohort with the pooled figures.

The rules it keeps:
- Anonymous by construction: a file ("dibot-benchmark/1", `data/benchmark.schema.json`)
  holds the flow's id and version, the council's own free-text label (or null), the day it
  was made (never a time), `min_group`, and per group (everyone, each initiative by name,
  the people in none) only counts and gains' sufficient statistics. No person, no cohort
  name, no id, no answer, no date finer than the day.
- Disclosure: every count below `min_group` is null, and so are the moments of fewer than
  `min_group` gains; a group of fewer than `min_group` people therefore has every figure null.
  Moments shown whole (n, mean, m2, improved, worse) are what the report shows as n, mean, CI
  and shares.
- Made from the same single pass as the report (`impact.report.ReportTallies`), never by
  reading the people again.
- Pooling is exact: counts add, moments combine by the parallel formula (`scoring.impact.pool`).
  A cell withheld in any file is summed over the files that show it and marked partial:
  it says how many of the files with that group it covers. A share (people missing a basic,
  or with a barrier) divides by the completed baselines of the same files only.
- Reading checks the schema (jsonschema, naming the field at fault) and then the meaning: the
  format, the flow's id (another version of the flow pools, with a warning), one "all"
  group, no group twice, no shown count below the file's own `min_group`.
- A comparison says "more" or "less" only when the Welch interval of the difference of the
  mean gains lies wholly above or below 0; otherwise "no clear difference".
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from functools import cache
from pathlib import Path
from typing import IO, Any

import jsonschema
import sqlalchemy as sa

from flows.model import Flow
from impact.records import Selection
from impact.report import (
    CHANGES,
    EVERYONE,
    NO_INITIATIVE,
    CohortReport,
    ImpactRow,
    ReportTallies,
    build_report,
)
from scoring.impact import (
    CONFIDENCE,
    MIN_GROUP,
    NO_GAINS,
    Estimate,
    Moments,
    complementary_withheld,
    t_quantile,
)
from scoring.impact import pool as pool_moments

FORMAT = "dibot-benchmark/1"
SCHEMA_PATH = Path(__file__).resolve().parent / "data" / "benchmark.schema.json"
LABEL_LENGTH = 200
ASPECTS = ("skill", "interest")
KINDS = {EVERYONE: "all", NO_INITIATIVE: "no_initiative"}
"""A group's kind by its name; any other name is an initiative's."""

Cell = int | None
"""A count, or None: withheld (below `min_group`)."""


class BenchmarkError(ValueError):
    """A benchmark file that cannot be used: one line, naming the file and the field."""


# --- the figures --------------------------------------------------------------------------


@dataclass(frozen=True)
class OutcomeCells:
    known: Cell
    """Pairs whose item was answered both times."""
    newly_able: Cell


@dataclass(frozen=True)
class GroupFigures:
    """One group's figures as a file holds them (withheld cells None)."""

    group: str
    kind: str
    """"all", "initiative" or "no_initiative"."""
    people: Cell
    completed: Cell
    """People with a completed baseline."""
    pairs: Cell
    missing_basics: Mapping[str, Cell]
    barriers: Mapping[str, Cell]
    levels: Mapping[str, Mapping[str, tuple[Cell, ...]]]
    """Heading -> aspect -> people at each level, by score."""
    overall: Mapping[str, Moments | None]
    """Aspect -> the moments of people's overall gains."""
    headings: Mapping[str, Moments | None]
    """Heading -> the moments of people's skill gains there."""
    changes: Mapping[str, Cell]
    outcomes: Mapping[str, OutcomeCells]


@dataclass(frozen=True)
class Benchmark:
    flow_id: str
    flow_version: str
    label: str | None
    generated: date
    min_group: int
    groups: tuple[GroupFigures, ...]
    warnings: tuple[str, ...] = ()
    """What reading it noticed but allowed (another version of the flow); not in the file."""

    def group(self, name: str) -> GroupFigures | None:
        return next((g for g in self.groups if g.group == name), None)


def benchmark_of(
    tallies: ReportTallies,
    *,
    min_group: int,
    generated: date,
    label: str | None = None,
) -> Benchmark:
    """The benchmark figures of a report's pass, every count below `min_group` withheld."""
    if min_group < 2:
        raise ValueError(f"min_group must be at least 2, not {min_group}")
    flow = tallies.flow
    if label is not None:
        label = label.strip() or None
    if label is not None and len(label) > LABEL_LENGTH:
        raise ValueError(f"a label is at most {LABEL_LENGTH} characters")

    def cell(count: int) -> Cell:
        return count

    def moments(key: tuple[str, ...]) -> Moments | None:
        return tallies.gains.moments(key)

    groups = []
    for name in _group_order(tallies.groups()):
        picture = tallies.pictures.get(name)
        summary = picture.summary() if picture is not None else None
        distributions = {d.heading: d for d in summary.distributions} if summary else {}
        changes = tallies.changes(name)
        outcomes = tallies.outcomes.get(name, {})
        groups.append(
            GroupFigures(
                group=name,
                kind=KINDS.get(name, "initiative"),
                people=cell(tallies.people[name]),
                completed=cell(summary.count if summary else 0),
                pairs=cell(tallies.pairs(name)),
                missing_basics={
                    item.id: cell(summary.missing_basics[item.id] if summary else 0)
                    for item in flow.items
                    if item.section == "basics"
                },
                barriers={
                    item.id: cell(summary.barriers[item.id] if summary else 0)
                    for item in flow.items
                    if item.section == "blockers"
                },
                levels={
                    heading.id: {
                        aspect: tuple(
                            cell(n)
                            for n in (
                                getattr(distributions[heading.id], aspect)
                                if heading.id in distributions
                                else (0,) * (flow.scales[aspect].max_score + 1)
                            )
                        )
                        for aspect in ASPECTS
                    }
                    for heading in flow.headings
                },
                overall={aspect: moments((name, "overall", aspect)) for aspect in ASPECTS},
                headings={h.id: moments((name, h.id, "skill")) for h in flow.headings},
                changes={key: cell(changes[key]) for key, _ in CHANGES},
                outcomes={
                    item.outcome: OutcomeCells(
                        known=cell(outcomes.get(item.outcome, Counter())["known"]),
                        newly_able=cell(outcomes.get(item.outcome, Counter())["newly"]),
                    )
                    for item in flow.items
                    if item.outcome is not None
                },
            )
        )
    return Benchmark(
        flow_id=flow.id,
        flow_version=flow.version,
        label=label,
        generated=generated,
        min_group=min_group,
        groups=_withheld(groups, min_group),
    )


Path_ = tuple[str | int, ...]


def _withheld(groups: Sequence[GroupFigures], min_group: int) -> tuple[GroupFigures, ...]:
    """The groups with every cell below `min_group` withheld (a moments cell by its n), and,
    cell by cell across the groups beside "all", the smallest others with it until the
    withheld ones hold `min_group` together (`complementary_withheld`): so no withheld cell
    can be worked out by subtracting the shown groups from "all"."""
    cells = {group.group: dict(_cells(group)) for group in groups}
    paths = {path for found in cells.values() for path in found}
    hidden: dict[str, set[Path_]] = {group.group: set() for group in groups}
    for path in paths:
        values = {name: found.get(path, 0) for name, found in cells.items()}
        for name, value in values.items():
            if value < min_group:
                hidden[name].add(path)
        beside = {name: value for name, value in values.items() if name != EVERYONE}
        for name in complementary_withheld(beside, min_group):
            hidden[name].add(path)
    return tuple(_without(group, hidden[group.group]) for group in groups)


def _cells(group: GroupFigures) -> Iterator[tuple[Path_, int]]:
    """Every count of the group by its path (a moments cell counts as its n)."""
    for name in ("people", "completed", "pairs"):
        yield (name,), getattr(group, name) or 0
    for name in ("missing_basics", "barriers", "changes"):
        for key, count in getattr(group, name).items():
            yield (name, key), count or 0
    for heading, aspects in group.levels.items():
        for aspect, counts in aspects.items():
            for level, count in enumerate(counts):
                yield ("levels", heading, aspect, level), count or 0
    for name in ("overall", "headings"):
        for key, found in getattr(group, name).items():
            yield (name, key), found.n if found is not None else 0
    for flag, outcome in group.outcomes.items():
        yield ("outcomes", flag, "known"), outcome.known or 0
        yield ("outcomes", flag, "newly_able"), outcome.newly_able or 0


def _without(group: GroupFigures, hidden: set[Path_]) -> GroupFigures:
    def kept(path: Path_, value: Any) -> Any:
        return None if path in hidden else value

    return replace(
        group,
        people=kept(("people",), group.people),
        completed=kept(("completed",), group.completed),
        pairs=kept(("pairs",), group.pairs),
        missing_basics={k: kept(("missing_basics", k), v) for k, v in group.missing_basics.items()},
        barriers={k: kept(("barriers", k), v) for k, v in group.barriers.items()},
        changes={k: kept(("changes", k), v) for k, v in group.changes.items()},
        levels={
            heading: {
                aspect: tuple(
                    kept(("levels", heading, aspect, level), n) for level, n in enumerate(counts)
                )
                for aspect, counts in aspects.items()
            }
            for heading, aspects in group.levels.items()
        },
        overall={k: kept(("overall", k), v) for k, v in group.overall.items()},
        headings={k: kept(("headings", k), v) for k, v in group.headings.items()},
        outcomes={
            flag: OutcomeCells(
                known=kept(("outcomes", flag, "known"), cells.known),
                newly_able=kept(("outcomes", flag, "newly_able"), cells.newly_able),
            )
            for flag, cells in group.outcomes.items()
        },
    )


def _group_order(names: Iterable[str]) -> list[str]:
    """Everyone first, initiatives by name, the people in none last (as the report lists)."""
    rest = sorted(n for n in names if n != EVERYONE)
    return [EVERYONE, *sorted(rest, key=lambda n: (n == NO_INITIATIVE, n))]


# --- writing ------------------------------------------------------------------------------


def benchmark_document(benchmark: Benchmark) -> dict[str, Any]:
    """The file's JSON values."""
    return {
        "format": FORMAT,
        "flow": {"id": benchmark.flow_id, "version": benchmark.flow_version},
        "label": benchmark.label,
        "generated": benchmark.generated.isoformat(),
        "min_group": benchmark.min_group,
        "groups": [_group_document(group) for group in benchmark.groups],
    }


def _group_document(group: GroupFigures) -> dict[str, Any]:
    return {
        "group": group.group,
        "kind": group.kind,
        "people": group.people,
        "completed": group.completed,
        "pairs": group.pairs,
        "baseline": {
            "missing_basics": dict(group.missing_basics),
            "barriers": dict(group.barriers),
            "headings": {
                heading: {aspect: list(counts) for aspect, counts in aspects.items()}
                for heading, aspects in group.levels.items()
            },
        },
        "impact": {
            "overall": {aspect: _moments_document(m) for aspect, m in group.overall.items()},
            "headings": {heading: _moments_document(m) for heading, m in group.headings.items()},
        },
        "changes": dict(group.changes),
        "outcomes": {
            flag: {"known": cells.known, "newly_able": cells.newly_able}
            for flag, cells in group.outcomes.items()
        },
    }


def _moments_document(moments: Moments | None) -> dict[str, Any] | None:
    if moments is None:
        return None
    return {
        "n": moments.n,
        "mean": moments.mean,
        "m2": moments.m2,
        "improved": moments.improved,
        "worse": moments.worse,
    }


def write_benchmark(benchmark: Benchmark, out: IO[str]) -> None:
    """The file's text (indented JSON, a newline at the end) to `out`."""
    json.dump(benchmark_document(benchmark), out, indent=2, ensure_ascii=False)
    out.write("\n")


def write_benchmark_file(
    conn: sa.Connection,
    flow: Flow,
    selection: Selection,
    out_path: str | Path,
    *,
    label: str | None,
    min_group: int = MIN_GROUP,
    now: datetime,
    progress: Callable[[int], None] | None = None,
) -> Benchmark:
    """Read everyone `selection` allows once and write their benchmark file to `out_path`
    whole or not at all (a temporary file beside it, renamed over it)."""
    tallies = ReportTallies(flow)
    build_report(
        conn,
        flow,
        selection,
        title="benchmark",
        description="benchmark",
        now=now,
        min_group=min_group,
        progress=progress,
        tallies=tallies,
    )
    day = now.astimezone(UTC).date()
    benchmark = benchmark_of(tallies, min_group=min_group, generated=day, label=label)
    path = Path(out_path)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as out:
            write_benchmark(benchmark, out)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return benchmark


# --- reading ------------------------------------------------------------------------------


@cache
def schema() -> Mapping[str, Any]:
    found: Mapping[str, Any] = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    return found


def read_benchmark(path: str | Path, flow: Flow | None = None) -> Benchmark:
    """The file's figures, checked against the schema and for sense (against `flow`'s id when
    given); BenchmarkError naming the file and the field on the first fault."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) else "not UTF-8 text"
        raise BenchmarkError(f"{path}: cannot read it: {reason}") from None
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise BenchmarkError(f"{path}: not JSON: {error}") from None
    validator = jsonschema.Draft202012Validator(
        schema(), format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )
    fault = jsonschema.exceptions.best_match(validator.iter_errors(document))
    if fault is not None:
        where = _json_path(fault.absolute_path)
        raise BenchmarkError(f"{path}: {where}: {fault.message}")
    try:
        return _benchmark(document, flow)
    except BenchmarkError as error:
        raise BenchmarkError(f"{path}: {error}") from None


def _json_path(parts: Iterable[str | int]) -> str:
    """ "groups[1].people", or "the file" for the top."""
    where = ""
    for part in parts:
        where += f"[{part}]" if isinstance(part, int) else f".{part}" if where else part
    return where or "the file"


def _benchmark(document: Mapping[str, Any], flow: Flow | None) -> Benchmark:
    if document["format"] != FORMAT:
        raise BenchmarkError(f"format: {document['format']!r} is not {FORMAT!r}")
    warnings = []
    flow_id, flow_version = document["flow"]["id"], document["flow"]["version"]
    if flow is not None and flow_id != flow.id:
        raise BenchmarkError(
            f"flow.id: {flow_id!r}, not this questionnaire ({flow.id!r}): its figures are in "
            "other items and cannot be set beside these"
        )
    if flow is not None and flow_version != flow.version:
        warnings.append(
            f"questionnaire version {flow_version}, not {flow.version}: items changed between "
            "versions may not compare exactly"
        )
    min_group = document["min_group"]
    names = [g["group"] for g in document["groups"]]
    if names.count(EVERYONE) != 1:
        raise BenchmarkError(f"groups: need exactly one group {EVERYONE!r}")
    for index, name in enumerate(names):
        if names.index(name) != index:
            raise BenchmarkError(f"groups[{index}].group: {name!r} is listed twice")
        kind = document["groups"][index]["kind"]
        if kind != KINDS.get(name, "initiative"):
            raise BenchmarkError(f"groups[{index}].kind: {kind!r} is not the kind of {name!r}")
    groups = tuple(
        _group(entry, f"groups[{index}]", min_group)
        for index, entry in enumerate(document["groups"])
    )
    return Benchmark(
        flow_id=flow_id,
        flow_version=flow_version,
        label=document["label"],
        generated=date.fromisoformat(document["generated"]),
        min_group=min_group,
        groups=groups,
        warnings=tuple(warnings),
    )


def _group(entry: Mapping[str, Any], where: str, min_group: int) -> GroupFigures:
    def cell(value: Any, at: str) -> Cell:
        if value is not None and value < min_group:
            raise BenchmarkError(
                f"{where}.{at}: {value} is below the file's min_group ({min_group}) and should "
                "have been withheld (null)"
            )
        return int(value) if value is not None else None

    def cells(values: Mapping[str, Any], at: str) -> dict[str, Cell]:
        return {key: cell(value, f"{at}.{key}") for key, value in values.items()}

    def moments(value: Mapping[str, Any] | None, at: str) -> Moments | None:
        if value is None:
            return None
        found = Moments(
            n=value["n"],
            mean=float(value["mean"]),
            m2=float(value["m2"]),
            improved=value["improved"],
            worse=value["worse"],
        )
        if found.n < min_group:
            raise BenchmarkError(
                f"{where}.{at}.n: {found.n} is below the file's min_group ({min_group}) and "
                "should have been withheld (null)"
            )
        if found.improved + found.worse > found.n:
            raise BenchmarkError(f"{where}.{at}: improved and worse add up to more than n")
        if not (math.isfinite(found.mean) and math.isfinite(found.m2)):
            raise BenchmarkError(f"{where}.{at}: mean and m2 must be finite")
        return found

    baseline = entry["baseline"]
    impact = entry["impact"]
    return GroupFigures(
        group=entry["group"],
        kind=entry["kind"],
        people=cell(entry["people"], "people"),
        completed=cell(entry["completed"], "completed"),
        pairs=cell(entry["pairs"], "pairs"),
        missing_basics=cells(baseline["missing_basics"], "baseline.missing_basics"),
        barriers=cells(baseline["barriers"], "baseline.barriers"),
        levels={
            heading: {
                aspect: tuple(
                    cell(n, f"baseline.headings.{heading}.{aspect}[{i}]")
                    for i, n in enumerate(counts)
                )
                for aspect, counts in aspects.items()
            }
            for heading, aspects in baseline["headings"].items()
        },
        overall={
            aspect: moments(value, f"impact.overall.{aspect}")
            for aspect, value in impact["overall"].items()
        },
        headings={
            heading: moments(value, f"impact.headings.{heading}")
            for heading, value in impact["headings"].items()
        },
        changes=cells(entry["changes"], "changes"),
        outcomes={
            flag: OutcomeCells(
                known=cell(value["known"], f"outcomes.{flag}.known"),
                newly_able=cell(value["newly_able"], f"outcomes.{flag}.newly_able"),
            )
            for flag, value in entry["outcomes"].items()
        },
    )


# --- pooling ------------------------------------------------------------------------------


@dataclass(frozen=True)
class PooledCount:
    count: int | None
    """The sum over the files that show it; None when none does."""
    covers: int
    """How many files' values are in `count`."""
    files: int
    """How many files have the group at all."""

    @property
    def partial(self) -> bool:
        return self.covers < self.files


@dataclass(frozen=True)
class PooledShare:
    """People with a condition at baseline, over the completed baselines of the same files."""

    count: int | None
    of: int | None
    covers: int
    files: int

    @property
    def partial(self) -> bool:
        return self.covers < self.files

    @property
    def share(self) -> float | None:
        return self.count / self.of if self.count is not None and self.of else None


@dataclass(frozen=True)
class PooledMoments:
    moments: Moments | None
    """All the files' shown gains together; None when no file shows any."""
    covers: int
    files: int

    @property
    def partial(self) -> bool:
        return self.covers < self.files


@dataclass(frozen=True)
class PooledGroup:
    group: str
    kind: str
    files: int
    """How many files have this group."""
    people: PooledCount
    completed: PooledCount
    pairs: PooledCount
    missing_basics: Mapping[str, PooledShare]
    barriers: Mapping[str, PooledShare]
    levels: Mapping[str, Mapping[str, tuple[PooledCount, ...]]]
    overall: Mapping[str, PooledMoments]
    headings: Mapping[str, PooledMoments]
    changes: Mapping[str, PooledCount]
    outcomes: Mapping[str, Mapping[str, PooledCount]]
    """Flag -> "known" and "newly_able"."""


@dataclass(frozen=True)
class Pooled:
    files: int
    flow_id: str
    flow_versions: tuple[str, ...]
    labels: tuple[str, ...]
    """The files' labels (those that have one), in the order given."""
    groups: tuple[PooledGroup, ...]

    def group(self, name: str) -> PooledGroup | None:
        return next((g for g in self.groups if g.group == name), None)


def pool(benchmarks: Sequence[Benchmark]) -> Pooled:
    """The files' figures added together (all of one flow: BenchmarkError otherwise)."""
    if not benchmarks:
        raise BenchmarkError("nothing to pool: give at least one benchmark file")
    flow_ids = {b.flow_id for b in benchmarks}
    if len(flow_ids) > 1:
        raise BenchmarkError(
            f"the files are of different questionnaires ({', '.join(sorted(flow_ids))}): "
            "only files of one questionnaire pool"
        )
    names: dict[str, str] = {}
    for benchmark in benchmarks:
        for group in benchmark.groups:
            names.setdefault(group.group, group.kind)
    groups = []
    for name in _group_order(names):
        present = [g for b in benchmarks if (g := b.group(name)) is not None]
        groups.append(_pool_group(name, names[name], present))
    return Pooled(
        files=len(benchmarks),
        flow_id=benchmarks[0].flow_id,
        flow_versions=tuple(dict.fromkeys(b.flow_version for b in benchmarks)),
        labels=tuple(b.label for b in benchmarks if b.label is not None),
        groups=tuple(groups),
    )


def _pool_group(name: str, kind: str, present: Sequence[GroupFigures]) -> PooledGroup:
    files = len(present)

    def counts(values: Iterable[Cell]) -> PooledCount:
        shown = [v for v in values if v is not None]
        return PooledCount(sum(shown) if shown else None, len(shown), files)

    def shares(pick: Callable[[GroupFigures], Mapping[str, Cell]]) -> dict[str, PooledShare]:
        found = {}
        for key in dict.fromkeys(k for g in present for k in pick(g)):
            both = [
                (count, g.completed)
                for g in present
                if (count := pick(g).get(key)) is not None and g.completed is not None
            ]
            found[key] = PooledShare(
                count=sum(c for c, _ in both) if both else None,
                of=sum(of for _, of in both) if both else None,
                covers=len(both),
                files=files,
            )
        return found

    def moments(values: Iterable[Moments | None]) -> PooledMoments:
        shown = [m for m in values if m is not None]
        return PooledMoments(pool_moments(*shown) if shown else None, len(shown), files)

    def keys(pick: Callable[[GroupFigures], Mapping[str, Any]]) -> list[str]:
        return list(dict.fromkeys(k for g in present for k in pick(g)))

    levels: dict[str, dict[str, tuple[PooledCount, ...]]] = {}
    for heading in keys(lambda g: g.levels):
        levels[heading] = {}
        for aspect in ASPECTS:
            columns = [g.levels[heading][aspect] for g in present if heading in g.levels]
            width = max(len(column) for column in columns)
            levels[heading][aspect] = tuple(
                counts(column[i] if i < len(column) else None for column in columns)
                for i in range(width)
            )
    return PooledGroup(
        group=name,
        kind=kind,
        files=files,
        people=counts(g.people for g in present),
        completed=counts(g.completed for g in present),
        pairs=counts(g.pairs for g in present),
        missing_basics=shares(lambda g: g.missing_basics),
        barriers=shares(lambda g: g.barriers),
        levels=levels,
        overall={a: moments(g.overall.get(a) for g in present) for a in ASPECTS},
        headings={
            h: moments(g.headings.get(h) for g in present) for h in keys(lambda g: g.headings)
        },
        changes={
            key: counts(g.changes.get(key) for g in present) for key in keys(lambda g: g.changes)
        },
        outcomes={
            flag: {
                "known": counts(o.known if (o := g.outcomes.get(flag)) else None for g in present),
                "newly_able": counts(
                    o.newly_able if (o := g.outcomes.get(flag)) else None for g in present
                ),
            }
            for flag in keys(lambda g: g.outcomes)
        },
    )


# --- comparing ----------------------------------------------------------------------------


MORE = "more"
LESS = "less"
UNCLEAR = "no clear difference"
SAME = "same"
"""Every gain on both sides alike, and the means equal: no difference at all."""
WITHHELD = "withheld"


@dataclass(frozen=True)
class GainComparison:
    id: str
    """"overall" or a heading id."""
    name: str
    aspect: str
    council: Estimate
    """This council's, as its report shows it."""
    pooled: Estimate
    pooled_covers: int
    pooled_files: int
    difference: float | None
    """The council's mean gain minus the pooled mean gain."""
    difference_ci: tuple[float, float] | None
    """Welch's interval of the difference."""
    verdict: str
    """`MORE` (the council's people gained more), `LESS`, `UNCLEAR`, `SAME`, or `WITHHELD`
    (either side has too few people)."""


@dataclass(frozen=True)
class ShareComparison:
    item: str
    name: str
    council: float | None
    """The council's share at baseline; None when its group is withheld."""
    pooled: float | None
    pooled_covers: int
    pooled_files: int


@dataclass(frozen=True)
class GroupComparison:
    group: str
    gains: tuple[GainComparison, ...]
    """Overall (skill, interest), then skill per heading."""
    missing_basics: tuple[ShareComparison, ...]
    barriers: tuple[ShareComparison, ...]


@dataclass(frozen=True)
class SectorComparison:
    files: int
    labels: tuple[str, ...]
    flow_versions: tuple[str, ...]
    min_group: int
    groups: tuple[GroupComparison, ...]
    """Every group both this council and the pooled files have, in the report's order."""


def compare_with_pooled(
    report: CohortReport,
    tallies: ReportTallies,
    pooled: Pooled,
    confidence: float = CONFIDENCE,
) -> SectorComparison:
    """The council's report (and the tallies of its pass) beside the pooled figures."""
    flow = tallies.flow
    min_group = report.min_group
    rows: dict[str, tuple[ImpactRow, ...]] = {
        EVERYONE: (*report.impact.overall, *report.impact.headings),
        **{i.initiative: (*i.overall, *i.headings) for i in report.impact.initiatives},
    }
    groups = []
    for name in _group_order(tallies.groups()):
        theirs = pooled.group(name)
        if theirs is None:
            continue
        gains = []
        for row in rows.get(name, ()):
            if row.id != "overall" and row.aspect != "skill":
                continue
            key = (name, row.id, row.aspect)
            found = (
                theirs.overall[row.aspect] if row.id == "overall" else theirs.headings.get(row.id)
            )
            if found is None:
                continue
            gains.append(_gain(row, tallies.gains.moments(key), found, min_group, confidence))
        picture = tallies.pictures.get(name)
        summary = picture.summary() if picture is not None else None
        count = summary.count if summary is not None else 0
        shown = summary if summary is not None and count >= min_group else None

        groups.append(
            GroupComparison(
                group=name,
                gains=tuple(gains),
                missing_basics=_shares(
                    flow, shown.missing_basics if shown else None, count, theirs.missing_basics
                ),
                barriers=_shares(flow, shown.barriers if shown else None, count, theirs.barriers),
            )
        )
    return SectorComparison(
        files=pooled.files,
        labels=pooled.labels,
        flow_versions=pooled.flow_versions,
        min_group=min_group,
        groups=tuple(groups),
    )


def _shares(
    flow: Flow,
    counted: Mapping[str, int] | None,
    count: int,
    pooled_shares: Mapping[str, PooledShare],
) -> tuple[ShareComparison, ...]:
    """`counted` None: the council's picture of this group is withheld."""
    known = {item.id for item in flow.items}
    return tuple(
        ShareComparison(
            item=item,
            name=_short(flow.item(item).short),
            council=counted[item] / count if counted is not None else None,
            pooled=share.share,
            pooled_covers=share.covers,
            pooled_files=share.files,
        )
        for item, share in pooled_shares.items()
        if item in known and (counted is None or item in counted)
    )


def _gain(
    row: ImpactRow,
    council: Moments,
    theirs: PooledMoments,
    min_group: int,
    confidence: float,
) -> GainComparison:
    pooled = (theirs.moments or NO_GAINS).estimate(min_group, confidence)
    difference: float | None = None
    interval: tuple[float, float] | None = None
    verdict = WITHHELD
    if not row.estimate.suppressed and not pooled.suppressed and theirs.moments is not None:
        difference = council.mean - theirs.moments.mean
        interval = welch_interval(council, theirs.moments, confidence)
        verdict = (
            MORE
            if interval[0] > 0
            else LESS
            if interval[1] < 0
            else SAME
            if interval == (0.0, 0.0)
            else UNCLEAR
        )
    return GainComparison(
        id=row.id,
        name=row.name,
        aspect=row.aspect,
        council=row.estimate,
        pooled=pooled,
        pooled_covers=theirs.covers,
        pooled_files=theirs.files,
        difference=difference,
        difference_ci=interval,
        verdict=verdict,
    )


def welch_interval(
    first: Moments, second: Moments, confidence: float = CONFIDENCE
) -> tuple[float, float]:
    """Welch's interval for `first`'s mean minus `second`'s (each at least 2 gains); the
    degrees of freedom (Welch-Satterthwaite) rounded down, which only widens it."""
    if first.n < 2 or second.n < 2:
        raise ValueError("each group needs at least 2 gains for a spread")
    difference = first.mean - second.mean
    a = first.m2 / (first.n - 1) / first.n
    b = second.m2 / (second.n - 1) / second.n
    if a + b == 0:
        return difference, difference
    df = (a + b) ** 2 / (a * a / (first.n - 1) + b * b / (second.n - 1))
    half = t_quantile(1 - (1 - confidence) / 2, max(1, math.floor(df))) * math.sqrt(a + b)
    return difference - half, difference + half


def _short(texts: Mapping[str, str]) -> str:
    return texts.get("en") or next(iter(texts.values()))
