"""``seed_for_accounts``: the default state plus further Plivo accounts and AgentMessage
organizations, each a copy of the default one's campaigns (pure)."""

from __future__ import annotations

import copy
import hashlib
import re
import uuid
from collections.abc import Mapping
from types import MappingProxyType

from bulk.sandbox._seed import (
    ALL_SCOPES,
    DEFAULT_ORG,
    AMCampaignSeed,
    AMKeySeed,
    AMNumberSeed,
    AMSeed,
    PlivoSeed,
    Seed,
    StateFileError,
    check_seed,
    default_seed,
)

_NONE: Mapping[str, int | None] = MappingProxyType({})
_ORG_NAME = re.compile(r"[A-Za-z0-9_.-]+")  # what an accounts file's names may hold


def plivo_token(auth_id: str) -> str:
    """The auth token :func:`seed_for_accounts` gives a Plivo account it adds."""
    return f"sandbox-token-{auth_id}"


def agentmessage_key(org_id: str) -> str:
    """The full-scope key :func:`seed_for_accounts` gives an organization it adds:
    ``am_live_sandbox`` and 20 hex digits derived from the org id."""
    return "am_live_sandbox" + hashlib.sha256(org_id.encode()).hexdigest()[:20]


def _limit(value: int | None, where: str) -> int | None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                              or value < 0):
        raise StateFileError(f"{where}: the rate limit must be an integer >= 0 or None")
    return value


def seed_for_accounts(
    plivo: Mapping[str, int | None] = _NONE,
    agentmessage: Mapping[str, int | None] = _NONE,
    *,
    base: Seed | None = None,
) -> Seed:
    """``base`` (default: the default state) plus accounts, validated.

    ``plivo``: auth id -> its rate limit (requests per ``plivo_rate_window``; ``None``: the
    configured ``plivo_rate_limit``). A new auth id gets the default account's campaigns
    (same ids and aliases), unowned numbers, no links, and the token :func:`plivo_token`; an
    auth id already there (e.g. the default ``MASANDBOXAUTHID00001``) only gets the limit.

    ``agentmessage``: name -> rate limit (per ``agentmessage_rate_window``; ``None``: the
    configured one) of the organization ``org_<name>``. A new one gets the key
    :func:`agentmessage_key` (every scope), the default organization's campaigns (same names
    and statuses, new ids ``uuid5(NAMESPACE_URL, "<org>/<name>")``), the same numbers as the
    default organization (its own resources, so sample numbers can be attached in each) and
    no attachments; an existing one (``sandbox``: ``org_sandbox``) only gets the limit.
    """
    seed = copy.deepcopy(base) if base is not None else default_seed()
    template = seed.plivo
    for auth_id, limit in plivo.items():
        where = f"seed_for_accounts: plivo {auth_id!r}"
        existing = next((a for a in seed.plivo_accounts if a.auth_id == auth_id), None)
        if existing is None:
            existing = PlivoSeed(
                auth_id=auth_id,
                auth_token=plivo_token(auth_id),
                campaigns=copy.deepcopy(template.campaigns),
                unowned=set(template.unowned),
            )
            seed.plivo_accounts.append(existing)
        existing.rate_limit = _limit(limit, where)
    for name, limit in agentmessage.items():
        where = f"seed_for_accounts: agentmessage {name!r}"
        if not _ORG_NAME.fullmatch(name):
            raise StateFileError(f"{where}: a name is letters, digits, _, - and . only")
        _add_org(seed.agentmessage, f"org_{name}", _limit(limit, where))
    check_seed(seed)
    return seed


def _add_org(am: AMSeed, org_id: str, limit: int | None) -> None:
    """A copy of the default organization named ``org_id`` unless it exists; its limit."""
    if org_id not in {k.org_id for k in am.keys}:
        am.keys.append(AMKeySeed(agentmessage_key(org_id), org_id, ALL_SCOPES))
        am.campaigns += [
            AMCampaignSeed(
                id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"{org_id}/{c.name}")),
                name=c.name,
                status=c.status,
                org_id=org_id,
                brand_verified=c.brand_verified,
                use_case=c.use_case,
            )
            for c in am.campaigns
            if c.org_id == DEFAULT_ORG
        ]
        am.numbers += [
            AMNumberSeed(n.number, org_id=org_id, assigned=n.assigned, number_type=n.number_type)
            for n in am.numbers
            if n.org_id == DEFAULT_ORG
        ]
    if limit is None:
        am.rate_limits.pop(org_id, None)
    else:
        am.rate_limits[org_id] = limit
