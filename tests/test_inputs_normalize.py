"""Per-number normalisation and validation, and the vectorised path agreeing with it."""

from __future__ import annotations

import random

import phonenumbers
import polars as pl
import pytest

from bulk.inputs import REASONS, normalize_number
from bulk.inputs._normalize import _nanp_regions, normalize_numbers, type_expr


def _e164(raw: str, **kwargs: object) -> str | None:
    result = normalize_number(raw, **kwargs)  # type: ignore[arg-type]
    assert result.reason is None, (raw, result)
    return result.e164


def _reason(raw: str, **kwargs: object) -> str | None:
    return normalize_number(raw, **kwargs).reason  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        ("4156667778", "10 digits"),
        ("14156667778", "11 digits with the leading 1"),
        ("+14156667778", "E.164"),
        ("(415) 666-7778", "punctuation"),
        ("415.666.7778", "dots"),
        ("415-666-7778", "hyphens"),
        ("+1 415 666 7778", "spaces"),
        ("  4156667778  ", "surrounding spaces"),
    ],
)
def test_common_forms_normalise_to_e164(raw: str, why: str) -> None:
    assert _e164(raw) == "+14156667778", why


def test_fullwidth_digits_are_nfkc_normalised() -> None:
    assert _e164("４１５６６６７７７８") == "+14156667778"


def test_non_breaking_spaces_are_removed() -> None:
    assert _e164("415\u00a0666\u00a07778") == "+14156667778"
    assert _e164("\u202f415 666 7778\u00a0") == "+14156667778"


def test_leading_apostrophe_from_excel_is_dropped() -> None:
    assert _e164("'4156667778") == "+14156667778"


def test_excel_formula_guard_is_unwrapped() -> None:
    assert _e164('="4156667778"') == "+14156667778"


def test_tel_uri_prefix_is_dropped() -> None:
    assert _e164("tel:+14156667778") == "+14156667778"
    assert _e164("TEL:4156667778") == "+14156667778"


def test_scientific_notation_without_lost_digits_is_accepted() -> None:
    assert _e164("1.4156667778E10") == "+14156667778"
    assert _e164("1.4156667778e+10") == "+14156667778"


def test_trailing_dot_zero_is_accepted() -> None:
    assert _e164("14156667778.0") == "+14156667778"
    assert _e164("4156667778.00") == "+14156667778"


def test_scientific_notation_that_lost_digits_is_rejected_as_precision_lost() -> None:
    result = normalize_number("1.41566678E10")
    assert result.reason == "precision_lost"
    assert result.e164 is None
    assert "9 significant digits of 11" in (result.detail or "")


def test_decimal_with_a_fraction_is_invalid() -> None:
    assert _reason("4156667778.5") == "invalid"


def test_letters_are_rejected_never_converted_to_digits() -> None:
    assert _reason("1-800-FLOWERS") == "letters"
    assert _reason("415-666-ABCD") == "letters"


@pytest.mark.parametrize(
    "raw", ["415-666-7778 x123", "415-666-7778 ext. 12", "tel:+14156667778;ext=123", "4156667778#9"]
)
def test_extension_is_rejected_as_extension(raw: str) -> None:
    result = normalize_number(raw)
    assert result.reason == "extension"


@pytest.mark.parametrize("raw", ["", "   ", "\u00a0", None])
def test_empty_cell_is_rejected_as_empty(raw: str | None) -> None:
    assert normalize_number(raw).reason == "empty"


@pytest.mark.parametrize("raw", ["12345", "415666777", "+1415666777899", "4151234567", "?"])
def test_wrong_length_or_unassigned_is_invalid(raw: str) -> None:
    assert _reason(raw) == "invalid"


def test_stray_characters_are_invalid() -> None:
    assert _reason("415*666*7778") == "invalid"


def test_valid_number_of_another_region_is_rejected_as_not_us() -> None:
    result = normalize_number("+44 20 7946 0958")
    assert result.reason == "not_us"
    assert result.e164 == "+442079460958"
    assert "GB" in (result.detail or "")


def test_canadian_number_is_not_us_unless_ca_is_allowed() -> None:
    assert _reason("416-555-0100") == "not_us"
    assert _e164("416-555-0100", regions=("US", "CA")) == "+14165550100"


