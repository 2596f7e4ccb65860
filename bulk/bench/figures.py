"""Sections 5-8 of ``python -m bulk.bench.pipeline``: the floor and a lean client, AgentMessage
limits, 429 storms, a batch cap.

bulk runs here through its command line (``bulk link ...``, in this process), so whatever the
CLI defaults to (rate mode, batch size, poll timing) is what is measured, and options the CLI
may not accept yet (``--rate auto``) are detected and reported ``n/a``. Requests and 429s are
the sandbox's own counts; wall time is the run's ``--summary-json`` span.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import signal
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import anyio

from bulk.bench._common import (
    LIMIT_RATE,
    LIMIT_REQUESTS,
    LIMIT_WINDOW,
    RemoteSandbox,
    Settings,
    campaign_ids,
    fewest_requests,
    number,
    pooled_sandbox,
    progress,
    sandbox_process,
    split,
    write_state,
)

#: the sandbox's largest Plivo batch unless told otherwise
SANDBOX_BATCH = 100
AM_CAMPAIGN = "5e000000-0000-4000-8000-0000000000b1"
AM_KEY_ENV = "AGENTMESSAGE_API_KEY"


@dataclass(frozen=True, slots=True)
class Work:
    """One bulk or lean run: rows round-robin over ``campaigns`` (Plivo ids or the AM one)."""

    rows: int
    campaigns: tuple[str, ...]
    provider: str = "plivo"


def cli_accepts(option: str, value: str) -> bool:
    """Whether ``bulk link`` takes ``option value`` (e.g. ``--rate auto``) on this branch."""
    import click

    from bulk.cli.run import link

    for param in link.params:
        if isinstance(param, click.Option) and option in param.opts:
            try:
                param.type.convert(value, param, None)
            except click.BadParameter:
                return False
            return True
    return False


def write_work(folder: Path, work: Work, stem: str) -> tuple[Path, Path]:
    """``number,campaign`` rows (aliases) and the campaigns file mapping aliases to ids."""

    source = folder / f"{stem}.csv"
    lines = ["number,campaign"]
    lines += [f"{number(i)},c{i % len(work.campaigns)}" for i in range(work.rows)]
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    campaigns = folder / f"{stem}.campaigns.csv"
    pairs = [f"{cid},c{i}" for i, cid in enumerate(work.campaigns)]
    campaigns.write_text("\n".join(["campaign_id,alias", *pairs]) + "\n", encoding="utf-8")
    return source, campaigns


class Sampler:
    """The sandbox's request counters every ``every`` seconds, in a thread: all requests,
    and those to ``write_endpoint`` (the requests that change state)."""

    def __init__(self, sb: RemoteSandbox, write_endpoint: str, every: float = 0.25) -> None:
        self.sb, self.write_endpoint, self.every = sb, write_endpoint, every
        self.samples: list[tuple[float, int, int]] = []  # (t, all requests, writes)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self._stop.wait(self.every):
            self.take()

    def take(self) -> None:
        counters = self.sb.admin("counters?numbers=0")  # per-number counters: not needed
        writes = counters["endpoints"].get(self.write_endpoint, {}).get("requests", 0)
        self.samples.append((time.monotonic(), counters["totals"]["requests"], writes))

    def __enter__(self) -> Sampler:
        self.take()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.take()

    def sending_rate(self) -> tuple[float, float]:
        """(requests/s, seconds) from the first request seen to the last write's sample."""
        first = next((s for s in self.samples if s[1] > 0), None)
        final_writes = self.samples[-1][2]
        done = next((s for s in self.samples if s[2] >= final_writes), None)
        if first is None or done is None or done[0] <= first[0]:
            return 0.0, 0.0
        # the first sample with requests counts some already: start one interval earlier
        span = done[0] - first[0] + self.every
        return done[1] / span, span


@contextlib.contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _invoke_cli(args: list[str], env: dict[str, str]) -> tuple[int, str]:
    """``bulk <args>`` in this process: (exit code, its stderr)."""
    from bulk.cli import main

    err = io.StringIO()
    term = signal.getsignal(signal.SIGTERM)
    code = 0
    with _environment(env), contextlib.redirect_stdout(io.StringIO()), \
            contextlib.redirect_stderr(err):
        try:
            main.main(args=args, prog_name="bulk", standalone_mode=False)
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
    signal.signal(signal.SIGTERM, term)
    return code, err.getvalue()


