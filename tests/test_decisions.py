"""The pure decisions beside the transition table: an observation in, a decision out.

Observations come from recorded provider bodies run through the providers' own pure parsers,
so these tests pin the whole path from what the wire said to what happens to the row.
"""

from __future__ import annotations

import json

from bulk._states import (
    EXIT_DEFERRED,
    TERMINAL,
    Decision,
    Event,
    State,
    after_check,
    after_link,
    after_lost_answer,
    after_unlink,
    at_plan,
    at_window,
    exit_code,
    final_outcome,
    move_link_failed,
    next_state,
    release_unconfirmed,
    seen_twice,
    status_look,
    status_of,
    unsent,
    unusable,
    while_polling,
    while_unread,
    window_closed,
)
from bulk.providers import agentmessage as am
from bulk.providers import plivo
from bulk.providers._base import (
    CampaignCheck,
    Kind,
    LinkOutcome,
    NumberState,
    Request,
    Response,
    Settlement,
    UnlinkOutcome,
)

ABSENT = NumberState(Settlement.ABSENT)
GET = plivo.get_request("MA" + "X" * 18, "CUOGHIN", "+14155550100")
UNLINK = plivo.unlink_request("MA" + "X" * 18, "CUOGHIN", "+14155550100")


def _plivo_get(status: str) -> NumberState:
    body = {
        "api_id": "r1",
        "campaign_id": "CUOGHIN",
        "phone_numbers": [{"number": "14155550100", "status": status}],
    }
    verdict = plivo.classify(GET, Response(200, {}, json.dumps(body).encode()))
    return plivo.parse_numbers_page(verdict.data)["+14155550100"]


def _am(campaign: str | None, status: str | None) -> NumberState:
    resource = {"id": "n1", "number": "+14155550100", "campaign_id": campaign}
    resource["carrier_line_option_status"] = status
    return am.settlement(resource, "c-1")


def test_a_lost_link_answer_then_a_read_showing_processing_is_accepted_not_resent() -> None:
    decision = after_lost_answer("link", False, "CUOGHIN", _plivo_get("PROCESSING"), exact=True)
    assert decision.event is Event.ACCEPT and decision.stamp
    assert next_state("link", State.SENDING, Event.ACCEPT) is State.SUBMITTED


def test_a_lost_link_answer_then_a_read_showing_failed_fails_and_is_not_resent() -> None:
    decision = after_lost_answer("link", False, "CUOGHIN", _plivo_get("FAILED"), exact=True)
    assert decision.event is Event.SETTLE_FAIL and "not sent again" in (decision.reason or "")


def test_a_lost_link_answer_and_a_404_read_sends_again() -> None:
    body = {"api_id": "r", "error": "The number 14155550100 is not linked to this campaign"}
    verdict = plivo.classify(GET, Response(404, {}, json.dumps(body).encode()))
    assert verdict.kind is Kind.ABSENT  # a single read's absence is proof
    decision = after_lost_answer("link", False, "CUOGHIN", ABSENT, exact=True)
    assert decision.event is Event.REQUEUE


def test_absence_in_a_list_is_only_a_hint_every_absence_decision_verifies_first() -> None:
    assert after_lost_answer("link", False, "C", ABSENT, exact=False).verify
    assert after_lost_answer("unlink", False, "C", ABSENT, exact=False).verify
    assert at_plan("unlink", "C", ABSENT).verify
    assert at_plan("move", "B", ABSENT, source_campaign="A", source=ABSENT, two_step=True).verify
    waited = {"waited": 1.0, "timeout": 60.0}
    assert while_polling("unlink", False, ABSENT, exact=False, **waited).verify
    assert while_polling("move", True, ABSENT, exact=False, **waited).verify
    settled = while_polling("unlink", False, ABSENT, exact=True, **waited)
    assert settled.event is Event.SETTLE


