"""``python -m bulk.bench.pipeline --quick`` runs end to end and writes sane JSON.

Speed is measured by the benchmark, never asserted here: only shapes and counts.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bulk.bench._common import EXCHANGES, fewest_requests, number, split
from bulk.bench.figures import cli_accepts, floor_seconds


def test_numbers_are_distinct_valid_looking_and_split_evenly() -> None:
    numbers = [number(i) for i in range(0, 2_000_000, 997)]
    assert len(set(numbers)) == len(numbers)
    assert all(n.startswith("+1") and len(n) == 12 for n in numbers)
    assert 555 not in EXCHANGES and 211 not in EXCHANGES
    assert split(10, 4) == [3, 3, 2, 2]
    # 500 numbers: check + empty first page + 25 link batches + 25 pages
    assert fewest_requests([500], 20) == 52
    assert floor_seconds(60, 60.0, 3.0, 0.02) == pytest.approx(1 + 3 + 0.08)


def test_the_sections_are_registered_once_in_the_order_they_are_numbered() -> None:
    from bulk.bench.pipeline import SECTIONS

    assert list(SECTIONS) == [
        "throughput", "overhead", "memory", "sdk", "floor", "agentmessage", "storm", "batch_cap"
    ]


def test_lean_client_reads_rows_as_digits_grouped_by_campaign(tmp_path: Path) -> None:
    from bulk.bench.lean import read_work

    source = tmp_path / "in.csv"
    source.write_text("number,campaign\n+14155550103,CUOGHIN\n2125550199,CRIGC80\n")
    assert read_work(source) == {"CUOGHIN": ["14155550103"], "CRIGC80": ["12125550199"]}


def test_cli_accepts_tells_options_the_cli_takes_from_ones_it_refuses() -> None:
    assert cli_accepts("--rate", "12.5")
    assert not cli_accepts("--rate", "fast")
    assert not cli_accepts("--no-such-option", "1")


@pytest.mark.timeout(90)
def test_quick_run_writes_every_section(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    done = subprocess.run(
        [sys.executable, "-m", "bulk.bench.pipeline", "--quick", "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=80,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert "1. throughput" in done.stdout and "aims" in done.stdout
    # every section printed once, in the order of its number
    starts = [done.stdout.index(f"\n{n}. ") for n in range(1, 9)]
    assert starts == sorted(starts)
    data = json.loads(out.read_text(encoding="utf-8"))
    assert {"settings", "throughput", "overhead", "memory", "sdk", "aims"} <= set(data)

    t = data["throughput"]
    assert t["linked"] == t["numbers"] > 0
    assert t["errors_total"] == 0
    assert set(t["requests"]) <= {"campaign", "list", "link", "get"}
    assert t["requests"]["link"] >= t["numbers"] / 20
    assert t["requests_total"] == sum(t["requests"].values())
    # "fewest" counts a campaign read per campaign; on Plivo the list's first page stands for it
    assert "campaign" not in t["requests"]
    assert t["requests_total"] >= t["fewest_requests"] - t["campaigns"] > 0
    assert t["server_requests"] >= t["requests_total"]
    assert 0 < t["effective_rate"] and 0 < t["share_of_limit"] < 1.5
    assert t["wall_s"] > 0

    assert {o["kind"] for o in data["overhead"]} == {"get", "list"}
    for o in data["overhead"]:
        assert o["requests_per_s"] > 0 and o["cpu_s_per_1000"] > 0
        assert o["statuses"] == {"200": o["requests"]}

    sizes = [m["rows"] for m in data["memory"]]
    assert sizes == sorted(sizes) and len(sizes) == 2
    for m in data["memory"]:
        assert m["rejected"] == 0 and m["planned_links"] == m["rows"]
        assert 10 < m["peak_rss_mib"] < 4096

    for name in ("sequential", "threaded"):
        run = data["sdk"][name]
        sdk, bulk = run["sdk"], run["bulk"]
        assert sdk["numbers"] == bulk["numbers"] > 0
        assert sdk["requests"]["link"] == sdk["numbers"]
        assert sdk["linked"] + sdk["errors_total"] == sdk["numbers"]
        assert bulk["linked"] == bulk["numbers"]
        assert run["sdk_over_bulk"]["requests_total"] > 0
    assert data["sdk"]["threaded"]["sdk"]["threads"] > 1

    for aim in data["aims"].values():
        assert isinstance(aim["met"], bool)

    # the figures' sections: floor + lean client, AgentMessage limits, storms, batch cap
    for title in ("5. floor and the lean client", "6. AgentMessage", "7. 429 storms",
                  "8. batch cap"):
        assert title in done.stdout
    assert isinstance(data["rate_auto_available"], bool)
    for row in data["floor"]:
        assert row["all_rows_right"] and row["lean"]["all_rows_right"]
        assert row["floor_s"] > 0 and row["wall_over_floor"] > 0
        assert row["requests_total"] >= row["fewest_requests"] > 0
        per_campaign = split(row["numbers"], row["campaigns"])
        assert row["lean"]["requests"]["link"] == sum(-(-n // 100) for n in per_campaign)
        assert row["bulk_over_lean"]["requests"] > 0
    for row in data["agentmessage"]:
        assert row["all_rows_right"] and row["limit"] > 0
        assert row["sending_rate"] > 0 and 0 <= row["share_429"] <= 1
    storm = data["storm"]
    assert storm["calm"]["all_rows_right"] and storm["storm"]["all_rows_right"]
    assert storm["storm_over_calm"]["wall"] > 0
    cap = data["batch_cap"]
    assert cap["cap"] == 40 and cap["all_rows_right"]
    # the sandbox refuses batches over 40: no accepted link request carried more
    assert cap["requests"]["link"] >= -(-cap["numbers"] // 40)
    assert cap["fewest_requests"] == fewest_requests([cap["numbers"]], 40)


def test_the_accounts_benchmark_runs_small_and_counts_every_row(tmp_path: Path) -> None:
    out = tmp_path / "accounts.json"
    done = subprocess.run(
        [sys.executable, "-m", "bulk.bench.accounts", "--accounts", "3", "--numbers", "20",
         "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    figures = json.loads(out.read_text())
    assert figures["outcomes"]["linked"] == 60 and figures["rows"] == 60
    assert figures["requests_by_kind"]["link"] == 60 and figures["http_429"] == 0
    assert figures["limit_sum"] == 180 and figures["cpu_s_per_1000_requests"] > 0
    assert "of the limits' sum" in done.stdout
