"""Hostile 429 patterns against the meters, on a :class:`VirtualClock`: storms that are not a
window, 429s that never end, a provider saying "now" forever. The provider is simulated as in
``test_adaptive_rate`` (each request answered when it leaves, one after another).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

import pytest

from bulk.engine._limits import AdaptiveRate, SlidingWindowModel
from tests.test_adaptive_rate import adaptive, drive


def storm(length: int, after: float, start: float) -> tuple[list[float], Callable[[float], bool]]:
    """An answer function: ``length`` 429s in a row from ``after`` seconds into the run (not
    about bulk's rate: a provider's hiccup, ``bulk sandbox --burst-429-length``)."""
    refused: list[float] = []
    left = length

    def answer(now: float) -> bool:
        nonlocal left
        if now - start >= after and left:
            left -= 1
            refused.append(now)
            return False
        return True

    return refused, answer


@pytest.mark.parametrize("retry_after", [1.0, None])
async def test_a_long_storm_early_in_slow_start_is_not_probed_for_days(
    retry_after: float | None,
) -> None:
    """20 429s in a row a second into a ``--rate auto`` run. Taken for a first window filling,
    each probe waited twice the run's age: the 20th at 6 days, and the "window" learned from
    it (525,000 s) held the run at 0.5/s. A refusal outlasting the longest window the model can
    learn (``HORIZON``) is a storm: probed at the gate's capped pause, never learned."""
    meter, clock = adaptive(start=9.5)
    start = clock.monotonic()
    refused, answer = storm(20, 1.0, start)
    stamps, _, throttled = await drive(meter, 2000, answer, retry_after)
    assert throttled == 20
    limiter = meter._limiter
    assert isinstance(limiter, AdaptiveRate)
    # no probe later than the longest learnable window after the first request, then the
    # gate's pause (at most 30 s, or Retry-After)
    horizon = SlidingWindowModel.HORIZON
    late = [b - a for a, b in itertools.pairwise(refused) if b - start > horizon]
    assert late  # the storm outlasted it
    assert all(g <= 30.0 + 1.0 for g in late)
    assert limiter.window.share is None  # no window learned from it
    assert clock.monotonic() - start <= horizon + 20 * 31.0 + 60.0
    tail = stamps[-500:]
    assert (len(tail) - 1) / (tail[-1] - tail[0]) >= 50.0  # back near the ceiling
