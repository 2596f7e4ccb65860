"""Pure building blocks of the sandbox state: settle draws, pending operations,
rate limits (sliding or fixed windows, token buckets) and counters. No aiohttp here."""

from __future__ import annotations

import heapq
import itertools
import random
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any


def iso(dt: datetime) -> str:
    """``2025-01-01T00:00:00.000Z``."""
    return dt.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class Callback:
    """Where a Plivo status callback goes."""

    url: str
    method: str  # "GET" or "POST"


@dataclass(eq=False)
class Op:
    """One pending change of one number (link, unlink, attach or detach)."""

    provider: str  # "plivo" or "agentmessage"
    kind: str  # "link", "unlink", "attach", "detach"
    number: str  # E.164
    campaign_id: str | None
    requested_at: float
    settle_at: float | None  # None: never settles
    failed: bool
    request_id: str
    callback: Callback | None = None
    #: the Plivo auth id or AgentMessage org id whose state the operation changes
    account: str = ""
    seq: int = 0


class Settler:
    """Draws when and how an operation settles, from the one seeded RNG."""

    def __init__(
        self,
        rng: random.Random,
        *,
        settle_min: float,
        settle_max: float,
        fail_rate: float,
        slow_tail_rate: float,
        slow_tail_min: float,
        slow_tail_max: float,
        always_fail: set[str],
        never_settle: set[str],
    ) -> None:
        self.rng = rng
        self.settle_min = settle_min
        self.settle_max = settle_max
        self.fail_rate = fail_rate
        self.slow_tail_rate = slow_tail_rate
        self.slow_tail_min = slow_tail_min
        self.slow_tail_max = slow_tail_max
        self.always_fail = always_fail
        self.never_settle = never_settle

    def draw(self, number: str, now: float, *, can_fail: bool) -> tuple[float | None, bool]:
        """``(settle_at, failed)``; ``settle_at`` is None for a never-settling number."""
        if self.slow_tail_rate > 0 and self.rng.random() < self.slow_tail_rate:
            duration = self.rng.uniform(self.slow_tail_min, self.slow_tail_max)
        else:
            duration = self.rng.uniform(self.settle_min, self.settle_max)
        failed = False
        if can_fail:
            if self.fail_rate > 0 and self.rng.random() < self.fail_rate:
                failed = True
            if number in self.always_fail:
                failed = True
        if number in self.never_settle:
            return None, failed
        return now + duration, failed


