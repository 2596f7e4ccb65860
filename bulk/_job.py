"""A whole job: the CLI and scheduled jobs call :func:`run_job`.

A run is a pipeline of values, each step a function returning one::

    start(spec) -> Job                  checked before anything is opened (bulk._paths)
    load_steady -> Input                the rows and their hash             (bulk._load)
    lanes_of -> [Lane]                  each lane's settings resolved once  (bulk._lanes)
    connect -> [Connection]             a session per lane, or the sandbox  (bulk._lanes)
    desired -> (Loaded, [Lane])         bulk sync: the rows that reach it   (bulk.plans._sync)
    open_journal -> Opened              new, or resumed                     (bulk._planned)
    plan_lanes -> (Plan, [Plan])        read-only, merged                   (bulk._planned)
    execute -> stopped accounts         send and poll                       (bulk._send)
    result_of -> JobResult              the report and the counts           (bulk._outcome)

``bulk status`` ends at :func:`bulk._status.status` instead. What the summary written on
an interrupt or an error needs is noted as the steps go in one :class:`SoFar`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AsyncExitStack, contextmanager, nullcontext, suppress
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import anyio

from bulk._errors import BulkError, ProviderError

# the job's values, reached through this module too
from bulk._jobvalues import EXIT_INTERRUPTED as EXIT_INTERRUPTED
from bulk._jobvalues import AccountResult as AccountResult
from bulk._jobvalues import JobResult as JobResult
from bulk._jobvalues import JobSpec as JobSpec
from bulk._journal import Journal, RowRecord, exclusive
from bulk._lanes import Connection, Lane, connect, endpoints, ensure_open_files, lanes_of, stats_of
from bulk._load import Input, InputChanged, load_steady
from bulk._outcome import Opened, SoFar, finish, result_of
from bulk._paths import Job, holds_journal, start
from bulk._paths import default_paths as default_paths
from bulk._planned import confirm, engine_of, open_journal, plan_lanes, sight_of
from bulk._send import execute, stop_reasons, stopped_accounts, stopped_lanes
from bulk._status import status
from bulk._summary import summarise, summarise_ending
from bulk.engine import Engine, Plan, Review, Stats
from bulk.plans._sight import PlanSight
from bulk.plans._sync import desired


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Where a run stands, for progress lines: rows settled by outcome, and the wire so far."""

    rows: Mapping[int, RowRecord]
    #: the wire so far, all accounts together: merged only when read (snapshots are taken
    #: at every row change; a progress line reads the stats every 30 s)
    stats_of: Callable[[], Stats]
    started: float  #: monotonic
    #: when a campaign was last read and when the next read is due (epoch seconds, None:
    #: none yet / nothing awaits settlement), over every lane
    reads_of: Callable[[], tuple[float | None, float | None]] = lambda: (None, None)

    @property
    def stats(self) -> Stats:
        return self.stats_of()

    @property
    def total(self) -> int:
        return len(self.rows)

    def settled(self) -> dict[str, int]:
        """Rows that reached an outcome, by outcome (O(rows): call it when about to print)."""
        return dict(Counter(r.state.value for r in self.rows.values() if r.terminal))


@dataclass(frozen=True, slots=True)
class _Hooks:
    on_progress: Callable[[int, int], None] | None
    on_plan: Callable[[Plan], bool] | None
    on_snapshot: Callable[[Snapshot], None] | None
    on_review: Review | None = None
    on_planned: Callable[[PlanSight], None] | None = None


async def run_job(
    spec: JobSpec,
    *,
    on_progress: Callable[[int, int], None] | None = None,
    on_plan: Callable[[Plan], bool] | None = None,
    on_snapshot: Callable[[Snapshot], None] | None = None,
    on_review: Review | None = None,
    on_planned: Callable[[PlanSight], None] | None = None,
) -> JobResult:
    """Run one job to the end (async). Raises :class:`bulk.BulkError` when it cannot start.

    ``on_progress(done, total)`` is called as rows settle; ``on_plan(plan)`` once the plan is
    known and before anything is sent (return False to stop there); ``on_snapshot`` with a
    :class:`Snapshot` whenever rows change. ``on_review(engine, plan, changes)`` sees each
    account's planning decisions before they apply (:class:`bulk.engine.Engine`), and
    ``on_planned`` what planning saw (:class:`PlanSight`), dry runs too, before ``on_plan``;
    either may raise a :class:`BulkError` to stop before anything is sent. A run holds its
    journal exclusively: a second run on the same journal raises :class:`bulk.JournalBusy`
    (exit 75) before reading anything. With ``spec.summary_json`` the run's summary is
    written there at the end, also when it is interrupted or stops on an error. With
    ``spec.accounts``, every account runs side by side (each with its own connection pool,
    meter and 429 pause) on the one journal.
    """
    job = start(spec)
    hooks = _Hooks(on_progress, on_plan, on_snapshot, on_review, on_planned)
    known = SoFar()
    with _exclusive(job.journal) if holds_journal(spec) else nullcontext():
        try:
            read = _read(job, known)
            result = await _run(job, read, lanes_of(job, read.loaded), hooks, known)
        except anyio.get_cancelled_exc_class():
            summarise_ending(job, known, EXIT_INTERRUPTED)
            raise
        except BulkError as exc:
            summarise_ending(job, known, exc.exit_code)
            raise
        summarise(job, known, result.exit_code)
        return result


