"""Every row's lifecycle, in one place: the transition table and the pure decisions that feed it.

h11's rule, applied to rows: everything that can change a row's state lives in this file. The
engine and the job only *observe* (send a request, read a number) and hand the observation to
a pure function here, which returns the :class:`Decision`; the journal then applies the
decision's event through :data:`TABLES` and refuses anything the table does not allow, so a
bug cannot move a row from ``failed`` back to ``sending`` or report an unsettled number as a
success.

The decisions, in a row's order: at planning (:func:`unusable`, :func:`elsewhere`,
:func:`at_plan`); at the send window (:func:`at_window`); from a change request's answer
(:func:`after_link`, :func:`after_unlink`, with the rounds a row may take: :func:`unsent`,
:func:`out_of_rounds`); after a lost answer (:func:`after_lost_answer`, :func:`after_check`);
while polling (:func:`while_polling`, :func:`while_unread`); for ``bulk status``
(:func:`status_of`, :func:`status_look`); the reasons a two-step move's row gives
(:func:`move_reason`); and at the end, each row's outcome (:func:`final_outcome`) and the
run's exit code (:func:`exit_code`).

Two-step moves (a provider whose ``move_in_one_step`` is False, like Plivo) first release the
number from its old campaign (``releasing`` → ``release_submitted`` → ``released``) and only
then link it to the new one, so a number is never linked to two campaigns at once.

**The rule for lost answers.** A change request (link, unlink, attach, detach) whose answer
was lost (5xx, reset, timeout, unreadable body, a redirect) *may have landed*. Its row stays in
``sending``/``releasing`` (event ``lose``) and is never sent again blind: the engine reads the
number and :func:`after_lost_answer` decides from what the provider says: in progress or done →
``accept`` (poll it); really not done → send again; settled failed → the failure stands. The
same function decides for rows a killed run left in flight (resume). **Absence is a hint**:
a number missing from a paged list may have been skipped while the list shifted, so every
decision that would act on absence asks for an exact single read first (``Decision.verify``).
"""

from __future__ import annotations

import enum
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from bulk.providers._base import (
    UNREADABLE_CAMPAIGN,
    CampaignCheck,
    LinkOutcome,
    NumberState,
    Settlement,
    UnlinkOutcome,
)

# the rule for a number one read shows twice with two statuses lives with NumberState (the
# providers' parsers apply it while reading); re-exported here with the other decisions
from bulk.providers._base import seen_twice as seen_twice


class State(enum.StrEnum):
    PLANNED = "planned"  #: nothing sent yet
    SENDING = "sending"  #: the change is going out, or went out and its answer was lost
    SUBMITTED = "submitted"  #: the provider accepted it; polling until it settles
    RELEASING = "releasing"  #: move step 1: unlink from the old campaign going out (or lost)
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
    DEFERRED = "deferred"  #: never sent: the send window closed first (a rerun continues it)
    #: never sent: ``bulk execute --skip-drifted`` found the number no longer as the reviewed
    #: plan saw it
    DRIFTED = "drifted"


class Event(enum.StrEnum):
    REJECT = "reject"  #: validation refused the row
    ALREADY = "already"  #: the plan found it in the desired state already
    PLAN_FAIL = "plan_fail"  #: the plan found it cannot be done (campaign missing, not owned)
    ADOPT = "adopt"  #: the plan found its request already in flight at the provider: poll it
    SKIP_RELEASE = "skip_release"  #: a move whose number is (verified) not in the old campaign
    SEND = "send"
    RELEASE = "release"
    ACCEPT = "accept"  #: the provider took the change (or a read shows it under way or done)
    REFUSE = "refuse"
    LOSE = "lose"  #: the answer was lost: the change may have landed; read before anything
    REQUEUE = "requeue"  #: send again (batch refused for another number; a read shows not done)
    SETTLE = "settle"  #: settled as asked
    SETTLE_FAIL = "settle_fail"  #: settled as failed
    TIME_OUT = "time_out"  #: still unsettled past the deadline, or an unrecognised status
    DEFER = "defer"  #: the send window closed before this row's change went out
    RESUME = "resume"  #: a deferred row, picked up again by a later run of the same job
    #: ``bulk execute``: the number's state differs from what the reviewed plan observed
    DRIFT = "drift"
    # ``bulk status``: what a read-only look at the provider found
    SEEN_LINKED = "seen_linked"
    SEEN_ABSENT = "seen_absent"


