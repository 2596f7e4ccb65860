"""The whole sandbox state: both providers, the one seeded RNG, the settle clock and the
counters. Pure (no aiohttp): tests drive it with :class:`ManualClock`."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from bulk.sandbox._am_state import AgentMessageState
from bulk.sandbox._config import SandboxConfig
from bulk.sandbox._core import Clock, Counters, Op, Scheduler, Settler, SystemClock
from bulk.sandbox._plivo_state import PlivoState
from bulk.sandbox._seed import Seed, load_seed


class SandboxState:
    """Live state of one sandbox. :meth:`reset` rebuilds it in place from the seed.

    Operations settle lazily: every reader calls :meth:`advance` first, which applies every
    operation whose settle time has passed, in settle-time order, so reads are exact.
    """

    def __init__(
        self, config: SandboxConfig, clock: Clock | None = None, seed: Seed | None = None
    ) -> None:
        self.config = config
        self.clock: Clock = clock or SystemClock()
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
        self.plivo = PlivoState(
            seed.plivo,
            settler=self.settler,
            counters=self.counters,
            clock=self.clock,
            schedule=self.scheduler.add,
            rate_limit=config.plivo_rate_limit,
            rate_window=config.plivo_rate_window,
            switches=config.switches,
            max_batch=config.plivo_max_batch,
        )
        self.agentmessage = AgentMessageState(
            seed.agentmessage,
            settler=self.settler,
            counters=self.counters,
            clock=self.clock,
            schedule=self.scheduler.add,
            rate_limit=config.agentmessage_rate_limit,
            rate_window=config.agentmessage_rate_window,
            switches=config.switches,
        )

    def now(self) -> float:
        return self.clock.now()

    def advance(self, now: float | None = None) -> list[Op]:
        """Apply every operation due by ``now``; returns those that changed something."""
        now = self.clock.now() if now is None else now
        settled = []
        for op in self.scheduler.due(now):
            target = self.plivo if op.provider == "plivo" else self.agentmessage
            if target.apply(op):
                settled.append(op)
        if settled and self.on_settled is not None:
            self.on_settled(settled)
        return settled

    def next_due(self) -> float | None:
        return self.scheduler.next_due()

    def snapshot(self) -> dict[str, Any]:
        """Both providers' state as JSON-ready data (``GET /_sandbox/state``)."""
        self.advance()
        return {
            "plivo": self.plivo.snapshot(),
            "agentmessage": self.agentmessage.snapshot(),
            "always_fail": sorted(self.always_fail),
            "never_settle": sorted(self.never_settle),
            "pending_operations": len(self.scheduler),
        }