def _read(job: Job, known: SoFar) -> Input:
    """The input, its hash noted (also when it changed while it was read)."""
    try:
        read = load_steady(job.spec, job.every_account)
    except InputChanged as exc:
        known.input_sha256 = exc.sha256
        raise
    known.input_sha256 = read.sha256
    return read


@contextmanager
def _exclusive(journal: Path) -> Iterator[None]:
    """Hold the job's journal; a run that ends before its journal exists (a bad input, a
    refusal before anything was sent) removes the lock file it made, while it still holds it,
    so nothing of it is left behind."""
    with exclusive(journal) as lock:
        try:
            yield
        finally:
            if not journal.exists():
                with suppress(OSError):
                    lock.unlink()


async def _run(
    job: Job, read: Input, lanes: list[Lane], hooks: _Hooks, known: SoFar
) -> JobResult:
    """Connect every lane, then ``status``, or open the journal, plan, execute, report."""
    spec = job.spec
    ensure_open_files(spec, lanes)
    async with endpoints(job, lanes) as locate, AsyncExitStack() as stack:
        connections = [
            await stack.enter_async_context(connect(spec, lane, locate(lane))) for lane in lanes
        ]
        known.lanes = lanes
        loaded = read.loaded
        if spec.command == "sync" and spec.preloaded is None:
            # the actions that reach the desired membership
            loaded, lanes = await desired(spec, job.journal, loaded, lanes, connections)
            known.lanes = lanes
        if spec.command == "status":
            return await status(job, loaded, lanes, connections, known)
        opened = open_journal(job, read.sha256, loaded, connections)
        known.rows = len(opened.journal.rows)
        try:
            return await _planned_run(job, Input(loaded, read.sha256), lanes, connections,
                                      opened, hooks, known)
        finally:
            opened.journal.close()


async def _planned_run(
    job: Job,
    read: Input,
    lanes: Sequence[Lane],
    connections: Sequence[Connection],
    opened: Opened,
    hooks: _Hooks,
    known: SoFar,
) -> JobResult:
    """Plan every lane (reading only), ask ``on_plan``, then send (none in a dry run)."""
    spec, journal, loaded = job.spec, opened.journal, read.loaded
    engines: list[Engine] = []
    changed = _progress(job, journal, lanes, hooks, engines)
    engines += [
        engine_of(job, lane, connection, journal, changed, hooks.on_review)
        for lane, connection in zip(lanes, connections, strict=True)
    ]
    try:
        plan, plans = await plan_lanes(lanes, engines)
        plan.resumed = opened.resumed
        changed()
        if hooks.on_planned is not None:
            hooks.on_planned(sight_of(job, read, lanes, journal, connections, plan))
        if hooks.on_plan is not None and not spec.dry_run:
            await confirm(hooks.on_plan, plan)
    except anyio.get_cancelled_exc_class():
        if not spec.dry_run:  # the report so far, as an interrupt while sending writes
            finish(job, loaded, journal, known)
        raise
    stops: dict[str, ProviderError] = {}
    if not spec.dry_run:
        work = list(zip(lanes, engines, plans, strict=True))
        stops = await execute(job, loaded, work, journal, known, changed)
    result = result_of(
        job,
        loaded,
        lanes,
        opened,
        plan,
        known,
        stopped=stopped_accounts(stops),
        reasons=stop_reasons(lanes, stops) if stops else None,
        resent=sum((e.resent for e in engines), Counter[str]()),
    )
    if stops:
        raise stopped_lanes(lanes, stops, result)
    return result


def _progress(
    job: Job,
    journal: Journal,
    lanes: Sequence[Lane],
    hooks: _Hooks,
    engines: Sequence[Engine] = (),
) -> Callable[[], None]:
    """The function every engine calls when rows change: progress over the whole journal
    (``engines``, filled once built, tell when campaigns were read and are read next)."""
    total = len(journal.rows)

    def reads() -> tuple[float | None, float | None]:
        last = [e.last_read for e in engines if e.last_read is not None]
        upcoming = [e.next_read for e in engines]
        due = [t for t in upcoming if t is not None]
        return (max(last) if last else None), (min(due) if due else None)

    def changed() -> None:
        if hooks.on_progress is not None:
            hooks.on_progress(journal.settled, total)
        if hooks.on_snapshot is not None:
            stats = partial(stats_of, lanes)
            hooks.on_snapshot(Snapshot(journal.rows, stats, job.started, reads))

    return changed


def run_job_sync(spec: JobSpec) -> JobResult:
    """Run one job from synchronous code (cron, Airflow, a notebook)."""
    return anyio.run(run_job, spec, backend="asyncio")


__all__ = [
    "EXIT_INTERRUPTED",
    "AccountResult",
    "JobResult",
    "JobSpec",
    "Snapshot",
    "default_paths",
    "run_job",
    "run_job_sync",
]
