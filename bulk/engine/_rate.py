"""The meters' rate limiters behind one small interface (:class:`Limiter`), in aiometer's
spirit: the meter (:class:`~bulk.engine._limits.Meter`) waits on ``acquire()`` and tells the
limiter how each request went through hooks that a fixed rate ignores, so it never asks which
limiter it holds.

Two evenly spaced fixed-rate limiters keep one bound (at most rate*W + 2 requests in any
window of W seconds, no start burst):

* :class:`AioRate`, aiolimiter's ``AsyncLimiter`` (the design card's limiter): the one that
  ships for a fixed ``--rate``. aiolimiter reads the running event loop's time and sleeps on
  the loop's timers, so it paces on any clock whose time *is* the loop's
  (:func:`~bulk._clock.follows_loop`: the real clock, or a :class:`~bulk._clock.LoopClock`);
  the tests run it on a virtual-time event loop (:func:`bulk.testing.run_in_virtual_time`),
  where it paces exactly as in production, only faster.
* :class:`EvenRate`, the same leaky bucket kept on any :class:`~bulk._clock.Clock`: for the
  clocks aiolimiter cannot read (a :class:`~bulk._clock.VirtualClock` that jumps per sleep,
  the benchmarks' ``SimClock``), and the base of :class:`~bulk.engine._adaptive.AdaptiveRate`
  (``--rate auto``), whose rate moves between departures, which aiolimiter's fixed
  ``max_rate / time_period`` does not allow. The adaptive rate ships on the real clock and is
  tested on the virtual ones: it is the same class either way.

:func:`fixed_rate` picks between the two; the clocks live in :mod:`bulk._clock` (re-exported
here under the meters' older names).
"""

from __future__ import annotations

from typing import Protocol

import anyio
from aiolimiter import AsyncLimiter

from bulk._clock import REAL_CLOCK, Clock, SystemClock, VirtualClock, follows_loop

#: the meters' clock protocol: the one :class:`~bulk._clock.Clock`
MeterClock = Clock
#: the real clock, by the meters' older name
MonotonicClock = SystemClock

__all__ = [
    "REAL_CLOCK",
    "AioRate",
    "EvenRate",
    "FixedHooks",
    "Limiter",
    "MeterClock",
    "MonotonicClock",
    "VirtualClock",
    "fixed_rate",
]


class Limiter(Protocol):
    """What a meter needs of a rate limiter: a turn (``acquire``), where the rate stands,
    and hooks for how requests went (a fixed rate ignores them)."""

    @property
    def rate(self) -> float:
        """The pace requests leave at now (requests per second)."""
        ...

    @property
    def adaptive(self) -> bool:
        """Whether the rate moves with the answers (``--rate auto``)."""
        ...

    @property
    def current_rate(self) -> float:
        """The rate to report: the fixed rate, or the one an adaptive rate settled on."""
        ...

    @property
    def resume_rate(self) -> float:
        """The rate to come back to after a 429 (sizes the pause gate's first step)."""
        ...

    async def acquire(self) -> None:
        """Wait for the next request's turn."""
        ...

    def departed(self, at: float) -> None:
        """A request left at ``at``."""
        ...

    def on_success(self, sent_at: float | None = None) -> None:
        """A request that left at ``sent_at`` was answered and not throttled."""
        ...

    def on_throttle(self, sent_at: float | None = None, retry_after: float | None = None) -> bool:
        """A 429 for a request that left at ``sent_at``; True when the rate was cut."""
        ...

    def full_for(self) -> float:
        """How long from now the provider's window stays full (0 or less: no idea)."""
        ...

    def hold_until(self, at: float) -> None:
        """No departure before ``at`` (the pause gate's reopening)."""
        ...


class FixedHooks:
    """The :class:`Limiter` hooks of a fixed rate: the rate is ``self.rate`` throughout, and
    how requests went changes nothing (the pause gate alone answers a 429)."""

    rate: float

    @property
    def adaptive(self) -> bool:
        return False

    @property
    def current_rate(self) -> float:
        return self.rate

    @property
    def resume_rate(self) -> float:
        return self.rate

    def departed(self, at: float) -> None:
        pass

    def on_success(self, sent_at: float | None = None) -> None:
        pass

    def on_throttle(self, sent_at: float | None = None, retry_after: float | None = None) -> bool:
        return False

    def full_for(self) -> float:
        return 0.0

    def hold_until(self, at: float) -> None:
        pass


class EvenRate(FixedHooks):
    """Requests leave evenly spaced, ``rate`` per second, from the very first one.

    A leaky bucket of capacity 2, primed with one unit at first use: requests leave evenly
    spaced from the very first (no start burst), and the spare unit absorbs the event loop's
    wake-up lag, which a bucket of 1 loses on every request (measured: 51.8/s delivered for
    58/s asked with capacity 1, 58.4/s with this). In any window of W seconds at most
    rate*W + 2 requests leave.

    The bucket is kept as the time it is empty again (``_empty_at``): a request may leave when
    at most one unit is in it, and adds one. Waiters take their turn in arrival order.
    """

    def __init__(self, rate: float, clock: Clock = REAL_CLOCK) -> None:
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
            await self._pace(self._clock.monotonic())

    async def _pace(self, now: float) -> None:
        """The bucket's step for one request at ``now`` (its turn held): wait until at most
        one unit is in it, and add one."""
        if self._empty_at is None:
            self._empty_at = now + self._interval  # the priming unit: no start burst
        wait = self._empty_at - self._interval - now
        if wait > 0:
            await self._clock.sleep(wait)
            now = self._clock.monotonic()
        self._empty_at = max(self._empty_at, now) + self._interval


class AioRate(FixedHooks):
    """The same bucket as aiolimiter keeps it (the design card's limiter):
    ``AsyncLimiter(2, 2 / rate)`` primed with one unit at first use, so there is no start
    burst and the spare unit absorbs wake-up lag. aiolimiter reads the event loop's own time,
    so it serves the clocks that follow the loop (the real one, a
    :class:`~bulk._clock.LoopClock`); :class:`EvenRate` is its twin on any clock, and both
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


def fixed_rate(rate: float, clock: Clock = REAL_CLOCK) -> AioRate | EvenRate:
    """A fixed, evenly spaced ``rate`` on ``clock``: aiolimiter (:class:`AioRate`) wherever
    the clock's time is the event loop's, :class:`EvenRate` on any other clock."""
    return AioRate(rate) if follows_loop(clock) else EvenRate(rate, clock)
