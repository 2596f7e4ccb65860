"""A whole job: read, validate, plan, execute, report. The CLI and scheduled jobs call this."""

from __future__ import annotations

import hashlib
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import aiohttp
import anyio
import polars as pl

from bulk import _report
from bulk._errors import ConfigError, IllegalTransition, ProviderUnreachable
from bulk._journal import Journal, RowRecord, fingerprint_json
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
)
from bulk.inputs import Loaded, load_rows
from bulk.providers import (
    Credentials,
    NumberState,
    Provider,
    Secret,
    Settlement,
    credentials_from_env,
    entry,
)
from bulk.providers._base import ProviderUnavailable

Command = Literal["link", "unlink", "move", "status", "apply"]
COMMANDS: tuple[str, ...] = ("link", "unlink", "move", "status", "apply")


@dataclass(slots=True)
class JobSpec:
    """Everything a run needs. Paths default to files named after the input in the cwd."""

    command: Command
    input: Path
    provider: str = "plivo"
    campaigns: Path | None = None
    campaign: str | None = None
    from_campaign: str | None = None
    base_url: str | None = None
    account: str | None = None  #: Plivo auth id (PLIVO_AUTH_ID)
    token: str | None = (
        None  #: Plivo auth token / AgentMessage API key (from the environment if None)
    )
    rate: float | None = None  #: requests per second; None = the provider's default
    concurrency: int = 8
    batch_size: int | None = None
    poll_interval: float | None = None
    settle_timeout: float | None = None
    timeout: float = 30.0
    attempts: int = 5
    backoff_base: float = 1.0  #: first pause after a 429 with no Retry-After (doubles per 429)
    report: Path | None = None
    failures: Path | None = None
    journal: Path | None = None
    dry_run: bool = False
    sandbox: bool = False
    regions: Sequence[str] = ("US",)
    number_type: str = "either"
    callback_url: str | None = None


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
    extra: dict[str, object] = field(default_factory=dict)


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


@asynccontextmanager
async def _endpoint(spec: JobSpec) -> AsyncIterator[tuple[str, Credentials, dict[str, float]]]:
    """Where to send requests: the in-process sandbox, or the configured provider."""
    if spec.sandbox:
        from bulk.sandbox import SandboxConfig, run_sandbox

        async with run_sandbox(SandboxConfig(settle_min=0.3, settle_max=1.5)) as sb:
            if spec.provider == "plivo":
                creds = Credentials(sb.plivo_auth_id, Secret(sb.plivo_auth_token))
            else:
                creds = Credentials(None, Secret(sb.agentmessage_api_key))
            yield sb.base_url, creds, {"poll_interval": 1.0, "settle_timeout": 15.0}
        return
    creds = credentials_from_env(spec.provider, spec.account, spec.token)
    yield spec.base_url or entry(spec.provider).default_base_url, creds, {}


