"""How questions and prompts read on a basic phone: one SMS body, options numbered.

A question is `{progress} {question}` then one option a line (`1 No`); a lead ("Got it.",
"Skipped.") goes before it in the same body, so an acknowledgement can never arrive after
the next question. Buttons carry `{key}:{number}` so a tap names the question it answers.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

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