TERMINAL = frozenset(
    {
        State.LINKED,
        State.UNLINKED,
        State.MOVED,
        State.ALREADY,
        State.FAILED,
        State.REJECTED,
        State.UNKNOWN,
        State.DEFERRED,
        State.DRIFTED,
    }
)
SUCCESS = frozenset({State.LINKED, State.UNLINKED, State.MOVED, State.ALREADY})
#: a change for the row may be at the provider (sent, answer lost or not yet known)
IN_FLIGHT = frozenset({State.SENDING, State.RELEASING})
#: a change for the row is under way: sent (its answer awaited or lost), or accepted and polled
UNDER_WAY = frozenset(
    {State.SENDING, State.SUBMITTED, State.RELEASING, State.RELEASE_SUBMITTED}
)

_COMMON: dict[tuple[State, Event], State] = {
    (State.PLANNED, Event.REJECT): State.REJECTED,
    (State.PLANNED, Event.ALREADY): State.ALREADY,
    (State.PLANNED, Event.PLAN_FAIL): State.FAILED,
    (State.PLANNED, Event.ADOPT): State.SUBMITTED,
    (State.PLANNED, Event.SEND): State.SENDING,
    (State.PLANNED, Event.DEFER): State.DEFERRED,
    (State.DEFERRED, Event.RESUME): State.PLANNED,
    (State.PLANNED, Event.DRIFT): State.DRIFTED,
    (State.SENDING, Event.ACCEPT): State.SUBMITTED,
    (State.SENDING, Event.REFUSE): State.FAILED,
    (State.SENDING, Event.LOSE): State.SENDING,
    (State.SENDING, Event.REQUEUE): State.PLANNED,
    (State.SENDING, Event.SETTLE_FAIL): State.FAILED,  # a read after a lost answer: FAILED
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
    (State.RELEASING, Event.LOSE): State.RELEASING,
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
    # ``bulk status``: one read-only look per row
    "status": {
        (State.PLANNED, Event.SEEN_LINKED): State.LINKED,
        (State.PLANNED, Event.SEEN_ABSENT): State.UNLINKED,
        (State.PLANNED, Event.SETTLE_FAIL): State.FAILED,
        (State.PLANNED, Event.TIME_OUT): State.UNKNOWN,
        (State.PLANNED, Event.PLAN_FAIL): State.FAILED,
        (State.PLANNED, Event.REJECT): State.REJECTED,
    },
}
# a row rejected by validation never gets an action-specific table
TABLES["none"] = {(State.PLANNED, Event.REJECT): State.REJECTED}


def next_state(action: str, state: State, event: Event) -> State | None:
    """The state ``event`` leads to from ``state`` for a row of ``action``; None if illegal."""
    return TABLES.get(action, TABLES["none"]).get((state, event))


# --- decisions (pure: an observation in, a decision out) ------------------------------------


@dataclass(frozen=True, slots=True)
class Decision:
    """What to do with one row. ``event`` None: nothing yet (wait, or send as planned).

    ``verify``: the observation was an absence seen in a paged list, which is only a hint; read
    the number exactly (a single read) and decide again before acting on it.
    """

    event: Event | None = None
    reason: str | None = None
    provider_status: str | None = None
    stamp: bool = False  #: set ``submitted_at`` now (the row starts waiting to settle)
    verify: bool = False
    #: the row used one of its rounds (sent again, or read again after a lost answer); a row
    #: past its rounds ends ``unknown`` (:func:`out_of_rounds`)
    spends_round: bool = False


WAIT = Decision()
VERIFY = Decision(verify=True)


def _absent(observed: NumberState, exact: bool) -> bool | None:
    """True/False when absence is known; None when it is only a hint (verify first)."""
    if observed.settlement is not Settlement.ABSENT:
        return False
    return True if exact else None