async def run_job(
    spec: JobSpec,
    *,
    on_progress: Callable[[int, int], None] | None = None,
    on_plan: Callable[[Plan], bool] | None = None,
) -> JobResult:
    """Run one job to the end (async). Raises :class:`bulk.BulkError` when it cannot start.

    ``on_progress(done, total)`` is called as rows settle; ``on_plan(plan)`` once the plan is
    known and before anything is sent (return False to stop there).
    """
    started = time.monotonic()
    if spec.command not in COMMANDS:
        raise ConfigError(f"unknown command {spec.command!r}")
    provider_entry = entry(spec.provider)
    report_path, failures_path, journal_path = default_paths(spec)
    _report.check_path(report_path, "--report")
    _report.check_path(failures_path, "--failures")
    loaded = load(spec)
    async with _endpoint(spec) as (base_url, creds, sandbox_defaults):
        headers = provider_entry.headers(creds)
        poll_interval = spec.poll_interval or sandbox_defaults.get("poll_interval", 30.0)
        settle_timeout = spec.settle_timeout or sandbox_defaults.get("settle_timeout", 3600.0)
        policy = RetryPolicy(attempts=spec.attempts, timeout=spec.timeout)
        stats = Stats()
        connector = aiohttp.TCPConnector(limit=spec.concurrency + 4)
        async with aiohttp.ClientSession(connector=connector, raise_for_status=False) as session:
            meter = Meter(spec.rate, spec.concurrency, gate=PauseGate(base=spec.backoff_base))
            sender = HttpSender(
                session,
                base_url,
                meter,
                headers=headers,
                provider=spec.provider,
                policy=policy,
                stats=stats,
            )
            provider = provider_entry.create(sender, creds, spec.batch_size, spec.callback_url)
            if spec.rate is None:
                meter.set_rate(provider.default_rate)
            if spec.command == "status":
                return await _status(loaded, provider, report_path, stats, started)
            fingerprint = {
                "command": spec.command,
                "provider": spec.provider,
                "input_sha256": _sha256(spec.input),
                "campaigns_sha256": _sha256(spec.campaigns),
                "options": fingerprint_json(
                    {
                        "campaign": spec.campaign,
                        "from": spec.from_campaign,
                        "base_url": base_url if not spec.sandbox else "sandbox",
                    }
                ),
            }
            if spec.dry_run:
                journal = Journal.open(":memory:", fingerprint)
            else:
                journal = Journal.open(journal_path, fingerprint)
            try:
                if journal.new:
                    journal.seed(seed_records(loaded))
                total = len(journal.rows)

                def progress() -> None:
                    if on_progress is not None:
                        on_progress(sum(1 for r in journal.rows.values() if r.terminal), total)

                engine = Engine(
                    provider,
                    journal,
                    EngineConfig(
                        poll_interval=poll_interval,
                        poll_max_interval=max(poll_interval * 8, poll_interval),
                        settle_timeout=settle_timeout,
                        workers=spec.concurrency,
                    ),
                    on_change=progress,
                    tries=stats.attempts_by_line,
                )
                try:
                    plan = await engine.plan()
                    progress()
                    if on_plan is not None and not spec.dry_run:
                        # in a worker thread: the callback may prompt on the terminal
                        if not await anyio.to_thread.run_sync(
                            on_plan, plan, abandon_on_cancel=True
                        ):
                            raise ConfigError("not confirmed: nothing was sent")
                    if not spec.dry_run:
                        await engine.execute(plan)
                except anyio.get_cancelled_exc_class():
                    if not spec.dry_run:
                        # synchronous: runs to the end although the run is being cancelled
                        _finish(loaded, journal, report_path, failures_path)
                    raise
                if spec.dry_run:  # no report to write: count straight from the journal
                    counts = _report.counts_of(journal.rows.values())
                else:
                    _, counts = _finish(loaded, journal, report_path, failures_path)
                return JobResult(
                    counts=counts,
                    exit_code=_report.exit_code(counts)
                    if not spec.dry_run
                    else (1 if counts["rejected"] else 0),
                    report=None if spec.dry_run else report_path,
                    failures=None if spec.dry_run or not _has_failures(counts) else failures_path,
                    journal=None if spec.dry_run else journal_path,
                    plan=plan,
                    stats=stats,
                    elapsed=time.monotonic() - started,
                    rows=total,
                )
            finally:
                journal.close()


def _has_failures(counts: dict[str, int]) -> bool:
    return any(n for o, n in counts.items() if o not in _report.SUCCESS_OUTCOMES)


def _finish(
    loaded: Loaded, journal: Journal, report_path: Path | None, failures_path: Path | None
) -> tuple[pl.DataFrame, dict[str, int]]:
    report = _report.build(loaded.frame, loaded.extra_columns, journal.rows)
    counts = _report.counts(report)
    if report_path is not None:
        _report.write(report, report_path)
    if failures_path is not None:
        if _has_failures(counts):
            _report.write(
                _report.failures(report, loaded.raw, loaded.extra_columns),
                failures_path,
            )
        elif failures_path.exists():
            failures_path.unlink()  # a stale list from an earlier run would mislead
    return report, counts


async def _status(
    loaded: Loaded, provider: Provider, report_path: Path, stats: Stats, started: float
) -> JobResult:
    """Read-only: each row's current state in its campaign."""
    records = {r.line: r for r in seed_records(loaded)}
    campaigns = sorted(
        {str(r.campaign_id) for r in records.values() if r.state is State.PLANNED and r.campaign_id}
    )
    try:
        checks = {c: await provider.check_campaign(c) for c in campaigns}
        members = {c: await provider.campaign_numbers(c) for c in campaigns if checks[c].usable}
    except ProviderUnavailable as exc:
        raise ProviderUnreachable(f"{provider.name}: {exc.reason}") from None
    for record in records.values():
        if record.state is not State.PLANNED:
            continue
        campaign = str(record.campaign_id)
        if not checks[campaign].usable:
            decision = Decision(Event.PLAN_FAIL, reason=checks[campaign].reason)
        else:
            decision = status_of(campaign, members[campaign].get(str(record.e164), _ABSENT))
        _observe(record, decision)
    report = _report.build(loaded.frame, loaded.extra_columns, records)
    counts = _report.counts(report)
    _report.write(report, report_path)
    return JobResult(
        counts=counts,
        exit_code=_report.exit_code(counts),
        report=report_path,
        failures=None,
        journal=None,
        plan=None,
        stats=stats,
        elapsed=time.monotonic() - started,
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
