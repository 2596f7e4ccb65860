"""The simulated Plivo 10DLC account: campaigns, links and their rules (pure, no aiohttp)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

from bulk._clock import Clock
from bulk.sandbox._config import Switches
from bulk.sandbox._core import Callback, Counters, Op, Settler, rate_limiter
from bulk.sandbox._numbers import digits, to_e164
from bulk.sandbox._seed import PLIVO_STATUSES, PlivoSeed

MAX_LINK_BATCH = 100
MAX_PAGE = 20
NUMBER_POOL_LIMIT = 49


class PlivoRefusal(Exception):
    """A request the simulated Plivo refuses: HTTP ``status`` with ``{"error": message}``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(eq=False)
class PlivoLink:
    number: str  # E.164
    campaign_id: str
    status: str
    link_op: Op | None = None
    unlink_op: Op | None = None


@dataclass
class PlivoCampaign:
    campaign_id: str
    alias: str
    usecase: str
    registration_status: str
    brand_id: str
    links: dict[str, PlivoLink] = field(default_factory=dict)  # link order
    changed: dict[str, PlivoLink] = field(default_factory=dict)  # last-change order
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(PLIVO_STATUSES, 0))

    def to_dict(self, wall_created: str) -> dict[str, Any]:
        return {
            "brand_id": self.brand_id,
            "campaign_alias": self.alias,
            "campaign_id": self.campaign_id,
            "registration_status": self.registration_status,
            "reseller_id": "",
            "usecase": self.usecase,
            "sub_usecase": "",
            "created_at": wall_created,
        }


