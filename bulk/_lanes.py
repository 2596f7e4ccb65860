"""A run's lanes: one per account with rows in the run (one, named None, without
``--accounts``), each with its settings resolved once (:class:`LaneSettings`: the account's
own, else the run's, else the defaults of :mod:`bulk._defaults` and of the account's
provider), and how each lane is connected: where its requests go (a configured provider, or
the in-process sandbox), and an HTTP session of its own behind the provider's adapter."""

from __future__ import annotations

import os
import resource
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import aiohttp
import polars as pl

from bulk import _defaults, _sandboxed
from bulk._accounts import Account
from bulk._errors import ConfigError
from bulk._jobvalues import JobSpec
from bulk._paths import Job, holds_journal
from bulk.engine import HttpSender, Meter, PauseGate, RetryPolicy, Stats
from bulk.inputs import Loaded
from bulk.providers import Credentials, Provider, ProviderEntry, credentials_from_env, entry


@dataclass(frozen=True, slots=True)
class LaneSettings:
    """How one lane sends: each value the account's own (accounts file), else the run's
    option, else its default."""

    rate: float  #: requests per second to start at
    adaptive: bool  #: whether the rate is found while the run goes (``--rate auto``)
    max_rate: float  #: the ceiling of an adaptive rate
    concurrency: int  #: requests in flight at once
    batch_size: int | None  #: numbers per link request (None: the provider's)
    timing: _defaults.Timing  #: polling and settling

    @property
    def starting_rate(self) -> float:
        """The meter's first rate: an adaptive one starts no higher than its ceiling."""
        return min(self.rate, self.max_rate) if self.adaptive else self.rate


def settings_of(spec: JobSpec, provider: ProviderEntry, account: Account | None) -> LaneSettings:
    """A lane's settings, resolved once: ``--rate N`` is fixed; ``--rate auto`` (or no
    ``--rate`` for a provider whose default mode is auto) starts at the provider's default
    rate and adapts, never above ``--max-rate``."""

    mine = account or Account("", provider.name, "")  # no account: nothing of its own
    rate = spec.rate if mine.rate is None else mine.rate
    adaptive = _defaults.adaptive(rate, provider.default_rate_mode)
    start = provider.default_rate if adaptive else float(rate or provider.default_rate)
    return LaneSettings(
        rate=start,
        adaptive=adaptive,
        max_rate=float(spec.max_rate if mine.max_rate is None else mine.max_rate),
        concurrency=int(spec.concurrency if mine.concurrency is None else mine.concurrency),
        batch_size=spec.batch_size if mine.batch_size is None else mine.batch_size,
        timing=_defaults.timing(spec.sandbox, spec.poll_interval, spec.settle_timeout),
    )


@dataclass(frozen=True, slots=True)
class Lane:
    """One account's share of a run: its rows, how it sends, and what it sent (``stats``,
    filled by its sender; ``meter``, whose rate is the lane's settled rate)."""

    name: str | None
    provider: str
    account: Account | None
    lines: tuple[int, ...]
    settings: LaneSettings
    meter: Meter
    stats: Stats = field(default_factory=Stats)


def make_lane(
    spec: JobSpec, name: str | None, account: Account | None, lines: Sequence[int]
) -> Lane:
    """A lane over ``lines``: the account's provider (the run's without one), its settings."""
    provider = spec.provider if account is None else account.provider
    settings = settings_of(spec, entry(provider), account)
    meter = Meter(
        settings.starting_rate,
        settings.concurrency,
        gate=PauseGate(base=spec.backoff_base),
        adaptive=settings.adaptive,
        max_rate=settings.max_rate,
    )
    return Lane(name, provider, account, tuple(lines), settings, meter)


def lanes_of(job: Job, loaded: Loaded) -> list[Lane]:
    """One lane per account with rows in this run (in the accounts file's order); without
    accounts, one lane for every row."""
    valid = loaded.frame.filter(pl.col("reason").is_null())
    if job.accounts is None:
        return [make_lane(job.spec, None, None, valid.get_column("line").to_list())]
    lines: dict[str, list[int]] = {}
    for line, name in valid.select("line", "account").iter_rows():
        lines.setdefault(name, []).append(line)
    return [
        make_lane(job.spec, name, account, lines[name])
        for name, account in job.accounts.items()
        if name in lines
    ]


