"""Several Plivo accounts and AgentMessage organizations in one sandbox, over real HTTP."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import plivo
import plivo.rest.client
import pytest
from aiohttp import web
from click.testing import CliRunner
from plivo import exceptions
from plivo.utils import validate_signature

from bulk.cli import main
from bulk.sandbox import (
    DEFAULT_AGENTMESSAGE_KEY,
    DEFAULT_PLIVO_AUTH_ID,
    DEFAULT_PLIVO_AUTH_TOKEN,
    ManualClock,
    Sandbox,
    SandboxConfig,
    StateFileError,
    agentmessage_number_id,
    run_sandbox,
    seed_for_accounts,
)
from bulk.sandbox._seed import load_seed

PARENT = DEFAULT_PLIVO_AUTH_ID
SUB = "SASUBACCOUNT00000001"
SUB_TOKEN = "sub-token"


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def two_accounts(tmp_path: Path, parent_limit: int = 300, sub_limit: int = 300) -> Path:
    """A state file: the parent with campaign CPARENT (one link), the subaccount with CSUBACC
    (one link, of the same number)."""
    state = {
        "plivo": {
            "accounts": [
                {"auth_id": PARENT, "auth_token": DEFAULT_PLIVO_AUTH_TOKEN,
                 "rate_limit": parent_limit,
                 "campaigns": [{"campaign_id": "CPARENT", "alias": "parent"}],
                 "links": [{"number": "+14155550100", "campaign_id": "CPARENT"}]},
                {"auth_id": SUB, "auth_token": SUB_TOKEN, "rate_limit": sub_limit,
                 "campaigns": [{"campaign_id": "CSUBACC", "alias": "sub"}],
                 "links": [{"number": "+14155550100", "campaign_id": "CSUBACC"}],
                 "unowned": ["+14155550101"]},
            ]
        }
    }
    path = tmp_path / "accounts.json"
    path.write_text(json.dumps(state), encoding="utf-8")
    return path


def plivo_url(sb: Sandbox, auth_id: str, campaign: str, tail: str = "Number/") -> str:
    return f"{sb.base_url}/v1/Account/{auth_id}/10dlc/Campaign/{campaign}/{tail}"


async def call(
    http: aiohttp.ClientSession, method: str, target: str, auth: str, body: Any = None
) -> tuple[int, Any]:
    async with http.request(method, target, json=body, headers={"Authorization": auth}) as resp:
        return resp.status, await resp.json()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def test_each_plivo_account_serves_only_its_own_campaigns_and_links(
    tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    config = SandboxConfig(settle_min=0.05, settle_max=0.1, state_file=two_accounts(tmp_path))
    async with run_sandbox(config) as sb:
        parent, sub = basic(PARENT, DEFAULT_PLIVO_AUTH_TOKEN), basic(SUB, SUB_TOKEN)
        assert sb.plivo_accounts == {PARENT: DEFAULT_PLIVO_AUTH_TOKEN, SUB: SUB_TOKEN}
        status, body = await call(http, "GET", plivo_url(sb, PARENT, "CPARENT"), parent)
        assert status == 200 and body["phone_numbers"] == [
            {"number": "14155550100", "status": "COMPLETED"}]
        status, body = await call(http, "GET", plivo_url(sb, SUB, "CPARENT"), sub)
        assert (status, body["error"]) == (404, "Campaign CPARENT not found")
        status, _ = await call(http, "GET", plivo_url(sb, PARENT, "CSUBACC", ""), parent)
        assert status == 404
        # number ownership is the account's own: +14155550101 is unowned by the subaccount only
        status, body = await call(http, "POST", plivo_url(sb, SUB, "CSUBACC"), sub,
                                  {"numbers": ["14155550101"]})
        assert (status, body["error"]) == (400, "The number 14155550101 is not a valid number")
        status, _ = await call(http, "POST", plivo_url(sb, PARENT, "CPARENT"), parent,
                               {"numbers": ["14155550101"]})
        assert status == 202
        status, body = await call(http, "GET", plivo_url(sb, SUB, "CSUBACC"), sub)
        assert [n["number"] for n in body["phone_numbers"]] == ["14155550100"]


async def test_operations_settle_in_the_account_that_started_them(
    http: aiohttp.ClientSession,
) -> None:
    seed = seed_for_accounts(plivo={SUB: None})
    async with run_sandbox(SandboxConfig(settle_min=0.05, settle_max=0.1), seed=seed) as sb:
        sub = basic(SUB, sb.plivo_accounts[SUB])
        target = plivo_url(sb, SUB, "CUOGHIN")
        status, _ = await call(http, "POST", target, sub, {"numbers": ["14155550100"]})
        assert status == 202  # linked in the parent's CUOGHIN, but not in the subaccount's
        await asyncio.sleep(0.3)
        status, body = await call(http, "GET", target + "14155550100/", sub)
        assert body["phone_numbers"] == [{"number": "14155550100", "status": "COMPLETED"}]
        status, _ = await call(http, "DELETE", target + "14155550100/", sub)
        assert status == 202
        await asyncio.sleep(0.3)
        status, _ = await call(http, "GET", target + "14155550100/", sub)
        assert status == 404
        state = sb.state.snapshot()
        assert [n["number"] for n in state["plivo"]["campaigns"]["CUOGHIN"]["numbers"]] == [
            "+14155550100", "+14155550101", "+14155550102"]
        assert state["plivo_accounts"][SUB]["campaigns"]["CUOGHIN"]["numbers"] == []


async def test_cross_account_credentials_are_401_and_counted_per_path_account(
    tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    async with run_sandbox(SandboxConfig(state_file=two_accounts(tmp_path))) as sb:
        parent, sub = basic(PARENT, DEFAULT_PLIVO_AUTH_TOKEN), basic(SUB, SUB_TOKEN)
        attempts = [
            (PARENT, "CPARENT", sub),  # a subaccount's credentials on the parent's path
            (PARENT, "CPARENT", basic(PARENT, SUB_TOKEN)),  # the parent's id, the sub's token
            (SUB, "CSUBACC", parent),  # the parent's credentials on the subaccount's path
            ("SANOSUCHACCOUNT00001", "CSUBACC", basic("SANOSUCHACCOUNT00001", SUB_TOKEN)),
        ]
        for auth_id, campaign, auth in attempts:
            status, body = await call(http, "GET", plivo_url(sb, auth_id, campaign), auth)
            assert (status, body["error"]) == (401, "Authentication credentials invalid")
        for auth_id, campaign, auth in [(PARENT, "CPARENT", parent), (SUB, "CSUBACC", sub)]:
            status, _ = await call(http, "GET", plivo_url(sb, auth_id, campaign), auth)
            assert status == 200
        accounts = sb.counters()["accounts"]
    assert {k: (v["requests"], v["unauthorized"]) for k, v in accounts.items()
            if k in (PARENT, SUB, "unknown")} == {PARENT: (3, 2), SUB: (2, 1), "unknown": (1, 1)}


async def test_each_plivo_account_limit_is_enforced_on_its_own(
    tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    config = SandboxConfig(plivo_rate_window=5, state_file=two_accounts(tmp_path, 3, 5))
    async with run_sandbox(config, clock=ManualClock()) as sb:  # one instant: one window
        parent, sub = basic(PARENT, DEFAULT_PLIVO_AUTH_TOKEN), basic(SUB, SUB_TOKEN)
        parent_statuses = [(await call(http, "GET", plivo_url(sb, PARENT, "CPARENT"), parent))[0]
                           for _ in range(4)]
        sub_statuses = [(await call(http, "GET", plivo_url(sb, SUB, "CSUBACC"), sub))[0]
                        for _ in range(6)]
        accounts = sb.counters()["accounts"]
    assert parent_statuses == [200, 200, 200, 429]
    assert sub_statuses == [200] * 5 + [429]  # the parent's full window did not touch it
    assert {k: (v["rate_limited"], v["peak_in_window"], v["rate_limit"])
            for k, v in accounts.items() if k in (PARENT, SUB)} == {
        PARENT: (1, 3, 3), SUB: (1, 5, 5)}


async def test_peak_in_window_is_the_most_requests_admitted_within_one_window(
    http: aiohttp.ClientSession,
) -> None:
    clock = ManualClock()
    seed = seed_for_accounts(plivo={SUB: 10})
    async with run_sandbox(SandboxConfig(plivo_rate_window=1.0), clock=clock, seed=seed) as sb:
        sub = basic(SUB, sb.plivo_accounts[SUB])
        # 4 at t=0, 2 at t=1.0, 3 at t=1.6: the first 4 share no window with the others
        # (the window is 1 s); the 2 and the 3 do
        for burst, pause in ((4, 1.0), (2, 0.6), (3, 0.0)):
            for _ in range(burst):
                status, _ = await call(http, "GET", plivo_url(sb, SUB, "CUOGHIN"), sub)
                assert status == 200
            clock.advance(pause)
        row = sb.counters()["accounts"][SUB]
    assert (row["peak_in_window"], row["rate_limited"], row["requests"]) == (5, 0, 9)


async def test_a_subaccount_callback_is_signed_with_its_own_token() -> None:
    got: list[tuple[str, str, dict[str, Any]]] = []

    async def hook(request: web.Request) -> web.Response:
        got.append((request.headers["X-Plivo-Signature-V2"],
                    request.headers["X-Plivo-Signature-V2-Nonce"], await request.json()))
        return web.Response(status=200)

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    hook_url = f"http://127.0.0.1:{runner.addresses[0][1]}/hook"
    try:
        seed = seed_for_accounts(plivo={SUB: None})
        async with run_sandbox(SandboxConfig(settle_min=0.05, settle_max=0.05), seed=seed) as sb, \
                aiohttp.ClientSession() as http:
            token = sb.plivo_accounts[SUB]
            status, _ = await call(http, "POST", plivo_url(sb, SUB, "CUOGHIN"),
                                   basic(SUB, token), {"numbers": ["14155550103"],
                                                       "url": hook_url})
            assert status == 202
            for _ in range(50):
                if len(got) == 2:
                    break
                await asyncio.sleep(0.05)
    finally:
        await runner.cleanup()
    assert [payload["status"] for _, _, payload in got] == ["created", "success"]
    for signature, nonce, _ in got:
        assert validate_signature(hook_url, nonce, signature, token)
        assert not validate_signature(hook_url, nonce, signature, DEFAULT_PLIVO_AUTH_TOKEN)


async def test_the_plivo_sdk_works_against_a_subaccount_with_its_own_credentials(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seed = seed_for_accounts(plivo={SUB: None})
    async with run_sandbox(SandboxConfig(), seed=seed) as sb:
        monkeypatch.setattr(plivo.rest.client, "PLIVO_API_BASE_URI", f"{sb.base_url}/v1/Account")
        client = plivo.RestClient(SUB, sb.plivo_accounts[SUB])
        listed = await asyncio.to_thread(client.campaign.get_numbers, "CMIGOLD")
        assert listed.campaign_alias == "legacy" and listed.phone_numbers == []
        parent_token = plivo.RestClient(SUB, DEFAULT_PLIVO_AUTH_TOKEN)
        with pytest.raises(exceptions.AuthenticationError):
            await asyncio.to_thread(parent_token.campaign.get_numbers, "CMIGOLD")


async def test_state_file_accounts_come_back_in_the_served_state(tmp_path: Path) -> None:
    path = two_accounts(tmp_path, parent_limit=7, sub_limit=0)
    async with run_sandbox(SandboxConfig(state_file=path)) as sb, aiohttp.ClientSession() as s:
        async with s.get(sb.admin_url + "/state") as resp:
            state = await resp.json()
        async with s.get(sb.admin_url + "/counters") as resp:
            counters = await resp.json()
    served = {
        auth_id: (a["rate_limit"], {cid: [n["number"] for n in c["numbers"]]
                                    for cid, c in a["campaigns"].items()}, a["unowned"])
        for auth_id, a in state["plivo_accounts"].items()
    }
    assert served == {
        PARENT: (7, {"CPARENT": ["+14155550100"]}, ["+14155550144"]),
        SUB: (0, {"CSUBACC": ["+14155550100"]}, ["+14155550101"]),
    }
    assert state["plivo"]["auth_id"] == PARENT  # the first account stays the default one
    assert [counters["accounts"][a]["rate_limit"] for a in (PARENT, SUB)] == [7, 0]


@pytest.mark.parametrize(
    ("plivo_section", "message"),
    [
        ({"accounts": [{"auth_id": "SA123"}]}, "plivo.accounts[0].auth_id must be 20 characters"),
        ({"accounts": [{"auth_id": "SA12345678901234567-"}]}, "plivo.accounts[0].auth_id"),
        ({"accounts": [{}, {"auth_id": SUB}]},
         "plivo.accounts[1].auth_token is already the auth token of plivo.accounts[0]"),
        ({"accounts": [{}, {"auth_token": "other"}]},
         f"plivo.accounts[1].auth_id {PARENT} is already the auth id of plivo.accounts[0]"),
        ({"accounts": []}, "plivo.accounts must list at least one account"),
        ({"accounts": [{}], "auth_id": SUB}, "plivo: give either accounts or"),
        ({"accounts": [{"rate_limit": -1}]}, "plivo.accounts[0].rate_limit must be an integer"),
        ({"accounts": [{"rate_limit": True}]}, "plivo.accounts[0].rate_limit"),
        ({"accounts": [{"colour": 1}]}, "plivo.accounts[0]: unknown keys ['colour']"),
        ({"accounts": [{}, {"auth_id": SUB, "auth_token": "x",
                            "links": [{"number": "+14155550100", "campaign_id": "CNOPE00"}]}]},
         "plivo.accounts[1].links: +14155550100 names unknown campaign 'CNOPE00'"),
    ],
)
def test_bad_plivo_accounts_in_a_state_file_are_named(
    tmp_path: Path, plivo_section: dict[str, Any], message: str
) -> None:
    path = tmp_path / "s.json"
    path.write_text(json.dumps({"plivo": plivo_section}), encoding="utf-8")
    with pytest.raises(StateFileError) as caught:
        load_seed(path)
    assert message in str(caught.value) and "s.json" in str(caught.value)
    assert DEFAULT_PLIVO_AUTH_TOKEN not in str(caught.value)


def test_bad_agentmessage_orgs_are_named_and_keys_never_shown(tmp_path: Path) -> None:
    cases = [
        ({"orgs": [{"org": "org_b", "rate_limit": "fast"}]},
         "agentmessage.orgs[0].rate_limit must be an integer"),
        ({"orgs": [{"org": "org_b"}, {"org": "org_b"}]}, "agentmessage.orgs[1].org 'org_b'"),
        ({"orgs": [{"org": "org_b", "burst": 3}]}, "agentmessage.orgs[0]: unknown keys"),
        ({"keys": [{"key": "am_live_dup"}, {"key": "am_live_dup", "org": "org_b"}]},
         "agentmessage.keys[1].key is listed twice"),
        ({"keys": [{"key": "am_live_x", "org": PARENT}]}, f"the org id '{PARENT}'"),
    ]
    for section, message in cases:
        path = tmp_path / "s.json"
        path.write_text(json.dumps({"agentmessage": section}), encoding="utf-8")
        with pytest.raises(StateFileError) as caught:
            load_seed(path)
        assert message in str(caught.value), section
        assert "am_live_dup" not in str(caught.value)


async def test_an_agentmessage_org_has_its_own_key_limit_and_counters(
    tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    state = {"agentmessage": {
        "keys": [{"key": DEFAULT_AGENTMESSAGE_KEY}, {"key": "am_live_orgbkey", "org": "org_b"}],
        "orgs": [{"org": "org_b", "rate_limit": 2}],
    }}
    path = tmp_path / "am.json"
    path.write_text(json.dumps(state), encoding="utf-8")
    config = SandboxConfig(state_file=path, agentmessage_rate_limit=50)
    async with run_sandbox(config, clock=ManualClock()) as sb:
        assert sb.agentmessage_keys == {"org_b": "am_live_orgbkey",
                                        "org_sandbox": DEFAULT_AGENTMESSAGE_KEY}
        target = f"{sb.base_url}/v1/campaigns"
        org_b = [(await call(http, "GET", target, "Bearer am_live_orgbkey"))[0]
                 for _ in range(3)]
        default = [(await call(http, "GET", target, f"Bearer {DEFAULT_AGENTMESSAGE_KEY}"))[0]
                   for _ in range(3)]
        status, body = await call(http, "GET", target, "Bearer am_live_nosuchkey")
        accounts = sb.counters()["accounts"]
    assert org_b == [200, 200, 429] and default == [200, 200, 200]
    assert (status, body["error"]["code"]) == (401, "UNAUTHORIZED")
    rows = {k: (v["requests"], v["rate_limited"], v["peak_in_window"], v["unauthorized"])
            for k, v in accounts.items()}
    assert rows["org_b"] == (3, 1, 2, 0) and rows["org_sandbox"] == (3, 0, 3, 0)
    assert rows["unknown"] == (1, 0, 0, 1)
    assert (accounts["org_b"]["rate_limit"], accounts["org_sandbox"]["rate_limit"]) == (2, 50)


async def test_seed_for_accounts_gives_each_org_its_campaigns_and_sample_numbers(
    http: aiohttp.ClientSession,
) -> None:
    seed = seed_for_accounts(agentmessage={"b": None})
    async with run_sandbox(SandboxConfig(settle_min=0.05, settle_max=0.05), seed=seed) as sb:
        key_b = sb.agentmessage_keys["org_b"]
        assert key_b.startswith("am_live_") and key_b != DEFAULT_AGENTMESSAGE_KEY
        status, body = await call(http, "GET", f"{sb.base_url}/v1/campaigns", f"Bearer {key_b}")
        campaigns = {c["name"]: c["id"] for c in body["data"]}
        assert sorted(campaigns) == ["alerts", "legacy", "marketing", "seasonal"]
        status, body = await call(http, "GET", f"{sb.base_url}/v1/phone-numbers?search="
                                  "14155550103", f"Bearer {key_b}")
        [resource] = body["data"]
        assert resource["id"] == agentmessage_number_id("+14155550103", "org_b")
        status, body = await call(
            http, "POST", f"{sb.base_url}/v1/phone-numbers/{resource['id']}/campaign",
            f"Bearer {key_b}", {"campaign_id": campaigns["marketing"]})
        assert (status, body["data"]["carrier_line_option_status"]) == (200, "pending")
        await asyncio.sleep(0.2)
        _, mine = await call(http, "GET", f"{sb.base_url}/v1/phone-numbers/{resource['id']}",
                             f"Bearer {key_b}")
        _, default = await call(
            http, "GET", f"{sb.base_url}/v1/phone-numbers/"
            f"{agentmessage_number_id('+14155550103')}", f"Bearer {DEFAULT_AGENTMESSAGE_KEY}")
    assert mine["data"]["carrier_line_option_status"] == "active"
    assert default["data"]["campaign_id"] is None  # the default org's own resource is untouched


def test_seed_for_accounts_is_deterministic_and_validates_what_it_adds() -> None:
    one = seed_for_accounts(plivo={SUB: 40, PARENT: 9}, agentmessage={"b": 5, "sandbox": 6})
    two = seed_for_accounts(plivo={SUB: 40, PARENT: 9}, agentmessage={"b": 5, "sandbox": 6})
    assert one == two
    assert [(a.auth_id, a.auth_token, a.rate_limit, [c.campaign_id for c in a.campaigns],
             a.links) for a in one.plivo_accounts][1] == (
        SUB, f"sandbox-token-{SUB}", 40, ["CUOGHIN", "CRIGC80", "CMIGOLD"], [])
    assert one.plivo.rate_limit == 9  # an existing account only gets its limit
    assert one.agentmessage.rate_limits == {"org_b": 5, "org_sandbox": 6}
    with pytest.raises(StateFileError, match="auth_id must be 20 characters"):
        seed_for_accounts(plivo={"SAshort": None})
    with pytest.raises(StateFileError, match="rate limit"):
        seed_for_accounts(agentmessage={"b": -2})
    with pytest.raises(StateFileError, match="letters, digits"):
        seed_for_accounts(agentmessage={"b c": None})


def test_sandbox_command_adds_subaccounts_and_prints_every_accounts_credentials() -> None:
    from bulk.cli.sandbox import _Options, _seed, accounts_banner, subaccount_id

    command = main.get_command(None, "sandbox")  # type: ignore[arg-type]
    assert command is not None
    given = command.make_context("sandbox", ["--plivo-subaccounts", "2",
                                             "--agentmessage-orgs", "1"])
    seed = _seed(_Options(**given.params))
    assert seed is not None
    assert [a.auth_id for a in seed.plivo_accounts] == [PARENT, subaccount_id(1),
                                                        subaccount_id(2)]
    sb = Sandbox(SandboxConfig(), seed=seed)
    text = accounts_banner(sb.plivo_accounts, sb.agentmessage_keys, sb.counters()["accounts"])
    for auth_id, token in sb.plivo_accounts.items():
        assert f"{auth_id}  token {token}  limit 300/5s" in text
    assert f"org_extra1  key {sb.agentmessage_keys['org_extra1']}  limit 100/10s" in text
    result = CliRunner().invoke(main, ["sandbox", "--help"])
    assert "--plivo-subaccounts" in result.output
