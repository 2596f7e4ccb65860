"""The whole sandbox state: both providers, the one seeded RNG, the settle clock and the
counters. Pure (no aiohttp): tests drive it with :class:`ManualClock`."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from bulk._clock import Clock, SystemClock
from bulk.sandbox._am_state import AgentMessageState
from bulk.sandbox._config import SandboxConfig, Switches
from bulk.sandbox._core import (
    AccountCounter,
    Counters,
    Op,
    RateLimiter,
    Scheduler,
    Settler,
)
from bulk.sandbox._plivo_state import PlivoState
from bulk.sandbox._seed import Seed, check_seed, load_seed


class SandboxState:
    """Live state of one sandbox. :meth:`reset` rebuilds it in place from the seed.

    Operations settle lazily: every reader calls :meth:`advance` first, which applies every
    operation whose settle time has passed, in settle-time order, so reads are exact.
    """

    def __init__(
        self, config: SandboxConfig, clock: Clock | None = None, seed: Seed | None = None
    ) -> None:
        """``seed``: the state to start from (and to :meth:`reset` to) instead of the default
        state with ``config.state_file`` applied, e.g. :func:`seed_for_accounts`'s."""
        self.config = config
        self.clock: Clock = clock or SystemClock()
        if seed is not None:
            check_seed(seed)
        self._seed_override = seed
        self.on_settled: Callable[[list[Op]], None] | None = None
        self.reset()

    def reset(self) -> None:
        """Back to the seeded state: same RNG seed, counters zero, no pending operations."""
        config = self.config
        seed = self._seed_override or load_seed(config.state_file)
        self.rng = random.Random(config.seed)
        self.counters = Counters()
        self.scheduler = Scheduler()
        self.always_fail = set(seed.always_fail)
        self.never_settle = set(seed.never_settle)
        self.settler = Settler(
            self.rng,
            settle_min=config.settle_min,
            settle_max=config.settle_max,
            fail_rate=config.fail_rate,
            slow_tail_rate=config.slow_tail_rate,
            slow_tail_min=config.slow_tail_min,
            slow_tail_max=config.slow_tail_max,
            always_fail=self.always_fail,
            never_settle=self.never_settle,
        )
        switches = config.switches
        #: every Plivo account by auth id, the default one first
        self.plivo_accounts: dict[str, PlivoState] = {
            account.auth_id: PlivoState(
                account,
                settler=self.settler,
                counters=self.counters,
                clock=self.clock,
                schedule=self.scheduler.add,
                rate_limit=(config.plivo_rate_limit if account.rate_limit is None
                            else account.rate_limit),
                rate_window=config.plivo_rate_window,
                switches=switches,
                max_batch=config.plivo_max_batch,
                rate_shape=config.rate_shape,
            )
            for account in seed.plivo_accounts
        }
        #: the default (first) Plivo account
        self.plivo = next(iter(self.plivo_accounts.values()))
        self.agentmessage = AgentMessageState(
            seed.agentmessage,
            settler=self.settler,
            counters=self.counters,
            clock=self.clock,
            schedule=self.scheduler.add,
            rate_limit=config.agentmessage_rate_limit,
            rate_window=config.agentmessage_rate_window,
            switches=switches,
            rate_shape=config.rate_shape,
        )

    def now(self) -> float:
        return self.clock.monotonic()

    def advance(self, now: float | None = None) -> list[Op]:
        """Apply every operation due by ``now``; returns those that changed something."""
        now = self.clock.monotonic() if now is None else now
        settled = []
        for op in self.scheduler.due(now):
            target: PlivoState | AgentMessageState | None = (
                self.plivo_accounts.get(op.account) if op.provider == "plivo"
                else self.agentmessage
            )
            if target is not None and target.apply(op):
                settled.append(op)
        if settled and self.on_settled is not None:
            self.on_settled(settled)
        return settled

    def next_due(self) -> float | None:
        return self.scheduler.next_due()

    def set_switches(self, switches: Switches) -> None:
        """The switches every account and organization reads from now on."""
        for account in self.plivo_accounts.values():
            account.switches = switches
        self.agentmessage.switches = switches

    def set_rate_limit(self, account: str, limit: int) -> dict[str, Any]:
        """A Plivo account's (by auth id) or an AgentMessage organization's limit from now on,
        until :meth:`reset`: the requests its window already admitted count against the new
        one. Its ``account``, ``rate_limit``, ``rate_window`` and ``rate_shape``;
        :class:`KeyError` when no account or organization has that id."""
        plivo = self.plivo_accounts.get(account)
        if plivo is not None:
            plivo.rate.set_limit(limit, self.now())
            window, shape = self.config.plivo_rate_window, plivo.rate.shape
        elif account in self.agentmessage.org_ids():
            self.agentmessage.set_rate_limit(account, limit)
            window = self.config.agentmessage_rate_window
            shape = self.agentmessage.rate_shape(account)
        else:
            raise KeyError(account)
        return {"account": account, "rate_limit": limit, "rate_window": window,
                "rate_shape": shape}

    def counters_report(self) -> dict[str, Any]:
        """:meth:`Counters.to_dict` plus ``accounts``: per Plivo account and AgentMessage
        organization (and ``unknown``), its requests, 401s, 429s and the peak of its window."""
        report = self.counters.to_dict()
        limits: dict[str, tuple[RateLimiter | None, int, float]] = {
            auth_id: (account.rate, account.rate.limit, self.config.plivo_rate_window)
            for auth_id, account in self.plivo_accounts.items()
        }
        am = self.agentmessage
        for org in am.org_ids():
            limits[org] = (am.rates.get(org), am.rate_limit(org),
                           self.config.agentmessage_rate_window)
        accounts: dict[str, dict[str, Any]] = {}
        for name in [*limits, *sorted(set(self.counters.accounts) - set(limits))]:
            counter = self.counters.accounts.get(name) or AccountCounter()
            window, limit, span = limits.get(name, (None, 0, 0.0))
            accounts[name] = {
                "requests": counter.requests,
                "unauthorized": counter.unauthorized,
                "rate_limited": counter.rate_limited,
                "peak_in_window": window.peak if window is not None else 0,
            }
            if name in limits:
                accounts[name].update(rate_limit=limit, rate_window=span)
        report["accounts"] = accounts
        return report

    def snapshot(self) -> dict[str, Any]:
        """Both providers' state as JSON-ready data (``GET /_sandbox/state``)."""
        self.advance()
        return {
            "plivo": self.plivo.snapshot(),
            "plivo_accounts": {
                auth_id: account.snapshot() for auth_id, account in self.plivo_accounts.items()
            },
            "agentmessage": self.agentmessage.snapshot(),
            "always_fail": sorted(self.always_fail),
            "never_settle": sorted(self.never_settle),
            "pending_operations": len(self.scheduler),
        }
