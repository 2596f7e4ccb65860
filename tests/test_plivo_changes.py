"""Plivo's change answers (link, unlink) as a lying or broken provider gives them: the real
sandbox behind a loopback proxy (:func:`tests._helpers.behind_proxy`) that answers some
changes itself or rewrites the sandbox's answers, driving the CLI. Every run must end, keep
every row in the report, report only what the sandbox shows, and change nothing twice."""

from __future__ import annotations

import base64
import http.server
import json
import re
import threading
import urllib.request
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from aiohttp import web

from tests._helpers import (
    ThreadedSandbox,
    behind_proxy,
    read_report,
    run_and_compare,
    run_command,
    write_csv,
)

_LINK = re.compile(r"/10dlc/Campaign/[^/]+/Number/$")


def _refusal(text: str, status: int = 400) -> web.Response:
    return web.json_response({"api_id": "proxy", "error": text}, status=status)


def test_a_size_refusal_that_comes_even_for_one_number_fails_it_instead_of_a_loop(
    tmp_path: Path, sandbox_factory: Callable[..., ThreadedSandbox], no_retry_waits: None
) -> None:
    """Every link refused "too many numbers", even a link of one number: bulk halved the
    batch down to one, then sent that one number again and again at the full rate, and the
    run never ended (here the proxy gives up after 60 refusals so the test can end)."""
    sb = sandbox_factory(seed=3)
    numbers = [f"+1650555{n:04d}" for n in range(100, 105)]
    src = write_csv(tmp_path / "in.csv", "number,campaign", [f"{n},alerts" for n in numbers])
    asked: Counter[str] = Counter()

    def refuse(method: str, path: str, body: bytes) -> web.Response | None:
        if method != "POST" or not _LINK.search(path) or asked["link"] >= 60:
            return None
        asked["link"] += 1
        return _refusal("Too many numbers in this request")

    with behind_proxy(sb, before=refuse) as proxied:
        report = run_and_compare(proxied, "plivo", tmp_path, "link", src)
    # halving 5 -> 2 -> 1 costs at most 2n - 1 requests; then each lone number is refused
    assert asked["link"] <= 2 * len(numbers) - 1, asked
    assert [r["outcome"] for r in report.values()] == ["failed"] * len(numbers), report
    assert all("Too many numbers" in (r["reason"] or "") for r in report.values()), report


