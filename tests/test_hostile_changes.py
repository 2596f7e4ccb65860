"""Plivo's change answers (link, unlink) as a hostile or broken provider gives them: the real
sandbox behind a loopback proxy (:func:`tests.test_truth_e2e.behind_proxy`) that answers some
changes itself or rewrites the sandbox's answers, driving the CLI. Every run must end, keep
every row in the report, report only what the sandbox shows, and change nothing twice."""

from __future__ import annotations

import base64
import json
import re
import urllib.request
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from aiohttp import web

from tests.conftest import ThreadedSandbox, write_csv
from tests.test_truth_e2e import behind_proxy, run_and_compare

_LINK = re.compile(r"/10dlc/Campaign/[^/]+/Number/$")


def _refusal(text: str, status: int = 400) -> web.Response:
    return web.json_response({"api_id": "hostile", "error": text}, status=status)


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

    with behind_proxy(sb, before=refuse) as hostile:
        report = run_and_compare(hostile, "plivo", tmp_path, "link", src)
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

    with behind_proxy(sb, before=race) as hostile:
        report = run_and_compare(hostile, "plivo", tmp_path, "link", src)
    assert [r["outcome"] for r in report.values()] == ["linked"] * len(numbers), report
