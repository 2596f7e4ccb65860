"""Adverse 429 patterns against the meters, on a :class:`VirtualClock`: storms that are not a
window, 429s that never end, a provider saying "now" forever. The provider is simulated by
``tests._helpers.Window`` (each request answered when it leaves, one after another).
"""

from __future__ import annotations

import itertools
import random
from collections.abc import AsyncIterator, Callable

import aiohttp
import anyio
import pytest
from aiohttp import web

from bulk._errors import Throttled
from bulk.bench._limitsim import Provider, run
from bulk.engine import Meter, PauseGate, VirtualClock
from bulk.engine._http import HttpSender, RetryPolicy
from bulk.engine._limits import AdaptiveRate, SlidingWindowModel
from bulk.providers import plivo
from bulk.providers._base import Kind, Verdict
from tests._helpers import Window, adaptive, drive


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
    """40 429s in a row a second into a ``--rate auto`` run. Taken for a first window filling,
    each probe waited twice the run's age: the 20th at 6 days, and the "window" learned from
    it (525,000 s) held the run at 0.5/s. A refusal outlasting the longest window the model can
    learn (``HORIZON``) is a storm: probed at the gate's capped pause, never learned."""
    meter, clock = adaptive(start=9.5)
    start = clock.monotonic()
    refused, answer = storm(40, 1.0, start)
    stamps, _, throttled = await drive(meter, 2000, answer, retry_after)
    assert throttled == 40
    limiter = meter._limiter
    assert isinstance(limiter, AdaptiveRate)
    # no probe later than the longest learnable window after the first request, then the
    # gate's pause (at most 30 s, or Retry-After)
    horizon = SlidingWindowModel.HORIZON
    late = [b - a for a, b in itertools.pairwise(refused) if b - start > horizon]
    assert late  # the storm outlasted it
    assert all(g <= 30.0 + 1.0 for g in late)
    assert limiter.window.share is None  # no window learned from it
    assert clock.monotonic() - start <= horizon + 40 * 31.0 + 60.0
    tail = stamps[-500:]
    assert (len(tail) - 1) / (tail[-1] - tail[0]) >= 50.0  # back near the ceiling


@pytest.fixture
async def only_429s() -> AsyncIterator[tuple[str, list[int]]]:
    """A loopback provider answering 429 with ``Retry-After: 299`` (under bulk's 300 s cap)
    to the first ``left[0]`` requests (all of them while it is negative), then 200."""
    left = [-1]

    async def handle(request: web.Request) -> web.Response:
        if left[0]:
            left[0] -= 1
            return web.json_response(
                {"error": "too many requests"}, status=429, headers={"Retry-After": "299"}
            )
        return web.json_response({"api_id": "x", "number": "14155550100"})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    yield f"http://127.0.0.1:{runner.addresses[0][1]}", left
    await runner.cleanup()


async def _read_all(base: str, clock: VirtualClock, count: int) -> list[tuple[float, Verdict]]:
    """``count`` reads side by side, one in flight (the virtual clock takes one sleeper at a
    time: the others wait at the cap), 58/s: when each ended, and how."""
    meter = Meter(58.0, 1, gate=PauseGate(rng=random.Random(1), clock=clock))
    ends: list[tuple[float, Verdict]] = []
    async with aiohttp.ClientSession() as session:
        sender = HttpSender(session, base, meter, headers={"Authorization": "x"}, provider="plivo")

        async def one() -> None:
            request = plivo.get_request("MAXXXXXXXXXXXXXXXXXX", "CX", "+14155550100")
            verdict = await sender(request, plivo.classify)
            ends.append((clock.monotonic(), verdict))

        async with anyio.create_task_group() as group:
            for _ in range(count):
                group.start_soon(one)
    return ends


async def test_a_provider_answering_only_429s_under_the_cap_does_not_hold_the_run_for_days(
    only_429s: tuple[str, list[int]],
) -> None:
    """Every request answered 429 with ``Retry-After: 299``. Each try paid its own pause (the
    gate is shared: one try per pause), so 40 reads took 2,000 pauses: 166 hours. The 50-try
    budget bounds one request's tries, not the run. After ``max_refused`` seconds of nothing
    but 429s, bulk sends nothing more on that meter: the next request raises
    :class:`Throttled`, which stops that account's lane (its rows resume later)."""
    base, _ = only_429s
    clock = VirtualClock()
    start = clock.monotonic()
    stopped: list[BaseException] = []
    try:
        await _read_all(base, clock, 40)
    except* Throttled as group:
        stopped.extend(group.exceptions)
    assert stopped and all(isinstance(e, Throttled) for e in stopped)
    limit = RetryPolicy().max_refused
    assert clock.monotonic() - start <= limit + 299.0  # its last pause
    assert "plivo answered only 429s for over 900 s" in str(stopped[0])


