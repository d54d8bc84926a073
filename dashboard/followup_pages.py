"""Follow-up texts: an outreach worker reads a resident's follow-up thread, writes a text (or
fills in a template from `[outreach.templates]`) and sends it, or closes the thread.

The rules it keeps:
- every page and action reaches the resident through `respondent_or_404` (another team's
  resident is a 404, as a missing one is) and writes its audit line ("view thread", "send
  follow-up", "close thread") in the transaction that wrote, or just after the one that read;
- the length is counted on the server exactly as the browser counts it (`describe` here and in
  static/followup.js say the same words about the same text; a test runs both): the text as
  it will be sent, GSM-7 or UCS-2 (`flows.segments`), at most `MAX_SEGMENTS` texts. Over that,
  empty, or with a control character or an unreadable one, the text is refused with the
  reason in the error summary and nothing is sent, whatever the browser said;
- a text goes through `outreach.followups.queue_followup` with the worker's email as its
  sender, against the latest follow-up the page showed: the same form sent twice (a double
  click, a resubmission) texts the resident once;
- nothing is offered to send to a resident who opted out or whom texts cannot reach; times are
  the council's (`[outreach] timezone`); the number is shown masked.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_wtf import FlaskForm
from wtforms import HiddenField, StringField, TextAreaField

from dashboard.accounts import StaffMember
from dashboard.site import Site, respondent_or_404
from flows.segments import count_segments
from outreach.followups import (
    MAX_SEGMENTS,
    SMS_CHANNEL,
    Closed,
    FollowUpError,
    FollowUpRequest,
    NothingOpen,
    NotLatest,
    Sent,
    end_thread,
    fill_template,
    last_followup,
    queue_followup,
    template_placeholders,
)
from outreach.phone import masked_urn
from outreach.quiet_hours import parse_quiet_hours
from storage import timeline
from storage.database import read_only
from storage.models import FollowUpThread, OutboxEntry, table
from storage.privacy import keys_of

threads = table(FollowUpThread)
outbox = table(OutboxEntry)

PATH = "/respondents/<int:respondent_id>/follow-up"
BUILT_IN = ("council", "helpline")
"""Placeholders the council's configuration fills in; the worker gives every other."""

# What static/followup.js knows too (a test holds them equal).
PYTHON_SPACES = frozenset(chr(code) for code in range(0x3001) if chr(code).isspace())
INVISIBLE = frozenset("\u00ad\u200b\u200c\u200d\u200e\u200f\u2060\ufeff")
CONTROL_PROBLEM = (
    "The text has a character that cannot go in a text message (a control character): remove it"
)
UNREADABLE_PROBLEM = (
    "The text has a character that could not be read (shown as \ufffd): type it again"
)
EMPTY = "Enter the text to send"
NOT_LATEST = (
    "A text went to them after you opened this page (it is in the thread below): nothing was "
    "sent. Send yours again if you still want to"
)


# --- the count, as static/followup.js makes it -------------------------------------------------


def _is_control(code: int) -> bool:
    return code <= 0x08 or code in (0x0B, 0x0C) or 0x0E <= code <= 0x1F or 0x7F <= code <= 0x9F


def problem(text: str) -> str | None:
    """What stops the text being sent whatever its length, or None."""
    unreadable = False
    for char in text:
        code = ord(char)
        if _is_control(code):
            return CONTROL_PROBLEM
        if 0xD800 <= code <= 0xDFFF or code == 0xFFFD:
            unreadable = True
    return UNREADABLE_PROBLEM if unreadable else None


def prepared(text: str) -> str:
    """The text as it will be sent: line breaks as "\\n" (a browser posts "\\r\\n"), ends
    trimmed."""
    return text.replace("\r\n", "\n").replace("\r", "\n").strip()


def _number(value: int) -> str:
    return f"{value:,}"


def _plural(value: int, noun: str) -> str:
    return f"{_number(value)} {noun}{'' if value == 1 else 's'}"


def _named(char: str) -> str:
    if char == "\t":
        return "a tab"
    if char in PYTHON_SPACES:
        return "an unusual space"
    if char in INVISIBLE:
        return "an invisible character"
    return f"\u201c{char}\u201d"


def _first_special(text: str) -> str:
    return next(char for char in text if count_segments(char).encoding == "UCS-2")


