"""A run's outcome: the report and the failures file written from the journal, the counts
(overall and per account), and the :class:`JobResult`; and :class:`SoFar`, what the run knew
when it ended, for a summary written on an interrupt or an error."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from bulk import _report, _why
from bulk._errors import ReportError
from bulk._jobvalues import AccountResult, JobResult
from bulk._journal import Journal
from bulk._lanes import Lane, rate_settled, stats_of
from bulk._paths import Job, holds_journal
from bulk._states import exit_code
from bulk.engine import Plan, Stats
from bulk.inputs import Loaded


@dataclass(frozen=True, slots=True)
class Tally:
    """A report counted: rows per outcome, why rows did not end as asked, and per account
    (with ``--accounts``) what each did."""

    counts: dict[str, int]
    why: _why.Why
    accounts: dict[str, AccountResult]


@dataclass(slots=True)
class SoFar:
    """What the run knows so far: the one mutable record of a run (besides its journal).

    A run that ends on an interrupt or an error ends inside one of its steps, whose value
    never comes back; yet its ``--summary-json`` must say as much as the run knew. So each
    step's outcome is noted here as soon as it is known: the input's hash once read, the
    lanes once connected, the rows once the journal is open, the counts once the report is
    built (before it is written, which may fail), and whether the report was written."""

    input_sha256: str | None = None
    lanes: Sequence[Lane] = ()
    rows: int = 0
    tally: Tally | None = None
    reported: bool = False  #: the report (and failures file) were written

    @property
    def stats(self) -> Stats:
        return stats_of(self.lanes) if self.lanes else Stats()


def has_failures(counts: Mapping[str, int]) -> bool:
    return any(n for o, n in counts.items() if o not in _report.SUCCESS_OUTCOMES)


def per_account(
    job: Job, lanes: Sequence[Lane], report: pl.DataFrame, stopped: Mapping[str, str]
) -> dict[str, AccountResult]:
    """Outcomes and requests per account (with ``--accounts``): the summary's breakdown.
    Rows naming no account, or one not in the file, count under their ``account`` cell;
    ``stopped``: the accounts whose lane stopped mid-run, and why."""
    if job.accounts is None or "account" not in report.columns:
        return {}
    by_name = {lane.name: lane for lane in lanes}
    names = [*job.accounts, *sorted({n for n in report.get_column("account") if n})]
    summary: dict[str, AccountResult] = {}
    for name in dict.fromkeys(names):
        rows = report.filter(pl.col("account") == name)
        lane = by_name.get(name)
        stats = lane.stats if lane is not None else Stats()
        summary[name] = AccountResult(
            rows=rows.height,
            counts=_report.counts(rows),
            requests=stats.total,
            http_429=stats.rate_limited,
            rate_settled=None if lane is None else lane.meter.current_rate,
            stopped=stopped.get(name),
        )
    return summary


def write_reports(
    job: Job,
    loaded: Loaded,
    report: pl.DataFrame,
    released: Sequence[int],
    known: SoFar,
    *,
    stopped: Mapping[str, str] | None = None,
    failures: bool = True,
) -> Tally:
    """The report, and (``failures``) the failures file when some row did not succeed, else
    a stale one from an earlier run is removed; the counts, overall and per account."""
    counts = _report.counts(report)
    tally = Tally(counts, _why.of(report), per_account(job, known.lanes, report, stopped or {}))
    known.tally = tally  # the summary's counts, also when the report cannot be written
    _write_one(job, report, job.report, "report")
    if failures and has_failures(counts):
        frame = _report.failures(report, loaded.raw, loaded.extra_columns, released)
        _write_one(job, frame, job.failures, "failures file")
    elif failures and job.failures.exists():
        job.failures.unlink()  # a stale list from an earlier run would mislead
    known.reported = True
    return tally


def _write_one(job: Job, frame: pl.DataFrame, path: Path, what: str) -> None:
    """Write one report file; a folder removed, replaced or made read-only since the start
    is one :class:`ReportError` naming the file (the journal holds every row: the same
    command writes it once the folder is fixed)."""
    try:
        _report.write(frame, path, bom=True)  # a CSV with a BOM: Excel reads it as UTF-8
    except OSError as exc:
        kept = f"every row is in the journal {job.journal}; " if holds_journal(job.spec) else ""
        raise ReportError(
            f"{path}: cannot write the {what} ({exc.strerror or exc}); {kept}fix the folder, "
            "then run the same command again to write it"
        ) from None


def finish(
    job: Job,
    loaded: Loaded,
    journal: Journal,
    known: SoFar,
    *,
    stopped: str | Mapping[int, str] | None = None,
    stopped_accounts: Mapping[str, str] | None = None,
) -> Tally:
    """Write the report and the failures file from the journal. ``stopped``: why the run
    ended early (an error), for the rows it left unfinished, one reason or per line;
    ``stopped_accounts``: the accounts whose lane stopped, and why."""
    report = _report.build(loaded.frame, loaded.extra_columns, journal.rows, stopped=stopped)
    released = [r.line for r in journal.rows.values() if r.released_at]
    return write_reports(job, loaded, report, released, known, stopped=stopped_accounts)


@dataclass(frozen=True, slots=True)
class Opened:
    """The run's journal, and what an earlier run had left in it."""

    journal: Journal
    resumed: str | None = None  #: what an earlier run left in it (None: new)
    settled_before: int = 0  #: rows with an outcome in it before this run


def result_of(
    job: Job,
    loaded: Loaded,
    lanes: Sequence[Lane],
    opened: Opened,
    plan: Plan,
    known: SoFar,
    *,
    stopped: Mapping[str, str] | None = None,
    reasons: Mapping[int, str] | None = None,
    resent: Mapping[str, int] | None = None,
) -> JobResult:
    """The last step: the report (none for a dry run) and the result. ``stopped``: the
    accounts that stopped mid-run and why; ``reasons``: their unfinished rows' reason."""
    spec, journal = job.spec, opened.journal
    if spec.dry_run:  # no report to write: count straight from the journal
        counts = _report.counts_of(journal.rows.values())
        tally = Tally(counts, _why.Why(), {})
        known.tally = tally
    else:
        tally = finish(job, loaded, journal, known, stopped=reasons, stopped_accounts=stopped)
        counts = tally.counts
    return JobResult(
        counts=counts,
        exit_code=exit_code(counts, dry_run=spec.dry_run),
        report=None if spec.dry_run else job.report,
        failures=None if spec.dry_run or not has_failures(counts) else job.failures,
        journal=None if spec.dry_run else job.journal,
        plan=plan,
        stats=stats_of(lanes),
        elapsed=time.monotonic() - job.started,
        rows=known.rows,
        rate_settled=rate_settled(lanes),
        accounts=tally.accounts,
        resumed=opened.resumed,
        settled_before=opened.settled_before,
        why=tally.why,
        resent=dict(resent or {}),
    )


__all__ = [
    "Opened",
    "SoFar",
    "Tally",
    "finish",
    "has_failures",
    "per_account",
    "result_of",
    "write_reports",
]