def test_a_lost_unlink_answer_with_the_number_still_shown_sends_again() -> None:
    # Plivo shows the old status until an unlink settles: still shown is no proof either way,
    # and a provider that refuses the resend ("already requested for unlinking") confirms it
    decision = after_lost_answer("unlink", False, "CUOGHIN", _plivo_get("COMPLETED"), exact=True)
    assert decision.event is Event.REQUEUE
    body = {"api_id": "r", "error": "The number 14155550100 is already requested for unlinking"}
    verdict = plivo.classify(UNLINK, Response(400, {}, json.dumps(body).encode()))
    assert plivo.unlink_outcome(verdict).under_way


def test_a_lost_detach_answer_then_a_pending_detach_is_accepted() -> None:
    decision = after_lost_answer("unlink", False, "c-1", _am(None, "pending"), exact=True)
    assert decision.event is Event.ACCEPT
    assert after_lost_answer("unlink", False, "c-1", _am("c-1", "active"), exact=True).event is (
        Event.REQUEUE
    )


def test_an_unsettled_unlink_times_out_unknown_never_unlinked() -> None:
    still = _plivo_get("COMPLETED")
    decision = while_polling("unlink", False, still, exact=True, waited=61.0, timeout=60.0)
    assert decision.event is Event.TIME_OUT
    assert next_state("unlink", State.SUBMITTED, Event.TIME_OUT) is State.UNKNOWN


def test_polling_a_link_settles_on_completed_and_fails_on_failed() -> None:
    kw = {"exact": False, "waited": 1.0, "timeout": 60.0}
    assert while_polling("link", False, _plivo_get("COMPLETED"), **kw).event is Event.SETTLE
    assert while_polling("link", False, _plivo_get("FAILED"), **kw).event is Event.SETTLE_FAIL
    assert while_polling("link", False, _plivo_get("PROCESSING"), **kw).event is None
    odd = while_polling("link", False, _am("c-1", "weird"), **kw)
    assert odd.event is Event.TIME_OUT  # an unrecognised status is never success


def test_planning_decides_already_adopt_skip_or_send() -> None:
    active, pending = _plivo_get("COMPLETED"), _plivo_get("PROCESSING")
    assert at_plan("link", "C", active).event is Event.ALREADY
    assert at_plan("link", "C", pending).event is Event.ADOPT
    assert at_plan("link", "C", ABSENT).event is None  # send as planned
    skip = at_plan(
        "move", "B", ABSENT, source_campaign="A", source=ABSENT, two_step=True, exact=True
    )
    assert skip.event is Event.SKIP_RELEASE
    release = at_plan("move", "B", ABSENT, source_campaign="A", source=active, two_step=True)
    assert release.event is None
    assert at_plan("unlink", "C", ABSENT, exact=True).event is Event.ALREADY


def test_bulk_status_goes_through_its_own_table() -> None:
    for observed, outcome in (
        (_plivo_get("COMPLETED"), State.LINKED),
        (ABSENT, State.UNLINKED),
        (_plivo_get("FAILED"), State.FAILED),
        (_plivo_get("PROCESSING"), State.UNKNOWN),
    ):
        decision = status_of("C", observed)
        assert decision.event is not None
        assert next_state("status", State.PLANNED, decision.event) is outcome


def test_a_released_moves_failure_says_the_number_is_in_no_campaign() -> None:
    assert move_link_failed("A", "B", "HTTP 400") == "unlinked from A; link to B failed: HTTP 400"


def test_the_agentmessage_cursor_rides_on_the_verdict() -> None:
    envelope = {"success": True, "error": None, "meta": {"next_cursor": "cur2"}, "data": []}
    listed = am.classify(
        am.list_numbers_request(), Response(200, {}, json.dumps(envelope).encode())
    )
    assert listed.next_cursor == "cur2"
    campaigns = am.list_campaigns_request()
    envelope["meta"] = {}
    headers = {"x-next-cursor": "c9"}
    got = am.classify(campaigns, Response(200, headers, json.dumps(envelope).encode()))
    assert got.next_cursor == "c9"
    assert isinstance(campaigns, Request)


