"""``--rate auto`` against undocumented limits of every shape, in virtual time.

The provider is simulated by :mod:`bulk.bench._limitsim`: the sandbox's own limiters (a
sliding window, a fixed window, a token bucket; ``bulk sandbox --rate-shape``) answer requests
from eight senders sharing one real :class:`~bulk.engine.Meter`, each request 20-60 ms in
flight, on a clock that jumps to the next wake-up: minutes of provider time in milliseconds.
Behaviour only (shares and bounds); the figures live in ``python -m bulk.bench.limits``.
"""

from __future__ import annotations

import anyio
import pytest

from bulk.bench._limitsim import Outcome, Provider, SimClock, auto_meter, run, simulate
from bulk.engine._limits import AdaptiveRate


def limiter(meter: object) -> AdaptiveRate:
    found = getattr(meter, "_limiter", None)
    assert isinstance(found, AdaptiveRate)
    return found


@pytest.mark.parametrize(
    ("shape", "limit", "window", "duration"),
    [
        ("sliding", 20, 1.0, 120.0),
        ("sliding", 100, 10.0, 300.0),
        ("fixed", 100, 10.0, 300.0),
        ("bucket", 20, 1.0, 120.0),
    ],
)
def test_auto_rate_uses_most_of_a_limit_of_any_shape_with_few_429s(
    shape: str, limit: int, window: float, duration: float
) -> None:
    """Retry-After in whole seconds rounded up (a 1-s window's 429 costs a whole second)."""
    provider = Provider(shape, limit, window, retry_after="ceil")
    out = run(provider, duration=duration)
    assert out.share(provider) >= 0.85
    assert out.refused_share <= 0.03


@pytest.mark.parametrize(("limit", "window"), [(300, 10.0), (100, 10.0)])
def test_a_learned_window_whose_429s_say_retry_after_1_is_used_after_each_pause(
    limit: int, window: float
) -> None:
    """The sandbox's AgentMessage answers every 429 with ``Retry-After: 1`` whatever the
    window. After a 429 the window explains, bulk waits until its oldest request ages out,
    then goes on at the window's pace; it must not wait until the window has drained to the
    probes' rate, which held a 300-per-10-s window at 72 %."""
    provider = Provider("sliding", limit, window, retry_after=1.0)
    out = run(provider, duration=60.0)
    assert out.share(provider) >= 0.85


def test_a_limit_that_drops_mid_run_is_followed_down_and_one_that_rises_up() -> None:
    provider = Provider("sliding", 30, 1.0, retry_after="ceil", changes=((60.0, 15), (120.0, 40)))
    out = run(provider, duration=240.0)
    # each phase after a settling time: most of what the limit admits, few 429s overall
    assert out.share(provider, since=0.0) >= 0.75
    dropped = [t - out.start for t in out.accepted if 70.0 <= t - out.start < 120.0]
    assert len(dropped) <= 15 * 50 + 15  # never above the lower limit for long
    assert len(dropped) >= 0.8 * 15 * 50
    risen = [t for t in out.accepted if 180.0 <= t - out.start < 240.0]
    assert len(risen) >= 0.8 * 40 * 60
    assert out.refused_share <= 0.03


@pytest.mark.parametrize(("window", "kept"), [(1.0, 0.85), (10.0, 0.95)])
def test_a_short_storm_of_429s_does_not_lower_the_learned_pace(window: float, kept: float) -> None:
    """Four 429s in a row with Retry-After 1, not about the rate: paused for, then the pace
    goes on where it was (a 10-s window learned: untouched; a 1-s window, none learned: back
    at once to the plateau just under the limit it holds)."""

    async def go() -> tuple[float, float, Outcome, Outcome]:
        clock = SimClock()
        meter = auto_meter(clock)
        calm = Provider("sliding", int(20 * window), window, retry_after=1.0)
        before = await simulate(meter, calm, clock, duration=120.0)
        rate = limiter(meter).settled
        calm.storm_length, calm._storm_left = 4, 4  # the next four requests: 429
        after = await simulate(meter, calm, clock, duration=10.0, seed=1)
        return rate, limiter(meter).settled, before, after

    before_rate, after_rate, _, after = anyio.run(go, backend="asyncio")
    assert after.refused >= 4
    assert after_rate >= kept * before_rate
    # the storm costs its pauses (about a second each), not a slower pace after them
    admitted = len(after.accepted)
    assert admitted >= 0.9 * before_rate * (10.0 - 4 * 1.2)


def test_storms_of_429s_never_collapse_auto_below_the_fixed_default() -> None:
    """Storms early in a run (while slow start ramps) or at any time teach no window and
    shrink nothing for good: ``--rate auto`` stays about as fast as ``--rate 9.5`` under the
    same storms (a storm taken for a window once held a run at 0.5/s)."""
    shares: dict[bool, list[float]] = {}
    for adaptive in (True, False):
        shares[adaptive] = []
        for seed in range(4):
            provider = Provider("sliding", 100, 10.0, retry_after=1.0, storm_rate=0.02,
                                storm_length=4, seed=seed)
            out = run(provider, duration=120.0, adaptive=adaptive, seed=seed)
            shares[adaptive].append(out.share(provider))
    auto, fixed = shares[True], shares[False]
    assert sum(auto) >= 0.9 * sum(fixed)
    assert min(auto) >= 0.6 * min(fixed)


@pytest.mark.parametrize("mode", ["exact", "ceil"])
def test_every_retry_after_is_honoured_exactly(mode: str) -> None:
    """No request leaves before a 429's Retry-After has passed, and the pause is not padded
    beyond it when the learned window has room."""
    provider = Provider("sliding", 20, 1.0, retry_after=mode)  # type: ignore[arg-type]
    out = run(provider, duration=60.0)
    assert out.pauses
    for at, asked, got in out.pauses:
        assert got >= asked - 1e-9
        assert not any(at < t < at + asked - 1e-9 for t in out.departures)


def test_max_rate_below_the_cut_floor_is_still_the_ceiling() -> None:
    """``--max-rate 0.2``: the floor a 429 cuts to (0.5/s) must not lift the rate above it."""

    async def go() -> tuple[Outcome, list[float]]:
        clock = SimClock()
        meter = auto_meter(clock, max_rate=0.2)
        rates: list[float] = []
        original = meter.rate_limited

        def spy(retry_after: float | None, sent_at: float | None = None) -> float:
            delay = original(retry_after, sent_at)
            rates.append(limiter(meter).rate)
            return delay

        meter.rate_limited = spy  # type: ignore[method-assign]
        provider = Provider("sliding", 1, 10.0, retry_after="none", storm_rate=0.2)
        return await simulate(meter, provider, clock, duration=300.0), rates

    out, rates = anyio.run(go, backend="asyncio")
    assert rates and max(rates) <= 0.2 + 1e-9
    spread = out.departures[-1] - out.departures[0]
    assert len(out.departures) - 1 <= 0.2 * spread + 2
