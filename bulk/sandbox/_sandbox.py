"""The :class:`Sandbox` handle and the request pipeline every provider path goes through."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from bulk._clock import Clock
from bulk.sandbox._callbacks import CallbackDispatcher
from bulk.sandbox._config import FaultConfig, SandboxConfig, Switches
from bulk.sandbox._core import Op
from bulk.sandbox._faults import FaultInjector, execute
from bulk.sandbox._seed import ALL_SCOPES, DEFAULT_AGENTMESSAGE_KEY, DEFAULT_ORG, Seed
from bulk.sandbox._state import SandboxState

ProviderHandler = Callable[[web.Request, "Sandbox"], Awaitable[web.Response]]


class Sandbox:
    """A running (or buildable) sandbox: state, faults, callbacks and its URLs."""

    def __init__(
        self,
        config: SandboxConfig | None = None,
        *,
        clock: Clock | None = None,
        seed: Seed | None = None,
    ) -> None:
        """``clock``: the real one by default; tests pass a :class:`ManualClock` to decide
        when latencies, hangs, rate windows and callback retries are over. ``seed``: the state
        to serve instead of the default one with ``config.state_file`` (e.g.
        :func:`seed_for_accounts`)."""
        self.config = config or SandboxConfig()
        self.state = SandboxState(self.config, clock, seed)
        self.faults = FaultInjector(self.state, self.config.faults)
        self.callbacks = CallbackDispatcher(
            clock=self.state.clock,
            auth_token=self._callback_token,
            time_factor=self.config.time_factor,
            sleep=self.sleep,
        )
        self.state.on_settled = self.callbacks.on_settled
        self.base_url = ""
        self._closing: asyncio.Event | None = None
        self._wake: asyncio.Event | None = None
        self._loop_task: asyncio.Task[None] | None = None

    # -- public handle -------------------------------------------------------------------
    @property
    def admin_url(self) -> str:
        return self.base_url + "/_sandbox"

    @property
    def plivo_auth_id(self) -> str:
        return self.state.plivo.auth_id

    @property
    def plivo_auth_token(self) -> str:
        return self.state.plivo.auth_token

    @property
    def plivo_accounts(self) -> dict[str, str]:
        """Every Plivo account's auth id -> its auth token, the default account first."""
        return {auth_id: a.auth_token for auth_id, a in self.state.plivo_accounts.items()}

    @property
    def agentmessage_keys(self) -> dict[str, str]:
        """AgentMessage org id -> a key of it with every scope (orgs without one are left
        out), the default org's being :attr:`agentmessage_api_key`."""
        keys: dict[str, str] = {}
        for key in self.state.agentmessage.keys.values():
            if key.scopes >= set(ALL_SCOPES) and key.org_id not in keys:
                keys[key.org_id] = key.key
        default = self.agentmessage_api_key
        if default in self.state.agentmessage.keys:
            keys[self.state.agentmessage.keys[default].org_id] = default
        return keys

    def _callback_token(self, op: Op) -> str:
        """The auth token of the account whose operation a callback reports."""
        account = self.state.plivo_accounts.get(op.account, self.state.plivo)
        return account.auth_token

    @property
    def agentmessage_api_key(self) -> str:
        keys = self.state.agentmessage.keys
        if DEFAULT_AGENTMESSAGE_KEY in keys:
            return DEFAULT_AGENTMESSAGE_KEY
        full = [k.key for k in keys.values() if k.org_id == DEFAULT_ORG and len(k.scopes) == 3]
        return full[0] if full else next(iter(keys), "")

    def counters(self) -> dict[str, Any]:
        """Request, fault and state-change counters (``GET /_sandbox/counters``)."""
        return self.state.counters_report()

    def set_faults(self, faults: FaultConfig) -> None:
        """Replace the fault configuration; an ongoing 429 burst ends."""
        self.faults.set(faults)

    def switches(self) -> Switches:
        """The readings in force (``GET /_sandbox/switches``)."""
        return self.state.plivo.switches

    def set_switches(self, switches: Switches) -> None:
        """Replace the switches until the next :meth:`reset` (which restores the configured
        ones)."""
        self.state.set_switches(switches)

    def reset(self) -> None:
        """Back to the seeded state, the configured faults, zero counters, no callbacks."""
        self.callbacks.cancel_all()
        self.callbacks.log.clear()
        self.state.reset()
        self.faults = FaultInjector(self.state, self.config.faults)

    # -- lifecycle -----------------------------------------------------------------------
    async def start(self) -> None:
        self._closing = asyncio.Event()
        self._wake = asyncio.Event()
        await self.callbacks.start()
        self._loop_task = asyncio.get_running_loop().create_task(self._settle_loop())

    async def stop(self) -> None:
        if self._closing is not None:
            self._closing.set()
        if self._loop_task is not None:
            self._loop_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop_task
            self._loop_task = None
        await self.callbacks.close()

    def begin_closing(self) -> None:
        """Cut short every latency, hang and callback wait (used on shutdown)."""
        if self._closing is not None:
            self._closing.set()

    async def sleep(self, seconds: float) -> None:
        """Sleep on the sandbox's clock, returning early when the sandbox shuts down."""
        if seconds <= 0:
            return
        if self._closing is None:
            await self.state.clock.sleep(seconds)
            return
        waits = [
            asyncio.ensure_future(self.state.clock.sleep(seconds)),
            asyncio.ensure_future(self._closing.wait()),
        ]
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for wait in waits:
                wait.cancel()

    def kick(self) -> None:
        """Wake the settle loop (a new operation may settle sooner than it planned)."""
        if self._wake is not None:
            self._wake.set()

    async def _settle_loop(self) -> None:
        """Settles operations on time so that callbacks go out when they should."""
        assert self._wake is not None
        while True:
            self.state.advance()
            due = self.state.next_due()
            delay = 1.0 if due is None else min(1.0, max(0.0, due - self.state.now()))
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), delay + 0.001)

    def created(self, ops: list[Op]) -> None:
        """Report new operations: ``created`` callbacks, and wake the settle loop."""
        for op in ops:
            if op.callback is not None:
                self.callbacks.send(op, "created")
        if ops:
            self.kick()


