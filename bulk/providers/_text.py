"""Small pure helpers the provider modules share for reading bodies."""

from __future__ import annotations

import math
import re
from typing import Any

from bulk.providers._base import Response

_TITLE = re.compile(rb"<title>(.*?)</title>", re.IGNORECASE | re.DOTALL)


def json_or_none(response: Response) -> Any:
    """The body as JSON, or None when it is not JSON (truncated, HTML, empty)."""
    try:
        return response.json()
    except ValueError:
        return None


def describe_unreadable(response: Response) -> str:
    """A short, safe description of a body that is not the JSON we expected."""
    if not response.body:
        return f"HTTP {response.status} with an empty body"
    title = _TITLE.search(response.body[:4096])
    if title:
        text = title.group(1).decode("utf-8", "replace").strip()
        return f"HTTP {response.status} with a non-JSON body ({text[:80]})"
    return f"HTTP {response.status} with an unreadable body ({len(response.body)} bytes)"


def retry_after_seconds(raw: object) -> float | None:
    """A ``Retry-After`` value as seconds: delay-seconds (RFC 9110: whole seconds; fractions
    tolerated), finite and not negative. Anything else (an HTTP-date, ``inf``, ``nan``, a
    negative number, text, a bool) is None: the caller's own pause applies."""
    if raw is None or isinstance(raw, bool):
        return None
    try:
        seconds = float(raw) if isinstance(raw, (int, float, str)) else math.nan
    except ValueError:
        return None
    return seconds if math.isfinite(seconds) and seconds >= 0 else None
