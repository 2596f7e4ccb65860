"""A whole job: read, validate, plan, execute, report. The CLI and scheduled jobs call this."""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager, contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import aiohttp
import anyio

from bulk import _report
from bulk._errors import BulkError, ConfigError, IllegalTransition
from bulk._journal import Journal, RowRecord, exclusive, fingerprint_json
from bulk._states import Decision, Event, State, next_state, status_of
from bulk.engine import (
    Engine,
    EngineConfig,
    HttpSender,
    Meter,
    PauseGate,
    Plan,
    RetryPolicy,
    Stats,
    SystemClock,
    exact_reads,
    survey,
)
from bulk.inputs import MAX_INPUT_BYTES, Loaded, load_rows
from bulk.providers import (
    DEFAULT_PROVIDER,
    Credentials,
    NumberState,
    Provider,
    ProviderEntry,
    Settlement,
    credentials_from_env,
    entry,
)

Command = Literal["link", "unlink", "move", "status", "apply"]
COMMANDS: tuple[str, ...] = ("link", "unlink", "move", "status", "apply")
#: the exit code of a run stopped by Ctrl-C or SIGTERM
EXIT_INTERRUPTED = 130


@dataclass(slots=True)
class JobSpec:
    """Everything a run needs. Paths default to files named after the input in the cwd."""

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
    #: limiter's fill rate when the run ended (None: no limit, or never connected)
    rate_settled: float | None = None


def default_paths(spec: JobSpec) -> tuple[Path, Path, Path]:
    stem = f"{spec.input.stem}.{spec.command}"
    report = spec.report or Path(f"{stem}.report.csv")
    failures = spec.failures or report.with_name(
        report.stem.removesuffix(".report") + ".failed.csv"
    )
    journal = spec.journal or Path(f"{stem}.{spec.provider}.journal")
    return report, failures, journal


def _sha256(path: Path | None) -> str:
    if path is None:
        return "-"
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def load(spec: JobSpec) -> Loaded:
    action = None if spec.command in ("apply", "status") else spec.command
    return load_rows(
        spec.input,
        campaigns_path=spec.campaigns,
        default_campaign=spec.campaign,
        default_action=action,
        default_from_campaign=spec.from_campaign,
        regions=spec.regions,
        number_type=spec.number_type,
        max_input_bytes=spec.max_input_bytes,
    )


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


@dataclass(slots=True)
class _Connection:
    """A provider ready to call, and what the journal's fingerprint records of where it is."""

    provider: Provider
    rate: float  #: the starting rate
    meter: Meter
    where: str  #: the base URL, or ``sandbox``
    poll_interval: float
    settle_timeout: float


@dataclass(slots=True)
class _Job:
    """One run as it goes: what the report, the result and the summary are made of."""

    spec: JobSpec
    report: Path
    failures: Path
    journal: Path
    started: float  #: monotonic
    started_at: float  #: epoch seconds
    stats: Stats = field(default_factory=Stats)
    loaded: Loaded | None = None
    counts: dict[str, int] | None = None
    rows: int = 0
    meter: Meter | None = None  #: set once connected: its rate is the run's settled rate

    def rate_settled(self) -> float | None:
        return None if self.meter is None else self.meter.current_rate


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Where a run stands, for progress lines: rows settled by outcome, and the wire so far."""

    rows: Mapping[int, RowRecord]
    stats: Stats
    started: float  #: monotonic

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


@asynccontextmanager
async def _endpoint(spec: JobSpec) -> AsyncIterator[tuple[str, Credentials, dict[str, float]]]:
    """Where to send requests: the in-process sandbox, or the configured provider."""
    provider = entry(spec.provider)
    if spec.sandbox:
        from bulk.sandbox import SandboxConfig, run_sandbox

        if provider.sandbox_credentials is None:
            raise ConfigError(f"the sandbox does not simulate {spec.provider}")
        async with run_sandbox(SandboxConfig(settle_min=0.3, settle_max=1.5)) as sb:
            creds = provider.sandbox_credentials(sb)
            yield sb.base_url, creds, {"poll_interval": 1.0, "settle_timeout": 15.0}
        return
    creds = credentials_from_env(spec.provider, spec.account, spec.token)
    yield spec.base_url or provider.default_base_url, creds, {}


@asynccontextmanager
async def _connect(spec: JobSpec, stats: Stats) -> AsyncIterator[_Connection]:
    """Step 1: an HTTP session, rate-limited and retrying, behind the provider's adapter."""
    provider_entry = entry(spec.provider)
    async with _endpoint(spec) as (base_url, creds, sandbox_defaults):
        headers = provider_entry.headers(creds)
        connector = aiohttp.TCPConnector(limit=spec.concurrency + 4)
        async with aiohttp.ClientSession(connector=connector, raise_for_status=False) as session:
            rate, adaptive = _rate_choice(spec, provider_entry)
            meter = Meter(
                rate,
                spec.concurrency,
                gate=PauseGate(base=spec.backoff_base),
                adaptive=adaptive,
                max_rate=spec.max_rate,
            )
            sender = HttpSender(
                session,
                base_url,
                meter,
                headers=headers,
                provider=spec.provider,
                policy=RetryPolicy(attempts=spec.attempts, timeout=spec.timeout),
                stats=stats,
            )
            poll_interval = spec.poll_interval or sandbox_defaults.get("poll_interval", 30.0)
            yield _Connection(
                provider_entry.create(sender, creds, spec.batch_size, spec.callback_url),
                rate,
                meter,
                "sandbox" if spec.sandbox else base_url,
                poll_interval,
                spec.settle_timeout or sandbox_defaults.get("settle_timeout", 3600.0),
            )


