"""The sandbox's Plivo 10DLC wire, over real HTTP on loopback."""

from __future__ import annotations

import asyncio
import base64
import itertools
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from plivo.utils import validate_signature

from bulk.sandbox import (
    DEFAULT_PLIVO_AUTH_ID,
    DEFAULT_PLIVO_AUTH_TOKEN,
    ManualClock,
    Sandbox,
    SandboxConfig,
    run_sandbox,
)

FAST = SandboxConfig(settle_min=0.05, settle_max=0.1)


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.fixture
async def sb() -> AsyncIterator[Sandbox]:
    async with run_sandbox(FAST) as sandbox:
        yield sandbox


@pytest.fixture
async def http(sb: Sandbox) -> AsyncIterator[aiohttp.ClientSession]:
    headers = {"Authorization": basic(sb.plivo_auth_id, sb.plivo_auth_token)}
    async with aiohttp.ClientSession(headers=headers) as session:
        yield session


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def held(clock: ManualClock) -> AsyncIterator[Sandbox]:
    """A sandbox on ``clock``: nothing settles until the test advances it, however slowly the
    test's own requests run on a loaded machine."""
    async with run_sandbox(FAST, clock=clock) as sandbox:
        yield sandbox


@pytest.fixture
async def held_http(held: Sandbox) -> AsyncIterator[aiohttp.ClientSession]:
    headers = {"Authorization": basic(held.plivo_auth_id, held.plivo_auth_token)}
    async with aiohttp.ClientSession(headers=headers) as session:
        yield session


def url(sb: Sandbox, campaign: str = "CUOGHIN", tail: str = "Number/") -> str:
    return f"{sb.base_url}/v1/Account/{sb.plivo_auth_id}/10dlc/Campaign/{campaign}/{tail}"


async def call(
    http: aiohttp.ClientSession, method: str, target: str, body: Any = None
) -> tuple[int, Any, aiohttp.typedefs.LooseHeaders]:
    async with http.request(method, target, json=body) as resp:
        return resp.status, await resp.json(), resp.headers


async def test_credentials_and_the_default_account_are_the_documented_values(
    sb: Sandbox,
) -> None:
    assert sb.plivo_auth_id == DEFAULT_PLIVO_AUTH_ID == "MASANDBOXAUTHID00001"
    assert sb.plivo_auth_token == DEFAULT_PLIVO_AUTH_TOKEN == "sandbox-auth-token"
    assert sb.base_url.startswith("http://127.0.0.1:")
    assert sb.admin_url == sb.base_url + "/_sandbox"


async def test_link_answers_202_with_the_documented_message(
    sb: Sandbox, http: aiohttp.ClientSession
) -> None:
    status, body, _ = await call(http, "POST", url(sb), {"numbers": ["14155550103"]})
    assert status == 202
    assert body["message"] == (
        "Request to link 14155550103 to campaign CUOGHIN was received and is being processed"
    )
    assert isinstance(body["api_id"], str) and body["api_id"]
    status, body, _ = await call(
        http, "POST", url(sb), {"numbers": ["+14155550104", "14155550105"], "url": ""}
    )
    assert status == 202
    assert body["message"].startswith("Request to link 14155550104, 14155550105 to campaign")


async def test_link_refuses_the_whole_batch_naming_the_first_bad_number(
    sb: Sandbox, http: aiohttp.ClientSession
) -> None:
    status, body, _ = await call(
        http, "POST", url(sb), {"numbers": ["14155550103", "14155550144", "14155550100"]}
    )
    assert (status, body["error"]) == (400, "The number 14155550144 is not a valid number")
    status, body, _ = await call(http, "POST", url(sb), {"numbers": ["14155550103", "1415"]})
    assert (status, body["error"]) == (400, "The number 1415 is not a valid number")
    status, body, _ = await call(http, "POST", url(sb), {"numbers": ["14155550100"]})
    assert (status, body["error"]) == (
        400, "The number 14155550100 is already requested for linking"
    )
    status, body, _ = await call(http, "POST", url(sb), {"numbers": ["13125550150"]})
    assert (status, body["error"]) == (
        400, "The number 13125550150 is already linked to another campaign"
    )
    status, body, _ = await call(http, "GET", url(sb, tail="Number/14155550103/"))
    assert status == 404  # nothing of the refused batches was linked


