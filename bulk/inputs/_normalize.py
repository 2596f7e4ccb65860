"""Per-number normalisation and validation.

Two paths give the same answer:

* :func:`normalize_number` is the pure, per-value reference: it cleans one cell (NFKC,
  whitespace, Excel guards, ``tel:``, punctuation, scientific notation, extensions, letters) and
  validates the result with ``phonenumbers``.
* :func:`normalize_numbers` is the vectorised path used on whole files. Cells that are already
  clean (``4155550100``, ``14155550100``, ``+14155550100``) are classified with polars, by
  evaluating phonenumbers' own US metadata patterns (the same ``_number_type_helper`` order:
  general description, premium rate, toll free, ..., fixed line / mobile) as Rust regexes over the
  whole column. Only cells that are not clean, or that are clean but not a US number (Canada, the
  Caribbean, invalid ranges), go through :func:`normalize_number`, once per distinct value.
  ``tests/test_inputs_normalize.py`` checks both paths agree.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import phonenumbers
import polars as pl
from phonenumbers import PhoneNumberType
from phonenumbers.phonemetadata import PhoneMetadata

NUMBER_TYPES = ("either", "fixed_line", "mobile")

# phonenumbers type -> accepted under which --number-type values
_ACCEPTED_TYPES: dict[str, frozenset[int]] = {
    "either": frozenset(
        {
            PhoneNumberType.FIXED_LINE,
            PhoneNumberType.MOBILE,
            PhoneNumberType.FIXED_LINE_OR_MOBILE,
        }
    ),
    "fixed_line": frozenset({PhoneNumberType.FIXED_LINE, PhoneNumberType.FIXED_LINE_OR_MOBILE}),
    "mobile": frozenset({PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE}),
}
_GEOGRAPHIC = _ACCEPTED_TYPES["either"]

_TYPE_NAMES: dict[int, str] = {
    value: name.lower().removesuffix("_number").replace("_", " ")
    for name, value in vars(PhoneNumberType).items()
    if name.isupper() and isinstance(value, int)
}


@dataclass(frozen=True, slots=True)
class Normalized:
    """One cell's outcome: E.164 text when it parsed, and a reason when rejected."""

    e164: str | None
    reason: str | None = None
    detail: str | None = None


def check_options(regions: Sequence[str], number_type: str) -> tuple[str, ...]:
    """Validate ``regions`` and ``number_type``; return the regions upper-cased."""
    if number_type not in NUMBER_TYPES:
        raise ValueError(
            f"number_type must be one of {', '.join(NUMBER_TYPES)}, not {number_type!r}"
        )
    if isinstance(regions, str):
        regions = (regions,)
    cleaned = tuple(r.strip().upper() for r in regions if r.strip())
    if not cleaned:
        raise ValueError("at least one region is required (e.g. US)")
    known = phonenumbers.SUPPORTED_REGIONS
    unknown = [r for r in cleaned if r not in known]
    if unknown:
        raise ValueError(f"unknown region code(s): {', '.join(unknown)} (use ISO codes such as US)")
    return cleaned


# --- cleaning ----------------------------------------------------------------------------------

_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u200e\u200f\u2060\ufeff\u00ad"), None)
_DASHES = "\u2010\u2011\u2012\u2013\u2014\u2015\u2212"
_PUNCTUATION = re.compile(r"[\s()\-./" + _DASHES + "]")
_EXCEL_GUARD = re.compile(r'=\s*"(.*)"', re.S)
_EXTENSION = re.compile(r"(?:;\s*ext\s*=\s*|[\s,]*(?:extension|ext\.?|x|#)\s*)(\d{1,10})\s*$", re.I)
_SCIENTIFIC = re.compile(r"([+-]?)(\d+)(?:\.(\d*))?[eE]\+?(\d+)")
_TRAILING_ZERO_DECIMALS = re.compile(r"(\+?\d+)\.0*")
_DECIMAL = re.compile(r"\+?\d{10,}\.\d+")
_DIGITS = re.compile(r"\+?\d+")


