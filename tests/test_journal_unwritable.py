"""A journal that cannot be written says why (its folder, or the file
itself), naming the path, exit 2; not "not a usable bulk journal".

Tests run as root, who writes through permission bits, so chmod cannot make these conditions.
What root really hits: a folder that is a regular file, a missing folder, and an immutable
folder or file (``chattr +i``: even root cannot create files in it or write it; skipped where
the filesystem or the container does not allow chattr).
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from bulk._errors import JournalError
from bulk._journal import Journal
from bulk.cli import main
from tests._helpers import write_csv


@pytest.fixture(autouse=True)
def _work_in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def immutable() -> Iterator[Callable[[Path], None]]:
    made: list[Path] = []

    def make(path: Path) -> None:
        done = subprocess.run(["chattr", "+i", str(path)], capture_output=True, check=False)
        if done.returncode != 0:
            pytest.skip(f"chattr +i is not available here: {done.stderr.decode().strip()}")
        made.append(path)

    yield make
    for path in made:
        subprocess.run(["chattr", "-i", str(path)], check=False)


def _said(text: str, output: str) -> bool:
    return "".join(text.split()) in "".join(output.split())


def _link(tmp_path: Path, journal: Path) -> Any:
    src = write_csv(tmp_path / "in.csv", "number", ["+14155550103"])
    return CliRunner().invoke(
        main,
        [
            "link",
            str(src),
            "--sandbox",
            "--campaign",
            "CUOGHIN",
            "--yes",
            "--quiet",
            "--report",
            str(tmp_path / "r.csv"),
            "--journal",
            str(journal),
        ],
    )


def test_a_journal_whose_folder_is_a_file_names_that_folder(tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("x")
    journal = tmp_path / "afile" / "run.journal"
    result = _link(tmp_path, journal)
    assert result.exit_code == 2, result.output
    assert _said(
        f"bulk: {journal}: cannot create the journal: {tmp_path / 'afile'} is not a folder",
        result.output,
    )
    assert "not a usable bulk journal" not in result.output


def test_a_journal_in_a_missing_folder_says_so(tmp_path: Path) -> None:
    journal = tmp_path / "nowhere" / "run.journal"
    with pytest.raises(JournalError, match=r"the folder .*nowhere does not exist"):
        Journal.open(journal, {"command": "link"})


def test_a_journal_in_a_read_only_folder_says_the_folder_is_not_writable(
    tmp_path: Path, immutable: Callable[[Path], None]
) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    immutable(folder)
    journal = folder / "run.journal"
    result = _link(tmp_path, journal)
    assert result.exit_code == 2, result.output
    assert _said(f"bulk: {journal}: the folder {folder} is not writable", result.output)
    assert "not a usable bulk journal" not in result.output


def test_a_read_only_journal_file_says_the_file_is_read_only(
    tmp_path: Path, immutable: Callable[[Path], None]
) -> None:
    journal = tmp_path / "run.journal"
    Journal.open(journal, {"command": "link"}).close()
    immutable(journal)
    with pytest.raises(JournalError, match="the journal file is read-only"):
        Journal.open(journal, {"command": "link"})
