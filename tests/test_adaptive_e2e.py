"""``--rate auto`` end to end: the CLI against the sandbox, AgentMessage's limit set low and
not told to bulk. Behaviour only (every row right, few 429s); speeds live in the benchmark."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner

from bulk.cli import main
from tests._helpers import ThreadedSandbox, write_csv

MARKETING = "4f1c2d3e-0000-4000-8000-000000000001"


@pytest.fixture(autouse=True)
def _work_in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


def test_auto_rate_links_every_row_under_an_unpublished_limit_with_few_429s(
    tmp_path: Path, sandbox_factory: Callable[..., ThreadedSandbox]
) -> None:
    sb = sandbox_factory(seed=5, agentmessage_rate_limit=15, agentmessage_rate_window=1.0)
    numbers = [f"{p}{n:04d}" for p in ("+1650555", "+1206555") for n in range(100, 145)]
    src = write_csv(tmp_path / "in.csv", "number,campaign", [f"{n},{MARKETING}" for n in numbers])
    report, summary = tmp_path / "out.csv", tmp_path / "summary.json"
    result = CliRunner().invoke(
        main,
        [
            "link",
            str(src),
            "--report",
            str(report),
            "--summary-json",
            str(summary),
            "--rate",
            "auto",
            "--poll-interval",
            "0.3",
            "--settle-timeout",
            "10",
            "--yes",
            "--provider",
            "agentmessage",
            "--base-url",
            sb.base_url,
        ],
        env=sb.env("agentmessage"),
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    outcomes = pl.read_csv(report, infer_schema=False)["outcome"].to_list()
    assert outcomes == ["linked"] * len(numbers)
    data = json.loads(summary.read_text())
    requests = sum(data["requests"].values())
    assert data["http_429"] <= 0.1 * requests, data
    assert data["rate_settled"] > 0
    assert "rate settled at" in result.output


def test_rate_auto_is_agentmessages_default_and_a_number_stays_fixed(
    tmp_path: Path, sandbox_factory: Callable[..., ThreadedSandbox]
) -> None:
    sb = sandbox_factory(seed=6)
    src = write_csv(tmp_path / "in.csv", "number,campaign", [f"+14155550150,{MARKETING}"])
    settled = {}
    for rate in ([], ["--rate", "7"]):
        summary = tmp_path / "summary.json"
        result = CliRunner().invoke(
            main,
            [
                "status",
                str(src),
                "--summary-json",
                str(summary),
                *rate,
                "--yes",
                "--provider",
                "agentmessage",
                "--base-url",
                sb.base_url,
            ],
            env=sb.env("agentmessage"),
            catch_exceptions=False,
        )
        assert result.exit_code == 0, result.output
        settled[bool(rate)] = json.loads(summary.read_text())["rate_settled"]
        assert ("rate settled at" in result.output) is not bool(rate)
    assert settled[True] == 7.0
    assert settled[False] >= 9.5  # auto starts at AgentMessage's 9.5/s and only rises
