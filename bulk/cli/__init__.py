"""The ``bulk`` command line. Each command lives in its own module and registers here."""

from __future__ import annotations

import click

from bulk import __version__
from bulk.cli import jobs, plans, run, sandbox, validate


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="bulk")
def main() -> None:
    """Link, unlink and move thousands of phone numbers to US 10DLC campaigns.

    bulk reads a CSV of numbers, validates them as US E.164, plans the requests, sends them
    rate-limited and concurrently to {providers}, polls every number until it settles,
    and writes a report with one row per input row. A journal makes every run resumable.

    \b
    Start here:
      bulk validate samples/onboarding.csv --campaigns samples/campaigns.csv
      bulk link samples/onboarding.csv --campaigns samples/campaigns.csv --sandbox
    """


def _register() -> None:
    from bulk.providers import REGISTRY

    titles = [p.title for p in REGISTRY.values()]
    named = " or ".join([", ".join(titles[:-1]), titles[-1]] if len(titles) > 1 else titles)
    main.help = (main.help or "").replace("{providers}", named)

    for module in (validate, sandbox, run, jobs, plans):
        for command in module.COMMANDS:
            main.add_command(command)


_register()
