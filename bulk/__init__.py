"""bulk: asynchronous bulk linking of phone numbers to US 10DLC campaigns."""

from __future__ import annotations

from bulk._errors import (
    AccountsStopped,
    AuthenticationError,
    BulkError,
    ConfigError,
    IllegalTransition,
    InputError,
    JournalBusy,
    JournalError,
    ProviderError,
    ProviderUnreachable,
    ReportError,
    Throttled,
)

__version__ = "0.1.0"

from bulk._job import JobResult, JobSpec, run_job, run_job_sync

__all__ = [
    "AccountsStopped",
    "AuthenticationError",
    "BulkError",
    "ConfigError",
    "IllegalTransition",
    "InputError",
    "JobResult",
    "JobSpec",
    "JournalBusy",
    "JournalError",
    "ProviderError",
    "ProviderUnreachable",
    "ReportError",
    "Throttled",
    "__version__",
    "run_job",
    "run_job_sync",
]
