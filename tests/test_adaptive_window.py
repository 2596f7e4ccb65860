"""``--rate auto`` against a sliding-window limit of a length it is not told, on a
:class:`VirtualClock`: slow start, the first refusal probed sparsely, the window learned from
it and narrowed by every answer, the pause until the window has room, yielding to other
software. The provider is simulated by ``tests._helpers.Window`` (each request answered when
it leaves, one after another); speeds live in the benchmark.
"""

from __future__ import annotations

import itertools

import anyio
import pytest

from bulk.engine import Meter
from bulk.engine._limits import AdaptiveRate, SlidingWindowModel
from tests._helpers import Window, adaptive, drive


def limiter_of(meter: Meter) -> AdaptiveRate:
    limiter = meter._limiter
    assert isinstance(limiter, AdaptiveRate)
    return limiter


def pace(stamps: list[float]) -> float:
    """Requests per second from the first of ``stamps`` to the last."""
    return (len(stamps) - 1) / (stamps[-1] - stamps[0])


async def test_while_clean_the_rate_doubles_from_the_start_rate_to_the_ceiling_in_seconds() -> None:
    meter, clock = adaptive(start=9.5, max_rate=100.0)
    start = clock.monotonic()
    stamps, rates, throttled = await drive(meter, 400, lambda now: True)
    assert throttled == 0
    assert rates == sorted(rates)
    first_gaps = [b - a for a, b in itertools.pairwise(stamps[:5])]
    assert first_gaps[0] == pytest.approx(1 / 9.5)  # evenly spaced from the first: no burst
    assert all(gap > 0.08 for gap in first_gaps)
    at_ceiling = next(t for t, r in zip(stamps, rates, strict=True) if r >= 100.0 - 1e-9)
    # doubling every 0.5 s: 9.5 -> 100 in log2(100 / 9.5) * 0.5 ~ 1.7 s
    assert at_ceiling - start <= 2.5
    assert max(rates) == pytest.approx(100.0)


@pytest.mark.parametrize("retry_after", [1.0, None])
async def test_a_first_window_filled_by_the_ramp_is_learned_and_paced_at_what_it_admits(
    retry_after: float | None,
) -> None:
    """50 requests per 10 s: the ramp fills the window in under 2 s, then nothing gets
    through for 8 s. bulk probes that sparsely, and once a probe gets through it sends at
    what the window admitted: about 50 / 10 s, not the rate it was ramping at."""
    meter, _ = adaptive(start=9.5)
    window = Window(limit=50, window=10.0)
    _, _, throttled = await drive(meter, 51, window, retry_after)
    # the refusal and its probes: one per Retry-After for DENSE seconds (storms of 429s
    # back to back must not be taken for the window), then ever sparser; without
    # Retry-After, as long as a short storm lasts, then sparser
    assert throttled <= (AdaptiveRate.DENSE / retry_after + 1 if retry_after else 10)
    model = limiter_of(meter).window
    assert model.share == 50
    assert model.lo < 10.0 <= model.hi
    stamps, _, throttled = await drive(meter, 40, window, retry_after)
    assert throttled == 0
    # what the window admitted (within the bounds learned), not the 50/s of the ramp
    assert 0.5 * 5.0 <= pace(stamps) <= 1.2 * 5.0


@pytest.mark.parametrize("retry_after", [None, 0.0, 1.0])
async def test_every_answer_narrows_the_learned_window_and_the_pace_settles_near_its_limit(
    retry_after: float | None,
) -> None:
    """Whatever Retry-After says (nothing, "now", or a second), bulk waits for the window to
    have room (the oldest of its requests in it ageing out) and settles just under it. (With
    no pause of its own, a 429 costs less: the first refusal is probed more finely.)"""
    meter, _ = adaptive(start=9.5)
    window = Window(limit=50, window=10.0)
    stamps, _, throttled = await drive(meter, 400, window, retry_after)
    model = limiter_of(meter).window
    assert model.lo < 10.0 <= model.hi <= model.lo + 0.5
    if retry_after:  # the first refusal probed at each Retry-After (storms back to back
        # must not teach a window), about 9 in its 8.5 s; then few
        assert throttled <= 10 + 0.01 * len(stamps)
    else:
        assert throttled <= 0.05 * len(stamps)
    assert 0.85 * 5.0 <= pace(stamps[-200:]) <= 5.0


async def test_retry_after_is_a_floor_when_the_learned_window_has_room_sooner() -> None:
    meter, clock = adaptive(start=9.5)
    stamps, _, _ = await drive(meter, 300, Window(limit=50, window=10.0))
    assert limiter_of(meter).window.share is not None
    limited_at = clock.monotonic()
    assert meter.rate_limited(3.0, stamps[-1]) >= 3.0
    async with meter.slot() as sent_at:
        pass
    assert sent_at >= limited_at + 3.0


async def test_with_the_window_learned_a_429_pauses_until_its_oldest_request_ages_out() -> None:
    """Even when Retry-After says "now": a window holding its share of bulk's requests is
    full until the oldest of them ages out."""
    meter, clock = adaptive(start=9.5)
    stamps, _, _ = await drive(meter, 300, Window(limit=50, window=10.0))
    model = limiter_of(meter).window
    assert model.share is not None
    # bulk paces under its share: say the window holds fewer, so that this 429 is the
    # window's (bulk had all of its share in it)
    model.share = model.holding(stamps[-1]) - 5
    oldest_in_window = model.times[-model.share - 1]  # the refused request is not in it
    length = model.lo + (model.hi - model.lo) * AdaptiveRate.POS
    pause = meter.rate_limited(0.0, stamps[-1])
    assert pause == pytest.approx(oldest_in_window + length - clock.monotonic())
    assert pause > 0  # longer than Retry-After's "now"


