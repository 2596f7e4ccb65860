"""The report is the truth: over real HTTP, faults before and after effect at about
18 % of requests, under the sandbox's default and its stricter readings (``strict=True``: a
retried unlink refused while one is under way, a new link over a FAILED one refused or
accepted, lists that shift while read, a failed attach restarted or not), on both providers.

Each test compares every report row with the sandbox's final state (read through its admin
API), and the sandbox's counters with "no number changed twice".
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests._helpers import (
    CAMPAIGNS,
    FAST,
    PROVIDERS,
    ThreadedSandbox,
    assert_no_number_changed_twice,
    assert_rows_match_the_sandbox,
    behind_proxy,
    campaigns_file,
    read_report,
    run_and_compare,
    run_command,
    where,
    write_csv,
)

FAULTS = {
    "error_5xx_rate": 0.07,
    "reset_rate": 0.03,
    "truncated_rate": 0.03,
    "non_json_rate": 0.03,
    "hang_rate": 0.02,
    "hang_seconds": 1.0,
    "burst_429_rate": 0.02,
    "burst_429_length": 3,
    "after_rate": 0.5,
}
READINGS = [pytest.param(False, id="default"), pytest.param(True, id="strict")]


def _sandbox(factory: Callable[..., ThreadedSandbox], strict: bool, seed: int) -> ThreadedSandbox:
    return factory(seed=seed, faults=FAULTS, strict=strict, fail_rate=0.1)


def _campaign(provider: str, alias: str) -> str:
    return CAMPAIGNS[provider][alias]


@pytest.mark.parametrize("strict", READINGS)
@pytest.mark.parametrize("provider", PROVIDERS)
def test_link_report_equals_the_sandbox_and_no_number_changes_twice(
    provider: str,
    strict: bool,
    tmp_path: Path,
    sandbox_factory: Callable[..., ThreadedSandbox],
    no_retry_waits: None,
) -> None:
    sb = _sandbox(sandbox_factory, strict, seed=11)
    numbers = [f"+1650555{n:04d}" for n in range(100, 140)]
    rows = [f"{n},marketing" for n in numbers] + ["+14155550142,marketing"]
    src = write_csv(tmp_path / "in.csv", "number,campaign", rows)
    # batches of 10: enough requests (Plivo's are few: no campaign read, 41 numbers in one
    # campaign) that the faults surely meet some
    report = run_and_compare(sb, provider, tmp_path, "link", src, "--batch-size", "10")
    assert sb.counters()["totals"]["faults"] > 0
    outcomes = {r["outcome"] for r in report.values()}
    assert "linked" in outcomes


@pytest.mark.parametrize("strict", READINGS)
@pytest.mark.parametrize("provider", PROVIDERS)
def test_unlink_report_equals_the_sandbox_and_never_unlinked_while_linked(
    provider: str,
    strict: bool,
    tmp_path: Path,
    sandbox_factory: Callable[..., ThreadedSandbox],
    no_retry_waits: None,
) -> None:
    sb = _sandbox(sandbox_factory, strict, seed=13)
    linked = [f"+1312555{n:04d}" for n in range(150, 170)]  # pre-linked to alerts
    linked += [f"+1212555{n:04d}" for n in range(110, 130)]  # pre-linked to legacy
    rows = [f"{n},{'alerts' if n.startswith('+1312') else 'legacy'}" for n in linked]
    src = write_csv(tmp_path / "cleanup.csv", "number,campaign", rows)
    report = run_and_compare(sb, provider, tmp_path, "unlink", src)
    assert sum(r["outcome"] == "unlinked" for r in report.values()) >= 30


@pytest.mark.parametrize("strict", READINGS)
@pytest.mark.parametrize("provider", PROVIDERS)
def test_move_report_equals_the_sandbox_and_says_when_a_number_is_in_no_campaign(
    provider: str,
    strict: bool,
    tmp_path: Path,
    sandbox_factory: Callable[..., ThreadedSandbox],
    no_retry_waits: None,
) -> None:
    sb = _sandbox(sandbox_factory, strict, seed=17)
    moving = [f"+1212555{n:04d}" for n in range(110, 130)]  # pre-linked to legacy
    src = write_csv(tmp_path / "migration.csv", "number", moving)
    report = run_and_compare(
        sb, provider, tmp_path, "move", src, "--from", "legacy", "--to", "alerts"
    )
    failures = tmp_path / "out.failed.csv"
    if failures.exists():  # a released move's failures row is a link to the new campaign
        refeed = failures.read_text()
        for row in report.values():
            if (row["reason"] or "").startswith("unlinked from"):
                assert f"{row['number']},{_campaign(provider, 'alerts')},link" in refeed


@pytest.mark.parametrize("strict", READINGS)
@pytest.mark.parametrize("provider", PROVIDERS)
def test_apply_of_mixed_actions_report_equals_the_sandbox(
    provider: str,
    strict: bool,
    tmp_path: Path,
    sandbox_factory: Callable[..., ThreadedSandbox],
    no_retry_waits: None,
) -> None:
    sb = _sandbox(sandbox_factory, strict, seed=19)
    rows = [f"+1650555{n:04d},marketing,link," for n in range(100, 115)]
    rows += [f"+1312555{n:04d},alerts,unlink," for n in range(150, 160)]
    rows += [f"+1212555{n:04d},alerts,move,legacy" for n in range(110, 120)]
    src = write_csv(tmp_path / "apply.csv", "number,campaign,action,from_campaign", rows)
    run_and_compare(sb, provider, tmp_path, "apply", src)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_an_unlink_that_never_settles_ends_unknown_never_unlinked(
    provider: str,
    tmp_path: Path,
    sandbox_factory: Callable[..., ThreadedSandbox],
    no_retry_waits: None,
) -> None:
    sb = sandbox_factory(seed=23, strict=True, settle_min=0.05, settle_max=0.2)
    stuck = "+14155550143"  # the sandbox never settles any operation on it
    src = write_csv(tmp_path / "one.csv", "number,campaign", [f"{stuck},marketing"])
    linked, _ = run_command(sb, provider, tmp_path, "link", src, "--settle-timeout", "1")
    assert linked.exit_code == 1, linked.output
    (tmp_path / "j").unlink()
    result, path = run_command(sb, provider, tmp_path, "unlink", src, "--settle-timeout", "1.5")
    assert result.exit_code == 1, result.output
    (row,) = read_report(path).values()
    assert row["outcome"] == "unknown", row
    # still in the campaign (Plivo) or its detach still pending (AgentMessage): not unlinked
    assert where(sb, provider).get(stuck), where(sb, provider)


def test_a_paged_list_that_shifts_while_numbers_settle_never_ends_an_unlink_early(
    tmp_path: Path, sandbox_factory: Callable[..., ThreadedSandbox]
) -> None:
    """150 numbers linked in one campaign, a third of them slow to unlink (well
    past the run's deadline), entries moving as they change while the campaign is read by
    offset: skipped entries must never count as unlinked (absence is only a hint). Every
    ``unlinked`` row is gone at the sandbox, the slow ones end ``unknown``."""
    numbers = [f"+1650555{n:04d}" for n in range(100, 200)]
    numbers += [f"+1206555{n:04d}" for n in range(100, 150)]
    links = [{"number": n, "campaign_id": "CUOGHIN", "status": "COMPLETED"} for n in numbers]
    state = tmp_path / "state.json"
    state.write_text(json.dumps({"plivo": {"links": links}}))
    sb = sandbox_factory(
        seed=9,
        strict=True,
        settle_min=0.3,
        settle_max=2.0,
        slow_tail_rate=0.3,
        slow_tail_min=60.0,
        slow_tail_max=90.0,
        state_file=state,
        faults={"latency_min": 0.01, "latency_max": 0.08},
    )
    src = write_csv(tmp_path / "in.csv", "number,campaign", [f"{n},marketing" for n in numbers])
    result, path = run_command(
        sb, "plivo", tmp_path, "unlink", src, "--settle-timeout", "5", "--poll-interval", "0.1"
    )
    assert result.exit_code == 1, result.output
    report = read_report(path)
    now = where(sb, "plivo")
    outcomes = {r["outcome"] for r in report.values()}
    assert outcomes == {"unlinked", "unknown"}, outcomes
    for row in report.values():
        still = "CUOGHIN" in now.get(row["e164"], {})
        assert (row["outcome"] == "unknown") is still, (row, now.get(row["e164"]))


def _spawn(sb: ThreadedSandbox, provider: str, tmp_path: Path, src: Path) -> list[str]:
    rate = ["--rate", "30"]
    args = [sys.executable, "-m", "bulk", "link", str(src), "--provider", provider]
    args += ["--campaigns", str(campaigns_file(tmp_path, provider)), "--base-url", sb.base_url]
    args += ["--report", str(tmp_path / "out.csv"), "--journal", str(tmp_path / "j")]
    return [*args, *FAST, "--concurrency", "2", "--settle-timeout", "8", *rate]


@pytest.mark.parametrize("provider", PROVIDERS)
def test_sigkill_under_faults_and_strict_readings_then_resume_changes_nothing_twice(
    provider: str, tmp_path: Path, sandbox_factory: Callable[..., ThreadedSandbox]
) -> None:
    sb = _sandbox(sandbox_factory, True, seed=29)
    numbers = [f"+1650555{n:04d}" for n in range(100, 140)]
    src = write_csv(tmp_path / "in.csv", "number,campaign", [f"{n},marketing" for n in numbers])
    command = _spawn(sb, provider, tmp_path, src)
    env = {**os.environ, **sb.env(provider)}
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        totals = sb.counters()["totals"]
        if totals.get("link_accepted", 0) + totals.get("attach_accepted", 0) >= 8:
            break
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    done = subprocess.run(command, env=env, capture_output=True, timeout=120)
    assert done.returncode in (0, 1), done.stderr.decode()
    report = read_report(tmp_path / "out.csv")
    assert len(report) == len(numbers)
    assert_rows_match_the_sandbox(sb, provider, report, CAMPAIGNS[provider])
    assert_no_number_changed_twice(sb)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_change_whose_answer_is_lost_is_read_not_resent_even_when_it_settled_failed(
    provider: str,
    tmp_path: Path,
    sandbox_factory: Callable[..., ThreadedSandbox],
    no_retry_waits: None,
) -> None:
    """Every link/attach lands, then hangs past the client's
    timeout; meanwhile it settles FAILED, and the provider would take a resend as a new
    change. bulk reads the number instead, and reports the failure it finds."""
    endpoint = "plivo.link" if provider == "plivo" else "agentmessage.attach"
    faults = {"hang_rate": 1.0, "hang_seconds": 1.5, "after_rate": 1.0, "endpoints": [endpoint]}
    sb = sandbox_factory(seed=31, faults=faults, fail_rate=1.0, settle_min=0.05, settle_max=0.1)
    numbers = [f"+1650555{n:04d}" for n in range(100, 104)]
    src = write_csv(tmp_path / "in.csv", "number,campaign", [f"{n},marketing" for n in numbers])
    report = run_and_compare(sb, provider, tmp_path, "link", src)
    for row in report.values():
        assert row["outcome"] == "failed", row
        assert "not sent again" in (row["reason"] or ""), row


def test_counts_that_lag_the_list_never_leave_settled_links_unknown(
    tmp_path: Path, sandbox_factory: Callable[..., ThreadedSandbox]
) -> None:
    """A campaign's counts said 20 numbers (as at the planning read) while 80 were listed:
    the whole reads stopped at the count, missed the 60 links just made, and every one of
    them ended ``unknown`` at the settle timeout though all had settled."""
    sb = sandbox_factory(seed=5, settle_min=0.05, settle_max=0.3)
    numbers = [f"+1650555{n:04d}" for n in range(100, 160)]
    src = write_csv(tmp_path / "in.csv", "number,campaign", [f"{n},alerts" for n in numbers])
    frozen: dict[str, Any] = {}

    def freeze(path: str, data: dict[str, Any]) -> dict[str, Any]:
        """Each campaign's counts as they were the first time it was read."""
        if "phone_numbers_summary" in data:
            campaign = path.split("/Number/")[0]
            counts = data["phone_numbers_summary"]
            data["phone_numbers_summary"] = frozen.setdefault(campaign, counts)
        return data

    with behind_proxy(sb, page=freeze) as lagging:  # alerts (CRIGC80) holds 20 already
        report = run_and_compare(lagging, "plivo", tmp_path, "link", src)
    assert {row["outcome"] for row in report.values()} == {"linked"}, report


def test_a_list_that_ignores_its_offset_stops_the_run_with_one_line_not_a_loop(
    tmp_path: Path, sandbox_factory: Callable[..., ThreadedSandbox]
) -> None:
    """Every page of the list was its first page (a provider ignoring ``offset``): a full
    first page made bulk ask for the next one forever, at the full rate, and the run never
    ended. Now such a list is no usable answer: planning gives up with a line naming it, and
    nothing is sent."""
    sb = sandbox_factory(seed=5)
    numbers = [f"+1650555{n:04d}" for n in range(100, 105)]
    src = write_csv(tmp_path / "in.csv", "number,campaign", [f"{n},alerts" for n in numbers])
    with behind_proxy(sb, path=lambda p: re.sub(r"offset=\d+", "offset=0", p)) as deaf:
        result, _ = run_command(deaf, "plivo", tmp_path, "link", src)
    assert result.exit_code not in (0, 1), result.output
    assert "does not advance" in result.output and "Traceback" not in result.output
    assert sb.counters()["totals"].get("link_accepted", 0) == 0
