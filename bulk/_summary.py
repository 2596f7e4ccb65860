"""``--summary-json``: a run's machine-readable summary, written at its end however it ends
(its keys are a public contract: the manual's summary page lists them)."""

from __future__ import annotations

import json
import logging
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bulk import _report
from bulk._errors import BulkError
from bulk._lanes import rate_settled
from bulk._outcome import SoFar, has_failures
from bulk._paths import Job, holds_journal
from bulk._summary_file import write_summary

log = logging.getLogger(__name__)


def summary_of(job: Job, known: SoFar, exit_code: int) -> dict[str, Any]:
    """The summary of a run that ended with ``exit_code``, from what it knew."""
    spec = job.spec
    counts = known.tally.counts if known.tally is not None else dict.fromkeys(_report.OUTCOMES, 0)
    stats = known.stats
    summary: dict[str, Any] = {
        "command": spec.command,
        "provider": spec.provider if job.accounts is None else "accounts",
        "started_at": iso_precise(job.started_at),
        "finished_at": iso_precise(time.time()),
        "exit_code": exit_code,
        "rows": known.rows,
        "counts": {o: counts.get(o, 0) for o in _report.OUTCOMES},
        "requests": dict(sorted(stats.requests.items())),
        "http_429": stats.rate_limited,
        "rate_settled": rate_settled(known.lanes),
        "retries": stats.retries,
        "report": _path_or_none(job.report if known.reported and not spec.dry_run else None),
        "failures": _path_or_none(
            job.failures
            if known.reported and has_failures(counts) and holds_journal(spec)
            else None
        ),
        # none when the run stopped before it made its journal (an unreadable input, say)
        "journal": _path_or_none(
            job.journal if holds_journal(spec) and job.journal.exists() else None
        ),
        # the input as this run read it (a file changed since then is not this run's input)
        "input_sha256": known.input_sha256,
        "dry_run": spec.dry_run,
    }
    if job.accounts is not None:
        summary["shard"] = spec.shard
        accounts = {} if known.tally is None else known.tally.accounts
        summary["accounts"] = {name: a.to_json() for name, a in accounts.items()}
    return summary


def summarise(job: Job, known: SoFar, exit_code: int) -> None:
    """Write ``--summary-json`` (when asked): the run's machine-readable summary."""
    if job.spec.summary_json is None:
        return
    text = json.dumps(summary_of(job, known, exit_code), indent=2) + "\n"
    write_summary(job.spec.summary_json, text)


def summarise_ending(job: Job, known: SoFar, exit_code: int) -> None:
    """The summary of a run ending on an interrupt or an error: a summary that cannot be
    written (its folder gone meanwhile) is said on stderr, and the run's own ending stands."""
    try:
        summarise(job, known, exit_code)
    except BulkError as exc:
        log.warning("%s", exc)


def _path_or_none(path: Path | None) -> str | None:
    return None if path is None else str(path.absolute())


def iso_precise(ts: float) -> str:
    """Epoch seconds as ISO 8601 UTC with milliseconds: ``2025-07-01T04:00:00.123Z``."""
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


__all__ = ["iso_precise", "summarise", "summarise_ending", "summary_of"]
