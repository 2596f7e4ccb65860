"""Many accounts in one process: ``python -m bulk.bench.accounts``.

20 Plivo accounts × 500 numbers in one ``bulk link --accounts`` run against the sandbox in a
child process, each account limited by the sandbox to 300 requests per 5 s sliding window (60/s:
1,200/s for all of them), 20-50 ms latency, settle 0.5-1.5 s. One number per link request
(``--batch-size 1``, as AgentMessage attaches and the official SDK's one-number calls do), so
the run is bound by the accounts' rate limits and the client must keep 20 meters full at once.

Prints (and ``--json PATH`` writes):

* the aggregate request rate while links were going out (the sandbox's request count from
  the first request until the last link request, sampled every 0.25 s from another thread:
  :class:`bulk.bench.figures.Sampler`, as for the AgentMessage figure), as a share of the
  sum of the accounts' limits (aim >= 90 %);
* client CPU seconds per 1,000 requests (the thread running bulk: the whole run, reading the
  input, the journal and the report included);
* the client's peak RSS;
* every row's outcome and each account's 429s (the limits are never exceeded when 0).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio

from bulk.bench._common import sandbox_process
from bulk.bench.figures import Sampler

LIMIT = 300  #: requests per window, per account (Plivo's documented 300 / 5 s)
WINDOW = 5.0
#: what bulk is told per account: Plivo's default rate (58/s, 96.7 % of 60/s)
RATE = 58.0


@dataclass(frozen=True, slots=True)
class Settings:
    accounts: int = 20
    numbers: int = 500
    latency_min: float = 0.020
    latency_max: float = 0.050
    settle_min: float = 0.5
    settle_max: float = 1.5
    concurrency: int = 8


def auth_id(index: int) -> str:
    return f"SABENCH{index:013d}"


def write_inputs(folder: Path, s: Settings) -> tuple[Path, Path]:
    """The accounts file (tokens from BENCH_TOKEN_<i>) and the input: account i's numbers are
    +1<area><i:03d>NNNN, all to CUOGHIN of its own account."""
    tables = []
    for i in range(s.accounts):
        tables.append(
            f'[accounts.acct{i:02d}]\nprovider = "plivo"\nauth-id = "{auth_id(i)}"\n'
            f'auth-token-env = "BENCH_TOKEN_{i}"\nrate = {RATE}\n'
            f"concurrency = {s.concurrency}\n"
        )
    accounts = folder / "accounts.toml"
    accounts.write_text("\n".join(tables), encoding="utf-8")
    lines = ["number,campaign_id,account"]
    areas = ("415", "212", "312", "650", "206", "303", "617", "512", "213", "305")
    for i in range(s.accounts):
        area = areas[i % len(areas)]
        exchange = 200 + i  # 2xx exchanges are valid NANP
        for n in range(s.numbers):
            lines.append(f"+1{area}{exchange}{n:04d},CUOGHIN,acct{i:02d}")
    source = folder / "accounts-input.csv"
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return accounts, source


def run(s: Settings, folder: Path) -> dict[str, Any]:
    from bulk import JobSpec, run_job

    options = {
        "plivo_rate_limit": LIMIT,
        "plivo_rate_window": WINDOW,
        "settle_min": s.settle_min,
        "settle_max": s.settle_max,
        "seed_accounts": {auth_id(i): LIMIT for i in range(s.accounts)},
        "faults": {"latency_min": s.latency_min, "latency_max": s.latency_max},
    }
    accounts, source = write_inputs(folder, s)
    with sandbox_process(**options) as sb:
        from bulk.sandbox import plivo_token

        for i in range(s.accounts):
            os.environ[f"BENCH_TOKEN_{i}"] = plivo_token(auth_id(i))
        spec = JobSpec(
            command="link",
            input=source,
            accounts=accounts,
            base_url=sb.base_url,
            batch_size=1,
            poll_interval=1.0,
            settle_timeout=120.0,
            report=folder / "accounts.report.csv",
            journal=folder / "accounts.journal",
        )
        started = time.perf_counter()
        with Sampler(sb, "plivo.link") as sampler:
            # the run's own thread: the sampler's thread is the benchmark's, not bulk's
            cpu = time.thread_time()
            result = anyio.run(run_job, spec, backend="asyncio")
            cpu = time.thread_time() - cpu
        wall = time.perf_counter() - started
        server = sb.admin("counters?numbers=0")
        server_cpu = _cpu_seconds(sb.pid)
    rate, seconds = sampler.sending_rate()
    limit_sum = s.accounts * LIMIT / WINDOW
    requests = result.stats.total
    per_account = server.get("accounts", {})
    return {
        "accounts": s.accounts,
        "numbers_per_account": s.numbers,
        "rows": result.rows,
        "outcomes": result.counts,
        "wall_s": wall,
        "sending_s": seconds,
        "requests": requests,
        "requests_by_kind": dict(sorted(result.stats.requests.items())),
        "aggregate_rate": rate,
        "limit_sum": limit_sum,
        "share_of_limits": rate / limit_sum if limit_sum else 0.0,
        "client_cpu_s": cpu,
        "cpu_s_per_1000_requests": 1000 * cpu / requests if requests else 0.0,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "http_429": result.stats.rate_limited,
        "sandbox_cpu_s": server_cpu,
        "peak_in_window_max": max(
            (a.get("peak_in_window", 0) for a in per_account.values()), default=0
        ),
    }


def _cpu_seconds(pid: int) -> float | None:
    """CPU seconds (user + system) a process has used so far, from /proc (None elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def render(r: dict[str, Any]) -> str:
    outcomes = ", ".join(f"{o} {n}" for o, n in r["outcomes"].items() if n)
    return "\n".join(
        [
            f"{r['accounts']} accounts x {r['numbers_per_account']} numbers, one number per "
            f"link request; each account {LIMIT} requests / {WINDOW:g} s "
            f"(sum {r['limit_sum']:.0f}/s)",
            f"  rows: {r['rows']} ({outcomes}); wall {r['wall_s']:.1f} s",
            f"  aggregate rate while linking: {r['aggregate_rate']:.0f}/s over "
            f"{r['sending_s']:.1f} s = {100 * r['share_of_limits']:.1f} % of the limits' sum "
            "(aim >= 90 %)",
            f"  requests: {r['requests']} {r['requests_by_kind']}; 429s: {r['http_429']}; "
            f"highest window use of any account: {r['peak_in_window_max']} of {LIMIT}",
            f"  client CPU: {r['client_cpu_s']:.1f} s = {r['cpu_s_per_1000_requests']:.3f} s "
            f"per 1,000 requests; peak RSS {r['peak_rss_mib']:.0f} MiB; the sandbox used "
            + (
                "n/a"
                if r["sandbox_cpu_s"] is None
                else f"{r['sandbox_cpu_s']:.1f} s of CPU ({os.cpu_count()} cores here)"
            ),
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bulk.bench.accounts", description=__doc__)
    defaults = Settings()
    parser.add_argument("--accounts", type=int, default=defaults.accounts)
    parser.add_argument("--numbers", type=int, default=defaults.numbers)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    settings = Settings(accounts=args.accounts, numbers=args.numbers)
    with tempfile.TemporaryDirectory(prefix="bulk-bench-accounts-") as folder:
        results = run(settings, Path(folder))
    print(render(results))
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
