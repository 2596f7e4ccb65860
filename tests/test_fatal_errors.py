"""A refusal or a full disk mid-run ends in one clear line, exit 2 and a report written from
the journal; a report bulk could not write is found before sending."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from aiohttp import web
from click.testing import CliRunner

from bulk._errors import AccountsStopped, ConfigError
from bulk._job import JobSpec, run_job
from bulk._journal import Journal
from bulk.cli import main
from tests._helpers import ThreadedSandbox, behind_proxy, write_csv

READONLY_KEY = "am_live_sandboxreadonly000000000000"
AM_CAMPAIGN = "4f1c2d3e-0000-4000-8000-000000000001"
FAST = ["--poll-interval", "0.2", "--settle-timeout", "4", "--yes", "--quiet"]


@pytest.fixture(autouse=True)
def _work_in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


def _invoke(args: list[str], env: dict[str, str]) -> Any:
    return CliRunner().invoke(main, args, env=env)


def said(text: str, output: str) -> bool:
    """``text`` is in ``output``, ignoring whitespace (the console wraps, even inside paths)."""
    return "".join(text.split()) in "".join(output.split())


def test_a_read_only_key_refused_at_attach_exits_2_with_one_line_and_a_report(
    tmp_path: Path, sandbox_factory: Callable[..., ThreadedSandbox]
) -> None:
    sb = sandbox_factory()
    numbers = [f"+1415555{n:04d}" for n in range(103, 109)]
    src = write_csv(tmp_path / "in.csv", "number", numbers)
    report = tmp_path / "out.csv"
    result = _invoke(
        [
            "link",
            str(src),
            "--provider",
            "agentmessage",
            "--campaign",
            AM_CAMPAIGN,
            "--base-url",
            sb.base_url,
            "--report",
            str(report),
            "--journal",
            str(tmp_path / "j"),
            "--rate",
            "60",
            *FAST,
        ],
        env={"AGENTMESSAGE_API_KEY": READONLY_KEY},
    )
    assert result.exit_code == 2, (result.output, result.exception)
    assert not isinstance(result.exception, BaseExceptionGroup)
    assert "Traceback" not in result.output and "ExceptionGroup" not in result.output
    assert said("bulk: agentmessage refused the credentials: HTTP 403", result.output)
    assert READONLY_KEY not in result.output
    rows = pl.read_csv(report, infer_schema=False).to_dicts()
    assert len(rows) == len(numbers)
    for row in rows:  # nothing was attached: no row may claim success
        assert row["outcome"] in ("unknown", "failed"), row
        assert "refused the credentials" in row["reason"], row
        assert READONLY_KEY not in row["reason"]
    assert sb.counters()["totals"]["attach_accepted"] == 0


def test_a_full_disk_under_the_journal_exits_2_with_a_journal_message_and_a_report(
    tmp_path: Path,
    sandbox_factory: Callable[..., ThreadedSandbox],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The disk fills up right after the journal is seeded.

    Filling a real disk needs a size-limited mount, which needs privileges the tests do not
    have. SQLite has its own hard size limit, ``PRAGMA max_page_count``: a write that needs one
    page more fails inside SQLite exactly as on a full disk, with ``SQLITE_FULL``
    ("database or disk is full"). The pragma lives on the connection, so the test sets it on
    the run's own connection to the real journal file, at its size just after seeding: the
    first state changes that need a new page hit the limit mid-run.
    """
    seed = Journal.seed

    def seed_then_fill(self: Journal, records: Any) -> None:
        seed(self, records)
        pages = self._db.execute("PRAGMA page_count").fetchone()[0]
        self._db.execute(f"PRAGMA max_page_count = {pages}")

    monkeypatch.setattr(Journal, "seed", seed_then_fill)
    sb = sandbox_factory()
    numbers = [f"+1415555{n:04d}" for n in range(1000, 1400)]
    src = write_csv(tmp_path / "in.csv", "number,note", [f"{n},x" for n in numbers])
    report = tmp_path / "out.csv"
    result = _invoke(
        [
            "link",
            str(src),
            "--campaign",
            "CUOGHIN",
            "--base-url",
            sb.base_url,
            "--report",
            str(report),
            "--journal",
            str(tmp_path / "j"),
            *FAST,
        ],
        env=sb.env("plivo"),
    )
    assert result.exit_code == 2, (result.output, result.exception)
    assert "Traceback" not in result.output and "ExceptionGroup" not in result.output
    assert not isinstance(result.exception, (BaseExceptionGroup, sqlite3.Error))
    journal = tmp_path / "j"
    assert said(f"{journal}: cannot write the journal (database or disk is full)", result.output)
    rows = pl.read_csv(report, infer_schema=False).to_dicts()
    assert len(rows) == len(numbers)
    assert any(r["outcome"] == "unknown" for r in rows)


