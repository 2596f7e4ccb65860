"""AgentMessage as a lying or broken provider would answer: the adapter over a loopback
aiohttp server that lies in one way at a time (through the real HttpSender and Meter)."""

from __future__ import annotations

import itertools
import json
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import anyio
import pytest
from aiohttp import web

from bulk.engine import HttpSender, Meter, RetryPolicy, VirtualClock
from bulk.providers._base import ProviderUnavailable, Settlement
from bulk.providers.agentmessage import AMBIGUOUS, AgentMessageProvider
from tests._helpers import (
    ThreadedSandbox,
    behind_proxy,
    on_loopback,
    read_report,
    run_command,
    write_csv,
)

CAMPAIGN = "4f1c2d3e-0000-4000-8000-000000000001"
N1, N2 = "+14155550100", "+14155550101"
ID1 = "7c9e6679-7425-40de-944b-e07fc1f90ae1"
ID2 = "7c9e6679-7425-40de-944b-e07fc1f90ae2"

Handler = Callable[[web.Request], Any]


def item(number_id: str, number: str, campaign: Any = None, status: Any = None) -> dict[str, Any]:
    return {
        "id": number_id,
        "number": number,
        "number_type": "local",
        "campaign_id": campaign,
        "carrier_line_option_status": status,
    }


def envelope(data: Any, next_cursor: Any = None, **extra: Any) -> dict[str, Any]:
    meta = {"total": None, "limit": 100, "offset": None, "next_cursor": next_cursor}
    return {"success": True, "error": None, "meta": meta, "data": data, **extra}


def answer(body: Any, status: int = 200, **headers: str) -> web.Response:
    return web.Response(
        body=json.dumps(body).encode(),
        status=status,
        headers={"Content-Type": "application/json", **headers},
    )


@asynccontextmanager
async def am_over(
    routes: dict[tuple[str, str], Handler], *, clock: VirtualClock | None = None
) -> AsyncIterator[tuple[AgentMessageProvider, Counter[str]]]:
    """The adapter over a loopback app serving ``routes`` ((method, path) -> handler): one try
    per request, no rate limit; counts what was asked, by method and path."""
    asked: Counter[str] = Counter()

    def counted(handler: Handler) -> Handler:
        async def serve(request: web.Request) -> web.StreamResponse:
            asked[f"{request.method} {request.path}"] += 1
            result = handler(request)
            return await result if hasattr(result, "__await__") else result  # type: ignore[no-any-return]

        return serve

    app = web.Application()
    for (method, path), handler in routes.items():
        app.router.add_route(method, path, counted(handler))
    async with on_loopback(app) as base_url, aiohttp.ClientSession() as session:
        sender = HttpSender(
            session,
            base_url,
            Meter(None, 4, clock=clock),
            headers={},
            provider="agentmessage",
            policy=RetryPolicy(attempts=1, timeout=5.0),
        )
        yield AgentMessageProvider(sender), asked


LIST = ("GET", "/v1/phone-numbers")


# --- Retry-After --------------------------------------------------------------------------


def _throttled_once(value: str) -> Handler:
    """The organisation's list: a 429 with ``Retry-After: value`` first, then one number."""
    tries = itertools.count()

    def numbers(request: web.Request) -> web.Response:
        if next(tries) == 0:
            error = {"code": "RATE_LIMITED", "message": "slow down", "request_id": "r"}
            body = {"success": False, "error": error, "meta": None, "data": None}
            return answer(body, 429, **{"Retry-After": value})
        return answer(envelope([item(ID1, N1)]))

    return numbers


async def test_a_retry_after_of_years_ends_the_read_at_once_not_a_pause_of_years() -> None:
    """``Retry-After: 99999999`` paused every sender for that long: bulk hung. A wait longer
    than bulk's longest (300 s) ends the request unsent, with the wait in its reason."""
    clock = VirtualClock()
    async with am_over({LIST: _throttled_once("99999999")}, clock=clock) as (provider, asked):
        started = clock.monotonic()
        with anyio.fail_after(10), pytest.raises(ProviderUnavailable, match="wait 1e"):
            await provider.resolve([N1])
        waited = clock.monotonic() - started
    assert asked["GET /v1/phone-numbers"] == 1
    assert waited < 300, waited


