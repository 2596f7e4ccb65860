"""The results report: one row per input data row, in input order.

Columns (the public contract): ``line, number, e164, campaign_id, action, outcome,
provider_status, reason, attempts, submitted_at, settled_at``, then ``account`` when
accounts are in use (``--accounts``), then the input's other columns. CSV by default;
``.json`` writes a JSON array of objects, ``.parquet`` Parquet.
:func:`write` also writes the report of ``bulk validate``.

In CSV, a cell a spreadsheet would run as a formula (starting ``=``, ``+``, ``-``, ``@``, TAB
or CR) gets a leading ``'``, unless the whole cell is a plain number such as
``+14155550100``; header cells too (an input's extra column may be named ``=HYPERLINK(...)``).
bulk's own readers strip that ``'`` again (from numbers and header names), so a report can be
re-fed.
"""

from __future__ import annotations

import os
import tempfile
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from contextlib import suppress
from dataclasses import replace
from pathlib import Path

import polars as pl

from bulk._errors import ConfigError
from bulk._journal import RowRecord, iso
from bulk._states import EXIT_DEFERRED as EXIT_DEFERRED
from bulk._states import SUCCESS, State, final_outcome
from bulk._states import exit_code as exit_code
from bulk.inputs import BASE_COLUMNS, Loaded
from bulk.inputs._csvsafe import neutralise_frame

REPORT_COLUMNS = (
    "line",
    "number",
    "e164",
    "campaign_id",
    "action",
    "outcome",
    "provider_status",
    "reason",
    "attempts",
    "submitted_at",
    "settled_at",
)
OUTCOMES = (
    "linked",
    "unlinked",
    "moved",
    "already",
    "failed",
    "rejected",
    "unknown",
    "deferred",
    "drifted",
)
SUCCESS_OUTCOMES = frozenset(s.value for s in SUCCESS)
#: columns a failures file adds to the input's own (the row's line in the input of the run
#: that wrote it, its outcome and reason there); dropped from re-fed input first
PREVIOUS = ("previous_line", "previous_outcome", "previous_reason")


def carried(loaded: Loaded) -> Loaded:
    """The input's own columns as a run's report and failures file carry them: each under its
    header, but a header the report uses itself (``outcome``, ``attempts``, ..., and
    ``account``, also without ``--accounts``) as ``input_<header>``.

    An input that is a bulk report (every report column among its headers) keeps none of the
    report's own columns (``line``, ``outcome``, ...): re-fed, each would come back renamed.
    Its other columns, ``input_outcome`` (the first input's ``outcome``) among them, are kept
    under their header, so a report re-fed again and again keeps the same columns."""
    chosen = set(loaded.columns.values())
    headers = [h for h in loaded.headers if h not in chosen]  # aligned with extra_columns
    is_report = set(REPORT_COLUMNS) <= {h.strip().lower() for h in loaded.headers}
    reserved = {*BASE_COLUMNS, *REPORT_COLUMNS, "account"}
    kept = [
        (header, name)
        for header, name in zip(headers, loaded.extra_columns, strict=True)
        if not (is_report and header.strip().lower() in REPORT_COLUMNS)
    ]
    taken = reserved | {header for header, _ in kept if header not in reserved}
    renamed: list[pl.Expr] = []
    for header, name in kept:
        new = header
        if header in reserved:
            while new in taken:
                new = f"input_{new}"
            taken.add(new)
        renamed.append(pl.col(name).alias(new))
    base = [c for c in loaded.frame.columns if c not in set(loaded.extra_columns)]
    frame = loaded.frame.select(*base, *renamed)
    return replace(loaded, frame=frame, extra_columns=frame.columns[len(base) :])


def outcome_of(row: RowRecord, stopped: str | None = None) -> tuple[str, str | None]:
    """A row's outcome and reason (:func:`bulk._states.final_outcome`); a row not yet terminal
    (interrupted) is unknown.

    ``stopped`` is why the run ended early (an error), for the rows it left unfinished.
    """
    state, reason = final_outcome(
        row.state,
        row.reason,
        released=row.released_at is not None,
        from_campaign=row.from_campaign,
        campaign=row.campaign_id,
        stopped=stopped,
    )
    return state.value, reason


