"""``bulk sync INPUT``: the input is each named campaign's desired membership."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from click.testing import CliRunner

from bulk.cli import main
from tests._helpers import CAMPAIGNS, PROVIDERS, ThreadedSandbox, change_requests, write_csv

FAST = [
    "--poll-interval", "0.2",
    "--settle-timeout", "4",
    "--timeout", "0.5",
    "--backoff-base", "0.05",
    "--resend-delay", "0.3",
    "--yes",
    "--quiet",
]  # fmt: skip
#: marketing: one already there, one missing, one held by legacy (a named campaign: moved);
#: legacy: two it holds. Seeded: marketing holds 0100-0102, legacy 2125550110-0129.
DESIRED = [
    "4155550100,marketing",
    "4155550103,marketing",
    "2125550110,marketing",
    "2125550111,legacy",
    "2125550112,legacy",
]
LEGACY_SEEDED = {f"+1212555{n:04d}" for n in range(110, 130)}


@pytest.fixture(autouse=True)
def _work_in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


def sync(sb: ThreadedSandbox, provider: str, *extra: str) -> Any:
    campaigns = [f"{cid},{alias}" for alias, cid in CAMPAIGNS[provider].items()]
    write_csv(Path("campaigns.csv"), "campaign_id,alias", campaigns)
    write_csv(Path("in.csv"), "number,campaign", DESIRED)
    args = ["sync", "in.csv", "--campaigns", "campaigns.csv", "--report", "out.csv"]
    args += ["--provider", provider, "--base-url", sb.base_url, *extra, *FAST]
    rate = ["--rate", "60"] if provider == "agentmessage" else []
    return CliRunner().invoke(main, [*args, *rate], env=sb.env(provider))


def members(sb: ThreadedSandbox, provider: str) -> dict[str, set[str]]:
    """Each campaign's numbers (by alias), as the sandbox holds them."""
    alias = {cid: name for name, cid in CAMPAIGNS[provider].items()}
    held: dict[str, set[str]] = {name: set() for name in CAMPAIGNS[provider]}
    state = sb.state()
    if provider == "plivo":
        for cid, campaign in state["plivo"]["campaigns"].items():
            held[alias[cid]] = {n["number"] for n in campaign["numbers"] if not n["unlinking"]}
        return held
    for number in state["agentmessage"]["orgs"]["org_sandbox"]["numbers"]:
        if number.get("campaign_id") in alias:
            held[alias[number["campaign_id"]]].add(number["number"])
    return held


def report() -> list[dict[str, Any]]:
    return list(pl.read_csv("out.csv", infer_schema=False).iter_rows(named=True))


@pytest.mark.parametrize("provider", PROVIDERS)
def test_sync_without_prune_adds_and_moves_and_takes_nothing_out(
    provider: str, sandbox_factory: Callable[..., ThreadedSandbox]
) -> None:
    sb = sandbox_factory()
    result = sync(sb, provider)
    assert result.exit_code == 0, result.output
    held = members(sb, provider)
    assert held["marketing"] == {
        "+14155550100", "+14155550101", "+14155550102", "+14155550103", "+12125550110"
    }  # fmt: skip
    assert held["legacy"] == LEGACY_SEEDED - {"+12125550110"}
    outcome = {r["e164"]: (r["action"], r["outcome"]) for r in report()}
    assert outcome == {
        "+14155550100": ("link", "already"),
        "+14155550103": ("link", "linked"),
        "+12125550110": ("move", "moved"),
        "+12125550111": ("link", "already"),
        "+12125550112": ("link", "already"),
    }


@pytest.mark.parametrize("provider", PROVIDERS)
def test_prune_past_max_unlink_is_refused_with_nothing_sent(
    provider: str, sandbox_factory: Callable[..., ThreadedSandbox]
) -> None:
    sb = sandbox_factory()
    result = sync(sb, provider, "--prune", "--max-unlink", "5")
    assert result.exit_code == 2
    legacy, marketing = CAMPAIGNS[provider]["legacy"], CAMPAIGNS[provider]["marketing"]
    assert f"would unlink 19 numbers ({legacy} 17, {marketing} 2)" in result.output
    assert "more than --max-unlink 5" in result.output
    assert change_requests(sb) == 0 and not Path("out.csv").exists()


@pytest.mark.parametrize("provider", PROVIDERS)
def test_prune_within_max_unlink_leaves_each_campaign_holding_exactly_the_file(
    provider: str, sandbox_factory: Callable[..., ThreadedSandbox]
) -> None:
    sb = sandbox_factory()
    result = sync(sb, provider, "--prune", "--max-unlink", "19")
    assert result.exit_code == 0, result.output
    held = members(sb, provider)
    assert held["marketing"] == {"+14155550100", "+14155550103", "+12125550110"}
    assert held["legacy"] == {"+12125550111", "+12125550112"}
    assert len(held["alerts"]) == 20  # not named: untouched
    rows = report()
    assert [r["line"] for r in rows[:5]] == ["2", "3", "4", "5", "6"]
    pruned = rows[5:]
    expected = (LEGACY_SEEDED - {"+12125550110", "+12125550111", "+12125550112"}) | {
        "+14155550101",
        "+14155550102",
    }
    assert {r["e164"] for r in pruned} == expected and len(pruned) == 19
    assert all(r["line"] is None and r["action"] == "unlink" for r in pruned)
    assert {r["outcome"] for r in pruned} == {"unlinked"}


