"""Every row's lifecycle as an explicit transition table (h11-style).

The journal refuses any change not in the table for the row's action, so a bug cannot move a
row from ``failed`` back to ``sending`` or report an unsettled number as a success.

Two-step moves (a provider whose ``move_in_one_step`` is False, like Plivo) first release the
number from its old campaign (``releasing`` → ``release_submitted`` → ``released``) and only
then link it to the new one, so a number is never linked to two campaigns at once.
"""

from __future__ import annotations

import enum


class State(enum.StrEnum):
    PLANNED = "planned"  #: nothing sent yet
    SENDING = "sending"  #: written just before the (link/unlink/attach) request goes out
    SUBMITTED = "submitted"  #: the provider accepted it; polling until it settles
    RELEASING = "releasing"  #: move step 1: unlink from the old campaign going out
    RELEASE_SUBMITTED = "release_submitted"  #: move step 1 accepted; polling until gone
    RELEASED = "released"  #: move step 1 settled; ready for the link to the new campaign
    # terminal states: a row's outcome
    LINKED = "linked"
    UNLINKED = "unlinked"
    MOVED = "moved"
    ALREADY = "already"
    FAILED = "failed"
    REJECTED = "rejected"
    UNKNOWN = "unknown"


class Event(enum.StrEnum):
    REJECT = "reject"  #: validation refused the row
    ALREADY = "already"  #: the plan found it in the desired state already
    PLAN_FAIL = "plan_fail"  #: the plan found it cannot be done (campaign missing, not owned)
    ADOPT = "adopt"  #: the plan found its request already in flight at the provider: poll it
    SKIP_RELEASE = "skip_release"  #: a move whose number is not in the old campaign
    SEND = "send"
    RELEASE = "release"
    ACCEPT = "accept"
    REFUSE = "refuse"
    REQUEUE = "requeue"  #: send again (its batch was refused for another number; resume)
    SETTLE = "settle"  #: settled as asked
    SETTLE_FAIL = "settle_fail"  #: settled as failed
    TIME_OUT = "time_out"  #: still unsettled past the deadline, or an unrecognised status


TERMINAL = frozenset(
    {
        State.LINKED,
        State.UNLINKED,
        State.MOVED,
        State.ALREADY,
        State.FAILED,
        State.REJECTED,
        State.UNKNOWN,
    }
)
SUCCESS = frozenset({State.LINKED, State.UNLINKED, State.MOVED, State.ALREADY})

_COMMON: dict[tuple[State, Event], State] = {
    (State.PLANNED, Event.REJECT): State.REJECTED,
    (State.PLANNED, Event.ALREADY): State.ALREADY,
    (State.PLANNED, Event.PLAN_FAIL): State.FAILED,
    (State.PLANNED, Event.ADOPT): State.SUBMITTED,
    (State.PLANNED, Event.SEND): State.SENDING,
    (State.SENDING, Event.ACCEPT): State.SUBMITTED,
    (State.SENDING, Event.REFUSE): State.FAILED,
    (State.SENDING, Event.REQUEUE): State.PLANNED,
    (State.SENDING, Event.TIME_OUT): State.UNKNOWN,
    (State.SUBMITTED, Event.SETTLE_FAIL): State.FAILED,
    (State.SUBMITTED, Event.TIME_OUT): State.UNKNOWN,
    (State.SUBMITTED, Event.REQUEUE): State.PLANNED,
}


def _with(
    success: State, extra: dict[tuple[State, Event], State] | None = None
) -> dict[tuple[State, Event], State]:
    table = dict(_COMMON)
    table[(State.SUBMITTED, Event.SETTLE)] = success
    table.update(extra or {})
    return table


_MOVE_TWO_STEP = {
    (State.PLANNED, Event.RELEASE): State.RELEASING,
    (State.PLANNED, Event.SKIP_RELEASE): State.RELEASED,
    (State.RELEASING, Event.ACCEPT): State.RELEASE_SUBMITTED,
    (State.RELEASING, Event.REFUSE): State.FAILED,
    (State.RELEASING, Event.REQUEUE): State.PLANNED,
    (State.RELEASING, Event.TIME_OUT): State.UNKNOWN,
    (State.RELEASE_SUBMITTED, Event.SETTLE): State.RELEASED,
    (State.RELEASE_SUBMITTED, Event.SETTLE_FAIL): State.FAILED,
    (State.RELEASE_SUBMITTED, Event.TIME_OUT): State.UNKNOWN,
    (State.RELEASE_SUBMITTED, Event.REQUEUE): State.PLANNED,
    (State.RELEASED, Event.SEND): State.SENDING,
    (State.RELEASED, Event.ALREADY): State.MOVED,
    (State.RELEASED, Event.PLAN_FAIL): State.FAILED,
    (State.SENDING, Event.REQUEUE): State.RELEASED,  # a move's link step goes back to RELEASED
    (State.SUBMITTED, Event.REQUEUE): State.RELEASED,
}

TABLES: dict[str, dict[tuple[State, Event], State]] = {
    "link": _with(State.LINKED),
    "unlink": _with(State.UNLINKED),
    "move": _with(State.MOVED, _MOVE_TWO_STEP),
}
# a row rejected by validation never gets an action-specific table
TABLES["none"] = {(State.PLANNED, Event.REJECT): State.REJECTED}


def next_state(action: str, state: State, event: Event) -> State | None:
    """The state ``event`` leads to from ``state`` for a row of ``action``; None if illegal."""
    return TABLES.get(action, TABLES["none"]).get((state, event))
