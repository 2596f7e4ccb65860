"""``bulk link|unlink|move|status|apply``: the pipeline from the command line."""

from __future__ import annotations

import logging
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

import anyio
import click
import stamina
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from bulk._errors import AccountsStopped, BulkError
from bulk._job import EXIT_INTERRUPTED, JobResult, JobSpec, Snapshot, default_paths, run_job
from bulk._window import parse_send_until
from bulk.cli._given import check_given
from bulk.cli._options import (
    BaseUrlType,
    FiniteFloatRange,
    max_input_option,
    refuse_non_finite,
)
from bulk.cli._shown import inline
from bulk.cli._summary import plan_text, summary
from bulk.engine import Plan
from bulk.plans._cli import plan_out_hooks, plan_out_option
from bulk.providers import (
    DEFAULT_PROVIDER,
    REGISTRY,
    ProviderEntry,
    credential_options,
    entry,
)

#: plain progress lines when stderr is not a terminal (cron, journald): one when something
#: changed (a row settled, a campaign was read), at most every PROGRESS_INTERVAL seconds, and
#: one at least every PROGRESS_HEARTBEAT seconds however little changed
PROGRESS_INTERVAL = 30.0
PROGRESS_HEARTBEAT = 300.0


def _credentials_help() -> str:
    lines = [
        f"  {p.title:<13} {', '.join(o.env for o in p.options)}"
        for p in REGISTRY.values()
        if p.options
    ]
    return "\n".join(lines)


def _env_example() -> str:
    return " ".join(f"{o.env}=..." for o in entry(DEFAULT_PROVIDER).options)


_COMMON_HELP = f"""
\b
Credentials come from the environment (or the options: bulk warns when a secret is given
as an option, as other users see the command line in ps):
{_credentials_help()}
--sandbox runs against bulk's built-in provider simulator instead: no credentials, no network.

\b
Exit codes: 0 every row linked/unlinked/moved/already; 1 some row failed, rejected or unknown;
2 the run could not start (file, options, credentials, provider unreachable); 3 some rows
deferred by --send-until (run again to continue); 75 the journal is in use by another run
(try later); 130 interrupted.
Run the same command again with the same --journal to resume an interrupted run.
"""


class _RateType(click.types.FloatParamType):
    """``--rate``: a number of requests per second (at least 0.01), or ``auto``. A float type
    to click, so a job file may give it as a number."""

    name = "rate"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, str) and value.strip().lower() == "auto":
            return "auto"
        number = super().convert(value, param, ctx)
        refuse_non_finite(self, number, param, ctx)
        if number < 0.01:
            self.fail(f"{value} is below 0.01 (or give 'auto')", param, ctx)
        return number


def _defaults_help(what: Callable[[ProviderEntry], object]) -> str:
    return ", ".join(f"{p.title} {what(p)}" for p in REGISTRY.values())


_Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]


def _credential_decorators() -> list[_Decorator]:
    return [
        click.option(
            option.flag,
            option.param,
            envvar=option.env,
            show_envvar=True,
            metavar=option.metavar,
            help=option.help
            + (
                " Given as an option it is visible to other users in the process list "
                "(ps); bulk warns."
                if option.secret
                else ""
            ),
        )
        for option in credential_options()
    ]


