"""The pure decisions beside the transition table: an observation in, a decision out.

Observations come from recorded provider bodies run through the providers' own pure parsers,
so these tests pin the whole path from what the wire said to what happens to the row.
"""

from __future__ import annotations

import json

from bulk._states import (
    Event,
    State,
    after_lost_answer,
    at_plan,
    move_link_failed,
    next_state,
    release_unconfirmed,
    seen_twice,
    status_of,
    while_polling,
    while_unread,
)
from bulk.providers import agentmessage as am
from bulk.providers import plivo
from bulk.providers._base import Kind, NumberState, Request, Response, Settlement

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
