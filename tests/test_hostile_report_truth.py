"""The report, the failures file, ``--summary-json`` and the exit code tell one truth, also
in odd runs: a ``status`` run, an input bulk cannot read, a dry run whose plan fails rows."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from click.testing import CliRunner

from bulk.cli import main
from tests.conftest import write_csv


@pytest.fixture(autouse=True)
def _work_in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


def _run(*args: str) -> tuple[int, dict[str, Any]]:
    result = CliRunner().invoke(
        main, [*args, "--sandbox", "--yes", "--quiet", "--summary-json", "s.json"]
    )
    assert "Traceback" not in result.output, result.output
    return result.exit_code, json.loads(Path("s.json").read_text())


def _files_named_exist(summary: dict[str, Any]) -> None:
    for key in ("report", "failures", "journal"):
        if summary[key] is not None:
            assert Path(summary[key]).is_file(), (key, summary[key])


def test_status_names_no_failures_file_it_never_writes(tmp_path: Path) -> None:
    """``status`` writes a report only; its summary named a failures file all the same
    whenever a row was not linked (``unknown``, ``rejected``)."""
    src = write_csv(tmp_path / "in.csv", "number,campaign", ["+14155550143,CUOGHIN", "x,CUOGHIN"])
    code, summary = _run("status", str(src))
    assert code == 1 and summary["exit_code"] == 1
    assert summary["counts"]["rejected"] == 1
    assert summary["failures"] is None
    _files_named_exist(summary)
    report = pl.read_csv(summary["report"], infer_schema=False)
    assert report.height == summary["rows"] == 2


def test_a_run_stopped_before_its_journal_existed_names_no_journal(tmp_path: Path) -> None:
    """An input bulk cannot read stops the run (exit 2) before the journal is made; the
    summary named the journal all the same."""
    src = tmp_path / "in.csv"
    src.write_text("")
    code, summary = _run("link", str(src), "--campaign", "CUOGHIN")
    assert code == 2 and summary["exit_code"] == 2
    assert summary["journal"] is None and summary["report"] is None
    _files_named_exist(summary)


def test_a_dry_run_whose_plan_fails_rows_exits_1_as_its_counts_say(tmp_path: Path) -> None:
    """A dry run counted a row of a campaign the provider does not have as ``failed`` and
    still exited 0."""
    src = write_csv(
        tmp_path / "in.csv", "number,campaign", ["+14155559100,CNOSUCH", "+14155559101,CUOGHIN"]
    )
    code, summary = _run("link", str(src), "--dry-run")
    assert summary["counts"]["failed"] == 1, summary
    assert code == 1 and summary["exit_code"] == 1
    fine = write_csv(tmp_path / "ok.csv", "number,campaign", ["+14155559101,CUOGHIN"])
    code, summary = _run("link", str(fine), "--dry-run")
    assert code == 0 and summary["exit_code"] == 0, summary
