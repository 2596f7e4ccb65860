"""A journal is held by its file, not by the name a run gives it: a second run through a hard
link (or a symlink) to a journal in use is refused with exit 75, as on the same path."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from bulk import JournalBusy
from bulk._journal import Journal, exclusive
from bulk.cli import main
from tests._helpers import ThreadedSandbox, write_csv

FINGERPRINT = {"command": "link", "input": "in.csv"}


def test_a_hard_link_to_a_journal_that_existed_before_the_run_is_refused(tmp_path: Path) -> None:
    journal = tmp_path / "run.journal"
    Journal.open(journal, FINGERPRINT).close()
    other = tmp_path / "elsewhere"
    other.mkdir()
    os.link(journal, other / "same.journal")
    with exclusive(journal):
        with pytest.raises(JournalBusy, match="in use by another run") as busy:
            with exclusive(other / "same.journal"):
                pass
        assert busy.value.exit_code == 75
    with exclusive(other / "same.journal"):  # released: free again, by either name
        pass


def test_a_hard_link_made_to_a_journal_the_run_created_is_refused(tmp_path: Path) -> None:
    journal = tmp_path / "run.journal"
    with exclusive(journal):
        opened = Journal.open(journal, FINGERPRINT)  # the run creates its journal here
        os.link(journal, tmp_path / "link.journal")
        with pytest.raises(JournalBusy):
            with exclusive(tmp_path / "link.journal"):
                pass
        opened.close()


def test_a_symlink_to_a_journal_in_use_is_still_refused(tmp_path: Path) -> None:
    journal = tmp_path / "run.journal"
    (tmp_path / "alias.journal").symlink_to(journal)
    with exclusive(journal), pytest.raises(JournalBusy):
        with exclusive(tmp_path / "alias.journal"):
            pass


def _settled(journal: Path) -> int:
    try:
        with sqlite3.connect(journal) as db:
            return int(db.execute("SELECT count(*) FROM rows WHERE state != 'planned'")
                       .fetchone()[0])
    except sqlite3.Error:
        return 0


def test_a_second_run_through_a_hard_link_to_the_journal_exits_75(
    tmp_path: Path, sandbox_factory: Callable[..., ThreadedSandbox]
) -> None:
    sb = sandbox_factory(settle_min=0.3, settle_max=0.8)
    numbers = [f"+1206555{n:04d}" for n in range(100, 160)]
    src = write_csv(tmp_path / "in.csv", "number,campaign_id", [f"{n},CUOGHIN" for n in numbers])
    journal = tmp_path / "run.journal"
    args = ["link", str(src), "--base-url", sb.base_url, "--rate", "20", "--batch-size", "1",
            "--poll-interval", "0.3", "--settle-timeout", "20", "--yes", "--quiet",
            "--report", str(tmp_path / "report.csv")]
    first = subprocess.Popen([sys.executable, "-m", "bulk", *args, "--journal", str(journal)],
                             env={**os.environ, **sb.env("plivo")}, cwd=tmp_path,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while _settled(journal) < 5:  # the first run made its journal and is sending
            assert first.poll() is None and time.monotonic() < deadline, "no progress"
            time.sleep(0.05)
        link = tmp_path / "link.journal"
        os.link(journal, link)
        sent = sum(c["requests"] for c in sb.counters()["endpoints"].values())
        second = CliRunner().invoke(main, [*args, "--journal", str(link)], env=sb.env("plivo"))
        assert second.exit_code == 75, second.output
        assert "in use by another run" in second.stderr
    finally:
        _, err = first.communicate(timeout=120)
    assert first.returncode == 0, err.decode()
    assert sent > 0
    for number, counters in sb.counters()["numbers"].items():
        assert counters.get("link_accepted", 0) <= 1, (number, counters)
