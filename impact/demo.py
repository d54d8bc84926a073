"""`dibot demo`'s data: synthetic residents in cohorts under two initiatives, with baselines and
check-ins whose gains differ by initiative, so a council can try every report in minutes.

The rules it keeps:
- one seed, one demo: everything is drawn from `random.Random(seed)` in a fixed order and
  timed from `now`, so the same seed and `now` write the same people, answers and times, on
  SQLite as on PostgreSQL;
- nobody real is named: phone numbers come only from Ofcom's drama range (07700 900000 to
  900999); past 1,000 residents the rest are made-up Telegram ids. URNs are stored as every URN
  is, encrypted and found by their keyed digest (`storage.privacy`);
- synthetic people never mix with real ones: a database holding any respondent is refused;
- every answer is one the engine could have recorded: the questions of the assessment's mode in
  the mode's order, a skill's interest only where the mode asks it, no skills after "not asked"
  for want of a device, topics and questions skipped as the engine skips them, a valid option
  number for each; a check-in re-asks only what its baseline answered, in the same mode;
- nothing is sent or due: no outbox rows, no pending check-ins, and everyone who stopped part-way
  was reminded long ago, so a worker started on the demo has nothing to text.
It writes in the caller's transaction (never commits), `BATCH` residents at a time with
multi-row inserts, so 100,000 residents take minutes.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta

import sqlalchemy as sa

from bot.engine import invite
from bot.state import FIELD_TYPES, STATE_SCHEMA, State
from flows.model import SKILLS_BASES, Flow, Item, Mode, Question, Scale, SkillsChoice, TopicBreak
from impact.personas import ILLUSTRATIVE_PERSONAS, PersonaError, read_personas, save_persona
from outreach.timing import MAX_REMINDERS
from storage.models import (
    Answer,
    Assessment,
    Checkin,
    Cohort,
    CohortMember,
    Conversation,
    Enrolment,
    Respondent,
    Team,
    table,
)
from storage.privacy import Privacy, keys_of, load_privacy

respondents = table(Respondent)
assessments = table(Assessment)
answers = table(Answer)
conversations = table(Conversation)
cohorts = table(Cohort)
members = table(CohortMember)
enrolments = table(Enrolment)
checkins = table(Checkin)
teams = table(Team)

BATCH = 1000
"""Residents written per round of inserts."""
DRAMA_NUMBERS = 1000
"""Ofcom's drama range for mobiles: 07700 900000 to 07700 900999."""
FIRST_DRAMA_NUMBER = 447700900000
FIRST_TELEGRAM_ID = 700000000
"""Residents past the drama range get Telegram ids from here (nine digits)."""

DEVICE_LOANS = "Device loans"
DIGITAL_CHAMPIONS = "Digital champions"
NORTH = "North outreach"
SOUTH = "South outreach"
ENROLLED_BY = "demo"
LAWFUL_BASIS = "public_task"
ASSISTED_BY = "outreach.worker@example.org"
ASSISTED_CHANNEL = "assisted"
"""The channel `dashboard.assisted` records an assessment filled in with a member of staff on."""
CHANNELS = {"tel": "sms", "telegram": "telegram"}
ANSWER_COLUMNS = (
    "assessment_id",
    "question",
    "item_id",
    "aspect",
    "option",
    "score",
    "answered_at",
    "channel",
    "provider_message_id",
)
Row = tuple[object, ...]


REFUSED = (
    "the database already holds respondents, and synthetic people must not mix with them: "
    "give the demo a new database (e.g. DIBOT_DATABASE_URL=sqlite:///demo.db)"
)


PERSONA_COHORTS = {"cost-blocked-family": 0, "smartphone-keen-learner": 2}
"""Illustrative personas (`impact.personas`) -> the demo cohort (by place) they are the
expected baseline of: a family held back by cost for device loans, a keen learner short of
confidence for the champions."""


class DemoRefused(Exception):
    """The database already holds respondents: a demo would mix synthetic people into them."""


@dataclass(frozen=True)
class Story:
    """How an initiative's residents start, and what has changed for them by their check-in.

    Weights are for the scale's scores 0 to 4; levels are on the same 0 to 4 scale."""

    skill: tuple[float, float]
    """Mean and spread of a resident's skill level."""
    device: tuple[float, ...]
    """Weights of a basic the council meets with a device (`Item.help` "device")."""
    connection: tuple[float, ...]
    """Weights of a basic the council meets with data ("data")."""
    cost: tuple[float, ...]
    """Weights of a blocker met with a device or data (prohibitive cost)."""
    skill_gain: tuple[float, float]
    """Mean and spread of a resident's gain, by the check-in, on skills they were low at."""
    basics_given: float
    """The chance a resident has a device (and, a little less often, a connection) by the
    check-in whatever they had before."""
    cost_eased: float
    """The chance cost is no longer a problem by the check-in."""


