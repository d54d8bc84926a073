"""The questionnaire as values: what the loader builds from the data files and the engine reads.

Everything here is immutable and carries no behaviour beyond look-ups. Texts are mappings from
language code to text ("en" always present). Option numbers (what the respondent types) and
scores (what scoring uses) are kept apart, so a council can rescore without renumbering.
Stable ids (items "GS01", headings "GS", question keys "GS01.skill") are the data contract.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Literal

Texts = Mapping[str, str]
"""Language code -> text."""

Aspect = Literal["access", "blocker", "skill", "interest"]
"""What a question asks about an item; each aspect has exactly one scale of the same id."""

Section = Literal["basics", "blockers", "skills"]


@dataclass(frozen=True)
class Option:
    number: int
    """What the respondent types or taps: 1, 2, 3…"""
    score: int
    label: Texts
    """The scale's full wording, for staff pages and exports."""
    sms: Texts
    """The short form shown in a question on a basic phone."""
    words: Mapping[str, tuple[str, ...]]
    """Extra words (per language) that choose this option, besides its number and letter."""


@dataclass(frozen=True)
class OptionPair:
    """Words that fit two neighbouring options of a scale ("yes" to "Do you have…?" may be
    "Usually" or "Always"): the respondent is asked which of the two they mean."""

    options: tuple[int, int]
    words: Mapping[str, tuple[str, ...]]
    """Per language."""


@dataclass(frozen=True)
class Scale:
    id: Aspect
    question: Texts
    """Template for a question on this scale; `{task}` is the item's SMS phrase."""
    options: tuple[Option, ...]
    pairs: tuple[OptionPair, ...] = ()

    @cached_property
    def max_score(self) -> int:
        return max(option.score for option in self.options)

    @cached_property
    def min_score(self) -> int:
        return min(option.score for option in self.options)

    def option(self, number: int) -> Option:
        try:
            return self._by_number[number]
        except KeyError:
            raise KeyError(f"scale {self.id} has no option {number}") from None

    @cached_property
    def _by_number(self) -> Mapping[int, Option]:
        return {option.number: option for option in self.options}


@dataclass(frozen=True)
class Heading:
    id: str
    """Two letters, e.g. "GS"; also the item id of the heading's quick-check questions."""
    title: Texts
    short: Texts
    """A plain short name for lists, e.g. in the priorities message (at most 30 characters)."""
    sms: Texts
    """The heading as a task phrase for quick-check questions ("{task}" in the scale template)."""
    intro: Texts
    """Said at the topic break before the heading's items in a full assessment."""


@dataclass(frozen=True)
class Item:
    id: str
    section: Section
    heading: str | None
    """Heading id for skills; None for basics and blockers."""
    title: Texts
    """The item's full wording, for staff pages and exports."""
    short: Texts
    """A plain short name for lists, e.g. in the priorities message (at most 30 characters)."""
    sms: Texts
    """The phrase put into its scale's question template for SMS."""
    outcome: str | None = None
    """An outcome flag name for impact exports (e.g. "bank_online"), if this item feeds one."""
    eds: str | None = None
    """The Essential Digital Skills Framework area a skill maps to (e.g. "Transacting")."""
    help: tuple[str, ...] = ()
    """Needs (`HELP_NEEDS`: "device", "data", "skills") a missing basic or a barrier shows, so
    the priorities message points to the council's help for them."""


@dataclass(frozen=True)
class Question:
    key: str
    """`{item}.{aspect}`, e.g. "GS01.skill", "GS.interest" (quick check), "BA01.access"."""
    item: str
    aspect: Aspect
    section: Section
    heading: str | None
    number: int
    """Progress number shown to the respondent in this mode; a follow-up interest question
    shares its skill question's number."""
    text: Texts
    """The question body (template filled in), without progress or options."""


@dataclass(frozen=True)
class TopicBreak:
    """A pause before a heading's items in a full assessment: carry on, or skip the topic."""

    key: str
    """`{heading}.topic`, e.g. "CM.topic"."""
    heading: str


@dataclass(frozen=True)
class SkillsChoice:
    """Before the skills, for a respondent missing a device or a connection: skip the skills
    (recorded as not asked) or answer them as if they had one."""

    key: str = "skills.basis"


Step = Question | TopicBreak | SkillsChoice
SKILLS_BASES = ("not_asked", "as_if")
"""What the skills choice records, by option: skipped for want of a device or connection, or
answered as if the respondent had one."""
HELP_NEEDS = ("device", "data", "skills")
"""The kinds of help a council can offer (its `help_device`, `help_data`, `help_skills`)."""


@dataclass(frozen=True)
class Mode:
    id: str
    """"quick" or "full"."""
    steps: tuple[Step, ...]
    """Every question (and topic break) the mode can ask, in order."""
    total: int
    """The largest progress number: what "5/22" divides by."""
    interest_if_skill_at_most: int | None
    """Ask a skill's interest only where its skill score is at most this (None: always)."""
    positions: Mapping[str, int]
    """Step key -> its index in `steps`."""

    @cached_property
    def batch_steps(self) -> tuple[Step, ...]:
        """The order a resident answering several at once is asked in: no topic breaks (the
        run's question names its topic, and SKIP skips it), and each heading's skills before
        its interest follow-ups, so each is one run on one scale."""
        first_of: dict[str, int] = {}
        for index, step in enumerate(self.steps):
            if isinstance(step, Question) and step.heading is not None:
                first_of.setdefault(step.heading, index)

        def order(entry: tuple[int, Step]) -> tuple[int, int, int]:
            index, step = entry
            if isinstance(step, Question) and step.heading is not None:
                return (first_of[step.heading], step.aspect == "interest", index)
            return (index, 0, index)

        ordered = sorted(enumerate(self.steps), key=order)
        return tuple(step for _, step in ordered if not isinstance(step, TopicBreak))


