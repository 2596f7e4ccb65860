"""``bulk sync INPUT``: the input is the desired membership of every campaign it names.

Each account's named campaigns are read first (their lists, the same reads planning makes);
then each valid row becomes the action that gets its number there: ``link`` (missing, or
already there: planning reports it ``already``), or ``move`` from the named campaign that
holds it now (two steps on Plivo, one attach on AgentMessage). With ``--prune`` every number
a named campaign holds and the input does not list becomes an ``unlink`` row, after the
input's rows (its report row has an empty ``line``). More unlinks than ``--max-unlink``
stops the run before anything is sent.

A resumed sync (its journal exists) keeps the rows and actions its first run chose: the
provider's state has moved since, by the run's own changes.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from bulk._errors import ConfigError
from bulk.engine import SystemClock, survey
from bulk.providers import Provider, Settlement

if TYPE_CHECKING:
    from bulk._jobvalues import JobSpec
    from bulk._lanes import Connection, Lane
    from bulk.inputs import Loaded

#: the frame's column marking the rows ``--prune`` added (never an input column's name)
PRUNED = "_bulk_pruned"


def _members(surveyed: Mapping[str, Any]) -> dict[str, set[str]]:
    """Per readable campaign, the numbers it holds (linked, pending or failed)."""
    held: dict[str, set[str]] = {}
    for campaign, (_, members) in surveyed.items():
        if members is not None:
            held[campaign] = {
                n for n, s in members.items() if s.settlement is not Settlement.ABSENT
            }
    return held


async def _lane_actions(
    provider: Provider,
    rows: Sequence[tuple[int, str, str]],
    prune: bool,
    delay: float,
) -> tuple[dict[int, str], list[tuple[str, str]]]:
    """One account's rows (line, number, campaign): the campaign each one's number leaves
    (moves), and with ``prune`` the (number, campaign) pairs to unlink."""
    named = sorted({campaign for _, _, campaign in rows})
    _, surveyed = await survey(provider, named, delay=delay, clock=SystemClock())
    held = _members(surveyed)
    where = {n: c for c in named for n in held.get(c, ())}
    wanted = {(number, campaign) for _, number, campaign in rows}
    listed = {number for _, number, _ in rows}
    moves = {
        line: where[number]
        for line, number, campaign in rows
        if where.get(number) not in (None, campaign) and (number, where[number]) not in wanted
    }
    unlinks = []
    if prune:
        unlinks = [
            (number, campaign)
            for campaign in named
            for number in sorted(held.get(campaign, ()))
            if number not in listed
        ]
    return moves, unlinks


async def desired(
    spec: JobSpec,
    journal: Path,
    loaded: Loaded,
    lanes: Sequence[Lane],
    connections: Sequence[Connection],
) -> tuple[Loaded, list[Lane]]:
    """The sync input turned into the rows that reach it (see the module's docstring), and
    the lanes with the lines ``--prune`` added; :class:`ConfigError` past ``--max-unlink``.
    ``journal``: the run's, whose rows a resumed sync keeps."""
    frame = loaded.frame
    resumed = None if spec.dry_run else _journal_rows(journal)
    moves: dict[int, str] = {}
    added: list[tuple[int, str, str, str | None]] = []  # line, number, campaign, lane name
    next_line = int(frame.get_column("line").max() or 1) + 1  # type: ignore[arg-type]
    if resumed is not None:
        moves = {
            line: str(source)
            for line, (action, source) in resumed.items()
            if action == "move" and source is not None
        }
        input_lines = set(frame.get_column("line").to_list())
        lane_of = _lane_of_campaign(loaded, lanes)
        for line, number, campaign in _journal_pruned(journal, input_lines):
            added.append((line, number, campaign, lane_of.get(campaign)))
    else:
        for lane, connection in zip(lanes, connections, strict=True):
            lines = set(lane.lines)
            rows = [
                (line, str(e164), str(campaign))
                for line, e164, campaign in frame.select("line", "e164", "campaign_id").iter_rows()
                if line in lines
            ]
            lane_moves, unlinks = await _lane_actions(
                connection.provider, rows, spec.prune, spec.resend_delay
            )
            moves.update(lane_moves)
            for number, campaign in unlinks:
                added.append((next_line, number, campaign, lane.name))
                next_line += 1
        _check_unlinks(added, spec.max_unlink)
    extra: dict[str | None, list[int]] = {}
    for line, _, _, name in added:
        extra.setdefault(name, []).append(line)
    grown = [replace(lane, lines=(*lane.lines, *extra.get(lane.name, ()))) for lane in lanes]
    return _rewritten(loaded, moves, added), grown


def _lane_of_campaign(loaded: Loaded, lanes: Sequence[Lane]) -> dict[str, str | None]:
    """Each named campaign's account (the lane whose rows name it)."""
    campaigns = dict(loaded.frame.select("line", "campaign_id").iter_rows())
    return {str(campaigns[line]): lane.name for lane in reversed(lanes) for line in lane.lines}


def _check_unlinks(added: Sequence[tuple[int, str, str, str | None]], most: int) -> None:
    if len(added) <= most:
        return
    per = Counter(c if name is None else f"{name}/{c}" for _, _, c, name in added)
    which = ", ".join(f"{c} {n}" for c, n in per.most_common())
    raise ConfigError(
        f"sync --prune would unlink {len(added)} numbers ({which}), more than --max-unlink "
        f"{most}: nothing was sent; check the input, or give --max-unlink {len(added)}"
    )


def _rewritten(
    loaded: Any, moves: Mapping[int, str], added: Sequence[tuple[int, str, str, str | None]]
) -> Any:
    """The frame with each row's action (link, or move from where the number is), then the
    pruned rows; ``raw`` the same, so the failures file is input for ``bulk apply``."""
    frame, raw = loaded.frame, loaded.raw
    valid = pl.col("reason").is_null()
    source = pl.col("line").replace_strict(dict(moves), default=None, return_dtype=pl.Utf8)
    action = pl.when(~valid).then(pl.col("action")).when(source.is_not_null()).then(
        pl.lit("move")
    ).otherwise(pl.lit("link"))
    frame = frame.with_columns(
        action=action, from_campaign=source, **{PRUNED: pl.lit(False)}
    )
    raw = raw.with_columns(
        action=frame.get_column("action").fill_null(""),
        from_campaign=frame.get_column("from_campaign").fill_null(""),
    )
    if added:
        accounts = "account" in frame.columns
        extra = pl.DataFrame(
            {
                "line": [a[0] for a in added],
                "number": [a[1] for a in added],
                "e164": [a[1] for a in added],
                "campaign_id": [a[2] for a in added],
                "action": ["unlink"] * len(added),
                **({"account": [a[3] for a in added]} if accounts else {}),
                PRUNED: [True] * len(added),
            }
        )
        frame = pl.concat([frame, extra], how="diagonal_relaxed")
        raw_extra = pl.DataFrame(
            {
                "campaign": [a[2] for a in added],
                "action": ["unlink"] * len(added),
                "from_campaign": [""] * len(added),
                "account": [a[3] or "" for a in added],
            }
        )
        raw = pl.concat([raw, raw_extra], how="diagonal_relaxed")
    return replace(loaded, frame=frame, raw=raw)


def _journal_rows(path: Path) -> dict[int, tuple[str, str | None]] | None:
    """A resumed sync's rows as its first run chose them (line -> action, source)."""
    if not path.is_file():
        return None
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
            got = db.execute("SELECT line, action, from_campaign FROM rows").fetchall()
    except sqlite3.Error:
        return None  # opening it properly says what is wrong
    return {line: (action, source) for line, action, source in got}


def _journal_pruned(path: Path, input_lines: set[int]) -> list[tuple[int, str, str]]:
    """The rows a resumed sync's first run added (line, number, campaign)."""
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        got = db.execute("SELECT line, e164, campaign_id FROM rows ORDER BY line").fetchall()
    return [(line, n, c) for line, n, c in got if line not in input_lines]
