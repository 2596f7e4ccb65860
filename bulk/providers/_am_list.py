"""What an AgentMessage list answer's envelope says beyond its page."""

from __future__ import annotations

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


__all__ = ["list_total"]