def clean_number(raw: str | None) -> Normalized:
    """Turn one cell into something dialable (``+14155550100`` or ``4155550100``).

    Returns ``Normalized(e164=<dialable text>)`` on success (not yet validated), or a rejection
    with ``reason`` in ``empty``, ``letters``, ``extension``, ``precision_lost``, ``invalid``.
    """
    if raw is None:
        return Normalized(None, "empty", "the number cell is empty")
    text = unicodedata.normalize("NFKC", raw).translate(_INVISIBLE).strip()
    if not text:
        return Normalized(None, "empty", "the number cell is empty")
    if text.startswith("'"):  # Excel's "treat as text" prefix
        text = text[1:].strip()
    guard = _EXCEL_GUARD.fullmatch(text)  # ="4156667778"
    if guard:
        text = guard.group(1).strip()
    if text[:4].lower() == "tel:":
        text = text[4:].strip()
    if not text:
        return Normalized(None, "empty", "the number cell is empty")

    extension = _EXTENSION.search(text)
    if extension and sum(c.isdigit() for c in text[: extension.start()]) >= 7:
        return Normalized(
            None,
            "extension",
            f"{raw.strip()!r} has extension {extension.group(1)}; "
            "10DLC numbers cannot have extensions",
        )
    if ";" in text:  # other tel: URI parameters (;phone-context=...)
        text = text.split(";", 1)[0].strip()
    if any(c.isalpha() for c in text):
        if _SCIENTIFIC.fullmatch(text) is None:
            return Normalized(
                None,
                "letters",
                f"{raw.strip()!r} contains letters; vanity numbers are not converted to digits",
            )

    scientific = _SCIENTIFIC.fullmatch(text)
    if scientific:
        return _from_scientific(raw, scientific)
    zeros = _TRAILING_ZERO_DECIMALS.fullmatch(text)  # 14156667778.0
    if zeros:
        text = zeros.group(1)
    elif _DECIMAL.fullmatch(text):
        return Normalized(
            None, "invalid", f"{raw.strip()!r} is a decimal number, not a phone number"
        )

    text = _PUNCTUATION.sub("", text)
    if not _DIGITS.fullmatch(text):
        stray = next((c for c in text if not (c.isdigit() or c == "+")), "+")
        return Normalized(None, "invalid", f"{raw.strip()!r} has an unexpected character {stray!r}")
    return Normalized(text)


def _from_scientific(raw: str, match: re.Match[str]) -> Normalized:
    sign, whole, fraction, exponent_text = match.groups()
    fraction = fraction or ""
    exponent = int(exponent_text)
    if sign == "-":
        return Normalized(None, "invalid", f"{raw.strip()!r} is a negative number")
    digits = whole + fraction
    cut = len(whole) + exponent
    if exponent > len(fraction):
        kept = len(digits.lstrip("0"))
        needed = len(whole.lstrip("0")) + exponent
        return Normalized(
            None,
            "precision_lost",
            f"{raw.strip()!r} keeps only {kept} significant digits of {needed}; "
            "re-export the column as text",
        )
    if digits[cut:].strip("0"):
        return Normalized(None, "invalid", f"{raw.strip()!r} is not a whole number")
    return Normalized(sign + digits[:cut].lstrip("0"))


# --- validation --------------------------------------------------------------------------------

_POSSIBLE_REASONS = {
    phonenumbers.ValidationResult.TOO_SHORT: "too short",
    phonenumbers.ValidationResult.TOO_LONG: "too long",
    phonenumbers.ValidationResult.INVALID_COUNTRY_CODE: "unknown country code",
    phonenumbers.ValidationResult.INVALID_LENGTH: "wrong length",
}