@pytest.mark.parametrize(
    ("option", "where", "expected"),
    [
        ("--report", "{tmp}/afile/out.csv", "{tmp}/afile is not a folder"),
        ("--report", "/proc/bulk-report.csv", "cannot create a file in /proc"),
        ("--failures", "{tmp}/afile/deeper/failed.csv", "{tmp}/afile is not a folder"),
    ],
)
def test_a_report_path_bulk_cannot_write_is_refused_before_anything_is_sent(
    option: str,
    where: str,
    expected: str,
    tmp_path: Path,
    sandbox_factory: Callable[..., ThreadedSandbox],
) -> None:
    """Root writes through chmod, so the paths fail for root too: a folder that is a regular
    file, and /proc, where no file can be created. (A directory in the file's place is
    refused by the option itself, and by check_path below.)"""
    (tmp_path / "afile").write_text("not a folder")
    path = where.format(tmp=tmp_path)
    sb = sandbox_factory()
    src = write_csv(tmp_path / "in.csv", "number", ["+14155550103", "+14155550104"])
    args = ["link", str(src), "--campaign", "CUOGHIN", "--base-url", sb.base_url, *FAST]
    args += ["--journal", str(tmp_path / "j"), option, path]
    result = _invoke(args, env=sb.env("plivo"))
    assert result.exit_code == 2, (result.output, result.exception)
    assert said(f"bulk: {option} {path}:", result.output)
    assert said(expected.format(tmp=tmp_path), result.output)
    assert sb.counters()["totals"]["requests"] == 0  # found before anything was sent


def test_the_writability_probe_leaves_an_existing_report_untouched(tmp_path: Path) -> None:
    from bulk._report import check_path

    report = tmp_path / "out.csv"
    report.write_text("line,outcome\n2,linked\n")
    check_path(report, "--report")
    assert report.read_text() == "line,outcome\n2,linked\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.csv"]
    (tmp_path / "adir.csv").mkdir()
    with pytest.raises(ConfigError, match=r"adir\.csv: is a directory"):
        check_path(tmp_path / "adir.csv", "--report")


def test_one_accounts_key_refused_mid_run_stops_that_account_alone(
    tmp_path: Path, sandbox_factory: Callable[..., ThreadedSandbox]
) -> None:
    # two accounts in one run: a Plivo account that works, and an AgentMessage key that may
    # read (planning passes) but not attach (403 at its first attach, mid-run)
    sb = sandbox_factory()
    accounts = _calls_and_texts(tmp_path, sb, sb.base_url)
    plivo_numbers = [f"+1650555{n:04d}" for n in range(100, 110)]
    am_numbers = [f"+1415555{n:04d}" for n in range(103, 109)]
    rows = [f"{n},CUOGHIN,calls" for n in plivo_numbers]
    rows += [f"{n},{AM_CAMPAIGN},texts" for n in am_numbers]
    src = write_csv(tmp_path / "in.csv", "number,campaign_id,account", rows)
    report = tmp_path / "out.csv"
    summary = tmp_path / "summary.json"
    args = ["link", str(src), "--accounts", str(accounts), "--report", str(report),
            "--journal", str(tmp_path / "j"), "--summary-json", str(summary), *FAST]
    env = {"CALLS_TOKEN": sb.plivo_auth_token, "TEXTS_KEY": READONLY_KEY}
    result = _invoke(args, env)
    assert result.exit_code == 2, (result.output, result.exception)
    assert "Traceback" not in result.output
    assert said("bulk: account texts: agentmessage refused the credentials: HTTP 403",
                result.output)
    assert said("the other accounts ran to the end", result.output)
    # the other account finished: the summary tables as at a normal end, then the one line
    assert said(f"bulk link: {len(rows)} rows", result.output)
    assert "per account" in result.output and said("texts (stopped)", result.output)
    assert result.output.rstrip().splitlines()[-1].startswith("bulk: account texts")
    stopped = {n: a["stopped"] for n, a in json.loads(summary.read_text())["accounts"].items()}
    assert stopped["calls"] is None
    assert "agentmessage refused the credentials: HTTP 403" in stopped["texts"]
    assert READONLY_KEY not in summary.read_text()
    assert READONLY_KEY not in result.output and sb.plivo_auth_token not in result.output
    by_number = {r["e164"]: r for r in pl.read_csv(report, infer_schema=False).to_dicts()}
    for number in plivo_numbers:  # the account whose key works ran to the end
        assert by_number[number]["outcome"] == "linked", by_number[number]
    for number in am_numbers:  # the refused account's rows say why, and resume later
        row = by_number[number]
        assert row["outcome"] in ("unknown", "failed"), row
        assert "account texts" in row["reason"] and READONLY_KEY not in row["reason"], row
    assert sb.counters()["totals"]["attach_accepted"] == 0

    # with a key that may attach, the same command finishes the refused account's rows
    result = _invoke(args, {**env, "TEXTS_KEY": sb.agentmessage_api_key})
    assert result.exit_code == 0, (result.output, result.exception)
    outcomes = {r["e164"]: r["outcome"] for r in pl.read_csv(report, infer_schema=False).to_dicts()}
    assert all(outcomes[n] == "linked" for n in plivo_numbers + am_numbers), outcomes
    assert all(a["stopped"] is None for a in json.loads(summary.read_text())["accounts"].values())


