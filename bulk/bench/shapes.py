"""Section 3 of ``python -m bulk.bench.limits``: each limit shape end to end, in real time.

The real ``bulk link`` command (a child process, AgentMessage, the default ``--rate auto``)
attaches generated numbers to one campaign against a real ``bulk sandbox`` (another child
process) whose organization's limit has that shape (``--rate-shape``,
``--agentmessage-rate-limit N/SECONDS``); a limit that changes mid-run is changed through
``POST /_sandbox/rate-limit``. Each run has enough rows that sending lasts several windows.
The sandbox's 429 carries its ``Retry-After: 1`` whatever the shape: for a 1-s window that is
the time until it has room in whole seconds rounded up; for a 10-s one it is often shorter.

What is measured, from the sandbox's own counters (read every :data:`EVERY` seconds):

* **sending phase**: from the last reading with no request from bulk to the first reading
  after bulk's last attach (its last change request): every request the plan needed, reads
  and status polls included, is sent in it; after it, bulk only waits for the last numbers
  to settle;
* **share of the limit**: the requests the sandbox admitted in the sending phase (every
  endpoint: reads and polls take from the same limit) over what the limit admits at its
  steady rate (``N / SECONDS``, as it changes) in that time. A token bucket's first burst and
  a fixed window's first partial window are not added to what the limit admits, so a run can
  exceed 100 % by up to ``N`` requests;
* **of most**: the same requests over the most the limit's shape could have admitted in
  that time (a sliding window: ``N`` per started ``SECONDS`` and one more ``N``; a fixed
  window: ``N`` per window of the sandbox's clock the phase touched; a bucket: its first
  burst of ``N`` plus its refill), summed over the limit's stretches: never above 100 %;
* **429s**: the sandbox's 429s over every request bulk sent it, the whole run;
* **wall**: the ``bulk link`` process, start to exit (its start, reads and settle included).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import math
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bulk.bench._common import number
from bulk.sandbox import DEFAULT_AGENTMESSAGE_KEY, AdminClient

ORG = "org_sandbox"
CAMPAIGN = "5e000000-0000-4000-8000-0000000000b1"
EVERY = 0.1  #: seconds between two readings of the sandbox's counters
LATENCY = "0.02:0.05"  #: the sandbox's latency per request (seconds, uniform)
SETTLE = "0.3:1.5"


@dataclass(frozen=True)
class Case:
    """One row: ``rows`` numbers against a limit of ``limit`` per ``window`` s of ``shape``;
    ``changes``: (seconds after bulk's first request, new limit)."""

    name: str
    shape: str
    limit: int
    window: float
    rows: int
    changes: tuple[tuple[float, int], ...] = ()


CASES = (
    # a share of a limit is a steady figure: 1-s windows run about as long as the virtual-time
    # section's (a 1,200-row job's fixed start-up, its reads and first refusals, cost 3-4
    # points of a 50-s run)
    Case("sliding 1 s, Retry-After 1 s", "sliding", 30, 1.0, 3600),
    Case("fixed 10 s", "fixed", 300, 10.0, 1200),
    Case("bucket 1 s", "bucket", 30, 1.0, 1200),
    Case("sliding 10 s", "sliding", 300, 10.0, 1200),
    Case("sliding 1 s, 30 -> 15 -> 40/s", "sliding", 30, 1.0, 1700,
         changes=((20.0, 15), (40.0, 40))),
)
AIM = 0.85  #: share of the limit aimed at, for the shapes whose limit stays put


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(base: str, limit: float = 20.0) -> None:
    """Until the sandbox at ``base`` answers its admin API (at most ``limit`` seconds)."""
    deadline = time.monotonic() + limit
    while True:
        try:
            AdminClient(base, timeout=1).counters(numbers=False)
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


@contextlib.contextmanager
def sandbox(options: Sequence[str]) -> Iterator[str]:
    """``bulk sandbox OPTIONS`` in a child process on a free loopback port: its base URL."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = subprocess.Popen([sys.executable, "-m", "bulk", "sandbox", "--port", str(port),
                               *options], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_ready(base)
        yield base
    finally:
        server.terminate()
        server.wait(10)


@dataclass
class Reading:
    at: float  #: time.monotonic() halfway through the request
    requests: int  #: the organization's requests
    refused: int  #: its 429s (the limiter's) and 401s
    attaches: int  #: attach requests


@dataclass
class Watcher:
    """Reads the sandbox's counters every :data:`EVERY` s in a thread, and changes the limit
    at the case's times (after bulk's first request)."""

    base: str
    case: Case
    readings: list[Reading] = field(default_factory=list)
    changed: list[tuple[float, int]] = field(default_factory=list)  #: (when, new limit)
    _stop: threading.Event = field(default_factory=threading.Event)

    def read(self) -> Reading:
        before = time.monotonic()
        data: dict[str, Any] = AdminClient(self.base, timeout=5).counters(numbers=False)
        org = data["accounts"][ORG]
        attaches = data["endpoints"].get("agentmessage.attach", {}).get("requests", 0)
        reading = Reading((before + time.monotonic()) / 2, org["requests"],
                          org["rate_limited"] + org["unauthorized"], attaches)
        self.readings.append(reading)
        return reading

    def _loop(self) -> None:
        admin = AdminClient(self.base, timeout=5)
        started: float | None = None
        todo = list(self.case.changes)
        while not self._stop.wait(EVERY):
            reading = self.read()
            if started is None and reading.requests:
                started = self.readings[-2].at if len(self.readings) > 1 else reading.at
            if started is not None and todo and reading.at >= started + todo[0][0]:
                _, limit = todo.pop(0)
                admin.set_rate_limit(ORG, limit)
                self.changed.append((time.monotonic(), limit))

    def __enter__(self) -> Watcher:
        self.read()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.read()


@dataclass
class Figures:
    """What one case's run did (see the module's docstring for each figure)."""

    case: Case
    wall: float
    sending: float  #: seconds of the sending phase
    admitted: int  #: requests admitted in it
    capacity: float  #: what the limit admits at its steady rate in it
    requests: int  #: every request bulk sent the sandbox, the whole run
    refused: int  #: the sandbox's 429s (and 401s), the whole run
    linked: int
    exit_code: int
    by_kind: dict[str, int]
    #: per stretch between limit changes: (limit, seconds, admitted, capacity)
    stretches: list[tuple[int, float, int, float]]
    most: float  #: the most the limit's shape could have admitted in the sending phase

    @property
    def share(self) -> float:
        return self.admitted / self.capacity if self.capacity else 0.0

    @property
    def of_most(self) -> float:
        return self.admitted / self.most if self.most else 0.0

    @property
    def refused_share(self) -> float:
        return self.refused / self.requests if self.requests else 0.0


def most(shape: str, limit: int, window: float, start: float, end: float, first: bool) -> float:
    """The most a limit of that shape admits from ``start`` to ``end`` (``time.monotonic()``,
    the sandbox's clock too: one system-wide clock); ``first``: its first stretch (a bucket
    starts full)."""
    if shape == "fixed":
        return limit * (math.floor(end / window) - math.floor(start / window) + 1)
    if shape == "bucket":
        return limit * (end - start) / window + (limit if first else 0)
    return limit * (math.floor((end - start) / window) + 1)


Measured = tuple[float, int, float, float, list[tuple[int, float, int, float]]]


def measure(watcher: Watcher) -> Measured:
    """(seconds, admitted, capacity, most, stretches) of the sending phase from the
    readings."""
    readings, case = watcher.readings, watcher.case
    first = next(i for i, r in enumerate(readings) if r.requests)
    start = readings[max(0, first - 1)]
    final = readings[-1].attaches
    end = next(r for r in readings if r.attaches >= final)
    edges = [start.at, *(at for at, _ in watcher.changed if start.at < at < end.at), end.at]
    limits = [case.limit, *(limit for at, limit in watcher.changed if start.at < at < end.at)]

    def admitted_by(at: float) -> int:
        """Admitted by the last reading at or before ``at`` (interpolated between two)."""
        before = max((r for r in readings if r.at <= at), key=lambda r: r.at)
        after = min((r for r in readings if r.at >= at), key=lambda r: r.at, default=before)
        ok_before, ok_after = before.requests - before.refused, after.requests - after.refused
        if after.at <= before.at:
            return ok_before
        return round(ok_before + (ok_after - ok_before) * (at - before.at)
                     / (after.at - before.at))

    stretches, bound = [], 0.0
    for i, ((a, b), limit) in enumerate(zip(itertools.pairwise(edges), limits, strict=True)):
        stretches.append((limit, b - a, admitted_by(b) - admitted_by(a),
                          limit / case.window * (b - a)))
        bound += most(case.shape, limit, case.window, a, b, first=i == 0)
    admitted = (end.requests - end.refused) - (start.requests - start.refused)
    return end.at - start.at, admitted, sum(s[3] for s in stretches), bound, stretches


def run_case(case: Case, seed: int = 1, limit: float = 600.0) -> Figures:
    """``bulk link`` of ``case.rows`` generated numbers against a fresh sandbox of that limit."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        state = folder / "state.json"
        state.write_text(json.dumps({"agentmessage": {
            "campaigns": [{"id": CAMPAIGN, "name": "bench"}],
            "number_ranges": [{"start": number(0), "count": case.rows}],
        }}), encoding="utf-8")
        rows = folder / "numbers.csv"
        rows.write_text("number,campaign\n" + "".join(
            f"{number(i)},{CAMPAIGN}\n" for i in range(case.rows)), encoding="utf-8")
        options = ["--seed", str(seed), "--state", str(state), "--settle", SETTLE,
                   "--latency", LATENCY, "--rate-shape", case.shape,
                   "--agentmessage-rate-limit", f"{case.limit}/{case.window:g}"]
        summary = folder / "summary.json"
        command = [sys.executable, "-m", "bulk", "link", str(rows), "--provider",
                   "agentmessage", "--yes", "--quiet", "--poll-interval", "1",
                   "--settle-timeout", "30", "--summary-json", str(summary)]
        env = {**os.environ, "AGENTMESSAGE_API_KEY": DEFAULT_AGENTMESSAGE_KEY}
        with sandbox(options) as base:
            with Watcher(base, case) as watcher:
                started = time.monotonic()
                done = subprocess.run([*command, "--base-url", base], cwd=tmp, env=env,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                      check=False, timeout=limit, text=True)
                wall = time.monotonic() - started
        if not summary.exists():
            raise RuntimeError(f"bulk link wrote no summary (exit {done.returncode}): "
                               f"{done.stderr[-2000:]}")
        data = json.loads(summary.read_text(encoding="utf-8"))
    sending, admitted, capacity, bound, stretches = measure(watcher)
    last = watcher.readings[-1]
    return Figures(case, wall, sending, admitted, capacity, last.requests, last.refused,
                   data["counts"].get("linked", 0), done.returncode, data["requests"],
                   stretches, bound)