def describe(text: str) -> str:
    """What the counter under the text says about it (static/followup.js says the same)."""
    refused = problem(text)
    if refused:
        return f"{refused}."
    sent = prepared(text)
    if not sent:
        return "0 characters."
    count = count_segments(sent)
    said = f"{_plural(count.units, 'character')}: {_plural(count.segments, 'text')}."
    if count.encoding == "GSM-7":
        said += " Plain characters (GSM-7): 160 characters a text, 153 each when it needs more."
        if count.units > len(sent):
            said += " Each ^ { } [ ] ~ | \u20ac and \\ counts as 2."
    else:
        said += (
            f" Uses special characters (UCS-2), such as {_named(_first_special(sent))}:"
            " 70 characters a text, 67 each when it needs more."
        )
        if count.units > len(sent):
            said += " Each emoji counts as 2."
    if count.segments > MAX_SEGMENTS:
        said += f" Too long: at most {MAX_SEGMENTS} texts can go, so shorten it."
    return said


def text_error(text: str) -> str | None:
    """Why the text cannot be sent (for the error summary), or None."""
    refused = problem(text)
    if refused:
        return refused
    sent = prepared(text)
    if not sent:
        return EMPTY
    count = count_segments(sent)
    if count.segments > MAX_SEGMENTS:
        return (
            f"The text is {_plural(count.segments, 'text')} long "
            f"({_plural(count.units, 'character')}, {count.encoding}): at most {MAX_SEGMENTS} "
            "texts can go, so shorten it"
        )
    return None


# --- the thread --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Message:
    outgoing: bool
    who: str
    at: str
    at_iso: str
    text: str
    status: str
    status_class: str


@dataclass(frozen=True)
class Thread:
    id: int
    opened: str
    state: str
    is_open: bool
    closes: str
    messages: tuple[Message, ...]


def when(moment: datetime, zone: ZoneInfo) -> str:
    """ "1 December 2026 at 11am", "4 December 2026 at 5:30pm": in the council's clock."""
    local = moment.astimezone(zone)
    hour = local.hour % 12 or 12
    minutes = f":{local.minute:02d}" if local.minute else ""
    return f"{local.day} {local:%B %Y} at {hour}{minutes}{'am' if local.hour < 12 else 'pm'}"


def delivery(
    item: timeline.TimelineItem, waits_until: datetime | None, now: datetime, zone: ZoneInfo
) -> tuple[str, str]:
    """What became of a text sent to the resident, and the tag's colour."""
    status = item.send_status
    if status == "pending":
        if waits_until is not None and waits_until > now:
            return f"Waits to send until {when(waits_until, zone)}", "govuk-tag--yellow"
        return "Waiting to send", "govuk-tag--grey"
    if status in ("claimed", "sending"):
        return "Sending", "govuk-tag--light-blue"
    if status == "failed":
        return "Not sent", "govuk-tag--red"
    if status == "unknown":
        return "May not have been sent", "govuk-tag--orange"
    if status == "sent":
        reported = item.delivery_status
        if reported in ("delivered", "read"):
            return reported.capitalize(), "govuk-tag--green"
        if reported in ("undelivered", "failed"):
            code = f" (error {item.delivery_error_code})" if item.delivery_error_code else ""
            return f"Not delivered{code}", "govuk-tag--red"
        return "Sent", "govuk-tag--blue"
    return "", ""


def thread_page(
    items: Sequence[timeline.TimelineItem],
    thread_rows: Sequence[Any],
    waits: Mapping[int, datetime],
    now: datetime,
    zone: ZoneInfo,
) -> list[Thread]:
    """The resident's follow-up threads, oldest first, each with its messages both ways."""
    found = []
    for row in thread_rows:
        messages = []
        for item in items:
            if item.thread_id != row.id:
                continue
            outgoing = item.direction == "out"
            status, colour = (
                delivery(item, waits.get(item.outbox_id or 0), now, zone) if outgoing else ("", "")
            )
            messages.append(
                Message(
                    outgoing=outgoing,
                    who=(item.by or "Council") if outgoing else "Resident",
                    at=when(item.at, zone),
                    at_iso=item.at.isoformat(),
                    text="(text removed after the retention period)"
                    if item.text is None
                    else item.text,
                    status=status,
                    status_class=colour,
                )
            )
        is_open = row.closed_at is None and row.closes_at > now
        if is_open:
            state = f"Open: closes by itself on {when(row.closes_at, zone)}"
        elif row.closed_at is None:
            state = f"Closed by itself on {when(row.closes_at, zone)}"
        elif row.closed_by == "resident":
            state = f"Closed when they texted STOP or START on {when(row.closed_at, zone)}"
        else:
            state = f"Closed by {row.closed_by} on {when(row.closed_at, zone)}"
        found.append(
            Thread(
                id=row.id,
                opened=f"Opened by {row.opened_by} on {when(row.opened_at, zone)}",
                state=state,
                is_open=is_open,
                closes=when(row.closes_at, zone),
                messages=tuple(messages),
            )
        )
    return found