class PlivoState:
    """One Plivo account (a parent ``MA…`` or a subaccount ``SA…``): its credentials,
    campaigns, links, owned numbers and rate limit. Every method takes ``now`` from the
    sandbox clock."""

    def __init__(
        self,
        seed: PlivoSeed,
        *,
        settler: Settler,
        counters: Counters,
        clock: Clock,
        schedule: Callable[[Op], None],
        rate_limit: int,
        rate_window: float,
        switches: Switches | None = None,
        max_batch: int = MAX_LINK_BATCH,
        rate_shape: str = "sliding",
    ) -> None:
        self.max_batch = max_batch
        self.switches = switches or Switches()  # read at each request: settable at runtime
        self.auth_id = seed.auth_id
        self.auth_token = seed.auth_token
        self.unowned = set(seed.unowned)
        self.campaigns: dict[str, PlivoCampaign] = {
            c.campaign_id: PlivoCampaign(
                c.campaign_id, c.alias, c.usecase, c.registration_status, c.brand_id
            )
            for c in seed.campaigns
        }
        self.links: dict[str, PlivoLink] = {}  # E.164 -> its one link
        self._settler = settler
        self._counters = counters
        self._clock = clock
        self._schedule = schedule
        self.rate = rate_limiter(seed.rate_shape or rate_shape, rate_limit, rate_window)
        for number, cid, status in seed.links:
            self._add(PlivoLink(number, cid, status))

    # -- helpers -------------------------------------------------------------------------
    def _add(self, link: PlivoLink) -> None:
        campaign = self.campaigns[link.campaign_id]
        campaign.links[link.number] = link
        campaign.changed[link.number] = link
        campaign.counts[link.status] += 1
        self.links[link.number] = link

    def _remove(self, link: PlivoLink) -> None:
        campaign = self.campaigns[link.campaign_id]
        del campaign.links[link.number]
        del campaign.changed[link.number]
        campaign.counts[link.status] -= 1
        del self.links[link.number]

    def _set_status(self, link: PlivoLink, status: str) -> None:
        counts = self.campaigns[link.campaign_id].counts
        counts[link.status] -= 1
        counts[status] += 1
        link.status = status
        self._touch(link)

    def _touch(self, link: PlivoLink) -> None:
        """Move ``link`` to the end of its campaign's last-change order."""
        changed = self.campaigns[link.campaign_id].changed
        del changed[link.number]
        changed[link.number] = link

    def campaign(self, campaign_id: str) -> PlivoCampaign:
        campaign = self.campaigns.get(campaign_id)
        if campaign is None:
            raise PlivoRefusal(404, f"Campaign {campaign_id} not found")
        return campaign

    def check_credentials(self, auth_id: str | None, token: str | None, path_id: str) -> bool:
        """Basic-auth check: well-formed auth id, equal to the path's, and the right token."""
        if auth_id is None or token is None:
            return False
        if len(auth_id) != 20 or auth_id[:2] not in ("MA", "SA"):
            return False
        return auth_id == path_id == self.auth_id and token == self.auth_token

    # -- operations ----------------------------------------------------------------------
    def link(
        self,
        campaign_id: str,
        numbers: object,
        *,
        now: float,
        request_id: str,
        callback: Callback | None,
    ) -> tuple[list[str], list[Op]]:
        """Link a batch; all or nothing. Returns the numbers (E.164) and their new ops."""
        campaign = self.campaign(campaign_id)
        if not isinstance(numbers, list) or not numbers:
            raise PlivoRefusal(400, "numbers is required and must be a non-empty list")
        for raw in numbers:
            e164 = to_e164(raw)
            if e164 is not None:
                self._counters.number_request(e164)
        if len(numbers) > self.max_batch:
            raise PlivoRefusal(
                400, f"A maximum of {self.max_batch} numbers can be linked in one request"
            )
        if campaign.registration_status != "ACTIVE":
            raise PlivoRefusal(
                400,
                f"Campaign {campaign_id} is not active "
                f"(registration_status {campaign.registration_status})",
            )
        batch: list[str] = []
        for raw in numbers:
            e164 = to_e164(raw)
            if e164 is None or e164 in self.unowned:
                shown = digits(e164) if e164 is not None else (
                    raw.lstrip("+") if isinstance(raw, str) else repr(raw)
                )
                raise PlivoRefusal(400, f"The number {shown} is not a valid number")
            if e164 in batch:
                continue  # a duplicate inside one batch is linked once
            existing = self.links.get(e164)
            if existing is not None:
                if existing.campaign_id == campaign_id:
                    if existing.status != "FAILED" or existing.unlink_op is not None:
                        raise PlivoRefusal(
                            400, f"The number {digits(e164)} is already requested for linking"
                        )
                    if self.switches.relink_failed == "refuse":
                        raise PlivoRefusal(
                            400, f"The number {digits(e164)} is already linked to this campaign"
                        )
                else:
                    raise PlivoRefusal(
                        400,
                        f"The number {digits(e164)} is already linked to another campaign",
                    )
            batch.append(e164)
        ops = []
        for e164 in batch:
            existing = self.links.get(e164)
            if existing is not None:  # a FAILED link in this campaign: link it again
                self._remove(existing)
            settle_at, failed = self._settler.draw(e164, now, can_fail=True)
            op = Op("plivo", "link", e164, campaign_id, now, settle_at, failed, request_id,
                    callback, account=self.auth_id)
            self._add(PlivoLink(e164, campaign_id, "PROCESSING", link_op=op))
            self._schedule(op)
            self._counters.accepted(e164, "link")
            ops.append(op)
        return batch, ops

    def page(self, campaign_id: str, limit: int, offset: int) -> list[PlivoLink]:
        campaign = self.campaign(campaign_id)
        order = campaign.changed if self.switches.list_order == "changed" else campaign.links
        return list(islice(order.values(), offset, offset + limit))

    def get(self, campaign_id: str, raw_number: str) -> PlivoLink:
        campaign = self.campaign(campaign_id)
        e164 = to_e164(raw_number)
        if e164 is not None:
            self._counters.number_request(e164)
        link = campaign.links.get(e164) if e164 is not None else None
        if link is None:
            raise PlivoRefusal(
                404, f"The number {raw_number.lstrip('+')} is not linked to this campaign"
            )
        return link

    def unlink(
        self,
        campaign_id: str,
        raw_number: str,
        *,
        now: float,
        request_id: str,
        callback: Callback | None,
    ) -> tuple[str, Op | None]:
        """Start unlinking. A repeat while one is pending changes nothing (op ``None``), or is
        refused under ``unlink_while_pending="refuse"``."""
        link = self.get(campaign_id, raw_number)
        if link.unlink_op is not None:
            if self.switches.unlink_while_pending == "refuse":
                raise PlivoRefusal(
                    400, f"The number {digits(link.number)} is already requested for unlinking"
                )
            return link.number, None
        settle_at, _ = self._settler.draw(link.number, now, can_fail=False)
        op = Op("plivo", "unlink", link.number, campaign_id, now, settle_at, False, request_id,
                callback, account=self.auth_id)
        link.unlink_op = op
        self._touch(link)
        self._schedule(op)
        self._counters.accepted(link.number, "unlink")
        return link.number, op

    def apply(self, op: Op) -> bool:
        """Settle ``op`` if it is still current; True when it changed something."""
        link = self.links.get(op.number)
        if link is None:
            return False
        if op.kind == "link" and link.link_op is op:
            self._set_status(link, "FAILED" if op.failed else "COMPLETED")
            link.link_op = None
            return True
        if op.kind == "unlink" and link.unlink_op is op:
            self._remove(link)
            return True
        return False

    # -- views ---------------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        return {
            "auth_id": self.auth_id,
            "rate_limit": self.rate.limit,
            "rate_shape": self.rate.shape,
            "unowned": sorted(self.unowned),
            "campaigns": {
                cid: {
                    "campaign_alias": c.alias,
                    "usecase": c.usecase,
                    "registration_status": c.registration_status,
                    "summary": dict(c.counts),
                    "numbers": [
                        {
                            "number": link.number,
                            "status": link.status,
                            "unlinking": link.unlink_op is not None,
                        }
                        for link in c.links.values()
                    ],
                }
                for cid, c in self.campaigns.items()
            },
        }