def shapes_e2e(cases: Sequence[Case] = CASES) -> list[Figures]:
    """Section 3 (printed): each case once."""
    print("3. Shapes end to end, real time: bulk link (--provider agentmessage, --rate auto) "
          f"against bulk sandbox (--rate-shape, Retry-After 1 s, latency {LATENCY} s, "
          f"settle {SETTLE} s)")
    print("   share = requests the sandbox admitted (reads and polls too) from bulk's first "
          "request to its last attach,\n"
          "           over limit/window x that time (the limit's steady rate, as it changes);\n"
          "   of most = the same over the most the shape could admit in that time "
          "(bursts, window edges)")
    print(f"   {'limit':<32} {'rows':>5} {'share':>7} {'of most':>7} {'429s':>6} {'sending s':>9}"
          f" {'wall s':>7} {'requests':>8} {'linked':>6}")
    out = []
    for case in cases:
        f = run_case(case)
        out.append(f)
        aim = "" if case.changes else ("  (aim >= 85 %: met)" if f.share >= AIM
                                       else "  (aim >= 85 %: MISSED)")
        print(f"   {case.name:<32} {case.rows:>5} {f.share:>7.1%} {f.of_most:>7.1%}"
              f" {f.refused_share:>6.2%}"
              f" {f.sending:>9.1f} {f.wall:>7.1f} {f.requests:>8} {f.linked:>6}{aim}",
              flush=True)
        if len(f.stretches) > 1:
            each = ", ".join(f"{limit}/{case.window:g} s for {seconds:.1f} s: "
                             f"{(admitted / capacity if capacity else 0):.1%}"
                             for limit, seconds, admitted, capacity in f.stretches)
            print(f"   {'':<32} each limit: {each}")
        kinds = " ".join(f"{k}={v}" for k, v in sorted(f.by_kind.items()))
        print(f"   {'':<32} bulk's requests: {kinds}; exit {f.exit_code}")
    return out


if __name__ == "__main__":
    shapes_e2e()
