"""The meters: evenly spaced rate limit, shared 429 gate, concurrency cap.

Times are read on a :class:`VirtualClock` the meters run on, so a loaded machine cannot
stretch them; ``lag`` plays the late wake-ups of a loaded event loop.
"""

from __future__ import annotations

import random
import time

import anyio
import pytest

from bulk.engine import Meter, MonotonicClock, PauseGate, VirtualClock


async def test_rate_limiter_spaces_requests_evenly_with_no_start_burst() -> None:
    clock = VirtualClock()
    meter = Meter(rate=50.0, concurrency=10, clock=clock)
    stamps: list[float] = []

    async def one() -> None:
        async with meter.slot():
            stamps.append(clock.monotonic())

    async with anyio.create_task_group() as tg:
        for _ in range(20):
            tg.start_soon(one)
    # 50/s = 20 ms apart: the first requests do not leave together...
    assert stamps[1] - stamps[0] > 0.015
    assert stamps[2] - stamps[0] > 0.035
    # ...and the rate holds over the whole run: 19 intervals for 20 requests
    assert stamps[-1] - stamps[0] >= 19 * 0.02 * 0.95


@pytest.mark.parametrize("lag", [0.0, 0.003])
async def test_rate_limiter_delivers_the_rate_it_was_asked_for(lag: float) -> None:
    clock = VirtualClock(lag=lag)
    meter = Meter(rate=100.0, concurrency=4, clock=clock)
    start = clock.monotonic()
    for _ in range(51):
        async with meter.slot():
            pass
    elapsed = clock.monotonic() - start
    # 50 intervals of 10 ms: wake-up lag must not pile up (a bucket of 1 delivered ~10 % less;
    # with 3 ms late wake-ups it would take 50 x 13 ms = 0.65 s)
    assert 0.45 <= elapsed <= 0.56


async def test_rate_limiter_lets_at_most_rate_times_w_plus_two_leave_in_any_window() -> None:
    clock = VirtualClock(lag=0.004)
    meter = Meter(rate=100.0, concurrency=8, clock=clock)
    stamps: list[float] = []

    async def one() -> None:
        async with meter.slot():
            stamps.append(clock.monotonic())

    for burst in (30, 5, 30):  # idle pauses between bursts let the bucket drain
        async with anyio.create_task_group() as tg:
            for _ in range(burst):
                tg.start_soon(one)
        await clock.sleep(0.5)
    assert len(stamps) == 65
    for i, first in enumerate(stamps):
        for window in (0.0, 0.01, 0.05, 0.2):
            inside = sum(1 for s in stamps[i:] if s - first <= window + 1e-9)
            assert inside <= 100.0 * window + 2


async def test_concurrency_cap_bounds_requests_in_flight() -> None:
    meter = Meter(rate=None, concurrency=3)
    inflight = 0
    peak = 0

    async def one() -> None:
        nonlocal inflight, peak
        async with meter.slot():
            inflight += 1
            peak = max(peak, inflight)
            await anyio.sleep(0.01)
            inflight -= 1

    async with anyio.create_task_group() as tg:
        for _ in range(12):
            tg.start_soon(one)
    assert peak == 3


def test_pause_honours_retry_after_exactly() -> None:
    gate = PauseGate(rng=random.Random(1), clock=VirtualClock())
    assert gate.pause(2.0) == 2.0
    assert 1.9 < gate.paused_for() <= 2.0


def test_pause_without_retry_after_backs_off_exponentially_with_jitter_and_a_cap() -> None:
    gate = PauseGate(base=1.0, cap=8.0, rng=random.Random(1))
    delays = [gate.pause(None) for _ in range(6)]
    ceilings = [1, 2, 4, 8, 8, 8]
    for delay, ceiling in zip(delays, ceilings, strict=True):
        assert ceiling / 2 <= delay <= ceiling
    gate.clear_streak()
    assert gate.pause(None) <= 1.0


async def test_every_sender_waits_at_a_closed_gate() -> None:
    clock = VirtualClock()
    meter = Meter(rate=None, concurrency=5, clock=clock)
    meter.gate.pause(0.2)
    start = clock.monotonic()
    async with meter.slot():
        pass
    assert clock.monotonic() - start >= 0.19
    assert clock.monotonic() - start == pytest.approx(0.2)


def test_a_meter_runs_on_its_gates_clock_and_on_the_real_one_by_default() -> None:
    clock = VirtualClock()
    assert Meter(rate=10.0, concurrency=1, gate=PauseGate(clock=clock)).clock is clock
    assert isinstance(Meter(rate=10.0, concurrency=1).clock, MonotonicClock)
    assert isinstance(Meter(rate=10.0, concurrency=1).gate.clock, MonotonicClock)


async def test_the_real_clock_meter_is_aiolimiter_with_no_start_burst() -> None:
    from bulk.engine._limits import AioRate

    meter = Meter(rate=50.0, concurrency=4)
    assert isinstance(meter._limiter, AioRate)
    start = time.monotonic()
    for _ in range(6):
        async with meter.slot():
            pass
    # primed bucket: no burst, six requests are five intervals apart at least (a lower
    # bound only: a loaded machine can make it slower, never faster)
    assert time.monotonic() - start >= 5 / 50.0 - 0.005
