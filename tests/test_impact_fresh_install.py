"""From a fresh install, as a council tries it: `dibot demo`, then `dibot report` shows gains
by initiative, and the CSV, XLSX and FLOIP exports open in the tools an analyst uses (the csv
module, openpyxl, a zip of JSON). Real processes in an empty directory with no configuration:
the embedded SQLite default."""

from __future__ import annotations

import csv
import json
import re
import zipfile
from pathlib import Path

import openpyxl

from tests.test_cli import dibot


def test_demo_then_report_shows_gains_by_initiative_and_exports_open(tmp_path: Path) -> None:
    made = dibot("demo", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    assert "300 synthetic residents" in made.stdout
    assert (tmp_path / "var" / "dibot.db").exists()

    shown = dibot("report", cwd=tmp_path)

    assert shown.returncode == 0, shown.stderr
    text = shown.stdout
    initiatives = text[text.index("By initiative") :]
    overall = initiatives[initiatives.index("All skills (skill)") :].split("\n\n")[0]
    gains = {
        name: float(found.group(1))
        for name in ("Device loans", "Digital champions")
        if (found := re.search(rf"{name}\s+\d+\s+([+-]\d+\.\d\d) \(95% CI", overall))
    }
    assert set(gains) == {"Device loans", "Digital champions"}
    assert gains["Digital champions"] > gains["Device loans"] + 0.3
    assert "07700" not in text

    for fmt, name in (("csv", "answers.csv"), ("xlsx", "demo.xlsx"), ("floip", "demo.zip")):
        done = dibot("export", "--format", fmt, "--out", name, cwd=tmp_path)
        assert done.returncode == 0, done.stderr

    with (tmp_path / "answers.csv").open(encoding="utf-8-sig", newline="") as answers:
        rows = list(csv.DictReader(answers))
    assert len(rows) > 10_000
    assert {row["kind"] for row in rows} == {"baseline", "checkin"}
    assert all(row["respondent"].startswith("R") for row in rows)
    workbook = openpyxl.load_workbook(tmp_path / "demo.xlsx", read_only=True)
    assert workbook.sheetnames[:3] == ["About", "Assessments", "Answers"]
    header = next(workbook["Answers"].iter_rows(max_row=1, values_only=True))
    assert header[:2] == ("respondent", "assessment_id")
    workbook.close()
    with zipfile.ZipFile(tmp_path / "demo.zip") as package:
        names = package.namelist()
        descriptor = json.loads(
            package.read(next(n for n in names if n.endswith("datapackage.json")))
        )
        responses = next(n for n in names if n.endswith("-responses.json"))
        rows = json.loads(package.read(responses))
    assert descriptor["profile"] == "flow-results-package"
    assert len(rows) > 10_000
    assert {len(row) for row in rows} == {7}  # timestamp, row_id, contact_id, session_id, …
    assert rows[0][2].startswith("R")  # contact_id: a pseudonym