def at_plan(
    action: str,
    target_campaign: str,
    target: NumberState,
    *,
    source_campaign: str | None = None,
    source: NumberState | None = None,
    two_step: bool = False,
    exact: bool = False,
) -> Decision:
    """A planned row, given where its number stands. ``WAIT`` means: send as planned.

    ``target`` is the number's state in the row's campaign; ``source`` in a move's old
    campaign. A move's release is skipped only when the number is verified not in the source.
    """
    status = target.provider_status
    if action == "unlink":
        gone = _absent(target, exact)
        if gone is None:
            return VERIFY
        if gone:
            return Decision(Event.ALREADY, reason=f"not linked to {target_campaign}")
        return WAIT
    in_source = False
    if two_step and source is not None:
        left = _absent(source, exact)
        if left is None:
            return VERIFY
        in_source = not left
    if target.settlement is Settlement.ACTIVE and not in_source:
        return Decision(
            Event.ALREADY, reason=f"already linked to {target_campaign}", provider_status=status
        )
    if target.settlement is Settlement.PENDING and not in_source:
        return Decision(
            Event.ADOPT,
            reason="a link was already in progress",
            provider_status=status,
            stamp=True,
        )
    if two_step and not in_source:
        return Decision(Event.SKIP_RELEASE, reason=f"not in {source_campaign}; linked directly")
    return WAIT


def after_lost_answer(
    action: str, releasing: bool, campaign: str, observed: NumberState, *, exact: bool
) -> Decision:
    """A row whose change may have landed (its answer was lost, or a killed run left it in
    flight): decide from the number's state in ``campaign`` (the old campaign for a release).

    Links: under way or done → accept and poll; settled failed → the failure stands (sending
    again could change the number twice); verified absent → send again. Unlinks and releases:
    verified absent → accept (the poller confirms); a detach propagating → accept; still shown
    → send again (a provider that answers the resend "already requested for unlinking"
    confirms it is under way: the adapters classify that text as ``Kind.UNDER_WAY``).
    """
    s = observed.settlement
    raw = observed.provider_status
    if action == "unlink" or releasing:
        gone = _absent(observed, exact)
        if gone is None:
            return VERIFY
        if gone or s is Settlement.PENDING:
            return Decision(Event.ACCEPT, provider_status=raw, stamp=True)
        return Decision(Event.REQUEUE, reason=f"still in {campaign} after a lost answer")
    if s in (Settlement.ACTIVE, Settlement.PENDING):
        return Decision(Event.ACCEPT, provider_status=raw, stamp=True)
    if s is Settlement.FAILED:
        return Decision(
            Event.SETTLE_FAIL,
            provider_status=raw,
            reason=f"the provider shows the link {raw or 'failed'} (an answer was lost, so it "
            "was read, not sent again)",
        )
    if s is Settlement.UNRECOGNISED:
        return Decision(
            Event.TIME_OUT,
            provider_status=raw,
            reason=f"unrecognised provider status {raw!r} after a lost answer",
        )
    gone = _absent(observed, exact)
    if gone is None:
        return VERIFY
    return Decision(Event.REQUEUE, reason=f"not in {campaign} after a lost answer")


def while_polling(
    action: str,
    releasing: bool,
    observed: NumberState,
    *,
    exact: bool,
    waited: float,
    timeout: float,
) -> Decision:
    """A submitted row, given the number's state: settled, still waiting, or timed out."""
    s = observed.settlement
    raw = observed.provider_status
    if action == "unlink" or releasing:
        gone = _absent(observed, exact)
        if gone is None:
            return VERIFY
        if gone:
            return Decision(Event.SETTLE, provider_status=raw)
    elif s is Settlement.ACTIVE:
        return Decision(Event.SETTLE, provider_status=raw)
    elif s is Settlement.FAILED:
        return Decision(
            Event.SETTLE_FAIL,
            provider_status=raw,
            reason=f"the provider settled the link as {raw or 'failed'}",
        )
    elif s is Settlement.UNRECOGNISED:
        return Decision(
            Event.TIME_OUT,
            provider_status=raw,
            reason=f"unrecognised provider status {raw!r}: not counted as success",
        )
    if waited > timeout:
        what = "unlink from the old campaign" if releasing else action
        return Decision(
            Event.TIME_OUT,
            provider_status=raw,
            reason=f"{what} not settled after {timeout:g} s (last status {raw or s.value})",
        )
    return WAIT


def while_unread(action: str, releasing: bool, *, waited: float, timeout: float) -> Decision:
    """A submitted row whose number this poll could not read (no usable answer, or an
    absence whose exact read failed): wait for the next read; past the deadline it ends
    ``unknown``, since nothing shows it settled (without this, reads that never answer kept
    the run polling forever)."""
    if waited <= timeout:
        return WAIT
    what = "unlink from the old campaign" if releasing else action
    return Decision(
        Event.TIME_OUT,
        reason=f"{what} not confirmed after {timeout:g} s: the number could not be read",
    )