@pytest.mark.parametrize("value", ["1e999", "inf", "nan"])
async def test_a_retry_after_that_is_no_finite_number_is_the_gates_own_short_pause(
    value: str,
) -> None:
    clock = VirtualClock()
    async with am_over({LIST: _throttled_once(value)}, clock=clock) as (provider, asked):
        started = clock.monotonic()
        with anyio.fail_after(10):
            assert await provider.resolve([N1]) == {}
        waited = clock.monotonic() - started
    assert asked["GET /v1/phone-numbers"] == 2
    assert 0 < waited <= 1.0, waited


# --- list envelopes that lie about where the list ends ------------------------------------


def _first_page(body: dict[str, Any]) -> Handler:
    """The organisation's list: ``body`` as its first page (N1), N2 on the page after."""

    def numbers(request: web.Request) -> web.Response:
        if request.query.get("cursor"):
            return answer(envelope([item(ID2, N2)]))
        return answer(body)

    return numbers


def _no_meta() -> dict[str, Any]:
    body = envelope([item(ID1, N1)])
    del body["meta"]
    return body


MALFORMED = {
    "cursor-a-number": envelope([item(ID1, N1)], next_cursor=2),
    "cursor-empty": envelope([item(ID1, N1)], next_cursor=""),
    "cursor-an-object": envelope([item(ID1, N1)], next_cursor={"after": ID1}),
    "meta-missing": _no_meta(),
    "meta-null": {**envelope([item(ID1, N1)]), "meta": None},
    "data-null": envelope(None, next_cursor="c1"),
    "data-null-last": envelope(None),
    "data-an-object": envelope({"items": [item(ID1, N1)]}),
}


@pytest.mark.parametrize("body", MALFORMED.values(), ids=MALFORMED.keys())
async def test_a_list_page_that_cannot_say_where_the_list_goes_on_is_no_usable_answer(
    body: dict[str, Any],
) -> None:
    """A number list page whose ``next_cursor`` was not null-or-a-cursor (a number, ``""``,
    an object, ``meta`` missing) was taken as the last page, and one whose ``data`` was not a
    list as an empty page: the organisation's list ended early, and numbers it owns were
    refused as "not owned" (a report claiming what the provider never said). Such a page is
    no usable answer: the read is tried again, then the run stops, naming it."""
    async with am_over({LIST: _first_page(body)}) as (provider, _):
        with pytest.raises(ProviderUnavailable):
            await provider.resolve([N1, N2])


# --- lists that never advance -------------------------------------------------------------


def _deaf(items: list[dict[str, Any]]) -> Handler:
    """A list that ignores ``cursor``: every page is the first, under a fresh cursor."""
    cursors = itertools.count()

    def numbers(request: web.Request) -> web.Response:
        return answer(envelope(items, next_cursor=f"c{next(cursors)}"))

    return numbers


@pytest.mark.parametrize("where", ["organisation", "campaign"])
async def test_a_list_that_repeats_its_page_under_fresh_cursors_is_no_usable_answer(
    where: str,
) -> None:
    """A list ignoring ``cursor`` but minting a new one each page (a cursor seen twice is
    refused; a fresh one never is) was paged forever at the full rate. A page holding no
    number not already read is no usable answer, like Plivo's page that does not advance."""
    page = [item(ID1, N1, CAMPAIGN, "active"), item(ID2, N2)]
    async with am_over({LIST: _deaf(page)}) as (provider, asked):
        with anyio.fail_after(10), pytest.raises(ProviderUnavailable, match="repeat"):
            if where == "organisation":
                await provider.resolve([N1])
            else:
                provider.directory.listed = True
                await provider.campaign_numbers(CAMPAIGN)
    assert asked["GET /v1/phone-numbers"] == 2


# --- answers about another number than the one asked about --------------------------------

ID3 = "7c9e6679-7425-40de-944b-e07fc1f90ae3"