@pytest.mark.parametrize("body", [{}, {"numbers": []}, {"numbers": "14155550103"}, [1], None])
async def test_link_without_a_numbers_list_is_400(
    sb: Sandbox, http: aiohttp.ClientSession, body: Any
) -> None:
    status, answer, _ = await call(http, "POST", url(sb), body)
    assert status == 400 and "error" in answer and "api_id" in answer


async def test_link_batch_above_100_numbers_is_400(
    sb: Sandbox, http: aiohttp.ClientSession
) -> None:
    numbers = [f"1303555{i:04d}" for i in range(100, 201)]
    status, body, _ = await call(http, "POST", url(sb), {"numbers": numbers})
    assert (status, body["error"]) == (400, "A maximum of 100 numbers can be linked in one request")
    status, _, _ = await call(http, "POST", url(sb), {"numbers": numbers[:100]})
    assert status == 202


async def test_list_shape_and_offset_paging_in_link_order(
    held: Sandbox, held_http: aiohttp.ClientSession, clock: ManualClock
) -> None:
    sb, http = held, held_http
    new = [f"1303555{i:04d}" for i in range(100, 130)]
    status, _, _ = await call(http, "POST", url(sb, "CRIGC80"), {"numbers": new})
    assert status == 202
    pages = []
    for offset in (0, 20, 40, 60):
        status, body, _ = await call(
            http, "GET", url(sb, "CRIGC80") + f"?limit=20&offset={offset}"
        )
        assert status == 200
        pages.append(body)
    first = pages[0]
    assert set(first) == {
        "api_id", "campaign_alias", "campaign_id", "phone_numbers", "usecase",
        "phone_numbers_summary", "number_pool_limit",
    }
    assert (first["campaign_alias"], first["campaign_id"]) == ("alerts", "CRIGC80")
    assert first["phone_numbers_summary"] == {"PROCESSING": 30, "COMPLETED": 20, "FAILED": 0}
    assert [len(p["phone_numbers"]) for p in pages] == [20, 20, 10, 0]
    listed = [e["number"] for p in pages for e in p["phone_numbers"]]
    expected = [f"1312555{i:04d}" for i in range(150, 170)] + new
    assert listed == expected
    assert {e["status"] for e in pages[0]["phone_numbers"]} == {"COMPLETED"}


@pytest.mark.parametrize("query", ["limit=0", "limit=21", "limit=x", "offset=-1", "offset=a"])
async def test_list_rejects_limit_outside_1_to_20_and_bad_offsets(
    sb: Sandbox, http: aiohttp.ClientSession, query: str
) -> None:
    status, body, _ = await call(http, "GET", url(sb) + "?" + query)
    assert status == 400 and body["error"]


async def test_get_one_number_and_its_404(sb: Sandbox, http: aiohttp.ClientSession) -> None:
    status, body, _ = await call(http, "GET", url(sb, tail="Number/14155550100/"))
    assert status == 200
    assert body["phone_numbers"] == [{"number": "14155550100", "status": "COMPLETED"}]
    assert body["campaign_id"] == "CUOGHIN" and body["campaign_alias"] == "marketing"
    status, body, _ = await call(http, "GET", url(sb, tail="Number/+14155550100/"))
    assert status == 200
    status, body, _ = await call(http, "GET", url(sb, tail="Number/14155550199/"))
    assert (status, body["error"]) == (
        404, "The number 14155550199 is not linked to this campaign"
    )


async def test_link_settles_through_processing_to_completed_or_failed(
    held: Sandbox, held_http: aiohttp.ClientSession, clock: ManualClock
) -> None:
    sb, http = held, held_http
    numbers = ["14155550103", "14155550142", "14155550143"]
    await call(http, "POST", url(sb), {"numbers": numbers})
    got = {}
    for n in numbers:
        _, body, _ = await call(http, "GET", url(sb, tail=f"Number/{n}/"))
        got[n] = body["phone_numbers"][0]["status"]
    assert set(got.values()) == {"PROCESSING"}
    clock.advance(0.15)
    for n in numbers:
        _, body, _ = await call(http, "GET", url(sb, tail=f"Number/{n}/"))
        got[n] = body["phone_numbers"][0]["status"]
    assert got == {"14155550103": "COMPLETED", "14155550142": "FAILED",
                   "14155550143": "PROCESSING"}


