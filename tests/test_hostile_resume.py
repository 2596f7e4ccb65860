"""A careless operator against the journal, resume and the command line: output paths that
name the input, the journal or each other; a journal reached through a symlink; a journal
whose rows are damaged; a run stopped while it plans; a resume under another account."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from bulk._journal import exclusive
from bulk.cli import main
from tests.conftest import write_csv

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