def status_of(campaign: str, observed: NumberState) -> Decision:
    """``bulk status``: a row's outcome from one look at its campaign."""
    s = observed.settlement
    raw = observed.provider_status
    if s is Settlement.ACTIVE:
        return Decision(Event.SEEN_LINKED, provider_status=raw)
    if s is Settlement.ABSENT:
        return Decision(Event.SEEN_ABSENT, reason=f"not linked to {campaign}")
    if s is Settlement.FAILED:
        return Decision(Event.SETTLE_FAIL, provider_status=raw)
    if s is Settlement.PENDING:
        return Decision(Event.TIME_OUT, provider_status=raw, reason="not settled yet")
    return Decision(
        Event.TIME_OUT, provider_status=raw, reason=f"unrecognised provider status {raw!r}"
    )


#: ``bulk status``: a number absent from its campaign's list whose exact read got no answer
ABSENCE_UNCONFIRMED = (
    "absent from the campaign's list, and the single read that would confirm it got no "
    "usable answer"
)


def status_look(
    campaign: str, observed: NumberState | None, *, listed: bool, why_not: str | None = None
) -> Decision:
    """``bulk status``: a row's outcome from its campaign's survey. ``listed`` False: the
    campaign could not be read or used (``why_not`` says why), and the row fails. Else
    ``observed`` is the number's state (an exact read where the list did not show it,
    :func:`status_of`), or None when the exact read that would confirm an absence got no
    usable answer: ``unknown``, since absence in a list is only a hint."""
    if not listed:
        return Decision(Event.PLAN_FAIL, reason=why_not)
    if observed is None:
        return Decision(Event.TIME_OUT, reason=ABSENCE_UNCONFIRMED)
    return status_of(campaign, observed)


def move_link_failed(from_campaign: str | None, to_campaign: str | None, reason: str) -> str:
    """The reason for a two-step move whose release settled but whose link did not: the
    number is in *no* campaign now, and the report must say so."""
    return f"unlinked from {from_campaign}; link to {to_campaign} failed: {reason}"


def release_unconfirmed(from_campaign: str | None, reason: str) -> str:
    """The reason for a two-step move that ends ``unknown`` after its unlink from the old
    campaign went out (accepted, or its answer lost) and was never confirmed: the unlink may
    have landed, so the number may be in *no* campaign now, and the report must say so."""
    return (
        f"{reason}; the unlink from {from_campaign} may have landed: the number may be "
        f"unlinked from {from_campaign} and in no campaign"
    )


def elsewhere(
    provider: str,
    action: str,
    campaign: str | None,
    from_campaign: str | None,
    current: str | None,
) -> str | None:
    """A reason to refuse a link or move whose number sits in ``current``, a campaign the
    row does not name (None: no reason, go on).

    For providers that know each number's campaign (AgentMessage): there an attach replaces
    the old campaign, so a plain link would silently move the number, and a one-step move
    would take it out of a campaign the file never mentioned. (Plivo refuses such a link
    itself; its two-step move checks the old campaign's list.)
    """
    if current is None or current == campaign:
        return None
    if current == UNREADABLE_CAMPAIGN:
        return (
            f"{provider} did not say which campaign the number is in (its "
            "campaign_id is unreadable): not changed, since an attach would take it out "
            "of whatever campaign it is in"
        )
    if action == "link":
        return (
            f"in campaign {current}: linking would move it out of that campaign; "
            f"use move (from {current}) if that is intended"
        )
    if from_campaign and current != from_campaign:
        return f"in campaign {current}, not in {from_campaign}: not moved"
    return None


#: events that end a row failed or unknown
_FAILING = frozenset({Event.REFUSE, Event.SETTLE_FAIL, Event.TIME_OUT, Event.PLAN_FAIL})


def move_reason(
    decision: Decision,
    state: State,
    released: bool,
    from_campaign: str | None,
    to_campaign: str | None,
) -> str | None:
    """The reason a decision writes, said so a move's row never hides that its number may be
    in no campaign: failing after the number left its old campaign (``released``), or an
    accepted unlink from it never confirmed."""
    reason = decision.reason
    if decision.event in _FAILING and released and state is not State.RELEASE_SUBMITTED:
        # the number left its old campaign and is in none: the reason must say so
        reason = move_link_failed(from_campaign, to_campaign, reason or "no answer")
    if decision.event is Event.TIME_OUT and state is State.RELEASE_SUBMITTED:
        # the unlink was accepted and never confirmed: the number may be in no campaign
        reason = release_unconfirmed(from_campaign, reason or "no answer")
    return reason


