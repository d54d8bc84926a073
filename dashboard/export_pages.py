"""Exports from the dashboard: `GET/POST /exports`, a GOV.UK form (the format, whose people, and
for an admin whether to name people by their phone numbers) that answers with the file.

The rules it keeps:
- What is exported is exactly what the member may see: a cohort only through `cohort_or_404`
  (another team's answering 404), and everyone as `Selection(team_id=None for an admin, else
  the member's team)`.
- People are pseudonymous unless an admin asks for phone numbers; a worker who posts that
  anyway is refused with 403, and the refusal is audited. Every export is audited by
  `impact.exports.export` itself (action "export", with the format, whose people, whether
  identified, how many and who), before the file is sent.
- The file is written to a private temporary directory, opened, and the directory removed
  before the response streams it from the open handle, so nothing is left on disk and memory
  stays flat. The response is an attachment, never stored (`Cache-Control: no-store`).
"""

from __future__ import annotations

import re
import shlex
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from flask import Blueprint, abort, render_template, request, send_file
from flask.typing import ResponseReturnValue
from flask_wtf import FlaskForm
from wtforms import BooleanField, StringField

from dashboard.accounts import StaffMember
from dashboard.report_pages import selection_for, visible_cohorts
from dashboard.site import ADMIN, MAX_ID, Site, cohort_or_404
from dibot.config import CouncilConfig
from impact import exports
from impact.records import count_people
from storage.database import read_only


@dataclass(frozen=True)
class ExportFormat:
    value: str
    """`impact.exports.export`'s format."""
    label: str
    hint: str
    extension: str
    mimetype: str
    wait_limit: int = 20_000
    """The most people it is made of while the member waits: measured at about 2 ms a person
    (14 for a workbook) on the project's benchmark machine, to stay well inside the web
    worker's 60 s."""


CSV = "text/csv; charset=utf-8"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
ZIP = "application/zip"
JSON = "application/json"
OFFERED = (
    ExportFormat("csv", "CSV, one row per answer", "Every answer with its question", "csv", CSV),
    ExportFormat(
        "csv-wide",
        "CSV, one row per assessment",
        "A column for each question, for a spreadsheet",
        "csv",
        CSV,
    ),
    ExportFormat(
        "xlsx",
        "Excel workbook",
        "Assessments, answers, the questions and their scales, on separate sheets",
        "xlsx",
        XLSX,
        wait_limit=2_500,
    ),
    ExportFormat(
        "floip",
        "FLOIP Flow Results package (zip)",
        "The open standard for survey results collected by text message",
        "zip",
        ZIP,
    ),
    ExportFormat(
        "outcomes",
        "Outcome flags (zip of two CSV files)",
        "Who could do each outcome task at their first check and later, for cost-benefit "
        "models, and the counts per cohort and initiative",
        "zip",
        ZIP,
    ),
    ExportFormat(
        "benchmark",
        "Sector benchmark file",
        "Counts and gains to pool with other councils (JSON): nobody is named, small groups "
        "are left out",
        "json",
        JSON,
    ),
)
FORMATS = {offered.value: offered for offered in OFFERED}
EVERYONE = ""
"""The cohort select's value for everyone the member may see."""


class ExportForm(FlaskForm):  # type: ignore[misc]  # Flask-WTF is untyped
    format = StringField("Format")
    cohort = StringField("Whose answers")
    identified = BooleanField("Include phone numbers instead of pseudonymous ids")


def available() -> tuple[ExportFormat, ...]:
    """The formats `impact.exports` can write."""
    return tuple(offered for offered in OFFERED if offered.value in exports.FORMATS)