def why_not(person: Any) -> str | None:
    """Why nothing can be sent to them, or None."""
    if person.opted_out:
        return (
            "They opted out of texts (they texted STOP), so nothing can be sent to them. "
            "If they text START, you can text them again."
        )
    if person.unreachable:
        return (
            "Texts cannot reach them: the provider refused the last one (the number may no "
            "longer work, or they blocked the bot). You can text them again once they write to us."
        )
    return None


def sent_message(sent: Sent, who: str, zone: ZoneInfo) -> str:
    """The banner after sending."""
    amount = _plural(sent.segments.segments, "text") if sent.channel == SMS_CHANNEL else "1 message"
    closes = f"it closes on {when(sent.thread_closes_at, zone)}, or close it now"
    if sent.send_after is not None:
        return (
            f"Ready to send to {who}: {amount}. It waits for quiet hours until "
            f"{when(sent.send_after, zone)}. The bot is quiet while the thread is open; {closes}."
        )
    return f"Sent to {who}: {amount}. The bot is quiet while the thread is open; {closes}."


def closed_message(closed: Closed) -> str:
    held = _plural(closed.held, "text")
    return (
        f"Thread closed: {held} of theirs came in while it was open. The bot carries on with "
        "their questions where they left off."
    )


# --- forms ---------------------------------------------------------------------------------------


class FollowUpForm(FlaskForm):  # type: ignore[misc]  # Flask-WTF is untyped
    text = TextAreaField("Text to send")
    template = HiddenField()
    after = HiddenField()


def value_field(name: str) -> str:
    return f"value_{name}"


def followup_form(asked: Sequence[str]) -> FollowUpForm:
    """The form, with a field for each of the template's placeholders the worker fills in."""

    class TemplateForm(FollowUpForm):
        pass

    for name in asked:
        hint = "your name, as the resident knows you" if name == "worker" else None
        label = f"{{{name}}}" + (f": {hint}" if hint else "")
        setattr(TemplateForm, value_field(name), StringField(label))
    return TemplateForm()


@dataclass(frozen=True)
class Chosen:
    name: str
    template: str
    asked: tuple[str, ...]
    given: Mapping[str, str]


def _recipient(urn: str) -> dict[str, str | None]:
    scheme, _, address = urn.partition(":")
    if scheme == "telegram":
        return {"phone": None, "telegram": address}
    return {"phone": address, "telegram": None}


def _sentence(error: FollowUpError) -> str:
    said = str(error)
    return said[:1].upper() + said[1:]


def _after(value: Any) -> int:
    text = str(value or "")
    return int(text) if text.isascii() and text.isdigit() and len(text) < 19 else 0


# --- routes --------------------------------------------------------------------------------------


