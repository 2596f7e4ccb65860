"""Helpers shared by the test modules (fixtures live in ``conftest.py``): a real sandbox on
loopback in a background thread, the CLI run against it, the report checked against the
sandbox's state, a loopback proxy that rewrites the sandbox's answers, real runs in a
subprocess, and a simulated provider for the meters on a :class:`VirtualClock`.

Test modules import these from here, never from one another.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import sqlite3
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import aiohttp
import anyio
import polars as pl
from aiohttp import web
from click.testing import CliRunner

from bulk.cli import main
from bulk.engine import Meter, PauseGate, VirtualClock
from bulk.sandbox import AdminClient, SandboxConfig, run_sandbox

# --- a sandbox on loopback --------------------------------------------------------------------


@dataclass
class ThreadedSandbox:
    base_url: str
    plivo_auth_id: str
    plivo_auth_token: str
    agentmessage_api_key: str
    #: every Plivo account's auth id -> its token
    plivo_accounts: dict[str, str] = field(default_factory=dict)

    def admin(self) -> AdminClient:
        return AdminClient(self.base_url)

    def counters(self) -> Any:
        return self.admin().counters()

    def state(self) -> Any:
        return self.admin().state()

    def env(self, provider: str) -> dict[str, str]:
        if provider == "plivo":
            return {"PLIVO_AUTH_ID": self.plivo_auth_id, "PLIVO_AUTH_TOKEN": self.plivo_auth_token}
        return {"AGENTMESSAGE_API_KEY": self.agentmessage_api_key}


@contextmanager
def threaded_sandbox(config: SandboxConfig, seed: Any = None) -> Iterator[ThreadedSandbox]:
    """Serve a sandbox from its own event loop in a daemon thread (``seed``: its state, e.g.
    :func:`bulk.sandbox.seed_for_accounts`, instead of the default one)."""
    ready = threading.Event()
    stop: asyncio.Event | None = None
    loop: asyncio.AbstractEventLoop | None = None
    holder: dict[str, ThreadedSandbox] = {}
    failure: list[BaseException] = []

    async def serve() -> None:
        nonlocal stop, loop
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        async with run_sandbox(config, **({} if seed is None else {"seed": seed})) as sb:
            holder["sb"] = ThreadedSandbox(
                sb.base_url,
                sb.plivo_auth_id,
                sb.plivo_auth_token,
                sb.agentmessage_api_key,
                dict(getattr(sb, "plivo_accounts", {})),
            )
            ready.set()
            await stop.wait()

    def main() -> None:
        try:
            anyio.run(serve, backend="asyncio")
        except BaseException as exc:  # pragma: no cover - surfaced below
            failure.append(exc)
            ready.set()

    thread = threading.Thread(target=main, daemon=True)
    thread.start()
    ready.wait(15)
    if failure:
        raise failure[0]
    try:
        yield holder["sb"]
    finally:
        assert loop is not None and stop is not None
        loop.call_soon_threadsafe(stop.set)
        thread.join(10)


@asynccontextmanager
async def on_loopback(app: web.Application) -> AsyncIterator[str]:
    """Serve ``app`` on a free loopback port for the block; yields its base URL."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


def write_csv(path: Path, header: str, rows: list[str]) -> Path:
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


# --- the CLI against the sandbox -------------------------------------------------------------


PROVIDERS = ["plivo", "agentmessage"]


CAMPAIGNS = {
    "plivo": {"marketing": "CUOGHIN", "alerts": "CRIGC80", "legacy": "CMIGOLD"},
    "agentmessage": {
        "marketing": "4f1c2d3e-0000-4000-8000-000000000001",
        "alerts": "4f1c2d3e-0000-4000-8000-000000000002",
        "legacy": "4f1c2d3e-0000-4000-8000-000000000003",
    },
}


FAST = [
    "--poll-interval",
    "0.2",
    "--settle-timeout",
    "4",
    "--timeout",
    "0.5",
    "--backoff-base",
    "0.05",
    "--resend-delay",
    "0.3",
    "--concurrency",
    "4",
    "--yes",
    "--quiet",
]


