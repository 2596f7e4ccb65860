"""Small composable meters: an evenly spaced rate limiter (fixed, or adaptive), a shared 429
pause gate, a cap.

Every request passes ``Meter.slot()`` before it reaches aiohttp's pool, in this order:
concurrency cap, pause gate, rate limiter, pause gate again (a 429 may have arrived while we
waited for the limiter). The sender tells the meter how each request was answered
(:meth:`Meter.answered`, :meth:`Meter.rate_limited`): an adaptive limiter moves its rate on
that (learning the provider's sliding window from the answers: :class:`SlidingWindowModel`,
in :mod:`bulk.engine._adaptive`), and the gate sizes its pause. The limiters share one
interface (:class:`~bulk.engine._rate.Limiter`), so the meter never asks which one it holds;
they live in :mod:`bulk.engine._rate`, the clocks in :mod:`bulk._clock`; this module
re-exports both.

Time comes from a :class:`~bulk._clock.Clock` (``monotonic()`` and ``async sleep()`` here),
the real one unless another is given: tests drive the meters on a :class:`VirtualClock`, or
on a virtual-time event loop, and assert on its time, which a loaded machine cannot stretch.
"""


import math
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio

from bulk._clock import REAL_CLOCK, Clock, VirtualClock
from bulk.engine._adaptive import AdaptiveRate, SlidingWindowModel
from bulk.engine._rate import AioRate, EvenRate, Limiter, MeterClock, MonotonicClock, fixed_rate

__all__ = [
    "REAL_CLOCK",
    "AdaptiveRate",
    "AioRate",
    "EvenRate",
    "Limiter",
    "Meter",
    "MeterClock",
    "MonotonicClock",
    "PauseGate",
    "SlidingWindowModel",
    "VirtualClock",
    "fixed_rate",
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
        clock: Clock = REAL_CLOCK,
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
        clock: Clock | None = None,
        adaptive: bool = False,
        max_rate: float = 100.0,
    ) -> None:
        """``clock`` defaults to the gate's (the real one when no gate is given). With
        ``adaptive`` the rate starts at ``rate`` and moves (never above ``max_rate``)."""
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.clock: Clock = clock or (gate.clock if gate is not None else REAL_CLOCK)
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
        """Requests per second (None or 0: unlimited), evenly spaced: :func:`fixed_rate`
        (aiolimiter on a clock that follows the event loop, :class:`EvenRate` on any other);
        with ``adaptive``, an :class:`AdaptiveRate` starting at ``rate``. Set before the
        first request."""
        self._limiter: Limiter | None = None
        if rate and adaptive:
            self._limiter = AdaptiveRate(rate, max_rate, self.clock)
        elif rate:
            self._limiter = fixed_rate(rate, self.clock)
        self.adaptive = self._limiter is not None and self._limiter.adaptive
        self.rate = self._limiter.rate if self._limiter is not None else rate

    @property
    def current_rate(self) -> float | None:
        """Requests per second now: the fixed rate, or where the adaptive one stands (at the
        end of a run, the rate it settled on: see :attr:`AdaptiveRate.settled`). None:
        unlimited."""
        return self._limiter.current_rate if self._limiter is not None else None

    def answered(self, sent_at: float | None = None) -> None:
        """A request (that left at ``sent_at``) was answered and not throttled: the 429
        streak ends, the rate may rise."""
        self._refused_since = None
        self.gate.clear_streak(sent_at)
        if self._limiter is not None:
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
        if limiter is None:
            return self.gate.pause(retry_after, sent_at=sent_at)
        limiter.on_throttle(sent_at, retry_after)
        rate = limiter.resume_rate  # adaptive: not the probes' rate, the pace to come back to
        delay = self.gate.pause(
            retry_after, sent_at=sent_at, step=1.0 / rate, full_for=limiter.full_for()
        )
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
                if self._limiter is not None:
                    self._limiter.departed(left)
                yield left
        finally:
            self._occupied -= 1
            if self._occupied == 0:
                self.busy_seconds += self.clock.monotonic() - self._busy_since
