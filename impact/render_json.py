"""The cohort report as JSON: a stable, documented structure for other tools.

The rules it keeps:
- The document is `impact.report.CohortReport` with its dataclasses as objects (field names
  unchanged, tuples as arrays), plus "format": "dibot-report/1" at the top. A change that
  breaks a reader gets a new format name.
- Datetimes are ISO 8601 in UTC ("2027-03-02T10:00:00Z"); floats are rounded to 4 places
  (shares 0..1, gains in score points); the same values the text and HTML show formatted.
- Whatever may be withheld carries "withheld" (true or false). A withheld value is null:
  an estimate (`Estimate`) of fewer than "min_group" people has every statistic and its
  "n" null; a count (`Count`) has "count" and "share" null; an outcome has its three counts
  null (its "known" stays: it is how many pairs answered the item, the reason for
  withholding); an initiative with fewer than "min_group" pairs has "people" null.

The structure (every array in the order the report lists it):

    {"format": "dibot-report/1", "title", "description", "generated_at", "flow_id",
     "flow_version", "min_group", "cohorts": [name],
     "funnel": {"people", "enrolled", "started", "completed", "checked_in", "opted_out",
                "unreachable"},
     "picture": {"people", "withheld", "missing_basics": [count], "barriers": [count],
                 "headings": [{"heading", "name", "answered", "skill", "interest",
                               "skill_levels": [people at score 0..4], "interest_levels"}],
                 "top_priorities": [count], "skill_levels": [label by score],
                 "interest_levels": [label by score]},
     "impact": {"pairs", "bases": [count], "overall": [row], "headings": [row],
                "items": [row],
                "initiatives": [{"initiative", "people", "withheld", "overall": [row],
                                 "headings": [row], "changes": [count]}],
                "changes": [count],
                "outcomes": [{"flag", "item", "name", "known", "able_at_baseline",
                              "able_at_checkin", "newly_able", "withheld"}]}}
    count: {"id", "name", "count", "share", "withheld"}
    row:   {"id", "name", "aspect", "estimate": {"n", "mean", "ci_low", "ci_high", "improved",
            "improved_ci": [low, high], "worse", "worse_ci": [low, high], "withheld"}}

`SCHEMA` is the same as a JSON Schema.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime
from typing import Any

from impact.report import CohortReport, Count, InitiativeImpact, OutcomeCount
from scoring.impact import Estimate

FORMAT = "dibot-report/1"
DECIMALS = 4


_NUMBER = {"type": ["number", "null"]}
_INTERVAL = {
    "type": ["array", "null"],
    "items": {"type": "number"},
    "minItems": 2,
    "maxItems": 2,
}
_COUNT = {
    "type": "object",
    "required": ["id", "name", "count", "share", "withheld"],
    "additionalProperties": False,
    "properties": {
        "id": {"type": "string"},
        "name": {"type": "string"},
        "count": {"type": ["integer", "null"], "minimum": 0},
        "share": _NUMBER,
        "withheld": {"type": "boolean"},
    },
}
_ESTIMATE = {
    "type": "object",
    "additionalProperties": False,
    "required": [
        "n",
        "mean",
        "ci_low",
        "ci_high",
        "improved",
        "improved_ci",
        "worse",
        "worse_ci",
        "withheld",
    ],
    "properties": {
        "n": {"type": ["integer", "null"], "minimum": 0},
        "mean": _NUMBER,
        "ci_low": _NUMBER,
        "ci_high": _NUMBER,
        "improved": _NUMBER,
        "improved_ci": _INTERVAL,
        "worse": _NUMBER,
        "worse_ci": _INTERVAL,
        "withheld": {"type": "boolean"},
    },
}
_ROW = {
    "type": "object",
    "required": ["id", "name", "aspect", "estimate"],
    "additionalProperties": False,
    "properties": {
        "id": {"type": "string"},
        "name": {"type": "string"},
        "aspect": {"enum": ["skill", "interest"]},
        "estimate": _ESTIMATE,
    },
}
_LEVELS = {"type": "array", "items": {"type": "integer", "minimum": 0}}
_STRINGS = {"type": "array", "items": {"type": "string"}}


def _array(items: dict[str, Any]) -> dict[str, Any]:
    return {"type": "array", "items": items}


def _object(properties: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "required": list(properties),
        "additionalProperties": False,
        "properties": properties,
    }


_COUNTS = {"type": "integer", "minimum": 0}
SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "dibot cohort report",
    **_object(
        {
            "format": {"const": FORMAT},
            "title": {"type": "string"},
            "description": {"type": "string"},
            "generated_at": {"type": "string", "pattern": "^\\d{4}-\\d{2}-\\d{2}T.*Z$"},
            "flow_id": {"type": "string"},
            "flow_version": {"type": "string"},
            "min_group": {"type": "integer", "minimum": 2},
            "cohorts": _STRINGS,
            "funnel": _object(
                dict.fromkeys(
                    (
                        "people",
                        "enrolled",
                        "started",
                        "completed",
                        "checked_in",
                        "opted_out",
                        "unreachable",
                    ),
                    _COUNTS,
                )
            ),
            "picture": {
                **_object(
                    {
                        "people": _COUNTS,
                        "withheld": {"type": "boolean"},
                        "missing_basics": _array(_COUNT),
                        "barriers": _array(_COUNT),
                        "headings": _array(
                            _object(
                                {
                                    "heading": {"type": "string"},
                                    "name": {"type": "string"},
                                    "answered": _COUNTS,
                                    "skill": _NUMBER,
                                    "interest": _NUMBER,
                                    "skill_levels": _LEVELS,
                                    "interest_levels": _LEVELS,
                                }
                            )
                        ),
                        "top_priorities": _array(_COUNT),
                        "skill_levels": _STRINGS,
                        "interest_levels": _STRINGS,
                    }
                )
            },
            "impact": _object(
                {
                    "pairs": _COUNTS,
                    "bases": _array(_COUNT),
                    "overall": _array(_ROW),
                    "headings": _array(_ROW),
                    "items": _array(_ROW),
                    "initiatives": _array(
                        _object(
                            {
                                "initiative": {"type": "string"},
                                "people": {"type": ["integer", "null"], "minimum": 0},
                                "withheld": {"type": "boolean"},
                                "overall": _array(_ROW),
                                "headings": _array(_ROW),
                                "changes": _array(_COUNT),
                            }
                        )
                    ),
                    "changes": _array(_COUNT),
                    "outcomes": _array(
                        _object(
                            {
                                "flag": {"type": "string"},
                                "item": {"type": "string"},
                                "name": {"type": "string"},
                                "known": _COUNTS,
                                "able_at_baseline": {"type": ["integer", "null"]},
                                "able_at_checkin": {"type": ["integer", "null"]},
                                "newly_able": {"type": ["integer", "null"]},
                                "withheld": {"type": "boolean"},
                            }
                        )
                    ),
                }
            ),
        }
    ),
}
"""The structure above as a JSON Schema (draft 2020-12), for readers that check what they get."""
SCHEMA["properties"]["comparisons"] = {
    "type": "object",
    "description": "Only with `dibot report --persona/--compare`: impact/comparisons.py.",
}


def report_document(report: CohortReport) -> dict[str, Any]:
    """The report as plain JSON values."""
    document = _plain(report, report.min_group)
    assert isinstance(document, dict)
    return {"format": FORMAT, **document}


def render_json(report: CohortReport) -> str:
    """The document as indented JSON text, ending with a newline."""
    return json.dumps(report_document(report), indent=2, ensure_ascii=False) + "\n"


def _plain(value: Any, min_group: int) -> Any:
    if isinstance(value, Estimate):
        return _estimate(value)
    if isinstance(value, InitiativeImpact):
        shown = value.people >= min_group
        return {
            "initiative": value.initiative,
            "people": value.people if shown else None,
            "withheld": not shown,
            "overall": _plain(value.overall, min_group),
            "headings": _plain(value.headings, min_group),
            "changes": _plain(value.changes, min_group),
        }
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        found = {
            field.name: _plain(getattr(value, field.name), min_group)
            for field in dataclasses.fields(value)
        }
        if isinstance(value, Count):
            found["withheld"] = value.count is None
        elif isinstance(value, OutcomeCount):
            found["withheld"] = value.newly_able is None
        return found
    if isinstance(value, tuple | list):
        return [_plain(item, min_group) for item in value]
    if isinstance(value, float):
        return round(value, DECIMALS)
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return value


def _estimate(found: Estimate) -> dict[str, Any]:
    return {
        "n": None if found.suppressed else found.n,
        "mean": _number(found.mean),
        "ci_low": _number(found.ci_low),
        "ci_high": _number(found.ci_high),
        "improved": _number(found.improved),
        "improved_ci": _interval(found.improved_ci),
        "worse": _number(found.worse),
        "worse_ci": _interval(found.worse_ci),
        "withheld": found.suppressed,
    }


def _number(value: float | None) -> float | None:
    return None if value is None else round(value, DECIMALS)


def _interval(value: tuple[float, float] | None) -> list[float] | None:
    return None if value is None else [round(value[0], DECIMALS), round(value[1], DECIMALS)]
