"""When a campaign is worth reading again: polls timed by what settles (pure).

The engine records how long each number took to settle in this run (from its submission to
the read that saw it settled). With enough samples, the wait before the next read of a
campaign is the shortest one after which at least half of its pending numbers (at least one)
are expected to have settled, each given how long it has already waited. The samples are
censored (only numbers that settled are in them), so a number that has waited longer than
every settle seen tells nothing and counts for nothing; when the samples cannot answer, the
engine keeps ``--poll-interval`` and its back-off. The bounds always apply.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence

#: settle samples needed before the estimate replaces the fixed back-off
MIN_SAMPLES = 5
#: at most this many points of each distribution enter the search (quantiles)
_POINTS = 40


def _quantiles(values: Sequence[float], points: int = _POINTS) -> list[float]:
    ordered = sorted(values)
    if len(ordered) <= points:
        return ordered
    step = (len(ordered) - 1) / (points - 1)
    return [ordered[round(i * step)] for i in range(points)]


def expected_settled(samples: Sequence[float], waited: Sequence[float], after: float) -> float:
    """How many of the pending numbers (each having ``waited`` seconds so far) are expected
    to have settled ``after`` more seconds, by the empirical settle-time distribution."""
    ordered = sorted(samples)
    n = len(ordered)
    total = 0.0
    for w in waited:
        done_by_now = bisect.bisect_right(ordered, w)
        left = n - done_by_now
        if left == 0:
            # waited past every settle seen: the samples say nothing about it (the slow
            # ones have simply not settled yet to be seen); it counts for nothing
            continue
        total += (bisect.bisect_right(ordered, w + after) - done_by_now) / left
    return total


def next_read_in(
    samples: Sequence[float], waited: Sequence[float], *, floor: float, ceiling: float
) -> float | None:
    """Seconds until reading the campaign is worth its requests; None without enough samples
    (the caller keeps its fixed back-off)."""
    if len(samples) < MIN_SAMPLES or not waited:
        return None
    target = max(1.0, len(waited) / 2)
    spots = _quantiles(waited, 20)
    scale = len(waited) / len(spots)
    gaps = {s - w for s in _quantiles(samples) for w in spots if s > w}
    for after in sorted({max(gap, floor) for gap in gaps}):
        if after >= ceiling:
            break
        if expected_settled(samples, spots, after) * scale >= target:
            return after
    # the samples cannot say when enough will settle (too few seen yet, or every pending
    # number has waited longer than any settle seen): the caller's back-off decides
    return None
