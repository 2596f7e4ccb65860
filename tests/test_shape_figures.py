"""How ``python -m bulk.bench.limits`` (section 3, :mod:`bulk.bench.shapes`) reads a run from
the sandbox's counters: the sending phase, the share of the limit, the most a shape admits."""

from __future__ import annotations

import pytest

from bulk.bench import limits
from bulk.bench.shapes import Case, Reading, Watcher, measure, most


def watcher(case: Case, readings: list[tuple[float, int, int, int]],
            changed: list[tuple[float, int]] | None = None) -> Watcher:
    w = Watcher("http://127.0.0.1:1", case)
    w.readings = [Reading(*r) for r in readings]
    w.changed = changed or []
    return w


def test_the_sending_phase_runs_from_the_last_idle_reading_to_bulks_last_attach() -> None:
    case = Case("sliding", "sliding", 10, 1.0, 100)
    # (at, requests, refused, attaches): idle, reads, attaches, then only polls while settling
    readings = [(0.0, 0, 0, 0), (1.0, 0, 0, 0), (2.0, 5, 0, 0), (4.0, 25, 2, 18),
                (6.0, 40, 3, 30), (7.0, 41, 3, 30), (9.0, 44, 3, 30)]
    seconds, admitted, capacity, bound, stretches = measure(watcher(case, readings))
    assert seconds == 5.0  # from 1.0 (no request yet) to 6.0 (the last attach seen)
    assert admitted == 37  # 40 requests, 3 refused; the polls after 6.0 are not counted
    assert capacity == 50.0  # 10 a second for 5 s
    assert bound == 60.0  # a sliding window: 10 per started second and one more 10
    assert stretches == [(10, 5.0, 37, 50.0)]


def test_a_limit_changed_mid_phase_is_counted_at_each_rate_in_its_stretch() -> None:
    case = Case("changes", "sliding", 10, 1.0, 100, changes=((2.0, 20),))
    readings = [(0.0, 0, 0, 0), (1.0, 2, 0, 1), (3.0, 22, 0, 20), (5.0, 62, 0, 60)]
    seconds, admitted, capacity, _, stretches = measure(
        watcher(case, readings, changed=[(3.0, 20)]))
    assert (seconds, admitted) == (5.0, 62)
    assert capacity == 3 * 10 + 2 * 20
    assert [(limit, length, got) for limit, length, got, _ in stretches] == [
        (10, 3.0, 22), (20, 2.0, 40)]


@pytest.mark.parametrize(
    ("shape", "start", "end", "first", "expected"),
    [
        ("sliding", 0.5, 10.5, True, 300 * 2),  # 10 s of a 10-s window: two windows' worth
        ("sliding", 0.0, 9.9, True, 300),
        ("fixed", 9.0, 21.0, True, 300 * 3),  # touches [0, 10), [10, 20), [20, 30)
        ("fixed", 10.0, 19.0, True, 300),
        ("bucket", 0.0, 10.0, True, 300 + 300),  # its first burst, then 30 a second
        ("bucket", 0.0, 10.0, False, 300),
    ],
)
def test_the_most_a_shape_admits(
    shape: str, start: float, end: float, first: bool, expected: float
) -> None:
    assert most(shape, 300, 10.0, start, end, first) == pytest.approx(expected)


def test_only_runs_the_sections_named_and_no_sandbox_drops_the_real_time_ones(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ran: list[str] = []
    monkeypatch.setattr(limits, "shapes", lambda seeds: ran.append("shapes"))
    monkeypatch.setattr(limits, "storm_mix", lambda repeat: ran.append("storms"))
    monkeypatch.setattr(limits, "shapes_e2e", lambda: ran.append("shapes-e2e"))
    assert limits.main(["--only", "shapes-e2e"]) == 0
    assert ran == ["shapes-e2e"]
    ran.clear()
    limits.main(["--no-sandbox"])
    assert ran == ["shapes"]
    ran.clear()
    limits.main([])
    assert ran == ["shapes", "storms", "shapes-e2e"]
    with pytest.raises(SystemExit):
        limits.main(["--only", "shapes,everything"])