async def test_failed_number_can_be_linked_again(
    held: Sandbox, held_http: aiohttp.ClientSession, clock: ManualClock
) -> None:
    sb, http = held, held_http
    await call(http, "POST", url(sb), {"numbers": ["14155550142"]})
    clock.advance(0.15)
    status, _, _ = await call(http, "POST", url(sb), {"numbers": ["14155550142"]})
    assert status == 202
    _, body, _ = await call(http, "GET", url(sb, tail="Number/14155550142/"))
    assert body["phone_numbers"][0]["status"] == "PROCESSING"


async def test_unlink_answers_202_and_the_number_disappears_once_settled(
    held: Sandbox, held_http: aiohttp.ClientSession, clock: ManualClock
) -> None:
    sb, http = held, held_http
    status, body, _ = await call(http, "DELETE", url(sb, tail="Number/14155550100/"),
                                 {"url": "", "method": "POST"})
    assert status == 202
    assert body["message"] == (
        "Request to unlink 14155550100 from campaign CUOGHIN was received and is being processed"
    )
    status, body, _ = await call(http, "GET", url(sb, tail="Number/14155550100/"))
    assert status == 200  # still listed while the unlink settles
    status, _, _ = await call(http, "DELETE", url(sb, tail="Number/14155550100/"))
    assert status == 202  # a repeat while pending changes nothing
    clock.advance(0.15)
    status, body, _ = await call(http, "GET", url(sb, tail="Number/14155550100/"))
    assert status == 404
    status, body, _ = await call(http, "DELETE", url(sb, tail="Number/14155550100/"))
    assert (status, body["error"]) == (
        404, "The number 14155550100 is not linked to this campaign"
    )
    assert sb.counters()["numbers"]["+14155550100"]["unlink_accepted"] == 1


async def test_campaign_object_is_wrapped_like_the_sdk_fixture(
    sb: Sandbox, http: aiohttp.ClientSession
) -> None:
    status, body, _ = await call(http, "GET", url(sb, "CMIGOLD", ""))
    assert status == 200
    campaign = body["campaign"]
    assert (campaign["campaign_id"], campaign["campaign_alias"]) == ("CMIGOLD", "legacy")
    assert campaign["registration_status"] == "ACTIVE" and campaign["usecase"]


async def test_unknown_campaign_is_404(sb: Sandbox, http: aiohttp.ClientSession) -> None:
    for method, tail in (("GET", ""), ("GET", "Number/"), ("POST", "Number/"),
                         ("GET", "Number/14155550100/"), ("DELETE", "Number/14155550100/")):
        status, body, _ = await call(http, method, url(sb, "CZZZZZZ", tail),
                                     {"numbers": ["14155550103"]} if method == "POST" else None)
        assert (status, body["error"]) == (404, "Campaign CZZZZZZ not found")


@pytest.mark.parametrize(
    ("user", "password", "path_id"),
    [
        ("MASANDBOXAUTHID00001", "wrong", "MASANDBOXAUTHID00001"),
        ("MASANDBOXAUTHID00002", "sandbox-auth-token", "MASANDBOXAUTHID00001"),
        ("MASANDBOXAUTHID00001", "sandbox-auth-token", "MASANDBOXAUTHID00002"),
        ("XX", "sandbox-auth-token", "XX"),
        (None, None, "MASANDBOXAUTHID00001"),
    ],
)
async def test_bad_credentials_are_401_with_the_error_envelope(
    sb: Sandbox, user: str | None, password: str | None, path_id: str
) -> None:
    headers = {"Authorization": basic(user, password or "")} if user else {}
    target = f"{sb.base_url}/v1/Account/{path_id}/10dlc/Campaign/CUOGHIN/Number/"
    async with aiohttp.ClientSession(headers=headers) as session:
        status, body, _ = await call(session, "GET", target)
    assert status == 401
    assert body["error"] == "Authentication credentials invalid" and body["api_id"]


async def test_paths_without_trailing_slash_work_too(
    sb: Sandbox, http: aiohttp.ClientSession
) -> None:
    status, _, _ = await call(http, "GET", url(sb).rstrip("/"))
    assert status == 200


