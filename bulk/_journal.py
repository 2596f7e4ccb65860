"""The journal: every row's state in SQLite (WAL), written before and after each request.

Running the same job again with the same journal resumes it. The journal stores no
credentials: only the job's fingerprint (command, provider, options, the input's hash) and
each row's state. Every change goes through the transition table in :mod:`bulk._states`;
an illegal one raises :class:`~bulk.IllegalTransition` and writes nothing.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import sqlite3
import tempfile
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from bulk._errors import IllegalTransition, JournalBusy, JournalError
from bulk._states import TERMINAL, Event, State, next_state

SCHEMA_VERSION = "2"  #: 2: rows gained released_at (a two-step move left its old campaign)

#: fingerprint keys journals written before them lack: such a journal takes this run's value
#: (the run it resumes could not record it) instead of being refused as another job's
ADDED_LATER = frozenset({"account", "validation"})
#: the meta key of when the journal was started (epoch seconds; not part of the fingerprint)
CREATED_AT = "created_at"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS rows (
    line INTEGER PRIMARY KEY,
    e164 TEXT,
    action TEXT NOT NULL,
    campaign_id TEXT,
    from_campaign TEXT,
    state TEXT NOT NULL,
    provider_status TEXT,
    reason TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    submitted_at REAL,
    settled_at REAL,
    released_at REAL,
    updated_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS rows_state ON rows(state);
"""


@dataclass(slots=True)
class RowRecord:
    line: int
    e164: str | None
    action: str
    campaign_id: str | None
    from_campaign: str | None
    state: State = State.PLANNED
    provider_status: str | None = None
    reason: str | None = None
    attempts: int = 0
    submitted_at: float | None = None
    settled_at: float | None = None
    #: when a two-step move's unlink from its old campaign settled: from then on the number
    #: is in no campaign until its link to the new one settles
    released_at: float | None = None

    @property
    def terminal(self) -> bool:
        return self.state in TERMINAL

    def clone(self) -> RowRecord:
        """A copy (several times faster than ``copy.copy`` of a slotted dataclass)."""
        return RowRecord(
            self.line,
            self.e164,
            self.action,
            self.campaign_id,
            self.from_campaign,
            self.state,
            self.provider_status,
            self.reason,
            self.attempts,
            self.submitted_at,
            self.settled_at,
            self.released_at,
        )


@dataclass(slots=True)
class Change:
    """One row's transition, with the fields it sets (None leaves a field as it is)."""

    line: int
    event: Event
    reason: str | None = None
    provider_status: str | None = None
    attempts: int = 0  #: added to the row's count
    fields: dict[str, Any] = field(default_factory=dict)


def iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


_UPDATE = (
    "UPDATE rows SET state=?, provider_status=?, reason=?, attempts=?, submitted_at=?,"
    " settled_at=?, released_at=?, updated_at=? WHERE line=?"
)


class JournalMismatch(JournalError):
    """A journal another job wrote: the first fingerprint ``key`` that differs, the journal's
    ``meta`` (its value there, and the notes kept when it was started), this run's value."""

    def __init__(self, message: str, *, key: str, meta: Mapping[str, str], now: str) -> None:
        super().__init__(message)
        self.key = key
        self.meta = dict(meta)
        self.now = now


