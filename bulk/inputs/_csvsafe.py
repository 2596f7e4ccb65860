"""Neutralise spreadsheet formulas in CSV output (CSV/formula injection).

A cell that starts with ``=``, ``+``, ``-``, ``@``, TAB or CR is run as a formula by Excel,
LibreOffice and Google Sheets. Such a cell gets a leading ``'`` (which spreadsheets show as
"text"), except a cell that is entirely a number (``+14155550100``, ``-3``, ``+1.5``), which is
harmless and is left alone so phone numbers stay readable.
"""

from __future__ import annotations

import re

import polars as pl

_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)"
_NUMBER_RE = re.compile(_NUMBER)


def neutralise_formula(value: str) -> str:
    """Return ``value`` with a leading ``'`` if a spreadsheet would run it as a formula."""
    if value.startswith(_TRIGGERS) and _NUMBER_RE.fullmatch(value) is None:
        return "'" + value
    return value


def neutralise_formula_expr(expr: pl.Expr) -> pl.Expr:
    """The polars version of :func:`neutralise_formula` for a Utf8 expression (nulls stay null)."""
    risky = expr.str.contains(r"^[=+\-@\t\r]") & ~expr.str.contains(f"^{_NUMBER}$")
    return pl.when(risky).then(expr.str.replace(r"^", "'")).otherwise(expr)


#: what a NUL in a cell (a provider's text may hold one) is written as in CSV: no CSV reader,
#: bulk's included, takes a NUL as text, and the file must read back as input
NUL_IN_CSV = "\ufffd"


def neutralise_frame(frame: pl.DataFrame) -> pl.DataFrame:
    """Apply :func:`neutralise_formula_expr` to every Utf8 column of ``frame`` (a NUL in a
    cell becomes :data:`NUL_IN_CSV`), and :func:`neutralise_formula` to every column name (a
    header cell is a cell too)."""
    cells = frame.with_columns(
        neutralise_formula_expr(pl.col(name).str.replace_all("\x00", NUL_IN_CSV, literal=True))
        .alias(name)
        for name, dtype in frame.schema.items()
        if dtype == pl.Utf8
    )
    names: dict[str, str] = {}
    taken = set(frame.columns)
    for name in frame.columns:
        safe = neutralise_formula(name)
        if safe != name:
            while safe in taken:  # "=x" next to a column already named "'=x"
                safe = "'" + safe
            taken.add(safe)
            names[name] = safe
    return cells.rename(names) if names else cells


def restore_header(name: str) -> str:
    """Undo :func:`neutralise_formula` on a header read back: ``'=x`` -> ``=x``, and only
    where bulk would have added that ``'`` (``'plain`` stays as it is)."""
    if name.startswith("'") and neutralise_formula(name[1:]) == name:
        return name[1:]
    return name
