"""The one clock protocol, its real implementation and the clocks tests move by hand.

Every part of bulk that reads the time or waits does it through a :class:`Clock`:

* ``time()``: wall seconds since the epoch, for stamps (the journal's ``submitted_at``, the
  sandbox's timestamps);
* ``monotonic()``: seconds on a clock that never goes back, for intervals (the meters, the
  sandbox's settle times and windows);
* ``sleep(seconds)``: the waits.

:class:`SystemClock` is the real one. :class:`LoopClock` reads the running event loop's
time, so on a virtual-time loop (:func:`bulk.testing.run_in_virtual_time`) it is virtual
time, and aiolimiter (which reads the loop's time too) paces on it as on the real clock.
:class:`VirtualClock` jumps forward by each sleep; :class:`ManualClock` moves only when a
test advances it. Other clocks (the benchmarks' ``SimClock``) conform to the same protocol.

A leaf module: the engine, the meters, the sandbox and the testing harness all import it,
and it imports none of them.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Protocol

import anyio
import anyio.lowlevel

__all__ = [
    "EPOCH",
    "REAL_CLOCK",
    "Clock",
    "LoopClock",
    "ManualClock",
    "SystemClock",
    "VirtualClock",
    "follows_loop",
    "wall_at",
]

#: the wall-clock time the test clocks start at (2025-01-01T00:00:00Z)
EPOCH = 1_735_689_600.0


class Clock(Protocol):
    """Where bulk reads the time and waits: wall time for stamps, monotonic time for
    intervals, and an asynchronous sleep."""

    def time(self) -> float: ...

    def monotonic(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...


def wall_at(clock: Clock, t: float | None = None) -> datetime:
    """The wall time (UTC) of the reading ``t`` of ``clock.monotonic()`` (None: now)."""
    now = datetime.fromtimestamp(clock.time(), UTC)
    return now if t is None else now + timedelta(seconds=t - clock.monotonic())


class SystemClock:
    """The real clock: ``time.time``, ``time.monotonic`` (the asyncio event loop's own time)
    and the event loop's sleep."""

    def time(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await anyio.sleep(seconds)


#: the clock of everything not given another
REAL_CLOCK: Clock = SystemClock()


class LoopClock:
    """The running event loop's time: ``monotonic()`` is ``loop.time()`` and ``time()`` wall
    seconds from ``epoch`` (:data:`EPOCH`) on. On a virtual-time loop, virtual time."""

    def __init__(self, epoch: float = EPOCH) -> None:
        self._epoch = epoch

    def monotonic(self) -> float:
        return asyncio.get_running_loop().time()

    def time(self) -> float:
        return self._epoch + self.monotonic()

    async def sleep(self, seconds: float) -> None:
        await anyio.sleep(max(0.0, seconds))


def follows_loop(clock: Clock) -> bool:
    """Whether ``clock``'s monotonic time is the event loop's (the real clock on asyncio's
    loops, whose ``time()`` is ``time.monotonic``; a :class:`LoopClock` on any loop): what
    aiolimiter reads, so it paces on this clock."""
    return isinstance(clock, (SystemClock, LoopClock))


class VirtualClock:
    """A clock whose time moves only when a task sleeps on it (for tests).

    ``sleep(s)`` moves the time forward by ``s`` at once, plus ``lag``: the late wake-ups of
    an event loop under load. It fits code where one task sleeps at a time (the rate limiter
    lets its waiters through one by one) or where sleepers wait for the same instant (the
    pause gate: the first sleeper moves the time there, the others find the gate open).
    ``time()`` reads the same number as ``monotonic()``.
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


class ManualClock:
    """A clock that only moves when told to (for tests).

    A task sleeping on it wakes when :meth:`advance` has moved the time past its wake-up time,
    however long that takes in real time: a test decides when a latency or a hang is over.
    Its wall time starts at :data:`EPOCH`.
    """

    def __init__(self, start: float = 1000.0) -> None:
        self._t = start
        self._t0 = start
        self._sleepers: list[tuple[float, asyncio.Event]] = []
        self._fell_asleep = asyncio.Event()

    def monotonic(self) -> float:
        return self._t

    #: ``monotonic()`` by its short name
    now = monotonic

    def time(self) -> float:
        return EPOCH + (self._t - self._t0)

    def advance(self, seconds: float) -> None:
        self._t += seconds
        for wake, event in self._sleepers:
            if self._due(wake):
                event.set()

    def _due(self, wake: float) -> bool:
        # a nanosecond of slack: advancing 0.55 then 0.05 must wake a sleep of 0.6
        return wake <= self._t + 1e-9

    @property
    def sleeping(self) -> int:
        """How many tasks are asleep on this clock (not yet woken by :meth:`advance`)."""
        return sum(1 for wake, _ in self._sleepers if not self._due(wake))

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        entry = (self._t + seconds, asyncio.Event())
        self._sleepers.append(entry)
        self._fell_asleep.set()
        try:
            await entry[1].wait()
        finally:
            self._sleepers.remove(entry)

    async def until_sleeping(self, count: int = 1, *, limit: float = 10.0) -> None:
        """Wait (in real time, at most ``limit`` seconds) until ``count`` tasks sleep on it."""
        async with asyncio.timeout(limit):
            while self.sleeping < count:
                self._fell_asleep.clear()
                await self._fell_asleep.wait()
