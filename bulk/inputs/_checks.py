"""Row checks across the file (campaigns, actions, duplicates, conflicts) and the summary."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from bulk._errors import InputError
from bulk.inputs._read import MAX_INPUT_BYTES, read_table
from bulk.inputs._reasons import REASONS

ACTIONS = ("link", "unlink", "move")
_NULL = pl.lit(None, dtype=pl.Utf8)
_MAX_LINES_SHOWN = 5


@dataclass(frozen=True, slots=True)
class Campaigns:
    """The campaigns file: ids (case-sensitive) and aliases (case-insensitive)."""

    ids: list[str]
    aliases: dict[str, str]  # lower-cased alias -> id
    alias_of: dict[str, str]  # id -> alias as written
    path: str | None = None
    #: account name, lower-cased -> its own campaigns (rows of a campaigns file with an
    #: ``account`` cell); the rows without one are shared by every account
    scoped: dict[str, Campaigns] = field(default_factory=dict)

    def resolve(self, value: str) -> str | None:
        value = value.strip()
        if value in self.alias_of or value in self.ids:
            return value
        return self.aliases.get(value.lower())

    def for_account(self, account: str) -> Campaigns:
        """The campaigns an account's rows may name: its own, then the shared ones."""
        own = self.scoped.get(account)
        if own is None:
            return self
        ids = [*own.ids, *(i for i in self.ids if i not in own.alias_of)]
        return Campaigns(
            ids=ids,
            aliases={**self.aliases, **own.aliases},
            alias_of={**self.alias_of, **own.alias_of},
            path=self.path,
        )

    def every_alias(self) -> dict[str, str]:
        """id -> alias over the shared and every account's campaigns."""
        merged = dict(self.alias_of)
        for own in self.scoped.values():
            for cid, alias in own.alias_of.items():
                merged[cid] = merged.get(cid) or alias
        return merged


def _key(name: str) -> str:
    return "_".join(name.strip().lower().replace("-", " ").split())


@dataclass(slots=True)
class _Scope:
    """The campaigns of one account (or the shared ones) while the file is read."""

    ids: list[str] = field(default_factory=list)
    aliases: dict[str, str] = field(default_factory=dict)
    alias_of: dict[str, str] = field(default_factory=dict)
    alias_lines: dict[str, int] = field(default_factory=dict)

    def add(self, campaign: str, alias: str, line: int, where: tuple[str, str | None]) -> None:
        if campaign not in self.alias_of:
            self.ids.append(campaign)
            self.alias_of.setdefault(campaign, "")
        if not alias:
            return
        lowered = alias.lower()
        if lowered in self.aliases and self.aliases[lowered] != campaign:
            raise InputError(
                f"alias {alias!r} names two campaigns ({self.aliases[lowered]} on line "
                f"{self.alias_lines[lowered]}, {campaign} here)",
                path=where[0],
                line=line,
                column=where[1],
            )
        self.aliases[lowered] = campaign
        self.alias_lines[lowered] = line
        self.alias_of[campaign] = self.alias_of[campaign] or alias

    def build(self, path: str, scoped: dict[str, Campaigns] | None = None) -> Campaigns:
        return Campaigns(self.ids, self.aliases, self.alias_of, path, scoped or {})


def read_campaigns(path: str | Path, *, max_bytes: int = MAX_INPUT_BYTES) -> Campaigns:
    """Read a ``campaign_id[,alias][,account]`` file. Rows with an ``account`` cell belong
    to that account only (so two accounts may use the same alias for different campaigns)."""
    table = read_table(path, what="campaigns file", max_bytes=max_bytes)
    by_key = {_key(h): h for h in reversed(table.headers)}
    id_col = by_key.get("campaign_id") or by_key.get("id") or by_key.get("campaign")
    if id_col is None:
        raise InputError(
            f"no campaign_id column; headers seen: {', '.join(table.headers)} "
            "(expected campaign_id and optionally alias and account)",
            path=table.path,
            line=1,
        )
    alias_col = by_key.get("alias") or by_key.get("name")
    account_col = by_key.get("account")
    scopes: dict[str, _Scope] = {"": _Scope()}
    lines = table.frame.get_column("__bulk_line__").to_list()

    def cells(column: str | None) -> list[str]:
        if column is None:
            return [""] * len(lines)
        return [(v or "").strip() for v in table.frame.get_column(column).to_list()]

    rows = zip(lines, cells(id_col), cells(alias_col), cells(account_col), strict=True)
    for line, campaign, alias, account in rows:
        if not campaign:
            if alias:
                raise InputError(
                    f"alias {alias!r} has no campaign_id",
                    path=table.path,
                    line=line,
                    column=id_col,
                )
            continue
        scope = scopes.setdefault(account.lower(), _Scope())  # names match any case
        scope.add(campaign, alias, line, (table.path, alias_col))
    shared = scopes.pop("")
    scoped = {name: scope.build(table.path) for name, scope in scopes.items()}
    return shared.build(table.path, scoped)