def _rate_choice(spec: JobSpec, provider: ProviderEntry) -> tuple[float, bool]:
    """The starting rate and whether it adapts: ``--rate N`` is fixed; ``--rate auto`` (or no
    ``--rate`` for a provider whose default mode is auto) starts at the provider's default
    rate, at most ``--max-rate``."""
    if spec.rate == "auto" or (spec.rate is None and provider.default_rate_mode == "auto"):
        return min(provider.default_rate, spec.max_rate), True
    return float(spec.rate or provider.default_rate), False


def _start(spec: JobSpec) -> _Job:
    """Check what can be checked before anything is opened."""
    if spec.command not in COMMANDS:
        raise ConfigError(f"unknown command {spec.command!r}")
    entry(spec.provider)
    report, failures, journal = default_paths(spec)
    _report.check_path(report, "--report")
    _report.check_path(failures, "--failures")
    return _Job(spec, report, failures, journal, time.monotonic(), time.time())


def _holds_journal(spec: JobSpec) -> bool:
    """Runs that write a journal hold it; a dry run's journal is in memory, status has none."""
    return not spec.dry_run and spec.command != "status"


async def run_job(
    spec: JobSpec,
    *,
    on_progress: Callable[[int, int], None] | None = None,
    on_plan: Callable[[Plan], bool] | None = None,
    on_snapshot: Callable[[Snapshot], None] | None = None,
) -> JobResult:
    """Run one job to the end (async). Raises :class:`bulk.BulkError` when it cannot start.

    ``on_progress(done, total)`` is called as rows settle; ``on_plan(plan)`` once the plan is
    known and before anything is sent (return False to stop there); ``on_snapshot`` with a
    :class:`Snapshot` whenever rows change. A run holds its journal exclusively: a second run
    on the same journal raises :class:`bulk.JournalBusy` (exit 75) before reading anything.
    With ``spec.summary_json`` the run's summary is written there at the end, also when it is
    interrupted or stops on an error.
    """
    job = _start(spec)
    hooks = _Hooks(on_progress, on_plan, on_snapshot)
    with _exclusive(job) if _holds_journal(spec) else nullcontext():
        try:
            job.loaded = load(spec)
            result = await _run(job, hooks)
            result.rate_settled = job.rate_settled()
        except anyio.get_cancelled_exc_class():
            _summarise(job, EXIT_INTERRUPTED)
            raise
        except BulkError as exc:
            _summarise(job, exc.exit_code)
            raise
        _summarise(job, result.exit_code)
        return result


@contextmanager
def _exclusive(job: _Job) -> Iterator[None]:
    with exclusive(job.journal):
        yield