class Journal:
    """One job's rows. Not thread-safe: used from the event loop's thread only."""

    def __init__(
        self, path: Path, connection: sqlite3.Connection, rows: dict[int, RowRecord], new: bool
    ) -> None:
        self.path = path
        self._db = connection
        self._rows = rows
        self.new = new
        self._settled = sum(1 for r in rows.values() if r.terminal)

    @classmethod
    def open(
        cls, path: str | Path, fingerprint: Mapping[str, str], notes: Mapping[str, str] = {}
    ) -> Journal:
        """Open (or create) the journal at ``path`` for the job described by ``fingerprint``;
        a new one also keeps ``notes`` (what a refusal may name later: the input's size and
        time when the job started), which are not compared. A journal of another job raises
        :class:`JournalMismatch`."""
        path = Path(path)
        if str(path) != ":memory:":
            _check_writable(path)
        try:
            db = sqlite3.connect(path, isolation_level=None)
            if str(path) != ":memory:":
                try:
                    _hold_file(path)  # a journal this run just made: held by its file too
                except JournalBusy:
                    db.close()
                    raise
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.executescript(_SCHEMA)
            meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
        except sqlite3.DatabaseError as exc:
            if "readonly" in str(exc):  # what the checks above cannot see coming
                raise JournalError(f"{path}: the journal cannot be written ({exc})") from None
            raise JournalError(f"{path}: not a usable bulk journal ({exc})") from None
        wanted = {"schema": SCHEMA_VERSION, **fingerprint}
        if not meta:
            created = {**notes, **wanted, CREATED_AT: repr(time.time())}  # notes: not compared
            db.executemany("INSERT INTO meta(key, value) VALUES (?, ?)", sorted(created.items()))
            return cls(path, db, {}, new=True)
        if meta.get("schema") != SCHEMA_VERSION:
            db.close()
            raise JournalError(
                f"{path} was written by another version of bulk (journal schema "
                f"{meta.get('schema')!r}, this bulk's {SCHEMA_VERSION!r}): resume it with that "
                "version, or use another --journal"
            )
        for key, value in wanted.items():
            if key in ADDED_LATER and key not in meta:
                continue  # a journal older than the key: adopted below, once all else matches
            if meta.get(key) != value:
                db.close()
                raise JournalMismatch(
                    f"{path} belongs to another job ({key}: journal has {meta.get(key)!r}, "
                    f"this run has {value!r}); use another --journal or delete it to start over",
                    key=key,
                    meta=meta,
                    now=value,
                )
        for key in ADDED_LATER & wanted.keys() - meta.keys():
            db.execute("INSERT INTO meta(key, value) VALUES (?, ?)", (key, wanted[key]))
        try:
            rows = _read_rows(path, db)
        except JournalError:
            db.close()
            raise
        return cls(path, db, rows, new=not rows)

    def written(self) -> tuple[float, float] | None:
        """When the job's journal was started and when a row last changed (epoch seconds);
        None while it holds no row. A journal older than its start's record gives the oldest
        row's last change as its start."""
        try:
            row = self._db.execute(
                "SELECT (SELECT value FROM meta WHERE key = ?), min(updated_at), max(updated_at)"
                " FROM rows",
                (CREATED_AT,),
            ).fetchone()
        except sqlite3.Error:
            return None
        created, oldest, last = row
        if last is None:
            return None
        return (float(created) if created is not None else float(oldest)), float(last)

    def check_lines(self, lines: Iterable[int]) -> None:
        """Raise :class:`JournalError` unless the journal holds a row for exactly these input
        lines (a resumed journal whose rows were lost or added by hand)."""
        wanted = set(lines)
        missing = sorted(wanted - self._rows.keys())
        if missing:
            raise JournalError(
                f"{self.path}: holds no row for line {missing[0]} of the input "
                f"({len(missing)} line(s) missing): it was damaged; delete it to start over"
            )
        extra = sorted(self._rows.keys() - wanted)
        if extra:
            raise JournalError(
                f"{self.path}: holds a row for line {extra[0]}, which the input does not have: "
                "it was damaged; delete it to start over"
            )

    def seed(self, records: Iterable[RowRecord]) -> None:
        """Write the job's rows once, at the start of a new job."""
        now = time.time()
        batch = list(records)
        with self._transaction():
            self._db.executemany(  # a generator: no second copy of a million rows
                "INSERT INTO rows(line, e164, action, campaign_id, from_campaign, state,"
                " provider_status, reason, attempts, submitted_at, settled_at, released_at,"
                " updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    (
                        r.line,
                        r.e164,
                        r.action,
                        r.campaign_id,
                        r.from_campaign,
                        r.state.value,
                        r.provider_status,
                        r.reason,
                        r.attempts,
                        r.submitted_at,
                        r.settled_at,
                        r.released_at,
                        now,
                    )
                    for r in batch
                ),
            )
        for r in batch:
            self._rows[r.line] = r
        self._settled = sum(1 for r in self._rows.values() if r.terminal)

    @property
    def rows(self) -> Mapping[int, RowRecord]:
        return self._rows

    @property
    def settled(self) -> int:
        """How many rows have an outcome (a terminal state), kept as changes apply: progress
        reads it at every change, which a count over every row would make O(rows) each."""
        return self._settled

    def get(self, line: int) -> RowRecord:
        return self._rows[line]

    def apply(self, changes: Sequence[Change]) -> None:
        """Apply every change in one transaction, or none if any is illegal."""
        if not changes:
            return
        now = time.time()
        current: dict[int, State] = {}
        planned: list[tuple[RowRecord, Change, State]] = []
        for change in changes:
            record = self._rows[change.line]
            state = current.get(change.line, record.state)
            target = next_state(record.action, state, change.event)
            if target is None:
                raise IllegalTransition(change.line, state.value, change.event.value)
            current[change.line] = target
            planned.append((record, change, target))
        shadow = {line: self._rows[line].clone() for line in current}
        params = []
        for record, change, target in planned:
            row = shadow[record.line]
            row.state = target
            if change.provider_status is not None:
                row.provider_status = change.provider_status
            if change.reason is not None:
                row.reason = change.reason
            elif change.event is Event.RESUME:
                row.reason = None  # the window that deferred it no longer explains the row
            row.attempts += change.attempts
            if "submitted_at" in change.fields:
                row.submitted_at = change.fields["submitted_at"]
            if "released_at" in change.fields:
                row.released_at = change.fields["released_at"]
            if target is State.DEFERRED or target not in TERMINAL:
                row.settled_at = None  # never sent (deferred), or not settled yet
            elif row.settled_at is None:
                row.settled_at = now
        for row in shadow.values():
            params.append(
                (
                    row.state.value,
                    row.provider_status,
                    row.reason,
                    row.attempts,
                    row.submitted_at,
                    row.settled_at,
                    row.released_at,
                    now,
                    row.line,
                )
            )
        if len(params) == 1:  # one statement is atomic by itself: no BEGIN ... COMMIT
            try:
                self._db.execute(_UPDATE, params[0])
            except sqlite3.Error as exc:
                raise write_failed(self.path, exc) from None
        else:
            with self._transaction():
                self._db.executemany(_UPDATE, params)
        for line, row in shadow.items():  # in place: callers may hold these records
            record = self._rows[line]
            self._settled += (row.state in TERMINAL) - (record.state in TERMINAL)
            for name in (
                "state",
                "provider_status",
                "reason",
                "attempts",
                "submitted_at",
                "settled_at",
                "released_at",
            ):
                setattr(record, name, getattr(row, name))

    def close(self) -> None:
        self._db.close()

    def _transaction(self) -> _Tx:
        return _Tx(self._db, self.path)


