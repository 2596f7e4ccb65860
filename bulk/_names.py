"""Where a command writes what nobody named: one scheme for every default output.

Every default output goes beside the input, named after the input's whole file name (its
extension too), the command, and where the run sends its requests::

    samples/onboarding.csv.link.plivo.report.csv
    samples/onboarding.csv.link.plivo.failed.csv
    samples/onboarding.csv.link.plivo.journal
    samples/onboarding.csv.link.plivo-sandbox.state.json   (--sandbox: the sandbox's state)
    samples/onboarding.csv.validate.report.csv

So two inputs (``numbers.csv`` and ``numbers.xlsx``, or the same name in two folders), two
providers, a sandbox run and a real one, and the shards of one job never share a file. A path
given explicitly (``--report``, ``--failures``, ``--journal``) is used as given.
"""

from __future__ import annotations

from pathlib import Path


def run_stem(
    input: Path,
    command: str,
    via: str | None = None,
    *,
    sandbox: bool = False,
    shard: tuple[int, int] | None = None,
) -> Path:
    """The common start of a run's default file names: ``<input>.<command>.<via>``, where
    ``via`` is the provider (``plivo-sandbox`` under ``--sandbox``) or ``accounts``, then
    ``.shard-K-of-N`` for one shard of a sharded job."""
    parts = [input.name, command]
    if via is not None:
        parts.append(f"{via}-sandbox" if sandbox else via)
    if shard is not None:
        parts.append(f"shard-{shard[0]}-of-{shard[1]}")
    return input.with_name(".".join(parts))


def named(stem: Path, kind: str) -> Path:
    """``stem`` with ``.kind`` added: ``report.csv``, ``failed.csv``, ``journal``,
    ``state.json``."""
    return stem.with_name(f"{stem.name}.{kind}")


def legacy_journal(input: Path, command: str, via: str, shard: tuple[int, int] | None) -> Path:
    """The journal name earlier versions of bulk gave a run, in the current directory:
    ``<input stem>.<command>[.shard-K-of-N].<via>.journal``; a run whose own default journal
    does not exist resumes this one, so an interrupted run started by such a version
    finishes with the same command."""
    stem = f"{input.stem}.{command}"
    if shard is not None:
        stem += f".shard-{shard[0]}-of-{shard[1]}"
    return Path(f"{stem}.{via}.journal")


__all__ = ["legacy_journal", "named", "run_stem"]
