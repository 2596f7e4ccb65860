"""Every command the ``bulk sandbox`` banner prints works as printed, from a copy of bulk's
source folder (where its ``samples/`` paths point)."""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner

from bulk.cli import main

SAMPLES = Path(__file__).resolve().parent.parent / "samples"


@pytest.fixture
def banner(tmp_path: Path) -> Iterator[list[str]]:
    """The banner of a ``bulk sandbox`` serving on a free port, its changes settling in a
    tenth of a second and no number that never settles (the commands are the same)."""
    state = tmp_path / "state.json"
    state.write_text(json.dumps({"never_settle": []}), encoding="utf-8")
    proc = subprocess.Popen(
        [sys.executable, "-m", "bulk", "sandbox", "--port", "0", "--settle", "0.05:0.1",
         "--state", str(state)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    assert proc.stdout is not None
    lines: list[str] = []
    try:
        for line in proc.stdout:
            lines.append(line.rstrip("\n"))
            if line.startswith("Accounts"):
                break
        yield lines
    finally:
        proc.terminate()
        proc.communicate(timeout=10)


def test_every_command_the_sandbox_banner_prints_works_as_printed(
    banner: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shutil.copytree(SAMPLES, tmp_path / "samples")
    onboarding = tmp_path / "samples" / "onboarding.csv"  # its first 40 rows: a quick test
    head = onboarding.read_text(encoding="utf-8").splitlines(keepends=True)[:41]
    onboarding.write_text("".join(head), encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    env: dict[str, str] = {}
    commands = []
    for line in banner:
        if not line.startswith("  ") or line.strip().startswith("("):
            continue  # the commands are indented; a note in parentheses is not one
        words = shlex.split(line)
        if words[:1] == ["export"]:
            env.update(word.split("=", 1) for word in words[1:])  # type: ignore[misc]
        elif words[:1] == ["bulk"]:
            commands.append(words[1:])
    assert len(commands) == 2 and {"PLIVO_AUTH_ID", "AGENTMESSAGE_API_KEY"} <= env.keys()
    for command in commands:
        result = CliRunner().invoke(main, command, env=env)
        # the sample shows every outcome: some rows are rejected or fail by design
        assert result.exit_code == 1, result.output
        report = next(Path("samples").glob("onboarding.csv.link.*.report.csv"))
        outcomes = pl.read_csv(report, infer_schema=False).get_column("outcome").to_list()
        assert outcomes.count("linked") > 30, (command, report, outcomes.count("failed"))
        assert outcomes.count("failed") <= 3, (command, report)
        report.unlink()
