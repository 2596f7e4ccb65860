"""Benchmark the whole pipeline against the sandbox on loopback (not a test).

    python -m bulk.bench.pipeline [--json bench-results.json] [--quick] [--only SECTIONS]

Eight sections, registered in :data:`SECTIONS` (the order they run and print), printed as
tables and written as JSON. The first four are here:

1. throughput: ``run_job`` links N numbers over 20 campaigns under Plivo's limit (300 requests
   per 5 s sliding window), 20-50 ms latency, settle 1-3 s: wall time, requests by kind,
   effective rate as a share of the limit, 429s, requests vs the fewest the plan needs;
2. client overhead: HttpSender + PlivoProvider + an unlimited Meter against a sandbox with no
   limit and no latency; requests/s and client CPU seconds per 1,000 requests;
3. memory: peak RSS of a dry run (validate + plan) of 100,000 and 1,000,000 rows, each in a
   fresh process;
4. the SDK baseline: the official ``plivo`` SDK, one link + get-polling per number, sequential
   and with 16 threads, against the same sandbox settings, and bulk on the same numbers.

Sections 5-8 (floor and lean client, AgentMessage limits, 429 storms, a batch cap) are in
:mod:`bulk.bench.figures`. Every sandbox runs in its own process (:mod:`bulk.bench._common`),
so the client's CPU is measured alone and the synchronous SDK never blocks the sandbox's
event loop.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import anyio

from bulk.bench import figures
from bulk.bench._common import (
    LIMIT_RATE,
    LIMIT_REQUESTS,
    LIMIT_WINDOW,
    QUICK,
    RemoteSandbox,
    Settings,
    campaign_ids,
    fewest_requests,
    number,
    pooled_sandbox,
    progress,
    sandbox_process,
    sandboxes,
    split,
    write_campaigns,
    write_inputs,
    write_state,
)

# --- 1. throughput (and bulk on the SDK's numbers) ---------------------------------------------


def run_bulk(sb: RemoteSandbox, folder: Path, s: Settings, rows: int, stem: str) -> dict[str, Any]:
    """``run_job`` on ``rows`` numbers round-robin over the campaigns; the sandbox is reset."""
    from bulk import JobSpec, run_job

    campaigns = campaign_ids(s.campaigns)
    source = write_inputs(folder, rows, campaigns, stem)
    sb.reset()
    spec = JobSpec(
        command="link",
        input=source,
        campaigns=folder / "campaigns.csv",
        base_url=sb.base_url,
        account=sb.auth_id,
        token=sb.token,
        concurrency=s.concurrency,
        poll_interval=s.poll_interval,
        settle_timeout=60.0,
        report=folder / f"{stem}.report.csv",
        journal=folder / f"{stem}.journal",
    )
    cpu = time.process_time()
    started = time.perf_counter()
    result = anyio.run(run_job, spec, backend="asyncio")
    wall = time.perf_counter() - started
    cpu = time.process_time() - cpu
    stats = result.stats
    from bulk.providers.plivo import DEFAULT_BATCH_SIZE

    fewest = fewest_requests(split(rows, s.campaigns), DEFAULT_BATCH_SIZE)
    rate = stats.effective_rate()
    server = sb.totals()
    return {
        "numbers": rows,
        "campaigns": min(rows, s.campaigns),
        "wall_s": wall,
        "client_cpu_s": cpu,
        "requests": dict(sorted(stats.requests.items())),
        "requests_total": stats.total,
        "fewest_requests": fewest,
        "requests_vs_fewest": stats.total / fewest if fewest else 0.0,
        "active_s": (stats.last_at or 0.0) - (stats.first_at or 0.0),
        "effective_rate": rate,
        "share_of_limit": rate / LIMIT_RATE,
        # the aim's measure: the rate while work remained, i.e. over the time at least one
        # request was waiting for the meter or in flight (waits for numbers to settle, with
        # nothing to send, are excluded)
        "busy_s": stats.busy_seconds,
        "busy_rate": stats.busy_rate(),
        "busy_share_of_limit": stats.busy_rate() / LIMIT_RATE,
        "rate_limited": stats.rate_limited,
        "retries": stats.retries,
        "transport_errors": stats.transport_errors,
        "server_requests": server["requests"],
        "server_rate_limited": server["rate_limited"],
        "outcomes": result.counts,
        "linked": result.counts.get("linked", 0),
        "errors_total": sum(n for o, n in result.counts.items() if o not in ("linked", "already")),
    }


def core_sandbox(s: Settings, folder: Path) -> dict[str, Any]:
    """The sandbox sections 1, 3 and 4 share (Plivo's limit, the settings' settle and latency,
    the benchmark's campaigns); writes the campaigns and state files it names."""
    campaigns = campaign_ids(s.campaigns)
    write_campaigns(folder, campaigns)
    state = write_state(folder, campaigns)
    return {
        "settle_min": s.settle_min,
        "settle_max": s.settle_max,
        "plivo_rate_limit": LIMIT_REQUESTS,
        "plivo_rate_window": LIMIT_WINDOW,
        "state_file": str(state),
        "faults": {"latency_min": s.latency_min, "latency_max": s.latency_max},
    }


def bench_throughput(s: Settings, folder: Path, extra: Sequence[str] = ()) -> dict[str, Any]:
    progress(f"throughput: {s.numbers:,} numbers")
    with pooled_sandbox(**core_sandbox(s, folder)) as sb:
        return run_bulk(sb, folder, s, s.numbers, "throughput")


# --- 2. client overhead -----------------------------------------------------------------------


async def _overhead(
    base_url: str, auth_id: str, token: str, kind: str, n: int, conc: int
) -> dict[str, Any]:
    import aiohttp

    from bulk.engine import HttpSender, Meter
    from bulk.providers import Credentials, Secret, entry
    from bulk.providers.plivo import PlivoProvider, classify, get_request, list_request

    creds = Credentials(auth_id, Secret(token))
    headers = entry("plivo").headers(creds)
    connector = aiohttp.TCPConnector(limit=conc + 4)
    async with aiohttp.ClientSession(connector=connector, raise_for_status=False) as session:
        sender = HttpSender(session, base_url, Meter(None, conc), headers=headers, provider="plivo")
        PlivoProvider(sender, auth_id)  # built as run_job builds it (no request)
        # CMIGOLD holds 20 settled numbers in the default state: full pages, real bodies
        requests = {
            "get": get_request(auth_id, "CMIGOLD", "+12125550110"),
            "list": list_request(auth_id, "CMIGOLD", 0),
        }
        request = requests[kind]
        remaining = n
        statuses: dict[int, int] = {}

        async def worker() -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                verdict = await sender(request, classify)
                statuses[verdict.status] = statuses.get(verdict.status, 0) + 1

        # warm up the connection pool outside the measurement
        await asyncio.gather(*(sender(request, classify) for _ in range(conc)))
        cpu = time.process_time()
        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(conc)))
        wall = time.perf_counter() - started
        cpu = time.process_time() - cpu
    return {
        "kind": kind,
        "requests": n,
        "concurrency": conc,
        "wall_s": wall,
        "requests_per_s": n / wall,
        "client_cpu_s": cpu,
        "cpu_s_per_1000": cpu / n * 1000,
        "requests_per_cpu_s": n / cpu if cpu else 0.0,
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
    }


