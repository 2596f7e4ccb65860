"""Small composable meters: an evenly spaced rate limiter (fixed, or adaptive), a shared 429
pause gate, a cap.

Every request passes ``Meter.slot()`` before it reaches aiohttp's pool, in this order:
concurrency cap, pause gate, rate limiter, pause gate again (a 429 may have arrived while we
waited for the limiter). The sender tells the meter how each request was answered
(:meth:`Meter.answered`, :meth:`Meter.rate_limited`): an adaptive limiter moves its rate on
that, and the gate sizes its pause.

Time comes from a :class:`MeterClock` (``monotonic()`` and ``async sleep()``), the real one
unless another is given: tests drive the meters on a :class:`VirtualClock` and assert on its
time, which a loaded machine cannot stretch.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Protocol

import anyio
import anyio.lowlevel
from aiolimiter import AsyncLimiter


class MeterClock(Protocol):
    """Where the meters read the time and wait. (The engine's ``Clock`` in ``_run`` reads
    wall time instead; both clocks below serve both protocols, so one can drive a test.)"""

    def monotonic(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...


class MonotonicClock:
    """The real clock: ``time.monotonic`` and the event loop's sleep."""

    def monotonic(self) -> float:
        return time.monotonic()

    def time(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await anyio.sleep(seconds)


#: the clock of every meter not given another
REAL_CLOCK: MeterClock = MonotonicClock()


class VirtualClock:
    """A clock whose time moves only when a task sleeps on it (for tests).

    ``sleep(s)`` moves the time forward by ``s`` at once, plus ``lag``: the late wake-ups of
    an event loop under load. It fits code where one task sleeps at a time (the rate limiter
    lets its waiters through one by one) or where sleepers wait for the same instant (the
    pause gate: the first sleeper moves the time there, the others find the gate open).
    """

    def __init__(self, start: float = 1000.0, *, lag: float = 0.0) -> None:
        self._now = start
        self.lag = lag

    def monotonic(self) -> float:
        return self._now

    def time(self) -> float:
        return self._now

    async def sleep(self, seconds: float) -> None:
        if seconds > 0:
            self._now += seconds + self.lag
        await anyio.lowlevel.checkpoint()  # other tasks still run


class EvenRate:
    """Requests leave evenly spaced, ``rate`` per second, from the very first one.

    A leaky bucket of capacity 2, primed with one unit at first use: requests leave evenly
    spaced from the very first (no start burst), and the spare unit absorbs the event loop's
    wake-up lag, which a bucket of 1 loses on every request (measured: 51.8/s delivered for
    58/s asked with capacity 1, 58.4/s with this). In any window of W seconds at most
    rate*W + 2 requests leave.

    The bucket is kept as the time it is empty again (``_empty_at``): a request may leave when
    at most one unit is in it, and adds one. Waiters take their turn in arrival order.
    """

    def __init__(self, rate: float, clock: MeterClock = REAL_CLOCK) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = rate
        self._interval = 1.0 / rate
        self._clock = clock
        self._empty_at: float | None = None
        self._turn = anyio.Lock()

    def _set(self, rate: float) -> None:
        """A new rate from the next departure on (the one already waiting keeps its wait)."""
        self.rate = rate
        self._interval = 1.0 / rate

    async def acquire(self) -> None:
        async with self._turn:
            now = self._clock.monotonic()
            if self._empty_at is None:
                self._empty_at = now + self._interval  # the priming unit: no start burst
            wait = self._empty_at - self._interval - now
            if wait > 0:
                await self._clock.sleep(wait)
                now = self._clock.monotonic()
            self._empty_at = max(self._empty_at, now) + self._interval


class AioRate:
    """The same bucket on the real clock, as aiolimiter keeps it (the design card's limiter):
    ``AsyncLimiter(2, 2 / rate)`` primed with one unit at first use, so there is no start
    burst and the spare unit absorbs wake-up lag. aiolimiter reads the event loop's own time,
    so it serves the real clock only; :class:`EvenRate` is its clock-driven twin, and both
    keep the same bound (at most rate*W + 2 in any window W)."""

    def __init__(self, rate: float) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = rate
        self._limiter = AsyncLimiter(2, 2.0 / rate)
        self._primed = False

    async def acquire(self) -> None:
        if not self._primed:
            self._primed = True
            await self._limiter.acquire()  # the priming unit: no start burst
        await self._limiter.acquire()


class AdaptiveRate(EvenRate):
    """``--rate auto``: the :class:`EvenRate` bucket, its rate found instead of guessed.

    The rate moves as in the AWS SDKs' adaptive retry mode: CUBIC (the TCP congestion
    control). A 429 cuts the rate to ``BETA`` (0.7) times the rate bulk was sending at, and
    remembers that rate as ``w_max``; while requests succeed the rate follows
    ``C * (t - K)**3 + w_max`` (t: seconds since the cut, ``K`` chosen so it starts at the cut
    rate): it climbs back fast and concave to ``w_max``, lingers near it, then probes beyond
    it ever faster. CUBIC rather than AIMD because the recovery after a cut is a matter of
    seconds whatever the rate (AIMD's +1/s per second takes a minute to regain 60/s after a
    storm of 429s that was not about bulk's rate at all), and it is what the AWS SDKs ship.

    - It starts at ``start`` (the provider's default rate), spaced evenly from the first
      request (the bucket of 2, primed: no start burst), and probes upwards from there as if
      ``start`` were the rate of a last cut; it never goes above ``max_rate``.
    - ``w_max`` is the rate measured when the 429 came (requests per second, smoothed over
      half-second buckets), not the highest rate ever seen: when other software on the same
      account eats into a shared limit, a 429 at a lower rate lowers the ceiling, and bulk
      yields. No stale "known good" rate survives a 429.
    - The rate rises only up to twice the rate bulk actually sends at: a run waiting for
      numbers to settle does not bank a rate it never tried.
    - A 429 for a request that left before the last cut carries no news about the new rate
      (it was already in flight or in line), and 429s in a row with no answer between them
      are one event: neither cuts again. So a storm of 429s in a row costs one cut, not one
      per 429 (0.7**5 for a storm of 5 would take many seconds to climb back from); the
      pause gate spaces the retries meanwhile.

    Built on :class:`EvenRate` rather than aiolimiter: aiolimiter's ``AsyncLimiter`` fixes its
    rate when built (changing it means writing its private ``_rate_per_sec``); the bucket
    here is the same (capacity 2, primed at first use, at most rate*W + 2 in any window W)
    and runs on any :class:`MeterClock`, the real one included.
    """

    BETA = 0.7  #: the share of the rate kept after a 429 (AWS SDKs: 0.7)
    C = 0.4  #: CUBIC's scale, requests/s per s**3 (AWS SDKs: 0.4)
    MIN_RATE = 0.5  #: the rate is never cut below this (AWS SDKs: 0.5)
    BUCKET = 0.5  #: seconds per bucket of the measured send rate
    SMOOTH = 0.8  #: weight of the newest bucket in the measured rate

    def __init__(self, start: float, max_rate: float, clock: MeterClock = REAL_CLOCK) -> None:
        if max_rate <= 0:
            raise ValueError("max_rate must be positive")
        super().__init__(min(start, max_rate), clock)
        self.max_rate = max_rate
        self._w_max = self.rate
        self._k = 0.0
        self._epoch = clock.monotonic()  #: when the curve starts (the last cut)
        self._cut_at = -math.inf
        self._answered_since_cut = True
        self.measured = 0.0  #: smoothed requests per second sent
        self._bucket_start: float | None = None
        self._bucket_count = 0
        self.cuts = 0

    async def acquire(self) -> None:
        await super().acquire()
        now = self._clock.monotonic()
        if self._bucket_start is None:
            self._bucket_start = now
        elif now - self._bucket_start >= self.BUCKET:
            current = self._bucket_count / (now - self._bucket_start)
            self.measured = self.SMOOTH * current + (1 - self.SMOOTH) * self.measured
            self._bucket_start, self._bucket_count = now, 0
        self._bucket_count += 1

    def on_success(self) -> None:
        """A request was answered, not throttled: follow the curve up."""
        self._answered_since_cut = True
        t = self._clock.monotonic() - self._epoch
        cubic = self.C * (t - self._k) ** 3 + self._w_max
        ceiling = max(self.rate, 2 * self.measured)
        new = min(cubic, self.max_rate, ceiling)
        if new > self.rate:
            self._set(new)

    def on_throttle(self, sent_at: float | None = None) -> bool:
        """A 429 for a request that left at ``sent_at``: cut the rate, unless the request left
        before the last cut. True when it cut."""
        if not self._answered_since_cut or (sent_at is not None and sent_at < self._cut_at):
            return False
        self._answered_since_cut = False
        now = self._clock.monotonic()
        sending = min(self.measured, self.rate) if self.measured > 0 else self.rate
        self._w_max = sending
        self._k = (self._w_max * (1 - self.BETA) / self.C) ** (1 / 3)
        self._epoch = self._cut_at = now
        self._set(max(self.MIN_RATE, sending * self.BETA))
        self.cuts += 1
        return True


class PauseGate:
    """One gate every sender waits at after a 429.

    ``pause(retry_after)`` honours the server's Retry-After exactly when it sent one.
    Otherwise the pause is short: ``step`` (one request interval at the current rate, given
    by the meter; at most ``base``) for the first 429, doubling with each further 429 in a
    row *from a request sent after the previous pause ended*, with jitter, capped. A 429 for a
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
    ) -> float:
        """Close the gate after a 429 for a request that left at ``sent_at`` (None: now);
        returns how long it stays closed from now."""
        fresh = sent_at is None or sent_at >= self._resume_at
        if fresh:
            self._streak += 1
        if retry_after is not None:
            delay = retry_after
        elif not fresh:
            return self.paused_for()
        else:
            first = self._base if step is None else min(self._base, step)
            ceiling = min(self._cap, first * 2 ** (self._streak - 1))
            delay = ceiling * (0.5 + self._rng.random() / 2)
        resume = self.clock.monotonic() + delay
        self._resume_at = max(self._resume_at, resume)
        return delay

    def clear_streak(self) -> None:
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
        """Requests per second now: the fixed rate, or where the adaptive one stands (its
        fill rate at the end of a run is the rate it settled on). None: unlimited."""
        return self._limiter.rate if self._limiter is not None else None

    def answered(self) -> None:
        """A request was answered and not throttled: the 429 streak ends, the rate may rise."""
        self.gate.clear_streak()
        if isinstance(self._limiter, AdaptiveRate):
            self._limiter.on_success()

    def rate_limited(self, retry_after: float | None, sent_at: float | None = None) -> float:
        """A 429 for a request that left at ``sent_at`` (monotonic on this meter's clock):
        the adaptive rate is cut, and every sender pauses (Retry-After exactly when given;
        else about one request interval at the rate now, see :class:`PauseGate`). Returns
        the pause from now."""
        if isinstance(self._limiter, AdaptiveRate):
            self._limiter.on_throttle(sent_at)
        rate = self.current_rate
        step = 1.0 / rate if rate else None
        return self.gate.pause(retry_after, sent_at=sent_at, step=step)

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
                yield self.clock.monotonic()
        finally:
            self._occupied -= 1
            if self._occupied == 0:
                self.busy_seconds += self.clock.monotonic() - self._busy_since
