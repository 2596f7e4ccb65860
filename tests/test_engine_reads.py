"""Reads the engine makes: paged campaign lists, side by side, with no page wasted."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
import anyio
import pytest
from aiohttp import web

from bulk._aio import gather_map
from bulk.engine import HttpSender, Meter, RetryPolicy, VirtualClock
from bulk.providers import Credentials, Secret, entry
from bulk.providers._base import ProviderUnavailable, Settlement
from bulk.providers.plivo import PlivoProvider
from bulk.sandbox import SandboxConfig, run_sandbox
from tests._helpers import on_loopback


@asynccontextmanager
async def _plivo(config: SandboxConfig) -> AsyncIterator[tuple[PlivoProvider, HttpSender]]:
    """A Plivo adapter over the sandbox, one try per request, no rate limit on bulk's side."""
    async with run_sandbox(config) as sb:
        creds = Credentials(sb.plivo_auth_id, Secret(sb.plivo_auth_token))
        async with aiohttp.ClientSession() as session:
            sender = HttpSender(
                session,
                sb.base_url,
                Meter(None, 8),
                headers=entry("plivo").headers(creds),
                provider="plivo",
                policy=RetryPolicy(attempts=1),
            )
            yield PlivoProvider(sender, sb.plivo_auth_id), sender


async def _link_all(provider: PlivoProvider, campaign: str, numbers: list[str]) -> None:
    for i in range(0, len(numbers), 20):
        chunk = numbers[i : i + 20]
        outcome = await provider.link(campaign, chunk, list(range(len(chunk))))
        assert outcome.accepted == chunk


