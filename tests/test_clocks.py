"""One clock protocol for the engine, the meters, the sandbox and the testing harness, and
every clock bulk ships conforming to it."""

from __future__ import annotations

import ast
from datetime import UTC, datetime, timedelta
from pathlib import Path

import anyio
import pytest

import bulk
import bulk.engine
import bulk.sandbox
import bulk.testing
from bulk._clock import (
    EPOCH,
    Clock,
    LoopClock,
    ManualClock,
    SystemClock,
    VirtualClock,
    wall_at,
)
from bulk.bench._limitsim import SimClock
from bulk.testing import run_in_virtual_time

PACKAGE = Path(bulk.__file__).parent


def test_the_package_defines_one_clock_protocol() -> None:
    protocols = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef) and "Clock" in node.name:
                bases = {getattr(b, "id", getattr(b, "attr", "")) for b in node.bases}
                if "Protocol" in bases:
                    protocols.append(f"{path.relative_to(PACKAGE)}:{node.name}")
    assert protocols == ["_clock.py:Clock"]


def test_the_public_clock_names_are_the_one_protocol_and_its_clocks() -> None:
    assert bulk.engine.Clock is bulk.engine.MeterClock is Clock
    assert bulk.engine.SystemClock is bulk.engine.MonotonicClock is bulk.sandbox.SystemClock
    assert bulk.engine.VirtualClock is VirtualClock
    assert bulk.sandbox.ManualClock is ManualClock
    assert bulk.testing.LoopClock is LoopClock


def _typed(clock: Clock) -> Clock:
    """Typed as the protocol: mypy checks each clock below conforms to it."""
    return clock


async def _sleep_moves_both_times(clock: Clock) -> None:
    wall, mono = clock.time(), clock.monotonic()
    await clock.sleep(0.25)
    assert clock.monotonic() - mono >= 0.25 - 1e-9
    assert clock.time() - wall == pytest.approx(clock.monotonic() - mono, abs=0.05)


def test_a_virtual_clock_moves_by_each_sleep() -> None:
    clock = _typed(VirtualClock())
    anyio.run(_sleep_moves_both_times, clock, backend="asyncio")


def test_a_loop_clock_reads_the_virtual_loops_time() -> None:
    async def main() -> None:
        clock = _typed(LoopClock())
        assert clock.time() == EPOCH + clock.monotonic()
        await _sleep_moves_both_times(clock)

    run_in_virtual_time(main)


def test_a_manual_clock_moves_when_advanced_and_starts_its_wall_time_at_the_epoch() -> None:
    async def main() -> None:
        clock = ManualClock()
        _typed(clock)
        assert wall_at(clock) == datetime(2025, 1, 1, tzinfo=UTC)
        assert clock.now() == clock.monotonic()

        async def advance_once_asleep() -> None:
            await clock.until_sleeping()
            clock.advance(0.25)

        async with anyio.create_task_group() as tg:
            tg.start_soon(advance_once_asleep)
            await clock.sleep(0.25)
        assert wall_at(clock) == datetime(2025, 1, 1, tzinfo=UTC) + timedelta(seconds=0.25)

    anyio.run(main, backend="asyncio")


def test_a_sim_clock_moves_to_the_next_wake_up() -> None:
    async def main() -> None:
        clock = SimClock()
        await clock.run(lambda: _sleep_moves_both_times(_typed(clock)))

    anyio.run(main, backend="asyncio")


async def test_the_system_clock_reads_wall_and_monotonic_time() -> None:
    clock = _typed(SystemClock())
    before = datetime.now(UTC)
    assert abs((wall_at(clock) - before).total_seconds()) < 1.0
    mono = clock.monotonic()
    await clock.sleep(0.01)
    assert clock.monotonic() - mono >= 0.009


def test_wall_at_maps_a_monotonic_reading_to_its_wall_time() -> None:
    clock = VirtualClock(start=EPOCH)
    assert wall_at(clock, EPOCH + 90.0) == datetime(2025, 1, 1, 0, 1, 30, tzinfo=UTC)
    assert wall_at(clock, EPOCH - 60.0) == datetime(2024, 12, 31, 23, 59, tzinfo=UTC)