def campaigns_file(tmp_path: Path, provider: str) -> Path:
    rows = [f"{cid},{alias}" for alias, cid in CAMPAIGNS[provider].items()]
    return write_csv(tmp_path / "campaigns.csv", "campaign_id,alias", rows)


def run_cli(sb: ThreadedSandbox, provider: str, args: list[str]) -> Any:
    runner = CliRunner()
    # AgentMessage's default rate is a conservative 9.5/s; the test sandbox allows more
    rate = ["--rate", "60"] if provider == "agentmessage" and "--rate" not in args else []
    return runner.invoke(
        main,
        [*args, *rate, "--provider", provider, "--base-url", sb.base_url],
        env=sb.env(provider),
        catch_exceptions=False,
    )


def run_command(
    sb: ThreadedSandbox, provider: str, tmp_path: Path, command: str, src: Path, *extra: str
) -> tuple[Any, Path]:
    """``bulk COMMAND SRC`` with the provider's campaigns file, a report and a journal."""
    report = tmp_path / "out.csv"
    args = [command, str(src), "--campaigns", str(campaigns_file(tmp_path, provider))]
    args += ["--report", str(report), "--journal", str(tmp_path / "j"), *extra, *FAST]
    return run_cli(sb, provider, args), report


def read_report(path: Path) -> dict[int, dict[str, Any]]:
    frame = pl.read_csv(path, infer_schema=False)
    return {int(r["line"]): r for r in frame.iter_rows(named=True)}


def assert_no_number_changed_twice(sb: ThreadedSandbox) -> None:
    for number, c in sb.counters()["numbers"].items():
        for key in ("link_accepted", "unlink_accepted", "attach_accepted", "detach_accepted"):
            assert c.get(key, 0) <= 1, (number, key, c)


# --- the report against the sandbox's state --------------------------------------------------


AM_ORG = "org_sandbox"


def where(sb: ThreadedSandbox, provider: str) -> dict[str, dict[str, str]]:
    """number (E.164) -> {campaign id: status} at the sandbox now (AgentMessage: the campaign
    a number is attached to, or ``""`` with a detach still pending)."""
    state: Any = sb.state()
    found: dict[str, dict[str, str]] = {}
    if provider == "plivo":
        for cid, campaign in state["plivo"]["campaigns"].items():
            for entry in campaign["numbers"]:
                status = entry["status"] + (" unlinking" if entry["unlinking"] else "")
                found.setdefault(entry["number"], {})[cid] = status
        return found
    for entry in state["agentmessage"]["orgs"][AM_ORG]["numbers"]:
        status = str(entry["carrier_line_option_status"])
        if entry["campaign_id"] is not None:
            found.setdefault(entry["number"], {})[entry["campaign_id"]] = status
        elif status == "pending":
            found.setdefault(entry["number"], {})[""] = status
    return found


SETTLED = {"COMPLETED", "active"}


FAILED = {"FAILED", "failed"}


def assert_rows_match_the_sandbox(
    sb: ThreadedSandbox, provider: str, report: dict[int, dict[str, Any]], aliases: dict[str, str]
) -> None:
    """Every row's outcome is what the sandbox shows for its number."""
    now = where(sb, provider)
    for row in report.values():
        number, outcome, reason = row["e164"], row["outcome"], row["reason"] or ""
        if outcome in ("rejected", "unknown"):
            continue  # unknown claims nothing; rejected never reached the provider
        held = now.get(number, {})
        target = row["campaign_id"]
        if row["action"] in ("link", "move") and outcome in ("linked", "moved", "already"):
            assert held.get(target) in SETTLED, (row, held)
            assert len(held) == 1, (row, held)  # in no other campaign
        elif row["action"] == "unlink" and outcome in ("unlinked", "already"):
            assert target not in held, (row, held)
        elif outcome == "failed" and row["action"] == "link":
            assert held.get(target) not in SETTLED, (row, held)
        elif outcome == "failed" and row["action"] == "move":
            if reason.startswith("unlinked from"):
                assert not any(s in SETTLED for s in held.values()), (row, held)
            else:
                assert held.get(target) not in SETTLED, (row, held)
        elif outcome == "failed" and row["action"] == "unlink":
            assert target in held, (row, held)


