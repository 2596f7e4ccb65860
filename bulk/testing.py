"""Run bulk's engine in virtual time against an in-memory provider (for tests and benchmarks).

Three pieces, each usable alone:

* :func:`run_in_virtual_time` runs an async function on an asyncio event loop whose clock
  jumps: whenever no task is ready, time moves at once to the next timer. An hour of polling
  takes milliseconds, and ``anyio.sleep`` and the engine's waits need no patching.
* :class:`LoopClock` (from :mod:`bulk._clock`) is a :class:`bulk._clock.Clock` read from the
  running loop: on a virtual-time loop, virtual time, for the engine, the meters and
  aiolimiter alike.
* :class:`MemoryProvider` speaks :class:`bulk.providers.Provider` from memory, the way Plivo
  does (paged lists of 20 with counts, single reads, batched links), with a settle time per
  number (``None``: never settles), other numbers already in each campaign (some stuck
  pending, as another team's), and every request counted by kind.

:func:`run_engine` puts them together: the engine plans and runs rows to their outcomes, and
the result tells when each row became known and what it cost::

    from bulk.engine import EngineConfig
    from bulk.testing import MemoryProvider, run_engine, run_in_virtual_time

    provider = MemoryProvider(settle=lambda number: 2.0)
    provider.add_campaign("CBIG", others=3000)
    rows = [("+1415555%04d" % i, "link", "CBIG") for i in range(200)]
    run = run_in_virtual_time(run_engine, provider, rows, EngineConfig(poll_interval=0.5))
    run.requests  # Counter({'get': ..., 'list': ..., 'link': 2})
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import math
import selectors
from collections import Counter
from collections.abc import Awaitable, Callable, Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar, TypeVarTuple, Unpack

import anyio

from bulk._aio import gather_map
from bulk._clock import EPOCH, LoopClock
from bulk._journal import Journal, RowRecord
from bulk._sandboxed import set_settle
from bulk.engine._run import Engine
from bulk.engine._values import EngineConfig, Plan
from bulk.providers._base import (
    CampaignCheck,
    Glance,
    LinkOutcome,
    NumberState,
    ProviderUnavailable,
    Settlement,
    UnlinkOutcome,
    WindowClosed,
)

T = TypeVar("T")
Ts = TypeVarTuple("Ts")

#: why a change whose turn came after the send window closed was not sent (as the HTTP
#: sender says it)
_WINDOW_CLOSED_REASON = "not sent: the send window closed"


# --- virtual time ---------------------------------------------------------------------------


class _JumpSelector(selectors.DefaultSelector):
    """A selector that, with nothing ready, moves its loop's clock instead of waiting."""

    def __init__(self) -> None:
        super().__init__()
        self.now = 0.0

    def select(self, timeout: float | None = None) -> list[tuple[Any, int]]:
        ready: list[tuple[Any, int]] = super().select(0)
        if ready or timeout is None or timeout <= 0:
            # with no timer at all, wait for real: only another thread can wake the loop
            return ready if ready or timeout is not None else super().select(None)
        self.now += timeout
        return []


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """An asyncio event loop whose time jumps to the next timer whenever no task is ready."""

    def __init__(self) -> None:
        self._jump = _JumpSelector()
        super().__init__(self._jump)

    #: the least a timer waits: real time always moves between setting a timer and its
    #: firing, and code that sets one for "now" again each time it fires (aiolimiter, when
    #: float rounding leaves its bucket a hair over full) must see time move, not spin
    TICK = 1e-8

    def time(self) -> float:
        return self._jump.now

    def call_at(
        self,
        when: float,
        callback: Callable[[Unpack[Ts]], object],
        *args: *Ts,
        context: contextvars.Context | None = None,
    ) -> asyncio.TimerHandle:
        return super().call_at(max(when, self.time() + self.TICK), callback, *args, context=context)


