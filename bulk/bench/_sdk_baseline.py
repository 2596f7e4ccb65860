"""The way users link numbers today: the official ``plivo`` SDK, one number at a time.

For each number: ``client.campaign.number_link(campaign_id, numbers=[n])``, then
``client.campaign.get_number(campaign_id, n)`` every ``poll`` seconds until the status is
``COMPLETED`` or ``FAILED``. Sequential (``threads=1``) or with a ``ThreadPoolExecutor``. The
SDK does not retry: an exception (a 429 included) ends that number, as a plain script's
``try/except`` would. Runs in the calling (synchronous) thread; the sandbox must live elsewhere
(another process) so that the SDK's blocking calls never stall it.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import plivo
import plivo.rest.client
from plivo import exceptions

SETTLED = ("COMPLETED", "FAILED")


@dataclass(slots=True)
class _Tally:
    requests: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    outcomes: Counter[str] = field(default_factory=Counter)


def _error_kind(exc: BaseException) -> str:
    text = str(exc)
    if "429" in text or "Too many requests" in text:
        return "429"
    return type(exc).__name__


def point_sdk_at(base_url: str) -> None:
    """The SDK builds every URL from this module constant (read by ``RestClient()``)."""
    plivo.rest.client.PLIVO_API_BASE_URI = f"{base_url}/v1/Account"


def _one(
    client: Any, campaign: str, number: str, poll: float, give_up: float, tally: _Tally
) -> None:
    digits = number.lstrip("+")
    tally.requests["link"] += 1
    try:
        client.campaign.number_link(campaign, numbers=[digits])
    except Exception as exc:  # the SDK raises PlivoRestError subclasses
        tally.errors[_error_kind(exc)] += 1
        tally.outcomes["error"] += 1
        return
    deadline = time.monotonic() + give_up
    while time.monotonic() < deadline:
        time.sleep(poll)
        tally.requests["get"] += 1
        try:
            response = client.campaign.get_number(campaign, digits)
        except Exception as exc:
            tally.errors[_error_kind(exc)] += 1
            tally.outcomes["error"] += 1
            return
        status = str(response.phone_numbers[0].status)
        if status in SETTLED:
            tally.outcomes[status.lower()] += 1
            return
    tally.outcomes["timeout"] += 1


def run_sdk(
    base_url: str,
    auth_id: str,
    auth_token: str,
    work: Sequence[tuple[str, str]],
    *,
    threads: int = 1,
    poll: float = 1.0,
    give_up: float = 60.0,
) -> dict[str, Any]:
    """Link ``work`` ((campaign, e164) pairs) the SDK way; wall time, requests and errors."""
    point_sdk_at(base_url)
    local = threading.local()
    tallies: list[_Tally] = []
    lock = threading.Lock()

    def client() -> Any:
        # one client (one requests.Session) per thread: requests' pool holds 10 connections
        if not hasattr(local, "client"):
            local.client = plivo.RestClient(auth_id, auth_token)
            local.tally = _Tally()
            with lock:
                tallies.append(local.tally)
        return local.client

    def task(item: tuple[str, str]) -> None:
        c = client()
        _one(c, item[0], item[1], poll, give_up, local.tally)

    started = time.perf_counter()
    cpu = time.process_time()
    if threads <= 1:
        for item in work:
            task(item)
    else:
        with ThreadPoolExecutor(max_workers=threads) as pool:
            list(pool.map(task, work))
    wall = time.perf_counter() - started
    total = _Tally()
    for t in tallies:
        total.requests.update(t.requests)
        total.errors.update(t.errors)
        total.outcomes.update(t.outcomes)
    return {
        "numbers": len(work),
        "threads": threads,
        "poll_s": poll,
        "wall_s": wall,
        "client_cpu_s": time.process_time() - cpu,
        "requests": dict(total.requests),
        "requests_total": sum(total.requests.values()),
        "errors": dict(total.errors),
        "errors_total": sum(total.errors.values()),
        "rate_limited": total.errors.get("429", 0),
        "outcomes": dict(total.outcomes),
        "linked": total.outcomes.get("completed", 0),
    }


__all__ = ["exceptions", "point_sdk_at", "run_sdk"]
