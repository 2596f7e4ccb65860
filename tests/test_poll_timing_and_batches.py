"""Issue 13: polls timed by what settles, and batches as large as the provider takes."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from bulk.engine._timing import expected_settled, next_read_in
from bulk.providers import plivo
from bulk.providers._base import Kind, Response
from tests.conftest import ThreadedSandbox, write_csv
from tests.test_pipeline_e2e import assert_no_number_changed_twice, read_report, run_command


def test_without_enough_samples_the_fixed_back_off_stays() -> None:
    assert next_read_in([1.0, 2.0], [0.5] * 10, floor=1.0, ceiling=60.0) is None


def test_the_next_read_waits_until_half_the_pending_numbers_likely_settled() -> None:
    samples = [20.0 + i for i in range(41)]  # settles take 20..60 s
    wait = next_read_in(samples, [1.0] * 100, floor=1.0, ceiling=300.0)
    assert wait is not None and 38.0 <= wait <= 41.0  # the median settle, less 1 s waited
    # numbers that have waited longer are due sooner
    later = next_read_in(samples, [30.0] * 100, floor=1.0, ceiling=300.0)
    assert later is not None and later < wait


def test_the_estimate_respects_its_bounds() -> None:
    samples = [20.0 + i for i in range(41)]
    # half settled only past the ceiling: the caller's back-off (itself capped) decides
    assert next_read_in(samples, [1.0] * 10, floor=1.0, ceiling=5.0) is None
    fast = [0.1] * 10
    assert next_read_in(fast, [0.0] * 10, floor=2.0, ceiling=60.0) == 2.0
    # waited past every settle seen (censored samples: the slow ones are not seen yet): the
    # samples say nothing, so no early read is called for
    assert next_read_in(fast, [9.0] * 10, floor=2.0, ceiling=60.0) is None


def test_expected_settled_conditions_on_the_time_already_waited() -> None:
    samples = [1.0, 2.0, 3.0, 4.0]
    assert expected_settled(samples, [0.0], 2.0) == 0.5
    assert expected_settled(samples, [2.0], 1.0) == 0.5  # 2 left (3, 4): one by 3 s
    assert expected_settled(samples, [5.0], 1.0) == 0.0  # beyond every sample: no claim


def test_a_refusal_about_the_batch_size_resends_every_number_and_names_none_refused() -> None:
    body = {"api_id": "a1", "error": "A maximum of 100 numbers can be linked in one request"}
    link = plivo.link_request("MA" + "X" * 18, "CUOGHIN", ["+14155550100", "+14155550101"])
    verdict = plivo.classify(link, Response(400, {}, json.dumps(body).encode()))
    assert verdict.kind is Kind.REFUSED
    outcome = plivo.link_outcome(["+14155550100", "+14155550101"], verdict)
    assert outcome.too_large and not outcome.refused
    assert outcome.resend == ["+14155550100", "+14155550101"]
    assert outcome.size_limit == 100  # the maximum the text names
    assert not plivo.is_size_refusal("The number 14155550100 is not a valid number")


def test_a_batch_refused_for_its_size_is_halved_and_nothing_is_lost(
    tmp_path: Path, sandbox_factory: Callable[..., ThreadedSandbox], no_retry_waits: None
) -> None:
    sb = sandbox_factory(seed=2)
    numbers = [f"+1650555{n:04d}" for n in range(100, 250)]  # 150, one campaign
    src = write_csv(tmp_path / "in.csv", "number,campaign", [f"{n},marketing" for n in numbers])
    # --batch-size 150 is a cap above what the sandbox takes (100 per request)
    result, path = run_command(sb, "plivo", tmp_path, "link", src, "--batch-size", "150")
    assert result.exit_code == 0, result.output
    report = read_report(path)
    assert [r["outcome"] for r in report.values()] == ["linked"] * len(numbers)
    status = sb.counters()["endpoints"]["plivo.link"]["status"]
    assert status.get("400") == 1  # one refusal: the first batch goes out alone
    assert status.get("202") == 2  # then batches of the 100 the refusal names
    assert_no_number_changed_twice(sb)


def test_batches_learn_the_cap_the_refusal_names_without_a_refusal_per_worker(
    tmp_path: Path, sandbox_factory: Callable[..., ThreadedSandbox], no_retry_waits: None
) -> None:
    sb = sandbox_factory(seed=2, plivo_max_batch=40)
    numbers = [f"+1650555{n:04d}" for n in range(100, 300)]  # 200 numbers, one campaign
    src = write_csv(tmp_path / "in.csv", "number,campaign", [f"{n},marketing" for n in numbers])
    result, path = run_command(sb, "plivo", tmp_path, "link", src, "--verbose")
    assert result.exit_code == 0, result.output
    assert [r["outcome"] for r in read_report(path).values()] == ["linked"] * len(numbers)
    status = sb.counters()["endpoints"]["plivo.link"]["status"]
    # one refusal (the first batch went out alone), then each queued 100 as 40 + 40 + 20
    assert status.get("400") == 1 and status.get("202") == 6
    assert "refused for its size" in result.stderr  # the reason, under --verbose
