"""Options refused before a run starts because they cannot do what they seem to ask."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bulk._errors import ConfigError
from bulk._suggest import refuse_campaign_file

#: options ``bulk status`` takes from the other commands but has no use for, and why
_STATUS_UNUSED = {
    "journal": ("--journal", "it keeps no journal"),
    "dry_run": ("--dry-run", "it sends nothing anyway"),
    "send_until": ("--send-until", "it sends no change"),
    "failures": ("--failures", "it writes the report only"),
}


def check_given(command: str, options: Mapping[str, Any]) -> None:
    """A :class:`ConfigError` (exit 2) for a campaigns file given as the one campaign
    (``--campaign samples/campaigns.csv``), and for an option ``bulk status`` would ignore."""
    if command == "move":
        refuse_campaign_file(options.get("campaign"), "--to", "--campaigns")
        refuse_campaign_file(options.get("from_campaign"), "--from", "--campaigns")
    else:
        refuse_campaign_file(options.get("campaign"), "--campaign", "--campaigns")
    if command != "status":
        return
    for key, (flag, why) in _STATUS_UNUSED.items():
        if options.get(key) not in (None, False):
            raise ConfigError(
                f"bulk status reads only: {flag} has no use there ({why}); leave it out"
            )


__all__ = ["check_given"]