def bench_overhead(
    s: Settings, folder: Path, extra: Sequence[str] = ()
) -> list[dict[str, Any]]:
    progress(f"client overhead: {s.overhead_requests:,} requests per kind")
    out = []
    with sandbox_process(plivo_rate_limit=0, settle_min=0.0, settle_max=0.0) as sb:
        for kind in ("get", "list"):
            out.append(
                anyio.run(
                    _overhead,
                    sb.base_url,
                    sb.auth_id,
                    sb.token,
                    kind,
                    s.overhead_requests,
                    s.overhead_concurrency,
                    backend="asyncio",
                )
            )
    return out


# --- 3. memory --------------------------------------------------------------------------------


def _peak_rss_mib() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    if sys.platform == "darwin":  # pragma: no cover
        peak //= 1024
    return float(peak) / 1024.0


def _memory_child(options_json: str) -> int:
    """Child process: a dry run of ``input``; prints its own peak RSS as JSON."""
    o = json.loads(options_json)
    baseline = _peak_rss_mib()
    from bulk import JobSpec, run_job

    imported = _peak_rss_mib()
    spec = JobSpec(
        command="link",
        input=Path(o["input"]),
        campaigns=Path(o["campaigns"]),
        base_url=o["base_url"],
        account=o["auth_id"],
        token=o["token"],
        dry_run=True,
    )
    started = time.perf_counter()
    result = anyio.run(run_job, spec, backend="asyncio")
    print(
        json.dumps(
            {
                "rows": result.rows,
                "wall_s": time.perf_counter() - started,
                "peak_rss_mib": _peak_rss_mib(),
                "rss_after_imports_mib": imported,
                "rss_at_start_mib": baseline,
                "requests": result.stats.total,
                "planned_links": sum(len(v) for v in result.plan.to_link.values())
                if result.plan
                else 0,
                "rejected": result.counts.get("rejected", 0),
            }
        )
    )
    return 0


