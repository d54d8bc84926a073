"""One entry point for every export (`export`): read the people a selection allows, write them
in the format asked for, put the result in place whole, and say so in the audit log.

The rules it keeps:
- The read is read-only (`storage.database.read_only`) and streams (`iter_people`, writers
  that hold one person at a time), so memory stays flat however many people are exported.
- A file is written to a temporary name beside `out` (created readable by its owner only) and
  renamed into place only when it is complete: a failed export leaves no file, half or whole,
  and a file found at `out` is either the one that was there or the finished export.
- Every export writes exactly one line to the audit log (action "export"), in a short
  transaction of its own after the read-only one (as the dashboard's `Site.audit_view` does,
  so the read never holds SQLite's write lock), before the file is put in place: if the line
  cannot be written, no file appears. Its detail names the format, the selection, whether
  people are identified, how many were read and who ran it.
- People are pseudonymous unless `identified` is asked for (then they are named by URN).
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import zipfile
from collections.abc import Iterable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

import sqlalchemy as sa

from flows.model import Flow
from impact.benchmark import write_benchmark_file
from impact.columns import Progress
from impact.export_csv import write_long_csv, write_wide_csv
from impact.export_floip import DESCRIPTOR, write_floip_package
from impact.export_outcomes import write_outcomes
from impact.export_xlsx import About, write_xlsx
from impact.records import Person, Selection, count_people, iter_people
from storage.database import read_only
from storage.models import AuditEntry, Cohort, Team, table

FORMATS = ("csv", "csv-wide", "xlsx", "floip", "outcomes", "benchmark")
"""What `export` writes: csv (one row per answer), csv-wide (one row per assessment), xlsx
(both, with the item bank), floip (a Flow Results package: a directory, or a .zip), outcomes
(outcome flags per person, and counts per cohort and initiative), benchmark (a sector
benchmark file, `impact.benchmark`: aggregates that name nobody, to pool with other
councils')."""
AUDIT_ACTION = "export"
COUNTS_SUFFIX = "-counts"
"""The outcomes export's counts file: `<out stem>-counts.csv` beside `out`."""
DEFAULT_PACKAGE_NAME = "dibot-export"
EVERYONE = "Everyone"


class ExportError(Exception):
    """An export that cannot be made as asked; the message is one line for the operator."""


@dataclass(frozen=True)
class ExportDone:
    """What an export wrote."""

    format: str
    people: int
    """People read (everyone the selection allows)."""
    counts: tuple[tuple[str, int], ...]
    """What was written, in words and numbers: (("assessments", 420), ("answers", 10233))."""
    paths: tuple[Path, ...]
    """The files (or, for a FLOIP package, the directory) put in place."""
    identified: bool

    def summary(self) -> str:
        """ "312 people, 10,233 answers"."""
        parts = [f"{self.people:,} people"]
        parts.extend(f"{count:,} {name}" for name, count in self.counts)
        return ", ".join(parts)


def counts_path(out: Path) -> Path:
    """Where the outcomes export writes its counts per cohort and initiative."""
    return out.with_name(f"{out.stem}{COUNTS_SUFFIX}{out.suffix or '.csv'}")


def output_paths(format: str, out: Path) -> tuple[Path, ...]:
    """Every path an export in `format` to `out` writes."""
    if format == "outcomes":
        return (out, counts_path(out))
    return (out,)


def check_destination(format: str, out: Path, *, overwrite: bool) -> None:
    """ExportError unless every path the export writes can be made: its directory exists, and
    nothing is there already (unless `overwrite`)."""
    if format not in FORMATS:
        raise ExportError(f"unknown format {format!r}: use one of {', '.join(FORMATS)}")
    for path in output_paths(format, out):
        if not path.parent.is_dir():
            raise ExportError(f"{path.parent} is not a directory: make it first")
        if not overwrite and (path.exists() or path.is_symlink()):
            raise ExportError(f"{path} exists: give a new path, or --force to replace it")


def export(
    engine: sa.Engine,
    flow: Flow,
    selection: Selection,
    *,
    format: str,
    out: Path,
    identified: bool,
    by: str,
    staff_id: int | None,
    now: datetime,
    progress: Progress | None = None,
    overwrite: bool = False,
    label: str | None = None,
) -> ExportDone:
    """Export everyone `selection` allows to `out` in `format` (`FORMATS`), audited as done
    by `by` (the staff member `staff_id`, None on the command line) at `now`. `label` is the
    council's own words for a benchmark file (no other format uses it).

    Raises ExportError (nothing written, nothing audited) for a destination that cannot be
    used, a benchmark asked to identify people, or data the flow cannot describe."""
    check_destination(format, out, overwrite=overwrite)
    if format == "benchmark" and identified:
        raise ExportError("a benchmark file names nobody: identifying people does not apply")
    with ExitStack() as cleanup:
        staged = _Staged(format, out)
        cleanup.callback(staged.discard)
        with engine.connect() as connection:
            conn = read_only(connection)
            described = _describe(conn, selection)
            tally = _Tally(progress)
            try:
                if format == "benchmark":
                    tally.people = count_people(conn, selection)
                    benchmark = write_benchmark_file(
                        conn,
                        flow,
                        selection,
                        staged.reserve(0),
                        label=label,
                        now=now,
                        progress=_Steps(progress),
                    )
                    counts: tuple[tuple[str, int], ...] = (("groups", len(benchmark.groups)),)
                else:
                    people = tally(iter_people(conn, selection, identified=identified))
                    counts = _write(
                        format, people, flow, staged, out, described, by, identified, now
                    )
            except (KeyError, ValueError) as error:
                reason = error.args[0] if error.args else type(error).__name__
                raise ExportError(f"the export stopped, nothing was written: {reason}") from None
        with engine.begin() as conn:
            conn.execute(
                sa.insert(table(AuditEntry)).values(
                    at=now,
                    staff_id=staff_id,
                    action=AUDIT_ACTION,
                    respondent_id=None,
                    detail=audit_detail(
                        format, described, identified=identified, people=tally.people, by=by
                    ),
                )
            )
        paths = staged.put_in_place(overwrite=overwrite)
    return ExportDone(format, tally.people, counts, paths, identified)


def audit_detail(
    format: str, described: _Described, *, identified: bool, people: int, by: str
) -> str:
    """ "format=xlsx cohort=Spring drive identified=no people=312 by=asmith"."""
    parts = [f"format={format}"]
    if described.team is not None:
        parts.append(f"team={described.team}")
    if described.cohort is not None:
        parts.append(f"cohort={described.cohort}")
    parts.append(f"identified={'yes' if identified else 'no'}")
    parts.append(f"people={people}")
    parts.append(f"by={by}")
    return " ".join(parts)


@dataclass(frozen=True)
class _Described:
    cohort: str | None
    initiative: str | None
    team: str | None

    def words(self) -> str:
        """The selection in words, for the file itself: "Cohort Spring drive (initiative
        Device loans)", "Everyone"."""
        if self.cohort is not None:
            text = f"Cohort {self.cohort}"
            if self.initiative:
                text += f" (initiative {self.initiative})"
        else:
            text = EVERYONE
        if self.team is not None:
            text += f", team {self.team}"
        return text


def _describe(conn: sa.Connection, selection: Selection) -> _Described:
    cohort = initiative = team = None
    if selection.cohort_id is not None:
        cohorts = table(Cohort)
        found = conn.execute(
            sa.select(cohorts.c.name, cohorts.c.initiative).where(
                cohorts.c.id == selection.cohort_id
            )
        ).first()
        if found is None:
            raise ExportError(f"no cohort has id {selection.cohort_id}")
        cohort, initiative = found.name, found.initiative
    if selection.team_id is not None:
        teams = table(Team)
        team = conn.execute(
            sa.select(teams.c.name).where(teams.c.id == selection.team_id)
        ).scalar_one_or_none()
        if team is None:
            raise ExportError(f"no team has id {selection.team_id}")
    return _Described(cohort, initiative, team)


def _write(
    format: str,
    people: Iterable[Person],
    flow: Flow,
    staged: _Staged,
    out: Path,
    described: _Described,
    by: str,
    identified: bool,
    now: datetime,
) -> tuple[tuple[str, int], ...]:
    if format == "csv":
        with staged.open_file(0) as stream:
            written = write_long_csv(people, flow, stream)
        return (("answers", written.answers),)
    if format == "csv-wide":
        with staged.open_file(0) as stream:
            written = write_wide_csv(people, flow, stream)
        return (("assessments", written.assessments),)
    if format == "xlsx":
        about = About(made_at=now, selection=described.words(), made_by=by, identified=identified)
        with staged.open_file(0) as stream:
            written = write_xlsx(people, flow, stream, about=about)
        return (("assessments", written.assessments), ("answers", written.answers))
    if format == "floip":
        directory = staged.directory()
        counted = _Responses(people)
        write_floip_package(
            counted,
            flow,
            directory,
            name=package_name(out),
            title=f"dibot export: {described.words()}",
            created=now,
        )
        if out.suffix.lower() == ".zip":
            staged.zip_directory(directory)
        return (("responses", counted.responses),)
    if format == "outcomes":
        with staged.open_file(0) as flags, staged.open_file(1) as counts:
            found = write_outcomes(people, flow, flags, counts)
        return (
            ("with a completed baseline", found.with_baseline),
            ("flag rows", found.rows),
        )
    raise ExportError(f"unknown format {format!r}")


def package_name(out: Path) -> str:
    """A Flow Results package name from the file name: lower case, only [a-z0-9._-]."""
    name = re.sub(r"[^a-z0-9._-]+", "-", out.stem.lower()).strip("-.")
    return name or DEFAULT_PACKAGE_NAME


class _Tally:
    """Counts the people going past, and tells `progress` after each."""

    def __init__(self, progress: Progress | None) -> None:
        self._progress = progress
        self.people = 0

    def __call__(self, people: Iterable[Person]) -> Iterator[Person]:
        for person in people:
            yield person
            self.people += 1
            if self._progress is not None:
                self._progress(self.people)


class _Steps:
    """Turns the report's "this many more" progress into `Progress`'s "this many so far"."""

    def __init__(self, progress: Progress | None) -> None:
        self._progress = progress
        self._done = 0

    def __call__(self, more: int) -> None:
        self._done += more
        if self._progress is not None:
            self._progress(self._done)


class _Responses:
    """Counts the answers that become Flow Results responses (skipped ones do not)."""

    def __init__(self, people: Iterable[Person]) -> None:
        self._people = people
        self.responses = 0

    def __iter__(self) -> Iterator[Person]:
        for person in self._people:
            self.responses += sum(
                1
                for assessment in person.assessments
                for answer in assessment.answers
                if answer.option is not None
            )
            yield person


class _Staged:
    """The temporary files (or directory) beside the destination, and putting them in place."""

    def __init__(self, format: str, out: Path) -> None:
        self._targets = output_paths(format, out)
        self._temporary: dict[int, Path] = {}
        self._scratch: list[Path] = []

    def _name(self, index: int) -> tuple[Path, str]:
        target = self._targets[index]
        return target.parent, f".{target.name}."

    def open_file(self, index: int) -> BinaryIO:
        folder, prefix = self._name(index)
        handle, name = tempfile.mkstemp(dir=folder, prefix=prefix, suffix=".tmp")
        self._temporary[index] = Path(name)
        return os.fdopen(handle, "wb")

    def reserve(self, index: int) -> Path:
        """A staged path (an empty private file) for a writer that writes a path itself."""
        self.open_file(index).close()
        return self._temporary[index]

    def directory(self) -> Path:
        folder, prefix = self._name(0)
        made = Path(tempfile.mkdtemp(dir=folder, prefix=prefix, suffix=".tmp"))
        self._temporary[0] = made
        return made

    def zip_directory(self, directory: Path) -> None:
        """Replace the staged directory with a zip of its files (at the zip's root, the
        descriptor first), streamed file by file."""
        self._scratch.append(directory)
        with (
            self.open_file(0) as stream,
            zipfile.ZipFile(stream, "w", compression=zipfile.ZIP_DEFLATED) as archive,
        ):
            names = sorted(
                (path.name for path in directory.iterdir()), key=lambda n: (n != DESCRIPTOR, n)
            )
            for name in names:
                archive.write(directory / name, arcname=name)

    def put_in_place(self, *, overwrite: bool) -> tuple[Path, ...]:
        for index, target in enumerate(self._targets):
            staged = self._temporary.pop(index)
            there = target.exists() or target.is_symlink()
            if overwrite and there and (staged.is_dir() or _is_directory(target)):
                # A rename replaces a file with a file only: move what is there aside first.
                aside = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}."))
                os.replace(target, aside / target.name)
                self._scratch.append(aside)
            os.replace(staged, target)
        self.discard()
        return self._targets

    def discard(self) -> None:
        for path in [*self._temporary.values(), *self._scratch]:
            if _is_directory(path):
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
        self._temporary.clear()
        self._scratch.clear()


def _is_directory(path: Path) -> bool:
    return path.is_dir() and not path.is_symlink()