def assert_no_number_left_nowhere_unsaid(
    sb: ThreadedSandbox, provider: str, report: dict[int, dict[str, Any]]
) -> None:
    """A move's number that sits in no campaign now is reported so."""
    now = where(sb, provider)
    for row in report.values():
        if row["action"] != "move" or now.get(row["e164"]):
            continue
        assert row["outcome"] in ("failed", "unknown"), row
        assert "unlinked from" in (row["reason"] or ""), row


def run_and_compare(
    sb: ThreadedSandbox, provider: str, tmp_path: Path, command: str, src: Path, *extra: str
) -> dict[int, dict[str, Any]]:
    """Run ``bulk COMMAND`` and check the report against the sandbox: one row per input row,
    each row's outcome what the sandbox shows, no move's number left nowhere unsaid, no
    number changed twice."""
    result, path = run_command(sb, provider, tmp_path, command, src, *extra)
    assert result.exit_code in (0, 1), result.output
    report = read_report(path)
    assert len(report) == len(src.read_text().splitlines()) - 1
    assert_rows_match_the_sandbox(sb, provider, report, CAMPAIGNS[provider])
    assert_no_number_left_nowhere_unsaid(sb, provider, report)
    assert_no_number_changed_twice(sb)
    return report


@contextmanager
def behind_proxy(
    sb: ThreadedSandbox,
    *,
    path: Callable[[str], str] = lambda path_qs: path_qs,
    page: Callable[[str, dict[str, Any]], dict[str, Any]] = lambda path, data: data,
    before: Callable[[str, str, bytes], web.Response | None] = lambda method, path, body: None,
    after: Callable[[str, str, bytes, int, bytes], web.Response | None] = (
        lambda method, path, body, status, answer: None
    ),
    headers: Callable[[dict[str, str]], dict[str, str]] = lambda sent: sent,
) -> Iterator[ThreadedSandbox]:
    """The sandbox behind a loopback proxy that passes everything through, except that each
    request's path and query go through ``path`` and each Plivo list page's JSON body (a GET
    of ``.../Number/...`` answered 200) through ``page`` (called with the request's path).
    ``before`` (method, path, request body) may answer a request itself, which then never
    reaches the sandbox; ``after`` (the same, then the sandbox's status and body) may replace
    the sandbox's answer; ``headers`` rewrites the headers sent on (Host already left out)."""
    ready = threading.Event()
    holder: dict[str, Any] = {}

    async def serve() -> None:
        stop = asyncio.Event()
        holder["loop"], holder["stop"] = asyncio.get_running_loop(), stop
        async with aiohttp.ClientSession(auto_decompress=False) as session:

            async def forward(request: web.Request) -> web.Response:
                sent_on = headers({k: v for k, v in request.headers.items() if k.lower() != "host"})
                sent = await request.read()
                if (own := before(request.method, request.path, sent)) is not None:
                    return own
                async with session.request(
                    request.method, sb.base_url + path(request.path_qs),
                    data=sent, headers=sent_on, allow_redirects=False,
                ) as answer:
                    body, status = await answer.read(), answer.status
                    kind = answer.headers.get("Content-Type", "application/json")
                if (own := after(request.method, request.path, sent, status, body)) is not None:
                    return own
                if request.method == "GET" and "/Number/" in request.path and status == 200:
                    body = json.dumps(page(request.path, json.loads(body))).encode()
                return web.Response(body=body, status=status, headers={"Content-Type": kind})

            app = web.Application()
            app.router.add_route("*", "/{tail:.*}", forward)
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            await web.TCPSite(runner, "127.0.0.1", 0).start()
            holder["url"] = f"http://127.0.0.1:{runner.addresses[0][1]}"
            ready.set()
            await stop.wait()
            await runner.cleanup()

    thread = threading.Thread(target=lambda: asyncio.run(serve()), daemon=True)
    thread.start()
    assert ready.wait(10)
    try:
        yield replace(sb, base_url=holder["url"])
    finally:
        holder["loop"].call_soon_threadsafe(holder["stop"].set)
        thread.join(10)


