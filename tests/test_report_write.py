"""The one report writer: format by extension, formulas neutralised, written atomically."""

from __future__ import annotations

import json
import os
from pathlib import Path

import polars as pl
import pytest

from bulk import _report

FRAME = pl.DataFrame({"line": [2, 3], "reason": ["=HYPERLINK(1)", "+14155550100"]})


def test_csv_neutralises_formulas_and_keeps_plain_numbers(tmp_path: Path) -> None:
    text = _report.write(FRAME, tmp_path / "r.csv").read_text()
    assert text.splitlines() == ["line,reason", "2,'=HYPERLINK(1)", "3,+14155550100"]


def test_csv_bom_only_when_asked(tmp_path: Path) -> None:
    assert not (_report.write(FRAME, tmp_path / "a.csv").read_bytes().startswith(b"\xef\xbb\xbf"))
    assert (
        _report.write(FRAME, tmp_path / "b.csv", bom=True).read_bytes().startswith(b"\xef\xbb\xbf")
    )


@pytest.mark.parametrize("name", ["r.json", "r.JSONL", "r.ndjson", "r.parquet"])
def test_other_formats_by_extension_keep_cells_as_they_are(tmp_path: Path, name: str) -> None:
    path = _report.write(FRAME, tmp_path / name)
    if name.endswith(".parquet"):
        back = pl.read_parquet(path)
    elif name.endswith(".json"):
        back = pl.DataFrame(json.loads(path.read_text()))
    else:
        back = pl.DataFrame([json.loads(line) for line in path.read_text().splitlines()])
    assert back.to_dicts() == FRAME.to_dicts()


def test_a_failed_write_leaves_the_old_report_and_no_temporary_file(tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    path.write_text("old")
    unwritable = pl.DataFrame({"x": [object()]}, schema={"x": pl.Object})
    with pytest.raises(Exception):  # noqa: B017 - whatever polars raises for an Object column
        _report.write(unwritable, path)
    assert path.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.json"]


def test_the_report_gets_ordinary_permissions_and_its_folder_is_made(tmp_path: Path) -> None:
    path = _report.write(FRAME, tmp_path / "deep" / "r.csv")
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask
    assert [p.name for p in path.parent.iterdir()] == ["r.csv"]
