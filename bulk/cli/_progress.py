"""Progress while a run goes: a bar on a terminal; otherwise (cron mail, journald) plain
lines."""

from __future__ import annotations

import time
from collections.abc import Callable

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from bulk._job import JobSpec, Snapshot

#: plain progress lines when stderr is not a terminal (cron, journald): one when something
#: changed (a row settled, a campaign was read), at most every PROGRESS_INTERVAL seconds, and
#: one at least every PROGRESS_HEARTBEAT seconds however little changed
PROGRESS_INTERVAL = 30.0
PROGRESS_HEARTBEAT = 300.0


class ProgressOutput:
    """A bar on a terminal; otherwise (cron mail, journald) plain lines: one when something
    changed (rows settled, a read), at most every ``interval`` seconds, and at least every
    ``heartbeat`` seconds. ``clock`` (monotonic seconds) times them: a test passes its own."""

    def __init__(
        self,
        err: Console,
        spec: JobSpec,
        *,
        quiet: bool,
        interval: float,
        heartbeat: float = PROGRESS_HEARTBEAT,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._err = err
        self._plain = not quiet and not err.is_terminal
        self._interval = interval
        self._heartbeat = max(heartbeat, interval)
        self._clock = clock
        self._last = clock()
        #: what the last line said: rows settled, and the last read
        self._said: tuple[int, float | None] | None = None
        via = spec.provider if spec.accounts is None else f"the accounts of {spec.accounts.name}"
        self._label = f"{spec.command} via {via}"
        self.bar = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=err,
            disable=quiet or self._plain,
            transient=False,
        )
        self._task = self.bar.add_task(self._label, total=None)

    def on_progress(self, done: int, total: int) -> None:
        self.bar.update(self._task, completed=done, total=total)

    def on_snapshot(self, snapshot: Snapshot) -> None:
        now = self._clock()
        if not self._plain or now - self._last < self._interval:
            return
        settled = snapshot.settled()
        done = sum(settled.values())
        last_read, next_read = snapshot.reads_of()
        if (done, last_read) == self._said and now - self._last < self._heartbeat:
            return  # nothing new to say yet
        self._last = now
        self._said = (done, last_read)
        outcomes = ", ".join(f"{o} {n}" for o, n in sorted(settled.items())) or "none yet"
        elapsed = max(time.monotonic() - snapshot.started, 1e-9)
        stats = snapshot.stats
        self._err.print(
            f"bulk {self._label}: {done}/{snapshot.total} rows settled ({outcomes}), "
            f"{snapshot.total - done} pending; last read {_clock_time(last_read)}, "
            f"next {_clock_time(next_read)}; {stats.total} requests, "
            f"{stats.total / elapsed:.1f} req/s, {elapsed:.0f} s elapsed",
            highlight=False,
            soft_wrap=True,
        )


def _clock_time(stamp: float | None) -> str:
    """A read's time for a progress line: local ``HH:MM:SS``, or ``-`` when there is none."""
    return "-" if stamp is None else time.strftime("%H:%M:%S", time.localtime(stamp))


__all__ = ["PROGRESS_HEARTBEAT", "PROGRESS_INTERVAL", "ProgressOutput"]