def test_a_number_that_cannot_be_read_waits_and_past_the_deadline_is_unknown() -> None:
    assert while_unread("unlink", False, waited=59.0, timeout=60.0).event is None
    for action, releasing, state in (
        ("unlink", False, State.SUBMITTED),
        ("link", False, State.SUBMITTED),
        ("move", True, State.RELEASE_SUBMITTED),
    ):
        decision = while_unread(action, releasing, waited=61.0, timeout=60.0)
        assert decision.event is Event.TIME_OUT, (action, decision)
        assert "could not be read" in (decision.reason or "")
        assert next_state(action, state, Event.TIME_OUT) is State.UNKNOWN


def test_a_number_shown_twice_with_two_statuses_settles_nothing_in_either_order() -> None:
    done, failed, going = _plivo_get("COMPLETED"), _plivo_get("FAILED"), _plivo_get("PROCESSING")
    assert seen_twice(done, done) == done
    for a, b in ((failed, done), (going, done), (done, failed)):
        for first, second in ((a, b), (b, a)):
            both = seen_twice(first, second)
            assert both.settlement is Settlement.PENDING, (first, second)
            kw = {"exact": True, "waited": 1.0, "timeout": 60.0}
            assert while_polling("link", False, both, **kw).event is None
            assert at_plan("link", "C", both).event is not Event.ALREADY
    assert seen_twice(seen_twice(done, failed), going).provider_status == (
        "COMPLETED and FAILED and PROCESSING"
    )
    # the same number twice on one page, through Plivo's own parser
    entries = [{"number": "14155550100", "status": s} for s in ("FAILED", "COMPLETED")]
    body = {"phone_numbers": entries}
    assert plivo.parse_numbers_page(body)["+14155550100"].settlement is Settlement.PENDING


def test_a_release_never_confirmed_says_the_number_may_be_in_no_campaign() -> None:
    reason = release_unconfirmed("A", "unlink from the old campaign not settled after 4 s")
    assert reason.startswith("unlink from the old campaign not settled after 4 s; ")
    assert "may be unlinked from A and in no campaign" in reason
    for event in (Event.TIME_OUT,):
        assert next_state("move", State.RELEASE_SUBMITTED, event) is State.UNKNOWN
        assert next_state("move", State.RELEASING, event) is State.UNKNOWN


def test_a_link_answer_decides_each_number_accepted_refused_resent_lost_or_unsent() -> None:
    answer = LinkOutcome(
        accepted=["+1a"],
        under_way=["+1b"],
        refused={"+1c": "invalid number"},
        resend=["+1d"],
        lost={"+1e": "reset"},
        unsent={"+1f": "never connected"},
    )
    decided = dict(after_link(answer, {"+1f": 0}, 3))
    assert [n for n, _ in after_link(answer, {}, 3)] == ["+1a", "+1b", "+1c", "+1d", "+1e", "+1f"]
    assert decided["+1a"] == decided["+1b"] == Decision(Event.ACCEPT, stamp=True)
    assert decided["+1c"] == Decision(Event.REFUSE, reason="invalid number")
    assert decided["+1d"] == Decision(Event.REQUEUE)  # refused for another number: no round
    assert decided["+1e"] == Decision(Event.LOSE, reason="answer lost: reset")
    assert decided["+1f"] == Decision(Event.REQUEUE, reason="never connected", spends_round=True)


def test_a_number_unsent_round_after_round_ends_unknown_once_its_rounds_are_spent() -> None:
    answer = LinkOutcome(unsent={"+1a": "throttled throughout"})
    assert dict(after_link(answer, {"+1a": 2}, 3))["+1a"].event is Event.REQUEUE
    out = dict(after_link(answer, {"+1a": 3}, 3))["+1a"]
    assert out == Decision(Event.TIME_OUT, reason="throttled throughout", spends_round=True)
    assert next_state("link", State.SENDING, Event.TIME_OUT) is State.UNKNOWN
    assert unsent("x", 0, 0).event is Event.TIME_OUT  # no rounds at all: unknown at once


