"""``--rate auto`` and the 429 pause, on a :class:`VirtualClock`.

A tiny provider (``tests._helpers.Window``) answers each request when it leaves the meter: a sliding
window limit (what Plivo and AgentMessage enforce) and injected storms of 429s in a row (what
``bulk sandbox --burst-429-rate`` does). Requests go one after another, so the virtual time
moves only when the meter makes a request wait.
"""

from __future__ import annotations

import itertools
import random

import pytest

from bulk.engine import Meter, PauseGate, VirtualClock
from bulk.engine._limits import AdaptiveRate
from tests._helpers import Window, adaptive, drive


async def test_auto_rate_rises_while_requests_succeed() -> None:
    meter, _clock = adaptive(start=10.0)
    _, rates, throttled = await drive(meter, 300, lambda now: True)
    assert throttled == 0
    assert rates == sorted(rates)  # never falls without a 429
    assert rates[-1] > 30.0


async def test_auto_rate_starts_at_the_start_rate_with_no_burst() -> None:
    meter, _ = adaptive(start=10.0)
    stamps, _, _ = await drive(meter, 4, lambda now: True)
    # the first requests leave a tenth of a second apart (the bucket is primed)
    gaps = [b - a for a, b in itertools.pairwise(stamps)]
    assert all(gap > 0.09 for gap in gaps)


async def test_auto_rate_never_exceeds_max_rate() -> None:
    meter, _ = adaptive(start=10.0, max_rate=25.0)
    stamps, rates, _ = await drive(meter, 800, lambda now: True)
    assert max(rates) == pytest.approx(25.0)
    last = stamps[-251:]  # the last 10 s at the ceiling: 25/s, not more
    assert len(last) - 1 <= 25.0 * (last[-1] - last[0]) + 2


async def test_auto_rate_falls_on_a_429() -> None:
    meter, clock = adaptive(start=20.0)
    await drive(meter, 200, lambda now: True)
    before = meter.current_rate
    assert before is not None
    meter.rate_limited(None, clock.monotonic())
    after = meter.current_rate
    assert after is not None and after <= 0.7 * before + 1e-9


async def test_a_storm_of_429s_in_slow_start_is_one_cut_and_the_rate_is_back_at_once() -> None:
    """A short refusal in slow start may be a storm (not about the rate): slow start goes on
    from where it was as soon as a request gets through."""
    meter, _ = adaptive(start=40.0, max_rate=40.0)
    during, throttled = await clean_then_storm(meter, 5)
    limiter = meter._limiter
    assert throttled == 5
    assert isinstance(limiter, AdaptiveRate) and limiter.cuts == 1
    assert during[-1] == pytest.approx(40.0)


async def clean_then_storm(meter: Meter, length: int) -> tuple[list[float], int]:
    """200 requests answered, then a storm of ``length`` 429s in a row until one request
    gets through: the rates after each answer of the storm, and its 429s."""
    await drive(meter, 200, lambda now: True)
    storm = iter([False] * length)
    _, during, throttled = await drive(meter, 1, lambda now: next(storm, True))
    return during, throttled


async def test_a_second_short_refusal_at_the_same_load_is_a_limit_cut_once_then_recovered(
) -> None:
    """The same count of bulk's requests in the last second at two short refusals: a short
    window's limit, not a storm. One cut, not 0.7 ** 5, then held under it."""
    meter, clock = adaptive(start=40.0, max_rate=40.0)
    await clean_then_storm(meter, 5)
    during, throttled = await clean_then_storm(meter, 5)
    limiter = meter._limiter
    assert throttled == 5
    assert isinstance(limiter, AdaptiveRate) and limiter.cuts == 2
    assert 0.95 * 0.7 * 40.0 <= during[-1] < 40.0  # one cut, not 0.7 ** 5
    after_storm = clock.monotonic()
    stamps, rates, _ = await drive(meter, 1600, lambda now: True)
    level = next(t for t, r in zip(stamps, rates, strict=True) if r >= 0.9 * 40.0)
    back = next(t for t, r in zip(stamps, rates, strict=True) if r >= 40.0 - 1e-9)
    # two cuts at one rate: a limit held, so straight back to 90 % of it, and to the rate
    # cut at only in HOLD seconds (a short window's whole-second Retry-After paid rarely)
    assert level - after_storm <= 0.5
    assert AdaptiveRate.HOLD * 0.9 <= back - after_storm <= AdaptiveRate.HOLD + 1.0


