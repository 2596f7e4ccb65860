"""The sandbox's switches (WIRE.md, *Switches*): each undocumented behaviour under both of its
readings, over real HTTP on loopback, plus the config, admin API and CLI that set them."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import subprocess
import sys
import urllib.request
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bulk.sandbox import (
    AM_CAMPAIGN_MARKETING,
    ManualClock,
    Sandbox,
    SandboxConfig,
    SandboxState,
    Switches,
    agentmessage_number_id,
    run_sandbox,
)
from bulk.sandbox._plivo_state import PlivoRefusal

REPO = Path(__file__).resolve().parents[1]
FAST: dict[str, Any] = {"settle_min": 0.05, "settle_max": 0.1}


@asynccontextmanager
async def serve(**kwargs: Any) -> AsyncIterator[tuple[Sandbox, aiohttp.ClientSession]]:
    """A sandbox configured with ``kwargs`` and a plain HTTP session."""
    async with run_sandbox(SandboxConfig(**{**FAST, **kwargs})) as sb:
        async with aiohttp.ClientSession() as http:
            yield sb, http


async def plivo(
    sb: Sandbox, http: aiohttp.ClientSession, method: str, tail: str, body: Any = None
) -> tuple[int, Any]:
    target = f"{sb.base_url}/v1/Account/{sb.plivo_auth_id}/10dlc/Campaign/CUOGHIN/{tail}"
    basic = base64.b64encode(f"{sb.plivo_auth_id}:{sb.plivo_auth_token}".encode()).decode()
    headers = {"Authorization": "Basic " + basic}
    async with http.request(method, target, json=body, headers=headers) as resp:
        return resp.status, await resp.json()


async def attach(sb: Sandbox, http: aiohttp.ClientSession, number: str) -> tuple[int, Any]:
    target = f"{sb.base_url}/v1/phone-numbers/{agentmessage_number_id(number)}/campaign"
    headers = {"Authorization": "Bearer " + sb.agentmessage_api_key}
    async with http.post(target, json={"campaign_id": AM_CAMPAIGN_MARKETING},
                         headers=headers) as resp:
        return resp.status, await resp.json()


async def admin(
    sb: Sandbox, http: aiohttp.ClientSession, path: str, body: Any = None
) -> tuple[int, Any]:
    method = "GET" if body is None else "POST"
    async with http.request(method, f"{sb.admin_url}/{path}", json=body) as resp:
        return resp.status, await resp.json()


async def number_counters(sb: Sandbox, http: aiohttp.ClientSession, number: str) -> Any:
    _, counters = await admin(sb, http, "counters")
    return counters["numbers"][number]


# -- config ------------------------------------------------------------------------------
def test_switches_default_to_todays_readings_and_strict_turns_every_one_over() -> None:
    assert SandboxConfig().switches == Switches() == Switches(
        unlink_while_pending="accept", relink_failed="accept", list_order="link",
        reattach_failed="no_change",
    )
    assert SandboxConfig(strict=True).switches == Switches(
        unlink_while_pending="refuse", relink_failed="refuse", list_order="changed",
        reattach_failed="restart",
    )
    one = SandboxConfig(strict=True, list_order="link").switches
    assert (one.list_order, one.relink_failed) == ("link", "refuse")  # given beats strict
    assert SandboxConfig(relink_failed="refuse").switches.unlink_while_pending == "accept"
    with pytest.raises(ValueError, match="list_order must be one of"):
        SandboxConfig(list_order="shuffled")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown switches"):
        Switches.from_dict({"relink": "refuse"})


# -- 1. Plivo: an unlink retried while one is pending ------------------------------------
@pytest.mark.parametrize(("kwargs", "second"), [
    ({}, (202, None)),
    ({"unlink_while_pending": "refuse"},
     (400, "The number 14155550100 is already requested for unlinking")),
    ({"strict": True}, (400, "The number 14155550100 is already requested for unlinking")),
])
async def test_second_unlink_while_pending_is_202_no_change_or_refused_400(
    kwargs: dict[str, Any], second: tuple[int, str | None]
) -> None:
    async with serve(**kwargs) as (sb, http):
        status, _ = await plivo(sb, http, "DELETE", "Number/14155550100/")
        assert status == 202
        status, body = await plivo(sb, http, "DELETE", "Number/14155550100/")
        assert (status, body.get("error")) == second
        assert body["api_id"]
        status, body = await plivo(sb, http, "GET", "Number/14155550100/")
        assert (status, body["phone_numbers"][0]["status"]) == (200, "COMPLETED")
        assert (await number_counters(sb, http, "+14155550100"))["unlink_accepted"] == 1
        await asyncio.sleep(0.2)
        status, _ = await plivo(sb, http, "GET", "Number/14155550100/")
        assert status == 404  # either way the one unlink settles


# -- 2. Plivo: a new link over a FAILED one ----------------------------------------------
@pytest.mark.parametrize(("kwargs", "accepted"), [
    ({}, True), ({"relink_failed": "refuse"}, False), ({"strict": True}, False),
])
async def test_link_over_a_failed_link_is_accepted_and_counted_or_refused(
    kwargs: dict[str, Any], accepted: bool
) -> None:
    async with serve(**kwargs) as (sb, http):
        status, _ = await plivo(sb, http, "POST", "Number/", {"numbers": ["14155550142"]})
        assert status == 202
        await asyncio.sleep(0.2)
        status, body = await plivo(sb, http, "GET", "Number/14155550142/")
        assert body["phone_numbers"][0]["status"] == "FAILED"
        status, body = await plivo(
            sb, http, "POST", "Number/", {"numbers": ["14155550103", "14155550142"]})
        if accepted:
            assert status == 202
            expected_status, expected_links = "PROCESSING", 2
        else:
            assert (status, body["error"]) == (
                400, "The number 14155550142 is already linked to this campaign")
            expected_status, expected_links = "FAILED", 1
        _, body = await plivo(sb, http, "GET", "Number/14155550142/")
        assert body["phone_numbers"][0]["status"] == expected_status
        counted = await number_counters(sb, http, "+14155550142")
        assert counted["link_accepted"] == expected_links  # every accepted link is counted
        status, _ = await plivo(sb, http, "GET", "Number/14155550103/")
        assert status == (200 if accepted else 404)  # a refused batch links nothing


# -- 3. Plivo: lists that shift while read -----------------------------------------------
NEW = [f"1617555{i:04d}" for i in range(100, 120)]


@pytest.mark.parametrize(("kwargs", "stable"), [
    ({}, True), ({"list_order": "changed"}, False), ({"strict": True}, False),
])
async def test_offset_paged_read_while_numbers_settle_misses_an_entry_when_order_is_changed(
    kwargs: dict[str, Any], stable: bool
) -> None:
    # CUOGHIN: 3 pre-linked COMPLETED, then 20 new and the never-settling number, 24 in all.
    async with serve(settle_min=1.0, settle_max=1.0, **kwargs) as (sb, http):
        status, _ = await plivo(sb, http, "POST", "Number/", {"numbers": [*NEW, "14155550143"]})
        assert status == 202
        status, first = await plivo(sb, http, "GET", "Number/?limit=20&offset=0")
        assert status == 200
        await asyncio.sleep(1.3)  # the 20 new ones settle COMPLETED between the two pages
        status, second = await plivo(sb, http, "GET", "Number/?limit=20&offset=20")
        assert status == 200
    listed = [e["number"] for page in (first, second) for e in page["phone_numbers"]]
    everything = ["14155550100", "14155550101", "14155550102", *NEW, "14155550143"]
    assert second["phone_numbers_summary"] == {"PROCESSING": 1, "COMPLETED": 23, "FAILED": 0}
    if stable:
        assert listed == everything
    else:
        assert "14155550143" not in listed  # moved before the offset while being read
        assert listed.count(NEW[16]) == 2  # and an entry that settled shows up twice
        assert len(listed) == 24


def test_changed_order_moves_an_entry_to_the_end_on_each_settle_and_unlink_request() -> None:
    clock = ManualClock()
    state = SandboxState(SandboxConfig(settle_min=1.0, settle_max=1.0, list_order="changed"),
                         clock=clock)
    plivo = state.plivo

    def order() -> list[str]:
        state.advance()
        return [link.number[-3:] for link in plivo.page("CUOGHIN", 20, 0)]

    plivo.link("CUOGHIN", ["14155550103", "14155550104"], now=clock.now(), request_id="r",
               callback=None)
    clock.advance(0.5)
    plivo.link("CUOGHIN", ["14155550105"], now=clock.now(), request_id="r", callback=None)
    assert order() == ["100", "101", "102", "103", "104", "105"]
    plivo.unlink("CUOGHIN", "14155550100", now=clock.now(), request_id="r", callback=None)
    assert order() == ["101", "102", "103", "104", "105", "100"]
    clock.advance(0.5)  # 103 and 104 settle COMPLETED
    assert order() == ["101", "102", "105", "100", "103", "104"]
    clock.advance(0.5)  # 105 settles, 100's unlink settles: it leaves
    assert order() == ["101", "102", "103", "104", "105"]
    assert plivo.campaigns["CUOGHIN"].counts == {"PROCESSING": 0, "COMPLETED": 5, "FAILED": 0}
    assert list(plivo.campaigns["CUOGHIN"].links)[-3:] == [
        "+14155550103", "+14155550104", "+14155550105"]  # link order itself is untouched


# -- 4. AgentMessage: re-attaching the campaign of a failed attach ------------------------
@pytest.mark.parametrize(("kwargs", "restarts"), [
    ({}, False), ({"reattach_failed": "restart"}, True), ({"strict": True}, True),
])
async def test_reattaching_a_failed_attach_restarts_it_or_changes_nothing(
    kwargs: dict[str, Any], restarts: bool
) -> None:
    async with serve(**kwargs) as (sb, http):
        status, body = await attach(sb, http, "+14155550142")
        assert (status, body["data"]["carrier_line_option_status"]) == (200, "pending")
        await asyncio.sleep(0.2)
        status, body = await attach(sb, http, "+14155550142")
        assert status == 200
        assert body["data"]["campaign_id"] == AM_CAMPAIGN_MARKETING
        assert body["data"]["carrier_line_option_status"] == ("pending" if restarts
                                                               else "failed")
        counted = await number_counters(sb, http, "+14155550142")
        assert counted["attach_accepted"] == (2 if restarts else 1)
        status, body = await attach(sb, http, "+14155550105")  # a first attach: unchanged
        assert (status, body["data"]["carrier_line_option_status"]) == (200, "pending")


# -- admin API and CLI -------------------------------------------------------------------
async def test_switches_are_read_and_set_over_the_admin_api_until_reset() -> None:
    async with serve(relink_failed="refuse") as (sb, http):
        status, body = await admin(sb, http, "switches")
        assert (status, body) == (200, {**Switches().to_dict(), "relink_failed": "refuse"})
        status, _ = await plivo(sb, http, "DELETE", "Number/14155550100/")
        assert status == 202
        status, body = await admin(sb, http, "switches", {"unlink_while_pending": "refuse"})
        assert (status, body) == (200, {**Switches().to_dict(), "unlink_while_pending": "refuse"})
        status, _ = await plivo(sb, http, "DELETE", "Number/14155550100/")
        assert status == 400  # in force at once
        status, body = await admin(sb, http, "switches", {"strict": True})
        assert body == Switches.strict().to_dict()
        for bad in ({"list_order": "random"}, {"nope": "x"}, {"strict": "yes"}, [1]):
            status, body = await admin(sb, http, "switches", bad)
            assert status == 400 and body["error"]
        assert (await admin(sb, http, "switches"))[1] == Switches.strict().to_dict()
        await admin(sb, http, "reset", {})
        status, body = await admin(sb, http, "switches")
        assert body == {**Switches().to_dict(), "relink_failed": "refuse"}  # the configured


def test_sandbox_factory_passes_switches_through(
    sandbox_factory: Callable[..., Any],
) -> None:
    sb = sandbox_factory(strict=True, reattach_failed="no_change")
    assert sb.admin().switches() == {**Switches.strict().to_dict(),
                                     "reattach_failed": "no_change"}


def test_command_line_strict_and_a_switch_reach_the_running_sandbox() -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "bulk", "sandbox", "--port", "0", "--strict",
         "--list-order", "link"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO,
    )
    try:
        assert proc.stdout is not None
        base_url = proc.stdout.readline().split()[4]
        with urllib.request.urlopen(base_url + "/_sandbox/switches", timeout=5) as resp:
            assert json.load(resp) == {**Switches.strict().to_dict(), "list_order": "link"}
    finally:
        proc.terminate()
        proc.wait(10)


def test_plivo_state_refusals_carry_status_400() -> None:
    clock = ManualClock()
    state = SandboxState(SandboxConfig(strict=True, settle_min=1, settle_max=1), clock=clock)
    state.plivo.unlink("CUOGHIN", "14155550100", now=clock.now(), request_id="r", callback=None)
    with pytest.raises(PlivoRefusal, match="already requested for unlinking") as err:
        state.plivo.unlink("CUOGHIN", "14155550100", now=clock.now(), request_id="r",
                           callback=None)
    assert err.value.status == 400
    with pytest.raises(PlivoRefusal, match="14155550100 is already requested for linking"):
        state.plivo.link("CUOGHIN", ["14155550100"], now=clock.now(), request_id="r",
                         callback=None)  # linking one being unlinked: unchanged text
