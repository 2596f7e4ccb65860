"""Plivo 10DLC number-linking endpoints (thin aiohttp handlers over :mod:`_plivo_state`)."""

from __future__ import annotations

import base64
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from yarl import URL

from bulk.sandbox._core import Callback
from bulk.sandbox._numbers import digits
from bulk.sandbox._plivo_state import MAX_PAGE, NUMBER_POOL_LIMIT, PlivoRefusal, PlivoState
from bulk.sandbox._sandbox import (
    ACCOUNT,
    REQUEST_ID,
    ProviderHandler,
    Sandbox,
    WireDialect,
    provider_route,
    read_json,
)
from bulk.sandbox._seed import UNKNOWN_ACCOUNT

BASE = "/v1/Account/{auth_id}/10dlc/Campaign/{campaign_id}"
AUTH_ERROR = "Authentication credentials invalid"
#: the largest list ``offset`` taken (a signed 32-bit integer; **choice**, see WIRE.md)
MAX_OFFSET = 2**31 - 1
MAX_PORT = 65535
RATE_ERROR = "Too many requests"


class PlivoDialect(WireDialect):
    name = "plivo"

    def json_5xx(self, status: int, request_id: str) -> web.Response:
        return error(status, "Internal server error" if status == 500 else "Service unavailable",
                     request_id)

    def burst_429(self, sb: Sandbox, request_id: str) -> web.Response:
        return error(429, RATE_ERROR, request_id)

    def account(self, request: web.Request, sb: Sandbox) -> str:
        auth_id = request.match_info.get("auth_id", "")
        return auth_id if auth_id in sb.state.plivo_accounts else UNKNOWN_ACCOUNT


DIALECT = PlivoDialect()


def error(status: int, message: str, api_id: str) -> web.Response:
    return web.json_response({"api_id": api_id, "error": message}, status=status)


def _basic_auth(header: str | None) -> tuple[str | None, str | None]:
    """``(user, password)`` from an HTTP Basic Authorization header, else ``(None, None)``."""
    if not header:
        return None, None
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return None, None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        return None, None
    user, sep, password = decoded.partition(":")
    return (user, password) if sep else (None, None)


def _preamble(
    request: web.Request, sb: Sandbox, endpoint: str
) -> PlivoState | web.Response:
    """Settle due operations; the account the path names, if the credentials are that
    account's and its rate limit admits the request, else the 401 or 429 to answer."""
    state = sb.state
    state.advance()
    api_id = request[REQUEST_ID]
    path_id = request.match_info["auth_id"]
    account = state.plivo_accounts.get(path_id)
    user, password = _basic_auth(request.headers.get("Authorization"))
    if account is None or not account.check_credentials(user, password, path_id):
        state.counters.account(request[ACCOUNT]).unauthorized += 1
        return error(401, AUTH_ERROR, api_id)
    if not account.rate.try_acquire(state.now()):
        state.counters.rate_limited(endpoint)
        state.counters.account(account.auth_id).rate_limited += 1
        return error(429, RATE_ERROR, api_id)
    return account


PlivoHandler = Callable[[web.Request, Sandbox, PlivoState, str], Awaitable[web.Response]]


def _handle(endpoint: str) -> Callable[[PlivoHandler], ProviderHandler]:
    """Decorator: the preamble, then the handler with the path's account and the request's
    ``api_id``; a :class:`PlivoRefusal` it raises becomes Plivo's error body."""

    def wrap(fn: PlivoHandler) -> ProviderHandler:
        async def handler(request: web.Request, sb: Sandbox) -> web.Response:
            account = _preamble(request, sb, endpoint)
            if isinstance(account, web.Response):
                return account
            api_id = request[REQUEST_ID]
            try:
                return await fn(request, sb, account, api_id)
            except PlivoRefusal as exc:
                return error(exc.status, exc.message, api_id)

        return handler

    return wrap


def _callback(data: dict[str, Any]) -> Callback | None:
    """The callback named by ``url``/``method``; empty ``url`` means none."""
    url = data.get("url")
    method = data.get("method") or "POST"
    if not isinstance(method, str) or method.upper() not in ("GET", "POST"):
        raise PlivoRefusal(400, "method must be GET or POST")
    if url is None or url == "":
        return None
    if not isinstance(url, str) or not _valid_url(url):
        raise PlivoRefusal(400, "url is not a valid URL")
    return Callback(url, method.upper())


def _valid_url(url: str) -> bool:
    """An http(s) URL with a host that can be parsed and sent to (a bracketed host that is
    no IPv6 address, a port out of range, a lone surrogate: not valid)."""
    try:
        url.encode("utf-8")
        parsed = URL(url)
        return parsed.scheme in ("http", "https") and bool(parsed.host) and (
            parsed.port is None or 0 < parsed.port <= MAX_PORT
        )
    except (ValueError, UnicodeError):
        return False


