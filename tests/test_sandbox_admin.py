"""The admin API under /_sandbox: state, counters, reset and runtime faults."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from bulk.sandbox import (
    AM_CAMPAIGN_MARKETING,
    FaultConfig,
    Sandbox,
    SandboxConfig,
    agentmessage_number_id,
    build_app,
    run_sandbox,
)


@pytest.fixture
async def sb() -> AsyncIterator[Sandbox]:
    async with run_sandbox(SandboxConfig(settle_min=0.05, settle_max=0.1)) as sandbox:
        yield sandbox


async def admin(sb: Sandbox, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as http:
        async with http.request(method, sb.admin_url + path, json=body) as resp:
            return resp.status, await resp.json()


async def plivo_link(sb: Sandbox, numbers: list[str]) -> int:
    token = base64.b64encode(f"{sb.plivo_auth_id}:{sb.plivo_auth_token}".encode()).decode()
    async with aiohttp.ClientSession(headers={"Authorization": f"Basic {token}"}) as http:
        async with http.post(
            f"{sb.base_url}/v1/Account/{sb.plivo_auth_id}/10dlc/Campaign/CUOGHIN/Number/",
            json={"numbers": numbers},
        ) as resp:
            return resp.status


async def test_state_shows_both_providers(sb: Sandbox) -> None:
    status, state = await admin(sb, "GET", "/state")
    assert status == 200
    plivo = state["plivo"]["campaigns"]
    assert set(plivo) == {"CUOGHIN", "CRIGC80", "CMIGOLD"}
    assert [n["number"] for n in plivo["CUOGHIN"]["numbers"]] == [
        "+14155550100", "+14155550101", "+14155550102"
    ]
    org = state["agentmessage"]["orgs"]["org_sandbox"]
    assert org["numbers_owned"] == 1199
    assert {c["name"] for c in org["campaigns"]} == {"marketing", "alerts", "legacy", "seasonal"}
    assert len(org["numbers"]) == 43  # the attached ones
    assert state["always_fail"] == ["+14155550142"]
    assert state["never_settle"] == ["+14155550143"]


async def test_counters_count_requests_statuses_and_only_real_changes(sb: Sandbox) -> None:
    assert await plivo_link(sb, ["14155550103"]) == 202
    assert await plivo_link(sb, ["14155550103"]) == 400  # refused: no change
    assert await plivo_link(sb, ["14155550144"]) == 400
    async with aiohttp.ClientSession(
        headers={"Authorization": f"Bearer {sb.agentmessage_api_key}"}
    ) as http:
        target = (f"{sb.base_url}/v1/phone-numbers/"
                  f"{agentmessage_number_id('+14155550103')}/campaign")
        for _ in range(2):  # the second is an idempotent no-op
            async with http.post(target, json={"campaign_id": AM_CAMPAIGN_MARKETING}) as resp:
                assert resp.status == 200
    status, counters = await admin(sb, "GET", "/counters")
    assert status == 200 and counters == sb.counters()
    assert counters["endpoints"]["plivo.link"] == {
        "requests": 3, "rate_limited": 0, "faults": 0, "status": {"202": 1, "400": 2}
    }
    assert counters["numbers"]["+14155550103"] == {
        "requests": 4, "link_accepted": 1, "unlink_accepted": 0, "attach_accepted": 1,
        "detach_accepted": 0,
    }
    assert counters["totals"] == {
        "requests": 5, "rate_limited": 0, "faults": 0, "link_accepted": 1,
        "unlink_accepted": 0, "attach_accepted": 1, "detach_accepted": 0,
    }


async def test_reset_returns_to_the_seeded_state_with_zero_counters(sb: Sandbox) -> None:
    state_object = sb.state
    await plivo_link(sb, ["14155550103"])
    sb.set_faults(FaultConfig(error_5xx_rate=1.0))
    status, _ = await admin(sb, "POST", "/reset")
    assert status == 200
    assert sb.state is state_object
    assert "+14155550103" not in sb.state.plivo.links
    assert sb.counters()["totals"]["requests"] == 0
    assert sb.faults.config == FaultConfig()  # back to the configured faults
    assert await plivo_link(sb, ["14155550103"]) == 202


async def test_faults_can_be_set_over_http_and_bad_ones_are_400(sb: Sandbox) -> None:
    status, body = await admin(sb, "POST", "/faults",
                               {"error_5xx_rate": 1, "endpoints": ["plivo.link"]})
    assert status == 200 and body["endpoints"] == ["plivo.link"]
    assert await plivo_link(sb, ["14155550103"]) >= 500
    status, current = await admin(sb, "GET", "/faults")
    assert current["error_5xx_rate"] == 1.0
    for bad in ({"error_5xx_rate": 2}, {"nope": 1}, {"endpoints": ["x.y"]}, [1]):
        status, body = await admin(sb, "POST", "/faults", bad)
        assert status == 400 and body["error"]
    status, _ = await admin(sb, "POST", "/faults", {})
    assert await plivo_link(sb, ["14155550104"]) == 202


async def test_build_app_serves_without_run_sandbox(aiohttp_free_port: int) -> None:
    from aiohttp import web

    app = build_app(SandboxConfig())
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", aiohttp_free_port)
    await site.start()
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{aiohttp_free_port}/_sandbox/counters") as r:
                assert r.status == 200
    finally:
        await runner.cleanup()


@pytest.fixture
def aiohttp_free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def test_unknown_paths_and_wrong_methods_answer_in_the_providers_format(
    sb: Sandbox,
) -> None:
    async with aiohttp.ClientSession() as http:
        plivo_base = f"{sb.base_url}/v1/Account/{sb.plivo_auth_id}/10dlc/Campaign/CUOGHIN/"
        async with http.put(plivo_base + "Number/") as resp:
            body = await resp.json()
            assert resp.status == 405 and body["error"] == "Method not allowed"
            assert "POST" in resp.headers["Allow"]
        async with http.get(f"{sb.base_url}/v1/Account/x/nothing") as resp:
            assert resp.status == 404 and (await resp.json())["error"] == "Resource not found"
        async with http.put(f"{sb.base_url}/v1/campaigns") as resp:
            body = await resp.json()
            assert resp.status == 405 and body["error"]["code"] == "METHOD_NOT_ALLOWED"
            assert resp.headers["X-Request-Id"] == body["error"]["request_id"]
        async with http.get(f"{sb.base_url}/v1/nothing") as resp:
            assert resp.status == 404 and (await resp.json())["error"]["code"] == "NOT_FOUND"
