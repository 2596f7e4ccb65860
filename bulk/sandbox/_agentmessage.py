"""AgentMessage phone-number endpoints (thin aiohttp handlers over :mod:`_am_state`)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from bulk.sandbox._am_state import AMError, ApiKey
from bulk.sandbox._sandbox import (
    ACCOUNT,
    REQUEST_ID,
    ProviderHandler,
    Sandbox,
    WireDialect,
    provider_route,
    read_json,
)
from bulk.sandbox._seed import AM_CAMPAIGN_STATUSES, NUMBER_TYPES, UNKNOWN_ACCOUNT, is_uuid

_5XX_CODES = {500: "INTERNAL_ERROR", 502: "BAD_GATEWAY", 503: "SERVICE_UNAVAILABLE"}


def empty_meta(last_event_at: str | None = None) -> dict[str, Any]:
    return {"total": None, "limit": None, "offset": None, "next_cursor": None,
            "last_event_at": last_event_at}


def envelope(
    data: Any,
    request_id: str,
    *,
    meta: dict[str, Any] | None = None,
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> web.Response:
    return web.json_response(
        {"success": True, "error": None, "meta": meta or empty_meta(), "data": data},
        status=status,
        headers={"X-Request-Id": request_id, **(headers or {})},
    )


def error(
    status: int,
    code: str,
    message: str,
    request_id: str,
    details: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> web.Response:
    return web.json_response(
        {
            "success": False,
            "error": {"code": code, "message": message, "request_id": request_id,
                      "details": details or {}},
            "meta": empty_meta(),
            "data": None,
        },
        status=status,
        headers={"X-Request-Id": request_id, **(headers or {})},
    )


def _error_from(exc: AMError, request_id: str) -> web.Response:
    return error(exc.status, exc.code, exc.message, request_id, exc.details)


def rate_limited(sb: Sandbox, request_id: str) -> web.Response:
    return error(429, "RATE_LIMITED", "too many requests", request_id,
                 {"retry_after": sb.config.agentmessage_retry_after},
                 headers={"Retry-After": str(sb.config.agentmessage_retry_after)})


class AgentMessageDialect(WireDialect):
    name = "agentmessage"

    def json_5xx(self, status: int, request_id: str) -> web.Response:
        return error(status, _5XX_CODES.get(status, "INTERNAL_ERROR"),
                     "the service failed to handle the request", request_id)

    def burst_429(self, sb: Sandbox, request_id: str) -> web.Response:
        return rate_limited(sb, request_id)

    def fault_headers(self, request_id: str) -> dict[str, str]:
        return {"X-Request-Id": request_id}

    def account(self, request: web.Request, sb: Sandbox) -> str:
        try:
            return sb.state.agentmessage.authenticate(request.headers.get("Authorization")).org_id
        except AMError:
            return UNKNOWN_ACCOUNT


DIALECT = AgentMessageDialect()


def _preamble(request: web.Request, sb: Sandbox, endpoint: str, scope: str) -> ApiKey:
    """Settle due operations; authenticate, check the scope, then the org's rate limit."""
    state = sb.state
    state.advance()
    am = state.agentmessage
    try:
        key = am.authenticate(request.headers.get("Authorization"))
    except AMError:
        state.counters.account(request[ACCOUNT]).unauthorized += 1
        raise
    am.require(key, scope)
    if not am.rate(key.org_id).try_acquire(state.now()):
        state.counters.rate_limited(endpoint)
        state.counters.account(key.org_id).rate_limited += 1
        raise AMError(429, "RATE_LIMITED", "too many requests")
    return key


def _limit(request: web.Request) -> int:
    raw = request.query.get("limit")
    if raw is None:
        return 20
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if not 1 <= value <= 100:
        raise AMError(400, "INVALID_INPUT", "limit must be an integer from 1 to 100",
                      {"field": "limit"})
    return value


def _meta(sb: Sandbox, key: ApiKey, *, total: int, limit: int, offset: int,
          next_cursor: str | None) -> dict[str, Any]:
    return {
        "total": total,
        "limit": limit,
        "offset": offset,
        "next_cursor": next_cursor,
        "last_event_at": sb.state.agentmessage.last_event.get(key.org_id),
    }


AMHandler = Callable[[web.Request, Sandbox, ApiKey, str], Awaitable[web.Response]]


def _handle(endpoint: str, scope: str) -> Callable[[AMHandler], ProviderHandler]:
    """Decorator: the preamble plus AMError -> error envelope, 429 -> Retry-After."""

    def wrap(fn: AMHandler) -> ProviderHandler:
        async def handler(request: web.Request, sb: Sandbox) -> web.Response:
            request_id = request[REQUEST_ID]
            try:
                key = _preamble(request, sb, endpoint, scope)
                return await fn(request, sb, key, request_id)
            except AMError as exc:
                if exc.status == 429:
                    return rate_limited(sb, request_id)
                return _error_from(exc, request_id)

        return handler

    return wrap


