"""The options of ``bulk link|unlink|move|status|apply`` (and ``bulk execute``'s tuning):
their click declarations, defaults (from :mod:`bulk._defaults` and each provider's entry)
and help text."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from bulk import _defaults
from bulk.cli._options import (
    BaseUrlType,
    FiniteFloatRange,
    max_input_option,
    refuse_non_finite,
)
from bulk.cli._progress import PROGRESS_INTERVAL
from bulk.providers import (
    DEFAULT_PROVIDER,
    REGISTRY,
    ProviderEntry,
    credential_options,
    entry,
)


def _credentials_help() -> str:
    lines = [
        f"  {p.title:<13} {', '.join(o.env for o in p.options)}"
        for p in REGISTRY.values()
        if p.options
    ]
    return "\n".join(lines)


def env_example() -> str:
    return " ".join(f"{o.env}=..." for o in entry(DEFAULT_PROVIDER).options)


COMMON_HELP = f"""
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


class RateType(click.types.FloatParamType):
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


def credential_decorators() -> list[_Decorator]:
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


def options(func: Callable[..., Any]) -> Callable[..., Any]:
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
        *credential_decorators(),
        click.option(
            "--rate",
            type=RateType(),
            metavar="REQ_PER_S|auto",
            help="Requests per second, evenly spaced from the first. A number keeps that rate; "
            "'auto' starts at the provider's rate below, rises while requests succeed and is "
            "cut on each 429 (never above --max-rate). Default: "
            + ", ".join(
                _defaults.rate_help(p.title, p.default_rate, p.default_rate_mode)
                for p in REGISTRY.values()
            )
            + ".",
        ),
        click.option(
            "--max-rate",
            type=FiniteFloatRange(min=0.01),
            default=_defaults.MAX_RATE,
            show_default=True,
            metavar="REQ_PER_S",
            help="The highest rate --rate auto may reach.",
        ),
        click.option(
            "--concurrency",
            type=click.IntRange(1, 256),
            default=_defaults.CONCURRENCY,
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
            f"off up to {_defaults.POLL_BACKOFF}x this while nothing settles. "
            + _defaults.timing_help("poll_interval"),
        ),
        click.option(
            "--settle-timeout",
            type=FiniteFloatRange(min=0.1),
            metavar="S",
            help="A number still unsettled this long after its request ends as 'unknown'. "
            + _defaults.timing_help("settle_timeout"),
        ),
        click.option(
            "--timeout",
            type=FiniteFloatRange(min=0.1),
            default=_defaults.TIMEOUT,
            show_default=True,
            metavar="S",
            help="Seconds one HTTP request may take.",
        ),
        click.option(
            "--attempts",
            type=click.IntRange(1, 20),
            default=_defaults.ATTEMPTS,
            show_default=True,
            help="Tries per request for 5xx, timeouts, resets and unreadable bodies. A change "
            "(link, unlink) whose answer was lost is never resent blind: its number is read "
            f"after --resend-delay and the change sent again at most {_defaults.RESEND_ROUNDS} "
            "times, then the row ends unknown.",
        ),
        click.option(
            "--backoff-base",
            type=FiniteFloatRange(min=0.01),
            default=_defaults.BACKOFF_BASE,
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
            default=_defaults.RESEND_DELAY,
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
            default=_defaults.REGIONS,
            show_default=True,
            help="Allowed number region (repeatable).",
        ),
        click.option(
            "--number-type",
            type=click.Choice(["either", "fixed_line", "mobile"]),
            default=_defaults.NUMBER_TYPE,
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
            help="Log every HTTP try to stderr: method, path, status, what bulk made of the "
            "answer (ok, transient, throttled, ...), milliseconds (never headers or bodies, so "
            "never a credential).",
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


__all__ = ["COMMON_HELP", "RateType", "credential_decorators", "env_example", "options"]
