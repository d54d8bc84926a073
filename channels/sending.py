"""What every outbox sender shares: the clock it reads, when a send goes again, and what one
claim came to.

The rule it keeps: a send the provider certainly did not take goes again after an exponential
back-off with jitter, capped, never sooner than the provider's `retry_after`, and is given up
once it has waited `give_up_after` since it was first due (not since it was queued: a message
held by quiet hours over a weekend is not given up on its first failure). Time comes from a
`Clock`, so tests run without sleeping.
"""

from __future__ import annotations

import contextlib
import random
import signal
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import FrameType
from typing import Protocol

from storage import outbox
from storage.outbox import OutboxMessage

FIRST_BACKOFF = timedelta(seconds=2)
MAX_BACKOFF = timedelta(minutes=10)
GIVE_UP_AFTER = timedelta(hours=24)
"""A row that still could not go this long after it was first due is failed: too late to help."""


class Clock(Protocol):
    def now(self) -> datetime: ...

    def sleep(self, seconds: float) -> None: ...


@dataclass
class SystemClock:
    """Real time; `sleep` wakes early when `stop` is set."""

    stop: threading.Event = field(default_factory=threading.Event)

    def now(self) -> datetime:
        return datetime.now(UTC)

    def sleep(self, seconds: float) -> None:
        self.stop.wait(seconds)


@dataclass(frozen=True)
class RetryPolicy:
    """When a send the provider certainly did not take goes again, and how long claims hold."""

    first_backoff: timedelta = FIRST_BACKOFF
    max_backoff: timedelta = MAX_BACKOFF
    give_up_after: timedelta = GIVE_UP_AFTER
    claim_lease: timedelta = outbox.CLAIM_LEASE
    send_lease: timedelta = outbox.SEND_LEASE
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)

    def delay(self, attempts: int, retry_after: timedelta | None = None) -> timedelta:
        """After the `attempts`-th try: between half and all of `first_backoff` doubled per
        earlier try, capped at `max_backoff`; never less than the provider's `retry_after`."""
        doubled = self.first_backoff * (1 << min(max(attempts - 1, 0), 20))
        jittered = min(doubled, self.max_backoff) * (0.5 + 0.5 * self.rng.random())
        return max(jittered, retry_after or timedelta(0))

    def gives_up(self, row: OutboxMessage, now: datetime) -> bool:
        first_due = row.first_due_at or row.created_at
        return first_due is not None and now - first_due >= self.give_up_after


DEFAULT_POLICY = RetryPolicy()


@dataclass(frozen=True)
class WorkerStep:
    """What one claim of a sender came to: nothing due (`claimed` False), or a row handed to
    the provider (`tried`) or not, which may go again from `held_until` (released for pacing
    or quiet hours, or to be retried) unless that is None."""

    claimed: bool
    tried: bool = False
    held_until: datetime | None = None


STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


@contextlib.contextmanager
def stopped_by_signals(stop: threading.Event) -> Iterator[None]:
    """While inside, SIGTERM and SIGINT set `stop` (a loop ends between rows or updates)
    instead of ending the process mid-send; only in the main thread, where Python runs signal
    handlers. The previous handlers come back after."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {number: signal.signal(number, request_stop) for number in STOP_SIGNALS}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler if handler is not None else signal.SIG_DFL)
