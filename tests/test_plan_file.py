"""``--plan-out PLAN``: a dry run that writes a versioned, digested plan and its summary."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from bulk._errors import ConfigError
from bulk.cli import main
from bulk.plans._format import digest_of, drift_path, read_plan, summary_path
from tests._helpers import (
    CAMPAIGNS,
    PROVIDERS,
    ThreadedSandbox,
    campaigns_file,
    change_requests,
    write_csv,
)


@pytest.fixture(autouse=True)
def _work_in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


def plan_out(
    sb: ThreadedSandbox, provider: str, tmp_path: Path, command: str, src: Path, *extra: str
) -> tuple[Any, Path]:
    plan = tmp_path / "change.plan.json"
    args = [command, str(src), "--campaigns", str(campaigns_file(tmp_path, provider))]
    args += ["--plan-out", str(plan), "--provider", provider, "--base-url", sb.base_url, "-q"]
    result = CliRunner().invoke(main, [*args, *extra], env=sb.env(provider))
    return result, plan


@pytest.mark.parametrize("provider", PROVIDERS)
def test_plan_out_writes_the_plan_and_changes_nothing(
    provider: str, tmp_path: Path, sandbox_factory: Callable[..., ThreadedSandbox]
) -> None:
    sb = sandbox_factory()
    before = sb.state()
    src = write_csv(
        tmp_path / "in.csv",
        "number,campaign",
        ["4155550103,marketing", "4155550100,marketing", "not-a-number,marketing"],
    )
    result, plan = plan_out(sb, provider, tmp_path, "link", src)
    assert result.exit_code == 1, result.output  # a rejected row, as --dry-run says
    assert change_requests(sb) == 0
    assert sb.state()["plivo"] == before["plivo"]
    assert sb.state()["agentmessage"] == before["agentmessage"]
    document = read_plan(plan)  # version and digest check out
    assert document["provider"] == provider and document["command"] == "link"
    assert document["base_url"] == sb.base_url
    expected_account = sb.plivo_auth_id if provider == "plivo" else None
    assert document["account"] == expected_account
    assert len(document["input"]["sha256"]) == 64
    marketing = CAMPAIGNS[provider]["marketing"]
    rows = {r["line"]: r for r in document["rows"]}
    assert rows[2]["do"] == "link" and rows[2]["request"] == f"link to {marketing}"
    assert rows[2]["observed"]["campaigns"][marketing]["status"] == "absent"
    assert rows[3]["outcome"] == "already"
    assert rows[3]["observed"]["campaigns"][marketing]["status"] == "active"
    assert rows[4]["outcome"] == "rejected" and rows[4]["observed"] is None
    summary = summary_path(plan).read_text()
    assert f"| link to {marketing} | 1 |" in summary
    assert "not-a-number" in summary  # the rows that will fail are listed


@pytest.mark.parametrize("provider", PROVIDERS)
def test_plan_holds_no_secret(
    provider: str, tmp_path: Path, sandbox_factory: Callable[..., ThreadedSandbox]
) -> None:
    sb = sandbox_factory()
    src = write_csv(tmp_path / "in.csv", "number,campaign", ["4155550103,marketing"])
    result, plan = plan_out(sb, provider, tmp_path, "link", src)
    assert result.exit_code == 0, result.output
    secret = sb.plivo_auth_token if provider == "plivo" else sb.agentmessage_api_key
    assert secret not in plan.read_text()
    assert secret not in summary_path(plan).read_text()


@pytest.mark.parametrize(("provider", "request_text"), [
    ("plivo", "unlink from CMIGOLD, then link to CRIGC80"),
    ("agentmessage", "attach to 4f1c2d3e-0000-4000-8000-000000000002 (leaves "),
])
def test_move_plan_says_each_step_the_provider_needs(
    provider: str,
    request_text: str,
    tmp_path: Path,
    sandbox_factory: Callable[..., ThreadedSandbox],
) -> None:
    sb = sandbox_factory()
    src = write_csv(tmp_path / "in.csv", "number", ["2125550110"])
    moving = ("--from", "legacy", "--to", "alerts")
    result, plan = plan_out(sb, provider, tmp_path, "move", src, *moving)
    assert result.exit_code == 0, result.output
    (row,) = read_plan(plan)["rows"]
    assert row["do"] == "move" and row["request"].startswith(request_text)
    assert row["from_campaign"] == CAMPAIGNS[provider]["legacy"]
    assert read_plan(plan)["options"]["from_campaign"] == "legacy"  # as given
    assert change_requests(sb) == 0


def test_plan_out_refuses_a_markdown_path_before_reading(tmp_path: Path) -> None:
    src = write_csv(tmp_path / "in.csv", "number,campaign", ["4155550103,CUOGHIN"])
    result = CliRunner().invoke(main, ["link", str(src), "--sandbox", "--plan-out", "p.md"])
    assert result.exit_code == 2
    assert "--plan-out p.md" in result.output and not Path("p.md").exists()


def test_digest_covers_every_key_but_itself() -> None:
    document = {"format": "bulk-plan", "version": 1, "rows": [{"line": 2}]}
    digest = digest_of(document)
    assert digest == digest_of({**document, "digest": "anything"})
    assert digest != digest_of({**document, "rows": [{"line": 3}]})
    assert digest.startswith("sha256:") and len(digest) == 7 + 64


def test_edited_plan_is_refused_on_reading(tmp_path: Path) -> None:
    body = {"format": "bulk-plan", "version": 1, "rows": [{"line": 2, "do": "link"}]}
    path = tmp_path / "p.json"
    path.write_text(json.dumps({**body, "digest": digest_of(body)}))
    assert read_plan(path)["rows"] == body["rows"]
    path.write_text(path.read_text().replace('"link"', '"unlink"'))
    with pytest.raises(ConfigError, match="does not match its digest"):
        read_plan(path)


def test_unknown_format_version_is_refused(tmp_path: Path) -> None:
    body = {"format": "bulk-plan", "version": 99, "rows": []}
    path = tmp_path / "p.json"
    path.write_text(json.dumps({**body, "digest": digest_of(body)}))
    with pytest.raises(ConfigError, match="unknown plan format version 99"):
        read_plan(path)


def test_summary_and_drift_files_sit_beside_the_plan() -> None:
    assert summary_path(Path("a/change.json")) == Path("a/change.md")
    assert summary_path(Path("change")) == Path("change.md")
    assert drift_path(Path("a/change.json")) == Path("a/change.drift.csv")