def _span(summary: dict[str, Any]) -> float:
    start = datetime.fromisoformat(summary["started_at"])
    end = datetime.fromisoformat(summary["finished_at"])
    return (end - start).total_seconds()


def run_cli(
    sb: RemoteSandbox, folder: Path, work: Work, stem: str, poll: float, extra: Sequence[str] = (),
    *, sample: bool = False, faults: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """``bulk link`` on ``work`` against a freshly reset sandbox; its figures."""
    source, campaigns = write_work(folder, work, stem)
    sb.reset()
    if faults:
        sb.admin("faults", faults)
    summary_path = folder / f"{stem}.summary.json"
    args = ["link", str(source), "--provider", work.provider, "--campaigns", str(campaigns),
            "--base-url", sb.base_url, "--yes", "--quiet", "--poll-interval", f"{poll:g}",
            "--settle-timeout", "900", "--summary-json", str(summary_path),
            "--report", str(folder / f"{stem}.report.csv"),
            "--journal", str(folder / f"{stem}.journal"), *extra]
    if work.provider == "plivo":
        env = {"PLIVO_AUTH_ID": sb.auth_id, "PLIVO_AUTH_TOKEN": sb.token}
    else:
        env = {AM_KEY_ENV: sb.am_key}
    sampler = Sampler(sb, "agentmessage.attach") if sample else None
    with sampler or contextlib.nullcontext():
        code, err = _invoke_cli(args, env)
    if not summary_path.exists():
        raise RuntimeError(f"bulk link wrote no summary (exit {code}): {err[-2000:]}")
    summary = json.loads(summary_path.read_text(encoding="utf-8"))
    server = sb.totals()
    counts = summary["counts"]
    out = {
        "numbers": work.rows,
        "campaigns": len(work.campaigns),
        "exit_code": code,
        "wall_s": _span(summary),
        "requests": summary["requests"],
        "requests_total": server["requests"],
        "rate_limited": server["rate_limited"],
        "outcomes": {k: v for k, v in counts.items() if v},
        "linked": counts.get("linked", 0),
        "all_rows_right": counts.get("linked", 0) == work.rows,
    }
    if sampler is not None:
        out["sending_rate"], out["sending_s"] = sampler.sending_rate()
    return out


def run_lean(sb: RemoteSandbox, work: Work, poll: float) -> dict[str, Any]:
    """The lean client (``bulk.bench.lean``) on ``work`` against a freshly reset sandbox."""
    from bulk.bench.lean import link_all

    sb.reset()
    by_campaign: dict[str, list[str]] = {}
    for i in range(work.rows):
        by_campaign.setdefault(work.campaigns[i % len(work.campaigns)], []).append(number(i)[1:])
    result: dict[str, Any] = anyio.run(
        lambda: link_all(sb.base_url, sb.auth_id, sb.token, by_campaign, poll_interval=poll),
        backend="asyncio",
    )
    server = sb.totals()
    result["requests_total"] = server["requests"]
    result["rate_limited"] = server["rate_limited"]
    result["all_rows_right"] = result["linked"] == work.rows
    return result


def fewest(rows: int, campaigns: int, batch: int) -> int:

    return fewest_requests(split(rows, min(rows, campaigns)), batch)


def floor_seconds(requests: int, rate: float, settle_max: float, latency_min: float) -> float:
    """No client can finish sooner: every request the plan needs sent at the sustained rate
    limit, the slowest settle after the last submission, and the four dependent round trips
    (campaign check, first page, link, confirming page) at the smallest latency."""
    return requests / rate + settle_max + 4 * latency_min


def ratio(a: float, b: float) -> float | None:
    return a / b if b else None


def campaigns_for(rows: int) -> int:
    """One campaign per 500 numbers (500 numbers: one campaign, as bulk beside the lean
    client)."""
    return max(1, min(20, math.ceil(rows / 500)))


__all__ = [
    "Work",
    "cli_accepts",
    "fewest",
    "floor_seconds",
    "run_cli",
    "run_lean",
]


# --- the sections -----------------------------------------------------------------------------


@contextlib.contextmanager
def plivo_sandbox(
    s: Settings, folder: Path, settle: tuple[float, float], **more: Any
) -> Iterator[RemoteSandbox]:
    """A sandbox process with the benchmark's Plivo campaigns, this settle range, latency."""

    state = write_state(folder, campaign_ids(s.campaigns))
    options = dict(
        settle_min=settle[0], settle_max=settle[1], plivo_rate_limit=LIMIT_REQUESTS,
        plivo_rate_window=LIMIT_WINDOW, state_file=str(state),
        faults={"latency_min": s.latency_min, "latency_max": s.latency_max}, **more,
    )
    with pooled_sandbox(**options) as sb:
        yield sb


def _floor_row(s: Settings, sb: RemoteSandbox, folder: Path, rows: int, settle: tuple[float, float],
               extra: Sequence[str], label: str) -> dict[str, Any]:

    work = Work(rows, tuple(campaign_ids(campaigns_for(rows))))
    progress(f"floor: {label}, {rows:,} numbers, settle {settle[0]:g}-{settle[1]:g} s")
    stem = f"floor-{rows}-{settle[1]:g}-" + "".join(c if c.isalnum() else "-" for c in label)
    bulk = run_cli(sb, folder, work, stem, s.lean_poll, extra)  # own journal per row
    need = fewest(rows, len(work.campaigns), SANDBOX_BATCH)
    floor = floor_seconds(need, LIMIT_RATE, settle[1], s.latency_min)
    bulk.update(label=label, settle=list(settle), fewest_requests=need, floor_s=floor,
                wall_over_floor=ratio(bulk["wall_s"], floor),
                requests_over_fewest=ratio(bulk["requests_total"], need))
    return bulk


def bench_floor_and_lean(s: Settings, folder: Path, extra: Sequence[str]) -> list[dict[str, Any]]:
    """Per settle range and size: bulk (as the CLI runs by default, and with ``--rate auto``
    when the CLI has it) with its floor, and the lean client on the same sandbox."""

    auto = cli_accepts("--rate", "auto")
    out = []
    for settle in s.floor_settles:
        with plivo_sandbox(s, folder, settle) as sb:
            for rows in s.floor_sizes:
                if rows >= 10_000 and settle[1] > 10 and not s.long:
                    continue  # --long: the 10,000 x slow-settle run takes many minutes
                row = _floor_row(s, sb, folder, rows, settle, extra, "bulk")
                if auto and s.rate_auto_rows:
                    row["rate_auto"] = _floor_row(s, sb, folder, rows, settle,
                                                  [*extra, "--rate", "auto"], "bulk --rate auto")
                else:
                    row["rate_auto"] = None  # n/a: the CLI has no --rate auto (or not asked)
                progress(f"lean client: {rows:,} numbers")
                work = Work(rows, tuple(campaign_ids(campaigns_for(rows))))
                row["lean"] = run_lean(sb, work, s.lean_poll)
                row["bulk_over_lean"] = {
                    "wall": ratio(row["wall_s"], row["lean"]["wall_s"]),
                    "requests": ratio(row["requests_total"], row["lean"]["requests_total"]),
                }
                out.append(row)
    return out


def am_state(folder: Path, rows: int) -> Path:
    """AgentMessage: one campaign, the benchmark's numbers owned by the sandbox org."""

    path = folder / "am-state.json"
    data = {"agentmessage": {
        "campaigns": [{"id": AM_CAMPAIGN, "name": "bench"}],
        "number_ranges": [{"start": number(0), "count": rows}],
    }}
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def bench_agentmessage(s: Settings, folder: Path, extra: Sequence[str]) -> list[dict[str, Any]]:
    """The sandbox's AgentMessage limit at each of ``am_limits`` requests/s (10 s window);
    bulk is not told (the CLI's default rate mode)."""

    out = []
    state = am_state(folder, max(s.am_rows))
    for limit, rows in zip(s.am_limits, s.am_rows, strict=True):
        progress(f"AgentMessage: limit {limit}/s, {rows:,} numbers")
        with sandbox_process(
            settle_min=s.settle_min, settle_max=s.settle_max, state_file=str(state),
            agentmessage_rate_limit=int(limit * 10), agentmessage_rate_window=10.0,
            faults={"latency_min": s.latency_min, "latency_max": s.latency_max},
        ) as sb:
            work = Work(rows, (AM_CAMPAIGN,), provider="agentmessage")
            r = run_cli(sb, folder, work, f"am-{limit}", s.lean_poll, extra, sample=True)
        r["limit"] = limit
        r["share_of_limit"] = r["sending_rate"] / limit
        r["share_429"] = ratio(r["rate_limited"], r["requests_total"]) or 0.0
        out.append(r)
    return out


def bench_storm(s: Settings, folder: Path, extra: Sequence[str]) -> dict[str, Any]:
    """``storm_rows`` numbers with and without 429 storms (2 % of requests start a burst of
    5), Plivo's 300 / 5 s, settle 1-3 s (the throughput settle range)."""

    rows = s.storm_rows
    work = Work(rows, tuple(campaign_ids(campaigns_for(rows))))
    latency = {"latency_min": s.latency_min, "latency_max": s.latency_max}
    storm = {**latency, "burst_429_rate": 0.02, "burst_429_length": 5}
    with plivo_sandbox(s, folder, (s.settle_min, s.settle_max)) as sb:
        progress(f"storm: {rows:,} numbers without storms")
        calm = run_cli(sb, folder, work, "storm-calm", s.poll_interval, extra)
        progress(f"storm: {rows:,} numbers under 429 storms")
        stormy = run_cli(sb, folder, work, "storm", s.poll_interval, extra, faults=storm)
    return {"calm": calm, "storm": stormy, "storm_over_calm": {
        "wall": ratio(stormy["wall_s"], calm["wall_s"]),
        "requests": ratio(stormy["requests_total"], calm["requests_total"]),
    }}


def bench_batch_cap(s: Settings, folder: Path, extra: Sequence[str]) -> dict[str, Any]:
    """The sandbox refuses Plivo batches over ``cap_batch``: every row right, and requests
    against what batches of ``cap_batch`` need."""

    rows = s.cap_rows
    work = Work(rows, tuple(campaign_ids(campaigns_for(rows))))
    progress(f"batch cap {s.cap_batch}: {rows:,} numbers")
    with plivo_sandbox(s, folder, (s.settle_min, s.settle_max),
                       plivo_max_batch=s.cap_batch) as sb:
        r = run_cli(sb, folder, work, "cap", s.poll_interval, extra)
    need = fewest(rows, len(work.campaigns), s.cap_batch)
    r.update(cap=s.cap_batch, fewest_requests=need,
             requests_over_fewest=ratio(r["requests_total"], need))
    return r


# --- report -----------------------------------------------------------------------------------


def _x(value: float | None) -> str:
    return "n/a" if value is None else f"x{value:.2f}"


def render_floor(rows: list[dict[str, Any]]) -> list[str]:
    lines = [
        "5. floor and the lean client (Plivo 300/5 s; floor = fewest requests at 60/s + slowest"
        " settle + 4 round trips)",
        f"   {'run':<18} {'numbers':>7} {'settle s':>8} {'wall s':>8} {'floor s':>8}"
        f" {'wall/floor':>10} {'requests':>8} {'fewest':>6} {'req/fewest':>10} {'429s':>5}"
        f" {'rows ok':>7}",
    ]
    for r in rows:
        settle = f"{r['settle'][0]:g}-{r['settle'][1]:g}"
        for x in (r, r["rate_auto"], r["lean"]):
            if x is None:
                lines.append(f"   {'bulk --rate auto':<18} {r['numbers']:>7} {settle:>8}   n/a"
                             " (the CLI has no --rate auto on this branch)")
                continue
            label = x.get("label", "lean client")
            floor = f"{r['floor_s']:>8.1f} {_x(ratio(x['wall_s'], r['floor_s'])):>10}"
            over = ratio(x["requests_total"], r["fewest_requests"])
            need = f"{r['fewest_requests']:>6} {_x(over):>10}"
            lines.append(
                f"   {label:<18} {r['numbers']:>7} {settle:>8} {x['wall_s']:>8.1f} {floor}"
                f" {x['requests_total']:>8} {need} {x['rate_limited']:>5}"
                f" {'yes' if x['all_rows_right'] else 'NO':>7}"
            )
        b = r["bulk_over_lean"]
        lines.append(f"   {'bulk / lean':<18} wall {_x(b['wall'])}, requests {_x(b['requests'])}")
    return lines


def render_agentmessage(rows: list[dict[str, Any]]) -> list[str]:
    lines = [
        "6. AgentMessage: the sandbox's limit changed, bulk not told (the CLI's default rate)",
        f"   {'limit/s':>7} {'numbers':>7} {'wall s':>7} {'sending req/s':>13} {'of limit':>8}"
        f" {'requests':>8} {'429s':>5} {'429 share':>9} {'rows ok':>7}",
    ]
    for r in rows:
        lines.append(
            f"   {r['limit']:>7g} {r['numbers']:>7} {r['wall_s']:>7.1f} {r['sending_rate']:>13.1f}"
            f" {r['share_of_limit'] * 100:>7.0f}% {r['requests_total']:>8} {r['rate_limited']:>5}"
            f" {r['share_429'] * 100:>8.1f}% {'yes' if r['all_rows_right'] else 'NO':>7}"
        )
    return lines


def render_storm(st: dict[str, Any]) -> list[str]:
    lines = [
        "7. 429 storms (2 % of requests start a burst of 5 429s) vs the same run without",
        f"   {'run':<10} {'numbers':>7} {'wall s':>8} {'requests':>8} {'429s':>5} {'rows ok':>7}",
    ]
    for name in ("calm", "storm"):
        x = st[name]
        lines.append(f"   {name:<10} {x['numbers']:>7} {x['wall_s']:>8.1f} {x['requests_total']:>8}"
                     f" {x['rate_limited']:>5} {'yes' if x['all_rows_right'] else 'NO':>7}")
    o = st["storm_over_calm"]
    lines.append(f"   {'storm/calm':<10} wall {_x(o['wall'])}, requests {_x(o['requests'])}")
    return lines


def render_batch_cap(c: dict[str, Any]) -> list[str]:
    kinds = c["requests"].items()
    return [
        f"8. batch cap: the sandbox takes at most {c['cap']} numbers per Plivo link request",
        f"   {c['numbers']:,} numbers over {c['campaigns']} campaigns: wall {c['wall_s']:.1f} s,"
        f" {c['requests_total']} requests ({' '.join(f'{k}={v}' for k, v in kinds)})"
        f" vs {c['fewest_requests']} with batches of {c['cap']} -> {_x(c['requests_over_fewest'])};"
        f" every row linked: {'yes' if c['all_rows_right'] else 'NO'} ({c['outcomes']})",
    ]


def _aim(value: float | None, met: bool) -> dict[str, Any]:
    return {"value": value, "met": met}


def aims(results: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The aims of sections 5-8, over whichever of them ran."""
    out: dict[str, dict[str, Any]] = {}
    for r in results.get("floor", []):
        tag = f"{r['numbers']:,} numbers, settle {r['settle'][0]:g}-{r['settle'][1]:g} s"
        w, q = r["wall_over_floor"] or 0.0, r["requests_over_fewest"] or 0.0
        out[f"wall <= 1.15 x floor ({tag})"] = _aim(w, w <= 1.15)
        out[f"requests <= 1.3 x fewest ({tag})"] = _aim(q, q <= 1.3)
        b = r["bulk_over_lean"]
        out[f"bulk faster than lean ({tag})"] = _aim(b["wall"], (b["wall"] or 9) < 1)
        fewer = (b["requests"] or 9) < 1
        out[f"bulk fewer requests than lean ({tag})"] = _aim(b["requests"], fewer)
    for r in results.get("agentmessage", []):
        out[f"AgentMessage rate >= 85% of {r['limit']:g}/s"] = _aim(
            r["share_of_limit"], r["share_of_limit"] >= 0.85)
        out[f"AgentMessage 429s <= 3% of requests at {r['limit']:g}/s"] = _aim(
            r["share_429"], r["share_429"] <= 0.03)
    if "storm" in results:
        o = results["storm"]["storm_over_calm"]
        out["storm wall <= 1.5 x calm"] = _aim(o["wall"], (o["wall"] or 9) <= 1.5)
        out["storm requests <= 1.5 x calm"] = _aim(o["requests"], (o["requests"] or 9) <= 1.5)
    if "batch_cap" in results:
        c = results["batch_cap"]
        q = c["requests_over_fewest"] or 0.0
        out["batch cap: every row linked"] = _aim(None, bool(c["all_rows_right"]))
        out["batch cap: requests <= 1.1 x batches of the cap"] = _aim(q, q <= 1.1)
    return out
