"""Real runs in a subprocess, killed (SIGKILL) or interrupted (SIGINT) mid-way, then resumed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import polars as pl
import pytest

from tests._helpers import (
    NUMBERS,
    ThreadedSandbox,
    journal_states,
    link_command,
    plivo_env,
    wait_for_progress,
    write_csv,
)


def _assert_complete(sb: ThreadedSandbox, tmp_path: Path) -> None:
    report = pl.read_csv(tmp_path / "report.csv", infer_schema=False)
    assert report.height == len(NUMBERS)
    assert report.get_column("outcome").to_list() == ["linked"] * len(NUMBERS)
    assert report.get_column("e164").to_list() == NUMBERS
    for number in NUMBERS:
        counters = sb.counters()["numbers"].get(number, {})
        assert counters.get("link_accepted", 0) == 1, (number, counters)


def test_sigkill_mid_run_then_resume_links_every_number_exactly_once(
    tmp_path: Path, sandbox_factory: Callable[..., ThreadedSandbox]
) -> None:
    sb = sandbox_factory(settle_min=0.2, settle_max=0.8)
    command = link_command(sb, tmp_path)
    proc = subprocess.Popen(
        command, env=plivo_env(sb), cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    wait_for_progress(tmp_path / "run.journal", 30, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    states = journal_states(tmp_path / "run.journal")
    assert states.get("planned", 0) > 0, states  # really killed mid-way
    resumed = subprocess.run(
        command, env=plivo_env(sb), cwd=tmp_path, capture_output=True, timeout=120
    )
    assert resumed.returncode == 0, resumed.stdout.decode() + resumed.stderr.decode()
    _assert_complete(sb, tmp_path)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl_c", "sigterm"])
def test_interrupt_exits_130_with_a_consistent_journal_and_a_report_then_resumes(
    signum: int, tmp_path: Path, sandbox_factory: Callable[..., ThreadedSandbox]
) -> None:
    sb = sandbox_factory(settle_min=0.2, settle_max=0.8)
    command = link_command(sb, tmp_path)
    proc = subprocess.Popen(
        command, env=plivo_env(sb), cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    wait_for_progress(tmp_path / "run.journal", 20, proc)
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err.decode()
    assert "resume" in err.decode()
    partial = pl.read_csv(tmp_path / "report.csv", infer_schema=False)
    assert partial.height == len(NUMBERS)  # every row, interrupted ones as unknown
    assert "interrupted" in " ".join(r or "" for r in partial.get_column("reason").to_list())
    resumed = subprocess.run(
        command, env=plivo_env(sb), cwd=tmp_path, capture_output=True, timeout=120
    )
    assert resumed.returncode == 0, resumed.stdout.decode() + resumed.stderr.decode()
    _assert_complete(sb, tmp_path)


def test_ctrl_c_at_the_confirmation_prompt_exits_130_at_once(
    tmp_path: Path, sandbox_factory: Callable[..., ThreadedSandbox]
) -> None:
    import pty
    import select

    sb = sandbox_factory()
    command = [c for c in link_command(sb, tmp_path) if c != "--yes"]
    controller, terminal = pty.openpty()  # stdin is a terminal: bulk asks before sending
    proc = subprocess.Popen(
        command,
        env=plivo_env(sb),
        cwd=tmp_path,
        stdin=terminal,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    os.close(terminal)
    try:
        assert proc.stderr is not None
        seen = b""
        deadline = time.monotonic() + 30
        while b"Send these requests?" not in seen:
            assert time.monotonic() < deadline, seen.decode()
            ready, _, _ = select.select([proc.stderr], [], [], 0.2)
            if ready:
                seen += os.read(proc.stderr.fileno(), 4096)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 130  # never waits for Enter
    finally:
        os.close(controller)
        if proc.poll() is None:
            proc.kill()
    assert sb.counters()["totals"].get("link_accepted", 0) == 0  # nothing was sent


def test_ctrl_c_after_one_account_stopped_keeps_its_reason_and_interrupts_the_others(
    tmp_path: Path, sandbox_factory: Callable[..., ThreadedSandbox]
) -> None:
    # two accounts: Plivo's links settle slowly (the run is still polling them when Ctrl-C
    # comes); the AgentMessage key may read but not attach, so its lane stops at once
    sb = sandbox_factory(settle_min=20.0, settle_max=30.0)
    accounts = tmp_path / "accounts.toml"
    accounts.write_text(
        f'[accounts.calls]\nprovider = "plivo"\nauth-id = "{sb.plivo_auth_id}"\n'
        f'auth-token-env = "CALLS_TOKEN"\nbase-url = "{sb.base_url}"\n\n'
        f'[accounts.texts]\nprovider = "agentmessage"\napi-key-env = "TEXTS_KEY"\n'
        f'base-url = "{sb.base_url}"\n',
        encoding="utf-8",
    )
    rows = [f"{n},CUOGHIN,calls" for n in NUMBERS[:10]]
    rows += [f"+1415555{n:04d},4f1c2d3e-0000-4000-8000-000000000001,texts" for n in (103, 104)]
    src = write_csv(tmp_path / "in.csv", "number,campaign_id,account", rows)
    command = [sys.executable, "-m", "bulk", "link", str(src), "--accounts", str(accounts),
               "--poll-interval", "0.3", "--settle-timeout", "60", "--report",
               str(tmp_path / "report.csv"), "--journal", str(tmp_path / "run.journal"),
               "--yes", "--quiet"]
    env = {**os.environ, "CALLS_TOKEN": sb.plivo_auth_token,
           "TEXTS_KEY": "am_live_sandboxreadonly000000000000"}
    proc = subprocess.Popen(
        command, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 30
    while sb.counters()["endpoints"].get("agentmessage.attach", {}).get("requests", 0) == 0:
        assert proc.poll() is None and time.monotonic() < deadline, "no attach was tried"
        time.sleep(0.05)
    time.sleep(0.5)  # the refusal has come back: texts' lane stopped, calls' rows still settle
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err.decode()
    report = pl.read_csv(tmp_path / "report.csv", infer_schema=False)
    reasons = dict(zip(report.get_column("account"), report.get_column("reason"), strict=True))
    assert "account texts: agentmessage refused the credentials" in reasons["texts"]
    assert "interrupted" in reasons["calls"]
