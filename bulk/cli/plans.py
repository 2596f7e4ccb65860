"""``bulk execute PLAN``: send exactly what a reviewed plan (``--plan-out``) says."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from bulk import _defaults
from bulk._errors import BulkError
from bulk.cli._options import FiniteFloatRange
from bulk.cli._run_options import COMMON_HELP, RateType, credential_decorators, options
from bulk.cli.run import _launch, _logging, _run, _warn_secret_options
from bulk.plans._cli import plan_out_option
from bulk.plans._execute import Settings, parse_age, prepare
from bulk.providers import credential_options

_TUNING = (
    "rate",
    "max_rate",
    "concurrency",
    "poll_interval",
    "settle_timeout",
    "timeout",
    "attempts",
    "backoff_base",
    "resend_delay",
)


def _execute(plan: Path, **kw: Any) -> None:
    yes, quiet = kw.pop("yes"), kw.pop("quiet")
    _logging(kw.pop("verbose"))
    _warn_secret_options()
    given = {o.param: kw.pop(o.param, None) for o in credential_options()}
    try:
        settings = Settings(
            journal=kw["journal"],
            report=kw["report"],
            failures=kw["failures"],
            summary_json=kw["summary_json"],
            base_url=kw["base_url"],
            sandbox=kw["sandbox"],
            accounts=kw["accounts"],
            skip_drifted=kw["skip_drifted"],
            max_plan_age=parse_age(kw["max_plan_age"]),
            tuning={k: kw[k] for k in _TUNING if kw[k] is not None},
            credentials=given,  # the plan says whose provider's they are
        )
        spec, review = prepare(plan, settings)
    except BulkError as exc:
        click.echo(f"bulk: {exc}", err=True)  # one line, never wrapped
        sys.exit(exc.exit_code)
    _run(spec, yes=yes, quiet=quiet, hooks=review.hooks())


_DOC = """Send exactly the requests of a reviewed plan (written by --plan-out).

\b
Examples:
  bulk link numbers.csv --campaigns campaigns.csv --plan-out change.json
  (attach change.md to the change ticket; once approved:)
  bulk execute change.json

