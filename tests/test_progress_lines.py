"""Plain progress lines (stderr not a terminal): what is known, when something changed, at
most every interval and at least every heartbeat, on a clock the test holds."""

from __future__ import annotations

import io
import time
from pathlib import Path

from rich.console import Console

from bulk._job import JobSpec, Snapshot
from bulk._journal import RowRecord
from bulk._states import State
from bulk.cli._progress import ProgressOutput as _Progress
from bulk.engine import Stats


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _progress(clock: _Clock) -> tuple[_Progress, io.StringIO]:
    out = io.StringIO()
    err = Console(file=out, force_terminal=False, width=400)
    spec = JobSpec(command="link", input=Path("in.csv"), provider="plivo")
    progress = _Progress(err, spec, quiet=False, interval=30.0, heartbeat=300.0, clock=clock)
    return progress, out


def _snapshot(settled: int, total: int, reads: tuple[float | None, float | None]) -> Snapshot:
    rows = {
        i: RowRecord(
            i,
            f"+1415555{i:04d}",
            "link",
            "C1",
            None,
            State.LINKED if i <= settled else State.SUBMITTED,
        )
        for i in range(1, total + 1)
    }
    return Snapshot(rows, Stats, time.monotonic(), lambda: reads)


def test_a_plain_line_says_rows_settled_pending_and_the_last_and_next_read() -> None:
    clock = _Clock()
    progress, out = _progress(clock)
    last = time.mktime((2025, 1, 1, 12, 0, 31, 0, 0, -1))
    clock.now += 30
    progress.on_snapshot(_snapshot(175, 292, (last, last + 30)))
    line = out.getvalue()
    assert "175/292 rows settled (linked 175), 117 pending" in line
    assert "last read 12:00:31, next 12:01:01" in line
    assert "requests" in line and "req/s" in line


def test_a_change_is_printed_at_most_every_interval() -> None:
    clock = _Clock()
    progress, out = _progress(clock)
    clock.now += 30
    progress.on_snapshot(_snapshot(1, 10, (None, None)))
    clock.now += 10
    progress.on_snapshot(_snapshot(2, 10, (None, None)))  # changed, but too soon
    assert out.getvalue().count("rows settled") == 1
    clock.now += 20
    progress.on_snapshot(_snapshot(3, 10, (None, None)))
    assert out.getvalue().count("rows settled") == 2


def test_nothing_new_is_printed_again_only_at_the_heartbeat() -> None:
    clock = _Clock()
    progress, out = _progress(clock)
    snapshot = _snapshot(34, 292, (1000.0, 1030.0))
    clock.now += 30
    progress.on_snapshot(snapshot)
    for _ in range(9):  # 270 s of ticks with nothing new
        clock.now += 30
        progress.on_snapshot(snapshot)
    assert out.getvalue().count("rows settled") == 1
    clock.now += 30  # 300 s since the last line
    progress.on_snapshot(snapshot)
    assert out.getvalue().count("rows settled") == 2


def test_a_read_with_no_row_settled_is_news() -> None:
    clock = _Clock()
    progress, out = _progress(clock)
    clock.now += 30
    progress.on_snapshot(_snapshot(34, 292, (1000.0, 1030.0)))
    clock.now += 30
    progress.on_snapshot(_snapshot(34, 292, (1030.0, 1060.0)))
    assert out.getvalue().count("rows settled") == 2