def run_in_virtual_time(fn: Callable[..., Awaitable[T]], *args: Any) -> T:
    """``fn(*args)`` on a :class:`VirtualTimeLoop` (anyio's asyncio backend)."""
    return anyio.run(
        fn, *args, backend="asyncio", backend_options={"loop_factory": VirtualTimeLoop}
    )


# --- the in-memory provider -----------------------------------------------------------------


@dataclass(slots=True)
class _Entry:
    linked_at: float
    #: seconds after ``linked_at`` it settles; None: never
    settle: float | None
    outcome: Settlement = Settlement.ACTIVE
    unlinking: bool = False

    def state(self, now: float) -> NumberState:
        if self.settle is None or now < self.linked_at + self.settle:
            return NumberState(Settlement.PENDING, "PROCESSING")
        if self.outcome is Settlement.FAILED:
            return NumberState(Settlement.FAILED, "FAILED")
        return NumberState(Settlement.ACTIVE, "COMPLETED")

    def settled_at(self) -> float | None:
        return None if self.settle is None else self.linked_at + self.settle


class MemoryProvider:
    """A provider held in memory, shaped like Plivo: lists of ``page_size`` in link order
    with counts by settlement on every page, one read per number, links in batches, a move
    in two steps. Time is the running loop's (:class:`LoopClock`).

    ``settle(number)`` gives each link's settle time in seconds (None: never settles); an
    unlink settles after the same time, then the number leaves the campaign. ``latency``
    is how long each request takes. :attr:`requests` counts requests by kind: ``list``
    (a page), ``get`` (one number), ``link``, ``unlink``, ``campaign``.
    """

    name = "memory"
    page_size = 20
    move_in_one_step = False
    default_rate = 58.0
    knows_current_campaign = False

    def __init__(
        self,
        settle: Callable[[str], float | None] = lambda number: 1.0,
        *,
        latency: float = 0.0,
        rate: float | None = None,
        max_batch: int = 100,
        counts: bool = True,
        clock: LoopClock | None = None,
    ) -> None:
        self.settle = settle
        self.latency = latency
        self.rate = rate
        self._next_slot = 0.0
        self.max_batch = max_batch
        self.counts = counts
        self.clock = clock or LoopClock()
        self.campaigns: dict[str, dict[str, _Entry]] = {}
        self.requests: Counter[str] = Counter()
        #: single reads (``get``) by number
        self.reads_of: Counter[str] = Counter()

    # -- setting up --------------------------------------------------------------------------

    def add_campaign(
        self, campaign_id: str, *, others: int = 0, others_stuck: int = 0, prefix: str = "+1999"
    ) -> list[str]:
        """A usable campaign holding ``others`` numbers that are not the run's (settled),
        and ``others_stuck`` more that never settle. Returns those numbers."""
        entries = self.campaigns.setdefault(campaign_id, {})
        numbers = []
        for i in range(others + others_stuck):
            number = f"{prefix}{len(entries):07d}"
            entries[number] = _Entry(-math.inf, None if i >= others else 0.0)
            numbers.append(number)
        return numbers

    def settled_at(self, campaign_id: str, number: str) -> float | None:
        """When (loop time) the number's link in the campaign settles; None: never, or not
        linked there."""
        entry = self.campaigns.get(campaign_id, {}).get(number)
        return None if entry is None else entry.settled_at()

    # -- the protocol ------------------------------------------------------------------------

    async def _request(self, kind: str) -> float:
        """Count the request; it is answered after ``latency``, and no sooner than ``1 /
        rate`` after the one before (requests queue as behind a meter)."""
        sent = await self._change(kind, None)
        assert sent is not None
        return sent

    async def _change(self, kind: str, window_closed: WindowClosed | None) -> float | None:
        """:meth:`_request` for a change: given ``window_closed``, it is asked when the
        request's turn comes (as the HTTP sender asks when the meter grants the slot); once
        true the change is not sent (None: not counted, never lands)."""
        now = self.clock.monotonic()
        wait = self.latency
        if self.rate:
            start = max(now, self._next_slot)
            self._next_slot = start + 1.0 / self.rate
            wait += start - now
        if window_closed is not None:
            if wait > self.latency:
                await anyio.sleep(wait - self.latency)  # in line for its turn
                wait = self.latency
            if window_closed():
                return None
        self.requests[kind] += 1
        if wait > 0:
            await anyio.sleep(wait)
        return self.clock.monotonic()

    def _entries(self, campaign_id: str, now: float) -> dict[str, _Entry]:
        entries = self.campaigns[campaign_id]
        for number in [
            n
            for n, e in entries.items()
            if e.unlinking and e.state(now).settlement is not Settlement.PENDING
        ]:
            del entries[number]
        return entries

    def _page(self, campaign_id: str, offset: int, now: float) -> dict[str, NumberState]:
        numbers = list(self._entries(campaign_id, now).items())[offset : offset + self.page_size]
        return {n: e.state(now) for n, e in numbers}

    def _counts(self, campaign_id: str, now: float) -> dict[Settlement, int] | None:
        if not self.counts:
            return None
        return dict(
            Counter(e.state(now).settlement for e in self._entries(campaign_id, now).values())
        )

    def current_campaign(self, number: str) -> str | None:
        return None

    async def check_campaign(self, campaign_id: str) -> CampaignCheck:
        await self._request("campaign")
        if campaign_id not in self.campaigns:
            return CampaignCheck(campaign_id, False, reason=f"campaign {campaign_id}: not found")
        return CampaignCheck(campaign_id, True)

    async def survey_campaign(
        self, campaign_id: str
    ) -> tuple[CampaignCheck, dict[str, NumberState] | None]:
        if campaign_id not in self.campaigns:
            return await self.check_campaign(campaign_id), None
        first = await self.campaign_glance(campaign_id)
        return CampaignCheck(campaign_id, True), await self.campaign_numbers(
            campaign_id, first=first
        )

    async def campaign_numbers(
        self,
        campaign_id: str,
        size_hint: int | None = None,
        first: Glance | None = None,
        *,
        want: Collection[str] | None = None,
    ) -> dict[str, NumberState]:
        if first is not None and first.whole:
            return dict(first.members)
        if campaign_id not in self.campaigns:
            raise ProviderUnavailable(f"campaign {campaign_id}: not found")
        found = dict(first.members) if first is not None else {}
        start = 0 if first is None else self.page_size
        size = len(self.campaigns[campaign_id])
        offsets = range(start, max(size, start + 1), self.page_size)

        async def page(offset: int) -> dict[str, NumberState]:
            # every page at once, as an adapter that knows the list's size asks for them
            return self._page(campaign_id, offset, await self._request("list"))

        pages = await gather_map({o: functools.partial(page, o) for o in offsets})
        for got in pages.values():
            found.update(got)
        return found

    async def campaign_glance(self, campaign_id: str) -> Glance:
        now = await self._request("list")
        if campaign_id not in self.campaigns:
            raise ProviderUnavailable(f"campaign {campaign_id}: not found")
        page = self._page(campaign_id, 0, now)
        whole = len(self.campaigns[campaign_id]) <= self.page_size
        return Glance(page, self._counts(campaign_id, now), whole=whole, names=campaign_id)

    async def resolve(self, numbers: Sequence[str]) -> dict[str, str]:
        return {}

    async def link(
        self,
        campaign_id: str,
        numbers: Sequence[str],
        lines: Sequence[int],
        *,
        window_closed: WindowClosed | None = None,
    ) -> LinkOutcome:
        now = await self._change("link", window_closed)
        if now is None:
            return LinkOutcome(unsent=dict.fromkeys(numbers, _WINDOW_CLOSED_REASON))
        outcome = LinkOutcome()
        entries = self._entries(campaign_id, now)
        for number in numbers:
            elsewhere = [c for c, e in self.campaigns.items() if c != campaign_id and number in e]
            if elsewhere:
                outcome.refused[number] = f"{number} is linked to another campaign"
            elif number in entries:
                outcome.under_way.append(number)
            else:
                entries[number] = _Entry(now, self.settle(number))
                outcome.accepted.append(number)
        return outcome

    async def unlink(
        self, campaign_id: str, number: str, line: int, *, window_closed: WindowClosed | None = None
    ) -> UnlinkOutcome:
        now = await self._change("unlink", window_closed)
        if now is None:
            return UnlinkOutcome(unsent=_WINDOW_CLOSED_REASON)
        entry = self._entries(campaign_id, now).get(number)
        if entry is None:
            return UnlinkOutcome(absent=True)
        if entry.unlinking:
            return UnlinkOutcome(under_way=True)
        entry.linked_at, entry.settle, entry.unlinking = now, self.settle(number), True
        return UnlinkOutcome(accepted=True)

    async def number_state(self, campaign_id: str, number: str, line: int) -> NumberState:
        now = await self._request("get")
        self.reads_of[number] += 1
        entry = (
            self._entries(campaign_id, now).get(number) if campaign_id in self.campaigns else None
        )
        return NumberState(Settlement.ABSENT) if entry is None else entry.state(now)