def resolve_option(value: str | None, campaigns: Campaigns | None, flag: str) -> str | None:
    """Resolve a --campaign / --from value (alias or id). Unknown with a campaigns file = error."""
    if value is None or not value.strip():
        return None
    if campaigns is None:
        return value.strip()
    if campaigns.scoped:  # resolved per row's account; here: known to some account at least
        scopes = [campaigns, *(campaigns.for_account(a) for a in campaigns.scoped)]
        if any(scope.resolve(value) is not None for scope in scopes):
            return value.strip()
    resolved = campaigns.resolve(value)
    if resolved is None:
        known = ", ".join(
            f"{alias} ({cid})" if alias else cid for cid, alias in campaigns.every_alias().items()
        )
        raise InputError(
            f"{flag} {value.strip()!r} is neither a campaign id nor an alias in this file "
            f"(known: {known or 'none'})",
            path=campaigns.path,
        )
    return resolved


def _resolve_expr(raw: pl.Expr, campaigns: Campaigns | None) -> pl.Expr:
    stripped = raw.str.strip_chars()
    if campaigns is None:
        return pl.when(stripped == "").then(_NULL).otherwise(stripped)
    by_id = stripped.replace_strict(
        campaigns.ids, campaigns.ids, default=None, return_dtype=pl.Utf8
    )
    by_alias = stripped.str.to_lowercase().replace_strict(
        list(campaigns.aliases),
        list(campaigns.aliases.values()),
        default=None,
        return_dtype=pl.Utf8,
    )
    return pl.coalesce(by_id, by_alias)


def _resolve_scoped(raw: pl.Expr, campaigns: Campaigns | None) -> pl.Expr:
    """Resolve per row's ``account`` where the campaigns file has account rows."""
    if campaigns is None or not campaigns.scoped:
        return _resolve_expr(raw, campaigns)
    chain: Any = None
    for name in campaigns.scoped:
        resolved = _resolve_expr(raw, campaigns.for_account(name))
        when = pl.col("account").str.to_lowercase() == name
        chain = pl.when(when).then(resolved) if chain is None else chain.when(when).then(resolved)
    whole: pl.Expr = chain.otherwise(_resolve_expr(raw, campaigns))
    return whole


def with_accounts(
    frame: pl.DataFrame, accounts: Collection[str] | None, default_account: str | None
) -> pl.DataFrame:
    """Add ``account`` (null when the row names none) when accounts are in use: the row's
    ``account`` cell; else ``--account``, or with a single account, that one. (A row naming
    another account than ``--account`` keeps its own: it is ``account_mismatch``.)"""
    if accounts is None:
        return frame
    cell = pl.col("_account").str.strip_chars()
    only = next(iter(accounts)) if len(accounts) == 1 else None
    if default_account is not None:  # a row naming another keeps it (``account_mismatch``)
        only = default_account.strip()
    # names match whatever their case ("East" is the file's "east"); others stay as given
    canonical = {name.lower(): name for name in accounts}
    named = cell.str.to_lowercase().replace_strict(
        list(canonical), list(canonical.values()), default=cell, return_dtype=pl.Utf8
    )
    return frame.with_columns(
        account=pl.when(cell == "").then(pl.lit(only, dtype=pl.Utf8)).otherwise(named)
    )


