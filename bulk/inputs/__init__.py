"""Reading, normalising and validating the numbers file.

    from bulk.inputs import load_rows, Loaded, REASONS

    loaded = load_rows("numbers.csv", campaigns_path="campaigns.csv")
    loaded.frame        # one row per data row: line, number, e164, campaign_id, action,
                        # from_campaign, reason, detail, then the file's other columns as text
    loaded.summary()    # counts by reason, campaign and planned action

Content problems reject rows (``reason``); a file that cannot be used at all raises
:class:`bulk._errors.InputError`.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from bulk._errors import InputError
from bulk.inputs._checks import (
    ACTIONS,
    Campaigns,
    Summary,
    apply_row_checks,
    read_campaigns,
    render_summary,
    resolve_option,
    summarise,
)
from bulk.inputs._csvsafe import neutralise_formula, neutralise_formula_expr, neutralise_frame
from bulk.inputs._normalize import NUMBER_TYPES, Normalized, normalize_number, normalize_numbers
from bulk.inputs._read import LINE, MAX_INPUT_BYTES, MAX_LINE_BYTES, Table, read_table
from bulk.inputs._reasons import REASONS

__all__ = [
    "ACTIONS",
    "BASE_COLUMNS",
    "MAX_INPUT_BYTES",
    "MAX_LINE_BYTES",
    "NUMBER_TYPES",
    "REASONS",
    "ROLE_NAMES",
    "Campaigns",
    "Loaded",
    "Normalized",
    "Summary",
    "load_rows",
    "neutralise_formula",
    "neutralise_formula_expr",
    "neutralise_frame",
    "normalize_number",
    "read_campaigns",
    "render_summary",
]

BASE_COLUMNS = (
    "line",
    "number",
    "e164",
    "campaign_id",
    "action",
    "from_campaign",
    "reason",
    "detail",
)

# accepted header names per role, in priority order (headers are compared stripped, lower-cased,
# with runs of spaces and hyphens turned into "_")
ROLE_NAMES: dict[str, tuple[str, ...]] = {
    "number": ("number", "phone", "phone_number", "tn", "did", "msisdn", "e164"),
    "campaign": ("campaign_id", "campaign", "to_campaign", "to_campaign_id", "to"),
    "action": ("action",),
    "from_campaign": ("from_campaign", "from", "from_campaign_id"),
}
#: the column naming each row's account: a role only when accounts are in use (``--accounts``)
ACCOUNT_NAMES: tuple[str, ...] = ("account", "account_name", "subaccount")

_REPORT_TAIL = ("e164", "campaign_id", "action", "from_campaign", "reason", "detail")


def _header_key(name: str) -> str:
    return "_".join(name.strip().lower().replace("-", " ").split())


def _unique_name(name: str, taken: set[str]) -> str:
    while name in taken:
        name = f"input_{name}"
    return name


@dataclass(frozen=True, slots=True)
class Loaded:
    """A numbers file read, normalised and checked."""

    frame: pl.DataFrame
    extra_columns: list[str]
    columns: dict[str, str]  # role -> original header name
    path: str
    encoding: str
    separator: str
    campaigns_path: str | None = None
    aliases: dict[str, str] = field(default_factory=dict)  # campaign_id -> alias
    headers: list[str] = field(default_factory=list)  # the file's headers, in file order
    raw: pl.DataFrame = field(default_factory=pl.DataFrame)  # role columns as given

    def summary(self) -> Summary:
        """Counts by reason, by campaign (valid rows) and by planned action."""
        return summarise(self.frame, self.aliases)

    def report_frame(self) -> pl.DataFrame:
        """Every row as the file had it, then the verdict.

        Columns: ``line``; the file's columns in file order, as given (a header that collides
        with a name below is prefixed ``input_``); then ``e164``, ``campaign_id``, ``action``,
        ``from_campaign``, ``reason``, ``detail``.
        """
        taken = {"line", *_REPORT_TAIL}
        role_of = {header: role for role, header in self.columns.items()}
        extra_by_header = dict(zip(self._extra_headers(), self.extra_columns, strict=True))
        selected: list[pl.Series] = [self.frame.get_column("line")]
        for header in self.headers:
            role = role_of.get(header)
            if role == "number":
                series = self.frame.get_column("number")
            elif role is not None:
                series = self.raw.get_column(role)
            else:
                series = self.frame.get_column(extra_by_header[header])
            name = _unique_name(header, taken)
            taken.add(name)
            selected.append(series.alias(name))
        selected.extend(self.frame.get_column(name) for name in _REPORT_TAIL)
        return pl.DataFrame(selected)

    def _extra_headers(self) -> list[str]:
        chosen = set(self.columns.values())
        return [h for h in self.headers if h not in chosen]


def _match_roles(headers: list[str], with_account: bool = False) -> dict[str, str]:
    keys: dict[str, str] = {}
    for header in headers:
        keys.setdefault(_header_key(header), header)
    roles: dict[str, str] = {}
    used: set[str] = set()
    wanted = {**ROLE_NAMES, "account": ACCOUNT_NAMES} if with_account else ROLE_NAMES
    for role, names in wanted.items():
        for name in names:
            found = keys.get(name)
            if found is not None and found not in used:
                roles[role] = found
                used.add(found)
                break
    return roles


def _require_number_column(table: Table, roles: dict[str, str]) -> None:
    """Raise :class:`InputError` when no header of ``table`` names the number column."""
    if "number" not in roles:
        raise InputError(
            f"no number column; headers seen: {', '.join(repr(h) for h in table.headers)}; "
            f"accepted names (any case): {', '.join(ROLE_NAMES['number'])}, 'phone number'",
            path=table.path,
            line=1,
        )


def _work_frame(
    source: pl.DataFrame,
    roles: dict[str, str],
    *,
    regions: Sequence[str],
    number_type: str,
) -> pl.DataFrame:
    """line, number and the raw role columns (``_campaign``, ``_action``, ``_from``), beside
    the normalised number columns."""
    empty = pl.lit("", dtype=pl.Utf8)

    def role_col(role: str) -> pl.Expr:
        header = roles.get(role)
        return pl.col(header).fill_null("") if header is not None else empty

    numbers = normalize_numbers(
        source.get_column(roles["number"]), regions=regions, number_type=number_type
    )
    return pl.concat(
        [
            source.select(
                line=pl.col(LINE),
                number=pl.col(roles["number"]),
                _campaign=role_col("campaign"),
                _action=role_col("action"),
                _from=role_col("from_campaign"),
                _account=role_col("account"),
            ),
            numbers,
        ],
        how="horizontal",
    )


def _extra_series(table: Table, roles: dict[str, str], accounts: bool) -> list[pl.Series]:
    """The file's columns that play no role, renamed clear of :data:`BASE_COLUMNS` (and of
    ``account`` when accounts are in use)."""
    chosen = set(roles.values())
    taken = {*BASE_COLUMNS, "account"} if accounts else set(BASE_COLUMNS)
    extras: list[pl.Series] = []
    for header in table.headers:
        if header in chosen:
            continue
        name = _unique_name(header, taken)
        taken.add(name)
        extras.append(table.frame.get_column(header).alias(name))
    return extras


def load_rows(
    path: str | Path,
    *,
    campaigns_path: str | Path | None = None,
    default_campaign: str | None = None,
    default_action: str | None = None,
    default_from_campaign: str | None = None,
    regions: Sequence[str] = ("US",),
    number_type: str = "either",
    max_input_bytes: int = MAX_INPUT_BYTES,
    accounts: Collection[str] | None = None,
    default_account: str | None = None,
) -> Loaded:
    """Read ``path``, normalise every number and check every row. See the module docstring.

    ``default_campaign`` (--campaign / --to) applies one campaign to every row, overriding the
    file's column; ``default_action`` is the command's action (rows whose action column says
    another one are rejected as ``action_mismatch``); ``default_from_campaign`` (--from) is the
    campaign moves leave. Campaign values may be aliases when ``campaigns_path`` is given.
    With ``accounts`` (the names of an accounts file), each row's account is its
    ``account`` cell (``default_account``, from --account, names every row's instead; a lone
    account needs neither): the frame gains an ``account`` column, rows naming none are
    ``missing_account`` and rows naming another are ``unknown_account``.
    Raises :class:`InputError` when a file cannot be used (including a device, a file over
    ``max_input_bytes`` or a line over ``MAX_LINE_BYTES``), :class:`ValueError` for bad options.
    """
    if default_action is not None and default_action not in ACTIONS:
        raise ValueError(f"default_action must be one of {', '.join(ACTIONS)}")
    campaigns: Campaigns | None = (
        read_campaigns(campaigns_path, max_bytes=max_input_bytes)
        if campaigns_path is not None
        else None
    )
    resolved_campaign = resolve_option(default_campaign, campaigns, "--campaign")
    resolved_from = resolve_option(default_from_campaign, campaigns, "--from")

    table = read_table(path, what="numbers file", max_bytes=max_input_bytes)
    roles = _match_roles(table.headers, with_account=accounts is not None)
    _require_number_column(table, roles)
    work = _work_frame(table.frame, roles, regions=regions, number_type=number_type)
    work = apply_row_checks(
        work,
        campaigns=campaigns,
        default_campaign=resolved_campaign,
        default_action=default_action,
        default_from_campaign=resolved_from,
        has_campaign_column="campaign" in roles,
        accounts=accounts,
        default_account=default_account,
    )

    extras = _extra_series(table, roles, accounts is not None)
    frame = work.select(*BASE_COLUMNS, *(("account",) if accounts is not None else ()))
    if extras:
        frame = frame.with_columns(extras)
    raw = work.select(
        campaign=pl.col("_campaign"),
        action=pl.col("_action"),
        from_campaign=pl.col("_from"),
        account=pl.col("_account"),
    )
    return Loaded(
        frame=frame,
        extra_columns=[s.name for s in extras],
        columns=roles,
        path=table.path,
        encoding=table.encoding,
        separator=table.separator,
        campaigns_path=str(campaigns_path) if campaigns_path is not None else None,
        aliases=campaigns.every_alias() if campaigns is not None else {},
        headers=list(table.headers),
        raw=raw,
    )
