"""A second SIGTERM or SIGINT while a run winds down after the first does not undo its
orderly end: the report and the summary are written and the exit code is 130, as for one
signal. ``timeout`` sends SIGTERM to the command and then to its process group: two at once."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import polars as pl
import pytest

from tests._helpers import ThreadedSandbox, write_csv

NUMBERS = [f"+1206555{n:04d}" for n in range(100, 180)]


def _progress(journal: Path) -> int:
    try:
        with sqlite3.connect(journal) as db:
            return int(db.execute("SELECT count(*) FROM rows WHERE state != 'planned'")
                       .fetchone()[0])
    except sqlite3.Error:
        return 0


@pytest.mark.parametrize(
    "second", [signal.SIGTERM, signal.SIGINT], ids=["sigterm", "sigint"]
)
def test_more_signals_while_stopping_keep_the_report_the_summary_and_exit_130(
    second: signal.Signals,
    tmp_path: Path,
    sandbox_factory: Callable[..., ThreadedSandbox],
) -> None:
    sb = sandbox_factory(settle_min=0.3, settle_max=0.9)
    src = write_csv(tmp_path / "in.csv", "number,campaign_id", [f"{n},CUOGHIN" for n in NUMBERS])
    journal = tmp_path / "run.journal"
    proc = subprocess.Popen(
        [sys.executable, "-m", "bulk", "link", str(src), "--base-url", sb.base_url,
         "--rate", "25", "--batch-size", "1", "--poll-interval", "0.3",
         "--settle-timeout", "20", "--report", str(tmp_path / "report.csv"),
         "--journal", str(journal), "--summary-json", str(tmp_path / "summary.json"),
         "--yes", "--quiet"],
        env={**os.environ, **sb.env("plivo")}, cwd=tmp_path,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 30
    while _progress(journal) < 15:
        assert proc.poll() is None and time.monotonic() < deadline, "no progress"
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    # more signals every few milliseconds until the run has ended: one lands wherever it is
    # winding down (writing its report, its summary, saying what it left)
    until = time.monotonic() + 10
    while proc.poll() is None and time.monotonic() < until:
        proc.send_signal(second)
        time.sleep(0.003)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err.decode()
    assert "Traceback" not in err.decode(), err.decode()
    report = pl.read_csv(tmp_path / "report.csv", infer_schema=False)
    assert report.height == len(NUMBERS)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["exit_code"] == 130 and summary["rows"] == len(NUMBERS)
    assert sum(summary["counts"].values()) == len(NUMBERS)
