"""Many accounts end to end: the real client against the sandbox serving several
Plivo accounts, each with its own credentials and rate limit, over loopback HTTP."""

from __future__ import annotations

import json
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner

from bulk._accounts import shard_of
from bulk.cli import main
from bulk.sandbox import FaultConfig, SandboxConfig, seed_for_accounts
from tests._helpers import (
    ThreadedSandbox,
    journal_states,
    threaded_sandbox,
    wait_for_progress,
    write_csv,
)

EAST = "SAEASTSUBACCOUNT0001"
WEST = "SAWESTSUBACCOUNT0002"
#: requests per 5 s window the sandbox admits per account: 10/s and 5/s
LIMITS = {EAST: 50, WEST: 25}
EAST_NUMBERS = [f"+1415555{n:04d}" for n in range(100, 130)]
WEST_NUMBERS = [f"+1212555{n:04d}" for n in range(100, 125)]


@pytest.fixture
def two_accounts() -> Iterator[ThreadedSandbox]:
    config = SandboxConfig(
        settle_min=0.05,
        settle_max=0.4,
        faults=FaultConfig(
            latency_min=0.005,
            latency_max=0.02,
            error_5xx_rate=0.05,
            reset_rate=0.03,
            truncated_rate=0.03,
        ),
    )
    with threaded_sandbox(config, seed_for_accounts(plivo=LIMITS)) as sb:
        yield sb


def _accounts(tmp_path: Path, sb: ThreadedSandbox) -> Path:
    path = tmp_path / "accounts.toml"
    path.write_text(
        f"""
[accounts.east]
provider = "plivo"
auth-id = "{EAST}"
auth-token-env = "EAST_TOKEN"
base-url = "{sb.base_url}"
rate = 8

[accounts.west]
provider = "plivo"
auth-id = "{WEST}"
auth-token-env = "WEST_TOKEN"
base-url = "{sb.base_url}"
rate = 4
concurrency = 2
""",
        encoding="utf-8",
    )
    return path


def plivo_env(sb: ThreadedSandbox) -> dict[str, str]:
    return {"EAST_TOKEN": sb.plivo_accounts[EAST], "WEST_TOKEN": sb.plivo_accounts[WEST]}


def _input(tmp_path: Path) -> Path:
    rows = [f"{n},marketing,east,e{i}" for i, n in enumerate(EAST_NUMBERS)]
    rows += [f"{n},marketing,west,w{i}" for i, n in enumerate(WEST_NUMBERS)]
    rows.append("+13125550100,marketing,north,n0")
    write_csv(
        tmp_path / "campaigns.csv",
        "campaign_id,alias,account",
        ["CUOGHIN,marketing,east", "CRIGC80,marketing,west"],
    )
    return write_csv(tmp_path / "in.csv", "number,campaign,account,store", rows)


def _link(tmp_path: Path, sb: ThreadedSandbox) -> list[str]:
    """``link`` of the two accounts' input, with its accounts and campaigns files."""
    return [
        "link",
        str(_input(tmp_path)),
        "--accounts",
        str(_accounts(tmp_path, sb)),
        "--campaigns",
        str(tmp_path / "campaigns.csv"),
    ]


def _submissions(journal: Path, lines: list[int]) -> list[float]:
    with sqlite3.connect(journal) as db:
        marks = ",".join("?" * len(lines))
        found = db.execute(
            f"SELECT submitted_at FROM rows WHERE line IN ({marks}) AND submitted_at IS NOT NULL",
            lines,
        ).fetchall()
    return sorted(t for (t,) in found)


