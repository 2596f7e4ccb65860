"""What the engine knows of each campaign it watches, in one place, and the pure rules that
say how to look at it next.

One :class:`CampaignWatch` per campaign replaces what were parallel maps keyed by campaign
(size, next read, back-off, others' pending numbers, glances, lines, looks). The rules below
take values and return values; the poller (:mod:`bulk.engine._run`) applies them.

Two lanes per campaign:

* the **fast lane**: rows whose wait is still within the settle times seen in this run. They
  are read together, the cheaper way (one read per number, or the campaign's paged list), and
  a glance's counts *time* the whole read (read once every one of ours settled), and never
  hold a settle they showed back past :func:`unseen_budget` (a few poll intervals, or a
  few times the settle's own duration when settles take long);
* the **slow lane**: rows that have waited well past every settle seen (:func:`slow_after`).
  Each is read alone, rarely (:func:`slow_wait`), until it settles or its deadline; it no
  longer sets the pace of the fast lane, and its pending count no longer makes a glance's
  counts say "nothing of yours settled".

A glance's counts that stop falling while only a few of ours are pending
(:func:`count_stalled`) say the rest look stuck: the campaign is read whole at once, so the
settled rows are known without waiting out the budget, and the stuck ones go on to the slow
lane. When most of ours settled between two looks and only a few are left, the look that
tells stuck from slow comes half a poll interval later (:func:`confirm_wait`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

#: settle samples needed before a row may move to the slow lane
SLOW_MIN_SAMPLES = 5
#: a row moves to the slow lane once it has waited this many times the longest settle seen
SLOW_FACTOR = 3.0
#: ... and at least this many poll intervals
SLOW_MIN_INTERVALS = 4.0
#: the fast lane is read at least every this many poll intervals (so a row that settled is
#: known within about twice that: the look that sees it, and the read it times)
FAST_INTERVALS = 4.0
#: a pending count of ours that stops falling at no more than this share of the fast lane
#: (at least one number) says the rest look stuck
STALLED_SHARE = 0.1
#: once the count has fallen to a few of ours, the look that tells stuck from slow comes
#: this share of a poll interval later
CONFIRM_SHARE = 0.5


@dataclass(slots=True)
class CampaignWatch:
    """One campaign, as the engine watches it."""

    #: numbers in its list at the last whole read (or its first page's counts); None: unknown
    size: int | None = None
    #: not read again before this (epoch seconds)
    next_read: float = 0.0
    #: the fixed back-off's current wait (None: the poll interval)
    interval: float | None = None
    #: pending numbers not this run's at the last whole read: what the campaign's pending
    #: count should fall to once every one of ours has settled (None: no whole read yet)
    others_pending: int | None = None
    #: glances (first page only) since the last whole read
    glances: int = 0
    #: the last looks: (time, how many of ours were still pending), oldest first
    looks: list[tuple[float, float]] = field(default_factory=list)
    #: when the campaign was last read (a glance, a whole read, single reads), if ever
    last_read: float | None = None
    #: when the last whole read (or read of every awaited number) was
    last_whole: float | None = None
    #: the look before the one whose counts first showed a settle no read has decided yet:
    #: that settle happened after it (None: nothing settled unseen)
    unseen_since: float | None = None


def pages_of(size: int | None, page_size: int) -> int:
    """Requests a whole read of a list of ``size`` numbers costs (at least one)."""
    return max(1, math.ceil((size or 0) / max(1, page_size)))


def read_by_number(awaited: int, size: int | None, page_size: int) -> bool:
    """Reading each awaited number alone costs fewer requests than paging the list (a
    campaign of unknown size is paged: its first page tells its size)."""
    if size is None:
        return False
    return awaited <= pages_of(size, page_size)


def slow_after(samples: Sequence[float], poll_interval: float) -> float | None:
    """Seconds after its submission past which a row is in the slow lane: well past every
    settle seen in this run. None until enough rows have settled to say."""
    if len(samples) < SLOW_MIN_SAMPLES:
        return None
    return max(SLOW_FACTOR * max(samples), SLOW_MIN_INTERVALS * poll_interval)


def slow_wait(previous: float | None, *, poll_interval: float, ceiling: float) -> float:
    """The wait before a slow-lane row's next read: it doubles from two poll intervals up to
    ``ceiling`` (the caller also stops it at the row's deadline)."""
    start = 2.0 * poll_interval
    grown = start if previous is None else previous * 2.0
    return max(poll_interval, min(grown, ceiling))


def fast_ceiling(poll_interval: float, poll_max_interval: float) -> float:
    """The longest wait between two looks at a campaign's fast lane."""
    return max(poll_interval, min(poll_max_interval, FAST_INTERVALS * poll_interval))


def unseen_budget(
    poll_interval: float, poll_max_interval: float, settled_after: float | None
) -> float:
    """How long a settle the counts showed may go unread: the fast ceiling, or
    :data:`SLOW_FACTOR` times ``settled_after`` (how long after its submission the first
    unread settle happened, at the least) when that is longer. Settles that take a minute
    wait for the campaign's last one (one whole read confirms them all, as the counts time
    it); settles that take seconds are read within a few poll intervals."""
    ceiling = fast_ceiling(poll_interval, poll_max_interval)
    return max(ceiling, SLOW_FACTOR * max(0.0, settled_after or 0.0))


def count_stalled(looks: Sequence[tuple[float, float]], pending: float, *, ours: int) -> bool:
    """Do the counts say the numbers of ours still pending look stuck? ``looks``: the earlier
    looks' ``(time, pending)``, oldest first; ``pending``: how many of the ``ours`` fast-lane
    rows this look's counts say are pending. Yes when the count did not fall since the last
    look and what is left is at most :data:`STALLED_SHARE` of ours (at least one number):
    the settles have stopped, not slowed, and waiting longer confirms nothing more."""
    if not looks or pending <= 0:
        return False
    return pending >= looks[-1][1] and _few(pending, ours)


def _few(pending: float, ours: int) -> bool:
    return 0 < pending <= max(1.0, STALLED_SHARE * ours)


def confirm_wait(
    pending: float, previous: float, ours: int, *, poll_interval: float
) -> float | None:
    """The wait before the look that tells whether the few numbers of ours still pending are
    stuck (:func:`count_stalled`), when most of the ``ours`` fast-lane rows settled between
    the last look (``previous`` pending) and this one (``pending``) and only a few, at most
    :data:`STALLED_SHARE`, are left: settles that short beside the poll interval leave the
    rest settled by then or stuck, so :data:`CONFIRM_SHARE` of a poll interval tells which,
    and the settled rows beside stuck ones are known within about one and a half poll
    intervals. None otherwise: the ordinary timing applies (a count falling over several
    looks is timed by its fall)."""
    if not _few(pending, ours) or previous - pending < ours / 2:
        return None
    return CONFIRM_SHARE * poll_interval


def read_after_glance(
    pending: int | None,
    first_page: tuple[int, int],
    *,
    glances: int,
    pages: int,
    unseen_for: float | None,
    budget: float,
    stalled: bool = False,
) -> bool:
    """After a glance (one request): read every page now?

    ``pending``: how many of the fast lane's rows the counts say are still pending (None:
    no counts); ``first_page``: the awaited rows the first page showed, and how many of those
    are pending; ``unseen_for``: how long ago the first settle no read has decided happened
    at the latest (None: none, or no counts to tell). With counts, every page is read once
    nothing of ours is pending (one whole read confirms the lot) or once a settle has gone
    unread for ``budget`` (:func:`unseen_budget`: numbers that stay pending no longer keep
    the settled ones waiting), or at once when a settle went unread and the count has
    ``stalled`` (:func:`count_stalled`: the rest look stuck); without counts, by the first
    page (all of ours there settled, or none of ours there). Once the glances have cost as
    much as a whole read, every page is read anyway (the counts are hints).
    """
    if glances >= pages:
        return True
    if pending is None:
        seen, still = first_page
        return seen == 0 or still == 0
    if pending <= 0:
        return True
    return unseen_for is not None and (stalled or unseen_for >= budget)
