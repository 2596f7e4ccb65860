"""The meters: evenly spaced rate limit, shared 429 gate, concurrency cap."""

from __future__ import annotations

import random
import time

import anyio

from bulk.engine import Meter, PauseGate


async def test_rate_limiter_spaces_requests_evenly_with_no_start_burst() -> None:
    meter = Meter(rate=50.0, concurrency=10)
    stamps: list[float] = []

    async def one() -> None:
        async with meter.slot():
            stamps.append(time.monotonic())

    async with anyio.create_task_group() as tg:
        for _ in range(20):
            tg.start_soon(one)
    # 50/s = 20 ms apart: the first requests do not leave together...
    assert stamps[1] - stamps[0] > 0.015
    assert stamps[2] - stamps[0] > 0.035
    # ...and the rate holds over the whole run: 19 intervals for 20 requests
    assert stamps[-1] - stamps[0] >= 19 * 0.02 * 0.95


async def test_rate_limiter_delivers_the_rate_it_was_asked_for() -> None:
    meter = Meter(rate=100.0, concurrency=4)
    start = time.monotonic()
    for _ in range(51):
        async with meter.slot():
            pass
    elapsed = time.monotonic() - start
    # 50 intervals of 10 ms: wake-up lag must not pile up (a bucket of 1 delivered ~10 % less)
    assert 0.45 <= elapsed <= 0.56


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
    gate = PauseGate(rng=random.Random(1))
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
    meter = Meter(rate=None, concurrency=5)
    meter.gate.pause(0.2)
    start = time.monotonic()
    async with meter.slot():
        pass
    assert time.monotonic() - start >= 0.19