def _options(func: Callable[..., Any]) -> Callable[..., Any]:
    decorators: list[_Decorator] = [
        click.argument("input", type=click.Path(exists=True, dir_okay=False, path_type=Path)),
        click.option(
            "--provider",
            type=click.Choice(sorted(REGISTRY)),
            default=DEFAULT_PROVIDER,
            show_default=True,
            help="Which provider's API to call.",
        ),
        click.option(
            "--campaigns",
            type=click.Path(exists=True, dir_okay=False, path_type=Path),
            help="CSV of campaign_id[,alias] so the input may name campaigns by alias.",
        ),
        click.option(
            "--campaign",
            "campaign",
            metavar="ID",
            help="Apply this campaign (id or alias) to every row instead of the file's column.",
        ),
        click.option(
            "--accounts",
            type=click.Path(exists=True, dir_okay=False, path_type=Path),
            metavar="FILE",
            help="TOML file of accounts ([accounts.NAME] tables: provider, auth-id, "
            "auth-token-env or api-key-env naming the variable that holds the secret, "
            "optional base-url, rate, concurrency). All accounts run side by side, each with "
            "its own rate limit; the input's 'account' column says whose each row is.",
        ),
        click.option(
            "--account",
            "account_name",
            metavar="NAME",
            help="With --accounts: every row belongs to this account (instead of the "
            "input's 'account' column).",
        ),
        click.option(
            "--shard",
            metavar="K/N",
            help="With --accounts: run only the accounts a stable hash of their name puts in "
            "shard K of N (0-based), with its own journal and report: N machines (a "
            "Kubernetes Indexed Job) each run one shard; their reports together are the "
            "whole run's.",
        ),
        click.option(
            "--base-url",
            type=BaseUrlType(),
            metavar="URL",
            help="Provider API base URL (default: the provider's production URL). "
            "Plain http is refused except to loopback.",
        ),
        *_credential_decorators(),
        click.option(
            "--rate",
            type=_RateType(),
            metavar="REQ_PER_S|auto",
            help="Requests per second, evenly spaced from the first. A number keeps that rate; "
            "'auto' starts at the provider's rate below, rises while requests succeed and is "
            "cut on each 429 (never above --max-rate). Default: "
            + _defaults_help(
                lambda p: (
                    f"{p.default_rate:g}/s"
                    if p.default_rate_mode == "fixed"
                    else f"auto from {p.default_rate:g}/s"
                )
            )
            + ".",
        ),
        click.option(
            "--max-rate",
            type=FiniteFloatRange(min=0.01),
            default=100.0,
            show_default=True,
            metavar="REQ_PER_S",
            help="The highest rate --rate auto may reach.",
        ),
        click.option(
            "--concurrency",
            type=click.IntRange(1, 256),
            default=8,
            show_default=True,
            help="Requests in flight at once (the connection pool is a little larger).",
        ),
        click.option(
            "--batch-size",
            type=click.IntRange(1, 1000),
            metavar="B",
            help="Numbers per link request. "
            f"[default: {_defaults_help(lambda p: p.default_batch)}]",
        ),
        click.option(
            "--poll-interval",
            type=FiniteFloatRange(min=0.05),
            metavar="S",
            help="Seconds between a submission and its first status check; rounds back "
            "off up to 8x this while nothing settles. [default: 30; 1 with --sandbox]",
        ),
        click.option(
            "--settle-timeout",
            type=FiniteFloatRange(min=0.1),
            metavar="S",
            help="A number still unsettled this long after its request ends as 'unknown'. "
            "[default: 3600; 15 with --sandbox]",
        ),
        click.option(
            "--timeout",
            type=FiniteFloatRange(min=0.1),
            default=30.0,
            show_default=True,
            metavar="S",
            help="Seconds one HTTP request may take.",
        ),
        click.option(
            "--attempts",
            type=click.IntRange(1, 20),
            default=5,
            show_default=True,
            help="Tries per request for 5xx, timeouts, resets and unreadable bodies.",
        ),
        click.option(
            "--backoff-base",
            type=FiniteFloatRange(min=0.01),
            default=1.0,
            show_default=True,
            metavar="S",
            help="Longest first shared pause after a 429 without Retry-After (the first pause "
            "is one request interval at the current rate, at most this); it doubles with each "
            "429 that comes back right after a pause (jittered, capped at 30 s). A Retry-After "
            "is honoured exactly.",
        ),
        click.option(
            "--resend-delay",
            type=FiniteFloatRange(min=0.0),
            default=5.0,
            show_default=True,
            metavar="S",
            help="Wait this long after a change's answer was lost before reading the number "
            "to learn its fate (bulk never resends a change blind), and before resending a "
            "request that surely did not land.",
        ),
        click.option(
            "--report",
            type=click.Path(dir_okay=False, path_type=Path),
            metavar="PATH",
            help="Results report; .csv (default), .json or .parquet. "
            "[default: <input>.<command>.<provider>.report.csv beside the input]",
        ),
        click.option(
            "--failures",
            type=click.Path(dir_okay=False, path_type=Path),
            metavar="PATH",
            help="Rows that did not succeed, as input for the next run (.csv). "
            "[default: <input>.<command>.<provider>.failed.csv beside the input]",
        ),
        click.option(
            "--journal",
            type=click.Path(dir_okay=False, path_type=Path),
            metavar="PATH",
            help="SQLite journal; the same command with the same journal resumes. "
            "[default: <input>.<command>.<provider>.journal beside the input; "
            "<provider>-sandbox with --sandbox, accounts with --accounts]",
        ),
        max_input_option(),
        click.option(
            "--region",
            "regions",
            multiple=True,
            default=("US",),
            show_default=True,
            help="Allowed number region (repeatable).",
        ),
        click.option(
            "--number-type",
            type=click.Choice(["either", "fixed_line", "mobile"]),
            default="either",
            show_default=True,
            help="Which US number types to accept.",
        ),
        click.option(
            "--callback-url",
            metavar="URL",
            help="Status callback URL sent with each link request, to providers that take one.",
        ),
        click.option(
            "--dry-run",
            is_flag=True,
            help="Validate and plan (reads the provider's current state), send nothing "
            "that changes anything.",
        ),
        click.option(
            "--sandbox",
            is_flag=True,
            help="Run against an in-process provider sandbox on loopback: no credentials. Its "
            "state is kept beside the journal (its name, ending .sandbox-state.json instead "
            "of .journal), so the same command resumes an interrupted run; a new journal "
            "starts it afresh.",
        ),
        click.option("--yes", "-y", is_flag=True, help="Do not ask before sending."),
        click.option(
            "--verbose",
            "-v",
            is_flag=True,
            help="Log every HTTP try to stderr: method, path, status, milliseconds "
            "(never headers or bodies, so never a credential).",
        ),
        click.option(
            "--send-until",
            metavar="WHEN",
            help="Send no new change after WHEN: ISO 8601 with offset "
            "(2025-07-01T06:00:00+02:00), HH:MM local (the next such time) or a duration "
            "from the start (90s, 45m, 2h). Rows not sent by then end 'deferred' (exit 3); "
            "the same command again continues them.",
        ),
        click.option(
            "--summary-json",
            type=click.Path(dir_okay=False, path_type=Path),
            metavar="PATH",
            help="Write a JSON summary of the run here at the end (also when interrupted).",
        ),
        click.option(
            "--quiet",
            "-q",
            is_flag=True,
            help="No progress output (a bar on a terminal, otherwise a line every 30 s).",
        ),
        click.option(
            "--progress-interval",
            type=FiniteFloatRange(min=0.01),
            default=PROGRESS_INTERVAL,
            hidden=True,
            help="Seconds between plain progress lines when stderr is not a terminal.",
        ),
    ]
    for decorator in reversed(decorators):
        func = decorator(func)
    return func


