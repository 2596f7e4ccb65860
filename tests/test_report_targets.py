"""Where a report or failures file goes: only a regular file is ever replaced."""

from __future__ import annotations

import os
from pathlib import Path

import polars as pl
import pytest

from bulk import _report
from bulk._errors import ConfigError

FRAME = pl.DataFrame({"line": [2], "number": ["+14155550100"], "outcome": ["linked"]})


def test_a_report_given_as_a_symlink_is_written_through_and_the_link_stays(
    tmp_path: Path,
) -> None:
    target = tmp_path / "kept" / "report.csv"
    target.parent.mkdir()
    target.write_text("old\n")
    link = tmp_path / "report.csv"
    link.symlink_to(target)
    _report.write(FRAME, link)
    assert link.is_symlink() and link.resolve() == target.resolve()
    assert "+14155550100" in target.read_text()


def test_a_dangling_symlink_makes_the_file_it_names(tmp_path: Path) -> None:
    link = tmp_path / "report.csv"
    link.symlink_to(tmp_path / "made.csv")
    _report.write(FRAME, link)
    assert link.is_symlink() and (tmp_path / "made.csv").is_file()


def test_a_fifo_or_device_is_refused_before_anything_is_sent(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)
    with pytest.raises(ConfigError, match="not a regular file"):
        _report.check_path(fifo, "--report")
    with pytest.raises(ConfigError, match="not a regular file"):
        _report.check_path(Path("/dev/null"), "--failures", (".csv", ""))
