"""Small composable meters: an evenly spaced rate limiter (fixed, or adaptive), a shared 429
pause gate, a cap.

Every request passes ``Meter.slot()`` before it reaches aiohttp's pool, in this order:
concurrency cap, pause gate, rate limiter, pause gate again (a 429 may have arrived while we
waited for the limiter). The sender tells the meter how each request was answered
(:meth:`Meter.answered`, :meth:`Meter.rate_limited`): an adaptive limiter moves its rate on
that (learning the provider's sliding window from the answers: :class:`SlidingWindowModel`),
and the gate sizes its pause.

Time comes from a :class:`MeterClock` (``monotonic()`` and ``async sleep()``), the real one
unless another is given: tests drive the meters on a :class:`VirtualClock` and assert on its
time, which a loaded machine cannot stretch.
"""

from __future__ import annotations

import bisect
import math
import random
import time
from collections import deque
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


class SlidingWindowModel:
    """What the client has learned of a provider's sliding-window limit: at most ``share`` of
    bulk's requests in any ``W`` seconds, ``lo < W <= hi``, counted on bulk's own departures.

    It is learned from one refusal that lasted (:meth:`learn`): while the window was full,
    every probe was refused; when one got through, the oldest request in the window had aged
    out. Which request that was shows in the departures: only one can have waited longer
    than the refusal lasted (the first of the run, or the first after a longer lull), so
    ``share`` is the count from it to the refusal, and W lies between the age the last
    refused probe proved and the age at the first request through.

    After that every answer narrows it, counting only bulk's own departures (``times``):

    - a request answered at ``s`` proves the window held fewer than ``share`` then: the
      ``share``-th latest departure before ``s`` was out of it, so ``W <= its age`` (``hi``);
      and if more than ``share`` left within ``lo`` before ``s``, the share is larger;
    - a request refused at ``t`` proves the window was full: if ``share`` left within ``hi``
      before ``t``, the ``share``-th latest was in it, so ``W > its age`` (``lo``); if fewer
      did, other software on the account took the rest, and the share shrinks to what bulk
      got through (it yields).

    ``share / hi`` is then a rate the window has been seen to admit. Departure times stand
    for arrival times; ``SLACK`` absorbs the difference (latency jitter).
    """

    SLACK = 0.05  #: seconds of jitter between a departure and its arrival
    HORIZON = 120.0  #: seconds of departures remembered (the longest window learnable)

    def __init__(self) -> None:
        self.times: list[float] = []  #: departures not refused, in order
        self._dropped = -math.inf  #: the latest departure forgotten
        self.share: int | None = None
        self.lo = 0.0
        self.hi = math.inf

    @property
    def rate(self) -> float | None:
        """Requests per second the window has been seen to admit (None: not learned)."""
        return None if self.share is None else self.share / self.hi

    def departed(self, at: float) -> None:
        self.times.append(at)
        old = bisect.bisect_left(self.times, at - self.HORIZON)
        if old >= 256:  # forget in blocks: one slice instead of a pop per departure
            self._dropped = self.times[old - 1]
            del self.times[:old]

    def refused(self, at: float) -> None:
        """The request that left at ``at`` was refused: it is not in the provider's window."""
        i = bisect.bisect_left(self.times, at)
        if i < len(self.times) and self.times[i] == at:
            del self.times[i]
        if self.share is None:
            return
        within = i - bisect.bisect_right(self.times, at - self.hi - self.SLACK)
        if within >= self.share:
            self.lo = max(self.lo, at - self.times[i - self.share] - self.SLACK)
        else:
            self.share = max(1, within)
        self.lo = min(self.lo, self.hi - self.SLACK)

    def answered(self, at: float) -> None:
        """The request that left at ``at`` was answered (admitted)."""
        if self.share is None:
            return
        i = bisect.bisect_left(self.times, at)
        within = i - bisect.bisect_right(self.times, at - self.lo + self.SLACK)
        if within >= self.share:
            self.share = within + 1
        if i >= self.share:
            self.hi = min(self.hi, at - self.times[i - self.share] + self.SLACK)
        self.hi = max(self.hi, self.lo + self.SLACK)

    def learn(self, first: float, last: float, through: float) -> bool:
        """A refusal from ``first`` to ``last`` (when the last refused request left) ended
        with a request that left at ``through``: learn the window if only one departure
        before it waited longer than the refusal lasted. True when learned."""
        end = bisect.bisect_left(self.times, first)
        lasted = last - first
        anchors = [
            i
            for i in range(end)
            if self.times[i] - (self.times[i - 1] if i else self._dropped) > lasted
        ]
        if len(anchors) != 1:
            return False
        oldest = self.times[anchors[0]]
        self.share = end - anchors[0]
        self.lo, self.hi = last - oldest, through - oldest
        return True

    def count(self, since: float, until: float) -> int:
        """Departures in ``[since, until)``."""
        return bisect.bisect_left(self.times, until) - bisect.bisect_left(self.times, since)

    def oldest(self) -> float | None:
        return self.times[0] if self.times else None


