"""A 429 storm: Kie refuses every create as rate limited and never says when to come back.

A 429 is not a failure of the job (the submitter steps the limiter aside and tries again,
uncounted), but a limiter that refuses for good (another client on the account, a limit far
below the documented one) would keep the run sending creates for ever. Like an outage, a storm
is bounded in time: once no create has been accepted for `give_up` seconds, each one refused,
the run stops submitting (soft: what is in flight is still tracked) and says so; the jobs not
created stay pending, with nothing reserved for them, and a rerun resumes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime


class RateStorm:
    def __init__(self, stop: Callable[[str], None], give_up: float) -> None:
        self.stop = stop
        self.give_up = give_up
        self.since: float | None = None  # wall-clock start of the storm
        self.started = 0.0  # its monotonic start
        self.refused = 0

    def rejected(self) -> None:
        """A create was answered 429."""
        now = time.monotonic()
        self.refused += 1
        if self.since is None:
            self.since, self.started = time.time(), now
            return
        if now - self.started >= self.give_up:
            stamp = datetime.fromtimestamp(self.since).astimezone().strftime("%H:%M:%S")
            self.stop(
                f"Kie has answered every create with 429 (rate limited) since {stamp} "
                f"({now - self.started:.0f} s, {self.refused} creates refused, none "
                "accepted); the jobs not created stay pending: run the same command again "
                "later to resume"
            )

    def accepted(self) -> None:
        """A create was accepted: any storm is over."""
        self.since = None
        self.refused = 0