def bench_memory(s: Settings, folder: Path, extra: Sequence[str] = ()) -> list[dict[str, Any]]:
    progress("memory: " + ", ".join(f"{n:,}" for n in s.memory_rows) + " rows")
    with pooled_sandbox(**core_sandbox(s, folder)) as sb:
        return [_memory_run(s, folder, sb, rows) for rows in s.memory_rows]


def _memory_run(s: Settings, folder: Path, sb: RemoteSandbox, rows: int) -> dict[str, Any]:
    """A dry run of ``rows`` rows in a fresh process; its peak RSS and the input's size."""
    campaigns = campaign_ids(s.campaigns)
    source = write_inputs(folder, rows, campaigns, f"memory-{rows}")
    sb.reset()
    options = {
        "input": str(source),
        "campaigns": str(folder / "campaigns.csv"),
        "base_url": sb.base_url,
        "auth_id": sb.auth_id,
        "token": sb.token,
    }
    done = subprocess.run(
        [sys.executable, "-m", "bulk.bench.pipeline", "--memory-child", json.dumps(options)],
        capture_output=True,
        text=True,
        check=True,
        timeout=900,
    )
    record: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    record["input_mb"] = source.stat().st_size / 1e6
    source.unlink()
    return record


# --- 4. the SDK baseline ----------------------------------------------------------------------


def bench_sdk(s: Settings, folder: Path, extra: Sequence[str] = ()) -> dict[str, Any]:
    progress(f"SDK baseline: {s.sdk_sequential} sequential, {s.sdk_threaded} threaded")
    with pooled_sandbox(**core_sandbox(s, folder)) as sb:
        return _sdk_runs(s, folder, sb)


def _sdk_runs(s: Settings, folder: Path, sb: RemoteSandbox) -> dict[str, Any]:
    from bulk.bench._sdk_baseline import run_sdk

    campaigns = campaign_ids(s.campaigns)
    out: dict[str, Any] = {}
    for name, n, threads in (
        ("sequential", s.sdk_sequential, 1),
        ("threaded", s.sdk_threaded, s.sdk_threads),
    ):
        sb.reset()
        work = [(campaigns[i % len(campaigns)], number(i)) for i in range(n)]
        sdk = run_sdk(sb.base_url, sb.auth_id, sb.token, work, threads=threads, poll=s.sdk_poll)
        sdk["server_rate_limited"] = sb.totals()["rate_limited"]
        bulk = run_bulk(sb, folder, s, n, f"sdk-{name}")
        ratios = {
            key: (sdk[key] / bulk[key] if bulk[key] else None)
            for key in ("wall_s", "requests_total", "client_cpu_s")
        }
        ratios["errors_total"] = (
            sdk["errors_total"] / bulk["errors_total"] if bulk["errors_total"] else None
        )
        out[name] = {"sdk": sdk, "bulk": bulk, "sdk_over_bulk": ratios}
    return out