def test_an_unlink_answer_accepts_refuses_loses_or_sends_again() -> None:
    accepted = Decision(Event.ACCEPT, stamp=True)
    assert after_unlink(UnlinkOutcome(accepted=True), "C", False, 0, 3) == accepted
    assert after_unlink(UnlinkOutcome(under_way=True), "C", False, 0, 3) == accepted
    refused = after_unlink(UnlinkOutcome(refused="HTTP 400"), "C", False, 0, 3)
    assert refused == Decision(Event.REFUSE, reason="HTTP 400")
    lost = after_unlink(UnlinkOutcome(lost="timeout"), "C", False, 0, 3)
    assert lost == Decision(Event.LOSE, reason="answer lost: timeout")
    again = after_unlink(UnlinkOutcome(unsent="a read failed first"), "C", False, 1, 3)
    assert again.event is Event.REQUEUE and again.spends_round
    out = after_unlink(UnlinkOutcome(unsent="a read failed first"), "C", False, 3, 3)
    assert out.event is Event.TIME_OUT and out.reason == "a read failed first"


def test_an_unlink_of_a_number_not_in_the_campaign_is_accepted_and_says_so() -> None:
    plain = after_unlink(UnlinkOutcome(absent=True), "C", False, 0, 3)
    assert plain == Decision(Event.ACCEPT, reason="not linked to C when unlinked", stamp=True)
    release = after_unlink(UnlinkOutcome(absent=True), "A", True, 0, 3)
    assert release.event is Event.ACCEPT and release.reason == "not in A when released"


def test_a_refused_release_says_the_number_was_not_moved() -> None:
    decision = after_unlink(UnlinkOutcome(refused="HTTP 403"), "A", True, 0, 3)
    assert decision == Decision(Event.REFUSE, reason="unlink from A failed, not moved: HTTP 403")
    assert next_state("move", State.RELEASING, Event.REFUSE) is State.FAILED


def test_a_lost_answer_whose_number_cannot_be_read_is_read_again_then_ends_unknown() -> None:
    waiting = after_check(State.SENDING, None, None, 2, 3)
    assert waiting == Decision(spends_round=True)  # no event: read again later
    out = after_check(State.SENDING, None, None, 3, 3)
    assert out.event is Event.TIME_OUT and out.spends_round
    assert "could not be read to learn its fate" in (out.reason or "")


def test_a_lost_answer_read_as_not_done_is_sent_again_until_its_rounds_are_spent() -> None:
    not_done = Decision(Event.REQUEUE, reason="not in C after a lost answer")
    again = after_check(State.SENDING, None, not_done, 0, 3)
    assert again.event is Event.REQUEUE and again.spends_round
    out = after_check(State.SENDING, None, not_done, 3, 3)
    assert out == Decision(Event.TIME_OUT, reason="not in C after a lost answer", spends_round=True)


def test_a_lost_answer_read_as_under_way_or_failed_stands_and_spends_no_round() -> None:
    for decided in (Decision(Event.ACCEPT, stamp=True), Decision(Event.SETTLE_FAIL, reason="x")):
        assert after_check(State.SENDING, None, decided, 3, 3) == decided


def test_a_lost_release_ending_unknown_says_the_number_may_be_in_no_campaign() -> None:
    out = after_check(State.RELEASING, "A", None, 3, 3)
    assert out.event is Event.TIME_OUT
    assert "may be unlinked from A and in no campaign" in (out.reason or "")
    not_done = Decision(Event.REQUEUE, reason="still in A after a lost answer")
    assert "in no campaign" in (after_check(State.RELEASING, "A", not_done, 3, 3).reason or "")


def test_a_row_fails_at_planning_when_its_campaign_is_unusable_or_its_number_unresolved() -> None:
    bad = CampaignCheck("C", usable=False, reason="campaign C is rejected")
    nameless = CampaignCheck("D", usable=False)
    good = CampaignCheck("B", usable=True)
    assert unusable(State.PLANNED, [("B", good), ("C", bad)], None) == Decision(
        Event.PLAN_FAIL, reason="campaign C is rejected"
    )
    assert unusable(State.RELEASED, [("D", nameless)], None).reason == ("campaign D cannot be used")
    assert unusable(State.PLANNED, [("B", good), ("X", None)], "no such number").reason == (
        "no such number"
    )
    assert unusable(State.PLANNED, [("B", good)], None).event is None


