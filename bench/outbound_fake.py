"""A fake Twilio REST API in a process of its own, for bench.outbound: it notes when it took
each message and hands them all back when its standard input closes.

    python -m bench.outbound_fake OUT.json

It prints its base URL (http://127.0.0.1:PORT) as its first line of output, serves until its
standard input reaches end of file, then writes every message it took to OUT.json as a list of
[at, sid, to, body, segments] (at: time.monotonic(), which on Linux is one clock for every
process) and exits. Traffic: 127.0.0.1 only (tests/fake_twilio.py).
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from tests.fake_twilio import FakeTwilio, Message


class TimedFakeTwilio(FakeTwilio):
    """The fake Twilio, noting when it took each message."""

    def __init__(self) -> None:
        self.taken_at: dict[str, float] = {}
        super().__init__()

    def _take(self, params: Mapping[str, str]) -> Message:
        at = time.monotonic()
        message = super()._take(params)
        self.taken_at[message.sid] = at
        return message


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    if len(arguments) != 1:
        print("usage: python -m bench.outbound_fake OUT.json", file=sys.stderr)
        return 2
    with TimedFakeTwilio() as fake:
        print(fake.base_url, flush=True)
        sys.stdin.read()
        taken = [[fake.taken_at[m.sid], m.sid, m.to, m.body, m.num_segments] for m in fake.messages]
    Path(arguments[0]).write_text(json.dumps(taken))
    return 0


if __name__ == "__main__":
    sys.exit(main())
