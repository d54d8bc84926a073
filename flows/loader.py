"""Load a flow directory and refuse it, naming file, item and problem, unless it is whole.

A flow directory holds `flow.toml` (id, version, languages, scales, modes, priority rule),
`items.toml` (headings and items) and `messages.toml` (system texts, prompts, commands,
number words). The loader checks that ids are unique and well formed, every reference is
known, every text exists in every shipped language, placeholders are the expected ones, and
every message a respondent can receive is within its SMS budget: GSM-7 where the flow says
so, and never more than `MAX_SEGMENTS` segments.
"""

from __future__ import annotations

import re
import string
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from bot.render import join_lead, options_block, question_body
from flows.model import (
    Aspect,
    Flow,
    Heading,
    Item,
    Mode,
    Option,
    PriorityRule,
    Prompt,
    Question,
    Scale,
    Section,
    Step,
    Texts,
    TopicBreak,
)
from flows.segments import count_segments

SHIPPED = Path(__file__).parent / "digital_inclusion"
MAX_SEGMENTS = 2
ASPECTS: tuple[Aspect, ...] = ("access", "blocker", "skill", "interest")
SECTION_ASPECTS: Mapping[Section, tuple[Aspect, ...]] = {
    "basics": ("access",),
    "blockers": ("blocker",),
    "skills": ("skill", "interest"),
}
COMMANDS = ("help", "back", "skip", "repeat", "later", "restart", "stop", "start")
PROMPTS = ("consent", "mode", "topic", "resume", "restart")
COUNCIL_KEYS = ("council", "privacy_url", "helpline", "signposting")
ITEM_ID = re.compile(r"^[A-Z]{2}\d{2}$")
HEADING_ID = re.compile(r"^[A-Z]{2}$")
LEADS = (
    "ack", "skipped", "auto_skip", "back", "back_nothing", "welcome_back", "stale_button",
    "media_only", "cannot_skip", "restarting", "section_blockers", "section_skills",
)
"""Messages that can stand before a question in the same SMS."""
REASKS = ("reask", "offer_skip")
WHOLE = ("help", "later", "declined", "opted_out", "done_again")
RUNTIME_PLACEHOLDERS: Mapping[str, frozenset[str]] = {
    "progress": frozenset({"n", "total"}),
    "reask": frozenset({"max"}),
    "offer_skip": frozenset({"max"}),
}
PROMPT_PLACEHOLDERS: Mapping[str, frozenset[str]] = {
    "topic": frozenset({"topic"}),
    "resume": frozenset({"n", "total"}),
}


class FlowError(ValueError):
    """The flow data is unusable; the message names the file, the entry and the problem."""


@dataclass(frozen=True)
class _Source:
    path: Path
    data: dict[str, Any]

    def fail(self, where: str, problem: str) -> FlowError:
        return FlowError(f"{self.path.name}: {where}: {problem}")


def _read(directory: Path, name: str) -> _Source:
    path = directory / name
    try:
        with path.open("rb") as handle:
            return _Source(path, tomllib.load(handle))
    except FileNotFoundError:
        raise FlowError(f"{name}: missing from flow directory {directory}") from None
    except tomllib.TOMLDecodeError as error:
        raise FlowError(f"{name}: not valid TOML: {error}") from None


def placeholders(text: str) -> frozenset[str]:
    return frozenset(name for _, name, _, _ in string.Formatter().parse(text) if name)


