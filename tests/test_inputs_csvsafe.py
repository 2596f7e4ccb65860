"""Formula neutralisation for CSV output."""

from __future__ import annotations

import polars as pl
import pytest

from bulk.inputs import neutralise_formula, neutralise_formula_expr


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("=1+1", "'=1+1"),
        ("+cmd|' /C calc'!A0", "'+cmd|' /C calc'!A0"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("+14155550100", "+14155550100"),
        ("-42", "-42"),
        ("+1.5", "+1.5"),
        ("4155550100", "4155550100"),
        ("plain", "plain"),
        ("", ""),
    ],
)
def test_cells_a_spreadsheet_would_run_get_a_leading_apostrophe(value: str, expected: str) -> None:
    assert neutralise_formula(value) == expected
    frame = pl.DataFrame({"v": [value]}).select(neutralise_formula_expr(pl.col("v")))
    assert frame.item() == expected


def test_expression_keeps_nulls() -> None:
    frame = pl.DataFrame({"v": [None, "=x"]}, schema={"v": pl.Utf8})
    assert frame.select(neutralise_formula_expr(pl.col("v")))["v"].to_list() == [None, "'=x"]
