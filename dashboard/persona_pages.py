"""Personas in the dashboard: `GET /personas` (the list, with each one's likely priorities),
`GET /personas/<id>` (its profile and priorities, set beside a cohort the member chooses with
`?cohort=<id>`), and `GET/POST /personas/new` (a member of staff answers the quick check for a
persona, or for the typical resident of a cohort).

The rules it keeps:
- A persona is scored exactly as a resident is (`scoring.personas`), and saved only through
  `impact.personas.save_persona`, which checks it against the flow; saving is audited ("save
  persona"). Personas describe no real person, so viewing one is not audited.
- Cohorts are reached only through `cohort_scope`/`cohort_or_404`: the cohorts offered, the
  cohort a persona may describe, and the cohort it is compared with are the member's (an admin's
  all), another team's answering 404. A persona made for another team's cohort shows only that
  it describes a cohort, never its name.
- A comparison reads the cohort's people (their latest completed first check, as the report
  does), so it is audited ("compare persona"), and a cohort of fewer than `MIN_GROUP` such people
  is withheld, as in the report.
- Every question is required; what is missing is listed in the error summary, each linked to
  its question.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_wtf import FlaskForm
from wtforms import Field, StringField, TextAreaField
from wtforms.validators import StopValidation

from dashboard.accounts import StaffMember
from dashboard.report_pages import selection_for, visible_cohorts
from dashboard.site import MAX_ID, Site, cohort_or_404
from flows.model import Flow, Question
from impact.personas import (
    ILLUSTRATIVE_PERSONAS,
    NAME_LENGTH,
    SLUG_LENGTH,
    PersonaError,
    PersonaSpec,
    StoredPersona,
    all_personas,
    read_personas,
    save_persona,
)
from impact.records import iter_people
from impact.report import latest_pair
from scoring import profile
from scoring.cohort import CohortSummary, CohortTally
from scoring.impact import MIN_GROUP
from scoring.message import unit_name
from scoring.personas import PersonaComparison, compare_with_persona, likely_priorities
from storage.database import read_only

LANGUAGE = "en"
"""Staff read the dashboard in English."""
MODE = "quick"
"""The dashboard's form is the quick check: basics, blockers, each heading's skill and interest."""
DESCRIPTION_LENGTH = 2000
MODE_WORDS = {"quick": "Quick check", "full": "Full assessment"}
SECTION_TITLES = {"basics": "Basics", "blockers": "What stops them going online"}


def percent(share: float | None) -> str:
    """ "42%", or "No answer"."""
    if share is None:
        return "No answer"
    return f"{int(share * 100 + 0.5)}%"


def points_difference(difference: float | None) -> str:
    """A difference of shares in percentage points, with its sign: "+12 points"."""
    if difference is None:
        return "Not known"
    rounded = int(abs(difference) * 100 + 0.5)
    if rounded == 0:
        return "The same"
    return f"{'+' if difference > 0 else '−'}{rounded} points"


def field_name(question_key: str) -> str:
    """A question key as a form field's name: "GS.skill" -> "GS_skill"."""
    return question_key.replace(".", "_")


def slug_for(name: str, taken: set[str]) -> str:
    """A slug from the name, unique among `taken`: "Keen learner" -> "keen-learner"."""
    base = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[: SLUG_LENGTH - 4].strip("-")
    base = base or "persona"
    slug, number = base, 1
    while slug in taken:
        number += 1
        slug = f"{base}-{number}"
    return slug


# --- the form ------------------------------------------------------------------------------


@dataclass(frozen=True)
class QuestionField:
    name: str
    """The form field's name (and its first radio's id)."""
    options: tuple[tuple[str, str], ...]
    """(value, label) for each radio: the option's number and the scale's words."""


@dataclass(frozen=True)
class QuestionGroup:
    """Questions shown under one heading of the form: a section, or a skill heading."""

    title: str
    fields: tuple[QuestionField, ...]


class _Chosen:
    """Required: one of the radios' own values."""

    def __init__(self, values: set[str], message: str) -> None:
        self.values = values
        self.message = message

    def __call__(self, form: Any, field: Field) -> None:
        if field.data not in self.values:
            raise StopValidation(self.message)


