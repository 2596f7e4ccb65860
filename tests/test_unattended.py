"""Unattended runs: job files, one run per journal, the JSON summary, plain progress lines."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from click.testing import CliRunner

from bulk import JournalBusy
from bulk._journal import exclusive, lock_path
from bulk.cli import main
from tests._helpers import ThreadedSandbox, journal_states, wait_for_progress, write_csv

SAMPLES = Path(__file__).parent.parent / "samples"
NUMBERS = [f"+1206555{n:04d}" for n in range(100, 200)]


def _job_file(tmp_path: Path, sb: ThreadedSandbox, **extra: Any) -> Path:
    """A link job for NUMBERS against the threaded sandbox, paths relative to the job file."""
    write_csv(tmp_path / "in.csv", "number,campaign_id", [f"{n},CUOGHIN" for n in NUMBERS])
    keys: dict[str, Any] = {
        "command": "link",
        "input": "in.csv",
        "base-url": sb.base_url,
        "rate": 25,
        "batch-size": 1,
        "concurrency": 4,
        "poll-interval": 0.3,
        "settle-timeout": 20.0,
        "report": "report.csv",
        "journal": "run.journal",
        "summary-json": "summary.json",
        **extra,
    }
    lines = [f"{key} = {json.dumps(value)}" for key, value in keys.items()]
    job = tmp_path / "job.toml"
    job.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return job


def _changes(sb: ThreadedSandbox) -> Counter[str]:
    """Every accepted change, per number and kind, by the sandbox's own counters."""
    changes: Counter[str] = Counter()
    for number, counters in sb.counters()["numbers"].items():
        for key in ("link_accepted", "unlink_accepted", "attach_accepted", "detach_accepted"):
            changes[f"{number} {key}"] += counters.get(key, 0)
    return +changes


def _linked_once(sb: ThreadedSandbox, tmp_path: Path) -> None:
    report = pl.read_csv(tmp_path / "report.csv", infer_schema=False)
    assert report.get_column("e164").to_list() == NUMBERS
    assert report.get_column("outcome").to_list() == ["linked"] * len(NUMBERS)
    assert _changes(sb) == Counter({f"{n} link_accepted": 1 for n in NUMBERS})


def test_a_job_file_run_twice_sends_no_change_the_second_time_and_its_summary_matches_the_report(
    tmp_path: Path, sandbox_factory: Callable[..., ThreadedSandbox], monkeypatch: pytest.MonkeyPatch
) -> None:
    sb = sandbox_factory()
    job = _job_file(tmp_path, sb, rate=200, quiet=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # relative paths follow the job file, not the cwd
    first = CliRunner().invoke(main, ["run", str(job)], env=sb.env("plivo"))
    assert first.exit_code == 0, first.output
    _linked_once(sb, tmp_path)
    summary = json.loads((tmp_path / "summary.json").read_text())
    report = pl.read_csv(tmp_path / "report.csv", infer_schema=False)
    outcomes = Counter(report.get_column("outcome").to_list())
    assert summary["counts"] == {o: outcomes.get(o, 0) for o in summary["counts"]}
    assert set(summary["counts"]) >= {"linked", "failed", "unknown", "deferred"}
    assert summary["exit_code"] == 0 and summary["command"] == "link"
    assert summary["provider"] == "plivo" and summary["requests"]["link"] == len(NUMBERS)
    assert summary["report"] == str(tmp_path / "report.csv")
    assert summary["journal"] == str(tmp_path / "run.journal")
    assert not list(elsewhere.iterdir())

    second = CliRunner().invoke(main, ["run", str(job)], env=sb.env("plivo"))
    assert second.exit_code == 0, second.output
    _linked_once(sb, tmp_path)  # the sandbox saw no second change
    again = json.loads((tmp_path / "summary.json").read_text())
    assert again["counts"] == summary["counts"] and "link" not in again["requests"]


def test_the_sample_job_file_plans_the_sample_migration(tmp_path: Path) -> None:
    shutil.copytree(SAMPLES, tmp_path / "samples")
    job = tmp_path / "samples" / "migration.toml"
    result = CliRunner().invoke(main, ["run", str(job), "--dry-run", "--quiet"])
    assert result.exit_code == 0, result.output
    assert "20 two-step moves" in " ".join(result.output.split())


def test_options_after_the_job_file_override_it(
    tmp_path: Path, sandbox_factory: Callable[..., ThreadedSandbox]
) -> None:
    sb = sandbox_factory()
    job = _job_file(tmp_path, sb, quiet=True)
    result = CliRunner().invoke(main, ["run", str(job), "--dry-run"], env=sb.env("plivo"))
    assert result.exit_code == 0, result.output
    assert "Nothing was sent (dry run)" in " ".join(result.output.split())
    assert not _changes(sb) and not (tmp_path / "run.journal").exists()


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ('command = "link"\ninput = "in.csv"\nspeed = 3\n', "'speed'"),
        ('command = "link"\ninput = "in.csv"\nrate = "fast"\n', "'rate'"),
        ('command = "link"\ninput = "in.csv"\ndry-run = "yes"\n', "'dry-run'"),
        ('command = "link"\ninput = "in.csv"\nauth-token = "s3cret"\n', "'auth-token'"),
        ('command = "link"\ninput = "in.csv"\napi-key = "am_live_x"\n', "'api-key'"),
        ('command = "link"\ninput = "in.csv"\nplivo_token = "s3cret"\n', "'plivo_token'"),
        ('command = "link"\ninput = "missing.csv"\n', "'input'"),
        ('command = "link"\n', "'input'"),
        ('input = "in.csv"\n', "'command'"),
        ('command = "link"\ninput = "in.csv"\nrate = [\n', "not valid TOML"),
    ],
    ids=[
        "unknown",
        "wrong_type",
        "flag_not_bool",
        "token",
        "api_key",
        "named_token",
        "missing_input_file",
        "no_input",
        "no_command",
        "not_toml",
    ],
)
def test_a_bad_job_file_stops_with_one_line_naming_the_key_and_exit_2(
    body: str, named: str, tmp_path: Path
) -> None:
    write_csv(tmp_path / "in.csv", "number,campaign_id", ["+12065550100,CUOGHIN"])
    job = tmp_path / "job.toml"
    job.write_text(body, encoding="utf-8")
    result = CliRunner().invoke(main, ["run", str(job)])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and named in lines[0] and str(job) in lines[0], result.stderr
    assert "s3cret" not in result.output and "am_live_x" not in result.output