async def test_link_batch_cap_is_configurable_and_named_in_the_refusal() -> None:
    async with run_sandbox(SandboxConfig(settle_min=0.05, settle_max=0.1,
                                         plivo_max_batch=40)) as sb:
        headers = {"Authorization": basic(sb.plivo_auth_id, sb.plivo_auth_token)}
        async with aiohttp.ClientSession(headers=headers) as http:
            numbers = [f"1303555{i:04d}" for i in range(100, 141)]
            status, body, _ = await call(http, "POST", url(sb), {"numbers": numbers})
            assert (status, body["error"]) == (
                400, "A maximum of 40 numbers can be linked in one request")
            status, _, _ = await call(http, "POST", url(sb), {"numbers": numbers[:40]})
            assert status == 202
    with pytest.raises(ValueError, match="plivo_max_batch"):
        SandboxConfig(plivo_max_batch=0)


async def test_rate_limit_is_a_sliding_window_with_429_and_no_retry_after() -> None:
    config = SandboxConfig(plivo_rate_limit=3, plivo_rate_window=0.4)
    clock = ManualClock()  # the window is timed on it: four requests in one instant
    async with run_sandbox(config, clock=clock) as sb:
        headers = {"Authorization": basic(sb.plivo_auth_id, sb.plivo_auth_token)}
        async with aiohttp.ClientSession(headers=headers) as http:
            statuses = []
            for _ in range(4):
                status, body, resp_headers = await call(http, "GET", url(sb))
                statuses.append(status)
            assert statuses == [200, 200, 200, 429]
            assert body == {"api_id": body["api_id"], "error": "Too many requests"}
            assert "Retry-After" not in resp_headers
            clock.advance(0.45)
            status, _, _ = await call(http, "GET", url(sb))
            assert status == 200
        counters = sb.counters()["endpoints"]["plivo.list"]
        assert counters["rate_limited"] == 1 and counters["status"] == {"200": 4, "429": 1}


