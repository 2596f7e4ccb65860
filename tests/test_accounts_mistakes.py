"""Many accounts misused as a careless operator and a broken provider would (the accounts
file's names, ``--account`` against the input's own column, one account failing while the
plan is read): each case ends in a clear message naming the account, or a rejected row."""

from __future__ import annotations

import socket
import uuid
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner

from bulk._accounts import read_accounts
from bulk._errors import ConfigError
from bulk.cli import main
from bulk.inputs import load_rows
from bulk.sandbox import SandboxConfig, seed_for_accounts
from tests._helpers import threaded_sandbox, write_csv

EAST_ID = "SAEASTEASTEASTEAST01"
WEST_ID = "SAWESTWESTWESTWEST02"


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.mark.parametrize(
    ("table", "named"),
    [
        ('[accounts."east\\n"]\nauth-token-env = "EAST_TOKEN"\n', "'east\\n'"),
        ('[accounts.east]\nauth-token-env = "EAST_TOKEN\\n"\n', "'auth-token-env'"),
        ('[accounts.east]\nauth-token-env = "EAST_TOKEN"\n', "'auth-id'"),
    ],
)
def test_a_name_ending_in_a_newline_is_refused(tmp_path: Path, table: str, named: str) -> None:
    # ``$`` matches before a final newline: "east\n" passed as a name and broke the summary
    # table and the report's account column (rows naming "east" were unknown_account)
    path = tmp_path / "accounts.toml"
    auth_id = EAST_ID + ("\\n" if named == "'auth-id'" else "")
    path.write_text(f'{table}provider = "plivo"\nauth-id = "{auth_id}"\n', encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        read_accounts(path)
    assert named in str(caught.value)


def test_the_sandbox_serves_an_agentmessage_account_whose_name_has_a_dot(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # account names may hold '.', but the sandbox's organizations could not: a traceback
    monkeypatch.chdir(tmp_path)
    accounts = tmp_path / "accounts.toml"
    accounts.write_text(
        '[accounts."acme.us"]\nprovider = "agentmessage"\napi-key-env = "ACME_KEY"\n'
        '[accounts.beta]\nprovider = "agentmessage"\napi-key-env = "BETA_KEY"\n',
        encoding="utf-8",
    )
    # the sandbox gives each organization org_<name> its own copy of 'marketing'
    ids = {n: uuid.uuid5(uuid.NAMESPACE_URL, f"org_{n}/marketing") for n in ("acme.us", "beta")}
    campaigns = write_csv(
        tmp_path / "campaigns.csv",
        "campaign_id,alias,account",
        [f"{campaign},marketing,{name}" for name, campaign in ids.items()],
    )
    source = write_csv(
        tmp_path / "in.csv",
        "number,campaign,account",
        ["+14155550100,marketing,acme.us", "+14155550101,marketing,beta"],
    )
    result = CliRunner().invoke(
        main,
        ["link", str(source), "--accounts", str(accounts), "--campaigns", str(campaigns),
         "--sandbox", "--yes", "--quiet"],
    )
    assert result.exit_code == 0, result.output
    report = pl.read_csv(tmp_path / "in.csv.link.accounts-sandbox.report.csv", infer_schema=False)
    assert report.select("account", "outcome").rows() == [("acme.us", "linked"), ("beta", "linked")]


@pytest.mark.parametrize("fault", ["refused token", "unreachable"])
def test_an_account_failing_while_the_plan_is_read_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fault: str
) -> None:
    # with thirty subaccounts, "plivo refused the credentials" alone does not say whose
    monkeypatch.chdir(tmp_path)
    seed = seed_for_accounts(plivo={EAST_ID: None, WEST_ID: None})
    with threaded_sandbox(SandboxConfig(settle_min=0.05, settle_max=0.2), seed) as sb:
        west_url = f"http://127.0.0.1:{_closed_port()}" if fault == "unreachable" else sb.base_url
        accounts = tmp_path / "accounts.toml"
        accounts.write_text(
            f'[accounts.east]\nprovider = "plivo"\nauth-id = "{EAST_ID}"\n'
            f'auth-token-env = "EAST_TOKEN"\nbase-url = "{sb.base_url}"\n'
            f'[accounts.west]\nprovider = "plivo"\nauth-id = "{WEST_ID}"\n'
            f'auth-token-env = "WEST_TOKEN"\nbase-url = "{west_url}"\n',
            encoding="utf-8",
        )
        source = write_csv(
            tmp_path / "in.csv",
            "number,campaign,account",
            ["+14155550100,CUOGHIN,east", "+14155550101,CUOGHIN,west"],
        )
        west_token = "wrongWESTtoken" if fault == "refused token" else sb.plivo_accounts[WEST_ID]
        env = {"EAST_TOKEN": sb.plivo_accounts[EAST_ID], "WEST_TOKEN": west_token}
        result = CliRunner().invoke(
            main,
            ["link", str(source), "--accounts", str(accounts), "--yes", "--quiet",
             "--attempts", "1", "--timeout", "2", "--resend-delay", "0.1"],
            env=env,
        )
        assert result.exit_code == 2, result.output
        assert "account west: plivo" in result.output
        assert "east" not in result.output.replace(str(tmp_path), "")
        assert not any(token in result.output for token in env.values())
        numbers = sb.counters().get("numbers", {})
        assert not any(c.get("link_accepted") for c in numbers.values())


def test_account_option_rejects_rows_whose_own_account_column_names_another(
    tmp_path: Path,
) -> None:
    # --account east over a file whose rows say west sent west's numbers to east, and the
    # report's account column (the input's own, "not written twice") said east: lost
    rows = ["4155550100,C1,east", "4155550101,C1,west", "4155550102,C1,", "4155550103,C1, EAST ",
            "4155550104,C1,nobody"]
    write_csv(tmp_path / "in.csv", "number,campaign,account", rows)
    loaded = load_rows(tmp_path / "in.csv", accounts=["east", "west"], default_account="east")
    assert loaded.frame.select("account", "reason").rows() == [
        ("east", None),
        ("west", "account_mismatch"),
        ("east", None),
        ("east", None),
        ("nobody", "account_mismatch"),
    ]
    assert "--account east" in loaded.frame.get_column("detail")[1]


@pytest.mark.parametrize(
    "base_url", ["https://api.plivo.com/", "https://API.Plivo.com", "https://api.plivo.com:443"]
)
def test_one_auth_id_under_two_spellings_of_its_base_url_is_refused(
    tmp_path: Path, base_url: str
) -> None:
    # two lanes on one Plivo account would each use its whole rate limit: twice what it allows
    path = tmp_path / "accounts.toml"
    path.write_text(
        f'[accounts.east]\nprovider = "plivo"\nauth-id = "{EAST_ID}"\n'
        'auth-token-env = "EAST_TOKEN"\n'
        f'[accounts.east2]\nprovider = "plivo"\nauth-id = "{EAST_ID}"\n'
        f'auth-token-env = "EAST2_TOKEN"\nbase-url = "{base_url}"\n',
        encoding="utf-8",
    )
    with pytest.raises(ConfigError, match="'east' and 'east2' have the same account id"):
        read_accounts(path)


@pytest.mark.parametrize("port", ["abc", "99999"])
def test_a_base_url_with_an_unusable_port_is_refused_not_a_traceback(
    tmp_path: Path, port: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "accounts.toml"
    path.write_text(
        f'[accounts.east]\nprovider = "plivo"\nauth-id = "{EAST_ID}"\n'
        f'auth-token-env = "EAST_TOKEN"\nbase-url = "https://127.0.0.1:{port}"\n',
        encoding="utf-8",
    )
    with pytest.raises(ConfigError, match=r"\[accounts.east\]: key 'base-url'"):
        read_accounts(path)
    source = write_csv(tmp_path / "in.csv", "number,campaign", ["+14155550100,CUOGHIN"])
    result = CliRunner().invoke(
        main,
        ["link", str(source), "--base-url", f"https://127.0.0.1:{port}", "--yes", "--quiet"],
        env={"PLIVO_AUTH_ID": EAST_ID, "PLIVO_AUTH_TOKEN": "tok"},
    )
    assert result.exit_code == 2 and "port" in result.output, result.output


def test_a_secret_variable_ending_in_a_newline_works_and_a_blank_or_broken_one_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a Kubernetes secret made --from-file keeps the file's last newline: aiohttp refused
    # the header with a ValueError traceback ("Forbidden control character ...")
    monkeypatch.chdir(tmp_path)
    with threaded_sandbox(SandboxConfig(settle_min=0.05, settle_max=0.2)) as sb:
        accounts = tmp_path / "accounts.toml"
        accounts.write_text(
            '[accounts.org]\nprovider = "agentmessage"\napi-key-env = "ORG_KEY"\n'
            f'base-url = "{sb.base_url}"\n',
            encoding="utf-8",
        )
        marketing = "4f1c2d3e-0000-4000-8000-000000000001"
        source = write_csv(tmp_path / "in.csv", "number,campaign", [f"+14155550100,{marketing}"])
        command = ["link", str(source), "--accounts", str(accounts), "--yes", "--quiet"]
        key = sb.agentmessage_api_key
        result = CliRunner().invoke(main, command, env={"ORG_KEY": key + "\n"})
        assert result.exit_code == 0, (result.output, result.exception)
        for broken in ("  ", f"{key[:9]}\n{key[9:]}"):
            result = CliRunner().invoke(main, command, env={"ORG_KEY": broken})
            assert result.exit_code == 2, (result.output, result.exception)
            assert "ORG_KEY" in result.output and "account 'org'" in result.output
            assert key[9:] not in result.output


def test_one_accounts_secret_ending_in_a_newline_works_and_a_broken_one_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the same as above without --accounts: AGENTMESSAGE_API_KEY=$'key\n' crashed with
    # aiohttp's "Forbidden control character" ValueError traceback (exit 1)
    monkeypatch.chdir(tmp_path)
    with threaded_sandbox(SandboxConfig(settle_min=0.05, settle_max=0.2)) as sb:
        marketing = "4f1c2d3e-0000-4000-8000-000000000001"
        source = write_csv(tmp_path / "in.csv", "number,campaign", [f"+14155550100,{marketing}"])
        command = ["link", str(source), "--provider", "agentmessage", "--base-url",
                   sb.base_url, "--yes", "--quiet"]
        key = sb.agentmessage_api_key
        result = CliRunner().invoke(main, command, env={"AGENTMESSAGE_API_KEY": key + "\n"})
        assert result.exit_code == 0, (result.output, result.exception)
        result = CliRunner().invoke(
            main, command, env={"AGENTMESSAGE_API_KEY": f"{key[:9]}\n{key[9:]}"}
        )
        assert result.exit_code == 2, (result.output, result.exception)
        assert "AGENTMESSAGE_API_KEY" in result.output and key[9:] not in result.output


@pytest.mark.parametrize("tail", ["/?token=s3cretvalue", "/#s3cretvalue", "/v1?key=s3cretvalue"])
def test_a_base_url_with_a_query_or_fragment_is_refused_without_echoing_it(
    tmp_path: Path, tail: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # before: accepted, and the query (where a pasted key sits) went into every request's URL
    # and the journal's fingerprint
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "accounts.toml"
    path.write_text(
        f'[accounts.east]\nprovider = "plivo"\nauth-id = "{EAST_ID}"\n'
        f'auth-token-env = "EAST_TOKEN"\nbase-url = "https://api.plivo.com{tail}"\n',
        encoding="utf-8",
    )
    with pytest.raises(ConfigError, match="no query or fragment") as refused:
        read_accounts(path)
    assert "s3cretvalue" not in str(refused.value)
    source = write_csv(tmp_path / "in.csv", "number,campaign", ["+14155550100,CUOGHIN"])
    result = CliRunner().invoke(
        main,
        ["link", str(source), "--base-url", f"https://api.plivo.com{tail}", "--yes", "--quiet"],
        env={"PLIVO_AUTH_ID": EAST_ID, "PLIVO_AUTH_TOKEN": "tok"},
    )
    assert result.exit_code == 2 and "no query or fragment" in result.output, result.output
    assert "s3cretvalue" not in result.output
