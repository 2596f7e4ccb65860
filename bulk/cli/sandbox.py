"""``bulk sandbox``: serve the local Plivo 10DLC + AgentMessage simulator until Ctrl-C."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import math
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import anyio
import click

from bulk._errors import BulkError, ConfigError
from bulk.cli._options import FiniteFloatRange
from bulk.sandbox import (
    RATE_SHAPES,
    FaultConfig,
    SandboxConfig,
    Seed,
    StateFileError,
    run_sandbox,
    seed_for_accounts,
)
from bulk.sandbox._config import ListOrder, ReattachFailed, RelinkFailed, UnlinkWhilePending
from bulk.sandbox._seed import load_seed


def _pair(value: str, option: str, sep: str = ":") -> tuple[float, float]:
    low, found, high = value.partition(sep)
    try:
        pair = (float(low), float(high)) if found else (float(value), float(value))
    except ValueError:
        raise click.BadParameter(
            f"expected MIN{sep}MAX, e.g. 0.5{sep}2, got {value!r}", param_hint=option
        ) from None
    if not all(map(math.isfinite, pair)) or pair[0] < 0 or pair[1] < pair[0]:
        raise click.BadParameter("needs finite numbers, 0 <= MIN <= MAX", param_hint=option)
    return pair


def _rate(value: str, option: str) -> tuple[int, float]:
    count, found, seconds = value.partition("/")
    try:
        if not found and value.strip() != "0":
            raise ValueError(value)
        parsed = (int(count), float(seconds)) if found else (0, 0.0)
    except ValueError:
        raise click.BadParameter(
            f"expected N/SECONDS, e.g. 300/5, got {value!r}", param_hint=option
        ) from None
    if parsed[0] < 0 or not 0 <= parsed[1] < math.inf:
        raise click.BadParameter("needs N >= 0 and finite SECONDS >= 0", param_hint=option)
    return parsed


RATE = FiniteFloatRange(0.0, 1.0)


@click.command("sandbox")
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Interface to listen on. Keep loopback: the sandbox has no real security.",
)
@click.option(
    "--port",
    default=8765,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="TCP port; 0 picks a free one. Example: --port 9000",
)
@click.option(
    "--seed",
    default=0,
    show_default=True,
    type=int,
    help="Seed of the one RNG behind settle times, failures and faults: the same seed "
    "and the same requests give the same run. Example: --seed 42",
)
@click.option(
    "--state",
    "state_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="JSON file replacing parts of the default state (Plivo accounts, campaigns, "
    "numbers, links, keys, own_all, per-account rate limits; format in "
    "bulk/sandbox/WIRE.md). Default: the built-in state. "
    "Example: --state bench-state.json",
)
@click.option(
    "--settle",
    default="0.5:2",
    show_default=True,
    metavar="MIN:MAX",
    help="Seconds a link/unlink/attach/detach takes to settle, uniform per number. "
    "Example: --settle 5:30",
)
@click.option(
    "--fail-rate",
    default=0.0,
    show_default=True,
    type=RATE,
    help="Share of links/attaches that settle FAILED (Plivo) / failed (AgentMessage). "
    "Example: --fail-rate 0.05",
)
@click.option(
    "--slow-tail-rate",
    default=0.0,
    show_default=True,
    type=RATE,
    help="Share of operations that settle slowly, in --slow-tail seconds instead. "
    "Example: --slow-tail-rate 0.02",
)
@click.option(
    "--slow-tail",
    default="10:30",
    show_default=True,
    metavar="MIN:MAX",
    help="Settle seconds of the slow tail. Example: --slow-tail 60:300",
)
@click.option(
    "--latency",
    default="0:0",
    show_default=True,
    metavar="MIN:MAX",
    help="Extra seconds before each provider request is handled, uniform. "
    "Example: --latency 0.05:0.3",
)
@click.option(
    "--error-rate",
    default=0.0,
    show_default=True,
    type=RATE,
    help="Share of provider requests answered 500/502/503, half with a JSON body, "
    "half with an HTML page. Example: --error-rate 0.02",
)
@click.option(
    "--reset-rate",
    default=0.0,
    show_default=True,
    type=RATE,
    help="Share of provider requests whose TCP connection is dropped with no "
    "response. Example: --reset-rate 0.01",
)
@click.option(
    "--hang-rate",
    default=0.0,
    show_default=True,
    type=RATE,
    help="Share of provider requests held for --hang-seconds, then dropped. "
    "Example: --hang-rate 0.005",
)
@click.option(
    "--hang-seconds",
    default=30.0,
    show_default=True,
    type=FiniteFloatRange(0),
    help="How long a hung request is held (longer than your client timeout). "
    "Example: --hang-seconds 60",
)
@click.option(
    "--truncated-rate",
    default=0.0,
    show_default=True,
    type=RATE,
    help="Share of provider requests answered with the real status and headers but a "
    "body cut off mid-JSON (the request took effect). Example: --truncated-rate 0.01",
)
@click.option(
    "--non-json-rate",
    default=0.0,
    show_default=True,
    type=RATE,
    help="Share of provider requests answered 200 with an HTML page. Example: --non-json-rate 0.01",
)
@click.option(
    "--burst-429-rate",
    default=0.0,
    show_default=True,
    type=RATE,
    help="Chance per provider request that a 429 storm starts (Plivo: no Retry-After; "
    "AgentMessage: RATE_LIMITED with Retry-After). Example: --burst-429-rate 0.01",
)
@click.option(
    "--burst-429-length",
    default=5,
    show_default=True,
    type=click.IntRange(1),
    help="Requests answered 429 in one storm. Example: --burst-429-length 20",
)
@click.option(
    "--after-rate",
    default=0.0,
    show_default=True,
    type=RATE,
    help="Share of 5xx/reset/hang/non-JSON faults that strike AFTER the request took "
    "effect (state changed, client saw an error). Example: --after-rate 0.5",
)
@click.option(
    "--fault-endpoints",
    default=None,
    metavar="NAMES",
    help="Comma-separated endpoint names faults apply to (default: all), e.g. "
    "plivo.link,agentmessage.attach",
)
@click.option(
    "--plivo-rate-limit",
    default="300/5",
    show_default=True,
    metavar="N/SECONDS",
    help="Plivo sliding-window limit per account, then 429; 0 turns it off. "
    "Example: --plivo-rate-limit 50/5",
)
@click.option(
    "--plivo-max-batch",
    default=100,
    show_default=True,
    type=click.IntRange(1),
    metavar="N",
    help="Most numbers one Plivo link request may carry; more is refused with 400 "
    "'A maximum of N numbers can be linked in one request'. Example: --plivo-max-batch 40",
)
@click.option(
    "--plivo-subaccounts",
    default=0,
    show_default=True,
    type=click.IntRange(0, 99),
    metavar="N",
    help="Add N Plivo subaccounts SASANDBOXSUB00000001... beside the default account, each "
    "with the default campaigns, no links, token sandbox-token-<auth id> and the "
    "--plivo-rate-limit of its own. Example: --plivo-subaccounts 2",
)
@click.option(
    "--agentmessage-orgs",
    default=0,
    show_default=True,
    type=click.IntRange(0, 99),
    metavar="N",
    help="Add N AgentMessage organizations org_extra1... each with its own key, the default "
    "campaigns, the sample numbers and the --agentmessage-rate-limit of its own. "
    "Example: --agentmessage-orgs 2",
)
@click.option(
    "--agentmessage-rate-limit",
    default="100/10",
    show_default=True,
    metavar="N/SECONDS",
    help="AgentMessage sliding-window limit per organization, then 429 RATE_LIMITED. "
    "Example: --agentmessage-rate-limit 20/10",
)
@click.option(
    "--agentmessage-retry-after",
    default=1,
    show_default=True,
    type=click.IntRange(0),
    help="Retry-After seconds AgentMessage sends with its 429. Example: 5",
)
@click.option(
    "--rate-shape",
    type=click.Choice(RATE_SHAPES),
    default="sliding",
    show_default=True,
    help="The shape of every account's rate limit (N/SECONDS above), unless the state file "
    "gives an account its own rate_shape: 'sliding' admits at most N in any SECONDS; "
    "'fixed' at most N per window fixed on the clock (the count starts again at each "
    "boundary); 'bucket' a token bucket of N tokens refilled at N per SECONDS (a burst of N, "
    "then that rate). The sandbox's shapes, not a provider's published behaviour. "
    "Example: --rate-shape bucket",
)
@click.option(
    "--time-factor",
    default=1.0,
    show_default=True,
    type=FiniteFloatRange(0),
    help="Scales the Plivo callback retry schedule (60/120/240 s). "
    "Example: --time-factor 0.01 retries after 0.6/1.2/2.4 s",
)
@click.option(
    "--strict",
    is_flag=True,
    help="Turn every switch below to its other (non-default) reading at once; a switch "
    "given explicitly still wins. Example: --strict --list-order link",
)
@click.option(
    "--unlink-while-pending",
    type=click.Choice(["accept", "refuse"]),
    default=None,
    help="Plivo, a second unlink while one is pending: 'accept' answers the same 202 and "
    "changes nothing; 'refuse' answers 400 'The number X is already requested for "
    "unlinking'. Default: accept (refuse with --strict).",
)
@click.option(
    "--relink-failed",
    type=click.Choice(["accept", "refuse"]),
    default=None,
    help="Plivo, a link for a number whose link in that campaign settled FAILED: 'accept' "
    "links it again (PROCESSING, counted); 'refuse' answers 400 'The number X is already "
    "linked to this campaign'. Default: accept (refuse with --strict).",
)
@click.option(
    "--list-order",
    type=click.Choice(["link", "changed"]),
    default=None,
    help="Plivo number lists: 'link' keeps link order (offset paging is stable); 'changed' "
    "orders by last change (a settle or an unlink request moves the number to the end), "
    "so offset paging while numbers settle skips and repeats entries. "
    "Default: link (changed with --strict).",
)
@click.option(
    "--reattach-failed",
    type=click.Choice(["no_change", "restart"]),
    default=None,
    help="AgentMessage, attaching the campaign a number already has whose attach settled "
    "failed: 'no_change' answers 200 with the failed resource (as published: same campaign, "
    "no change); 'restart' starts it again (pending, counted). Default: no_change (restart "
    "with --strict).",
)
def sandbox(**options: Any) -> None:
    """Serve a local Plivo 10DLC + AgentMessage simulator with seeded settling and faults.

    One HTTP server answers both providers' paths (/v1/Account/... for Plivo, /v1/phone-numbers
    and /v1/campaigns for AgentMessage) and an admin API under /_sandbox (state, counters,
    reset, faults). It runs until Ctrl-C. The default state (campaigns CUOGHIN/marketing,
    CRIGC80/alerts, CMIGOLD/legacy, pre-linked numbers, +14155550142 always fails,
    +14155550143 never settles, +14155550144 is not owned) is in bulk/sandbox/WIRE.md.

    \b
    Examples:
      bulk sandbox
      bulk sandbox --port 9000 --settle 1:5 --fail-rate 0.05 --seed 7
      bulk sandbox --error-rate 0.05 --reset-rate 0.01 --after-rate 0.5
      bulk sandbox --state bench-state.json --plivo-rate-limit 0
      bulk sandbox --strict --error-rate 0.1 --after-rate 0.5
      bulk sandbox --plivo-subaccounts 2 --agentmessage-orgs 1
    """
    opts = _Options(**options)
    config = _sandbox_config(opts)
    _warn_exposed(opts.host)
    seed = _seed(opts)
    try:
        with contextlib.suppress(KeyboardInterrupt):
            anyio.run(_serve, config, seed, opts.host, opts.port, backend="asyncio")
    except ConfigError as exc:
        _fail(exc)
    click.echo("sandbox stopped", err=True)


def _warn_exposed(host: str) -> None:
    """One line on stderr when the sandbox listens beyond loopback: its admin API (state,
    faults, reset) has no authentication, and its credentials are public."""
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        click.echo(
            f"bulk sandbox: warning: listening on {host}, not loopback: every machine that "
            "reaches this one can use the admin API (/_sandbox/state, /faults, /reset) "
            "without credentials",
            err=True,
        )


@dataclass(frozen=True, slots=True)
class _Options:
    """What click passes :func:`sandbox`: one field per option declared above it."""

    host: str
    port: int
    seed: int
    state_file: Path | None
    settle: str
    fail_rate: float
    slow_tail_rate: float
    slow_tail: str
    latency: str
    error_rate: float
    reset_rate: float
    hang_rate: float
    hang_seconds: float
    truncated_rate: float
    non_json_rate: float
    burst_429_rate: float
    burst_429_length: int
    after_rate: float
    fault_endpoints: str | None
    plivo_rate_limit: str
    plivo_max_batch: int
    plivo_subaccounts: int
    agentmessage_orgs: int
    agentmessage_rate_limit: str
    agentmessage_retry_after: int
    rate_shape: str
    time_factor: float
    strict: bool
    unlink_while_pending: UnlinkWhilePending | None
    relink_failed: RelinkFailed | None
    list_order: ListOrder | None
    reattach_failed: ReattachFailed | None


def _sandbox_config(opts: _Options) -> SandboxConfig:
    """The sandbox's configuration from the options: a bad value is a usage error (exit 2),
    an unusable state file a :class:`ConfigError`, both before anything listens."""
    settle_min, settle_max = _pair(opts.settle, "--settle")
    tail_min, tail_max = _pair(opts.slow_tail, "--slow-tail")
    latency_min, latency_max = _pair(opts.latency, "--latency")
    plivo_limit, plivo_window = _rate(opts.plivo_rate_limit, "--plivo-rate-limit")
    am_limit, am_window = _rate(opts.agentmessage_rate_limit, "--agentmessage-rate-limit")
    endpoints = (
        frozenset(e.strip() for e in opts.fault_endpoints.split(",") if e.strip())
        if opts.fault_endpoints
        else None
    )
    try:
        faults = FaultConfig(
            latency_min=latency_min,
            latency_max=latency_max,
            error_5xx_rate=opts.error_rate,
            reset_rate=opts.reset_rate,
            hang_rate=opts.hang_rate,
            hang_seconds=opts.hang_seconds,
            truncated_rate=opts.truncated_rate,
            non_json_rate=opts.non_json_rate,
            burst_429_rate=opts.burst_429_rate,
            burst_429_length=opts.burst_429_length,
            after_rate=opts.after_rate,
            endpoints=endpoints,
        )
        config = SandboxConfig(
            seed=opts.seed,
            settle_min=settle_min,
            settle_max=settle_max,
            fail_rate=opts.fail_rate,
            slow_tail_rate=opts.slow_tail_rate,
            slow_tail_min=tail_min,
            slow_tail_max=tail_max,
            plivo_rate_limit=plivo_limit,
            plivo_rate_window=plivo_window,
            plivo_max_batch=opts.plivo_max_batch,
            agentmessage_rate_limit=am_limit,
            agentmessage_rate_window=am_window,
            agentmessage_retry_after=opts.agentmessage_retry_after,
            rate_shape=opts.rate_shape,
            time_factor=opts.time_factor,
            state_file=opts.state_file,
            faults=faults,
            strict=opts.strict,
            unlink_while_pending=opts.unlink_while_pending,
            relink_failed=opts.relink_failed,
            list_order=opts.list_order,
            reattach_failed=opts.reattach_failed,
        )
        load_seed(opts.state_file)  # fail before listening when the state file is unusable
    except StateFileError as exc:
        _fail(ConfigError(str(exc)))
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    return config


def subaccount_id(i: int) -> str:
    """The auth id of ``--plivo-subaccounts``' ``i``-th subaccount (from 1)."""
    return f"SASANDBOXSUB{i:08d}"