def register(pages: Blueprint, site: Site) -> None:
    config = site.runtime.config
    zone = ZoneInfo(config.outreach.timezone)

    def built_in() -> dict[str, str]:
        return {"council": config.council.name, "helpline": config.council.helpline}

    def render(
        member: StaffMember,
        respondent_id: int,
        form: FollowUpForm,
        *,
        chosen: Chosen | None,
        counter: str | None = None,
        error: str | None = None,
        error_field: str = "text",
        status: int = 200,
    ) -> ResponseReturnValue:
        now = site.now()
        with site.engine.connect() as connection:
            conn = read_only(connection)
            person = respondent_or_404(conn, member, respondent_id)
            keys = keys_of(conn)
            urn = keys.decrypt(person.urn_cipher)
            items = timeline.read(conn, respondent_id, keys)
            rows = conn.execute(
                sa.select(threads)
                .where(threads.c.respondent_id == respondent_id)
                .order_by(threads.c.opened_at, threads.c.id)
            ).all()
            waiting = [
                item.outbox_id
                for item in items
                if item.thread_id is not None and item.send_status == "pending" and item.outbox_id
            ]
            waits = {
                row.id: row.next_attempt_at
                for row in conn.execute(
                    sa.select(outbox.c.id, outbox.c.next_attempt_at).where(outbox.c.id.in_(waiting))
                )
            }
            if not form.after.data:
                form.after.data = str(last_followup(conn, respondent_id))
        site.audit_view(member, "view thread", respondent_id=respondent_id)
        shown = thread_page(items, rows, waits, now, zone)
        text = (
            fill_template(chosen.template, {**built_in(), **chosen.given})
            if chosen is not None
            else form.text.data or ""
        )
        body = render_template(
            "followup.html",
            respondent_id=respondent_id,
            who=masked_urn(urn),
            threads=shown,
            open_thread=next((t for t in shown if t.is_open), None),
            why_not=why_not(person),
            form=form,
            error=error,
            error_field=error_field,
            chosen=chosen,
            templates=sorted(config.outreach.templates),
            built_in=json.dumps(built_in()),
            value_field=value_field,
            preview=text,
            counter=counter,
        )
        return body, status

    def choose(name: str) -> tuple[Chosen | None, str | None]:
        """The template named (and what the worker gave for it), or why it cannot be used."""
        templates = config.outreach.templates
        key = name.strip().lower()
        if not key:
            return None, None
        template = templates.get(key)
        if template is None:
            return None, "Choose a template from the list"
        try:
            names = template_placeholders(template)
        except FollowUpError as problem_found:
            return None, f"The template \u201c{key}\u201d cannot be used: {problem_found}"
        asked = tuple(n for n in names if n not in BUILT_IN)
        given = {n: request.form.get(value_field(n), "") for n in asked}
        return Chosen(key, template, asked, given), None

    @pages.route(PATH, methods=["GET", "POST"], endpoint="followup")
    @site.staff_page
    def followup(member: StaffMember, respondent_id: int) -> ResponseReturnValue:
        if request.method == "POST":
            return send(member, respondent_id)
        chosen, error = choose(request.args.get("template", ""))
        form = followup_form(chosen.asked if chosen else ())
        form.template.data = chosen.name if chosen else ""
        return render(
            member,
            respondent_id,
            form,
            chosen=chosen,
            error=error,
            error_field="template-pick",
        )

    def send(member: StaffMember, respondent_id: int) -> ResponseReturnValue:
        chosen, error = choose(request.form.get("template", ""))
        form = followup_form(chosen.asked if chosen else ())
        if error is not None:
            return render(member, respondent_id, form, chosen=None, error=error, status=400)
        text = form.text.data or ""
        missing = False
        if chosen is not None:
            for name in chosen.asked:
                if not chosen.given[name].strip():
                    getattr(form, value_field(name)).errors = [f"Enter a value for {{{name}}}"]
                    missing = True
            text = fill_template(chosen.template, {**built_in(), **chosen.given})
        field = "text" if chosen is None else "preview"
        problem_found = None if missing else text_error(text)
        if problem_found is not None and chosen is None:
            form.text.errors = [problem_found]
        counter = describe(text)
        if missing or problem_found or request.form.get("action") != "send":
            failed = missing or problem_found is not None
            return render(
                member,
                respondent_id,
                form,
                chosen=chosen,
                counter=counter,
                error=problem_found if chosen is not None else None,
                error_field=field,
                status=400 if failed else 200,
            )
        quiet = parse_quiet_hours(
            config.outreach.quiet_hours, config.outreach.quiet_days, config.outreach.timezone
        )
        try:
            with site.engine.begin() as conn:
                person = respondent_or_404(conn, member, respondent_id)
                urn = keys_of(conn).decrypt(person.urn_cipher)
                sent = queue_followup(
                    conn,
                    site.runtime.flow,
                    FollowUpRequest(text=prepared(text), by=member.email, **_recipient(urn)),
                    quiet,
                    config.outreach.thread_hours,
                    site.now(),
                    after=_after(form.after.data),
                )
                site.audit(
                    conn,
                    member,
                    "send follow-up",
                    respondent_id=respondent_id,
                    detail=f"{sent.segments.segments} segments, {sent.segments.encoding}",
                )
        except NotLatest:
            form.after.data = ""  # the page shows what went since; sending again is deliberate
            return render(
                member,
                respondent_id,
                form,
                chosen=chosen,
                counter=counter,
                error=NOT_LATEST,
                error_field="thread",
                status=409,
            )
        except FollowUpError as refused:
            return render(
                member,
                respondent_id,
                form,
                chosen=chosen,
                counter=counter,
                error=_sentence(refused),
                error_field=field,
                status=400,
            )
        flash(sent_message(sent, masked_urn(urn), zone))
        return redirect(url_for(".followup", respondent_id=respondent_id))

    @pages.post(PATH + "/close", endpoint="followup_close")
    @site.staff_page
    def close(member: StaffMember, respondent_id: int) -> ResponseReturnValue:
        with site.engine.begin() as conn:
            person = respondent_or_404(conn, member, respondent_id)
            urn = keys_of(conn).decrypt(person.urn_cipher)
            try:
                closed = end_thread(conn, by=member.email, now=site.now(), **_recipient(urn))
            except NothingOpen:
                flash("No thread was open with them: there was nothing to close.")
            else:
                site.audit(conn, member, "close thread", respondent_id=respondent_id)
                flash(closed_message(closed))
        return redirect(url_for(".followup", respondent_id=respondent_id))