def slug(text: str) -> str:
    """A name as a file name's part: "Spring drive (Cardiff)" -> "spring-drive-cardiff"."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:40].strip("-") or "cohort"


def file_name(whose: str, offered: ExportFormat, day: date) -> str:
    """ "dibot-spring-drive-csv-2026-12-01.csv"."""
    return f"dibot-{whose}-{offered.value}-{day.isoformat()}.{offered.extension}"


def register(pages: Blueprint, site: Site) -> None:
    flow = site.runtime.flow
    zone = ZoneInfo(site.runtime.config.outreach.timezone)
    # A benchmark file's label: the council's name, unless it is still the placeholder.
    council = site.runtime.config.council.name.strip()
    council_label = None if council == CouncilConfig().name else council or None

    def form_page(member: StaffMember, form: ExportForm, cohorts: list[Any]) -> str:
        everyone = "Everyone in every team" if member.role == ADMIN else "Everyone in your team"
        return render_template(
            "impact/exports.html",
            form=form,
            formats=available(),
            cohort_choices=[(EVERYONE, everyone)] + [(str(c.id), c.name) for c in cohorts],
            admin=member.role == ADMIN,
        )

    @pages.route("/exports", methods=["GET", "POST"], endpoint="exports")
    @site.staff_page
    def exports_page(member: StaffMember) -> ResponseReturnValue:
        form = ExportForm()
        with site.engine.connect() as connection:
            cohorts = visible_cohorts(read_only(connection), member)
        if not form.is_submitted():
            form.cohort.data = _chosen_cohort(request.args.get("cohort"), cohorts)
            return form_page(member, form, cohorts)
        form.validate()
        if form.identified.data and member.role != ADMIN:
            site.audit_view(
                member,
                "refused export",
                detail="identified export asked for by a worker: only admins may",
            )
            abort(403, "Only an admin can export phone numbers")
        offered = FORMATS.get(form.format.data or "")
        if offered is None or offered not in available():
            form.format.errors[:] = ["Select the format of the export"]
            return form_page(member, form, cohorts)
        cohort_id = None
        whose = "everyone" if member.role == ADMIN else f"team-{slug(member.team)}"
        if form.cohort.data:
            cohort_id = _cohort_id(form.cohort.data)
            with site.engine.connect() as connection:
                cohort = cohort_or_404(read_only(connection), member, cohort_id)
            whose = slug(cohort.name)
        with site.engine.connect() as connection:
            people = count_people(read_only(connection), selection_for(member, cohort_id))
        if people > offered.wait_limit:
            chosen = f" --cohort {shlex.quote(cohort.name)}" if cohort_id is not None else ""
            form.format.errors[:] = [
                f"{offered.label} of {people:,} people takes too long to make while you wait "
                f"(up to {offered.wait_limit:,} here): choose one cohort, or ask whoever runs "
                f"dibot to make it on the server with: dibot export --format {offered.value}"
                f"{chosen} --out FILE"
            ]
            return form_page(member, form, cohorts)
        name = file_name(whose, offered, site.now().astimezone(zone).date())
        folder = Path(tempfile.mkdtemp(prefix="dibot-export-"))
        bundled = offered.value == "outcomes"  # two CSV files, sent as one zip
        try:
            out = folder / (Path(name).stem + ".csv" if bundled else name)
            done = exports.export(
                site.engine,
                flow,
                selection_for(member, cohort_id),
                format=offered.value,
                out=out,
                identified=bool(form.identified.data),
                by=member.email,
                staff_id=member.id,
                now=site.now(),
                label=council_label,
            )
            if bundled:
                out = folder / name
                with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as bundle:
                    for path in done.paths:
                        bundle.write(path, path.name)
            # Open, then remove the directory: the response streams from the open handle and
            # nothing is left on disk whatever happens to the download.
            handle = out.open("rb")
        except exports.ExportError as error:
            form.format.errors[:] = [f"The export could not be made: {error}"]
            return form_page(member, form, cohorts)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        response = send_file(
            handle,
            mimetype=offered.mimetype,
            as_attachment=True,
            download_name=name,
            etag=False,
            conditional=False,
        )
        response.headers["Cache-Control"] = "no-store"
        return response


def _chosen_cohort(text: str | None, cohorts: list[Any]) -> str:
    """The cohort a link asked for (`?cohort=<id>`), if it is one of the member's."""
    found = _cohort_id(text or "")
    return str(found) if any(c.id == found for c in cohorts) else EVERYONE


def _cohort_id(text: str) -> int:
    """A posted cohort id; anything else is an id that does not exist (404 later)."""
    if not text.isascii() or not text.isdigit() or len(text) > 19:
        return 0
    number = int(text)
    return number if number <= MAX_ID else 0
