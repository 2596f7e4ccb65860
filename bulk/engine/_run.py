"""The engine: plan against the provider's current state, fan out, poll to settlement.

Data flows one way: the journal's rows in, provider requests out, journal transitions back.
The engine knows providers only through :class:`bulk.providers.Provider`.
"""

from __future__ import annotations

import functools
import math
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from bulk._aio import gather_map
from bulk._errors import ProviderUnreachable
from bulk._journal import Change, Journal, RowRecord
from bulk._states import Event, State
from bulk.providers._base import (
    CampaignCheck,
    NumberState,
    Provider,
    ProviderUnavailable,
    Settlement,
)

#: how many times a request that got no usable answer (after all its retries) is sent again
#: later before its row ends as ``unknown``
RESEND_ROUNDS = 3


@dataclass(frozen=True, slots=True)
class EngineConfig:
    poll_interval: float = 30.0  #: first poll this long after a submission; rounds start here
    poll_max_interval: float = 300.0  #: rounds back off up to this
    settle_timeout: float = 3600.0  #: a row unsettled this long after submission is unknown
    workers: int = 16  #: concurrent senders (the meter's cap applies below them)
    resend_delay: float = 5.0  #: wait before resending a request that got no usable answer


@dataclass(slots=True)
class Plan:
    """What the run will do, computed by reading only."""

    campaigns: dict[str, CampaignCheck] = field(default_factory=dict)
    members: dict[str, dict[str, NumberState]] = field(default_factory=dict)
    already: int = 0
    unusable: int = 0
    adopted: int = 0
    to_link: dict[str, list[int]] = field(default_factory=dict)
    to_unlink: list[int] = field(default_factory=list)
    to_release: list[int] = field(default_factory=list)
    read_requests: int = 0

    def link_requests(self, batch: int) -> int:
        return sum(math.ceil(len(lines) / batch) for lines in self.to_link.values())


@dataclass(frozen=True, slots=True)
class _LinkWork:
    campaign: str
    lines: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class _UnlinkWork:
    campaign: str
    line: int
    release: bool  #: move step one


_Work = _LinkWork | _UnlinkWork