def test_two_plivo_accounts_in_one_input_run_side_by_side_each_with_its_own_credentials(
    tmp_path: Path, two_accounts: ThreadedSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # the default report and journal paths are in the cwd
    sb = two_accounts
    summary = tmp_path / "summary.json"
    result = CliRunner().invoke(
        main,
        [
            *_link(tmp_path, sb),
            "--batch-size",
            "1",
            "--poll-interval",
            "0.3",
            "--resend-delay",
            "0.2",
            "--settle-timeout",
            "60",
            "--summary-json",
            str(summary),
            "--yes",
        ],
        env=plivo_env(sb),
    )
    assert result.exit_code == 1, result.output  # the row of an unknown account
    report = pl.read_csv(tmp_path / "in.csv.link.accounts.report.csv", infer_schema=False)
    columns = report.columns
    assert columns[columns.index("settled_at") + 1] == "account"
    assert columns.count("account") == 1 and columns[-1] == "store"

    # every row right: each number linked in its own account's campaign
    east = report.filter(pl.col("account") == "east")
    west = report.filter(pl.col("account") == "west")
    assert east.get_column("outcome").to_list() == ["linked"] * len(EAST_NUMBERS)
    assert west.get_column("outcome").to_list() == ["linked"] * len(WEST_NUMBERS)
    assert set(east.get_column("campaign_id")) == {"CUOGHIN"}
    assert set(west.get_column("campaign_id")) == {"CRIGC80"}
    north = report.filter(pl.col("account") == "north").row(0, named=True)
    assert (north["outcome"], north["reason"].split(":")[0]) == ("rejected", "unknown_account")
    linked = {
        (account["auth_id"], entry["number"], campaign_id, entry["status"])
        for account in sb.state()["plivo_accounts"].values()
        for campaign_id, campaign in account["campaigns"].items()
        for entry in campaign["numbers"]
    }
    for number in EAST_NUMBERS:
        assert (EAST, number, "CUOGHIN", "COMPLETED") in linked
        assert not any(a == WEST and n == number for a, n, _, _ in linked)
    for number in WEST_NUMBERS:
        assert (WEST, number, "CRIGC80", "COMPLETED") in linked

    # each account's requests carried its own credentials, and neither limit was exceeded
    per_account = sb.counters()["accounts"]
    for auth_id, limit in LIMITS.items():
        assert per_account[auth_id]["unauthorized"] == 0
        assert per_account[auth_id]["rate_limited"] == 0
        assert 0 < per_account[auth_id]["peak_in_window"] <= limit

    # side by side: each account was sending while the other was
    lines = report.select(pl.col("line").cast(pl.Int64), "account").rows()
    journal = tmp_path / "in.csv.link.accounts.journal"
    east_times = _submissions(journal, [n for n, a in lines if a == "east"])
    west_times = _submissions(journal, [n for n, a in lines if a == "west"])
    assert east_times[0] < west_times[-1] and west_times[0] < east_times[-1]

    # the summary counts per account; no token anywhere
    accounts = json.loads(summary.read_text())["accounts"]
    assert accounts["east"]["counts"]["linked"] == len(EAST_NUMBERS)
    assert accounts["west"]["counts"]["linked"] == len(WEST_NUMBERS)
    assert accounts["north"]["counts"]["rejected"] == 1
    assert accounts["east"]["requests"] > 0 and accounts["west"]["requests"] > 0
    everything = result.output + summary.read_text()
    everything += (tmp_path / "in.csv.link.accounts.report.csv").read_text()
    everything += (tmp_path / "in.csv.link.accounts.journal").read_bytes().decode("latin-1")
    for token in plivo_env(sb).values():
        assert token not in everything


def test_a_refused_token_of_one_account_stops_the_run_before_anything_is_sent(
    tmp_path: Path, two_accounts: ThreadedSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    sb = two_accounts
    env = {**plivo_env(sb), "WEST_TOKEN": "not-the-token"}
    result = CliRunner().invoke(
        main,
        [*_link(tmp_path, sb), "--yes"],
        env=env,
    )
    assert result.exit_code == 2, result.output
    assert "not-the-token" not in result.output
    numbers = sb.counters().get("numbers", {})
    assert not any(c.get("link_accepted") for c in numbers.values())


SHARD_ACCOUNTS = ("alpha", "bravo", "charlie", "delta")


def _sharded_inputs(tmp_path: Path) -> tuple[Path, Path]:
    ids = {name: f"SA{name.upper():0<18}"[:20] for name in SHARD_ACCOUNTS}
    tables = [
        f'[accounts.{name}]\nprovider = "plivo"\nauth-id = "{auth_id}"\n'
        f'auth-token-env = "{name.upper()}_TOKEN"\n'
        for name, auth_id in ids.items()
    ]
    accounts = tmp_path / "accounts.toml"
    accounts.write_text("\n".join(tables), encoding="utf-8")
    rows = []
    for index, name in enumerate(SHARD_ACCOUNTS):
        rows += [f"+1415555{index}{n:03d},CUOGHIN,{name}" for n in range(100, 106)]
    rows += ["+14155559999,CUOGHIN,nobody", "not a number,CUOGHIN,alpha", "+14155550100,CUOGHIN,"]
    return write_csv(tmp_path / "in.csv", "number,campaign,account", rows), accounts


def test_shards_0_of_2_and_1_of_2_together_equal_the_unsharded_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    # the accounts really split over both shards
    assert {shard_of(name, 2) for name in SHARD_ACCOUNTS} == {0, 1}
    source, accounts = _sharded_inputs(tmp_path)
    common = ["--accounts", str(accounts), "--sandbox", "--yes", "--quiet"]
    whole = CliRunner().invoke(
        main, ["link", str(source), *common, "--report", str(tmp_path / "whole.csv")]
    )
    assert whole.exit_code == 1, whole.output
    parts = []
    for index in (0, 1):
        shard = CliRunner().invoke(
            main, ["link", str(source), *common, "--shard", f"{index}/2"]
        )
        # the rejected rows are alpha's (shard 0) or name no account of the file (shard 0)
        assert shard.exit_code == (1 if index == 0 else 0), shard.output
        stem = tmp_path / f"in.csv.link.accounts-sandbox.shard-{index}-of-2"
        parts.append(pl.read_csv(f"{stem}.report.csv", infer_schema=False))
        assert Path(f"{stem}.journal").exists()
    keep = ["line", "number", "e164", "campaign_id", "action", "outcome", "account"]
    union = pl.concat(parts).select(keep).sort(pl.col("line").cast(pl.Int64))
    expected = pl.read_csv(tmp_path / "whole.csv", infer_schema=False).select(keep)
    assert union.equals(expected)
    assert set(expected.get_column("outcome")) == {"linked", "rejected"}
    assert all(part.height > 0 for part in parts)


def test_the_readme_accounts_sample_runs_offline_against_the_sandbox(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    samples = tmp_path / "samples"  # a copy: the run writes its outputs beside its input
    shutil.copytree(Path(__file__).parent.parent / "samples", samples)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(
        main,
        [
            "link",
            str(samples / "accounts-onboarding.csv"),
            "--accounts",
            str(samples / "accounts.toml"),
            "--campaigns",
            str(samples / "campaigns-accounts.csv"),
            "--sandbox",
            "--quiet",
        ],
        env={"EAST_PLIVO_TOKEN": "", "WEST_PLIVO_TOKEN": ""},  # the sandbox needs none
    )
    assert result.exit_code == 1, result.output
    report = pl.read_csv(
        samples / "accounts-onboarding.csv.link.accounts-sandbox.report.csv", infer_schema=False
    )
    by_account = dict(report.group_by("account").agg(pl.col("outcome")).iter_rows())
    # the sandbox's always-failing, never-settling and unowned numbers are in east's range
    assert by_account["west"] == ["linked"] * 60
    assert by_account["east"].count("linked") == 57
    assert by_account["north"] == ["rejected"] and by_account[None] == ["rejected"]
    # 'marketing' is CUOGHIN in east and CRIGC80 in west
    given = pl.read_csv(samples / "accounts-onboarding.csv", infer_schema=False)
    marketing = {i + 2 for i, c in enumerate(given.get_column("Campaign")) if c == "marketing"}
    chosen = report.filter(pl.col("line").cast(pl.Int64).is_in(sorted(marketing)))
    assert dict(chosen.select("account", "campaign_id").unique().iter_rows()) == {
        "east": "CUOGHIN",
        "west": "CRIGC80",
        "north": None,
        None: None,
    }


def test_a_run_of_two_accounts_killed_mid_way_resumes_and_links_every_number_exactly_once(
    tmp_path: Path,
) -> None:
    import os
    import signal
    import subprocess
    import sys


    config = SandboxConfig(settle_min=0.2, settle_max=0.8)
    with threaded_sandbox(config, seed_for_accounts(plivo=LIMITS)) as sb:
        command = [
            sys.executable,
            "-m",
            "bulk",
            *_link(tmp_path, sb),
            "--batch-size",
            "1",
            "--poll-interval",
            "0.3",
            "--journal",
            str(tmp_path / "run.journal"),
            "--report",
            str(tmp_path / "report.csv"),
            "--yes",
            "--quiet",
        ]
        env = {**os.environ, **plivo_env(sb)}
        proc = subprocess.Popen(
            command, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        wait_for_progress(tmp_path / "run.journal", 20, proc)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        assert journal_states(tmp_path / "run.journal").get("planned", 0) > 0  # mid-way
        resumed = subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, timeout=120)
        assert resumed.returncode == 1, resumed.stderr.decode()  # the unknown account's row
        report = pl.read_csv(tmp_path / "report.csv", infer_schema=False)
        linked = report.filter(pl.col("outcome") == "linked").get_column("e164").to_list()
        assert sorted(linked) == sorted(EAST_NUMBERS + WEST_NUMBERS)
        numbers = sb.counters()["numbers"]
        for number in EAST_NUMBERS + WEST_NUMBERS:
            assert numbers[number]["link_accepted"] == 1, number


def _ten_accounts(tmp_path: Path) -> list[str]:
    names = [f"acct{i}" for i in range(10)]
    tables = [
        f'[accounts.{n}]\nprovider = "plivo"\nauth-id = "SAFILES{i:013d}"\n'
        f'auth-token-env = "T{i}"\n'
        for i, n in enumerate(names)
    ]
    (tmp_path / "accounts.toml").write_text("\n".join(tables), encoding="utf-8")
    rows = [f"+1415555{i:02d}{n:02d},CUOGHIN,{name}" for i, name in enumerate(names)
            for n in range(2)]
    source = write_csv(tmp_path / "in.csv", "number,campaign,account", rows)
    return [
        "link", str(source), "--accounts", str(tmp_path / "accounts.toml"), "--sandbox",
        "--yes", "--quiet", "--concurrency", "8",
    ]


@pytest.mark.parametrize(("soft", "hard", "code"), [(150, 150, 2), (150, 4096, 0)])
def test_too_few_open_files_for_every_accounts_pool_stops_before_sending_or_is_raised(
    tmp_path: Path, soft: int, hard: int, code: int
) -> None:
    import resource
    import subprocess
    import sys

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))

    if resource.getrlimit(resource.RLIMIT_NOFILE)[1] < hard:
        pytest.skip("this machine's hard limit is lower than the test needs")
    done = subprocess.run(
        [sys.executable, "-m", "bulk", *_ten_accounts(tmp_path)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=limit,
    )
    assert done.returncode == code, done.stderr
    if code == 2:
        assert "open files" in done.stderr and "--shard" in done.stderr
        assert not (tmp_path / "in.csv.link.accounts-sandbox.report.csv").exists()
    else:
        report = pl.read_csv(
            tmp_path / "in.csv.link.accounts-sandbox.report.csv", infer_schema=False
        )
        assert set(report.get_column("outcome")) == {"linked"}