def _seed(opts: _Options) -> Seed | None:
    """The state to serve: None (the default state and ``--state``) unless accounts are
    added."""
    if not opts.plivo_subaccounts and not opts.agentmessage_orgs:
        return None
    try:
        return seed_for_accounts(
            dict.fromkeys(subaccount_id(i) for i in range(1, opts.plivo_subaccounts + 1)),
            dict.fromkeys(f"extra{i}" for i in range(1, opts.agentmessage_orgs + 1)),
            base=load_seed(opts.state_file),
        )
    except StateFileError as exc:
        _fail(ConfigError(str(exc)))


def _fail(exc: BulkError) -> NoReturn:
    click.echo(f"bulk: {exc}", err=True)
    sys.exit(exc.exit_code)


def banner(base_url: str, auth_id: str, auth_token: str, api_key: str) -> str:
    """What the command prints once it listens (sandbox-only credentials). Every command it
    shows works as shown from bulk's source folder: the AgentMessage one names AgentMessage's
    campaigns; poll and settle times suit the sandbox's (a real provider's take minutes), so
    its never-settling number ends ``unknown`` in seconds, not in an hour."""
    fast = "--poll-interval 1 --settle-timeout 15"
    return "\n".join(
        [
            f"bulk sandbox listening on {base_url}  (Ctrl-C to stop)",
            f"  admin API        {base_url}/_sandbox/state | /counters | /faults | /reset",
            "  Plivo            PLIVO_AUTH_ID=" + auth_id,
            "                   PLIVO_AUTH_TOKEN=" + auth_token,
            "  AgentMessage     AGENTMESSAGE_API_KEY=" + api_key,
            "",
            "Point bulk at it:",
            f"  export PLIVO_AUTH_ID={auth_id} PLIVO_AUTH_TOKEN={auth_token}",
            f"  export AGENTMESSAGE_API_KEY={api_key}",
            f"  bulk link samples/onboarding.csv --campaigns samples/campaigns.csv {fast} "
            f"--base-url {base_url}",
            "  bulk link samples/onboarding.csv --campaigns samples/campaigns-agentmessage.csv "
            f"--provider agentmessage {fast} --base-url {base_url}",
            "  (run from bulk's source folder; --poll-interval and --settle-timeout suit the "
            "sandbox's settle times)",
        ]
    )


