"""A run's sending: every lane's engine executes its plan side by side, and the stop policy
across accounts: with several accounts, one whose credentials are refused mid-run, or whose
provider answers only 429s for too long, stops alone while the others run to the end.
However sending ends (done, interrupted, stopped by an error), the report is written."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import anyio

from bulk._errors import (
    AccountsStopped,
    AuthenticationError,
    BulkError,
    ProviderError,
    ReportError,
    Throttled,
)
from bulk._jobvalues import JobResult
from bulk._journal import Journal
from bulk._lanes import Lane
from bulk._outcome import SoFar, finish
from bulk._paths import Job
from bulk.engine import Engine, Plan
from bulk.inputs import Loaded

#: seconds between the progress ticks a run gives while nothing changes (a progress line
#: still says where the run stands at least every few minutes)
PROGRESS_TICK = 10.0


async def execute(
    job: Job,
    loaded: Loaded,
    work: Sequence[tuple[Lane, Engine, Plan]],
    journal: Journal,
    known: SoFar,
    tick: Callable[[], None] | None = None,
) -> dict[str, ProviderError]:
    """Send, poll until every row settles: every lane side by side. Interrupted, it still
    writes the report; stopped by a BulkError (a refusal, an unwritable journal) too, then
    raises that error alone, never wrapped in the task group's ExceptionGroup. With several
    accounts, one whose credentials are refused mid-run, or whose provider answers only 429s
    for too long, stops alone (:func:`_lane_stopped`): the others run to the end; returns the
    stopped accounts, each with its error."""
    stops: dict[str, ProviderError] = {}
    ticking = anyio.CancelScope()
    running = [len(work)]

    async def ticks() -> None:
        with ticking:
            while tick is not None:
                await anyio.sleep(PROGRESS_TICK)
                tick()

    async def lane_run(call: Callable[..., Awaitable[None]], *args: Any) -> None:
        try:
            await call(*args)
        finally:
            running[0] -= 1
            if not running[0]:
                ticking.cancel()

    try:
        async with anyio.create_task_group() as group:
            if work:
                group.start_soon(ticks)
            for lane, engine, plan in work:
                if len(work) == 1:
                    group.start_soon(lane_run, engine.execute, plan)
                else:
                    group.start_soon(lane_run, _lane_stopped, engine, plan, stops, lane.name)
    except anyio.get_cancelled_exc_class():
        # synchronous: runs to the end although the run is cancelled; an account that had
        # already stopped keeps its reason, the others' unfinished rows were interrupted
        lanes = [lane for lane, _, _ in work]
        finish(
            job,
            loaded,
            journal,
            known,
            stopped=stop_reasons(lanes, stops),
            stopped_accounts=stopped_accounts(stops),
        )
        raise
    except (BulkError, BaseExceptionGroup) as exc:
        error = exc if isinstance(exc, BulkError) else only_bulk_error(exc)
        if error is None:
            raise
        try:
            finish(job, loaded, journal, known, stopped=str(error))
        except ReportError as report_error:  # on a really full disk the report may fail too
            raise BulkError(f"{error}; {report_error}") from None
        raise error from None
    return stops


async def _lane_stopped(
    engine: Engine, plan: Plan, stops: dict[str, ProviderError], name: str | None
) -> None:
    """One account's lane: a refusal of its credentials (or their scope) mid-run, or its
    provider answering nothing but 429s for ``max_refused`` seconds, ends this lane alone,
    noted in ``stops``; the other accounts have their own credentials and provider quota."""
    try:
        await engine.execute(plan)
    except* (AuthenticationError, Throttled) as refused:  # inside the engine's task group
        first = only_bulk_error(refused)
        assert isinstance(first, ProviderError)
        stops[str(name)] = first


def stopped_accounts(stops: Mapping[str, ProviderError]) -> dict[str, str]:
    """Each stopped account: why, as the summary says it."""
    return {name: str(error) for name, error in stops.items()}


def stopped_lanes(
    lanes: Sequence[Lane], stops: Mapping[str, ProviderError], result: JobResult
) -> AccountsStopped:
    """The other lanes ran to the end (the report written, each stopped account's unfinished
    rows saying why): one error naming every stopped account, carrying the run's result
    (whose exit code is the error's)."""
    whys = [f"account {name}: {error}" for name, error in stops.items()]
    others = ["the other accounts ran to the end"] if len(stops) < len(lanes) else []
    error = AccountsStopped("; ".join([*whys, *others]), result)
    result.exit_code = error.exit_code
    return error


def stop_reasons(lanes: Sequence[Lane], stops: Mapping[str, ProviderError]) -> dict[int, str]:
    """Each line of an account whose lane stopped: why (``account NAME: the refusal``)."""
    return {
        line: f"account {lane.name}: {stops[str(lane.name)]}"
        for lane in lanes
        if str(lane.name) in stops
        for line in lane.lines
    }


def only_bulk_error(group: BaseExceptionGroup[BaseException]) -> BulkError | None:
    """The BulkError a task group raised, when nothing else is in the group."""
    matched, rest = group.split(BulkError)
    if matched is None or rest is not None:
        return None
    first: BaseException = matched
    while isinstance(first, BaseExceptionGroup):
        first = first.exceptions[0]
    return first if isinstance(first, BulkError) else None


__all__ = [
    "PROGRESS_TICK",
    "execute",
    "only_bulk_error",
    "stop_reasons",
    "stopped_accounts",
    "stopped_lanes",
]
