"""Every CSV bulk writes opens in Excel as UTF-8 (it starts with a byte-order mark), and bulk
reads its own files back, the mark and all."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from bulk.cli import main
from tests._helpers import write_csv

BOM = b"\xef\xbb\xbf"


@pytest.fixture(autouse=True)
def _fast_sandbox(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, quick_sandbox: None
) -> None:
    monkeypatch.chdir(tmp_path)


def test_report_and_failures_start_with_a_bom_and_the_failures_file_is_read_back(
    tmp_path: Path,
) -> None:
    source = write_csv(
        tmp_path / "in.csv",
        "number,campaign,name",
        ["+14155550105,CUOGHIN,Zoë Martin", "+14155550142,CUOGHIN,Chloé Dubois"],
    )
    first = CliRunner().invoke(
        main, ["link", str(source), "--sandbox", "--quiet", "--poll-interval", "0.1"]
    )
    assert first.exit_code == 1, first.output  # +14155550142 always fails in the sandbox
    report = tmp_path / "in.csv.link.plivo-sandbox.report.csv"
    failures = tmp_path / "in.csv.link.plivo-sandbox.failed.csv"
    for written in (report, failures):
        data = written.read_bytes()
        assert data.startswith(BOM), written
        assert "Zoë Martin" in data.decode("utf-8") or written == failures
    assert "Chloé Dubois" in failures.read_bytes().decode("utf-8-sig")

    again = CliRunner().invoke(
        main, ["link", str(failures), "--sandbox", "--quiet", "--poll-interval", "0.1"]
    )
    assert again.exit_code == 1, again.output
    rereport = tmp_path / "in.csv.link.plivo-sandbox.failed.csv.link.plivo-sandbox.report.csv"
    text = rereport.read_bytes().decode("utf-8-sig")
    assert text.startswith("line,number,"), text[:40]
    assert "Chloé Dubois" in text and "rejected" not in text
