"""Benchmark: ``--rate auto`` against undocumented limits of every shape.

    python -m bulk.bench.limits [--seeds 3] [--no-sandbox] [--only shapes,storms,shapes-e2e]

Three sections, each saying how it was measured:

1. **Shapes, in virtual time.** The real :class:`~bulk.engine.Meter` and its adaptive rate
   (8 senders, 20-60 ms per request, ``--rate auto`` from AgentMessage's 9.5/s up to 100/s)
   against the sandbox's own limiters (:func:`bulk.sandbox._core.rate_limiter`, the shapes of
   ``bulk sandbox --rate-shape``) on a virtual clock (:mod:`bulk.bench._limitsim`): minutes of
   provider time in a second of CPU. Per shape: the share of the limit achieved (requests
   admitted over what the limit admits at its steady rate in the run's time) and the share
   of requests answered 429, the mean over ``--seeds`` seeds.
2. **The storm mix, end to end against the real sandbox, in real time.** ``bulk link
   samples/onboarding.csv`` on AgentMessage (default ``--rate auto``) against ``bulk
   sandbox`` (its default 100/10 s limit), calm and under short 429 storms with Retry-After
   (``--burst-429-rate 0.02 --burst-429-length 4``), and ``--rate 9.5`` under the same
   storms: wall seconds and the storm-over-calm ratio. About three minutes.
3. **Each shape end to end, in real time** (:mod:`bulk.bench.shapes`): ``bulk link`` of
   1,200-1,700 generated numbers on AgentMessage (default ``--rate auto``) against ``bulk
   sandbox --rate-shape ...`` per shape of section 1, and a limit changed mid-run through
   ``POST /_sandbox/rate-limit``: the share of the limit while sending (requests the sandbox
   admitted over what the limit admits at its steady rate), the share of 429s, wall seconds.
   About five minutes.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bulk.bench._limitsim import Provider, run
from bulk.bench.shapes import sandbox, shapes_e2e
from bulk.sandbox import DEFAULT_AGENTMESSAGE_KEY, AdminClient

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "samples"


@dataclass(frozen=True)
class Case:
    """One row of the shapes table: a provider of that shape, run for ``duration`` s."""

    name: str
    duration: float
    provider: dict[str, object]
    adaptive: bool = True

    def provider_for(self, seed: int) -> Provider:
        return Provider(seed=seed, **self.provider)  # type: ignore[arg-type]


STORMS = {"storm_rate": 0.02, "storm_length": 4, "storm_retry_after": 1.0}
CASES = (
    Case("sliding 1 s, Retry-After whole s", 120.0,
         {"shape": "sliding", "limit": 30, "window": 1.0, "retry_after": "ceil"}),
    Case("sliding 10 s", 300.0,
         {"shape": "sliding", "limit": 300, "window": 10.0, "retry_after": "ceil"}),
    Case("sliding 10 s, Retry-After 1 (as the sandbox)", 120.0,
         {"shape": "sliding", "limit": 300, "window": 10.0, "retry_after": 1.0}),
    Case("fixed 10 s", 300.0,
         {"shape": "fixed", "limit": 300, "window": 10.0, "retry_after": "ceil"}),
    Case("bucket 1 s", 120.0,
         {"shape": "bucket", "limit": 30, "window": 1.0, "retry_after": "ceil"}),
    Case("sliding 1 s, 30 -> 15 -> 40/s", 180.0,
         {"shape": "sliding", "limit": 30, "window": 1.0, "retry_after": "ceil",
          "changes": ((60.0, 15), (120.0, 40))}),
    Case("sliding 10 s, 300 -> 150 -> 400", 300.0,
         {"shape": "sliding", "limit": 300, "window": 10.0, "retry_after": "ceil",
          "changes": ((100.0, 150), (200.0, 400))}),
    Case("calm: sliding 100/10 s, Retry-After 1", 120.0,
         {"shape": "sliding", "limit": 100, "window": 10.0, "retry_after": 1.0}),
    Case("storms: the same + 2 % x 4 429s", 120.0,
         {"shape": "sliding", "limit": 100, "window": 10.0, "retry_after": 1.0, **STORMS}),
    Case("storms, --rate 9.5", 120.0,
         {"shape": "sliding", "limit": 100, "window": 10.0, "retry_after": 1.0, **STORMS},
         adaptive=False),
)


def shapes(seeds: int) -> dict[str, tuple[float, float]]:
    """Each case's mean (share of the limit, share of 429s) over ``seeds`` seeds; printed."""
    print("1. Shapes, virtual time (the real Meter against the sandbox's limiters), "
          f"mean of {seeds} seeds")
    print(f"   {'limit':<46} {'share':>7} {'429s':>7} {'cpu s':>6}")
    results: dict[str, tuple[float, float]] = {}
    for case in CASES:
        started = time.perf_counter()
        shares, refused = [], []
        for seed in range(seeds):
            provider = case.provider_for(seed)
            out = run(provider, duration=case.duration, adaptive=case.adaptive, seed=seed)
            shares.append(out.share(provider))
            refused.append(out.refused_share)
        results[case.name] = (statistics.mean(shares), statistics.mean(refused))
        cpu = time.perf_counter() - started
        print(f"   {case.name:<46} {results[case.name][0]:>7.1%} {results[case.name][1]:>7.2%}"
              f" {cpu:>6.2f}")
    calm = results[CASES[-3].name][0]
    storm = results[CASES[-2].name][0]
    fixed = results[CASES[-1].name][0]
    print(f"   storms over calm, wall for the same work: auto {calm / storm:.2f} x, "
          f"--rate 9.5 {calm / fixed:.2f} x")
    return results


