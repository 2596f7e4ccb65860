"""``--send-until WHEN``: when a run's send window closes, as epoch seconds.

WHEN is one of:

* an ISO 8601 time with its offset: ``2025-07-01T06:00:00+02:00`` or ``...Z``;
* ``HH:MM`` local time: the next such time (today if still ahead, else tomorrow);
* a duration from the start of the run: ``90s``, ``45m``, ``2h`` (decimals allowed: ``1.5h``).
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from bulk._errors import ConfigError

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smh])$")
_CLOCK = re.compile(r"^(\d{1,2}):(\d{2})$")
_SECONDS = {"s": 1.0, "m": 60.0, "h": 3600.0}


def parse_send_until(when: str, now: datetime | None = None) -> float:
    """WHEN as epoch seconds; ``now`` (aware or naive local, default: now) anchors relative forms.

    Raises :class:`ConfigError` naming the accepted forms when WHEN is none of them.
    """
    text = when.strip()
    now = (now or datetime.now()).astimezone()
    duration = _DURATION.match(text)
    if duration:
        return now.timestamp() + float(duration.group(1)) * _SECONDS[duration.group(2)]
    clock = _CLOCK.match(text)
    if clock:
        hour, minute = int(clock.group(1)), int(clock.group(2))
        if hour > 23 or minute > 59:
            raise ConfigError(f"--send-until {when!r}: no such time of day")
        local = now.replace(tzinfo=None)
        target = local.replace(hour=hour, minute=minute, second=0, microsecond=0)
        if target <= local:
            target += timedelta(days=1)
        return target.astimezone().timestamp()  # naive = local time, DST included
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise ConfigError(
            f"--send-until {when!r}: give an ISO 8601 time with its offset "
            "(2025-07-01T06:00:00+02:00 or ...Z), HH:MM local time, or a duration (90s, 45m, 2h)"
        )
    return moment.timestamp()
