"""AgentMessage reads chosen by cost: a campaign's first page tells its size by the
envelope's ``meta.total``, so a few rows into a big campaign read their own numbers instead
of paging the whole campaign (the adapter and the engine against an in-memory organisation
that answers the wire, classified by the adapter's own :func:`classify`)."""

from __future__ import annotations

import json
import uuid
from collections import Counter
from typing import Any

from bulk._journal import Journal, RowRecord
from bulk.engine import EngineConfig
from bulk.engine._run import Engine
from bulk.engine._survey import glance_size
from bulk.providers import Request, Response, Verdict
from bulk.providers.agentmessage import PAGE_SIZE, AgentMessageProvider
from bulk.testing import LoopClock, run_in_virtual_time

CAMPAIGN = "4f1c2d3e-0000-4000-8000-00000000cafe"


class Organisation:
    """Phone-number resources in memory, listed newest first with cursors; every request
    counted by endpoint. ``totals``: whether list envelopes fill ``meta.total``."""

    def __init__(self, others: int, *, totals: bool = True) -> None:
        self.totals = totals
        self.asked: Counter[str] = Counter()
        self.resources: list[dict[str, Any]] = [
            self._resource(f"+1999{i:07d}", CAMPAIGN, "active") for i in range(others)
        ]

    @staticmethod
    def _resource(number: str, campaign: str | None, status: str | None) -> dict[str, Any]:
        return {
            "id": str(uuid.uuid5(uuid.NAMESPACE_URL, number)),
            "number": number,
            "campaign_id": campaign,
            "carrier_line_option_status": status,
        }

    def own(self, numbers: list[str]) -> None:
        self.resources.extend(self._resource(n, None, None) for n in numbers)

    def _list(self, params: dict[str, str]) -> dict[str, Any]:
        wanted = [
            r
            for r in reversed(self.resources)
            if "campaign_id" not in params or r["campaign_id"] == params["campaign_id"]
        ]
        start = int(params.get("cursor", "0"))
        limit = int(params.get("limit", "20"))
        end = start + limit
        meta = {
            "total": len(wanted) if self.totals else None,
            "limit": limit,
            "offset": None,
            "next_cursor": str(end) if end < len(wanted) else None,
        }
        return {"success": True, "error": None, "meta": meta, "data": wanted[start:end]}

    def _one(self, number_id: str) -> dict[str, Any]:
        found = next(r for r in self.resources if r["id"] == number_id)
        return {"success": True, "error": None, "meta": None, "data": found}

    async def send(self, request: Request, classify_: Any) -> Verdict:
        self.asked[request.endpoint] += 1
        params = dict(request.params or {})
        if request.method == "GET" and request.path == "/v1/phone-numbers":
            body = self._list(params)
        elif request.method == "GET":
            body = self._one(request.path.rsplit("/", 1)[1])
        else:
            raise AssertionError(f"a dry run sent {request.method} {request.path}")
        response = Response(200, {"content-type": "application/json"}, json.dumps(body).encode())
        verdict: Verdict = classify_(request, response)
        return verdict


async def _plan(org: Organisation, numbers: list[str]) -> Counter[str]:
    """Plan linking ``numbers`` into the campaign; the requests it cost, by endpoint."""
    provider = AgentMessageProvider(org.send)
    provider._campaigns = {CAMPAIGN: {"id": CAMPAIGN, "status": "ACTIVE"}}
    journal = Journal.open(":memory:", {"job": "testing"})
    journal.seed(RowRecord(i, n, "link", CAMPAIGN, None) for i, n in enumerate(numbers, 1))
    engine = Engine(provider, journal, EngineConfig(), clock=LoopClock())
    plan = await engine.plan()
    journal.close()
    assert len(plan.to_link[CAMPAIGN]) == len(numbers)
    return org.asked


def test_a_campaigns_first_page_tells_its_size_by_the_envelopes_total() -> None:
    org = Organisation(450)
    provider = AgentMessageProvider(org.send)
    glance = run_in_virtual_time(provider.campaign_glance, CAMPAIGN)
    assert len(glance.members) == PAGE_SIZE
    assert glance_size(glance) == 450


def test_a_list_without_a_total_leaves_the_size_unknown() -> None:
    org = Organisation(450, totals=False)
    glance = run_in_virtual_time(AgentMessageProvider(org.send).campaign_glance, CAMPAIGN)
    assert glance_size(glance) is None


def test_five_rows_into_a_big_campaign_read_five_numbers_not_every_page() -> None:
    org = Organisation(4000)  # 40 pages of 100
    ours = [f"+1415555{i:04d}" for i in range(5)]
    org.own(ours)
    asked = run_in_virtual_time(_plan, org, ours)
    # the organisation's list maps numbers to ids (41 pages); then the campaign's first page
    # and one read per row, where paging the campaign would cost 40 pages
    assert asked["get"] == 5
    assert asked["list"] == 41 + 1


def test_without_a_total_the_campaign_is_paged_as_before() -> None:
    org = Organisation(4000, totals=False)
    ours = [f"+1415555{i:04d}" for i in range(5)]
    org.own(ours)
    asked = run_in_virtual_time(_plan, org, ours)
    assert asked["get"] == 0
    assert asked["list"] == 41 + 40
