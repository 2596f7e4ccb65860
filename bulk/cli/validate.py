"""``bulk validate``: check a numbers file offline and write a per-row report."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click
import polars as pl
from rich.console import Console
from rich.table import Table

from bulk import _names, _report
from bulk._accounts import accounts_for
from bulk._errors import BulkError
from bulk._suggest import refuse_campaign_file
from bulk.cli._options import max_input_option
from bulk.cli._shown import cell, visible
from bulk.inputs import (
    ACTIONS,
    NUMBER_TYPES,
    REASONS,
    Loaded,
    Summary,
    load_rows,
    render_summary,
)

REPORT_FORMATS = (".csv", ".json", *_report.LINE_FORMATS, ".parquet")
_EXAMPLES_SHOWN = 10


def default_report_path(input_path: Path) -> Path:
    """``numbers.csv`` -> ``numbers.csv.validate.report.csv`` beside it (the scheme of every
    default output: :mod:`bulk._names`)."""
    return _names.named(_names.run_stem(input_path, "validate"), "report.csv")


def _print_summary(console: Console, loaded: Loaded, summary: Summary) -> None:
    if not console.is_terminal:
        console.print(
            "\n".join(visible(line) for line in render_summary(summary).split("\n")),
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
        _print_examples(console, loaded, plain=True)
        return
    console.print(
        f"[bold]{summary.rows}[/] rows: [green]{summary.valid} valid[/], "
        f"[red]{summary.rejected_total} rejected[/]"
    )
    if summary.rejected:
        table = Table(title="Rejected", title_justify="left")
        table.add_column("reason", style="red")
        table.add_column("rows", justify="right")
        table.add_column("meaning")
        for code, count in summary.rejected.items():
            table.add_row(code, str(count), REASONS.get(code, ""))
        console.print(table)
    if summary.campaigns:
        table = Table(title="Campaigns (valid rows)", title_justify="left")
        table.add_column("campaign")
        table.add_column("alias")
        table.add_column("rows", justify="right")
        for campaign, count in summary.campaigns.items():
            table.add_row(cell(campaign), cell(summary.aliases.get(campaign, "")), str(count))
        console.print(table)
    if summary.planned:
        planned = ", ".join(f"{count} {action}" for action, count in summary.planned.items())
        console.print(f"A run would plan: [bold]{planned}[/]")
    elif summary.rows:
        console.print("A run would plan nothing: no valid rows.")
    _print_examples(console, loaded, plain=False)


def _print_examples(console: Console, loaded: Loaded, *, plain: bool) -> None:
    rejected = (
        loaded.frame.filter(pl.col("reason").is_not_null())
        .select("line", "number", "reason", "detail")
        .head(_EXAMPLES_SHOWN)
    )
    if rejected.height == 0:
        return
    if plain:
        console.print(f"First rejected rows (all {len(loaded.frame)} rows are in the report):")
        for line, number, reason, detail in rejected.iter_rows():
            console.print(
                f"  line {line}: {visible(repr(number))} {reason}: {visible(detail or '')}",
                markup=False,
                highlight=False,
                soft_wrap=True,
            )
        return
    table = Table(title="First rejected rows", title_justify="left")
    table.add_column("line", justify="right")
    table.add_column("number")
    table.add_column("reason", style="red")
    table.add_column("detail")
    for line, number, reason, detail in rejected.iter_rows():
        table.add_row(str(line), cell(number), cell(reason), cell(detail or ""))
    console.print(table)


@click.command(
    "validate",
    epilog="""\b
Examples:
  bulk validate samples/onboarding.csv --campaigns samples/campaigns.csv
  bulk validate numbers.csv --campaign CUOGHIN --action link --report checked.parquet
  bulk validate moves.csv --campaigns campaigns.csv --action move
  bulk validate numbers.csv --campaign marketing --campaigns campaigns.csv --region US --region CA
  bulk validate numbers.csv --accounts accounts.toml --campaigns campaigns.csv