class PersonaFormBase(FlaskForm):  # type: ignore[misc]  # Flask-WTF is untyped
    name = StringField("Name of the persona")
    description = TextAreaField("Description")
    cohort = StringField("Cohort it describes (optional)")


def persona_form_class(flow: Flow) -> tuple[type[PersonaFormBase], tuple[QuestionGroup, ...]]:
    """The form for `flow`'s quick check, one required radios field a question, and the
    questions grouped as the form shows them."""
    fields: dict[str, StringField] = {}
    groups: list[QuestionGroup] = []
    for step in flow.modes[MODE].steps:
        if not isinstance(step, Question):
            continue
        title = _group_title(flow, step)
        if not groups or groups[-1].title != title:
            groups.append(QuestionGroup(title, ()))
        name = field_name(step.key)
        options = tuple(
            (str(option.number), _english(option.label)) for option in flow.scale_of(step).options
        )
        text = _english(step.text)
        fields[name] = StringField(
            text,
            validators=[
                _Chosen({value for value, _ in options}, f"Select how they would answer: {text}")
            ],
        )
        groups[-1] = QuestionGroup(title, (*groups[-1].fields, QuestionField(name, options)))
    form_class = type("PersonaForm", (PersonaFormBase,), fields)
    return form_class, tuple(groups)


def _group_title(flow: Flow, question: Question) -> str:
    if question.heading is not None:
        return _english(flow.heading(question.heading).title)
    return SECTION_TITLES.get(question.section, question.section.capitalize())


def _english(texts: Mapping[str, str]) -> str:
    return texts.get(LANGUAGE) or next(iter(texts.values()))


def checked_spec(
    flow: Flow, form: PersonaFormBase, *, by: str, taken: set[str]
) -> PersonaSpec | None:
    """The persona the form describes, or None with the errors on its fields."""
    form.validate()
    name = (form.name.data or "").strip()
    description = (form.description.data or "").strip()
    if not name:
        form.name.errors.append("Enter a name for the persona")
    elif len(name) > NAME_LENGTH:
        form.name.errors.append(f"Name must be {NAME_LENGTH} characters or fewer")
    if not description:
        form.description.errors.append("Enter a description of the persona")
    elif len(description) > DESCRIPTION_LENGTH:
        form.description.errors.append(
            f"Description must be {DESCRIPTION_LENGTH} characters or fewer"
        )
    if any(field.errors for field in form if field.name != "csrf_token"):
        return None
    answers = {
        question.key: int(form[field_name(question.key)].data)
        for question in flow.modes[MODE].steps
        if isinstance(question, Question)
    }
    return PersonaSpec(
        slug=slug_for(name, taken),
        name=name,
        description=description,
        mode=MODE,
        answers=answers,
        source=f"Written in the dashboard by {by}",
    )


# --- what the pages show -------------------------------------------------------------------


@dataclass(frozen=True)
class PersonaLine:
    persona: StoredPersona
    mode: str
    cohort: str
    """The cohort it describes, in words the member may read."""
    priorities: tuple[str, ...]
    illustrative: bool
    problem: str | None = None
    """Why it cannot be scored under the flow now in use (stored under another), if so."""


@dataclass(frozen=True)
class HeadingLine:
    name: str
    skill: str
    interest: str


@dataclass(frozen=True)
class ComparisonLine:
    name: str
    cohort: str
    persona: str
    difference: str


@dataclass(frozen=True)
class Comparison:
    cohort: Any
    people: int
    withheld: bool
    headings: tuple[ComparisonLine, ...] = ()
    conditions: tuple[ComparisonLine, ...] = ()


def shipped_slugs(flow: Flow) -> Mapping[str, str]:
    """The illustrative personas dibot ships: slug -> source."""
    try:
        return {spec.slug: spec.source for spec in read_personas(ILLUSTRATIVE_PERSONAS, flow)}
    except PersonaError:  # a council's flow the shipped set does not fit: none are shipped
        return {}


