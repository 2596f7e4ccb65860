"""A campaign's pending count that stops falling while only a few of ours are left: the rest
look stuck, so the campaign is read whole at once and every settled row is known, instead of
waiting out the budget a settle may go unread (engine against an in-memory provider,
:mod:`bulk.testing`)."""

from __future__ import annotations

import random

from bulk.engine import EngineConfig
from bulk.engine._watch import confirm_wait, count_stalled, read_after_glance
from bulk.testing import EngineRun, MemoryProvider, run_engine, run_in_virtual_time

CAMPAIGN = "CONBOARD"
#: the CLI's timing at the default --poll-interval 30 (the onboarding sample's)
CONFIG = EngineConfig(poll_interval=30.0, poll_max_interval=240.0, settle_timeout=300.0)


def _onboarding(
    settling: int = 290, others: int = 3
) -> tuple[EngineRun, MemoryProvider, list[str]]:
    """``settling`` links settling within 0.5-2 s and one that never settles."""
    rng = random.Random(5)
    ours = [f"+1415{i:07d}" for i in range(settling + 1)]
    settle: dict[str, float | None] = {n: rng.uniform(0.5, 2.0) for n in ours}
    settle[ours[settling // 2]] = None
    provider = MemoryProvider(settle=settle.get, latency=0.05, rate=58.0)
    provider.add_campaign(CAMPAIGN, others=others)
    rows = [(n, "link", CAMPAIGN) for n in ours]
    return run_in_virtual_time(run_engine, provider, rows, CONFIG), provider, ours


def _settle_to_known(run: EngineRun, provider: MemoryProvider, ours: list[str]) -> list[float]:
    gaps = []
    for line, number in enumerate(ours, start=1):
        settled = provider.settled_at(CAMPAIGN, number)
        if settled is not None:
            gaps.append(run.known_at[line] - settled)
    return sorted(gaps)


def test_rows_settled_beside_one_stuck_number_are_known_within_two_poll_intervals() -> None:
    run, provider, ours = _onboarding()
    assert run.outcomes() == {"linked": 290, "unknown": 1}
    gaps = _settle_to_known(run, provider, ours)
    assert len(gaps) == 290
    assert gaps[-1] <= 2 * CONFIG.poll_interval


def test_one_stuck_number_costs_one_early_whole_read_not_a_read_each_look() -> None:
    run, _, _ = _onboarding(others=3000)  # 3,294 numbers: 165 pages
    assert run.outcomes() == {"linked": 290, "unknown": 1}
    # planning's whole read, one whole read confirming the settled rows, glances and the
    # stuck number's own reads
    assert run.requests["list"] <= 2 * 165 + 10
    assert run.requests["get"] <= 20


# --- the rule, pure -------------------------------------------------------------------------


def test_a_count_that_stops_falling_with_few_of_ours_left_reads_the_campaign_whole() -> None:
    # fell from 291 to 1, then stayed: the last one looks stuck
    assert count_stalled([(0.0, 291.0), (30.0, 1.0)], 1, ours=291)
    # still falling: the counts time the read
    assert not count_stalled([(0.0, 291.0), (30.0, 5.0)], 1, ours=291)
    # stopped falling with most of ours pending: nothing settled to confirm yet, or the
    # settles are slow; the budget decides
    assert not count_stalled([(0.0, 291.0), (30.0, 200.0)], 200, ours=291)
    # nothing pending: the ordinary rule reads it
    assert not count_stalled([(0.0, 291.0), (30.0, 0.0)], 0, ours=291)
    # no earlier look to compare with
    assert not count_stalled([], 1, ours=291)


def test_most_of_ours_settling_within_one_look_brings_the_confirming_look_forward() -> None:
    # 291 pending, then 1 a look later: settled or stuck, half an interval tells which
    assert confirm_wait(1.0, 291.0, 291, poll_interval=30.0) == 15.0
    # a count falling over several looks into the few: its fall times the next look
    assert confirm_wait(9.0, 120.0, 500, poll_interval=1.0) is None
    # many of ours still pending: no confirming look
    assert confirm_wait(100.0, 291.0, 291, poll_interval=30.0) is None
    # nothing pending: the whole read is already due
    assert confirm_wait(0.0, 291.0, 291, poll_interval=30.0) is None


def test_a_stalled_count_reads_whole_only_when_a_settle_went_unread() -> None:
    args = {"glances": 2, "pages": 15, "budget": 120.0, "stalled": True}
    assert read_after_glance(1, (17, 0), unseen_for=45.0, **args)
    # every settle of ours already read: nothing to confirm
    assert not read_after_glance(1, (17, 0), unseen_for=None, **args)
