"""Fault injection on provider paths: the plan (pure draws from the seeded RNG) and its
execution against an aiohttp request."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from aiohttp import web

from bulk.sandbox._config import FaultConfig

if TYPE_CHECKING:
    from bulk.sandbox._state import SandboxState

FAULT_KINDS = ("error_5xx", "reset", "hang", "truncated", "non_json")

HTML_5XX = {
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Temporarily Unavailable",
}


@dataclass(frozen=True)
class FaultPlan:
    """What happens to one request. Drawn on arrival, before anything else."""

    latency: float = 0.0
    burst_429: bool = False
    kind: str | None = None  # one of FAULT_KINDS
    after: bool = False  # strike after the request took effect
    status: int = 0  # for error_5xx
    html: bool = False  # for error_5xx: an HTML body instead of JSON


NO_FAULT = FaultPlan()


class FaultInjector:
    """Draws a :class:`FaultPlan` per provider request from the state's one seeded RNG."""

    def __init__(self, state: SandboxState, config: FaultConfig) -> None:
        self.state = state
        self.config = config
        self.burst_remaining = 0

    def set(self, config: FaultConfig) -> None:
        self.config = config
        self.burst_remaining = 0

    def plan(self, endpoint: str) -> FaultPlan:
        c = self.config
        if not c.active or (c.endpoints is not None and endpoint not in c.endpoints):
            return NO_FAULT
        rng = self.state.rng
        latency = rng.uniform(c.latency_min, c.latency_max) if c.latency_max > 0 else 0.0
        if self.burst_remaining > 0:
            self.burst_remaining -= 1
            return FaultPlan(latency=latency, burst_429=True)
        if c.burst_429_rate > 0 and rng.random() < c.burst_429_rate:
            self.burst_remaining = c.burst_429_length - 1
            return FaultPlan(latency=latency, burst_429=True)
        rates = (c.error_5xx_rate, c.reset_rate, c.hang_rate, c.truncated_rate, c.non_json_rate)
        if not any(rates):
            return FaultPlan(latency=latency)
        draw = rng.random()
        kind = None
        edge = 0.0
        for name, rate in zip(FAULT_KINDS, rates, strict=True):
            edge += rate
            if draw < edge:
                kind = name
                break
        if kind is None:
            return FaultPlan(latency=latency)
        after = c.after_rate > 0 and rng.random() < c.after_rate
        if kind == "truncated":
            after = True  # a truncated body is the real response cut short
        status, html = 0, False
        if kind == "error_5xx":
            status = rng.choice((500, 502, 503))
            html = rng.random() < 0.5
        return FaultPlan(latency=latency, kind=kind, after=after, status=status, html=html)


def html_5xx(status: int) -> str:
    title = f"{status} {HTML_5XX.get(status, 'Server Error')}"
    return (
        f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n"
        f"<center><h1>{title}</h1></center>\r\n<hr><center>nginx</center>\r\n"
        "</body>\r\n</html>\r\n"
    )


NON_JSON_PAGE = (
    "<!DOCTYPE html>\n<html><head><title>Maintenance</title></head>\n"
    "<body><h1>We'll be right back</h1><p>The service is undergoing maintenance.</p>"
    "</body></html>\n"
)


async def execute(
    plan: FaultPlan,
    request: web.Request,
    response: web.Response | None,
    *,
    json_5xx: Callable[[int], web.Response],
    extra_headers: dict[str, str],
    sleep: Callable[[float], Awaitable[None]],
    hang_seconds: float,
) -> tuple[web.StreamResponse, str]:
    """Carry out ``plan.kind``; returns the response to hand to aiohttp and the status label
    for the counters (the HTTP status, or ``reset``/``hang``/``truncated`` when the
    connection is dropped)."""
    if plan.kind == "error_5xx":
        if plan.html:
            resp = web.Response(status=plan.status, text=html_5xx(plan.status),
                                content_type="text/html", headers=extra_headers)
        else:
            resp = json_5xx(plan.status)
        return resp, str(plan.status)
    if plan.kind == "non_json":
        return web.Response(status=200, text=NON_JSON_PAGE, content_type="text/html",
                            headers=extra_headers), "200"
    if plan.kind == "reset":
        _abort(request)
        return web.Response(status=500), "reset"
    if plan.kind == "hang":
        await sleep(hang_seconds)
        _abort(request)
        return web.Response(status=500), "hang"
    if plan.kind == "truncated":
        assert response is not None
        body = response.body
        raw = body if isinstance(body, bytes) else json.dumps({}).encode()
        stream = web.StreamResponse(status=response.status, headers=response.headers)
        stream.content_length = len(raw)
        await stream.prepare(request)
        await stream.write(raw[: max(1, len(raw) // 2)])
        _abort(request)
        return stream, "truncated"
    raise AssertionError(plan.kind)


def _abort(request: web.Request) -> None:
    transport = request.transport
    if transport is not None:
        transport.abort()