async def test_a_few_long_retry_afters_in_a_row_still_end_answered(
    only_429s: tuple[str, list[int]],
) -> None:
    base, left = only_429s
    left[0] = 2  # two pauses of 299 s, then answers: under max_refused, nothing given up
    clock = VirtualClock()
    ends = await _read_all(base, clock, 8)
    assert [verdict.kind for _, verdict in ends] == [Kind.OK] * 8


def test_a_streak_of_over_a_thousand_429s_keeps_the_capped_pause_and_does_not_crash() -> None:
    """Each fresh 429 in a row doubles the pause up to the cap: ``first * 2 ** streak`` raised
    OverflowError at the 1025th (about 8 h of 429s at the 30 s cap, 17 min at Retry-After 1)."""
    clock = VirtualClock()
    gate = PauseGate(cap=30.0, rng=random.Random(4), clock=clock)
    for _ in range(1100):
        clock._now += gate.paused_for()  # the next request leaves when the gate opens
        delay = gate.pause(None)
    assert 15.0 <= delay <= 30.0


def _storm_mix(seed: int, storms: bool) -> float:
    """Share of the limit ``--rate auto`` achieves in 120 s of virtual time against the
    sandbox's AgentMessage limit (100 per sliding 10 s, Retry-After 1), with or without its
    storms (2 % of requests start 4 429s in a row, each with Retry-After 1)."""
    extra = {"storm_rate": 0.02, "storm_length": 4, "storm_retry_after": 1.0} if storms else {}
    provider = Provider("sliding", 100, 10.0, retry_after=1.0, seed=seed, **extra)  # type: ignore[arg-type]
    return run(provider, duration=120.0, seed=seed).share(provider)


def test_short_storms_of_429s_cost_auto_rate_little_more_than_a_calm_run() -> None:
    """The benchmark's storm mix in virtual time: a storm is paid with its Retry-After pauses,
    several 429s per pause, and the window's room the pauses left is used after them; no
    storm cuts a learned rate or keeps the window from being learned. Was 1.5-2 x calm."""
    calm = sum(_storm_mix(seed, storms=False) for seed in range(4))
    stormy = sum(_storm_mix(seed, storms=True) for seed in range(4))
    assert calm / stormy <= 1.3


async def test_after_a_storm_429_with_the_window_learned_what_its_pause_held_back_leaves_at_once(
) -> None:
    meter, _ = adaptive(start=9.5)
    stamps, _, _ = await drive(meter, 300, Window(limit=50, window=10.0))
    limiter = meter._limiter
    assert isinstance(limiter, AdaptiveRate) and limiter.window.share is not None
    refused_at = stamps[-1]
    assert limiter.window.holding(refused_at) < limiter.window.share  # room: not the window's
    pause = meter.rate_limited(1.0, refused_at)
    assert pause == pytest.approx(1.0)  # Retry-After, exactly
    rate = limiter.rate
    left = []
    for _ in range(4):
        async with meter.slot() as sent_at:
            left.append(sent_at)
        meter.answered(sent_at)
    assert left[0] >= refused_at + 1.0
    assert left[-1] - left[0] < 1e-6  # together, not one pace interval apart
    assert limiter.rate >= rate  # nothing cut


async def test_storms_back_to_back_while_the_window_fills_teach_no_window_many_times_longer(
) -> None:
    """Two storms of 4 429s in a row strike the probes of a first refusal just as the window
    (50 per 10 s) reopens. Probed sparsely, the 8 refusals spanned 40 s and taught a 40-s
    window (a fifth of the rate, a run 4 x longer); probed at Retry-After they span 8 s."""
    meter, clock = adaptive(start=9.5)
    window = Window(limit=50, window=10.0)
    start = clock.monotonic()
    left = 0

    def answer(now: float) -> bool:
        nonlocal left
        if now - start >= 10.0 and left == 0 and not hasattr(answer, "struck"):
            answer.struck = True  # type: ignore[attr-defined]
            left = 8
        if left:
            left -= 1
            return False
        return window(now)

    await drive(meter, 60, answer, 1.0)
    limiter = meter._limiter
    assert isinstance(limiter, AdaptiveRate)
    model = limiter.window
    assert model.share is not None
    assert model.lo <= 20.0
    assert model.rate is not None and model.rate >= 0.4 * 50 / 10.0
