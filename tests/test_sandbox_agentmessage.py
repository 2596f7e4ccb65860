"""The sandbox's AgentMessage wire, over real HTTP on loopback."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bulk.sandbox import (
    AM_CAMPAIGN_ALERTS,
    AM_CAMPAIGN_LEGACY,
    AM_CAMPAIGN_MARKETING,
    AM_CAMPAIGN_SEASONAL,
    DEFAULT_AGENTMESSAGE_KEY,
    READONLY_AGENTMESSAGE_KEY,
    ManualClock,
    Sandbox,
    SandboxConfig,
    agentmessage_number_id,
    run_sandbox,
)

FAST = SandboxConfig(settle_min=0.05, settle_max=0.1)
UNVERIFIED = "4f1c2d3e-0000-4000-8000-0000000000aa"


@pytest.fixture
async def sb() -> AsyncIterator[Sandbox]:
    async with run_sandbox(FAST) as sandbox:
        yield sandbox


@pytest.fixture
async def http(sb: Sandbox) -> AsyncIterator[aiohttp.ClientSession]:
    headers = {"Authorization": f"Bearer {sb.agentmessage_api_key}"}
    async with aiohttp.ClientSession(headers=headers) as session:
        yield session


async def call(
    http: aiohttp.ClientSession, method: str, target: str, body: Any = None, **kw: Any
) -> tuple[int, dict[str, Any], Any]:
    async with http.request(method, target, json=body, **kw) as resp:
        data = await resp.json()
        assert set(data) == {"success", "error", "meta", "data"}
        assert set(data["meta"]) == {"total", "limit", "offset", "next_cursor", "last_event_at"}
        assert resp.headers["X-Request-Id"]
        if data["error"] is not None:
            assert data["success"] is False and data["data"] is None
            assert data["error"]["request_id"] == resp.headers["X-Request-Id"]
            assert set(data["error"]) == {"code", "message", "request_id", "details"}
        return resp.status, data, resp.headers


def nid(number: str) -> str:
    return agentmessage_number_id(number)


async def test_default_key_and_a_number_resource(sb: Sandbox, http: aiohttp.ClientSession) -> None:
    assert sb.agentmessage_api_key == DEFAULT_AGENTMESSAGE_KEY
    status, body, _ = await call(http, "GET", f"{sb.base_url}/v1/phone-numbers/"
                                 f"{nid('+12125550110')}")
    assert status == 200 and body["success"] is True
    resource = body["data"]
    assert set(resource) == {
        "id", "number", "number_type", "inbound_url", "status_url", "label", "campaign_id",
        "carrier_line_option_status", "carrier_line_option_propagated_at", "sms_enabled",
        "mms_enabled", "created_at", "updated_at",
    }
    assert resource["number"] == "+12125550110"
    assert resource["campaign_id"] == AM_CAMPAIGN_LEGACY
    assert resource["carrier_line_option_status"] == "active"


async def test_unknown_and_other_orgs_numbers_are_404(
    sb: Sandbox, http: aiohttp.ClientSession
) -> None:
    for target in (nid("+14155550144"), nid("+19995550100"), "not-a-uuid"):
        status, body, _ = await call(http, "GET", f"{sb.base_url}/v1/phone-numbers/{target}")
        assert (status, body["error"]["code"]) == (404, "NOT_FOUND")


async def test_bad_or_missing_key_is_401_and_missing_scope_is_403(sb: Sandbox) -> None:
    for headers in ({}, {"Authorization": "Bearer am_live_wrong"}, {"Authorization": "Basic x"}):
        async with aiohttp.ClientSession(headers=headers) as session:
            status, body, _ = await call(session, "GET", f"{sb.base_url}/v1/phone-numbers")
        assert (status, body["error"]["code"]) == (401, "UNAUTHORIZED")
    headers = {"Authorization": f"Bearer {READONLY_AGENTMESSAGE_KEY}"}
    async with aiohttp.ClientSession(headers=headers) as session:
        status, _, _ = await call(session, "GET", f"{sb.base_url}/v1/phone-numbers")
        assert status == 200
        status, body, _ = await call(
            session, "POST", f"{sb.base_url}/v1/phone-numbers/{nid('+14155550105')}/campaign",
            {"campaign_id": AM_CAMPAIGN_MARKETING},
        )
        assert (status, body["error"]["code"]) == (403, "FORBIDDEN")
        status, body, _ = await call(
            session, "DELETE", f"{sb.base_url}/v1/phone-numbers/{nid('+12125550110')}/campaign"
        )
        assert (status, body["error"]["code"]) == (403, "FORBIDDEN")


async def test_list_numbers_newest_first_with_cursor_paging(
    sb: Sandbox, http: aiohttp.ClientSession
) -> None:
    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        params = {"limit": "100", **({"cursor": cursor} if cursor else {})}
        status, body, _ = await call(http, "GET", f"{sb.base_url}/v1/phone-numbers",
                                     params=params)
        assert status == 200
        assert body["meta"]["total"] == 1199 and body["meta"]["limit"] == 100
        assert body["meta"]["offset"] == len(seen)
        seen += [r["number"] for r in body["data"]]
        pages += 1
        cursor = body["meta"]["next_cursor"]
        if cursor is None:
            break
    assert pages == 12 and len(seen) == len(set(seen)) == 1199
    created = [sb.state.agentmessage.by_number[n].seq for n in seen]
    assert created == sorted(created, reverse=True)  # newest first
    status, body, _ = await call(http, "GET", f"{sb.base_url}/v1/phone-numbers")
    assert len(body["data"]) == 20  # default limit


async def test_list_numbers_filters(sb: Sandbox, http: aiohttp.ClientSession) -> None:
    base = f"{sb.base_url}/v1/phone-numbers"
    _, body, _ = await call(http, "GET", base, params={"campaign_id": AM_CAMPAIGN_ALERTS,
                                                       "limit": "100"})
    assert body["meta"]["total"] == 20
    assert {r["campaign_id"] for r in body["data"]} == {AM_CAMPAIGN_ALERTS}
    _, body, _ = await call(http, "GET", base, params={"search": "+14155550101"})
    assert [r["number"] for r in body["data"]] == ["+14155550101"]
    _, body, _ = await call(http, "GET", base, params={"search": "1415555012"})
    assert body["meta"]["total"] == 10
    _, body, _ = await call(http, "GET", base, params={"number_type": "toll_free"})
    assert body["data"] == [] and body["meta"]["total"] == 0


async def test_filtered_pages_hold_fewer_rows_than_the_limit_and_keep_a_cursor(
    sb: Sandbox, http: aiohttp.ClientSession
) -> None:
    base = f"{sb.base_url}/v1/phone-numbers"
    _, body, _ = await call(http, "GET", base, params={"campaign_id": AM_CAMPAIGN_LEGACY,
                                                       "limit": "15"})
    assert len(body["data"]) == 15 and body["meta"]["next_cursor"]
    _, body, _ = await call(http, "GET", base, params={
        "campaign_id": AM_CAMPAIGN_LEGACY, "limit": "15", "cursor": body["meta"]["next_cursor"]})
    assert len(body["data"]) == 5 and body["meta"]["next_cursor"] is None


@pytest.mark.parametrize("params", [
    {"limit": "0"}, {"limit": "101"}, {"limit": "abc"}, {"cursor": "@@@"},
    {"campaign_id": "marketing"}, {"number_type": "mobile"},
])
async def test_bad_query_parameters_are_400_invalid_input(
    sb: Sandbox, http: aiohttp.ClientSession, params: dict[str, str]
) -> None:
    status, body, _ = await call(http, "GET", f"{sb.base_url}/v1/phone-numbers", params=params)
    assert (status, body["error"]["code"]) == (400, "INVALID_INPUT")


async def test_attach_then_settles_active_and_reattach_is_a_200_no_op(
    sb: Sandbox, http: aiohttp.ClientSession
) -> None:
    target = f"{sb.base_url}/v1/phone-numbers/{nid('+14155550105')}/campaign"
    status, body, _ = await call(http, "POST", target, {"campaign_id": AM_CAMPAIGN_MARKETING})
    assert status == 200
    assert body["data"]["campaign_id"] == AM_CAMPAIGN_MARKETING
    assert body["data"]["carrier_line_option_status"] == "pending"
    assert body["data"]["carrier_line_option_propagated_at"] is None
    status, body, _ = await call(http, "POST", target, {"campaign_id": AM_CAMPAIGN_MARKETING})
    assert status == 200 and body["data"]["carrier_line_option_status"] == "pending"
    await asyncio.sleep(0.15)
    status, body, _ = await call(http, "GET", target.removesuffix("/campaign"))
    assert body["data"]["carrier_line_option_status"] == "active"
    assert body["data"]["carrier_line_option_propagated_at"] is not None
    assert body["meta"]["last_event_at"] == body["data"]["updated_at"]
    assert sb.counters()["numbers"]["+14155550105"]["attach_accepted"] == 1


async def test_attach_to_another_campaign_replaces_in_one_step(
    sb: Sandbox, http: aiohttp.ClientSession
) -> None:
    target = f"{sb.base_url}/v1/phone-numbers/{nid('+12125550110')}/campaign"
    status, body, _ = await call(http, "POST", target, {"campaign_id": AM_CAMPAIGN_ALERTS})
    assert status == 200
    assert body["data"]["campaign_id"] == AM_CAMPAIGN_ALERTS
    assert body["data"]["carrier_line_option_status"] == "pending"


async def test_failed_and_never_settling_attaches(sb: Sandbox, http: aiohttp.ClientSession) -> None:
    for number in ("+14155550142", "+14155550143"):
        target = f"{sb.base_url}/v1/phone-numbers/{nid(number)}/campaign"
        status, _, _ = await call(http, "POST", target, {"campaign_id": AM_CAMPAIGN_MARKETING})
        assert status == 200
    await asyncio.sleep(0.15)
    got = {}
    for number in ("+14155550142", "+14155550143"):
        _, body, _ = await call(http, "GET", f"{sb.base_url}/v1/phone-numbers/{nid(number)}")
        got[number] = body["data"]["carrier_line_option_status"]
    assert got == {"+14155550142": "failed", "+14155550143": "pending"}
    target = f"{sb.base_url}/v1/phone-numbers/{nid('+14155550142')}/campaign"
    status, body, _ = await call(http, "POST", target, {"campaign_id": AM_CAMPAIGN_MARKETING})
    # re-attaching the same campaign is 200 with no change (published), a failed one too
    assert (status, body["data"]["carrier_line_option_status"]) == (200, "failed")


async def test_attach_checks_in_the_documented_order(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    state.write_text(
        '{"agentmessage": {"campaigns": ['
        f'{{"id": "{AM_CAMPAIGN_MARKETING}", "name": "marketing", "status": "ACTIVE"}},'
        f'{{"id": "{AM_CAMPAIGN_SEASONAL}", "name": "seasonal", "status": "PENDING",'
        ' "brand_verified": false},'
        f'{{"id": "{UNVERIFIED}", "name": "unverified", "status": "ACTIVE",'
        ' "brand_verified": false}],'
        ' "numbers": ["+16175550100", {"number": "+16175550101", "assigned": false}]}}'
    )
    async with run_sandbox(SandboxConfig(state_file=state)) as sb:
        headers = {"Authorization": f"Bearer {sb.agentmessage_api_key}"}
        async with aiohttp.ClientSession(headers=headers) as http:
            async def attach(number_id: str, body: Any) -> tuple[int, str]:
                status, answer, _ = await call(
                    http, "POST", f"{sb.base_url}/v1/phone-numbers/{number_id}/campaign", body)
                return status, answer["error"]["code"] if answer["error"] else "OK"

            unknown = nid("+19995550100")
            unassigned = nid("+16175550101")
            assert await attach(unknown, {}) == (422, "VALIDATION_FAILED")
            assert await attach(unknown, {"campaign_id": "x"}) == (422, "VALIDATION_FAILED")
            assert await attach(unknown, {"campaign_id": AM_CAMPAIGN_ALERTS}) == (
                404, "NOT_FOUND")
            assert await attach(unknown, {"campaign_id": AM_CAMPAIGN_SEASONAL}) == (
                409, "CAMPAIGN_NOT_ACTIVE")
            assert await attach(unknown, {"campaign_id": UNVERIFIED}) == (
                409, "BRAND_NOT_VERIFIED")
            assert await attach(unknown, {"campaign_id": AM_CAMPAIGN_MARKETING}) == (
                404, "NOT_FOUND")
            assert await attach(unassigned, {"campaign_id": AM_CAMPAIGN_MARKETING}) == (
                409, "NUMBER_NOT_ASSIGNED")
            assert await attach(nid("+16175550100"), {"campaign_id": AM_CAMPAIGN_MARKETING}) == (
                200, "OK")
            status, body, _ = await call(
                http, "DELETE", f"{sb.base_url}/v1/phone-numbers/{unassigned}/campaign")
            assert (status, body["error"]["code"]) == (409, "NUMBER_NOT_ASSIGNED")
            async with http.post(f"{sb.base_url}/v1/phone-numbers/{unknown}/campaign",
                                 data=b"{not json") as resp:
                assert resp.status == 422


async def test_detach_is_idempotent_and_settles_detached(
    sb: Sandbox, http: aiohttp.ClientSession
) -> None:
    target = f"{sb.base_url}/v1/phone-numbers/{nid('+12125550111')}/campaign"
    status, body, _ = await call(http, "DELETE", target)
    assert status == 200
    assert body["data"]["campaign_id"] is None
    assert body["data"]["carrier_line_option_status"] == "pending"
    status, body, _ = await call(http, "DELETE", target)
    assert status == 200 and body["data"]["campaign_id"] is None
    await asyncio.sleep(0.15)
    _, body, _ = await call(http, "GET", target.removesuffix("/campaign"))
    assert body["data"]["carrier_line_option_status"] == "detached"
    status, body, _ = await call(http, "DELETE", target)
    assert status == 200 and body["data"]["carrier_line_option_status"] == "detached"
    assert sb.counters()["numbers"]["+12125550111"]["detach_accepted"] == 1
    status, body, _ = await call(
        http, "DELETE", f"{sb.base_url}/v1/phone-numbers/{nid('+14155550144')}/campaign")
    assert (status, body["error"]["code"]) == (404, "NOT_FOUND")


async def test_list_campaigns_pages_with_x_next_cursor(
    sb: Sandbox, http: aiohttp.ClientSession
) -> None:
    base = f"{sb.base_url}/v1/campaigns"
    status, body, headers = await call(http, "GET", base, params={"limit": "3"})
    assert status == 200
    assert [c["id"] for c in body["data"]] == [
        AM_CAMPAIGN_MARKETING, AM_CAMPAIGN_ALERTS, AM_CAMPAIGN_LEGACY
    ]
    cursor = headers["X-Next-Cursor"]
    status, body, headers = await call(http, "GET", base, params={"limit": "3",
                                                                  "cursor": cursor})
    assert [c["id"] for c in body["data"]] == [AM_CAMPAIGN_SEASONAL]
    assert body["data"][0]["status"] == "PENDING"
    assert "X-Next-Cursor" not in headers
    _, body, headers = await call(http, "GET", base, params={"status": "ACTIVE"})
    assert [c["name"] for c in body["data"]] == ["marketing", "alerts", "legacy"]
    assert "X-Next-Cursor" not in headers
    status, body, _ = await call(http, "GET", base, params={"status": "active"})
    assert (status, body["error"]["code"]) == (400, "INVALID_INPUT")


async def test_rate_limit_is_429_rate_limited_with_retry_after() -> None:
    config = SandboxConfig(agentmessage_rate_limit=2, agentmessage_rate_window=0.3,
                           agentmessage_retry_after=3)
    async with run_sandbox(config) as sb:
        headers = {"Authorization": f"Bearer {sb.agentmessage_api_key}"}
        async with aiohttp.ClientSession(headers=headers) as http:
            results = [await call(http, "GET", f"{sb.base_url}/v1/campaigns")
                       for _ in range(3)]
            assert [r[0] for r in results] == [200, 200, 429]
            _, body, resp_headers = results[2]
            assert body["error"]["code"] == "RATE_LIMITED"
            assert resp_headers["Retry-After"] == "3"
            await asyncio.sleep(0.32)
            status, _, _ = await call(http, "GET", f"{sb.base_url}/v1/campaigns")
            assert status == 200
        assert sb.counters()["endpoints"]["agentmessage.list_campaigns"]["rate_limited"] == 1


async def test_own_all_lets_a_benchmark_find_and_attach_generated_numbers(
    tmp_path: Path,
) -> None:
    state = tmp_path / "state.json"
    state.write_text('{"agentmessage": {"own_all": true}}')
    async with run_sandbox(SandboxConfig(state_file=state, settle_min=0.01,
                                         settle_max=0.02)) as sb:
        headers = {"Authorization": f"Bearer {sb.agentmessage_api_key}"}
        async with aiohttp.ClientSession(headers=headers) as http:
            _, body, _ = await call(http, "GET", f"{sb.base_url}/v1/phone-numbers",
                                    params={"search": "+19725551234"})
            [resource] = body["data"]
            assert resource["id"] == nid("+19725551234")
            status, _, _ = await call(http, "POST",
                                      f"{sb.base_url}/v1/phone-numbers/{resource['id']}/campaign",
                                      {"campaign_id": AM_CAMPAIGN_MARKETING})
            assert status == 200


async def test_list_numbers_is_newest_first_by_created_at_too(tmp_path: Path) -> None:
    """Published: the number list is newest first. A resource a state file's attachment
    creates, and one ``own_all`` creates on a search (here on a manual clock, whose wall time
    starts at the seed epoch), must not show a ``created_at`` older than the ones listed
    after it."""
    state = tmp_path / "state.json"
    state.write_text(
        '{"agentmessage": {"own_all": true, "numbers": ["+16175550100", "+16175550101"],'
        ' "attachments": [{"number": "+16175550199",'
        f' "campaign_id": "{AM_CAMPAIGN_MARKETING}", "carrier_line_option_status": "active"}}]}}}}'
    )
    async with run_sandbox(SandboxConfig(state_file=state), clock=ManualClock()) as sb:
        headers = {"Authorization": f"Bearer {sb.agentmessage_api_key}"}
        async with aiohttp.ClientSession(headers=headers) as http:
            base = f"{sb.base_url}/v1/phone-numbers"
            await call(http, "GET", base, params={"search": "+16175550150"})
            _, body, _ = await call(http, "GET", base)
    listed = [(r["number"], r["created_at"]) for r in body["data"]]
    assert [n for n, _ in listed] == ["+16175550150", "+16175550199", "+16175550101",
                                      "+16175550100"]
    stamps = [c for _, c in listed]
    assert stamps == sorted(stamps, reverse=True), listed


@pytest.mark.parametrize("value", [1.5, True, "2"])
def test_retry_after_is_whole_seconds_so_other_values_are_refused(value: Any) -> None:
    """Published: 429 ``RATE_LIMITED`` carries ``Retry-After`` in whole seconds. The sandbox
    sends ``str(agentmessage_retry_after)``: 1.5 would put ``1.5``, True ``True`` on the wire."""
    with pytest.raises(ValueError, match="agentmessage_retry_after"):
        SandboxConfig(agentmessage_retry_after=value)


async def test_written_choices_trailing_slash_is_404_and_empty_query_values(
    sb: Sandbox, http: aiohttp.ClientSession
) -> None:
    """Not documented by the provider; WIRE.md's choices: no trailing-slash paths, an empty
    filter or cursor is absent, an empty limit is 400."""
    number = f"{sb.base_url}/v1/phone-numbers/{nid('+14155550100')}"
    for target in (f"{sb.base_url}/v1/phone-numbers/", f"{sb.base_url}/v1/campaigns/",
                   number + "/"):
        status, body, _ = await call(http, "GET", target)
        assert (status, body["error"]["code"]) == (404, "NOT_FOUND")
    status, body, _ = await call(http, "GET", f"{sb.base_url}/v1/phone-numbers", params={
        "cursor": "", "campaign_id": "", "search": "", "number_type": ""})
    assert status == 200 and body["meta"]["total"] == 1199
    status, body, _ = await call(http, "GET", f"{sb.base_url}/v1/campaigns", params={
        "status": "", "cursor": ""})
    assert status == 200 and body["meta"]["total"] == 4
    status, body, _ = await call(http, "GET", f"{sb.base_url}/v1/campaigns", params={"limit": ""})
    assert (status, body["error"]["code"]) == (400, "INVALID_INPUT")