def _campaign_header(account: PlivoState, campaign_id: str, api_id: str) -> dict[str, Any]:
    campaign = account.campaign(campaign_id)
    return {
        "api_id": api_id,
        "campaign_alias": campaign.alias,
        "campaign_id": campaign.campaign_id,
        "usecase": campaign.usecase,
    }


@_handle("plivo.link")
async def link(
    request: web.Request, sb: Sandbox, account: PlivoState, api_id: str
) -> web.Response:
    campaign_id = request.match_info["campaign_id"]
    account.campaign(campaign_id)
    ok, body = await read_json(request)
    if not ok or not isinstance(body, dict):
        raise PlivoRefusal(400, "Invalid request body: expected a JSON object")
    callback = _callback(body)
    numbers, ops = account.link(
        campaign_id, body.get("numbers"), now=sb.state.now(), request_id=api_id,
        callback=callback,
    )
    sb.created(ops)
    shown = ", ".join(digits(n) for n in numbers)
    return web.json_response(
        {
            "api_id": api_id,
            "message": f"Request to link {shown} to campaign {campaign_id} was received and is "
            "being processed",
        },
        status=202,
    )


def _int_param(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    """A query parameter of ASCII digits within ``low..high``, else Plivo's 400."""
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    digits_only = raw.isascii() and raw.isdigit() and len(raw) <= len(str(high))
    value = int(raw) if digits_only else low - 1
    if not low <= value <= high:
        raise PlivoRefusal(400, f"{name} must be an integer between {low} and {high}")
    return value


@_handle("plivo.list")
async def list_numbers(
    request: web.Request, sb: Sandbox, account: PlivoState, api_id: str
) -> web.Response:
    campaign_id = request.match_info["campaign_id"]
    header = _campaign_header(account, campaign_id, api_id)
    limit = _int_param(request, "limit", MAX_PAGE, 1, MAX_PAGE)
    offset = _int_param(request, "offset", 0, 0, MAX_OFFSET)
    links = account.page(campaign_id, limit, offset)
    counts = account.campaigns[campaign_id].counts
    return web.json_response(
        {
            **header,
            "phone_numbers": [{"number": digits(x.number), "status": x.status} for x in links],
            "phone_numbers_summary": dict(counts),
            "number_pool_limit": NUMBER_POOL_LIMIT,
        }
    )


@_handle("plivo.get")
async def get_number(
    request: web.Request, sb: Sandbox, account: PlivoState, api_id: str
) -> web.Response:
    campaign_id = request.match_info["campaign_id"]
    header = _campaign_header(account, campaign_id, api_id)
    found = account.get(campaign_id, request.match_info["number"])
    return web.json_response(
        {**header, "phone_numbers": [{"number": digits(found.number), "status": found.status}]}
    )


@_handle("plivo.unlink")
async def unlink(
    request: web.Request, sb: Sandbox, account: PlivoState, api_id: str
) -> web.Response:
    campaign_id = request.match_info["campaign_id"]
    account.campaign(campaign_id)
    ok, body = await read_json(request)
    if not ok or not (body is None or isinstance(body, dict)):
        raise PlivoRefusal(400, "Invalid request body: expected a JSON object")
    data: dict[str, Any] = dict(request.query)
    data.update(body or {})
    callback = _callback(data)
    number, op = account.unlink(
        campaign_id, request.match_info["number"], now=sb.state.now(), request_id=api_id,
        callback=callback,
    )
    if op is not None:
        sb.created([op])
    return web.json_response(
        {
            "api_id": api_id,
            "message": f"Request to unlink {digits(number)} from campaign {campaign_id} was "
            "received and is being processed",
        },
        status=202,
    )


@_handle("plivo.campaign")
async def get_campaign(
    request: web.Request, sb: Sandbox, account: PlivoState, api_id: str
) -> web.Response:
    campaign = account.campaign(request.match_info["campaign_id"])
    return web.json_response({"api_id": api_id, "campaign": campaign.to_dict(
        "2025-01-01T00:00:00.000000Z")})


def add_routes(app: web.Application) -> None:
    """Register the Plivo paths, with and without the SDK's trailing slash."""
    routes = [
        ("POST", "/Number/", "plivo.link", link),
        ("GET", "/Number/", "plivo.list", list_numbers),
        ("GET", "/Number/{number}/", "plivo.get", get_number),
        ("DELETE", "/Number/{number}/", "plivo.unlink", unlink),
        ("GET", "/", "plivo.campaign", get_campaign),
    ]
    for method, tail, endpoint, handler in routes:
        wrapped = provider_route(endpoint, DIALECT, handler)
        app.router.add_route(method, BASE + tail, wrapped)
        app.router.add_route(method, BASE + tail.rstrip("/"), wrapped)
