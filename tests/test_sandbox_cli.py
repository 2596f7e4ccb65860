"""``bulk sandbox`` on the command line."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from click.testing import CliRunner

from bulk.cli import main

REPO = Path(__file__).resolve().parents[1]


def test_help_explains_every_option_with_default_or_example() -> None:
    result = CliRunner().invoke(main, ["sandbox", "--help"])
    assert result.exit_code == 0
    text = " ".join(result.output.split())
    for option in ("--host", "--port", "--seed", "--state", "--settle", "--fail-rate",
                   "--latency", "--error-rate", "--reset-rate", "--hang-rate", "--hang-seconds",
                   "--truncated-rate", "--non-json-rate", "--burst-429-rate",
                   "--burst-429-length", "--after-rate", "--plivo-rate-limit", "--plivo-max-batch",
                   "--agentmessage-rate-limit", "--time-factor", "--strict",
                   "--unlink-while-pending", "--relink-failed", "--list-order",
                   "--reattach-failed"):
        assert option in text
    command = main.get_command(None, "sandbox")  # type: ignore[arg-type]
    assert command is not None
    for param in command.params:
        if param.name == "help":
            continue
        assert param.help and ("Example" in param.help or "e.g." in param.help
                               or "default" in param.help.lower()
                               or param.show_default), param.name


@pytest.mark.parametrize("args", [["--settle", "3:1"], ["--settle", "x"],
                                  ["--plivo-rate-limit", "300"], ["--error-rate", "2"],
                                  ["--error-rate", "0.7", "--reset-rate", "0.7"],
                                  ["--list-order", "random"], ["--relink-failed", "maybe"],
                                  ["--plivo-max-batch", "0"]])
def test_bad_options_are_usage_errors(args: list[str]) -> None:
    result = CliRunner().invoke(main, ["sandbox", *args])
    assert result.exit_code == 2


def test_unusable_state_file_exits_2_naming_it(tmp_path: Path) -> None:
    bad = tmp_path / "state.json"
    bad.write_text("{")
    result = CliRunner().invoke(main, ["sandbox", "--state", str(bad)])
    assert result.exit_code == 2
    assert "state.json" in result.output and "not JSON" in result.output


def test_command_serves_prints_credentials_and_stops_on_ctrl_c() -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "bulk", "sandbox", "--port", "0", "--settle", "0.01:0.02"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert first.startswith("bulk sandbox listening on http://127.0.0.1:")
        base_url = first.split()[4]
        lines = [proc.stdout.readline() for _ in range(10)]
        text = "".join(lines)
        assert "PLIVO_AUTH_ID=MASANDBOXAUTHID00001" in text
        assert "PLIVO_AUTH_TOKEN=sandbox-auth-token" in text
        assert "AGENTMESSAGE_API_KEY=am_live_sandboxkey0000000000000000" in text
        assert f"--base-url {base_url}" in text
        with urllib.request.urlopen(base_url + "/_sandbox/counters", timeout=5) as resp:
            assert json.load(resp)["totals"]["requests"] == 0
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_plivo_max_batch_option_reaches_the_config() -> None:
    from bulk.cli.sandbox import _Options, _sandbox_config

    command = main.get_command(None, "sandbox")  # type: ignore[arg-type]
    assert command is not None
    default = command.make_context("sandbox", [])
    assert _sandbox_config(_Options(**default.params)).plivo_max_batch == 100
    given = command.make_context("sandbox", ["--plivo-max-batch", "40"])
    assert _sandbox_config(_Options(**given.params)).plivo_max_batch == 40


@pytest.mark.parametrize(
    ("content", "said"),
    [(None, "is a device"), (b"\xff\xfe{}", "not UTF-8"), (b"[" * 100_000, "nested too deep")],
    ids=["device", "not-utf8", "nested"],
)
def test_a_state_file_that_cannot_be_a_state_exits_2_not_a_traceback(
    content: bytes | None, said: str, tmp_path: Path
) -> None:
    # before: /dev/zero was read until memory ran out (MemoryError), invalid UTF-8 and deep
    # nesting ended in UnicodeDecodeError / RecursionError tracebacks
    state = Path("/dev/zero") if content is None else tmp_path / "state.json"
    if content is not None:
        state.write_bytes(content)
    result = CliRunner().invoke(main, ["sandbox", "--state", str(state)])
    assert result.exit_code == 2, (result.output, result.exception)
    assert said in result.output and "Traceback" not in result.output