def _spec(command: str, input: Path, **kw: Any) -> JobSpec:
    chosen = entry(kw["provider"])
    given = {o.param: kw.pop(o.param, None) for o in credential_options()}
    by_field = {o.field: given[o.param] for o in chosen.options}
    for name in ("yes", "quiet", "verbose", "progress_interval"):
        kw.pop(name, None)
    kw["regions"] = tuple(kw["regions"])
    when = kw.pop("send_until", None)
    kw["send_until"] = None if when is None else parse_send_until(when)
    return JobSpec(
        command=command,  # type: ignore[arg-type]
        input=input,
        account=by_field.get("account"),
        token=by_field.get("token"),
        **kw,
    )


class _Progress:
    """A bar on a terminal; otherwise (cron mail, journald) plain lines: one when something
    changed (rows settled, a read), at most every ``interval`` seconds, and at least every
    ``heartbeat`` seconds. ``clock`` (monotonic seconds) times them: a test passes its own."""

    def __init__(
        self,
        err: Console,
        spec: JobSpec,
        *,
        quiet: bool,
        interval: float,
        heartbeat: float = PROGRESS_HEARTBEAT,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._err = err
        self._plain = not quiet and not err.is_terminal
        self._interval = interval
        self._heartbeat = max(heartbeat, interval)
        self._clock = clock
        self._last = clock()
        #: what the last line said: rows settled, and the last read
        self._said: tuple[int, float | None] | None = None
        via = spec.provider if spec.accounts is None else f"the accounts of {spec.accounts.name}"
        self._label = f"{spec.command} via {via}"
        self.bar = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=err,
            disable=quiet or self._plain,
            transient=False,
        )
        self._task = self.bar.add_task(self._label, total=None)

    def on_progress(self, done: int, total: int) -> None:
        self.bar.update(self._task, completed=done, total=total)

    def on_snapshot(self, snapshot: Snapshot) -> None:
        now = self._clock()
        if not self._plain or now - self._last < self._interval:
            return
        settled = snapshot.settled()
        done = sum(settled.values())
        last_read, next_read = snapshot.reads_of()
        if (done, last_read) == self._said and now - self._last < self._heartbeat:
            return  # nothing new to say yet
        self._last = now
        self._said = (done, last_read)
        outcomes = ", ".join(f"{o} {n}" for o, n in sorted(settled.items())) or "none yet"
        elapsed = max(time.monotonic() - snapshot.started, 1e-9)
        stats = snapshot.stats
        self._err.print(
            f"bulk {self._label}: {done}/{snapshot.total} rows settled ({outcomes}), "
            f"{snapshot.total - done} pending; last read {_clock_time(last_read)}, "
            f"next {_clock_time(next_read)}; {stats.total} requests, "
            f"{stats.total / elapsed:.1f} req/s, {elapsed:.0f} s elapsed",
            highlight=False,
            soft_wrap=True,
        )


