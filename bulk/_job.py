"""A whole job: read, validate, plan, execute, report. The CLI and scheduled jobs call this."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import resource
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import (
    AsyncExitStack,
    asynccontextmanager,
    contextmanager,
    nullcontext,
    suppress,
)
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any, Literal

import aiohttp
import anyio
import polars as pl

from bulk import _mismatch, _names, _report, _resume, _sandboxed, _why
from bulk._accounts import Account, accounts_for, check_environment, parse_shard
from bulk._aio import gather_map
from bulk._errors import (
    AccountsStopped,
    AuthenticationError,
    BulkError,
    ConfigError,
    IllegalTransition,
    JournalError,
    ProviderError,
    ReportError,
    Throttled,
)
from bulk._jobvalues import (
    COMMANDS,
    _Connection,
    _Job,
    _Lane,
)

# the job's values, reached through this module too
from bulk._jobvalues import EXIT_INTERRUPTED as EXIT_INTERRUPTED
from bulk._jobvalues import JobResult as JobResult
from bulk._jobvalues import JobSpec as JobSpec
from bulk._journal import (
    Journal,
    JournalMismatch,
    JournalView,
    Ledger,
    RowRecord,
    exclusive,
    fingerprint_json,
)
from bulk._states import Decision, Event, State, next_state, status_of
from bulk._summary_file import check_summary_path, write_summary
from bulk.engine import (
    Engine,
    EngineConfig,
    HttpSender,
    Meter,
    PauseGate,
    Plan,
    RetryPolicy,
    Review,
    Stats,
    SystemClock,
    exact_reads,
    survey,
)
from bulk.inputs import Loaded, load_rows
from bulk.plans._sight import LaneSight, PlanSight
from bulk.plans._sync import desired
from bulk.providers import (
    Credentials,
    NumberState,
    Provider,
    ProviderEntry,
    Settlement,
    credentials_from_env,
    entry,
)

log = logging.getLogger(__name__)


def default_paths(spec: JobSpec) -> tuple[Path, Path, Path]:
    """Report, failures file and journal: as given, else named after the input, beside it
    (:mod:`bulk._names`): ``<input>.<command>.<via>.report.csv``, ``….failed.csv``,
    ``….journal``; a shard's carry ``shard-K-of-N``, so the pods of a sharded job never write
    each other's files."""
    shard = None if spec.shard is None else parse_shard(spec.shard)
    where = None if shard is None else (shard.index, shard.count)
    via = "accounts" if spec.accounts is not None else spec.provider
    stem = _names.run_stem(spec.input, spec.command, via, sandbox=spec.sandbox, shard=where)
    report = spec.report or _names.named(stem, "report.csv")
    failures = spec.failures or report.with_name(
        report.stem.removesuffix(".report") + ".failed.csv"
    )
    journal = spec.journal or _names.named(stem, "journal")
    if spec.journal is None and not spec.sandbox and not journal.exists():
        legacy = _names.legacy_journal(spec.input, spec.command, via, where)
        journal = legacy if legacy.is_file() else journal
    return report, failures, journal


def _sha256(path: Path | None) -> str:
    if path is None:
        return "-"
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _load_steady(job: _Job) -> Loaded:
    """The job's input, read while it does not change: a file is hashed before and after it
    is read (the journal's fingerprint and the summary keep that hash), and one that changed
    in between is refused, since the rows read may match neither version."""
    spec = job.spec
    if spec.preloaded is not None:
        job.input_sha256 = spec.preloaded[1]
        return spec.preloaded[0]
    before = _sha256(spec.input) if spec.input.is_file() else None
    loaded = load(spec, job.every_account)
    job.input_sha256 = _sha256(spec.input)
    if before is not None and job.input_sha256 != before:
        raise ConfigError(f"{spec.input} changed while it was read; run again once it is written")
    return loaded


