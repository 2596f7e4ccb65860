"""``python -m bulk.bench.pipeline --quick`` runs end to end and writes sane JSON.

Speed is measured by the benchmark, never asserted here: only shapes and counts.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bulk.bench.pipeline import EXCHANGES, fewest_requests, number, split


def test_numbers_are_distinct_valid_looking_and_split_evenly() -> None:
    numbers = [number(i) for i in range(0, 2_000_000, 997)]
    assert len(set(numbers)) == len(numbers)
    assert all(n.startswith("+1") and len(n) == 12 for n in numbers)
    assert 555 not in EXCHANGES and 211 not in EXCHANGES
    assert split(10, 4) == [3, 3, 2, 2]
    # 500 numbers: check + empty first page + 25 link batches + 25 pages
    assert fewest_requests([500], 20) == 52


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
    data = json.loads(out.read_text(encoding="utf-8"))
    assert {"settings", "throughput", "overhead", "memory", "sdk", "aims"} <= set(data)

    t = data["throughput"]
    assert t["linked"] == t["numbers"] > 0
    assert t["errors_total"] == 0
    assert set(t["requests"]) <= {"campaign", "list", "link", "get"}
    assert t["requests"]["link"] >= t["numbers"] / 20
    assert t["requests_total"] == sum(t["requests"].values()) >= t["fewest_requests"] > 0
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
