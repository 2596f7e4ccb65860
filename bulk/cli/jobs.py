"""``bulk run``: the job a TOML file describes, through the command it names."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from bulk._errors import BulkError
from bulk.cli import run as pipeline
from bulk.cli._jobfile import job_arguments
from bulk.cli.plans import sync


@click.command(
    "run",
    context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False},
)
@click.argument("job", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("overrides", nargs=-1, type=click.UNPROCESSED)
def run(job: Path, overrides: tuple[str, ...]) -> None:
    """Run the job a TOML job file describes; options after the file override it.

    \b
    Examples:
      bulk run samples/migration.toml
      bulk run samples/migration.toml --dry-run
      bulk run /etc/bulk/migration.toml --send-until 06:00

    \b
    A job file (keys are the long options without '--', plus command and input):
      command = "move"                  # link, unlink, move, status, apply or sync
      input = "migration.csv"           # relative paths: from the job file's folder
      campaigns = "campaigns.csv"
      journal = "/var/lib/bulk/migration.journal"
      send-until = "06:00"
      summary-json = "/var/lib/bulk/migration.summary.json"

    Credentials come from the environment only: a token, key or other credential in the file
    is refused, as are unknown keys and wrong types (exit 2, naming the key). 'bulk run'
    never prompts (it implies --yes). Exit codes are those of the command it runs.
    """
    try:
        commands = {c.name or "": c for c in [*pipeline.COMMANDS, sync]}
        command, arguments = job_arguments(job, commands, overrides)
    except BulkError as exc:
        click.echo(f"bulk: {exc}", err=True)  # one line, never wrapped
        sys.exit(exc.exit_code)
    command.main(args=[*arguments, *overrides, "--yes"], prog_name=f"bulk {command.name}")


COMMANDS = [run]
