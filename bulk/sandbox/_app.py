"""Assembling the aiohttp application and running it on a loopback port."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from aiohttp import web

from bulk._clock import Clock
from bulk.sandbox import _admin, _agentmessage, _plivo
from bulk.sandbox._config import SandboxConfig
from bulk.sandbox._sandbox import SANDBOX_KEY, Sandbox, new_request_id
from bulk.sandbox._seed import Seed

SHUTDOWN_TIMEOUT = 2.0


@web.middleware
async def provider_envelopes(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Unknown provider paths (404) and wrong methods (405) answer in the provider's format."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status not in (404, 405) or not request.path.startswith("/v1/"):
            raise
        request_id = new_request_id()
        headers = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else {}
        if request.path.startswith("/v1/Account/"):
            text = "Method not allowed" if exc.status == 405 else "Resource not found"
            response = _plivo.error(exc.status, text, request_id)
        else:
            code = "METHOD_NOT_ALLOWED" if exc.status == 405 else "NOT_FOUND"
            response = _agentmessage.error(exc.status, code, exc.reason.lower(), request_id)
        response.headers.update(headers)
        return response


def build_app(
    config: SandboxConfig | None = None, *, sandbox: Sandbox | None = None
) -> web.Application:
    """The aiohttp application serving both providers and the admin API.

    The :class:`Sandbox` handle is ``app[SANDBOX_KEY]``; its background work (settling on
    time, callbacks) starts and stops with the application.
    """
    sb = sandbox if sandbox is not None else Sandbox(config)
    app = web.Application(middlewares=[provider_envelopes])
    app[SANDBOX_KEY] = sb

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        await sb.start()
        yield
        await sb.stop()

    async def on_shutdown(app: web.Application) -> None:
        sb.begin_closing()

    app.cleanup_ctx.append(lifecycle)
    app.on_shutdown.append(on_shutdown)
    _plivo.add_routes(app)
    _agentmessage.add_routes(app)
    _admin.add_routes(app)
    return app


def _url_host(host: str) -> str:
    if host in ("", "0.0.0.0"):
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host


@asynccontextmanager
async def run_sandbox(
    config: SandboxConfig | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    clock: Clock | None = None,
    seed: Seed | None = None,
) -> AsyncIterator[Sandbox]:
    """Serve a sandbox on ``host:port`` (port 0: a free port) until the block exits; on
    ``clock`` when given, from ``seed`` when given (see :class:`Sandbox`)."""
    sb = Sandbox(config, clock=clock, seed=seed)
    app = build_app(sandbox=sb)
    runner = web.AppRunner(app, shutdown_timeout=SHUTDOWN_TIMEOUT, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        bound = runner.addresses[0]
        sb.base_url = f"http://{_url_host(host)}:{bound[1]}"
        yield sb
    finally:
        sb.begin_closing()
        await runner.cleanup()
