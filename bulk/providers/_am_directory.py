"""The AgentMessage organisation as bulk last saw it: synchronous and pure, no request in
sight. The adapter (:mod:`bulk.providers.agentmessage`) fills it from the organisation's
number list and consults it before every change."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from bulk.providers._am_wire import (
    AMBIGUOUS,
    CAMPAIGN_CODES,
    NOT_OWNED,
    error_code,
    settlement,
    to_e164,
)
from bulk.providers._base import (
    UNREADABLE_CAMPAIGN,
    Kind,
    NumberState,
    Verdict,
    merge_seen,
)


@dataclass(slots=True)
class NumberRecord:
    """What bulk last saw of one phone-number resource."""

    id: str
    campaign_id: str | None
    status: str | None

    @classmethod
    def of(cls, resource: Mapping[str, Any]) -> NumberRecord | None:
        number_id = resource.get("id")
        if not isinstance(number_id, str) or not number_id:
            return None
        campaign = resource.get("campaign_id", UNREADABLE_CAMPAIGN)
        if campaign is not None and not (isinstance(campaign, str) and campaign.strip()):
            campaign = UNREADABLE_CAMPAIGN  # missing, empty, a number, a list: never "none"
        status = resource.get("carrier_line_option_status")
        return cls(number_id, campaign, status if isinstance(status, str) and status else None)


@dataclass(slots=True)
class Directory:
    """The organisation as bulk last saw it: synchronous and pure, no request in sight.

    ``numbers`` maps E.164 -> :class:`NumberRecord` (id, campaign, carrier status);
    ``blocked`` maps a campaign to the reason every attach to it is refused (after
    ``CAMPAIGN_NOT_ACTIVE`` or ``BRAND_NOT_VERIFIED``, later rows are refused without a request).
    """

    numbers: dict[str, NumberRecord] = field(default_factory=dict)
    listed: bool = False
    blocked: dict[str, str] = field(default_factory=dict)
    #: resource id -> the number it was first listed as
    owners: dict[str, str] = field(default_factory=dict)
    #: numbers the provider listed under two ids (or whose id it listed for two numbers):
    #: which resource is the number cannot be told, so none is changed
    ambiguous: set[str] = field(default_factory=set)

    def learn(self, resource: Mapping[str, Any]) -> NumberRecord | None:
        """Remember one phone-number resource; None when it is not one, or when it names a
        known number under another id or a known id for another number (a number is never
        re-filed under another resource: its next change would go there)."""
        number = resource.get("number")
        record = NumberRecord.of(resource)
        if record is None or not isinstance(number, str) or not number:
            return None
        e164 = to_e164(number)
        known = self.numbers.get(e164)
        owner = self.owners.setdefault(record.id, e164)
        if (known is not None and known.id != record.id) or owner != e164:
            self.ambiguous.update({e164, owner})
            return None
        self.numbers[e164] = record
        return record

    def about(self, resource: Mapping[str, Any], number: str) -> bool:
        """Whether a resource answered for ``number`` is that number's (its id and number)."""
        record = self.numbers.get(number)
        named = resource.get("number")
        return (
            record is not None
            and resource.get("id") == record.id
            and isinstance(named, str)
            and to_e164(named) == number
        )

    def learn_all(self, resources: Iterable[Mapping[str, Any]]) -> None:
        """Remember one read of the organisation's list. A number it shows twice (under its
        one id) in two campaigns, or in one and in none, is in a campaign that cannot be told
        (:data:`UNREADABLE_CAMPAIGN`): whichever entry came last, it is never "in none"."""
        campaigns: dict[str, set[str | None]] = {}
        for resource in resources:
            record = self.learn(resource)
            if record is not None:
                number = to_e164(str(resource["number"]))
                campaigns.setdefault(number, set()).add(record.campaign_id)
        for number, seen in campaigns.items():
            if len(seen) > 1:
                self.numbers[number].campaign_id = UNREADABLE_CAMPAIGN

    def unowned(self, numbers: Iterable[str]) -> dict[str, str]:
        """Numbers the organisation does not own (or lists ambiguously), with the reason."""
        refused = {n: NOT_OWNED for n in numbers if n not in self.numbers}
        for n in numbers:
            if n in self.ambiguous:
                refused[n] = AMBIGUOUS
        return refused

    def campaign_of(self, number: str) -> str | None:
        record = self.numbers.get(number)
        return record.campaign_id if record else None

    def note_refusal(self, campaign_id: str, verdict: Verdict) -> None:
        """After an attach refusal that every attach to the campaign would meet, block it."""
        if verdict.kind is Kind.REFUSED and error_code(verdict) in CAMPAIGN_CODES:
            self.blocked[campaign_id] = verdict.reason or str(error_code(verdict))

    def members(
        self, campaign_id: str, resources: Iterable[Mapping[str, Any]]
    ) -> dict[str, NumberState]:
        """A campaign's filtered list as number -> state (remembering each resource). A
        number the list shows twice with two states settles nothing (:func:`seen_twice`),
        whichever entry came last."""
        found: dict[str, NumberState] = {}
        for resource in resources:
            if self.learn(resource) is not None:
                number = to_e164(str(resource["number"]))
                merge_seen(found, {number: settlement(resource, campaign_id)})
        return found
