"""Small composable meters: an evenly spaced rate limiter (fixed, or adaptive), a shared 429
pause gate, a cap.

Every request passes ``Meter.slot()`` before it reaches aiohttp's pool, in this order:
concurrency cap, pause gate, rate limiter, pause gate again (a 429 may have arrived while we
waited for the limiter). The sender tells the meter how each request was answered
(:meth:`Meter.answered`, :meth:`Meter.rate_limited`): an adaptive limiter moves its rate on
that (learning the provider's sliding window from the answers: :class:`SlidingWindowModel`,
in :mod:`bulk.engine._adaptive`), and the gate sizes its pause. The clocks and the evenly
spaced limiters live in :mod:`bulk.engine._rate`; this module re-exports them.

Time comes from a :class:`MeterClock` (``monotonic()`` and ``async sleep()``), the real one
unless another is given: tests drive the meters on a :class:`VirtualClock` and assert on its
time, which a loaded machine cannot stretch.
"""


import math
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio

from bulk.engine._adaptive import AdaptiveRate, SlidingWindowModel
from bulk.engine._rate import (
    REAL_CLOCK,
    AioRate,
    EvenRate,
    MeterClock,
    MonotonicClock,
    VirtualClock,
)

__all__ = [
    "REAL_CLOCK",
    "AdaptiveRate",
    "AioRate",
    "EvenRate",
    "Meter",
    "MeterClock",
    "MonotonicClock",
    "PauseGate",
    "SlidingWindowModel",
    "VirtualClock",
]


class PauseGate:
    """One gate every sender waits at after a 429.

    ``pause(retry_after)`` honours the server's Retry-After exactly when it sent one.
    Otherwise the pause is short: ``step`` (one request interval at the current rate, given
    by the meter; at most ``base``) for the first 429, doubling with each further 429 in a
    row *from a request sent after the previous pause ended*, with jitter, capped; those
    further 429s pause that long even when Retry-After says less (it is a floor: a server
    that keeps saying "now" is not hammered). A 429 for a
    request that left before the pause ended (in flight, or in line when the gate closed)
    adds nothing: a storm of 429s in a row is one pause, and the rate limiter absorbs the
    rest. Only 429s that keep coming back right after each pause grow it to seconds.
    """

    def __init__(
        self,
        *,
        base: float = 1.0,
        cap: float = 30.0,
        rng: random.Random | None = None,
        clock: MeterClock = REAL_CLOCK,
    ) -> None:
        self.clock = clock
        self._resume_at = 0.0
        self._closed_at = -math.inf  #: when the last fresh 429 closed the gate
        self._streak = 0
        self._base = base
        self._cap = cap
        self._rng = rng or random.Random()

    def paused_for(self) -> float:
        return max(0.0, self._resume_at - self.clock.monotonic())

    def pause(
        self,
        retry_after: float | None,
        *,
        sent_at: float | None = None,
        step: float | None = None,
        full_for: float = 0.0,
    ) -> float:
        """Close the gate after a 429 for a request that left at ``sent_at`` (None: now);
        returns how long it stays closed from now. ``full_for`` > 0: how long the meter
        knows the provider's window stays full; it stands for the doubling pause."""
        fresh = sent_at is None or sent_at >= self._resume_at
        if fresh:
            self._streak += 1
            self._closed_at = self.clock.monotonic()
        elif retry_after is None:
            return self.paused_for()
        delay = 0.0 if retry_after is None else retry_after
        if full_for > 0:
            delay = max(delay, full_for)
        elif fresh and (retry_after is None or self._streak > 1):
            first = self._base if step is None else min(self._base, step)
            doublings = min(self._streak - 1, 1023)  # 2.0 ** 1024 overflows a float
            ceiling = min(self._cap, first * 2.0**doublings)
            delay = max(delay, ceiling * (0.5 + self._rng.random() / 2))
        resume = self.clock.monotonic() + delay
        self._resume_at = max(self._resume_at, resume)
        return delay

    def clear_streak(self, sent_at: float | None = None) -> None:
        """A request that left at ``sent_at`` was answered: the streak of 429s ends, unless
        it left before the last 429 closed the gate (it was in flight: no news)."""
        if sent_at is None or sent_at >= self._closed_at:
            self._streak = 0

    async def wait(self) -> None:
        # the gate may be pushed further while we sleep: look again after each sleep
        while (delay := self.paused_for()) > 0:
            await self.clock.sleep(delay)