\b
Exit status: 0 every row is valid, 1 some rows are rejected (see the report),
2 the file cannot be used (the message names the line or column).""",
)
@click.argument("input_path", metavar="INPUT", type=click.Path(path_type=Path))
@click.option(
    "--campaigns",
    "campaigns_path",
    type=click.Path(path_type=Path),
    help="CSV of campaign_id[,alias]: lets INPUT name campaigns by alias, and rejects "
    "campaigns that are not in it (unknown_campaign).",
)
@click.option(
    "--report",
    "report_path",
    type=click.Path(path_type=Path),
    help="Where to write one row per input row with line, the original columns, e164, "
    "campaign_id, action, from_campaign, reason and detail. Format by extension: .csv "
    "(default), .json, .jsonl or .ndjson (JSON lines), .parquet. "
    "Default: <INPUT>.validate.report.csv beside INPUT.",
)
@click.option("--no-report", is_flag=True, help="Only print the summary.")
@click.option(
    "--campaign",
    "--to",
    "campaign",
    metavar="ID",
    help="Apply this campaign (id or alias) to every row, overriding the file's column.",
)
@click.option(
    "--action",
    type=click.Choice(ACTIONS),
    help="The command you will run: rows whose action column says otherwise are rejected "
    "(action_mismatch). Default: each row's action column, else link.",
)
@click.option(
    "--from",
    "from_campaign",
    metavar="ID",
    help="For moves: the campaign (id or alias) the numbers leave, overriding from_campaign.",
)
@click.option(
    "--region",
    "regions",
    multiple=True,
    default=("US",),
    show_default=True,
    metavar="CC",
    help="Allowed region (ISO code); repeat for several. Others are rejected as not_us.",
)
@click.option(
    "--number-type",
    type=click.Choice(NUMBER_TYPES),
    default="either",
    show_default=True,
    help="fixed_line or mobile restricts the type; most US numbers are "
    "FIXED_LINE_OR_MOBILE for phonenumbers and pass either way.",
)
@click.option(
    "--accounts",
    "accounts_path",
    type=click.Path(path_type=Path),
    metavar="FILE",
    help="The accounts file a run will use: checks it (keys, no secrets in it), each row's "
    "account (missing_account, unknown_account) and campaigns per account; warns about "
    "accounts whose secret's variable is not set here.",
)
@click.option(
    "--account",
    "account_name",
    metavar="NAME",
    help="With --accounts: every row belongs to this account.",
)
@max_input_option()
def validate(
    input_path: Path,
    campaigns_path: Path | None,
    report_path: Path | None,
    no_report: bool,
    campaign: str | None,
    action: str | None,
    from_campaign: str | None,
    regions: tuple[str, ...],
    number_type: str,
    max_input_bytes: int,
    accounts_path: Path | None,
    account_name: str | None,
) -> None:
    """Check INPUT offline (no network) and report every row.

    Reads the CSV (UTF-8, UTF-16 with a BOM, or Windows-1252; comma, semicolon or tab), finds
    the number column (number, phone, phone number, tn, did, msisdn, e164), normalises each
    number to E.164, and checks it is a valid US 10DLC-capable number; then checks each row's
    campaign and action, and finds duplicates and conflicts across rows. Prints a summary and
    writes a report with one row per input row.
    """
    report = None if no_report else (report_path or default_report_path(input_path))
    try:
        if report is not None:
            if report.suffix.lower() not in REPORT_FORMATS:
                raise click.UsageError(
                    f"--report must end with one of {', '.join(REPORT_FORMATS)}: {report}"
                )
            _refuse_overwrite(
                report, INPUT=input_path, campaigns=campaigns_path, accounts=accounts_path
            )
        refuse_campaign_file(campaign, "--campaign", "--campaigns")
        refuse_campaign_file(from_campaign, "--from", "--campaigns")
        accounts = _accounts(accounts_path, account_name)
        loaded = load_rows(
            input_path,
            campaigns_path=campaigns_path,
            default_campaign=campaign,
            default_action=action,
            default_from_campaign=from_campaign,
            regions=regions,
            number_type=number_type,
            max_input_bytes=max_input_bytes,
            accounts=accounts,
            default_account=account_name,
        )
        summary = loaded.summary()
        _print_summary(Console(highlight=False), loaded, summary)
        if report is not None:
            _report.write(loaded.report_frame(), report, bom=True)  # BOM: Excel reads UTF-8
            click.echo(f"Report: {report}")
    except click.UsageError:
        raise
    except (BulkError, ValueError) as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except OSError as exc:
        click.echo(f"error: cannot write {report}: {exc.strerror or exc}", err=True)
        sys.exit(2)
    except Exception as exc:  # never a traceback for the user
        click.echo(f"error: unexpected {type(exc).__name__}: {exc}", err=True)
        sys.exit(2)
    sys.exit(0 if summary.rejected_total == 0 else 1)


def _refuse_overwrite(report: Path, **reads: Path | None) -> None:
    """A usage error when the report would be written over a file validate reads (also
    through a symlink or a hard link)."""
    for name, path in reads.items():
        if path is None:
            continue
        same = report.resolve() == path.resolve() or (
            report.exists() and path.exists() and report.samefile(path)
        )
        if same:
            what = name if name == "INPUT" else f"--{name}"
            raise click.UsageError(f"--report would overwrite {what} {path}; choose another path")


def _accounts(path: Path | None, account_name: str | None) -> list[str] | None:
    """The accounts file's names (checked as a run checks it); a warning per account whose
    secret's variable is unset here (validate is offline: the run would stop on it)."""
    accounts = accounts_for(path, account_name)
    if accounts is None:
        return None
    for account in accounts.values():
        if not os.environ.get(account.secret_env):
            click.echo(
                f"warning: account {account.name!r}: {account.secret_env} is not set here "
                "(a run would stop before sending anything)",
                err=True,
            )
    return list(accounts)


COMMANDS = [validate]
