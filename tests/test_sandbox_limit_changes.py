"""An account's rate limit changed while the sandbox runs (``POST /_sandbox/rate-limit``): in
force at once for the requests that follow, the requests already admitted counting against the
new limit, back to the configured one on reset."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import anyio
import pytest

from bulk.sandbox import AdminClient, Sandbox, SandboxConfig, run_sandbox
from bulk.sandbox._core import FixedWindow, SlidingWindow, TokenBucket


@pytest.fixture
async def sb() -> AsyncIterator[Sandbox]:
    config = SandboxConfig(agentmessage_rate_limit=5, agentmessage_rate_window=60.0,
                           plivo_rate_limit=4, plivo_rate_window=60.0)
    async with run_sandbox(config) as sandbox:
        yield sandbox


async def admin(sb: Sandbox, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as http:
        async with http.request(method, sb.admin_url + path, json=body) as resp:
            return resp.status, await resp.json()


async def am_statuses(sb: Sandbox, count: int) -> list[int]:
    headers = {"Authorization": f"Bearer {sb.agentmessage_api_key}"}
    out = []
    async with aiohttp.ClientSession(headers=headers) as http:
        for _ in range(count):
            async with http.get(sb.base_url + "/v1/campaigns") as resp:
                out.append(resp.status)
    return out


async def plivo_statuses(sb: Sandbox, count: int) -> list[int]:
    token = base64.b64encode(f"{sb.plivo_auth_id}:{sb.plivo_auth_token}".encode()).decode()
    path = f"/v1/Account/{sb.plivo_auth_id}/10dlc/Campaign/CUOGHIN/Number/"
    out = []
    async with aiohttp.ClientSession(headers={"Authorization": f"Basic {token}"}) as http:
        for _ in range(count):
            async with http.get(sb.base_url + path) as resp:
                out.append(resp.status)
    return out


async def test_a_lowered_limit_refuses_at_once_counting_what_was_admitted(sb: Sandbox) -> None:
    assert await am_statuses(sb, 3) == [200] * 3
    status, body = await admin(sb, "POST", "/rate-limit",
                               {"account": "org_sandbox", "rate_limit": 3})
    assert status == 200
    assert body == {"account": "org_sandbox", "rate_limit": 3, "rate_window": 60.0,
                    "rate_shape": "sliding"}
    assert await am_statuses(sb, 1) == [429]  # the three already admitted fill the new limit
    counters = sb.counters()["accounts"]["org_sandbox"]
    assert counters["rate_limit"] == 3
    assert counters["rate_limited"] == 1


async def test_a_raised_limit_admits_more_at_once(sb: Sandbox) -> None:
    assert await am_statuses(sb, 6) == [200] * 5 + [429]
    status, _ = await admin(sb, "POST", "/rate-limit", {"account": "org_sandbox", "rate_limit": 8})
    assert status == 200
    assert await am_statuses(sb, 4) == [200] * 3 + [429]
    _, state = await admin(sb, "GET", "/state")
    assert state["agentmessage"]["orgs"]["org_sandbox"]["rate_limit"] == 8


async def test_a_plivo_account_limit_changes_too(sb: Sandbox) -> None:
    assert await plivo_statuses(sb, 2) == [200] * 2
    status, body = await admin(sb, "POST", "/rate-limit",
                               {"account": sb.plivo_auth_id, "rate_limit": 2})
    assert (status, body["rate_limit"], body["rate_window"]) == (200, 2, 60.0)
    assert await plivo_statuses(sb, 1) == [429]
    assert sb.counters()["accounts"][sb.plivo_auth_id]["rate_limit"] == 2


async def test_a_limit_of_zero_lifts_it_and_reset_restores_the_configured_one(
    sb: Sandbox,
) -> None:
    client = AdminClient(sb.base_url)  # synchronous: from a thread, the sandbox runs here
    answer = await anyio.to_thread.run_sync(client.set_rate_limit, "org_sandbox", 0)
    assert answer["rate_limit"] == 0
    assert await am_statuses(sb, 8) == [200] * 8
    await anyio.to_thread.run_sync(client.reset)
    assert sb.counters()["accounts"]["org_sandbox"]["rate_limit"] == 5
    assert await am_statuses(sb, 6) == [200] * 5 + [429]


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        ([1], 400, "expected a JSON object"),
        ({"rate_limit": 3}, 400, "account must be"),
        ({"account": 7, "rate_limit": 3}, 400, "account must be"),
        ({"account": "org_sandbox"}, 400, "rate_limit must be"),
        ({"account": "org_sandbox", "rate_limit": -1}, 400, "rate_limit must be"),
        ({"account": "org_sandbox", "rate_limit": 2.5}, 400, "rate_limit must be"),
        ({"account": "org_sandbox", "rate_limit": True}, 400, "rate_limit must be"),
        ({"account": "org_sandbox", "rate_limit": 3, "window": 2}, 400, "unknown keys"),
        ({"account": "org_nobody", "rate_limit": 3}, 404, "no account"),
    ],
)
async def test_a_bad_change_is_refused_and_changes_nothing(
    sb: Sandbox, body: Any, status: int, error: str
) -> None:
    got, answer = await admin(sb, "POST", "/rate-limit", body)
    assert got == status
    assert error in answer["error"]
    assert sb.counters()["accounts"]["org_sandbox"]["rate_limit"] == 5


def test_each_limiter_takes_a_new_limit_keeping_what_it_admitted() -> None:
    window = SlidingWindow(4, 10.0)
    assert all(window.try_acquire(t) for t in (0.0, 1.0, 2.0))
    window.set_limit(3, 2.5)
    assert not window.try_acquire(3.0)
    fixed = FixedWindow(4, 10.0)
    assert all(fixed.try_acquire(t) for t in (0.0, 1.0))
    fixed.set_limit(2, 2.0)
    assert not fixed.try_acquire(3.0)
    assert fixed.try_acquire(10.0)  # the next window counts afresh
    bucket = TokenBucket(10, 10.0)  # full: 10 tokens, 1 a second
    bucket.set_limit(2, 0.0)  # no more tokens than the new size
    assert [bucket.try_acquire(0.0) for _ in range(3)] == [True, True, False]
    assert bucket.room_in(0.0) == pytest.approx(5.0)  # refilled at 2 per 10 s now
    unlimited = TokenBucket(0, 10.0)
    unlimited.set_limit(2, 0.0)  # from no limit: a full bucket of the new size
    assert [unlimited.try_acquire(0.0) for _ in range(3)] == [True, True, False]