class Ledger(Protocol):
    """What the engine reads and writes rows through: a :class:`Journal`, or a
    :class:`JournalView` of one account's rows in it."""

    @property
    def rows(self) -> Mapping[int, RowRecord]: ...

    def get(self, line: int) -> RowRecord: ...

    def apply(self, changes: Sequence[Change]) -> None: ...


class JournalView:
    """Some rows of a journal (one account's), written through to it: every account's
    engine shares the one journal, and each sees only its own rows."""

    def __init__(self, journal: Journal, lines: Iterable[int]) -> None:
        self._journal = journal
        self._rows = {line: journal.get(line) for line in lines}

    @property
    def rows(self) -> Mapping[int, RowRecord]:
        return self._rows

    def get(self, line: int) -> RowRecord:
        return self._rows[line]

    def apply(self, changes: Sequence[Change]) -> None:
        for change in changes:
            if change.line not in self._rows:
                raise KeyError(f"line {change.line} is not one of this view's rows")
        self._journal.apply(changes)


_STATES = {s.value: s for s in State}


def _read_rows(path: Path, db: sqlite3.Connection) -> dict[int, RowRecord]:
    """Every row of an existing journal; :class:`JournalError` naming the line when one cannot
    be read (a damaged page, a state this version does not know)."""
    rows: dict[int, RowRecord] = {}
    try:
        for r in db.execute(
            "SELECT line, e164, action, campaign_id, from_campaign, state, provider_status,"
            " reason, attempts, submitted_at, settled_at, released_at FROM rows ORDER BY line"
        ):
            state = _STATES.get(r[5])
            if state is None:
                raise JournalError(
                    f"{path}: line {r[0]} has the unknown state {r[5]!r}: the journal was "
                    "damaged or written by another version of bulk"
                )
            rows[r[0]] = RowRecord(
                r[0], r[1], r[2], r[3], r[4], state, r[6], r[7], r[8], r[9], r[10], r[11]
            )
    except sqlite3.DatabaseError as exc:
        raise JournalError(f"{path}: not a usable bulk journal ({exc})") from None
    return rows


def _check_writable(path: Path) -> None:
    """Say plainly why a journal cannot be written there, before SQLite's vaguer words.

    SQLite writes the journal and its ``-wal`` and ``-shm`` files beside it, so the folder must
    let bulk create files (probed with a file created and removed at once, which also holds for
    root, who writes through permission bits but not through a read-only or immutable folder).
    """
    folder = path.absolute().parent
    if not folder.exists():
        raise JournalError(f"{path}: cannot create the journal: the folder {folder} does not exist")
    if not folder.is_dir():
        raise JournalError(f"{path}: cannot create the journal: {folder} is not a folder")
    if path.is_dir():
        raise JournalError(f"{path}: is a directory, not a journal file")
    if path.exists() and not os.access(path, os.W_OK):
        raise JournalError(
            f"{path}: the journal file is read-only; make it writable or use another --journal"
        )
    try:
        fd, probe = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".probe", dir=folder)
    except OSError as exc:
        raise JournalError(
            f"{path}: the folder {folder} is not writable ({exc.strerror or exc}); the journal "
            "and its -wal and -shm files are written there: use another --journal"
        ) from None
    os.close(fd)
    os.unlink(probe)


