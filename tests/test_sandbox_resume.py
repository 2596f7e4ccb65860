"""``--sandbox`` keeps the sandbox's state beside the journal: interrupted, the same command
finishes the job, as it would against a real account."""

from __future__ import annotations

import json
from pathlib import Path

import anyio
import pytest

from bulk._job import JobSpec, Snapshot, default_paths, run_job
from bulk._sandboxed import state_path
from bulk._states import State
from bulk.sandbox import ManualClock, SandboxConfig, SandboxState
from bulk.sandbox._persist import state_data
from bulk.sandbox._seed import apply_state_data, default_seed
from tests._helpers import write_csv

NUMBERS = [f"+1206555{n:04d}" for n in range(100, 130)]


@pytest.fixture(autouse=True)
def _fast_sandbox(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, quick_sandbox: None
) -> None:
    """Changes settle in a tenth of a second; the outputs go to the test's folder."""
    monkeypatch.chdir(tmp_path)


def _spec(tmp_path: Path) -> JobSpec:
    src = write_csv(tmp_path / "in.csv", "number", NUMBERS)
    return JobSpec(
        "link", src, campaign="CUOGHIN", sandbox=True, batch_size=5, rate=50.0,
        poll_interval=0.05,
    )


async def _interrupted(spec: JobSpec, after_submitted: int) -> None:
    """Run the job until ``after_submitted`` rows are being polled, then cancel it (what
    Ctrl-C does to the run's task)."""
    with anyio.CancelScope() as scope:

        def watch(snapshot: Snapshot) -> None:
            polled = sum(1 for r in snapshot.rows.values() if r.state is State.SUBMITTED)
            if polled >= after_submitted:
                scope.cancel()

        await run_job(spec, on_snapshot=watch)
    assert scope.cancelled_caught


async def test_interrupted_sandbox_run_finishes_with_the_same_command(
    tmp_path: Path,
) -> None:
    spec = _spec(tmp_path)
    await _interrupted(spec, after_submitted=10)
    journal = default_paths(spec)[2]
    assert state_path(journal).is_file()

    result = await run_job(_spec(tmp_path))

    assert result.counts["linked"] == len(NUMBERS), result.counts
    assert result.exit_code == 0


async def test_a_new_journal_starts_the_sandbox_afresh(
    tmp_path: Path,
) -> None:
    first = await run_job(_spec(tmp_path))
    assert first.counts["linked"] == len(NUMBERS)
    journal = default_paths(_spec(tmp_path))[2]
    journal.unlink()  # starting over: the sandbox's saved state goes with the journal

    again = await run_job(_spec(tmp_path))

    assert again.counts["linked"] == len(NUMBERS), again.counts


def test_saved_state_settles_what_is_under_way_and_keeps_what_never_settles() -> None:
    clock = ManualClock()
    state = SandboxState(SandboxConfig(settle_min=5, settle_max=5), clock=clock)
    now = clock.now()
    state.plivo.link("CUOGHIN", ["+12065550150", "+14155550143"], now=now, request_id="r",
                     callback=None)
    state.plivo.unlink("CUOGHIN", "+14155550100", now=now, request_id="r", callback=None)

    data = json.loads(json.dumps(state_data(state)))
    restored = SandboxState(SandboxConfig(), seed=apply_state_data(default_seed(), data))

    links = restored.plivo.campaigns["CUOGHIN"].links
    assert links["+12065550150"].status == "COMPLETED"
    assert links["+14155550143"].status == "PROCESSING"  # a number that never settles
    assert "+14155550100" not in links  # its unlink was under way
    assert restored.snapshot()["agentmessage"] == state.snapshot()["agentmessage"]


def test_the_testing_switch_sets_the_in_process_sandbox_settle_and_restores_it() -> None:
    from bulk import _sandboxed
    from bulk.testing import sandbox_settle

    profile = _sandboxed._settle[0]
    with sandbox_settle(0.01, 0.02):
        assert _sandboxed._settle[0] == (0.01, 0.02)
    assert _sandboxed._settle[0] == profile