def load(spec: JobSpec, accounts: Mapping[str, Account] | None = None) -> Loaded:
    """Read and check the input; with ``accounts`` (every account of the file, whatever the
    shard), each row's account too. With ``spec.shard``, every row is checked first, across
    the whole input as an unsharded run checks it, then only the shard's rows are kept: those
    whose account hashes to it, and in shard 0 the rows whose account is none of the file's
    (see :meth:`Shard.holds_row`)."""
    # a sync's rows say where each number belongs: their action, when given, is link
    action: str | None = "link" if spec.command == "sync" else spec.command
    if spec.command in ("apply", "status"):
        action = None
    loaded = load_rows(
        spec.input,
        campaigns_path=spec.campaigns,
        default_campaign=spec.campaign,
        default_action=action,
        default_from_campaign=spec.from_campaign,
        regions=spec.regions,
        number_type=spec.number_type,
        max_input_bytes=spec.max_input_bytes,
        accounts=None if accounts is None else list(accounts),
        default_account=spec.account_name,
    )
    loaded = _report.carried(loaded)
    if spec.shard is None:
        return loaded
    shard = parse_shard(spec.shard)
    if accounts is not None and "account" in loaded.frame.columns:
        names = loaded.frame.get_column("account").to_list()
        keep = pl.Series([shard.holds_row(name, accounts) for name in names], dtype=pl.Boolean)
    else:  # no accounts file (a run refuses --shard without one): every row is shard 0's
        keep = pl.Series([shard.index == 0] * loaded.frame.height, dtype=pl.Boolean)
    return replace(loaded, frame=loaded.frame.filter(keep), raw=loaded.raw.filter(keep))


def seed_records(loaded: Loaded) -> list[RowRecord]:
    """One journal record per input row. Campaign ids and actions repeat across rows: each
    distinct string is stored once (a million rows share a handful of them)."""
    records = []
    shared: dict[str, str] = {}

    def one(value: str | None) -> str | None:
        return None if value is None else shared.setdefault(value, value)

    frame = loaded.frame.select(
        "line", "e164", "action", "campaign_id", "from_campaign", "reason", "detail"
    )
    for line, e164, action, campaign, source, reason, detail in frame.iter_rows():
        if reason is None:
            records.append(
                RowRecord(line, e164, one(action or "link") or "link", one(campaign), one(source))
            )
        else:
            text = f"{reason}: {detail}" if detail else reason
            records.append(
                RowRecord(
                    line,
                    e164,
                    one(action or "none") or "none",
                    one(campaign),
                    one(source),
                    State.REJECTED,
                    reason=text,
                )
            )
    return records



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


#: where a lane's requests go: (base URL, credentials, defaults the sandbox sets)
_Endpoint = tuple[str, Credentials, dict[str, float]]


@asynccontextmanager
async def _endpoints(job: _Job) -> AsyncIterator[Callable[[_Lane], _Endpoint]]:
    """Where each lane sends requests: the in-process sandbox (one, with an account for each
    of the accounts file's), or the configured providers."""
    spec = job.spec
    if spec.sandbox:
        for lane in job.lanes:
            if entry(lane.provider).sandbox_credentials is None:
                raise ConfigError(f"the sandbox does not simulate {lane.provider}")
        resume = job.journal.exists()  # a new journal: the sandbox starts afresh too
        async with _sandboxed.in_process(
            job.accounts, job.journal, resume=resume, keep=_holds_journal(spec)
        ) as sb:
            yield lambda lane: (
                sb.base_url,
                _sandboxed.credentials(sb, lane.provider, lane.account),
                _sandboxed.DEFAULTS,
            )
        return

    def locate(lane: _Lane) -> _Endpoint:
        if lane.account is not None:
            base = lane.account.base_url or spec.base_url or entry(lane.provider).default_base_url
            return base, lane.account.credentials(os.environ), {}
        creds = credentials_from_env(spec.provider, spec.account, spec.token)
        return spec.base_url or entry(spec.provider).default_base_url, creds, {}

    yield locate


@asynccontextmanager
async def _connect(job: _Job, lane: _Lane, endpoint: _Endpoint) -> AsyncIterator[_Connection]:
    """An HTTP session of the lane's own (pool, meter, 429 pause), rate-limited and retrying,
    behind the provider's adapter."""
    spec = job.spec
    base_url, creds, sandbox_defaults = endpoint
    provider_entry = entry(lane.provider)
    headers = provider_entry.headers(creds)
    concurrency = int(lane.option("concurrency", spec.concurrency))
    connector = aiohttp.TCPConnector(limit=concurrency + 4)
    async with aiohttp.ClientSession(connector=connector, raise_for_status=False) as session:
        rate, adaptive = _rate_choice(lane.option("rate", spec.rate), provider_entry)
        max_rate = float(lane.option("max_rate", spec.max_rate))
        meter = Meter(
            min(rate, max_rate) if adaptive else rate,
            concurrency,
            gate=PauseGate(base=spec.backoff_base),
            adaptive=adaptive,
            max_rate=max_rate,
        )
        lane.meter = meter
        sender = HttpSender(
            session,
            base_url,
            meter,
            headers=headers,
            provider=lane.provider,
            policy=RetryPolicy(
                attempts=spec.attempts, timeout=spec.timeout, max_refused=spec.max_refused
            ),
            stats=lane.stats,
        )
        poll_interval = spec.poll_interval or sandbox_defaults.get("poll_interval", 30.0)
        batch = lane.option("batch_size", spec.batch_size)
        yield _Connection(
            provider_entry.create(sender, creds, batch, spec.callback_url),
            rate,
            meter,
            "sandbox" if spec.sandbox else base_url,
            creds.account,
            poll_interval,
            spec.settle_timeout or sandbox_defaults.get("settle_timeout", 3600.0),
            concurrency,
        )


