"""How questions and prompts read on a basic phone: one SMS body, options numbered.

A question is `{progress} {question}` then one option a line (`1 No`); a lead ("Got it.",
"Skipped.") goes before it in the same body, so an acknowledgement can never arrive after
the next question. Buttons carry `{key}:{number}` so a tap names the question it answers.
A run of questions asked in one text lists its items lettered (A, B, C… so an item is never
read as an answer) and the scale once.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from bot.messages import Button, Outbound
from flows.model import Flow, Mode, Option, Prompt, Question, Texts

BUTTON_SEPARATOR = ":"
PLACEHOLDER = re.compile(r"\{(\w+)\}")


def fill(template: str, **values: object) -> str:
    """Put `values` into the `{name}` placeholders; any other brace is text (a council's
    helpline written "0300 {ext 2}" must not break a message)."""
    return PLACEHOLDER.sub(
        lambda match: str(values[match[1]]) if match[1] in values else match[0], template
    )


def pick(texts: Texts, language: str, fallback: str) -> str:
    """The text in `language`, else in the flow's default language."""
    found = texts.get(language) or texts.get(fallback)
    if found is None:
        raise KeyError(f"no text in {language} or {fallback}")
    return found


def options_block(options: Iterable[Option], language: str, fallback: str) -> str:
    return "\n".join(f"{o.number} {pick(o.sms, language, fallback)}" for o in options)


def buttons(
    key: str, options: Iterable[Option], language: str, fallback: str
) -> tuple[Button, ...]:
    return tuple(
        Button(
            f"{o.number} {pick(o.sms, language, fallback)}", f"{key}{BUTTON_SEPARATOR}{o.number}"
        )
        for o in options
    )


def join_lead(lead: str, body: str) -> str:
    return f"{lead} {body}" if lead else body


def question_body(flow: Flow, question: Question, total: int, language: str) -> str:
    fallback = flow.languages[0]
    progress = fill(flow.text("progress", language), n=question.number, total=total)
    text = pick(question.text, language, fallback)
    options = flow.scale_of(question).options
    return f"{progress} {text}\n{options_block(options, language, fallback)}"


def question_message(
    flow: Flow, question: Question, total: int, language: str, lead: str = ""
) -> Outbound:
    fallback = flow.languages[0]
    body = question_body(flow, question, total, language)
    options = flow.scale_of(question).options
    return Outbound(join_lead(lead, body), buttons(question.key, options, language, fallback))


def prompt_message(
    flow: Flow,
    prompt: Prompt,
    language: str,
    lead: str = "",
    key: str | None = None,
    **values: object,
) -> Outbound:
    fallback = flow.languages[0]
    text = fill(pick(prompt.text, language, fallback), **values)
    body = f"{text}\n{options_block(prompt.options, language, fallback)}"
    return Outbound(
        join_lead(lead, body), buttons(key or prompt.key, prompt.options, language, fallback)
    )


def topic_counts(flow: Flow, mode: Mode, heading_id: str) -> dict[str, int]:
    """What a topic break says of its topic: {skills} to rate, and at most {questions} (a
    skill's interest follow-up counts)."""
    asked = [
        step
        for step in mode.steps
        if isinstance(step, Question) and step.heading == heading_id and step.item != heading_id
    ]
    return {"skills": len({q.item for q in asked}), "questions": len(asked)}


LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
"""Items of a run are lettered, so their answers (numbers) never read as items."""
EXAMPLE_ANSWERS = (3, 4, 2, 5, 1)
"""What "e.g. 3 4 2 5" cycles through, within the scale."""


def short_name(flow: Flow, question: Question, language: str) -> str:
    """The item's (or, in a quick check, the heading's) plain short name."""
    fallback = flow.languages[0]
    if question.heading is not None and question.item == question.heading:
        return pick(flow.heading(question.item).short, language, fallback)
    return pick(flow.item(question.item).short, language, fallback)


def example_answers(count: int, option_count: int) -> str:
    picked = (EXAMPLE_ANSWERS[i % len(EXAMPLE_ANSWERS)] for i in range(count))
    return " ".join(str(min(answer, option_count)) for answer in picked)


def batch_body(
    flow: Flow,
    run: tuple[Question, ...],
    total: int,
    language: str,
    answers: Mapping[str, int],
    intro: str = "",
) -> str:
    """A run of questions on one scale in one text: the question, the items lettered (with
    their answers when every one has one, after BACK), how to reply, and the scale once."""
    fallback = flow.languages[0]
    first, last = run[0], run[-1]
    numbers = str(first.number) if first.number == last.number else f"{first.number}-{last.number}"
    progress = fill(flow.text("progress", language), n=numbers, total=total)
    question = flow.text(f"batch_{first.aspect}", language)
    if intro:
        question = f"{intro}. {question}"
    answered = all(q.key in answers for q in run)
    lines = [
        f"{LETTERS[i]} {short_name(flow, q, language)}"
        + (f": {answers[q.key]}" if answered else "")
        for i, q in enumerate(run)
    ]
    options = flow.scale_of(first).options
    if answered:
        example = f"{LETTERS[min(1, len(run) - 1)]} {example_answers(2, len(options))[-1]}"
        how = fill(flow.text("batch_change", language), count=len(run), example=example)
    else:
        example = example_answers(len(run), len(options))
        key = "batch_reply" if len(run) > 1 else "batch_reply_one"
        how = fill(flow.text(key, language), count=len(run), example=example)
    block = options_block(options, language, fallback)
    # the scale last, as in every numbered message: a Telegram keyboard mirrors its lines
    return f"{progress} {question}\n" + "\n".join(lines) + f"\n{how}\n{block}"


def batch_message(
    flow: Flow,
    run: tuple[Question, ...],
    total: int,
    language: str,
    answers: Mapping[str, int],
    lead: str = "",
    intro: str = "",
) -> Outbound:
    """The run as one message; its buttons answer the first item (a tap is one answer)."""
    fallback = flow.languages[0]
    body = batch_body(flow, run, total, language, answers, intro)
    options = flow.scale_of(run[0]).options
    return Outbound(join_lead(lead, body), buttons(run[0].key, options, language, fallback))


def understood(run: Iterable[Question], answers: Mapping[str, int]) -> str:
    """What a run's answers were read as, by the letters the run was shown with: "A3 B4 D5".
    Compact on purpose: the run is the message just above, and BACK shows it again with every
    item's name and answer."""
    return " ".join(f"{LETTERS[i]}{answers[q.key]}" for i, q in enumerate(run) if q.key in answers)
