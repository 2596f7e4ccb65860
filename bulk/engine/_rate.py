"""Clocks and evenly spaced rate limiters: :class:`EvenRate` on any :class:`MeterClock`,
:class:`AioRate` (aiolimiter) on the real one. The meters in :mod:`bulk.engine._limits` and
the adaptive rate in :mod:`bulk.engine._adaptive` build on them."""

from __future__ import annotations

import time
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
