"""Options that would do nothing, or that are misspelt, are refused with a word of help."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from bulk.cli import main
from tests._helpers import write_csv


@pytest.mark.parametrize(
    ("option", "why"),
    [
        (["--journal", "j.journal"], "--journal has no use there (it keeps no journal)"),
        (["--dry-run"], "--dry-run has no use there (it sends nothing anyway)"),
        (["--send-until", "1h"], "--send-until has no use there (it sends no change)"),
        (["--failures", "f.csv"], "--failures has no use there (it writes the report only)"),
    ],
)
def test_status_refuses_options_it_would_ignore(
    option: list[str], why: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    source = write_csv(tmp_path / "in.csv", "number,campaign", ["+14155550105,CUOGHIN"])
    result = CliRunner().invoke(main, ["status", str(source), "--sandbox", *option])
    assert result.exit_code == 2, result.output
    assert f"bulk status reads only: {why}" in result.output
    assert [p.name for p in tmp_path.iterdir()] == ["in.csv"]


def _job(tmp_path: Path, line: str) -> Path:
    write_csv(tmp_path / "in.csv", "number,campaign", ["+14155550105,CUOGHIN"])
    job = tmp_path / "job.toml"
    job.write_text(f'command = "link"\ninput = "in.csv"\n{line}\n', encoding="utf-8")
    return job


def test_a_job_files_rate_word_says_auto_is_valid_too(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["run", str(_job(tmp_path, 'rate = "fast"'))])
    assert result.exit_code == 2
    assert "key 'rate' must be a number (requests per second) or \"auto\", not 'fast'" in (
        result.output
    )


def test_a_misspelt_job_file_key_gets_a_did_you_mean(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["run", str(_job(tmp_path, 'campaing = "CUOGHIN"'))])
    assert result.exit_code == 2
    assert "unknown key 'campaing' for 'bulk link' (did you mean 'campaign'?)" in result.output
