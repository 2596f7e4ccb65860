"""What a run says when it resumes a journal an earlier run of the same job left: what the
journal holds and from when, and how to start over instead."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from bulk._journal import Journal
from bulk._states import State


def _when(ts: float) -> str:
    """Epoch seconds as local time with its zone: ``2026-12-06 16:40 UTC``."""
    return datetime.fromtimestamp(ts).astimezone().strftime("%Y-%m-%d %H:%M %Z").strip()


def settled(journal: Journal) -> int:
    """Rows of the journal with an outcome (a deferred row is taken up again: none)."""
    return sum(1 for r in journal.rows.values() if r.terminal and r.state is not State.DEFERRED)


def resumed(journal: Journal, also: Sequence[Path] = ()) -> str | None:
    """One paragraph on the journal an earlier run left (None: a new journal): when it was
    started and last written, its rows that had an outcome then (reported as they were), and
    how to start over (delete it, and the files in ``also``, or give another ``--journal``)."""
    if journal.new:
        return None
    span = journal.written()
    rows = journal.rows.values()
    settled = Counter(r.state.value for r in rows if r.terminal and r.state is not State.DEFERRED)
    when = "" if span is None else f", started {_when(span[0])}, last written {_when(span[1])}"
    outcomes = ", ".join(f"{outcome} {n}" for outcome, n in sorted(settled.items()))
    done = sum(settled.values())
    left = len(journal.rows) - done
    files = " and ".join(str(p) for p in [journal.path, *also])
    return (
        f"Resuming the journal {journal.path}{when}: {done} of {len(journal.rows)} rows had "
        f"their outcome already ({outcomes or 'none'}) and are reported as they were; "
        f"{left} {'is' if left == 1 else 'are'} taken up now. To start over instead, delete "
        f"{files} (or give another --journal)."
    )


__all__ = ["resumed", "settled"]
