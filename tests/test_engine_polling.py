"""Polling in virtual time: settled rows are known within the poll schedule whatever else in
the campaign stays pending; stuck numbers move to a slow lane (engine against an in-memory
provider, :mod:`bulk.testing`)."""

from __future__ import annotations

import random
import statistics
import time

from bulk.engine import EngineConfig
from bulk.engine._watch import read_after_glance, slow_after, slow_wait, unseen_budget
from bulk.testing import EngineRun, MemoryProvider, run_engine, run_in_virtual_time

CAMPAIGN = "CBIG"


def _numbers(count: int, prefix: str = "+1415") -> list[str]:
    return [f"{prefix}{i:07d}" for i in range(count)]


def _link_into(
    others: int,
    ours: list[str],
    settle: dict[str, float | None],
    config: EngineConfig,
    *,
    others_stuck: int = 0,
) -> tuple[EngineRun, MemoryProvider]:
    provider = MemoryProvider(settle=settle.get, latency=0.05, rate=58.0)
    provider.add_campaign(CAMPAIGN, others=others, others_stuck=others_stuck)
    rows = [(n, "link", CAMPAIGN) for n in ours]
    return run_in_virtual_time(run_engine, provider, rows, config), provider


def _settle_to_known(run: EngineRun, provider: MemoryProvider, ours: list[str]) -> list[float]:
    """Seconds from each settled link's settle to the moment the engine knew it, sorted."""
    gaps = []
    for line, number in enumerate(ours, start=1):
        settled = provider.settled_at(CAMPAIGN, number)
        if settled is not None:
            gaps.append(run.known_at[line] - settled)
    return sorted(gaps)


def _stuck_shape(others_stuck: int = 0) -> tuple[EngineRun, MemoryProvider, list[str]]:
    """200 links (settle 1-3 s) into a campaign of 3,000 numbers, 5 of ours never settle."""
    rng = random.Random(7)
    ours = _numbers(200)
    settle: dict[str, float | None] = {n: rng.uniform(1.0, 3.0) for n in ours}
    settle.update(dict.fromkeys(ours[:5]))
    config = EngineConfig(poll_interval=0.5, poll_max_interval=4.0, settle_timeout=40.0)
    others = 3000 - 200 - others_stuck
    run, provider = _link_into(others, ours, settle, config, others_stuck=others_stuck)
    return run, provider, ours


def test_a_settled_row_is_known_within_the_poll_schedule_despite_stuck_numbers() -> None:
    run, provider, ours = _stuck_shape()
    gaps = _settle_to_known(run, provider, ours)
    assert run.outcomes() == {"linked": 195, "unknown": 5}
    assert len(gaps) == 195
    assert gaps[int(0.95 * len(gaps))] <= 10.0
    # every settled row: within 8 poll intervals, plus one whole read of the 150 pages
    assert gaps[-1] <= 8 * 0.5 + 150 / 58.0


def test_a_one_stuck_sample_keeps_no_settled_row_waiting_at_the_default_interval() -> None:
    ours = _numbers(175)
    settle: dict[str, float | None] = dict.fromkeys(ours, 1.5)
    settle[ours[42]] = None
    config = EngineConfig(poll_interval=30.0, poll_max_interval=240.0, settle_timeout=3600.0)
    run, provider = _link_into(3, ours, settle, config)
    gaps = _settle_to_known(run, provider, ours)
    assert run.outcomes() == {"linked": 174, "unknown": 1}
    assert max(gaps) <= 8 * 30.0


def test_stuck_numbers_move_to_a_slow_lane_and_are_read_rarely() -> None:
    run, provider, ours = _stuck_shape()
    stuck_reads = [provider.reads_of[n] for n in ours[:5]]
    # read each poll interval they would cost 40 / 0.5 = 80 reads each
    assert max(stuck_reads) <= 20
    assert run.outcomes()["unknown"] == 5
    # the deadline still fires on time: the last row is known soon after 40 s
    assert run.finished - run.started <= 40.0 + 150 / 58.0 + 5 * 0.5


