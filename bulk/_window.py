"""``--send-until WHEN``: when a run's send window closes, as epoch seconds.

WHEN is one of:

* an ISO 8601 time with its offset: ``2025-07-01T06:00:00+02:00`` or ``...Z``;
* ``HH:MM`` local time: the next such time (today if still ahead, else tomorrow). Around a
  daylight-saving change it is the next time the clock shows HH:MM: a time the clock skips
  (02:30 when clocks jump from 02:00 to 03:00) rolls forward by the jump (03:30), as
  :pep:`495`'s ``fold=0`` reads it; a time the clock shows twice is the next of the two;
* a duration from the start of the run: ``90s``, ``45m``, ``2h`` (decimals allowed: ``1.5h``).
"""

from __future__ import annotations

import re
from datetime import datetime, time, timedelta, tzinfo

from bulk._errors import ConfigError

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smh])$")
_CLOCK = re.compile(r"^(\d{1,2}):(\d{2})$")
_SECONDS = {"s": 1.0, "m": 60.0, "h": 3600.0}


def parse_send_until(when: str, now: datetime | None = None, tz: tzinfo | None = None) -> float:
    """WHEN as epoch seconds; ``now`` (aware or naive local, default: now) anchors relative forms;
    ``tz`` is the zone of ``HH:MM`` (None: the system's local time, daylight saving included).

    Raises :class:`ConfigError` naming the accepted forms when WHEN is none of them, and
    when the window it gives could never open: a moment not after ``now``, a duration of 0.
    """
    text = when.strip()
    now = (now or datetime.now()).astimezone()
    duration = _DURATION.match(text)
    if duration:
        length = float(duration.group(1)) * _SECONDS[duration.group(2)]
        if length <= 0:
            raise ConfigError(f"--send-until {when!r}: a window of no time sends nothing; give "
                              "a duration above 0, or leave the option out")
        return now.timestamp() + length
    clock = _CLOCK.match(text)
    if clock:
        hour, minute = int(clock.group(1)), int(clock.group(2))
        if hour > 23 or minute > 59:
            raise ConfigError(f"--send-until {when!r}: no such time of day")
        return next_clock_time(now, time(hour, minute), tz)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise ConfigError(
            f"--send-until {when!r}: give an ISO 8601 time with its offset "
            "(2025-07-01T06:00:00+02:00 or ...Z), HH:MM local time, or a duration (90s, 45m, 2h)"
        )
    if moment.timestamp() <= now.timestamp():
        raise ConfigError(
            f"--send-until {when!r}: that moment has passed, so nothing would be sent; give a "
            "later time, or leave the option out to send without a window"
        )
    return moment.timestamp()


def next_clock_time(now: datetime, wall: time, tz: tzinfo | None = None) -> float:
    """The first instant after ``now`` at which a clock in ``tz`` (None: the system's local
    time) shows ``wall``, as epoch seconds.

    A wall time the clock skips (spring forward) is read with ``fold=0``: the offset before the
    jump, so it rolls forward by the jump. A wall time the clock shows twice (fall back) is
    whichever of its two instants comes first after ``now``.
    """
    after = now.timestamp()
    day = datetime.fromtimestamp(after, tz).date()
    for ahead in range(3):  # today, tomorrow; a third day only if a zone skips a whole day
        local = datetime.combine(day + timedelta(days=ahead), wall, tzinfo=tz)
        instants = [local.replace(fold=fold).timestamp() for fold in (0, 1)]
        shown = [t for t in instants if _wall(t, tz) == local.replace(tzinfo=None)]
        for instant in sorted(set(shown or instants[:1])):
            if instant > after:
                return instant
    raise ConfigError(f"--send-until {wall:%H:%M}: the clock does not show that time soon")


def _wall(instant: float, tz: tzinfo | None) -> datetime:
    """What a clock in ``tz`` (None: local) shows at ``instant``, without zone or fold."""
    return datetime.fromtimestamp(instant, tz).replace(tzinfo=None, fold=0)
