"""Plivo status callbacks: signed with Plivo's V2 scheme and retried on a schedule."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import secrets
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aiohttp
from yarl import URL

from bulk._clock import Clock, wall_at
from bulk.sandbox._core import Op, iso
from bulk.sandbox._numbers import digits

#: Seconds between attempts, before scaling by ``time_factor``: the first attempt goes at
#: once, then up to three retries 60, 120 and 240 seconds apart.
RETRY_DELAYS = (60.0, 120.0, 240.0)
ATTEMPT_TIMEOUT = 10.0


def sign_v2(url: str, nonce: str, auth_token: str) -> str:
    """Plivo's X-Plivo-Signature-V2: base64 HMAC-SHA256 over the URL (scheme, host and path,
    no query) followed by the nonce, keyed with the auth token."""
    parts = urlsplit(url)
    base = urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))
    mac = hmac.new(auth_token.encode(), (base + nonce).encode(), hashlib.sha256)
    return base64.b64encode(mac.digest()).decode()


def payload(op: Op, status: str, clock: Clock) -> dict[str, str]:
    """The callback fields (documented in WIRE.md)."""
    return {
        "api_id": op.request_id,
        "campaign_id": op.campaign_id or "",
        "number": digits(op.number),
        "operation": op.kind,
        "status": status,
        "timestamp": iso(wall_at(clock)),
    }


class CallbackDispatcher:
    """Sends callbacks in background tasks and logs every attempt."""

    def __init__(
        self,
        *,
        clock: Clock,
        auth_token: Callable[[Op], str],
        time_factor: float,
        sleep: Callable[[float], Awaitable[None]],
    ) -> None:
        self._clock = clock
        self._auth_token = auth_token
        self.time_factor = time_factor
        self._sleep = sleep
        self._session: aiohttp.ClientSession | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.log: list[dict[str, Any]] = []

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=ATTEMPT_TIMEOUT)
        )

    async def close(self) -> None:
        self.cancel_all()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()
            self._session = None

    def cancel_all(self) -> None:
        for task in list(self._tasks):
            task.cancel()

    def send(self, op: Op, status: str) -> None:
        """Queue the ``status`` callback of ``op`` (which must carry a callback)."""
        if op.callback is None or self._session is None:
            return
        task = asyncio.get_running_loop().create_task(self._deliver(op, status))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def on_settled(self, ops: list[Op]) -> None:
        for op in ops:
            if op.provider == "plivo" and op.callback is not None:
                self.send(op, "failed" if op.failed else "success")

    async def _deliver(self, op: Op, status: str) -> None:
        assert op.callback is not None
        body = payload(op, status, self._clock)
        delays = (0.0, *(d * self.time_factor for d in RETRY_DELAYS))
        for attempt, delay in enumerate(delays, start=1):
            if delay:
                await self._sleep(delay)
            ok = await self._attempt(op, status, body, attempt)
            if ok:
                return

    async def _attempt(self, op: Op, status: str, body: dict[str, str], attempt: int) -> bool:
        assert op.callback is not None and self._session is not None
        url = op.callback.url
        nonce = secrets.token_hex(10)
        headers = {
            "X-Plivo-Signature-V2": sign_v2(url, nonce, self._auth_token(op)),
            "X-Plivo-Signature-V2-Nonce": nonce,
            "User-Agent": "PlivoSandbox/1.0",
        }
        entry: dict[str, Any] = {
            "account": op.account,
            "url": url,
            "method": op.callback.method,
            "operation": op.kind,
            "number": op.number,
            "status": status,
            "attempt": attempt,
            "at": iso(wall_at(self._clock)),
            "http_status": None,
            "error": None,
        }
        try:
            if op.callback.method == "GET":
                request = self._session.get(URL(url).update_query(body), headers=headers)
            else:
                request = self._session.post(url, json=body, headers=headers)
            async with request as resp:
                await resp.read()
                entry["http_status"] = resp.status
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            entry["error"] = f"{type(exc).__name__}: {exc}"
        self.log.append(entry)
        return bool(entry["http_status"] == 200)
