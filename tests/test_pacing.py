"""The sliding-window limiter, on a fake clock (asyncio.sleep is replaced by clock jumps)."""

from __future__ import annotations

import asyncio
import random

import pytest

from pipeline.kie import pacing
from pipeline.kie.pacing import SlidingWindowLimiter, backoff
from pipeline.manifest import Rate


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    real_sleep = asyncio.sleep

    async def sleep(seconds: float) -> None:
        fake.now += max(seconds, 0.0)
        await real_sleep(0)

    monkeypatch.setattr(asyncio, "sleep", sleep)
    return fake


def limiter(clock: FakeClock, count: int = 3, seconds: float = 10.0) -> SlidingWindowLimiter:
    return SlidingWindowLimiter(Rate(count, seconds), clock=clock, margin=0.0)


def test_a_full_window_waits_for_the_oldest_answer_to_leave_it(clock: FakeClock) -> None:
    lim = limiter(clock)

    async def main() -> list[float]:
        sent = []
        for _ in range(5):
            async with lim.slot():
                sent.append(clock.now)
                clock.now += 1.0  # the answer takes one second
        return sent

    # Answers at 1, 2, 3: the 4th call may go at 1 + 10, the 5th at 2 + 10... but each
    # of those answers also takes a second, so the 5th waits for the 2nd answer (at 2).
    assert asyncio.run(main()) == [0.0, 1.0, 2.0, 11.0, 12.0]


def test_calls_in_flight_hold_their_slot_until_answered(clock: FakeClock) -> None:
    lim = limiter(clock, count=2)

    async def main() -> None:
        await lim.acquire()
        await lim.acquire()
        assert lim.used(clock.now) == 2
        waiter = asyncio.ensure_future(lim.acquire())
        await asyncio.sleep(0)  # fake: no time passes for a zero sleep
        clock.now = 100.0  # however long it takes: no answer, no new call
        for _ in range(3):
            await asyncio.sleep(0)
        assert not waiter.done()
        lim.release()  # answered now: its slot counts until 100 + 10
        await waiter
        assert clock.now == 110.0  # one answer in the window and one in flight: full till then
        assert lim.used(clock.now) == 2  # the other first call, and the new one

    asyncio.run(main())


def test_no_window_of_the_server_sees_more_than_the_limit_whatever_the_jitter(
    clock: FakeClock,
) -> None:
    """Arrival at the server lies anywhere between send and answer: still never > N."""
    rng = random.Random(5)
    lim = limiter(clock, count=5, seconds=1.0)
    arrivals: list[float] = []

    async def main() -> None:
        for _ in range(200):
            async with lim.slot():
                rtt = rng.uniform(0.0, 0.3)
                arrivals.append(clock.now + rng.uniform(0.0, rtt))
                clock.now += rtt

    asyncio.run(main())
    arrivals.sort()
    for i, t in enumerate(arrivals):
        inside = [a for a in arrivals[i:] if a < t + 1.0]
        assert len(inside) <= 5


def test_a_slot_never_released_expires_instead_of_stalling(clock: FakeClock) -> None:
    lim = limiter(clock, count=1, seconds=1.0)

    async def main() -> None:
        await lim.acquire()  # forgotten: never released
        clock.now += pacing.STALE_AFTER + 1.0 + 1.0
        await asyncio.wait_for(lim.acquire(), 1.0)

    asyncio.run(main())


def test_a_429_lowers_the_pace_and_successes_restore_it(clock: FakeClock) -> None:
    lim = SlidingWindowLimiter(Rate(10, 1.0), clock=clock, rng=random.Random(1))
    lim.rejected()
    assert lim.allowed == 8 and lim.blocked_until > clock.now and lim.rejections == 1
    for _ in range(5):
        lim.succeeded()
    assert lim.allowed == 10 and lim.strikes == 0


def test_backoff_doubles_up_to_the_cap_with_jitter() -> None:
    rng = random.Random(3)
    for attempt in range(1, 10):
        wait = backoff(attempt, base=1.0, cap=8.0, rng=rng)
        top = min(8.0, 2.0 ** (attempt - 1))
        assert top / 2 <= wait <= top
