"""A run's input, read and checked: its rows (:class:`~bulk.inputs.Loaded`) and the hash that
identifies them (the journal's fingerprint and the summary keep it), and the journal records
they start as."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

import polars as pl

from bulk import _report
from bulk._accounts import Account, parse_shard
from bulk._errors import ConfigError
from bulk._jobvalues import JobSpec
from bulk._journal import RowRecord
from bulk._states import State
from bulk.inputs import Loaded, load_rows


@dataclass(frozen=True, slots=True)
class Input:
    """The rows a run works on, and the hash of the input they were read from."""

    loaded: Loaded
    sha256: str


class InputChanged(ConfigError):
    """The input changed while it was read; ``sha256`` is its hash once read."""

    def __init__(self, message: str, sha256: str) -> None:
        super().__init__(message)
        self.sha256 = sha256


def sha256(path: Path | None) -> str:
    """A file's SHA-256 (``-`` for no file)."""
    if path is None:
        return "-"
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def load_steady(spec: JobSpec, accounts: Mapping[str, Account] | None) -> Input:
    """The job's input, read while it does not change: a file is hashed before and after it
    is read, and one that changed in between is refused (:class:`InputChanged`), since the
    rows read may match neither version. ``accounts``: every account of the accounts file."""
    if spec.preloaded is not None:
        return Input(*spec.preloaded)
    before = sha256(spec.input) if spec.input.is_file() else None
    loaded = load(spec, accounts)
    after = sha256(spec.input)
    if before is not None and after != before:
        raise InputChanged(
            f"{spec.input} changed while it was read; run again once it is written", after
        )
    return Input(loaded, after)


def load(spec: JobSpec, accounts: Mapping[str, Account] | None = None) -> Loaded:
    """Read and check the input; with ``accounts`` (every account of the file, whatever the
    shard), each row's account too. With ``spec.shard``, every row is checked first, across
    the whole input as an unsharded run checks it, then only the shard's rows are kept: those
    whose account hashes to it, and in shard 0 the rows whose account is none of the file's
    (see :meth:`Shard.holds_row`)."""
    # a sync's rows say where each number belongs: their action, when given, is link
    action: str | None = "link" if spec.command == "sync" else spec.command
    if spec.command in ("apply", "status"):
        action = None
    loaded = load_rows(
        spec.input,
        campaigns_path=spec.campaigns,
        default_campaign=spec.campaign,
        default_action=action,
        default_from_campaign=spec.from_campaign,
        regions=spec.regions,
        number_type=spec.number_type,
        max_input_bytes=spec.max_input_bytes,
        accounts=None if accounts is None else list(accounts),
        default_account=spec.account_name,
    )
    loaded = _report.carried(loaded)
    if spec.shard is None:
        return loaded
    shard = parse_shard(spec.shard)
    if accounts is not None and "account" in loaded.frame.columns:
        names = loaded.frame.get_column("account").to_list()
        keep = pl.Series([shard.holds_row(name, accounts) for name in names], dtype=pl.Boolean)
    else:  # no accounts file (a run refuses --shard without one): every row is shard 0's
        keep = pl.Series([shard.index == 0] * loaded.frame.height, dtype=pl.Boolean)
    return replace(loaded, frame=loaded.frame.filter(keep), raw=loaded.raw.filter(keep))


def seed_records(loaded: Loaded) -> list[RowRecord]:
    """One journal record per input row. Campaign ids and actions repeat across rows: each
    distinct string is stored once (a million rows share a handful of them)."""
    records = []
    shared: dict[str, str] = {}

    def one(value: str | None) -> str | None:
        return None if value is None else shared.setdefault(value, value)

    frame = loaded.frame.select(
        "line", "e164", "action", "campaign_id", "from_campaign", "reason", "detail"
    )
    for line, e164, action, campaign, source, reason, detail in frame.iter_rows():
        if reason is None:
            records.append(
                RowRecord(line, e164, one(action or "link") or "link", one(campaign), one(source))
            )
        else:
            text = f"{reason}: {detail}" if detail else reason
            records.append(
                RowRecord(
                    line,
                    e164,
                    one(action or "none") or "none",
                    one(campaign),
                    one(source),
                    State.REJECTED,
                    reason=text,
                )
            )
    return records


__all__ = ["Input", "InputChanged", "load", "load_steady", "seed_records", "sha256"]
