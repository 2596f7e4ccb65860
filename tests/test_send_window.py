"""``--send-until HH:MM`` across daylight-saving changes, and windows that could never open.

HH:MM is the next time the clock shows it, always after now: a wall time the clock skips
rolls forward by the jump (PEP 495's ``fold=0``), a wall time shown twice is the next of its
two instants. Fixed "now" instants in America/New_York (spring forward 2025-03-09 02:00 →
03:00, fall back 2025-11-02 02:00 → 01:00).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from datetime import time as wall_time
from zoneinfo import ZoneInfo

import pytest

from bulk._window import next_clock_time, parse_send_until

NY = ZoneInfo("America/New_York")
SPRING = datetime(2025, 3, 9, tzinfo=NY)  # 02:00 EST -> 03:00 EDT
FALL = datetime(2025, 11, 2, tzinfo=NY)  # 02:00 EDT -> 01:00 EST


def _at(day: datetime, hour: int, minute: int, fold: int = 0) -> datetime:
    return day.replace(hour=hour, minute=minute, fold=fold)


def _utc(instant: float) -> datetime:
    return datetime.fromtimestamp(instant, UTC)


def test_a_time_the_spring_change_skips_rolls_forward_past_now() -> None:
    now = _at(SPRING, 1, 45)  # EST, 06:45 UTC
    got = parse_send_until("02:30", now, NY)
    assert got - now.timestamp() == 45 * 60  # 02:30 EST is 03:30 EDT
    assert _utc(got) == datetime(2025, 3, 9, 7, 30, tzinfo=UTC)


def test_a_skipped_time_rolls_forward_even_when_the_hour_before_is_still_ahead() -> None:
    now = _at(SPRING, 1, 0)  # 01:30 EST is ahead, but the clock never shows 02:30 then
    assert _utc(parse_send_until("02:30", now, NY)) == datetime(2025, 3, 9, 7, 30, tzinfo=UTC)


def test_a_time_shown_twice_is_its_second_instant_once_the_first_passed() -> None:
    now = _at(FALL, 1, 20, fold=1)  # 01:20 EST, the second 01:20 (06:20 UTC)
    got = parse_send_until("01:50", now, NY)
    assert got - now.timestamp() == 30 * 60
    assert _utc(got) == datetime(2025, 11, 2, 6, 50, tzinfo=UTC)  # 01:50 EST


def test_before_the_fall_change_a_time_shown_twice_is_its_first_instant() -> None:
    now = _at(FALL, 1, 20)  # 01:20 EDT
    assert parse_send_until("01:50", now, NY) - now.timestamp() == 30 * 60  # 01:50 EDT
    now = _at(FALL, 1, 55)  # 01:55 EDT: 01:50 EDT passed, 01:50 EST is 55 minutes away
    assert parse_send_until("01:50", now, NY) - now.timestamp() == 55 * 60


def test_a_time_shown_twice_and_passed_twice_is_tomorrow() -> None:
    now = _at(FALL, 1, 55, fold=1)  # 01:55 EST
    got = parse_send_until("01:50", now, NY)
    assert datetime.fromtimestamp(got, NY) == datetime(2025, 11, 3, 1, 50, tzinfo=NY)


def _first_minute_showing(after: datetime, hour: int, minute: int) -> float:
    """The oracle: walk UTC forward in 10-minute steps from the first 10-minute mark after
    ``after`` (the DST jumps and the times tried are whole multiples of 10 minutes) to the
    first instant the clock shows HH:MM."""
    start = after.astimezone(UTC)
    step = start.replace(minute=start.minute - start.minute % 10) + timedelta(minutes=10)
    for _ in range(6 * 30):
        local = step.astimezone(NY)
        if (local.hour, local.minute) == (hour, minute):
            return step.timestamp()
        step += timedelta(minutes=10)
    raise AssertionError(f"the clock does not show {hour:02d}:{minute:02d} within 30 hours")


def _around_the_changes() -> Iterator[datetime]:
    for day in (SPRING, FALL):
        start = day.astimezone(UTC)
        for quarter in range(4 * 5):  # every 15 minutes from midnight to 05:00
            yield (start + timedelta(minutes=15 * quarter)).astimezone(NY)


@pytest.mark.parametrize("now", list(_around_the_changes()), ids=lambda d: d.isoformat())
def test_every_clock_time_is_the_first_future_instant_the_clock_shows_it(now: datetime) -> None:
    for hour, minute in [(h, m) for h in range(5) for m in range(0, 60, 10)] + [(12, 0)]:
        got = next_clock_time(now, wall_time(hour, minute), NY)
        assert got > now.timestamp(), (hour, minute)
        skipped = now.date() == SPRING.date() and hour == 2
        if skipped and now.astimezone(UTC) < datetime(2025, 3, 9, 7, tzinfo=UTC) + timedelta(
            minutes=minute
        ):
            assert got == _at(SPRING, 3, minute).timestamp(), (hour, minute)  # rolled forward
        else:
            assert got == _first_minute_showing(now, hour, minute), (hour, minute)


@pytest.fixture
def new_york_local_time(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The process's local time zone set to America/New_York, restored after."""
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.usefixtures("new_york_local_time")
def test_the_systems_local_time_follows_the_same_rules() -> None:
    spring = parse_send_until("02:30", _at(SPRING, 1, 45))
    assert _utc(spring) == datetime(2025, 3, 9, 7, 30, tzinfo=UTC)
    fall = parse_send_until("01:50", _at(FALL, 1, 20, fold=1))
    assert _utc(fall) == datetime(2025, 11, 2, 6, 50, tzinfo=UTC)