def _rate_choice(
    rate: float | Literal["auto"] | None, provider: ProviderEntry
) -> tuple[float, bool]:
    """The starting rate and whether it adapts: ``--rate N`` is fixed; ``--rate auto`` (or no
    ``--rate`` for a provider whose default mode is auto) starts at the provider's default
    rate (the caller caps it at ``--max-rate``)."""
    if rate == "auto" or (rate is None and provider.default_rate_mode == "auto"):
        return provider.default_rate, True
    return float(rate or provider.default_rate), False


def _start(spec: JobSpec) -> _Job:
    """Check what can be checked before anything is opened: the command, the provider, the
    accounts file and its secrets (this shard's accounts), the report paths."""
    if spec.command not in COMMANDS:
        raise ConfigError(f"unknown command {spec.command!r}")
    entry(spec.provider)
    every_account = accounts = accounts_for(spec.accounts, spec.account_name)
    if accounts is not None:
        if spec.shard is not None:
            shard = parse_shard(spec.shard)
            accounts = {n: a for n, a in accounts.items() if shard.holds(n)}
        if not spec.sandbox:  # every secret is there before anything is read or sent
            check_environment(accounts.values(), os.environ)
    elif spec.shard is not None:
        raise ConfigError("--shard splits the accounts of --accounts FILE; give the file too")
    report, failures, journal = default_paths(spec)
    _check_distinct(spec, report, failures, journal)
    _report.check_path(report, "--report")
    _report.check_path(failures, "--failures", (".csv",))  # input for the next run
    if spec.summary_json is not None:
        check_summary_path(spec.summary_json)
    started = time.monotonic(), time.time()
    return _Job(spec, report, failures, journal, *started, accounts, every_account=every_account)


def _check_distinct(spec: JobSpec, report: Path, failures: Path, journal: Path) -> None:
    """Refuse, before anything is read, a file the run writes that is a file it reads or
    another file it writes (also through a symlink): the report written over the input, the
    failures file over the report, a stale failures file removed where the input is."""
    writes: list[tuple[str, Path]] = []
    if not spec.dry_run:
        writes.append(("--report", report))
        if spec.command != "status":
            writes.append(("--failures", failures))
    if _holds_journal(spec):
        writes.append(("--journal", journal))
    if spec.summary_json is not None:
        writes.append(("--summary-json", spec.summary_json))
    reads = [
        ("the input", spec.input),
        ("--campaigns", spec.campaigns),
        ("--accounts", spec.accounts),
    ]
    seen = [(what, path) for what, path in reads if path is not None]
    for what, path in writes:
        for other, known in seen:
            if _same_file(path, known):
                raise ConfigError(
                    f"{what} {path} is the same file as {other} {known}: the run would "
                    f"overwrite it; give {what} another path"
                )
        seen.append((what, path))


def _same_file(a: Path, b: Path) -> bool:
    """Whether two paths name one file: the same place once symlinks are resolved, or (both
    existing) the same inode, as hard links are."""
    try:
        if a.resolve() == b.resolve():
            return True
        return a.exists() and b.exists() and a.samefile(b)
    except OSError:
        return False


def _lanes(job: _Job) -> list[_Lane]:
    """One lane per account with rows in this run (in the accounts file's order); without
    accounts, one lane for every row."""
    loaded = job.loaded
    assert loaded is not None
    valid = loaded.frame.filter(pl.col("reason").is_null())
    if job.accounts is None:
        return [_Lane(None, job.spec.provider, None, valid.get_column("line").to_list())]
    lines: dict[str, list[int]] = {}
    for line, name in valid.select("line", "account").iter_rows():
        lines.setdefault(name, []).append(line)
    return [
        _Lane(name, account.provider, account, lines[name])
        for name, account in job.accounts.items()
        if name in lines
    ]


