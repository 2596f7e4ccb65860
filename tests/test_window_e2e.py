"""Send windows end to end: ``--send-until`` through the CLI against the sandbox over HTTP.

A window that closes mid-run defers the rows not yet sent (exit 3) and changes nothing for
them; the same command again, without a window, finishes the job from its journal and sends
nothing twice. A two-step move whose release went out before the window closed still gets its
link: the window never leaves a number in no campaign.
"""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from click.testing import CliRunner

from bulk.cli import main
from tests._helpers import (
    CAMPAIGNS,
    ThreadedSandbox,
    assert_no_number_changed_twice,
    campaigns_file,
    read_report,
    write_csv,
)

LINKING = [f"+1206555{n:04d}" for n in range(100, 140)]  # in no campaign at start
MOVING = [f"+1212555{n:04d}" for n in range(110, 130)]  # pre-linked to legacy
#: a request that starts just before the window closes still lands: this much slack
SLACK = 0.5
WINDOW = "window closed"


@pytest.fixture(autouse=True)
def _work_in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


def _window(seconds: float) -> tuple[str, float]:
    """An ISO 8601 ``--send-until`` this many seconds from now, and its epoch instant."""
    at = datetime.now().astimezone() + timedelta(seconds=seconds)
    return at.isoformat(timespec="milliseconds"), at.timestamp()


def _run(sb: ThreadedSandbox, provider: str, tmp_path: Path, args: list[str], *extra: str) -> Any:
    """``bulk ARGS`` slowly (one number per request, a low rate), with a report, a journal and
    a summary in tmp_path; ``extra`` (e.g. ``--send-until``) last."""
    opts = ["--campaigns", str(campaigns_file(tmp_path, provider))]
    opts += ["--report", str(tmp_path / "out.csv"), "--journal", str(tmp_path / "j")]
    opts += ["--summary-json", str(tmp_path / "summary.json")]
    opts += ["--batch-size", "1", "--rate", "8", "--concurrency", "8"]
    opts += ["--poll-interval", "0.2", "--settle-timeout", "10", "--yes", "--quiet"]
    return CliRunner().invoke(
        main,
        [*args, *opts, "--provider", provider, "--base-url", sb.base_url, *extra],
        env=sb.env(provider),
        catch_exceptions=False,
    )


def _report_in_order(tmp_path: Path, numbers: list[str]) -> dict[int, dict[str, Any]]:
    got = read_report(tmp_path / "out.csv")
    assert [r["e164"] for r in got.values()] == numbers  # one row per input row, in order
    assert list(got) == sorted(got)
    return got


def _summary_matches_report(tmp_path: Path, exit_code: int) -> dict[str, Any]:
    summary: dict[str, Any] = json.loads((tmp_path / "summary.json").read_text())
    outcomes = Counter(pl.read_csv(tmp_path / "out.csv", infer_schema=False)["outcome"])
    assert summary["counts"] == {o: outcomes.get(o, 0) for o in summary["counts"]}
    assert summary["exit_code"] == exit_code
    return summary


def _sent_by_the_window(journal: Path, closes: float) -> int:
    """Every change the provider accepted went out before the window closed (the journal's
    ``submitted_at``, stamped when the provider's answer came, has sub-second precision).
    Returns how many rows were submitted."""
    with sqlite3.connect(journal) as db:
        stamps = [s for (s,) in db.execute("SELECT submitted_at FROM rows") if s is not None]
    late = [s - closes for s in stamps if s > closes + SLACK]
    assert not late, f"{len(late)} changes left up to {max(late):.2f} s after the window closed"
    return len(stamps)


def _campaign_of(sb: ThreadedSandbox, provider: str, number: str) -> str | None:
    """The campaign the sandbox has the number in (AgentMessage: attached), or None."""
    state = sb.state()
    if provider == "plivo":
        for cid, campaign in state["plivo"]["campaigns"].items():
            if any(n["number"] == number for n in campaign["numbers"]):
                return str(cid)
        return None
    for entry in state["agentmessage"]["orgs"]["org_sandbox"]["numbers"]:
        if entry["number"] == number:
            return entry.get("campaign_id")
    return None


def _unchanged(sb: ThreadedSandbox, number: str) -> bool:
    counters = sb.counters()["numbers"].get(number, {})
    keys = ("link_accepted", "unlink_accepted", "attach_accepted", "detach_accepted")
    return all(counters.get(key, 0) == 0 for key in keys)