class Meter:
    """Concurrency cap + pause gate + evenly spaced rate limit (no start burst), the limit
    fixed or adaptive (:class:`AdaptiveRate`)."""

    def __init__(
        self,
        rate: float | None,
        concurrency: int,
        *,
        gate: PauseGate | None = None,
        clock: MeterClock | None = None,
        adaptive: bool = False,
        max_rate: float = 100.0,
    ) -> None:
        """``clock`` defaults to the gate's (the real one when no gate is given). With
        ``adaptive`` the rate starts at ``rate`` and moves (never above ``max_rate``)."""
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.clock: MeterClock = clock or (gate.clock if gate is not None else REAL_CLOCK)
        self._cap = anyio.CapacityLimiter(concurrency)
        self.gate = gate or PauseGate(clock=self.clock)
        self.concurrency = concurrency
        self.set_rate(rate, adaptive=adaptive, max_rate=max_rate)
        #: seconds during which at least one request was waiting for a slot or in flight:
        #: the time "while work remained", for the effective-rate figure
        self.busy_seconds = 0.0
        self._refused_since: float | None = None  #: the first 429 since the last answer
        self._occupied = 0
        self._busy_since = 0.0

    def set_rate(
        self, rate: float | None, *, adaptive: bool = False, max_rate: float = 100.0
    ) -> None:
        """Requests per second (None or 0: unlimited), evenly spaced: aiolimiter on the real
        clock (:class:`AioRate`), :class:`EvenRate` on any other; with ``adaptive``, an
        :class:`AdaptiveRate` starting at ``rate``. Set before the first request."""
        self._limiter: AioRate | EvenRate | None = None
        if rate and adaptive:
            self._limiter = AdaptiveRate(rate, max_rate, self.clock)
        elif rate:
            real = self.clock is REAL_CLOCK
            self._limiter = AioRate(rate) if real else EvenRate(rate, self.clock)
        self.adaptive = isinstance(self._limiter, AdaptiveRate)
        self.rate = self._limiter.rate if self._limiter is not None else rate

    @property
    def current_rate(self) -> float | None:
        """Requests per second now: the fixed rate, or where the adaptive one stands (at the
        end of a run, the rate it settled on: see :attr:`AdaptiveRate.settled`). None:
        unlimited."""
        if isinstance(self._limiter, AdaptiveRate):
            return self._limiter.settled
        return self._limiter.rate if self._limiter is not None else None

    def answered(self, sent_at: float | None = None) -> None:
        """A request (that left at ``sent_at``) was answered and not throttled: the 429
        streak ends, the rate may rise."""
        self._refused_since = None
        self.gate.clear_streak(sent_at)
        if isinstance(self._limiter, AdaptiveRate):
            self._limiter.on_success(sent_at)

    def refused_for(self) -> float:
        """Seconds since the first 429 with no answer since (0: none pending)."""
        if self._refused_since is None:
            return 0.0
        return self.clock.monotonic() - self._refused_since

    def rate_limited(self, retry_after: float | None, sent_at: float | None = None) -> float:
        """A 429 for a request that left at ``sent_at`` (monotonic on this meter's clock):
        the adaptive rate is cut, and every sender pauses (Retry-After exactly when given;
        else about one request interval at the rate now, see :class:`PauseGate`). Returns
        the pause from now."""
        if self._refused_since is None:
            self._refused_since = self.clock.monotonic()
        limiter = self._limiter
        rate = self.current_rate
        full_for = 0.0
        if isinstance(limiter, AdaptiveRate):
            limiter.on_throttle(sent_at, retry_after)
            rate = limiter.resume_rate  # not the probes' rate: the pace to come back to
            full_for = limiter.full_for()
        step = 1.0 / rate if rate else None
        delay = self.gate.pause(retry_after, sent_at=sent_at, step=step, full_for=full_for)
        if isinstance(limiter, AdaptiveRate):
            limiter.hold_until(self.clock.monotonic() + self.gate.paused_for())
        return delay

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[float]:
        """Wait for a turn; yields the time (on :attr:`clock`) the request leaves."""
        if self._occupied == 0:
            self._busy_since = self.clock.monotonic()
        self._occupied += 1
        try:
            async with self._cap:
                while True:
                    await self.gate.wait()
                    if self._limiter is not None:
                        await self._limiter.acquire()
                    if self.gate.paused_for() <= 0:
                        break
                left = self.clock.monotonic()
                if isinstance(self._limiter, AdaptiveRate):
                    self._limiter.departed(left)
                yield left
        finally:
            self._occupied -= 1
            if self._occupied == 0:
                self.busy_seconds += self.clock.monotonic() - self._busy_since
