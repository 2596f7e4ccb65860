"""Many accounts: the accounts file, rows' accounts, shards, the report's column.
End-to-end runs against a sandbox serving several accounts are in test_accounts_e2e.py."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner

from bulk._accounts import parse_shard, read_accounts, shard_of
from bulk._errors import ConfigError
from bulk.cli import main
from bulk.inputs import load_rows
from tests._helpers import write_csv

EAST_ID = "SAEASTEASTEASTEAST01"
WEST_ID = "SAWESTWESTWESTWEST02"


def _accounts_file(tmp_path: Path, body: str | None = None) -> Path:
    path = tmp_path / "accounts.toml"
    path.write_text(
        body
        if body is not None
        else f"""
[accounts.east]
provider = "plivo"
auth-id = "{EAST_ID}"
auth-token-env = "EAST_TOKEN"
rate = 20

[accounts.west]
provider = "plivo"
auth-id = "{WEST_ID}"
auth-token-env = "WEST_TOKEN"
concurrency = 2

[accounts.org]
provider = "agentmessage"
api-key-env = "ORG_KEY"
""",
        encoding="utf-8",
    )
    return path


def test_an_accounts_file_gives_each_account_its_provider_id_variable_and_limits(
    tmp_path: Path,
) -> None:
    accounts = read_accounts(_accounts_file(tmp_path))
    assert list(accounts) == ["east", "west", "org"]
    east, west, org = accounts.values()
    assert (east.provider, east.account_id, east.secret_env, east.rate) == (
        "plivo",
        EAST_ID,
        "EAST_TOKEN",
        20.0,
    )
    assert (west.concurrency, west.rate) == (2, None)
    assert (org.provider, org.account_id, org.secret_env) == ("agentmessage", None, "ORG_KEY")


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("auth-token", "s3cr3tTOKENvalue0000000000000000000000"),
        ("api-key", "am_live_realkey0000000000000000000"),
        ("password", "hunter2-but-longer"),
    ],
)
def test_a_key_holding_a_secret_is_refused_naming_the_key_never_the_value(
    tmp_path: Path, key: str, value: str
) -> None:
    path = _accounts_file(
        tmp_path,
        f'[accounts.east]\nprovider = "plivo"\nauth-id = "{EAST_ID}"\n'
        f'auth-token-env = "EAST_TOKEN"\n{key} = "{value}"\n',
    )
    with pytest.raises(ConfigError) as caught:
        read_accounts(path)
    assert repr(key) in str(caught.value) and "secret" in str(caught.value)
    assert value not in str(caught.value)


def test_a_secret_pasted_where_the_variable_name_belongs_is_refused_without_echoing_it(
    tmp_path: Path,
) -> None:
    token = "Zx9PqR7sT2uV4wX6yZ8aB0cD2eF4gH6iJ8kL"
    path = _accounts_file(
        tmp_path,
        f'[accounts.east]\nprovider = "plivo"\nauth-id = "{EAST_ID}"\n'
        f'auth-token-env = "{token}"\n',
    )
    with pytest.raises(ConfigError) as caught:
        read_accounts(path)
    assert "'auth-token-env'" in str(caught.value) and token not in str(caught.value)


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ('[accounts.east]\nprovider = "nope"\n', "'provider'"),
        ('[accounts.east]\nprovider = "plivo"\nauth-token-env = "T"\n', "'auth-id'"),
        (
            '[accounts.east]\nprovider = "plivo"\nauth-id = "XX12"\nauth-token-env = "T"\n',
            "'auth-id'",
        ),
        (
            f'[accounts.east]\nprovider = "plivo"\nauth-id = "{EAST_ID}"\n'
            'auth-token-env = "T"\nrat = 5\n',
            "'rat'",
        ),
        (
            f'[accounts.east]\nprovider = "plivo"\nauth-id = "{EAST_ID}"\n'
            'auth-token-env = "T"\nrate = -1\n',
            "'rate'",
        ),
        ('[accounts."bad name"]\nprovider = "plivo"\n', "'bad name'"),
        ('title = "x"\n', "'title'"),
        ("", "no accounts"),
    ],
)
def test_a_wrong_accounts_file_is_refused_naming_what_is_wrong(
    tmp_path: Path, body: str, named: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        read_accounts(_accounts_file(tmp_path, body))
    assert named in str(caught.value)


def test_shards_are_stable_sha256_buckets_that_split_every_account_once() -> None:
    names = [f"acct-{i}" for i in range(200)]
    assert shard_of("east", 4) == shard_of("east", 4)  # no per-process hash seed
    # pinned values: a pod on another machine or Python version must agree (SHA-256, not hash())
    assert [shard_of(n, 4) for n in ("east", "west", "north", "south")] == [2, 0, 1, 3]
    assert [shard_of(n, 7) for n in ("east", "west", "north", "south")] == [4, 6, 5, 5]
    buckets = [sorted(n for n in names if parse_shard(f"{k}/3").holds(n)) for k in range(3)]
    assert sorted(n for bucket in buckets for n in bucket) == sorted(names)
    assert all(len(b) > 40 for b in buckets)  # spread, not all in one shard
    assert parse_shard("0/1").holds(None)


@pytest.mark.parametrize("text", ["2/2", "1", "a/b", "-1/2", "0/0"])
def test_a_bad_shard_is_refused(text: str) -> None:
    with pytest.raises(ConfigError):
        parse_shard(text)


def test_rows_name_their_account_and_aliases_resolve_per_account(tmp_path: Path) -> None:
    write_csv(
        tmp_path / "in.csv",
        "number,campaign,account",
        [
            "4155550100,marketing,east",
            "4155550101,marketing,west",
            "4155550102,marketing,north",
            "4155550103,marketing,",
            "4155550104,shared,west",
            "4155550100,marketing,west",
        ],
    )
    write_csv(
        tmp_path / "campaigns.csv",
        "campaign_id,alias,account",
        ["CEAST01,marketing,east", "CWEST01,marketing,west", "CSHARED,shared,"],
    )
    loaded = load_rows(
        tmp_path / "in.csv",
        campaigns_path=tmp_path / "campaigns.csv",
        accounts=["east", "west"],
    )
    frame = loaded.frame.select("line", "account", "campaign_id", "reason")
    assert frame.rows() == [
        (2, "east", "CEAST01", "conflict"),  # the same number in two accounts
        (3, "west", "CWEST01", None),
        (4, "north", None, "unknown_account"),
        (5, None, None, "missing_account"),
        (6, "west", "CSHARED", None),
        (7, "west", "CWEST01", "conflict"),
    ]
    detail = loaded.frame.filter(pl.col("line") == 2).get_column("detail")[0]
    assert "account east" in detail and "account west" in detail


def test_account_names_match_whatever_their_case(tmp_path: Path) -> None:
    write_csv(tmp_path / "in.csv", "number,campaign,account", ["4155550100,C1, EAST "])
    loaded = load_rows(tmp_path / "in.csv", accounts=["east", "west"])
    assert loaded.frame.select("account", "reason").rows() == [("east", None)]
    with pytest.raises(ConfigError, match="differ only in case"):
        read_accounts(
            _accounts_file(
                tmp_path,
                '[accounts.east]\nprovider = "agentmessage"\napi-key-env = "A"\n'
                '[accounts.East]\nprovider = "agentmessage"\napi-key-env = "B"\n',
            )
        )


def test_account_option_names_every_rows_account_and_a_lone_account_needs_none(
    tmp_path: Path,
) -> None:
    write_csv(tmp_path / "in.csv", "number,campaign", ["4155550100,C1", "4155550101,C1"])
    forced = load_rows(tmp_path / "in.csv", accounts=["east", "west"], default_account="west")
    assert forced.frame.get_column("account").to_list() == ["west", "west"]
    lone = load_rows(tmp_path / "in.csv", accounts=["east"])
    assert lone.frame.get_column("account").to_list() == ["east", "east"]
    assert lone.frame.get_column("reason").to_list() == [None, None]


def test_without_accounts_an_account_column_stays_an_ordinary_column(tmp_path: Path) -> None:
    write_csv(tmp_path / "in.csv", "number,campaign,account", ["4155550100,C1,east"])
    loaded = load_rows(tmp_path / "in.csv")
    assert "account" in loaded.extra_columns and loaded.frame.get_column("reason")[0] is None


def test_an_unset_secret_variable_stops_the_run_before_anything_is_read_naming_it(
    tmp_path: Path,
) -> None:
    accounts = _accounts_file(tmp_path)
    write_csv(tmp_path / "in.csv", "number,campaign,account", ["4155550100,C1,east"])
    result = CliRunner().invoke(
        main,
        ["link", str(tmp_path / "in.csv"), "--accounts", str(accounts), "--yes"],
        env={"EAST_TOKEN": "x", "WEST_TOKEN": "y", "ORG_KEY": ""},
    )
    assert result.exit_code == 2
    assert "'org'" in result.output and "ORG_KEY" in result.output
    assert not (tmp_path / "in.csv.link.accounts.report.csv").exists()


def test_account_and_shard_need_the_accounts_file(tmp_path: Path) -> None:
    write_csv(tmp_path / "in.csv", "number,campaign", ["4155550100,C1"])
    for option in (["--account", "east"], ["--shard", "0/2"]):
        result = CliRunner().invoke(
            main, ["link", str(tmp_path / "in.csv"), *option, "--sandbox", "--yes"]
        )
        assert result.exit_code == 2 and "--accounts" in result.output


def test_validate_checks_accounts_offline_and_warns_of_unset_variables(tmp_path: Path) -> None:
    accounts = _accounts_file(tmp_path)
    write_csv(
        tmp_path / "in.csv",
        "number,campaign,account",
        ["4155550100,C1,east", "4155550101,C1,nowhere"],
    )
    result = CliRunner().invoke(
        main,
        ["validate", str(tmp_path / "in.csv"), "--accounts", str(accounts), "--no-report"],
        env={"EAST_TOKEN": "x", "WEST_TOKEN": "", "ORG_KEY": ""},
    )
    assert result.exit_code == 1
    assert "unknown_account" in result.output
    assert "WEST_TOKEN is not set" in result.output and "EAST_TOKEN" not in result.output


def test_a_job_file_may_hold_its_accounts_inline_and_no_secret(tmp_path: Path) -> None:
    write_csv(tmp_path / "in.csv", "number,campaign,account", ["4155550100,C1,east"])
    job = tmp_path / "job.toml"
    job.write_text(
        'command = "link"\ninput = "in.csv"\ndry-run = true\n\n'
        f'[accounts.east]\nprovider = "plivo"\nauth-id = "{EAST_ID}"\n'
        'auth-token-env = "EAST_TOKEN"\nauth-token = "leaked-token-value"\n',
        encoding="utf-8",
    )
    result = CliRunner().invoke(main, ["run", str(job)], env={"EAST_TOKEN": "x"})
    assert result.exit_code == 2
    assert "'auth-token'" in result.output and "leaked-token-value" not in result.output


def test_summary_json_of_a_refused_start_has_no_secret(tmp_path: Path) -> None:
    accounts = _accounts_file(tmp_path)
    write_csv(tmp_path / "in.csv", "number,campaign,account", ["4155550100,C1,east"])
    summary = tmp_path / "summary.json"
    result = CliRunner().invoke(
        main,
        [
            "link",
            str(tmp_path / "in.csv"),
            "--accounts",
            str(accounts),
            "--summary-json",
            str(summary),
            "--yes",
        ],
        env={"EAST_TOKEN": "tok-east-secret", "WEST_TOKEN": "tok-west-secret", "ORG_KEY": ""},
    )
    assert result.exit_code == 2
    text = summary.read_text() if summary.exists() else ""
    assert "tok-east-secret" not in text + result.output
    if text:
        assert json.loads(text)["exit_code"] == 2


def test_two_tables_for_one_provider_account_are_refused(tmp_path: Path) -> None:
    twin = (
        f'[accounts.a]\nprovider = "plivo"\nauth-id = "{EAST_ID}"\nauth-token-env = "A_T"\n'
        f'[accounts.b]\nprovider = "plivo"\nauth-id = "{EAST_ID}"\nauth-token-env = "B_T"\n'
    )
    with pytest.raises(ConfigError, match="'a' and 'b' have the same account id"):
        read_accounts(_accounts_file(tmp_path, twin))
    shared = (
        '[accounts.a]\nprovider = "agentmessage"\napi-key-env = "K"\n'
        '[accounts.b]\nprovider = "agentmessage"\napi-key-env = "K"\n'
    )
    with pytest.raises(ConfigError, match="same secret variable"):
        read_accounts(_accounts_file(tmp_path, shared))


def test_a_base_url_carrying_credentials_or_plain_http_is_refused_naming_the_account(
    tmp_path: Path,
) -> None:
    for url in ("https://SA1:tok@api.plivo.com", "http://api.plivo.com"):
        body = (
            f'[accounts.east]\nprovider = "plivo"\nauth-id = "{EAST_ID}"\n'
            f'auth-token-env = "T"\nbase-url = "{url}"\n'
        )
        with pytest.raises(ConfigError) as caught:
            read_accounts(_accounts_file(tmp_path, body))
        assert "[accounts.east]" in str(caught.value) and "tok" not in str(caught.value)


def test_a_job_file_with_inline_accounts_runs_each_row_in_its_account(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    write_csv(
        tmp_path / "in.csv",
        "number,campaign,account",
        ["4155550160,CUOGHIN,east", "2125550160,CRIGC80,west"],
    )
    job = tmp_path / "job.toml"
    job.write_text(
        'command = "link"\ninput = "in.csv"\nsandbox = true\nreport = "out.csv"\n\n'
        f'[accounts.east]\nprovider = "plivo"\nauth-id = "{EAST_ID}"\n'
        'auth-token-env = "EAST_TOKEN"\n\n'
        f'[accounts.west]\nprovider = "plivo"\nauth-id = "{WEST_ID}"\n'
        'auth-token-env = "WEST_TOKEN"\n',
        encoding="utf-8",
    )
    result = CliRunner().invoke(main, ["run", str(job), "--quiet"])
    assert result.exit_code == 0, result.output
    report = pl.read_csv(tmp_path / "out.csv", infer_schema=False)
    assert report.select("e164", "outcome", "account").rows() == [
        ("+14155550160", "linked", "east"),
        ("+12125550160", "linked", "west"),
    ]


def test_a_journal_resumes_after_a_rate_change_but_refuses_another_set_of_accounts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    write_csv(tmp_path / "in.csv", "number,campaign,account", ["4155550161,CUOGHIN,east"])
    one = f'[accounts.east]\nprovider = "plivo"\nauth-id = "{EAST_ID}"\nauth-token-env = "E"\n'
    accounts = tmp_path / "accounts.toml"
    command = ["link", "in.csv", "--accounts", "accounts.toml", "--sandbox", "--quiet"]
    accounts.write_text(one, encoding="utf-8")
    assert CliRunner().invoke(main, command).exit_code == 0
    accounts.write_text(one + "rate = 20\n", encoding="utf-8")  # the same job, paced anew
    assert CliRunner().invoke(main, command).exit_code == 0
    accounts.write_text(
        one + f'[accounts.west]\nprovider = "plivo"\nauth-id = "{WEST_ID}"\n'
        'auth-token-env = "W"\n',
        encoding="utf-8",
    )
    refused = CliRunner().invoke(main, command)
    assert refused.exit_code == 2 and "belongs to another job" in refused.output


def test_a_campaigns_files_account_cell_matches_whatever_its_case(tmp_path: Path) -> None:
    write_csv(tmp_path / "in.csv", "number,campaign,account", ["4155550100,marketing,east"])
    write_csv(tmp_path / "campaigns.csv", "campaign_id,alias,account", ["CEAST01,marketing,East"])
    loaded = load_rows(
        tmp_path / "in.csv", campaigns_path=tmp_path / "campaigns.csv", accounts=["east", "west"]
    )
    assert loaded.frame.select("account", "campaign_id", "reason").rows() == [
        ("east", "CEAST01", None)
    ]


def test_the_per_account_table_fits_80_columns_and_its_rows_add_up_to_the_run() -> None:
    from types import SimpleNamespace

    from rich.console import Console

    from bulk._jobvalues import AccountResult
    from bulk.cli._summary import accounts_table

    def account(rows: int, rate: float | None = 58.0, **counts: int) -> AccountResult:
        return AccountResult(rows, counts, requests=1234, http_429=12, rate_settled=rate)

    result = SimpleNamespace(
        counts={"linked": 117, "already": 3, "failed": 2, "rejected": 2, "unknown": 1},
        accounts={
            "east-coast": account(63, linked=57, already=3, failed=2, unknown=1),
            "west": account(60, linked=60),
            "north": account(1, None, rejected=1),
        },
    )
    console = Console(width=80, record=True)
    console.print(accounts_table(result))  # type: ignore[arg-type]
    text = console.export_text()
    header = next(line for line in text.splitlines() if "account" in line and "rows" in line)
    for column in ("linked", "already", "failed", "rejected", "unknown", "requests", "429s"):
        assert column in header, text  # no header cut short
    assert "…" not in text
    # the row naming no account (rejected before any account took it) has a line of its own
    none = next(line for line in text.splitlines() if "(none)" in line).split()
    assert none[1] == "1", text