def _holds_journal(spec: JobSpec) -> bool:
    """Runs that write a journal hold it; a dry run's journal is in memory, status has none."""
    return not spec.dry_run and spec.command != "status"


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
    job = _start(spec)
    hooks = _Hooks(on_progress, on_plan, on_snapshot, on_review, on_planned)
    with _exclusive(job) if _holds_journal(spec) else nullcontext():
        try:
            job.loaded = _load_steady(job)
            job.lanes = _lanes(job)
            result = await _run(job, hooks)
        except anyio.get_cancelled_exc_class():
            _summarise_ending(job, EXIT_INTERRUPTED)
            raise
        except BulkError as exc:
            _summarise_ending(job, exc.exit_code)
            raise
        _summarise(job, result.exit_code)
        return result


@contextmanager
def _exclusive(job: _Job) -> Iterator[None]:
    """Hold the job's journal; a run that ends before its journal exists (a bad input, a
    refusal before anything was sent) removes the lock file it made, while it still holds it,
    so nothing of it is left behind."""
    with exclusive(job.journal) as lock:
        try:
            yield
        finally:
            if not job.journal.exists():
                with suppress(OSError):
                    lock.unlink()


def _ensure_open_files(job: _Job) -> None:
    """Every lane has its own connection pool (``concurrency`` + 4 sockets): make sure the
    process may open that many files, raising its soft limit to the hard one when needed,
    else :class:`ConfigError` before anything is sent (not EMFILE mid-run)."""
    spec = job.spec
    sockets = sum(int(lane.option("concurrency", spec.concurrency)) + 4 for lane in job.lanes)
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
        f"{len(job.lanes)} accounts need about {needed} open files (a connection pool each), "
        f"but this process may open {hard}: raise the limit (ulimit -n), lower --concurrency, "
        "or split the accounts with --shard K/N"
    )


async def _run(job: _Job, hooks: _Hooks) -> JobResult:
    """Connect every lane, open the journal, plan, execute, report."""
    spec = job.spec
    _ensure_open_files(job)
    async with _endpoints(job) as locate, AsyncExitStack() as stack:
        connections = [
            await stack.enter_async_context(_connect(job, lane, locate(lane)))
            for lane in job.lanes
        ]
        if spec.command == "sync" and spec.preloaded is None:
            await desired(job, connections)  # the actions that reach the desired membership
        if spec.command == "status":
            result = await _status(job, connections)
            job.counts, job.rows = result.counts, result.rows
            return result
        journal = _open_journal(job, connections)
        try:
            engines: list[Engine] = []
            changed = _progress(job, journal, hooks, engines)
            engines += [
                _engine(job, lane, connection, journal, changed, hooks.on_review)
                for lane, connection in zip(job.lanes, connections, strict=True)
            ]
            sight = partial(_sight, job, journal, connections)
            try:
                plan, plans = await _plan(job, engines, changed, hooks, sight)
            except anyio.get_cancelled_exc_class():
                if not spec.dry_run:  # the report so far, as an interrupt while sending writes
                    _finish(job, journal)
                raise
            stops: dict[str, ProviderError] = {}
            if not spec.dry_run:
                work = list(zip(job.lanes, engines, plans, strict=True))
                stops = await _execute(job, work, journal, changed)
            result = _result(job, journal, plan, stops)
            result.resent = dict(sum((e.resent for e in engines), Counter[str]()))
            if stops:
                raise _stopped_lanes(job, stops, result)
            return result
        finally:
            journal.close()