# --- report -----------------------------------------------------------------------------------


def aims(results: dict[str, Any]) -> dict[str, dict[str, Any]]:
    if not {"throughput", "overhead", "memory"} <= set(results):
        return {}
    t = results["throughput"]
    overhead = results["overhead"]
    memory = results["memory"]
    biggest = max(memory, key=lambda m: m["rows"]) if memory else None
    worst_cpu = min(o["requests_per_cpu_s"] for o in overhead) if overhead else 0.0
    return {
        "share_of_limit >= 95% (while work remained)": {
            "value": t["busy_share_of_limit"],
            "met": t["busy_share_of_limit"] >= 0.95,
        },
        "no 429 after the first pause": {
            "value": t["rate_limited"],
            "met": t["rate_limited"] <= 1,
        },
        "requests <= 1.1 x fewest": {
            "value": t["requests_vs_fewest"],
            "met": t["requests_vs_fewest"] <= 1.1,
        },
        "client >= 2,000 requests per CPU-second": {"value": worst_cpu, "met": worst_cpu >= 2000},
        "peak RSS < 1 GB at the largest size": {
            "value": biggest["peak_rss_mib"] if biggest else None,
            "rows": biggest["rows"] if biggest else None,
            "met": bool(biggest and biggest["peak_rss_mib"] < 1000),
        },
    }


def _fmt_requests(requests: dict[str, int]) -> str:
    return " ".join(f"{k}={v}" for k, v in sorted(requests.items()))


def _render_heading(results: dict[str, Any]) -> list[str]:
    cfg = results["settings"]
    return [
        f"bulk pipeline benchmark ({'quick' if results['quick'] else 'full'}); sandbox: "
        f"{LIMIT_REQUESTS} req/{LIMIT_WINDOW:g} s, latency {cfg['latency_min'] * 1000:.0f}-"
        f"{cfg['latency_max'] * 1000:.0f} ms, settle {cfg['settle_min']:g}-{cfg['settle_max']:g} s,"
        f" poll interval {cfg['poll_interval']:g} s"
    ]


def _render_throughput(t: dict[str, Any]) -> list[str]:
    rows = [
        ("wall time", f"{t['wall_s']:.1f} s"),
        ("requests", f"{t['requests_total']} ({_fmt_requests(t['requests'])})"),
        ("fewest the plan needs", f"{t['fewest_requests']}  -> x{t['requests_vs_fewest']:.3f}"),
        (
            "rate while work remained",
            f"{t['busy_rate']:.1f} req/s over {t['busy_s']:.1f} s busy = "
            f"{t['busy_share_of_limit'] * 100:.1f} % of {LIMIT_RATE:g}/s",
        ),
        (
            "rate first to last request",
            f"{t['effective_rate']:.1f} req/s over {t['active_s']:.1f} s = "
            f"{t['share_of_limit'] * 100:.1f} % (includes waits for settling)",
        ),
        ("429s received", f"{t['rate_limited']} (sandbox counted {t['server_rate_limited']})"),
        ("retries / transport errors", f"{t['retries']} / {t['transport_errors']}"),
        ("outcomes", ", ".join(f"{k} {v}" for k, v in t["outcomes"].items() if v)),
        ("client CPU", f"{t['client_cpu_s']:.1f} s"),
    ]
    return [
        f"1. throughput: {t['numbers']:,} numbers over {t['campaigns']} campaigns (run_job)",
        *(f"   {k:<28} {v}" for k, v in rows),
    ]


