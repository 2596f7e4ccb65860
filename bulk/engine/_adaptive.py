"""``--rate auto``: :class:`AdaptiveRate`, an :class:`~bulk.engine._rate.EvenRate` whose
rate is found instead of guessed, and :class:`SlidingWindowModel`, what it learns of a
provider's window from the answers. The meter (:class:`~bulk.engine._limits.Meter`) tells it
how each request was answered."""

from __future__ import annotations

import bisect
import math
from collections import deque

from bulk._clock import REAL_CLOCK, Clock
from bulk.engine._rate import EvenRate


class SlidingWindowModel:
    """What the client has learned of a provider's sliding-window limit: at most ``share`` of
    bulk's requests in any ``W`` seconds, ``lo < W <= hi``, counted on bulk's own departures.

    It is learned from one refusal that lasted (:meth:`learn`): while the window was full,
    every probe was refused; when one got through, the oldest request in the window had aged
    out. Which request that was shows in the departures: one that waited longer than the
    refusal lasted (the first of the run, or the first after a lull or a pause of bulk's
    own; of several, the latest: the shortest window that explains the refusal), so
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
    YIELD = 0.7  #: the share kept at least when others take part of the window

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

    def _within(self, at: float) -> tuple[int, int]:
        """(index of ``at`` in :attr:`times`, how many of bulk's departures before it fall
        within the window's upper bound)."""
        i = bisect.bisect_left(self.times, at)
        return i, i - bisect.bisect_right(self.times, at - self.hi - self.SLACK)

    def explains(self, at: float) -> bool:
        """Whether a refusal at ``at`` fits the learned window: ``share`` of bulk's requests
        in it (False: not learned, or the window had room by what bulk sent)."""
        return self.share is not None and self.holding(at) >= self.share

    def holding(self, at: float) -> int:
        """How many of bulk's departures before ``at`` fall within the window's upper
        bound."""
        return self._within(at)[1]

    def refused(self, at: float, *, shrink: bool = True) -> None:
        """The request that left at ``at`` was refused: it is not in the provider's window.
        With fewer than ``share`` of bulk's in the window the share shrinks (others take the
        rest), unless not ``shrink`` (a refusal not about the rate)."""
        i, within = self._within(at)
        if i < len(self.times) and self.times[i] == at:
            del self.times[i]
        if self.share is None:
            return
        if within >= self.share:
            self.lo = max(self.lo, at - self.times[i - self.share] - self.SLACK)
        elif shrink:  # by at most YIELD at a time: bulk's own count may be low after pauses
            self.share = max(1, within, math.ceil(self.share * self.YIELD))
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
        # the latest that waited longer than the refusal lasted: of several (a lull, or a
        # pause of bulk's own, before the refusal), each fits what was seen; the latest is the
        # shortest window that explains it, and the answers to come narrow it
        anchor = next(
            (i for i in reversed(range(end))
             if self.times[i] - (self.times[i - 1] if i else self._dropped) > lasted),
            None,
        )
        if anchor is None:
            return False
        oldest = self.times[anchor]
        self.share = end - anchor
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
    - **The first refusal** ends slow start, unless it was short (through within ``SHORT`` seconds,
      or a storm's few 429s): a storm of 429s in slow start is not about the rate, so slow start
      goes on where it was (:meth:`_resume_ramp`), up to ``RESUMES`` times, and not when it came
      with as many of bulk's requests in the last ``SPAN`` as an earlier one at the most ever
      answered (a short window's limit). If it lasts (the ramp filled a long window, which then
      admits nothing until its oldest request ages out), bulk probes it one request at a time
      (``PROBE_RATE``): at ``Retry-After`` for as long as a short storm of 429s lasts (``STORM``
      429s) and for ``DENSE`` seconds (two storms back to back), then ever more sparsely: each probe
      when the window would be :meth:`_grow` times the age the last refused probe proved, at most
      ``PROBE_GAP`` after the last, and none later than ``HORIZON`` after the first request (a
      refusal outlasting the longest window learnable is a storm). The first probe through teaches
      the window (:class:`SlidingWindowModel`): how many of bulk's requests it holds, and bounds on
      how long it is that every later answer narrows. A refusal over within a storm's length teaches
      nothing (a storm looks the same).
    - **With the window learned** bulk paces at what it admits (``HEADROOM`` of its share
      less ``MARGIN`` requests, over a length ``POS`` of the way from its lower to its upper
      bound), pauses after a 429 until the oldest of its requests in the window ages out (at
      least ``Retry-After``), and probes above that rate on a cubic of the time since the
      last 429 (``PROBE`` above it ``PROBE_AFTER`` windows later; ``PROBE_AFTER_FIRST``
      until a 429 the window explains confirms it).
    - **A stray 429** (the learned window held fewer than its share of bulk's requests: a storm, or
      other software on the account) cuts nothing and teaches nothing: Retry-After is honoured, and
      the pace goes on, catching up first (:meth:`acquire`): what the pause held back leaves at
      once, up to the pace's worth of the window, so a storm's 429s cost one pause for several and
      the window's room is not lost. 429s for requests that left with those that ended the stray
      refusal are the same storm. Only a stray 429 back within ``STRAY_GAP`` of bulk's requests
      after the last one ended means others take part of the window: the share shrinks (to what bulk
      had in it, by at most ``YIELD`` at a time) and bulk yields.
    - **With no window learned** (the first refusal was short: a window of a second or two,
      or a storm of 429s that was not about bulk's rate), a 429 cuts the rate to ``BETA``
      of what bulk was sending and CUBIC climbs back to ``PLATEAU`` of it within seconds,
      then probes beyond (the AWS SDKs' curve, levelling off a little under the rate that
      drew the 429). When two cuts come at about one rate (``SAME``) the limit is held: the
      next cut goes straight back to the plateau, which it leaves only slowly, back to the
      rate cut at in ``HOLD`` seconds (a short window's whole-second Retry-After is paid
      rarely); ``HOLD`` seconds with no 429 and the limit has risen: CUBIC probes on.
    - A 429 for a request that left before the last cut carries no news (it was in flight),
      and 429s in a row with no answer between them are one event: neither cuts again.
      While a refusal lasts the rate is at most ``start``, and after every pause the bucket
      starts again as at the first request (:meth:`hold_until`): no burst. No cut goes
      below ``MIN_RATE``, nor above ``max_rate`` (the ceiling wins when it is lower).

    Built on :class:`EvenRate` rather than aiolimiter: aiolimiter's ``AsyncLimiter`` fixes its
    rate when built; the bucket here is the same (capacity 2, primed at first use, at most
    rate*W + 2 in any window W, but for a catch-up after a stray refusal, which the learned
    window bounds instead) and runs on any :class:`~bulk._clock.Clock`, the real one included.
    """

    BETA = 0.7  #: share of the sending rate kept after a 429 with no window learned
    C = 0.4  #: CUBIC's scale with no window learned, requests/s per s**3 (AWS SDKs: 0.4)
    PLATEAU = 0.93  #: where CUBIC levels off with no window learned, share of the sending rate
    HOLD = 30.0  #: seconds from the plateau back to the rate cut at, once two cuts came at
    #: about one rate (a limit, held: no 429 every few seconds); then CUBIC probes on
    SAME = 0.2  #: two cuts at rates this close (a share of the first) found the same limit
    HEADROOM = 0.97  #: share of the window's share paced at once it is known
    MARGIN = 2.0  #: requests kept free in the window besides (the bucket's spare unit, jitter)
    POS = 0.75  #: where between its bounds the window is taken to end (1: the upper bound)
    PROBE = 0.25  #: how far above the window's rate it probes PROBE_AFTER windows after a 429
    PROBE_AFTER = 2.0
    PROBE_AFTER_FIRST = 0.5  #: ... until a refusal confirms the window (a storm can teach one)
    MIN_RATE = 0.5  #: the rate is never cut below this, unless max_rate is lower (AWS SDKs: 0.5)
    DOUBLING = 0.5  #: seconds per doubling in slow start (the 100/s aim needs it this fast)
    GROW = 2.0  #: a lasting first refusal: each probe at most GROW times the age last proved
    PROBE_SHARE = 0.02  #: ... one probe per 50 requests the window held, per e-fold
    PROBE_SHARE_FREE = 0.05  #: ... per 20 when 429s bring no Retry-After (no pause of theirs)
    PROBE_RATE = 10.0  #: requests per second at most while a refusal lasts (one by one)
    PROBE_GAP = 10.0  #: seconds at most between two probes of a lasting first refusal
    MIN_EPISODE = 1.0  #: seconds a refusal must last to teach a window
    FILL_HORIZON = 60.0  #: a refusal this long after the first request is no first fill
    SPAN = 1.0  #: seconds over which the sending rate is measured
    STRAY_GAP = 5  #: a stray refusal after fewer of bulk's departures than this recurs
    DENSE = 20.0  #: ... and for this many seconds: storms may come back to back, and a
    #: storm striking sparse probes would teach a window as long as the storm lasts
    STORM = 5  #: a lasting first refusal is probed at Retry-After until this many 429s (a
    #: short storm of 429s in a row is over by then), then ever more sparsely
    MIN_SPAN = 0.25  #: ... and at least this, else it is not
    RESUMES = 2  #: slow start goes on after this many short refusals at most
    SHORT = 1.5  #: seconds from a refusal to the first request through it, at most, for a
    #: refusal in slow start to be taken for a storm of 429s (a Retry-After of a second)

    def __init__(self, start: float, max_rate: float, clock: Clock = REAL_CLOCK) -> None:
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
        self._stray = False  #: the refusal open is a stray one (nothing cut)
        self._stray_at = -math.inf  #: when the first request through a stray refusal left
        self._stray_share = 0  #: how many of bulk's the window held at that refusal
        self._refusals = 0  #: 429s in the refusal open
        self._confirmed = False  #: a refusal the learned window explains has come
        self._cut_rate = -math.inf  #: the sending rate at the last cut (no window learned)
        self._held = False  #: the last two cuts came at about one rate: a limit held
        self._catch_up = False  #: a stray refusal's pause: send what it held back (acquire)
        self._after_stray = False  #: the last refusal to end was a stray one
        self._ramp: float | None = None  #: slow start's rate when the refusal open cut it
        self._ramp_load = -1  #: bulk's requests in the last SPAN at that refusal
        self._ramp_loads: list[int] = []  #: those at the short slow-start refusals so far
        self._peak_load = 0  #: the most of bulk's requests in one SPAN answered so far
        self.strays = 0

    @property
    def floor(self) -> float:
        """The lowest rate a 429 cuts to: ``MIN_RATE``, or ``max_rate`` when that is lower
        (the ceiling wins)."""
        return min(self.MIN_RATE, self.max_rate)

    @property
    def settled(self) -> float:
        """The rate it settled on: its pace, or the window's rate when that is lower (the
        pace probes above it)."""
        known = self.window.rate
        return self.rate if known is None else min(self.rate, known)

    @property
    def adaptive(self) -> bool:
        return True

    @property
    def current_rate(self) -> float:
        """:attr:`settled`: where the rate stands for a report."""
        return self.settled

    @property
    def resume_rate(self) -> float:
        """The rate it goes back to when the refusal open ends (its rate when none is)."""
        if self._episode is None or self._stray:
            return self.rate
        return max(self.floor, self._after)

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
            if self._slow_start:
                load = self.window.count(sent_at - self.SPAN, sent_at + self.window.SLACK)
                self._peak_load = max(self._peak_load, load)
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
        elif self._held and t < self.HOLD:  # the plateau, then past it: the rate cut at
            curve = self._w_max * (1 + (1 / self.PLATEAU - 1) * (t / self.HOLD) ** 3)
        elif self._held:  # HOLD seconds without a 429: the limit rose, CUBIC probes on
            curve = self._w_max / self.PLATEAU + self.C * (t - self.HOLD) ** 3
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
        stray = self.window.share is not None and not self.window.explains(at)
        fresh = at >= self._cut_at and self._episode is None
        if stray and fresh and self._after_stray and at <= self._stray_at:
            # it left before the request that ended the last stray refusal (or with it): the
            # same storm (a storm refuses the first requests to arrive, a full window the
            # last), no news of others in the window
            self.window.refused(at, shrink=False)
            return False
        if stray and fresh:
            # the learned window had room: a storm, or others taking part of the limit; a
            # stray refusal is paused for, and yielded to only when it comes back at once
            recurs = self.window.count(self._stray_at, at) < self.STRAY_GAP
            if not recurs:
                self._stray_share = max(1, self.window.holding(at))
                self.window.refused(at, shrink=False)
                self._episode = (at, at)
                self._stray = True
                self._catch_up = True
                self.strays += 1
                return False
        # a stray refusal back at once: others take part of the window, and bulk yields
        # what it had not in it then (once: the probes that follow find it emptier)
        self.window.refused(at, shrink=stray and fresh)
        if fresh:
            self._catch_up = False
        if not fresh:
            if self._episode is not None:
                self._episode = (self._episode[0], max(self._episode[1], at))
                self._refusals += 1
                if self._first is not None and at - self._first >= self.window.HORIZON:
                    self._filling = False  # longer than any window learnable: a storm
            return False
        self._episode = (at, at)
        self._refusals = 1
        self._cut_at = self._epoch = now
        self.cuts += 1
        young = self._first is not None and at - self._first <= self.FILL_HORIZON
        self._ramp = self.rate if self._slow_start else None
        self._ramp_load = self.window.count(at - self.SPAN, at + self.window.SLACK)
        # a lasting refusal while no window is learned (in slow start, or after storms ended
        # it) may be a window filling: its probes may teach it
        self._filling = (self._slow_start or self.window.rate is None) and young
        self._slow_start = False
        if self.window.rate is not None:
            self._confirmed = True  # a refusal the learned window explains
            self._after = self._target()
            self._scale = self.PROBE_AFTER * self.window.hi
        else:
            sending = min(self.sending(now), self.rate) or self.rate
            # cut again near the rate of the last cut: a limit, not a storm; hold under it
            self._held = abs(sending - self._cut_rate) <= self.SAME * self._cut_rate
            self._cut_rate = sending
            self._w_max = sending * self.PLATEAU
            # a limit held: straight back to the plateau (a storm: cut, and CUBIC back)
            beta = self.PLATEAU if self._held else self.BETA
            self._after = max(self.floor, sending * beta)
            self._k = (max(0.0, self._w_max - self._after) / self.C) ** (1 / 3)
        probe = min(self._after, self.start)
        if self._filling:  # a long refusal to come: its probes one by one
            probe = min(probe, self.PROBE_RATE)
        self._set(max(self.floor, probe))
        return True

    def _end_episode(self, through: float, now: float) -> None:
        """The first request sent since the refusal began (at ``through``) got through."""
        assert self._episode is not None
        first, last = self._episode
        self._episode = None
        self._resumed = now
        self._after_stray = self._stray
        if self._stray:  # nothing was cut: the pace goes on
            self._stray = False
            self._stray_at = through
            return
        # a refusal over within a storm's length of 429s (each probed at Retry-After) may
        # have been a storm: it teaches no window
        lasted = last - first >= self.MIN_EPISODE  # probes refused after Retry-After
        storm = lasted and self._costly and self._refusals < self.STORM
        if self._filling and lasted and not storm:
            self.window.learn(first, last, through)
        self._filling = False
        if self._resume_ramp(storm or (not lasted and through - first <= self.SHORT), now):
            return
        if self.window.rate is not None:
            self._epoch = now
            self._after = self._target()
            after = self.PROBE_AFTER if self._confirmed else self.PROBE_AFTER_FIRST
            self._scale = after * self.window.hi
        self._set(max(self.floor, min(self._after, self.max_rate)))

    def _resume_ramp(self, short: bool, now: float) -> bool:
        """A short refusal in slow start (over within a storm's length) may be a storm of
        429s or a short window's limit: slow start goes on where it was, unless it came with
        as many of bulk's requests in the last ``SPAN`` as were ever answered (a storm may
        strike at any load; a short window's limit at the most it admits), the same count as
        an earlier such refusal (a limit shows the same count each time). True when slow
        start goes on."""
        ramp, self._ramp = self._ramp, None
        if ramp is None or not short or self.window.rate is not None:
            return False
        load = self._ramp_load
        full = load >= (1 - self.SAME) * self._peak_load
        same = full and any(abs(load - seen) <= self.SAME * seen for seen in self._ramp_loads
                            if seen >= 0)
        self._ramp_loads.append(load if full else -1)
        if same or len(self._ramp_loads) > self.RESUMES:
            return False
        self._slow_start = True
        self._epoch = now - self.DOUBLING * math.log2(max(1.0, ramp / self.start))
        self._set(ramp)
        return True

    async def acquire(self) -> None:
        """The even pace, and with the window learned, the window's room too:

        - no request leaves while bulk's departures within the window's length (the one it
          paces by) number the pace's worth of it (``rate`` times that length): what a
          pause held back and a catch-up sent is not stacked on by the pace;
        - after a stray refusal's pause (a storm of 429s, the window had room), requests
          leave at once until the window holds its pace's worth again: the pause's share of
          the window is sent late instead of lost, and a storm's remaining 429s are paid
          with one pause for several instead of one each.
        """
        m = self.window
        if m.share is None:
            await super().acquire()
            return
        async with self._turn:
            while True:
                now = self._clock.monotonic()
                length = self._length()
                # the pace's worth (the window's, while a refusal holds the rate at its probes')
                cap = max(1, math.floor(max(self.rate, self._target()) * length))
                if len(m.times) < cap:
                    break
                wait = m.times[-cap] + length - now
                if wait <= 0:
                    break
                self._catch_up = False  # the window holds its pace's worth again
                await self._clock.sleep(wait)
            if self._catch_up and m.count(now - length, now + m.SLACK) < self._room():
                if self._empty_at is None:
                    self._empty_at = now
                return
            await self._pace(now)

    def _room(self) -> float:
        """How many of bulk's requests the learned window holds, less the headroom: what a
        catch-up fills it to (never the probes' rate above it)."""
        m = self.window
        assert m.share is not None
        return max(1.0, m.share * self.HEADROOM - self.MARGIN)

    def _target(self) -> float:
        """The rate the learned window admits, less the headroom."""
        return self._room() / self._length()

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
            share = m.share
            if self._stray:  # the window had room: Retry-After decides, else until the
                if self._costly:  # oldest of those bulk had in it ages out
                    return 0.0
                share = min(share, self._stray_share)
            if len(m.times) < share:
                return 0.0
            return m.times[-share] + self._length() - now
        first_at = m.oldest()
        if self._episode is None or not self._filling or first_at is None:
            return 0.0
        first, last = self._episode
        if last - first < self.MIN_EPISODE:
            return 0.0
        if self._costly and self._refusals < self.STORM:
            return 0.0  # as long as a storm: each probe when Retry-After says
        if self._costly and last - first < self.DENSE:
            # as long as two storms back to back: each probe when Retry-After says, and no
            # later (the gate's doubling is for a provider that keeps saying "now")
            return self.window.SLACK
        # ever more sparsely, but never more than PROBE_GAP apart: a storm of 429s striking
        # the probes must not multiply the wait
        probe = last + min(self.PROBE_GAP, (last - first_at) * (self._grow(first) - 1))
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
        again there as at the first request. (Not after a stray refusal with Retry-After:
        the window has room, and the bucket's spare unit lets a storm's 429s, each paused
        for, pass two at a time.)"""
        if self._stray and self._costly:
            return
        if self._empty_at is None or self._empty_at < at + self._interval:
            self._empty_at = at + self._interval
