"""Refusals a new user meets, in words they can act on: a journal of another job names the
file or option that changed (never a digest) and the two ways forward; a campaigns file given
as the one campaign is refused; a run that fails before starting leaves no lock file."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from bulk.cli import main
from tests._helpers import write_csv

DIGEST = re.compile(r"[0-9a-f]{16,}")


@pytest.fixture(autouse=True)
def _fast_sandbox(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, quick_sandbox: None
) -> None:
    monkeypatch.chdir(tmp_path)


def _link(source: Path, *extra: str) -> tuple[int, str]:
    result = CliRunner().invoke(
        main, ["link", str(source), "--sandbox", "--quiet", "--poll-interval", "0.1", *extra]
    )
    return result.exit_code, result.output


def test_a_changed_input_is_named_with_its_size_and_time_and_the_ways_forward(
    tmp_path: Path,
) -> None:
    source = write_csv(tmp_path / "in.csv", "number,campaign", ["+14155550105,CUOGHIN"])
    assert _link(source)[0] == 0
    write_csv(source, "number,campaign", ["+14155550105,CUOGHIN", "+14155550106,CUOGHIN"])

    code, output = _link(source)

    journal = tmp_path / "in.csv.link.plivo-sandbox.journal"
    assert code == 2, output
    text = " ".join(output.split())
    assert f"{journal} belongs to another job (the input {source} changed since" in text
    assert re.search(r"then \S+in\.csv: \d+ bytes, modified \d{4}-\d\d-\d\d ", text), text
    assert re.search(r"now \d+ bytes, modified \d{4}-\d\d-\d\d ", text), text
    assert "To resume that job, put the input back as it was; to start over, delete" in text
    assert "or give another --journal" in text
    assert not DIGEST.search(output), output


def test_another_campaign_option_is_named_option_by_option(tmp_path: Path) -> None:
    source = write_csv(tmp_path / "in.csv", "number", ["+14155550105"])
    assert _link(source, "--campaign", "CUOGHIN")[0] == 0

    code, output = _link(source, "--campaign", "CRIGC80")

    assert code == 2, output
    text = " ".join(output.split())
    assert "--campaign: journal has 'CUOGHIN', this run has 'CRIGC80'" in text
    assert "give the options it was started with" in text


@pytest.mark.parametrize("command", ["link", "validate"])
def test_a_campaigns_file_given_to_campaign_is_refused_suggesting_campaigns(
    command: str, tmp_path: Path
) -> None:
    source = write_csv(tmp_path / "in.csv", "number", ["+14155550105"])
    campaigns = tmp_path / "campaigns.csv"
    campaigns.write_text("campaign_id,alias\nCUOGHIN,marketing\n", encoding="utf-8")
    args = [command, str(source), "--campaign", "campaigns.csv"]
    result = CliRunner().invoke(main, [*args, *(["--sandbox"] if command == "link" else [])])
    assert result.exit_code == 2, result.output
    assert "use --campaigns campaigns.csv" in result.output
    assert not list(tmp_path.glob("in.csv.*"))  # nothing written, no lock left


def test_a_run_that_fails_before_starting_leaves_no_lock_file(tmp_path: Path) -> None:
    source = write_csv(tmp_path / "in.csv", "phone_number_typo,campaign", ["+14155550105,C1"])
    code, output = _link(source)
    assert code == 2, output
    assert [p.name for p in tmp_path.iterdir()] == ["in.csv"]
