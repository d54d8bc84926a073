"""Twilio SMS: check the signature before reading anything, then one turn, answered in TwiML.

Nothing from a request whose `X-Twilio-Signature` does not match is stored or logged. The
signature covers the URL Twilio requested, which behind a TLS proxy is not `request.url`, so it
is rebuilt from `twilio.public_url`; it covers every parameter that arrived, so it is checked
over `request.form` itself, never a whitelist. After that only MessageSid, From, Body and
NumMedia are read: geo fields (FromCity…) are never kept.

Twilio's own opt-out words block the sender at Twilio, which confirms it itself; the turn still
records the opt-out, but the TwiML carries no message, since Twilio would refuse it (21610).

Delivery reports (`POST /webhooks/twilio/status`, signed the same way) are recorded on the
outbox row whose Message SID they name, never moving a final status backwards, and always
answered 204 (a report for a message we do not know included): Twilio would only send it
again. Their error codes that say the number cannot be texted mark the respondent opted out
(21610) or unreachable (`UNREACHABLE_CODES`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime

import sqlalchemy as sa
from flask import Blueprint, Response, request
from twilio.request_validator import RequestValidator
from twilio.twiml.messaging_response import MessagingResponse
from werkzeug.datastructures import MultiDict

from bot.messages import Inbound, Outbound, clean_text
from channels.identifiers import is_message_id, is_phone_number
from dibot.runtime import Runtime
from storage import outbox
from storage.models import DELIVERY_STATUSES
from storage.outbox import DeliveryRecord

CHANNEL = "sms"
SIGNATURE_HEADER = "X-Twilio-Signature"
OPT_OUT_KEYWORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"})
"""Twilio blocks the sender on these words alone and confirms it itself; any reply of ours
would be refused with error 21610."""
UNSUBSCRIBED_RECIPIENT = 21610
UNREACHABLE_CODES = frozenset({30003, 30005, 30006})
"""Delivery errors that say the number cannot take texts: unreachable handset (30003), unknown
or inactive number (30005), landline or unreachable carrier (30006). Others, such as carrier
filtering (30007) or unknown (30008), may pass and are only recorded."""
MAX_ERROR_CODE_DIGITS = 9

log = logging.getLogger(__name__)


def blueprint(runtime: Runtime) -> Blueprint:
    """`POST /webhooks/twilio/sms` (inbound messages) and `/webhooks/twilio/status`."""
    twilio = runtime.config.twilio
    validator = RequestValidator(twilio.auth_token) if twilio.auth_token else None
    public_url = twilio.public_url.rstrip("/")
    if validator is None:
        log.warning("twilio.auth_token is not set: every Twilio webhook will be refused")
    routes = Blueprint("twilio_sms", __name__, url_prefix="/webhooks/twilio")

    @routes.before_request
    def refuse_unsigned() -> Response | None:
        url = public_url + _path_and_query() if public_url else request.url
        signature = request.headers.get(SIGNATURE_HEADER, "")
        if validator is not None and validator.validate(url, request.form, signature):
            return None
        log.warning("refused a Twilio webhook to %s: signature does not match", request.path)
        return Response("Forbidden\n", status=403, mimetype="text/plain")

    @routes.post("/sms")
    def inbound_sms() -> Response:
        form = request.form
        message_id, sender = form.get("MessageSid", ""), form.get("From", "")
        if not message_id or not sender:
            return Response("MessageSid and From are required\n", 400, mimetype="text/plain")
        if not is_message_id(message_id):
            return Response("MessageSid is not a message id\n", 400, mimetype="text/plain")
        if not is_phone_number(sender):
            return Response("From is not a phone number\n", 400, mimetype="text/plain")
        twilio_confirms = form.get("Body", "").strip().upper() in OPT_OUT_KEYWORDS
        result = runtime.handler.handle(
            channel=CHANNEL,
            message_id=message_id,
            urn="tel:" + sender,
            inbound=parse_inbound(form),
            replies_withheld=twilio_confirms,
        )
        replies = () if twilio_confirms else result.replies
        return Response(twiml(replies), mimetype="text/xml")

    @routes.post("/status")
    def delivery_status() -> Response:
        take_delivery_report(
            request.form,
            runtime.engine,
            mark_opted_out=runtime.handler.mark_opted_out,
            mark_unreachable=runtime.handler.mark_unreachable,
            now=datetime.now(UTC),
        )
        return Response(status=204)

    return routes


def take_delivery_report(
    form: MultiDict[str, str],
    engine: sa.Engine,
    *,
    mark_opted_out: Callable[[str], None],
    mark_unreachable: Callable[[str], None],
    now: datetime,
) -> DeliveryRecord | None:
    """Record a signed status callback on the outbox row Twilio's MessageSid names (see
    `storage.outbox.record_delivery`: never backwards), and act on its ErrorCode when the row
    holds that status: 21610 opts the respondent out, `UNREACHABLE_CODES` mark them
    unreachable, any other code is only recorded. A report for a message we did not send (an
    unknown SID), of a status we do not keep, or with ids no provider sends, changes nothing;
    except that a 21610 always opts the number in `To` out, as Twilio has blocked it. None when
    nothing was looked up."""
    message_id, status = form.get("MessageSid", ""), form.get("MessageStatus", "")
    error_code = _error_code(form.get("ErrorCode", ""))
    record = None
    if is_message_id(message_id) and status in DELIVERY_STATUSES:
        record = outbox.record_delivery(engine, message_id, status, error_code, now)
    agrees = record is not None and record.found and record.status == status
    urn = record.urn if record is not None and agrees else None
    if error_code == UNSUBSCRIBED_RECIPIENT:
        recipient = form.get("To", "")
        if urn is None and is_phone_number(recipient):
            urn = "tel:" + recipient
        if urn is not None:
            log.info("delivery report: error %d, the respondent opted out at Twilio", error_code)
            mark_opted_out(urn)
    elif error_code in UNREACHABLE_CODES and urn is not None:
        log.info("delivery report: error %d, the respondent is unreachable", error_code)
        mark_unreachable(urn)
    return record


def _error_code(value: str) -> int | None:
    value = value.strip()
    if value.isascii() and value.isdigit() and len(value) <= MAX_ERROR_CODE_DIGITS:
        return int(value)
    return None


def parse_inbound(form: MultiDict[str, str]) -> Inbound:
    """The words and whether media came with them; nothing else of Twilio's parameters."""
    text = clean_text(form.get("Body", ""))
    media = form.get("NumMedia", "0").strip()
    return Inbound(text=text, has_media=media.isascii() and media.isdigit() and int(media) > 0)


def twiml(replies: tuple[Outbound, ...]) -> str:
    """One <Message> per reply; an empty <Response/> sends nothing."""
    response = MessagingResponse()
    for reply in replies:
        response.message(reply.text)
    return str(response)


def _path_and_query() -> str:
    query = request.query_string.decode("latin-1")
    return f"{request.path}?{query}" if query else request.path
