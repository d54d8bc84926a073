"""What each stage of `make bench` hands the report: its Markdown, its raw numbers, its goals.

The rule it keeps: a stage measures and describes; it never judges speed by a fixed number of
seconds. A goal is a ratio or a count the issue set (0.40 of the ceiling's turns/s, at most
300 bytes a turn), compared with what this run measured, and it says why when it is missed.
Everything here is plain data, JSON-able through `as_json`, so the report's raw numbers and
its Markdown come from the same values.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Goal:
    name: str
    """What is measured: "SMS turn turns/s against the ceiling, SQLite, 16 in flight"."""
    target: str
    """The goal as the issue states it: "≥ 0.40"."""
    measured: str
    """What this run found, in the target's own terms: "0.43 (1,310 / 3,050 turns/s)"."""
    met: bool
    why: str = ""
    """When missed: what the numbers show holds it back."""


@dataclass(frozen=True)
class Section:
    """One stage's part of the report."""

    key: str
    """A short stable name for the raw numbers: "turns", "scale", "outbound"."""
    title: str
    markdown: str
    """The stage's tables and sentences, without its title."""
    raw: dict[str, Any] = field(default_factory=dict)
    """Every number the Markdown quotes, and more, JSON-able."""
    goals: tuple[Goal, ...] = ()
    ok: bool = True
    """False when a correctness check failed (a duplicate, a lost answer, a failed request)."""


def as_json(section: Section) -> dict[str, Any]:
    return asdict(section)


def goals_table(goals: tuple[Goal, ...] | list[Goal]) -> str:
    """The goals as a Markdown table: goal, target, measured, met, why."""
    lines = ["| goal | target | measured | met | why not |", "|---|---|---|---|---|"]
    lines.extend(
        f"| {goal.name} | {goal.target} | {goal.measured} | {'yes' if goal.met else 'no'} "
        f"| {goal.why} |"
        for goal in goals
    )
    return "\n".join(lines)
