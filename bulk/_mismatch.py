"""A journal another job wrote, refused in words: which file or option changed (a file by its
path, size and time, never by its digest) and the two ways forward."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path

from bulk._errors import JournalError
from bulk._journal import JournalMismatch

#: the files a journal's fingerprint holds the digest of: key -> (what it is, its notes' key)
_FILES = {"input_sha256": ("the input", "input"), "campaigns_sha256": ("--campaigns", "campaigns")}
#: the options of the fingerprint's ``options``, as the command line names them
_OPTIONS = {"campaign": "--campaign", "from": "--from", "base_url": "--base-url or --sandbox",
            "accounts": "--accounts", "account": "--account", "shard": "--shard"}


def _stat(path: Path) -> tuple[int, float] | None:
    try:
        info = path.stat()
    except OSError:
        return None
    return info.st_size, info.st_mtime


def _when(ts: float) -> str:
    return datetime.fromtimestamp(ts).astimezone().strftime("%Y-%m-%d %H:%M:%S %Z").strip()


def notes(files: Mapping[str, Path | None]) -> dict[str, str]:
    """What a new journal keeps of its job's files (path, size, time), for a refusal to name
    later: ``files`` maps ``input``/``campaigns`` to the file (None: none given)."""
    kept: dict[str, str] = {}
    for name, path in files.items():
        found = None if path is None else _stat(path)
        if path is not None and found is not None:
            kept[f"{name}_file"] = json.dumps(
                {"path": str(path), "size": found[0], "mtime": found[1]}
            )
    return kept


def _file_change(exc: JournalMismatch, what: str, note: str, path: Path | None) -> str:
    if path is None:
        return f"it was started with {what}, and this run gives none"
    if exc.meta.get(exc.key) == "-":
        return f"it was started without {what}, and this run gives {path}"
    now = _stat(path)
    said = f"{what} {path} changed since the journal was started"
    then = exc.meta.get(f"{note}_file")
    parts = []
    if then is not None:
        was = json.loads(then)
        parts.append(f"then {was['path']}: {was['size']} bytes, modified {_when(was['mtime'])}")
    if now is not None:
        parts.append(f"now {now[0]} bytes, modified {_when(now[1])}")
    return said + (f" ({'; '.join(parts)})" if parts else "")


def _option_change(exc: JournalMismatch) -> str:
    try:
        was, now = json.loads(exc.meta.get(exc.key, "{}")), json.loads(exc.now)
    except ValueError:
        return "it was started with other options"
    changed = [
        f"{_OPTIONS.get(k, k)}: journal has {was.get(k)!r}, this run has {now.get(k)!r}"
        for k in sorted(set(was) | set(now))
        if was.get(k) != now.get(k)
    ]
    return "it was started with other options (" + "; ".join(changed) + ")"


def reworded(
    exc: JournalMismatch,
    journal: Path,
    files: Mapping[str, Path | None],
    also: Sequence[Path] = (),
) -> JournalError:
    """The refusal of a journal another job wrote, naming what changed and the ways forward:
    run the job as it was started to resume it, or delete the journal (and ``also``: the
    sandbox's state kept beside it) or give another ``--journal`` to start over."""
    if exc.key in _FILES:
        what, note = _FILES[exc.key]
        why = _file_change(exc, what, note, files.get(note))
        resume = f"put {what} back as it was"
    elif exc.key == "options":
        why = _option_change(exc)
        resume = "give the options it was started with"
    else:
        why = f"{exc.key}: journal has {exc.meta.get(exc.key)!r}, this run has {exc.now!r}"
        resume = "run it as it was started"
    gone = " and ".join(str(p) for p in [journal, *also])
    return JournalError(
        f"{journal} belongs to another job ({why}). To resume that job, {resume}; to start "
        f"over, delete {gone} or give another --journal"
    )


__all__ = ["notes", "reworded"]