def _link_directly(sb: ThreadedSandbox, path: str, numbers: list[str]) -> None:
    """Link ``numbers`` at the sandbox itself, as another client of the account would."""
    request = urllib.request.Request(
        sb.base_url + path,
        data=json.dumps({"numbers": numbers}).encode(),
        headers={"Content-Type": "application/json", "Authorization": _basic(sb)},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        assert answer.status in (200, 202)


def _basic(sb: ThreadedSandbox) -> str:
    pair = f"{sb.plivo_auth_id}:{sb.plivo_auth_token}".encode()
    return "Basic " + base64.b64encode(pair).decode()


def test_already_requested_naming_no_number_of_a_batch_is_read_not_failed(
    tmp_path: Path, sandbox_factory: Callable[..., ThreadedSandbox], no_retry_waits: None
) -> None:
    """Between planning and the link, another client requested one number of the batch, and
    the provider refused the batch "already requested for linking" without naming it. bulk
    failed every number of the batch, the one under way included, which then settled
    linked: a ``failed`` row the sandbox shows ``COMPLETED``. The text says a link is under
    way for some number of the batch, so each is read: under way is polled, the rest resent."""
    sb = sandbox_factory(seed=3)
    numbers = [f"+1650555{n:04d}" for n in range(100, 104)]
    src = write_csv(tmp_path / "in.csv", "number,campaign", [f"{n},alerts" for n in numbers])
    asked: Counter[str] = Counter()

    def race(method: str, path: str, body: bytes) -> web.Response | None:
        if method != "POST" or not _LINK.search(path) or asked["link"]:
            return None
        asked["link"] += 1
        _link_directly(sb, path, [json.loads(body)["numbers"][0]])
        return _refusal("One or more numbers are already requested for linking")

    with behind_proxy(sb, before=race) as proxied:
        report = run_and_compare(proxied, "plivo", tmp_path, "link", src)
    assert [r["outcome"] for r in report.values()] == ["linked"] * len(numbers), report


def test_credentials_refused_mid_run_on_a_link_stop_the_run_with_every_row_reported(
    tmp_path: Path, sandbox_factory: Callable[..., ThreadedSandbox], no_retry_waits: None
) -> None:
    """Sound before: a 401 on the second link batch stops the run (exit 2) with one line,
    every row in the report ``unknown`` and resumable."""
    sb = sandbox_factory(seed=3)
    numbers = [f"+1650555{n:04d}" for n in range(100, 106)]
    src = write_csv(tmp_path / "in.csv", "number,campaign", [f"{n},alerts" for n in numbers])
    asked: Counter[str] = Counter()

    def revoke(method: str, path: str, body: bytes) -> web.Response | None:
        if method != "POST" or not _LINK.search(path):
            return None
        asked["link"] += 1
        return _refusal("Authentication failed", 401) if asked["link"] > 1 else None

    with behind_proxy(sb, before=revoke) as proxied:
        result, path = run_command(proxied, "plivo", tmp_path, "link", src, "--batch-size", "2",
                                   "--concurrency", "1")
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and sb.plivo_auth_token not in result.output
    report = read_report(path)
    assert len(report) == len(numbers)  # every row, none claiming more than was seen
    assert {r["outcome"] for r in report.values()} == {"unknown"}, report


def test_a_redirected_change_is_never_followed_nor_taken_as_done(
    tmp_path: Path, sandbox_factory: Callable[..., ThreadedSandbox], no_retry_waits: None
) -> None:
    """Every link and unlink answered 307 to another host: nothing (no Authorization, no
    numbers) reaches that host, and no row is reported changed."""
    sb = sandbox_factory(seed=3)
    elsewhere: list[str] = []

    class Catch(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            elsewhere.append(self.command)
            self.send_response(202)
            self.end_headers()

        do_GET = do_DELETE = do_POST

    catcher = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Catch)
    threading.Thread(target=catcher.serve_forever, daemon=True).start()
    target = f"http://127.0.0.1:{catcher.server_address[1]}/steal"

    def redirect(method: str, path: str, body: bytes) -> web.Response | None:
        if method in ("POST", "DELETE"):
            return web.Response(status=307, headers={"Location": target})
        return None

    src = write_csv(tmp_path / "in.csv", "number,campaign,action", [
        "+16505550100,alerts,link", "+16505550101,alerts,link",
        "+14155550100,marketing,unlink"])  # linked there at start
    try:
        with behind_proxy(sb, before=redirect) as proxied:
            report = run_and_compare(proxied, "plivo", tmp_path, "apply", src)
    finally:
        catcher.shutdown()
    assert elsewhere == []
    assert {r["outcome"] for r in report.values()} == {"unknown"}, report


def test_a_link_answered_with_json_nested_past_the_parsers_depth_is_no_usable_answer(
    tmp_path: Path, sandbox_factory: Callable[..., ThreadedSandbox], no_retry_waits: None
) -> None:
    """A 400 whose body is ``[[[[...`` nested 100,000 deep."""
    sb = sandbox_factory(seed=3)
    numbers = [f"+1650555{n:04d}" for n in range(100, 103)]
    src = write_csv(tmp_path / "in.csv", "number,campaign", [f"{n},alerts" for n in numbers])

    def deep(method: str, path: str, body: bytes) -> web.Response | None:
        if method == "POST" and _LINK.search(path):
            return web.Response(status=400, body=b"[" * 100_000,
                                headers={"Content-Type": "application/json"})
        return None

    with behind_proxy(sb, before=deep) as proxied:
        report = run_and_compare(proxied, "plivo", tmp_path, "link", src)
    assert {r["outcome"] for r in report.values()} == {"unknown"}, report


def test_a_provider_echoing_the_credentials_in_its_refusal_never_puts_them_in_the_report(
    tmp_path: Path, sandbox_factory: Callable[..., ThreadedSandbox], no_retry_waits: None
) -> None:
    sb = sandbox_factory(seed=3)
    numbers = [f"+1650555{n:04d}" for n in range(100, 102)]
    src = write_csv(tmp_path / "in.csv", "number,campaign", [f"{n},alerts" for n in numbers])
    basic = _basic(sb)

    def echo(method: str, path: str, body: bytes) -> web.Response | None:
        if method == "POST" and _LINK.search(path):
            text = f"bad request from {basic} (token {sb.plivo_auth_token})"
            return _refusal(text)
        return None

    with behind_proxy(sb, before=echo) as proxied:
        result, path = run_command(proxied, "plivo", tmp_path, "link", src, "--verbose")
    everything = result.output + path.read_text() + "".join(
        p.read_text(errors="replace") for p in (tmp_path / "j").rglob("*") if p.is_file())
    assert {r["outcome"] for r in read_report(path).values()} == {"failed"}
    assert sb.plivo_auth_token not in everything
    assert basic.split()[1] not in everything


def test_an_unlink_or_release_answered_not_linked_while_the_list_shows_it_is_never_done(
    tmp_path: Path, sandbox_factory: Callable[..., ThreadedSandbox], no_retry_waits: None
) -> None:
    """Sound before: every DELETE answered "not linked to this campaign" though the number
    stays listed there. The unlink is polled to its deadline and ends ``unknown``; the move
    never links the number elsewhere while it sits in its old campaign."""
    sb = sandbox_factory(seed=3)

    def deny(method: str, path: str, body: bytes) -> web.Response | None:
        if method == "DELETE":
            number = path.rstrip("/").rsplit("/", 1)[1]
            return _refusal(f"The number {number} is not linked to this campaign", 404)
        return None

    src = write_csv(tmp_path / "in.csv", "number,campaign,action,from_campaign", [
        "+14155550100,marketing,unlink,", "+12125550110,alerts,move,legacy"])
    with behind_proxy(sb, before=deny) as proxied:
        report = run_and_compare(proxied, "plivo", tmp_path, "apply", src)
    assert {r["outcome"] for r in report.values()} == {"unknown"}, report
    assert sb.counters()["totals"].get("link_accepted", 0) == 0


@pytest.mark.parametrize("wait", ["99999999", "1e9"])
def test_a_retry_after_longer_than_bulk_waits_ends_the_request_unsent_not_the_run_hung(
    wait: str,
    tmp_path: Path,
    sandbox_factory: Callable[..., ThreadedSandbox],
    no_retry_waits: None,
) -> None:
    """Every link answered 429 with a Retry-After of years: the shared pause honoured it
    exactly and the run hung. A wait longer than bulk's longest (300 s) now ends that request
    unsent at once, with the wait in its reason; the rows end ``unknown`` (resumable) and
    nothing is linked."""
    sb = sandbox_factory(seed=3)
    numbers = [f"+1650555{n:04d}" for n in range(100, 104)]
    src = write_csv(tmp_path / "in.csv", "number,campaign", [f"{n},alerts" for n in numbers])

    def throttle(method: str, path: str, body: bytes) -> web.Response | None:
        if method != "POST" or not _LINK.search(path):
            return None
        return web.json_response({"api_id": "proxy", "error": "slow down"}, status=429,
                                 headers={"Retry-After": wait})

    with behind_proxy(sb, before=throttle) as proxied:
        result, path = run_command(proxied, "plivo", tmp_path, "link", src)
    report = read_report(path)
    assert result.exit_code == 1, result.output
    assert [r["outcome"] for r in report.values()] == ["unknown"] * len(numbers), report
    assert all(f"wait {float(wait):g} s" in (r["reason"] or "") for r in report.values()), report
    assert sb.counters()["totals"].get("link_accepted", 0) == 0