async def _run(job: _Job, hooks: _Hooks) -> JobResult:
    """Connect, open the journal, plan, execute, report."""
    spec, loaded = job.spec, job.loaded
    assert loaded is not None
    async with _connect(spec, job.stats) as connection:
        job.meter = connection.meter
        if spec.command == "status":
            result = await _status(loaded, connection.provider, job)
            job.counts, job.rows = result.counts, result.rows
            return result
        journal = _open_journal(job, connection)
        try:
            engine, changed = _engine(job, connection, journal, hooks)
            plan = await _plan(job, engine, changed, hooks)
            if not spec.dry_run:
                await _execute(job, engine, plan, journal)
            return _result(job, journal, plan)
        finally:
            journal.close()


def _open_journal(job: _Job, connection: _Connection) -> Journal:
    """Step 2: the journal of this job (new, or the one an earlier run left to resume)."""
    spec, loaded = job.spec, job.loaded
    assert loaded is not None
    fingerprint = {
        "command": spec.command,
        "provider": spec.provider,
        "input_sha256": _sha256(spec.input),
        "campaigns_sha256": _sha256(spec.campaigns),
        "options": fingerprint_json(
            {"campaign": spec.campaign, "from": spec.from_campaign, "base_url": connection.where}
        ),
    }
    journal = Journal.open(":memory:" if spec.dry_run else job.journal, fingerprint)
    if journal.new:
        journal.seed(seed_records(loaded))
    job.rows = len(journal.rows)
    return journal


def _engine(
    job: _Job, connection: _Connection, journal: Journal, hooks: _Hooks
) -> tuple[Engine, Callable[[], None]]:
    """The engine over this journal, and the function that reports its progress."""
    total = len(journal.rows)

    def changed() -> None:
        if hooks.on_progress is not None:
            hooks.on_progress(sum(1 for r in journal.rows.values() if r.terminal), total)
        if hooks.on_snapshot is not None:
            hooks.on_snapshot(Snapshot(journal.rows, job.stats, job.started))

    interval = connection.poll_interval
    config = EngineConfig(
        poll_interval=interval,
        poll_max_interval=max(interval * 8, interval),
        settle_timeout=connection.settle_timeout,
        workers=job.spec.concurrency,
        send_until=job.spec.send_until,
        resend_delay=job.spec.resend_delay,
    )
    engine = Engine(
        connection.provider, journal, config, on_change=changed, attempts=job.stats.attempts_by_line
    )
    return engine, changed


async def _plan(job: _Job, engine: Engine, changed: Callable[[], None], hooks: _Hooks) -> Plan:
    """Step 3: read the provider's state and decide; ask ``on_plan`` before sending."""
    plan = await engine.plan()
    changed()
    if hooks.on_plan is not None and not job.spec.dry_run:
        # in a worker thread: the callback may prompt on the terminal
        if not await anyio.to_thread.run_sync(hooks.on_plan, plan, abandon_on_cancel=True):
            raise ConfigError("not confirmed: nothing was sent")
    return plan


async def _execute(job: _Job, engine: Engine, plan: Plan, journal: Journal) -> None:
    """Step 4: send, poll until every row settles. Interrupted, it still writes the report;
    stopped by a BulkError (a refusal, an unwritable journal) too, then raises that error
    alone, never wrapped in the task group's ExceptionGroup."""
    try:
        await engine.execute(plan)
    except anyio.get_cancelled_exc_class():
        _finish(job, journal)  # synchronous: runs to the end although the run is cancelled
        raise
    except (BulkError, BaseExceptionGroup) as exc:
        error = exc if isinstance(exc, BulkError) else _only_bulk_error(exc)
        if error is None:
            raise
        try:
            _finish(job, journal, stopped=str(error))
        except OSError as report_error:  # on a really full disk the report may fail too
            why = report_error.strerror or report_error
            raise BulkError(f"{error}; the report could not be written either: {why}") from None
        raise error from None


def _only_bulk_error(group: BaseExceptionGroup[BaseException]) -> BulkError | None:
    """The BulkError a task group raised, when nothing else is in the group."""
    matched, rest = group.split(BulkError)
    if matched is None or rest is not None:
        return None
    first: BaseException = matched
    while isinstance(first, BaseExceptionGroup):
        first = first.exceptions[0]
    return first if isinstance(first, BulkError) else None