@pytest.mark.parametrize("npa", ["800", "888", "877", "866", "855", "844", "833"])
def test_toll_free_is_rejected_as_toll_free(npa: str) -> None:
    assert _reason(f"{npa}-555-0100") == "toll_free"


def test_900_number_is_rejected_as_premium_rate() -> None:
    assert _reason("900-555-0100") == "premium_rate"


def test_5xx_personal_number_is_rejected_as_not_geographic() -> None:
    assert _reason("500-555-0100") == "not_geographic"


def test_number_type_mobile_and_fixed_line_accept_fixed_line_or_mobile() -> None:
    # US numbers are FIXED_LINE_OR_MOBILE for phonenumbers: every type setting accepts them
    for number_type in ("either", "fixed_line", "mobile"):
        assert _e164("4156667778", number_type=number_type) == "+14156667778"


def test_number_type_mobile_rejects_a_fixed_line_only_number_as_wrong_type() -> None:
    fixed_only = phonenumbers.example_number_for_type("GB", phonenumbers.PhoneNumberType.FIXED_LINE)
    raw = phonenumbers.format_number(fixed_only, phonenumbers.PhoneNumberFormat.E164)
    assert _reason(raw, regions=("GB",), number_type="mobile") == "wrong_type"
    assert _reason(raw, regions=("GB",), number_type="fixed_line") is None


def test_unknown_region_or_number_type_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="region"):
        normalize_numbers(pl.Series(["4156667778"]), regions=("XX",))
    with pytest.raises(ValueError, match="number_type"):
        normalize_numbers(pl.Series(["4156667778"]), number_type="landline")


def test_every_number_reason_code_has_a_description() -> None:
    for code in (
        "empty", "invalid", "not_us", "toll_free", "premium_rate", "not_geographic",
        "precision_lost", "letters", "extension",
    ):  # fmt: skip
        assert REASONS[code]


def _random_nanp(rng: random.Random) -> str:
    return f"{rng.randint(200, 999)}{rng.randint(0, 9999999):07d}"


def test_vectorised_classification_matches_phonenumbers_for_nanp_numbers() -> None:
    rng = random.Random(1)
    numbers = [_random_nanp(rng) for _ in range(3000)]
    # every area code with a valid and an invalid exchange, so each NPA branch is exercised
    numbers += [f"{npa}5550100" for npa in range(200, 1000)]
    numbers += [f"{npa}1550100" for npa in range(200, 1000, 7)]
    frame = pl.DataFrame({"national": numbers}).with_columns(kind=type_expr(pl.col("national")))
    frame = _nanp_regions(frame.select("national"))
    for national, region, kind in frame.iter_rows():
        parsed = phonenumbers.parse("+1" + national)
        expected_region = phonenumbers.region_code_for_number(parsed)
        assert region == expected_region, national
        if expected_region is not None:
            expected_kind = phonenumbers.number_type(parsed)
            got = phonenumbers.PhoneNumberType.UNKNOWN if kind is None else kind
            assert got == expected_kind, national


def test_column_path_gives_the_same_answers_as_the_per_value_path() -> None:
    rng = random.Random(2)
    values = [
        "4155550100", "+14155550100", "14155550100", "(415) 555-0100", "'4155550100",
        "' 415 555 0100", "4155550100.0", "4155550100.", "1.4155550100E10", "8005550100",
        "9005550100", "5005550100", "4165550100", "2681234567", "4151234567", "1415555010",
        "+4155550100", "", " ", "abc", "+44 20 7946 0958", "415-555-0100 x2", "1-(415)-555-0100",
        "+1-415-555-0100", "4155550100'", "++14155550100",
    ]  # fmt: skip
    values += [_random_nanp(rng) for _ in range(500)]
    for regions, number_type in [
        (("US",), "either"),
        (("US", "CA"), "mobile"),
        (("CA",), "either"),
    ]:
        column = normalize_numbers(pl.Series(values), regions=regions, number_type=number_type)
        for value, e164, reason in zip(values, column["e164"], column["reason"], strict=True):
            expected = normalize_number(value, regions=regions, number_type=number_type)
            assert (e164, reason) == (expected.e164, expected.reason), (value, regions)
