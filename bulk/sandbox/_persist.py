"""The sandbox's state as a state file (the JSON format of ``--state``), to start another
sandbox where this one stopped.

A provider goes on working while no client is connected: every change still under way when
the state is taken is written as it will settle (a link as COMPLETED or FAILED, an unlink as
gone), except on a number that never settles, whose change stays pending. Counters, the
RNG's position and faults are not kept.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from bulk.sandbox._am_state import AgentMessageState, AMNumber
from bulk.sandbox._plivo_state import PlivoLink, PlivoState
from bulk.sandbox._state import SandboxState


def _plivo_status(link: PlivoLink) -> str | None:
    """The link's status once what is under way settles; None: it will be gone."""
    if link.unlink_op is not None and link.unlink_op.settle_at is not None:
        return None
    if link.link_op is not None and link.link_op.settle_at is not None:
        return "FAILED" if link.link_op.failed else "COMPLETED"
    return link.status


def _plivo(account: PlivoState) -> dict[str, Any]:
    links = []
    for campaign in account.campaigns.values():
        for link in campaign.links.values():
            status = _plivo_status(link)
            if status is not None:
                links.append(
                    {"number": link.number, "campaign_id": link.campaign_id, "status": status}
                )
    return {
        "auth_id": account.auth_id,
        "auth_token": account.auth_token,
        "rate_limit": account.rate.limit,
        "campaigns": [
            {
                "campaign_id": c.campaign_id,
                "alias": c.alias,
                "usecase": c.usecase,
                "registration_status": c.registration_status,
                "brand_id": c.brand_id,
            }
            for c in account.campaigns.values()
        ],
        "unowned": sorted(account.unowned),
        "links": links,
    }


def _attachment(resource: AMNumber) -> dict[str, str] | None:
    """The number's campaign and status once what is under way settles; None: none."""
    op = resource.op
    if op is not None and op.settle_at is not None:
        if op.kind != "attach" or op.campaign_id is None:
            return None  # a detach: settles detached, in no campaign
        status = "failed" if op.failed else "active"
        return {"number": resource.number, "campaign_id": op.campaign_id,
                "carrier_line_option_status": status}
    if resource.campaign_id is None or resource.carrier_line_option_status is None:
        return None
    return {"number": resource.number, "campaign_id": resource.campaign_id,
            "carrier_line_option_status": resource.carrier_line_option_status}


def _agentmessage(am: AgentMessageState) -> dict[str, Any]:
    resources = sorted(am.numbers.values(), key=lambda r: r.seq)  # creation order: same ids
    return {
        "keys": [
            {"key": k.key, "org": k.org_id, "scopes": sorted(k.scopes)} for k in am.keys.values()
        ],
        "campaigns": [
            {
                "id": c.id,
                "name": c.name,
                "status": c.status,
                "org": c.org_id,
                "brand_verified": c.brand_verified,
                "use_case": c.use_case,
            }
            for c in sorted(am.campaigns.values(), key=lambda c: c.seq)
        ],
        "numbers": [
            {"number": r.number, "org": r.org_id, "assigned": r.assigned,
             "number_type": r.number_type}
            for r in resources
        ],
        "own_all": am.own_all,
        "attachments": [a for r in resources if (a := _attachment(r)) is not None],
        "orgs": [{"org": org, "rate_limit": limit} for org, limit in am.rate_limits.items()],
    }


def state_data(state: SandboxState) -> dict[str, Any]:
    """The whole state as a state file's data, every change under way as it will settle."""
    state.advance()
    return {
        "plivo": {"accounts": [_plivo(a) for a in state.plivo_accounts.values()]},
        "agentmessage": _agentmessage(state.agentmessage),
        "always_fail": sorted(state.always_fail),
        "never_settle": sorted(state.never_settle),
    }


def save_state(state: SandboxState, path: Path) -> None:
    """Write :func:`state_data` to ``path`` (a temporary file beside it, renamed over it)."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        temporary.write_text(json.dumps(state_data(state)), encoding="utf-8")
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


__all__ = ["save_state", "state_data"]