class AdaptiveRate(EvenRate):
    """``--rate auto``: the :class:`EvenRate` bucket, its rate found instead of guessed.

    In the spirit of the AWS SDKs' adaptive retry mode (a client-side bucket whose rate rises
    while requests succeed and is cut on a 429), with what a sliding-window limit's 429s say:

    - **Start.** It starts at ``start`` (the provider's default rate), spaced evenly from the
      first request (the bucket of 2, primed: no start burst), and doubles every ``DOUBLING``
      seconds while requests succeed (slow start), never above ``max_rate`` nor above twice
      what bulk actually sends (a run waiting for numbers to settle banks no rate it never
      tried).
    - **The first refusal** ends slow start. If it lasts (the ramp filled a long window,
      which then admits nothing until its oldest request ages out), bulk probes it ever more
      sparsely, one request at a time (``PROBE_RATE``): each probe when the window would be
      :meth:`_grow` times the age the last refused probe proved, never before
      ``Retry-After``, and none later than ``HORIZON`` after the first request (a refusal
      outlasting the longest window learnable is a storm). The first probe through teaches
      the window (:class:`SlidingWindowModel`): how many of bulk's requests it holds, and
      bounds on how long it is that every later answer narrows.
    - **With the window learned** bulk paces at what it admits (``HEADROOM`` of its share
      less ``MARGIN`` requests, over a length ``POS`` of the way from its lower to its upper
      bound), pauses after a 429 until the oldest of its requests in the window ages out (at
      least ``Retry-After``), and probes above that rate on a cubic of the time since the
      last 429 (``PROBE`` above it ``PROBE_AFTER`` windows later). When other software on the
      account eats into the limit, 429s come while fewer of bulk's requests are in the
      window: its share shrinks and bulk yields.
    - **With no window learned** (the first refusal was short: a window of a second or two,
      or a storm of 429s that was not about bulk's rate), a 429 cuts the rate to ``BETA``
      of what bulk was sending and CUBIC climbs back to ``PLATEAU`` of it within seconds,
      then probes beyond (the AWS SDKs' curve, levelling off a little under the rate that
      drew the 429).
    - A 429 for a request that left before the last cut carries no news (it was in flight),
      and 429s in a row with no answer between them are one event: neither cuts again.
      While a refusal lasts the rate is at most ``start``, and after every pause the bucket
      starts again as at the first request (:meth:`hold_until`): no burst.

    Built on :class:`EvenRate` rather than aiolimiter: aiolimiter's ``AsyncLimiter`` fixes its
    rate when built; the bucket here is the same (capacity 2, primed at first use, at most
    rate*W + 2 in any window W) and runs on any :class:`MeterClock`, the real one included.
    """

    BETA = 0.7  #: share of the sending rate kept after a 429 with no window learned
    C = 0.4  #: CUBIC's scale with no window learned, requests/s per s**3 (AWS SDKs: 0.4)
    PLATEAU = 0.9  #: where CUBIC levels off with no window learned, share of the sending rate
    HEADROOM = 0.97  #: share of the window's share paced at once it is known
    MARGIN = 2.0  #: requests kept free in the window besides (the bucket's spare unit, jitter)
    POS = 0.75  #: where between its bounds the window is taken to end (1: the upper bound)
    PROBE = 0.25  #: how far above the window's rate it probes PROBE_AFTER windows after a 429
    PROBE_AFTER = 2.0
    MIN_RATE = 0.5  #: the rate is never cut below this (AWS SDKs: 0.5)
    DOUBLING = 0.5  #: seconds per doubling in slow start (the 100/s aim needs it this fast)
    GROW = 2.0  #: a lasting first refusal: each probe at most GROW times the age last proved
    PROBE_SHARE = 0.02  #: ... one probe per 50 requests the window held, per e-fold
    PROBE_SHARE_FREE = 0.05  #: ... per 20 when 429s bring no Retry-After (no pause of theirs)
    PROBE_RATE = 10.0  #: requests per second at most while a refusal lasts (one by one)
    MIN_EPISODE = 1.0  #: seconds a refusal must last to teach a window
    FILL_HORIZON = 60.0  #: a refusal this long after the first request is no first fill
    SPAN = 1.0  #: seconds over which the sending rate is measured
    MIN_SPAN = 0.25  #: ... and at least this, else it is not

    def __init__(self, start: float, max_rate: float, clock: MeterClock = REAL_CLOCK) -> None:
        if max_rate <= 0:
            raise ValueError("max_rate must be positive")
        super().__init__(min(start, max_rate), clock)
        self.max_rate = max_rate
        self.start = self.rate
        self.window = SlidingWindowModel()
        self.cuts = 0
        self._first: float | None = None  #: when the first request left
        self._resumed = 0.0  #: when the first request left, or the last refusal ended
        self._recent: deque[float] = deque()  #: departures in the last SPAN
        self._slow_start = True
        self._epoch = clock.monotonic()  #: when the curve starts (the last cut)
        self._w_max = self.rate  #: CUBIC's plateau (no window learned)
        self._k = 0.0  #: seconds from the cut to the plateau (no window learned)
        self._scale = 1.0  #: seconds after a cut to probe PROBE above the window's rate
        self._after = self.rate  #: the rate to resume at when the refusal ends
        self._cut_at = -math.inf
        self._episode: tuple[float, float] | None = None  #: (first, last) refused departures
        self._filling = False  #: the refusal open came in slow start: the first window filled
        self._costly = True  #: the last 429 came with a Retry-After (a pause of its own)

    @property
    def settled(self) -> float:
        """The rate it settled on: its pace, or the window's rate when that is lower (the
        pace probes above it)."""
        known = self.window.rate
        return self.rate if known is None else min(self.rate, known)

    @property
    def resume_rate(self) -> float:
        """The rate it goes back to when the refusal open ends (its rate when none is)."""
        return self.rate if self._episode is None else max(self.MIN_RATE, self._after)

    def departed(self, at: float) -> None:
        """A request left at ``at``."""
        if self._first is None:
            self._first = self._epoch = self._resumed = at
        self.window.departed(at)
        self._recent.append(at)
        while self._recent[0] < at - self.SPAN:
            self._recent.popleft()

    def sending(self, now: float) -> float:
        """Requests per second that left in the last ``SPAN`` since the last refusal ended
        (a pause is not a rate); infinite when that is under ``MIN_SPAN`` (no measure)."""
        if self._first is None:
            return 0.0
        span = min(self.SPAN, now - self._resumed)
        if span < self.MIN_SPAN:
            return math.inf
        return sum(1 for t in self._recent if t >= now - span) / span

    def on_success(self, sent_at: float | None = None) -> None:
        """A request that left at ``sent_at`` was answered: the rate follows its curve up."""
        now = self._clock.monotonic()
        if sent_at is not None:
            self.window.answered(sent_at)
        if self._episode is not None:
            at = now if sent_at is None else sent_at
            if at < self._episode[0]:
                return  # it left before the refusal: the window may still be full
            self._end_episode(at, now)
        t = now - self._epoch
        if self._slow_start:
            curve = self.start * 2 ** (t / self.DOUBLING)
        elif self.window.rate is not None:
            curve = self._target() * (1 + self.PROBE * (t / self._scale) ** 3)
        else:
            curve = self._w_max + self.C * (t - self._k) ** 3
        new = min(curve, self.max_rate, max(self.rate, 2 * self.sending(now)))
        if new > self.rate:
            self._set(new)

    def on_throttle(self, sent_at: float | None = None, retry_after: float | None = None) -> bool:
        """A 429 for a request that left at ``sent_at`` (with ``retry_after``, if the provider
        sent one): cut the rate, unless it left before the last cut or a refusal is already
        open. True when it cut."""
        now = self._clock.monotonic()
        self._costly = bool(retry_after)
        at = now if sent_at is None else sent_at
        self.window.refused(at)
        if at < self._cut_at:
            return False
        if self._episode is not None:
            self._episode = (self._episode[0], max(self._episode[1], at))
            if self._first is not None and at - self._first >= self.window.HORIZON:
                self._filling = False  # longer than any window learnable: a storm
            return False
        self._episode = (at, at)
        self._cut_at = self._epoch = now
        self.cuts += 1
        young = self._first is not None and at - self._first <= self.FILL_HORIZON
        self._filling, self._slow_start = self._slow_start and young, False
        if self.window.rate is not None:
            self._after = self._target()
            self._scale = self.PROBE_AFTER * self.window.hi
        else:
            sending = min(self.sending(now), self.rate) or self.rate
            self._w_max = sending * self.PLATEAU
            self._after = max(self.MIN_RATE, sending * self.BETA)
            self._k = (max(0.0, self._w_max - self._after) / self.C) ** (1 / 3)
        probe = min(self._after, self.start)
        if self._filling:  # a long refusal to come: its probes one by one
            probe = min(probe, self.PROBE_RATE)
        self._set(max(self.MIN_RATE, probe))
        return True

    def _end_episode(self, through: float, now: float) -> None:
        """The first request sent since the refusal began (at ``through``) got through."""
        assert self._episode is not None
        first, last = self._episode
        self._episode = None
        self._resumed = now
        if self._filling and last - first >= self.MIN_EPISODE:
            self.window.learn(first, last, through)
        self._filling = False
        if self.window.rate is not None:
            self._epoch = now
            self._after = self._target()
            self._scale = self.PROBE_AFTER * self.window.hi
        self._set(max(self.MIN_RATE, min(self._after, self.max_rate)))

    def _target(self) -> float:
        """The rate the learned window admits, less the headroom."""
        m = self.window
        assert m.share is not None
        share = max(1.0, m.share * self.HEADROOM - self.MARGIN)
        return share / self._length()

    def _length(self) -> float:
        """The window's length bulk paces by: ``POS`` of the way into its bounds."""
        m = self.window
        return m.lo + (m.hi - m.lo) * self.POS

    def full_for(self) -> float:
        """How long from now the window stays full after a 429, as far as bulk can tell
        (0 or less: no idea, Retry-After or the pause gate's own step decides). With the
        window learned: until the oldest of bulk's requests in it ages out. In a lasting
        first refusal: until the window would be :meth:`_grow` times the age the last
        refused probe proved."""
        now = self._clock.monotonic()
        m = self.window
        if m.share is not None:
            if len(m.times) < m.share:
                return 0.0
            return m.times[-m.share] + self._length() - now
        first_at = m.oldest()
        if self._episode is None or not self._filling or first_at is None:
            return 0.0
        first, last = self._episode
        if last - first < self.MIN_EPISODE:
            return 0.0
        probe = last + (last - first_at) * (self._grow(first) - 1)
        return min(probe, first_at + m.HORIZON) - now  # no window learnable beyond

    def _grow(self, first: float) -> float:
        """The factor between a lasting first refusal's probes: one probe per ``1 /
        PROBE_SHARE`` requests the window held, per e-fold of its length (the probes' 429s a
        steady share of the traffic, the idle after it reopens as short as that allows), and
        at most ``GROW``."""
        held = max(1, self.window.count(-math.inf, first))
        share = self.PROBE_SHARE if self._costly else self.PROBE_SHARE_FREE
        return min(self.GROW, math.exp(1 / (share * held)))

    def hold_until(self, at: float) -> None:
        """No departure before ``at``, and none bunched right after it: the bucket starts
        again there as at the first request."""
        if self._empty_at is None or self._empty_at < at + self._interval:
            self._empty_at = at + self._interval


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