SANDBOX_KEY = web.AppKey("sandbox", Sandbox)
REQUEST_ID = web.RequestKey("request_id", str)
#: the account a provider request is addressed to, for the per-account counters
ACCOUNT = web.RequestKey("account", str)


def new_request_id() -> str:
    return str(uuid.uuid4())


class WireDialect:
    """How one provider words the responses the sandbox makes up itself (a 5xx, a 429 storm,
    the headers of a faulty answer). Not a client of a provider: that is ``bulk.providers``."""

    name: str

    def json_5xx(self, status: int, request_id: str) -> web.Response:
        raise NotImplementedError

    def burst_429(self, sb: Sandbox, request_id: str) -> web.Response:
        raise NotImplementedError

    def fault_headers(self, request_id: str) -> dict[str, str]:
        return {}

    def account(self, request: web.Request, sb: Sandbox) -> str:
        """The account ``request`` is addressed to (a Plivo auth id, an AgentMessage org id),
        or ``unknown``; read before any fault, for the per-account counters."""
        raise NotImplementedError


def provider_route(endpoint: str, dialect: WireDialect, handler: ProviderHandler) -> Callable[
    [web.Request], Awaitable[web.StreamResponse]
]:
    """Wrap ``handler`` in the fault pipeline and the counters for ``endpoint``; ``dialect``
    words the answers the pipeline makes up."""

    async def route(request: web.Request) -> web.StreamResponse:
        sb = request.app[SANDBOX_KEY]
        counters = sb.state.counters
        counters.request(endpoint)
        request[ACCOUNT] = dialect.account(request, sb)
        counters.account(request[ACCOUNT]).requests += 1
        plan = sb.faults.plan(endpoint)
        request_id = new_request_id()
        request[REQUEST_ID] = request_id
        if plan.latency:
            await sb.sleep(plan.latency)
        if plan.burst_429:
            counters.fault(endpoint)
            counters.status(endpoint, 429)
            return dialect.burst_429(sb, request_id)

        async def strike(response: web.Response | None) -> web.StreamResponse:
            """The planned fault, before the handler ran (None) or after it took effect."""
            counters.fault(endpoint)
            resp, label = await execute(
                plan, request, response,
                json_5xx=lambda status: dialect.json_5xx(status, request_id),
                extra_headers=dialect.fault_headers(request_id),
                sleep=sb.sleep,
                hang_seconds=sb.faults.config.hang_seconds,
            )
            counters.status(endpoint, label)
            return resp

        if plan.kind is not None and not plan.after:
            return await strike(None)
        response = await handler(request, sb)
        if plan.kind is not None:
            return await strike(response)
        counters.status(endpoint, response.status)
        return response

    return route


async def read_json(request: web.Request) -> tuple[bool, Any]:
    """``(True, value)`` for a JSON body, ``(True, None)`` for no body, ``(False, None)`` for a
    body that is not JSON."""
    raw = await request.read()
    if not raw.strip():
        return True, None
    try:
        return True, json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return False, None