@pytest.mark.parametrize("provider", ["plivo", "agentmessage"])
def test_a_window_closing_mid_run_defers_the_unsent_rows_and_a_rerun_finishes_them_once(
    provider: str, tmp_path: Path, sandbox_factory: Callable[..., ThreadedSandbox]
) -> None:
    sb = sandbox_factory()
    campaign = CAMPAIGNS[provider]["marketing"]
    src = write_csv(tmp_path / "in.csv", "number,campaign", [f"{n},marketing" for n in LINKING])
    until, closes = _window(2.0)

    first = _run(sb, provider, tmp_path, ["link", str(src)], "--send-until", until)
    assert first.exit_code == 3, first.output
    rows = _report_in_order(tmp_path, LINKING)
    outcomes = Counter(r["outcome"] for r in rows.values())
    assert set(outcomes) == {"linked", "deferred"} and outcomes["linked"] and outcomes["deferred"]
    _summary_matches_report(tmp_path, 3)
    assert _sent_by_the_window(tmp_path / "j", closes) == outcomes["linked"]
    for row in rows.values():
        if row["outcome"] == "deferred":
            assert WINDOW in row["reason"] and not row["submitted_at"], row
            assert _unchanged(sb, row["e164"]) and _campaign_of(sb, provider, row["e164"]) is None
        else:
            assert _campaign_of(sb, provider, row["e164"]) == campaign

    second = _run(sb, provider, tmp_path, ["link", str(src)])
    assert second.exit_code == 0, second.output
    rows = _report_in_order(tmp_path, LINKING)
    assert [r["outcome"] for r in rows.values()] == ["linked"] * len(LINKING)
    assert not any(WINDOW in (r["reason"] or "") for r in rows.values())  # not stale
    _summary_matches_report(tmp_path, 0)
    assert all(_campaign_of(sb, provider, n) == campaign for n in LINKING)
    assert_no_number_changed_twice(sb)


def test_a_window_closing_between_a_moves_release_and_its_link_still_links_what_was_released(
    tmp_path: Path, sandbox_factory: Callable[..., ThreadedSandbox]
) -> None:
    # releases settle slowly: the window closes while released numbers await their link
    sb = sandbox_factory(settle_min=0.8, settle_max=1.2)
    legacy, alerts = CAMPAIGNS["plivo"]["legacy"], CAMPAIGNS["plivo"]["alerts"]
    src = write_csv(tmp_path / "migration.csv", "number", MOVING)
    move = ["move", str(src), "--from", "legacy", "--to", "alerts"]
    until, closes = _window(1.5)

    first = _run(sb, "plivo", tmp_path, move, "--send-until", until)
    assert first.exit_code == 3, first.output
    rows = _report_in_order(tmp_path, MOVING)
    outcomes = Counter(r["outcome"] for r in rows.values())
    assert set(outcomes) == {"moved", "deferred"} and outcomes["moved"] and outcomes["deferred"]
    _summary_matches_report(tmp_path, 3)
    counters = sb.counters()["numbers"]
    for row in rows.values():
        number = row["e164"]
        released = counters.get(number, {}).get("unlink_accepted", 0) == 1
        if released:  # its link went out after the window closed: never left in no campaign
            assert row["outcome"] == "moved", row
            assert _campaign_of(sb, "plivo", number) == alerts
        else:
            assert row["outcome"] == "deferred" and WINDOW in row["reason"], row
            assert _unchanged(sb, number) and _campaign_of(sb, "plivo", number) == legacy
    # some link went out after the window closed (the release settled after it): that is
    # the point of the test, not an accident of timing
    moved = [r for r in rows.values() if r["outcome"] == "moved"]
    assert max(datetime.fromisoformat(r["submitted_at"]).timestamp() for r in moved) > closes

    second = _run(sb, "plivo", tmp_path, move)
    assert second.exit_code == 0, second.output
    rows = _report_in_order(tmp_path, MOVING)
    assert [r["outcome"] for r in rows.values()] == ["moved"] * len(MOVING)
    assert not any(WINDOW in (r["reason"] or "") for r in rows.values())
    _summary_matches_report(tmp_path, 0)
    assert all(_campaign_of(sb, "plivo", n) == alerts for n in MOVING)
    assert_no_number_changed_twice(sb)


def test_a_job_files_send_until_defers_and_the_same_job_again_finishes(
    tmp_path: Path, sandbox_factory: Callable[..., ThreadedSandbox]
) -> None:
    sb = sandbox_factory()
    write_csv(tmp_path / "in.csv", "number,campaign_id", [f"{n},CUOGHIN" for n in LINKING])
    keys: dict[str, Any] = {
        "command": "link",
        "input": "in.csv",
        "base-url": sb.base_url,
        "rate": 8,
        "batch-size": 1,
        "concurrency": 8,
        "poll-interval": 0.2,
        "report": "out.csv",
        "journal": "run.journal",
        "summary-json": "summary.json",
        "send-until": "2s",
        "quiet": True,
    }
    job = tmp_path / "job.toml"
    job.write_text("".join(f"{k} = {json.dumps(v)}\n" for k, v in keys.items()))

    first = CliRunner().invoke(main, ["run", str(job)], env=sb.env("plivo"))
    assert first.exit_code == 3, first.output
    rows = _report_in_order(tmp_path, LINKING)
    deferred = [r for r in rows.values() if r["outcome"] == "deferred"]
    assert deferred and len(deferred) < len(LINKING)
    assert all(_unchanged(sb, r["e164"]) for r in deferred)
    assert _summary_matches_report(tmp_path, 3)["counts"]["deferred"] == len(deferred)

    # a new window for this run, given after the file (it overrides the file's)
    second = CliRunner().invoke(main, ["run", str(job), "--send-until", "1h"], env=sb.env("plivo"))
    assert second.exit_code == 0, second.output
    rows = _report_in_order(tmp_path, LINKING)
    assert [r["outcome"] for r in rows.values()] == ["linked"] * len(LINKING)
    assert_no_number_changed_twice(sb)
