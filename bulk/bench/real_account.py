"""A real account's shapes, against bulk's own sandbox driven by the real client.

``python -m bulk.bench.real_account`` measures, side by side, for each shape: from each
row's settle (the sandbox's settle time of its link) to the moment bulk knew it (the
journal's ``settled_at``), p50, p95 and max, and requests per row:

* ``stuck``: 200 links (settle 1-3 s) into a Plivo campaign of 3,000 numbers where 5 of
  ours never settle (``--poll-interval 0.5 --settle-timeout 40``);
* ``onboarding``: ``samples/onboarding.csv`` against the sandbox's default options (one
  sample number never settles), at ``--onboarding-poll`` / ``--onboarding-timeout``;
* ``few`` and ``few-dry``: 5 rows into a campaign of 4,000 numbers, run and dry run.

Each shape gets a fresh sandbox seeded with its campaign (:func:`seed_for`), so others'
numbers and stuck ones are the sandbox's own state, read over HTTP like any account's.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import anyio

from bulk._clock import wall_at
from bulk._job import JobSpec, run_job
from bulk.sandbox import SandboxConfig, run_sandbox
from bulk.sandbox._seed import DEFAULT_PLIVO_AUTH_ID, DEFAULT_PLIVO_AUTH_TOKEN, Seed, default_seed
from bulk.sandbox._seed import PlivoCampaignSeed as _Campaign

BIG = "CBIGONE"
SAMPLES = Path(__file__).resolve().parents[2] / "samples"


@dataclass(frozen=True)
class Shape:
    name: str
    rows: int  #: rows of ours (the onboarding sample: its own)
    campaign_size: int  #: numbers in the campaign before the run, ours excluded
    stuck: int  #: of ours, never settling
    others_stuck: int = 0  #: of the campaign's other numbers, pending for ever
    settle: tuple[float, float] = (1.0, 3.0)
    poll_interval: float = 0.5
    settle_timeout: float = 40.0
    dry_run: bool = False
    onboarding: bool = False


@dataclass
class Figures:
    shape: str
    rows: int
    settled: int
    p50: float | None
    p95: float | None
    max: float | None
    poll_interval: float
    requests: int
    requests_per_row: float
    wall: float
    outcomes: dict[str, int]

    def line(self) -> str:
        def s(v: float | None) -> str:
            return "-" if v is None else f"{v:.1f}"

        return (
            f"{self.shape:<11} rows {self.rows:>4}  settle->known p50 {s(self.p50):>6} s  "
            f"p95 {s(self.p95):>6} s  max {s(self.max):>6} s "
            f"(= {s(None if self.max is None else self.max / self.poll_interval)} x poll)  "
            f"requests {self.requests:>5} ({self.requests_per_row:.2f}/row)  "
            f"wall {self.wall:.1f} s  {self.outcomes}"
        )


def shapes(onboarding_poll: float, onboarding_timeout: float) -> list[Shape]:
    return [
        Shape("stuck", 200, 3000 - 200, stuck=5, others_stuck=50),
        Shape(
            "onboarding",
            0,
            0,
            stuck=0,
            settle=(0.5, 2.0),
            poll_interval=onboarding_poll,
            settle_timeout=onboarding_timeout,
            onboarding=True,
        ),
        Shape("few", 5, 4000, stuck=0, settle=(0.5, 2.0), poll_interval=1.0, settle_timeout=60),
        Shape("few-dry", 5, 4000, stuck=0, poll_interval=1.0, dry_run=True),
    ]


def _ours(shape: Shape) -> list[str]:
    return [f"+1303{7000000 + i:07d}" for i in range(shape.rows)]


def seed_for(shape: Shape) -> Seed:
    """The default state plus the shape's campaign: ``campaign_size`` numbers already linked
    (others'), ``others_stuck`` of them pending for ever, and ``stuck`` of ours that never
    settle."""
    seed = default_seed()
    plivo = seed.plivo
    plivo.campaigns.append(_Campaign(BIG, "big", "MIXED"))
    for i in range(shape.campaign_size):
        status = "PROCESSING" if i < shape.others_stuck else "COMPLETED"
        plivo.links.append((f"+1206{8000000 + i:07d}", BIG, status))
    seed.never_settle |= set(_ours(shape)[: shape.stuck])
    return seed


async def _measure(shape: Shape, work: Path) -> Figures:
    if shape.onboarding:
        rows_file, campaigns = SAMPLES / "onboarding.csv", SAMPLES / "campaigns.csv"
    else:
        rows_file, campaigns = work / f"{shape.name}.csv", work / "campaigns.csv"
        with rows_file.open("w", newline="") as f:
            out = csv.writer(f)
            out.writerow(["number", "campaign"])
            out.writerows([n, "big"] for n in _ours(shape))
        campaigns.write_text(f"campaign_id,alias\n{BIG},big\n")
    config = SandboxConfig(settle_min=shape.settle[0], settle_max=shape.settle[1])
    settles: dict[str, float] = {}
    async with run_sandbox(config, seed=seed_for(shape)) as sb:
        settler = sb.state.settler
        draw = settler.draw

        def noted(number: str, now: float, **kw: Any) -> tuple[float | None, bool]:
            settle_at, failed = draw(number, now, **kw)  # each link's settle, on the wall clock
            if settle_at is not None:
                settles[number] = wall_at(sb.state.clock, settle_at).timestamp()
            return settle_at, failed

        settler.draw = noted  # type: ignore[method-assign]
        journal = work / f"{shape.name}.journal"
        spec = JobSpec(
            command="link",
            input=rows_file,
            campaigns=campaigns,
            base_url=sb.base_url,
            account=DEFAULT_PLIVO_AUTH_ID,
            token=DEFAULT_PLIVO_AUTH_TOKEN,
            poll_interval=shape.poll_interval,
            settle_timeout=shape.settle_timeout,
            report=work / f"{shape.name}.report.csv",
            journal=journal,
            dry_run=shape.dry_run,
        )
        began = time.monotonic()
        result = await run_job(spec)
        wall = time.monotonic() - began
    gaps, outcomes = _gaps(journal, settles)
    rows = result.rows
    requests = result.stats.total
    return Figures(
        shape.name,
        rows,
        len(gaps),
        statistics.median(gaps) if gaps else None,
        _quantile(gaps, 0.95),
        max(gaps) if gaps else None,
        shape.poll_interval,
        requests,
        requests / max(1, rows),
        wall,
        outcomes,
    )


def _quantile(values: Sequence[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)]


def _gaps(journal: Path, settles: dict[str, float]) -> tuple[list[float], dict[str, int]]:
    """Seconds from each linked row's settle to its ``settled_at``; outcomes by state."""
    gaps: list[float] = []
    outcomes: dict[str, int] = {}
    if not journal.exists():
        return gaps, outcomes
    with sqlite3.connect(journal) as db:
        for e164, state, settled_at in db.execute("SELECT e164, state, settled_at FROM rows"):
            outcomes[state] = outcomes.get(state, 0) + 1
            if state == "linked" and e164 in settles and settled_at is not None:
                gaps.append(max(0.0, settled_at - settles[e164]))
    return gaps, outcomes


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bulk.bench.real_account", description=__doc__)
    parser.add_argument("--only", action="append", help="run only these shapes")
    parser.add_argument("--onboarding-poll", type=float, default=30.0)
    parser.add_argument("--onboarding-timeout", type=float, default=300.0)
    parser.add_argument("--json", type=Path, help="write the figures here as JSON")
    args = parser.parse_args(argv)
    chosen = [
        s
        for s in shapes(args.onboarding_poll, args.onboarding_timeout)
        if not args.only or s.name in args.only
    ]
    figures = []
    with tempfile.TemporaryDirectory() as tmp:
        for shape in chosen:
            got = anyio.run(_measure, shape, Path(tmp), backend="asyncio")
            print(got.line(), flush=True)
            figures.append(got)
    if args.json:
        args.json.write_text(json.dumps([asdict(f) for f in figures], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
