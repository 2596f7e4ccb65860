"""Rows the send window defers: never sent, so no request counted and no settled time; and a
window that could never open is refused before anything is read.

A deferred row's ``attempts`` is 0 (a request that waited for its turn when the window closed
never left), its ``settled_at`` is empty, and over a run and its resume the rows' attempts add
up to the link requests the sandbox received.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from click.testing import CliRunner

from bulk import ConfigError
from bulk._window import parse_send_until
from bulk.cli import main
from tests._helpers import ThreadedSandbox, write_csv

NUMBERS = [f"+1206555{n:04d}" for n in range(200, 216)]  # in no campaign at start


@pytest.fixture(autouse=True)
def _work_in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


def _link(sb: ThreadedSandbox, src: Path, *extra: str) -> Any:
    """``bulk link`` one number per request at 10/s with 5 workers, so that when the window
    closes several requests are waiting for their turn at the rate limiter."""
    opts = ["--report", "out.csv", "--journal", "j", "--batch-size", "1", "--rate", "10"]
    opts += ["--concurrency", "5", "--poll-interval", "0.1", "--yes", "--quiet"]
    return CliRunner().invoke(
        main, ["link", str(src), *opts, "--base-url", sb.base_url, *extra], env=sb.env("plivo")
    )


def _rows() -> list[dict[str, Any]]:
    return list(pl.read_csv("out.csv", infer_schema=False).iter_rows(named=True))


def _links_received(sb: ThreadedSandbox) -> int:
    return int(sb.counters()["endpoints"]["plivo.link"]["requests"])


def test_deferred_rows_count_no_attempt_and_have_no_settled_time(
    tmp_path: Path, sandbox_factory: Callable[..., ThreadedSandbox]
) -> None:
    sb = sandbox_factory()
    src = write_csv(tmp_path / "in.csv", "number,campaign_id", [f"{n},CUOGHIN" for n in NUMBERS])
    for run in ("first", "resumed"):
        result = _link(sb, src, "--send-until", "0.3s")
        assert result.exit_code == 3, (run, result.output)
        rows = _rows()
        deferred = [r for r in rows if r["outcome"] == "deferred"]
        assert deferred and len(deferred) < len(rows), run
        for row in deferred:
            assert row["attempts"] == "0" and not row["settled_at"], (run, row)
            assert not row["submitted_at"], (run, row)
        assert sum(int(r["attempts"]) for r in rows) == _links_received(sb), run


def test_a_moment_already_past_is_refused() -> None:
    past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    with pytest.raises(ConfigError, match="has passed"):
        parse_send_until(past)
    with pytest.raises(ConfigError, match="above 0"):
        parse_send_until("0s")


@pytest.mark.parametrize("when", ["2020-01-01T06:00:00Z", "2020-01-01T06:00:00+02:00", "0m"])
def test_a_window_that_could_never_open_stops_the_run_before_anything_is_read(
    tmp_path: Path, when: str
) -> None:
    src = write_csv(tmp_path / "in.csv", "number,campaign_id", ["+12065550300,CUOGHIN"])
    result = CliRunner().invoke(
        main,
        ["link", str(src), "--sandbox", "--yes", "--quiet", "--report", "out.csv",
         "--journal", "j", "--send-until", when],
    )
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "--send-until" in lines[0], result.output
    assert not Path("out.csv").exists() and not Path("j").exists()


def test_a_job_files_send_until_already_past_is_refused(tmp_path: Path) -> None:
    write_csv(tmp_path / "in.csv", "number,campaign_id", ["+12065550300,CUOGHIN"])
    job = tmp_path / "job.toml"
    job.write_text(
        'command = "link"\ninput = "in.csv"\nsandbox = true\nreport = "out.csv"\n'
        "send-until = 2020-01-01T06:00:00Z\n"
    )
    result = CliRunner().invoke(main, ["run", str(job)])
    assert result.exit_code == 2, result.output
    assert "--send-until" in result.output and "passed" in result.output
    assert not Path("out.csv").exists()