def test_a_row_already_sent_never_fails_at_planning_for_its_campaign() -> None:
    bad = CampaignCheck("C", usable=False, reason="gone")
    for state in (State.SENDING, State.SUBMITTED, State.RELEASING, State.RELEASE_SUBMITTED):
        assert unusable(state, [("C", bad)], "unresolved").event is None, state


def test_the_send_window_closes_at_its_time_and_defers_only_planned_rows() -> None:
    assert not window_closed(99.0, 100.0) and window_closed(100.0, 100.0)
    assert not window_closed(1e12, None)  # no window: never closed
    deferred = at_window(State.PLANNED, 100.0, 100.0)
    assert deferred.event is Event.DEFER
    assert (deferred.reason or "").startswith("not sent: the send window closed at ")
    assert (deferred.reason or "").endswith("; run again to continue")
    assert next_state("link", State.PLANNED, Event.DEFER) is State.DEFERRED
    assert at_window(State.PLANNED, 99.0, 100.0).event is None  # still open: send
    # a move already released still gets its link: never left between campaigns
    assert at_window(State.RELEASED, 100.0, 100.0).event is None


def test_bulk_status_fails_a_row_whose_campaign_cannot_be_read() -> None:
    decision = status_look("C", None, listed=False, why_not="campaign C not found")
    assert decision == Decision(Event.PLAN_FAIL, reason="campaign C not found")
    assert next_state("status", State.PLANNED, Event.PLAN_FAIL) is State.FAILED


def test_bulk_status_calls_an_absence_no_read_confirmed_unknown() -> None:
    decision = status_look("C", None, listed=True)
    assert decision.event is Event.TIME_OUT
    assert "single read that would confirm it got no usable answer" in (decision.reason or "")
    assert next_state("status", State.PLANNED, Event.TIME_OUT) is State.UNKNOWN
    assert status_look("C", ABSENT, listed=True) == status_of("C", ABSENT)


def test_a_terminal_row_keeps_its_outcome_and_reason() -> None:
    for state in TERMINAL:
        assert final_outcome(state, "why") == (state, "why")


def test_an_unfinished_row_is_unknown_saying_where_it_stopped_and_how_to_resume() -> None:
    state, reason = final_outcome(State.SUBMITTED, "queued")
    assert state is State.UNKNOWN
    assert reason == (
        "interrupted while submitted; run the same command again to resume (last: queued)"
    )
    _, stopped = final_outcome(State.PLANNED, None, stopped="account a1: HTTP 401")
    assert stopped == (
        "the run stopped while planned: account a1: HTTP 401; run the same command again to resume"
    )


def test_an_interrupted_released_move_says_it_left_its_old_campaign() -> None:
    _, reason = final_outcome(State.RELEASED, None, released=True, from_campaign="A", campaign="B")
    assert (reason or "").startswith(
        "interrupted while released (unlinked from A, not yet linked to B); "
    )


def test_the_exit_code_is_0_on_success_3_when_deferred_else_1() -> None:
    assert exit_code({"linked": 2, "already": 1, "moved": 1, "unlinked": 1, "failed": 0}) == 0
    assert exit_code({"linked": 2, "failed": 1}) == 1
    assert exit_code({"linked": 2, "unknown": 1}) == 1
    assert exit_code({"deferred": 1, "failed": 1}) == EXIT_DEFERRED == 3


def test_a_dry_runs_exit_code_counts_only_what_the_plan_knows_cannot_succeed() -> None:
    # rows still to send count unknown (not done): not a failure of a dry run
    assert exit_code({"unknown": 5, "already": 1, "rejected": 0}, dry_run=True) == 0
    assert exit_code({"unknown": 5, "rejected": 1}, dry_run=True) == 1
    assert exit_code({"unknown": 5, "failed": 1}, dry_run=True) == 1
    assert exit_code({"unknown": 5}, dry_run=False) == 1