def lost_for_good(state: State, from_campaign: str | None, decision: Decision) -> Decision:
    """A lost answer's row ending unknown: a release's unlink may have landed, so its reason
    says the number may be in no campaign."""
    if state is not State.RELEASING:
        return decision
    reason = release_unconfirmed(from_campaign, decision.reason or "answer lost")
    return replace(decision, reason=reason)


def unusable(
    state: State, checks: Sequence[tuple[str, CampaignCheck | None]], unresolved: str | None
) -> Decision:
    """Planning: a row none of whose requests can work fails now (``PLAN_FAIL``): one of its
    campaigns (``checks``: each campaign it names and what its check found, None if not
    checked) cannot be used, or its number could not be resolved (``unresolved``: why).
    Only rows still waiting to be sent (planned, or a move released) fail so; others ``WAIT``."""
    if state not in (State.PLANNED, State.RELEASED):
        return WAIT
    for campaign, check in checks:
        if check is not None and not check.usable:
            reason = check.reason or f"campaign {campaign} cannot be used"
            return Decision(Event.PLAN_FAIL, reason=reason)
    if unresolved is not None:
        return Decision(Event.PLAN_FAIL, reason=unresolved)
    return WAIT


# --- answers to change requests, and the rounds a row may take ---------------------------


def out_of_rounds(rounds: int, limit: int) -> bool:
    """A row that has already used ``rounds`` of its ``limit`` rounds (sent again after going
    out unsent, or read again after a lost answer) may take no more: it ends ``unknown``."""
    return rounds >= limit


def unsent(reason: str | None, rounds: int, limit: int) -> Decision:
    """A change that surely did not go out (never connected, throttled throughout, or held
    back because a read failed first): send it again, spending a round; a row out of rounds
    (:func:`out_of_rounds`) ends ``unknown`` instead, with the same reason."""
    event = Event.TIME_OUT if out_of_rounds(rounds, limit) else Event.REQUEUE
    return Decision(event, reason=reason, spends_round=True)


def after_link(
    outcome: LinkOutcome, rounds: Mapping[str, int], limit: int
) -> list[tuple[str, Decision]]:
    """Each number's decision from one link (or attach) request's answer, in the order the
    journal applies them: accepted or already under way → accept and poll; refused for
    itself → fails with the provider's text; refused for another number of the batch →
    send again (no round spent); answer lost → ``LOSE`` (read before anything); surely
    unsent → :func:`unsent` (``rounds``: the rounds each number has used so far)."""
    decided: list[tuple[str, Decision]] = [
        *((n, Decision(Event.ACCEPT, stamp=True)) for n in outcome.accepted),
        *((n, Decision(Event.ACCEPT, stamp=True)) for n in outcome.under_way),
        *((n, Decision(Event.REFUSE, reason=r)) for n, r in outcome.refused.items()),
        *((n, Decision(Event.REQUEUE)) for n in outcome.resend),
        *((n, Decision(Event.LOSE, reason=f"answer lost: {r}")) for n, r in outcome.lost.items()),
    ]
    decided += [(n, unsent(r, rounds.get(n, 0), limit)) for n, r in outcome.unsent.items()]
    return decided


def after_unlink(
    outcome: UnlinkOutcome, campaign: str, release: bool, rounds: int, limit: int
) -> Decision:
    """A row's decision from one unlink (or detach) request's answer; ``release``: the
    request is a two-step move's unlink from its old campaign ``campaign``.

    Accepted or already under way → accept and poll. Not in the campaign → accept too (the
    poller confirms), saying so. Refused → fails; a release's refusal says the number was
    not moved. Answer lost → ``LOSE``. Surely unsent → :func:`unsent`."""
    if outcome.accepted or outcome.under_way:
        return Decision(Event.ACCEPT, stamp=True)
    if outcome.absent:
        note = f"not in {campaign} when released" if release else None
        note = note or f"not linked to {campaign} when unlinked"
        return Decision(Event.ACCEPT, reason=note, stamp=True)
    if outcome.refused is not None:
        reason = outcome.refused
        if release:
            reason = f"unlink from {campaign} failed, not moved: {reason}"
        return Decision(Event.REFUSE, reason=reason)
    if outcome.lost is not None:
        return Decision(Event.LOSE, reason=f"answer lost: {outcome.lost}")
    return unsent(outcome.unsent, rounds, limit)