def _account_checks(
    accounts: Collection[str] | None, default_account: str | None
) -> list[_Check]:
    if accounts is None:
        return []
    known = ", ".join(sorted(accounts)) or "none"
    mismatch: list[_Check] = []
    if default_account is not None:
        name = default_account.strip()
        mismatch.append(
            (
                pl.col("account") != name,
                "account_mismatch",
                pl.format(f"the row says account '{{}}', not --account {name}", pl.col("account")),
            )
        )
    return [
        *mismatch,
        (
            pl.col("account").is_null(),
            "missing_account",
            pl.lit("no account on this row; add an account column or pass --account"),
        ),
        (
            ~pl.col("account").is_in(sorted(accounts)),
            "unknown_account",
            pl.format(f"account '{{}}' is not in the accounts file (known: {known})",
                      pl.col("account")),
        ),
    ]


_Check = tuple[pl.Expr, str, pl.Expr]  # condition, reason code, detail text


def _raw_action() -> pl.Expr:
    return pl.col("_action").str.strip_chars().str.to_lowercase()


def _with_targets(
    frame: pl.DataFrame,
    *,
    campaigns: Campaigns | None,
    default_campaign: str | None,
    default_action: str | None,
    default_from_campaign: str | None,
) -> pl.DataFrame:
    """Add ``campaign_id``, ``action`` (null when unknown) and ``from_campaign`` (moves only)."""
    raw_action = _raw_action()
    scoped = campaigns is not None and bool(campaigns.scoped)
    if default_campaign is not None:
        given = pl.lit(default_campaign, dtype=pl.Utf8)
        campaign = _resolve_scoped(given, campaigns) if scoped else given
    else:
        campaign = _resolve_scoped(pl.col("_campaign"), campaigns)
    if default_from_campaign is not None:
        given = pl.lit(default_from_campaign, dtype=pl.Utf8)
        from_campaign = _resolve_scoped(given, campaigns) if scoped else given
    else:
        from_campaign = _resolve_scoped(pl.col("_from"), campaigns)
    action_given = raw_action != ""
    action = (
        pl.when(~action_given)
        .then(pl.lit(default_action or "link"))
        .when(raw_action.is_in(list(ACTIONS)))
        .then(raw_action)
        .otherwise(_NULL)
    )
    frame = frame.with_columns(campaign_id=campaign, action=action)
    return frame.with_columns(
        from_campaign=pl.when(pl.col("action") == "move").then(from_campaign).otherwise(_NULL)
    )


def _campaign_checks(
    campaigns: Campaigns | None, default_campaign: str | None, has_campaign_column: bool
) -> list[_Check]:
    if default_campaign is not None:
        return []
    raw_campaign = pl.col("_campaign").str.strip_chars()
    missing_detail = (
        "no campaign on this row; add a campaign column or pass --campaign"
        if has_campaign_column
        else "the file has no campaign column (campaign_id or campaign); pass --campaign"
    )
    checks: list[_Check] = [(raw_campaign == "", "missing_campaign", pl.lit(missing_detail))]
    if campaigns is not None:
        checks.append(
            (
                pl.col("campaign_id").is_null(),
                "unknown_campaign",
                pl.format("campaign '{}' is not in the campaigns file", raw_campaign),
            )
        )
    return checks


def _action_checks(default_action: str | None) -> list[_Check]:
    raw_action = _raw_action()
    checks: list[_Check] = [
        (
            pl.col("action").is_null(),
            "unknown_action",
            pl.format(
                "action '{}' is not link, unlink or move", pl.col("_action").str.strip_chars()
            ),
        )
    ]
    if default_action is not None:
        checks.append(
            (
                (raw_action != "") & (raw_action != default_action),
                "action_mismatch",
                pl.format(f"the row says {{}} but this command is {default_action}", raw_action),
            )
        )
    return checks


def _move_checks(campaigns: Campaigns | None, default_from_campaign: str | None) -> list[_Check]:
    raw_from = pl.col("_from").str.strip_chars()
    is_move = pl.col("action") == "move"
    checks: list[_Check] = []
    if default_from_campaign is None:
        checks.append(
            (
                is_move & (raw_from == ""),
                "missing_from_campaign",
                pl.lit("a move needs the campaign it leaves: add from_campaign or pass --from"),
            )
        )
        if campaigns is not None:
            checks.append(
                (
                    is_move & pl.col("from_campaign").is_null(),
                    "unknown_campaign",
                    pl.format("from campaign '{}' is not in the campaigns file", raw_from),
                )
            )
    checks.append(
        (
            is_move & (pl.col("from_campaign") == pl.col("campaign_id")),
            "same_campaign",
            pl.format("moves from {} to the same campaign", pl.col("campaign_id")),
        )
    )
    return checks


