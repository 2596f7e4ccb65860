"""``bulk validate`` through click's CliRunner: exit codes, summary, report."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
from click.testing import CliRunner

from bulk.cli import main

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
CAMPAIGNS = "campaign_id,alias\nCUOGHIN,marketing\nCRIGC80,alerts\n"


def _files(tmp_path: Path, numbers: str) -> tuple[Path, Path]:
    path = tmp_path / "numbers.csv"
    path.write_text(numbers, encoding="utf-8")
    campaigns = tmp_path / "campaigns.csv"
    campaigns.write_text(CAMPAIGNS, encoding="utf-8")
    return path, campaigns


def test_all_valid_exits_0_and_writes_the_default_report(tmp_path: Path) -> None:
    path, campaigns = _files(tmp_path, "number,campaign\n4155550100,marketing\n")
    result = CliRunner().invoke(main, ["validate", str(path), "--campaigns", str(campaigns)])
    assert result.exit_code == 0, result.output
    assert "1 rows: 1 valid, 0 rejected" in result.output
    assert "CUOGHIN (marketing)" in result.output
    report = tmp_path / "numbers.csv.validate.report.csv"
    assert report.read_bytes().startswith(b"\xef\xbb\xbf")
    frame = pl.read_csv(report, infer_schema=False)
    assert frame.columns[:3] == ["line", "number", "campaign"]
    assert frame["e164"].to_list() == ["+14155550100"]


def test_some_rejected_exits_1_and_the_report_has_every_row(tmp_path: Path) -> None:
    path, campaigns = _files(
        tmp_path, "number,campaign,store\n4155550100,marketing,S1\n8005550100,alerts,S2\n"
    )
    report = tmp_path / "out.csv"
    result = CliRunner().invoke(
        main, ["validate", str(path), "--campaigns", str(campaigns), "--report", str(report)]
    )
    assert result.exit_code == 1, result.output
    assert "toll_free" in result.output and "line 3" in result.output
    frame = pl.read_csv(report, infer_schema=False)
    assert frame["line"].to_list() == ["2", "3"]
    assert frame["store"].to_list() == ["S1", "S2"]
    assert frame["reason"].to_list() == [None, "toll_free"]


def test_unusable_file_exits_2_with_a_message_and_no_traceback(tmp_path: Path) -> None:
    path, _ = _files(tmp_path, "number,campaign\n4155550100,a,b\n")
    result = CliRunner().invoke(main, ["validate", str(path)])
    assert result.exit_code == 2
    assert "line 2" in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "numbers.csv.validate.report.csv").exists()


def test_missing_input_exits_2(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["validate", str(tmp_path / "nope.csv")])
    assert result.exit_code == 2
    assert "not found" in result.output


def test_unknown_region_exits_2(tmp_path: Path) -> None:
    path, _ = _files(tmp_path, "number,campaign\n4155550100,C\n")
    result = CliRunner().invoke(main, ["validate", str(path), "--region", "XX"])
    assert result.exit_code == 2
    assert "XX" in result.output


def test_report_neutralises_formulas_but_not_plain_numbers(tmp_path: Path) -> None:
    path, _ = _files(tmp_path, "number,campaign,note\n+14155550100,C,=HYPERLINK(1)\n")
    result = CliRunner().invoke(main, ["validate", str(path)])
    assert result.exit_code == 0, result.output
    text = (tmp_path / "numbers.csv.validate.report.csv").read_text(encoding="utf-8-sig")
    assert "'=HYPERLINK(1)" in text
    assert ",+14155550100," in text


def test_report_format_follows_the_extension(tmp_path: Path) -> None:
    path, _ = _files(tmp_path, "number,campaign\n4155550100,C\n")
    for name in ("r.parquet", "r.json", "r.jsonl"):
        result = CliRunner().invoke(main, ["validate", str(path), "--report", str(tmp_path / name)])
        assert result.exit_code == 0, result.output
    assert pl.read_parquet(tmp_path / "r.parquet")["e164"].to_list() == ["+14155550100"]
    assert json.loads((tmp_path / "r.json").read_text())[0]["e164"] == "+14155550100"
    assert json.loads((tmp_path / "r.jsonl").read_text().splitlines()[0])["line"] == 2


def test_unsupported_report_extension_is_a_usage_error(tmp_path: Path) -> None:
    path, _ = _files(tmp_path, "number,campaign\n4155550100,C\n")
    result = CliRunner().invoke(main, ["validate", str(path), "--report", str(tmp_path / "r.xlsx")])
    assert result.exit_code == 2


def test_action_option_rejects_rows_asking_for_another_action(tmp_path: Path) -> None:
    path, _ = _files(tmp_path, "number,campaign,action\n4155550100,C,unlink\n")
    result = CliRunner().invoke(main, ["validate", str(path), "--action", "link", "--no-report"])
    assert result.exit_code == 1
    assert "action_mismatch" in result.output


def test_campaign_option_applies_to_every_row(tmp_path: Path) -> None:
    path, campaigns = _files(tmp_path, "phone\n4155550100\n4155550101\n")
    result = CliRunner().invoke(
        main,
        [
            "validate",
            str(path),
            "--campaigns",
            str(campaigns),
            "--campaign",
            "alerts",
            "--no-report",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "CRIGC80 (alerts)" in result.output


def test_help_teaches_with_examples() -> None:
    result = CliRunner().invoke(main, ["validate", "--help"])
    assert result.exit_code == 0
    assert "Examples:" in result.output and "samples/onboarding.csv" in result.output
    assert "Exit status" in result.output


def test_onboarding_sample_validates_with_every_messy_case_reported(tmp_path: Path) -> None:
    report = tmp_path / "onboarding.validated.csv"
    result = CliRunner().invoke(
        main,
        ["validate", str(SAMPLES / "onboarding.csv"), "--campaigns", str(SAMPLES / "campaigns.csv"),
         "--report", str(report)],
    )  # fmt: skip
    assert result.exit_code == 1, result.output
    frame = pl.read_csv(report, infer_schema=False)
    reasons = set(frame["reason"].drop_nulls())
    assert reasons >= {
        "empty", "invalid", "not_us", "toll_free", "premium_rate", "precision_lost", "letters",
        "extension", "missing_campaign", "unknown_campaign", "duplicate", "conflict",
    }  # fmt: skip
    valid = frame.filter(pl.col("reason").is_null())
    for number in ("+14155550100", "+14155550142", "+14155550143", "+14155550144"):
        assert valid.filter(pl.col("e164") == number)["campaign_id"].to_list() == ["CUOGHIN"]


def test_migration_and_cleanup_samples_are_all_valid() -> None:
    for sample in ("migration", "cleanup"):
        result = CliRunner().invoke(
            main,
            ["validate", str(SAMPLES / f"{sample}.csv"), "--campaigns",
             str(SAMPLES / "campaigns.csv"), "--no-report"],
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        assert "20 rows: 20 valid" in result.output
