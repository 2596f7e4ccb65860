"""The admin API under ``/_sandbox``: no auth, no faults, no rate limit."""

from __future__ import annotations

from aiohttp import web

from bulk.sandbox._config import FaultConfig, Switches
from bulk.sandbox._sandbox import SANDBOX_KEY, read_json

PREFIX = "/_sandbox"


async def get_state(request: web.Request) -> web.Response:
    sb = request.app[SANDBOX_KEY]
    return web.json_response(sb.state.snapshot())


async def get_counters(request: web.Request) -> web.Response:
    sb = request.app[SANDBOX_KEY]
    sb.state.advance()
    counters = sb.counters()
    if request.query.get("numbers") == "0":  # totals only: cheap to poll during a benchmark
        counters.pop("numbers", None)
    return web.json_response(counters)


async def post_reset(request: web.Request) -> web.Response:
    sb = request.app[SANDBOX_KEY]
    sb.reset()
    return web.json_response({"reset": True})


async def get_faults(request: web.Request) -> web.Response:
    sb = request.app[SANDBOX_KEY]
    return web.json_response(sb.faults.config.to_dict())


async def post_faults(request: web.Request) -> web.Response:
    sb = request.app[SANDBOX_KEY]
    ok, body = await read_json(request)
    if not ok or not isinstance(body, dict):
        return web.json_response({"error": "expected a JSON object of fault options"},
                                 status=400)
    try:
        faults = FaultConfig.from_dict(body)
    except (ValueError, TypeError) as exc:
        return web.json_response({"error": str(exc)}, status=400)
    sb.set_faults(faults)
    return web.json_response(faults.to_dict())


async def get_switches(request: web.Request) -> web.Response:
    sb = request.app[SANDBOX_KEY]
    return web.json_response(sb.switches().to_dict())


async def post_switches(request: web.Request) -> web.Response:
    sb = request.app[SANDBOX_KEY]
    ok, body = await read_json(request)
    if not ok or not isinstance(body, dict):
        return web.json_response({"error": "expected a JSON object of switches"}, status=400)
    strict = body.pop("strict", False)
    if not isinstance(strict, bool):
        return web.json_response({"error": "strict must be true or false"}, status=400)
    try:
        switches = Switches.build(body, strict=strict)
    except (ValueError, TypeError) as exc:
        return web.json_response({"error": str(exc)}, status=400)
    sb.set_switches(switches)
    return web.json_response(switches.to_dict())


async def post_rate_limit(request: web.Request) -> web.Response:
    """``{"account": <Plivo auth id or AgentMessage org id>, "rate_limit": N}``: that
    account's limit from now on (0: none), until a reset."""
    sb = request.app[SANDBOX_KEY]
    ok, body = await read_json(request)
    if not ok or not isinstance(body, dict):
        return web.json_response({"error": "expected a JSON object with account and rate_limit"},
                                 status=400)
    unknown = set(body) - {"account", "rate_limit"}
    if unknown:
        return web.json_response({"error": f"unknown keys: {sorted(unknown)}; known: "
                                           "['account', 'rate_limit']"}, status=400)
    account, limit = body.get("account"), body.get("rate_limit")
    if not isinstance(account, str) or not account:
        return web.json_response({"error": "account must be a Plivo auth id or an AgentMessage "
                                           "organization id"}, status=400)
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
        return web.json_response({"error": "rate_limit must be an integer >= 0 (0: no limit)"},
                                 status=400)
    try:
        return web.json_response(sb.state.set_rate_limit(account, limit))
    except KeyError:
        return web.json_response({"error": f"no account or organization {account!r}"},
                                 status=404)


async def get_callbacks(request: web.Request) -> web.Response:
    sb = request.app[SANDBOX_KEY]
    return web.json_response({"attempts": sb.callbacks.log})


def add_routes(app: web.Application) -> None:
    app.router.add_get(PREFIX + "/state", get_state)
    app.router.add_get(PREFIX + "/counters", get_counters)
    app.router.add_post(PREFIX + "/reset", post_reset)
    app.router.add_get(PREFIX + "/faults", get_faults)
    app.router.add_post(PREFIX + "/faults", post_faults)
    app.router.add_get(PREFIX + "/callbacks", get_callbacks)
    app.router.add_get(PREFIX + "/switches", get_switches)
    app.router.add_post(PREFIX + "/switches", post_switches)
    app.router.add_post(PREFIX + "/rate-limit", post_rate_limit)