STORIES: Mapping[str | None, Story] = {
    DEVICE_LOANS: Story(
        skill=(1.9, 0.8),
        device=(0.5, 0.25, 0.12, 0.08, 0.05),
        connection=(0.35, 0.25, 0.2, 0.12, 0.08),
        cost=(0.4, 0.35, 0.15, 0.07, 0.03),
        skill_gain=(0.2, 0.3),
        basics_given=0.8,
        cost_eased=0.7,
    ),
    DIGITAL_CHAMPIONS: Story(
        skill=(1.2, 0.7),
        device=(0.03, 0.05, 0.12, 0.35, 0.45),
        connection=(0.05, 0.07, 0.13, 0.35, 0.4),
        cost=(0.05, 0.1, 0.2, 0.3, 0.35),
        skill_gain=(1.3, 0.4),
        basics_given=0.0,
        cost_eased=0.05,
    ),
    None: Story(  # residents in no cohort: no initiative reached them
        skill=(2.1, 0.9),
        device=(0.1, 0.1, 0.15, 0.3, 0.35),
        connection=(0.1, 0.1, 0.2, 0.3, 0.3),
        cost=(0.15, 0.15, 0.2, 0.25, 0.25),
        skill_gain=(0.0, 0.2),
        basics_given=0.0,
        cost_eased=0.0,
    ),
}
USUALLY_FINE = (0.03, 0.05, 0.12, 0.3, 0.5)
"""Weights of any other basic or blocker (a place to go online, connectivity, health)."""

# How residents move through the check (shares of all residents, then of the completed).
NEVER_REPLIED = 0.03
DECLINED = 0.02
STOPPED_PART_WAY = 0.10
OPTED_OUT_AFTER = 0.03
UNREACHABLE_AFTER = 0.02
CHECKED_IN = 0.74
"""Of the residents who finished a baseline and can still be reached: about 70 % of all
completed baselines."""
QUICK = 0.6
ASSISTED = 0.1
WELSH = 0.15
SKIPPED_QUESTION = 0.006
SKIPPED_TOPIC = 0.04
SKIPPED_LAST_TOPIC = 0.25
"""The last heading (the shipped flow's advanced skills) is skipped more often."""
SKILLS_NOT_ASKED = 0.35
"""Of those lacking a device or connection: skip the skills rather than answer as if."""
WORSE = 0.08
"""Residents whose skills fell by the check-in (illness, a device gone, confidence lost)."""
MEASUREMENT_NOISE = 0.3
BASICS_NOISE = 0.15


@dataclass(frozen=True)
class DemoCohort:
    name: str
    initiative: str
    team: str
    starts_on: date
    ends_on: date
    share: float
    """Of all residents."""


@dataclass(frozen=True)
class CohortCount:
    name: str
    initiative: str
    members: int


@dataclass(frozen=True)
class DemoSummary:
    respondents: int
    cohorts: tuple[CohortCount, ...]
    without_cohort: int
    baselines: int
    """Baselines started."""
    completed: int
    """Baselines completed."""
    checkins: int
    answers: int
    personas: int = 0

    def initiatives(self) -> dict[str, list[CohortCount]]:
        """Initiative -> its cohorts, in the order they were made."""
        grouped: dict[str, list[CohortCount]] = {}
        for cohort in self.cohorts:
            grouped.setdefault(cohort.initiative, []).append(cohort)
        return grouped


