"""The simulated AgentMessage organizations: keys, campaigns, phone-number resources and the
attach/detach rules (pure, no aiohttp)."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from bulk._clock import Clock, wall_at
from bulk.sandbox._config import Switches
from bulk.sandbox._core import Counters, Op, RateLimiter, Settler, iso, rate_limiter
from bulk.sandbox._numbers import agentmessage_number_id, to_e164
from bulk.sandbox._seed import DEFAULT_ORG, AMSeed, is_uuid

_SEED_EPOCH = datetime(2025, 1, 1, tzinfo=UTC)


class AMError(Exception):
    """An AgentMessage error response: HTTP ``status`` and a stable ``code``."""

    def __init__(
        self, status: int, code: str, message: str, details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details or {}


@dataclass(frozen=True)
class ApiKey:
    key: str
    org_id: str
    scopes: frozenset[str]


@dataclass(eq=False)
class AMCampaign:
    id: str
    name: str
    status: str
    org_id: str
    brand_verified: bool
    use_case: str
    seq: int
    created_at: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "status": self.status,
            "use_case": self.use_case,
            "brand_id": f"brand_{self.org_id}",
            "brand_verification_status": "VERIFIED" if self.brand_verified else "UNVERIFIED",
            "created_at": self.created_at,
            "updated_at": self.created_at,
        }


@dataclass(eq=False)
class AMNumber:
    id: str
    number: str
    org_id: str
    seq: int
    created_at: str
    updated_at: str
    number_type: str = "local"
    assigned: bool = True
    campaign_id: str | None = None
    carrier_line_option_status: str | None = None
    carrier_line_option_propagated_at: str | None = None
    op: Op | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "number": self.number,
            "number_type": self.number_type,
            "inbound_url": None,
            "status_url": None,
            "label": None,
            "campaign_id": self.campaign_id,
            "carrier_line_option_status": self.carrier_line_option_status,
            "carrier_line_option_propagated_at": self.carrier_line_option_propagated_at,
            "sms_enabled": True,
            "mms_enabled": True,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }


def encode_cursor(kind: str, seq: int) -> str:
    return base64.urlsafe_b64encode(f"{kind}:{seq}".encode()).decode().rstrip("=")


def decode_cursor(kind: str, cursor: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        got_kind, _, seq = raw.partition(":")
        if got_kind != kind or not (seq.isascii() and seq.isdigit() and len(seq) <= 18):
            raise ValueError(cursor)  # a cursor the sandbox never issued
        return int(seq)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise AMError(400, "INVALID_INPUT", "cursor is not valid", {"field": "cursor"}) from None


@dataclass
class Page:
    items: list[Any]
    total: int
    offset: int
    next_cursor: str | None


class AgentMessageState:
    """All organizations of the simulated AgentMessage, each with its keys, campaigns,
    numbers and rate limit."""

    def __init__(
        self,
        seed: AMSeed,
        *,
        settler: Settler,
        counters: Counters,
        clock: Clock,
        schedule: Callable[[Op], None],
        rate_limit: int,
        rate_window: float,
        switches: Switches | None = None,
        rate_shape: str = "sliding",
    ) -> None:
        self.switches = switches or Switches()  # read at each request: settable at runtime
        self._settler = settler
        self._counters = counters
        self._clock = clock
        self._schedule = schedule
        self._rate_limit = rate_limit
        self._rate_window = rate_window
        self.rate_limits = dict(seed.rate_limits)  # org -> its own limit
        self.rate_shapes = dict(seed.rate_shapes)  # org -> its own limit's shape
        self._rate_shape = rate_shape
        self.keys = {k.key: ApiKey(k.key, k.org_id, frozenset(k.scopes)) for k in seed.keys}
        self.own_all = seed.own_all  # the default org owns every valid-looking US number
        self.rates: dict[str, RateLimiter] = {}
        self.last_event: dict[str, str] = {}
        self.campaigns: dict[str, AMCampaign] = {}
        self.org_campaigns: dict[str, list[AMCampaign]] = {}
        for i, c in enumerate(seed.campaigns):
            campaign = AMCampaign(c.id, c.name, c.status, c.org_id, c.brand_verified,
                                  c.use_case, i, iso(_SEED_EPOCH + timedelta(minutes=i)))
            self.campaigns[c.id] = campaign
            self.org_campaigns.setdefault(c.org_id, []).append(campaign)
        self.numbers: dict[str, AMNumber] = {}  # id -> resource
        self.owned: dict[tuple[str, str], AMNumber] = {}  # (org id, E.164) -> resource
        self.by_number: dict[str, AMNumber] = {}  # E.164 -> its first owner's resource
        self.org_numbers: dict[str, list[AMNumber]] = {}  # creation (seq) order
        self._seq = 0
        self._latest_created = ""  # no resource is created before an older one
        for n in seed.numbers:
            created = iso(_SEED_EPOCH + timedelta(seconds=self._seq))
            self._create(n.number, n.org_id, created, n.number_type, n.assigned)
        for number, cid, status in seed.attachments:
            org = self.campaigns[cid].org_id
            resource = self.owned.get((org, number)) or self._create(
                number, org, iso(_SEED_EPOCH + timedelta(seconds=self._seq)), "local", True
            )
            resource.campaign_id = cid
            resource.carrier_line_option_status = status
            resource.carrier_line_option_propagated_at = (
                resource.created_at if status in ("active", "detached") else None
            )

    def _create(
        self, number: str, org_id: str, created: str, number_type: str, assigned: bool
    ) -> AMNumber:
        if (org_id, number) in self.owned:
            raise ValueError(f"{number} is owned twice by {org_id}")
        # the list is newest first: a resource's created_at is never older than its elders'
        created = self._latest_created = max(created, self._latest_created)
        first = number not in self.by_number
        number_id = agentmessage_number_id(number, None if first else org_id)
        resource = AMNumber(number_id, number, org_id, self._seq, created, created, number_type,
                            assigned)
        self._seq += 1
        self.numbers[resource.id] = resource
        self.owned[(org_id, number)] = resource
        if first:
            self.by_number[number] = resource
        self.org_numbers.setdefault(org_id, []).append(resource)
        return resource

    # -- auth ----------------------------------------------------------------------------
    def authenticate(self, authorization: str | None) -> ApiKey:
        if not authorization or not authorization.startswith("Bearer "):
            raise AMError(401, "UNAUTHORIZED", "missing or malformed Authorization header")
        key = self.keys.get(authorization[len("Bearer "):].strip())
        if key is None:
            raise AMError(401, "UNAUTHORIZED", "invalid API key")
        return key

    @staticmethod
    def require(key: ApiKey, scope: str) -> None:
        if scope not in key.scopes:
            raise AMError(403, "FORBIDDEN", f"the API key lacks the {scope} scope",
                          {"required_scope": scope})

    def rate_limit(self, org_id: str) -> int:
        """The organization's own limit, else the configured one."""
        return self.rate_limits.get(org_id, self._rate_limit)

    def rate_shape(self, org_id: str) -> str:
        """The shape of the organization's own limit, else the configured one."""
        return self.rate_shapes.get(org_id, self._rate_shape)

    def rate(self, org_id: str) -> RateLimiter:
        window = self.rates.get(org_id)
        if window is None:
            window = self.rates[org_id] = rate_limiter(
                self.rate_shape(org_id), self.rate_limit(org_id), self._rate_window
            )
        return window

    def set_rate_limit(self, org_id: str, limit: int) -> None:
        """The organization's limit from now on (its window keeps the requests it admitted)."""
        self.rate_limits[org_id] = limit
        window = self.rates.get(org_id)
        if window is not None:
            window.set_limit(limit, self._clock.monotonic())

    def org_ids(self) -> list[str]:
        """Every organization a key or a seeded rate limit names, sorted."""
        return sorted({k.org_id for k in self.keys.values()} | set(self.rate_limits))

    # -- numbers -------------------------------------------------------------------------
    def list_numbers(
        self,
        org_id: str,
        *,
        limit: int,
        cursor: str | None,
        campaign_id: str | None,
        search: str | None,
        number_type: str | None,
    ) -> Page:
        before = decode_cursor("n", cursor) if cursor else None
        if search and self.own_all and org_id == DEFAULT_ORG:
            e164 = to_e164(search.strip())
            if e164 is not None and (org_id, e164) not in self.owned:
                self._create(e164, org_id, iso(wall_at(self._clock)), "local",
                             True)
        needle = search.strip().lstrip("+") if search else None
        items: list[AMNumber] = []
        total = offset = 0
        for resource in reversed(self.org_numbers.get(org_id, [])):
            if campaign_id is not None and resource.campaign_id != campaign_id:
                continue
            if number_type is not None and resource.number_type != number_type:
                continue
            if needle and needle not in resource.number:
                continue
            total += 1
            if before is not None and resource.seq >= before:
                offset += 1
            elif len(items) < limit:
                items.append(resource)
        more = total > offset + len(items)
        next_cursor = encode_cursor("n", items[-1].seq) if more and items else None
        return Page(items, total, offset, next_cursor)

    def number(self, org_id: str, number_id: str) -> AMNumber:
        resource = self.numbers.get(number_id)
        if resource is None or resource.org_id != org_id:
            raise AMError(404, "NOT_FOUND", "phone number not found",
                          {"resource": "phone_number", "id": number_id})
        self._counters.number_request(resource.number)
        return resource

    def attach(
        self, org_id: str, number_id: str, body: object, *, now: float, request_id: str
    ) -> tuple[AMNumber, Op | None]:
        """Attach in the documented check order; op ``None`` for an idempotent no-op."""
        campaign_id = body.get("campaign_id") if isinstance(body, dict) else None
        if not isinstance(campaign_id, str) or not is_uuid(campaign_id):
            raise AMError(422, "VALIDATION_FAILED", "campaign_id must be a campaign uuid",
                          {"field": "campaign_id"})
        campaign = self.campaigns.get(campaign_id)
        if campaign is None or campaign.org_id != org_id:
            raise AMError(404, "NOT_FOUND", "campaign not found",
                          {"resource": "campaign", "id": campaign_id})
        if campaign.status != "ACTIVE":
            raise AMError(409, "CAMPAIGN_NOT_ACTIVE", f"campaign is {campaign.status}",
                          {"campaign_id": campaign_id, "status": campaign.status})
        if not campaign.brand_verified:
            raise AMError(409, "BRAND_NOT_VERIFIED", "the campaign's brand is not verified",
                          {"campaign_id": campaign_id})
        resource = self.number(org_id, number_id)
        self._check_assigned(resource)
        if resource.campaign_id == campaign_id and (
            resource.carrier_line_option_status != "failed"
            or self.switches.reattach_failed == "no_change"
        ):
            return resource, None
        return resource, self._change(resource, "attach", campaign_id, now, request_id)

    def detach(
        self, org_id: str, number_id: str, *, now: float, request_id: str
    ) -> tuple[AMNumber, Op | None]:
        resource = self.number(org_id, number_id)
        self._check_assigned(resource)
        if resource.campaign_id is None:
            return resource, None
        return resource, self._change(resource, "detach", None, now, request_id)

    @staticmethod
    def _check_assigned(resource: AMNumber) -> None:
        if not resource.assigned:
            raise AMError(409, "NUMBER_NOT_ASSIGNED",
                          "the phone number is not assigned to the organization",
                          {"id": resource.id})

    def _change(
        self, resource: AMNumber, kind: str, campaign_id: str | None, now: float, request_id: str
    ) -> Op:
        settle_at, failed = self._settler.draw(resource.number, now, can_fail=kind == "attach")
        op = Op("agentmessage", kind, resource.number, campaign_id, now, settle_at, failed,
                request_id, account=resource.org_id)
        stamp = iso(wall_at(self._clock, now))
        resource.campaign_id = campaign_id
        resource.carrier_line_option_status = "pending"
        resource.carrier_line_option_propagated_at = None
        resource.updated_at = stamp
        resource.op = op
        self.last_event[resource.org_id] = stamp
        self._schedule(op)
        self._counters.accepted(resource.number, kind)
        return op

    def apply(self, op: Op) -> bool:
        resource = self.owned.get((op.account, op.number))
        if resource is None or resource.op is not op:
            return False
        assert op.settle_at is not None
        stamp = iso(wall_at(self._clock, op.settle_at))
        if op.kind == "attach":
            resource.carrier_line_option_status = "failed" if op.failed else "active"
        else:
            resource.carrier_line_option_status = "detached"
        resource.carrier_line_option_propagated_at = (
            None if resource.carrier_line_option_status == "failed" else stamp
        )
        resource.updated_at = stamp
        resource.op = None
        self.last_event[resource.org_id] = stamp
        return True

    # -- campaigns -----------------------------------------------------------------------
    def list_campaigns(
        self, org_id: str, *, status: str | None, limit: int, cursor: str | None
    ) -> Page:
        after = decode_cursor("c", cursor) if cursor else None
        items: list[AMCampaign] = []
        total = offset = 0
        for campaign in self.org_campaigns.get(org_id, []):
            if status is not None and campaign.status != status:
                continue
            total += 1
            if after is not None and campaign.seq <= after:
                offset += 1
            elif len(items) < limit:
                items.append(campaign)
        more = total > offset + len(items)
        next_cursor = encode_cursor("c", items[-1].seq) if more and items else None
        return Page(items, total, offset, next_cursor)

    # -- views ---------------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        orgs = sorted(set(self.org_ids()) | set(self.org_numbers))
        return {
            "own_all": self.own_all,
            "orgs": {
                org: {
                    "rate_limit": self.rate_limit(org),
                    "rate_shape": self.rate_shape(org),
                    "keys": [
                        {"key": k.key, "scopes": sorted(k.scopes)}
                        for k in self.keys.values()
                        if k.org_id == org
                    ],
                    "campaigns": [c.to_dict() for c in self.org_campaigns.get(org, [])],
                    "numbers": [
                        {**n.to_dict(), "assigned": n.assigned}
                        for n in self.org_numbers.get(org, [])
                        if n.campaign_id is not None
                        or n.carrier_line_option_status is not None
                        or not n.assigned
                    ],
                    "numbers_owned": len(self.org_numbers.get(org, [])),
                }
                for org in orgs
            },
        }