class _Loader:
    def __init__(self, directory: Path, council: Mapping[str, str]) -> None:
        self.flow_src = _read(directory, "flow.toml")
        self.items_src = _read(directory, "items.toml")
        self.messages_src = _read(directory, "messages.toml")
        self.council = {key: council.get(key, "") for key in COUNCIL_KEYS}
        languages = self.flow_src.data.get("languages")
        if not isinstance(languages, list) or not languages or not all(
            isinstance(lang, str) for lang in languages
        ):
            raise self.flow_src.fail("languages", "must be a non-empty list of language codes")
        self.languages: tuple[str, ...] = tuple(languages)
        gsm7 = self.flow_src.data.get("gsm7_languages", ["en"])
        self.gsm7_languages = frozenset(str(lang) for lang in gsm7)

    # --- small readers -------------------------------------------------------------------

    def texts(
        self, src: _Source, where: str, value: Any, allowed: frozenset[str] = frozenset()
    ) -> Texts:
        if not isinstance(value, dict):
            raise src.fail(where, "must be a table of language -> text")
        result: dict[str, str] = {}
        for language in self.languages:
            text = value.get(language)
            if not isinstance(text, str) or not text.strip():
                raise src.fail(where, f"no {language} text")
            if text != text.strip():
                raise src.fail(where, f"{language} text has leading or trailing spaces")
            unknown = placeholders(text) - allowed - set(COUNCIL_KEYS)
            if unknown:
                raise src.fail(where, f"{language} text has unknown placeholders {sorted(unknown)}")
            result[language] = self.fill_council(text)
        extra = set(value) - set(self.languages)
        if extra:
            raise src.fail(where, f"text in languages the flow does not ship: {sorted(extra)}")
        reference = {placeholders(value[lang]) for lang in self.languages}
        if len(reference) > 1:
            raise src.fail(where, "placeholders differ between languages")
        return result

    def fill_council(self, text: str) -> str:
        for key, value in self.council.items():
            text = text.replace("{" + key + "}", value)
        return text

    def word_lists(self, src: _Source, where: str, value: Any) -> Mapping[str, tuple[str, ...]]:
        value = value if value is not None else {}
        if not isinstance(value, dict):
            raise src.fail(where, "must be a table of language -> list of words")
        result: dict[str, tuple[str, ...]] = {}
        for language in self.languages:
            words = value.get(language, [])
            if not isinstance(words, list) or not all(isinstance(w, str) and w for w in words):
                raise src.fail(where, f"{language} words must be a list of non-empty strings")
            result[language] = tuple(words)
        return result

    def options(self, src: _Source, where: str, value: Any, scored: bool) -> tuple[Option, ...]:
        if not isinstance(value, list) or len(value) < 2:
            raise src.fail(where, "needs at least two options")
        options = []
        for index, raw in enumerate(value, start=1):
            at = f"{where} option {index}"
            if raw.get("number") != index:
                raise src.fail(at, f"number must be {index} (options are numbered 1, 2, 3…)")
            score = raw.get("score", index - 1)
            if scored and not isinstance(raw.get("score"), int):
                raise src.fail(at, "needs a whole-number score")
            label = raw.get("label", raw.get("sms"))
            options.append(
                Option(
                    number=index,
                    score=int(score),
                    label=self.texts(src, f"{at} label", label, frozenset({"quick_total"})),
                    sms=self.texts(src, f"{at} sms", raw.get("sms"), frozenset({"quick_total"})),
                    words=self.word_lists(src, f"{at} words", raw.get("words")),
                )
            )
        return tuple(options)

    # --- sections of the data ------------------------------------------------------------

    def scales(self) -> dict[str, Scale]:
        raw = self.flow_src.data.get("scales")
        if not isinstance(raw, dict):
            raise self.flow_src.fail("scales", "missing")
        scales: dict[str, Scale] = {}
        for aspect in ASPECTS:
            if aspect not in raw:
                raise self.flow_src.fail(f"scale {aspect}", "missing")
            data = raw[aspect]
            where = f"scale {aspect}"
            question = self.texts(self.flow_src, f"{where} question", data.get("question"),
                                  frozenset({"task"}))
            if any("{task}" not in text for text in question.values()):
                raise self.flow_src.fail(f"{where} question", "must contain {task}")
            options = self.options(self.flow_src, where, data.get("options"), scored=True)
            scales[aspect] = Scale(cast(Aspect, aspect), question, options)
        unknown = set(raw) - set(ASPECTS)
        if unknown:
            raise self.flow_src.fail("scales", f"unknown scales {sorted(unknown)}")
        if scales["skill"].max_score != scales["interest"].max_score:
            raise self.flow_src.fail("scales", "skill and interest must share a maximum score")
        return scales

    def headings(self) -> tuple[Heading, ...]:
        src = self.items_src
        headings = []
        seen: set[str] = set()
        for raw in src.data.get("headings", []):
            heading_id = raw.get("id")
            where = f"heading {heading_id}"
            if not isinstance(heading_id, str) or not HEADING_ID.match(heading_id):
                raise src.fail(where, "id must be two capital letters")
            if heading_id in seen:
                raise src.fail(where, "duplicate heading id")
            seen.add(heading_id)
            headings.append(
                Heading(
                    id=heading_id,
                    title=self.texts(src, f"{where} title", raw.get("title")),
                    short=self.short(src, f"{where} short", raw.get("short")),
                    sms=self.texts(src, f"{where} sms", raw.get("sms")),
                    intro=self.texts(src, f"{where} intro", raw.get("intro")),
                )
            )
        if not headings:
            raise src.fail("headings", "none defined")
        return tuple(headings)

    def short(self, src: _Source, where: str, value: Any) -> Texts:
        texts = self.texts(src, where, value)
        for language, text in texts.items():
            if len(text) > 30:
                raise src.fail(where, f"{language} text is {len(text)} characters, over 30")
        return texts

    def items(self, headings: tuple[Heading, ...]) -> tuple[Item, ...]:
        src = self.items_src
        heading_ids = {h.id for h in headings}
        items = []
        seen: set[str] = set()
        for raw in src.data.get("items", []):
            item_id = raw.get("id")
            where = f"item {item_id}"
            if not isinstance(item_id, str) or not ITEM_ID.match(item_id):
                raise src.fail(where, "id must be two capital letters and two digits")
            if item_id in seen:
                raise src.fail(where, "duplicate item id")
            if item_id[:2] in heading_ids and raw.get("heading") != item_id[:2]:
                raise src.fail(where, f"id prefix {item_id[:2]} names another heading")
            seen.add(item_id)
            section = raw.get("section")
            if section not in SECTION_ASPECTS:
                raise src.fail(where, f"unknown section {section!r}")
            heading = raw.get("heading")
            if section == "skills" and heading not in heading_ids:
                raise src.fail(where, f"unknown heading {heading!r}")
            if section != "skills" and heading is not None:
                raise src.fail(where, "only skills have a heading")
            outcome = raw.get("outcome")
            if outcome is not None and not (isinstance(outcome, str) and outcome.isidentifier()):
                raise src.fail(where, "outcome must be a snake_case name")
            unknown = set(raw) - {"id", "section", "heading", "title", "short", "sms", "outcome"}
            if unknown:
                raise src.fail(where, f"unknown keys {sorted(unknown)}")
            items.append(
                Item(
                    id=item_id,
                    section=cast(Section, section),
                    heading=heading,
                    title=self.texts(src, f"{where} title", raw.get("title")),
                    short=self.short(src, f"{where} short", raw.get("short")),
                    sms=self.texts(src, f"{where} sms", raw.get("sms")),
                    outcome=outcome,
                )
            )
        for section in SECTION_ASPECTS:
            if not any(item.section == section for item in items):
                raise src.fail(section, "no items")
        for heading in headings:
            if not any(item.heading == heading.id for item in items):
                raise src.fail(f"heading {heading.id}", "has no items")
        return tuple(items)

    def question(
        self, scales: Mapping[str, Scale], item_id: str, aspect: Aspect, section: Section,
        heading: str | None, number: int, task: Texts,
    ) -> Question:
        template = scales[aspect].question
        text = {lang: template[lang].replace("{task}", task[lang]) for lang in self.languages}
        return Question(f"{item_id}.{aspect}", item_id, aspect, section, heading, number, text)

    def modes(
        self, scales: Mapping[str, Scale], headings: tuple[Heading, ...], items: tuple[Item, ...]
    ) -> dict[str, Mode]:
        src = self.flow_src
        raw = src.data.get("modes", {})
        if set(raw) != {"quick", "full"}:
            raise src.fail("modes", "must define exactly [modes.quick] and [modes.full]")
        modes: dict[str, Mode] = {}
        for mode_id, data in raw.items():
            steps: list[Step] = []
            number = 0
            for item in items:
                if item.section == "skills":
                    continue
                number += 1
                (aspect,) = SECTION_ASPECTS[item.section]
                steps.append(self.question(scales, item.id, aspect, item.section, None, number,
                                           item.sms))
            skills = data.get("skills")
            if skills == "headings":
                for heading in headings:
                    for aspect in SECTION_ASPECTS["skills"]:
                        number += 1
                        steps.append(self.question(scales, heading.id, aspect, "skills",
                                                   heading.id, number, heading.sms))
            elif skills == "items":
                for heading in headings:
                    steps.append(TopicBreak(f"{heading.id}.topic", heading.id))
                    for item in items:
                        if item.heading != heading.id:
                            continue
                        number += 1
                        for aspect in SECTION_ASPECTS["skills"]:
                            steps.append(self.question(scales, item.id, aspect, "skills",
                                                       heading.id, number, item.sms))
            else:
                raise src.fail(f"modes.{mode_id}.skills", 'must be "headings" or "items"')
            threshold = data.get("interest_if_skill_at_most")
            if threshold is not None and not isinstance(threshold, int):
                raise src.fail(f"modes.{mode_id}.interest_if_skill_at_most", "must be a number")
            modes[mode_id] = Mode(
                id=mode_id,
                steps=tuple(steps),
                total=number,
                interest_if_skill_at_most=threshold,
                positions={step.key: index for index, step in enumerate(steps)},
            )
        return modes

    def messages(self) -> dict[str, Texts]:
        src = self.messages_src
        raw = src.data.get("messages", {})
        messages: dict[str, Texts] = {}
        for key in ("progress", *LEADS, *REASKS, *WHOLE):
            allowed = RUNTIME_PLACEHOLDERS.get(key, frozenset())
            texts = self.texts(src, f"messages.{key}", raw.get(key), allowed)
            missing = {p for t in texts.values() for p in allowed - placeholders(t)}
            if missing:
                raise src.fail(f"messages.{key}", f"must use placeholders {sorted(missing)}")
            messages[key] = texts
        unknown = set(raw) - set(messages)
        if unknown:
            raise src.fail("messages", f"unknown messages {sorted(unknown)}")
        return messages

    def prompts(self, quick_total: int) -> dict[str, Prompt]:
        src = self.messages_src
        raw = src.data.get("prompts", {})
        prompts: dict[str, Prompt] = {}
        for key in PROMPTS:
            data = raw.get(key)
            if not isinstance(data, dict):
                raise src.fail(f"prompts.{key}", "missing")
            allowed = PROMPT_PLACEHOLDERS.get(key, frozenset())
            text = self.texts(src, f"prompts.{key} text", data.get("text"), allowed)
            options = self.options(src, f"prompts.{key}", data.get("options"), scored=False)
            options = tuple(
                Option(
                    o.number, o.score,
                    {k: v.replace("{quick_total}", str(quick_total)) for k, v in o.label.items()},
                    {k: v.replace("{quick_total}", str(quick_total)) for k, v in o.sms.items()},
                    o.words,
                )
                for o in options
            )
            prompts[key] = Prompt(key, text, options)
        unknown = set(raw) - set(PROMPTS)
        if unknown:
            raise src.fail("prompts", f"unknown prompts {sorted(unknown)}")
        return prompts

    def commands(self) -> dict[str, Mapping[str, tuple[str, ...]]]:
        src = self.messages_src
        raw = src.data.get("commands", {})
        commands = {}
        for name in COMMANDS:
            words = self.word_lists(src, f"commands.{name}", raw.get(name))
            for language, listed in words.items():
                if not listed:
                    raise src.fail(f"commands.{name}", f"no {language} words")
            commands[name] = words
        unknown = set(raw) - set(COMMANDS)
        if unknown:
            raise src.fail("commands", f"unknown commands {sorted(unknown)}")
        return commands

    def number_words(self) -> dict[str, tuple[str, ...]]:
        src = self.messages_src
        return dict(self.word_lists(src, "number_words", src.data.get("number_words")))

    def priority(self) -> PriorityRule:
        src = self.flow_src
        raw = src.data.get("priority", {})
        try:
            return PriorityRule(
                formula=str(raw["formula"]),
                top=int(raw["top"]),
                min_priority=int(raw["min_priority"]),
                barrier_at_most=int(raw["barrier_at_most"]),
                missing_basic_at_most=int(raw["missing_basic_at_most"]),
            )
        except KeyError as missing:
            raise src.fail("priority", f"missing {missing}") from None

    # --- the whole flow ------------------------------------------------------------------

    def load(self) -> Flow:
        data = self.flow_src.data
        for key in ("id", "version"):
            if not isinstance(data.get(key), str) or not data[key]:
                raise self.flow_src.fail(key, "must be a non-empty string")
        resume_after_days = data.get("resume_after_days")
        if not isinstance(resume_after_days, int) or resume_after_days < 1:
            raise self.flow_src.fail("resume_after_days", "must be a whole number of days")
        scales = self.scales()
        headings = self.headings()
        items = self.items(headings)
        modes = self.modes(scales, headings, items)
        questions: dict[str, Question] = {}
        for mode in modes.values():
            for step in mode.steps:
                if isinstance(step, Question):
                    questions.setdefault(step.key, step)
                    if questions[step.key] != step:
                        raise self.flow_src.fail(
                            f"question {step.key}", "differs between modes (same key, other number)"
                        )
        flow = Flow(
            id=data["id"],
            version=data["version"],
            languages=self.languages,
            scales=scales,
            headings=headings,
            items=items,
            modes=modes,
            prompts=self.prompts(modes["quick"].total),
            messages=self.messages(),
            commands=self.commands(),
            number_words=self.number_words(),
            questions=questions,
            priority=self.priority(),
            resume_after_days=resume_after_days,
        )
        check_words(flow, self.messages_src)
        check_budgets(flow, self.gsm7_languages)
        return flow