@dataclass(frozen=True)
class Prompt:
    """A numbered choice that is not a questionnaire question (consent, mode, resume…)."""

    key: str
    text: Texts
    options: tuple[Option, ...]


@dataclass(frozen=True)
class PriorityRule:
    formula: str
    """An arithmetic expression over `skill`, `interest` and `max` (the skill scale's maximum),
    e.g. "interest * (max - skill)"."""
    skill_at_most: int
    """A unit is a priority only when its skill score is at most this ("may need help"):
    someone confident at a thing has no priority there, however keen."""
    top: int
    """How many priorities the message names."""
    min_priority: int
    """A skill is a priority only when its formula value is at least this."""
    barrier_at_most: int
    """A blocker scored at most this is a barrier."""
    missing_basic_at_most: int
    """A basic scored at most this is missing."""
    no_interest_at_most: int
    """Interest scored at most this is no interest."""
    no_interest_blocker: str
    """The blocker (item id) that is a barrier when every low-skill unit whose interest was
    asked has no interest: lack of interest or motivation is a barrier in itself."""
    low_skill_help: str
    """The need (one of HELP_NEEDS) of a respondent with any skill at most `skill_at_most`."""


@dataclass(frozen=True)
class Flow:
    id: str
    version: str
    languages: tuple[str, ...]
    """Shipped languages; the first is the default."""
    scales: Mapping[str, Scale]
    headings: tuple[Heading, ...]
    items: tuple[Item, ...]
    modes: Mapping[str, Mode]
    prompts: Mapping[str, Prompt]
    messages: Mapping[str, Texts]
    """System texts by key (help, re-ask, pause…), already filled with council parameters."""
    commands: Mapping[str, Mapping[str, tuple[str, ...]]]
    """Command name ("help", "back"…) -> language -> the words that say it."""
    number_words: Mapping[str, tuple[tuple[str, ...], ...]]
    """Language -> the words for 1, 2, 3… in order, each with its forms (("dau", "dwy"))."""
    language_names: Texts
    """Language code -> the language's own name ("English", "Cymraeg")."""
    language_words: Mapping[str, tuple[str, ...]]
    """Language code -> replies that switch to it at any point ("cymraeg", "welsh")."""
    segment_budgets: Mapping[str, int]
    """Language code -> the most SMS segments one message may take in it."""
    priorities_budgets: Mapping[str, int]
    """Language code -> the most SMS segments the priorities message may take (it is sent
    once per assessment, and what the resident most needs is never dropped to save one)."""
    questions: Mapping[str, Question]
    """Every question of every mode by key (a key means the same question in every mode)."""
    priority: PriorityRule
    resume_after_days: int
    """A respondent silent this long mid-assessment is asked: carry on or start again?"""
    skills_choice_if_missing: tuple[str, ...] = ()
    """Basics (item ids) whose lack offers the skills choice (SkillsChoice) before the skills."""
    batch_budgets: Mapping[str, int] = field(default_factory=dict)
    """Language code -> the most SMS segments a run of questions asked in one text may take
    (several answers a text); a language without one uses `segment_budgets`."""

    def item(self, item_id: str) -> Item:
        try:
            return self._items_by_id[item_id]
        except KeyError:
            raise KeyError(f"flow {self.id} has no item {item_id}") from None

    def heading(self, heading_id: str) -> Heading:
        try:
            return self._headings_by_id[heading_id]
        except KeyError:
            raise KeyError(f"flow {self.id} has no heading {heading_id}") from None

    @cached_property
    def unit_headings(self) -> Mapping[str, str]:
        """Every skill unit id -> its heading id, in flow order: each heading (the unit a quick
        check answers), then that heading's items."""
        units: dict[str, str] = {}
        for heading in self.headings:
            units[heading.id] = heading.id
            units.update((item.id, heading.id) for item in self.items if item.heading == heading.id)
        return units

    @cached_property
    def option_scores(self) -> Mapping[str, tuple[str, str, Mapping[int, int]]]:
        """Question key -> its item, its aspect and each option number's score: what scoring
        reads every answer through."""
        return {
            key: (
                question.item,
                question.aspect,
                {option.number: option.score for option in self.scale_of(question).options},
            )
            for key, question in self.questions.items()
        }

    @cached_property
    def _items_by_id(self) -> Mapping[str, Item]:
        return {item.id: item for item in self.items}

    @cached_property
    def _headings_by_id(self) -> Mapping[str, Heading]:
        return {heading.id: heading for heading in self.headings}

    def question(self, key: str) -> Question:
        try:
            return self.questions[key]
        except KeyError:
            raise KeyError(f"flow {self.id} has no question {key}") from None

    def scale_of(self, question: Question) -> Scale:
        return self.scales[question.aspect]

    def text(self, key: str, language: str) -> str:
        texts = self.messages[key]
        return texts.get(language) or texts[self.languages[0]]
