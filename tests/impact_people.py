"""People as `impact.records.iter_people` gives them, built by hand for report and benchmark
tests: quick or full checks answered at T0 and check-ins at T1, every basic there and no
blocker unless a test says otherwise."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

from impact.records import AnswerRow, AssessmentRow

T0 = datetime(2027, 3, 2, 10, 0, tzinfo=UTC)
T1 = datetime(2027, 6, 2, 10, 0, tzinfo=UTC)
EVERY_BASIC = {"BA01.access": 5, "BA02.access": 5, "BA03.access": 5}
NO_BLOCKERS = {f"BL0{n}.blocker": 5 for n in range(1, 6)}


def assessment(
    number: int, kind: str, answers: Mapping[str, int], baseline_id: int | None = None
) -> AssessmentRow:
    """A completed assessment answering `answers` (option numbers; score = option - 1): a
    full one if any skill is an item ("GS01"), else a quick check."""
    items = [key for key in answers if key.endswith((".skill", ".interest"))]
    mode = "full" if any(len(key.split(".")[0]) > 2 for key in items) else "quick"
    at = T0 if kind == "baseline" else T1
    return AssessmentRow(
        id=number,
        kind=kind,
        mode=mode,
        flow_id="digital-inclusion",
        flow_version="test",
        baseline_id=baseline_id,
        started_at=at,
        completed_at=at,
        abandoned_at=None,
        skills_basis=None,
        assisted=False,
        answers=tuple(
            AnswerRow(key, key.split(".")[0], key.split(".")[1], option, option - 1, at, "sms")
            for key, option in sorted(answers.items())
        ),
    )