async def test_an_account_answered_only_429s_mid_run_stops_alone_not_at_the_settle_timeout(
    tmp_path: Path, sandbox_factory: Callable[..., ThreadedSandbox]
) -> None:
    """One account's provider takes the attaches, then answers every read 429. After
    ``max_refused`` seconds of nothing but 429s its reads ended unsent at once, but its
    poll rounds went on until the settle timeout; now its lane stops as a refused key's does:
    its rows ``unknown`` saying why, resumable, the other account run to the end."""
    sb = sandbox_factory()
    attached: list[str] = []

    def refuse_reads(method: str, path: str, body: bytes) -> web.Response | None:
        if method == "POST" and path.endswith("/campaign"):
            attached.append(path)
        elif attached:
            return web.json_response({"error": "slow down"}, status=429,
                                     headers={"Retry-After": "1"})
        return None

    plivo_numbers = [f"+1650555{n:04d}" for n in range(100, 110)]
    am_numbers = [f"+1415555{n:04d}" for n in range(103, 109)]
    rows = [f"{n},CUOGHIN,calls" for n in plivo_numbers]
    rows += [f"{n},{AM_CAMPAIGN},texts" for n in am_numbers]
    src = write_csv(tmp_path / "in.csv", "number,campaign_id,account", rows)
    with behind_proxy(sb, before=refuse_reads) as proxied:
        accounts = _calls_and_texts(tmp_path, sb, proxied.base_url)
        spec = JobSpec(
            "link", src, accounts=accounts, report=tmp_path / "out.csv",
            journal=tmp_path / "j", summary_json=tmp_path / "summary.json",
            poll_interval=0.2, settle_timeout=30.0, max_refused=2.0, resend_delay=0.5,
        )
        env = {"CALLS_TOKEN": sb.plivo_auth_token, "TEXTS_KEY": sb.agentmessage_api_key}
        started = time.monotonic()
        with pytest.MonkeyPatch.context() as patch:
            for name, value in env.items():
                patch.setenv(name, value)
            with pytest.raises(AccountsStopped) as stopped:
                await run_job(spec)
    assert time.monotonic() - started < 20.0  # not the 30 s settle timeout
    message = str(stopped.value)
    assert message.startswith("account texts: agentmessage answered only 429s for over 2 s")
    assert message.endswith("the other accounts ran to the end")
    assert stopped.value.exit_code == 2
    assert sb.agentmessage_api_key not in message and sb.plivo_auth_token not in message
    by_number = {r["e164"]: r for r in pl.read_csv(spec.report, infer_schema=False).to_dicts()}
    for number in plivo_numbers:
        assert by_number[number]["outcome"] == "linked", by_number[number]
    for number in am_numbers:
        row = by_number[number]
        assert row["outcome"] == "unknown" and "account texts" in row["reason"], row
        assert "only 429s" in row["reason"], row
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["exit_code"] == 2
    assert summary["accounts"]["calls"]["stopped"] is None
    assert "only 429s" in summary["accounts"]["texts"]["stopped"]


def _calls_and_texts(tmp_path: Path, sb: ThreadedSandbox, texts_url: str) -> Path:
    """An accounts file: ``calls``, the sandbox's Plivo account, and ``texts``, an
    AgentMessage key (CALLS_TOKEN, TEXTS_KEY) at ``texts_url``."""
    accounts = tmp_path / "accounts.toml"
    accounts.write_text(
        f"""
[accounts.calls]
provider = "plivo"
auth-id = "{sb.plivo_auth_id}"
auth-token-env = "CALLS_TOKEN"
base-url = "{sb.base_url}"

[accounts.texts]
provider = "agentmessage"
api-key-env = "TEXTS_KEY"
base-url = "{texts_url}"
""",
        encoding="utf-8",
    )
    return accounts