def test_sync_plan_executes_the_prune_it_reviewed(
    sandbox_factory: Callable[..., ThreadedSandbox],
) -> None:
    sb = sandbox_factory()
    planned = sync(sb, "plivo", "--prune", "--max-unlink", "19", "--plan-out", "sync.json")
    assert planned.exit_code == 0, planned.output
    assert change_requests(sb) == 0
    document = json.loads(Path("sync.json").read_text())
    assert document["command"] == "sync" and document["options"]["prune"] is True
    assert sum(1 for r in document["rows"] if r.get("pruned")) == 19
    execute = ["execute", "sync.json", "--report", "out.csv", *FAST]
    result = CliRunner().invoke(main, execute, env=sb.env("plivo"))
    assert result.exit_code == 0, result.output
    assert members(sb, "plivo")["legacy"] == {"+12125550111", "+12125550112"}
    assert sum(1 for r in report() if r["line"] is None) == 19


def test_job_file_runs_a_sync(sandbox_factory: Callable[..., ThreadedSandbox]) -> None:
    sb = sandbox_factory()
    write_csv(Path("campaigns.csv"), "campaign_id,alias", ["CUOGHIN,marketing"])
    write_csv(Path("in.csv"), "number,campaign", ["4155550103,marketing"])
    Path("job.toml").write_text(
        'command = "sync"\ninput = "in.csv"\ncampaigns = "campaigns.csv"\n'
        f'base-url = "{sb.base_url}"\nprune = true\nmax-unlink = 1\nreport = "out.csv"\n'
    )
    result = CliRunner().invoke(main, ["run", "job.toml"], env=sb.env("plivo"))
    assert result.exit_code == 2  # marketing holds three others: past --max-unlink 1
    assert "would unlink 3 numbers (CUOGHIN 3)" in result.output
    assert change_requests(sb) == 0


def test_sync_run_again_keeps_its_first_rows_and_sends_nothing(
    sandbox_factory: Callable[..., ThreadedSandbox],
) -> None:
    sb = sandbox_factory()
    first = sync(sb, "plivo", "--prune", "--max-unlink", "19", "--journal", "s.journal")
    assert first.exit_code == 0, first.output
    sent = change_requests(sb)
    again = sync(sb, "plivo", "--prune", "--max-unlink", "19", "--journal", "s.journal")
    assert again.exit_code == 0, again.output
    assert change_requests(sb) == sent
    rows = report()
    assert len(rows) == 24 and {r["outcome"] for r in rows[5:]} == {"unlinked"}
    assert rows[2]["action"] == "move" and rows[2]["outcome"] == "moved"


def test_sync_rejects_a_row_whose_action_is_not_link(
    sandbox_factory: Callable[..., ThreadedSandbox],
) -> None:
    sb = sandbox_factory()
    write_csv(Path("x.csv"), "number,campaign_id,action", ["4155550101,CUOGHIN,unlink"])
    args = ["sync", "x.csv", "--report", "out.csv", "--base-url", sb.base_url, *FAST]
    result = CliRunner().invoke(main, args, env=sb.env("plivo"))
    assert result.exit_code == 1, result.output
    (row,) = report()
    assert row["outcome"] == "rejected" and change_requests(sb) == 0


@pytest.mark.parametrize("provider", PROVIDERS)
def test_pruned_rows_that_do_not_end_as_asked_are_reported_with_no_line(
    provider: str, sandbox_factory: Callable[..., ThreadedSandbox]
) -> None:
    # every unlink is reset before it is answered: the pruned rows end unknown, and the run
    # still writes its report and failures file, naming them without a line
    endpoint = "plivo.unlink" if provider == "plivo" else "agentmessage.detach"
    sb = sandbox_factory(faults={"reset_rate": 1.0, "endpoints": [endpoint]})
    result = sync(sb, provider, "--prune", "--max-unlink", "19", "--attempts", "1")
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    assert result.exit_code == 1, result.output
    pruned = [r for r in report() if r["line"] is None]
    assert len(pruned) == 19 and {r["outcome"] for r in pruned} == {"unknown"}
    failures = pl.read_csv(Path("out.failed.csv"), infer_schema=False)
    assert failures.height >= 19


def test_a_pruned_rows_drift_is_written_with_no_line_as_its_report_row(
    sandbox_factory: Callable[..., ThreadedSandbox],
) -> None:
    """A pruned number is not a line of the input: its drift line is empty, as in the
    report, not the plan's internal row number."""
    sb = sandbox_factory()
    planned = sync(sb, "plivo", "--prune", "--max-unlink", "19", "--plan-out", "sync.json")
    assert planned.exit_code == 0, planned.output
    write_csv(Path("gone.csv"), "number,campaign", ["2125550129,legacy"])
    gone = ["unlink", "gone.csv", "--campaigns", "campaigns.csv", "--report", "gone.report.csv",
            "--provider", "plivo", "--base-url", sb.base_url, *FAST]
    assert CliRunner().invoke(main, gone, env=sb.env("plivo")).exit_code == 0
    execute = ["execute", "sync.json", "--report", "out.csv", *FAST]
    result = CliRunner().invoke(main, execute, env=sb.env("plivo"))
    assert result.exit_code == 2, result.output
    drift = pl.read_csv("sync.drift.csv", infer_schema=False).to_dicts()
    assert [r["number"] for r in drift] == ["+12125550129"]
    assert drift[0]["line"] is None