def _open_journal(job: _Job, connections: Sequence[_Connection]) -> Journal:
    """The journal of this job (new, or the one an earlier run left to resume)."""
    spec, loaded, input_sha256 = job.spec, job.loaded, job.input_sha256
    assert loaded is not None and input_sha256 is not None  # both set by _load_steady
    options: dict[str, Any] = {"campaign": spec.campaign, "from": spec.from_campaign}
    if spec.command == "sync":
        options["prune"] = spec.prune
    if job.accounts is None:
        options["base_url"] = connections[0].where if connections else "-"
    else:
        sandbox = " (sandbox)" if spec.sandbox else ""
        options["accounts"] = {n: a.where() + sandbox for n, a in job.accounts.items()}
        options["account"] = spec.account_name
        options["shard"] = spec.shard
    fingerprint = {
        # one account: the account id too (with --accounts, ``options`` holds every one's)
        **({"account": _account_of(connections)} if job.accounts is None else {}),
        "command": spec.command,
        "provider": spec.provider if job.accounts is None else "accounts",
        "input_sha256": input_sha256,
        "campaigns_sha256": _sha256(spec.campaigns),
        "options": fingerprint_json(options),
        # what decides which rows are valid: a resume under other rules would keep the first
        # run's rejections and send rows those rules reject
        "validation": fingerprint_json(
            {"regions": sorted(spec.regions), "number_type": spec.number_type}
        ),
    }
    files = {"input": spec.input, "campaigns": spec.campaigns}
    state = [_sandboxed.state_path(job.journal)] if spec.sandbox else []
    state = [p for p in state if p.exists()]  # the sandbox's state, kept beside the journal
    try:
        journal = Journal.open(
            ":memory:" if spec.dry_run else job.journal, fingerprint, _mismatch.notes(files)
        )
    except JournalMismatch as exc:
        raise _mismatch.reworded(exc, job.journal, files, state) from None
    if journal.new:
        journal.seed(seed_records(loaded))
    else:
        try:
            journal.check_lines(loaded.frame.get_column("line").to_list())
        except JournalError:
            journal.close()
            raise
        job.resumed = _resume.resumed(journal, state)
        job.settled_before = _resume.settled(journal)
    job.rows = len(journal.rows)
    return journal


def _account_of(connections: Sequence[_Connection]) -> str:
    return (connections[0].account if connections else None) or "-"


