"""--send-until WHEN: ISO 8601 with offset, HH:MM local (the next such time), or a duration."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bulk import ConfigError
from bulk._window import parse_send_until

NOW = datetime(2025, 7, 1, 12, 30, 0).astimezone()  # local time, as a user's clock


@pytest.mark.parametrize(
    ("when", "seconds"), [("90s", 90), ("45m", 2700), ("2h", 7200), ("1.5h", 5400)]
)
def test_a_duration_counts_from_now(when: str, seconds: float) -> None:
    assert parse_send_until(when, NOW) == NOW.timestamp() + seconds


def test_an_iso_time_with_its_offset_is_that_instant() -> None:
    expected = datetime(2025, 7, 2, 4, 0, tzinfo=UTC).timestamp()  # after NOW in any zone
    assert parse_send_until("2025-07-02T06:00:00+02:00", NOW) == expected
    assert parse_send_until("2025-07-02T04:00:00Z", NOW) == expected


def test_a_local_clock_time_still_ahead_today_is_today() -> None:
    got = datetime.fromtimestamp(parse_send_until("13:15", NOW)).astimezone()
    assert got - NOW == timedelta(minutes=45)


def test_a_local_clock_time_already_past_today_is_tomorrow() -> None:
    got = datetime.fromtimestamp(parse_send_until("06:00", NOW))
    assert (got.date(), got.hour, got.minute) == (NOW.date() + timedelta(days=1), 6, 0)


def test_the_current_minute_itself_is_tomorrow_not_now() -> None:
    got = parse_send_until("12:30", NOW)
    assert got > NOW.timestamp() + 23 * 3600


@pytest.mark.parametrize(
    "when", ["2025-07-01T06:00:00", "tomorrow", "25:00", "12:60", "90", "5d", ""]
)
def test_anything_else_is_refused_naming_the_accepted_forms(when: str) -> None:
    with pytest.raises(ConfigError, match="--send-until"):
        parse_send_until(when, NOW)