Before anything is sent, the plan is refused (exit 2, one line, nothing sent) when it was
edited (its digest no longer matches), is of an unknown format version, is older than
--max-plan-age, or names another provider, account or base URL than the run's. Then the
provider's state is read as any run reads it, and each row compared with what the plan
observed: any difference is drift: exit 2, nothing sent, and PLAN.drift.csv beside the plan
(line, number, what the plan saw, what is there now). With --skip-drifted the drifted rows end
'drifted' (exit 1) and the others are sent. A plan is executed once: its journal (named after
the plan) remembers it, and executing it again resumes that journal, sending nothing twice.
"""


def _decorators() -> list[Any]:
    path = click.Path(dir_okay=False, path_type=Path)
    return [
        click.argument("plan", type=click.Path(exists=True, dir_okay=False, path_type=Path)),
        click.option("--journal", type=path, metavar="PATH",
                     help="SQLite journal. "
                     "[default: <plan>.<digest>.<command>.<provider>.journal]"),
        click.option("--report", type=path, metavar="PATH",
                     help="Results report. "
                     "[default: <plan file name>.<command>.<provider>.report.csv, beside it]"),
        click.option("--failures", type=path, metavar="PATH",
                     help="Rows that did not succeed. "
                     "[default: <plan file name>.<command>.<provider>.failed.csv]"),
        click.option("--summary-json", type=path, metavar="PATH",
                     help="Write a JSON summary of the run here at the end."),
        click.option("--base-url", metavar="URL",
                     help="The provider's base URL; must be the plan's (its default)."),
        click.option("--sandbox", is_flag=True,
                     help="Execute a plan made with --sandbox against the in-process sandbox."),
        click.option("--accounts", type=click.Path(exists=True, dir_okay=False, path_type=Path),
                     metavar="FILE",
                     help="The accounts file of a plan made with --accounts (default: the "
                     "plan's); every account must be reached as the plan's was."),
        click.option("--skip-drifted", is_flag=True,
                     help="Rows that drifted end 'drifted' (exit 1); send the others."),
        click.option("--max-plan-age", default="24h", show_default=True, metavar="AGE",
                     help="Refuse a plan older than this (90m, 24h, 2d)."),
        *credential_decorators(),
        click.option("--rate", type=RateType(), metavar="REQ_PER_S|auto",
                     help="Requests per second (as for link)."),
        click.option("--max-rate", type=FiniteFloatRange(min=0.01), metavar="REQ_PER_S",
                     help="The highest rate --rate auto may reach."),
        click.option("--concurrency", type=click.IntRange(1, 256), metavar="N",
                     help="Requests in flight at once. [default: 8]"),
        click.option("--poll-interval", type=FiniteFloatRange(min=0.05), metavar="S",
                     help="Seconds between a submission and its first status check."),
        click.option("--settle-timeout", type=FiniteFloatRange(min=0.1), metavar="S",
                     help="A number unsettled this long after its request ends 'unknown'."),
        click.option("--timeout", type=FiniteFloatRange(min=0.1), metavar="S",
                     help="Seconds one HTTP request may take. [default: 30]"),
        click.option("--attempts", type=click.IntRange(1, 20),
                     help="Tries per request for 5xx, timeouts, resets. [default: 5]"),
        click.option("--backoff-base", type=FiniteFloatRange(min=0.01), metavar="S",
                     help="Longest first shared pause after a 429. [default: 1]"),
        click.option("--resend-delay", type=FiniteFloatRange(min=0.0), metavar="S",
                     help="Wait before reading a number whose change's answer was lost."),
        click.option("--yes", "-y", is_flag=True, help="Do not ask before sending."),
        click.option("--quiet", "-q", is_flag=True, help="No progress output."),
        click.option("--verbose", "-v", is_flag=True, help="Log every HTTP try to stderr."),
    ]


def _command() -> click.Command:
    def callback(plan: Path, **kw: Any) -> None:
        _execute(plan, **kw)

    callback.__doc__ = _DOC + COMMON_HELP
    command: Any = callback
    for decorator in reversed(_decorators()):
        command = decorator(command)
    return click.command("execute")(command)


execute = _command()

_SYNC_DOC = """Make every campaign the input names hold the numbers it lists for it.

\b
Examples:
  bulk sync marketing.csv --campaigns campaigns.csv --dry-run
  bulk sync marketing.csv --campaigns campaigns.csv --prune --plan-out sync.json

The input (number, campaign_id; aliases through --campaigns, accounts through --accounts) is
the desired membership: a number missing from its campaign is linked; one in another campaign
the input names is moved (on Plivo an unlink, then a link; on AgentMessage one attach); one
already there is 'already'. A number in a campaign the input does not name is not taken out
of it: its row fails, saying where it is. With --prune, every number a named campaign holds
and the input does not list is unlinked (report rows after the input's, with an empty line);
more than --max-unlink of them stops the run before anything is sent. Re-feed a sync's
failures file to 'bulk apply' (it carries each row's action).
"""


def _sync_command() -> click.Command:
    def callback(input: Path, **kw: Any) -> None:
        _launch("sync", input, kw)

    callback.__doc__ = _SYNC_DOC + COMMON_HELP
    command = plan_out_option()(options(callback))
    command = click.option(
        "--max-unlink",
        type=click.IntRange(0),
        default=_defaults.MAX_UNLINK,
        show_default=True,
        metavar="N",
        help="With --prune: stop (exit 2, nothing sent) when more than N numbers would be "
        "unlinked, naming how many in which campaigns.",
    )(command)
    command = click.option(
        "--prune",
        is_flag=True,
        help="Also unlink the numbers the named campaigns hold that the input does not list.",
    )(command)
    return click.command("sync")(command)


sync = _sync_command()
COMMANDS = [execute, sync]
