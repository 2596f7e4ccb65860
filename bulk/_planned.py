"""A run's journal and its plans: the journal opened (new, or one an earlier run left, whose
fingerprint must match), each lane's engine over its rows of it, and every lane's plan
(reading only), merged into one the run is asked to confirm before anything is sent."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import anyio

from bulk import _mismatch, _resume, _sandboxed
from bulk._aio import gather_map
from bulk._errors import ConfigError, JournalError, ProviderError
from bulk._journal import Journal, JournalMismatch, JournalView, Ledger, fingerprint_json
from bulk._lanes import Connection, Lane
from bulk._load import Input, seed_records, sha256
from bulk._outcome import Opened
from bulk._paths import Job
from bulk.engine import Engine, EngineConfig, Plan, Review
from bulk.inputs import Loaded
from bulk.plans._sight import LaneSight, PlanSight
from bulk.providers import entry


def fingerprint(job: Job, input_sha256: str, connections: Sequence[Connection]) -> dict[str, Any]:
    """What a journal is for: a resume under anything else is refused."""
    spec = job.spec
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
    account = (connections[0].account if connections else None) or "-"
    return {
        # one account: the account id too (with --accounts, ``options`` holds every one's)
        **({"account": account} if job.accounts is None else {}),
        "command": spec.command,
        "provider": spec.provider if job.accounts is None else "accounts",
        "input_sha256": input_sha256,
        "campaigns_sha256": sha256(spec.campaigns),
        "options": fingerprint_json(options),
        # what decides which rows are valid: a resume under other rules would keep the first
        # run's rejections and send rows those rules reject
        "validation": fingerprint_json(
            {"regions": sorted(spec.regions), "number_type": spec.number_type}
        ),
    }


def open_journal(
    job: Job, input_sha256: str, loaded: Loaded, connections: Sequence[Connection]
) -> Opened:
    """The journal of this job (new, or the one an earlier run left to resume)."""
    spec = job.spec
    files = {"input": spec.input, "campaigns": spec.campaigns}
    state = [_sandboxed.state_path(job.journal)] if spec.sandbox else []
    state = [p for p in state if p.exists()]  # the sandbox's state, kept beside the journal
    try:
        journal = Journal.open(
            ":memory:" if spec.dry_run else job.journal,
            fingerprint(job, input_sha256, connections),
            _mismatch.notes(files),
        )
    except JournalMismatch as exc:
        raise _mismatch.reworded(exc, job.journal, files, state) from None
    if journal.new:
        journal.seed(seed_records(loaded))
        return Opened(journal)
    try:
        journal.check_lines(loaded.frame.get_column("line").to_list())
    except JournalError:
        journal.close()
        raise
    return Opened(journal, _resume.resumed(journal, state), _resume.settled(journal))


def engine_of(
    job: Job,
    lane: Lane,
    connection: Connection,
    journal: Journal,
    changed: Callable[[], None],
    review: Review | None = None,
) -> Engine:
    """A lane's engine, over its rows of the journal (all of them without accounts)."""
    timing = lane.settings.timing
    config = EngineConfig(
        poll_interval=timing.poll_interval,
        poll_max_interval=timing.poll_max_interval,
        settle_timeout=timing.settle_timeout,
        workers=lane.settings.concurrency,
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


def sight_of(
    job: Job,
    read: Input,
    lanes: Sequence[Lane],
    journal: Journal,
    connections: Sequence[Connection],
    plan: Plan,
) -> PlanSight:
    """What planning saw and where each lane's requests would go (``on_planned``)."""
    seen = tuple(
        LaneSight(lane.name, lane.provider, c.where, c.account, not c.provider.move_in_one_step,
                  lane.settings.batch_size or entry(lane.provider).default_batch)
        for lane, c in zip(lanes, connections, strict=True)
    )
    return PlanSight(job.spec, read.loaded, journal.rows, plan, read.sha256, seen)


async def plan_lanes(
    lanes: Sequence[Lane], engines: Sequence[Engine]
) -> tuple[Plan, list[Plan]]:
    """Every lane reads its provider's state and decides, side by side (reading only): the
    merged plan, and each lane's."""
    calls = {
        i: _named(engine.plan, lane.name)
        for i, (engine, lane) in enumerate(zip(engines, lanes, strict=True))
    }
    plans = list((await gather_map(calls)).values())
    return merge_plans(plans, [lane.name for lane in lanes]), plans


async def confirm(on_plan: Callable[[Plan], bool], plan: Plan) -> None:
    """Ask ``on_plan`` once, before anything is sent (in a worker thread: the callback may
    prompt on the terminal); :class:`ConfigError` when it says no."""
    if not await anyio.to_thread.run_sync(on_plan, plan, abandon_on_cancel=True):
        raise ConfigError("not confirmed: nothing was sent")


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


def merge_plans(plans: Sequence[Plan], names: Sequence[str | None]) -> Plan:
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


__all__ = [
    "confirm",
    "engine_of",
    "fingerprint",
    "merge_plans",
    "open_journal",
    "plan_lanes",
    "sight_of",
]