def onboarding(
    storms: bool, rate: str | None, seed: int = 1, limit: float = 600.0
) -> tuple[float, dict[str, object]]:
    """One ``bulk link`` of the onboarding sample on AgentMessage against a fresh ``bulk
    sandbox`` (storms or calm): wall seconds (infinite: not finished within ``limit``), and
    bulk's summary."""
    options = ["--settle", "0.3:1.5", "--seed", str(seed)]
    if storms:
        options += ["--burst-429-rate", "0.02", "--burst-429-length", "4"]
    with sandbox(options) as base:
        with tempfile.TemporaryDirectory() as tmp:
            summary = Path(tmp) / "summary.json"
            # a copy in the run's own folder: a run's outputs (journal included) are written
            # beside its input, and each run must start a job of its own, not resume the last
            rows = Path(tmp) / "onboarding.csv"
            shutil.copyfile(SAMPLES / "onboarding.csv", rows)
            command = [sys.executable, "-m", "bulk", "link", str(rows),
                       "--campaigns", str(SAMPLES / "campaigns-agentmessage.csv"),
                       "--provider", "agentmessage", "--base-url", base, "--yes",
                       "--poll-interval", "1", "--settle-timeout", "15",
                       "--summary-json", str(summary)]
            if rate is not None:
                command += ["--rate", rate]
            env = {**os.environ, "AGENTMESSAGE_API_KEY": DEFAULT_AGENTMESSAGE_KEY}
            started = time.monotonic()
            try:
                subprocess.run(command, cwd=tmp, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, check=False, timeout=limit)
            except subprocess.TimeoutExpired:
                return math.inf, {}  # not finished in ``limit`` seconds
            wall = time.monotonic() - started
            data: dict[str, object] = json.loads(summary.read_text())
            data["sandbox"] = AdminClient(base, timeout=5).counters(numbers=False)["totals"]
            return wall, data


def storm_mix(repeat: int = 1) -> dict[str, float]:
    """Section 2 (printed): calm and storms, auto and --rate 9.5; each the mean wall of
    ``repeat`` runs (the sandbox's seed differs per run)."""
    print("2. The storm mix, real time (the real client end to end): bulk link "
          "samples/onboarding.csv --provider agentmessage against bulk sandbox (limit 100/10 s)"
          f", mean of {repeat}")
    walls: dict[str, float] = {}
    worst: dict[str, float] = {}
    for label, storms, rate in (("calm, --rate auto", False, None),
                                ("storms, --rate auto", True, None),
                                ("storms, --rate 9.5", True, "9.5")):
        runs = [onboarding(storms, rate, seed=1 + i) for i in range(repeat)]
        walls[label] = statistics.mean(wall for wall, _ in runs)
        worst[label] = max(wall for wall, _ in runs)
        totals = []
        for _, data in runs:
            requests = data.get("requests")
            totals.append(sum(requests.values()) if isinstance(requests, dict) else 0)
        each = " ".join(f"{wall:.1f}" for wall, _ in runs)
        refused = statistics.mean(int(str(d.get("http_429", 0))) for _, d in runs)
        print(f"   {label:<22} {walls[label]:6.1f} s ({each})  requests "
              f"{statistics.mean(totals):5.0f}  429s {refused:.0f}")
    calm = walls["calm, --rate auto"]
    print(f"   storms over calm: auto {walls['storms, --rate auto'] / calm:.2f} x "
          f"(aim <= 1.5 x), --rate 9.5 {walls['storms, --rate 9.5'] / calm:.2f} x")
    print(f"   slowest run over calm: auto {worst['storms, --rate auto'] / calm:.2f} x, "
          f"--rate 9.5 {worst['storms, --rate 9.5'] / calm:.2f} x")
    return walls


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bulk.bench.limits",
                                     description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--seeds", type=int, default=3, help="seeds per shape (default 3)")
    parser.add_argument("--no-sandbox", action="store_true",
                        help="skip the real-time sections against the sandbox (2 and 3)")
    parser.add_argument("--repeat", type=int, default=1,
                        help="runs per line of the storm mix (default 1)")
    parser.add_argument("--only", type=_sections, default=SECTIONS, metavar="SECTIONS",
                        help="comma-separated sections to run: " + ", ".join(SECTIONS)
                        + " (default: all)")
    args = parser.parse_args(argv)
    chosen = [x for x in args.only if not (args.no_sandbox and x in REAL_TIME)]
    if "shapes" in chosen:
        shapes(max(1, args.seeds))
    if "storms" in chosen:
        storm_mix(max(1, args.repeat))
    if "shapes-e2e" in chosen:
        shapes_e2e()
    return 0


#: the sections, in their order: virtual time, the storm mix, each shape end to end
SECTIONS = ("shapes", "storms", "shapes-e2e")
REAL_TIME = ("storms", "shapes-e2e")


def _sections(text: str) -> tuple[str, ...]:
    names = tuple(x.strip() for x in text.split(",") if x.strip())
    unknown = sorted(set(names) - set(SECTIONS))
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"unknown sections {unknown}; known: "
                                         + ", ".join(SECTIONS))
    return names


if __name__ == "__main__":
    raise SystemExit(main())