def load_flow(directory: str | Path | None = None, council: Mapping[str, str] | None = None) -> Flow:
    """Load and validate a flow directory (the shipped questionnaire by default).

    `council` fills the texts' {council}, {privacy_url}, {helpline} and {signposting}.
    Raises FlowError naming the file, the entry and the problem.
    """
    return _Loader(Path(directory) if directory else SHIPPED, council or {}).load()


def check_words(flow: Flow, src: _Source) -> None:
    """No word may choose two options of one scale or prompt, or be both a command and an answer."""
    from bot.matching import normalise

    command_words = {
        language: {normalise(w) for words in flow.commands.values() for w in words[language]}
        for language in flow.languages
    }
    groups: list[tuple[str, tuple[Option, ...]]] = [
        (f"scale {s.id}", s.options) for s in flow.scales.values()
    ] + [(f"prompts.{p.key}", p.options) for p in flow.prompts.values()]
    for where, options in groups:
        for language in flow.languages:
            owner: dict[str, int] = {}
            for option in options:
                for word in (*option.words[language], option.sms[language]):
                    key = normalise(word)
                    if owner.setdefault(key, option.number) != option.number:
                        raise src.fail(where, f"{language} word {word!r} chooses two options")
                    if key in command_words[language]:
                        raise src.fail(where, f"{language} word {word!r} is also a command")