def write_failed(path: Path, exc: sqlite3.Error) -> JournalError:
    """The error for a journal write SQLite refused (disk full, read-only, I/O error)."""
    return JournalError(
        f"{path}: cannot write the journal ({exc}); free space or fix the folder, then run "
        "the same command again to resume"
    )


class _Tx:
    """``BEGIN IMMEDIATE`` ... ``COMMIT``; a failed write becomes a :class:`JournalError`."""

    def __init__(self, db: sqlite3.Connection, path: Path) -> None:
        self._db = db
        self._path = path

    def __enter__(self) -> None:
        try:
            self._db.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise write_failed(self._path, exc) from None

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            try:
                self._db.execute("COMMIT")
                return
            except sqlite3.Error as commit_error:
                exc = commit_error
        if self._db.in_transaction:  # SQLite rolls back by itself after SQLITE_FULL
            try:
                self._db.execute("ROLLBACK")
            except sqlite3.Error:
                pass  # the write failed already; that is the error to report
        if isinstance(exc, sqlite3.Error):
            raise write_failed(self._path, exc) from None


def lock_path(journal: Path) -> Path:
    """The file a run locks to hold ``journal``: ``<journal>.lock`` beside it."""
    return journal.with_name(journal.name + ".lock")


#: journals this process holds (their resolved paths) -> the descriptors holding them: the
#: ``<journal>.lock`` file's, then the journal file's own once it exists
_HELD: dict[Path, list[int]] = {}


@contextmanager
def exclusive(journal: Path) -> Iterator[Path]:
    """Hold ``journal`` for this process until the block ends, or raise :class:`JournalBusy`.

    Two OS locks (``flock``), which the kernel releases when the process ends, however it
    ends, so a run killed with SIGKILL never blocks the next one:

    * on ``<journal>.lock`` (beside the file a symlink names), taken first, so two runs that
      name one journal that does not exist yet meet there. The file stays behind (removing
      it would race a run that just opened it); after locking, it holds the holder's pid,
      host and start time, which a refused run names;
    * on the journal file itself (its inode: a hard link under another name, in another
      folder, is the same file), as soon as it exists: here when it does, else when
      :meth:`Journal.open` makes it. Two runs on one SQLite file under two names would each
      keep their own ``-wal`` beside their own name and corrupt it. ``flock`` does not meet
      SQLite's own (``fcntl``) locks, and the descriptor stays open until the journal is
      closed, so SQLite's locks are never dropped by closing it.
    """
    _check_writable(journal)  # a clear word on the folder before the lock's vaguer one
    # beside the file itself: a symlink to a journal must meet the lock of a run on its target
    resolved = journal.resolve()
    path = lock_path(resolved)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError as exc:
        raise JournalError(f"{path}: cannot create the journal's lock ({exc.strerror})") from None
    held = [fd]
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 4096, 0).decode("utf-8", "replace").strip() or "unknown"
            raise JournalBusy(
                f"{journal} is in use by another run ({holder}); nothing was sent"
            ) from None
        _HELD[resolved] = held
        _hold_file(journal)
        started = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
        os.ftruncate(fd, 0)
        os.pwrite(
            fd, f"pid {os.getpid()}, host {socket.gethostname()}, started {started}\n".encode(), 0
        )
        yield path
    finally:
        if _HELD.get(resolved) is held:
            del _HELD[resolved]
        for each in reversed(held):
            os.close(each)  # closing a descriptor releases its lock


def _hold_file(journal: Path) -> None:
    """Lock the journal file itself for the :func:`exclusive` block that holds ``journal``
    (nothing when none does, or it does not exist yet, or it is held already)."""
    held = _HELD.get(journal.resolve())
    if held is None or len(held) > 1:
        return
    try:
        fd = os.open(journal, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return  # made later by Journal.open, which comes back here
    except OSError as exc:
        raise JournalError(f"{journal}: cannot open the journal ({exc.strerror})") from None
    held.append(fd)  # closed with the block, also when refused (never while SQLite uses it)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise JournalBusy(
            f"{journal} is in use by another run (the same file under another name: a hard "
            "link); nothing was sent"
        ) from None


def fingerprint_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))