def _render_overhead(overhead: list[dict[str, Any]]) -> list[str]:
    lines = [
        "2. client overhead (no limit, no latency; sandbox in another process)",
        f"   {'kind':<6} {'requests':>8} {'conc':>4} {'req/s wall':>11} {'CPU s/1000':>11}"
        f" {'req/CPU-s':>10}",
    ]
    for o in overhead:
        lines.append(
            f"   {o['kind']:<6} {o['requests']:>8} {o['concurrency']:>4} "
            f"{o['requests_per_s']:>11.0f} {o['cpu_s_per_1000']:>11.3f} "
            f"{o['requests_per_cpu_s']:>10.0f}"
        )
    return lines


def _render_memory(memory: list[dict[str, Any]]) -> list[str]:
    lines = [
        "3. memory: dry run (validate + plan), fresh process each",
        f"   {'rows':>10} {'input MB':>9} {'wall s':>7} {'peak RSS MiB':>13} {'after imports':>14}"
        f" {'requests':>9}",
    ]
    for m in memory:
        lines.append(
            f"   {m['rows']:>10,} {m['input_mb']:>9.1f} {m['wall_s']:>7.1f} "
            f"{m['peak_rss_mib']:>13.0f} {m['rss_after_imports_mib']:>14.0f} {m['requests']:>9}"
        )
    return lines


def _render_sdk_run(name: str, r: dict[str, Any]) -> list[str]:
    """One SDK run beside bulk's on the same numbers, then the ratios."""
    lines: list[str] = []
    for who in ("sdk", "bulk"):
        x = r[who]
        if who == "bulk":
            label = "bulk, same numbers"
        else:
            label = f"sdk {name}" + (f" ({x['threads']} thr)" if x["threads"] > 1 else "")
        lines.append(
            f"   {label:<22} {x['numbers']:>7} {x['wall_s']:>8.1f} {x['requests_total']:>9} "
            f"{x['rate_limited']:>5} {x['errors_total']:>7} {x['linked']:>7} "
            f"{x['client_cpu_s']:>6.2f}"
        )
    ratio = r["sdk_over_bulk"]
    parts = []
    for key, label in (
        ("wall_s", "wall"),
        ("requests_total", "requests"),
        ("client_cpu_s", "CPU"),
        ("errors_total", "errors"),
    ):
        value = ratio[key]
        parts.append(f"{label} x{value:.2f}" if value is not None else f"{label} n/a")
    lines.append(f"   {'sdk / bulk':<22} " + ", ".join(parts))
    return lines


def _render_sdk(sdk: dict[str, Any], sdk_poll: float) -> list[str]:
    lines = [
        f"4. the official plivo SDK (link one number, get_number every {sdk_poll:g} s until "
        "settled) vs bulk on the same numbers",
        f"   {'run':<22} {'numbers':>7} {'wall s':>8} {'requests':>9} {'429s':>5} {'errors':>7}"
        f" {'linked':>7} {'CPU s':>6}",
    ]
    for name, r in sdk.items():
        lines += _render_sdk_run(name, r)
    return lines


def _render_aims(aims: dict[str, Any]) -> list[str]:
    lines = ["aims"]
    for name, a in aims.items():
        value = a["value"]
        shown = f"{value:.3f}" if isinstance(value, float) else str(value)
        lines.append(f"   {'met ' if a['met'] else 'MISS'}  {name:<42} {shown}")
    return lines


@dataclass(frozen=True, slots=True)
class Section:
    """One section of the benchmark: ``run(settings, folder, bulk_args)`` gives its result
    (kept in the JSON under the section's name), ``render(result, settings)`` its table."""

    run: Callable[[Settings, Path, Sequence[str]], Any]
    render: Callable[[Any, dict[str, Any]], list[str]]


