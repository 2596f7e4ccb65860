"""Drift: a row whose number is no longer as the reviewed plan saw it. Pure comparisons, and
the drift file written beside the plan."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from bulk import _report
from bulk.plans._format import Intent, seen, seen_text
from bulk.providers import NumberState


@dataclass(frozen=True, slots=True)
class Drift:
    """One row that drifted: what the plan saw (and would do), and what is there now."""

    line: int  #: the plan's row (a pruned number's is past the input's lines)
    number: str | None
    account: str | None
    planned: str
    now: str
    pruned: bool = False  #: ``bulk sync --prune``: not a line of the input

    @property
    def where(self) -> str:
        """How a person finds the row: its input line, or that it was pruned."""
        return "a number pruned from its campaign" if self.pruned else f"line {self.line}"

    @property
    def order(self) -> tuple[bool, int]:
        """Input lines first, in order, then pruned numbers."""
        return self.pruned, self.line

    @property
    def reason(self) -> str:
        return f"drifted since the plan: it saw {self.planned}; now {self.now}; not sent"


def _said(states: Mapping[str, Any] | None, request: str | None, outcome: str | None) -> str:
    what = outcome or request or "nothing"
    return f"{seen_text(states)} ({'will ' + what if not outcome else what})"


def drift_of(
    planned: Mapping[str, Any], observed: Mapping[str, NumberState] | None, now: Intent
) -> Drift | None:
    """The drift of one row: None when the number stands where the plan saw it, in every
    campaign the row names, and planning decides the same (the same request, or the same
    known outcome)."""
    before = (planned.get("observed") or {}).get("campaigns")
    after = seen(observed)
    same_state = (before or {}) == (after or {})
    same_intent = (planned.get("do"), planned.get("outcome")) == now.key()
    if same_state and same_intent:
        return None
    return Drift(
        int(planned["line"]),
        planned.get("e164") or planned.get("number"),
        planned.get("account"),
        _said(before, planned.get("request"), planned.get("outcome")),
        _said(after, now.request, now.outcome),
        pruned=bool(planned.get("pruned")),
    )


def write_drift(path: Path, drifts: Sequence[Drift]) -> None:
    """``PLAN.drift.csv``: line (empty for a pruned number), number, (account,) what the plan
    saw, what is there now."""
    ordered = sorted(drifts, key=lambda d: d.order)
    columns: dict[str, list[Any]] = {
        "line": [None if d.pruned else d.line for d in ordered],  # as the report has it
        "number": [d.number for d in ordered],
    }
    if any(d.account for d in ordered):
        columns["account"] = [d.account for d in ordered]
    columns["plan_saw"] = [d.planned for d in ordered]
    columns["now"] = [d.now for d in ordered]
    schema = {k: (pl.Int64 if k == "line" else pl.Utf8) for k in columns}
    _report.write(pl.DataFrame(columns, schema=schema), path)
