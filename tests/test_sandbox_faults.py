"""Injected faults on provider paths, over real HTTP on loopback."""

from __future__ import annotations

import asyncio
import base64
import itertools
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from bulk.sandbox import (
    AM_CAMPAIGN_MARKETING,
    FaultConfig,
    ManualClock,
    Sandbox,
    SandboxConfig,
    agentmessage_number_id,
    run_sandbox,
)


def plivo_headers(sb: Sandbox) -> dict[str, str]:
    token = base64.b64encode(f"{sb.plivo_auth_id}:{sb.plivo_auth_token}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def plivo_url(sb: Sandbox, tail: str = "Number/") -> str:
    return f"{sb.base_url}/v1/Account/{sb.plivo_auth_id}/10dlc/Campaign/CUOGHIN/{tail}"


def am_headers(sb: Sandbox) -> dict[str, str]:
    return {"Authorization": f"Bearer {sb.agentmessage_api_key}"}


@pytest.fixture
async def sb() -> AsyncIterator[Sandbox]:
    async with run_sandbox(SandboxConfig(seed=3, settle_min=0.05, settle_max=0.1)) as sandbox:
        yield sandbox


async def raw(session: aiohttp.ClientSession, method: str, target: str,
              body: Any = None) -> tuple[int, str, str, Any]:
    async with session.request(method, target, json=body) as resp:
        return resp.status, resp.content_type, await resp.text(), resp.headers


async def test_5xx_faults_vary_the_status_and_mix_json_and_html_bodies(sb: Sandbox) -> None:
    sb.set_faults(FaultConfig(error_5xx_rate=1.0))
    seen: set[tuple[int, str]] = set()
    async with aiohttp.ClientSession(headers=plivo_headers(sb)) as http:
        for _ in range(30):
            status, ctype, text, _ = await raw(http, "GET", plivo_url(sb))
            seen.add((status, ctype))
            if ctype == "application/json":
                assert '"error"' in text and '"api_id"' in text
            else:
                assert ctype == "text/html" and "<html>" in text
    assert {s for s, _ in seen} == {500, 502, 503}
    assert {c for _, c in seen} == {"application/json", "text/html"}
    assert sb.counters()["endpoints"]["plivo.list"]["faults"] == 30


async def test_agentmessage_5xx_keeps_the_envelope_and_request_id(sb: Sandbox) -> None:
    sb.set_faults(FaultConfig(error_5xx_rate=1.0))
    async with aiohttp.ClientSession(headers=am_headers(sb)) as http:
        for _ in range(10):
            status, ctype, text, headers = await raw(http, "GET", f"{sb.base_url}/v1/campaigns")
            assert status >= 500 and headers["X-Request-Id"]
            if ctype == "application/json":
                assert '"success": false' in text and '"code"' in text


async def test_reset_drops_the_connection_without_a_response(sb: Sandbox) -> None:
    sb.set_faults(FaultConfig(reset_rate=1.0))
    async with aiohttp.ClientSession(headers=plivo_headers(sb)) as http:
        with pytest.raises(aiohttp.ClientConnectionError):
            await raw(http, "POST", plivo_url(sb), {"numbers": ["14155550103"]})
    assert sb.counters()["endpoints"]["plivo.link"]["status"] == {"reset": 1}
    assert "+14155550103" not in sb.state.plivo.links  # before the effect


async def test_hang_outlasts_the_client_timeout_then_drops() -> None:
    # on a manual clock the hang lasts until the test moves the time: no wall-clock bound
    clock = ManualClock()
    config = SandboxConfig(seed=3, faults=FaultConfig(hang_rate=1.0, hang_seconds=0.6))
    async with run_sandbox(config, clock=clock) as sb:
        timeout = aiohttp.ClientTimeout(total=0.2)
        async with aiohttp.ClientSession(headers=am_headers(sb), timeout=timeout) as http:
            started = clock.now()
            with pytest.raises(TimeoutError):
                await raw(http, "GET", f"{sb.base_url}/v1/campaigns")
            assert clock.now() - started < 0.5  # the client gave up while the hang went on
        clock.advance(0.6)  # let that hang end
        patient = aiohttp.ClientTimeout(total=10)
        async with aiohttp.ClientSession(headers=am_headers(sb), timeout=patient) as http:
            attach = asyncio.ensure_future(
                raw(http, "POST", f"{sb.base_url}/v1/phone-numbers/"
                    f"{agentmessage_number_id('+14155550105')}/campaign",
                    {"campaign_id": AM_CAMPAIGN_MARKETING})
            )
            await clock.until_sleeping()
            started = clock.now()
            clock.advance(0.55)
            await asyncio.sleep(0.05)
            assert not attach.done()  # still hanging at 0.55 s
            clock.advance(0.05)
            with pytest.raises(aiohttp.ClientConnectionError):
                await attach
            assert clock.now() - started >= 0.55


async def test_truncated_body_has_the_real_status_and_takes_effect(sb: Sandbox) -> None:
    sb.set_faults(FaultConfig(truncated_rate=1.0))
    async with aiohttp.ClientSession(headers=plivo_headers(sb)) as http:
        async with http.post(plivo_url(sb), json={"numbers": ["14155550103"]}) as resp:
            assert resp.status == 202
            assert resp.content_type == "application/json"
            with pytest.raises(aiohttp.ClientPayloadError):
                await resp.read()
    assert sb.state.plivo.links["+14155550103"].status == "PROCESSING"
    assert sb.counters()["numbers"]["+14155550103"]["link_accepted"] == 1


async def test_non_json_fault_is_a_200_html_page(sb: Sandbox) -> None:
    sb.set_faults(FaultConfig(non_json_rate=1.0))
    async with aiohttp.ClientSession(headers=am_headers(sb)) as http:
        async with http.get(f"{sb.base_url}/v1/phone-numbers") as resp:
            assert resp.status == 200 and resp.content_type == "text/html"
            with pytest.raises(aiohttp.ContentTypeError):
                await resp.json()


def runs_of_429(statuses: list[int]) -> list[int]:
    return [len(list(group)) for key, group in itertools.groupby(statuses) if key == 429]


async def test_429_burst_storms_last_the_configured_length(sb: Sandbox) -> None:
    sb.set_faults(FaultConfig(burst_429_rate=0.3, burst_429_length=4))
    statuses = []
    async with aiohttp.ClientSession(headers=plivo_headers(sb)) as http:
        for _ in range(40):
            status, _, text, headers = await raw(http, "GET", plivo_url(sb))
            statuses.append(status)
            if status == 429:
                assert "Retry-After" not in headers and '"error"' in text
    assert set(statuses) == {200, 429}
    last_200 = len(statuses) - 1 - statuses[::-1].index(200)
    runs = runs_of_429(statuses[: last_200 + 1])  # drop a storm cut short by the end
    assert runs and all(run % 4 == 0 for run in runs)


async def test_agentmessage_429_burst_says_rate_limited_with_retry_after(sb: Sandbox) -> None:
    sb.set_faults(FaultConfig(burst_429_rate=1.0, burst_429_length=2))
    async with aiohttp.ClientSession(headers=am_headers(sb)) as http:
        status, _, text, headers = await raw(http, "GET", f"{sb.base_url}/v1/campaigns")
    assert status == 429 and '"RATE_LIMITED"' in text and headers["Retry-After"] == "1"


async def test_fault_after_effect_changes_state_although_the_client_saw_an_error(
    sb: Sandbox,
) -> None:
    sb.set_faults(FaultConfig(error_5xx_rate=1.0, after_rate=1.0))
    async with aiohttp.ClientSession(headers=plivo_headers(sb)) as http:
        status, _, _, _ = await raw(http, "POST", plivo_url(sb), {"numbers": ["14155550103"]})
        assert status >= 500
        status, _, _, _ = await raw(http, "DELETE", plivo_url(sb, "Number/14155550100/"))
        assert status >= 500
    assert sb.state.plivo.links["+14155550103"].status == "PROCESSING"
    assert sb.state.plivo.links["+14155550100"].unlink_op is not None
    counters = sb.counters()
    assert counters["numbers"]["+14155550103"]["link_accepted"] == 1
    assert counters["numbers"]["+14155550100"]["unlink_accepted"] == 1
    assert counters["totals"]["faults"] == 2


async def test_fault_before_effect_leaves_state_alone(sb: Sandbox) -> None:
    sb.set_faults(FaultConfig(error_5xx_rate=1.0, after_rate=0.0))
    async with aiohttp.ClientSession(headers=am_headers(sb)) as http:
        status, _, _, _ = await raw(http, "POST", f"{sb.base_url}/v1/phone-numbers/"
                                    f"{agentmessage_number_id('+14155550105')}/campaign",
                                    {"campaign_id": AM_CAMPAIGN_MARKETING})
    assert status >= 500
    assert sb.state.agentmessage.by_number["+14155550105"].campaign_id is None
    assert "+14155550105" not in sb.counters()["numbers"] or (
        sb.counters()["numbers"]["+14155550105"]["attach_accepted"] == 0
    )


async def test_faults_can_target_named_endpoints_only(sb: Sandbox) -> None:
    sb.set_faults(FaultConfig(error_5xx_rate=1.0, endpoints=frozenset({"plivo.link"})))
    async with aiohttp.ClientSession(headers=plivo_headers(sb)) as http:
        status, _, _, _ = await raw(http, "GET", plivo_url(sb))
        assert status == 200
        status, _, _, _ = await raw(http, "POST", plivo_url(sb), {"numbers": ["14155550103"]})
        assert status >= 500


async def test_latency_delays_provider_requests_but_not_the_admin_api() -> None:
    clock = ManualClock()
    config = SandboxConfig(
        seed=3, faults=FaultConfig(latency_min=0.2, latency_max=0.25, reset_rate=1.0)
    )
    async with run_sandbox(config, clock=clock) as sb:
        async with aiohttp.ClientSession() as admin:
            started = clock.now()
            async with asyncio.timeout(10), admin.get(sb.admin_url + "/counters") as resp:
                assert resp.status == 200  # a latency would wait for a clock nobody moves
            assert clock.now() - started < 0.15  # answered with the time standing still

        async def delayed(expect_reset: bool) -> None:
            async with aiohttp.ClientSession(headers=am_headers(sb)) as http:
                # a POST: aiohttp sends a GET again by itself after a dropped connection
                read = asyncio.ensure_future(
                    raw(http, "POST", f"{sb.base_url}/v1/phone-numbers/"
                        f"{agentmessage_number_id('+14155550105')}/campaign",
                        {"campaign_id": AM_CAMPAIGN_MARKETING})
                    if expect_reset
                    else raw(http, "GET", f"{sb.base_url}/v1/campaigns")
                )
                await clock.until_sleeping()
                started = clock.now()
                clock.advance(0.19)
                await asyncio.sleep(0.05)
                assert not read.done()  # no answer before 0.19 s
                clock.advance(0.06)
                if expect_reset:
                    with pytest.raises(aiohttp.ClientConnectionError):
                        await read
                else:
                    status, _, _, _ = await read
                    assert status == 200 and clock.now() - started >= 0.19

        await delayed(expect_reset=True)
        sb.set_faults(FaultConfig(latency_min=0.2, latency_max=0.25))
        await delayed(expect_reset=False)


async def statuses_for(seed: int) -> list[int | str]:
    config = SandboxConfig(seed=seed, faults=FaultConfig(error_5xx_rate=0.3, reset_rate=0.2,
                                                         burst_429_rate=0.1))
    out: list[int | str] = []
    async with run_sandbox(config) as sb:
        async with aiohttp.ClientSession(headers=plivo_headers(sb)) as http:
            for i in range(25):
                try:
                    status, _, _, _ = await raw(http, "POST", plivo_url(sb),
                                                {"numbers": [f"1303555{100 + i:04d}"]})
                    out.append(status)
                except aiohttp.ClientConnectionError:
                    out.append("reset")
    return out


async def test_same_seed_repeats_the_same_fault_sequence() -> None:
    first, second, other = await asyncio.gather(statuses_for(11), statuses_for(11),
                                                statuses_for(12))
    assert first == second
    assert first != other
    assert {202, "reset", 429} <= set(first)


async def test_fault_config_rejects_out_of_range_values() -> None:
    with pytest.raises(ValueError, match="sum above 1"):
        FaultConfig(error_5xx_rate=0.6, reset_rate=0.6)
    with pytest.raises(ValueError, match="unknown endpoint"):
        FaultConfig(endpoints=frozenset({"plivo.nope"}))
    with pytest.raises(ValueError, match="unknown fault options"):
        FaultConfig.from_dict({"error_rate": 1})
