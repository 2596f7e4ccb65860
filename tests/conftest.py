"""Shared fixtures: a real sandbox on loopback in a background thread, for CLI-level tests."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import pytest
import stamina
from aiohttp import web

from bulk.sandbox import AdminClient, FaultConfig, SandboxConfig, run_sandbox


@dataclass
class ThreadedSandbox:
    base_url: str
    plivo_auth_id: str
    plivo_auth_token: str
    agentmessage_api_key: str
    #: every Plivo account's auth id -> its token
    plivo_accounts: dict[str, str] = field(default_factory=dict)

    def admin(self) -> AdminClient:
        return AdminClient(self.base_url)

    def counters(self) -> Any:
        return self.admin().counters()

    def state(self) -> Any:
        return self.admin().state()

    def env(self, provider: str) -> dict[str, str]:
        if provider == "plivo":
            return {"PLIVO_AUTH_ID": self.plivo_auth_id, "PLIVO_AUTH_TOKEN": self.plivo_auth_token}
        return {"AGENTMESSAGE_API_KEY": self.agentmessage_api_key}


@contextmanager
def threaded_sandbox(config: SandboxConfig, seed: Any = None) -> Iterator[ThreadedSandbox]:
    """Serve a sandbox from its own event loop in a daemon thread (``seed``: its state, e.g.
    :func:`bulk.sandbox.seed_for_accounts`, instead of the default one)."""
    ready = threading.Event()
    stop: asyncio.Event | None = None
    loop: asyncio.AbstractEventLoop | None = None
    holder: dict[str, ThreadedSandbox] = {}
    failure: list[BaseException] = []

    async def serve() -> None:
        nonlocal stop, loop
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        async with run_sandbox(config, **({} if seed is None else {"seed": seed})) as sb:
            holder["sb"] = ThreadedSandbox(
                sb.base_url,
                sb.plivo_auth_id,
                sb.plivo_auth_token,
                sb.agentmessage_api_key,
                dict(getattr(sb, "plivo_accounts", {})),
            )
            ready.set()
            await stop.wait()

    def main() -> None:
        try:
            anyio.run(serve, backend="asyncio")
        except BaseException as exc:  # pragma: no cover - surfaced below
            failure.append(exc)
            ready.set()

    thread = threading.Thread(target=main, daemon=True)
    thread.start()
    ready.wait(15)
    if failure:
        raise failure[0]
    try:
        yield holder["sb"]
    finally:
        assert loop is not None and stop is not None
        loop.call_soon_threadsafe(stop.set)
        thread.join(10)


@pytest.fixture
def sandbox_factory() -> Iterator[Callable[..., ThreadedSandbox]]:
    stack: list[Any] = []

    def make(**kwargs: Any) -> ThreadedSandbox:
        faults = kwargs.pop("faults", None)
        config = SandboxConfig(
            settle_min=kwargs.pop("settle_min", 0.05),
            settle_max=kwargs.pop("settle_max", 0.3),
            agentmessage_rate_limit=kwargs.pop("agentmessage_rate_limit", 1000),
            faults=FaultConfig(**faults) if isinstance(faults, dict) else (faults or FaultConfig()),
            **kwargs,
        )
        cm = threaded_sandbox(config)
        sb = cm.__enter__()
        stack.append(cm)
        return sb

    yield make
    for cm in reversed(stack):
        cm.__exit__(None, None, None)


@pytest.fixture
def no_retry_waits() -> Iterator[None]:
    """stamina's testing switch: retries happen at once (attempt counts stay as configured)."""
    stamina.set_testing(True, attempts=5, cap=True)
    yield
    stamina.set_testing(False)


def write_csv(path: Path, header: str, rows: list[str]) -> Path:
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


@asynccontextmanager
async def on_loopback(app: web.Application) -> AsyncIterator[str]:
    """Serve ``app`` on a free loopback port for the block; yields its base URL."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


#: the sandbox endpoints whose requests change a number's campaign
CHANGE_ENDPOINTS = ("plivo.link", "plivo.unlink", "agentmessage.attach", "agentmessage.detach")


def change_requests(sb: ThreadedSandbox) -> int:
    """How many requests that change something (link, unlink, attach, detach) reached the
    sandbox, whatever their answer."""
    endpoints = sb.counters()["endpoints"]
    return sum(endpoints.get(name, {}).get("requests", 0) for name in CHANGE_ENDPOINTS)
