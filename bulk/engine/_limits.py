"""Small composable meters: an evenly spaced rate limiter, a shared 429 pause gate, a cap.

Every request passes ``Meter.slot()`` before it reaches aiohttp's pool, in this order:
concurrency cap, pause gate, rate limiter, pause gate again (a 429 may have arrived while we
waited for the limiter).

Time comes from a :class:`MeterClock` (``monotonic()`` and ``async sleep()``), the real one
unless another is given: tests drive the meters on a :class:`VirtualClock` and assert on its
time, which a loaded machine cannot stretch.
"""

from __future__ import annotations

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


class PauseGate:
    """One gate every sender waits at after a 429.

    ``pause(retry_after)`` honours the server's Retry-After when it sent one; otherwise the
    pause grows exponentially with the number of 429s in a row, with jitter, capped.
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

    def pause(self, retry_after: float | None) -> float:
        """Close the gate; returns how long it stays closed from now."""
        self._streak += 1
        if retry_after is not None:
            delay = retry_after
        else:
            ceiling = min(self._cap, self._base * 2 ** (self._streak - 1))
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
    """Concurrency cap + pause gate + evenly spaced rate limit (no start burst)."""

    def __init__(
        self,
        rate: float | None,
        concurrency: int,
        *,
        gate: PauseGate | None = None,
        clock: MeterClock | None = None,
    ) -> None:
        """``clock`` defaults to the gate's (the real one when no gate is given)."""
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.clock: MeterClock = clock or (gate.clock if gate is not None else REAL_CLOCK)
        self._cap = anyio.CapacityLimiter(concurrency)
        self.gate = gate or PauseGate(clock=self.clock)
        self.concurrency = concurrency
        self.set_rate(rate)
        #: seconds during which at least one request was waiting for a slot or in flight:
        #: the time "while work remained", for the effective-rate figure
        self.busy_seconds = 0.0
        self._occupied = 0
        self._busy_since = 0.0

    def set_rate(self, rate: float | None) -> None:
        """Requests per second (None or 0: unlimited), evenly spaced: aiolimiter on the real
        clock (:class:`AioRate`), :class:`EvenRate` on any other. Set before the first
        request."""
        self._limiter: AioRate | EvenRate | None = None
        if rate:
            real = self.clock is REAL_CLOCK
            self._limiter = AioRate(rate) if real else EvenRate(rate, self.clock)
        self.rate = rate

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
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
                yield
        finally:
            self._occupied -= 1
            if self._occupied == 0:
                self.busy_seconds += self.clock.monotonic() - self._busy_since
