"""What an AgentMessage list answer's envelope says beyond its page."""

from __future__ import annotations

import math

from bulk.providers._base import Verdict


def list_total(verdict: Verdict) -> int | None:
    """The rows the whole list holds (the envelope's ``meta.total``): a non-negative whole
    number, else None (null, missing, or anything else says nothing of the list's size)."""
    envelope = verdict.data if isinstance(verdict.data, dict) else None
    meta = envelope.get("meta") if envelope is not None else None
    total = meta.get("total") if isinstance(meta, dict) else None
    if isinstance(total, bool) or not isinstance(total, int) or total < 0:
        return None
    return total


def search_instead(numbers: int, total: int | None, page_size: int) -> bool:
    """After the organisation's first page: find ``numbers`` (not on it) by one search each
    rather than by reading the ``total``'s remaining pages? Only when that is fewer requests
    (a search that comes back empty sends the read through every page anyway), and never
    without a total to compare with."""
    if total is None or numbers <= 0:
        return False
    remaining = math.ceil(total / max(1, page_size)) - 1
    return numbers < remaining


__all__ = ["list_total", "search_instead"]
