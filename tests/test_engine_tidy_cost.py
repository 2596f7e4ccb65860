"""A tidy campaign (every link settles within the settle times seen, nobody's number stuck)
costs what the plan needs: the campaign's pending counts time one whole read once ours have
all settled, instead of whole reads on a fixed cadence (engine against an in-memory provider,
:mod:`bulk.testing`)."""

from __future__ import annotations

import random

from bulk.engine import EngineConfig
from bulk.testing import EngineRun, MemoryProvider, run_engine, run_in_virtual_time

CAMPAIGN = "CTIDY"
#: the CLI's timing at --poll-interval 1 (the benchmark's floor section)
CONFIG = EngineConfig(poll_interval=1.0, poll_max_interval=8.0, settle_timeout=900.0)


def _tidy(rows: int, settle: tuple[float, float], others: int = 0) -> EngineRun:
    rng = random.Random(11)
    ours = [f"+1415{i:07d}" for i in range(rows)]
    times = {n: rng.uniform(*settle) for n in ours}
    provider = MemoryProvider(settle=times.get, latency=0.02, rate=60.0)
    provider.add_campaign(CAMPAIGN, others=others)
    return run_in_virtual_time(run_engine, provider, [(n, "link", CAMPAIGN) for n in ours], CONFIG)


def test_a_tidy_campaign_settling_in_a_minute_is_read_whole_once() -> None:
    run = _tidy(500, (20.0, 60.0))
    assert run.outcomes() == {"linked": 500}
    # the plan's fewest: 1 page to plan, 5 links, 25 pages to confirm (31); glances on top
    assert run.requests["link"] == 5
    assert run.requests["get"] == 0
    assert run.requests["list"] <= 1 + 2 * 25  # at most one whole read more than the fewest
    assert sum(run.requests.values()) <= 45


def test_a_tidy_campaign_settling_in_seconds_is_read_whole_once() -> None:
    run = _tidy(500, (1.0, 3.0))
    assert run.outcomes() == {"linked": 500}
    assert sum(run.requests.values()) <= 40
    # the last settle at 3 s, 31 requests at 60 per second: done soon after
    assert run.finished - run.started <= 3.0 + 31 / 60.0 + 0.4


def test_a_tidy_link_into_a_big_campaign_reads_it_whole_once_more_than_the_plan() -> None:
    run = _tidy(500, (20.0, 60.0), others=1000)  # 1,500 numbers: 75 pages
    assert run.outcomes() == {"linked": 500}
    assert run.requests["list"] <= 2 * 75 + 20