def accounts_banner(
    plivo: Mapping[str, str], agentmessage: Mapping[str, str], limits: Mapping[str, Any]
) -> str:
    """Every account's credentials and rate limit (sandbox-only credentials)."""

    def limit(name: str) -> str:
        row = limits.get(name, {})
        return f"{row.get('rate_limit', 0) or 'no limit'}/{row.get('rate_window', 0):g}s"

    lines = ["", "Accounts (each with its own campaigns and rate limit):"]
    for auth_id, token in plivo.items():
        lines.append(f"  Plivo         {auth_id}  token {token}  limit {limit(auth_id)}")
    for org, key in agentmessage.items():
        lines.append(f"  AgentMessage  {org}  key {key}  limit {limit(org)}")
    return "\n".join(lines)


async def _serve(config: SandboxConfig, seed: Seed | None, host: str, port: int) -> None:
    try:
        async with run_sandbox(config, host=host, port=port, seed=seed) as sb:
            click.echo(
                banner(sb.base_url, sb.plivo_auth_id, sb.plivo_auth_token, sb.agentmessage_api_key)
            )
            click.echo(accounts_banner(sb.plivo_accounts, sb.agentmessage_keys,
                                       sb.counters()["accounts"]))
            sys.stdout.flush()
            await asyncio.Event().wait()
    except OSError as exc:
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None


COMMANDS = [sandbox]
