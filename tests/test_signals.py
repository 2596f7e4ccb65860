"""SIGTERM winds a run down as Ctrl-C does, even when the process inherited SIGINT as ignored
(``bulk ... &`` from a non-interactive shell, how schedulers and ``nohup``-style wrappers
start jobs)."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import polars as pl

from bulk._job import JobSpec
from bulk.cli.run import _after_interrupt
from tests._helpers import (
    NUMBERS,
    ThreadedSandbox,
    journal_states,
    link_command,
    plivo_env,
    wait_for_progress,
)


def test_sigterm_exits_130_with_a_report_when_sigint_was_inherited_ignored(
    tmp_path: Path, sandbox_factory: Callable[..., ThreadedSandbox]
) -> None:
    sb = sandbox_factory(settle_min=0.2, settle_max=0.8)
    command = shlex.join(link_command(sb, tmp_path))
    # the shell ignores SIGINT and execs bulk, which inherits the ignored disposition
    proc = subprocess.Popen(
        ["sh", "-c", f"trap '' INT; exec {command}"],
        env=plivo_env(sb),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    wait_for_progress(tmp_path / "run.journal", 20, proc)
    proc.send_signal(signal.SIGINT)  # still ignored: the run goes on
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err.decode()
    assert "resume" in err.decode()
    states = journal_states(tmp_path / "run.journal")
    assert states.get("planned", 0) > 0, states  # stopped mid-way, not run to the end
    report = pl.read_csv(tmp_path / "report.csv", infer_schema=False)
    assert report.height == len(NUMBERS)
    assert "interrupted" in " ".join(r or "" for r in report.get_column("reason").to_list())


def test_sighup_winds_the_run_down_as_sigterm_does_unless_inherited_ignored(
    tmp_path: Path, sandbox_factory: Callable[..., ThreadedSandbox]
) -> None:
    """Closing the terminal (SIGHUP) killed the run as ``kill -9`` would: the journal stayed
    consistent, but no report was written and nothing was said. It now winds down as on
    SIGTERM; under ``nohup`` (SIGHUP inherited ignored) the run goes on to the end."""
    sb = sandbox_factory(settle_min=0.2, settle_max=0.8)
    proc = subprocess.Popen(link_command(sb, tmp_path), env=plivo_env(sb), cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    wait_for_progress(tmp_path / "run.journal", 20, proc)
    proc.send_signal(signal.SIGHUP)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err.decode()
    report = pl.read_csv(tmp_path / "report.csv", infer_schema=False)
    assert report.height == len(NUMBERS)
    assert "interrupted" in " ".join(r or "" for r in report.get_column("reason").to_list())

    second = tmp_path / "nohup"
    second.mkdir()
    command = shlex.join(link_command(sb, second))
    kept = subprocess.Popen(["sh", "-c", f"trap '' HUP; exec {command}"], env=plivo_env(sb),
                            cwd=second, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    wait_for_progress(second / "run.journal", 20, kept)
    kept.send_signal(signal.SIGHUP)  # ignored, as nohup sets it: the run goes on
    _, err = kept.communicate(timeout=60)
    assert kept.returncode in (0, 1), err.decode()
    assert journal_states(second / "run.journal").get("planned", 0) == 0


def test_an_interrupt_names_only_the_journal_and_report_this_run_left(tmp_path: Path) -> None:
    """Stopped while loading a large input (before its journal existed), a run said "The
    journal ... is consistent; run the same command again to resume. Report so far: ..." and
    named an older run's report at that path as its own."""
    spec = JobSpec(command="link", input=tmp_path / "big.csv", provider="plivo",
                   journal=tmp_path / "run.journal", report=tmp_path / "report.csv")
    spec.report.write_text("an older run's report\n")
    os.utime(spec.report, (1e9, 1e9))
    started = time.time()
    assert _after_interrupt(spec, started) == "Nothing was sent."
    spec.journal.write_bytes(b"")
    said = _after_interrupt(spec, started)
    assert "run the same command again to resume" in said and "Report" not in said
    spec.report.write_text("this run's report\n")
    assert f"Report so far: {spec.report}" in _after_interrupt(spec, started)