def _progress(
    job: _Job, journal: Journal, hooks: _Hooks, engines: Sequence[Engine] = ()
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
            hooks.on_snapshot(Snapshot(journal.rows, lambda: job.stats, job.started, reads))

    return changed


def _engine(
    job: _Job,
    lane: _Lane,
    connection: _Connection,
    journal: Journal,
    changed: Callable[[], None],
    review: Review | None = None,
) -> Engine:
    """A lane's engine, over its rows of the journal (all of them without accounts)."""
    interval = connection.poll_interval
    config = EngineConfig(
        poll_interval=interval,
        poll_max_interval=max(interval * 8, interval),
        settle_timeout=connection.settle_timeout,
        workers=connection.concurrency,
        send_until=job.spec.send_until,
        resend_delay=job.spec.resend_delay,
    )
    rows: Ledger = journal if lane.account is None else JournalView(journal, lane.lines)
    return Engine(
        connection.provider,
        rows,
        config,
        on_change=changed,
        attempts=lane.stats.attempts_by_line,
        review=review,
    )


def _sight(
    job: _Job, journal: Journal, connections: Sequence[_Connection], plan: Plan
) -> PlanSight:
    """What planning saw and where each lane's requests would go (``on_planned``)."""
    assert job.loaded is not None and job.input_sha256 is not None
    lanes = tuple(
        LaneSight(lane.name, lane.provider, c.where, c.account, not c.provider.move_in_one_step)
        for lane, c in zip(job.lanes, connections, strict=True)
    )
    return PlanSight(job.spec, job.loaded, journal.rows, plan, job.input_sha256, lanes)


async def _plan(
    job: _Job,
    engines: Sequence[Engine],
    changed: Callable[[], None],
    hooks: _Hooks,
    sight: Callable[[Plan], PlanSight],
) -> tuple[Plan, list[Plan]]:
    """Every lane reads its provider's state and decides, side by side (reading only); then
    ``on_plan`` is asked, once, with the plans merged, before anything is sent. The merged
    plan, and each lane's."""
    lanes = zip(engines, job.lanes, strict=True)
    calls = {i: _named(engine.plan, lane.name) for i, (engine, lane) in enumerate(lanes)}
    plans = list((await gather_map(calls)).values())
    plan = _merge_plans(plans, [lane.name for lane in job.lanes])
    plan.resumed = job.resumed
    changed()
    if hooks.on_planned is not None:
        hooks.on_planned(sight(plan))
    if hooks.on_plan is not None and not job.spec.dry_run:
        # in a worker thread: the callback may prompt on the terminal
        if not await anyio.to_thread.run_sync(hooks.on_plan, plan, abandon_on_cancel=True):
            raise ConfigError("not confirmed: nothing was sent")
    return plan, plans


def _named(
    read: Callable[[], Awaitable[Plan]], name: str | None
) -> Callable[[], Awaitable[Plan]]:
    """A lane's planning whose provider errors (refused credentials, no answer) name its
    account, as a refusal mid-run does: with many accounts, "plivo refused" says not whose."""

    async def plan() -> Plan:
        try:
            return await read()
        except ProviderError as exc:
            if name is None:
                raise
            raise type(exc)(f"account {name}: {exc}") from None

    return plan


def _merge_plans(plans: Sequence[Plan], names: Sequence[str | None]) -> Plan:
    """One plan for the whole run: counts summed; campaigns keyed ``account/campaign`` when
    there are several lanes (two accounts may use the same campaign id)."""
    if len(plans) == 1 and names[0] is None:
        return plans[0]
    merged = Plan()
    for plan, name in zip(plans, names, strict=True):
        for campaign, check in plan.campaigns.items():
            merged.campaigns[f"{name}/{campaign}"] = check
        for campaign, lines in plan.to_link.items():
            merged.to_link[f"{name}/{campaign}"] = lines
        merged.already += plan.already
        merged.unusable += plan.unusable
        merged.adopted += plan.adopted
        merged.in_progress += plan.in_progress
        merged.to_unlink += plan.to_unlink
        merged.to_release += plan.to_release
        merged.to_check += plan.to_check
        merged.read_requests += plan.read_requests
        merged.observed.update(plan.observed)
        merged.observed_at = max(merged.observed_at, plan.observed_at)
    return merged


#: seconds between the progress ticks a run gives while nothing changes (a progress line
#: still says where the run stands at least every few minutes)
PROGRESS_TICK = 10.0


async def _execute(
    job: _Job,
    work: Sequence[tuple[_Lane, Engine, Plan]],
    journal: Journal,
    tick: Callable[[], None] | None = None,
) -> dict[str, ProviderError]:
    """Send, poll until every row settles: every lane side by side. Interrupted, it still
    writes the report; stopped by a BulkError (a refusal, an unwritable journal) too, then
    raises that error alone, never wrapped in the task group's ExceptionGroup. With several
    accounts, one whose credentials are refused mid-run, or whose provider answers only 429s
    for too long, stops alone (:func:`_lane_stopped`):
    the others run to the end; returns the stopped accounts, each with its error."""
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
        job.stopped = {name: str(error) for name, error in stops.items()}
        _finish(job, journal, stopped=_stop_reasons(job, stops))
        raise
    except (BulkError, BaseExceptionGroup) as exc:
        error = exc if isinstance(exc, BulkError) else _only_bulk_error(exc)
        if error is None:
            raise
        try:
            _finish(job, journal, stopped=str(error))
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
        first = _only_bulk_error(refused)
        assert isinstance(first, ProviderError)
        stops[str(name)] = first


def _stopped_lanes(
    job: _Job, stops: Mapping[str, ProviderError], result: JobResult
) -> AccountsStopped:
    """The other lanes ran to the end (the report written, each stopped account's unfinished
    rows saying why): one error naming every stopped account, carrying the run's result."""
    whys = [f"account {name}: {error}" for name, error in stops.items()]
    others = ["the other accounts ran to the end"] if len(stops) < len(job.lanes) else []
    error = AccountsStopped("; ".join([*whys, *others]), result)
    result.exit_code = error.exit_code
    return error


def _stop_reasons(job: _Job, stops: Mapping[str, ProviderError]) -> dict[int, str]:
    """Each line of an account whose lane stopped: why (``account NAME: the refusal``)."""
    return {
        line: f"account {lane.name}: {stops[str(lane.name)]}"
        for lane in job.lanes
        if str(lane.name) in stops
        for line in lane.lines
    }


def _only_bulk_error(group: BaseExceptionGroup[BaseException]) -> BulkError | None:
    """The BulkError a task group raised, when nothing else is in the group."""
    matched, rest = group.split(BulkError)
    if matched is None or rest is not None:
        return None
    first: BaseException = matched
    while isinstance(first, BaseExceptionGroup):
        first = first.exceptions[0]
    return first if isinstance(first, BulkError) else None


def _result(
    job: _Job, journal: Journal, plan: Plan, stops: Mapping[str, ProviderError] | None = None
) -> JobResult:
    """Step 5: the report (none for a dry run) and the result; ``stops``: the accounts that
    stopped mid-run, whose unfinished rows say why."""
    spec = job.spec
    if spec.dry_run:  # no report to write: count straight from the journal
        counts = _report.counts_of(journal.rows.values())
        job.counts = counts
        # rows still to send count ``unknown`` (not done); rows the plan already knows
        # cannot succeed (refused by validation, or failed at planning) make it 1
        code = 1 if counts["rejected"] or counts["failed"] else 0
    else:
        job.stopped = {name: str(error) for name, error in (stops or {}).items()}
        counts = _finish(job, journal, stopped=_stop_reasons(job, stops) if stops else None)
        code = _report.exit_code(counts)
    return JobResult(
        counts=counts,
        exit_code=code,
        report=None if spec.dry_run else job.report,
        failures=None if spec.dry_run or not _has_failures(counts) else job.failures,
        journal=None if spec.dry_run else job.journal,
        plan=plan,
        stats=job.stats,
        elapsed=time.monotonic() - job.started,
        rows=job.rows,
        rate_settled=job.rate_settled(),
        accounts=job.by_account,
        resumed=job.resumed,
        settled_before=job.settled_before,
        why=job.why,
    )


def _writes_failures(spec: JobSpec) -> bool:
    """Whether the run writes a failures file at all: a dry run and ``status`` do not."""
    return not spec.dry_run and spec.command != "status"


def _has_failures(counts: dict[str, int]) -> bool:
    return any(n for o, n in counts.items() if o not in _report.SUCCESS_OUTCOMES)


def _finish(
    job: _Job, journal: Journal, *, stopped: str | Mapping[int, str] | None = None
) -> dict[str, int]:
    """Write the report and the failures file from the journal; the counts by outcome.
    ``stopped``: why the run ended early (an error), for the rows it left unfinished."""
    loaded = job.loaded
    assert loaded is not None
    report = _report.build(loaded.frame, loaded.extra_columns, journal.rows, stopped=stopped)
    _write_reports(job, report, [r.line for r in journal.rows.values() if r.released_at])
    assert job.counts is not None
    return job.counts


def _write_reports(
    job: _Job, report: pl.DataFrame, released: Sequence[int], *, failures: bool = True
) -> None:
    """The report, and (``failures``) the failures file when some row did not succeed, else
    a stale one from an earlier run is removed; the counts, overall and per account."""
    loaded = job.loaded
    assert loaded is not None
    counts = _report.counts(report)
    job.counts = counts  # the summary's counts, also when the report cannot be written
    job.why = _why.of(report)
    job.by_account = _per_account(job, report)
    _write_one(job, report, job.report, "report")
    if failures and _has_failures(counts):
        frame = _report.failures(report, loaded.raw, loaded.extra_columns, released)
        _write_one(job, frame, job.failures, "failures file")
    elif failures and job.failures.exists():
        job.failures.unlink()  # a stale list from an earlier run would mislead
    job.reported = True


def _write_one(job: _Job, frame: pl.DataFrame, path: Path, what: str) -> None:
    """Write one report file; a folder removed, replaced or made read-only since the start
    is one :class:`ReportError` naming the file (the journal holds every row: the same
    command writes it once the folder is fixed)."""
    try:
        _report.write(frame, path, bom=True)  # a CSV with a BOM: Excel reads it as UTF-8
    except OSError as exc:
        kept = f"every row is in the journal {job.journal}; " if _holds_journal(job.spec) else ""
        raise ReportError(
            f"{path}: cannot write the {what} ({exc.strerror or exc}); {kept}fix the folder, "
            "then run the same command again to write it"
        ) from None


def _per_account(job: _Job, report: pl.DataFrame) -> dict[str, dict[str, Any]]:
    """Outcomes and requests per account (with ``--accounts``): the summary's breakdown.
    Rows naming no account, or one not in the file, count under their ``account`` cell."""
    if job.accounts is None or "account" not in report.columns:
        return {}
    lanes = {lane.name: lane for lane in job.lanes}
    names = [*job.accounts, *sorted({n for n in report.get_column("account") if n})]
    summary: dict[str, dict[str, Any]] = {}
    for name in dict.fromkeys(names):
        rows = report.filter(pl.col("account") == name)
        lane = lanes.get(name)
        stats = lane.stats if lane is not None else Stats()
        meter = lane.meter if lane is not None else None
        summary[name] = {
            "rows": rows.height,
            "counts": _report.counts(rows),
            "requests": stats.total,
            "http_429": stats.rate_limited,
            "rate_settled": None if meter is None else meter.current_rate,
            "stopped": job.stopped.get(name),
        }
    return summary


def _summarise(job: _Job, exit_code: int) -> None:
    """Write ``--summary-json`` (when asked): the run's machine-readable summary."""
    spec = job.spec
    if spec.summary_json is None:
        return
    counts = job.counts or dict.fromkeys(_report.OUTCOMES, 0)
    stats = job.stats
    summary: dict[str, Any] = {
        "command": spec.command,
        "provider": spec.provider if job.accounts is None else "accounts",
        "started_at": iso_precise(job.started_at),
        "finished_at": iso_precise(time.time()),
        "exit_code": exit_code,
        "rows": job.rows,
        "counts": {o: counts.get(o, 0) for o in _report.OUTCOMES},
        "requests": dict(sorted(stats.requests.items())),
        "http_429": stats.rate_limited,
        "rate_settled": job.rate_settled(),
        "retries": stats.retries,
        "report": _path_or_none(job.report if job.reported and not spec.dry_run else None),
        "failures": _path_or_none(
            job.failures
            if job.reported and _has_failures(counts) and _writes_failures(spec)
            else None
        ),
        # none when the run stopped before it made its journal (an unreadable input, say)
        "journal": _path_or_none(
            job.journal if _holds_journal(spec) and job.journal.exists() else None
        ),
        # the input as this run read it (a file changed since then is not this run's input)
        "input_sha256": job.input_sha256,
        "dry_run": spec.dry_run,
    }
    if job.accounts is not None:
        summary["shard"] = spec.shard
        summary["accounts"] = job.by_account
    write_summary(spec.summary_json, json.dumps(summary, indent=2) + "\n")


def _summarise_ending(job: _Job, exit_code: int) -> None:
    """The summary of a run ending on an interrupt or an error: a summary that cannot be
    written (its folder gone meanwhile) is said on stderr, and the run's own ending stands."""
    try:
        _summarise(job, exit_code)
    except BulkError as exc:
        log.warning("%s", exc)


def _path_or_none(path: Path | None) -> str | None:
    return None if path is None else str(path.absolute())


def iso_precise(ts: float) -> str:
    """Epoch seconds as ISO 8601 UTC with milliseconds: ``2025-07-01T04:00:00.123Z``."""
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


async def _status(job: _Job, connections: Sequence[_Connection]) -> JobResult:
    """Read-only: each row's current state in its campaign, every lane side by side."""
    loaded = job.loaded
    assert loaded is not None
    records = {r.line: r for r in seed_records(loaded)}
    delay = job.spec.resend_delay  # planning's read rounds, with the run's own delay

    await gather_map(
        {
            index: partial(_status_of, [records[n] for n in lane.lines], connection.provider, delay)
            for index, (lane, connection) in enumerate(zip(job.lanes, connections, strict=True))
        }
    )
    report = _report.build(loaded.frame, loaded.extra_columns, records)
    _write_reports(job, report, [], failures=False)  # status writes a report only
    assert job.counts is not None
    return JobResult(
        counts=job.counts,
        exit_code=_report.exit_code(job.counts),
        report=job.report,
        failures=None,
        journal=None,
        plan=None,
        stats=job.stats,
        elapsed=time.monotonic() - job.started,
        rows=len(records),
        rate_settled=job.rate_settled(),
        accounts=job.by_account,
        why=job.why,
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
        if members is None:
            decision = Decision(Event.PLAN_FAIL, reason=check.reason)
        elif record.line in exact:
            decision = status_of(campaign, exact[record.line])
        elif record.line in unconfirmed:
            decision = Decision(
                Event.TIME_OUT,
                reason="absent from the campaign's list, and "
                "the single read that would confirm it got no usable answer",
            )
        else:
            decision = status_of(campaign, members[str(record.e164)])
        _observe(record, decision)


_ABSENT = NumberState(Settlement.ABSENT)


def _observe(record: RowRecord, decision: Decision) -> None:
    """Apply a ``bulk status`` decision to an in-memory record, through the status table."""
    assert decision.event is not None
    target = next_state("status", record.state, decision.event)
    if target is None:
        raise IllegalTransition(record.line, record.state.value, decision.event.value)
    record.state = target
    record.provider_status = decision.provider_status or record.provider_status
    record.reason = decision.reason or record.reason


def run_job_sync(spec: JobSpec) -> JobResult:
    """Run one job from synchronous code (cron, Airflow, a notebook)."""
    return anyio.run(run_job, spec, backend="asyncio")
