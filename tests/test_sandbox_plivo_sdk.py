"""The official plivo SDK (sync, run in a thread) against the sandbox on loopback."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import plivo
import plivo.rest.client
import pytest
from plivo import exceptions

from bulk.sandbox import Sandbox, SandboxConfig, run_sandbox


@pytest.fixture
async def sb(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Sandbox]:
    async with run_sandbox(SandboxConfig(settle_min=0.05, settle_max=0.1,
                                         plivo_rate_limit=12, plivo_rate_window=5)) as sandbox:
        # The SDK builds every URL from this module constant; point it at the sandbox.
        monkeypatch.setattr(plivo.rest.client, "PLIVO_API_BASE_URI",
                            f"{sandbox.base_url}/v1/Account")
        yield sandbox


@pytest.fixture
def client(sb: Sandbox) -> plivo.RestClient:
    return plivo.RestClient(sb.plivo_auth_id, sb.plivo_auth_token)


async def test_sdk_links_lists_gets_and_unlinks(sb: Sandbox, client: plivo.RestClient) -> None:
    linked = await asyncio.to_thread(client.campaign.number_link, "CUOGHIN",
                                     numbers=["14155550103", "14155550104"])
    assert linked.message == ("Request to link 14155550103, 14155550104 to campaign CUOGHIN "
                              "was received and is being processed")
    assert linked.api_id
    listed = await asyncio.to_thread(client.campaign.get_numbers, "CUOGHIN", limit=20, offset=0)
    assert listed.campaign_id == "CUOGHIN" and listed.campaign_alias == "marketing"
    assert [(n.number, n.status) for n in listed.phone_numbers][-2:] == [
        ("14155550103", "PROCESSING"), ("14155550104", "PROCESSING")
    ]
    await asyncio.sleep(0.15)
    one = await asyncio.to_thread(client.campaign.get_number, "CUOGHIN", "14155550103")
    assert [(n.number, n.status) for n in one.phone_numbers] == [("14155550103", "COMPLETED")]
    unlinked = await asyncio.to_thread(client.campaign.number_unlink, "CUOGHIN", "14155550103")
    assert unlinked.message == ("Request to unlink 14155550103 from campaign CUOGHIN was "
                                "received and is being processed")
    await asyncio.sleep(0.15)
    with pytest.raises(exceptions.ResourceNotFoundError,
                       match="The number 14155550103 is not linked to this campaign"):
        await asyncio.to_thread(client.campaign.get_number, "CUOGHIN", "14155550103")
    campaign = await asyncio.to_thread(client.campaign.get, "CRIGC80")
    assert campaign.campaign.campaign_alias == "alerts"
    assert campaign.campaign.registration_status == "ACTIVE"


async def test_sdk_sees_refusals_as_its_documented_errors(
    sb: Sandbox, client: plivo.RestClient
) -> None:
    with pytest.raises(exceptions.ValidationError,
                       match="The number 14155550144 is not a valid number"):
        await asyncio.to_thread(client.campaign.number_link, "CUOGHIN",
                                numbers=["14155550103", "14155550144"])
    with pytest.raises(exceptions.ValidationError, match="already requested for linking"):
        await asyncio.to_thread(client.campaign.number_link, "CUOGHIN", numbers=["14155550100"])
    bad = plivo.RestClient(sb.plivo_auth_id, "wrong-token")
    with pytest.raises(exceptions.AuthenticationError,
                       match="Authentication credentials invalid"):
        await asyncio.to_thread(bad.campaign.get_numbers, "CUOGHIN")


async def test_sdk_gets_a_429_as_an_error(sb: Sandbox, client: plivo.RestClient) -> None:
    def hammer() -> None:
        for _ in range(20):
            client.campaign.get_numbers("CUOGHIN")

    with pytest.raises(exceptions.PlivoRestError, match="429"):
        await asyncio.to_thread(hammer)
    assert sb.counters()["endpoints"]["plivo.list"]["rate_limited"] == 1
