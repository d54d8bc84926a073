"""Load a flow directory and refuse it, naming file, entry and problem, unless it is whole.

A flow directory holds `flow.toml` (id, version, scales, modes, priority rule, segment
budgets), `items.toml` (headings and items) and `messages.toml` (system texts, prompts,
commands, number words), written in English, and a gettext catalog per other language in
`locale/<lang>/LC_MESSAGES/messages.po` (see flows/catalog.py). The loader checks that ids
are unique and well formed, every reference is known, every text exists in every language,
placeholders are the expected ones, no word chooses two things, and every message a
respondent can receive is within its SMS budget: GSM-7 where the flow says so, and never
more segments than the language's budget.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from bot.matching import normalise
from bot.render import (
    batch_body,
    fill,
    join_lead,
    options_block,
    question_body,
    topic_counts,
    understood,
)
from flows.catalog import (
    SOURCE_LANGUAGE,
    CatalogError,
    catalogs,
    placeholders,
    source_texts,
    translate,
)
from flows.model import (
    HELP_NEEDS,
    Aspect,
    Flow,
    Heading,
    Item,
    Mode,
    Option,
    OptionPair,
    PriorityRule,
    Prompt,
    Question,
    Scale,
    Section,
    SkillsChoice,
    Step,
    Texts,
    TopicBreak,
)
from flows.segments import count_segments, is_gsm7

SHIPPED = Path(__file__).parent / "digital_inclusion"
MAX_SEGMENTS = 2
"""The default budget: the most SMS segments one message may take ([segments] default)."""
SHORT_MAX_CHARS = 30
ASPECTS: tuple[Aspect, ...] = ("access", "blocker", "skill", "interest")
SECTION_ASPECTS: Mapping[Section, tuple[Aspect, ...]] = {
    "basics": ("access",),
    "blockers": ("blocker",),
    "skills": ("skill", "interest"),
}
COMMANDS = ("help", "back", "skip", "repeat", "later", "restart", "stop", "start", "opt_in")
ONLY_WHILE_OPTED_OUT = frozenset({"opt_in"})
"""Commands that mean something only to a respondent who has opted out (Twilio's YES)."""
PROMPTS = ("consent", "mode", "topic", "skills", "resume", "restart", "checkin")
PROMPT_MEANINGS: Mapping[str, tuple[str, ...]] = {
    "consent": ("agree", "decline"),
    "mode": ("quick check", "full assessment", "full assessment, several answers a text"),
    "topic": ("carry on", "skip the topic"),
    "skills": ("skip the skills", "answer them as if"),
    "resume": ("carry on", "start again"),
    "restart": ("start again", "carry on"),
    "checkin": ("start the check-in", "not yet"),
}
"""What the engine does with each option of each prompt, in order."""
QUESTION_PROMPTS = frozenset({"topic", "skills"})
"""Prompts shown among the questions, so question leads ("Got it.") can stand before them."""
LANGUAGE_PROMPT = "language"
"""Built from every language's `language_prompt` message and name, not written in data."""
COUNCIL_KEYS = (
    "council",
    "privacy_url",
    "helpline",
    "signposting",
    "help_device",
    "help_data",
    "help_skills",
)
COUNCIL_SETTING = {"council": "name"}
"""A council placeholder's name in [council] where it differs ({council} is `name`)."""
COUNCIL_PLACEHOLDER = re.compile(r"\{(\w+)\}")
ITEM_ID = re.compile(r"^[A-Z]{2}\d{2}$")
HEADING_ID = re.compile(r"^[A-Z]{2}$")
LEADS = (
    "ack",
    "reminder",
    "skipped",
    "auto_skip",
    "back",
    "back_nothing",
    "welcome_back",
    "stale_button",
    "media_only",
    "cannot_skip",
    "restarting",
    "section_blockers",
    "section_skills",
    "language_changed",
    "edited",
    "lost_place",
)
"""Messages that stand before a question or prompt in the same SMS ("which" too, filled)."""
PROMPT_ONLY_LEADS = frozenset({"cannot_skip", "restarting", "lost_place"})
"""Leads said only before a numbered prompt (consent, mode…), never before a question."""
QUESTION_ONLY_LEADS = frozenset(
    {
        "ack",
        "skipped",
        "auto_skip",
        "back",
        "section_blockers",
        "section_skills",
        "edited",
        "reminder",
    }
)
"""Leads said only once questions have begun (a topic break counts as a question here)."""
REASKS = ("reask", "offer_skip")
WHICH = "which"
"""The lead that asks which of two options a reply meant."""
WHOLE = ("help", "later", "declined", "opted_out", "done_again", "checkin_later")
BATCH_QUESTIONS = ("batch_access", "batch_blocker", "batch_skill", "batch_interest")
"""A run's question, per scale (several answers a text)."""
BATCH_PARTS = ("batch_reply", "batch_reply_one", "batch_change")
BATCH_LEADS = ("batch_got", "batch_too_many")
"""Said before a run's question (or the next prompt) in the same SMS."""
PROMPT_PARTS = ("language_prompt", "invitation")
"""Messages that are parts of a prompt rather than messages of their own."""
PRIORITY_MESSAGES = (
    "priorities_intro",
    "priorities_first_basics",
    "priorities_first_barriers",
    "priorities_learn_items",
    "priorities_learn_topics",
    "priorities_item",
    "priorities_none",
    "priorities_unclear",
    "priorities_help_device",
    "priorities_help_data",
    "priorities_help_skills",
    "priorities_end",
    "priorities_checkin",
    "change_better_one",
    "change_better_many",
    "change_worse",
    "change_same",
    "list_and",
)
"""The parts of the priorities message (scoring/message.py puts them together)."""
RUNTIME_PLACEHOLDERS: Mapping[str, frozenset[str]] = {
    "progress": frozenset({"n", "total"}),
    "reask": frozenset({"max"}),
    "offer_skip": frozenset({"max"}),
    "which": frozenset({"first", "second"}),
    "priorities_first_basics": frozenset({"basics"}),
    "priorities_first_barriers": frozenset({"barriers"}),
    "priorities_item": frozenset({"rank", "name"}),
    "priorities_checkin": frozenset({"date"}),
    "change_better_one": frozenset({"since"}),
    "change_better_many": frozenset({"n", "since"}),
    "change_worse": frozenset({"since"}),
    "change_same": frozenset({"since"}),
    "list_and": frozenset({"first", "last"}),
    "batch_reply": frozenset({"count", "example"}),
    "batch_change": frozenset({"count", "example"}),
    "batch_got": frozenset({"answers"}),
    "batch_too_many": frozenset({"sent", "count"}),
}
PROMPT_PLACEHOLDERS: Mapping[str, frozenset[str]] = {
    "topic": frozenset({"topic", "skills", "questions"}),
    "resume": frozenset({"n", "total"}),
    "checkin": frozenset({"questions"}),
}
PROMPT_OPTION_PLACEHOLDERS = frozenset({"quick_total", "full_min", "full_max"})
TASK = frozenset({"task"})
FILE_KEYS: Mapping[str, frozenset[str]] = {
    "flow.toml": frozenset(
        {
            "id",
            "version",
            "language",
            "segments",
            "gsm7_languages",
            "resume_after_days",
            "priority",
            "modes",
            "scales",
            "skills_choice",
        }
    ),
    "items.toml": frozenset({"headings", "items"}),
    "messages.toml": frozenset({"messages", "prompts", "commands", "number_words"}),
}
HEADING_KEYS = frozenset({"id", "title", "short", "sms", "intro"})
ITEM_KEYS = frozenset(
    {"id", "section", "heading", "title", "short", "sms", "outcome", "eds", "help"}
)
OPTION_KEYS = frozenset({"number", "score", "label", "sms", "words"})
MODE_KEYS = frozenset({"skills", "interest_if_skill_at_most"})
PRIORITY_NUMBERS = (
    "skill_at_most",
    "top",
    "min_priority",
    "barrier_at_most",
    "missing_basic_at_most",
    "no_interest_at_most",
)
PRIORITY_KEYS = ("formula", *PRIORITY_NUMBERS, "no_interest_blocker", "low_skill_help")


class FlowError(ValueError):
    """The flow data is unusable; the message names the file, the entry and the problem."""


@dataclass(frozen=True)
class _Source:
    """One parsed data file, and the way to blame it."""

    path: Path
    data: dict[str, Any]

    def fail(self, where: str, problem: str) -> FlowError:
        return FlowError(f"{self.path.name}: {where}: {problem}")

    def table(self, where: str, value: Any) -> dict[str, Any]:
        """`value` as a TOML table; None (absent) reads as an empty one."""
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise self.fail(where, "must be a table")
        return value

    def tables(self, where: str, value: Any) -> list[dict[str, Any]]:
        """`value` as an array of tables ([[...]]); None (absent) reads as an empty one."""
        if value is None:
            return []
        if not isinstance(value, list) or not all(isinstance(entry, dict) for entry in value):
            raise self.fail(where, "must be an array of tables, each written [[...]]")
        return value

    def only_keys(self, where: str, raw: Mapping[str, Any], known: frozenset[str]) -> None:
        unknown = set(raw) - known
        if unknown:
            raise self.fail(where, f"unknown keys {sorted(unknown)} (known: {sorted(known)})")


def _read(directory: Path, name: str) -> _Source:
    path = directory / name
    try:
        with path.open("rb") as handle:
            source = _Source(path, tomllib.load(handle))
    except FileNotFoundError:
        raise FlowError(f"{name}: missing from flow directory {directory}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise FlowError(f"{name}: not valid TOML: {error}") from None
    source.only_keys("top level", source.data, FILE_KEYS[name])
    return source


class _Loader:
    def __init__(
        self, directory: Path, council: Mapping[str, str], only: Sequence[str] | None
    ) -> None:
        self.flow_src = _read(directory, "flow.toml")
        self.items_src = _read(directory, "items.toml")
        self.messages_src = _read(directory, "messages.toml")
        found = catalogs(directory)
        wanted = list(only) if only else [SOURCE_LANGUAGE, *found]
        missing = [lang for lang in wanted if lang != SOURCE_LANGUAGE and lang not in found]
        if missing:
            raise FlowError(
                f"locale: no catalog for {missing} (have: {[SOURCE_LANGUAGE, *found]}); "
                f"add locale/<lang>/LC_MESSAGES/messages.po"
            )
        if SOURCE_LANGUAGE not in wanted:
            wanted.insert(0, SOURCE_LANGUAGE)
        self.languages: tuple[str, ...] = tuple(dict.fromkeys(wanted))
        english = [
            text
            for src in (self.flow_src, self.items_src, self.messages_src)
            for text in source_texts(src.path.name, src.data)
        ]
        for language in self.languages[1:]:
            shown = f"locale/{language}/LC_MESSAGES/messages.po"
            try:
                translate(english, language, found[language], shown)
            except CatalogError as error:
                raise FlowError(str(error)) from None
        self.council = council_values(council, self.languages)
        self.budgets = self.segment_budgets()
        self.priorities_budgets = self.segment_budgets("priorities")
        self.batch_budgets = self.segment_budgets("batch")
        gsm7 = self.flow_src.data.get("gsm7_languages", [SOURCE_LANGUAGE])
        if not isinstance(gsm7, list) or not all(isinstance(lang, str) for lang in gsm7):
            raise self.flow_src.fail("gsm7_languages", "must be a list of language codes")
        self.gsm7_languages: frozenset[str] = frozenset(gsm7) & frozenset(self.languages)

    def segment_budgets(self, message: str | None = None) -> dict[str, int]:
        """Per language, the most segments a message may take: `[segments]`, or for one
        `message` with a budget of its own `[segments.<message>]` (default: `[segments]`)."""
        src = self.flow_src
        raw = src.table("segments", src.data.get("segments"))
        where = "segments"
        fallback: Mapping[str, int] = {}
        if message is not None:
            fallback, where = self.budgets, f"segments.{message}"
            raw = src.table(where, raw.get(message))
        budgets: dict[str, int] = {}
        for language in self.languages:
            value = raw.get(language, raw.get("default", fallback.get(language, MAX_SEGMENTS)))
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise src.fail(f"{where}.{language}", "must be a whole number of segments")
            budgets[language] = value
        return budgets

    # --- small readers -------------------------------------------------------------------

    def texts(
        self,
        src: _Source,
        where: str,
        value: Any,
        allowed: frozenset[str] = frozenset(),
        *,
        sent: bool = True,
    ) -> Texts:
        """A text in every shipped language, council placeholders filled in.

        `allowed` are the placeholders filled later; `sent` texts reach respondents, so they
        must be GSM-7 in the flow's GSM-7 languages (titles and labels are for staff).
        """
        if value is None:
            raise src.fail(where, f"no {self.languages[0]} text")
        if not isinstance(value, dict):
            raise src.fail(where, 'must be a table of language -> text, e.g. en = "..."')
        extra = set(value) - set(self.languages)
        if extra:
            raise src.fail(where, f"text in languages the flow does not ship: {sorted(extra)}")
        result: dict[str, str] = {}
        found: dict[str, frozenset[str]] = {}
        for language in self.languages:
            text = value.get(language)
            if not isinstance(text, str) or not text.strip():
                raise src.fail(where, f"no {language} text")
            if text != text.strip():
                raise src.fail(where, f"{language} text has leading or trailing spaces")
            if sent and language in self.gsm7_languages and not is_gsm7(text):
                bad = sorted({char for char in text if not is_gsm7(char)})
                raise src.fail(where, f"{language} text is not GSM-7 (characters {bad})")
            try:
                found[language] = placeholders(text)
            except ValueError:
                raise src.fail(
                    where, f"{language} text has an unmatched {{ or }} (write {{{{ for a brace)"
                ) from None
            unknown = found[language] - allowed - set(COUNCIL_KEYS)
            if unknown:
                known = sorted(allowed | set(COUNCIL_KEYS))
                raise src.fail(
                    where,
                    f"{language} text has unknown placeholders {sorted(unknown)} (known: {known})",
                )
            result[language] = self.fill_council(text, language)
        if len(set(found.values())) > 1:
            raise src.fail(where, "placeholders differ between languages")
        return result

    def fill_council(self, text: str, language: str) -> str:
        """The council's values in `language` where it gave them ("signposting.cy"), else
        its default ones."""
        for key in COUNCIL_KEYS:
            text = text.replace("{" + key + "}", self.council[key, language])
        return text

    def short(self, src: _Source, where: str, value: Any) -> Texts:
        texts = self.texts(src, where, value)
        for language, text in texts.items():
            if len(text) > SHORT_MAX_CHARS:
                raise src.fail(
                    where, f"{language} text is {len(text)} characters, over {SHORT_MAX_CHARS}"
                )
        return texts

    def word_lists(self, src: _Source, where: str, value: Any) -> Mapping[str, tuple[str, ...]]:
        table = src.table(where, value)
        result: dict[str, tuple[str, ...]] = {}
        for language in self.languages:
            words = table.get(language, [])
            if not isinstance(words, list) or not all(isinstance(w, str) and w for w in words):
                raise src.fail(where, f"{language} words must be a list of non-empty strings")
            result[language] = tuple(words)
        return result

    def options(
        self, src: _Source, where: str, value: Any, allowed: frozenset[str], *, scored: bool
    ) -> tuple[Option, ...]:
        entries = src.tables(f"{where} options", value)
        if len(entries) < 2:
            raise src.fail(where, "needs at least two options")
        options = []
        for number, raw in enumerate(entries, start=1):
            at = f"{where} option {number}"
            src.only_keys(at, raw, OPTION_KEYS)
            if raw.get("number") != number:
                raise src.fail(at, f"number must be {number} (options are numbered 1, 2, 3...)")
            score = raw.get("score")
            if scored and (not isinstance(score, int) or isinstance(score, bool)):
                raise src.fail(at, "needs a whole-number score")
            sms = self.texts(src, f"{at} sms", raw.get("sms"), allowed)
            label = raw.get("label")
            if label is not None:
                label = self.texts(src, f"{at} label", label, sent=False)
            options.append(
                Option(
                    number=number,
                    score=score if isinstance(score, int) else number - 1,
                    label=sms if label is None else label,
                    sms=sms,
                    words=self.word_lists(src, f"{at} words", raw.get("words")),
                )
            )
        return tuple(options)

    # --- flow.toml -----------------------------------------------------------------------

    def scales(self) -> dict[str, Scale]:
        src = self.flow_src
        raw = src.table("scales", src.data.get("scales"))
        unknown = set(raw) - set(ASPECTS)
        if unknown:
            raise src.fail("scales", f"unknown scales {sorted(unknown)} (known: {list(ASPECTS)})")
        scales: dict[str, Scale] = {}
        for aspect in ASPECTS:
            where = f"scales.{aspect}"
            if aspect not in raw:
                raise src.fail(where, "missing")
            data = src.table(where, raw[aspect])
            src.only_keys(where, data, frozenset({"question", "options", "pairs"}))
            question = self.texts(src, f"{where} question", data.get("question"), TASK)
            if any("{task}" not in text for text in question.values()):
                raise src.fail(f"{where} question", "must contain {task}")
            options = self.options(src, where, data.get("options"), frozenset(), scored=True)
            pairs = self.pairs(src, where, data.get("pairs"), len(options))
            scales[aspect] = Scale(aspect, question, options, pairs)
        if scales["skill"].max_score != scales["interest"].max_score:
            raise src.fail("scales", "skill and interest must share a maximum score")
        return scales

    def pairs(
        self, src: _Source, where: str, value: Any, option_count: int
    ) -> tuple[OptionPair, ...]:
        """Words that fit two options of a scale, so the respondent is asked which."""
        pairs = []
        for index, raw in enumerate(src.tables(f"{where} pairs", value), start=1):
            at = f"{where} pair {index}"
            src.only_keys(at, raw, frozenset({"options", "words"}))
            numbers = raw.get("options")
            if (
                not isinstance(numbers, list)
                or len(numbers) != 2
                or not all(isinstance(n, int) and 1 <= n <= option_count for n in numbers)
                or numbers[0] == numbers[1]
            ):
                raise src.fail(
                    at, f"options must be two different numbers from 1 to {option_count}"
                )
            words = self.word_lists(src, f"{at} words", raw.get("words"))
            pairs.append(OptionPair((numbers[0], numbers[1]), words))
        return tuple(pairs)

    def modes(
        self, scales: Mapping[str, Scale], headings: tuple[Heading, ...], items: tuple[Item, ...]
    ) -> dict[str, Mode]:
        src = self.flow_src
        raw = src.table("modes", src.data.get("modes"))
        if set(raw) != {"quick", "full"}:
            raise src.fail("modes", "must define exactly [modes.quick] and [modes.full]")
        modes: dict[str, Mode] = {}
        for mode_id, value in raw.items():
            where = f"modes.{mode_id}"
            data = src.table(where, value)
            src.only_keys(where, data, MODE_KEYS)
            skills = data.get("skills")
            if skills not in ("headings", "items"):
                raise src.fail(f"{where}.skills", 'must be "headings" or "items"')
            threshold = data.get("interest_if_skill_at_most")
            if threshold is not None and (
                not isinstance(threshold, int) or isinstance(threshold, bool)
            ):
                raise src.fail(f"{where}.interest_if_skill_at_most", "must be a whole number")
            steps = tuple(
                self.steps(
                    scales,
                    headings,
                    items,
                    by_heading=skills == "headings",
                    choice=bool(self.skills_choice(items)),
                )
            )
            modes[mode_id] = Mode(
                id=mode_id,
                steps=steps,
                total=max(step.number for step in steps if isinstance(step, Question)),
                interest_if_skill_at_most=threshold,
                positions={step.key: index for index, step in enumerate(steps)},
            )
        return modes

    def steps(
        self,
        scales: Mapping[str, Scale],
        headings: tuple[Heading, ...],
        items: tuple[Item, ...],
        *,
        by_heading: bool,
        choice: bool,
    ) -> Iterator[Step]:
        """Basics and blockers, then (with `choice`) the skills choice for a respondent missing
        a device or a connection, then the skills: per heading (quick) or per item (full).

        Questions are numbered as the respondent sees them; a skill's interest question
        shares its skill question's number in a full assessment.
        """

        def ask(number: int, item: Item | Heading, aspect: Aspect) -> Question:
            template = scales[aspect].question
            text = {
                lang: template[lang].replace("{task}", item.sms[lang]) for lang in self.languages
            }
            if isinstance(item, Heading):
                section: Section = "skills"
                heading: str | None = item.id
            else:
                section, heading = item.section, item.heading
            return Question(f"{item.id}.{aspect}", item.id, aspect, section, heading, number, text)

        number = 0
        for item in items:
            if item.section != "skills":
                number += 1
                (aspect,) = SECTION_ASPECTS[item.section]
                yield ask(number, item, aspect)
        if choice:
            yield SkillsChoice()
        for heading in headings:
            if by_heading:
                for aspect in SECTION_ASPECTS["skills"]:
                    number += 1
                    yield ask(number, heading, aspect)
                continue
            yield TopicBreak(f"{heading.id}.topic", heading.id)
            for item in items:
                if item.heading == heading.id:
                    number += 1
                    for aspect in SECTION_ASPECTS["skills"]:
                        yield ask(number, item, aspect)

    def skills_choice(self, items: tuple[Item, ...]) -> tuple[str, ...]:
        """The basics whose lack offers the skills choice ([skills_choice] if_missing)."""
        src = self.flow_src
        raw = src.table("skills_choice", src.data.get("skills_choice"))
        src.only_keys("skills_choice", raw, frozenset({"if_missing"}))
        basics = [item.id for item in items if item.section == "basics"]
        chosen = raw.get("if_missing", [])
        if not isinstance(chosen, list) or not all(b in basics for b in chosen):
            raise src.fail("skills_choice.if_missing", f"must be a list of basics (of {basics})")
        return tuple(chosen)

    def priority(self, items: tuple[Item, ...], modes: Mapping[str, Mode]) -> PriorityRule:
        src = self.flow_src
        raw = src.table("priority", src.data.get("priority"))
        src.only_keys("priority", raw, frozenset(PRIORITY_KEYS))
        for key in PRIORITY_KEYS:
            if key not in raw:
                raise src.fail("priority", f"missing {key}")
        for key in PRIORITY_NUMBERS:
            if not isinstance(raw[key], int) or isinstance(raw[key], bool):
                raise src.fail(f"priority.{key}", "must be a whole number")
        blockers = [item.id for item in items if item.section == "blockers"]
        if raw["no_interest_blocker"] not in blockers:
            raise src.fail("priority.no_interest_blocker", f"must be a blocker (one of {blockers})")
        if raw["low_skill_help"] not in HELP_NEEDS:
            raise src.fail("priority.low_skill_help", f"must be one of {list(HELP_NEEDS)}")
        for mode in modes.values():
            asked = mode.interest_if_skill_at_most
            if asked is not None and asked < raw["skill_at_most"]:
                # interest unasked counts as none: the modes would disagree on priorities
                raise src.fail(
                    f"modes.{mode.id}.interest_if_skill_at_most",
                    f"must be at least priority.skill_at_most ({raw['skill_at_most']}), or "
                    "a skill that can be a priority would never have its interest asked",
                )
        from scoring.formula import FormulaError, compile_formula  # scoring imports this module

        try:
            compile_formula(str(raw["formula"]))
        except FormulaError as error:
            raise src.fail("priority.formula", str(error)) from None
        return PriorityRule(
            formula=str(raw["formula"]),
            skill_at_most=raw["skill_at_most"],
            top=raw["top"],
            min_priority=raw["min_priority"],
            barrier_at_most=raw["barrier_at_most"],
            missing_basic_at_most=raw["missing_basic_at_most"],
            no_interest_at_most=raw["no_interest_at_most"],
            no_interest_blocker=raw["no_interest_blocker"],
            low_skill_help=raw["low_skill_help"],
        )

    # --- items.toml ----------------------------------------------------------------------

    def headings(self) -> tuple[Heading, ...]:
        src = self.items_src
        headings: list[Heading] = []
        for index, raw in enumerate(src.tables("headings", src.data.get("headings")), start=1):
            heading_id = raw.get("id")
            where = f"heading {heading_id}" if heading_id else f"heading number {index}"
            if not isinstance(heading_id, str) or not HEADING_ID.match(heading_id):
                raise src.fail(where, "id must be two capital letters")
            if any(heading.id == heading_id for heading in headings):
                raise src.fail(where, "duplicate heading id")
            src.only_keys(where, raw, HEADING_KEYS)
            headings.append(
                Heading(
                    id=heading_id,
                    title=self.texts(src, f"{where} title", raw.get("title"), sent=False),
                    short=self.short(src, f"{where} short", raw.get("short")),
                    sms=self.texts(src, f"{where} sms", raw.get("sms")),
                    intro=self.texts(src, f"{where} intro", raw.get("intro")),
                )
            )
        if not headings:
            raise src.fail("headings", "none defined")
        return tuple(headings)

    def items(self, headings: tuple[Heading, ...]) -> tuple[Item, ...]:
        src = self.items_src
        heading_ids = [heading.id for heading in headings]
        items: list[Item] = []
        for index, raw in enumerate(src.tables("items", src.data.get("items")), start=1):
            item_id = raw.get("id")
            where = f"item {item_id}" if item_id else f"item number {index}"
            if not isinstance(item_id, str) or not ITEM_ID.match(item_id):
                raise src.fail(where, "id must be two capital letters and two digits")
            if any(item.id == item_id for item in items):
                raise src.fail(where, "duplicate item id")
            src.only_keys(where, raw, ITEM_KEYS)
            section = raw.get("section")
            if section not in SECTION_ASPECTS:
                raise src.fail(
                    where, f"unknown section {section!r} (known: {list(SECTION_ASPECTS)})"
                )
            heading = raw.get("heading")
            if section == "skills" and heading not in heading_ids:
                raise src.fail(where, f"unknown heading {heading!r} (known: {heading_ids})")
            if section != "skills" and heading is not None:
                raise src.fail(where, "only skills have a heading")
            if item_id[:2] in heading_ids and heading != item_id[:2]:
                raise src.fail(where, f"id prefix {item_id[:2]} names another heading")
            outcome = raw.get("outcome")
            if outcome is not None and not (isinstance(outcome, str) and outcome.isidentifier()):
                raise src.fail(where, "outcome must be a snake_case name")
            eds = raw.get("eds")
            if section == "skills" and not (isinstance(eds, str) and eds.strip()):
                raise src.fail(where, "needs eds: its Essential Digital Skills Framework area")
            if section != "skills" and eds is not None:
                raise src.fail(where, "only skills have an eds area")
            needs = raw.get("help", [])
            if not isinstance(needs, list) or not all(need in HELP_NEEDS for need in needs):
                raise src.fail(where, f"help must be a list of needs from {list(HELP_NEEDS)}")
            if section == "skills" and needs:
                raise src.fail(where, "only basics and blockers call for help by name")
            items.append(
                Item(
                    id=item_id,
                    section=cast(Section, section),
                    heading=heading,
                    title=self.texts(src, f"{where} title", raw.get("title"), sent=False),
                    short=self.short(src, f"{where} short", raw.get("short")),
                    sms=self.texts(src, f"{where} sms", raw.get("sms")),
                    outcome=outcome,
                    eds=eds,
                    help=tuple(needs),
                )
            )
        for section in SECTION_ASPECTS:
            if not any(item.section == section for item in items):
                raise src.fail(f"section {section}", "has no items")
        for heading_id in heading_ids:
            if not any(item.heading == heading_id for item in items):
                raise src.fail(f"heading {heading_id}", "has no items")
        return tuple(items)

    # --- messages.toml -------------------------------------------------------------------

    def messages(self) -> dict[str, Texts]:
        src = self.messages_src
        raw = src.table("messages", src.data.get("messages"))
        messages: dict[str, Texts] = {}
        for key in (
            "progress",
            *LEADS,
            *REASKS,
            WHICH,
            *WHOLE,
            *PRIORITY_MESSAGES,
            *PROMPT_PARTS,
            *BATCH_QUESTIONS,
            *BATCH_PARTS,
            *BATCH_LEADS,
        ):
            allowed = RUNTIME_PLACEHOLDERS.get(key, frozenset())
            texts = self.texts(src, f"messages.{key}", raw.get(key), allowed)
            missing = {name for text in texts.values() for name in allowed - placeholders(text)}
            if missing:
                raise src.fail(f"messages.{key}", f"must use placeholders {sorted(missing)}")
            messages[key] = texts
        unknown = set(raw) - set(messages)
        if unknown:
            raise src.fail("messages", f"unknown messages {sorted(unknown)}")
        return messages

    def prompts(self, counts: Mapping[str, int]) -> dict[str, Prompt]:
        src = self.messages_src
        raw = src.table("prompts", src.data.get("prompts"))
        unknown = set(raw) - set(PROMPTS)
        if unknown:
            raise src.fail("prompts", f"unknown prompts {sorted(unknown)} (known: {PROMPTS})")
        prompts: dict[str, Prompt] = {}
        for key in PROMPTS:
            where = f"prompts.{key}"
            if key not in raw:
                raise src.fail(where, "missing")
            data = src.table(where, raw[key])
            src.only_keys(where, data, frozenset({"text", "options"}))
            allowed = PROMPT_PLACEHOLDERS.get(key, frozenset())
            text = self.texts(src, f"{where} text", data.get("text"), allowed)
            options = self.options(
                src, where, data.get("options"), PROMPT_OPTION_PLACEHOLDERS, scored=False
            )
            if len(options) != len(PROMPT_MEANINGS[key]):
                meanings = ", ".join(
                    f"{n} {meaning}" for n, meaning in enumerate(PROMPT_MEANINGS[key], start=1)
                )
                raise src.fail(
                    where, f"must have exactly {len(PROMPT_MEANINGS[key])} options: {meanings}"
                )
            prompts[key] = Prompt(key, text, tuple(_fill_counts(o, counts) for o in options))
        return prompts

    def commands(self) -> dict[str, Mapping[str, tuple[str, ...]]]:
        src = self.messages_src
        raw = src.table("commands", src.data.get("commands"))
        unknown = set(raw) - set(COMMANDS)
        if unknown:
            raise src.fail("commands", f"unknown commands {sorted(unknown)} (known: {COMMANDS})")
        commands: dict[str, Mapping[str, tuple[str, ...]]] = {}
        for name in COMMANDS:
            words = self.word_lists(src, f"commands.{name}", raw.get(name))
            for language, listed in words.items():
                if not listed:
                    raise src.fail(f"commands.{name}", f"no {language} words")
            commands[name] = words
        return commands

    def number_words(self) -> dict[str, tuple[tuple[str, ...], ...]]:
        """Per language, the words for 1, 2, 3…; each a word or a list of its forms."""
        src = self.messages_src
        table = src.table("number_words", src.data.get("number_words"))
        result: dict[str, tuple[tuple[str, ...], ...]] = {}
        for language in self.languages:
            numbers = table.get(language)
            if not isinstance(numbers, list) or not numbers:
                raise src.fail("number_words", f"no {language} words")
            forms: list[tuple[str, ...]] = []
            for index, entry in enumerate(numbers, start=1):
                words = [entry] if isinstance(entry, str) else entry
                if (
                    not isinstance(words, list)
                    or not words
                    or not all(isinstance(word, str) and word for word in words)
                ):
                    raise src.fail(f"number_words.{index}", f"no {language} word")
                forms.append(tuple(words))
            result[language] = tuple(forms)
        return result

    def language_prompt(
        self, messages: Mapping[str, Texts], names: Texts, words: Mapping[str, tuple[str, ...]]
    ) -> Prompt:
        """ "Choose your language / Dewiswch eich iaith" with a numbered option per language."""
        text = " / ".join(messages["language_prompt"][language] for language in self.languages)
        options = tuple(
            Option(
                number=number,
                score=number - 1,
                label=dict.fromkeys(self.languages, names[language]),
                sms=dict.fromkeys(self.languages, names[language]),
                words=dict.fromkeys(self.languages, words[language]),
            )
            for number, language in enumerate(self.languages, start=1)
        )
        return Prompt(LANGUAGE_PROMPT, dict.fromkeys(self.languages, text), options)

    # --- the whole flow ------------------------------------------------------------------

    def load(self) -> Flow:
        src = self.flow_src
        data = src.data
        for key in ("id", "version"):
            if not isinstance(data.get(key), str) or not data[key]:
                raise src.fail(key, "must be a non-empty string")
        resume_after_days = data.get("resume_after_days")
        if not isinstance(resume_after_days, int) or resume_after_days < 1:
            raise src.fail("resume_after_days", "must be a whole number of days")
        scales = self.scales()
        headings = self.headings()
        items = self.items(headings)
        modes = self.modes(scales, headings, items)
        questions: dict[str, Question] = {}
        for mode in modes.values():
            for step in mode.steps:
                if isinstance(step, Question) and questions.setdefault(step.key, step) != step:
                    raise src.fail(
                        f"question {step.key}", "differs between modes (same key, other number)"
                    )
        language = src.table("language", data.get("language"))
        src.only_keys("language", language, frozenset({"name", "words"}))
        names = self.texts(src, "language.name", language.get("name"))
        switch_words = self.word_lists(src, "language.words", language.get("words"))
        messages = self.messages()
        prompts = self.prompts(question_counts(modes))
        prompts[LANGUAGE_PROMPT] = self.language_prompt(messages, names, switch_words)
        flow = Flow(
            id=data["id"],
            version=data["version"],
            languages=self.languages,
            scales=scales,
            headings=headings,
            items=items,
            modes=modes,
            prompts=prompts,
            messages=messages,
            commands=self.commands(),
            number_words=self.number_words(),
            questions=questions,
            priority=self.priority(items, modes),
            resume_after_days=resume_after_days,
            skills_choice_if_missing=self.skills_choice(items),
            priorities_budgets=self.priorities_budgets,
            language_names=names,
            language_words=switch_words,
            segment_budgets=self.budgets,
            batch_budgets=self.batch_budgets,
        )
        self.check_words(flow)
        check_budgets(flow, self.gsm7_languages)
        return flow

    def check_words(self, flow: Flow) -> None:
        """No reply may choose two options of one scale or prompt, or be a command as well.

        An option is chosen by its number, its letter (a, b, c...), its number words and its
        own words (its SMS text among them) in any of the flow's languages; commands and
        language names win over answers, so an answer word that is one could never be chosen.
        """
        reserved = {
            normalise(word): f"the command {name!r}"
            for name, words in flow.commands.items()
            if name not in ONLY_WHILE_OPTED_OUT
            for language in flow.languages
            for word in words[language]
        }
        for language in flow.languages:
            for word in flow.language_words[language]:
                if normalise(word) in reserved:
                    raise self.flow_src.fail(
                        "language.words",
                        f"{language} word {word!r} is also {reserved[normalise(word)]}",
                    )
                reserved[normalise(word)] = f"the language {language!r}"
        groups = [
            (self.flow_src, f"scales.{s.id}", s.options, s.pairs) for s in flow.scales.values()
        ]
        groups += [
            (self.messages_src, f"prompts.{p.key}", p.options, ())
            for p in flow.prompts.values()
            if p.key != LANGUAGE_PROMPT
        ]
        for language in flow.languages:
            for src, where, options, pairs in groups:
                owner: dict[str, int] = {}
                for option in options:
                    owner[str(option.number)] = option.number
                    owner[chr(ord("a") + option.number - 1)] = option.number
                    numbers = flow.number_words.get(language, ())
                    if option.number <= len(numbers):
                        for form in numbers[option.number - 1]:
                            owner[normalise(form)] = option.number
                for option in options:
                    for word in (*option.words[language], option.sms[language]):
                        key = normalise(word)
                        if owner.setdefault(key, option.number) != option.number:
                            raise src.fail(
                                f"{where} option {option.number}",
                                f"{language} word {word!r} also chooses option {owner[key]}",
                            )
                        if key in reserved:
                            raise src.fail(
                                f"{where} option {option.number}",
                                f"{language} word {word!r} is also {reserved[key]}",
                            )
                for index, pair in enumerate(pairs, start=1):
                    for word in pair.words[language]:
                        key = normalise(word)
                        taken = reserved.get(key, "")
                        if key in owner:
                            chosen = owner[key]
                            taken = f"a word of option {chosen}" if chosen else "in another pair"
                        if taken:
                            raise src.fail(
                                f"{where} pair {index}",
                                f"{language} word {word!r} is also {taken}",
                            )
                        owner[key] = 0


def _fill_counts(option: Option, counts: Mapping[str, int]) -> Option:
    """A prompt option with its question counts ({quick_total}, {full_min}…) filled in."""

    def filled(texts: Texts) -> Texts:
        return {language: fill(text, **counts) for language, text in texts.items()}

    return Option(
        option.number, option.score, filled(option.label), filled(option.sms), option.words
    )


def question_counts(modes: Mapping[str, Mode]) -> dict[str, int]:
    """What the mode prompt says of each mode's length: {quick_total} questions in a quick
    check; {full_min} (no interest follow-up asked) to {full_max} (every one) in a full one."""
    quick, full = modes["quick"], modes["full"]
    return {
        "quick_total": quick.total,
        "full_min": full.total,
        "full_max": sum(isinstance(step, Question) for step in full.steps),
    }


def council_values(
    council: Mapping[str, str], languages: Sequence[str]
) -> dict[tuple[str, str], str]:
    """(key, language) -> the council's text for every council placeholder and language: the
    one given in that language ("signposting.cy"), else the default one, with the council's
    own placeholders in it filled ("Free help: {helpline}"). A placeholder that names no
    council text, or one whose value has placeholders of its own, is refused by name."""
    values: dict[tuple[str, str], str] = {}
    for language in languages:
        given = {
            key: council.get(f"{key}.{language}") or council.get(key, "") for key in COUNCIL_KEYS
        }
        for key, text in given.items():
            translated = bool(council.get(f"{key}.{language}"))
            where = f"[council.{language}]" if translated else "[council]"
            setting = COUNCIL_SETTING.get(key, key)
            for name in COUNCIL_PLACEHOLDER.findall(text):
                if name not in given:
                    known = ", ".join("{" + k + "}" for k in COUNCIL_KEYS)
                    raise FlowError(
                        f"{where} {setting}: placeholder {{{name}}} cannot be filled "
                        f"(a council text may use {known})"
                    )
                if name == key or COUNCIL_PLACEHOLDER.search(given[name]):
                    why = "is this text" if name == key else "has placeholders of its own"
                    raise FlowError(
                        f"{where} {setting}: placeholder {{{name}}} cannot be filled: "
                        f"its value {why}"
                    )
            values[key, language] = fill(text, **given)
    return values


def load_flow(
    directory: str | Path | None = None,
    council: Mapping[str, str] | None = None,
    languages: Sequence[str] | None = None,
) -> Flow:
    """Load and validate a flow directory (the shipped questionnaire by default).

    `council` fills the texts' {council}, {privacy_url}, {helpline} and {signposting}.
    `languages` keeps only those languages (English always stays); None keeps every language
    the flow has a catalog for. Raises FlowError naming the file, the entry and the problem.
    """
    folder = Path(directory) if directory else SHIPPED
    return _Loader(folder, council or {}, languages).load()


def check_budgets(flow: Flow, gsm7_languages: frozenset[str]) -> None:
    """Every message a respondent can get: GSM-7 where promised, within its language's budget."""
    for language in flow.languages:
        check_priorities_budget(flow, language, language in gsm7_languages)
        budget = flow.segment_budgets[language]
        batch_budget = flow.batch_budgets.get(language, budget)
        for budgeted, messages in (
            (budget, _every_message(flow, language)),
            (batch_budget, _every_run_message(flow, language)),
        ):
            for text, where in messages:
                _check_message(text, where, language, budgeted, language in gsm7_languages)


def _check_message(text: str, where: str, language: str, budget: int, gsm7: bool) -> None:
    count = count_segments(text)
    if gsm7 and count.encoding != "GSM-7":
        bad = sorted({char for char in text if not is_gsm7(char)})
        raise FlowError(f"{where}: {language} message is not GSM-7 (characters {bad})")
    if count.segments > budget:
        raise FlowError(
            f"{where}: {language} message is {count.segments} SMS segments "
            f"({count.units} {count.encoding} units), over {budget}: {text!r}"
        )


def _runs(flow: Flow) -> list[tuple[Question, ...]]:
    """The longest run of each scale, section and heading a full check can ask in one text."""
    runs: dict[tuple[object, ...], list[Question]] = {}
    for step in flow.modes["full"].batch_steps if "full" in flow.modes else ():
        if isinstance(step, Question):
            runs.setdefault((step.section, step.heading, step.aspect), []).append(step)
    return [tuple(run) for run in runs.values()]


def _every_run_message(flow: Flow, language: str) -> list[tuple[str, str]]:
    """Every run asked in one text (several answers a text), new and with its answers shown,
    after every lead that can stand before it, the longest "Got: ..." among them; and the
    skills choice after the blockers' "Got: ...". Budgeted by [segments.batch]."""
    text = flow.text
    runs = _runs(flow)
    if not runs:
        return []
    total = flow.modes["full"].total
    every_answer = [{q.key: len(flow.scale_of(q).options) for q in run} for run in runs]
    got = max(
        (
            fill(text("batch_got", language), answers=understood(run, answers))
            for run, answers in zip(runs, every_answer, strict=True)
        ),
        key=lambda lead: count_segments(lead).units,
    )
    leads = [text(key, language) for key in LEADS if key not in PROMPT_ONLY_LEADS]
    leads += [fill(text(key, language), max=5) for key in REASKS]
    leads += [
        fill(text("batch_too_many", language), sent=999, count=99),
        got,
        join_lead(got, fill(text("reask", language), max=5)),
    ]
    messages: list[tuple[str, str]] = []
    for run, answers in zip(runs, every_answer, strict=True):
        first = run[0]
        where = f"messages.toml: messages.batch_{first.aspect} ({first.heading or first.section})"
        heading = flow.heading(first.heading) if first.heading else None
        intro = heading.intro[language] if heading and first.aspect == "skill" else ""
        for shown in ({}, answers):
            body = batch_body(flow, run, total, language, shown, intro)
            messages.extend((join_lead(lead, body), f"{where} after a lead") for lead in leads)
    skills = flow.prompts["skills"]
    options = options_block(skills.options, language, flow.languages[0])
    choice = f"{skills.text[language]}\n{options}"
    messages.append((join_lead(got, choice), "messages.toml: prompts.skills after batch_got"))
    return messages


def _every_message(flow: Flow, language: str) -> list[tuple[str, str]]:
    """(message, where it comes from) for the longest form of every message the flow sends."""
    text = flow.text
    messages: list[tuple[str, str]] = []

    def with_leads(body: str, where: str, option_count: int, *, question: bool = True) -> None:
        # Every lead that can stand there, not only the longest: one Welsh letter in a short
        # lead turns a GSM-7 question into UCS-2, where it may cost more segments.
        excluded = PROMPT_ONLY_LEADS if question else QUESTION_ONLY_LEADS
        for key in LEADS:
            if key not in excluded:
                lead = text(key, language)
                messages.append((join_lead(lead, body), f"{where} after messages.{key}"))
        for reask in REASKS:
            lead = fill(text(reask, language), max=option_count)
            messages.append((join_lead(lead, body), f"{where} after messages.{reask}"))
        if question:
            lead = fill(text(WHICH, language), first=option_count - 1, second=option_count)
            messages.append((join_lead(lead, body), f"{where} after messages.{WHICH}"))

    for mode in flow.modes.values():
        for step in mode.steps:
            if isinstance(step, Question):
                entry = "heading" if step.item == step.heading else "item"
                where = f"items.toml: {entry} {step.item} sms: question {step.key} ({mode.id})"
                body = question_body(flow, step, mode.total, language)
                with_leads(body, where, len(flow.scale_of(step).options))
    for key, prompt in flow.prompts.items():
        options = options_block(prompt.options, language, flow.languages[0])
        where = f"messages.toml: prompts.{key}"
        variants: list[tuple[dict[str, object], str]] = [({}, where)]
        if key == "topic":
            full = flow.modes["full"]
            variants = [
                (
                    {"topic": h.intro[language], **topic_counts(flow, full, h.id)},
                    f"items.toml: heading {h.id} intro: {where}",
                )
                for h in flow.headings
            ]
        for values, at in variants:
            filled = fill(
                prompt.text[language], **{"n": 999, "total": 999, "questions": 999, **values}
            )
            body = f"{filled}\n{options}"
            if key == LANGUAGE_PROMPT:
                where = "messages.toml: messages.language_prompt (all languages together)"
                messages.append((body, where))  # the first message: no lead, no re-ask text
                invited = join_lead(text("invitation", language), body)
                messages.append((invited, "messages.toml: messages.invitation before it"))
                continue
            with_leads(body, at, len(prompt.options), question=key in QUESTION_PROMPTS)
    for key in WHOLE:
        messages.append((text(key, language), f"messages.toml: messages.{key}"))
    return messages


PRIORITIES_COUNCIL_TEXTS: Mapping[str, str] = {
    "signposting": "priorities_end",
    "help_device": "priorities_help_device",
    "help_data": "priorities_help_data",
    "help_skills": "priorities_help_skills",
}
"""The council's texts in the priorities message, and the message part each one fills."""


def check_priorities_budget(flow: Flow, language: str, gsm7: bool) -> None:
    """The priorities message for the neediest resident (every basic missing, every barrier,
    the longest first priority, every kind of help, a check-in date) keeps all of that within
    [segments.priorities]; a council text that would push any of it out is refused by name."""
    from scoring.message import worst_case_messages  # here: scoring imports this module

    budget = flow.priorities_budgets[language]
    for text in worst_case_messages(flow, language):
        count = count_segments(text)
        where = "messages.toml: priorities message (worst case, with the council's texts)"
        if gsm7 and count.encoding != "GSM-7":
            bad = sorted({char for char in text if not is_gsm7(char)})
            raise FlowError(f"{where}: {language} message is not GSM-7 (characters {bad})")
        if count.segments <= budget:
            continue
        given = {
            setting: flow.text(part, language)
            for setting, part in PRIORITIES_COUNCIL_TEXTS.items()
            if flow.text(part, language)
        }
        names = ", ".join(sorted(given, key=lambda setting: -len(given[setting])))
        table = "[council]" if language == SOURCE_LANGUAGE else f"[council.{language}]"
        raise FlowError(
            f"{table} {names}: too long for the priorities message: for a resident missing "
            f"every basic, with every barrier, it would be {count.segments} SMS segments "
            f"({count.units} {count.encoding} units), over {budget} "
            f"([segments.priorities] {language}), and would push out what they most need; "
            f"shorten them: {text!r}"
        )
