"""AgentMessage moves, unlinks (detaches) and polling when the state answers lie: the real
sandbox behind a loopback proxy (:func:`tests._helpers.behind_proxy`) that rewrites or
withholds its answers, driving the CLI. The report must hold what the sandbox's state shows,
never a success a lying read made up, and every run must end."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from tests._helpers import (
    ThreadedSandbox,
    behind_proxy,
    run_and_compare,
    run_command,
    where,
    write_csv,
)

#: a single number's resource (its id), not the organisation's list nor a change
_ONE = re.compile(r"^/v1/phone-numbers/[^/]+$")


def _am_error(status: int, code: str, message: str) -> web.Response:
    error = {"code": code, "message": message, "request_id": "proxy", "details": None}
    body = {"success": False, "error": error, "meta": None, "data": None}
    return web.json_response(body, status=status)


def test_a_read_answered_not_found_mid_run_is_no_proof_a_detach_landed(
    tmp_path: Path, sandbox_factory: Callable[..., ThreadedSandbox], no_retry_waits: None
) -> None:
    """The detach's answer is lost (a 500, and it never reached the sandbox); from then on
    every single read of the number answers 404 ``NOT_FOUND`` ("it left the organisation")
    while the organisation's list still shows it. bulk took the 404 as "in no campaign": the
    lost detach was accepted as landed, then settled, and the row ended ``unlinked`` while
    the sandbox still shows the number attached and active."""
    sb = sandbox_factory(seed=3)
    number = "+13125550150"  # attached to alerts
    sent: dict[str, bool] = {}

    def lie(method: str, path: str, body: bytes) -> web.Response | None:
        if method == "DELETE":
            sent["detach"] = True
            return _am_error(500, "INTERNAL_ERROR", "boom")
        if method == "GET" and sent and _ONE.match(path):
            return _am_error(404, "NOT_FOUND", "phone number not found")
        return None

    src = write_csv(tmp_path / "in.csv", "number,campaign", [f"{number},alerts"])
    with behind_proxy(sb, before=lie) as proxied:
        report = run_and_compare(proxied, "agentmessage", tmp_path, "unlink", src)
    (row,) = report.values()
    assert row["outcome"] == "unknown", row
    assert where(sb, "agentmessage")[number] == {"4f1c2d3e-0000-4000-8000-000000000002": "active"}


@pytest.mark.parametrize("order", ["failed-first", "active-first"])
def test_a_number_a_list_shows_twice_with_two_statuses_is_never_settled_by_either(
    order: str,
    tmp_path: Path,
    sandbox_factory: Callable[..., ThreadedSandbox],
    no_retry_waits: None,
) -> None:
    """Every attach settles ``failed``; once one is sent, every list page that shows a number
    ``failed`` shows it twice: as it is, and a copy saying ``active``, in either order. Three
    rows, so the poll reads the campaign's list: bulk kept the last entry, and with ``active``
    last reported ``linked`` though the sandbox shows the attach failed."""
    sb = sandbox_factory(seed=3, fail_rate=1.0, settle_min=0.05, settle_max=0.2)
    numbers = [f"+1650555{n:04d}" for n in range(100, 103)]

    def twice(method: str, path: str, sent: bytes, status: int, body: bytes) -> Any:
        if method != "GET" or path != "/v1/phone-numbers" or status != 200:
            return None
        data = json.loads(body)
        shown = []
        for entry in data["data"]:
            copy = [{**entry, "carrier_line_option_status": "active"}]
            failed = entry.get("carrier_line_option_status") == "failed"
            both = [entry, *copy] if order == "failed-first" else [*copy, entry]
            shown += both if failed else [entry]
        return web.json_response({**data, "data": shown})

    src = write_csv(tmp_path / "in.csv", "number,campaign", [f"{n},marketing" for n in numbers])
    with behind_proxy(sb, after=twice) as proxied:
        report = run_and_compare(proxied, "agentmessage", tmp_path, "link", src)
    assert {r["outcome"] for r in report.values()} <= {"failed", "unknown"}, report


def test_a_number_the_organisation_lists_twice_in_two_campaigns_is_not_attached(
    tmp_path: Path, sandbox_factory: Callable[..., ThreadedSandbox], no_retry_waits: None
) -> None:
    """The organisation's list shows a number of legacy twice under its one id: as it is, and
    then in no campaign. bulk kept the last entry ("in none"), so a ``link`` row attached it to
    marketing, which takes it out of legacy, a campaign the file never named (the very move a
    link row is refused for). Where it is cannot be told: the row fails, nothing is sent."""
    sb = sandbox_factory(seed=3)
    number = "+12125550110"  # attached to legacy

    def twice(method: str, path: str, sent: bytes, status: int, body: bytes) -> Any:
        if method != "GET" or path != "/v1/phone-numbers" or status != 200:
            return None
        data = json.loads(body)
        shown = []
        for entry in data["data"]:
            shown.append(entry)
            if entry["number"] == number:
                shown.append({**entry, "campaign_id": None, "carrier_line_option_status": None})
        return web.json_response({**data, "data": shown})

    src = write_csv(tmp_path / "in.csv", "number,campaign", [f"{number},marketing"])
    with behind_proxy(sb, after=twice) as proxied:
        (row,) = run_and_compare(proxied, "agentmessage", tmp_path, "link", src).values()
    assert row["outcome"] == "failed", row
    assert sb.counters()["numbers"].get(number, {}).get("attach_accepted", 0) == 0
    assert where(sb, "agentmessage")[number] == {"4f1c2d3e-0000-4000-8000-000000000003": "active"}


def test_a_read_whose_campaign_id_is_empty_is_no_proof_a_detach_landed(
    tmp_path: Path, sandbox_factory: Callable[..., ThreadedSandbox], no_retry_waits: None
) -> None:
    """The detach's answer is lost (a 500, and it never reached the sandbox); from then on
    every single read of the number says ``"campaign_id": ""``. bulk's table calls an empty
    campaign_id unreadable, never "in none", but the settlement read it as absent: the lost
    detach was accepted as landed and the row ended ``unlinked``, the number still attached.
    Now the read is unrecognised: the detach is not resent to a number whose campaign cannot
    be read, and the row fails saying it was left attached."""
    sb = sandbox_factory(seed=3)
    number = "+13125550150"  # attached to alerts
    sent: dict[str, bool] = {}

    def lose(method: str, path: str, body: bytes) -> web.Response | None:
        if method == "DELETE":
            sent["detach"] = True
            return _am_error(500, "INTERNAL_ERROR", "boom")
        return None

    def blank(method: str, path: str, body: bytes, status: int, answer: bytes) -> Any:
        if method == "GET" and sent and _ONE.match(path) and status == 200:
            data = json.loads(answer)
            return web.json_response({**data, "data": {**data["data"], "campaign_id": ""}})
        return None

    src = write_csv(tmp_path / "in.csv", "number,campaign", [f"{number},alerts"])
    with behind_proxy(sb, before=lose, after=blank) as proxied:
        (row,) = run_and_compare(proxied, "agentmessage", tmp_path, "unlink", src).values()
    assert row["outcome"] == "failed" and "left attached" in row["reason"], row
    assert where(sb, "agentmessage")[number] == {"4f1c2d3e-0000-4000-8000-000000000002": "active"}


LEGACY, ALERTS = "4f1c2d3e-0000-4000-8000-000000000003", "4f1c2d3e-0000-4000-8000-000000000002"


@pytest.mark.parametrize("lie", ["attach-never-landed", "propagated", "blank-status"])
def test_a_move_whose_answers_lie_is_never_reported_moved(
    lie: str,
    tmp_path: Path,
    sandbox_factory: Callable[..., ThreadedSandbox],
    no_retry_waits: None,
) -> None:
    """Sound before: a move (one attach) answered 200 by the proxy with the number active in
    the new campaign, though the attach never reached the sandbox (its reads show the old
    one); or reads after the attach whose ``carrier_line_option_status`` is an undocumented
    ``propagated`` or ``""``. The row ends ``unknown``, never ``moved``."""
    sb = sandbox_factory(seed=3, settle_min=0.05, settle_max=0.2)
    number = "+12125550110"  # attached to legacy
    sent: dict[str, bool] = {}

    def attach(method: str, path: str, body: bytes) -> web.Response | None:
        if method != "POST":
            return None
        sent["attach"] = True
        if lie != "attach-never-landed":
            return None
        resource = {"id": path.split("/")[3], "number": number, "campaign_id": ALERTS,
                    "carrier_line_option_status": "active"}
        return web.json_response({"success": True, "error": None, "meta": None,
                                  "data": resource})

    def status(method: str, path: str, body: bytes, code: int, answer: bytes) -> Any:
        if lie == "attach-never-landed" or not sent or method != "GET" or code != 200:
            return None
        if not path.startswith("/v1/phone-numbers"):
            return None
        data = json.loads(answer)
        value = "propagated" if lie == "propagated" else ""
        items = data["data"] if isinstance(data["data"], list) else [data["data"]]
        for entry in items:
            if entry["number"] == number:
                entry["carrier_line_option_status"] = value
        return web.json_response(data)

    src = write_csv(tmp_path / "in.csv", "number", [number])
    args = ("--from", "legacy", "--to", "alerts")
    with behind_proxy(sb, before=attach, after=status) as proxied:
        (row,) = run_and_compare(proxied, "agentmessage", tmp_path, "move", src, *args).values()
    assert row["outcome"] == "unknown", row
    held = where(sb, "agentmessage")[number]
    assert held == ({LEGACY: "active"} if lie == "attach-never-landed" else {ALERTS: "active"})


def test_a_campaign_list_whose_cursor_cycles_stops_the_run_and_sends_nothing(
    tmp_path: Path, sandbox_factory: Callable[..., ThreadedSandbox], no_retry_waits: None
) -> None:
    """Sound before: ``X-Next-Cursor`` alternating between two values is a list that would
    be paged forever: planning gives up naming it, nothing is attached, the run ends."""
    sb = sandbox_factory(seed=3)
    turn: dict[str, int] = {"n": 0}

    def cycle(method: str, path: str, body: bytes, status: int, answer: bytes) -> Any:
        if method != "GET" or path != "/v1/campaigns" or status != 200:
            return None
        turn["n"] += 1
        cursor = f"c{turn['n'] % 2}"
        return web.Response(body=answer, headers={"Content-Type": "application/json",
                                                  "X-Next-Cursor": cursor})

    src = write_csv(tmp_path / "in.csv", "number,campaign", ["+16505550100,marketing"])
    def first_page(path_qs: str) -> str:  # every page is the first, under the cycling cursor
        return re.sub(r"[?&]cursor=c[01]", "", path_qs) if "/v1/campaigns" in path_qs else path_qs

    with behind_proxy(sb, path=first_page, after=cycle) as proxied:
        result, _ = run_command(proxied, "agentmessage", tmp_path, "link", src)
    assert result.exit_code not in (0, 1), result.output
    assert "repeated" in result.output and "Traceback" not in result.output
    assert sb.counters()["totals"].get("attach_accepted", 0) == 0


def test_a_campaign_listed_active_that_refuses_every_attach_fails_its_rows_as_refused(
    tmp_path: Path, sandbox_factory: Callable[..., ThreadedSandbox], no_retry_waits: None
) -> None:
    """Sound before: the list says ACTIVE, every attach answers 409 ``CAMPAIGN_NOT_ACTIVE``:
    the rows fail with the provider's code, and the numbers are left as they were."""
    sb = sandbox_factory(seed=3)

    def refuse(method: str, path: str, body: bytes) -> web.Response | None:
        if method == "POST":
            return _am_error(409, "CAMPAIGN_NOT_ACTIVE", "campaign is not active")
        return None

    numbers = [f"+1650555{n:04d}" for n in range(100, 103)]
    src = write_csv(tmp_path / "in.csv", "number,campaign", [f"{n},marketing" for n in numbers])
    with behind_proxy(sb, before=refuse) as proxied:
        report = run_and_compare(proxied, "agentmessage", tmp_path, "link", src)
    for row in report.values():
        assert row["outcome"] == "failed" and "CAMPAIGN_NOT_ACTIVE" in row["reason"], row
    assert not any(where(sb, "agentmessage").get(n) for n in numbers)
