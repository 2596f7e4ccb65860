"""When a campaign is worth reading again: polls timed by what settles (pure).

The engine records how long each number took to settle in this run (from its submission to
the read that saw it settled). With enough samples, the wait before the next read of a
campaign is the shortest one after which at least half of its pending numbers (at least one)
are expected to have settled, each given how long it has already waited. The samples are
censored (only numbers that settled are in them), so a number that has waited longer than
every settle seen tells nothing and counts for nothing. When the samples cannot answer (numbers
submitted together have all waited past every settle seen: the samples are the early
settlers), the rate at which the campaign's pending count fell between the last looks times
the read (:func:`fall_wait`); when neither can, the engine keeps ``--poll-interval`` and its
back-off. The bounds always apply.

While only links are awaited, a read of every page is preceded by a glance (the first page
and, from Plivo, the campaign's counts: one request), and :func:`read_every_page` says when
the whole read is worth its requests.
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


def back_off(
    interval: float, progressed: bool, *, for_all: bool, floor: float, ceiling: float
) -> float:
    """The fixed back-off's next wait, for when neither estimate can say (within bounds).

    Waiting for half the pending numbers (each look reads them all): progress brings the
    wait back to ``floor``, a look without progress stretches it 1.5x. Waiting for all of
    them (``for_all``: glances, where only the last settle makes the whole read worth its
    requests): progress says the settles have begun, not that the last is near, so it keeps
    the wait; a look without progress doubles it.
    """
    if for_all:
        grown = interval if progressed else interval * 2
    else:
        grown = floor if progressed else interval * 1.5
    return min(max(grown, floor), ceiling)


def fall_wait(
    looks: Sequence[tuple[float, float]], share: float, *, floor: float, ceiling: float
) -> float | None:
    """Seconds until ``share`` of the pending numbers (at least one) are expected settled, at
    the rate their count fell between the last two looks (``(time, pending)``, oldest first).

    For when the settle samples cannot answer: numbers submitted together are all still
    pending past every settle seen so far (the samples are the early settlers), yet their
    count falls steadily. None unless the count fell over each of the last two intervals: a
    first fall may hide the wait before anything settles, which would make the rate too low.
    """
    if len(looks) < 3:
        return None
    (_, p0), (t1, p1), (t2, p2) = looks[-3:]
    if not (p0 > p1 > p2 > 0) or t2 <= t1:
        return None
    rate = (p1 - p2) / (t2 - t1)
    return min(max(max(1.0, share * p2) / rate, floor), ceiling)


def read_every_page(
    pending: int | None, first_page: tuple[int, int], *, glances: int, pages: int
) -> bool:
    """After a glance at a campaign (its first page, one request): is reading every page
    worth its requests now?

    ``pending``: how many of this run's numbers the campaign's counts say are still pending
    (None: the provider sent no counts). ``first_page``: this run's awaited numbers on the first
    page, and how many of them are still pending. ``glances``: glances since the campaign was
    last read whole; ``pages``: what reading it whole costs.

    Every page is read once the counts say nothing of ours is pending; without counts, once
    the first page's numbers (the oldest in a list kept in link order) have all settled, or
    when the first page holds none of ours and so tells nothing. The counts and the page are
    hints (other software may change the campaign): once the glances have cost as much as a
    whole read, every page is read anyway, so a wrong hint delays the truth, never hides it.
    """
    if glances >= pages:
        return True
    if pending is not None:
        return pending <= 0
    seen, still = first_page
    return seen == 0 or still == 0
