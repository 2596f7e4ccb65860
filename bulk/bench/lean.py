"""A lean client: what a careful engineer writes in an afternoon to link numbers on Plivo.

    PLIVO_AUTH_ID=... PLIVO_AUTH_TOKEN=... python -m bulk.bench.lean numbers.csv \\
        --base-url http://127.0.0.1:8765 [--batch 100] [--poll-interval 1]

The benchmark's yardstick for bulk, deliberately plain: ``number,campaign`` rows
(campaign ids), one asyncio task, links in batches of ``batch`` per campaign, then a sweep of
every page of each campaign that still has pending numbers every ``poll_interval`` seconds
until every number is ``COMPLETED`` or ``FAILED``. No journal, no campaign check, no report
file; the basics only: a 429 waits one second and resends, a 5xx or a dropped connection
resends up to three times, anything else ends that batch as failed.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import csv
import functools
import os
import sys
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import anyio

PAGE = 20
SETTLED = ("COMPLETED", "FAILED")


@dataclass(slots=True)
class Tally:
    """What the lean client did: requests by kind, 429s, and each number's last status."""

    requests: Counter[str] = field(default_factory=Counter)
    rate_limited: int = 0
    errors: int = 0
    status: dict[str, str] = field(default_factory=dict)  # digits -> last status seen


class Lean:
    """One Plivo account, one session, one task."""

    def __init__(
        self, session: aiohttp.ClientSession, base_url: str, auth_id: str, tally: Tally
    ) -> None:
        self.session = session
        self.root = f"{base_url.rstrip('/')}/v1/Account/{auth_id}/10dlc/Campaign"
        self.tally = tally

    async def _call(self, kind: str, method: str, url: str, body: Any = None) -> Any:
        """The JSON answer of a 2xx; ``None`` after a refusal or three failed tries."""
        failures = 0
        while True:
            self.tally.requests[kind] += 1
            try:
                async with self.session.request(method, url, json=body) as resp:
                    if resp.status == 429:
                        self.tally.rate_limited += 1
                        await asyncio.sleep(1.0)
                        continue
                    if resp.status < 300:
                        return await resp.json()
                    if resp.status < 500:
                        self.tally.errors += 1
                        return None
            except (TimeoutError, aiohttp.ClientError):
                pass
            failures += 1
            if failures >= 3:
                self.tally.errors += 1
                return None
            await asyncio.sleep(0.5)

    async def link(self, campaign: str, numbers: Sequence[str], batch: int) -> None:
        for start in range(0, len(numbers), batch):
            chunk = list(numbers[start : start + batch])
            answer = await self._call("link", "POST", f"{self.root}/{campaign}/Number/",
                                      {"numbers": chunk})
            for n in chunk:
                self.tally.status[n] = "PROCESSING" if answer is not None else "REFUSED"

    async def sweep(self, campaign: str) -> None:
        """Read every page of the campaign; remember the status of each number."""
        offset = 0
        while True:
            url = f"{self.root}/{campaign}/Number/?limit={PAGE}&offset={offset}"
            page = await self._call("list", "GET", url)
            if page is None:
                return
            entries = page.get("phone_numbers") or []
            for entry in entries:
                number = str(entry.get("number", ""))
                if number in self.tally.status:
                    self.tally.status[number] = str(entry.get("status", ""))
            if len(entries) < PAGE:
                return
            offset += PAGE


def _pending(numbers: Sequence[str], status: Mapping[str, str]) -> bool:
    return any(status.get(n) == "PROCESSING" for n in numbers)


async def link_all(
    base_url: str,
    auth_id: str,
    auth_token: str,
    work: Mapping[str, Sequence[str]],
    *,
    batch: int = 100,
    poll_interval: float = 1.0,
    give_up: float = 600.0,
) -> dict[str, Any]:
    """Link ``work`` (campaign id -> digits) and wait until all settle; a summary dict."""
    tally = Tally()
    token = base64.b64encode(f"{auth_id}:{auth_token}".encode()).decode()
    headers = {"Authorization": f"Basic {token}"}
    started = time.perf_counter()
    async with aiohttp.ClientSession(headers=headers) as session:
        client = Lean(session, base_url, auth_id, tally)
        for campaign, numbers in work.items():
            await client.link(campaign, numbers, batch)
        deadline = time.monotonic() + give_up
        while time.monotonic() < deadline:
            waiting = [c for c, numbers in work.items() if _pending(numbers, tally.status)]
            if not waiting:
                break
            await asyncio.sleep(poll_interval)
            for campaign in waiting:
                await client.sweep(campaign)
    outcomes = Counter(tally.status.values())
    return {
        "numbers": sum(len(v) for v in work.values()),
        "wall_s": time.perf_counter() - started,
        "requests": dict(sorted(tally.requests.items())),
        "requests_total": sum(tally.requests.values()),
        "rate_limited": tally.rate_limited,
        "errors_total": tally.errors,
        "outcomes": dict(sorted(outcomes.items())),
        "linked": outcomes.get("COMPLETED", 0),
    }


def read_work(path: Path) -> dict[str, list[str]]:
    """``number,campaign`` rows (campaign ids; numbers with or without ``+``), in order."""
    work: dict[str, list[str]] = {}
    with path.open(encoding="utf-8-sig", newline="") as handle:
        for row in csv.DictReader(handle):
            digits = row["number"].strip().lstrip("+")
            if len(digits) == 10:
                digits = "1" + digits
            work.setdefault(row["campaign"].strip(), []).append(digits)
    return work


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bulk.bench.lean", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("input", type=Path, help="CSV with number,campaign (campaign ids)")
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--poll-interval", type=float, default=1.0)
    args = parser.parse_args(argv)
    auth_id = os.environ.get("PLIVO_AUTH_ID", "")
    auth_token = os.environ.get("PLIVO_AUTH_TOKEN", "")
    if not auth_id or not auth_token:
        print("set PLIVO_AUTH_ID and PLIVO_AUTH_TOKEN", file=sys.stderr)
        return 2
    job = functools.partial(link_all, batch=args.batch, poll_interval=args.poll_interval)
    result = anyio.run(job, args.base_url, auth_id, auth_token, read_work(args.input),
                       backend="asyncio")
    for key in ("numbers", "wall_s", "requests_total", "rate_limited", "outcomes"):
        print(f"{key}: {result[key]}")
    return 0 if result["linked"] == result["numbers"] else 1


if __name__ == "__main__":
    raise SystemExit(main())


__all__ = ["link_all", "main", "read_work"]