def persona_line(
    flow: Flow, persona: StoredPersona, visible: Mapping[int, str], shipped: Mapping[str, str]
) -> PersonaLine:
    if persona.cohort_id is None:
        cohort = "None"
    else:
        cohort = visible.get(persona.cohort_id, "Another team's cohort")
    illustrative = shipped.get(persona.slug) == persona.source
    try:
        ranked = likely_priorities(flow, persona.answers)[: flow.priority.top]
    except (KeyError, ValueError) as error:  # stored under a flow this one no longer fits
        return PersonaLine(
            persona, _mode(persona.mode), cohort, (), illustrative, f"Cannot be scored: {error}"
        )
    names = tuple(unit_name(flow, priority.unit, LANGUAGE) for priority in ranked)
    return PersonaLine(persona, _mode(persona.mode), cohort, names, illustrative)


def _mode(mode: str) -> str:
    return MODE_WORDS.get(mode, mode)


def heading_lines(flow: Flow, answers: Mapping[str, int]) -> tuple[HeadingLine, ...]:
    scored = profile(flow, answers)
    return tuple(
        HeadingLine(
            _english(flow.heading(heading.id).short),
            percent(heading.skill),
            percent(heading.interest),
        )
        for heading in scored.headings
    )


def in_the_way(flow: Flow, answers: Mapping[str, int]) -> tuple[str, ...]:
    """The basics the persona lacks and the blockers that stop them, by name."""
    scored = profile(flow, answers)
    return tuple(
        _english(flow.item(item).title) for item in (*scored.missing_basics, *scored.barriers)
    )


def cohort_summary_for(
    conn: sa.Connection, flow: Flow, member: StaffMember, cohort_id: int
) -> CohortSummary:
    """The cohort at each person's latest completed first check, over the people `member` may
    see (as the report takes its picture)."""
    tally = CohortTally(flow)
    for person in iter_people(conn, selection_for(member, cohort_id)):
        baseline, _ = latest_pair(person)
        if baseline is not None:
            tally.add(profile(flow, baseline.options()))
    return tally.summary()


def comparison_of(
    flow: Flow, cohort: Any, summary: CohortSummary, compared: PersonaComparison | None
) -> Comparison:
    if compared is None or summary.count < MIN_GROUP:
        return Comparison(cohort, summary.count, withheld=True)
    headings = tuple(
        ComparisonLine(
            f"{_english(flow.heading(line.heading).short)} ({aspect})",
            percent(getattr(line, f"cohort_{aspect}")),
            percent(getattr(line, f"persona_{aspect}")),
            points_difference(getattr(line, f"{aspect}_difference")),
        )
        for aspect in ("skill", "interest")
        for line in compared.headings
    )
    conditions = tuple(
        ComparisonLine(
            f"{kind}: {_english(flow.item(line.item).short)}",
            percent(line.cohort_share),
            "Yes" if line.persona_has else "No",
            "",
        )
        for kind, lines in (
            ("Missing a basic", compared.missing_basics),
            ("Stopped by", compared.barriers),
        )
        for line in lines
    )
    return Comparison(cohort, summary.count, False, headings, conditions)


# --- the routes ----------------------------------------------------------------------------


