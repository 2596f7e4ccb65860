"""A run's first step: what can be checked before anything is opened (the command, the
provider, the accounts file and its secrets, the files the run writes), as a :class:`Job`.

The files a run writes default to names after its input, beside it (:func:`default_paths`);
none of them may be a file the run reads, or another file it writes (:func:`check_distinct`).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

from bulk import _names, _report
from bulk._accounts import Account, accounts_for, check_environment, parse_shard
from bulk._errors import ConfigError
from bulk._jobvalues import COMMANDS, JobSpec
from bulk._summary_file import check_summary_path
from bulk.providers import entry


@dataclass(frozen=True, slots=True)
class Job:
    """One run as it starts: what it was asked, the files it writes, its accounts, when."""

    spec: JobSpec
    report: Path
    failures: Path
    journal: Path
    started: float  #: monotonic
    started_at: float  #: epoch seconds
    accounts: dict[str, Account] | None = None  #: this shard's accounts, in file order
    #: every account of the accounts file (the shard's and the others'): rows are checked
    #: against these, so every shard checks them as an unsharded run does
    every_account: dict[str, Account] | None = None


def default_paths(spec: JobSpec) -> tuple[Path, Path, Path]:
    """Report, failures file and journal: as given, else named after the input, beside it
    (:mod:`bulk._names`): ``<input>.<command>.<via>.report.csv``, ``….failed.csv``,
    ``….journal``; a shard's carry ``shard-K-of-N``, so the pods of a sharded job never write
    each other's files."""
    shard = None if spec.shard is None else parse_shard(spec.shard)
    where = None if shard is None else (shard.index, shard.count)
    via = "accounts" if spec.accounts is not None else spec.provider
    stem = _names.run_stem(spec.input, spec.command, via, sandbox=spec.sandbox, shard=where)
    report = spec.report or _names.named(stem, "report.csv")
    failures = spec.failures or report.with_name(
        report.stem.removesuffix(".report") + ".failed.csv"
    )
    journal = spec.journal or _names.named(stem, "journal")
    if spec.journal is None and not spec.sandbox and not journal.exists():
        legacy = _names.legacy_journal(spec.input, spec.command, via, where)
        journal = legacy if legacy.is_file() else journal
    return report, failures, journal


def holds_journal(spec: JobSpec) -> bool:
    """Runs that write a journal hold it; a dry run's journal is in memory, status has none.
    The same runs write a failures file."""
    return not spec.dry_run and spec.command != "status"


def start(spec: JobSpec) -> Job:
    """Check what can be checked before anything is opened: the command, the provider, the
    accounts file and its secrets (this shard's accounts), the report paths."""
    if spec.command not in COMMANDS:
        raise ConfigError(f"unknown command {spec.command!r}")
    entry(spec.provider)
    every_account = accounts = accounts_for(spec.accounts, spec.account_name)
    if accounts is not None:
        if spec.shard is not None:
            shard = parse_shard(spec.shard)
            accounts = {n: a for n, a in accounts.items() if shard.holds(n)}
        if not spec.sandbox:  # every secret is there before anything is read or sent
            check_environment(accounts.values(), os.environ)
    elif spec.shard is not None:
        raise ConfigError("--shard splits the accounts of --accounts FILE; give the file too")
    report, failures, journal = default_paths(spec)
    check_distinct(spec, report, failures, journal)
    _report.check_path(report, "--report")
    _report.check_path(failures, "--failures", (".csv",))  # input for the next run
    if spec.summary_json is not None:
        check_summary_path(spec.summary_json)
    started = time.monotonic(), time.time()
    return Job(spec, report, failures, journal, *started, accounts, every_account)


def check_distinct(spec: JobSpec, report: Path, failures: Path, journal: Path) -> None:
    """Refuse, before anything is read, a file the run writes that is a file it reads or
    another file it writes (also through a symlink): the report written over the input, the
    failures file over the report, a stale failures file removed where the input is."""
    writes: list[tuple[str, Path]] = []
    if not spec.dry_run:
        writes.append(("--report", report))
        if spec.command != "status":
            writes.append(("--failures", failures))
    if holds_journal(spec):
        writes.append(("--journal", journal))
    if spec.summary_json is not None:
        writes.append(("--summary-json", spec.summary_json))
    reads = [
        ("the input", spec.input),
        ("--campaigns", spec.campaigns),
        ("--accounts", spec.accounts),
    ]
    seen = [(what, path) for what, path in reads if path is not None]
    for what, path in writes:
        for other, known in seen:
            if _same_file(path, known):
                raise ConfigError(
                    f"{what} {path} is the same file as {other} {known}: the run would "
                    f"overwrite it; give {what} another path"
                )
        seen.append((what, path))


def _same_file(a: Path, b: Path) -> bool:
    """Whether two paths name one file: the same place once symlinks are resolved, or (both
    existing) the same inode, as hard links are."""
    try:
        if a.resolve() == b.resolve():
            return True
        return a.exists() and b.exists() and a.samefile(b)
    except OSError:
        return False


__all__ = ["Job", "check_distinct", "default_paths", "holds_journal", "start"]
