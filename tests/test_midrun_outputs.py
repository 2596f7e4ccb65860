"""Things that go wrong on the user's side in the middle of a run: the report's folder
replaced, the summary's folder missing, stdout closed. Each ends with one clear line, the
journal whole, and the same command finishes the job."""

from __future__ import annotations

import hashlib
import json
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner

from bulk.cli import main
from tests._helpers import (
    NUMBERS,
    ThreadedSandbox,
    journal_states,
    link_command,
    plivo_env,
    wait_for_progress,
    write_csv,
)


def _said(text: str, output: str) -> bool:
    return "".join(text.split()) in "".join(output.split())


def _link(sb: ThreadedSandbox, tmp_path: Path, *extra: str) -> list[str]:
    src = write_csv(tmp_path / "in.csv", "number,campaign_id", [f"{n},CUOGHIN" for n in NUMBERS])
    return [sys.executable, "-m", "bulk", "link", str(src), "--base-url", sb.base_url,
            "--rate", "25", "--batch-size", "1", "--concurrency", "4", "--poll-interval", "0.3",
            "--settle-timeout", "20", "--journal", str(tmp_path / "run.journal"), "--yes",
            "--quiet", *extra]


def test_a_report_folder_replaced_mid_run_ends_in_one_line_and_the_next_run_writes_it(
    tmp_path: Path, sandbox_factory: Callable[..., ThreadedSandbox]
) -> None:
    # before: a FileExistsError traceback at the very end, exit 1, and --summary-json never
    # written. (Root writes through a read-only folder, so the folder becomes a regular file,
    # which stops root too: the same OSError a read-only folder gives a user.)
    sb = sandbox_factory(settle_min=0.2, settle_max=0.8)
    out = tmp_path / "out"
    out.mkdir()
    report = out / "report.csv"
    summary = tmp_path / "summary.json"
    command = _link(sb, tmp_path, "--report", str(report), "--summary-json", str(summary))
    proc = subprocess.Popen(command, env=plivo_env(sb), cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    wait_for_progress(tmp_path / "run.journal", 10, proc)
    shutil.rmtree(out)
    out.write_text("in the report folder's place\n")
    stdout, err = proc.communicate(timeout=60)
    text = stdout.decode() + err.decode()
    assert proc.returncode == 2, text
    assert "Traceback" not in text, text
    assert _said(f"bulk: {report}: cannot write the report", text), text
    assert _said("run the same command again", text), text
    states = journal_states(tmp_path / "run.journal")
    assert states == {"linked": len(NUMBERS)}, states  # every row settled, in the journal
    written = json.loads(summary.read_text())
    assert written["exit_code"] == 2 and written["report"] is None, written
    assert written["counts"]["linked"] == len(NUMBERS), written

    out.unlink()
    again = subprocess.run(_link(sb, tmp_path, "--report", str(report)), env=plivo_env(sb),
                           cwd=tmp_path, capture_output=True, timeout=60)
    assert again.returncode == 0, again.stderr.decode()
    rows = pl.read_csv(report, infer_schema=False)
    assert rows.get_column("e164").to_list() == NUMBERS
    assert set(rows.get_column("outcome")) == {"linked"}
    for number in NUMBERS:  # the second run wrote the report and sent nothing again
        assert sb.counters()["numbers"][number]["link_accepted"] == 1


def test_a_summary_path_is_checked_before_sending_and_its_missing_folders_are_made(
    tmp_path: Path, sandbox_factory: Callable[..., ThreadedSandbox],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # before: both runs sent and linked every row, then exited 2 at the end ("cannot write
    # the summary (No such file or directory)" / "(Not a directory)"): a finished job that a
    # scheduler reads as "could not start"
    monkeypatch.chdir(tmp_path)
    sb = sandbox_factory()
    src = write_csv(tmp_path / "in.csv", "number,campaign_id",
                    ["+14155550103,CUOGHIN", "+14155550104,CUOGHIN"])
    base = ["link", str(src), "--base-url", sb.base_url, "--poll-interval", "0.2",
            "--yes", "--quiet"]
    (tmp_path / "afile").write_text("not a folder\n")
    refused = CliRunner().invoke(
        main, [*base, "--summary-json", "afile/s.json"], env=sb.env("plivo")
    )
    assert refused.exit_code == 2, refused.output
    assert _said("bulk: --summary-json afile/s.json:", refused.output), refused.output
    assert _said("is not a folder", refused.output), refused.output
    assert sb.counters()["totals"]["requests"] == 0  # found before anything was sent

    made = CliRunner().invoke(
        main, [*base, "--summary-json", "new/deeper/s.json"], env=sb.env("plivo")
    )
    assert made.exit_code == 0, made.output
    assert json.loads((tmp_path / "new/deeper/s.json").read_text())["exit_code"] == 0


def test_a_closed_stdout_keeps_the_runs_exit_code(tmp_path: Path) -> None:
    # ``bulk link ... | head -1``: the reader is gone by the time the summary is printed.
    # before: click turned the EPIPE into exit 1 ("some row failed"), silently, after every
    # row was linked and --summary-json had said exit_code 0
    src = write_csv(tmp_path / "in.csv", "number,campaign_id",
                    ["+14155550103,CUOGHIN", "+14155550104,CUOGHIN"])
    proc = subprocess.Popen(
        [sys.executable, "-m", "bulk", "link", str(src), "--sandbox", "--yes", "--quiet",
         "--summary-json", "s.json"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None
    proc.stdout.close()  # as head does once it has its line
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err.decode()
    assert "Traceback" not in err.decode() and "Exception ignored" not in err.decode()
    assert json.loads((tmp_path / "s.json").read_text())["exit_code"] == 0
    report = pl.read_csv(tmp_path / "in.csv.link.plivo-sandbox.report.csv", infer_schema=False)
    assert set(report.get_column("outcome")) == {"linked"}


def test_an_interrupted_run_whose_summary_folder_went_away_still_exits_130(
    tmp_path: Path, sandbox_factory: Callable[..., ThreadedSandbox]
) -> None:
    # before: the summary's ConfigError replaced the interrupt: exit 2, no "Interrupted",
    # no word on resuming (and, stopped by an error, the error's own line was lost the same way)
    sb = sandbox_factory(settle_min=0.2, settle_max=0.8)
    (tmp_path / "state").mkdir()
    summary = tmp_path / "state" / "summary.json"
    command = _link(sb, tmp_path, "--report", str(tmp_path / "report.csv"),
                    "--summary-json", str(summary))
    proc = subprocess.Popen(command, env=plivo_env(sb), cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    wait_for_progress(tmp_path / "run.journal", 10, proc)
    shutil.rmtree(tmp_path / "state")
    (tmp_path / "state").write_text("in the summary folder's place\n")
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    text = err.decode()
    assert proc.returncode == 130, text
    assert "Traceback" not in text and "Interrupted." in text, text
    assert _said("run the same command again to resume", text), text
    assert _said(f"{summary}: cannot write the summary", text), text
    assert pl.read_csv(tmp_path / "report.csv", infer_schema=False).height == len(NUMBERS)


def test_the_summary_keeps_the_hash_of_the_input_the_run_read_when_the_file_changes_later(
    tmp_path: Path, sandbox_factory: Callable[..., ThreadedSandbox]
) -> None:
    # before: the summary hashed the input again at the end, so a file edited mid-run gave
    # the edited file's hash: not the input this run read (nor the journal's)
    sb = sandbox_factory(settle_min=0.2, settle_max=0.8)
    command = [*link_command(sb, tmp_path), "--summary-json", str(tmp_path / "summary.json")]
    source = tmp_path / "in.csv"
    read = hashlib.sha256(source.read_bytes()).hexdigest()
    proc = subprocess.Popen(command, env=plivo_env(sb), cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    wait_for_progress(tmp_path / "run.journal", 5, proc)
    source.write_text(source.read_text() + "+14155550199,CUOGHIN\n")
    _, err = proc.communicate(timeout=60)
    assert proc.returncode in (0, 1), err.decode()
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["input_sha256"] == read
