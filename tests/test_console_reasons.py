"""``link``, ``unlink``, ``move`` and ``status`` say on the console why rows did not end as
asked (counts per reason, then the first rows), and what a non-zero exit means; piped, the
summary is plain lines: no box-drawing characters, no wrapped title."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from bulk.cli import main
from tests._helpers import write_csv

BOXES = set("┏━┳┓┃┡╇┩│└┴┘─┌┐├┤┼╭╮╰╯")


@pytest.fixture(autouse=True)
def _fast_sandbox(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, quick_sandbox: None
) -> None:
    monkeypatch.chdir(tmp_path)


def _run(*args: str) -> str:
    result = CliRunner().invoke(main, [*args, "--sandbox", "--quiet", "--poll-interval", "0.1"])
    assert result.exit_code == 1, result.output
    return result.output


def test_a_misspelled_campaign_column_is_named_on_the_console_of_bulk_link(
    tmp_path: Path,
) -> None:
    source = write_csv(
        tmp_path / "numbers with a long name.csv", "number,campaing",
        ["+14155550105,CUOGHIN", "+14155550106,CUOGHIN"],
    )
    output = _run("link", str(source))
    assert "2  rejected  missing_campaign" in output
    assert "line 2: '+14155550105' rejected: missing_campaign:" in output
    assert "exit 1: 2 rows did not end as asked (2 rejected); see " in output
    assert "numbers with a long name.csv.link.plivo-sandbox.failed.csv" in output
    assert not BOXES & set(output)
    assert "bulk link: 2 rows\n" in output  # the title on one line


def test_failed_rows_are_grouped_by_reason_without_their_numbers(tmp_path: Path) -> None:
    source = write_csv(
        tmp_path / "in.csv", "number,campaign",
        ["+14155550144,CUOGHIN", "+14155550142,CUOGHIN", "+14155550105,CUOGHIN"],
    )
    output = _run("link", str(source))
    assert "1  failed  The number N is not a valid number\n" in output
    assert "1  failed  the provider settled the link as FAILED\n" in output
    assert "line 3: '+14155550142' failed: the provider settled the link as FAILED" in output
    assert "linked" in output and "exit 1: 2 rows" in output


def test_more_requests_than_planned_says_why(tmp_path: Path) -> None:
    source = write_csv(
        tmp_path / "in.csv", "number,campaign", ["+14155550144,CUOGHIN", "+14155550105,CUOGHIN"]
    )
    output = _run("link", str(source))
    assert "Plan: 1 link requests" in output and "link 2," in output
    assert (
        "More requests than planned: 1 x a batch refused for a number in it, sent again "
        "without that number." in output
    )


@pytest.mark.parametrize("command", ["unlink", "status"])
def test_unlink_and_status_name_their_reasons_too(command: str, tmp_path: Path) -> None:
    source = write_csv(tmp_path / "in.csv", "number,campaign", ["+14155550105,NOSUCH1"])
    output = _run(command, str(source))
    assert "Rows not ended as asked, by reason:" in output
    assert "line 2: '+14155550105'" in output
    assert "exit 1: 1 rows did not end as asked" in output
