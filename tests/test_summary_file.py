"""``--summary-json`` replaces only a regular file: through a symlink it writes the target
(the link stays a link), a FIFO or a device is written in place (opened for writing, never
renamed over), and a regular file is replaced whole (a reader never sees half a summary)."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from bulk._summary_file import write_summary
from bulk.cli import main
from tests._helpers import write_csv


def _run(tmp_path: Path, summary: Path | str) -> Any:
    src = write_csv(tmp_path / "in.csv", "number,campaign", ["+14155550120,CUOGHIN"])
    return CliRunner().invoke(main, [
        "link", str(src), "--sandbox", "--dry-run", "--yes", "--quiet",
        "--report", str(tmp_path / "out.csv"), "--summary-json", str(summary),
    ])


def test_a_symlink_is_written_through_to_its_target_and_stays_a_link(tmp_path: Path) -> None:
    target = tmp_path / "kept" / "summary.json"
    target.parent.mkdir()
    target.write_text("old\n")
    link = tmp_path / "summary.json"
    link.symlink_to(target)
    result = _run(tmp_path, link)
    assert result.exit_code == 0, result.output
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert json.loads(target.read_text())["command"] == "link"
    assert sorted(p.name for p in target.parent.iterdir()) == ["summary.json"]  # no leftovers


def test_a_dangling_symlink_creates_its_target(tmp_path: Path) -> None:
    link = tmp_path / "summary.json"
    link.symlink_to(tmp_path / "made.json")
    assert _run(tmp_path, link).exit_code == 0
    assert link.is_symlink()
    assert json.loads((tmp_path / "made.json").read_text())["dry_run"] is True


def test_a_fifo_is_written_in_place_for_its_reader(tmp_path: Path) -> None:
    fifo = tmp_path / "summary.fifo"
    os.mkfifo(fifo)
    got: list[bytes] = []

    def read() -> None:
        with open(fifo, "rb") as pipe:  # blocks until the run opens it for writing
            got.append(pipe.read())

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    result = _run(tmp_path, fifo)
    reader.join(10)
    assert result.exit_code == 0, result.output
    assert stat.S_ISFIFO(fifo.lstat().st_mode)
    assert got and json.loads(got[0])["command"] == "link"


def test_a_symlink_to_dev_null_leaves_both_the_link_and_the_device(tmp_path: Path) -> None:
    link = tmp_path / "summary.json"
    link.symlink_to("/dev/null")
    result = _run(tmp_path, link)
    assert result.exit_code == 0, result.output
    assert link.is_symlink()
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)


@pytest.mark.skipif(os.geteuid() == 0, reason="as root, a failure would replace /dev/null")
def test_dev_null_itself_stays_a_character_device(tmp_path: Path) -> None:
    result = _run(tmp_path, "/dev/null")
    assert result.exit_code == 0, result.output
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)


def test_a_device_is_opened_in_place_not_replaced(tmp_path: Path) -> None:
    """/dev/null through the writer itself (no run: nothing to lose but the node)."""
    write_summary(Path("/dev/null"), "{}\n")
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)
    assert not list(Path("/dev").glob(".null.*.tmp"))


def test_a_regular_file_is_replaced_whole(tmp_path: Path) -> None:
    summary = tmp_path / "summary.json"
    summary.write_text("x" * 10_000)
    assert _run(tmp_path, summary).exit_code == 0
    assert json.loads(summary.read_text())["command"] == "link"


def test_a_link_to_the_runs_own_stdout_writes_the_summary_through_stdout(
    tmp_path: Path,
) -> None:
    """``/proc/self/fd/1`` (as ``/dev/stdout`` is) while stdout is a regular file: the file
    the shell opened holds the run's output and the summary, written through stdout itself
    (neither replaced nor written over)."""
    src = write_csv(tmp_path / "in.csv", "number,campaign", ["+14155550120,CUOGHIN"])
    link = tmp_path / "summary.json"
    link.symlink_to("/proc/self/fd/1")
    out = tmp_path / "out.txt"
    with open(out, "w") as stdout:
        inode = os.fstat(stdout.fileno()).st_ino
        done = subprocess.run(
            [sys.executable, "-m", "bulk", "link", str(src), "--sandbox", "--dry-run", "--yes",
             "--report", str(tmp_path / "r.csv"), "--summary-json", str(link)],
            stdout=stdout, stderr=subprocess.PIPE, timeout=60, cwd=tmp_path,
        )
    assert done.returncode == 0, done.stderr.decode()
    assert link.is_symlink() and os.stat(out).st_ino == inode
    text = out.read_text()
    start = text.index("{\n")
    summary, end = json.JSONDecoder().raw_decode(text, start)
    assert summary["dry_run"] is True
    assert "Plan:" in text[:start] + text[end:]  # the run's own output is all there
