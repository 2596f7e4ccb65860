"""What every benchmark section shares: the settings, the generated numbers and input files,
the fewest requests a plan needs, progress lines, and sandboxes each in a child process (one
per configuration for a whole run, see :func:`sandboxes`).

``python -m bulk.bench._common OPTIONS_JSON`` is that child process: it serves a sandbox,
prints ``READY url auth_id token key`` and stops when its stdin closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio

#: Plivo's documented limit, the sandbox's default: 300 requests per 5 s
LIMIT_REQUESTS = 300
LIMIT_WINDOW = 5.0
LIMIT_RATE = LIMIT_REQUESTS / LIMIT_WINDOW
PAGE = 20
AREA_CODES = ("415", "212", "312", "650", "206", "303", "617", "512", "305", "404", "702", "213")
#: exchanges 220..999 without N11 and 555: 770 per area code, 10,000 lines each
EXCHANGES = tuple(e for e in range(220, 1000) if e % 100 != 11 and e != 555)


@dataclass(frozen=True, slots=True)
class Settings:
    """Sizes and sandbox behaviour of one benchmark run."""

    numbers: int = 10_000
    campaigns: int = 20
    latency_min: float = 0.020
    latency_max: float = 0.050
    settle_min: float = 1.0
    settle_max: float = 3.0
    #: > settle_max: one list round per campaign confirms every link of the campaign
    poll_interval: float = 3.5
    concurrency: int = 8
    overhead_requests: int = 5_000
    overhead_concurrency: int = 8
    memory_rows: tuple[int, ...] = (100_000, 1_000_000)
    sdk_sequential: int = 20
    sdk_threaded: int = 320
    sdk_threads: int = 16
    sdk_poll: float = 1.0
    #: sections 5-8 (bulk.bench.figures): the poll interval of bulk beside the lean client
    lean_poll: float = 1.0
    floor_sizes: tuple[int, ...] = (500, 10_000)
    floor_settles: tuple[tuple[float, float], ...] = ((1.0, 3.0), (20.0, 60.0))
    #: also run 10,000 numbers with the slow settle (many minutes)
    long: bool = False
    #: a "bulk --rate auto" row beside each floor run, when the CLI accepts it
    rate_auto_rows: bool = True
    am_limits: tuple[float, ...] = (5.0, 30.0, 100.0)
    am_rows: tuple[int, ...] = (150, 600, 1_000)
    storm_rows: int = 3_000
    cap_rows: int = 1_000
    cap_batch: int = 40


QUICK = Settings(
    numbers=360,
    settle_min=0.05,
    settle_max=0.2,
    poll_interval=0.3,
    overhead_requests=400,
    memory_rows=(2_000, 10_000),
    sdk_sequential=4,
    sdk_threaded=32,
    sdk_poll=0.1,
    lean_poll=0.1,
    floor_sizes=(40,),
    floor_settles=((0.05, 0.2),),
    rate_auto_rows=False,
    am_limits=(30.0,),
    am_rows=(6,),
    storm_rows=60,
    cap_rows=90,
)


# --- inputs -----------------------------------------------------------------------------------


def campaign_ids(count: int) -> list[str]:
    return [f"CBEN{i:03d}" for i in range(count)]


def number(i: int) -> str:
    """The i-th distinct valid US number (E.164)."""
    line = i % 10_000
    exchange = EXCHANGES[(i // 10_000) % len(EXCHANGES)]
    area = AREA_CODES[i // (10_000 * len(EXCHANGES))]
    return f"+1{area}{exchange}{line:04d}"


def write_inputs(folder: Path, rows: int, campaigns: Sequence[str], stem: str) -> Path:
    """``number,campaign`` rows, campaigns round-robin (by alias), written in chunks."""
    path = folder / f"{stem}.csv"
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write("number,campaign\n")
        chunk: list[str] = []
        for i in range(rows):
            chunk.append(f"{number(i)[2:]},c{i % len(campaigns)}\n")
            if len(chunk) >= 50_000:
                out.write("".join(chunk))
                chunk.clear()
        out.write("".join(chunk))
    return path


def write_campaigns(folder: Path, campaigns: Sequence[str]) -> Path:
    path = folder / "campaigns.csv"
    lines = ["campaign_id,alias", *(f"{cid},c{i}" for i, cid in enumerate(campaigns))]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def write_state(folder: Path, campaigns: Sequence[str]) -> Path:
    """A sandbox state file: these Plivo campaigns, all ACTIVE and empty."""
    path = folder / "state.json"
    data = {
        "plivo": {
            "campaigns": [
                {"campaign_id": cid, "alias": f"c{i}", "usecase": "MIXED"}
                for i, cid in enumerate(campaigns)
            ]
        }
    }
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def fewest_requests(per_campaign: Sequence[int], batch: int, existing: int = 0) -> int:
    """Campaign checks + initial list pages + link batches + one list round, per campaign."""
    total = 0
    for n in per_campaign:
        if n == 0:
            continue
        total += 1 + max(1, math.ceil(existing / PAGE)) + math.ceil(n / batch)
        total += math.ceil((existing + n) / PAGE)
    return total


def split(rows: int, campaigns: int) -> list[int]:
    return [rows // campaigns + (1 if i < rows % campaigns else 0) for i in range(campaigns)]


# --- the sandbox in its own process -----------------------------------------------------------


def _serve(config_json: str) -> int:
    """Child process: serve a sandbox, print ``READY url auth_id token``, stop on stdin EOF."""
    from bulk.sandbox import FaultConfig, SandboxConfig, run_sandbox

    options = json.loads(config_json)
    faults = FaultConfig(**options.pop("faults", {}))
    # more Plivo accounts (auth id -> its limit), as bulk.bench.accounts asks
    seed_accounts = options.pop("seed_accounts", None)
    if options.get("state_file"):
        options["state_file"] = Path(options["state_file"])
    config = SandboxConfig(faults=faults, **options)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()

        def wait_for_eof() -> None:
            sys.stdin.read()
            loop.call_soon_threadsafe(stop.set)

        threading.Thread(target=wait_for_eof, daemon=True).start()
        extra: dict[str, Any] = {}
        if seed_accounts:
            from bulk.sandbox import seed_for_accounts

            extra["seed"] = seed_for_accounts(plivo=seed_accounts)
        async with run_sandbox(config, **extra) as sb:
            print(
                f"READY {sb.base_url} {sb.plivo_auth_id} {sb.plivo_auth_token} "
                f"{sb.agentmessage_api_key}",
                flush=True,
            )
            await stop.wait()

    anyio.run(main, backend="asyncio")
    return 0


@dataclass(slots=True)
class RemoteSandbox:
    base_url: str
    auth_id: str
    token: str
    am_key: str
    pid: int

    def admin(self, path: str, body: dict[str, Any] | None = None) -> Any:
        from bulk.sandbox import AdminClient

        return AdminClient(self.base_url).call(path, body)

    def reset(self) -> None:
        self.admin("reset", {})

    def totals(self) -> dict[str, Any]:
        counters = self.admin("counters?numbers=0")  # the totals: no per-number counters
        totals: dict[str, Any] = counters["totals"]
        return totals


@contextmanager
def sandbox_process(**options: Any) -> Iterator[RemoteSandbox]:
    """A sandbox in a child process on a free loopback port."""
    process = subprocess.Popen(
        [sys.executable, "-m", "bulk.bench._common", json.dumps(options)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline().split()
        if not line or line[0] != "READY":
            raise RuntimeError(f"the sandbox process did not start: {line!r}")
        yield RemoteSandbox(line[1], line[2], line[3], line[4], process.pid)
    finally:
        if process.stdin is not None:
            process.stdin.close()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:  # pragma: no cover
            process.terminate()
            process.wait(timeout=10)


#: sandbox processes kept for the whole run, by configuration (see :func:`sandboxes`)
_POOL: dict[str, RemoteSandbox] = {}
_STACK: list[contextlib.ExitStack] = []


@contextmanager
def sandboxes() -> Iterator[None]:
    """Keep the sandbox processes the sections start (:func:`pooled_sandbox`) until the end of
    the block: one process per configuration, started once."""
    with contextlib.ExitStack() as stack:
        _STACK.append(stack)
        try:
            yield
        finally:
            _STACK.pop()
            _POOL.clear()


@contextmanager
def pooled_sandbox(**options: Any) -> Iterator[RemoteSandbox]:
    """:func:`sandbox_process` with these options, shared with every other section asking for
    the same options inside :func:`sandboxes` (the sections reset it before each run)."""
    key = json.dumps(options, sort_keys=True)
    if _STACK and key in _POOL:
        yield _POOL[key]
    elif _STACK:
        _POOL[key] = _STACK[-1].enter_context(sandbox_process(**options))
        yield _POOL[key]
    else:
        with sandbox_process(**options) as sb:
            yield sb


def progress(text: str) -> None:
    print(f"... {text}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    raise SystemExit(_serve(sys.argv[1]))