def test_other_teams_stuck_numbers_in_the_campaign_cost_nothing() -> None:
    calm, calm_provider, ours = _stuck_shape()
    crowded, crowded_provider, _ = _stuck_shape(others_stuck=400)
    assert crowded.outcomes() == calm.outcomes()
    calm_gaps = _settle_to_known(calm, calm_provider, ours)
    crowded_gaps = _settle_to_known(crowded, crowded_provider, ours)
    assert crowded_gaps[-1] <= calm_gaps[-1] + 1.0
    assert sum(crowded.requests.values()) <= sum(calm.requests.values()) + 5


def test_hundreds_of_rows_poll_to_the_end_in_milliseconds() -> None:
    ours = _numbers(600)
    settle: dict[str, float | None] = {n: 20.0 + (i % 40) for i, n in enumerate(ours)}
    config = EngineConfig(poll_interval=30.0, poll_max_interval=240.0, settle_timeout=3600.0)
    began = time.perf_counter()
    run, provider = _link_into(400, ours, settle, config)
    assert run.outcomes() == {"linked": 600}
    assert run.finished - run.started > 60.0  # a minute of virtual time ...
    assert time.perf_counter() - began < 3.0  # ... in a fraction of real time
    assert statistics.median(_settle_to_known(run, provider, ours)) <= 8 * 30.0


# --- the rules, pure ------------------------------------------------------------------------


def test_no_slow_lane_until_enough_rows_have_settled_then_well_past_the_longest() -> None:
    assert slow_after([1.0, 2.0], poll_interval=0.5) is None
    assert slow_after([1.0, 2.0, 2.5, 3.0, 1.5], poll_interval=0.5) == 9.0
    assert slow_after([1.0] * 5, poll_interval=30.0) == 120.0


def test_a_slow_lane_read_waits_twice_as_long_each_time_up_to_the_ceiling() -> None:
    first = slow_wait(None, poll_interval=1.0, ceiling=8.0)
    assert first == 2.0
    assert slow_wait(first, poll_interval=1.0, ceiling=8.0) == 4.0
    assert slow_wait(8.0, poll_interval=1.0, ceiling=8.0) == 8.0


def test_counts_time_a_whole_read_but_never_hold_a_settle_back_past_the_budget() -> None:
    args = {"glances": 1, "pages": 150, "budget": 4.0}
    # nothing settled unseen: wait
    assert not read_after_glance(100, (0, 0), unseen_for=None, **args)
    # half settled, just now: the counts time the read, wait for the rest
    assert not read_after_glance(50, (0, 0), unseen_for=0.5, **args)
    # a few settled, stuck ones keep the count up: read once the budget is spent
    assert not read_after_glance(95, (0, 0), unseen_for=1.0, **args)
    assert read_after_glance(95, (0, 0), unseen_for=4.0, **args)
    # nothing of ours pending: read
    assert read_after_glance(0, (0, 0), unseen_for=None, **args)
    # the glances cost a whole read: read whatever the counts say
    assert read_after_glance(95, (0, 0), unseen_for=None, **{**args, "glances": 150})


def test_a_settle_may_go_unread_a_few_poll_intervals_or_a_few_times_its_own_duration() -> None:
    # settles within seconds: the fast ceiling (4 poll intervals)
    assert unseen_budget(0.5, 4.0, None) == 2.0
    assert unseen_budget(0.5, 4.0, 0.4) == 2.0
    assert unseen_budget(30.0, 240.0, 1.5) == 120.0
    # settles after 20 s: three times that, so a tidy campaign waits for its last settle
    assert unseen_budget(1.0, 8.0, 20.0) == 60.0
    # a submission newer than the settle tells nothing
    assert unseen_budget(1.0, 8.0, -3.0) == 4.0