def _organisation(
    get: dict[str, Any], attach: dict[str, Any] | None = None, campaign: list[Any] | None = None
) -> dict[tuple[str, str], Handler]:
    """N1 (ID1) and N2 (ID2), both in no campaign; GET of any id answers ``get``; an attach
    answers ``attach`` (default: the resource asked about, pending); the campaign's list
    ``campaign``."""

    def numbers(request: web.Request) -> web.Response:
        if "campaign_id" in request.query:
            return answer(envelope(campaign or []))
        return answer(envelope([item(ID1, N1), item(ID2, N2)]))

    def attached(request: web.Request) -> web.Response:
        number = {ID1: N1, ID2: N2}[request.match_info["nid"]]
        body = attach or item(request.match_info["nid"], number, CAMPAIGN, "pending")
        return answer(envelope(body))

    return {
        LIST: numbers,
        ("GET", "/v1/phone-numbers/{nid}"): lambda request: answer(envelope(get)),
        ("POST", "/v1/phone-numbers/{nid}/campaign"): attached,
    }


async def test_a_read_answered_with_another_number_decides_nothing_and_moves_no_change() -> None:
    """The single read of N1's id answered a resource naming N2: bulk took it as N1's state
    (linked) and re-filed N2 under N1's id, so N2's attach went to N1's resource."""
    routes = _organisation(item(ID1, N2, CAMPAIGN, "active"))
    async with am_over(routes) as (provider, asked):
        assert await provider.resolve([N1, N2]) == {}
        with pytest.raises(ProviderUnavailable, match="another"):
            await provider.number_state(CAMPAIGN, N1, 1)
        outcome = await provider.link(CAMPAIGN, [N2], [2])
    assert outcome.accepted == [N2]
    assert asked[f"POST /v1/phone-numbers/{ID2}/campaign"] == 1
    assert asked[f"POST /v1/phone-numbers/{ID1}/campaign"] == 0


async def test_an_attach_answered_with_another_resource_is_a_lost_answer() -> None:
    """An attach answered 200 with a resource of another id: the answer says nothing about
    the number asked for, so it is read, not taken (nor remembered) as this number's."""
    routes = _organisation(item(ID3, N1), attach=item(ID3, N2, CAMPAIGN, "active"))
    async with am_over(routes) as (provider, _):
        assert await provider.resolve([N1, N2]) == {}
        outcome = await provider.link(CAMPAIGN, [N2], [2])
        assert N2 in outcome.lost and not outcome.accepted and not outcome.under_way
        assert provider.directory.numbers[N2].id == ID2


@pytest.mark.parametrize(("status", "success"), [(200, False), (202, False), (409, True)])
async def test_an_attach_whose_status_and_envelope_disagree_is_a_lost_answer(
    status: int, success: bool
) -> None:
    """An attach answered 200 with ``success: false`` and no error (or a 409 saying success):
    bulk refused the row as "HTTP 200", a ``failed`` row for a change that may have landed.
    The answer contradicts itself, so the number is read before anything else."""
    contradiction = {"success": success, "error": None, "meta": None, "data": None}
    routes = _organisation(item(ID1, N1))
    routes[("POST", "/v1/phone-numbers/{nid}/campaign")] = lambda request: answer(
        contradiction, status
    )
    async with am_over(routes) as (provider, asked):
        assert await provider.resolve([N1]) == {}
        outcome = await provider.link(CAMPAIGN, [N1], [1])
    assert N1 in outcome.lost and not outcome.refused and not outcome.accepted, outcome
    assert asked[f"POST /v1/phone-numbers/{ID1}/campaign"] == 1  # read next, never resent blind


async def test_a_campaign_list_naming_a_known_number_under_another_id_is_not_believed() -> None:
    """The campaign's list showed N1 under another id: bulk re-filed N1 under it (its next
    change would address that resource) and took its state as N1's."""
    routes = _organisation(item(ID1, N1), campaign=[item(ID3, N1, CAMPAIGN, "active")])
    async with am_over(routes) as (provider, _):
        assert await provider.resolve([N1, N2]) == {}
        members = await provider.campaign_numbers(CAMPAIGN)
        assert N1 not in members
        assert provider.directory.numbers[N1].id == ID1


