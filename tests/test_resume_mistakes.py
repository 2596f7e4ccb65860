"""A careless operator against the journal, resume and the command line: output paths that
name the input, the journal or each other; a journal reached through a symlink; a journal
whose rows are damaged; a run stopped while it plans; a resume under another account."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from click.testing import CliRunner

from bulk._errors import JournalError
from bulk._journal import Journal, exclusive
from bulk.cli import main
from bulk.sandbox import SandboxConfig, seed_for_accounts
from tests._helpers import (
    NUMBERS,
    ThreadedSandbox,
    link_command,
    plivo_env,
    threaded_sandbox,
    write_csv,
)

ROWS = ["+14155550103,CUOGHIN", "+14155550104,CUOGHIN"]


@pytest.fixture(autouse=True)
def _work_in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


def _said(text: str, output: str) -> bool:
    return "".join(text.split()) in "".join(output.split())


@pytest.mark.parametrize(
    ("input_name", "options", "said"),
    [
        ("in.csv", ["--report", "in.csv"], "--report in.csv is the same file as the input"),
        ("in.csv", ["--failures", "in.csv"], "--failures in.csv is the same file as the input"),
        ("in.csv", ["--report", "alias.csv"], "--report alias.csv is the same file as the input"),
        (
            "in.csv",
            ["--report", "j.csv", "--journal", "j.csv"],
            "--journal j.csv is the same file as --report j.csv",
        ),
        (
            "in.csv",
            ["--report", "r.csv", "--failures", "r.csv"],
            "--failures r.csv is the same file as --report r.csv",
        ),
        (
            "in.csv",
            ["--summary-json", "in.csv"],
            "--summary-json in.csv is the same file as the input",
        ),
        # re-feeding a failures file with the first run's report path: the default failures
        # file of the new run is the input itself
        (
            "x.failed.csv",
            ["--report", "x.report.csv"],
            "--failures x.failed.csv is the same file as the input",
        ),
    ],
    ids=["report", "failures", "report-symlink", "journal", "report-failures", "summary", "refeed"],
)
def test_an_output_path_that_is_the_input_or_another_output_exits_2_and_touches_nothing(
    input_name: str, options: list[str], said: str, tmp_path: Path
) -> None:
    # before: --report in.csv replaced the input by the report (the resume then refused
    # the journal as another job's); --failures in.csv deleted the input when every row
    # succeeded; --report equal to --journal replaced the journal by the report; --report
    # equal to --failures deleted the report
    src = write_csv(tmp_path / input_name, "number,campaign_id", ROWS)
    os.symlink(input_name, tmp_path / "alias.csv")
    before = src.read_bytes()
    result = CliRunner().invoke(
        main, ["link", input_name, "--sandbox", "--yes", "--quiet", *options]
    )
    assert result.exit_code == 2, result.output
    assert _said(f"bulk: {said}", result.output), result.output
    assert isinstance(result.exception, SystemExit)  # no traceback
    assert src.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([input_name, "alias.csv"])


def test_a_journal_reached_through_a_symlink_is_held_by_the_run_on_its_target(
    tmp_path: Path,
) -> None:
    # before: the lock was <symlink>.lock, not <target>.lock, so a second run of the same job
    # through a symlink to a held journal ran (exit 0) beside the first, on the same rows
    write_csv(tmp_path / "in.csv", "number,campaign_id", ROWS)
    os.symlink("held.journal", tmp_path / "other.journal")
    with exclusive(tmp_path / "held.journal"):
        result = CliRunner().invoke(
            main,
            ["link", "in.csv", "--sandbox", "--yes", "--quiet", "--journal", "other.journal"],
        )
    assert result.exit_code == 75, result.output
    assert _said(f"pid {os.getpid()}", result.output), result.output
    assert not (tmp_path / "held.journal").exists()  # nothing was opened, let alone written


def _link_journal() -> Any:
    return CliRunner().invoke(
        main, ["link", "in.csv", "--sandbox", "--yes", "--quiet", "--journal", "run.journal"]
    )


def _damage_state(journal: Path) -> None:
    with sqlite3.connect(journal) as db:
        db.execute("UPDATE rows SET state = 'bogus' WHERE line = 3")


def _drop_row(journal: Path) -> None:
    with sqlite3.connect(journal) as db:
        db.execute("DELETE FROM rows WHERE line = 3")


def _smash_rows_page(journal: Path) -> None:
    with sqlite3.connect(journal) as db:
        (size,) = db.execute("PRAGMA page_size").fetchone()
        (root,) = db.execute("SELECT rootpage FROM sqlite_master WHERE name = 'rows'").fetchone()
    db.close()
    with journal.open("r+b") as handle:
        handle.seek((root - 1) * size)
        handle.write(b"\xff" * size)


@pytest.mark.parametrize(
    ("damage", "said"),
    [
        (_damage_state, "run.journal: line 3 has the unknown state 'bogus'"),
        (_drop_row, "run.journal: holds no row for line 3 of the input"),
        (_smash_rows_page, "run.journal: not a usable bulk journal (database disk image is"),
    ],
    ids=["unknown-state", "missing-row", "unreadable-rows"],
)
def test_a_journal_with_damaged_rows_exits_2_naming_the_journal_and_the_line(
    damage: Callable[[Path], None], said: str, tmp_path: Path
) -> None:
    # before: a traceback and exit 1 (ValueError: 'bogus' is not a valid State; KeyError: 3
    # from the report; sqlite3.DatabaseError: database disk image is malformed)
    write_csv(tmp_path / "in.csv", "number,campaign_id", ROWS)
    first = _link_journal()
    assert first.exit_code == 0, first.output
    damage(tmp_path / "run.journal")
    again = _link_journal()
    assert again.exit_code == 2, again.output
    assert isinstance(again.exception, SystemExit), again.exception  # no traceback
    assert _said(f"bulk: {said}", again.output), again.output


def test_sigterm_while_planning_writes_the_report_it_names(
    tmp_path: Path, sandbox_factory: Callable[..., ThreadedSandbox]
) -> None:
    # before: exit 130 saying "Report so far: report.csv", but no report was written (a
    # report left at that path by an earlier run stayed, stale, in its place)
    sb = sandbox_factory(faults={"latency_min": 3.0, "latency_max": 3.0})
    (tmp_path / "report.csv").write_text("stale\n", encoding="utf-8")
    err = _sigterm_while_planning(sb, tmp_path, link_command(sb, tmp_path))
    assert "Plan:" not in err.decode()  # stopped before the plan was known
    assert _said(f"Report so far: {tmp_path / 'report.csv'}", err.decode()), err.decode()
    report = pl.read_csv(tmp_path / "report.csv", infer_schema=False)
    assert report.get_column("e164").to_list() == NUMBERS
    assert set(report.get_column("outcome")) == {"unknown"}
    assert all("interrupted while planned" in r for r in report.get_column("reason"))
    assert sb.counters()["totals"].get("link_accepted", 0) == 0


def _sigterm_while_planning(sb: ThreadedSandbox, tmp_path: Path, command: list[str]) -> bytes:
    """Start ``command``, SIGTERM it while its plan's first read waits at the sandbox (3 s
    from its answer), and return its stderr once it exited 130."""
    proc = subprocess.Popen(
        command, env=plivo_env(sb), cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 30
    while sb.counters()["totals"].get("requests", 0) == 0:
        assert proc.poll() is None and time.monotonic() < deadline, "the run never planned"
        time.sleep(0.05)
    time.sleep(0.3)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err.decode()
    return err


def test_sigterm_while_a_dry_run_plans_names_no_journal_or_report(
    tmp_path: Path, sandbox_factory: Callable[..., ThreadedSandbox]
) -> None:
    # before: "The journal run.journal is consistent ... Report so far: report.csv", neither
    # of which a dry run writes
    sb = sandbox_factory(faults={"latency_min": 3.0, "latency_max": 3.0})
    err = _sigterm_while_planning(sb, tmp_path, [*link_command(sb, tmp_path), "--dry-run"])
    assert "Interrupted. Nothing was sent." in err.decode(), err.decode()
    assert "journal" not in err.decode() and "Report" not in err.decode()
    assert not (tmp_path / "run.journal").exists() and not (tmp_path / "report.csv").exists()


def test_a_journal_refuses_a_resume_under_another_plivo_account(tmp_path: Path) -> None:
    # before: the second run, under another auth id, accepted the journal and reported every
    # row 'linked' (exit 0) although nothing was linked in that account
    other = "SAOTHERSUBACCOUNT001"
    with threaded_sandbox(SandboxConfig(settle_min=0.05, settle_max=0.3),
                          seed_for_accounts(plivo={other: None})) as sb:
        src = write_csv(tmp_path / "in.csv", "number,campaign_id", ROWS)
        command = [sys.executable, "-m", "bulk", "link", str(src), "--base-url", sb.base_url,
                   "--poll-interval", "0.2", "--journal", "run.journal", "--yes", "--quiet"]
        first = subprocess.run(command, env=plivo_env(sb), cwd=tmp_path, capture_output=True)
        assert first.returncode == 0, first.stderr.decode()
        env = {**os.environ, "PLIVO_AUTH_ID": other, "PLIVO_AUTH_TOKEN": sb.plivo_accounts[other]}
        again = subprocess.run(command, env=env, cwd=tmp_path, capture_output=True)
        err = again.stderr.decode()
        assert again.returncode == 2, again.stdout.decode() + err
        assert _said(f"belongs to another job (account: journal has '{sb.plivo_auth_id}', "
                     f"this run has '{other}')", err), err
        assert sb.plivo_accounts[other] not in err + again.stdout.decode()
        assert sb.counters()["totals"]["link_accepted"] == len(ROWS)  # the first run's only


def test_a_journal_older_than_the_account_key_resumes_and_then_keeps_its_account(
    tmp_path: Path,
) -> None:
    older = {"command": "link", "provider": "plivo", "input_sha256": "abc"}
    Journal.open(tmp_path / "j", older).close()  # as bulk wrote it before the key
    Journal.open(tmp_path / "j", {**older, "account": "MA1"}).close()
    with pytest.raises(JournalError, match="account: journal has 'MA1', this run has 'MA2'"):
        Journal.open(tmp_path / "j", {**older, "account": "MA2"})


@pytest.mark.parametrize("changed", [["--number-type", "mobile"], ["--region", "CA"]])
def test_a_resume_under_other_validation_rules_is_refused(
    changed: list[str], tmp_path: Path, sandbox_factory: Callable[..., ThreadedSandbox]
) -> None:
    # before: accepted; rows the first run rejected stayed rejected with its reason, and rows
    # the new rules reject still went out
    sb = sandbox_factory()
    src = write_csv(tmp_path / "in.csv", "number,campaign_id", ROWS)
    base = ["link", str(src), "--base-url", sb.base_url, "--poll-interval", "0.2",
            "--journal", "run.journal", "--yes", "--quiet"]
    first = CliRunner().invoke(main, base, env=sb.env("plivo"))
    assert first.exit_code == 0, first.output
    again = CliRunner().invoke(main, [*base, *changed], env=sb.env("plivo"))
    assert again.exit_code == 2, again.output
    assert _said("belongs to another job (validation:", again.output), again.output


def test_another_job_refused_on_an_older_journal_leaves_its_keys_unwritten(
    tmp_path: Path,
) -> None:
    # before: the refused job's account was adopted into the older journal before the input
    # was compared, so the journal's own job, resumed under its account, was then refused
    older = {"command": "link", "provider": "plivo", "input_sha256": "abc"}
    Journal.open(tmp_path / "j", older).close()  # as bulk wrote it before the account key
    with pytest.raises(JournalError, match="input_sha256"):
        Journal.open(tmp_path / "j", {**older, "input_sha256": "other", "account": "MA2"})
    Journal.open(tmp_path / "j", {**older, "account": "MA1"}).close()  # its own job resumes


def test_a_journal_of_another_bulk_version_says_so(tmp_path: Path) -> None:
    with sqlite3.connect(tmp_path / "j") as db:
        db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        db.execute("INSERT INTO meta VALUES ('schema', '3')")
    with pytest.raises(JournalError, match="written by another version of bulk"):
        Journal.open(tmp_path / "j", {"command": "link"})
