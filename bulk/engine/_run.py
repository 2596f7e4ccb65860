"""The engine: plan against the provider's current state, fan out, poll to settlement.

Data flows one way: the journal's rows in, provider requests out, journal transitions back.
The engine knows providers only through :class:`bulk.providers.Provider`, and decides nothing
about a row itself: it observes (sends, reads) and hands each observation to the pure
functions of :mod:`bulk._states`, whose :class:`~bulk._states.Decision` it applies.

What the engine does choose is *how to look*: a campaign's paged list or one read per number
(whichever costs fewer requests), a glance (the list's first page and the campaign's counts)
before a paged read while links settle, so every page is read only when it is worth it
(:mod:`bulk.engine._timing`), and an exact single read whenever a decision would rest on a
number's absence from a list (absence in a paged read is a hint, never proof).
"""

from __future__ import annotations

import logging
import math
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from bulk._clock import Clock, SystemClock
from bulk._defaults import RESEND_ROUNDS
from bulk._journal import Change, Ledger, RowRecord
from bulk._states import (
    IN_FLIGHT,
    UNDER_WAY,
    WAIT,
    Decision,
    Event,
    State,
    after_check,
    after_link,
    after_lost_answer,
    after_unlink,
    at_plan,
    at_window,
    elsewhere,
    move_reason,
    unusable,
    window_closed,
)
from bulk.engine._poll import Poller
from bulk.engine._survey import (
    exact_reads,
    survey_wanted,
)
from bulk.engine._values import (
    RESENT_LOST,
    RESENT_TOO_LARGE,
    RESENT_WITHOUT_REFUSED,
    EngineConfig,
    Plan,
    _CheckWork,
    _LinkWork,
    _UnlinkWork,
    _Work,
)
from bulk.engine._watch import CampaignWatch, pages_of
from bulk.providers._base import (
    LinkOutcome,
    NumberState,
    Provider,
    ProviderUnavailable,
    Settlement,
)

#: the engine's own decisions worth a line under ``--verbose`` (a batch halved, ...)
log = logging.getLogger("bulk.engine")

_ABSENT = NumberState(Settlement.ABSENT)

#: ``review(engine, plan, changes)``: planning's decisions, before they apply
Review = Callable[["Engine", Plan, list[Change]], list[Change]]