@pytest.mark.parametrize(
    ("listed", "refused"),
    [
        ([item(ID1, N1), item(ID3, N1), item(ID2, N2)], {N1}),
        ([item(ID1, N1), item(ID1, N2)], {N1, N2}),
    ],
    ids=["one-number-two-ids", "one-id-two-numbers"],
)
async def test_a_number_listed_ambiguously_is_refused_before_any_change(
    listed: list[dict[str, Any]], refused: set[str]
) -> None:
    """The organisation's list named a number under two ids (or one id for two numbers):
    the last one listed won, and the number's change went to whichever resource that was."""
    async with am_over({LIST: lambda request: answer(envelope(listed))}) as (provider, asked):
        unresolved = await provider.resolve([N1, N2])
        assert unresolved == dict.fromkeys(refused, AMBIGUOUS)
        outcome = await provider.link(CAMPAIGN, sorted(refused), [1] * len(refused))
    assert set(outcome.refused) == refused
    assert not any(key.startswith("POST") for key in asked)


# --- resources that do not say where the number is ---------------------------------------


def _without_campaign(campaign: Any) -> dict[str, Any]:
    resource = item(ID1, N1, CAMPAIGN, "active")
    if campaign is _MISSING:
        del resource["campaign_id"]
    else:
        resource["campaign_id"] = campaign
    return resource


_MISSING = object()


@pytest.mark.parametrize(
    "campaign", [_MISSING, 12345, ["x"], True], ids=["missing", "a-number", "a-list", "a-bool"]
)
async def test_a_resource_that_does_not_say_its_campaign_is_never_proof_of_absence(
    campaign: Any,
) -> None:
    """A resource without a readable ``campaign_id`` (absent, a number) was read as "in no
    campaign": an unlink of a number attached to the campaign was not sent and its row ended
    ``unlinked`` ("not linked to ... when unlinked"). It is unrecognised: never absence."""
    resource = _without_campaign(campaign)
    routes = {
        LIST: lambda request: answer(envelope([resource])),
        ("GET", "/v1/phone-numbers/{nid}"): lambda request: answer(envelope(resource)),
        ("DELETE", "/v1/phone-numbers/{nid}/campaign"): lambda request: answer(envelope(resource)),
    }
    async with am_over(routes) as (provider, _):
        assert await provider.resolve([N1]) == {}
        state = await provider.number_state(CAMPAIGN, N1, 1)
        assert state.settlement is Settlement.UNRECOGNISED
        outcome = await provider.unlink(CAMPAIGN, N1, 1)
    assert not outcome.absent
    # nor is it detached: it may sit in a campaign the row never named
    assert outcome.refused is not None and "unreadable" in outcome.refused, outcome


# --- a number whose campaign cannot be read ---------------------------------------------------


def test_a_number_whose_campaign_is_unreadable_is_neither_attached_nor_detached(
    tmp_path: Path, sandbox_factory: Callable[..., ThreadedSandbox]
) -> None:
    """The organisation's list gave one number no readable ``campaign_id`` (the key missing):
    bulk filed it as in no campaign, so a ``link`` row attached it, which would take it out of
    whatever campaign it was in, and an ``unlink`` row detached it. Both rows now fail,
    saying why, and the number is left as it was; the other rows go on."""
    sb = sandbox_factory(seed=3)
    hidden, plain = "+16505550100", "+16505550101"

    def hide(method: str, path: str, sent: bytes, status: int, body: bytes) -> web.Response | None:
        if method != "GET" or not path.startswith("/v1/phone-numbers") or status != 200:
            return None
        data = json.loads(body)
        items = data["data"] if isinstance(data.get("data"), list) else [data.get("data")]
        for entry in items:
            if isinstance(entry, dict) and entry.get("number") == hidden:
                entry.pop("campaign_id", None)
        return web.json_response(data)

    rows = [f"{hidden},marketing", f"{plain},marketing"]
    src = write_csv(tmp_path / "in.csv", "number,campaign", rows)
    with behind_proxy(sb, after=hide) as proxied:
        result, path = run_command(proxied, "agentmessage", tmp_path, "link", src)
    report = {r["e164"]: r for r in read_report(path).values()}
    assert result.exit_code == 1, result.output
    assert report[hidden]["outcome"] == "failed", report
    assert "campaign_id is unreadable" in report[hidden]["reason"], report
    assert report[plain]["outcome"] == "linked", report
    assert sb.counters()["numbers"].get(hidden, {}).get("attach_accepted", 0) == 0