@pytest.mark.parametrize(("size", "hint"), [(40, None), (45, None), (45, 60), (45, 65), (45, 100)])
async def test_campaign_list_reads_every_number_and_no_page_past_the_end(
    size: int, hint: int | None
) -> None:
    config = SandboxConfig(settle_min=0.01, settle_max=0.02, plivo_rate_limit=0)
    async with _plivo(config) as (provider, sender):
        numbers = [f"+1650555{n:04d}" for n in range(100, 100 + size)]
        await _link_all(provider, "CRIGC80", numbers)
        before = sender.stats.requests["list"]
        members = await provider.campaign_numbers("CRIGC80", hint, want=set(numbers))
        pages = sender.stats.requests["list"] - before
    # CRIGC80 holds 20 numbers already (the sandbox's default state)
    assert set(numbers) <= set(members)
    assert len(members) == size + 20
    needed = -(-(size + 20) // 20)
    if hint is None or hint <= size + 20:
        assert pages == needed  # no empty page past the end, even at a multiple of 20
    else:
        assert pages == -(-hint // 20)  # an over-estimate costs only the pages it names
    assert all(members[n].settlement in (Settlement.PENDING, Settlement.ACTIVE) for n in numbers)


async def test_a_glance_is_one_page_with_counts_and_a_whole_read_goes_on_from_it() -> None:
    config = SandboxConfig(settle_min=30.0, settle_max=40.0, plivo_rate_limit=0)
    async with _plivo(config) as (provider, sender):
        numbers = [f"+1650555{n:04d}" for n in range(100, 145)]
        await _link_all(provider, "CRIGC80", numbers)
        before = sender.stats.requests["list"]
        glance = await provider.campaign_glance("CRIGC80")
        glanced = sender.stats.requests["list"] - before
        members = await provider.campaign_numbers("CRIGC80", first=glance)
        pages = sender.stats.requests["list"] - before
    # CRIGC80 holds 20 settled numbers already (the sandbox's default state); ours pend
    assert glanced == 1 and len(glance.members) == 20 and not glance.whole
    assert glance.counts == {Settlement.PENDING: 45, Settlement.ACTIVE: 20, Settlement.FAILED: 0}
    assert set(numbers) <= set(members) and len(members) == 65
    assert pages == 4  # the glance's page is not read again: 1 + 3 more for 65 numbers


async def test_a_survey_spends_no_campaign_read_on_a_campaign_its_first_page_names() -> None:
    config = SandboxConfig(settle_min=0.01, settle_max=0.02, plivo_rate_limit=0)
    async with _plivo(config) as (provider, sender):
        check, members = await provider.survey_campaign("CRIGC80")
        requests = dict(sender.stats.requests)
    assert check.usable and members is not None and len(members) == 20
    assert requests.get("campaign", 0) == 0  # the list's body names CRIGC80: it exists
    # a survey looks for no number in particular, so counts never end it: its first page is
    # full, and the second (empty) one shows the list ends there
    assert requests["list"] == 2


async def test_a_survey_of_an_unknown_campaign_keeps_the_campaign_reads_reason() -> None:
    config = SandboxConfig(settle_min=0.01, settle_max=0.02, plivo_rate_limit=0)
    async with _plivo(config) as (provider, sender):
        check, members = await provider.survey_campaign("CNOSUCH")
        requests = dict(sender.stats.requests)
    assert not check.usable and members is None
    assert check.reason is not None and "CNOSUCH" in check.reason and "not found" in check.reason
    assert requests == {"list": 1, "campaign": 1}


@asynccontextmanager
async def _plivo_over(app: web.Application) -> AsyncIterator[PlivoProvider]:
    """A Plivo adapter over ``app`` served on loopback: one try per request, no rate limit."""
    async with on_loopback(app) as base_url, aiohttp.ClientSession() as session:
        sender = HttpSender(session, base_url, Meter(None, 4), headers={},
                            provider="plivo", policy=RetryPolicy(attempts=1))
        yield PlivoProvider(sender, "MA" + "Z" * 18)


@asynccontextmanager
async def _lying_plivo(
    body: dict[str, object],
) -> AsyncIterator[tuple[PlivoProvider, Counter[str]]]:
    """A Plivo adapter over a loopback server that answers every list page and single read
    with ``body`` and the campaign read with the campaign; it counts what was asked."""
    asked: Counter[str] = Counter()

    async def page(request: web.Request) -> web.Response:
        asked["list"] += 1
        return web.json_response(body)

    async def campaign(request: web.Request) -> web.Response:
        asked["campaign"] += 1
        cid = request.match_info["cid"]
        return web.json_response({"api_id": "x", "campaign_id": cid, "registration_status": "ok"})

    app = web.Application()
    app.router.add_get("/v1/Account/{aid}/10dlc/Campaign/{cid}/Number/", page)
    app.router.add_get("/v1/Account/{aid}/10dlc/Campaign/{cid}/Number/{number}/", page)
    app.router.add_get("/v1/Account/{aid}/10dlc/Campaign/{cid}/", campaign)
    async with _plivo_over(app) as provider:
        yield provider, asked


@pytest.mark.parametrize("named", [None, 7], ids=["names-none", "names-garbage"])
async def test_a_first_page_that_does_not_name_the_campaign_leaves_it_to_the_campaign_read(
    named: object,
) -> None:
    body: dict[str, object] = {"api_id": "x", "phone_numbers": [{"number": "16505550100",
                                                                  "status": "COMPLETED"}]}
    if named is not None:
        body["campaign_id"] = named
    async with _lying_plivo(body) as (provider, asked):
        check, members = await provider.survey_campaign("CRIGC80")
    assert check.usable and members == {"+16505550100": members["+16505550100"]}
    # the campaign read decided; the page already read was not asked for again
    assert asked == {"list": 1, "campaign": 1}


async def test_a_page_or_read_that_names_another_campaign_is_no_usable_answer() -> None:
    """Its statuses are another campaign's: taken as this one's, a link that settled FAILED
    here would be reported ``linked`` (tests/test_plivo_moves.py). Case aside, ids must match."""
    body = {"api_id": "x", "campaign_id": "CELSEWH", "phone_numbers": [
        {"number": "16505550100", "status": "COMPLETED"}]}
    async with _lying_plivo(body) as (provider, _):
        with pytest.raises(ProviderUnavailable, match="another campaign"):
            await provider.survey_campaign("CRIGC80")
        with pytest.raises(ProviderUnavailable, match="another campaign"):
            await provider.number_state("CRIGC80", "+16505550100", 1)
    body["campaign_id"] = "crigc80"
    async with _lying_plivo(body) as (provider, _):
        assert (await provider.number_state("CRIGC80", "+16505550100", 1)).provider_status == (
            "COMPLETED"
        )


@pytest.mark.parametrize("entries", [7, "16505550100", {"number": "16505550100"}])
async def test_a_list_page_whose_numbers_are_not_a_list_is_no_usable_answer(
    entries: object,
) -> None:
    body = {"api_id": "x", "campaign_id": "CRIGC80", "phone_numbers": entries}
    async with _lying_plivo(body) as (provider, _):
        with pytest.raises(ProviderUnavailable, match="phone_numbers"):
            await provider.campaign_glance("CRIGC80")
        with pytest.raises(ProviderUnavailable, match="phone_numbers"):
            await provider.campaign_numbers("CRIGC80")


@pytest.mark.parametrize("entries", [[], [{"number": "16505550199", "status": "COMPLETED"}], 7])
async def test_a_single_read_answered_200_without_its_number_proves_nothing(
    entries: object,
) -> None:
    body = {"api_id": "x", "campaign_id": "CRIGC80", "phone_numbers": entries}
    async with _lying_plivo(body) as (provider, _):
        # not "absent": a move would go on to link a number that may still sit here
        with pytest.raises(ProviderUnavailable, match="without it"):
            await provider.number_state("CRIGC80", "+16505550100", 1)


async def test_gather_map_keeps_order_and_raises_the_first_error_unwrapped() -> None:
    async def value(v: int) -> int:
        await anyio.sleep(0.01 * (3 - v))
        return v

    assert list((await gather_map({k: (lambda k=k: value(k)) for k in (1, 2, 3)})).items()) == [
        (1, 1),
        (2, 2),
        (3, 3),
    ]

    async def boom() -> int:
        raise LookupError("first")

    with pytest.raises(LookupError, match="first"):
        await gather_map({"a": boom, "b": lambda: value(1)})


async def test_meter_counts_busy_time_only_while_requests_wait_or_run() -> None:
    clock = VirtualClock()
    meter = Meter(rate=None, concurrency=2, clock=clock)
    async with meter.slot():
        await clock.sleep(0.1)
    await clock.sleep(0.2)  # idle: nothing to send
    start = clock.monotonic()
    async with meter.slot():
        await clock.sleep(0.1)
    assert clock.monotonic() - start == pytest.approx(0.1)
    assert meter.busy_seconds == pytest.approx(0.2)  # on the clock: no machine load moves it


@asynccontextmanager
async def _stale_total_plivo(
    size: int, total: int
) -> AsyncIterator[tuple[PlivoProvider, list[int]]]:
    """A Plivo adapter over a loopback list of ``size`` settled numbers whose pages all carry
    a ``phone_numbers_summary`` counting only ``total`` (a count that lags the list); yields
    the offsets asked for, in order."""
    numbers = [f"1650555{n:04d}" for n in range(100, 100 + size)]
    asked: list[int] = []

    async def page(request: web.Request) -> web.Response:
        offset = int(request.query.get("offset", "0"))
        asked.append(offset)
        entries = [{"number": n, "status": "COMPLETED"} for n in numbers[offset : offset + 20]]
        return web.json_response({"api_id": "x", "campaign_id": "CRIGC80",
                                  "phone_numbers": entries,
                                  "phone_numbers_summary": {"COMPLETED": total}})

    app = web.Application()
    app.router.add_get("/v1/Account/{aid}/10dlc/Campaign/{cid}/Number/", page)
    async with _plivo_over(app) as provider:
        yield provider, asked


async def test_a_count_that_lags_the_list_never_ends_a_read_before_the_numbers_looked_for() -> None:
    async with _stale_total_plivo(size=45, total=20) as (provider, asked):
        # the numbers looked for are on the third page: the stale total (20) must not stop it
        looked_for = {"+16505550141", "+16505550144"}
        members = await provider.campaign_numbers("CRIGC80", want=looked_for)
        assert looked_for <= set(members) and len(members) == 45
        assert asked == [0, 20, 40]
        asked.clear()
        # nothing named: read to the short page, whatever the counts say
        assert len(await provider.campaign_numbers("CRIGC80")) == 45
        assert asked == [0, 20, 40]
        asked.clear()
        glance = await provider.campaign_glance("CRIGC80")
        members = await provider.campaign_numbers("CRIGC80", first=glance, want=looked_for)
        assert looked_for <= set(members) and asked == [0, 20, 40]


async def test_a_count_the_list_agrees_with_still_spares_the_empty_page_past_the_end() -> None:
    async with _stale_total_plivo(size=40, total=40) as (provider, asked):
        members = await provider.campaign_numbers("CRIGC80", want={"+16505550139"})
    assert len(members) == 40
    assert asked == [0, 20]  # no third, empty page: the total is reached, nothing is missing


async def test_a_list_whose_pages_never_advance_is_no_usable_answer_not_an_endless_read() -> None:
    """Every offset answered with the same full page (a provider ignoring ``offset``)."""
    body = {"api_id": "x", "campaign_id": "CRIGC80", "phone_numbers": [
        {"number": f"1650555{n:04d}", "status": "COMPLETED"} for n in range(100, 120)]}
    async with _lying_plivo(body) as (provider, asked):
        with anyio.fail_after(5), pytest.raises(ProviderUnavailable, match="does not advance"):
            await provider.campaign_numbers("CRIGC80", want={"+16505559999"})
        with anyio.fail_after(5), pytest.raises(ProviderUnavailable, match="does not advance"):
            glance = await provider.campaign_glance("CRIGC80")
            await provider.campaign_numbers("CRIGC80", first=glance)
    assert asked["list"] == 2 + 2
