"""A run that resumes a journal says so before sending and in its summary: what the journal
holds, from when, and how to start over; the plan counts rows still being polled as in
progress."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest
from click.testing import CliRunner

from bulk._job import JobSpec, Snapshot, run_job
from bulk._states import State
from bulk.cli import main
from bulk.engine import Plan
from tests._helpers import write_csv

NUMBERS = [f"+1206555{n:04d}" for n in range(100, 120)]


@pytest.fixture(autouse=True)
def _fast_sandbox(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, quick_sandbox: None
) -> None:
    monkeypatch.chdir(tmp_path)


def _spec(tmp_path: Path) -> JobSpec:
    src = write_csv(tmp_path / "in.csv", "number", NUMBERS)
    return JobSpec(
        "link", src, campaign="CUOGHIN", sandbox=True, batch_size=4, rate=50.0,
        poll_interval=0.05,
    )


async def test_after_an_interrupt_the_plan_counts_rows_being_polled_as_in_progress(
    tmp_path: Path,
) -> None:
    with anyio.CancelScope() as scope:

        def watch(snapshot: Snapshot) -> None:
            if sum(r.state is State.SUBMITTED for r in snapshot.rows.values()) >= 8:
                scope.cancel()

        await run_job(_spec(tmp_path), on_snapshot=watch)
    plans: list[Plan] = []

    def on_plan(plan: Plan) -> bool:
        plans.append(plan)
        return True

    result = await run_job(_spec(tmp_path), on_plan=on_plan)

    assert plans[0].in_progress >= 8, plans[0]
    assert plans[0].resumed is not None and "0 of 20 rows had their outcome" in plans[0].resumed
    assert result.counts["linked"] == len(NUMBERS)


def test_a_rerun_says_it_replays_the_journal_and_how_to_start_over(tmp_path: Path) -> None:
    source = write_csv(tmp_path / "in.csv", "number,campaign", ["+14155550105,CUOGHIN"])
    args = ["link", str(source), "--sandbox", "--quiet", "--poll-interval", "0.1"]
    first = CliRunner().invoke(main, args)
    assert first.exit_code == 0, first.output
    assert "Resuming" not in first.output

    again = CliRunner().invoke(main, args)

    assert again.exit_code == 0, again.output
    journal = tmp_path / "in.csv.link.plivo-sandbox.journal"
    state = tmp_path / "in.csv.link.plivo-sandbox.sandbox-state.json"
    assert f"Resuming the journal {journal}, started " in again.output
    assert "1 of 1 rows had their outcome already (linked 1)" in again.output
    assert f"To start over instead, delete {journal} and {state}" in again.output
    assert "1 rows had their outcome before this run and are reported as they were" in (
        again.output
    )