def build(
    frame: pl.DataFrame,
    extra_columns: Sequence[str],
    rows: Mapping[int, RowRecord],
    *,
    stopped: str | Mapping[int, str] | None = None,
) -> pl.DataFrame:
    """Join the validated input with the journal's rows into the report frame.

    ``stopped``: why the run ended before every row was done (see :func:`outcome_of`): one
    reason for all, or one per line (an account whose lane stopped while the others ran on;
    its lines only)."""
    lines = frame.get_column("line").to_list()
    outcome: list[str] = []
    reason: list[str | None] = []
    status: list[str | None] = []
    attempts: list[int] = []
    submitted: list[str | None] = []
    settled: list[str | None] = []
    campaign: list[str | None] = []
    action: list[str | None] = []
    for line in lines:
        row = rows[line]
        why = stopped.get(line) if isinstance(stopped, Mapping) else stopped
        o, r = outcome_of(row, why)
        outcome.append(o)
        reason.append(r)
        status.append(row.provider_status)
        attempts.append(row.attempts)
        submitted.append(iso(row.submitted_at))
        settled.append(iso(row.settled_at))
        campaign.append(row.campaign_id)
        action.append(row.action if row.action != "none" else None)
    base = frame.select(
        pl.col("line"),
        pl.col("number"),
        pl.col("e164"),
    )
    report = base.with_columns(
        pl.Series("campaign_id", campaign, dtype=pl.Utf8),
        pl.Series("action", action, dtype=pl.Utf8),
        pl.Series("outcome", outcome, dtype=pl.Utf8),
        pl.Series("provider_status", status, dtype=pl.Utf8),
        pl.Series("reason", reason, dtype=pl.Utf8),
        pl.Series("attempts", attempts, dtype=pl.Int64),
        pl.Series("submitted_at", submitted, dtype=pl.Utf8),
        pl.Series("settled_at", settled, dtype=pl.Utf8),
    )
    if "_bulk_pruned" in frame.columns:  # bulk sync --prune's rows: not the input's lines
        pruned = frame.get_column("_bulk_pruned").fill_null(False)
        line = pl.when(pruned).then(None).otherwise(pl.col("line"))
        report = report.with_columns(line.alias("line"))
    if "account" in frame.columns:  # accounts in use: whose row it is, after settled_at
        report = report.with_columns(frame.get_column("account"))
    extras = [c for c in extra_columns if c not in REPORT_COLUMNS]
    if extras:
        report = pl.concat([report, frame.select(extras)], how="horizontal")
    return report


#: what a run's --report and --failures accept
FORMATS = (".csv", ".json", ".parquet")
#: JSON lines, which ``bulk validate --report`` accepts too
LINE_FORMATS = (".jsonl", ".ndjson")


def check_path(path: Path, what: str, formats: Sequence[str] = FORMATS) -> None:
    """Refuse, before anything is sent, a report path bulk could not write at the end: an
    extension not in ``formats``, a directory in the file's place, a folder that is a file or
    where no file can be created (probed with a file created and removed at once; an existing
    report is left untouched)."""
    if path.suffix.lower() not in formats:
        raise ConfigError(
            f"{what} {path}: unknown extension {path.suffix or '(none)'!r}; "
            f"use {' or '.join(formats)}"
            + ("" if formats == FORMATS else " (bulk reads it back as input)")
        )
    check_folder(path, what)


def check_folder(path: Path, what: str) -> None:
    """Refuse a path whose file bulk could not write at the end: a directory in its place, a
    folder that is a file or where no file can be created (see :func:`check_path`)."""
    if path.is_dir():
        raise ConfigError(f"{what} {path}: is a directory; give a file name")
    if path.exists() and not path.is_file():
        # a device, a FIFO, a socket: renaming a report over it would replace the node
        raise ConfigError(f"{what} {path}: is not a regular file; give a file name")
    path = _through_links(path)
    folder = path.absolute().parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent  # missing folders are created when the report is written
    if not folder.is_dir():
        raise ConfigError(f"{what} {path}: cannot be written: {folder} is not a folder")
    if path.exists() and not os.access(path, os.W_OK):
        raise ConfigError(f"{what} {path}: the file is read-only")
    try:
        fd, probe = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".probe", dir=folder)
    except OSError as exc:
        raise ConfigError(
            f"{what} {path}: cannot create a file in {folder} ({exc.strerror or exc})"
        ) from None
    os.close(fd)
    os.unlink(probe)


