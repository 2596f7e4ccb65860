"""The input's own columns in a run's report and failures file: every one is kept, after the
report's columns; one named like a report column (``outcome``, ``attempts``, ...) or, without
``--accounts``, ``account`` is kept as ``input_<name>``, as ``bulk validate`` keeps them. A
report re-fed as input drops the report's own columns, so nothing accumulates."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner

from bulk._report import REPORT_COLUMNS
from bulk.cli import main
from tests._helpers import ThreadedSandbox, write_csv

#: input columns named like the report's own
CLASHING = ("outcome", "attempts", "settled_at", "provider_status", "submitted_at")
FAST = ["--poll-interval", "0.1", "--resend-delay", "0.1", "--yes", "--quiet"]


def _invoke(sb: ThreadedSandbox, tmp_path: Path, command: str, source: Path, *more: str) -> int:
    # status keeps no journal and writes no failures file: it refuses both options
    outputs = [] if command == "status" else [
        "--failures", str(tmp_path / "f.csv"), "--journal", str(tmp_path / f"{command}.journal")
    ]
    args = [command, str(source), "--base-url", sb.base_url, "--report",
            str(tmp_path / "r.csv"), *outputs, *more, *FAST]
    result = CliRunner().invoke(main, args, env=sb.env("plivo"))
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        result.output,
        result.exception,
    )
    return result.exit_code


def _read(path: Path) -> pl.DataFrame:
    return pl.read_csv(path, infer_schema=False)


@pytest.mark.parametrize("command", ["link", "unlink", "status", "apply"])
def test_an_account_column_without_accounts_is_kept_as_input_account_and_nothing_crashes(
    command: str, tmp_path: Path, sandbox_factory: Callable[..., ThreadedSandbox]
) -> None:
    # the run sent its changes, then stopped on polars' DuplicateError: no report, exit 1
    sb = sandbox_factory()
    source = write_csv(
        tmp_path / "in.csv", "number,campaign,account",
        ["+14155550193,CUOGHIN,acme", "not a number,CUOGHIN,other"],
    )
    for _ in range(2):  # and a second run, which resumes (or reads) the same rows
        assert _invoke(sb, tmp_path, command, source) == 1  # the bad number
        report = _read(tmp_path / "r.csv")
        assert "account" not in report.columns
        assert report.columns[len(REPORT_COLUMNS):] == ["input_account"]
        assert report.get_column("input_account").to_list() == ["acme", "other"]
        if command != "status":
            failed = _read(tmp_path / "f.csv")
            assert "account" not in failed.columns
            assert failed.get_column("input_account").to_list()[-1] == "other"
    if command == "link":
        assert sb.counters()["numbers"]["+14155550193"]["link_accepted"] == 1


@pytest.mark.parametrize("command", ["link", "unlink", "move", "status", "apply"])
def test_input_columns_named_like_report_columns_are_kept_as_input_columns(
    command: str, tmp_path: Path, sandbox_factory: Callable[..., ThreadedSandbox]
) -> None:
    # they were dropped from the report and the failures file
    sb = sandbox_factory()
    header = "number,campaign,from_campaign," + ",".join(CLASHING) + ",note"
    cells = ",".join(f"my-{c}" for c in CLASHING)
    source = write_csv(
        tmp_path / "in.csv", header,
        [f"+14155550193,CUOGHIN,CRIGC80,{cells},kept", f"not a number,CUOGHIN,CRIGC80,{cells},x"],
    )
    _invoke(sb, tmp_path, command, source)
    report = _read(tmp_path / "r.csv")
    ours = [f"input_{c}" for c in CLASHING]
    assert report.columns == [*REPORT_COLUMNS, *ours, "note"]
    for column in CLASHING:
        assert report.get_column(f"input_{column}").to_list() == [f"my-{column}"] * 2
    assert report.get_column("outcome").to_list()[1] == "rejected"
    if command != "status":
        failed = _read(tmp_path / "f.csv")
        assert [c for c in failed.columns if c.startswith("input_")] == ours
        assert failed.get_column("input_outcome").to_list()[-1] == "my-outcome"


def test_a_report_re_fed_keeps_the_inputs_own_columns_once_and_never_the_reports(
    tmp_path: Path, sandbox_factory: Callable[..., ThreadedSandbox]
) -> None:
    sb = sandbox_factory()
    source = write_csv(
        tmp_path / "in.csv", "number,campaign_id,outcome,line,note",
        ["+14155550100,CUOGHIN,mine,7,first", "+14155550101,CUOGHIN,yours,8,second"],
    )
    columns = []
    for n in range(3):
        report = tmp_path / f"r{n}.csv"
        args = ["link", str(source), "--base-url", sb.base_url, "--report", str(report),
                "--journal", str(tmp_path / f"j{n}"), *FAST]
        result = CliRunner().invoke(main, args, env=sb.env("plivo"))
        assert result.exit_code == 0, result.output
        frame = _read(report)
        columns.append(frame.columns)
        assert frame.get_column("input_outcome").to_list() == ["mine", "yours"]
        assert frame.get_column("input_line").to_list() == ["7", "8"]
        source = report
    assert columns[0] == columns[1] == columns[2], columns
    assert columns[0] == [*REPORT_COLUMNS, "input_outcome", "input_line", "note"]