def register(pages: Blueprint, site: Site) -> None:
    flow = site.runtime.flow
    form_class, groups = persona_form_class(flow)
    shipped = shipped_slugs(flow)

    def cohort_names(conn: sa.Connection, member: StaffMember) -> dict[int, str]:
        return {row.id: row.name for row in visible_cohorts(conn, member)}

    @pages.get("/personas", endpoint="personas")
    @site.staff_page
    def personas_page(member: StaffMember) -> ResponseReturnValue:
        with site.engine.connect() as connection:
            conn = read_only(connection)
            stored = all_personas(conn)
            visible = cohort_names(conn, member)
        lines = [persona_line(flow, persona, visible, shipped) for persona in stored]
        return render_template(
            "impact/personas.html",
            lines=lines,
            any_illustrative=any(line.illustrative for line in lines),
        )

    @pages.get(f"/personas/<int(min=1, max={MAX_ID}):persona_id>", endpoint="persona")
    @site.staff_page
    def persona_page(member: StaffMember, persona_id: int) -> ResponseReturnValue:
        chosen = _cohort_id(request.args.get("cohort"))
        comparison = None
        with site.engine.connect() as connection:
            conn = read_only(connection)
            found = [persona for persona in all_personas(conn) if persona.id == persona_id]
            if not found:
                abort(404)
            persona = found[0]
            visible = visible_cohorts(conn, member)
            line = persona_line(flow, persona, {row.id: row.name for row in visible}, shipped)
            if chosen is not None:
                cohort = cohort_or_404(conn, member, chosen)
                summary = cohort_summary_for(conn, flow, member, chosen)
                compared = None
                if line.problem is None:
                    compared = compare_with_persona(flow, summary, profile(flow, persona.answers))
                comparison = comparison_of(flow, cohort, summary, compared)
        if comparison is not None:
            site.audit_view(
                member,
                "compare persona",
                detail=f"persona {persona_id} with cohort {chosen}, {comparison.people} people",
            )
        default = chosen
        if default is None and persona.cohort_id in {row.id for row in visible}:
            default = persona.cohort_id
        return render_template(
            "impact/persona.html",
            line=line,
            persona=persona,
            headings=heading_lines(flow, persona.answers) if line.problem is None else (),
            in_the_way=in_the_way(flow, persona.answers) if line.problem is None else (),
            answers=_answer_lines(flow, persona.answers),
            cohorts=visible,
            chosen=default,
            comparison=comparison,
            min_group=MIN_GROUP,
        )

    @pages.route("/personas/new", methods=["GET", "POST"], endpoint="new_persona")
    @site.staff_page
    def new_persona_page(member: StaffMember) -> ResponseReturnValue:
        form = form_class()
        with site.engine.connect() as connection:
            visible = visible_cohorts(read_only(connection), member)
        if not form.is_submitted():
            return _form_page(form, groups, visible)
        cohort_id = None
        with site.engine.connect() as connection:
            conn = read_only(connection)
            if form.cohort.data:  # one of the member's cohorts, or 404 as anywhere else
                cohort_id = cohort_or_404(conn, member, _cohort_id(form.cohort.data) or 0).id
            taken = {persona.slug for persona in all_personas(conn)}
        spec = checked_spec(flow, form, by=member.email, taken=taken)
        if spec is None:
            return _form_page(form, groups, visible)
        try:
            with site.engine.begin() as conn:
                saved = save_persona(
                    conn, flow, spec, by=member.email, cohort_id=cohort_id, now=site.now()
                )
                site.audit(
                    conn,
                    member,
                    "save persona",
                    detail=f"persona {saved.id} {saved.slug}"
                    + (f", cohort {cohort_id}" if cohort_id is not None else ""),
                )
        except PersonaError as error:  # the form asks only what the flow allows: not expected
            form.name.errors.append(f"The persona cannot be saved: {error}")
            return _form_page(form, groups, visible)
        flash(f"Persona {saved.name} saved")
        return redirect(url_for(".persona", persona_id=saved.id))

    def _form_page(
        form: PersonaFormBase, shown: Sequence[QuestionGroup], visible: Sequence[Any]
    ) -> str:
        return render_template("impact/persona_new.html", form=form, groups=shown, cohorts=visible)


def _cohort_id(text: str | None) -> int | None:
    """A cohort id from a query or a form, or None when it is not one; an id too large for the
    database counts as one that does not exist (404 later), not an error."""
    if text is None or not text.isascii() or not text.isdigit() or len(text) > 19:
        return None
    number = int(text)
    return number if 0 < number <= MAX_ID else None


def _answer_lines(flow: Flow, answers: Mapping[str, int]) -> tuple[tuple[str, str], ...]:
    """Each answer as (the question, the option's label), in the flow's order."""
    lines = []
    for key, question in flow.questions.items():
        if key in answers:
            try:
                label = _english(flow.scale_of(question).option(answers[key]).label)
            except (KeyError, ValueError):
                label = f"Option {answers[key]}"
            lines.append((_english(question.text), label))
    return tuple(lines)
