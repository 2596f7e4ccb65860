"""Why rows did not end as asked: their count per outcome and reason, and the first of them,
for the console (``validate`` shows its rejected rows the same way)."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

import polars as pl

from bulk._report import SUCCESS_OUTCOMES

#: rows shown one by one on the console (the report and the failures file have all of them)
SHOWN = 10
_CODE = re.compile(r"^([a-z][a-z_]*): ")
_REQUEST_ID = re.compile(r"\s*\((?:api_id|request_id|request id)[^)]*\)")
_DIGITS = re.compile(r"\d+")
_LONGEST = 90


@dataclass(frozen=True, slots=True)
class Row:
    """One row that did not end as asked."""

    line: int | None  #: None: a row bulk added (a number ``sync --prune`` takes out)
    number: str
    outcome: str
    reason: str


@dataclass(slots=True)
class Why:
    """Rows that did not end as asked: (outcome, reason) -> rows, most first; the first rows."""

    reasons: dict[tuple[str, str], int] = field(default_factory=dict)
    first: list[Row] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(self.reasons.values())


def reason_key(reason: str | None) -> str:
    """What rows with the same cause share: a validation code (``unknown_campaign``), else
    the provider's or bulk's words with numbers and request ids left out."""
    if not reason:
        return "(no reason given)"
    code = _CODE.match(reason)
    if code is not None:
        return code.group(1)
    text = _DIGITS.sub("N", _REQUEST_ID.sub("", reason)).strip()
    return text if len(text) <= _LONGEST else text[: _LONGEST - 1] + "…"


def of(report: pl.DataFrame, shown: int = SHOWN) -> Why:
    """The rows of ``report`` (a run's report frame) whose outcome is not a success."""
    bad = report.filter(~pl.col("outcome").is_in(sorted(SUCCESS_OUTCOMES)))
    rows = bad.select("line", "number", "outcome", "reason").iter_rows()
    counts: Counter[tuple[str, str]] = Counter()
    why = Why()
    for line, number, outcome, reason in rows:
        counts[(outcome, reason_key(reason))] += 1
        if len(why.first) < shown:
            why.first.append(
                Row(None if line is None else int(line), str(number or ""), outcome, reason or "")
            )
    why.reasons = dict(counts.most_common())
    return why


__all__ = ["SHOWN", "Row", "Why", "of", "reason_key"]