class Engine:
    def __init__(
        self,
        provider: Provider,
        journal: Journal,
        config: EngineConfig,
        *,
        on_change: Callable[[], None] | None = None,
        tries: Mapping[int, int] | None = None,
    ) -> None:
        self.provider = provider
        self.journal = journal
        self.config = config
        self._on_change = on_change or (lambda: None)
        #: HTTP tries per row as the sender counts them, for the report's ``attempts``
        self._tries_seen = tries
        self._resends: dict[int, int] = defaultdict(int)
        self._campaign_size: dict[str, int] = {}
        self._campaign_next: dict[str, float] = {}
        self._campaign_interval: dict[str, float] = {}
        self._work_send: MemoryObjectSendStream[_Work] | None = None
        self._active: set[int] = set()
        self._done = anyio.Event()

    # --- planning ---------------------------------------------------------------------------

    def _campaigns_of(self, row: RowRecord) -> list[str]:
        ids = [row.campaign_id] if row.campaign_id else []
        if row.action == "move" and row.from_campaign and not self.provider.move_in_one_step:
            ids.append(row.from_campaign)
        return ids

    async def plan(self) -> Plan:
        """Read campaigns and their numbers; settle what needs no request; queue the rest."""
        plan = Plan()
        live = [r for r in self.journal.rows.values() if not r.terminal]
        needed = sorted({c for r in live for c in self._campaigns_of(r)})
        provider = self.provider
        try:
            unresolved = await provider.resolve(sorted({r.e164 for r in live if r.e164}))
            # each campaign's check then its list, all campaigns side by side
            surveys = await gather_map({c: functools.partial(self._survey, c) for c in needed})
            for campaign, (check, members) in surveys.items():
                plan.campaigns[campaign] = check
                if members is not None:
                    plan.members[campaign] = members
                    self._campaign_size[campaign] = len(members)
        except ProviderUnavailable as exc:
            raise ProviderUnreachable(f"{self.provider.name}: {exc.reason}") from None

        changes: list[Change] = []
        for row in live:
            problem = self._plan_problem(row, plan.campaigns, unresolved)
            if problem is not None:
                if row.state in (State.PLANNED, State.RELEASED):
                    changes.append(Change(row.line, Event.PLAN_FAIL, reason=problem))
                    continue
            changes.extend(self._plan_row(row, plan))
        self.journal.apply(changes)
        for row in self.journal.rows.values():
            one_request = row.action == "link" or (
                row.action == "move" and self.provider.move_in_one_step
            )
            if row.state is State.RELEASED or (row.state is State.PLANNED and one_request):
                plan.to_link.setdefault(str(row.campaign_id), []).append(row.line)
            elif row.state is State.PLANNED and row.action == "unlink":
                plan.to_unlink.append(row.line)
            elif row.state is State.PLANNED and row.action == "move":
                plan.to_release.append(row.line)
        plan.already = sum(1 for r in self.journal.rows.values() if r.state is State.ALREADY)
        plan.adopted = sum(1 for c in changes if c.event is Event.ADOPT)
        plan.unusable = sum(1 for c in changes if c.event is Event.PLAN_FAIL)
        return plan

    async def _survey(self, campaign: str) -> tuple[CampaignCheck, dict[str, NumberState] | None]:
        check = await self.provider.check_campaign(campaign)
        return check, (await self.provider.campaign_numbers(campaign) if check.usable else None)

    def _plan_problem(
        self, row: RowRecord, campaigns: dict[str, CampaignCheck], unresolved: dict[str, str]
    ) -> str | None:
        for campaign in self._campaigns_of(row):
            check = campaigns.get(campaign)
            if check is not None and not check.usable:
                return check.reason or f"campaign {campaign} cannot be used"
        if row.e164 in unresolved:
            return unresolved[row.e164]
        return None

    def _plan_row(self, row: RowRecord, plan: Plan) -> list[Change]:
        n = str(row.e164)
        target = plan.members.get(str(row.campaign_id), {}).get(n, NumberState(Settlement.ABSENT))
        source = (
            plan.members.get(str(row.from_campaign), {}).get(n, NumberState(Settlement.ABSENT))
            if row.from_campaign
            else NumberState(Settlement.ABSENT)
        )
        two_step = row.action == "move" and not self.provider.move_in_one_step
        now = time.time()
        status = target.provider_status
        # rows whose request was in flight when a previous run stopped: look before resending
        if row.state is State.SENDING:
            if row.action == "unlink":
                gone = target.settlement is Settlement.ABSENT
                return [Change(row.line, Event.ACCEPT if gone else Event.REQUEUE)]
            if target.settlement is Settlement.ABSENT:
                return [Change(row.line, Event.REQUEUE)]
            return [
                Change(
                    row.line,
                    Event.ACCEPT,
                    provider_status=status,
                    fields={"submitted_at": row.submitted_at or now},
                )
            ]
        if row.state is State.RELEASING:
            if source.settlement is Settlement.ABSENT:
                return [
                    Change(row.line, Event.ACCEPT, fields={"submitted_at": row.submitted_at or now})
                ]
            return [Change(row.line, Event.REQUEUE)]
        if row.state is not State.PLANNED:
            return []  # SUBMITTED / RELEASE_SUBMITTED: the poller; RELEASED: the senders
        elsewhere = self._elsewhere(row)
        if elsewhere is not None:
            return [Change(row.line, Event.PLAN_FAIL, reason=elsewhere)]
        if row.action == "unlink":
            if target.settlement is Settlement.ABSENT:
                return [Change(row.line, Event.ALREADY, reason=f"not linked to {row.campaign_id}")]
            return []
        in_source = source.settlement is not Settlement.ABSENT
        if target.settlement is Settlement.ACTIVE and not (two_step and in_source):
            return [
                Change(
                    row.line,
                    Event.ALREADY,
                    provider_status=status,
                    reason=f"already linked to {row.campaign_id}",
                )
            ]
        if target.settlement is Settlement.PENDING and not (two_step and in_source):
            return [
                Change(
                    row.line,
                    Event.ADOPT,
                    provider_status=status,
                    reason="a link was already in progress",
                    fields={"submitted_at": now},
                )
            ]
        if two_step and not in_source:
            return [
                Change(
                    row.line,
                    Event.SKIP_RELEASE,
                    reason=f"not in {row.from_campaign}; linked directly",
                )
            ]
        return []

    def _elsewhere(self, row: RowRecord) -> str | None:
        """A reason to refuse a row whose number sits in a campaign the row does not name.

        Only for providers that know each number's campaign (AgentMessage): there an attach
        replaces the old campaign, so a plain link would silently move the number, and a
        one-step move would take it out of a campaign the file never mentioned. (Plivo
        refuses such a link itself; its two-step move checks the old campaign's list.)
        """
        if not self.provider.knows_current_campaign or row.action == "unlink":
            return None
        current = self.provider.current_campaign(str(row.e164))
        if current is None or current == row.campaign_id:
            return None
        if row.action == "link":
            return (
                f"in campaign {current}: linking would move it out of that campaign; "
                f"use move (from {current}) if that is intended"
            )
        if row.from_campaign and current != row.from_campaign:
            return f"in campaign {current}, not in {row.from_campaign}: not moved"
        return None

    # --- execution --------------------------------------------------------------------------

    async def execute(self, plan: Plan) -> None:
        """Send everything the plan queued, poll until every row is terminal."""
        self._active = {r.line for r in self.journal.rows.values() if not r.terminal}
        if not self._active:
            return
        send, receive = anyio.create_memory_object_stream[_Work](math.inf)
        self._work_send = send
        for campaign, lines in plan.to_link.items():
            self._queue_links(campaign, lines)
        for line in plan.to_unlink:
            send.send_nowait(_UnlinkWork(str(self.journal.get(line).campaign_id), line, False))
        for line in plan.to_release:
            send.send_nowait(_UnlinkWork(str(self.journal.get(line).from_campaign), line, True))
        async with anyio.create_task_group() as tg:
            for _ in range(self.config.workers):
                tg.start_soon(self._worker, receive.clone())
            tg.start_soon(self._poller)
            await self._done.wait()
            tg.cancel_scope.cancel()
        receive.close()
        send.close()

    def _queue_links(self, campaign: str, lines: Sequence[int]) -> None:
        assert self._work_send is not None
        size = self.provider.max_batch
        for i in range(0, len(lines), size):
            self._work_send.send_nowait(_LinkWork(campaign, tuple(lines[i : i + size])))

    async def _worker(self, receive: MemoryObjectReceiveStream[_Work]) -> None:
        async with receive:
            async for work in receive:
                if isinstance(work, _LinkWork):
                    await self._link(work)
                else:
                    await self._unlink(work)

    def _apply(self, changes: Sequence[Change]) -> None:
        self.journal.apply(changes)
        for change in changes:
            if self.journal.get(change.line).terminal:
                self._active.discard(change.line)
        self._on_change()
        if not self._active:
            self._done.set()

    def _tries(self, lines: Iterable[int]) -> dict[int, int]:
        """HTTP tries so far for these rows (retries included), to diff around a send."""
        if self._tries_seen is None:
            return dict.fromkeys(lines, 0)
        return {line: self._tries_seen.get(line, 0) for line in lines}

    def _spent(self, before: dict[int, int], line: int) -> int:
        """Tries one send cost a row: retries included when the sender counts them, else 1."""
        if self._tries_seen is None:
            return 1
        return max(1, self._tries_seen.get(line, 0) - before.get(line, 0))

    async def _link(self, work: _LinkWork) -> None:
        by_number = {str(self.journal.get(line).e164): line for line in work.lines}
        pending = list(work.lines)
        while pending:
            self._apply([Change(line, Event.SEND) for line in pending])
            numbers = [str(self.journal.get(line).e164) for line in pending]
            before = self._tries(pending)
            outcome = await self.provider.link(work.campaign, numbers, pending)
            now = time.time()
            changes: list[Change] = []
            # "already requested" (a retry after the change took effect) is accepted too
            for n in [*outcome.accepted, *outcome.already]:
                changes.append(
                    Change(
                        by_number[n],
                        Event.ACCEPT,
                        attempts=self._spent(before, by_number[n]),
                        fields={"submitted_at": now},
                    )
                )
            for n, reason in outcome.refused.items():
                changes.append(
                    Change(
                        by_number[n],
                        Event.REFUSE,
                        attempts=self._spent(before, by_number[n]),
                        reason=reason,
                    )
                )
            for n in outcome.resend:
                changes.append(
                    Change(by_number[n], Event.REQUEUE, attempts=self._spent(before, by_number[n]))
                )
            retry_later: list[int] = []
            for n, reason in outcome.unanswered.items():
                line = by_number[n]
                self._resends[line] += 1
                if self._resends[line] > RESEND_ROUNDS:
                    changes.append(
                        Change(
                            line, Event.TIME_OUT, attempts=self._spent(before, line), reason=reason
                        )
                    )
                else:
                    changes.append(
                        Change(
                            line, Event.REQUEUE, attempts=self._spent(before, line), reason=reason
                        )
                    )
                    retry_later.append(line)
            if changes:
                self._campaign_size[work.campaign] = self._campaign_size.get(
                    work.campaign, 0
                ) + len(outcome.accepted)
                self._apply(changes)
            pending = [by_number[n] for n in outcome.resend]
            if retry_later:
                await anyio.sleep(self.config.resend_delay)
                pending.extend(retry_later)

    async def _unlink(self, work: _UnlinkWork) -> None:
        line = work.line
        send_event = Event.RELEASE if work.release else Event.SEND
        while True:
            self._apply([Change(line, send_event)])
            row = self.journal.get(line)
            before = self._tries([line])
            outcome = await self.provider.unlink(work.campaign, str(row.e164), line)
            spent = self._spent(before, line)
            if outcome.accepted or outcome.already:
                note = f"not linked to {work.campaign} when unlinked" if outcome.already else None
                if work.release and note:
                    note = f"not in {work.campaign} when released"
                self._apply(
                    [
                        Change(
                            line,
                            Event.ACCEPT,
                            attempts=spent,
                            reason=note,
                            fields={"submitted_at": time.time()},
                        )
                    ]
                )
                return
            if outcome.refused is not None:
                reason = outcome.refused
                if work.release:
                    reason = f"unlink from {work.campaign} failed, not moved: {reason}"
                self._apply([Change(line, Event.REFUSE, attempts=spent, reason=reason)])
                return
            self._resends[line] += 1
            if self._resends[line] > RESEND_ROUNDS:
                self._apply(
                    [Change(line, Event.TIME_OUT, attempts=spent, reason=outcome.unanswered)]
                )
                return
            self._apply([Change(line, Event.REQUEUE, attempts=spent, reason=outcome.unanswered)])
            await anyio.sleep(self.config.resend_delay)

    # --- polling ----------------------------------------------------------------------------

    async def _poller(self) -> None:
        while self._active:
            now = time.time()
            await anyio.sleep(max(0.02, self._next_wake(now) - now))
            await self._poll_round()

    def _groups(self) -> dict[str, list[RowRecord]]:
        """Rows awaiting settlement, by the campaign to read them in."""
        groups: dict[str, list[RowRecord]] = defaultdict(list)
        for line in self._active:
            row = self.journal.get(line)
            if row.state is State.SUBMITTED:
                groups[str(row.campaign_id)].append(row)
            elif row.state is State.RELEASE_SUBMITTED:
                groups[str(row.from_campaign)].append(row)
        return groups

    def _ready_at(self, campaign: str, rows: list[RowRecord]) -> float:
        """When a campaign is worth reading: its newest submission has had ``poll_interval``
        to settle (one read then confirms the whole campaign), or its oldest has waited
        ``poll_max_interval``; never before its own back-off allows."""
        stamps = [r.submitted_at or 0.0 for r in rows]
        ready = min(
            max(stamps) + self.config.poll_interval, min(stamps) + self.config.poll_max_interval
        )
        return max(ready, self._campaign_next.get(campaign, 0.0))

    def _next_wake(self, now: float) -> float:
        times = [self._ready_at(c, rows) for c, rows in self._groups().items()]
        return min(times) if times else now + self.config.poll_interval

    async def _poll_round(self) -> None:
        now = time.time()
        due: dict[str, list[RowRecord]] = {}
        for campaign, rows in self._groups().items():
            if self._ready_at(campaign, rows) <= now:
                due[campaign] = [
                    r for r in rows if (r.submitted_at or 0.0) + self.config.poll_interval <= now
                ]
        # campaigns side by side: the meter keeps the rate, latency no longer caps it
        reads = await gather_map(
            {c: functools.partial(self._read_states, c, rows) for c, rows in due.items()}
        )
        for campaign, rows in due.items():
            states = reads[campaign]
            interval = self._campaign_interval.get(campaign, self.config.poll_interval)
            if states is not None and self._settle(rows, states):
                interval = self.config.poll_interval
            else:
                interval = min(interval * 1.5, self.config.poll_max_interval)
            self._campaign_interval[campaign] = interval
            self._campaign_next[campaign] = time.time() + interval

    async def _read_states(
        self, campaign: str, rows: list[RowRecord]
    ) -> dict[str, NumberState] | None:
        pages = max(1, math.ceil(self._campaign_size.get(campaign, 0) / self.provider.page_size))
        try:
            if pages < len(rows):
                members = await self.provider.campaign_numbers(
                    campaign, self._campaign_size.get(campaign)
                )
                self._campaign_size[campaign] = len(members)
                return members
            states: dict[str, NumberState] = {}
            for row in rows:
                states[str(row.e164)] = await self.provider.number_state(
                    campaign, str(row.e164), row.line
                )
            return states
        except ProviderUnavailable:
            return None  # try again next round

    def _settle(self, rows: list[RowRecord], states: dict[str, NumberState]) -> bool:
        now = time.time()
        changes: list[Change] = []
        released: dict[str, list[int]] = defaultdict(list)
        for row in rows:
            state = states.get(str(row.e164), NumberState(Settlement.ABSENT))
            s = state.settlement
            raw = state.provider_status
            if row.state is State.RELEASE_SUBMITTED or row.action == "unlink":
                if s is Settlement.ABSENT:
                    changes.append(Change(row.line, Event.SETTLE, provider_status=raw))
                    if row.state is State.RELEASE_SUBMITTED:
                        released[str(row.campaign_id)].append(row.line)
                    continue
            elif s is Settlement.ACTIVE:
                changes.append(Change(row.line, Event.SETTLE, provider_status=raw))
                continue
            elif s is Settlement.FAILED:
                changes.append(
                    Change(
                        row.line,
                        Event.SETTLE_FAIL,
                        provider_status=raw,
                        reason=f"the provider settled the link as {raw or 'failed'}",
                    )
                )
                continue
            elif s is Settlement.UNRECOGNISED:
                changes.append(
                    Change(
                        row.line,
                        Event.TIME_OUT,
                        provider_status=raw,
                        reason=f"unrecognised provider status {raw!r}: not counted as success",
                    )
                )
                continue
            if now - (row.submitted_at or now) > self.config.settle_timeout:
                what = (
                    "unlink from the old campaign"
                    if row.state is State.RELEASE_SUBMITTED
                    else row.action
                )
                changes.append(
                    Change(
                        row.line,
                        Event.TIME_OUT,
                        provider_status=raw,
                        reason=f"{what} not settled after {self.config.settle_timeout:g} s"
                        f" (last status {raw or s.value})",
                    )
                )
        if changes:
            self._apply(changes)
        for campaign, lines in released.items():
            self._queue_links(campaign, lines)
        return bool(changes)
