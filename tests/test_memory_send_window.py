"""The send window reaches the change itself: an unlink whose turn at the rate comes after
``send_until`` is not sent, in virtual time against the in-memory provider."""

from __future__ import annotations

from collections import Counter

from bulk.engine import EngineConfig
from bulk.testing import EngineRun, LoopClock, MemoryProvider, run_engine, run_in_virtual_time

CAMPAIGN = "CSLOW"


async def _unlink_ten_at_one_a_second(window: float | None) -> tuple[EngineRun, float | None]:
    """Ten unlinks queued behind a rate of one request a second; the window (if any) closes
    ``window`` seconds after the plan, while most of them still wait for their turn."""
    provider = MemoryProvider(settle=lambda number: 0.5, rate=1.0)
    numbers = provider.add_campaign(CAMPAIGN, others=10)
    rows = [(number, "unlink", CAMPAIGN) for number in numbers]
    until = None if window is None else LoopClock().time() + 1.0 + window
    return await run_engine(provider, rows, EngineConfig(send_until=until)), until


def test_unlinks_whose_turn_comes_after_the_window_are_deferred_unsent() -> None:
    run, until = run_in_virtual_time(_unlink_ten_at_one_a_second, 3.5)
    assert until is not None
    states = Counter(row.state.value for row in run.rows.values())
    sent = run.requests["unlink"]
    assert 0 < sent < 10
    assert states["deferred"] == 10 - sent
    deferred = [row for row in run.rows.values() if row.state.value == "deferred"]
    assert all("send window closed" in str(row.reason) for row in deferred)


def test_without_a_window_every_unlink_is_sent() -> None:
    run, _ = run_in_virtual_time(_unlink_ten_at_one_a_second, None)
    assert run.requests["unlink"] == 10
    assert "deferred" not in Counter(row.state.value for row in run.rows.values())