async def test_auto_rate_finds_a_sliding_window_limit_with_few_429s() -> None:
    meter, clock = adaptive(start=9.5)
    window = Window(limit=30, window=1.0)
    start = clock.monotonic()
    stamps, _, throttled = await drive(meter, 1500, window)
    assert throttled <= 0.03 * len(stamps)
    # once found, the rate is used: the last 600 requests at 85 % of the limit or more
    tail = stamps[-600:]
    assert (len(tail) - 1) / (tail[-1] - tail[0]) >= 0.85 * 30
    assert clock.monotonic() > start


async def test_auto_rate_yields_when_other_software_takes_part_of_the_limit() -> None:
    meter, _ = adaptive(start=9.5)
    window = Window(limit=40, window=1.0)
    await drive(meter, 1200, window)  # alone: it finds about 40/s
    alone = meter.current_rate
    assert alone is not None and alone > 30.0
    window.others = 20.0  # another client now sends 20/s on the same account
    stamps, _, throttled = await drive(meter, 1200, window)
    tail = stamps[-400:]
    assert (len(tail) - 1) / (tail[-1] - tail[0]) <= 22.0  # it gave the room back
    assert throttled <= 0.05 * len(stamps)


async def test_a_fixed_rate_stays_fixed_through_answers_and_429s() -> None:
    clock = VirtualClock()
    meter = Meter(20.0, 8, gate=PauseGate(rng=random.Random(3), clock=clock))
    storm = iter([True] * 100 + [False] * 5)
    _, rates, throttled = await drive(meter, 200, lambda now: next(storm, True))
    assert throttled == 5
    assert set(rates) == {20.0}


@pytest.mark.parametrize("auto", [False, True])
async def test_retry_after_is_honoured_exactly(auto: bool) -> None:
    clock = VirtualClock()
    gate = PauseGate(rng=random.Random(1), clock=clock)
    meter = Meter(20.0, 8, gate=gate, adaptive=auto)
    await drive(meter, 5, lambda now: True)
    limited_at = clock.monotonic()
    assert meter.rate_limited(2.5, limited_at) == 2.5
    async with meter.slot() as sent_at:
        pass
    assert sent_at == pytest.approx(limited_at + 2.5)


def test_a_429_without_retry_after_pauses_one_request_interval_and_stale_ones_add_nothing() -> None:
    clock = VirtualClock()
    meter = Meter(50.0, 8, gate=PauseGate(base=1.0, rng=random.Random(2), clock=clock))
    sent = clock.monotonic()
    first = meter.rate_limited(None, sent)
    assert 0.01 <= first <= 0.02  # one interval at 50/s, jittered: not a second
    # 429s for requests that left before that pause ended: the same storm, no longer pause
    for _ in range(4):
        assert meter.rate_limited(None, sent) <= first + 1e-9
    assert meter.gate.paused_for() == pytest.approx(first)


def test_429s_right_after_each_pause_double_it_up_to_the_cap() -> None:
    clock = VirtualClock()
    gate = PauseGate(base=1.0, cap=8.0, rng=random.Random(2), clock=clock)
    meter = Meter(50.0, 8, gate=gate)
    ceilings = []
    for _ in range(12):
        clock._now += meter.gate.paused_for()  # the next request leaves when the gate opens
        delay = meter.rate_limited(None, clock.monotonic())
        ceilings.append(delay)
    # 20 ms, 40 ms, ... (each jittered into [ceiling / 2, ceiling]) up to the 8 s cap
    for n, delay in enumerate(ceilings):
        ceiling = min(8.0, 0.02 * 2**n)
        assert ceiling / 2 <= delay <= ceiling + 1e-9
    assert ceilings[-1] >= 4.0


async def test_storms_of_429s_cost_a_fraction_of_a_second_each_at_a_fixed_rate() -> None:
    """The benchmark's storm run: at 58/s, 2 % of requests start 5 429s in a row. A
    seconds-long exponential pause would leave about 3 requests/s."""
    rng = random.Random(11)
    clean_clock = VirtualClock()
    clean = Meter(58.0, 8, gate=PauseGate(clock=clean_clock))
    await drive(clean, 1000, lambda now: True)
    clean_time = clean_clock.monotonic() - 1000.0

    clock = VirtualClock()
    meter = Meter(58.0, 8, gate=PauseGate(rng=random.Random(5), clock=clock))
    remaining = 0
    storms = 0

    def stormy(now: float) -> bool:
        nonlocal remaining, storms
        if remaining == 0 and rng.random() < 0.02:
            remaining, storms = 5, storms + 1
        if remaining:
            remaining -= 1
            return False
        return True

    await drive(meter, 1000, stormy)
    stormy_time = clock.monotonic() - 1000.0
    assert storms >= 10
    assert stormy_time - clean_time <= 0.6 * storms
