"""A job's values: what a run is asked to do (:class:`JobSpec`) and what it gives back
(:class:`JobResult`, with an :class:`AccountResult` per account).

Plain data: the job's steps (:mod:`bulk._job`) and the plans' (:mod:`bulk.plans`) read them.
Every default comes from :mod:`bulk._defaults`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from bulk import _defaults, _why
from bulk.engine import Plan, Stats
from bulk.inputs import MAX_INPUT_BYTES, Loaded
from bulk.providers import DEFAULT_PROVIDER

Command = Literal["link", "unlink", "move", "status", "apply", "sync"]
COMMANDS: tuple[str, ...] = ("link", "unlink", "move", "status", "apply", "sync")
#: the exit code of a run stopped by Ctrl-C or SIGTERM
EXIT_INTERRUPTED = 130


@dataclass(slots=True)
class JobSpec:
    """Everything a run needs. Paths default to files named after the input, beside it."""

    command: Command
    input: Path
    provider: str = DEFAULT_PROVIDER
    campaigns: Path | None = None
    campaign: str | None = None
    from_campaign: str | None = None
    base_url: str | None = None
    #: the provider's account id, when it has one (from the environment if None)
    account: str | None = None
    #: the provider's secret: token or API key (from the environment if None)
    token: str | None = None
    #: requests per second (fixed), "auto" (found: starts at the provider's default rate,
    #: rises while requests succeed, cut on each 429), or None: the provider's default mode
    rate: float | Literal["auto"] | None = None
    max_rate: float = _defaults.MAX_RATE  #: the ceiling of ``rate="auto"``
    concurrency: int = _defaults.CONCURRENCY
    batch_size: int | None = None
    poll_interval: float | None = None
    settle_timeout: float | None = None
    timeout: float = _defaults.TIMEOUT
    attempts: int = _defaults.ATTEMPTS
    #: first pause after a 429 with no Retry-After (doubles per 429)
    backoff_base: float = _defaults.BACKOFF_BASE
    #: seconds of nothing but 429s from an account's provider after which that account stops
    #: (:attr:`RetryPolicy.max_refused`)
    max_refused: float = _defaults.MAX_REFUSED
    #: wait before reading a number whose change's answer was lost (or resending an unsent one)
    resend_delay: float = _defaults.RESEND_DELAY
    report: Path | None = None
    failures: Path | None = None
    journal: Path | None = None
    dry_run: bool = False
    sandbox: bool = False
    regions: Sequence[str] = _defaults.REGIONS
    number_type: str = _defaults.NUMBER_TYPE
    callback_url: str | None = None
    #: epoch seconds after which no new change is sent (``--send-until``); None: no window
    send_until: float | None = None
    #: where to write the run's JSON summary (``--summary-json``); None: nowhere
    summary_json: Path | None = None
    max_input_bytes: int = MAX_INPUT_BYTES  #: refuse input or campaigns files larger than this
    #: the accounts file (``--accounts``): many accounts in one run, one lane each
    accounts: Path | None = None
    #: ``--account NAME``: every row's account (else the input's ``account`` column)
    account_name: str | None = None
    #: ``--shard K/N``: run only the accounts a stable hash of their name puts in shard K
    shard: str | None = None
    #: rows given instead of read from ``input`` (``bulk execute``: a plan's rows), with the
    #: hash that identifies them (the journal's fingerprint and the summary keep it)
    preloaded: tuple[Loaded, str] | None = None
    #: ``bulk sync --prune``: also unlink what the named campaigns hold and the input omits
    prune: bool = False
    #: ``--max-unlink``: a sync that would unlink more stops first
    max_unlink: int = _defaults.MAX_UNLINK


@dataclass(frozen=True, slots=True)
class AccountResult:
    """What one account of an accounts file did (``--accounts``)."""

    rows: int
    counts: dict[str, int]  #: rows per outcome
    requests: int
    http_429: int
    #: the rate its lane ended on, requests per second (None: no limit, or no lane)
    rate_settled: float | None = None
    stopped: str | None = None  #: why its lane stopped mid-run (None: it ran to the end)

    def to_json(self) -> dict[str, Any]:
        """Its entry in the run's ``--summary-json`` (these keys are a public contract)."""
        return {
            "rows": self.rows,
            "counts": self.counts,
            "requests": self.requests,
            "http_429": self.http_429,
            "rate_settled": self.rate_settled,
            "stopped": self.stopped,
        }


@dataclass(slots=True)
class JobResult:
    counts: dict[str, int]
    exit_code: int
    report: Path | None
    failures: Path | None
    journal: Path | None
    plan: Plan | None
    stats: Stats
    elapsed: float
    rows: int = 0
    #: the rate the run ended on, requests per second: the fixed rate, or the adaptive
    #: limiter's fill rate when the run ended (None: no limit, never connected, or accounts)
    rate_settled: float | None = None
    #: with ``--accounts``: what each account did, by name
    accounts: dict[str, AccountResult] = field(default_factory=dict)
    #: the run resumed a journal an earlier run left: what it held and from when (None: no)
    resumed: str | None = None
    #: rows that had their outcome before this run (in the journal it resumed)
    settled_before: int = 0
    #: the rows that did not end as asked: counts per reason and the first rows
    why: _why.Why = field(default_factory=_why.Why)
    #: change requests sent again (more than the plan said), by why
    resent: dict[str, int] = field(default_factory=dict)
