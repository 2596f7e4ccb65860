"""Moves, unlinks and polling on Plivo when the state answers lie: the real sandbox behind a
loopback proxy (:func:`tests._helpers.behind_proxy`) that rewrites or withholds its
reads, driving the CLI. The report must hold what the sandbox's state shows, never a success
a lying read made up, and every run must end."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from tests._helpers import (
    ThreadedSandbox,
    behind_proxy,
    read_report,
    run_and_compare,
    run_command,
    where,
    write_csv,
)

_ONE = re.compile(r"/10dlc/Campaign/([^/]+)/Number/(\d+)/$")


def test_reads_that_never_answer_after_an_unlink_end_it_unknown_at_the_deadline_not_a_hang(
    tmp_path: Path, sandbox_factory: Callable[..., ThreadedSandbox], no_retry_waits: None
) -> None:
    """The unlink is accepted, then every read of the number (and of the campaign's list)
    answers 500 forever: the rows awaiting it were never decided, the run polled forever."""
    sb = sandbox_factory(seed=3)
    sent: dict[str, bool] = {}

    def broken(method: str, path: str, body: bytes) -> web.Response | None:
        if method == "DELETE":
            sent["unlink"] = True
        if method == "GET" and sent and "/Number/" in path:
            return web.json_response({"api_id": "proxy", "error": "boom"}, status=500)
        return None

    src = write_csv(tmp_path / "in.csv", "number,campaign", ["+13125550150,alerts"])
    with behind_proxy(sb, before=broken) as proxied:
        result, path = run_command(proxied, "plivo", tmp_path, "unlink", src)
    assert result.exit_code == 1, result.output
    (row,) = read_report(path).values()
    assert row["outcome"] == "unknown", row


@pytest.mark.parametrize("rows", [1, 3], ids=["single-read", "list"])
def test_a_read_answered_for_another_campaign_is_no_answer_never_a_settle(
    rows: int,
    tmp_path: Path,
    sandbox_factory: Callable[..., ThreadedSandbox],
    no_retry_waits: None,
) -> None:
    """Every link settles FAILED; once a link is sent, every read of marketing (CUOGHIN), a
    single read (one row) or its list (three rows), answers with a body that names another
    campaign (alerts), showing the number COMPLETED there. bulk took it as the number's state
    in marketing and reported ``linked``: the sandbox shows FAILED."""
    sb = sandbox_factory(seed=3, fail_rate=1.0)
    numbers = [f"+1650555{n:04d}" for n in range(100, 100 + rows)]
    sent: dict[str, bool] = {}

    def note(method: str, path: str, body: bytes) -> web.Response | None:
        sent["link"] = sent.get("link", False) or method == "POST"
        return None

    def elsewhere(path: str, data: dict[str, Any]) -> dict[str, Any]:
        if not sent.get("link") or "/CUOGHIN/" not in path:
            return data
        entries = data.get("phone_numbers") or []
        shown = [{"number": e["number"], "status": "COMPLETED"} for e in entries]
        return {**data, "campaign_id": "CRIGC80", "phone_numbers": shown}

    src = write_csv(tmp_path / "in.csv", "number,campaign", [f"{n},marketing" for n in numbers])
    with behind_proxy(sb, before=note, page=elsewhere) as proxied:
        report = run_and_compare(proxied, "plivo", tmp_path, "link", src)
    assert {r["outcome"] for r in report.values()} == {"unknown"}, report


@pytest.mark.parametrize("order", ["failed-first", "completed-first"])
def test_a_number_listed_twice_with_two_statuses_is_never_settled_by_either(
    order: str,
    tmp_path: Path,
    sandbox_factory: Callable[..., ThreadedSandbox],
    no_retry_waits: None,
) -> None:
    """Every link settles FAILED; once a link is sent, every read of the number shows it twice,
    its real status and COMPLETED, in either order. bulk kept the last entry: with COMPLETED
    last it reported ``linked`` though the sandbox shows FAILED."""
    sb = sandbox_factory(seed=3, fail_rate=1.0)
    number = "+16505550100"
    sent: dict[str, bool] = {}

    def note(method: str, path: str, body: bytes) -> web.Response | None:
        sent["link"] = sent.get("link", False) or method == "POST"
        return None

    def twice(path: str, data: dict[str, Any]) -> dict[str, Any]:
        entries = list(data.get("phone_numbers") or [])
        if not sent.get("link") or "/CUOGHIN/" not in path:
            return data
        extra = [{"number": e["number"], "status": "COMPLETED"} for e in entries]
        both = [*entries, *extra] if order == "failed-first" else [*extra, *entries]
        return {**data, "phone_numbers": both}

    src = write_csv(tmp_path / "in.csv", "number,campaign", [f"{number},marketing"])
    with behind_proxy(sb, before=note, page=twice) as proxied:
        report = run_and_compare(proxied, "plivo", tmp_path, "link", src)
    (row,) = report.values()
    assert row["outcome"] == "unknown", row


def test_a_release_whose_unlink_settled_but_is_still_shown_says_the_number_may_be_nowhere(
    tmp_path: Path, sandbox_factory: Callable[..., ThreadedSandbox], no_retry_waits: None
) -> None:
    """A move from legacy to alerts: the unlink from legacy is accepted and settles, but every
    read of legacy keeps showing the number COMPLETED (a stale cache). The row ends
    ``unknown`` (never ``moved``, nothing linked), and the number is in no campaign: the
    reason said only "unlink from the old campaign not settled", as if it were still there."""
    sb = sandbox_factory(seed=3)
    number = "+12125550110"
    sent: dict[str, bool] = {}

    def note(method: str, path: str, body: bytes) -> web.Response | None:
        sent["unlink"] = sent.get("unlink", False) or method == "DELETE"
        return None

    def stale(method: str, path: str, body: bytes, status: int, answer: bytes) -> Any:
        if method == "GET" and sent.get("unlink") and "/CMIGOLD/Number/" in path:
            entries = [{"number": number[1:], "status": "COMPLETED"}]
            return web.json_response({"api_id": "stale", "campaign_id": "CMIGOLD",
                                      "phone_numbers": entries})
        return None

    src = write_csv(tmp_path / "in.csv", "number", [number])
    with behind_proxy(sb, before=note, after=stale) as proxied:
        report = run_and_compare(
            proxied, "plivo", tmp_path, "move", src, "--from", "legacy", "--to", "alerts"
        )
    (row,) = report.values()
    assert row["outcome"] == "unknown", row
    assert where(sb, "plivo").get(number) is None  # in no campaign, and the report says so
    assert sb.counters()["totals"].get("link_accepted", 0) == 0


def test_a_release_whose_answer_is_lost_and_never_read_says_the_number_may_be_nowhere(
    tmp_path: Path, sandbox_factory: Callable[..., ThreadedSandbox], no_retry_waits: None
) -> None:
    """The unlink from legacy lands, its answer is lost (500 after effect), and every read of
    legacy then answers 500: the row ends ``unknown`` out of read rounds, and the number,
    unlinked, is in no campaign; the reason said only that it could not be read."""
    sb = sandbox_factory(seed=3)
    number = "+12125550110"
    sent: dict[str, bool] = {}

    def lose(method: str, path: str, body: bytes, status: int, answer: bytes) -> Any:
        if method == "DELETE":
            sent["unlink"] = True
        if method == "DELETE" or (sent and method == "GET" and "/CMIGOLD/" in path):
            return web.json_response({"api_id": "lost", "error": "boom"}, status=500)
        return None

    src = write_csv(tmp_path / "in.csv", "number", [number])
    with behind_proxy(sb, after=lose) as proxied:
        report = run_and_compare(
            proxied, "plivo", tmp_path, "move", src, "--from", "legacy", "--to", "alerts"
        )
    (row,) = report.values()
    assert row["outcome"] == "unknown", row
    assert where(sb, "plivo").get(number) is None
    assert sb.counters()["totals"].get("unlink_accepted", 0) == 1


def test_a_released_move_whose_link_is_refused_says_so_and_a_rerun_unlinks_nothing_again(
    tmp_path: Path, sandbox_factory: Callable[..., ThreadedSandbox], no_retry_waits: None
) -> None:
    """Sound before: the unlink from legacy settles, the link to alerts is refused. The row
    fails saying the number is in no campaign; the same command run again on the journal
    sends nothing (the row is terminal), so nothing is unlinked twice."""
    sb = sandbox_factory(seed=3)
    number = "+12125550110"

    def refuse(method: str, path: str, body: bytes) -> web.Response | None:
        if method == "POST" and "/CRIGC80/Number/" in path:
            return web.json_response(
                {"api_id": "no", "error": f"The number {number[1:]} is not a valid number"},
                status=400,
            )
        return None

    src = write_csv(tmp_path / "in.csv", "number", [number])
    args = ("--from", "legacy", "--to", "alerts")
    with behind_proxy(sb, before=refuse) as proxied:
        (row,) = run_and_compare(proxied, "plivo", tmp_path, "move", src, *args).values()
        assert row["outcome"] == "failed", row
        assert row["reason"].startswith("unlinked from CMIGOLD; link to CRIGC80 failed"), row
        again, _ = run_command(proxied, "plivo", tmp_path, "move", src, *args)
    assert again.exit_code in (0, 1), again.output
    assert sb.counters()["numbers"][number].get("unlink_accepted") == 1