def _with_reasons(frame: pl.DataFrame, checks: list[_Check]) -> pl.DataFrame:
    """Set ``reason``/``detail`` from the first check a row fails, keeping an earlier reason."""
    reason: pl.Expr = pl.when(pl.col("reason").is_not_null()).then(pl.col("reason"))
    detail: pl.Expr = pl.when(pl.col("reason").is_not_null()).then(pl.col("detail"))
    for cond, code, text in checks:
        reason = reason.when(cond).then(pl.lit(code))  # type: ignore[attr-defined]
        detail = detail.when(cond).then(text)  # type: ignore[attr-defined]
    return frame.with_columns(
        reason=reason.otherwise(_NULL),  # type: ignore[attr-defined]
        detail=detail.otherwise(_NULL),  # type: ignore[attr-defined]
    )


def apply_row_checks(
    frame: pl.DataFrame,
    *,
    campaigns: Campaigns | None,
    default_campaign: str | None,
    default_action: str | None,
    default_from_campaign: str | None,
    has_campaign_column: bool,
    accounts: Collection[str] | None = None,
    default_account: str | None = None,
) -> pl.DataFrame:
    """Add ``campaign_id``, ``action``, ``from_campaign`` (and ``account`` when ``accounts``
    are in use) and the request reasons.

    ``frame`` has ``line``, ``e164``, ``reason``, ``detail`` and the raw text columns
    ``_campaign``, ``_action``, ``_from``, ``_account`` (empty strings where the file has no
    such column).
    """
    frame = with_accounts(frame, accounts, default_account)
    frame = _with_targets(
        frame,
        campaigns=campaigns,
        default_campaign=default_campaign,
        default_action=default_action,
        default_from_campaign=default_from_campaign,
    )
    checks = [
        *_account_checks(accounts, default_account),
        *_campaign_checks(campaigns, default_campaign, has_campaign_column),
        *_action_checks(default_action),
        *_move_checks(campaigns, default_from_campaign),
    ]
    frame = _with_reasons(frame, checks)
    # an unknown or mismatched action keeps what the row asked for in `action` when known
    frame = frame.with_columns(
        action=pl.when(pl.col("reason") == "action_mismatch")
        .then(_raw_action())
        .otherwise(pl.col("action"))
    )
    return _cross_row_checks(frame)


def _describe(
    action: str, campaign: str | None, from_campaign: str | None, account: str | None = None
) -> str:
    whose = f" in account {account}" if account is not None else ""
    if action == "move":
        return f"move {from_campaign} -> {campaign}{whose}"
    if action == "unlink":
        return f"unlink from {campaign}{whose}"
    return f"link to {campaign}{whose}"


def _lines(lines: list[int]) -> str:
    shown = ", ".join(str(n) for n in lines[:_MAX_LINES_SHOWN])
    if len(lines) > _MAX_LINES_SHOWN:
        shown += f" and {len(lines) - _MAX_LINES_SHOWN} more"
    return shown