def check_budgets(flow: Flow, gsm7_languages: frozenset[str]) -> None:
    """Every message a respondent can get: GSM-7 where promised, at most MAX_SEGMENTS."""
    for language in flow.languages:
        for text, where in _every_message(flow, language):
            count = count_segments(text)
            if language in gsm7_languages and count.encoding != "GSM-7":
                bad = sorted({c for c in text if count_segments(c).encoding != "GSM-7"})
                raise FlowError(f"{where}: {language} text is not GSM-7 (characters {bad})")
            if count.segments > MAX_SEGMENTS:
                raise FlowError(
                    f"{where}: {language} message is {count.segments} SMS segments "
                    f"({count.units} {count.encoding} units), over {MAX_SEGMENTS}: {text!r}"
                )


def _every_message(flow: Flow, language: str) -> list[tuple[str, str]]:
    messages: list[tuple[str, str]] = []
    text = flow.text
    longest_lead = max((text(k, language) for k in LEADS), key=lambda t: count_segments(t).units)
    for mode in flow.modes.values():
        for step in mode.steps:
            if isinstance(step, Question):
                body = question_body(flow, step, mode.total, language)
                where = f"items.toml: question {step.key} ({mode.id})"
                messages.append((join_lead(longest_lead, body), where))
                for reask in REASKS:
                    maximum = len(flow.scale_of(step).options)
                    lead = text(reask, language).format(max=maximum)
                    messages.append((join_lead(lead, body), f"{where} after {reask}"))
    for key, prompt in flow.prompts.items():
        values: dict[str, object] = {"n": 999, "total": 999}
        topics = [h.intro[language] for h in flow.headings] if key == "topic" else [""]
        for topic in topics:
            body = prompt.text[language].format(topic=topic, **values)
            body = f"{body}\n{options_block(prompt.options, language, flow.languages[0])}"
            where = f"messages.toml: prompts.{key}"
            messages.append((join_lead(longest_lead, body), where))
            for reask in REASKS:
                lead = text(reask, language).format(max=len(prompt.options))
                messages.append((join_lead(lead, body), f"{where} after {reask}"))
    for key in WHOLE:
        messages.append((text(key, language), f"messages.toml: messages.{key}"))
    return messages