def test_a_journal_lock_names_its_holder_and_frees_when_released(tmp_path: Path) -> None:
    journal = tmp_path / "j.journal"
    with exclusive(journal):
        with pytest.raises(JournalBusy, match=f"pid {os.getpid()}, host .*, started ") as busy:
            with exclusive(journal):
                pass
        assert busy.value.exit_code == 75
    with exclusive(journal):  # released: free again
        assert lock_path(journal).exists()


def _start(job: Path, sb: ThreadedSandbox, *extra: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "bulk", "run", str(job), *extra],
        env={**os.environ, **sb.env("plivo")},
        cwd=job.parent,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def test_a_second_run_on_a_journal_in_use_exits_75_naming_the_holder_while_the_first_finishes(
    tmp_path: Path, sandbox_factory: Callable[..., ThreadedSandbox]
) -> None:
    sb = sandbox_factory(settle_min=0.2, settle_max=0.8)
    job = _job_file(tmp_path, sb)
    first = _start(job, sb, "--progress-interval", "0.2")
    wait_for_progress(tmp_path / "run.journal", 10, first)
    started = time.monotonic()
    second = subprocess.run(
        [sys.executable, "-m", "bulk", "run", str(job)],
        env={**os.environ, **sb.env("plivo")},
        capture_output=True,
        timeout=60,
    )
    assert second.returncode == 75, second.stderr.decode()
    assert f"pid {first.pid}" in second.stderr.decode()
    assert time.monotonic() - started < 10  # at once, not after the first run
    _, err = first.communicate(timeout=120)
    assert first.returncode == 0, err.decode()
    _linked_once(sb, tmp_path)
    # stderr is a pipe, not a terminal: plain progress lines instead of a bar
    lines = [line for line in err.decode().splitlines() if "rows settled" in line]
    assert lines and "requests" in lines[-1] and "req/s" in lines[-1], err.decode()


def test_a_run_killed_while_holding_the_lock_never_blocks_the_next(
    tmp_path: Path, sandbox_factory: Callable[..., ThreadedSandbox]
) -> None:
    sb = sandbox_factory(settle_min=0.2, settle_max=0.8)
    job = _job_file(tmp_path, sb, quiet=True)
    proc = _start(job, sb)
    wait_for_progress(tmp_path / "run.journal", 30, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    assert journal_states(tmp_path / "run.journal").get("planned", 0) > 0  # killed mid-way
    assert f"pid {proc.pid}" in lock_path(tmp_path / "run.journal").read_text()
    rerun = _start(job, sb)
    _, err = rerun.communicate(timeout=120)
    assert rerun.returncode == 0, err.decode()
    _linked_once(sb, tmp_path)


def test_an_interrupted_run_still_writes_its_summary_with_exit_130_and_the_reports_counts(
    tmp_path: Path, sandbox_factory: Callable[..., ThreadedSandbox]
) -> None:
    sb = sandbox_factory(settle_min=0.2, settle_max=0.8)
    job = _job_file(tmp_path, sb, quiet=True)
    proc = _start(job, sb)
    wait_for_progress(tmp_path / "run.journal", 20, proc)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err.decode()
    summary = json.loads((tmp_path / "summary.json").read_text())
    report = pl.read_csv(tmp_path / "report.csv", infer_schema=False)
    outcomes = Counter(report.get_column("outcome").to_list())
    assert summary["exit_code"] == 130 and outcomes["unknown"] > 0
    assert summary["counts"] == {o: outcomes.get(o, 0) for o in summary["counts"]}
    assert sum(summary["counts"].values()) == len(NUMBERS)


def test_a_run_refused_for_a_busy_journal_leaves_the_holders_summary_alone(
    tmp_path: Path, sandbox_factory: Callable[..., ThreadedSandbox]
) -> None:
    sb = sandbox_factory()
    job = _job_file(tmp_path, sb, quiet=True)
    with exclusive(tmp_path / "run.journal"):
        result = CliRunner().invoke(main, ["run", str(job)], env=sb.env("plivo"))
    assert result.exit_code == 75, result.output
    assert not (tmp_path / "summary.json").exists() and not _changes(sb)


def test_a_job_file_may_ask_for_the_adaptive_rate(tmp_path: Path) -> None:
    from bulk.cli import main as cli_main

    src = tmp_path / "in.csv"
    src.write_text("number,campaign_id\n+14155550120,CUOGHIN\n")
    job = tmp_path / "job.toml"
    job.write_text('command = "link"\ninput = "in.csv"\nrate = "auto"\nsandbox = true\n')
    result = CliRunner().invoke(cli_main, ["run", str(job), "--dry-run"])
    assert result.exit_code == 0, result.output
    job.write_text('command = "link"\ninput = "in.csv"\npoll-interval = "auto"\n')
    result = CliRunner().invoke(cli_main, ["run", str(job), "--dry-run"])
    assert result.exit_code == 2 and "poll-interval" in result.output
