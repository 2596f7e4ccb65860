"""Plivo's change answers (link, unlink) as a hostile or broken provider gives them: the real
sandbox behind a loopback proxy (:func:`tests.test_truth_e2e.behind_proxy`) that answers some
changes itself or rewrites the sandbox's answers, driving the CLI. Every run must end, keep
every row in the report, report only what the sandbox shows, and change nothing twice."""

from __future__ import annotations

import re
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