def validate_dialable(
    dialable: str, *, regions: Sequence[str] = ("US",), number_type: str = "either", raw: str = ""
) -> Normalized:
    """Validate an already cleaned number (digits, optional leading ``+``) with phonenumbers."""
    shown = repr(raw.strip()) if raw else repr(dialable)
    try:
        number = phonenumbers.parse(dialable, "US")
    except phonenumbers.NumberParseException as exc:
        return Normalized(None, "invalid", f"{shown} is not a phone number ({exc._msg})")
    if not phonenumbers.is_valid_number(number):
        why = _POSSIBLE_REASONS.get(
            phonenumbers.is_possible_number_with_reason(number),
            "not an assigned area code / exchange",
        )
        return Normalized(None, "invalid", f"{shown} is not a valid number: {why}")
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    region = phonenumbers.region_code_for_number(number) or "unknown"
    kind = phonenumbers.number_type(number)
    return _judge(e164, region, kind, regions, number_type)


def _judge(
    e164: str, region: str, kind: int, regions: Sequence[str], number_type: str
) -> Normalized:
    if region not in regions:
        return Normalized(
            e164,
            "not_us",
            f"{e164} is a valid {region} number; allowed region(s): {', '.join(regions)}",
        )
    if kind == PhoneNumberType.TOLL_FREE:
        return Normalized(e164, "toll_free", f"{e164} is toll-free, not a 10DLC number")
    if kind == PhoneNumberType.PREMIUM_RATE:
        return Normalized(e164, "premium_rate", f"{e164} is a premium-rate number")
    if kind not in _GEOGRAPHIC:
        return Normalized(
            e164,
            "not_geographic",
            f"{e164} is a {_TYPE_NAMES.get(kind, 'unknown')} number, not fixed line or mobile",
        )
    if kind not in _ACCEPTED_TYPES[number_type]:
        return Normalized(
            e164,
            "wrong_type",
            f"{e164} is {_TYPE_NAMES[kind]}; --number-type is {number_type}",
        )
    return Normalized(e164)


def normalize_number(
    raw: str | None, *, regions: Sequence[str] = ("US",), number_type: str = "either"
) -> Normalized:
    """Clean and validate one cell. ``e164`` is set whenever the number parsed as valid."""
    cleaned = clean_number(raw)
    if cleaned.reason is not None or cleaned.e164 is None:
        return cleaned
    return validate_dialable(cleaned.e164, regions=regions, number_type=number_type, raw=raw or "")


# --- vectorised fast path ----------------------------------------------------------------------

# Cells made only of these characters are pre-cleaned with polars exactly as clean_number() would
# (strip spaces, one leading apostrophe, drop ( ) - . and spaces); cells with anything else take
# the per-value path.
_FAST_CHARS = r"^[0-9+() .\-']+$"
_DECIMALISH = r"^\+?\d+\.\d*$"  # 14156667778.0 and 4155550100.5: the per-value path decides
_CLEAN_SHAPE = r"^(?:\+1|1)?(\d{10})$"
# the order of phonenumbers' _number_type_helper
_HELPER_ORDER = (
    ("premium_rate", PhoneNumberType.PREMIUM_RATE),
    ("toll_free", PhoneNumberType.TOLL_FREE),
    ("shared_cost", PhoneNumberType.SHARED_COST),
    ("voip", PhoneNumberType.VOIP),
    ("personal_number", PhoneNumberType.PERSONAL_NUMBER),
    ("pager", PhoneNumberType.PAGER),
    ("uan", PhoneNumberType.UAN),
    ("voicemail", PhoneNumberType.VOICEMAIL),
)
_NO_KIND = pl.lit(None, dtype=pl.Int32)


def _desc_matches(national: pl.Expr, desc: Any, length: int) -> pl.Expr | None:
    """phonenumbers' _is_number_matching_desc for strings of a known length, as a polars expr."""
    if desc is None or not desc.national_number_pattern:
        return None
    if desc.possible_length and length not in desc.possible_length:
        return None
    return national.str.contains(f"^(?:{desc.national_number_pattern})$")


