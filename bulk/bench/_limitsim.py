"""A provider's undocumented limit simulated in virtual time, driving the real meters.

The limit is one of the sandbox's own (:func:`bulk.sandbox._core.rate_limiter`: a sliding
window, a fixed window or a token bucket), its ``Retry-After`` none, exact, or whole seconds
rounded up; its limit may change at given times; 429 storms that are not about the rate may
strike (as ``bulk sandbox --burst-429-rate``). ``workers`` senders share one
:class:`~bulk.engine.Meter`, each request in flight for a latency drawn per request, answered
the way :class:`~bulk.engine._http.HttpSender` answers the meter (``answered`` /
``rate_limited`` with the request's departure time, after the answer arrives).

Time is a :class:`SimClock`: it jumps to the next sleeper's wake-up whenever every task is
waiting, so minutes of provider time cost milliseconds. Used by the tests (behaviour) and by
``python -m bulk.bench.limits`` (figures).
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import math
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal, TypeVar

import anyio

from bulk.engine import Meter, PauseGate
from bulk.sandbox._core import RateLimiter, rate_limiter

T = TypeVar("T")

#: no Retry-After, the exact time until the limit has room, or that rounded up to whole
#: seconds (at least 1); a number: always that (the sandbox's AgentMessage sends 1)
RetryAfter = Literal["none", "exact", "ceil"]


class SimClock:
    """Virtual time for every task of one :meth:`run`: ``sleep`` waits until the time
    reaches its wake-up; the time jumps to the earliest wake-up as soon as no task can run
    (the event loop's ready queue is empty). A :class:`bulk._clock.Clock` (``time()``
    reads the same number as ``monotonic()``)."""

    def __init__(self, start: float = 1000.0) -> None:
        self._now = start
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()

    def monotonic(self) -> float:
        return self._now

    def time(self) -> float:
        return self._now

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self._now + seconds, next(self._seq), future))
        await future

    async def run(self, main: Callable[[], Awaitable[T]]) -> T:
        """Run ``main()`` to its end in virtual time."""
        loop = asyncio.get_running_loop()
        task = asyncio.ensure_future(main())
        while not task.done():
            await asyncio.sleep(0)
            if loop._ready or task.done():  # type: ignore[attr-defined]  # something can run
                continue
            if not self._sleepers:
                task.cancel()
                raise RuntimeError("every task waits and none sleeps: a deadlock")
            wake = self._sleepers[0][0]
            self._now = max(self._now, wake)
            while self._sleepers and self._sleepers[0][0] <= wake:
                _, _, future = heapq.heappop(self._sleepers)
                if not future.done():
                    future.set_result(None)
        return task.result()


@dataclass
class Provider:
    """The provider's side: a limit of one shape, its Retry-After, limit changes and storms.

    ``changes``: (seconds into the run, new limit) pairs. ``storm_rate``/``storm_length``: the
    chance per request that a storm of that many 429s in a row starts (not about the rate);
    storm 429s carry ``storm_retry_after``.
    """

    shape: str
    limit: int
    window: float
    retry_after: RetryAfter | float = "ceil"
    changes: Sequence[tuple[float, int]] = ()
    storm_rate: float = 0.0
    storm_length: int = 4
    storm_retry_after: float | None = 1.0
    seed: int = 0
    limiter: RateLimiter = field(init=False)
    _storm_left: int = field(init=False, default=0)
    _start: float | None = field(init=False, default=None)
    _rng: random.Random = field(init=False)

    def __post_init__(self) -> None:
        self.limiter = rate_limiter(self.shape, self.limit, self.window)
        self._rng = random.Random(self.seed)

    def limit_at(self, at: float) -> int:
        """The limit in force ``at`` seconds into the run."""
        limit = self.limit
        for when, new in self.changes:
            if at >= when:
                limit = new
        return limit

    def capacity(self, start: float, end: float) -> float:
        """Requests the limit admits at its steady rate from ``start`` to ``end`` (seconds
        into the run): the integral of limit / window."""
        edges = sorted({start, end, *(w for w, _ in self.changes if start < w < end)})
        return sum(self.limit_at(a) / self.window * (b - a) for a, b in itertools.pairwise(edges))

    def __call__(self, now: float) -> tuple[bool, float | None]:
        """Admit a request arriving ``now``? (False: a 429, with its Retry-After.)"""
        if self._start is None:
            self._start = now
        self.limiter.limit = self.limit_at(now - self._start)
        if self._storm_left or (self.storm_rate and self._rng.random() < self.storm_rate):
            self._storm_left = (self._storm_left or self.storm_length) - 1
            return False, self.storm_retry_after
        if self.limiter.try_acquire(now):
            return True, None
        room = self.limiter.room_in(now)
        if isinstance(self.retry_after, float | int):
            return False, float(self.retry_after)
        if self.retry_after == "none":
            return False, None
        if self.retry_after == "exact":
            return False, room
        return False, float(max(1, math.ceil(room - 1e-9)))


@dataclass
class Outcome:
    """What one simulated run did."""

    start: float
    end: float
    accepted: list[float] = field(default_factory=list)  #: arrival of each admitted request
    refused: int = 0  #: 429s
    sent: int = 0
    departures: list[float] = field(default_factory=list)  #: when each request left
    pauses: list[tuple[float, float, float]] = field(default_factory=list)  #: (at, asked, got)

    @property
    def elapsed(self) -> float:
        return self.end - self.start

    @property
    def refused_share(self) -> float:
        return self.refused / self.sent if self.sent else 0.0

    def share(self, provider: Provider, since: float = 0.0) -> float:
        """Admitted requests from ``since`` seconds into the run to its end, over what the
        limit admits at its steady rate in that time."""
        first = self.start + since
        got = sum(1 for t in self.accepted if t >= first)
        return got / provider.capacity(since, self.elapsed)


def auto_meter(
    clock: SimClock,
    *,
    start: float = 9.5,
    max_rate: float = 100.0,
    concurrency: int = 8,
    adaptive: bool = True,
) -> Meter:
    """``--rate auto`` as AgentMessage's lane builds it, on ``clock`` (``adaptive`` false:
    ``--rate start``)."""
    gate = PauseGate(rng=random.Random(1), clock=clock)
    return Meter(start, concurrency, gate=gate, adaptive=adaptive, max_rate=max_rate)


async def simulate(
    meter: Meter,
    provider: Provider,
    clock: SimClock,
    *,
    duration: float | None = None,
    requests: int | None = None,
    latency: tuple[float, float] = (0.02, 0.06),
    seed: int = 0,
) -> Outcome:
    """Send until ``duration`` seconds have passed (no new request after) or ``requests``
    were admitted, ``meter.concurrency`` at a time; each 429 sent again, as bulk does."""
    rng = random.Random(seed)
    out = Outcome(start=clock.monotonic(), end=clock.monotonic())
    jobs = itertools.count()

    def more() -> bool:
        if duration is not None and clock.monotonic() - out.start >= duration:
            return False
        return requests is None or next(jobs) < requests

    async def worker() -> None:
        while more():
            while True:
                async with meter.slot() as sent_at:
                    out.sent += 1
                    out.departures.append(sent_at)
                    there = rng.uniform(*latency)
                    await clock.sleep(there / 2)
                    arrived = clock.monotonic()
                    ok, retry_after = provider(arrived)
                    await clock.sleep(there / 2)
                if ok:
                    out.accepted.append(arrived)
                    meter.answered(sent_at)
                    break
                out.refused += 1
                got = meter.rate_limited(retry_after, sent_at)
                if retry_after is not None:
                    out.pauses.append((clock.monotonic(), retry_after, got))

    async def main() -> None:
        async with asyncio.TaskGroup() as group:
            for _ in range(meter.concurrency):
                group.create_task(worker())
        out.end = clock.monotonic()

    await clock.run(main)
    return out


def run(
    provider: Provider,
    *,
    duration: float,
    start: float = 9.5,
    max_rate: float = 100.0,
    concurrency: int = 8,
    latency: tuple[float, float] = (0.02, 0.06),
    seed: int = 0,
    adaptive: bool = True,
) -> Outcome:
    """One simulated ``--rate auto`` run against ``provider`` (its own event loop;
    ``adaptive`` false: ``--rate start``)."""

    async def go() -> Outcome:
        clock = SimClock()
        meter = auto_meter(clock, start=start, max_rate=max_rate, concurrency=concurrency,
                           adaptive=adaptive)
        return await simulate(meter, provider, clock, duration=duration, latency=latency,
                              seed=seed)

    return anyio.run(go, backend="asyncio")