class Scheduler:
    """A heap of pending operations by settle time."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Op]] = []
        self._seq = itertools.count()

    def add(self, op: Op) -> None:
        op.seq = next(self._seq)
        if op.settle_at is not None:
            heapq.heappush(self._heap, (op.settle_at, op.seq, op))

    def due(self, now: float) -> list[Op]:
        out = []
        while self._heap and self._heap[0][0] <= now:
            out.append(heapq.heappop(self._heap)[2])
        return out

    def next_due(self) -> float | None:
        return self._heap[0][0] if self._heap else None

    def __len__(self) -> int:
        return len(self._heap)


#: the shapes a sandbox rate limit can take (``--rate-shape``)
RATE_SHAPES = ("sliding", "fixed", "bucket")


class SlidingWindow:
    """At most ``limit`` admitted requests in any ``window`` seconds (0 = unlimited).

    :attr:`peak` is the most requests it ever held admitted within one window (kept for an
    unlimited ``limit`` too; 0 when ``window`` is 0)."""

    shape = "sliding"

    def __init__(self, limit: int, window: float) -> None:
        self.limit = limit
        self.window = window
        self.peak = 0
        self._times: deque[float] = deque()

    def try_acquire(self, now: float) -> bool:
        if self.window <= 0:
            return True
        while self._times and self._times[0] <= now - self.window:
            self._times.popleft()
        if 0 < self.limit <= len(self._times):
            return False
        self._times.append(now)
        self.peak = max(self.peak, len(self._times))
        return True

    def room_in(self, now: float) -> float:
        """Seconds from ``now`` until a request would be admitted (0: now)."""
        if self.window <= 0 or not 0 < self.limit <= len(self._times):
            return 0.0
        return max(0.0, self._times[-self.limit] + self.window - now)

    def set_limit(self, limit: int, now: float) -> None:
        """A new limit from ``now``: the requests already admitted count against it."""
        self.limit = limit


class FixedWindow:
    """At most ``limit`` admitted requests per window of ``window`` seconds, the windows
    fixed on the clock (``[k * window, (k + 1) * window)``): the count starts again at each
    boundary, so up to ``2 * limit`` can pass within one window's length across it."""

    shape = "fixed"

    def __init__(self, limit: int, window: float) -> None:
        self.limit = limit
        self.window = window
        self.peak = 0
        self._index = -1
        self._count = 0

    def try_acquire(self, now: float) -> bool:
        if self.window <= 0:
            return True
        index = int(now // self.window)
        if index != self._index:
            self._index, self._count = index, 0
        if 0 < self.limit <= self._count:
            return False
        self._count += 1
        self.peak = max(self.peak, self._count)
        return True

    def room_in(self, now: float) -> float:
        if self.window <= 0 or int(now // self.window) != self._index:
            return 0.0
        if not 0 < self.limit <= self._count:
            return 0.0
        return max(0.0, (self._index + 1) * self.window - now)

    def set_limit(self, limit: int, now: float) -> None:
        """A new limit from ``now``: the requests admitted in this window count against it."""
        self.limit = limit


class TokenBucket:
    """A bucket of ``limit`` tokens, full at first, refilled at ``limit / window`` tokens a
    second; each admitted request takes one: a burst of ``limit``, then the refill rate."""

    shape = "bucket"

    def __init__(self, limit: int, window: float) -> None:
        self.limit = limit
        self.window = window
        self.peak = 0
        self._tokens = float(limit)
        self._at: float | None = None

    def _refill(self, now: float) -> None:
        if self._at is not None and now > self._at:
            self._tokens = min(self.limit, self._tokens + (now - self._at) * self.limit
                               / self.window)
        self._at = now if self._at is None else max(self._at, now)

    def try_acquire(self, now: float) -> bool:
        if self.window <= 0 or self.limit <= 0:
            return True
        self._refill(now)
        if self._tokens < 1.0:
            return False
        self._tokens -= 1.0
        self.peak = max(self.peak, self.limit - int(self._tokens))
        return True

    def room_in(self, now: float) -> float:
        if self.window <= 0 or self.limit <= 0:
            return 0.0
        self._refill(now)
        return max(0.0, (1.0 - self._tokens) * self.window / self.limit)

    def set_limit(self, limit: int, now: float) -> None:
        """A new size and refill rate from ``now``: the tokens left, at most the new size (a
        bucket that had no limit starts full)."""
        self._refill(now)
        self._tokens = float(limit) if self.limit <= 0 else min(self._tokens, float(limit))
        self.limit = limit


RateLimiter = SlidingWindow | FixedWindow | TokenBucket


def rate_limiter(shape: str, limit: int, window: float) -> RateLimiter:
    """The sandbox's limit of that shape (one of :data:`RATE_SHAPES`)."""
    if shape == "fixed":
        return FixedWindow(limit, window)
    if shape == "bucket":
        return TokenBucket(limit, window)
    if shape == "sliding":
        return SlidingWindow(limit, window)
    raise ValueError(f"rate shape must be one of {list(RATE_SHAPES)}, got {shape!r}")


ACCEPTED_KINDS = ("link", "unlink", "attach", "detach")


@dataclass
class EndpointCounter:
    requests: int = 0
    rate_limited: int = 0
    faults: int = 0
    status: dict[str, int] = field(default_factory=dict)


@dataclass
class AccountCounter:
    requests: int = 0
    unauthorized: int = 0
    rate_limited: int = 0


@dataclass
class NumberCounter:
    requests: int = 0
    link_accepted: int = 0
    unlink_accepted: int = 0
    attach_accepted: int = 0
    detach_accepted: int = 0


class Counters:
    """Request, fault and state-change counters exposed by ``GET /_sandbox/counters``."""

    def __init__(self) -> None:
        self.endpoints: dict[str, EndpointCounter] = {}
        self.numbers: dict[str, NumberCounter] = {}
        #: Plivo auth id / AgentMessage org id (or ``unknown``) -> its requests
        self.accounts: dict[str, AccountCounter] = {}

    def account(self, account: str) -> AccountCounter:
        counter = self.accounts.get(account)
        if counter is None:
            counter = self.accounts[account] = AccountCounter()
        return counter

    def _ep(self, endpoint: str) -> EndpointCounter:
        counter = self.endpoints.get(endpoint)
        if counter is None:
            counter = self.endpoints[endpoint] = EndpointCounter()
        return counter

    def _num(self, number: str) -> NumberCounter:
        counter = self.numbers.get(number)
        if counter is None:
            counter = self.numbers[number] = NumberCounter()
        return counter

    def request(self, endpoint: str) -> None:
        self._ep(endpoint).requests += 1

    def rate_limited(self, endpoint: str) -> None:
        self._ep(endpoint).rate_limited += 1

    def fault(self, endpoint: str) -> None:
        self._ep(endpoint).faults += 1

    def status(self, endpoint: str, status: int | str) -> None:
        st = self._ep(endpoint).status
        st[str(status)] = st.get(str(status), 0) + 1

    def number_request(self, number: str) -> None:
        self._num(number).requests += 1

    def accepted(self, number: str, kind: str) -> None:
        if kind not in ACCEPTED_KINDS:
            raise ValueError(kind)
        counter = self._num(number)
        setattr(counter, f"{kind}_accepted", getattr(counter, f"{kind}_accepted") + 1)

    def to_dict(self) -> dict[str, Any]:
        totals: dict[str, int] = {"requests": 0, "rate_limited": 0, "faults": 0}
        for kind in ACCEPTED_KINDS:
            totals[f"{kind}_accepted"] = 0
        endpoints = {}
        for name, ep in sorted(self.endpoints.items()):
            endpoints[name] = {
                "requests": ep.requests,
                "rate_limited": ep.rate_limited,
                "faults": ep.faults,
                "status": dict(sorted(ep.status.items())),
            }
            totals["requests"] += ep.requests
            totals["rate_limited"] += ep.rate_limited
            totals["faults"] += ep.faults
        numbers = {}
        for number, nc in sorted(self.numbers.items()):
            numbers[number] = {
                "requests": nc.requests,
                "link_accepted": nc.link_accepted,
                "unlink_accepted": nc.unlink_accepted,
                "attach_accepted": nc.attach_accepted,
                "detach_accepted": nc.detach_accepted,
            }
            for kind in ACCEPTED_KINDS:
                totals[f"{kind}_accepted"] += getattr(nc, f"{kind}_accepted")
        return {"endpoints": endpoints, "numbers": numbers, "totals": totals}