def type_expr(national: pl.Expr, region: str = "US") -> pl.Expr:
    """phonenumbers' ``_number_type_helper`` for 10-digit national numbers of a NANP region, as
    a polars expression built from phonenumbers' own metadata: the type code (Int32), or null
    for UNKNOWN."""
    metadata = PhoneMetadata.metadata_for_region(region)
    if metadata is None:  # pragma: no cover - regions come from phonenumbers itself
        return _NO_KIND
    general = _desc_matches(national, metadata.general_desc, 10)
    if general is None:
        return _NO_KIND
    branches: list[tuple[pl.Expr, int]] = []
    for name, kind in _HELPER_ORDER:
        cond = _desc_matches(national, getattr(metadata, name), 10)
        if cond is not None:
            branches.append((cond, kind))
    fixed = _desc_matches(national, metadata.fixed_line, 10)
    mobile = _desc_matches(national, metadata.mobile, 10)
    same = bool(metadata.same_mobile_and_fixed_line_pattern)
    if fixed is not None:
        if same:
            branches.append((fixed, PhoneNumberType.FIXED_LINE_OR_MOBILE))
        else:
            if mobile is not None:
                branches.append((fixed & mobile, PhoneNumberType.FIXED_LINE_OR_MOBILE))
            branches.append((fixed, PhoneNumberType.FIXED_LINE))
    if mobile is not None and not same:
        branches.append((mobile, PhoneNumberType.MOBILE))
    expr: Any = pl.when(~general).then(_NO_KIND)
    for cond, kind in branches:
        expr = expr.when(cond).then(pl.lit(kind, dtype=pl.Int32))
    return expr.otherwise(_NO_KIND)  # type: ignore[no-any-return]


def _nanp_regions(frame: pl.DataFrame) -> pl.DataFrame:
    """phonenumbers' region_code_for_number + number_type for 10-digit numbers of country code 1.

    ``frame`` has ``national``; returns it with ``region`` (Utf8, null = none) and ``kind``.
    Regions are tried in phonenumbers' order: a region with leading digits claims a number by
    its leading digits, the others by having a type that is not UNKNOWN.
    """
    national = pl.col("national")
    region: Any = None
    kind: Any = None
    for code in phonenumbers.COUNTRY_CODE_TO_REGION_CODE[1]:
        metadata = PhoneMetadata.metadata_for_region(code)
        if metadata is None:  # pragma: no cover
            continue
        region_kind = type_expr(national, code)
        claims = (
            national.str.contains(f"^(?:{metadata.leading_digits})")
            if metadata.leading_digits is not None
            else region_kind.is_not_null()
        )
        region = (pl.when(claims) if region is None else region.when(claims)).then(pl.lit(code))
        kind = (pl.when(claims) if kind is None else kind.when(claims)).then(region_kind)
    return frame.with_columns(
        region=region.otherwise(pl.lit(None, dtype=pl.Utf8)),
        kind=kind.otherwise(_NO_KIND),
    )


def _judge_expr(regions: Sequence[str], number_type: str) -> tuple[pl.Expr, pl.Expr]:
    """The vectorised :func:`_judge` on ``e164``/``region``/``kind``: (reason, detail)."""
    e164, region, kind = pl.col("e164"), pl.col("region"), pl.col("kind")
    type_name = kind.replace_strict(
        list(_TYPE_NAMES), list(_TYPE_NAMES.values()), default="unknown", return_dtype=pl.Utf8
    )
    allowed = ", ".join(regions)
    rules: list[tuple[pl.Expr, str, pl.Expr]] = [
        (
            e164.is_null(),
            "invalid",
            pl.format(
                "'{}' is not a valid number: not an assigned area code / exchange",
                pl.col("raw").str.strip_chars(),
            ),
        ),
        (
            ~region.is_in(list(regions)),
            "not_us",
            pl.format(f"{{}} is a valid {{}} number; allowed region(s): {allowed}", e164, region),
        ),
        (
            kind == PhoneNumberType.TOLL_FREE,
            "toll_free",
            pl.format("{} is toll-free, not a 10DLC number", e164),
        ),
        (
            kind == PhoneNumberType.PREMIUM_RATE,
            "premium_rate",
            pl.format("{} is a premium-rate number", e164),
        ),
        (
            ~kind.is_in(list(_GEOGRAPHIC)),
            "not_geographic",
            pl.format("{} is a {} number, not fixed line or mobile", e164, type_name),
        ),
        (
            ~kind.is_in(list(_ACCEPTED_TYPES[number_type])),
            "wrong_type",
            pl.format(f"{{}} is {{}}; --number-type is {number_type}", e164, type_name),
        ),
    ]
    reason: Any = pl
    detail: Any = pl
    for cond, code, text in rules:
        reason = reason.when(cond).then(pl.lit(code))
        detail = detail.when(cond).then(text)
    return (
        reason.otherwise(pl.lit(None, dtype=pl.Utf8)),
        detail.otherwise(pl.lit(None, dtype=pl.Utf8)),
    )


