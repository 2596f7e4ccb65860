"""Reads chosen by cost, in planning as in polling: a few rows into a big campaign read their
own numbers, a big job sweeps the list (engine against an in-memory provider)."""

from __future__ import annotations

from bulk.engine import EngineConfig
from bulk.testing import MemoryProvider, run_engine, run_in_virtual_time

CAMPAIGN = "CHUGE"
CONFIG = EngineConfig(poll_interval=1.0, poll_max_interval=8.0, settle_timeout=60.0)


def _rows(count: int) -> list[tuple[str, str, str]]:
    return [(f"+1415{i:07d}", "link", CAMPAIGN) for i in range(count)]


def _provider(others: int) -> MemoryProvider:
    provider = MemoryProvider(settle=lambda number: 1.5, latency=0.05)
    provider.add_campaign(CAMPAIGN, others=others)
    return provider


def test_five_rows_into_a_campaign_of_four_thousand_read_five_numbers() -> None:
    provider = _provider(4000)
    run = run_in_virtual_time(run_engine, provider, _rows(5), CONFIG)
    assert run.outcomes() == {"linked": 5}
    assert run.requests["list"] == 1  # the first page: the campaign's size, nothing more
    assert run.requests["link"] == 1
    assert sum(run.requests.values()) <= 40


def test_a_dry_run_of_five_rows_into_a_big_campaign_reads_its_first_page_and_five_numbers() -> None:
    provider = _provider(4000)
    run = run_in_virtual_time(lambda: run_engine(provider, _rows(5), CONFIG, dry_run=True))
    # planning read each number alone: its absence is proof, no second read verifies it
    assert run.requests == {"list": 1, "get": 5}
    assert len(run.plan.to_link[CAMPAIGN]) == 5


def test_a_number_already_linked_is_seen_by_its_own_read_and_not_sent() -> None:
    provider = _provider(4000)
    rows = _rows(5)
    provider.campaigns[CAMPAIGN][rows[0][0]] = provider.campaigns[CAMPAIGN].pop(
        next(iter(provider.campaigns[CAMPAIGN]))
    )  # one of the run's numbers is in the campaign already, settled
    run = run_in_virtual_time(run_engine, provider, rows, CONFIG)
    assert run.outcomes() == {"already": 1, "linked": 4}
    assert run.plan.already == 1


def test_a_big_job_sweeps_the_list_instead_of_reading_each_number() -> None:
    provider = _provider(1000)  # 50 pages, 300 rows: the list is cheaper
    run = run_in_virtual_time(lambda: run_engine(provider, _rows(300), CONFIG, dry_run=True))
    assert run.requests["get"] == 0
    assert run.requests["list"] == 50


def test_while_polling_few_rows_in_a_big_campaign_are_read_one_by_one() -> None:
    provider = _provider(4000)
    run = run_in_virtual_time(run_engine, provider, _rows(30), CONFIG)
    assert run.outcomes() == {"linked": 30}
    assert run.requests["list"] == 1
    assert run.requests["get"] <= 30 * 3
