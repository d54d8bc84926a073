"""`dibot send`: an outreach worker's follow-up text to a resident, or the end of the thread.

    dibot send --phone NUMBER --text TEXT
    dibot send --phone NUMBER --template NAME [--value key=value]…
    dibot send --phone NUMBER --close

The rule it keeps: it says in a line or two what it queued (SMS segments, quiet hours, until
when the thread stays open) or closed, in the council's clock, and refuses in one line what
cannot be done, queueing nothing; never a whole phone number or the text. Who wrote it is the
operator running the command unless `--by` names someone else. A template's {council} and
{helpline} are the council's, {worker} the sender, any other placeholder a `--value`.
"""

from __future__ import annotations

import argparse
import getpass
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from dibot.config import Config, ConfigError
from dibot.privacy_commands import keyed_engine, phone_urn
from dibot.runtime import check_privacy, load_configured_flow
from outreach.followups import (
    FollowUpError,
    FollowUpRequest,
    Sent,
    close_thread,
    fill_template,
    send_followup,
    template_placeholders,
)
from outreach.phone import PhoneNumberError
from outreach.quiet_hours import parse_quiet_hours

BUILT_IN_VALUES = ("council", "helpline", "worker")


def add_send_options(parser: argparse.ArgumentParser) -> None:
    who = parser.add_mutually_exclusive_group(required=True)
    who.add_argument("--phone", metavar="NUMBER", help="their UK number, e.g. 07700 900123")
    who.add_argument("--telegram", metavar="CHAT_ID", help="their Telegram chat id")
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--text", metavar="TEXT", help="what to send them")
    what.add_argument(
        "--template", metavar="NAME", help="a text from [outreach.templates], filled in"
    )
    what.add_argument(
        "--close",
        action="store_true",
        help="close the follow-up thread: the bot carries on where they were",
    )
    parser.add_argument(
        "--value",
        metavar="KEY=VALUE",
        action="append",
        default=[],
        help="a template placeholder's value (repeat for each)",
    )
    parser.add_argument("--by", metavar="NAME", help="who is writing (default: you)")


def send_command(
    arguments: argparse.Namespace, config: Config, now: Callable[[], datetime] | None = None
) -> int:
    """Queue a follow-up (opening or extending the thread), or close the thread."""
    if arguments.phone is not None:
        phone_urn(arguments.phone)  # a clear one-line refusal before anything is opened
    by = arguments.by if arguments.by is not None else getpass.getuser()
    if arguments.value and arguments.template is None:
        raise ConfigError("--value fills in a --template's placeholders: give --template NAME")
    when = (now or _utc_now)()
    if arguments.close:
        return _close(arguments, config, by, when)
    text = arguments.text
    if arguments.template is not None:
        text = template_text(config, arguments.template, arguments.value, by)
    outreach = config.outreach
    quiet = parse_quiet_hours(outreach.quiet_hours, outreach.quiet_days, outreach.timezone)
    request = FollowUpRequest(phone=arguments.phone, telegram=arguments.telegram, text=text, by=by)
    flow = load_configured_flow(config)
    check_privacy(config)
    engine = keyed_engine(config)
    try:
        sent = send_followup(engine, flow, request, quiet, outreach.thread_hours, when)
    except (FollowUpError, PhoneNumberError) as error:
        raise ConfigError(str(error)) from None
    finally:
        engine.dispose()
    print(sent_line(sent, ZoneInfo(outreach.timezone)))
    if sent.segments.encoding == "UCS-2" and sent.channel == "sms":
        print(
            "it goes as UCS-2 (for a character such as an emoji, a curly quote or a Welsh "
            "accent): 70 characters in one SMS segment, 67 in each of several"
        )
    return 0


def template_text(config: Config, name: str, given: Sequence[str], by: str) -> str:
    """The named template filled in: the council's {council} and {helpline}, {worker}, and
    each `key=value` given; ConfigError names what is missing or left over."""
    templates = config.outreach.templates
    template = templates.get(name.strip().lower())
    if template is None:
        offered = ", ".join(sorted(templates)) or "none: add them to [outreach.templates]"
        raise ConfigError(f"--template: no template named {name!r} (templates: {offered})")
    values: dict[str, str] = {
        "council": config.council.name,
        "helpline": config.council.helpline,
        "worker": by,
    }
    extra = _values(given)
    try:
        wanted = template_placeholders(template)
        unused = sorted(set(extra) - set(wanted))
        if unused:
            raise FollowUpError(
                f"--value {unused[0]}: the template {name!r} has no {{{unused[0]}}}"
            )
        return fill_template(template, {**values, **extra})
    except FollowUpError as error:
        raise ConfigError(str(error)) from None


def sent_line(sent: Sent, zone: ZoneInfo) -> str:
    """ "follow-up queued: 1 message, 2 SMS segments[, held by quiet hours until …]; thread
    open until …", times in the council's clock."""
    segments = sent.segments.segments
    held = f", held by quiet hours until {_local(sent.send_after, zone)}" if sent.send_after else ""
    opened = "thread open" if sent.new_thread else "thread kept open"
    return (
        f"follow-up queued: 1 message, {segments} SMS segment{'s' * (segments != 1)}{held}; "
        f"{opened} until {_local(sent.thread_closes_at, zone)}"
    )


def _close(arguments: argparse.Namespace, config: Config, by: str, now: datetime) -> int:
    check_privacy(config)
    engine = keyed_engine(config)
    try:
        closed = close_thread(engine, arguments.phone, by, now, telegram=arguments.telegram)
    except (FollowUpError, PhoneNumberError) as error:
        raise ConfigError(str(error)) from None
    finally:
        engine.dispose()
    zone = ZoneInfo(config.outreach.timezone)
    held = f"{closed.held} text{'s' * (closed.held != 1)} of theirs held in it"
    print(
        f"thread closed (opened by {closed.opened_by} {_local(closed.opened_at, zone)}; {held}); "
        "the bot carries on where they were"
    )
    return 0


def _values(given: Sequence[str]) -> Mapping[str, str]:
    values: dict[str, str] = {}
    for item in given:
        key, equals, value = item.partition("=")
        key = key.strip()
        if not equals or not key.isidentifier():
            raise ConfigError("--value must be KEY=VALUE, KEY a name such as place")
        if key in BUILT_IN_VALUES:
            raise ConfigError(f"--value {key}: {{{key}}} is filled in already (--by, [council])")
        values[key] = value
    return values


def _local(moment: datetime, zone: ZoneInfo) -> str:
    return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M %Z")


def _utc_now() -> datetime:
    return datetime.now(UTC)
