"""The outbox hands each due message to exactly one worker, one respondent's in order, retries
only what the worker says certainly did not go, never re-sends what may have gone (a send begun
and not settled becomes "unknown" once its lease runs out), takes back a claim whose worker
died before it began, and never sends to someone who opted out."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from bot.messages import Button, Outbound
from dibot.turns import TurnHandler
from flows.model import Flow
from outreach.enrolment import EnrolmentRequest, enrol
from outreach.quiet_hours import parse_quiet_hours
from storage import outbox
from storage.models import OutboxEntry, Respondent, table
from tests.people import respondent_columns
from tests.turn_helpers import NOW, send

respondents, outbox_table = table(Respondent), table(OutboxEntry)
LATER = NOW + timedelta(minutes=5)


def add_respondent(engine: sa.Engine, urn: str, *, opted_out: bool = False) -> int:
    with engine.begin() as conn:
        respondent_id: int = conn.execute(
            sa.insert(respondents)
            .values(
                **respondent_columns(engine, urn),
                language="en",
                opted_out=opted_out,
                created_at=NOW,
            )
            .returning(respondents.c.id)
        ).scalar_one()
    return respondent_id


def queue(engine: sa.Engine, respondent_id: int, text: str, channel: str = "telegram") -> int:
    with engine.begin() as conn:
        return outbox.queue(
            conn,
            channel=channel,
            respondent_id=respondent_id,
            message=Outbound(text, (Button("1 Yes", "consent:1"),)),
            now=NOW,
        )


def status_of(engine: sa.Engine, message_id: int) -> tuple[Any, ...]:
    """(status, attempts, provider message id, error)"""
    with engine.connect() as conn:
        row = conn.execute(
            sa.select(
                outbox_table.c.status,
                outbox_table.c.attempts,
                outbox_table.c.provider_message_id,
                outbox_table.c.error,
            ).where(outbox_table.c.id == message_id)
        ).one()
    return tuple(row)


def test_a_queued_message_is_claimed_once_and_marked_sent(engine: sa.Engine) -> None:
    respondent = add_respondent(engine, "telegram:2001")
    message_id = queue(engine, respondent, "Hello")
    assert outbox.claim(engine, "sms", 10, NOW) == []  # another channel's worker
    [claimed] = outbox.claim(engine, "telegram", 10, NOW)
    assert (claimed.id, claimed.channel, claimed.urn, claimed.text) == (
        message_id,
        "telegram",
        "telegram:2001",
        "Hello",
    )
    assert (claimed.buttons, claimed.attempts) == ((Button("1 Yes", "consent:1"),), 1)
    assert status_of(engine, message_id) == ("claimed", 0, None, None)
    assert outbox.claim(engine, "telegram", 10, NOW) == []
    assert outbox.mark_sent(engine, claimed, "tg-77", NOW) is False  # not begun: nothing went
    assert outbox.begin(engine, claimed, NOW) is True
    assert outbox.begin(engine, claimed, NOW) is False  # once
    assert status_of(engine, message_id) == ("sending", 1, None, None)
    assert outbox.mark_sent(engine, claimed, "tg-77", NOW) is True
    assert status_of(engine, message_id) == ("sent", 1, "tg-77", None)


def test_claims_come_oldest_first_up_to_the_limit(engine: sa.Engine) -> None:
    people = [add_respondent(engine, f"telegram:20{n}2") for n in range(5)]
    ids = [queue(engine, respondent, f"message {n}") for n, respondent in enumerate(people)]
    assert [m.id for m in outbox.claim(engine, "telegram", 2, NOW)] == ids[:2]
    assert [m.id for m in outbox.claim(engine, "telegram", 10, NOW)] == ids[2:]


def test_one_respondents_messages_go_one_at_a_time_in_order(engine: sa.Engine) -> None:
    respondent = add_respondent(engine, "telegram:2012")
    first, second = queue(engine, respondent, "first"), queue(engine, respondent, "second")
    [claimed] = outbox.claim(engine, "telegram", 10, NOW)
    assert claimed.id == first
    assert outbox.claim(engine, "telegram", 10, NOW) == []  # behind the claimed one
    outbox.begin(engine, claimed, NOW)
    outbox.retry(engine, claimed, "500: Internal Server Error", NOW, LATER)
    assert outbox.claim(engine, "telegram", 10, NOW) == []  # behind one waiting for its retry
    [again] = outbox.claim(engine, "telegram", 10, LATER)
    assert again.id == first
    outbox.begin(engine, again, LATER)
    outbox.mark_unknown(engine, again, "no answer", LATER)  # settled, if not known
    assert [m.id for m in outbox.claim(engine, "telegram", 10, LATER)] == [second]


def test_a_failure_with_a_retry_time_is_claimed_again_only_from_then(engine: sa.Engine) -> None:
    respondent = add_respondent(engine, "telegram:2003")
    message_id = queue(engine, respondent, "Hello")
    [claimed] = outbox.claim(engine, "telegram", 10, NOW)
    outbox.begin(engine, claimed, NOW)
    assert outbox.retry(engine, claimed, "429 retry_after 300", NOW, LATER) is True
    assert status_of(engine, message_id) == ("pending", 1, None, "429 retry_after 300")
    assert outbox.claim(engine, "telegram", 10, LATER - timedelta(seconds=1)) == []
    [again] = outbox.claim(engine, "telegram", 10, LATER)
    assert (again.id, again.attempts) == (message_id, 2)
    assert outbox.mark_sent(engine, claimed, "stale", LATER) is False  # the old claim is spent


def test_a_failure_without_a_retry_time_is_final(engine: sa.Engine) -> None:
    respondent = add_respondent(engine, "telegram:2004")
    message_id = queue(engine, respondent, "Hello")
    [claimed] = outbox.claim(engine, "telegram", 10, NOW)
    outbox.begin(engine, claimed, NOW)
    outbox.mark_failed(engine, claimed, "400 chat not found", NOW)
    assert outbox.claim(engine, "telegram", 10, LATER) == []
    assert outbox.mark_sent(engine, claimed, "late", LATER) is False  # final stays final
    assert status_of(engine, message_id) == ("failed", 1, None, "400 chat not found")


def test_a_claim_whose_worker_died_before_sending_is_claimed_again_after_its_lease(
    engine: sa.Engine,
) -> None:
    respondent = add_respondent(engine, "telegram:2005")
    message_id = queue(engine, respondent, "Hello")
    lease = timedelta(seconds=30)
    [dead] = outbox.claim(engine, "telegram", 10, NOW, lease)  # and its worker dies
    assert outbox.claim(engine, "telegram", 10, NOW + lease - timedelta(seconds=1)) == []
    [taken] = outbox.claim(engine, "telegram", 10, NOW + lease)
    assert (taken.id, taken.attempts) == (message_id, 1)  # nothing was sent: no attempt
    assert taken.lease_token != dead.lease_token
    late = NOW + lease
    assert outbox.begin(engine, dead, late) is False  # the old claim can no longer send
    assert outbox.release(engine, dead, late, late) is False
    assert outbox.begin(engine, taken, late) is True
    assert outbox.mark_sent(engine, taken, "tg-1", late) is True


def test_a_claim_cannot_begin_once_its_lease_ran_out(engine: sa.Engine) -> None:
    respondent = add_respondent(engine, "telegram:2013")
    message_id = queue(engine, respondent, "Hello")
    [claimed] = outbox.claim(engine, "telegram", 10, NOW, timedelta(seconds=5))
    assert outbox.begin(engine, claimed, NOW + timedelta(seconds=5)) is False
    assert status_of(engine, message_id) == ("claimed", 0, None, None)


def test_a_send_whose_worker_died_becomes_unknown_never_resent(engine: sa.Engine) -> None:
    respondent = add_respondent(engine, "telegram:2014")
    message_id = queue(engine, respondent, "Hello")
    later_one = queue(engine, respondent, "the next question")
    [claimed] = outbox.claim(engine, "telegram", 10, NOW)
    outbox.begin(engine, claimed, NOW, lease=timedelta(minutes=2))  # and its worker dies
    assert outbox.claim(engine, "telegram", 10, NOW + timedelta(minutes=1)) == []
    assert outbox.count_unknown(engine, "telegram") == 0
    [after] = outbox.claim(engine, "telegram", 10, NOW + timedelta(minutes=2))
    assert after.id == later_one  # the lost one is settled as unknown, and the next goes
    status, attempts, _, error = status_of(engine, message_id)
    assert (status, attempts) == ("unknown", 1)
    assert error == outbox.LEASE_LOST_ERROR
    assert outbox.count_unknown(engine, "telegram") == 1
    assert outbox.count_unknown(engine, "sms") == 0
    assert outbox.mark_sent(engine, claimed, "too late", NOW + timedelta(minutes=3)) is False


def test_nothing_goes_to_someone_opted_out_or_unreachable(engine: sa.Engine) -> None:
    stopped = add_respondent(engine, "telegram:2006", opted_out=True)
    blocked = add_respondent(engine, "telegram:2007")
    with engine.begin() as conn:
        conn.execute(
            sa.update(respondents).where(respondents.c.id == blocked).values(unreachable=True)
        )
    reachable = add_respondent(engine, "telegram:2008")
    to_stopped, to_blocked = queue(engine, stopped, "a"), queue(engine, blocked, "b")
    to_reachable = queue(engine, reachable, "c")
    assert [m.id for m in outbox.claim(engine, "telegram", 10, NOW)] == [to_reachable]
    assert status_of(engine, to_stopped) == ("failed", 0, None, "opted out")
    assert status_of(engine, to_blocked) == ("failed", 0, None, "unreachable")


def test_a_turn_claims_its_own_replies_and_nothing_else(engine: sa.Engine) -> None:
    other = add_respondent(engine, "telegram:2015")
    elsewhere = queue(engine, other, "someone else's")
    respondent = add_respondent(engine, "telegram:2010")
    own = [queue(engine, respondent, "own"), queue(engine, respondent, "own too")]
    assert [m.id for m in outbox.claim_ids(engine, "telegram", own, NOW)] == own  # together
    assert outbox.claim_ids(engine, "telegram", own, NOW) == []  # already claimed
    assert outbox.claim_ids(engine, "telegram", [], NOW) == []
    assert [m.id for m in outbox.claim(engine, "telegram", 10, NOW)] == [elsewhere]


def test_a_turns_own_reply_waits_behind_an_older_one_to_the_same_chat(engine: sa.Engine) -> None:
    respondent = add_respondent(engine, "telegram:2016")
    older, own = queue(engine, respondent, "older"), queue(engine, respondent, "own")
    assert outbox.claim_ids(engine, "telegram", [own], NOW) == []  # left to the worker
    [first] = outbox.claim(engine, "telegram", 10, NOW)
    assert first.id == older
    outbox.begin(engine, first, NOW)
    outbox.mark_sent(engine, first, "tg-1", NOW)
    assert [m.id for m in outbox.claim_ids(engine, "telegram", [own], NOW)] == [own]


def test_the_reply_to_stop_is_sent_but_nothing_queued_before_it_or_by_staff(
    engine: sa.Engine, flow: Flow
) -> None:
    times = iter([NOW, LATER])
    handler = TurnHandler(engine, flow, clock=lambda: next(times))
    urn = "telegram:2011"
    unsent = send(handler, urn, "/start", channel="telegram", queue_replies=True).queued
    confirmation = send(handler, urn, "STOP", channel="telegram", queue_replies=True).queued
    with engine.connect() as conn:
        respondent = conn.execute(sa.select(respondents.c.id)).scalar_one()
    check_in = queue(engine, respondent, "How are you getting on?")
    assert len(unsent) == len(confirmation) == 1
    assert [m.id for m in outbox.claim(engine, "telegram", 10, LATER)] == list(confirmation)
    for message_id in (*unsent, check_in):
        assert status_of(engine, message_id) == ("failed", 0, None, "opted out")


def test_workers_claiming_at_once_never_get_the_same_message(engine: sa.Engine) -> None:
    people = [add_respondent(engine, f"telegram:29{n:02}") for n in range(30)]
    queued = {
        n: [queue(engine, person, f"message {m}") for m in range(4)]
        for n, person in enumerate(people)
    }
    by_person = {message_id: n for n, ids in queued.items() for message_id in ids}
    barrier = threading.Barrier(4)
    lock = threading.Lock()
    claims: list[int] = []

    def worker() -> None:
        barrier.wait()
        while True:
            with lock:
                if len(claims) == len(by_person):
                    return
            for message in outbox.claim(engine, "telegram", 3, NOW):
                with lock:  # before the send is settled, so before the next one's claim
                    claims.append(message.id)
                outbox.begin(engine, message, NOW)
                outbox.mark_sent(engine, message, f"tg-{message.id}", NOW)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(claims) == sorted(by_person)  # each message exactly once
    for n, ids in queued.items():  # and each respondent's in order
        assert [message_id for message_id in claims if by_person[message_id] == n] == ids


def queue_outreach_row(engine: sa.Engine, respondent_id: int, text: str, due: Any) -> int:
    with engine.begin() as conn:
        return outbox.queue(
            conn,
            channel="telegram",
            respondent_id=respondent_id,
            message=Outbound(text),
            now=NOW,
            not_before=due,
            kind="followup",
            sent_by="outreach",
        )


def test_a_reply_does_not_wait_overnight_behind_outreach_held_for_the_morning(
    engine: sa.Engine,
) -> None:
    respondent = add_respondent(engine, "telegram:2101")
    morning = NOW + timedelta(hours=11)
    held = queue_outreach_row(engine, respondent, "Your follow-up", morning)
    reply = queue(engine, respondent, "Q3 of 22")
    later_followup = queue_outreach_row(engine, respondent, "A second note", NOW)
    claimed = outbox.claim(engine, "telegram", 10, NOW)
    assert [row.id for row in claimed] == [reply], "outreach must keep its own order"
    assert [row.kind for row in claimed] == ["reply"]
    [row] = claimed
    assert outbox.begin(engine, row, NOW)
    assert outbox.mark_sent(engine, row, "tg-1", NOW)
    assert outbox.claim(engine, "telegram", 10, NOW) == []
    in_the_morning = outbox.claim(engine, "telegram", 10, morning)
    assert [row.id for row in in_the_morning] == [held]
    assert later_followup not in [row.id for row in in_the_morning]


def enrolled_overnight(engine: sa.Engine, flow: Flow, phone: str) -> int:
    """Enrolled at 21:00: the invitation waits for the morning (quiet hours 09:00-20:00)."""
    evening = NOW.replace(hour=21)
    enrolled = enrol(
        engine,
        flow,
        EnrolmentRequest(phone, None, None, None, None, "a worker", "public_task"),
        parse_quiet_hours("09:00-20:00", "", "Europe/London"),
        evening,
    )
    assert enrolled.send_after is not None
    return enrolled.respondent_id


def test_an_invitation_still_waiting_when_they_have_written_is_given_up_not_sent(
    engine: sa.Engine, flow: Flow
) -> None:
    """They texted in (or a worker filled in the check with them) before the morning: the
    invitation asking them to start would only confuse them."""
    wrote = enrolled_overnight(engine, flow, "07700 900401")
    waited = enrolled_overnight(engine, flow, "07700 900402")
    texts_at = iter(NOW.replace(hour=22) + timedelta(seconds=n) for n in range(10))
    handler = TurnHandler(engine, flow, clock=lambda: next(texts_at))
    send(handler, "tel:+447700900401", "1")  # they agree, before the invitation went

    morning = NOW.replace(hour=9) + timedelta(days=1)
    claimed = outbox.claim(engine, "sms", 10, morning)

    with engine.connect() as conn:
        invitation_of = dict(
            conn.execute(
                sa.select(outbox_table.c.id, outbox_table.c.respondent_id).where(
                    outbox_table.c.kind == "invitation"
                )
            ).all()
        )
    assert [invitation_of.get(row.id) for row in claimed if row.kind == "invitation"] == [waited]
    with engine.connect() as conn:
        given_up = conn.execute(
            sa.select(outbox_table.c.status, outbox_table.c.error).where(
                outbox_table.c.respondent_id == wrote, outbox_table.c.kind == "invitation"
            )
        ).one()
    assert tuple(given_up) == ("failed", outbox.SUPERSEDED_ERROR)


def test_the_last_send_accepted_is_recorded_with_the_next_send_begun_in_one_go(
    engine: sa.Engine,
) -> None:
    """A sender hands what Twilio took to its next begin: one commit a send, and never two rows
    of one sender "sending" at once."""
    first, second = (
        queue(engine, add_respondent(engine, f"tel:+44770090070{n}"), "Hi", "sms") for n in (1, 2)
    )
    one, two = outbox.claim(engine, "sms", 10, NOW)
    assert outbox.begin(engine, one, NOW)
    took = outbox.Accepted(one, "SM-1", NOW, delivery_status="queued", segments=1)

    assert outbox.begin(engine, two, NOW, accepted=[took])
    assert status_of(engine, first) == ("sent", 1, "SM-1", None)
    assert status_of(engine, second)[:2] == ("sending", 1)
    with engine.connect() as conn:
        delivery = conn.execute(
            sa.select(outbox_table.c.delivery_status).where(outbox_table.c.id == first)
        ).scalar_one()
    assert delivery == "queued"


def test_a_send_accepted_is_recorded_even_when_the_next_claim_finds_nothing_due(
    engine: sa.Engine,
) -> None:
    message_id = queue(engine, add_respondent(engine, "tel:+447700900703"), "Hi", "sms")
    [row] = outbox.claim(engine, "sms", 10, NOW)
    assert outbox.begin(engine, row, NOW)

    assert outbox.claim(engine, "sms", 10, NOW, accepted=[outbox.Accepted(row, "SM-3", NOW)]) == []
    assert status_of(engine, message_id) == ("sent", 1, "SM-3", None)


def test_a_send_accepted_is_recorded_even_when_the_next_row_can_no_longer_begin(
    engine: sa.Engine,
) -> None:
    first, second = (
        queue(engine, add_respondent(engine, f"tel:+44770090071{n}"), "Hi", "sms") for n in (1, 2)
    )
    one, two = outbox.claim(engine, "sms", 10, NOW, lease=timedelta(seconds=30))
    assert outbox.begin(engine, one, NOW)
    outbox.claim(engine, "sms", 10, NOW + timedelta(minutes=1))  # `two`'s claim ran out

    assert not outbox.begin(engine, two, NOW, accepted=[outbox.Accepted(one, "SM-4", NOW)])
    assert status_of(engine, first) == ("sent", 1, "SM-4", None)
    assert status_of(engine, second)[0] == "claimed"


def test_a_claim_gives_up_stale_outreach_only_where_it_would_take_it(
    engine: sa.Engine, flow: Flow
) -> None:
    """Outreach queued before the resident wrote is given up by the claim that reaches it, and
    the claim goes on to other residents' rows; their own later rows follow at the next."""
    wrote = enrolled_overnight(engine, flow, "07700 900404")
    texts_at = iter(NOW.replace(hour=22) + timedelta(seconds=n) for n in range(10))
    handler = TurnHandler(engine, flow, clock=lambda: next(texts_at))
    send(handler, "tel:+447700900404", "1")
    others = [
        queue(engine, add_respondent(engine, f"tel:+44770090072{n}"), "Hi", "sms") for n in (1, 2)
    ]
    morning = NOW.replace(hour=9) + timedelta(days=1)

    first = outbox.claim(engine, "sms", 10, morning)
    second = outbox.claim(engine, "sms", 10, morning)

    assert sorted(row.id for row in first if row.id in others) == others
    assert all(row.kind != "invitation" for row in first + second)
    with engine.connect() as conn:
        invitation = conn.execute(
            sa.select(outbox_table.c.status, outbox_table.c.error).where(
                outbox_table.c.respondent_id == wrote, outbox_table.c.kind == "invitation"
            )
        ).one()
    assert tuple(invitation) == ("failed", outbox.SUPERSEDED_ERROR)