#: every section, in the order they run and print; ``--only`` picks some
SECTIONS: dict[str, Section] = {
    "throughput": Section(bench_throughput, lambda t, _: _render_throughput(t)),
    "overhead": Section(bench_overhead, lambda o, _: _render_overhead(o)),
    "memory": Section(bench_memory, lambda m, _: _render_memory(m)),
    "sdk": Section(bench_sdk, lambda r, settings: _render_sdk(r, settings["sdk_poll"])),
    "floor": Section(figures.bench_floor_and_lean, lambda r, _: figures.render_floor(r)),
    "agentmessage": Section(
        figures.bench_agentmessage, lambda r, _: figures.render_agentmessage(r)
    ),
    "storm": Section(figures.bench_storm, lambda r, _: figures.render_storm(r)),
    "batch_cap": Section(figures.bench_batch_cap, lambda r, _: figures.render_batch_cap(r)),
}


def render(results: dict[str, Any]) -> str:
    """The results as the plain-text tables printed at the end of a run."""
    sections = [_render_heading(results)]
    for name, section in SECTIONS.items():
        if name in results:
            sections.append(section.render(results[name], results["settings"]))
    sections.append(_render_aims(results["aims"]))
    return "\n\n".join("\n".join(section) for section in sections)


def run(
    s: Settings, quick: bool, only: Sequence[str] = tuple(SECTIONS), bulk_args: Sequence[str] = ()
) -> dict[str, Any]:
    """The chosen sections; ``bulk_args`` go to every ``bulk link`` of sections 5-8."""
    folder = Path(tempfile.mkdtemp(prefix="bulk-bench-pipeline-"))
    results: dict[str, Any] = {"quick": quick, "settings": asdict(s), "bulk_args": list(bulk_args)}
    results["rate_auto_available"] = figures.cli_accepts("--rate", "auto")
    try:
        results["sandbox"] = core_sandbox(s, folder)
        with sandboxes():  # a sandbox process per configuration, shared by the sections
            for name, section in SECTIONS.items():
                if name in only:
                    results[name] = section.run(s, folder, bulk_args)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    results["aims"] = {**aims(results), **figures.aims(results)}
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bulk.bench.pipeline",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--json",
        type=Path,
        default=Path("bench-results.json"),
        help="where to write the results [default: bench-results.json]",
    )
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke test")
    parser.add_argument("--numbers", type=int, help="throughput run size")
    parser.add_argument("--sdk-sequential", type=int, help="numbers for the sequential SDK run")
    parser.add_argument("--sdk-threaded", type=int, help="numbers for the threaded SDK run")
    parser.add_argument(
        "--only",
        help=f"comma-separated sections to run [default: all]: {','.join(SECTIONS)}",
    )
    parser.add_argument(
        "--long",
        action="store_true",
        help="also link 10,000 numbers with settle 20-60 s in the floor section (many minutes)",
    )
    parser.add_argument(
        "--bulk-arg",
        action="append",
        default=[],
        metavar="ARG",
        help="an argument added to every 'bulk link' of sections 5-8 (repeat: "
        "--bulk-arg=--rate --bulk-arg=auto)",
    )
    parser.add_argument("--memory-child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.memory_child:
        return _memory_child(args.memory_child)
    s = QUICK if args.quick else Settings()
    changes = {
        k: v
        for k, v in (
            ("numbers", args.numbers),
            ("sdk_sequential", args.sdk_sequential),
            ("sdk_threaded", args.sdk_threaded),
            ("long", args.long or None),
        )
        if v is not None
    }
    if changes:
        s = Settings(**{**asdict(s), **changes})
    only = tuple(SECTIONS) if not args.only else tuple(x.strip() for x in args.only.split(","))
    unknown = set(only) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections {sorted(unknown)}; known: {', '.join(SECTIONS)}")
    results = run(s, args.quick, only, args.bulk_arg)
    print(render(results))
    args.json.write_text(json.dumps(results, indent=2, default=str), encoding="utf-8")
    print(f"\nwrote {args.json}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())


__all__ = ["QUICK", "Settings", "main", "number", "run"]
