"""``bulk execute PLAN``: exactly the reviewed plan's requests, refused when stale or edited."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from click.testing import CliRunner

from bulk.cli import main
from bulk.plans._format import digest_of
from tests._helpers import (
    CAMPAIGNS,
    FAST,
    PROVIDERS,
    ThreadedSandbox,
    campaigns_file,
    change_requests,
    write_csv,
)

NUMBERS = ["+14155550103", "+14155550104", "+14155550105"]


@pytest.fixture(autouse=True)
def _work_in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


def cli(sb: ThreadedSandbox, provider: str, args: list[str], **env: str) -> Any:
    rate = ["--rate", "60"] if provider == "agentmessage" else []
    return CliRunner().invoke(main, [*args, *rate], env={**sb.env(provider), **env})


def make_plan(
    sb: ThreadedSandbox, provider: str, command: str, rows: list[str], *extra: str
) -> Path:
    src = write_csv(Path("in.csv"), "number,campaign", rows)
    args = [command, str(src), "--campaigns", str(campaigns_file(Path("."), provider)), "-q"]
    args += ["--provider", provider, "--base-url", sb.base_url, "--plan-out", "change.json"]
    result = cli(sb, provider, [*args, *extra])
    assert result.exit_code in (0, 1), result.output
    return Path("change.json")


def execute(sb: ThreadedSandbox, provider: str, *extra: str, **env: str) -> Any:
    args = ["execute", "change.json", "--report", "out.csv", *extra, *FAST]
    return cli(sb, provider, args, **env)


def outcomes() -> dict[str, str]:
    frame = pl.read_csv("out.csv", infer_schema=False)
    return {r["e164"] or r["number"]: r["outcome"] for r in frame.iter_rows(named=True)}


def links_of(sb: ThreadedSandbox, number: str) -> int:
    counters = sb.counters()["numbers"].get(number, {})
    return sum(counters.get(k, 0) for k in ("link_accepted", "attach_accepted"))


def link_now(sb: ThreadedSandbox, provider: str, number: str) -> None:
    """Someone else links a number after the plan was made."""
    src = write_csv(Path("other.csv"), "number,campaign", [f"{number},marketing"])
    args = ["link", str(src), "--campaigns", "campaigns.csv", "--provider", provider]
    args += ["--base-url", sb.base_url, "--journal", "other.journal"]
    args += ["--report", "other.report.csv"]
    result = cli(sb, provider, [*args, *FAST])
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("provider", PROVIDERS)
def test_execute_sends_the_plan_once_and_again_sends_nothing(
    provider: str, sandbox_factory: Callable[..., ThreadedSandbox]
) -> None:
    sb = sandbox_factory()
    make_plan(sb, provider, "link", [f"{n},marketing" for n in NUMBERS] + ["4155550100,marketing"])
    assert change_requests(sb) == 0
    result = execute(sb, provider)
    assert result.exit_code == 0, result.output
    assert outcomes() == {**dict.fromkeys(NUMBERS, "linked"), "+14155550100": "already"}
    assert all(links_of(sb, n) == 1 for n in NUMBERS)
    sent = change_requests(sb)
    again = execute(sb, provider)
    assert again.exit_code == 0, again.output
    assert change_requests(sb) == sent  # the journal remembers: nothing sent twice
    assert outcomes()["+14155550103"] == "linked"


@pytest.mark.parametrize("provider", PROVIDERS)
def test_move_plan_executes_in_the_steps_it_planned(
    provider: str, sandbox_factory: Callable[..., ThreadedSandbox]
) -> None:
    sb = sandbox_factory()
    make_plan(sb, provider, "move", ["2125550110,alerts"], "--from", "legacy")
    result = execute(sb, provider)
    assert result.exit_code == 0, result.output
    assert outcomes() == {"+12125550110": "moved"}
    unlinks = sb.counters()["endpoints"].get("plivo.unlink", {}).get("requests", 0)
    assert unlinks == (1 if provider == "plivo" else 0)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_edited_plan_is_refused_and_nothing_sent(
    provider: str, sandbox_factory: Callable[..., ThreadedSandbox]
) -> None:
    sb = sandbox_factory()
    plan = make_plan(sb, provider, "link", [f"{NUMBERS[0]},marketing"])
    document = json.loads(plan.read_text())
    document["rows"][0]["campaign_id"] = CAMPAIGNS[provider]["alerts"]
    plan.write_text(json.dumps(document))
    result = execute(sb, provider)
    assert result.exit_code == 2
    assert "does not match its digest" in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert change_requests(sb) == 0 and not Path("out.csv").exists()


def test_unknown_format_version_is_refused_and_nothing_sent(
    sandbox_factory: Callable[..., ThreadedSandbox],
) -> None:
    sb = sandbox_factory()
    plan = make_plan(sb, "plivo", "link", [f"{NUMBERS[0]},marketing"])
    document = json.loads(plan.read_text())
    document["version"] = 2
    document["digest"] = digest_of(document)
    plan.write_text(json.dumps(document))
    result = execute(sb, "plivo")
    assert result.exit_code == 2 and "unknown plan format version 2" in result.output
    assert change_requests(sb) == 0


@pytest.mark.parametrize("provider", PROVIDERS)
def test_plan_older_than_max_plan_age_is_refused(
    provider: str, sandbox_factory: Callable[..., ThreadedSandbox]
) -> None:
    sb = sandbox_factory()
    make_plan(sb, provider, "link", [f"{NUMBERS[0]},marketing"])
    result = execute(sb, provider, "--max-plan-age", "0s")
    assert result.exit_code == 2 and "more than --max-plan-age" in result.output
    assert change_requests(sb) == 0


def test_plan_for_another_account_is_refused(
    sandbox_factory: Callable[..., ThreadedSandbox],
) -> None:
    sb = sandbox_factory()
    make_plan(sb, "plivo", "link", [f"{NUMBERS[0]},marketing"])
    result = execute(sb, "plivo", PLIVO_AUTH_ID="MAOTHERACCOUNT0000001")
    assert result.exit_code == 2
    assert f"the plan is for plivo account {sb.plivo_auth_id}" in result.output
    assert "sandbox-auth-token" not in result.output
    assert change_requests(sb) == 0


def test_plan_for_another_base_url_is_refused(
    sandbox_factory: Callable[..., ThreadedSandbox],
) -> None:
    sb = sandbox_factory()
    make_plan(sb, "plivo", "link", [f"{NUMBERS[0]},marketing"])
    result = execute(sb, "plivo", "--base-url", "http://127.0.0.1:9")
    assert result.exit_code == 2 and "the plan was made against" in result.output
    assert change_requests(sb) == 0


@pytest.mark.parametrize("provider", PROVIDERS)
def test_drift_is_refused_with_nothing_sent_and_the_drift_file_names_the_number(
    provider: str, sandbox_factory: Callable[..., ThreadedSandbox]
) -> None:
    sb = sandbox_factory()
    make_plan(sb, provider, "link", [f"{n},marketing" for n in NUMBERS])
    link_now(sb, provider, NUMBERS[1])
    sent = change_requests(sb)
    result = execute(sb, provider)
    assert result.exit_code == 2, result.output
    assert "drifted since the plan was made" in result.output
    assert change_requests(sb) == sent
    drift = pl.read_csv("change.drift.csv", infer_schema=False)
    assert drift.get_column("number").to_list() == [NUMBERS[1]]
    assert "absent" in drift.item(0, "plan_saw") and "active" in drift.item(0, "now")
    # once the state is as planned again (or a new plan is made), it runs
    assert not Path("out.csv").exists()


@pytest.mark.parametrize("provider", PROVIDERS)
def test_skip_drifted_sends_the_others_once_each(
    provider: str, sandbox_factory: Callable[..., ThreadedSandbox]
) -> None:
    sb = sandbox_factory()
    make_plan(sb, provider, "link", [f"{n},marketing" for n in NUMBERS])
    link_now(sb, provider, NUMBERS[1])
    result = execute(sb, provider, "--skip-drifted")
    assert result.exit_code == 1, result.output
    assert outcomes() == {NUMBERS[0]: "linked", NUMBERS[1]: "drifted", NUMBERS[2]: "linked"}
    assert [links_of(sb, n) for n in NUMBERS] == [1, 1, 1]  # NUMBERS[1]: the other run's
    report = pl.read_csv("out.csv", infer_schema=False)
    reason = report.filter(pl.col("outcome") == "drifted").item(0, "reason")
    assert "drifted since the plan" in reason
    assert Path("change.drift.csv").exists()


@pytest.mark.parametrize("provider", PROVIDERS)
def test_plan_executed_under_faults_sends_each_change_once(
    provider: str, sandbox_factory: Callable[..., ThreadedSandbox], no_retry_waits: None
) -> None:
    sb = sandbox_factory(seed=11)
    numbers = [f"+1415555{n:04d}" for n in range(110, 130)]
    make_plan(sb, provider, "link", [f"{n},marketing" for n in numbers], "--batch-size", "4")
    sb.admin().set_faults(
        {
            "error_5xx_rate": 0.1,
            "reset_rate": 0.05,
            # AgentMessage's 429s carry a Retry-After of a second or more, which bulk honours
            "burst_429_rate": 0.25 if provider == "plivo" else 0.04,
            "burst_429_length": 3 if provider == "plivo" else 1,
            "after_rate": 0.5,
        }
    )
    result = execute(sb, provider)
    assert result.exit_code == 0, result.output
    assert set(outcomes().values()) == {"linked"}
    assert all(links_of(sb, n) == 1 for n in numbers)
    statuses = [ep["status"] for ep in sb.counters()["endpoints"].values()]
    met = {code for status in statuses for code in status}
    assert "429" in met and met & {"500", "502", "503", "reset"}  # 429s and lost answers
    if provider == "plivo":  # the plan's batch size: 20 numbers in batches of 4
        status = sb.counters()["endpoints"]["plivo.link"]["status"]
        assert sum(n for code, n in status.items() if code != "429") >= 5


def _journal_states(path: Path) -> dict[str, int]:
    with sqlite3.connect(path) as db:
        return dict(db.execute("SELECT state, count(*) FROM rows GROUP BY state").fetchall())


def test_plan_killed_mid_execute_resumes_and_sends_each_change_once(
    sandbox_factory: Callable[..., ThreadedSandbox],
) -> None:
    sb = sandbox_factory(settle_min=0.2, settle_max=0.8)
    numbers = [f"+1206555{n:04d}" for n in range(100, 160)]
    make_plan(sb, "plivo", "link", [f"{n},marketing" for n in numbers], "--batch-size", "1")
    command = [sys.executable, "-m", "bulk", "execute", "change.json", "--journal", "run.journal"]
    command += ["--report", "out.csv", "--rate", "25", "--concurrency", "4", "--yes", "--quiet"]
    command += ["--poll-interval", "0.3", "--settle-timeout", "20"]
    env = {**os.environ, **sb.env("plivo")}
    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with contextlib.suppress(sqlite3.Error):
            if Path("run.journal").exists():
                states = _journal_states(Path("run.journal"))
                if sum(n for s, n in states.items() if s != "planned") >= 15:
                    break
        assert proc.poll() is None, "the run ended before it could be killed"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    assert _journal_states(Path("run.journal")).get("planned", 0) > 0  # really mid-way
    resumed = subprocess.run(command, env=env, capture_output=True, timeout=120)
    assert resumed.returncode == 0, resumed.stdout.decode() + resumed.stderr.decode()
    assert set(outcomes().values()) == {"linked"} and len(outcomes()) == len(numbers)
    assert all(links_of(sb, n) == 1 for n in numbers)


def test_malformed_plan_rows_are_refused_in_one_line(
    sandbox_factory: Callable[..., ThreadedSandbox],
) -> None:
    sb = sandbox_factory()
    plan = make_plan(sb, "plivo", "link", [f"{NUMBERS[0]},marketing"])
    document = json.loads(plan.read_text())
    del document["rows"][0]["line"]
    document["digest"] = digest_of(document)
    plan.write_text(json.dumps(document))
    result = execute(sb, "plivo")
    assert result.exit_code == 2 and "the plan's rows are malformed" in result.output
    assert "Traceback" not in result.output and change_requests(sb) == 0


def test_a_new_plan_at_the_same_path_runs_after_a_refused_one(
    sandbox_factory: Callable[..., ThreadedSandbox],
) -> None:
    sb = sandbox_factory()
    make_plan(sb, "plivo", "link", [f"{n},marketing" for n in NUMBERS])
    link_now(sb, "plivo", NUMBERS[1])
    assert execute(sb, "plivo").exit_code == 2  # drifted: nothing sent
    make_plan(sb, "plivo", "link", [f"{n},marketing" for n in NUMBERS])  # reviewed again
    result = execute(sb, "plivo")
    assert result.exit_code == 0, result.output
    assert outcomes() == {NUMBERS[0]: "linked", NUMBERS[1]: "already", NUMBERS[2]: "linked"}
    assert not Path("change.drift.csv").exists()


SAMPLES = Path(__file__).resolve().parent.parent / "samples"


def test_sandbox_plan_executes_in_the_sandbox_only() -> None:
    src = write_csv(Path("in.csv"), "number,campaign_id", ["4155550103,CUOGHIN"])
    plan = ["link", str(src), "--sandbox", "--plan-out", "change.json", "-q"]
    assert CliRunner().invoke(main, plan).exit_code == 0
    outside = CliRunner().invoke(main, ["execute", "change.json", *FAST])
    assert outside.exit_code == 2 and "give --sandbox" in outside.output
    result = CliRunner().invoke(main, ["execute", "change.json", "--sandbox", *FAST])
    assert result.exit_code == 0, result.output
    assert Path("change.json.link.plivo-sandbox.report.csv").exists()  # named as any run's


def test_plan_of_many_accounts_executes_each_accounts_rows() -> None:
    rows = ["4155550103,marketing,east", "4155550104,marketing,west"]
    src = write_csv(Path("in.csv"), "number,campaign,account", rows)
    accounts = ["--accounts", str(SAMPLES / "accounts.toml")]
    plan = ["link", str(src), *accounts, "--campaigns", str(SAMPLES / "campaigns-accounts.csv")]
    made = CliRunner().invoke(main, [*plan, "--sandbox", "--plan-out", "change.json", "-q"])
    assert made.exit_code == 0, made.output
    document = json.loads(Path("change.json").read_text())
    assert document["provider"] == "accounts" and set(document["accounts"]) == {"east", "west"}
    result = CliRunner().invoke(
        main, ["execute", "change.json", "--sandbox", "--report", "out.csv", *FAST]
    )
    assert result.exit_code == 0, result.output
    frame = pl.read_csv("out.csv", infer_schema=False)
    assert frame.get_column("account").to_list() == ["east", "west"]
    assert set(frame.get_column("outcome")) == {"linked"}


def test_plan_records_each_accounts_own_batch_size_in_effect() -> None:
    """An account's own ``batch-size`` is what its lane sends with; the plan the reviewer
    reads must say so, not the run's default for every account."""
    toml = (SAMPLES / "accounts.toml").read_text()
    own = toml.replace("concurrency = 4", "concurrency = 4\nbatch-size = 5")
    Path("accounts.toml").write_text(own)
    rows = ["4155550103,marketing,east", "4155550104,marketing,west"]
    src = write_csv(Path("in.csv"), "number,campaign,account", rows)
    plan = ["link", str(src), "--accounts", "accounts.toml",
            "--campaigns", str(SAMPLES / "campaigns-accounts.csv")]
    made = CliRunner().invoke(main, [*plan, "--sandbox", "--plan-out", "change.json", "-q"])
    assert made.exit_code == 0, made.output
    in_effect = json.loads(Path("change.json").read_text())["options"]["batch_size_in_effect"]
    assert in_effect["west"] == 5
    assert in_effect["east"] != 5  # the provider's default, the run having none