class Engine(Poller):
    def __init__(
        self,
        provider: Provider,
        journal: Ledger,
        config: EngineConfig,
        *,
        on_change: Callable[[], None] | None = None,
        attempts: Mapping[int, int] | None = None,
        clock: Clock | None = None,
        review: Review | None = None,
    ) -> None:
        self.provider = provider
        #: sees planning's decisions before they apply (may change or refuse them)
        self._review = review
        self.journal = journal
        self.config = config
        self.clock: Clock = clock or SystemClock()
        self._on_change = on_change or (lambda: None)
        #: HTTP attempts per row as the sender counts them, for the report's ``attempts``
        self._attempts_seen = attempts
        self._resends: dict[int, int] = defaultdict(int)
        #: change requests sent again, by why (for the summary: more sent than planned)
        self.resent: Counter[str] = Counter()
        #: what the engine knows of each campaign it reads (:mod:`bulk.engine._watch`)
        self._watch: defaultdict[str, CampaignWatch] = defaultdict(CampaignWatch)
        #: per campaign, the lines whose numbers this run puts in or takes out of it (a row's
        #: campaigns never change): built at the first whole read, so each later one looks at
        #: its campaign's rows, not at every row of the journal
        self._lines_in: dict[str, list[int]] | None = None
        self._slow: dict[int, float | None] = {}
        self._slow_next: dict[int, float] = {}
        #: per campaign, the numbers planning read one by one (absence there is proof)
        self._planned_exact: dict[str, frozenset[str]] = {}
        self._work_send: MemoryObjectSendStream[_Work] | None = None
        self._active: set[int] = set()
        self._done = anyio.Event()
        #: seconds each number took to settle in this run, for timing the next reads
        self._settle_samples: list[float] = []
        #: numbers per link request: the provider's (``--batch-size``), halved on a size refusal
        self._batch = max(1, provider.max_batch)
        self._batch_known = False  #: a first batch has had its answer
        self._batch_probe = anyio.Lock()

    # --- where each row is looked up ----------------------------------------------------------

    def _two_step(self, row: RowRecord) -> bool:
        return row.action == "move" and not self.provider.move_in_one_step

    def _campaigns_of(self, row: RowRecord) -> list[str]:
        ids = [row.campaign_id] if row.campaign_id else []
        if self._two_step(row) and row.from_campaign:
            ids.append(row.from_campaign)
        return ids

    def _watched_campaign(self, row: RowRecord) -> str:
        """The campaign whose state decides the row now: the old one while a two-step move
        is leaving it (planned, releasing, release submitted), else the row's campaign."""
        leaving = row.state in (State.RELEASING, State.RELEASE_SUBMITTED) or (
            row.state is State.PLANNED and self._two_step(row)
        )
        return str(row.from_campaign if leaving else row.campaign_id)

    # --- decisions, applied -------------------------------------------------------------------

    def _change(self, row: RowRecord, decision: Decision, attempts: int = 0) -> Change:
        assert decision.event is not None
        reason = move_reason(
            decision, row.state, row.released_at is not None, row.from_campaign, row.campaign_id
        )
        fields: dict[str, float] = {}
        if decision.stamp:
            fields["submitted_at"] = self.clock.time()
        if decision.event is Event.SETTLE and row.state is State.RELEASE_SUBMITTED:
            fields["released_at"] = self.clock.time()
        return Change(
            row.line,
            decision.event,
            reason=reason,
            provider_status=decision.provider_status,
            attempts=attempts,
            fields=fields,
        )

    def _apply(self, changes: Sequence[Change]) -> None:
        self.journal.apply(changes)
        for change in changes:
            if self.journal.get(change.line).terminal:
                self._active.discard(change.line)
        self._on_change()
        if not self._active:
            self._done.set()

    def _spent(self, line: int, decision: Decision) -> Decision:
        """Count the round a decision spent for the row (:func:`bulk._states.out_of_rounds`)."""
        if decision.spends_round:
            self._resends[line] += 1
        return decision

    # --- planning ---------------------------------------------------------------------------

    async def plan(self) -> Plan:
        """Read campaigns and their numbers; settle what needs no request; queue the rest."""
        self._resume_deferred()
        plan = Plan()
        live = [r for r in self.journal.rows.values() if not r.terminal]
        unresolved = await self._survey(live, plan)
        changes: list[Change] = []
        verify: list[RowRecord] = []
        plan.observed_at = self.clock.time()
        for row in live:
            self._note(plan, row, self._read_exactly(row, plan))
            checks = [(c, plan.campaigns.get(c)) for c in self._campaigns_of(row)]
            why = unresolved.get(row.e164) if row.e164 is not None else None
            problem = unusable(row.state, checks, why)
            if problem.event is not None:
                changes.append(self._change(row, problem))
                continue
            decision = self._at_plan(row, plan.members, self._read_exactly(row, plan))
            if decision.verify:
                verify.append(row)
            elif decision.event is not None:
                changes.append(self._change(row, decision))
        exact = await self._exact_states(verify)
        for row in verify:
            if row.line in exact:
                self._note(plan, row, exact[row.line])
                decision = self._at_plan(row, plan.members, exact[row.line])
                if decision.event is not None:
                    changes.append(self._change(row, decision))
        if self._review is not None:
            changes = self._review(self, plan, changes)
        self.journal.apply(changes)
        self._queue_plan(plan)
        plan.adopted = sum(1 for c in changes if c.event is Event.ADOPT)
        plan.unusable = sum(1 for c in changes if c.event is Event.PLAN_FAIL)
        return plan

    def _note(self, plan: Plan, row: RowRecord, exact: NumberState | None) -> None:
        """What planning saw of a planned row's number, in each campaign it names (only for
        a review: a plain run keeps no per-row copy)."""
        if self._review is not None and row.state is State.PLANNED:
            watched, number = self._watched_campaign(row), str(row.e164)
            plan.observed[row.line] = {
                c: exact if exact is not None and c == watched else seen.get(number, _ABSENT)
                for c in self._campaigns_of(row)
                if (seen := plan.members.get(c)) is not None
            }

    def _resume_deferred(self) -> None:
        """Rows a send window deferred in an earlier run of this job are planned again."""
        rows = self.journal.rows.values()
        self.journal.apply(
            [Change(r.line, Event.RESUME) for r in rows if r.state is State.DEFERRED]
        )

    async def _survey(self, live: list[RowRecord], plan: Plan) -> dict[str, str]:
        """Resolve the numbers and read each campaign (its check, then its list or each of
        the run's numbers there, whichever costs fewer requests), in rounds."""
        want: dict[str, set[str]] = defaultdict(set)
        for row in live:
            for campaign in self._campaigns_of(row):
                want[campaign].update([str(row.e164)] if row.e164 else [])
        numbers = sorted({r.e164 for r in live if r.e164})
        unresolved, surveys = await survey_wanted(
            self.provider,
            {c: sorted(want[c]) for c in sorted(want)},
            numbers,
            delay=self.config.resend_delay,
            clock=self.clock,
        )
        for campaign, found in surveys.items():
            plan.campaigns[campaign] = found.check
            if found.members is None:
                continue
            plan.members[campaign] = found.members
            if found.exact:
                self._planned_exact[campaign] = found.exact
                self._watch[campaign].size = found.size
            else:
                self._read_whole(campaign, found.members)
        return unresolved

    def _read_exactly(self, row: RowRecord, plan: Plan) -> NumberState | None:
        """The row's number in its watched campaign when planning read it alone (absence
        there is proof), else None."""
        watched = self._watched_campaign(row)
        number = str(row.e164)
        if number not in self._planned_exact.get(watched, ()):
            return None
        return plan.members.get(watched, {}).get(number, _ABSENT)

    def _at_plan(
        self,
        row: RowRecord,
        members: Mapping[str, Mapping[str, NumberState]],
        exact: NumberState | None,
    ) -> Decision:
        """The plan's decision for one row; ``exact`` is a single read of the watched
        campaign when the list's absence had to be verified."""
        number = str(row.e164)
        watched = self._watched_campaign(row)
        seen = exact or members.get(watched, {}).get(number, _ABSENT)
        if row.state in IN_FLIGHT:  # a killed run left its request in flight: look first
            return after_lost_answer(
                row.action, row.state is State.RELEASING, watched, seen, exact=exact is not None
            )
        if row.state is not State.PLANNED:
            return WAIT  # submitted: the poller; released: the senders
        elsewhere = self._elsewhere(row)
        if elsewhere is not None:
            return Decision(Event.PLAN_FAIL, reason=elsewhere)
        target_campaign = str(row.campaign_id)
        target = members.get(target_campaign, {}).get(number, _ABSENT)
        if row.action == "unlink":
            target = seen
        return at_plan(
            row.action,
            target_campaign,
            target,
            source_campaign=row.from_campaign,
            source=seen if self._two_step(row) else None,
            two_step=self._two_step(row),
            exact=exact is not None,
        )

    def _elsewhere(self, row: RowRecord) -> str | None:
        """A reason to refuse a row whose number sits in a campaign the row does not name
        (:func:`bulk._states.elsewhere`); only providers that know each number's campaign
        can tell."""
        if not self.provider.knows_current_campaign or row.action == "unlink":
            return None
        current = self.provider.current_campaign(str(row.e164))
        name = self.provider.name
        return elsewhere(name, row.action, row.campaign_id, row.from_campaign, current)

    def _next_step(self, row: RowRecord) -> str | None:
        """The request a row waiting to be sent needs: ``link`` (a link, a one-step move, a
        released two-step move), ``unlink``, or ``release`` (a two-step move's first step)."""
        if row.state is State.RELEASED:
            return "link"
        if row.state is not State.PLANNED:
            return None
        if row.action == "unlink":
            return "unlink"
        return "release" if self._two_step(row) else "link"

    def _queue_plan(self, plan: Plan) -> None:
        rows = self.journal.rows.values()
        for row in rows:
            step = self._next_step(row)
            if step == "link":
                plan.to_link.setdefault(str(row.campaign_id), []).append(row.line)
            elif step == "unlink":
                plan.to_unlink.append(row.line)
            elif step == "release":
                plan.to_release.append(row.line)
            elif row.state in IN_FLIGHT:
                plan.to_check.append(row.line)
        plan.already = sum(1 for r in rows if r.state is State.ALREADY)
        plan.in_progress = sum(1 for r in rows if r.state in UNDER_WAY)

    # --- looking -----------------------------------------------------------------------------

    async def _exact_states(self, rows: Iterable[RowRecord]) -> dict[int, NumberState]:
        """One single read per row in its watched campaign (see :func:`exact_reads`)."""
        return await exact_reads(self.provider, rows, self._watched_campaign)

    def _pages(self, campaign: str) -> int:
        """Requests a whole read of the campaign's list costs, by its last known size."""
        return pages_of(self._watch[campaign].size, self.provider.page_size)

    def _read_whole(self, campaign: str, members: Mapping[str, NumberState]) -> None:
        """Note a whole read of the campaign: its size, and its pending numbers that are not
        this run's (the baseline a glance's counts are compared with)."""
        watch = self._watch[campaign]
        watch.size = len(members)
        if self._lines_in is None:
            self._lines_in = defaultdict(list)
            for r in self.journal.rows.values():
                for c in self._campaigns_of(r):
                    self._lines_in[c].append(r.line)
        rows = (self.journal.get(line) for line in self._lines_in.get(campaign, ()))
        ours = {str(r.e164) for r in rows if not r.terminal}
        watch.others_pending = sum(
            1 for n, s in members.items() if s.settlement is Settlement.PENDING and n not in ours
        )
        watch.glances = 0
        watch.last_read = self.clock.time()

    async def _look(
        self, campaign: str, rows: list[RowRecord]
    ) -> tuple[dict[str, NumberState], bool] | None:
        """The rows' numbers in the campaign, the cheaper way: its paged list (absences are
        hints) or one exact read per row. None when the read got no usable answer."""
        try:
            if self._pages(campaign) < len(rows):
                members = await self.provider.campaign_numbers(
                    campaign,
                    self._watch[campaign].size,
                    want={str(r.e164) for r in rows},
                )
                self._read_whole(campaign, members)
                return members, False
        except ProviderUnavailable:
            return None
        exact = await self._exact_states(rows)
        if len(exact) < len(rows):
            return None
        return {str(r.e164): exact[r.line] for r in rows}, True

    async def _decide_all(
        self,
        campaign: str,
        rows: list[RowRecord],
        decide: Callable[[RowRecord, NumberState, bool], Decision],
    ) -> dict[int, Decision] | None:
        """Look at the rows, decide each, verify the absences a decision rests on."""
        looked = await self._look(campaign, rows)
        if looked is None:
            return None
        return await self._decide_seen(rows, *looked, decide)

    async def _decide_seen(
        self,
        rows: list[RowRecord],
        states: Mapping[str, NumberState],
        exact: bool,
        decide: Callable[[RowRecord, NumberState, bool], Decision],
    ) -> dict[int, Decision]:
        """Decide each row by what a look saw; verify the absences a decision rests on."""
        decisions = {r.line: decide(r, states.get(str(r.e164), _ABSENT), exact) for r in rows}
        unsure = [r for r in rows if decisions[r.line].verify]
        if unsure:
            verified = await self._exact_states(unsure)
            for row in unsure:
                if row.line in verified:
                    decisions[row.line] = decide(row, verified[row.line], True)
                else:
                    del decisions[row.line]  # no usable answer: decide next time
        return decisions

    # --- execution --------------------------------------------------------------------------

    async def execute(self, plan: Plan) -> None:
        """Send everything the plan queued, poll until every row is terminal."""
        self._active = {r.line for r in self.journal.rows.values() if not r.terminal}
        if not self._active:
            return
        send, receive = anyio.create_memory_object_stream[_Work](math.inf)
        self._work_send = send
        links = [line for lines in plan.to_link.values() for line in lines]
        self._send_again([*links, *plan.to_unlink, *plan.to_release])
        if plan.to_check:
            send.send_nowait(_CheckWork(tuple(plan.to_check)))
        async with anyio.create_task_group() as tg:
            for _ in range(self.config.workers):
                tg.start_soon(self._worker, receive.clone())
            tg.start_soon(self._poller)
            await self._done.wait()
            tg.cancel_scope.cancel()
        receive.close()
        send.close()

    def _halve_batch(self, carried: int, reason: str, limit: int | None) -> None:
        """The provider refused a batch for its size: from now on batches carry the maximum
        its text names, else half as many numbers (never more than ``--batch-size``); the
        refused rows go out again."""
        smaller = limit if limit and limit < carried else carried // 2
        smaller = max(1, smaller)
        if smaller < self._batch:
            log.info(
                "batch of %d refused for its size (%s): batches of %d from now on",
                carried,
                reason,
                smaller,
            )
            self._batch = smaller

    def _queue_links(self, campaign: str, lines: Sequence[int]) -> None:
        assert self._work_send is not None
        size = self._batch
        for i in range(0, len(lines), size):
            self._work_send.send_nowait(_LinkWork(campaign, tuple(lines[i : i + size])))

    async def _worker(self, receive: MemoryObjectReceiveStream[_Work]) -> None:
        async with receive:
            async for work in receive:
                if isinstance(work, _LinkWork):
                    await self._link(work)
                elif isinstance(work, _UnlinkWork):
                    await self._unlink(work)
                else:
                    self._send_again(await self._check(list(work.lines)))

    def _send_again(self, lines: Sequence[int]) -> None:
        """Queue rows waiting to be sent as the work each needs (:meth:`_next_step`): links
        in batches per campaign first, then unlinks and releases one row each."""
        assert self._work_send is not None
        links: dict[str, list[int]] = defaultdict(list)
        singles: list[_UnlinkWork] = []
        for line in lines:
            row = self.journal.get(line)
            step = self._next_step(row)
            if step == "link":
                links[str(row.campaign_id)].append(line)
            elif step == "unlink":
                singles.append(_UnlinkWork(str(row.campaign_id), line, False))
            elif step == "release":
                singles.append(_UnlinkWork(str(row.from_campaign), line, True))
        for campaign, batch in links.items():
            self._queue_links(campaign, batch)
        for work in singles:
            self._work_send.send_nowait(work)

    def _window_closed(self) -> bool:
        return window_closed(self.clock.time(), self.config.send_until)

    def _defer_closed(self, lines: Sequence[int]) -> list[int]:
        """Past the send window, the rows :func:`bulk._states.at_window` defers; returns the
        rows still to send."""
        now, until = self.clock.time(), self.config.send_until
        if not window_closed(now, until):
            return list(lines)
        rows = {line: self.journal.get(line) for line in lines}
        decided = {line: at_window(row.state, now, until) for line, row in rows.items()}
        deferred = sorted(line for line, d in decided.items() if d.event is Event.DEFER)
        self._apply([self._change(rows[line], decided[line]) for line in deferred])
        return [line for line in lines if line not in deferred]

    def _attempts_so_far(self, lines: Iterable[int]) -> dict[int, int]:
        """HTTP attempts so far for these rows (retries included), to diff around a send."""
        if self._attempts_seen is None:
            return dict.fromkeys(lines, 0)
        return {line: self._attempts_seen.get(line, 0) for line in lines}

    def _attempts_since(self, before: dict[int, int], line: int) -> int:
        """Attempts one send cost a row: the requests that left for it, retries included, when
        the sender counts them (0 when none left: the send window closed while it waited for
        its turn), else 1."""
        if self._attempts_seen is None:
            return 1
        return self._attempts_seen.get(line, 0) - before.get(line, 0)

    async def _link(self, work: _LinkWork) -> None:
        pending = self._defer_closed(work.lines)
        while pending:
            probing = await self._probe_turn()
            batch = self._fit_batch(work.campaign, pending)
            pending = await self._link_once(work, batch, probing)

    async def _probe_turn(self) -> bool:
        """The run's first multi-number batch goes out alone, so that a provider refusing
        batches that large tells one request, not every worker. True: this caller is that
        first batch (it holds the probe until its answer); others wait for the answer."""
        if self._batch_known or self._batch <= 1:
            return False
        await self._batch_probe.acquire()
        if self._batch_known:
            self._batch_probe.release()
            return False
        return True

    def _fit_batch(self, campaign: str, pending: list[int]) -> list[int]:
        """At most the current batch size; the rest is queued as batches of its own."""
        if len(pending) <= self._batch:
            return pending
        self._queue_links(campaign, pending[self._batch :])
        return pending[: self._batch]

    async def _link_once(self, work: _LinkWork, pending: list[int], probing: bool) -> list[int]:
        """One link request for ``pending`` and what it leads to; returns the rows to send
        again at once (the rest of a batch refused for one number, rows a read found not
        done). ``probing``: this is the run's first batch; others wait for its answer."""
        # new changes only: a released move's link goes out even past the window
        fresh = all(self.journal.get(line).state is State.PLANNED for line in pending)
        rows = {str(self.journal.get(line).e164): self.journal.get(line) for line in pending}
        before = self._attempts_so_far(pending)
        try:
            self._apply([Change(line, Event.SEND) for line in pending])
            closed = self._window_closed if fresh else None
            outcome = await self.provider.link(
                work.campaign, list(rows), pending, window_closed=closed
            )
        finally:
            if probing:
                self._batch_known = True
                self._batch_probe.release()
        self._apply(self._link_changes(outcome, rows, before))
        accepted = len(outcome.accepted)
        watch = self._watch[work.campaign]
        watch.size = (watch.size or 0) + accepted
        again = [rows[n].line for n in outcome.resend]
        if outcome.too_large is not None:
            self.resent[RESENT_TOO_LARGE] += 1
        elif again:
            self.resent[RESENT_WITHOUT_REFUSED] += 1
        if outcome.too_large is not None:
            self._halve_batch(len(again), outcome.too_large, outcome.size_limit)
            self._queue_links(work.campaign, self._defer_closed(again))
            return []
        if outcome.lost or outcome.unsent:
            if outcome.lost or not self._window_closed():  # else: deferred below
                await self.clock.sleep(self.config.resend_delay)
            more = await self._check([rows[n].line for n in outcome.lost])
            more += [rows[n].line for n in outcome.unsent if not rows[n].terminal]
            self.resent[RESENT_LOST] += bool(more)
            again += more
        return self._defer_closed(again)

    def _link_changes(
        self, outcome: LinkOutcome, rows: Mapping[str, RowRecord], before: dict[int, int]
    ) -> list[Change]:
        """The journal changes one link request's outcome makes, number by number
        (:func:`bulk._states.after_link`)."""
        rounds = {n: self._resends[rows[n].line] for n in outcome.unsent}
        return [
            self._change(
                rows[n],
                self._spent(rows[n].line, d),
                attempts=self._attempts_since(before, rows[n].line),
            )
            for n, d in after_link(outcome, rounds, RESEND_ROUNDS)
        ]

    async def _unlink(self, work: _UnlinkWork) -> None:
        line = work.line
        if not self._defer_closed([line]):
            return
        while True:
            row = self.journal.get(line)
            self._apply([Change(line, Event.RELEASE if work.release else Event.SEND)])
            before = self._attempts_so_far([line])
            outcome = await self.provider.unlink(
                work.campaign, str(row.e164), line, window_closed=self._window_closed
            )
            rounds = self._resends[line]
            decision = after_unlink(outcome, work.campaign, work.release, rounds, RESEND_ROUNDS)
            self._spent(line, decision)
            self._apply([self._change(row, decision, attempts=self._attempts_since(before, line))])
            if decision.event in (Event.ACCEPT, Event.REFUSE, Event.TIME_OUT):
                return
            if decision.event is Event.LOSE or not self._window_closed():  # else: deferred
                await self.clock.sleep(self.config.resend_delay)
            if decision.event is Event.LOSE and not await self._check([line]):
                return  # the read decided the row (accepted, failed, or out of rounds)
            if row.terminal or not self._defer_closed([line]):
                return
            self.resent[RESENT_LOST] += 1

    async def _check(self, lines: list[int]) -> list[int]:
        """Rows whose change may have landed: read each, then decide (accept, fail, or send
        again). Returns the rows to send again; rows whose read fails are read again later,
        up to ``RESEND_ROUNDS`` times, then end ``unknown``."""
        again: list[int] = []
        waiting = [line for line in lines if self.journal.get(line).state in IN_FLIGHT]
        while waiting:
            by_campaign: dict[str, list[RowRecord]] = defaultdict(list)
            for line in waiting:
                row = self.journal.get(line)
                by_campaign[self._watched_campaign(row)].append(row)
            decided: dict[int, Decision] = {}
            for campaign, rows in by_campaign.items():
                decided.update(await self._decide_all(campaign, rows, self._lost_decision) or {})
            changes = []
            for line in waiting:
                row = self.journal.get(line)
                rounds = self._resends[line]
                decision = after_check(
                    row.state, row.from_campaign, decided.get(line), rounds, RESEND_ROUNDS
                )
                self._spent(line, decision)
                if decision.event is Event.REQUEUE:
                    again.append(line)
                if decision.event is not None:
                    changes.append(self._change(row, decision))
            self._apply(changes)
            waiting = [line for line in waiting if self.journal.get(line).state in IN_FLIGHT]
            if waiting:
                await self.clock.sleep(self.config.resend_delay)
        return again

    def _lost_decision(self, row: RowRecord, seen: NumberState, exact: bool) -> Decision:
        watched = self._watched_campaign(row)
        releasing = row.state is State.RELEASING
        return after_lost_answer(row.action, releasing, watched, seen, exact=exact)