def normalize_numbers(
    numbers: pl.Series, *, regions: Sequence[str] = ("US",), number_type: str = "either"
) -> pl.DataFrame:
    """Normalise and validate a whole column: ``e164``, ``reason``, ``detail`` (Utf8), one row
    per input value, in order. Same answers as :func:`normalize_number` on each value."""
    regions = check_options(regions, number_type)
    raw = pl.col("raw")
    stripped = raw.str.strip_chars(" ")
    unquoted = (
        pl.when(stripped.str.starts_with("'"))
        .then(stripped.str.slice(1).str.strip_chars(" "))
        .otherwise(stripped)
    )
    frame = pl.DataFrame({"raw": numbers.cast(pl.Utf8)}).with_columns(
        national=pl.when(raw.str.contains(_FAST_CHARS) & ~unquoted.str.contains(_DECIMALISH))
        .then(unquoted.str.replace_all(r"[ ().\-]", "").str.extract(_CLEAN_SHAPE, 1))
        .otherwise(pl.lit(None, dtype=pl.Utf8))
    )
    us_kind = type_expr(pl.col("national"), "US")
    frame = frame.with_columns(
        kind=us_kind,
        region=pl.when(us_kind.is_not_null()).then(pl.lit("US")).otherwise(pl.lit(None, pl.Utf8)),
    )
    # clean-shaped but not US (Canada, the Caribbean, unassigned): the other NANP regions
    rest_mask = pl.col("national").is_not_null() & pl.col("kind").is_null()
    frame = frame.with_row_index("_idx")
    rest = frame.filter(rest_mask)
    if rest.height:
        rest = _nanp_regions(rest.select("_idx", "national"))
        frame = frame.update(rest.select("_idx", "region", "kind"), on="_idx")
    fast = pl.col("national").is_not_null()
    frame = frame.with_columns(
        e164=pl.when(fast & pl.col("region").is_not_null() & pl.col("kind").is_not_null())
        .then(pl.lit("+1") + pl.col("national"))
        .otherwise(pl.lit(None, dtype=pl.Utf8))
    )
    reason, detail = _judge_expr(regions, number_type)
    frame = frame.with_columns(
        reason=pl.when(fast).then(reason).otherwise(pl.lit(None, dtype=pl.Utf8)),
        detail=pl.when(fast).then(detail).otherwise(pl.lit(None, dtype=pl.Utf8)),
    )
    # everything else: per distinct value
    distinct = frame.filter(~fast).get_column("raw").unique(maintain_order=True)
    if distinct.len() == 0:
        return frame.select("e164", "reason", "detail")
    results = [normalize_number(v, regions=regions, number_type=number_type) for v in distinct]
    lookup = pl.DataFrame(
        {
            "raw": distinct,
            "_e164": [r.e164 for r in results],
            "_reason": [r.reason for r in results],
            "_detail": [r.detail for r in results],
        },
        schema={"raw": pl.Utf8, "_e164": pl.Utf8, "_reason": pl.Utf8, "_detail": pl.Utf8},
    )
    frame = frame.join(lookup, on="raw", how="left", maintain_order="left", nulls_equal=True)
    return frame.select(
        e164=pl.when(fast).then(pl.col("e164")).otherwise(pl.col("_e164")),
        reason=pl.when(fast).then(pl.col("reason")).otherwise(pl.col("_reason")),
        detail=pl.when(fast).then(pl.col("detail")).otherwise(pl.col("_detail")),
    )
