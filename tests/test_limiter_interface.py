"""The meters' rate limiters behind one interface, and the fixed rate that ships (aiolimiter)
pacing on a virtual-time event loop exactly as the clock-driven twin paces on a
:class:`VirtualClock`."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import anyio
import pytest

from bulk._clock import REAL_CLOCK, Clock, LoopClock, SystemClock, VirtualClock
from bulk.engine import AioRate, EvenRate, Limiter, Meter, PauseGate
from bulk.engine._limits import AdaptiveRate
from bulk.engine._rate import fixed_rate
from bulk.testing import run_in_virtual_time


def _as_limiter(limiter: Limiter) -> Limiter:
    """Typed as the interface: mypy checks each limiter below conforms to it."""
    return limiter


@pytest.mark.parametrize(
    "make", [lambda: AioRate(20.0), lambda: EvenRate(20.0, VirtualClock())], ids=["aio", "even"]
)
def test_a_fixed_rate_ignores_how_requests_went(make: Callable[[], Limiter]) -> None:
    limiter = _as_limiter(make())
    assert limiter.adaptive is False
    assert limiter.rate == limiter.current_rate == limiter.resume_rate == 20.0
    limiter.departed(1000.0)
    limiter.on_success(1000.0)
    assert limiter.on_throttle(1000.0, None) is False
    assert limiter.full_for() == 0.0
    limiter.hold_until(2000.0)
    assert limiter.rate == limiter.current_rate == limiter.resume_rate == 20.0


def test_an_adaptive_rate_reports_where_it_settled_and_cuts_on_a_throttle() -> None:
    clock = VirtualClock()
    limiter = _as_limiter(AdaptiveRate(20.0, 100.0, clock))
    assert limiter.adaptive is True
    assert limiter.current_rate == limiter.rate == 20.0
    limiter.departed(clock.monotonic())
    assert limiter.on_throttle(clock.monotonic(), None) is True
    assert limiter.rate < 20.0


def test_a_meter_is_adaptive_exactly_when_its_limiter_is() -> None:
    clock = VirtualClock()
    assert Meter(20.0, 2, clock=clock, adaptive=True).adaptive is True
    assert Meter(20.0, 2, clock=clock).adaptive is False
    assert Meter(None, 2, clock=clock, adaptive=True).adaptive is False


@pytest.mark.parametrize(
    ("clock", "kind"),
    [(REAL_CLOCK, AioRate), (SystemClock(), AioRate), (LoopClock(), AioRate),
     (VirtualClock(), EvenRate)],
)
def test_the_fixed_rate_is_aiolimiter_wherever_the_clock_is_the_event_loops(
    clock: Clock, kind: type
) -> None:
    assert type(fixed_rate(10.0, clock)) is kind


async def _departures(meter: Meter, clock: Clock, count: int, concurrency: int) -> list[float]:
    stamps: list[float] = []

    async def one() -> None:
        async with meter.slot():
            stamps.append(clock.monotonic())

    for _ in range(count // concurrency):
        async with anyio.create_task_group() as tg:
            for _ in range(concurrency):
                tg.start_soon(one)
    return stamps


def _shipped(rate: float, count: int, concurrency: int) -> list[float]:
    """Departures through the meter a production lane builds, on a virtual-time loop."""

    async def main() -> list[float]:
        clock = LoopClock()
        meter = Meter(rate, concurrency, clock=clock)
        assert type(meter._limiter) is AioRate  # the limiter that ships for a fixed rate
        return await _departures(meter, clock, count, concurrency)

    return run_in_virtual_time(main)


def test_aiolimiter_on_virtual_time_spaces_requests_evenly_with_no_start_burst() -> None:
    stamps = _shipped(50.0, 40, 8)
    gaps = [b - a for a, b in itertools.pairwise(stamps)]
    assert len(stamps) == 40
    assert gaps[0] == pytest.approx(0.02, abs=1e-6)  # the second leaves one interval later
    assert all(g == pytest.approx(0.02, abs=1e-6) for g in gaps)
    assert stamps[-1] - stamps[0] == pytest.approx(39 * 0.02, abs=1e-5)


def test_aiolimiter_on_virtual_time_lets_at_most_rate_times_w_plus_two_leave_in_any_window(
) -> None:
    stamps = _shipped(100.0, 60, 6)
    for i, first in enumerate(stamps):
        for window in (0.0, 0.01, 0.05, 0.2):
            inside = sum(1 for s in stamps[i:] if s - first <= window + 1e-9)
            assert inside <= 100.0 * window + 2


def test_aiolimiter_and_its_clock_driven_twin_send_at_the_same_instants() -> None:
    shipped = _shipped(25.0, 30, 5)

    async def twin() -> list[float]:
        clock = VirtualClock()
        meter = Meter(25.0, 5, gate=PauseGate(clock=clock))
        assert type(meter._limiter) is EvenRate
        return await _departures(meter, clock, 30, 5)

    stamps = anyio.run(twin, backend="asyncio")
    assert [s - stamps[0] for s in stamps] == pytest.approx(
        [s - shipped[0] for s in shipped], abs=1e-6
    )
