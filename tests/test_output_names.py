"""One naming scheme for every default output: beside the input, named after the input's
whole file name, the command and where the requests go; nothing collides."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from bulk._job import JobSpec, default_paths
from bulk.cli import main
from bulk.cli.validate import default_report_path
from tests._helpers import write_csv


def _names(spec: JobSpec) -> set[Path]:
    return set(default_paths(spec))


def test_two_providers_two_inputs_and_sandbox_or_not_never_share_an_output(
    tmp_path: Path,
) -> None:
    csv, xlsx = tmp_path / "numbers.csv", tmp_path / "numbers.xlsx"
    specs = [
        JobSpec("link", csv),
        JobSpec("link", csv, provider="agentmessage"),
        JobSpec("link", csv, sandbox=True),
        JobSpec("link", xlsx),
        JobSpec("unlink", csv),
        JobSpec("link", tmp_path / "other" / "numbers.csv"),
    ]
    every = [path for spec in specs for path in default_paths(spec)]
    assert len(set(every)) == len(every)


def test_default_outputs_are_beside_the_input_as_validate_writes_its_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    source = tmp_path / "data" / "numbers.csv"
    report, failures, journal = default_paths(JobSpec("link", source))
    assert report == source.parent / "numbers.csv.link.plivo.report.csv"
    assert failures == source.parent / "numbers.csv.link.plivo.failed.csv"
    assert journal == source.parent / "numbers.csv.link.plivo.journal"
    assert default_report_path(source) == source.parent / "numbers.csv.validate.report.csv"


def test_explicit_paths_are_kept_as_given(tmp_path: Path) -> None:
    spec = JobSpec(
        "link", tmp_path / "in.csv", report=Path("r.json"), journal=Path("j.db"),
        failures=Path("f.csv"),
    )
    assert default_paths(spec) == (Path("r.json"), Path("f.csv"), Path("j.db"))
    spec = JobSpec("link", tmp_path / "in.csv", report=Path("out/r.csv"))
    assert default_paths(spec)[1] == Path("out/r.failed.csv")


def test_a_journal_named_the_earlier_way_in_the_current_folder_is_resumed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "numbers.link.plivo.journal").write_bytes(b"")
    spec = JobSpec("link", tmp_path / "numbers.csv")
    assert default_paths(spec)[2] == Path("numbers.link.plivo.journal")
    # never for a sandbox run: earlier sandbox runs kept no state to resume against
    sandboxed = JobSpec("link", tmp_path / "numbers.csv", sandbox=True)
    assert default_paths(sandboxed)[2].name == "numbers.csv.link.plivo-sandbox.journal"


def test_the_same_input_through_both_sandboxed_providers_leaves_both_reports(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, quick_sandbox: None
) -> None:
    source = write_csv(tmp_path / "in.csv", "number,campaign", ["+14155550105,marketing"])
    plivo = tmp_path / "campaigns.csv"
    plivo.write_text("campaign_id,alias\nCUOGHIN,marketing\n", encoding="utf-8")
    agentmessage = tmp_path / "campaigns-am.csv"
    agentmessage.write_text(
        "campaign_id,alias\n4f1c2d3e-0000-4000-8000-000000000001,marketing\n", encoding="utf-8"
    )
    for provider, campaigns in (("plivo", plivo), ("agentmessage", agentmessage)):
        result = CliRunner().invoke(
            main,
            ["link", str(source), "--campaigns", str(campaigns), "--provider", provider,
             "--sandbox", "--quiet", "--poll-interval", "0.1"],
        )
        assert result.exit_code == 0, result.output
    for provider in ("plivo", "agentmessage"):
        report = tmp_path / f"in.csv.link.{provider}-sandbox.report.csv"
        assert "linked" in report.read_text(encoding="utf-8-sig")