def season(day: date) -> str:
    return ("winter", "spring", "summer", "autumn")[day.month % 12 // 3]


def demo_cohorts(now: datetime) -> tuple[DemoCohort, ...]:
    """The cohorts, dated back from `now` so that every check-in is over by then: two rounds of
    device loans 120 days apart (so in different seasons) and one of digital champions; the
    15% in none are enough (at the default size) for the report to show them beside the
    initiatives rather than withhold them, and a champion's figures with them."""
    today = now.date()
    first, second, champions = (today - timedelta(days=days) for days in (275, 155, 240))
    weeks = timedelta(weeks=12)
    return (
        DemoCohort(
            f"{DEVICE_LOANS} {season(first)} {first.year}",
            DEVICE_LOANS,
            NORTH,
            first,
            first + weeks,
            0.31,
        ),
        DemoCohort(
            f"{DEVICE_LOANS} {season(second)} {second.year}",
            DEVICE_LOANS,
            NORTH,
            second,
            second + weeks,
            0.24,
        ),
        DemoCohort(
            "Champions at the library", DIGITAL_CHAMPIONS, SOUTH, champions, champions + weeks, 0.30
        ),
    )


def demo_urn(index: int) -> str:
    """The `index`th resident's URN (from 0): drama-range numbers, then Telegram ids."""
    if index < DRAMA_NUMBERS:
        return f"tel:+{FIRST_DRAMA_NUMBER + index}"
    return f"telegram:{FIRST_TELEGRAM_ID + index}"


def holds_respondents(conn: sa.Connection) -> bool:
    return conn.execute(sa.select(respondents.c.id).limit(1)).first() is not None


# --- walking through a mode as the engine does ------------------------------------------------


@dataclass(frozen=True)
class Sitting:
    """One assessment as it went: the steps passed in order, and each question's option (None:
    skipped)."""

    kind: str
    mode: str
    history: tuple[str, ...]
    options: Mapping[str, int | None]
    times: tuple[datetime, ...]
    """When each step of `history` was passed."""
    skills_basis: str | None
    topics_skipped: tuple[str, ...]
    completed: bool
    next_step: str | None
    """Where someone who stopped part-way is (None when completed)."""
    assisted: bool = False

    @property
    def started_at(self) -> datetime:
        return self.times[0]

    @property
    def ended_at(self) -> datetime:
        return self.times[-1]

    def chosen(self) -> dict[str, int]:
        return {key: option for key, option in self.options.items() if option is not None}

    def stopped_after(self, steps: int) -> Sitting:
        """This sitting cut short after its first `steps` steps."""
        passed = self.history[:steps]
        return Sitting(
            kind=self.kind,
            mode=self.mode,
            history=passed,
            options={key: self.options[key] for key in passed if key in self.options},
            times=self.times[:steps],
            skills_basis=self.skills_basis if SkillsChoice.key in passed else None,
            topics_skipped=tuple(h for h in self.topics_skipped if f"{h}.topic" in passed),
            completed=False,
            next_step=self.history[steps],
            assisted=self.assisted,
        )


class Questionnaire:
    """The flow with the look-ups a demo makes millions of times: an option's score, the option
    nearest a level, an item by id."""

    def __init__(self, flow: Flow) -> None:
        self.flow = flow
        self.scores = {
            aspect: {option.number: option.score for option in scale.options}
            for aspect, scale in flow.scales.items()
        }
        self.numbers = {
            aspect: {
                score: _nearest(scale, score)
                for score in range(scale.min_score, scale.max_score + 1)
            }
            for aspect, scale in flow.scales.items()
        }
        self.ranges = {aspect: (min(found), max(found)) for aspect, found in self.numbers.items()}
        self.items = {item.id: item for item in flow.items}
        self.offsets = _heading_offsets(flow)

    def item_of(self, question: Question) -> Item | None:
        """The item a question asks about; None for a quick check's heading."""
        return self.items.get(question.item) if question.item != question.heading else None

    def score(self, question: Question, option: int) -> int:
        return self.scores[question.aspect][option]

    def option(self, question: Question, level: float) -> int:
        """The option whose score is nearest `level`."""
        low, high = self.ranges[question.aspect]
        return self.numbers[question.aspect][min(max(round(level), low), high)]

    def walk(
        self,
        mode: Mode,
        choose: Callable[[Question], int | None],
        *,
        only: frozenset[str] | None = None,
        skip_topics: frozenset[str] = frozenset(),
        basis: str = SKILLS_BASES[1],
    ) -> tuple[list[str], dict[str, int | None], str | None]:
        """The steps `mode` takes with the options `choose` gives, as the engine's `next_step`
        takes them: (keys passed in order, question -> option, the skills basis if asked).
        `only`: a check-in's questions; `skip_topics`: headings skipped at their topic break;
        `basis`: what someone offered the skills choice chooses."""
        history: list[str] = []
        options: dict[str, int | None] = {}
        chosen_basis: str | None = None
        headings = self._headings(only)
        for step in mode.steps:
            if isinstance(step, SkillsChoice):
                if only is None and self.lacks_device(options):
                    chosen_basis = basis
                    history.append(step.key)
                continue
            skills_left_out = chosen_basis == SKILLS_BASES[0]
            if isinstance(step, TopicBreak):
                if skills_left_out or (headings is not None and step.heading not in headings):
                    continue
                history.append(step.key)
                continue
            if only is not None and step.key not in only:
                continue
            if (skills_left_out and step.section == "skills") or step.heading in skip_topics:
                continue
            if not self.interest_asked(mode, options, step):
                continue
            options[step.key] = choose(step)
            history.append(step.key)
        return history, options, chosen_basis

    def _headings(self, only: frozenset[str] | None) -> frozenset[str | None] | None:
        """The headings a check-in asks something under (None: not a check-in)."""
        if only is None:
            return None
        return frozenset(self.flow.questions[key].heading for key in only)

    def lacks_device(self, options: Mapping[str, int | None]) -> bool:
        """Whether a basic that offers the skills choice is missing by the answers so far."""
        missing = self.flow.priority.missing_basic_at_most
        for item in self.flow.skills_choice_if_missing:
            option = options.get(f"{item}.access")
            if option is not None and self.scores["access"][option] <= missing:
                return True
        return False

    def interest_asked(
        self, mode: Mode, options: Mapping[str, int | None], question: Question
    ) -> bool:
        """Whether the mode asks `question`: a skill's interest only where its skill (answered,
        not skipped) scores at most `interest_if_skill_at_most`."""
        if question.aspect != "interest" or mode.interest_if_skill_at_most is None:
            return True
        skill = options.get(f"{question.item}.skill")
        if skill is None:
            return False
        return self.scores["skill"][skill] <= mode.interest_if_skill_at_most


# --- a resident ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Resident:
    """One synthetic resident, as planned before anything is written."""

    index: int
    urn: str
    language: str
    cohort: int | None
    """Index into the demo's cohorts."""
    team: str
    enrolled_at: datetime
    consented_at: datetime | None
    declined_at: datetime | None
    baseline: Sitting | None
    checkin: Sitting | None
    checkin_due_at: datetime | None
    opted_out_at: datetime | None
    unreachable: bool

    @property
    def channel(self) -> str:
        return CHANNELS[self.urn.split(":", 1)[0]]


@dataclass
class _Levels:
    """A resident's true levels (0 to 4, unrounded) at the baseline, drawn as asked, and what
    changes by the check-in."""

    rng: random.Random
    questionnaire: Questionnaire
    story: Story
    skill: float
    motivation: float
    offsets: Mapping[str, float]
    baseline: dict[str, float] = field(default_factory=dict)
    observed: dict[str, int] = field(default_factory=dict)
    """Baseline scores as answered."""

    def at_baseline(self, question: Question) -> float:
        level = self.baseline.get(question.key)
        if level is None:
            level = self.baseline[question.key] = self._draw(question)
        return level

    def _draw(self, question: Question) -> float:
        rng, item = self.rng, self.questionnaire.item_of(question)
        if question.aspect == "access":
            return float(_weighted(rng, self._weights(item)))
        if question.aspect == "blocker":
            if item is not None and item.id == self.questionnaire.flow.priority.no_interest_blocker:
                return self.motivation + 0.5 + rng.gauss(0, 0.6)
            if item is not None and "skills" in item.help:
                return self.skill + 1.0 + rng.gauss(0, 0.6)
            return float(_weighted(rng, self._weights(item)))
        offset = self.offsets.get(question.heading or "", 0.0)
        spread = 0.6 if item is not None else 0.3  # an item varies more than a heading's mean
        if question.aspect == "skill":
            return self.skill + offset + rng.gauss(0, spread)
        return self.motivation + 0.3 * offset + rng.gauss(0, spread + 0.1)

    def _weights(self, item: Item | None) -> tuple[float, ...]:
        needs = () if item is None else item.help
        if item is not None and item.section == "basics":
            if "device" in needs:
                return self.story.device
            if "data" in needs:
                return self.story.connection
            return USUALLY_FINE
        if "device" in needs or "data" in needs:
            return self.story.cost
        return USUALLY_FINE


@dataclass
class _Change:
    """What is different for a resident by their check-in."""

    rng: random.Random
    levels: _Levels
    gain: float
    device_given: bool
    connection_given: bool
    cost_eased: bool

    def at_checkin(self, question: Question) -> float:
        levels, flow = self.levels, self.levels.questionnaire.flow
        before = levels.baseline[question.key]
        item = levels.questionnaire.item_of(question)
        needs = () if item is None else item.help
        if question.aspect == "access":
            given = ("device" in needs and self.device_given) or (
                "data" in needs and self.connection_given
            )
            return max(before, float(self.rng.choice((3, 4)))) if given else before
        if question.aspect == "blocker":
            if ("device" in needs or "data" in needs) and self.cost_eased:
                return max(before, float(self.rng.choice((3, 4))))
            if item is not None and item.id == flow.priority.no_interest_blocker:
                return before + 0.3 * self.gain
            if "skills" in needs:
                return before + 0.6 * self.gain
            return before
        if question.aspect == "interest":
            return before + 0.3 * self.gain
        was_low = levels.observed.get(question.key, 0) <= flow.priority.skill_at_most
        return before + self.gain * (1.0 if was_low else 0.3)


def plan_resident(
    rng: random.Random,
    questionnaire: Questionnaire,
    index: int,
    plan: Sequence[DemoCohort],
    now: datetime,
) -> Resident:
    """The `index`th resident, drawn from `rng` (always the same draws in the same order)."""
    flow = questionnaire.flow
    cohort = _pick_cohort(rng, plan)
    story = STORIES[plan[cohort].initiative if cohort is not None else None]
    team = plan[cohort].team if cohort is not None else rng.choice((NORTH, SOUTH))
    welsh = rng.random() < WELSH and "cy" in flow.languages
    language = "cy" if welsh else ("en" if "en" in flow.languages else flow.languages[0])
    if cohort is not None:
        day = plan[cohort].starts_on + timedelta(days=rng.randrange(28))
    else:
        day = now.date() - timedelta(days=rng.randrange(130, 320))
    start = datetime(day.year, day.month, day.day, 9, tzinfo=UTC) + timedelta(
        seconds=rng.randrange(10 * 3600)
    )
    enrolled_at = start - timedelta(seconds=rng.randrange(3600, 72 * 3600))
    fate = rng.random()
    mode = flow.modes["quick" if rng.random() < QUICK or "full" not in flow.modes else "full"]
    levels = _Levels(
        rng,
        questionnaire,
        story,
        skill=rng.gauss(*story.skill),
        motivation=rng.gauss(2.6, 0.8),
        offsets=questionnaire.offsets,
    )
    nobody = Resident(
        index=index,
        urn=demo_urn(index),
        language=language,
        cohort=cohort,
        team=team,
        enrolled_at=enrolled_at,
        consented_at=None,
        declined_at=None,
        baseline=None,
        checkin=None,
        checkin_due_at=None,
        opted_out_at=None,
        unreachable=False,
    )
    if fate < NEVER_REPLIED:
        return nobody
    if fate < NEVER_REPLIED + DECLINED:
        return replace(nobody, declined_at=start)
    baseline = _sitting(rng, questionnaire, mode, levels, start, assisted=rng.random() < ASSISTED)
    consented = replace(nobody, consented_at=start - timedelta(minutes=1), baseline=baseline)
    if fate < NEVER_REPLIED + DECLINED + STOPPED_PART_WAY and len(baseline.history) > 3:
        return replace(
            consented, baseline=baseline.stopped_after(rng.randrange(2, len(baseline.history) - 1))
        )
    after = rng.random()
    later = baseline.ended_at + timedelta(days=rng.uniform(1, 30))
    if after < OPTED_OUT_AFTER:
        return replace(consented, opted_out_at=later)
    if after < OPTED_OUT_AFTER + UNREACHABLE_AFTER:
        return replace(consented, unreachable=True)
    if rng.random() >= CHECKED_IN:
        return consented
    change = _Change(
        rng,
        levels,
        gain=-rng.uniform(0.3, 1.0) if rng.random() < WORSE else rng.gauss(*story.skill_gain),
        device_given=rng.random() < story.basics_given,
        connection_given=rng.random() < story.basics_given * 0.85,
        cost_eased=rng.random() < story.cost_eased,
    )
    due = baseline.ended_at + timedelta(days=rng.uniform(80, 100))
    started = due + timedelta(seconds=rng.randrange(600, 30 * 3600))
    checkin = _checkin(rng, questionnaire, mode, baseline, change, started)
    if checkin.ended_at >= now:  # only with an odd `now`: the demo tells of the past
        return consented
    return replace(consented, checkin=checkin, checkin_due_at=due)


def _pick_cohort(rng: random.Random, plan: Sequence[DemoCohort]) -> int | None:
    draw = rng.random()
    for number, cohort in enumerate(plan):
        if draw < cohort.share:
            return number
        draw -= cohort.share
    return None


def _heading_offsets(flow: Flow) -> dict[str, float]:
    """Headings get harder in the flow's order (getting started first, advanced last)."""
    count = len(flow.headings)
    return {
        heading.id: 0.6 - 1.5 * number / max(count - 1, 1)
        for number, heading in enumerate(flow.headings)
    }


def _nearest(scale: Scale, score: int) -> int:
    """The number of the option whose score is nearest `score`."""
    return min(scale.options, key=lambda option: (abs(option.score - score), option.number)).number


def _weighted(rng: random.Random, weights: Sequence[float]) -> int:
    draw = rng.random() * sum(weights)
    for score, weight in enumerate(weights):
        if draw < weight:
            return score
        draw -= weight
    return len(weights) - 1


def _sitting(
    rng: random.Random,
    questionnaire: Questionnaire,
    mode: Mode,
    levels: _Levels,
    start: datetime,
    *,
    assisted: bool,
) -> Sitting:
    flow = questionnaire.flow
    last = flow.headings[-1].id if flow.headings else ""
    skip_topics = frozenset(
        heading.id
        for heading in flow.headings
        if rng.random() < (SKIPPED_LAST_TOPIC if heading.id == last else SKIPPED_TOPIC)
        and mode.id == "full"
    )
    basis = SKILLS_BASES[0] if rng.random() < SKILLS_NOT_ASKED else SKILLS_BASES[1]

    def choose(question: Question) -> int | None:
        if rng.random() < SKIPPED_QUESTION:
            return None
        level = levels.at_baseline(question) + _noise(rng, question)
        option = questionnaire.option(question, level)
        levels.observed[question.key] = questionnaire.score(question, option)
        return option

    history, options, chosen_basis = questionnaire.walk(
        mode, choose, skip_topics=skip_topics, basis=basis
    )
    return Sitting(
        kind="baseline",
        mode=mode.id,
        history=tuple(history),
        options=options,
        times=_times(rng, start, len(history)),
        skills_basis=chosen_basis,
        topics_skipped=tuple(
            h.id for h in flow.headings if h.id in skip_topics and f"{h.id}.topic" in history
        ),
        completed=True,
        next_step=None,
        assisted=assisted,
    )


def _checkin(
    rng: random.Random,
    questionnaire: Questionnaire,
    mode: Mode,
    baseline: Sitting,
    change: _Change,
    start: datetime,
) -> Sitting:
    def choose(question: Question) -> int | None:
        if rng.random() < SKIPPED_QUESTION:
            return None
        level = change.at_checkin(question) + _noise(rng, question)
        return questionnaire.option(question, level)

    only = frozenset(baseline.chosen())
    history, options, _ = questionnaire.walk(mode, choose, only=only)
    return Sitting(
        kind="checkin",
        mode=mode.id,
        history=tuple(history),
        options=options,
        times=_times(rng, start, len(history)),
        skills_basis=None,
        topics_skipped=(),
        completed=True,
        next_step=None,
    )


def _noise(rng: random.Random, question: Question) -> float:
    spread = BASICS_NOISE if question.section != "skills" else MEASUREMENT_NOISE
    return rng.gauss(0, spread)


def _times(rng: random.Random, start: datetime, steps: int) -> tuple[datetime, ...]:
    """When each step was passed: a reply every 15 seconds to 2 minutes, now and then a
    break of hours (LATER, then back)."""
    times, seconds, draw = [], 0.0, rng.random
    for _ in range(steps):
        times.append(start + timedelta(seconds=seconds))
        seconds += 15 + 105 * draw()
        if draw() < 0.02:
            seconds += 3600 * (1 + 47 * draw())
    return tuple(times)


# --- writing ---------------------------------------------------------------------------------


def make_demo(
    conn: sa.Connection,
    flow: Flow,
    *,
    respondents: int = 300,
    seed: int = 2026,
    now: datetime,
    progress: Callable[[int], None] | None = None,
) -> DemoSummary:
    """Write the demo into the database `conn` is on, in its transaction; DemoRefused if it
    holds respondents already. `progress` is told how many residents each batch wrote."""
    if respondents < 0:
        raise ValueError("respondents must be 0 or more")
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    if holds_respondents(conn):
        raise DemoRefused(REFUSED)
    privacy = load_privacy(conn, keys_of(conn))
    rng = random.Random(seed)  # noqa: S311  (made-up people, not secrets)
    plan = demo_cohorts(now)
    team_ids = {name: _team(conn, name, now) for name in (NORTH, SOUTH)}
    cohort_ids = [_cohort(conn, cohort, team_ids[cohort.team], now) for cohort in plan]
    counts = _Counts(len(plan))
    questionnaire = Questionnaire(flow)
    writer = _Writer(conn, questionnaire, privacy, team_ids, cohort_ids)
    for first in range(0, respondents, BATCH):
        batch = [
            plan_resident(rng, questionnaire, index, plan, now)
            for index in range(first, min(first + BATCH, respondents))
        ]
        writer.write(batch)
        counts.add(batch)
        if progress is not None:
            progress(len(batch))
    personas = _illustrative_personas(conn, flow, cohort_ids, now)
    if conn.dialect.name == "postgresql":
        # Tables just filled in bulk have no planner statistics until autovacuum comes round
        # (never, where it is off): without them PostgreSQL reads each batch of a report's
        # answers by scanning every answer.
        conn.exec_driver_sql("ANALYZE")
    return DemoSummary(
        respondents=respondents,
        cohorts=tuple(
            CohortCount(cohort.name, cohort.initiative, counts.members[number])
            for number, cohort in enumerate(plan)
        ),
        without_cohort=counts.without_cohort,
        baselines=counts.baselines,
        completed=counts.completed,
        checkins=counts.checkins,
        answers=counts.answers,
        personas=personas,
    )


def _illustrative_personas(
    conn: sa.Connection, flow: Flow, cohort_ids: Sequence[int], now: datetime
) -> int:
    """The personas dibot ships, two of them as the expected baselines of the demo's first
    device-loans cohort and its champions' cohort; none for a flow they do not fit (a council's
    own questionnaire)."""
    try:
        specs = read_personas(ILLUSTRATIVE_PERSONAS, flow)
    except PersonaError:
        return 0
    for spec in specs:
        cohort = PERSONA_COHORTS.get(spec.slug)
        save_persona(
            conn,
            flow,
            replace(spec, cohort=None),
            by=ENROLLED_BY,
            cohort_id=None if cohort is None else cohort_ids[cohort],
            now=now,
        )
    return len(specs)


class _Counts:
    def __init__(self, cohorts: int) -> None:
        self.members = [0] * cohorts
        self.without_cohort = self.baselines = self.completed = self.checkins = self.answers = 0

    def add(self, batch: Sequence[Resident]) -> None:
        for resident in batch:
            if resident.cohort is None:
                self.without_cohort += 1
            else:
                self.members[resident.cohort] += 1
            for sitting in (resident.baseline, resident.checkin):
                if sitting is not None:
                    self.answers += len(sitting.options)
            if resident.baseline is not None:
                self.baselines += 1
                self.completed += resident.baseline.completed
            self.checkins += resident.checkin is not None


def _team(conn: sa.Connection, name: str, now: datetime) -> int:
    """The team's id; made if new (staff may have been added to it already)."""
    found = conn.execute(sa.select(teams.c.id).where(teams.c.name == name)).scalar_one_or_none()
    if found is not None:
        return int(found)
    made = conn.execute(sa.insert(teams).values(name=name, created_at=now).returning(teams.c.id))
    return int(made.scalar_one())


def _cohort(conn: sa.Connection, cohort: DemoCohort, team_id: int, now: datetime) -> int:
    """The cohort's id; an empty cohort of the same name (made before anyone was enrolled) is
    taken over."""
    values = {
        "initiative": cohort.initiative,
        "starts_on": cohort.starts_on,
        "ends_on": cohort.ends_on,
        "team_id": team_id,
    }
    found = conn.execute(
        sa.select(cohorts.c.id).where(cohorts.c.name == cohort.name)
    ).scalar_one_or_none()
    if found is not None:
        conn.execute(sa.update(cohorts).where(cohorts.c.id == found).values(**values))
        return int(found)
    created = datetime.combine(cohort.starts_on, datetime.min.time(), UTC) - timedelta(days=14)
    made = conn.execute(
        sa.insert(cohorts)
        .values(name=cohort.name, created_at=created, **values)
        .returning(cohorts.c.id)
    )
    return int(made.scalar_one())


@dataclass
class _Writer:
    conn: sa.Connection
    questionnaire: Questionnaire
    privacy: Privacy
    team_ids: Mapping[str, int]
    cohort_ids: Sequence[int]

    @property
    def flow(self) -> Flow:
        return self.questionnaire.flow

    def write(self, batch: Sequence[Resident]) -> None:
        conn = self.conn
        ids = self._inserted(respondents, [self._respondent(r) for r in batch])
        rid = dict(zip((r.index for r in batch), ids, strict=True))
        conn.execute(
            sa.insert(enrolments),
            [
                {
                    "respondent_id": rid[r.index],
                    "cohort_id": self._cohort_id(r),
                    "enrolled_by": ENROLLED_BY,
                    "lawful_basis": LAWFUL_BASIS,
                    "enrolled_at": r.enrolled_at,
                    "invitation_id": None,
                }
                for r in batch
            ],
        )
        joined = [r for r in batch if r.cohort is not None]
        if joined:
            conn.execute(
                sa.insert(members),
                [
                    {
                        "cohort_id": self._cohort_id(r),
                        "respondent_id": rid[r.index],
                        "added_at": r.enrolled_at,
                    }
                    for r in joined
                ],
            )
        baselines = [(r, r.baseline) for r in batch if r.baseline is not None]
        baseline_ids = self._assessments(rid, baselines, {})
        followed = [(r, r.checkin) for r in batch if r.checkin is not None]
        checkin_ids = self._assessments(rid, followed, baseline_ids)
        rows = [
            row
            for sittings, ids in ((baselines, baseline_ids), (followed, checkin_ids))
            for r, sitting in sittings
            for row in self._answers(r, sitting, ids[r.index])
        ]
        bulk_insert(conn, answers, ANSWER_COLUMNS, rows)
        ended = {r.index: sitting.ended_at for r, sitting in baselines}
        if followed:
            conn.execute(
                sa.insert(checkins),
                [
                    {
                        "respondent_id": rid[r.index],
                        "cohort_id": self._cohort_id(r),
                        "due_at": r.checkin_due_at,
                        "status": "invited",
                        "skip_reason": None,
                        "baseline_id": baseline_ids[r.index],
                        "outbox_id": None,
                        "scheduled_by": ENROLLED_BY,
                        "scheduled_at": ended[r.index] + timedelta(days=1),
                        "invited_at": r.checkin_due_at,
                    }
                    for r, _ in followed
                ],
            )
        conn.execute(
            sa.insert(conversations),
            [
                self._conversation(
                    r, rid[r.index], baseline_ids.get(r.index), checkin_ids.get(r.index)
                )
                for r in batch
            ],
        )

    def _assessments(
        self,
        rid: Mapping[int, int],
        sittings: Sequence[tuple[Resident, Sitting]],
        baseline_ids: Mapping[int, int],
    ) -> dict[int, int]:
        """Insert the sittings as assessments (a check-in with its baseline's id): resident
        (by index) -> the new assessment's id."""
        ids = self._inserted(
            assessments,
            [
                self._assessment(rid[r.index], sitting, baseline_ids.get(r.index))
                for r, sitting in sittings
            ],
        )
        return {r.index: new for (r, _), new in zip(sittings, ids, strict=True)}

    def _inserted(self, target: sa.Table, rows: list[dict[str, object]]) -> list[int]:
        """Insert `rows`; their new ids, in the same order."""
        if not rows:
            return []
        result = self.conn.execute(
            sa.insert(target).returning(target.c.id, sort_by_parameter_order=True), rows
        )
        return [int(row_id) for row_id in result.scalars()]

    def _cohort_id(self, r: Resident) -> int | None:
        return None if r.cohort is None else self.cohort_ids[r.cohort]

    def _respondent(self, r: Resident) -> dict[str, object]:
        return {
            "urn_cipher": self.privacy.encrypt(r.urn),
            "urn_digest": self.privacy.digest(r.urn),
            "language": r.language,
            "consented_at": r.consented_at,
            "opted_out": r.opted_out_at is not None,
            "opted_out_at": r.opted_out_at,
            "unreachable": r.unreachable,
            "created_at": r.enrolled_at,
            "team_id": self.team_ids[r.team],
        }

    def _assessment(
        self, respondent_id: int, sitting: Sitting, baseline_id: int | None
    ) -> dict[str, object]:
        return {
            "respondent_id": respondent_id,
            "mode": sitting.mode,
            "flow_id": self.flow.id,
            "flow_version": self.flow.version,
            "started_at": sitting.started_at,
            "completed_at": sitting.ended_at if sitting.completed else None,
            "abandoned_at": None,
            "skills_basis": sitting.skills_basis,
            "kind": sitting.kind,
            "baseline_id": baseline_id,
            "assisted_by": ASSISTED_BY if sitting.assisted else None,
        }

    def _answers(self, r: Resident, sitting: Sitting, assessment_id: int) -> Iterator[Row]:
        """The sitting's answers, as `ANSWER_COLUMNS`."""
        channel = ASSISTED_CHANNEL if sitting.assisted else r.channel
        at = dict(zip(sitting.history, sitting.times, strict=True))
        for key, option in sitting.options.items():
            question = self.flow.questions[key]
            score = None if option is None else self.questionnaire.score(question, option)
            yield (
                assessment_id,
                key,
                question.item,
                question.aspect,
                option,
                score,
                at[key],
                channel,
                f"demo-{r.index}-{sitting.kind}-{key}",
            )

    def _conversation(
        self, r: Resident, respondent_id: int, baseline_id: int | None, checkin_id: int | None
    ) -> dict[str, object]:
        state, last = self._state(r, baseline_id)
        return {
            "respondent_id": respondent_id,
            "assessment_id": checkin_id or baseline_id,
            "flow_id": self.flow.id,
            "flow_version": self.flow.version,
            "state": state_json(state),
            "created_at": r.enrolled_at,
            "updated_at": last or r.enrolled_at,
            "last_inbound_at": last,
            "reminders_sent": MAX_REMINDERS
            if r.baseline is not None and not r.baseline.completed
            else 0,
        }

    def _state(self, r: Resident, baseline_id: int | None) -> tuple[State, datetime | None]:
        """The conversation's state where the resident left it, and when they last wrote."""
        begun = State(
            language=r.language, language_chosen=True, opted_out=r.opted_out_at is not None
        )
        if r.baseline is None:
            if r.declined_at is None:
                return invite(self.flow, begun, r.enrolled_at).state, None
            return begun.evolve(
                stage="declined", last_seen=r.declined_at.isoformat()
            ), r.declined_at
        latest = r.checkin or r.baseline
        state = begun.evolve(
            stage="done" if latest.completed else "asking",
            mode=latest.mode,
            question=latest.next_step,
            answers=latest.chosen(),
            skipped=tuple(k for k, option in latest.options.items() if option is None),
            topics_skipped=latest.topics_skipped,
            history=latest.history,
            skills_basis=latest.skills_basis,
            last_seen=latest.ended_at.isoformat(),
        )
        if r.checkin is not None:
            state = state.evolve(
                kind="checkin",
                only=tuple(r.baseline.chosen()),
                baseline=r.baseline.chosen(),
                baseline_id=baseline_id,
            )
        return state, latest.ended_at


def state_json(state: State) -> str:
    """`state.to_json()`, the same text, without the deep copy `dataclasses.asdict` makes (the
    slowest part of writing 100,000 conversations)."""
    data = {name: getattr(state, name) for name in FIELD_TYPES}
    for name in ("answers", "baseline", "since"):
        data[name] = dict(data[name])
    data["schema"] = STATE_SCHEMA
    return json.dumps(data, sort_keys=True, separators=(",", ":"))


def bulk_insert(
    conn: sa.Connection, target: sa.Table, columns: Sequence[str], rows: list[Row]
) -> None:
    """Insert `rows` (values of `columns`, in order) as Core's executemany would store them, each
    value through its column type's own bind processor (so a time is stored exactly as the models
    store it), but through the driver: COPY on PostgreSQL, one prepared statement on SQLite.
    Core's per-row parameter handling is most of the time of millions of answers."""
    dialect = conn.dialect
    if not rows:
        return
    if dialect.name not in ("postgresql", "sqlite"):
        conn.execute(sa.insert(target), [dict(zip(columns, row, strict=True)) for row in rows])
        return
    processors = [
        (place, processor)
        for place, name in enumerate(columns)
        if (processor := target.c[name].type.dialect_impl(dialect).bind_processor(dialect))
    ]
    if processors:
        processed: list[Row] = []
        for row in rows:
            values = list(row)
            for place, processor in processors:
                values[place] = processor(values[place])
            processed.append(tuple(values))
        rows = processed
    names = ", ".join(columns)
    if dialect.name == "postgresql":
        cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        with cursor.copy(f"COPY {target.name} ({names}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
    else:
        marks = ", ".join("?" for _ in columns)
        conn.exec_driver_sql(f"INSERT INTO {target.name} ({names}) VALUES ({marks})", rows)  # noqa: S608