def stats_of(lanes: Sequence[Lane]) -> Stats:
    """What went over the wire, all lanes together."""
    if len(lanes) == 1:
        return lanes[0].stats
    return Stats.merged(lane.stats for lane in lanes)


def rate_settled(lanes: Sequence[Lane]) -> float | None:
    """The rate a single lane ended on (None with several lanes, or none)."""
    return lanes[0].meter.current_rate if len(lanes) == 1 else None


def ensure_open_files(spec: JobSpec, lanes: Sequence[Lane]) -> None:
    """Every lane has its own connection pool (``concurrency`` + 4 sockets): make sure the
    process may open that many files, raising its soft limit to the hard one when needed,
    else :class:`ConfigError` before anything is sent (not EMFILE mid-run)."""
    sockets = sum(lane.settings.concurrency + 4 for lane in lanes)
    if spec.sandbox:
        sockets *= 2  # the in-process sandbox holds the other end of every connection
    needed = sockets + 64  # the journal, its lock, the input, the report, the event loop
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= needed:
        return
    if hard == resource.RLIM_INFINITY or hard >= needed:
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))
        return
    raise ConfigError(
        f"{len(lanes)} accounts need about {needed} open files (a connection pool each), "
        f"but this process may open {hard}: raise the limit (ulimit -n), lower --concurrency, "
        "or split the accounts with --shard K/N"
    )


@dataclass(frozen=True, slots=True)
class Connection:
    """A provider ready to call, and what the journal's fingerprint records of where it is."""

    provider: Provider
    where: str  #: the base URL, or ``sandbox``
    account: str | None  #: the provider's account id (Plivo's auth id; not secret), if any


#: where a lane's requests go: (base URL, credentials)
Endpoint = tuple[str, Credentials]


@asynccontextmanager
async def endpoints(job: Job, lanes: Sequence[Lane]) -> AsyncIterator[Callable[[Lane], Endpoint]]:
    """Where each lane sends requests: the in-process sandbox (one, with an account for each
    of the accounts file's), or the configured providers."""
    spec = job.spec
    if spec.sandbox:
        for each in lanes:
            if entry(each.provider).sandbox_credentials is None:
                raise ConfigError(f"the sandbox does not simulate {each.provider}")
        resume = job.journal.exists()  # a new journal: the sandbox starts afresh too
        async with _sandboxed.in_process(
            job.accounts, job.journal, resume=resume, keep=holds_journal(spec)
        ) as sb:
            yield lambda lane: (
                sb.base_url,
                _sandboxed.credentials(sb, lane.provider, lane.account),
            )
        return

    def locate(lane: Lane) -> Endpoint:
        if lane.account is not None:
            base = lane.account.base_url or spec.base_url or entry(lane.provider).default_base_url
            return base, lane.account.credentials(os.environ)
        creds = credentials_from_env(spec.provider, spec.account, spec.token)
        return spec.base_url or entry(spec.provider).default_base_url, creds

    yield locate


@asynccontextmanager
async def connect(spec: JobSpec, lane: Lane, endpoint: Endpoint) -> AsyncIterator[Connection]:
    """An HTTP session of the lane's own (pool, meter, 429 pause), rate-limited and retrying,
    behind the provider's adapter."""
    base_url, creds = endpoint
    provider_entry = entry(lane.provider)
    headers = provider_entry.headers(creds)
    connector = aiohttp.TCPConnector(limit=lane.settings.concurrency + 4)
    async with aiohttp.ClientSession(connector=connector, raise_for_status=False) as session:
        sender = HttpSender(
            session,
            base_url,
            lane.meter,
            headers=headers,
            provider=lane.provider,
            policy=RetryPolicy(
                attempts=spec.attempts, timeout=spec.timeout, max_refused=spec.max_refused
            ),
            stats=lane.stats,
        )
        yield Connection(
            provider_entry.create(sender, creds, lane.settings.batch_size, spec.callback_url),
            "sandbox" if spec.sandbox else base_url,
            creds.account,
        )


__all__ = [
    "Connection",
    "Endpoint",
    "Lane",
    "LaneSettings",
    "connect",
    "endpoints",
    "ensure_open_files",
    "lanes_of",
    "make_lane",
    "rate_settled",
    "settings_of",
    "stats_of",
]
