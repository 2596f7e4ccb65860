"""A small synchronous client for the sandbox's admin API (tests, benchmarks, scripts)."""

from __future__ import annotations

import json
import urllib.request
from typing import Any


class AdminClient:
    """``GET``/``POST`` the sandbox's ``/_sandbox`` endpoints from any thread or process."""

    def __init__(self, base_url: str, *, timeout: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout

    def call(self, path: str, body: dict[str, Any] | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            f"{self.base_url}/_sandbox/{path}",
            data=data,
            method="POST" if data is not None else "GET",
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=self.timeout) as response:
            return json.loads(response.read() or b"null")

    def counters(self, *, numbers: bool = True) -> Any:
        """The counters; without ``numbers`` the totals only (cheap to poll)."""
        return self.call("counters" if numbers else "counters?numbers=0")

    def state(self) -> Any:
        return self.call("state")

    def reset(self) -> None:
        self.call("reset", {})

    def set_faults(self, faults: dict[str, Any]) -> None:
        self.call("faults", faults)

    def switches(self) -> Any:
        return self.call("switches")

    def set_switches(self, switches: dict[str, Any]) -> Any:
        return self.call("switches", switches)

    def set_rate_limit(self, account: str, limit: int) -> Any:
        """An account's (Plivo auth id) or organization's (AgentMessage org id) limit from now
        on, until a reset (``POST /_sandbox/rate-limit``)."""
        return self.call("rate-limit", {"account": account, "rate_limit": limit})