def _clock_time(stamp: float | None) -> str:
    """A read's time for a progress line: local ``HH:MM:SS``, or ``-`` when there is none."""
    return "-" if stamp is None else time.strftime("%H:%M:%S", time.localtime(stamp))


class _Stdout(Console):
    """stdout, whose reader may go away (``bulk ... | head -1``): the rest of the summary is
    dropped, and the run's exit code stands (rich's own handling exits 1, "some row failed")."""

    def on_broken_pipe(self) -> None:
        self.quiet = True
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no EPIPE at exit


def _run(
    spec: JobSpec,
    *,
    yes: bool,
    quiet: bool,
    interval: float = PROGRESS_INTERVAL,
    hooks: dict[str, Any] | None = None,
) -> None:
    err = Console(stderr=True)
    out = _Stdout()
    stamina.instrumentation.set_on_retry_hooks([])  # bulk counts retries itself; no log spam
    progress = _Progress(err, spec, quiet=quiet, interval=interval)
    ask = not (yes or spec.dry_run or spec.sandbox) and sys.stdin.isatty()

    def on_plan(plan: Plan) -> bool:
        if plan.resumed:
            err.print(inline(plan.resumed), highlight=False, soft_wrap=not err.is_terminal)
        err.print(plan_text(spec, plan), highlight=False, soft_wrap=not err.is_terminal)
        if ask and not click.confirm("Send these requests?", default=False, err=True):
            return False
        progress.bar.start()  # the bar runs from the first request sent to the last row settled
        return True

    # schedulers stop jobs with SIGTERM: wind down exactly as on Ctrl-C. A process started
    # in the background by a non-interactive shell inherits SIGINT ignored, and asyncio then
    # installs no Ctrl-C handler; give it the default for the start of the run, so asyncio
    # installs its handler (which SIGTERM calls), and _call puts the ignored SIGINT back.
    # asyncio installs its Ctrl-C handler only over the default one: a run before this one in
    # this process left its own in place
    if signal.getsignal(signal.SIGINT) is _terminate_as_interrupt:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    _stopping.clear()
    keep_sigint_ignored = signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    if keep_sigint_ignored:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _terminate_as_interrupt)
    # the terminal closed (SIGHUP) stops the run as SIGTERM does, with its report; under
    # nohup (SIGHUP inherited ignored) the run goes on
    if signal.getsignal(signal.SIGHUP) is not signal.SIG_IGN:
        signal.signal(signal.SIGHUP, _terminate_as_interrupt)
    started = time.time()
    try:
        try:
            result = anyio.run(
                _call, spec, progress, on_plan, keep_sigint_ignored, hooks, backend="asyncio"
            )
        finally:
            progress.bar.stop()
    except KeyboardInterrupt:
        if not _stopping:  # stopped before the run began: later signals wait for this too
            _stopping.append(signal.SIGINT)
            for each in (signal.SIGINT, signal.SIGTERM):
                signal.signal(each, _terminate_as_interrupt)
        err.print(
            f"[yellow]Interrupted.[/] {inline(_after_interrupt(spec, started))}", soft_wrap=True
        )
        # The journal is closed and the report written. A confirmation prompt interrupted
        # mid-question leaves its thread blocked on stdin, which a normal exit would wait for.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(EXIT_INTERRUPTED)
    except BulkError as exc:
        if isinstance(exc, AccountsStopped) and isinstance(exc.result, JobResult):
            summary(out, spec, exc.result)  # the other accounts ran to the end
        err.print(f"[red]bulk: {inline(exc)}[/]", highlight=False, soft_wrap=True)
        sys.exit(exc.exit_code)
    summary(out, spec, result)
    sys.exit(result.exit_code)


