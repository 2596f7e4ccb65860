"""Numbers and URLs in configuration: the accounts file, the job file and ``--base-url``.

A value that would crash or hang a run (``rate = inf`` divided by zero, ``rate = nan`` paced
nothing, a base URL ``urlsplit`` cannot read) stops it with exit 2 and one line naming the file
and key (or the option), before anything is sent. The accounts file takes for each number
exactly what the command line's option takes.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner

from bulk._accounts import read_accounts
from bulk._errors import ConfigError
from bulk.cli import main
from bulk.cli.run import link as link_command
from tests._helpers import write_csv

AUTH_ID = "MAXXXXXXXXXXXXXXXXXX"
HEAD = f'[accounts.alpha]\nprovider = "plivo"\nauth-id = "{AUTH_ID}"\nauth-token-env = "ALPHA"\n'
NOT_FINITE = ["nan", "inf", "-inf"]
#: accounts-file key -> its command-line option
NUMBER_KEYS = {"rate": "rate", "max-rate": "max_rate", "concurrency": "concurrency",
               "batch-size": "batch_size"}
BAD_URLS = ["https://[::1", "http://[::1", "https://[::1]:99999", "https://[not-an-ip]"]


@pytest.fixture(autouse=True)
def _work_in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for name in ("PLIVO_AUTH_ID", "PLIVO_AUTH_TOKEN", "AGENTMESSAGE_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    write_csv(tmp_path / "in.csv", "number,campaign_id", ["+14155550193,CUOGHIN"])


def _accounts(tmp_path: Path, line: str) -> Path:
    path = tmp_path / "accounts.toml"
    path.write_text(HEAD + line + "\n", encoding="utf-8")
    return path


def _one_line(output: str) -> str:
    lines = output.strip().splitlines()
    assert len(lines) == 1, output
    assert "Traceback" not in output
    return lines[0]


@pytest.mark.parametrize("key", ["rate", "max-rate"])
@pytest.mark.parametrize("value", NOT_FINITE)
def test_an_accounts_files_number_that_is_not_finite_is_refused_naming_file_and_key(
    tmp_path: Path, key: str, value: str
) -> None:
    path = _accounts(tmp_path, f"{key} = {value}")
    with pytest.raises(ConfigError, match=rf"accounts.toml: \[accounts.alpha\]: key '{key}'"):
        read_accounts(path)


@pytest.mark.parametrize("value", ["inf", "nan"])
def test_a_run_with_an_accounts_rate_that_is_not_finite_stops_before_sending(
    tmp_path: Path, value: str
) -> None:
    path = _accounts(tmp_path, f"rate = {value}")
    for command in (["link", "in.csv", "--yes"], ["validate", "in.csv"]):
        result = CliRunner().invoke(main, [*command, "--accounts", str(path)], env={"ALPHA": "t"})
        assert result.exit_code == 2, (command, result.output, result.exception)
        line = _one_line(result.output)
        assert str(path) in line and "'rate'" in line, line


def _option_takes(option: click.Option, value: Any) -> bool:
    try:
        option.type.convert(value, option, None)
    except click.BadParameter:
        return False
    return True


def _accounts_take(tmp_path: Path, key: str, value: Any) -> bool:
    text = repr(value) if not isinstance(value, float) or math.isfinite(value) else str(value)
    try:
        read_accounts(_accounts(tmp_path, f"{key} = {text}"))
    except ConfigError as exc:
        assert f"key '{key}'" in str(exc)
        return False
    return True


@pytest.mark.parametrize("key", NUMBER_KEYS)
def test_the_accounts_file_takes_each_number_its_command_line_option_takes(
    tmp_path: Path, key: str
) -> None:
    option = next(p for p in link_command.params if p.name == NUMBER_KEYS[key])
    assert isinstance(option, click.Option)
    if isinstance(option.type, click.types.IntParamType):
        probes: list[Any] = [-1, 0, 1, 2, 255, 256, 257, 999, 1000, 1001, 10**9]
    else:
        probes = [math.nan, math.inf, -math.inf, -1.0, 0, 0.0, 0.005, 0.01, 0.2, 0.5, 1, 9.5,
                  100.0, 1e9]
    for value in probes:
        assert _accounts_take(tmp_path, key, value) == _option_takes(option, value), value


@pytest.mark.parametrize("url", BAD_URLS)
def test_an_accounts_base_url_that_cannot_be_read_is_refused_naming_file_and_key(
    tmp_path: Path, url: str
) -> None:
    path = _accounts(tmp_path, f'base-url = "{url}"')
    with pytest.raises(ConfigError, match=r"\[accounts.alpha\]: key 'base-url'"):
        read_accounts(path)
    for command in (["link", "in.csv", "--yes"], ["validate", "in.csv"]):
        result = CliRunner().invoke(main, [*command, "--accounts", str(path)], env={"ALPHA": "t"})
        assert result.exit_code == 2, (command, result.output, result.exception)
        line = _one_line(result.output)
        assert str(path) in line and "'base-url'" in line, line


@pytest.mark.parametrize("url", BAD_URLS)
def test_a_base_url_option_that_cannot_be_read_is_a_usage_error_naming_it(url: str) -> None:
    result = CliRunner().invoke(
        main, ["link", "in.csv", "--yes", "--base-url", url],
        env={"PLIVO_AUTH_ID": AUTH_ID, "PLIVO_AUTH_TOKEN": "t"},
    )
    assert result.exit_code == 2, (result.output, result.exception)
    assert isinstance(result.exception, SystemExit) and "Traceback" not in result.output
    assert "Error: Invalid value for '--base-url'" in result.output, result.output


@pytest.mark.parametrize(
    ("line", "key"),
    [("rate = nan", "rate"), ("max-rate = inf", "max-rate"),
     ("poll-interval = -inf", "poll-interval"), ("concurrency = 0", "concurrency"),
     ("batch-size = -5", "batch-size"),
     ("settle-timeout = 0.0", "settle-timeout"), ("timeout = nan", "timeout"),
     ('base-url = "https://[::1"', "base-url"), ('base-url = "http://example.com"', "base-url")],
)
def test_a_job_files_bad_value_is_one_line_naming_the_file_and_key(
    tmp_path: Path, line: str, key: str
) -> None:
    job = tmp_path / "job.toml"
    job.write_text(f'command = "link"\ninput = "in.csv"\n{line}\n', encoding="utf-8")
    result = CliRunner().invoke(main, ["run", str(job)], env={"PLIVO_AUTH_ID": AUTH_ID,
                                                              "PLIVO_AUTH_TOKEN": "t"})
    assert result.exit_code == 2, (result.output, result.exception)
    text = _one_line(result.output)
    assert str(job) in text and f"key '{key}'" in text, text


def test_a_job_files_inline_accounts_are_checked_like_an_accounts_file(tmp_path: Path) -> None:
    job = tmp_path / "job.toml"
    job.write_text('command = "link"\ninput = "in.csv"\n' + HEAD + "rate = inf\n",
                   encoding="utf-8")
    result = CliRunner().invoke(main, ["run", str(job)], env={"ALPHA": "t"})
    assert result.exit_code == 2, (result.output, result.exception)
    text = _one_line(result.output)
    assert str(job) in text and "key 'rate'" in text, text
