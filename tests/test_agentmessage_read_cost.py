"""AgentMessage reads chosen by cost: a campaign's first page tells its size by the
envelope's ``meta.total``, so a few rows into a big campaign read their own numbers instead
of paging the whole campaign (the adapter and the engine against an in-memory organisation
that answers the wire, classified by the adapter's own :func:`classify`)."""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from bulk._journal import Journal, RowRecord
from bulk.engine import EngineConfig
from bulk.engine._run import Engine
from bulk.engine._survey import glance_size
from bulk.providers import Request, Response, Verdict
from bulk.providers.agentmessage import NOT_OWNED, PAGE_SIZE, AgentMessageProvider
from bulk.testing import LoopClock, run_in_virtual_time

CAMPAIGN = "4f1c2d3e-0000-4000-8000-00000000cafe"


class Organisation:
    """Phone-number resources in memory, listed newest first with cursors; every request
    counted by endpoint. ``totals``: whether list envelopes fill ``meta.total``."""

    def __init__(self, others: int, ours: Sequence[str] = (), *, totals: bool = True) -> None:
        self.totals = totals
        self.asked: Counter[str] = Counter()
        # ours in no campaign, the oldest (on the list's last pages), then the others
        self.resources: list[dict[str, Any]] = [self._resource(n, None, None) for n in ours]
        self.resources += [
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

    def _list(self, params: dict[str, str]) -> dict[str, Any]:
        search = params.get("search", "").lstrip("+")
        wanted = [
            r
            for r in reversed(self.resources)
            if ("campaign_id" not in params or r["campaign_id"] == params["campaign_id"])
            and search in r["number"]
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

    async def send(
        self, request: Request, classify_: Any, *, window_closed: Callable[[], bool] | None = None
    ) -> Verdict:
        params = dict(request.params or {})
        self.asked["search" if "search" in params else request.endpoint] += 1
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
    ours = [f"+1415555{i:04d}" for i in range(5)]
    org = Organisation(4000, ours)  # 40 pages of 100
    asked = run_in_virtual_time(_plan, org, ours)
    # the organisation's first page (its size), one search per row to map it to its id;
    # then the campaign's first page and one read per row, where paging the organisation
    # and the campaign would cost 41 + 40 pages
    assert asked == {"list": 2, "search": 5, "get": 5}


def test_without_a_total_the_organisation_and_the_campaign_are_paged() -> None:
    ours = [f"+1415555{i:04d}" for i in range(5)]
    org = Organisation(4000, ours, totals=False)
    asked = run_in_virtual_time(_plan, org, ours)
    assert asked == {"list": 41 + 40}


def test_a_number_no_search_finds_is_refused_only_after_the_whole_organisation_is_read() -> None:
    ours = [f"+1415555{i:04d}" for i in range(3)]
    org = Organisation(4000, ours)
    provider = AgentMessageProvider(org.send)
    stranger = "+12125550100"
    unresolved = run_in_virtual_time(provider.resolve, [*ours, stranger])
    assert unresolved == {stranger: NOT_OWNED}
    # the first page, the searches, then every page: a search is no proof of absence
    assert org.asked == {"list": 1 + 40, "search": 4}


def test_a_job_as_big_as_the_organisation_pages_it_instead_of_searching() -> None:
    ours = [f"+1415555{i:04d}" for i in range(5)]
    org = Organisation(300, ours)  # 3 pages
    provider = AgentMessageProvider(org.send)
    assert run_in_virtual_time(provider.resolve, ours) == {}
    assert org.asked == {"list": 4}