class Receiver:
    """A callback receiver answering 500 to the first ``failures`` attempts."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls: list[dict[str, Any]] = []
        #: where ``at`` is read; the sandbox's clock when a test runs it on a ManualClock
        self.now: Any = time.monotonic

    async def handle(self, request: web.Request) -> web.Response:
        payload = dict(request.query) if request.method == "GET" else await request.json()
        self.calls.append({"at": self.now(), "payload": payload,
                           "headers": dict(request.headers), "url": str(request.url)})
        if len(self.calls) <= self.failures:
            return web.Response(status=500)
        return web.Response(status=200)


@pytest.fixture
async def receiver_factory() -> AsyncIterator[Any]:
    runners: list[web.AppRunner] = []

    async def start(failures: int) -> tuple[Receiver, str]:
        receiver = Receiver(failures)
        app = web.Application()
        app.router.add_route("*", "/hook", receiver.handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        runners.append(runner)
        return receiver, f"http://127.0.0.1:{runner.addresses[0][1]}/hook"

    yield start
    for runner in runners:
        await runner.cleanup()


async def wait_for(predicate: Any, limit: float = 10.0) -> None:
    deadline = time.monotonic() + limit
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


async def test_link_callbacks_created_then_success_signed_v2(
    sb: Sandbox, http: aiohttp.ClientSession, receiver_factory: Any
) -> None:
    receiver, hook = await receiver_factory(0)
    status, body, _ = await call(http, "POST", url(sb),
                                 {"numbers": ["14155550103"], "url": hook, "method": "POST"})
    assert status == 202
    await wait_for(lambda: len(receiver.calls) == 2)
    created, success = (c["payload"] for c in receiver.calls)
    assert created == {**created, "status": "created", "operation": "link",
                       "number": "14155550103", "campaign_id": "CUOGHIN",
                       "api_id": body["api_id"]}
    assert success["status"] == "success"
    for c in receiver.calls:
        headers = c["headers"]
        assert validate_signature(hook, headers["X-Plivo-Signature-V2-Nonce"],
                                  headers["X-Plivo-Signature-V2"], DEFAULT_PLIVO_AUTH_TOKEN)


async def test_failed_link_and_unlink_callbacks_by_get_with_the_url_in_the_query_string(
    sb: Sandbox, http: aiohttp.ClientSession, receiver_factory: Any
) -> None:
    receiver, hook = await receiver_factory(0)
    await call(http, "POST", url(sb), {"numbers": ["14155550142"], "url": hook,
                                       "method": "GET"})
    await wait_for(lambda: len(receiver.calls) == 2)
    assert [c["payload"]["status"] for c in receiver.calls] == ["created", "failed"]
    async with http.delete(url(sb, tail="Number/14155550101/"),
                           params={"url": hook + "?token=abc", "method": "GET"}) as resp:
        assert resp.status == 202
    await wait_for(lambda: len(receiver.calls) == 4)
    unlink = [c["payload"] for c in receiver.calls[2:]]
    assert [(p["operation"], p["status"]) for p in unlink] == [
        ("unlink", "created"), ("unlink", "success")
    ]
    assert unlink[0]["token"] == "abc"  # the callback URL's own query survives
    last = receiver.calls[-1]["headers"]
    assert validate_signature(hook + "?token=abc", last["X-Plivo-Signature-V2-Nonce"],
                              last["X-Plivo-Signature-V2"], DEFAULT_PLIVO_AUTH_TOKEN)


async def test_callback_is_retried_three_times_on_the_scaled_schedule(
    receiver_factory: Any,
) -> None:
    receiver, hook = await receiver_factory(10)  # never answers 200
    clock = ManualClock()  # the retries wait on it: the test moves the time
    receiver.now = clock.now
    config = SandboxConfig(settle_min=5, settle_max=5, time_factor=0.002)
    async with run_sandbox(config, clock=clock) as sb:
        headers = {"Authorization": basic(sb.plivo_auth_id, sb.plivo_auth_token)}
        async with aiohttp.ClientSession(headers=headers) as http:
            await call(http, "POST", url(sb), {"numbers": ["14155550103"], "url": hook})
            await wait_for(lambda: len(receiver.calls) == 1)
            for calls, delay in enumerate((0.12, 0.24, 0.48), start=2):
                await clock.until_sleeping()
                clock.advance(delay * 0.9)
                await asyncio.sleep(0.05)
                assert len(receiver.calls) == calls - 1  # not before its time
                clock.advance(delay * 0.1)
                await wait_for(lambda n=calls: len(receiver.calls) == n)
            clock.advance(1.0)  # long past a 4th retry's time (and short of the 5 s settle)
            await asyncio.sleep(0.3)
        assert len(receiver.calls) == 4  # first attempt + 3 retries, then it gives up
        times = [c["at"] for c in receiver.calls]
        gaps = [b - a for a, b in itertools.pairwise(times)]
        for gap, expected in zip(gaps, (0.12, 0.24, 0.48), strict=True):
            assert expected * 0.9 <= gap <= expected + 0.15
        log = sb.callbacks.log
        assert [e["attempt"] for e in log] == [1, 2, 3, 4]
        assert {e["http_status"] for e in log} == {500}


async def test_callback_retries_stop_at_the_first_200(receiver_factory: Any) -> None:
    receiver, hook = await receiver_factory(1)
    async with run_sandbox(SandboxConfig(settle_min=5, settle_max=5, time_factor=0.001)) as sb:
        headers = {"Authorization": basic(sb.plivo_auth_id, sb.plivo_auth_token)}
        async with aiohttp.ClientSession(headers=headers) as http:
            await call(http, "POST", url(sb), {"numbers": ["14155550103"], "url": hook})
            await wait_for(lambda: len(receiver.calls) == 2)
            await asyncio.sleep(0.3)
        assert len(receiver.calls) == 2


async def test_bad_callback_method_or_url_is_400(
    sb: Sandbox, http: aiohttp.ClientSession
) -> None:
    status, body, _ = await call(http, "POST", url(sb), {"numbers": ["14155550103"],
                                                         "url": "http://x/", "method": "PUT"})
    assert (status, body["error"]) == (400, "method must be GET or POST")
    status, body, _ = await call(http, "POST", url(sb), {"numbers": ["14155550103"],
                                                         "url": "ftp://x/"})
    assert (status, body["error"]) == (400, "url is not a valid URL")


async def test_written_choice_callback_method_in_any_case_and_empty_means_post(
    sb: Sandbox, http: aiohttp.ClientSession
) -> None:
    """Published: ``method`` is GET or POST, default POST; its case is not documented."""
    for number, method in (("14155550103", "get"), ("14155550104", "")):
        status, _, _ = await call(http, "POST", url(sb), {"numbers": [number],
                                                          "url": "", "method": method})
        assert status == 202
