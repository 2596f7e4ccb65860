"""A small concurrency helper shared by the engine and the provider adapters."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import TypeVar

import anyio

K = TypeVar("K")
V = TypeVar("V")


async def gather_map(calls: Mapping[K, Callable[[], Awaitable[V]]]) -> dict[K, V]:
    """Run the calls concurrently; results by key, in the mapping's order.

    The first exception raised by a call is re-raised as itself (not wrapped in an
    ``ExceptionGroup``) once the others have been cancelled. Requests still pass the
    engine's meter, so running reads side by side never breaks the rate limit; it only stops
    latency from capping the request rate.
    """
    results: dict[K, V] = {}
    failures: list[BaseException] = []

    async def one(key: K, call: Callable[[], Awaitable[V]], scope: anyio.CancelScope) -> None:
        try:
            results[key] = await call()
        except Exception as exc:
            failures.append(exc)
            scope.cancel()

    async with anyio.create_task_group() as tg:
        for key, call in calls.items():
            tg.start_soon(one, key, call, tg.cancel_scope)
    if failures:
        raise failures[0]
    return {key: results[key] for key in calls}