#: the reason of a row whose answer was lost and whose number no read could show
UNREAD_AFTER_LOST = "answer lost, and the number could not be read to learn its fate"


def after_check(
    state: State,
    from_campaign: str | None,
    decided: Decision | None,
    rounds: int,
    limit: int,
) -> Decision:
    """A row in flight after a lost answer, once a look decided it (``decided``: the look's
    :func:`after_lost_answer`; None when its number could not be read).

    Unread → a round spent, read again later; out of rounds (:func:`out_of_rounds`) it ends
    ``unknown``. Not done → send again, spending a round; out of rounds, ``unknown``. Every
    ``unknown`` here passes through :func:`lost_for_good` (a release's may have landed)."""
    if decided is None:
        if not out_of_rounds(rounds, limit):
            return Decision(spends_round=True)
        decided = Decision(Event.TIME_OUT, reason=UNREAD_AFTER_LOST, spends_round=True)
    elif decided.event is Event.REQUEUE:
        if out_of_rounds(rounds, limit):
            decided = Decision(Event.TIME_OUT, reason=decided.reason, spends_round=True)
        else:
            decided = replace(decided, spends_round=True)
    if decided.event is Event.TIME_OUT:
        decided = lost_for_good(state, from_campaign, decided)
    return decided


# --- the send window -----------------------------------------------------------------------


def window_closed(now: float, until: float | None) -> bool:
    """Whether the send window (``--send-until``, epoch seconds; None: no window) has closed."""
    return until is not None and now >= until


def at_window(state: State, now: float, until: float | None) -> Decision:
    """A row about to be sent, once the send window closed: a planned row is deferred (never
    sent; a rerun continues it); a two-step move already released still gets its link, so
    a number is never left between campaigns. ``WAIT`` means: send it."""
    if not window_closed(now, until) or state is not State.PLANNED:
        return WAIT
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(until))
    return Decision(
        Event.DEFER, reason=f"not sent: the send window closed at {stamp}; run again to continue"
    )


# --- a run's ending --------------------------------------------------------------------------


def final_outcome(
    state: State,
    reason: str | None,
    *,
    released: bool = False,
    from_campaign: str | None = None,
    campaign: str | None = None,
    stopped: str | None = None,
) -> tuple[State, str | None]:
    """A row's outcome in the report and its reason: a terminal row's own; a row not yet
    terminal (the run was interrupted, or ``stopped``: why it ended early) is ``unknown``,
    saying where it stopped (a released move: unlinked from ``from_campaign``, not yet
    linked to ``campaign``) and how to resume."""
    if state in TERMINAL:
        return state, reason
    where = f"interrupted while {state.value}"
    if released:
        where += f" (unlinked from {from_campaign}, not yet linked to {campaign})"
    if stopped is not None:
        where = f"the run stopped while {state.value}: {stopped}"
    hint = "run the same command again to resume"
    return State.UNKNOWN, f"{where}; {hint}" + (f" (last: {reason})" if reason else "")


#: the exit code of a run whose send window (``--send-until``) closed before every row was sent
EXIT_DEFERRED = 3


def exit_code(outcome_counts: Mapping[str, int], *, dry_run: bool = False) -> int:
    """A run's exit code from its rows per outcome: 0 when every row succeeded (linked,
    unlinked, moved, already); 3 when some row was deferred by the send window (run again to
    continue: that comes before other failures, which the next run's exit code still
    reports); else 1.

    A dry run (``dry_run``) plans only: its rows still to send count ``unknown`` (not done),
    so only the rows the plan already knows cannot succeed (rejected by validation, failed
    at planning) make it 1."""
    if dry_run:
        return 1 if outcome_counts.get("rejected") or outcome_counts.get("failed") else 0
    if outcome_counts.get("deferred"):
        return EXIT_DEFERRED
    success = {s.value for s in SUCCESS}
    bad = sum(n for o, n in outcome_counts.items() if o not in success)
    return 1 if bad else 0
