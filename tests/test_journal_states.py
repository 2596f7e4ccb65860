"""The row lifecycle table and the journal that enforces it."""

from __future__ import annotations

from pathlib import Path

import pytest

from bulk import IllegalTransition, JournalError
from bulk._journal import Change, Journal, RowRecord
from bulk._states import TERMINAL, Event, State, next_state

FP = {"command": "link", "provider": "plivo", "input_sha256": "abc"}


def _journal(tmp_path: Path) -> Journal:
    journal = Journal.open(tmp_path / "j.sqlite", FP)
    journal.seed(
        [
            RowRecord(2, "+14155550100", "link", "CUOGHIN", None),
            RowRecord(3, "+14155550101", "move", "CRIGC80", "CMIGOLD"),
            RowRecord(4, None, "none", None, None, State.REJECTED, reason="invalid"),
        ]
    )
    return journal


def test_link_row_walks_planned_sending_submitted_linked() -> None:
    state = State.PLANNED
    for event, expected in [
        (Event.SEND, State.SENDING),
        (Event.ACCEPT, State.SUBMITTED),
        (Event.SETTLE, State.LINKED),
    ]:
        nxt = next_state("link", state, event)
        assert nxt is expected
        state = nxt


def test_two_step_move_releases_before_it_links() -> None:
    path = [
        (Event.RELEASE, State.RELEASING),
        (Event.ACCEPT, State.RELEASE_SUBMITTED),
        (Event.SETTLE, State.RELEASED),
        (Event.SEND, State.SENDING),
        (Event.ACCEPT, State.SUBMITTED),
        (Event.SETTLE, State.MOVED),
    ]
    state = State.PLANNED
    for event, expected in path:
        state_next = next_state("move", state, event)
        assert state_next is expected, (state, event)
        state = state_next


def test_a_move_cannot_link_before_its_release_settled() -> None:
    assert next_state("move", State.RELEASE_SUBMITTED, Event.SEND) is None
    assert next_state("move", State.RELEASING, Event.SEND) is None


def test_terminal_states_accept_no_event() -> None:
    for action in ("link", "unlink", "move"):
        for state in TERMINAL:
            for event in Event:
                if (state, event) == (State.DEFERRED, Event.RESUME):
                    continue  # the one way out: a later run of the job picks deferred rows up
                assert next_state(action, state, event) is None, (action, state, event)


def test_a_deferred_row_only_resumes_to_planned() -> None:
    for action in ("link", "unlink", "move"):
        assert next_state(action, State.PLANNED, Event.DEFER) is State.DEFERRED
        assert next_state(action, State.DEFERRED, Event.RESUME) is State.PLANNED
        # a move already released is never deferred: its link still goes out
        assert next_state(action, State.RELEASED, Event.DEFER) is None


def test_a_lost_answer_keeps_the_row_in_flight_until_a_read_decides() -> None:
    for action in ("link", "unlink", "move"):
        assert next_state(action, State.SENDING, Event.LOSE) is State.SENDING
        assert next_state(action, State.SENDING, Event.SETTLE) is None  # never settled blind
    assert next_state("move", State.RELEASING, Event.LOSE) is State.RELEASING


def test_journal_refuses_an_illegal_transition_and_writes_nothing(tmp_path: Path) -> None:
    journal = _journal(tmp_path)
    with pytest.raises(IllegalTransition):
        journal.apply([Change(2, Event.SEND), Change(2, Event.SETTLE)])
    assert journal.get(2).state is State.PLANNED
    reopened = Journal.open(tmp_path / "j.sqlite", FP)
    assert reopened.get(2).state is State.PLANNED


def test_journal_persists_states_attempts_and_times_across_reopen(tmp_path: Path) -> None:
    journal = _journal(tmp_path)
    journal.apply(
        [
            Change(2, Event.SEND),
            Change(2, Event.ACCEPT, attempts=2, fields={"submitted_at": 1000.0}),
        ]
    )
    journal.close()
    reopened = Journal.open(tmp_path / "j.sqlite", FP)
    row = reopened.get(2)
    assert row.state is State.SUBMITTED and row.attempts == 2 and row.submitted_at == 1000.0
    assert reopened.get(4).state is State.REJECTED and reopened.get(4).reason == "invalid"
    assert not reopened.new


def test_journal_of_another_job_is_refused_with_a_clear_message(tmp_path: Path) -> None:
    _journal(tmp_path).close()
    with pytest.raises(JournalError, match="belongs to another job"):
        Journal.open(tmp_path / "j.sqlite", {**FP, "input_sha256": "different"})


def test_a_file_that_is_not_a_journal_is_refused(tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.journal"
    bogus.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(JournalError, match="not a usable bulk journal"):
        Journal.open(bogus, FP)


def test_terminal_rows_get_a_settled_time(tmp_path: Path) -> None:
    journal = _journal(tmp_path)
    journal.apply([Change(2, Event.ALREADY, reason="already linked")])
    assert journal.get(2).settled_at is not None


def test_a_resumed_deferred_row_loses_the_windows_reason_and_has_no_settled_time(
    tmp_path: Path,
) -> None:
    journal = _journal(tmp_path)
    journal.apply([Change(2, Event.DEFER, reason="not sent: the send window closed at 06:00")])
    assert journal.get(2).settled_at is None  # never sent, so never settled
    journal.apply([Change(2, Event.RESUME)])
    resumed = journal.get(2)
    assert resumed.state is State.PLANNED and resumed.reason is None
    assert resumed.settled_at is None
    journal.close()
    reopened = Journal.open(tmp_path / "j.sqlite", FP)
    assert reopened.get(2).reason is None


def test_the_settled_count_follows_every_change_a_refusal_and_a_reopen(tmp_path: Path) -> None:
    journal = _journal(tmp_path)

    def counted() -> int:
        return sum(1 for r in journal.rows.values() if r.terminal)

    assert journal.settled == counted() == 1  # the rejected row
    journal.apply([Change(2, Event.DEFER, reason="window closed")])
    assert journal.settled == counted() == 2
    journal.apply([Change(2, Event.RESUME), Change(2, Event.ALREADY, reason="already")])
    assert journal.settled == counted() == 2  # out of a terminal state and back in one apply
    with pytest.raises(IllegalTransition):
        journal.apply([Change(3, Event.ALREADY), Change(2, Event.SEND)])
    assert journal.settled == counted() == 2  # nothing applied, nothing counted
    journal.apply([Change(3, Event.ALREADY)])
    assert journal.settled == counted() == 3
    journal.close()
    assert Journal.open(tmp_path / "j.sqlite", FP).settled == 3
