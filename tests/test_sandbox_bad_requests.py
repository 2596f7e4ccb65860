"""The sandbox answers a bad request with the provider's 4xx, never a 500 with a traceback:
list offsets and cursors out of range, callback URLs that cannot be parsed or sent to, and
admin fault settings that are not finite numbers (a NaN latency stalled every later request).
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest

from bulk.sandbox import Sandbox, SandboxConfig, run_sandbox

BAD_URLS = ["http://[::1", "https://[::1", "http://[::1]:99999/", "http://host:abc/",
            "http://[zz]/", "http://[::1]/\ud800"]
TIMEOUT = aiohttp.ClientTimeout(total=5)


@pytest.fixture
async def sb() -> AsyncIterator[Sandbox]:
    async with run_sandbox(SandboxConfig(settle_min=0.05, settle_max=0.1)) as sandbox:
        yield sandbox


async def _call(
    sb: Sandbox, method: str, tail: str, body: Any = None, *, plivo: bool = True
) -> tuple[int, Any]:
    """One request; ``body`` is sent as JSON text (a str is sent as it is: NaN, Infinity)."""
    if plivo:
        token = base64.b64encode(f"{sb.plivo_auth_id}:{sb.plivo_auth_token}".encode()).decode()
        headers = {"Authorization": f"Basic {token}"}
    elif tail.startswith("/_sandbox"):
        headers = {}
    else:
        headers = {"Authorization": f"Bearer {sb.agentmessage_api_key}"}
    data = None
    if body is not None:
        data = body if isinstance(body, str) else json.dumps(body)
        headers["Content-Type"] = "application/json"
    async with (
        aiohttp.ClientSession(timeout=TIMEOUT) as http,
        http.request(method, sb.base_url + tail, data=data, headers=headers) as resp,
    ):
        return resp.status, json.loads(await resp.text())


def _plivo(sb: Sandbox, tail: str) -> str:
    return f"/v1/Account/{sb.plivo_auth_id}/10dlc/Campaign/CUOGHIN/{tail}"


@pytest.mark.parametrize(
    "offset", [str(2**63), str(2**63 - 1), "9" * 30, str(2**31), "-1", "+5", "1e3", "٣"]
)
async def test_a_plivo_list_offset_out_of_range_is_plivos_400(sb: Sandbox, offset: str) -> None:
    status, body = await _call(sb, "GET", _plivo(sb, f"Number/?offset={offset}"))
    assert status == 400, body
    assert body["error"] == "offset must be an integer between 0 and 2147483647"
    assert set(body) == {"api_id", "error"}


async def test_the_largest_plivo_offset_is_an_empty_page(sb: Sandbox) -> None:
    status, body = await _call(sb, "GET", _plivo(sb, f"Number/?offset={2**31 - 1}"))
    assert status == 200 and body["phone_numbers"] == []


@pytest.mark.parametrize("url", BAD_URLS)
async def test_a_link_callback_url_that_cannot_be_parsed_is_plivos_400(
    sb: Sandbox, url: str
) -> None:
    status, body = await _call(sb, "POST", _plivo(sb, "Number/"),
                               {"numbers": ["14155550103"], "url": url})
    assert (status, body["error"]) == (400, "url is not a valid URL"), body
    assert sb.counters()["totals"]["link_accepted"] == 0


@pytest.mark.parametrize("url", BAD_URLS[:5])
async def test_an_unlink_callback_url_in_the_query_that_cannot_be_parsed_is_plivos_400(
    sb: Sandbox, url: str
) -> None:
    status, body = await _call(sb, "POST", _plivo(sb, "Number/"), {"numbers": ["14155550103"]})
    assert status == 202, body
    query = quote(url, safe="")
    status, body = await _call(sb, "DELETE", _plivo(sb, f"Number/14155550103/?url={query}"))
    assert (status, body["error"]) == (400, "url is not a valid URL"), body
    assert sb.counters()["totals"]["unlink_accepted"] == 0


@pytest.mark.parametrize("seq", [str(2**63), "-5", "9" * 40])
@pytest.mark.parametrize(("path", "kind"), [("/v1/phone-numbers", "n"), ("/v1/campaigns", "c")])
async def test_an_agentmessage_cursor_out_of_range_is_invalid_input(
    sb: Sandbox, path: str, kind: str, seq: str
) -> None:
    cursor = base64.urlsafe_b64encode(f"{kind}:{seq}".encode()).decode().rstrip("=")
    status, body = await _call(sb, "GET", f"{path}?cursor={cursor}", plivo=False)
    assert status == 400, body
    assert body["error"]["code"] == "INVALID_INPUT" and body["success"] is False


@pytest.mark.parametrize(
    "faults",
    ['{"latency_max": NaN}', '{"latency_min": 0, "latency_max": Infinity}',
     '{"hang_rate": 1, "hang_seconds": NaN}', '{"hang_seconds": Infinity}',
     '{"latency_min": -Infinity}', '{"error_5xx_rate": NaN}'],
)
async def test_fault_settings_that_are_not_finite_are_refused_and_requests_still_answer(
    sb: Sandbox, faults: str
) -> None:
    status, body = await _call(sb, "POST", "/_sandbox/faults", faults, plivo=False)
    assert status == 400 and "finite" in body["error"], body
    status, body = await _call(sb, "GET", "/_sandbox/faults", plivo=False)
    assert status == 200 and body["latency_max"] == 0 and body["hang_seconds"] == 30
    status, body = await _call(sb, "GET", _plivo(sb, "Number/"))
    assert status == 200, body
