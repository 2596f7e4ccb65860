"""The failures file keeps each row's line in the input of the run that wrote it."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner

from bulk.cli import main
from tests._helpers import write_csv


def test_the_failures_file_carries_the_original_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, quick_sandbox: None
) -> None:
    monkeypatch.chdir(tmp_path)
    source = write_csv(
        tmp_path / "in.csv", "number,campaign",
        ["+14155550105,CUOGHIN", "+14155550142,CUOGHIN", "not a number,CUOGHIN"],
    )
    args = ["--sandbox", "--quiet", "--poll-interval", "0.1"]
    assert CliRunner().invoke(main, ["link", str(source), *args]).exit_code == 1
    failures = tmp_path / "in.csv.link.plivo-sandbox.failed.csv"
    frame = pl.read_csv(failures, infer_schema=False)
    assert frame.select("previous_line", "previous_outcome").rows() == [
        ("3", "failed"), ("4", "rejected")
    ]
    again = CliRunner().invoke(main, ["link", str(failures), *args])
    assert again.exit_code == 1, again.output
    refailed = pl.read_csv(tmp_path / f"{failures.name}.link.plivo-sandbox.failed.csv",
                           infer_schema=False)
    assert refailed.columns.count("previous_line") == 1
    assert refailed.get_column("previous_line").to_list() == ["2", "3"]