async def test_with_the_window_learned_a_429_it_does_not_explain_pauses_as_retry_after_says(
) -> None:
    """bulk's own count left room in the window: not the window's 429 (a storm, or others
    on the account), so Retry-After decides, exactly."""
    meter, _ = adaptive(start=9.5)
    stamps, _, _ = await drive(meter, 300, Window(limit=50, window=10.0))
    model = limiter_of(meter).window
    assert model.share is not None and model.holding(stamps[-1]) < model.share
    assert meter.rate_limited(0.0, stamps[-1]) == 0.0
    assert meter.rate_limited(1.0, stamps[-1]) == pytest.approx(1.0)


async def test_while_a_first_refusal_lasts_probes_leave_one_by_one() -> None:
    """Senders queued at the gate do not all go out when it opens: a full window refuses
    every one of them."""
    meter, clock = adaptive(start=60.0, max_rate=60.0)
    await drive(meter, 100, lambda now: True)
    meter.rate_limited(None, clock.monotonic())  # the ramp's first refusal
    stamps: list[float] = []

    async def send() -> None:
        async with meter.slot() as sent_at:
            stamps.append(sent_at)

    async with anyio.create_task_group() as tg:
        for _ in range(4):
            tg.start_soon(send)
    gaps = [b - a for a, b in itertools.pairwise(sorted(stamps))]
    assert min(gaps) >= 1 / AdaptiveRate.PROBE_RATE - 1e-9


async def test_a_late_429_for_a_request_sent_before_the_cut_does_not_cut_again() -> None:
    meter, clock = adaptive(start=20.0, max_rate=20.0)
    await drive(meter, 100, lambda now: True)
    async with meter.slot() as slow:  # its answer comes late
        pass
    async with meter.slot() as refused:
        pass
    meter.rate_limited(None, refused)
    await clock.sleep(meter.gate.paused_for())
    async with meter.slot() as through:
        pass
    meter.answered(through)
    rate = meter.current_rate
    meter.rate_limited(None, slow)  # in flight when the rate was cut: no news
    assert limiter_of(meter).cuts == 1
    assert meter.current_rate == rate


async def test_after_a_pause_requests_leave_one_interval_apart_not_in_a_burst() -> None:
    meter, clock = adaptive(start=20.0, max_rate=20.0)
    await drive(meter, 100, lambda now: True)
    meter.rate_limited(1.0, clock.monotonic())
    rate = meter.current_rate
    assert rate is not None
    async with meter.slot() as first:
        pass
    async with meter.slot() as second:
        pass
    assert second - first == pytest.approx(1 / rate)


async def test_when_other_software_takes_part_of_a_learned_window_bulk_yields() -> None:
    meter, _ = adaptive(start=9.5)
    window = Window(limit=50, window=10.0)
    await drive(meter, 300, window)  # alone: it learns 50 per 10 s
    window.others = 2.0  # another client now takes 20 of the 50
    stamps, _, throttled = await drive(meter, 300, window)
    assert pace(stamps[-150:]) <= 3.0  # it gave the room back
    assert pace(stamps[-150:]) >= 0.8 * 3.0
    assert throttled <= 0.05 * len(stamps)


def test_the_window_model_is_learned_from_the_one_request_that_waited_longer_than_the_refusal() -> (
    None
):
    model = SlidingWindowModel()
    for i in range(50):  # 50 requests in 2 s, the first of the run
        model.departed(i * 0.04)
    model.refused(2.0)  # the window was full at 2 s, still full at 6 s, had room at 12 s
    assert model.learn(first=2.0, last=6.0, through=12.0)
    assert (model.share, model.lo, model.hi) == (50, 6.0, 12.0)
    assert model.rate == pytest.approx(50 / 12.0)


def test_when_two_requests_waited_longer_than_the_refusal_the_later_one_is_its_oldest() -> None:
    """Either end of a lull could have aged out; the later one is taken (the shortest
    window that explains the refusal), and the answers to come narrow it."""
    model = SlidingWindowModel()
    for t in (0.0, 0.1, 0.2, 5.0, 5.1, 5.2):  # a lull of 4.8 s
        model.departed(t)
    assert model.learn(first=5.3, last=7.0, through=9.0)
    assert (model.share, model.lo, model.hi) == (3, pytest.approx(2.0), pytest.approx(4.0))


def test_answers_narrow_the_learned_window_and_a_refusal_with_room_shrinks_the_share() -> None:
    model = SlidingWindowModel()
    model.share, model.lo, model.hi = 10, 2.0, 8.0
    for i in range(40):  # 2 requests a second
        model.departed(i * 0.5)
    model.departed(20.0)
    model.answered(20.0)  # the 10th latest left 5 s before and was out: W <= 5 s
    assert model.hi == pytest.approx(5.0 + model.SLACK)
    model.departed(20.25)
    model.refused(20.25)  # the 10th latest left 4.75 s before and was still in: W > 4.75 s
    assert model.lo == pytest.approx(4.75 - model.SLACK)
    model.refused(21.0)  # refused with only 9 of bulk's within 5 s: others took the rest
    assert model.share == 9
