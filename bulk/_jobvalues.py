"""A job's values: what a run is asked to do (:class:`JobSpec`), what it gives back
(:class:`JobResult`), and the run as it goes (its lanes, their connections, the job).

Plain data: the job's steps (:mod:`bulk._job`) and the plans' (:mod:`bulk.plans`) read them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from bulk import _why
from bulk._accounts import Account
from bulk.engine import (
    Meter,
    Plan,
    RetryPolicy,
    Stats,
)
from bulk.inputs import MAX_INPUT_BYTES, Loaded
from bulk.providers import (
    DEFAULT_PROVIDER,
    Provider,
)

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
    max_rate: float = 100.0  #: the ceiling of ``rate="auto"``
    concurrency: int = 8
    batch_size: int | None = None
    poll_interval: float | None = None
    settle_timeout: float | None = None
    timeout: float = 30.0
    attempts: int = 5
    backoff_base: float = 1.0  #: first pause after a 429 with no Retry-After (doubles per 429)
    #: seconds of nothing but 429s from an account's provider after which that account stops
    #: (:attr:`RetryPolicy.max_refused`)
    max_refused: float = RetryPolicy().max_refused
    #: wait before reading a number whose change's answer was lost (or resending an unsent one)
    resend_delay: float = 5.0
    report: Path | None = None
    failures: Path | None = None
    journal: Path | None = None
    dry_run: bool = False
    sandbox: bool = False
    regions: Sequence[str] = ("US",)
    number_type: str = "either"
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
    max_unlink: int = 100  #: ``--max-unlink``: a sync that would unlink more stops first


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
    #: with ``--accounts``: per account, its ``counts``, ``requests``, ``http_429``,
    #: ``rate_settled`` and ``stopped`` (None, or why that account stopped mid-run)
    accounts: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: the run resumed a journal an earlier run left: what it held and from when (None: no)
    resumed: str | None = None
    #: rows that had their outcome before this run (in the journal it resumed)
    settled_before: int = 0
    #: the rows that did not end as asked: counts per reason and the first rows
    why: _why.Why = field(default_factory=_why.Why)
    #: change requests sent again (more than the plan said), by why
    resent: dict[str, int] = field(default_factory=dict)




@dataclass(slots=True)
class _Lane:
    """One account's share of a run: its rows, how to reach it, and what it sent. A run
    without ``--accounts`` has one lane, named None, configured by the spec alone."""

    name: str | None
    provider: str
    account: Account | None
    lines: list[int] = field(default_factory=list)
    stats: Stats = field(default_factory=Stats)
    meter: Meter | None = None  #: set once connected: its rate is the lane's settled rate

    def option(self, key: str, given: Any) -> Any:
        """The account's own setting (``rate``, ``concurrency``, ...), else the run's."""
        own = None if self.account is None else getattr(self.account, key)
        return given if own is None else own


@dataclass(slots=True)
class _Connection:
    """A provider ready to call, and what the journal's fingerprint records of where it is."""

    provider: Provider
    rate: float  #: the starting rate
    meter: Meter
    where: str  #: the base URL, or ``sandbox``
    account: str | None  #: the provider's account id (Plivo's auth id; not secret), if any
    poll_interval: float
    settle_timeout: float
    concurrency: int


@dataclass(slots=True)
class _Job:
    """One run as it goes: what the report, the result and the summary are made of."""

    spec: JobSpec
    report: Path
    failures: Path
    journal: Path
    started: float  #: monotonic
    started_at: float  #: epoch seconds
    accounts: dict[str, Account] | None = None  #: this shard's accounts, in file order
    #: every account of the accounts file (the shard's and the others'): rows are checked
    #: against these, so every shard checks them as an unsharded run does
    every_account: dict[str, Account] | None = None
    lanes: list[_Lane] = field(default_factory=list)
    loaded: Loaded | None = None
    counts: dict[str, int] | None = None
    by_account: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: accounts whose lane stopped mid-run (the others ran to the end): account -> why
    stopped: dict[str, str] = field(default_factory=dict)
    rows: int = 0
    reported: bool = False  #: the report (and failures file) were written
    input_sha256: str | None = None  #: the input's hash when it was read (None: not read)
    resumed: str | None = None  #: what an earlier run left in the journal (None: new)
    settled_before: int = 0  #: rows with an outcome in the journal before this run
    why: _why.Why = field(default_factory=_why.Why)  #: rows not ended as asked, and why

    @property
    def stats(self) -> Stats:
        """What went over the wire, all lanes together."""
        if len(self.lanes) == 1:
            return self.lanes[0].stats
        return Stats.merged(lane.stats for lane in self.lanes)

    def rate_settled(self) -> float | None:
        if len(self.lanes) != 1 or self.lanes[0].meter is None:
            return None
        return self.lanes[0].meter.current_rate