def _result(job: _Job, journal: Journal, plan: Plan) -> JobResult:
    """Step 5: the report (none for a dry run) and the result."""
    spec = job.spec
    if spec.dry_run:  # no report to write: count straight from the journal
        counts = _report.counts_of(journal.rows.values())
        job.counts = counts
        code = 1 if counts["rejected"] else 0
    else:
        counts = _finish(job, journal)
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
    )


def _has_failures(counts: dict[str, int]) -> bool:
    return any(n for o, n in counts.items() if o not in _report.SUCCESS_OUTCOMES)


def _finish(job: _Job, journal: Journal, *, stopped: str | None = None) -> dict[str, int]:
    """Write the report and the failures file from the journal; the counts by outcome.
    ``stopped``: why the run ended early, for the rows it left unfinished."""
    loaded = job.loaded
    assert loaded is not None
    report = _report.build(loaded.frame, loaded.extra_columns, journal.rows, stopped=stopped)
    counts = _report.counts(report)
    _report.write(report, job.report)
    if _has_failures(counts):
        released = [r.line for r in journal.rows.values() if r.released_at is not None]
        frame = _report.failures(report, loaded.raw, loaded.extra_columns, released)
        _report.write(frame, job.failures)
    elif job.failures.exists():
        job.failures.unlink()  # a stale list from an earlier run would mislead
    job.counts = counts
    return counts


def _summarise(job: _Job, exit_code: int) -> None:
    """Write ``--summary-json`` (when asked): the run's machine-readable summary."""
    spec = job.spec
    if spec.summary_json is None:
        return
    counts = job.counts or dict.fromkeys(_report.OUTCOMES, 0)
    stats = job.stats
    summary = {
        "command": spec.command,
        "provider": spec.provider,
        "started_at": iso_precise(job.started_at),
        "finished_at": iso_precise(time.time()),
        "exit_code": exit_code,
        "rows": job.rows,
        "counts": {o: counts.get(o, 0) for o in _report.OUTCOMES},
        "requests": dict(sorted(stats.requests.items())),
        "http_429": stats.rate_limited,
        "rate_settled": job.rate_settled(),
        "retries": stats.retries,
        "report": _path_or_none(
            job.report if job.counts is not None and not spec.dry_run else None
        ),
        "failures": _path_or_none(
            job.failures
            if job.counts is not None and _has_failures(counts) and not spec.dry_run
            else None
        ),
        "journal": _path_or_none(job.journal if _holds_journal(spec) else None),
        "input_sha256": _sha256(spec.input) if spec.input.exists() else None,
        "dry_run": spec.dry_run,
    }
    atomic_write(spec.summary_json, json.dumps(summary, indent=2) + "\n")


def _path_or_none(path: Path | None) -> str | None:
    return None if path is None else str(path.absolute())


def iso_precise(ts: float) -> str:
    """Epoch seconds as ISO 8601 UTC with milliseconds: ``2025-07-01T04:00:00.123Z``."""
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def atomic_write(path: Path, text: str) -> None:
    """Write ``text`` to a temporary file beside ``path``, then rename it over ``path``."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        temporary.write_text(text, encoding="utf-8")
        os.replace(temporary, path)
    except OSError as exc:
        temporary.unlink(missing_ok=True)
        raise ConfigError(f"{path}: cannot write the summary ({exc.strerror})") from None


async def _status(loaded: Loaded, provider: Provider, job: _Job) -> JobResult:
    """Read-only: each row's current state in its campaign."""
    records = {r.line: r for r in seed_records(loaded)}
    looking = [r for r in records.values() if r.state is State.PLANNED and r.campaign_id]
    campaigns = sorted({str(r.campaign_id) for r in looking})
    delay = job.spec.resend_delay  # planning's read rounds, with the run's own delay
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
    report = _report.build(loaded.frame, loaded.extra_columns, records)
    counts = _report.counts(report)
    _report.write(report, job.report)
    return JobResult(
        counts=counts,
        exit_code=_report.exit_code(counts),
        report=job.report,
        failures=None,
        journal=None,
        plan=None,
        stats=job.stats,
        elapsed=time.monotonic() - job.started,
        rows=len(records),
    )


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
