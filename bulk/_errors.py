"""bulk's one exception tree.

Every error bulk raises on purpose derives from :class:`BulkError`. Messages never contain
credentials: the HTTP adapter builds them from the method, the path (with no query string or
user info) and the provider's error text only.

    BulkError
    ├── InputError          the input or campaigns file cannot be used at all (exit 2)
    ├── ConfigError         flags, credentials or environment are unusable (exit 2)
    ├── ReportError         a report file could not be written at the end (exit 2)
    ├── ProviderError       the provider could not be used
    │   ├── ProviderUnreachable   no answer at all while starting (exit 2)
    │   ├── AuthenticationError   401/403 from the provider (exit 2)
    │   ├── Throttled             nothing but 429s for too long: nothing more sent (exit 2)
    │   └── AccountsStopped       with --accounts, some accounts stopped mid-run (exit 2)
    └── JournalError        the journal is unusable or belongs to another job
        ├── JournalBusy           another run holds the journal (exit 75)
        └── IllegalTransition     a row's state change not in the transition table
"""

from __future__ import annotations

from typing import Any


class BulkError(Exception):
    """Base class of every error bulk raises on purpose."""

    exit_code: int = 2


class InputError(BulkError):
    """A file cannot be used at all. Names the file, and the line or column when known."""

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        line: int | None = None,
        column: str | None = None,
    ) -> None:
        self.path = path
        self.line = line
        self.column = column
        where = []
        if path is not None:
            where.append(str(path))
        if line is not None:
            where.append(f"line {line}")
        if column is not None:
            where.append(f"column {column!r}")
        prefix = ", ".join(where)
        super().__init__(f"{prefix}: {message}" if prefix else message)
        self.message = message


class ConfigError(BulkError):
    """Options, credentials or environment cannot be used."""


class ReportError(BulkError):
    """A report or failures file could not be written (its folder removed, replaced or made
    read-only mid-run). Names the file; the journal still holds every row."""


class ProviderError(BulkError):
    """The provider could not be used."""


class ProviderUnreachable(ProviderError):
    """The provider did not answer while the run was starting."""


class AuthenticationError(ProviderError):
    """The provider refused the credentials (401) or their scope (403)."""


class Throttled(ProviderError):
    """The provider answered nothing but 429s for longer than ``RetryPolicy.max_refused``
    (one account): bulk sends nothing more there, and stops that account's lane."""


class AccountsStopped(ProviderError):
    """With several accounts, some stopped mid-run (credentials refused, or nothing but 429s
    for too long) while the others ran to the end. ``result`` is the run's
    :class:`bulk.JobResult` (its report written, each account's ``stopped`` reason in
    ``result.accounts``): the message names each stopped account, never a secret."""

    def __init__(self, message: str, result: Any = None) -> None:
        super().__init__(message)
        self.result = result


class JournalError(BulkError):
    """The journal cannot be used (corrupt, or written by a different job)."""


class JournalBusy(JournalError):
    """Another run holds the journal. Exit 75 (EX_TEMPFAIL): try again later."""

    exit_code = 75


class IllegalTransition(JournalError):
    """A row was asked to make a state change its transition table does not allow."""

    def __init__(self, line: int, state: str, event: str) -> None:
        self.line = line
        self.state = state
        self.event = event
        super().__init__(f"line {line}: event {event!r} is not allowed in state {state!r}")