@_handle("agentmessage.list_numbers", "numbers:read")
async def list_numbers(
    request: web.Request, sb: Sandbox, key: ApiKey, request_id: str
) -> web.Response:
    q = request.query
    limit = _limit(request)
    campaign_id = q.get("campaign_id") or None
    if campaign_id is not None and not is_uuid(campaign_id):
        raise AMError(400, "INVALID_INPUT", "campaign_id must be a uuid",
                      {"field": "campaign_id"})
    number_type = q.get("number_type") or None
    if number_type is not None and number_type not in NUMBER_TYPES:
        raise AMError(400, "INVALID_INPUT", f"number_type must be one of {list(NUMBER_TYPES)}",
                      {"field": "number_type"})
    page = sb.state.agentmessage.list_numbers(
        key.org_id, limit=limit, cursor=q.get("cursor") or None, campaign_id=campaign_id,
        search=q.get("search") or None, number_type=number_type,
    )
    meta = _meta(sb, key, total=page.total, limit=limit, offset=page.offset,
                 next_cursor=page.next_cursor)
    return envelope([n.to_dict() for n in page.items], request_id, meta=meta)


@_handle("agentmessage.get_number", "numbers:read")
async def get_number(
    request: web.Request, sb: Sandbox, key: ApiKey, request_id: str
) -> web.Response:
    resource = sb.state.agentmessage.number(key.org_id, request.match_info["id"])
    return envelope(resource.to_dict(), request_id,
                    meta=empty_meta(sb.state.agentmessage.last_event.get(key.org_id)))


@_handle("agentmessage.attach", "numbers:write")
async def attach(request: web.Request, sb: Sandbox, key: ApiKey, request_id: str) -> web.Response:
    ok, body = await read_json(request)
    if not ok:
        raise AMError(422, "VALIDATION_FAILED", "the body is not JSON", {"field": "body"})
    resource, op = sb.state.agentmessage.attach(
        key.org_id, request.match_info["id"], body, now=sb.state.now(), request_id=request_id
    )
    if op is not None:
        sb.created([op])
    return envelope(resource.to_dict(), request_id,
                    meta=empty_meta(sb.state.agentmessage.last_event.get(key.org_id)))


@_handle("agentmessage.detach", "numbers:write")
async def detach(request: web.Request, sb: Sandbox, key: ApiKey, request_id: str) -> web.Response:
    resource, op = sb.state.agentmessage.detach(
        key.org_id, request.match_info["id"], now=sb.state.now(), request_id=request_id
    )
    if op is not None:
        sb.created([op])
    return envelope(resource.to_dict(), request_id,
                    meta=empty_meta(sb.state.agentmessage.last_event.get(key.org_id)))


@_handle("agentmessage.list_campaigns", "campaigns:read")
async def list_campaigns(
    request: web.Request, sb: Sandbox, key: ApiKey, request_id: str
) -> web.Response:
    limit = _limit(request)
    status = request.query.get("status") or None
    if status is not None and status not in AM_CAMPAIGN_STATUSES:
        raise AMError(400, "INVALID_INPUT",
                      f"status must be one of {list(AM_CAMPAIGN_STATUSES)}", {"field": "status"})
    page = sb.state.agentmessage.list_campaigns(
        key.org_id, status=status, limit=limit, cursor=request.query.get("cursor") or None
    )
    meta = _meta(sb, key, total=page.total, limit=limit, offset=page.offset,
                 next_cursor=page.next_cursor)
    headers = {"X-Next-Cursor": page.next_cursor} if page.next_cursor else None
    return envelope([c.to_dict() for c in page.items], request_id, meta=meta, headers=headers)


def add_routes(app: web.Application) -> None:
    routes = [
        ("GET", "/v1/phone-numbers", "agentmessage.list_numbers", list_numbers),
        ("GET", "/v1/phone-numbers/{id}", "agentmessage.get_number", get_number),
        ("POST", "/v1/phone-numbers/{id}/campaign", "agentmessage.attach", attach),
        ("DELETE", "/v1/phone-numbers/{id}/campaign", "agentmessage.detach", detach),
        ("GET", "/v1/campaigns", "agentmessage.list_campaigns", list_campaigns),
    ]
    for method, path, endpoint, handler in routes:
        app.router.add_route(method, path, provider_route(endpoint, DIALECT, handler))
