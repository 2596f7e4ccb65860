"""The sandbox's pure state machine, driven by a manual clock (no sockets)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bulk.sandbox import ManualClock, SandboxConfig, SandboxState, StateFileError
from bulk.sandbox._am_state import AMError
from bulk.sandbox._core import SlidingWindow
from bulk.sandbox._numbers import agentmessage_number_id, to_e164
from bulk.sandbox._plivo_state import PlivoRefusal
from bulk.sandbox._seed import AM_CAMPAIGN_MARKETING, DEFAULT_ORG


def make(clock: ManualClock | None = None, **kw: object) -> tuple[SandboxState, ManualClock]:
    clock = clock or ManualClock()
    config = SandboxConfig(**kw)  # type: ignore[arg-type]
    return SandboxState(config, clock=clock), clock


def link(state: SandboxState, campaign: str, *numbers: str) -> list[str]:
    got, _ = state.plivo.link(
        campaign, list(numbers), now=state.now(), request_id="r", callback=None
    )
    return got


def status(state: SandboxState, campaign: str, number: str) -> str:
    state.advance()
    return state.plivo.get(campaign, number).status


def test_number_parsing_accepts_us_long_codes_with_or_without_plus() -> None:
    assert to_e164("14155550100") == "+14155550100"
    assert to_e164("+14155550100") == "+14155550100"
    assert to_e164("4155550100") is None  # no country code
    assert to_e164("18005550100") is None  # toll-free
    assert to_e164("14115550100") is None  # N11
    assert to_e164("14150550100") is None  # exchange starting 0
    assert to_e164("19005550142") is None  # premium, non-geographic
    assert to_e164("15005550100") is None
    assert to_e164(14155550100) is None


def test_default_state_has_the_documented_pre_links() -> None:
    state, _ = make()
    plivo = state.plivo
    assert plivo.auth_id == "MASANDBOXAUTHID00001"
    assert [n for n in plivo.campaigns["CUOGHIN"].links] == [
        "+14155550100", "+14155550101", "+14155550102"
    ]
    assert len(plivo.campaigns["CMIGOLD"].links) == 20
    assert "+12125550129" in plivo.campaigns["CMIGOLD"].links
    assert len(plivo.campaigns["CRIGC80"].links) == 20
    assert "+13125550169" in plivo.campaigns["CRIGC80"].links
    assert all(link.status == "COMPLETED" for link in plivo.links.values())
    am = state.agentmessage
    resource = am.by_number["+12125550110"]
    assert resource.id == agentmessage_number_id("+12125550110")
    assert resource.carrier_line_option_status == "active"
    assert am.campaigns[resource.campaign_id or ""].name == "legacy"
    assert am.by_number["+14155550144"].org_id != DEFAULT_ORG
    assert len(am.org_numbers[DEFAULT_ORG]) == 1199


def test_link_settles_completed_exactly_at_its_settle_time() -> None:
    state, clock = make(settle_min=1.0, settle_max=1.0)
    link(state, "CUOGHIN", "14155550103")
    assert status(state, "CUOGHIN", "14155550103") == "PROCESSING"
    clock.advance(0.999)
    assert status(state, "CUOGHIN", "14155550103") == "PROCESSING"
    clock.advance(0.001)
    assert status(state, "CUOGHIN", "14155550103") == "COMPLETED"


def test_always_failing_and_never_settling_numbers() -> None:
    state, clock = make(settle_min=0.1, settle_max=0.1)
    link(state, "CUOGHIN", "14155550142", "14155550143")
    clock.advance(3600)
    assert status(state, "CUOGHIN", "14155550142") == "FAILED"
    assert status(state, "CUOGHIN", "14155550143") == "PROCESSING"


def test_fail_rate_fails_about_that_share_of_links() -> None:
    state, clock = make(fail_rate=0.3, settle_min=0.1, settle_max=0.1)
    numbers = [f"1303555{i:04d}" for i in range(100, 200)]
    for i in range(0, 100, 50):
        link(state, "CUOGHIN", *numbers[i : i + 50])
    clock.advance(1)
    state.advance()
    failed = state.plivo.campaigns["CUOGHIN"].counts["FAILED"]
    assert 15 <= failed <= 45


def test_slow_tail_settles_a_share_of_numbers_late() -> None:
    state, clock = make(settle_min=0.1, settle_max=0.2, slow_tail_rate=0.2,
                        slow_tail_min=50, slow_tail_max=60)
    link(state, "CUOGHIN", *[f"1303555{i:04d}" for i in range(100, 200)])
    clock.advance(1)
    state.advance()
    slow = state.plivo.campaigns["CUOGHIN"].counts["PROCESSING"]
    assert 8 <= slow <= 35
    clock.advance(60)
    state.advance()
    assert state.plivo.campaigns["CUOGHIN"].counts["PROCESSING"] == 0


def test_same_seed_gives_same_settle_times_and_outcomes() -> None:
    def run(seed: int) -> list[tuple[float | None, bool]]:
        state, _ = make(seed=seed, fail_rate=0.5)
        _, ops = state.plivo.link("CUOGHIN", [f"1303555{i:04d}" for i in range(100, 120)],
                                  now=state.now(), request_id="r", callback=None)
        return [(op.settle_at, op.failed) for op in ops]

    assert run(7) == run(7)
    assert run(7) != run(8)


def test_link_batch_is_all_or_nothing_and_names_the_first_bad_number() -> None:
    state, _ = make()
    with pytest.raises(PlivoRefusal) as err:
        link(state, "CUOGHIN", "14155550103", "14155550144", "1415")
    assert (err.value.status, err.value.message) == (
        400, "The number 14155550144 is not a valid number"
    )
    assert "+14155550103" not in state.plivo.links
    with pytest.raises(PlivoRefusal, match="already requested for linking"):
        link(state, "CUOGHIN", "14155550103", "14155550100")
    with pytest.raises(PlivoRefusal, match="12125550110 is already linked to another campaign"):
        link(state, "CUOGHIN", "12125550110")


def test_failed_link_can_be_linked_again_and_moves_to_the_end() -> None:
    state, clock = make(settle_min=0.1, settle_max=0.1)
    state.always_fail.add("+14155550103")
    link(state, "CUOGHIN", "14155550103", "14155550104")
    clock.advance(1)
    assert status(state, "CUOGHIN", "14155550103") == "FAILED"
    state.always_fail.discard("+14155550103")
    link(state, "CUOGHIN", "14155550103")
    assert list(state.plivo.campaigns["CUOGHIN"].links)[-1] == "+14155550103"
    clock.advance(1)
    assert status(state, "CUOGHIN", "14155550103") == "COMPLETED"
    assert state.counters.numbers["+14155550103"].link_accepted == 2


def test_unlink_keeps_the_number_listed_until_it_settles_and_repeat_is_a_no_op() -> None:
    state, clock = make(settle_min=1.0, settle_max=1.0)
    _, op = state.plivo.unlink("CUOGHIN", "14155550100", now=state.now(), request_id="r",
                               callback=None)
    assert op is not None
    _, again = state.plivo.unlink("CUOGHIN", "+14155550100", now=state.now(), request_id="r",
                                  callback=None)
    assert again is None
    assert status(state, "CUOGHIN", "14155550100") == "COMPLETED"
    clock.advance(1)
    state.advance()
    with pytest.raises(PlivoRefusal, match="is not linked to this campaign") as err:
        state.plivo.get("CUOGHIN", "14155550100")
    assert err.value.status == 404
    assert state.counters.numbers["+14155550100"].unlink_accepted == 1


def test_agentmessage_attach_check_order_and_settled_values() -> None:
    state, clock = make(settle_min=0.5, settle_max=0.5)
    am = state.agentmessage
    nid = agentmessage_number_id("+14155550105")
    with pytest.raises(AMError) as err:
        am.attach(DEFAULT_ORG, "nope", {"campaign_id": "x"}, now=state.now(), request_id="r")
    assert err.value.code == "VALIDATION_FAILED"
    resource, op = am.attach(DEFAULT_ORG, nid, {"campaign_id": AM_CAMPAIGN_MARKETING},
                             now=state.now(), request_id="r")
    assert op is not None and resource.carrier_line_option_status == "pending"
    _, again = am.attach(DEFAULT_ORG, nid, {"campaign_id": AM_CAMPAIGN_MARKETING},
                         now=state.now(), request_id="r")
    assert again is None
    clock.advance(0.5)
    state.advance()
    assert resource.carrier_line_option_status == "active"
    assert resource.carrier_line_option_propagated_at is not None
    am.detach(DEFAULT_ORG, nid, now=state.now(), request_id="r")
    assert resource.campaign_id is None and resource.carrier_line_option_status == "pending"
    clock.advance(0.5)
    state.advance()
    assert resource.carrier_line_option_status == "detached"
    _, noop = am.detach(DEFAULT_ORG, nid, now=state.now(), request_id="r")
    assert noop is None
    counts = state.counters.numbers["+14155550105"]
    assert (counts.attach_accepted, counts.detach_accepted) == (1, 1)


def test_sliding_window_admits_limit_per_window_and_frees_slots_one_by_one() -> None:
    window = SlidingWindow(3, 5.0)
    assert [window.try_acquire(t) for t in (0.0, 1.0, 2.0, 3.0)] == [True, True, True, False]
    assert window.try_acquire(4.9) is False
    assert window.try_acquire(5.0) is True  # the request at 0.0 left the window
    assert window.try_acquire(5.5) is False
    assert window.try_acquire(6.0) is True
    assert SlidingWindow(0, 5.0).try_acquire(0.0) is True  # 0 = off


def test_reset_restores_seeded_state_in_place() -> None:
    state, _clock = make()
    link(state, "CUOGHIN", "14155550103")
    before = id(state.plivo)
    state.reset()
    assert "+14155550103" not in state.plivo.links
    assert state.counters.to_dict()["totals"]["requests"] == 0
    assert id(state.plivo) != before  # rebuilt, while ``state`` itself stays the same object


def test_state_file_replaces_named_parts(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    path.write_text(json.dumps({
        "plivo": {
            "campaigns": [{"campaign_id": "CABC123", "alias": "promo"}],
            "links": [{"number": "+16175550100", "campaign_id": "CABC123"}],
            "unowned": [],
        },
        "agentmessage": {
            "campaigns": [{"id": "4f1c2d3e-0000-4000-8000-0000000000aa", "name": "unverified",
                           "status": "ACTIVE", "brand_verified": False}],
            "numbers": [{"number": "+16175550101", "assigned": False}],
            "number_ranges": [{"start": "+12052000000", "count": 5}],
        },
        "never_settle": ["+16175550102"],
    }))
    state, _ = make(state_file=path)
    assert list(state.plivo.campaigns) == ["CABC123"]
    assert state.plivo.links["+16175550100"].status == "COMPLETED"
    am = state.agentmessage
    assert len(am.org_numbers[DEFAULT_ORG]) == 6
    assert not am.by_number["+16175550101"].assigned
    with pytest.raises(AMError) as err:
        am.attach(DEFAULT_ORG, agentmessage_number_id("+12052000000"),
                  {"campaign_id": "4f1c2d3e-0000-4000-8000-0000000000aa"},
                  now=state.now(), request_id="r")
    assert err.value.code == "BRAND_NOT_VERIFIED"


def test_state_file_errors_name_the_problem(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"plivo": {"links": [{"number": "+16175550100",
                                                      "campaign_id": "CNOPE00"}]}}))
    with pytest.raises(StateFileError, match="unknown campaign 'CNOPE00'"):
        make(state_file=path)
    path.write_text("{")
    with pytest.raises(StateFileError, match="not JSON"):
        make(state_file=path)


def test_own_all_materialises_a_searched_number() -> None:
    state, _ = make()
    state.agentmessage.own_all = True
    page = state.agentmessage.list_numbers(DEFAULT_ORG, limit=5, cursor=None, campaign_id=None,
                                           search="+19725551234", number_type=None)
    assert [n.number for n in page.items] == ["+19725551234"]
    assert page.items[0].id == agentmessage_number_id("+19725551234")

