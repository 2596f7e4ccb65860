"""The whole pipeline through the CLI against the sandbox on loopback, faults on."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner

from bulk.cli import main
from tests._helpers import (
    CAMPAIGNS,
    FAST,
    PROVIDERS,
    ThreadedSandbox,
    assert_no_number_changed_twice,
    campaigns_file,
    read_report,
    run_cli,
    run_command,
    write_csv,
)

FAULTS = {
    "error_5xx_rate": 0.08,
    "reset_rate": 0.04,
    "truncated_rate": 0.04,
    "non_json_rate": 0.04,
    "hang_rate": 0.03,
    "hang_seconds": 2.0,
    "burst_429_rate": 0.03,
    "burst_429_length": 3,
    "after_rate": 0.5,
}


@pytest.fixture(autouse=True)
def _work_in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # default report/journal paths land in the test's folder


@pytest.mark.parametrize("provider", PROVIDERS)
def test_link_through_faults_ends_every_row_with_the_right_outcome(
    provider: str,
    tmp_path: Path,
    sandbox_factory: Callable[..., ThreadedSandbox],
    no_retry_waits: None,
) -> None:
    sb = sandbox_factory(seed=7, faults=FAULTS)
    regular = [f"+1415555{n:04d}" for n in range(103, 142)]
    rows = [f"{n},marketing,r{i}" for i, n in enumerate(regular)]
    rows += [
        "(415) 555-0100,marketing,pre",
        "4155550142,marketing,fails",
        "4155550143,marketing,stuck",
        "4155550144,marketing,unowned",
        "800-555-1234,marketing,tollfree",
    ]
    src = write_csv(tmp_path / "in.csv", "phone,campaign,tag", rows)
    result, report = run_command(sb, provider, tmp_path, "link", src)
    assert result.exit_code == 1, result.output
    got = read_report(report)
    assert len(got) == len(rows)
    by_tag = {r["tag"]: r for r in got.values()}
    for i in range(len(regular)):
        assert by_tag[f"r{i}"]["outcome"] == "linked", by_tag[f"r{i}"]
    assert by_tag["pre"]["outcome"] == "already"
    assert by_tag["fails"]["outcome"] == "failed"
    assert by_tag["stuck"]["outcome"] == "unknown"
    assert by_tag["unowned"]["outcome"] == "failed" and by_tag["unowned"]["reason"]
    assert (
        by_tag["tollfree"]["outcome"] == "rejected" and "toll_free" in by_tag["tollfree"]["reason"]
    )
    assert list(got) == sorted(got)  # input order
    assert_no_number_changed_twice(sb)
    counters = sb.counters()
    assert counters["totals"]["faults"] > 0  # the faults really struck


@pytest.mark.parametrize("provider", PROVIDERS)
def test_unlink_through_faults_unlinks_and_treats_not_linked_as_already(
    provider: str,
    tmp_path: Path,
    sandbox_factory: Callable[..., ThreadedSandbox],
    no_retry_waits: None,
) -> None:
    sb = sandbox_factory(seed=3, faults=FAULTS)
    linked = [f"+1312555{n:04d}" for n in range(150, 170)]  # pre-linked to alerts in the sandbox
    rows = [f"{n},alerts" for n in linked] + ["+13125550101,alerts"]
    src = write_csv(tmp_path / "cleanup.csv", "number,campaign_id", rows)
    result, report = run_command(sb, provider, tmp_path, "unlink", src)
    assert result.exit_code == 0, result.output
    got = read_report(report)
    outcomes = [r["outcome"] for r in got.values()]
    assert outcomes[:-1] == ["unlinked"] * 20
    assert outcomes[-1] == "already"
    assert_no_number_changed_twice(sb)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_move_through_faults_never_leaves_a_number_in_two_campaigns(
    provider: str,
    tmp_path: Path,
    sandbox_factory: Callable[..., ThreadedSandbox],
    no_retry_waits: None,
) -> None:
    sb = sandbox_factory(seed=5, faults=FAULTS)
    moving = [f"+1212555{n:04d}" for n in range(110, 130)]  # pre-linked to legacy
    src = write_csv(tmp_path / "migration.csv", "number", moving)
    result, report = run_command(
        sb, provider, tmp_path, "move", src, "--from", "legacy", "--to", "alerts"
    )
    assert result.exit_code == 0, result.output
    assert [r["outcome"] for r in read_report(report).values()] == ["moved"] * 20
    assert_no_number_changed_twice(sb)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_dry_run_plans_without_sending_anything_that_changes_state(
    provider: str, tmp_path: Path, sandbox_factory: Callable[..., ThreadedSandbox]
) -> None:
    sb = sandbox_factory()
    src = write_csv(
        tmp_path / "in.csv", "number,campaign", ["+14155550100,marketing", "+14155550120,marketing"]
    )
    result = run_cli(
        sb,
        provider,
        [
            "link",
            str(src),
            "--campaigns",
            str(campaigns_file(tmp_path, provider)),
            "--dry-run",
            *FAST,
        ],
    )
    assert result.exit_code == 0, result.output
    assert "Nothing was sent" in result.output
    totals = sb.counters()["totals"]
    assert all(
        totals.get(k, 0) == 0 for k in ("link_accepted", "attach_accepted", "unlink_accepted")
    )
    assert not any(
        k.endswith((".link", ".attach", ".unlink", ".detach")) for k in sb.counters()["endpoints"]
    )


@pytest.mark.parametrize("provider", PROVIDERS)
def test_429_storm_pauses_every_sender_and_every_row_still_links(
    provider: str,
    tmp_path: Path,
    sandbox_factory: Callable[..., ThreadedSandbox],
    no_retry_waits: None,
) -> None:
    # AgentMessage answers 429 with Retry-After (whole seconds): fewer, shorter storms
    burst = {"burst_429_rate": 0.3, "burst_429_length": 3}
    if provider == "agentmessage":
        burst = {"burst_429_rate": 0.08, "burst_429_length": 2}
    sb = sandbox_factory(seed=2, faults=burst)
    rows = [f"+1650555{n:04d},marketing" for n in range(100, 124)]
    src = write_csv(tmp_path / "in.csv", "number,campaign", rows)
    result, report = run_command(sb, provider, tmp_path, "link", src, "--batch-size", "5")
    assert result.exit_code == 0, result.output
    assert {r["outcome"] for r in read_report(report).values()} == {"linked"}
    sent_429 = sum(ep["status"].get("429", 0) for ep in sb.counters()["endpoints"].values())
    assert sent_429 > 0
    assert "429s: 0" not in result.output


def test_status_is_read_only_and_reports_each_numbers_state(
    tmp_path: Path, sandbox_factory: Callable[..., ThreadedSandbox]
) -> None:
    sb = sandbox_factory()
    src = write_csv(
        tmp_path / "in.csv", "number,campaign", ["+14155550100,marketing", "+14155550120,marketing"]
    )
    report = tmp_path / "status.json"
    result = run_cli(
        sb,
        "plivo",
        [
            "status",
            str(src),
            "--campaigns",
            str(campaigns_file(tmp_path, "plivo")),
            "--report",
            str(report),
            *FAST,
        ],
    )
    frame = pl.read_json(report)
    assert frame.get_column("outcome").to_list() == ["linked", "unlinked"]
    assert frame.get_column("provider_status").to_list()[0] == "COMPLETED"
    assert result.exit_code == 0
    assert sb.counters()["totals"].get("link_accepted", 0) == 0
    # "unlinked" rests on absence, which a paged list only hints at: one exact read confirmed it
    assert sb.counters()["endpoints"]["plivo.get"]["requests"] == 1


@pytest.mark.parametrize("provider", PROVIDERS)
def test_tokens_never_reach_output_report_failures_or_journal(
    provider: str,
    tmp_path: Path,
    sandbox_factory: Callable[..., ThreadedSandbox],
    no_retry_waits: None,
) -> None:
    sb = sandbox_factory(seed=4, faults={"error_5xx_rate": 0.5})
    src = write_csv(
        tmp_path / "in.csv", "number,campaign", ["+14155550120,marketing", "+14155550144,marketing"]
    )
    failures = ["--failures", str(tmp_path / "f.csv")]
    result, _ = run_command(
        sb, provider, tmp_path, "link", src, *failures, "--verbose", "--attempts", "10"
    )
    token = sb.plivo_auth_token if provider == "plivo" else sb.agentmessage_api_key
    assert result.exit_code == 1, result.output
    assert re.search(r" 5\d\d transient \d+ ms", result.stderr)  # the request log is on
    assert token not in result.output
    assert token not in result.stderr
    for path in tmp_path.iterdir():
        assert token.encode() not in path.read_bytes(), path


def test_wrong_credentials_stop_the_run_with_exit_2_and_no_token_in_the_message(
    tmp_path: Path, sandbox_factory: Callable[..., ThreadedSandbox]
) -> None:
    sb = sandbox_factory()
    src = write_csv(tmp_path / "in.csv", "number,campaign", ["+14155550120,CUOGHIN"])
    result = CliRunner().invoke(
        main,
        ["link", str(src), "--base-url", sb.base_url, *FAST],
        env={"PLIVO_AUTH_ID": sb.plivo_auth_id, "PLIVO_AUTH_TOKEN": "wrong-secret-value"},
    )
    assert result.exit_code == 2
    assert "refused the credentials" in result.output
    assert "wrong-secret-value" not in result.output


def test_unreachable_provider_exits_2(tmp_path: Path) -> None:
    src = write_csv(tmp_path / "in.csv", "number,campaign", ["+14155550120,CUOGHIN"])
    result = CliRunner().invoke(
        main,
        ["link", str(src), "--base-url", "http://127.0.0.1:9", "--attempts", "1", *FAST],
        env={"PLIVO_AUTH_ID": "MASANDBOXAUTHID00001", "PLIVO_AUTH_TOKEN": "x"},
    )
    assert result.exit_code == 2, result.output
    assert "cannot connect" in result.output


def test_plain_http_to_a_remote_host_is_refused(tmp_path: Path) -> None:
    src = write_csv(tmp_path / "in.csv", "number,campaign", ["+14155550120,CUOGHIN"])
    result = CliRunner().invoke(
        main,
        ["link", str(src), "--base-url", "http://api.example.com", *FAST],
        env={"PLIVO_AUTH_ID": "MASANDBOXAUTHID00001", "PLIVO_AUTH_TOKEN": "x"},
    )
    assert result.exit_code == 2
    assert "refusing plain http" in result.output


def test_missing_credentials_exit_2_with_a_hint(tmp_path: Path) -> None:
    src = write_csv(tmp_path / "in.csv", "number,campaign", ["+14155550120,CUOGHIN"])
    result = CliRunner().invoke(
        main, ["link", str(src), *FAST], env={"PLIVO_AUTH_ID": "", "PLIVO_AUTH_TOKEN": ""}
    )
    assert result.exit_code == 2
    assert "PLIVO_AUTH_TOKEN" in result.output


def test_failures_file_feeds_the_next_run(
    tmp_path: Path, sandbox_factory: Callable[..., ThreadedSandbox]
) -> None:
    sb = sandbox_factory()
    src = write_csv(
        tmp_path / "in.csv",
        "number,campaign,store",
        ["+14155550121,marketing,a", "+14155550142,marketing,b", "=HYPERLINK(1),marketing,c"],
    )
    cf = campaigns_file(tmp_path, "plivo")
    failures = tmp_path / "f.csv"
    result = run_cli(
        sb,
        "plivo",
        [
            "link",
            str(src),
            "--campaigns",
            str(cf),
            "--report",
            str(tmp_path / "r.csv"),
            "--failures",
            str(failures),
            "--journal",
            str(tmp_path / "j"),
            *FAST,
        ],
    )
    assert result.exit_code == 1
    text = (tmp_path / "r.csv").read_text()
    assert "'=HYPERLINK(1)" in text  # neutralised for spreadsheets
    again = run_cli(
        sb,
        "plivo",
        [
            "link",
            str(failures),
            "--campaigns",
            str(cf),
            "--report",
            str(tmp_path / "r2.csv"),
            "--journal",
            str(tmp_path / "j2"),
            *FAST,
        ],
    )
    got = read_report(tmp_path / "r2.csv")
    assert [r["store"] for r in got.values()] == ["b", "c"]
    assert [r["previous_outcome"] for r in got.values()] == ["failed", "rejected"]
    assert again.exit_code == 1


def test_python_api_runs_a_job_against_the_in_process_sandbox(tmp_path: Path) -> None:
    from bulk import JobSpec, run_job_sync

    src = write_csv(
        tmp_path / "in.csv", "number,campaign", ["+14155550122,CUOGHIN", "+14155550100,CUOGHIN"]
    )
    result = run_job_sync(
        JobSpec(
            command="link",
            input=src,
            sandbox=True,
            poll_interval=0.3,
            report=tmp_path / "r.parquet",
            journal=tmp_path / "j",
        )
    )
    assert result.exit_code == 0
    assert result.counts["linked"] == 1 and result.counts["already"] == 1
    frame = pl.read_parquet(tmp_path / "r.parquet")
    assert frame.get_column("outcome").to_list() == ["linked", "already"]


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_number_in_another_campaign_is_neither_linked_away_nor_moved_from_the_wrong_one(
    provider: str, tmp_path: Path, sandbox_factory: Callable[..., ThreadedSandbox]
) -> None:
    sb = sandbox_factory()
    # +12125550110 and +12125550111 sit in "legacy" in the sandbox's default state
    rows = ["+12125550110,marketing,link,", "+12125550111,marketing,move,alerts"]
    src = write_csv(tmp_path / "in.csv", "number,campaign,action,from_campaign", rows)
    result, report = run_command(sb, provider, tmp_path, "apply", src)
    assert result.exit_code == 1, result.output
    got = list(read_report(report).values())
    assert [r["outcome"] for r in got] == ["failed", "failed"]
    legacy = CAMPAIGNS[provider]["legacy"]
    if provider == "agentmessage":
        assert f"in campaign {legacy}" in got[0]["reason"]
        assert "not in" in got[1]["reason"]
    for number in ("+12125550110", "+12125550111"):
        counters = sb.counters()["numbers"].get(number, {})
        assert counters.get("link_accepted", 0) == counters.get("attach_accepted", 0) == 0


def test_attempts_count_every_request_that_carried_the_row_retries_included(
    tmp_path: Path, sandbox_factory: Callable[..., ThreadedSandbox], no_retry_waits: None
) -> None:
    sb = sandbox_factory(seed=11, faults={"error_5xx_rate": 0.6, "endpoints": ["plivo.link"]})
    src = write_csv(tmp_path / "in.csv", "number,campaign", ["+14155550125,CUOGHIN"])
    report = tmp_path / "out.csv"
    result = run_cli(
        sb, "plivo", ["link", str(src), "--report", str(report), "--attempts", "10", *FAST]
    )
    assert result.exit_code == 0, result.output
    (row,) = read_report(report).values()
    link_requests = sb.counters()["endpoints"]["plivo.link"]["requests"]
    assert link_requests > 1  # the faults struck
    assert int(row["attempts"]) == link_requests


def test_a_report_path_bulk_cannot_write_is_refused_before_anything_is_sent(tmp_path: Path) -> None:
    src = write_csv(tmp_path / "in.csv", "number,campaign", ["+14155550120,CUOGHIN"])
    result = CliRunner().invoke(
        main, ["link", str(src), "--sandbox", "--report", "out.xlsx", *FAST]
    )
    assert result.exit_code == 2
    assert "unknown extension '.xlsx'" in result.output
    assert not (tmp_path / "out.xlsx").exists()
