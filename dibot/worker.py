"""`dibot worker`: the scheduler and the senders of everything that is not a webhook reply.

The rule it keeps: one loop, in one process, takes turns between the scheduler (check-ins
due, reminders: `outreach.scheduler`) and the senders (SMS through Twilio's REST API:
`channels.sms_outbox`; Telegram: `channels.telegram`), and never holds a claimed row while it
waits for anything: whatever must wait (pacing, quiet hours, a retry) goes back to the outbox
with the time it may go, so a stopped worker leaves nothing half-done and several workers
share the work (the outbox claims each row once: `storage.outbox`).

`dibot worker --once` runs the scheduler once, then sends until nothing is due, waiting only for
rows held back for at most `ONCE_WAIT` (pacing, a short back-off): what is due now goes now, a
retry in ten minutes is for the next run. That is what cron and tests call. Without `--once`
the scheduler runs every `SCHEDULE_EVERY` and the senders poll every `IDLE_WAIT` when idle.
SIGTERM or SIGINT stop it between rows.

A sender whose provider is not configured (no Twilio account, no Telegram bot token) is left
out; its rows wait in the outbox, and a warning at start-up says how many SMS wait.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy.exc import SQLAlchemyError

from channels.sending import Clock, SystemClock, WorkerStep, stopped_by_signals
from dibot.config import Config
from dibot.runtime import Runtime
from outreach.quiet_hours import QuietHours, parse_quiet_hours
from outreach.scheduler import SchedulerReport, SchedulerSettings, run_due
from outreach.timing import parse_reminders
from storage import outbox

SCHEDULE_EVERY = timedelta(seconds=30)
IDLE_WAIT = 0.3
"""Seconds between polls of an idle outbox: how long a Telegram reply may wait for a worker."""
ERROR_WAIT = 5.0
ONCE_WAIT = timedelta(seconds=60)

log = logging.getLogger(__name__)


class Sender(Protocol):
    name: str

    def send_due(self, stop: threading.Event) -> WorkerStep: ...

    def close(self) -> None: ...


@dataclass
class WorkerReport:
    """What a worker did: check-ins invited, reminders queued, rows handed to providers."""

    scheduled: list[SchedulerReport] = field(default_factory=list)
    tried: dict[str, int] = field(default_factory=dict)

    def summary(self) -> str:
        """One line for the operator (cron mails it)."""
        invited = sum(report.checkins_invited for report in self.scheduled)
        skipped = sum(report.checkins_skipped for report in self.scheduled)
        reminders = sum(report.reminders_queued for report in self.scheduled)
        sends = ", ".join(f"{count} {name}" for name, count in sorted(self.tried.items()))
        return (
            f"worker: {invited} check-ins invited ({skipped} skipped), {reminders} reminders "
            f"queued; messages handed to providers: {sends or 'none'}"
        )


class Worker:
    """The scheduler and the senders, for one process."""

    def __init__(
        self,
        runtime: Runtime,
        senders: list[Sender],
        *,
        clock: Clock,
        stop: threading.Event,
        idle_wait: float = IDLE_WAIT,
        schedule_every: timedelta = SCHEDULE_EVERY,
    ) -> None:
        self.runtime = runtime
        self.senders = senders
        self.clock = clock
        self.stop = stop
        self.idle_wait = idle_wait
        self.schedule_every = schedule_every
        self.settings = scheduler_settings(runtime.config)
        self.report = WorkerReport()
        self._next_schedule: datetime | None = None

    def schedule(self) -> None:
        """Invite the check-ins due and queue the reminders due, now."""
        now = self.clock.now()
        self.report.scheduled.append(
            run_due(self.runtime.engine, self.runtime.flow, self.settings, now)
        )
        self._next_schedule = now + self.schedule_every

    def run(self, *, once: bool = False) -> WorkerReport:
        held: list[datetime] = []
        """When rows this worker handed back (pacing, quiet hours, a retry) may go."""
        try:
            self._guarded(self.schedule)
            while not self.stop.is_set():
                due = self._next_schedule
                if not once and due is not None and self.clock.now() >= due:
                    self._guarded(self.schedule)
                busy = False
                for sender in self.senders:
                    step = self._step(sender)
                    if step is None or not step.claimed:
                        continue
                    busy = True
                    if step.tried:
                        self.report.tried[sender.name] = self.report.tried.get(sender.name, 0) + 1
                    if step.held_until is not None:
                        held.append(step.held_until)
                if busy:
                    continue
                now = self.clock.now()
                held = [at for at in held if at > now]
                if once:
                    held = [at for at in held if at - now <= ONCE_WAIT]
                    if not held:
                        break
                wait = min([self.idle_wait, *((at - now).total_seconds() for at in held)])
                self.clock.sleep(max(wait, 0.0))
        finally:
            for sender in self.senders:
                sender.close()
        return self.report

    def _step(self, sender: Sender) -> WorkerStep | None:
        try:
            return sender.send_due(self.stop)
        except SQLAlchemyError as error:
            log.error("%s outbox unreadable (%s); trying again", sender.name, type(error).__name__)
            self.clock.sleep(ERROR_WAIT)
            return None

    def _guarded(self, action: Callable[[], None]) -> None:
        try:
            action()
        except SQLAlchemyError as error:
            log.error("scheduler: database failed (%s); trying again later", type(error).__name__)


def scheduler_settings(config: Config) -> SchedulerSettings:
    outreach = config.outreach
    return SchedulerSettings(
        quiet=quiet_hours(config),
        reminders=parse_reminders(outreach.reminders),
        timezone=outreach.timezone,
    )


def quiet_hours(config: Config) -> QuietHours:
    outreach = config.outreach
    return parse_quiet_hours(outreach.quiet_hours, outreach.quiet_days, outreach.timezone)


def build_senders(runtime: Runtime, clock: Clock) -> list[Sender]:
    """The SMS and Telegram senders the configuration allows (each left out, with one line,
    when its provider is not configured)."""
    from channels.sms_outbox import sms_sender_for

    handler = runtime.handler
    senders: list[Sender] = []
    sms = sms_sender_for(
        runtime.config,
        runtime.engine,
        clock,
        mark_opted_out=handler.mark_opted_out,
        mark_unreachable=handler.mark_unreachable,
    )
    if sms is not None:
        senders.append(sms)
    elif waiting := outbox.count_pending(runtime.engine, "sms"):
        log.warning(
            "worker: %d SMS wait in the outbox and Twilio sending is not configured: set "
            "[twilio] account_sid, auth_token and from_number (or messaging_service_sid)",
            waiting,
        )
    if runtime.config.telegram.bot_token:
        senders.append(TelegramSender(runtime, clock, quiet_hours(runtime.config)))
    else:
        log.info("worker: telegram.bot_token is not set; Telegram messages wait in the outbox")
    return senders


class TelegramSender:
    """The Telegram channel's sender, paced within Telegram's per-chat and global limits."""

    name = "telegram"

    def __init__(self, runtime: Runtime, clock: Clock, quiet: QuietHours) -> None:
        from channels.telegram import TelegramChannel
        from channels.telegram_outbox import Pacer

        self.channel = TelegramChannel(
            runtime.config, lambda: runtime.handler, lambda: runtime.engine, clock, quiet=quiet
        )
        self.pacer = Pacer()

    def send_due(self, stop: threading.Event) -> WorkerStep:
        return self.channel.send_due(self.pacer, stop)

    def close(self) -> None:
        self.channel.close()


def run_worker(
    runtime: Runtime,
    *,
    once: bool = False,
    clock: Clock | None = None,
    stop: threading.Event | None = None,
    idle_wait: float = IDLE_WAIT,
) -> WorkerReport:
    """Build the senders and run until stopped (or, `once`, until nothing is due now)."""
    stop = stop if stop is not None else threading.Event()
    clock = clock if clock is not None else SystemClock(stop)
    senders = build_senders(runtime, clock)
    worker = Worker(runtime, senders, clock=clock, stop=stop, idle_wait=idle_wait)
    with stopped_by_signals(stop):
        return worker.run(once=once)
