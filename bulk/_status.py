"""``bulk status``: read-only, each row's current state in its campaign, every lane side by
side; the report only (no journal, no failures file)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from functools import partial

from bulk import _report
from bulk._aio import gather_map
from bulk._errors import IllegalTransition
from bulk._jobvalues import JobResult
from bulk._journal import RowRecord
from bulk._lanes import Connection, Lane, rate_settled, stats_of
from bulk._load import seed_records
from bulk._outcome import SoFar, write_reports
from bulk._paths import Job
from bulk._states import Decision, State, exit_code, next_state, status_look
from bulk.engine import SystemClock, exact_reads, survey
from bulk.inputs import Loaded
from bulk.providers import Provider


async def status(
    job: Job,
    loaded: Loaded,
    lanes: Sequence[Lane],
    connections: Sequence[Connection],
    known: SoFar,
) -> JobResult:
    """Every row observed in place, the report written, and the result."""
    records = {r.line: r for r in seed_records(loaded)}
    delay = job.spec.resend_delay  # planning's read rounds, with the run's own delay
    await gather_map(
        {
            index: partial(_status_of, [records[n] for n in lane.lines], connection.provider, delay)
            for index, (lane, connection) in enumerate(zip(lanes, connections, strict=True))
        }
    )
    report = _report.build(loaded.frame, loaded.extra_columns, records)
    tally = write_reports(job, loaded, report, [], known, failures=False)  # a report only
    known.rows = len(records)
    return JobResult(
        counts=tally.counts,
        exit_code=exit_code(tally.counts),
        report=job.report,
        failures=None,
        journal=None,
        plan=None,
        stats=stats_of(lanes),
        elapsed=time.monotonic() - job.started,
        rows=len(records),
        rate_settled=rate_settled(lanes),
        accounts=tally.accounts,
        why=tally.why,
    )


async def _status_of(records: Sequence[RowRecord], provider: Provider, delay: float) -> None:
    """One lane's rows observed in place, through the status table."""
    looking = [r for r in records if r.state is State.PLANNED and r.campaign_id]
    campaigns = sorted({str(r.campaign_id) for r in looking})
    _, surveyed = await survey(provider, campaigns, delay=delay, clock=SystemClock())
    absent = [
        r
        for r in looking
        if surveyed[str(r.campaign_id)][1] is not None
        and str(r.e164) not in (surveyed[str(r.campaign_id)][1] or {})
    ]
    # absence in a list is only a hint: a single read confirms it
    exact = await exact_reads(provider, absent, lambda r: str(r.campaign_id))
    unconfirmed = {r.line for r in absent} - set(exact)
    for record in looking:
        campaign = str(record.campaign_id)
        check, members = surveyed[campaign]
        seen = None
        if members is not None and record.line not in unconfirmed:
            seen = exact[record.line] if record.line in exact else members[str(record.e164)]
        listed = members is not None
        _observe(record, status_look(campaign, seen, listed=listed, why_not=check.reason))


def _observe(record: RowRecord, decision: Decision) -> None:
    """Apply a ``bulk status`` decision to an in-memory record, through the status table."""
    assert decision.event is not None
    target = next_state("status", record.state, decision.event)
    if target is None:
        raise IllegalTransition(record.line, record.state.value, decision.event.value)
    record.state = target
    record.provider_status = decision.provider_status or record.provider_status
    record.reason = decision.reason or record.reason


__all__ = ["status"]
