"""Polls timed by what settles, and batches as large as the provider takes."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from bulk.engine._timing import (
    back_off,
    expected_settled,
    fall_wait,
    next_read_in,
    read_every_page,
)
from bulk.providers import plivo
from bulk.providers._base import Kind, Response
from tests._helpers import (
    ThreadedSandbox,
    assert_no_number_changed_twice,
    read_report,
    run_command,
    write_csv,
)


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


def test_when_samples_cannot_answer_the_next_read_follows_the_rate_pending_numbers_settle() -> None:
    # 500 submitted together, settling 20-60 s: at 21 s all 490 left have waited past every
    # settle seen, yet the count falls 12 a second: half of them are due in ~20 s, all in ~40 s
    looks = [(13.0, 500.0), (20.0, 490.0), (21.0, 478.0)]
    assert next_read_in([20.0] * 10, [21.0] * 478, floor=1.0, ceiling=300.0) is None
    half = fall_wait(looks, 0.5, floor=1.0, ceiling=300.0)
    assert half is not None and 19.0 <= half <= 21.0
    assert fall_wait(looks, 1.0, floor=1.0, ceiling=8.0) == 8.0  # never past the ceiling
    assert fall_wait([(0.0, 50.0), (1.0, 30.0), (2.0, 10.0)], 1.0, floor=1.0, ceiling=8.0) == 1.0


def test_a_first_fall_or_a_rising_count_leaves_the_back_off_in_charge() -> None:
    def wait(*looks: tuple[float, float]) -> float | None:
        return fall_wait(looks, 1.0, floor=1.0, ceiling=8.0)

    # the first fall may hide the wait before anything settled: its rate would be too low
    assert wait((0.0, 500.0), (1.0, 460.0)) is None
    assert wait((0.0, 500.0), (5.0, 500.0), (6.0, 480.0)) is None
    # new submissions raised the count: no rate to extrapolate
    assert wait((0.0, 500.0), (1.0, 600.0), (2.0, 550.0)) is None
    assert wait((0.0, 5.0), (1.0, 3.0), (2.0, 0.0)) is None  # nothing left to wait for


def test_waiting_for_half_progress_resets_the_back_off_and_none_stretches_it() -> None:
    bounds = {"floor": 1.0, "ceiling": 8.0}
    assert back_off(4.0, True, for_all=False, **bounds) == 1.0
    assert back_off(4.0, False, for_all=False, **bounds) == 6.0
    assert back_off(6.0, False, for_all=False, **bounds) == 8.0  # never past the ceiling


def test_waiting_for_the_last_settle_progress_keeps_the_back_off_and_none_doubles_it() -> None:
    bounds = {"floor": 1.0, "ceiling": 8.0}
    # glances at a campaign settling 20-60 s: 1, 3, 7, 15, then every 8 s once settles begin
    waits, interval = [], 1.0
    for progressed in (False, False, False, True, True, True):
        interval = back_off(interval, progressed, for_all=True, **bounds)
        waits.append(interval)
    assert waits == [2.0, 4.0, 8.0, 8.0, 8.0, 8.0]
    assert back_off(1.0, True, for_all=True, **bounds) == 1.0  # settling soon after the floor


def test_every_page_is_read_only_once_the_counts_say_nothing_of_ours_is_pending() -> None:
    assert not read_every_page(12, (20, 3), glances=1, pages=25)
    assert read_every_page(0, (20, 3), glances=1, pages=25)  # the counts win over the page
    assert read_every_page(-2, (20, 0), glances=1, pages=25)  # others' settles count too


def test_without_counts_every_page_is_read_once_the_first_page_has_settled() -> None:
    assert not read_every_page(None, (20, 1), glances=3, pages=25)
    assert read_every_page(None, (20, 0), glances=3, pages=25)
    assert read_every_page(None, (0, 0), glances=1, pages=25)  # none of ours there: no hint


def test_a_hint_that_stays_wrong_defers_the_whole_read_only_as_long_as_a_whole_read_costs() -> None:
    # other software keeps the campaign's pending count up: the counts never say "done"
    assert not read_every_page(7, (20, 2), glances=24, pages=25)
    assert read_every_page(7, (20, 2), glances=25, pages=25)


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


def test_a_campaign_still_settling_is_glanced_at_and_read_whole_once_its_counts_say_done(
    tmp_path: Path, sandbox_factory: Callable[..., ThreadedSandbox], no_retry_waits: None
) -> None:
    # settles of 1.5-2 s at a 0.2 s poll interval: several poll rounds while nothing or only
    # part of the campaign has settled. Each of them glances (the first page and the
    # campaign's counts, one request); every page is read once the counts say this run's
    # numbers have all settled (or once the glances have cost as much as a whole read)
    sb = sandbox_factory(seed=3, settle_min=1.5, settle_max=2.0)
    numbers = [f"+1650555{n:04d}" for n in range(100, 300)]  # 200 numbers, one campaign
    src = write_csv(tmp_path / "in.csv", "number,campaign", [f"{n},marketing" for n in numbers])
    result, path = run_command(sb, "plivo", tmp_path, "link", src)
    assert result.exit_code == 0, result.output
    assert [r["outcome"] for r in read_report(path).values()] == ["linked"] * len(numbers)
    entries = sb.state()["plivo"]["campaigns"]["CUOGHIN"]["numbers"]
    linked = {e["number"].lstrip("+") for e in entries if e["status"] == "COMPLETED"}
    assert {n[1:] for n in numbers} <= linked  # the report says what the provider holds
    lists = sb.counters()["endpoints"]["plivo.list"]["requests"]
    pages = -(-(len(numbers) + 3) // 20)  # CUOGHIN holds 3 numbers before the run
    # planning's one page, glances (fewer than a whole read costs), one whole read less the
    # glance it starts from; reading every page each round would cost several whole reads
    assert lists < 1 + 2 * pages, lists
