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

from bulk._errors import AccountsStopped, BulkError
from bulk._job import EXIT_INTERRUPTED, JobResult, JobSpec, default_paths, run_job
from bulk._window import parse_send_until
from bulk.cli._given import check_given
from bulk.cli._progress import PROGRESS_INTERVAL, ProgressOutput
from bulk.cli._run_options import COMMON_HELP, env_example, options
from bulk.cli._shown import inline
from bulk.cli._summary import plan_text, summary
from bulk.engine import Plan
from bulk.plans._cli import plan_out_hooks, plan_out_option
from bulk.providers import (
    credential_options,
    entry,
)


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
    progress = ProgressOutput(err, spec, quiet=quiet, interval=interval)
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
    progress: ProgressOutput,
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

    callback.__doc__ = doc + COMMON_HELP
    command = options(callback)
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
""".replace("{env}", env_example()),
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
        + COMMON_HELP
    )
    command = plan_out_option()(options(callback))
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
