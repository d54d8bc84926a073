"""Pure scoring: answers to a profile, ranked priorities, the priorities message, gains and
cohort aggregates. No I/O, clock or randomness; the bot, dashboard, reports and exports all
use this one package.
"""

from scoring.cohort import CohortSummary, HeadingMeans, cohort_summary
from scoring.formula import Formula, FormulaError, compile_formula
from scoring.gains import Basis, Change, Gains, HeadingGain, UnitGain, gains, gains_between
from scoring.message import change_line, priorities_message, worst_case_messages
from scoring.outcomes import (
    OutcomeFlag,
    outcome_flag_names,
    outcome_flags,
    outcome_items,
)
from scoring.priorities import Priority, priorities
from scoring.profile import HeadingScore, Profile, UnitScore, profile

__all__ = [
    "Basis",
    "Change",
    "CohortSummary",
    "Formula",
    "FormulaError",
    "Gains",
    "HeadingGain",
    "HeadingMeans",
    "HeadingScore",
    "OutcomeFlag",
    "Priority",
    "Profile",
    "UnitGain",
    "UnitScore",
    "change_line",
    "cohort_summary",
    "compile_formula",
    "gains",
    "gains_between",
    "outcome_flag_names",
    "outcome_flags",
    "outcome_items",
    "priorities",
    "priorities_message",
    "profile",
    "worst_case_messages",
]