def _after_interrupt(spec: JobSpec, started: float) -> str:
    """What an interrupted run leaves: a journal to resume (when one exists), and the report
    it wrote (only when this run wrote it: an older one at that path is not its report)."""
    report, _, journal = default_paths(spec)
    if spec.dry_run or spec.command == "status" or not journal.exists():
        return "Nothing was sent."  # stopped before its journal existed: nothing to resume
    text = f"The journal {journal} is consistent; run the same command again to resume."
    try:
        written = report.stat().st_mtime >= started - 1.0  # mtime granularity
    except OSError:
        written = False
    return f"{text} Report so far: {report}" if written else text


def _warn_secret_options() -> None:
    """One line on stderr per secret given on the command line (never its value): ``ps``
    shows every process's arguments to every user on the machine."""
    ctx = click.get_current_context()
    for option in credential_options():
        source = ctx.get_parameter_source(option.param)
        if option.secret and source is click.core.ParameterSource.COMMANDLINE:
            click.echo(
                f"bulk: warning: {option.flag} on the command line is visible to other users "
                f"in the process list (ps); set {option.env} in the environment instead",
                err=True,
            )


def _logging(verbose: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(message)s"))
    logger = logging.getLogger("bulk")
    logger.handlers[:] = [handler]
    logger.setLevel(logging.INFO if verbose else logging.WARNING)
    logger.propagate = False


#: the Ctrl-C handler asyncio installed for the running job; SIGTERM calls it
_interrupt: list[Callable[[int, FrameType | None], Any]] = []
#: set by the first SIGINT/SIGTERM/SIGHUP: the run is winding down
_stopping: list[int] = []


def _terminate_as_interrupt(signum: int, frame: FrameType | None) -> None:
    """SIGTERM: what Ctrl-C does (asyncio cancels the run, which writes its report), whatever
    SIGINT's disposition; before the run has started, a plain KeyboardInterrupt.

    Only the first signal does it. asyncio's own handler raises ``KeyboardInterrupt`` on a
    second one wherever the run is (writing its report, its summary): the run would end
    without them. A second SIGTERM is common: ``timeout`` sends one to the command and one to
    its process group, and people press Ctrl-C twice. Later signals are said on stderr and
    change nothing; ``kill -9`` still ends a run at once (its journal stays consistent)."""
    if _stopping:
        if len(_stopping) == 1:
            os.write(2, b"bulk: stopping already (writing the report); kill -9 ends it now\n")
        _stopping.append(signum)
        return
    _stopping.append(signum)
    handler = _interrupt[-1] if _interrupt else signal.default_int_handler
    handler(signal.SIGINT, frame)


async def _call(
    spec: JobSpec,
    progress: _Progress,
    on_plan: Callable[[Plan], bool],
    keep_sigint_ignored: bool = False,
    hooks: dict[str, Any] | None = None,
) -> JobResult:
    handler = signal.getsignal(signal.SIGINT)
    if callable(handler):
        _interrupt.append(handler)
    if keep_sigint_ignored:  # as inherited: Ctrl-C sent to the process group stays ignored
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    else:  # Ctrl-C through the same door as SIGTERM: only the first one stops the run
        signal.signal(signal.SIGINT, _terminate_as_interrupt)
    try:
        return await run_job(
            spec,
            on_progress=progress.on_progress,
            on_plan=on_plan,
            on_snapshot=progress.on_snapshot,
            **(hooks or {}),
        )
    finally:
        if callable(handler):
            _interrupt.remove(handler)


def _launch(name: str, input: Path, kw: dict[str, Any]) -> None:
    yes, quiet, interval = kw["yes"], kw["quiet"], kw["progress_interval"]
    plan_out = kw.pop("plan_out", None)
    _logging(kw["verbose"])
    _warn_secret_options()
    try:
        check_given(name, kw)
        spec = _spec(name, input, **kw)
        hooks = plan_out_hooks(spec, plan_out)  # --plan-out: a dry run that writes its plan
    except BulkError as exc:
        click.echo(f"bulk: {exc}", err=True)  # one line, never wrapped
        sys.exit(exc.exit_code)
    _run(spec, yes=yes, quiet=quiet, interval=interval, hooks=hooks)


def _command(name: str, doc: str) -> click.Command:
    def callback(input: Path, **kw: Any) -> None:
        _launch(name, input, kw)

    callback.__doc__ = doc + _COMMON_HELP
    command = _options(callback)
    if name != "status":
        command = plan_out_option()(command)
    return click.command(name)(command)


link = _command(
    "link",
    """Link every row's number to its campaign.

\b
Examples:
  bulk link samples/onboarding.csv --campaigns samples/campaigns.csv --sandbox
  bulk link numbers.csv --campaign CUOGHIN --dry-run
  {env} bulk link numbers.csv --campaigns campaigns.csv

Numbers already linked are reported 'already' with no request. Links go out in batches per
campaign; a batch refused for one number is resent without it.
""".replace("{env}", _env_example()),
)

unlink = _command(
    "unlink",
    """Unlink every row's number from its campaign.

\b
Examples:
  bulk unlink samples/cleanup.csv --campaigns samples/campaigns.csv --sandbox
  bulk unlink old.csv --campaign CMIGOLD --yes
""",
)


def _move_command() -> click.Command:
    def callback(input: Path, **kw: Any) -> None:
        source, target = kw.pop("source"), kw.pop("target")
        if target:
            kw["campaign"] = target
        kw["from_campaign"] = source
        _launch("move", input, kw)

    callback.__doc__ = (
        """Move every row's number from one campaign to another.

\b
Examples:
  bulk move samples/migration.csv --campaigns samples/campaigns.csv --sandbox
  bulk move numbers.csv --from CMIGOLD --to CRIGC80

Where the provider has no one-request move, a move unlinks from the old campaign, waits until
that settles, then links to the new one: a number is never linked to two campaigns. Where
attaching a new campaign replaces the old one, a move is that one request.
"""
        + _COMMON_HELP
    )
    command = plan_out_option()(_options(callback))
    command = click.option(
        "--to", "target", metavar="ID", help="Destination campaign (id or alias)."
    )(command)
    command = click.option(
        "--from", "source", metavar="ID", help="Campaign the numbers leave (id or alias)."
    )(command)
    return click.command("move")(command)


status = _command(
    "status",
    """Read-only: report each row's current link status in its campaign.

\b
Examples:
  bulk status samples/onboarding.csv --campaigns samples/campaigns.csv --sandbox
  bulk status numbers.csv --campaign CUOGHIN --report status.json
""",
)

apply = _command(
    "apply",
    """Run each row's own action column (link, unlink or move; default link).

\b
Example:
  bulk apply changes.csv --campaigns campaigns.csv --dry-run
""",
)

#: the commands that run a pipeline over an input (``bulk run`` runs them from job files)
_PIPELINE = [link, unlink, _move_command(), status, apply]


COMMANDS = _PIPELINE