def _cross_row_checks(frame: pl.DataFrame) -> pl.DataFrame:
    request = ["action", "campaign_id", "from_campaign"]
    if "account" in frame.columns:
        request.append("account")
    frame = frame.with_columns(_valid=pl.col("reason").is_null())
    frame = frame.with_columns(
        _conflict=pl.col("_valid") & (pl.struct(request).n_unique().over(["_valid", "e164"]) > 1)
    )
    conflict_detail: pl.DataFrame | None = None
    if frame.get_column("_conflict").any():
        rows = frame.filter("_conflict").select("line", "e164", *request)
        by_number: dict[str, list[tuple[int, str]]] = {}
        for line, e164, *asked in rows.iter_rows():
            by_number.setdefault(e164, []).append((line, _describe(*asked)))
        detail_lines: list[int] = []
        details: list[str] = []
        for entries in by_number.values():
            for line, what in entries:
                others = [n for n, other in entries if n != line and other != what]
                different = sorted({other for n, other in entries if n != line and other != what})
                detail_lines.append(line)
                details.append(
                    f"this row asks to {what}; line(s) {_lines(others)} ask to "
                    f"{' / '.join(different)} for the same number"
                )
        conflict_detail = pl.DataFrame(
            {"line": detail_lines, "_cdetail": details},
            schema={"line": pl.Int64, "_cdetail": pl.Utf8},
        )
    keep = pl.col("_valid") & ~pl.col("_conflict")
    frame = frame.with_columns(
        _first=pl.col("line").min().over(["_valid", "_conflict", "e164", *request])
    )
    duplicate = keep & (pl.col("line") != pl.col("_first"))
    if conflict_detail is not None:
        frame = frame.join(conflict_detail, on="line", how="left", maintain_order="left")
    else:
        frame = frame.with_columns(_cdetail=_NULL)
    return frame.with_columns(
        reason=pl.when(pl.col("_conflict"))
        .then(pl.lit("conflict"))
        .when(duplicate)
        .then(pl.lit("duplicate"))
        .otherwise(pl.col("reason")),
        detail=pl.when(pl.col("_conflict"))
        .then(pl.col("_cdetail"))
        .when(duplicate)
        .then(pl.format("duplicate of line {}", pl.col("_first")))
        .otherwise(pl.col("detail")),
    ).drop("_valid", "_conflict", "_first", "_cdetail")


# --- summary -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Summary:
    """Counts for the terminal and the report header."""

    rows: int
    valid: int
    rejected: dict[str, int]  # reason -> rows, in REASONS order
    campaigns: dict[str, int]  # campaign_id -> valid rows
    planned: dict[str, int]  # action -> valid rows
    aliases: dict[str, str] = field(default_factory=dict)  # campaign_id -> alias, when known

    @property
    def rejected_total(self) -> int:
        return sum(self.rejected.values())

    def to_text(self) -> str:
        """Plain-text rendering (the CLI uses rich for the same content)."""
        return render_summary(self)


def summarise(frame: pl.DataFrame, aliases: Mapping[str, str] | None = None) -> Summary:
    reasons = frame.get_column("reason").drop_nulls().value_counts()
    counts = dict(zip(reasons["reason"].to_list(), reasons["count"].to_list(), strict=True))
    rejected = {code: counts.pop(code) for code in REASONS if code in counts}
    rejected.update(counts)
    valid = frame.filter(pl.col("reason").is_null())
    by_campaign = (
        valid.group_by("campaign_id").len().sort(["len", "campaign_id"], descending=[True, False])
    )
    planned_frame = valid.group_by("action").len()
    planned_counts = dict(
        zip(planned_frame["action"].to_list(), planned_frame["len"].to_list(), strict=True)
    )
    planned = {action: planned_counts[action] for action in ACTIONS if action in planned_counts}
    return Summary(
        rows=frame.height,
        valid=valid.height,
        rejected=rejected,
        campaigns=dict(
            zip(by_campaign["campaign_id"].to_list(), by_campaign["len"].to_list(), strict=True)
        ),
        planned=planned,
        aliases={k: v for k, v in (aliases or {}).items() if v},
    )


def render_summary(summary: Summary) -> str:
    """The summary as plain text."""
    out = [f"{summary.rows} rows: {summary.valid} valid, {summary.rejected_total} rejected"]
    if summary.rejected:
        out.append("Rejected:")
        width = max(len(code) for code in summary.rejected)
        for code, count in summary.rejected.items():
            out.append(f"  {code:<{width}}  {count:>8}  {REASONS.get(code, '')}")
    if summary.campaigns:
        out.append("Campaigns (valid rows):")
        for campaign, count in summary.campaigns.items():
            alias = summary.aliases.get(campaign)
            name = f"{campaign} ({alias})" if alias else str(campaign)
            out.append(f"  {name:<30}  {count:>8}")
    if summary.planned:
        out.append("A run would plan:")
        for action, count in summary.planned.items():
            out.append(f"  {action:<8}  {count:>8}")
    elif summary.rows:
        out.append("A run would plan nothing: no valid rows.")
    return "\n".join(out)