# --- real runs in a subprocess ---------------------------------------------------------------


NUMBERS = [f"+1206555{n:04d}" for n in range(100, 200)]


def link_command(sb: ThreadedSandbox, tmp_path: Path) -> list[str]:
    src = write_csv(tmp_path / "in.csv", "number,campaign_id", [f"{n},CUOGHIN" for n in NUMBERS])
    return [
        sys.executable,
        "-m",
        "bulk",
        "link",
        str(src),
        "--base-url",
        sb.base_url,
        "--rate",
        "25",
        "--batch-size",
        "1",
        "--concurrency",
        "4",
        "--poll-interval",
        "0.3",
        "--settle-timeout",
        "20",
        "--report",
        str(tmp_path / "report.csv"),
        "--journal",
        str(tmp_path / "run.journal"),
        "--yes",
        "--quiet",
    ]


def plivo_env(sb: ThreadedSandbox) -> dict[str, str]:
    return {**os.environ, **sb.env("plivo")}


def journal_states(path: Path) -> dict[str, int]:
    with sqlite3.connect(path) as db:
        return dict(db.execute("SELECT state, count(*) FROM rows GROUP BY state").fetchall())


def wait_for_progress(path: Path, at_least: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if path.exists():
            try:
                states = journal_states(path)
            except sqlite3.Error:
                states = {}
            if sum(n for s, n in states.items() if s != "planned") >= at_least:
                return
        assert proc.poll() is None, "the run ended before it could be interrupted"
        time.sleep(0.05)
    raise AssertionError("the run made no progress")


# --- a provider simulated for the meters -----------------------------------------------------


class Window:
    """A provider's sliding-window limit: at most ``limit`` requests in any ``window``
    seconds, ``others`` of them per second taken by other software on the same account."""

    def __init__(self, limit: int, window: float = 1.0, others: float = 0.0) -> None:
        self.limit, self.window, self.others = limit, window, others
        self.accepted: deque[float] = deque()

    def __call__(self, now: float) -> bool:
        while self.accepted and self.accepted[0] <= now - self.window:
            self.accepted.popleft()
        if len(self.accepted) + self.others * self.window >= self.limit:
            return False
        self.accepted.append(now)
        return True


async def drive(
    meter: Meter,
    requests: int,
    answer: Callable[[float], bool],
    retry_after: float | None = None,
) -> tuple[list[float], list[float], int]:
    """Send ``requests`` requests to their end (a 429 is sent again); the times they left,
    the rate after each answer, and how many 429s came back."""
    stamps: list[float] = []
    rates: list[float] = []
    throttled = 0
    done = 0
    while done < requests:
        async with meter.slot() as sent_at:
            stamps.append(sent_at)
        if answer(sent_at):
            meter.answered(sent_at)
            done += 1
        else:
            throttled += 1
            meter.rate_limited(retry_after, sent_at)
        rates.append(meter.current_rate or 0.0)
    return stamps, rates, throttled


def adaptive(start: float = 10.0, max_rate: float = 100.0) -> tuple[Meter, VirtualClock]:
    clock = VirtualClock()
    gate = PauseGate(rng=random.Random(7), clock=clock)
    return Meter(start, 8, gate=gate, adaptive=True, max_rate=max_rate), clock


#: the sandbox endpoints whose requests change a number's campaign
CHANGE_ENDPOINTS = ("plivo.link", "plivo.unlink", "agentmessage.attach", "agentmessage.detach")


def change_requests(sb: ThreadedSandbox) -> int:
    """How many requests that change something (link, unlink, attach, detach) reached the
    sandbox, whatever their answer."""
    endpoints = sb.counters()["endpoints"]
    return sum(endpoints.get(name, {}).get("requests", 0) for name in CHANGE_ENDPOINTS)