# --- running the engine ---------------------------------------------------------------------

#: one input row: (number, action, campaign) or (number, action, campaign, from campaign)
Row = tuple[str, str, str] | tuple[str, str, str, str]


@dataclass(slots=True)
class EngineRun:
    """What :func:`run_engine` saw: the plan, the rows at the end, when each became known
    (loop time of the journal change that gave it its outcome), and the requests by kind."""

    plan: Plan
    rows: Mapping[int, RowRecord]
    known_at: dict[int, float]
    requests: Counter[str]
    started: float
    finished: float
    engine: Engine
    extra: dict[str, Any] = field(default_factory=dict)

    def outcomes(self) -> Counter[str]:
        return Counter(r.state.value for r in self.rows.values())


async def run_engine(
    provider: MemoryProvider,
    rows: Sequence[Row],
    config: EngineConfig | None = None,
    *,
    dry_run: bool = False,
) -> EngineRun:
    """Plan and run ``rows`` (lines from 1) with an :class:`Engine` on a :class:`LoopClock`
    and an in-memory journal; with ``dry_run``, plan only."""
    clock = LoopClock()
    journal = Journal.open(":memory:", {"job": "testing"})
    journal.seed(
        RowRecord(i, r[0], r[1], r[2], r[3] if len(r) > 3 else None)
        for i, r in enumerate(rows, start=1)
    )
    known_at: dict[int, float] = {}

    def changed() -> None:
        now = clock.monotonic()
        for line, row in journal.rows.items():
            if row.terminal and line not in known_at:
                known_at[line] = now

    engine = Engine(provider, journal, config or EngineConfig(), on_change=changed, clock=clock)
    started = clock.monotonic()
    plan = await engine.plan()
    changed()
    if not dry_run:
        await engine.execute(plan)
    finished = clock.monotonic()
    result = EngineRun(
        plan, journal.rows, known_at, Counter(provider.requests), started, finished, engine
    )
    journal.close()
    return result


@contextmanager
def sandbox_settle(low: float, high: float) -> Iterator[None]:
    """A testing switch, as stamina's ``set_testing`` is: while the block runs, the
    in-process sandbox of ``--sandbox`` runs settles each change in ``low``..``high``
    seconds instead of the sandbox profile's, so a test of a whole run need not wait."""
    previous = set_settle((low, high))
    try:
        yield
    finally:
        set_settle(previous)


__all__ = [
    "EPOCH",
    "EngineRun",
    "LoopClock",
    "MemoryProvider",
    "Row",
    "VirtualTimeLoop",
    "run_engine",
    "run_in_virtual_time",
    "sandbox_settle",
]
