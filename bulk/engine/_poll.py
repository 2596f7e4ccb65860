"""The poller: rows awaiting settlement, read until each settles or its deadline passes.

Per campaign (:class:`~bulk.engine._watch.CampaignWatch`) two lanes: the fast lane is read
together, the cheaper way, timed by what settles (:mod:`bulk.engine._timing`) and never
waiting longer than :func:`~bulk.engine._watch.fast_ceiling`; rows that waited well past every
settle seen in this run go to the slow lane, read each alone and rarely. A row is settled the
moment any read shows it settled: a glance's first page, a whole read, a single read.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Awaitable, Callable, Mapping, Sequence

from bulk._aio import gather_map
from bulk._clock import Clock
from bulk._journal import Change, Ledger, RowRecord
from bulk._states import WAIT, Decision, Event, State, while_polling, while_unread
from bulk.engine._timing import back_off, fall_wait, next_read_in
from bulk.engine._values import EngineConfig
from bulk.engine._watch import (
    CampaignWatch,
    confirm_wait,
    count_stalled,
    fast_ceiling,
    pages_of,
    read_after_glance,
    slow_after,
    slow_wait,
    unseen_budget,
)
from bulk.providers._base import Glance, NumberState, Provider, ProviderUnavailable, Settlement

#: rows waiting for a change to settle (the poller's)
AWAITING = (State.SUBMITTED, State.RELEASE_SUBMITTED)

#: what a fast-lane look returns: decisions (None: no usable answer), how many of ours it
#: says are still pending (None: count the rows still awaited), the share the next look
#: waits for
_Looked = tuple[dict[int, Decision] | None, float | None, float]
_Decide = Callable[[RowRecord, NumberState, bool], Decision]


class Poller:
    """The engine's polling half (a mixin: :class:`bulk.engine._run.Engine` provides the
    attributes and the looking and applying methods declared below)."""

    provider: Provider
    journal: Ledger
    config: EngineConfig
    clock: Clock
    _active: set[int]
    _settle_samples: list[float]
    _watch: defaultdict[str, CampaignWatch]
    #: rows in the slow lane: line -> the wait before its next read (None: not read there yet)
    _slow: dict[int, float | None]
    #: rows in the slow lane: line -> when it is read next
    _slow_next: dict[int, float]

    @property
    def _poll_interval(self) -> float:
        return self.config.poll_interval

    @property
    def _poll_max_interval(self) -> float:
        return self.config.poll_max_interval

    @property
    def _settle_timeout(self) -> float:
        return self.config.settle_timeout

    def _watched_campaign(self, row: RowRecord) -> str:
        raise NotImplementedError

    def _apply(self, changes: Sequence[Change]) -> None:
        raise NotImplementedError

    def _change(self, row: RowRecord, decision: Decision, attempts: int = 0) -> Change:
        raise NotImplementedError

    def _queue_links(self, campaign: str, lines: Sequence[int]) -> None:
        raise NotImplementedError

    def _pages(self, campaign: str) -> int:
        raise NotImplementedError

    def _read_whole(self, campaign: str, members: Mapping[str, NumberState]) -> None:
        raise NotImplementedError

    def _decide_all(
        self, campaign: str, rows: list[RowRecord], decide: _Decide
    ) -> Awaitable[dict[int, Decision] | None]:
        raise NotImplementedError

    def _decide_seen(
        self,
        rows: list[RowRecord],
        states: Mapping[str, NumberState],
        exact: bool,
        decide: _Decide,
    ) -> Awaitable[dict[int, Decision]]:
        raise NotImplementedError

    def _exact_states(self, rows: list[RowRecord]) -> Awaitable[dict[int, NumberState]]:
        raise NotImplementedError

    # --- what is known, for progress lines ----------------------------------------------------

    @property
    def last_read(self) -> float | None:
        """When a campaign was last read (epoch seconds), if any was."""
        times = [w.last_read for w in self._watch.values() if w.last_read is not None]
        return max(times) if times else None

    @property
    def next_read(self) -> float | None:
        """When the next read is due (epoch seconds); None when nothing awaits settlement."""
        if not any(self.journal.get(line).state in AWAITING for line in self._active):
            return None
        return self._next_wake(self.clock.time())

    # --- the loop -------------------------------------------------------------------------------

    async def _poller(self) -> None:
        while self._active:
            now = self.clock.time()
            await self.clock.sleep(max(0.02, self._next_wake(now) - now))
            await self._poll_round()

    def _groups(self) -> dict[str, list[RowRecord]]:
        """Rows awaiting settlement, by the campaign to read them in."""
        groups: dict[str, list[RowRecord]] = defaultdict(list)
        for line in self._active:
            row = self.journal.get(line)
            if row.state in AWAITING:
                groups[self._watched_campaign(row)].append(row)
        return groups

    def _lanes(self, rows: list[RowRecord], now: float) -> tuple[list[RowRecord], list[RowRecord]]:
        """The campaign's awaited rows split into the fast lane and the slow lane; a row past
        :func:`slow_after` joins the slow lane and stays there."""
        after = slow_after(self._settle_samples, self._poll_interval)
        fast: list[RowRecord] = []
        slow: list[RowRecord] = []
        for row in rows:
            if row.line not in self._slow and after is not None and row.submitted_at is not None:
                if now - row.submitted_at > after:
                    self._slow[row.line] = None
                    self._slow_next[row.line] = now
            (slow if row.line in self._slow else fast).append(row)
        return fast, slow

    def _ready_at(self, campaign: str, rows: list[RowRecord]) -> float:
        """When a campaign's fast lane is worth reading: its newest submission has had
        ``poll_interval`` to settle (one read then confirms the whole lane), or its oldest
        has waited the fast ceiling; never before its own back-off allows."""
        stamps = [r.submitted_at or 0.0 for r in rows]
        ceiling = fast_ceiling(self._poll_interval, self._poll_max_interval)
        ready = min(max(stamps) + self._poll_interval, min(stamps) + ceiling)
        return max(ready, self._watch[campaign].next_read)

    def _next_wake(self, now: float) -> float:
        times: list[float] = []
        for campaign, rows in self._groups().items():
            fast, slow = self._lanes(rows, now)
            if fast:
                times.append(self._ready_at(campaign, fast))
            times.extend(self._slow_next.get(r.line, now) for r in slow)
        return min(times) if times else now + self._poll_interval

    async def _poll_round(self) -> None:
        now = self.clock.time()
        groups = self._groups()
        fast_calls: dict[str, Callable[[], Awaitable[_Looked]]] = {}
        slow_calls: dict[str, Callable[[], Awaitable[dict[int, Decision]]]] = {}
        dues: dict[str, list[RowRecord]] = {}
        lanes: dict[str, tuple[list[RowRecord], list[RowRecord]]] = {}
        for campaign, rows in groups.items():
            fast, slow = lanes[campaign] = self._lanes(rows, now)
            slow_due = [r for r in slow if self._slow_next.get(r.line, now) <= now]
            if slow_due:
                slow_calls[campaign] = functools.partial(self._poll_slow, campaign, slow_due)
            if not fast or self._ready_at(campaign, fast) > now:
                continue
            due = [r for r in fast if (r.submitted_at or 0.0) + self._poll_interval <= now]
            if due:
                dues[campaign] = due
                fast_calls[campaign] = functools.partial(
                    self._poll_campaign, campaign, due, fast, slow
                )

        async def fast_reads() -> dict[str, _Looked]:
            return await gather_map(fast_calls)

        async def slow_reads() -> dict[str, dict[int, Decision]]:
            return await gather_map(slow_calls)

        # campaigns side by side: the meter keeps the rate, latency no longer caps it
        both = await gather_map({"fast": fast_reads, "slow": slow_reads})
        looked: dict[str, _Looked] = both["fast"]  # type: ignore[assignment]
        slow_looked: dict[str, dict[int, Decision]] = both["slow"]  # type: ignore[assignment]
        released: dict[str, list[int]] = defaultdict(list)
        for campaign, slow_decisions in slow_looked.items():
            self._settle(slow_decisions, released)
            self._after_slow_read(campaign)
        for campaign, (decisions, pending, share) in looked.items():
            unread = self._unread(dues[campaign], decisions)
            settled = self._settle({**unread, **(decisions or {})}, released)
            fast = lanes[campaign][0]
            left = [r for r in fast if self.journal.get(r.line).state in AWAITING]
            if decisions is None:
                pending = None  # no usable answer: nothing learned
            elif pending is None:  # every number of ours was seen: count what still waits
                pending = float(len(left))
            wait = self._wait_after_read(campaign, fast, left, settled, pending, share)
            self._watch[campaign].next_read = self.clock.time() + wait
        for campaign, lines in released.items():
            self._queue_links(campaign, lines)

    # --- the slow lane --------------------------------------------------------------------------

    async def _poll_slow(self, campaign: str, due: list[RowRecord]) -> dict[int, Decision]:
        """The slow lane's due rows, each read alone. Rows whose read got no usable answer
        wait for their next read, or past their deadline end ``unknown``."""
        exact = await self._exact_states(due)
        self._watch[campaign].last_read = self.clock.time()
        decisions = {
            row.line: self._poll_decision(row, exact[row.line], True)
            for row in due
            if row.line in exact
        }
        for row in due:
            previous = self._slow.get(row.line)
            wait = slow_wait(
                previous, poll_interval=self._poll_interval, ceiling=self._poll_max_interval
            )
            self._slow[row.line] = wait
            deadline = (row.submitted_at or self.clock.time()) + self._settle_timeout
            at = min(self.clock.time() + wait, deadline + min(1.0, self._poll_interval))
            self._slow_next[row.line] = max(at, self.clock.time() + 0.01)
        return {**self._unread(due, decisions), **decisions}

    def _after_slow_read(self, campaign: str) -> None:
        """Forget the slow-lane rows that no longer await settlement."""
        for line in [line for line in self._slow if line not in self._active]:
            self._slow.pop(line, None)
            self._slow_next.pop(line, None)
        for line in list(self._slow):
            if self.journal.get(line).state not in AWAITING:
                self._slow.pop(line, None)
                self._slow_next.pop(line, None)

    # --- the fast lane --------------------------------------------------------------------------

    async def _poll_campaign(
        self, campaign: str, due: list[RowRecord], fast: list[RowRecord], slow: list[RowRecord]
    ) -> _Looked:
        """One campaign's fast-lane poll (``due``: its rows worth reading now; ``fast``: all
        the fast lane awaits; ``slow``: the slow lane's rows, decided too by a whole read).
        Where every page would be read and only links are awaited, a glance (the first page,
        one request) comes first, and every page is read only when the glance says so
        (:func:`read_after_glance`); the glance decides the rows its page shows. Returns the
        decisions (None: no usable answer), how many of ours the look says are still pending
        (None: count the rows still awaited), and the share of those the next look waits for
        (all of them after a glance: only the last settle makes a whole read worth it)."""
        watch = self._watch[campaign]
        now = self.clock.time()
        if not self._glance_first(campaign, due, fast):
            decisions = await self._decide_all(campaign, due, self._poll_decision)
            if decisions is not None:
                watch.last_read = watch.last_whole = now
                watch.unseen_since = None
            return decisions, None, 0.5
        try:
            glance = await self.provider.campaign_glance(campaign)
        except ProviderUnavailable:
            return None, None, 1.0
        previous_look = watch.last_read
        watch.last_read = now
        watch.glances += 1
        seen = {r.line: glance.members[str(r.e164)] for r in fast if str(r.e164) in glance.members}
        still = sum(1 for state in seen.values() if state.settlement is Settlement.PENDING)
        pending = self._ours_pending(campaign, glance, len(slow))
        if pending is not None and pending < len(fast) - (len(seen) - still):
            # some of ours settled that no read has shown: it happened after the last look
            if watch.unseen_since is None:
                newest = max((r.submitted_at or now) for r in fast)
                watch.unseen_since = previous_look if previous_look is not None else newest
        unseen_for = None if watch.unseen_since is None else now - watch.unseen_since
        stalled = pending is not None and count_stalled(watch.looks, pending, ours=len(fast))
        if read_after_glance(
            pending,
            (len(seen), still),
            glances=watch.glances,
            pages=self._pages(campaign),
            unseen_for=unseen_for,
            budget=self._unseen_budget(campaign, fast),
            stalled=stalled,
        ):
            rows = fast + slow
            try:
                members = await self.provider.campaign_numbers(
                    campaign, watch.size, first=glance, want={str(r.e164) for r in rows}
                )
            except ProviderUnavailable:
                return None, None, 1.0
            self._read_whole(campaign, members)
            watch.last_whole = self.clock.time()
            watch.unseen_since = None
            decided = await self._decide_seen(rows, members, False, self._poll_decision)
            return decided, None, 1.0
        if pending is None:  # no counts: the first page's share still pending stands for all
            pending = len(fast) * still // max(1, len(seen))
        decisions = {
            line: self._poll_decision(self.journal.get(line), state, False)
            for line, state in seen.items()
        }
        # rows the glance did not show were not looked for: they wait, they are not unread
        waiting = {r.line: WAIT for r in due}
        return waiting | {k: d for k, d in decisions.items() if not d.verify}, max(0, pending), 1.0

    def _glance_first(self, campaign: str, due: list[RowRecord], rows: list[RowRecord]) -> bool:
        """Glance before reading every page: the look would be a read of several pages, every
        row awaited there is a link (a released move's link included; unlinks and releases
        are read whole, their settles lead to more work), and none is past the deadline (a
        whole read decides those)."""
        if not 1 < self._pages(campaign) < len(due):
            return False
        now = self.clock.time()
        timeout = self._settle_timeout
        return all(
            r.state is State.SUBMITTED
            and r.action != "unlink"
            and now - (r.submitted_at or now) <= timeout
            for r in rows
        )

    def _ours_pending(self, campaign: str, glance: Glance, slow: int) -> int | None:
        """How many of this run's fast-lane numbers the glance's counts say are still pending
        in the campaign: its pending count less the others' at the last whole read and less
        the slow lane's rows (taken as still pending). None without counts (or without a
        whole read to compare with)."""
        others = self._watch[campaign].others_pending
        if glance.counts is None or others is None:
            return None
        return glance.counts.get(Settlement.PENDING, 0) - others - slow

    def _wait_after_read(
        self,
        campaign: str,
        rows: list[RowRecord],
        left: list[RowRecord],
        settled: bool,
        pending: float | None,
        share: float,
    ) -> float:
        """How long before this campaign's fast lane is read again (``rows``: what it awaited
        before the look, ``left``: what it still awaits, ``pending``: how many of ours the
        look says are still pending). When ``share`` (half, or after a glance all) of them
        are likely settled: by the settle times seen in this run (:func:`next_read_in`, half
        only), else by the rate their count fell (:func:`fall_wait`); until either can say,
        the fixed back-off (:func:`back_off`). Always within ``poll_interval`` and the fast
        ceiling, and never later than a settle the counts showed may stay unread
        (:meth:`_unseen_budget`)."""
        now = self.clock.time()
        watch = self._watch[campaign]
        floor = self._poll_interval
        ceiling = fast_ceiling(floor, self._poll_max_interval)
        budget = None if watch.unseen_since is None else self._unseen_budget(campaign, rows)
        if budget is not None and share >= 1.0:
            # counts showed settles the next whole read will confirm: glance no more often
            # than the budget they may wait needs (within the back-off ceiling)
            ceiling = max(ceiling, min(self._poll_max_interval, budget))
        looks = watch.looks
        if not looks:  # at its newest submission, everything the campaign awaits was pending
            looks.append((max(r.submitted_at or now for r in rows), float(len(rows))))
        previous = looks[-1][1]
        fell = pending is not None and pending < previous
        if pending is not None:
            looks.append((now, pending))
            del looks[:-3]
        interval = back_off(
            watch.interval or floor,
            settled or fell,
            for_all=share >= 1.0,
            floor=floor,
            ceiling=ceiling,
        )
        watch.interval = interval
        estimate = None
        if share < 1.0:
            waited = [now - r.submitted_at for r in left if r.submitted_at is not None]
            estimate = next_read_in(self._settle_samples, waited, floor=floor, ceiling=ceiling)
        if estimate is None:
            estimate = fall_wait(looks, share, floor=floor, ceiling=ceiling)
        wait = interval if estimate is None else estimate
        if watch.unseen_since is not None and budget is not None:
            wait = min(wait, max(floor, watch.unseen_since + budget - now))
            if share >= 1.0 and pending is not None:
                # most of ours settled at once, a few left: look again soon to tell stuck from slow
                confirm = confirm_wait(pending, previous, len(rows), poll_interval=floor)
                wait = wait if confirm is None else min(wait, confirm)
        return wait

    def _unseen_budget(self, campaign: str, rows: list[RowRecord]) -> float:
        """How long a settle the campaign's counts showed may go unread
        (:func:`unseen_budget`), by how long after the newest of ``rows`` was submitted the
        look before it was."""
        since = self._watch[campaign].unseen_since
        stamps = [r.submitted_at for r in rows if r.submitted_at is not None]
        settled_after = None if since is None or not stamps else since - max(stamps)
        return unseen_budget(self._poll_interval, self._poll_max_interval, settled_after)

    def _unread(
        self, due: list[RowRecord], decisions: Mapping[int, Decision] | None
    ) -> dict[int, Decision]:
        """The rows a poll looked for but could not read (no usable answer, or an absence
        whose exact read failed): each waits for the next read, or past the deadline ends
        ``unknown`` (:func:`while_unread`)."""
        unread: dict[int, Decision] = {}
        for row in due:
            if decisions is not None and row.line in decisions:
                continue
            waited = self.clock.time() - (row.submitted_at or self.clock.time())
            releasing = row.state is State.RELEASE_SUBMITTED
            timeout = self._settle_timeout
            decision = while_unread(row.action, releasing, waited=waited, timeout=timeout)
            if decision.event is not None:
                unread[row.line] = decision
        return unread

    def _poll_decision(self, row: RowRecord, seen: NumberState, exact: bool) -> Decision:
        waited = self.clock.time() - (row.submitted_at or self.clock.time())
        releasing = row.state is State.RELEASE_SUBMITTED
        return while_polling(
            row.action,
            releasing,
            seen,
            exact=exact,
            waited=waited,
            timeout=self._settle_timeout,
        )

    def _settle(self, decisions: Mapping[int, Decision], released: dict[str, list[int]]) -> bool:
        changes: list[Change] = []
        for line, decision in decisions.items():
            if decision.event is None:
                continue
            row = self.journal.get(line)
            changes.append(self._change(row, decision))
            if decision.event in (Event.SETTLE, Event.SETTLE_FAIL) and row.submitted_at:
                self._settle_samples.append(self.clock.time() - row.submitted_at)
            if decision.event is Event.SETTLE and row.state is State.RELEASE_SUBMITTED:
                released[str(row.campaign_id)].append(line)
        if changes:
            self._apply(changes)
        return bool(changes)


__all__ = ["AWAITING", "Poller", "pages_of"]