def write(frame: pl.DataFrame, path: str | Path, *, bom: bool = False) -> Path:
    """Write ``frame`` by the path's extension: ``.json``, ``.jsonl``/``.ndjson`` (JSON lines),
    ``.parquet``, else CSV with formulas neutralised (with a UTF-8 BOM when ``bom``).

    The one writer of every report and failures file. It writes a temporary file beside the
    target and renames it into place, so a reader never sees half a report and a failed write
    leaves the previous file as it was. A symlink is written through: the file it names is
    replaced (or made) and the link stays.
    """
    path = _through_links(Path(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(handle)
    temp = Path(temp_name)
    try:
        suffix = path.suffix.lower()
        if suffix == ".json":
            frame.write_json(temp)
        elif suffix in LINE_FORMATS:
            frame.write_ndjson(temp)
        elif suffix == ".parquet":
            frame.write_parquet(temp)
        else:
            neutralise_frame(frame).write_csv(temp, include_bom=bom)
        umask = os.umask(0)
        os.umask(umask)
        temp.chmod(0o666 & ~umask)  # mkstemp creates 0600; give the report normal permissions
        temp.replace(path)
    finally:
        temp.unlink(missing_ok=True)
    return path


def write_text(path: Path, text: str, what: str) -> None:
    """Write ``text`` to a temporary file beside ``path`` (its missing folders made, as a
    report's are), then rename it over ``path``; :class:`ConfigError` naming ``what`` (the
    summary, the plan) when it cannot be written."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary.write_text(text, encoding="utf-8")
        os.replace(temporary, path)
    except OSError as exc:
        with suppress(OSError):  # its folder may be gone, or no folder at all
            temporary.unlink(missing_ok=True)
        raise ConfigError(f"{path}: cannot write {what} ({exc.strerror or exc})") from None


def _through_links(path: Path) -> Path:
    """The file a report path names: the target of its symlinks (made if it dangles), else
    the path itself."""
    return path.resolve() if path.is_symlink() else path


def failures(
    report: pl.DataFrame,
    raw: pl.DataFrame,
    extra_columns: Sequence[str],
    released: Iterable[int] = (),
) -> pl.DataFrame:
    """The rows that did not succeed, shaped as input bulk reads again.

    ``raw`` holds each row's campaign, action and from_campaign cells as given, row-aligned
    with the report: where a value could not be resolved (an unknown alias, say), the cell as
    the user wrote it is kept, so they can correct it and re-feed the file. ``released`` are
    the lines of two-step moves that already left their old campaign: what they still need is
    a ``link`` to the new one (a move from the old campaign could no longer work).
    """
    failing = ~pl.col("outcome").is_in(sorted(SUCCESS_OUTCOMES))
    given = raw.select(
        pl.col(c).replace("", None).alias(f"given_{c}")
        for c in ("campaign", "action", "from_campaign")
    )
    both = pl.concat([report, given], how="horizontal").filter(failing)
    keep = [c for c in extra_columns if c not in PREVIOUS and c not in REPORT_COLUMNS]
    left = pl.col("line").is_in(sorted(set(released)))
    return both.select(
        pl.col("number"),
        pl.coalesce("campaign_id", "given_campaign").alias("campaign_id"),
        pl.when(left)
        .then(pl.lit("link"))
        .otherwise(pl.coalesce("action", "given_action"))
        .alias("action"),
        pl.when(left).then(None).otherwise(pl.col("given_from_campaign")).alias("from_campaign"),
        *([pl.col("account")] if "account" in report.columns else []),
        *[pl.col(c) for c in keep],
        pl.col("line").alias("previous_line"),
        pl.col("outcome").alias("previous_outcome"),
        pl.col("reason").alias("previous_reason"),
    )


def counts(report: pl.DataFrame) -> dict[str, int]:
    got = dict(report.group_by("outcome").len().iter_rows())
    return {o: int(got.get(o, 0)) for o in OUTCOMES}


def counts_of(rows: Iterable[RowRecord]) -> dict[str, int]:
    """Rows per outcome, from journal records (no report frame needed)."""
    got = Counter(outcome_of(row)[0] for row in rows)
    return {o: got.get(o, 0) for o in OUTCOMES}


__all__ = [
    "OUTCOMES",
    "REPORT_COLUMNS",
    "State",
    "build",
    "counts",
    "exit_code",
    "failures",
    "write",
]
