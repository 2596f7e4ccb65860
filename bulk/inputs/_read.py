"""Reading a CSV into a polars frame of text columns, with physical line numbers.

The file is decoded (UTF-8 with or without BOM, UTF-16 with BOM, else Windows-1252), split into
physical lines with polars, and grouped into records by quote parity (RFC 4180: a record goes on
while an odd number of ``"`` has been seen). Records with no quote are split with polars
(``str.split_exact``), records with quotes or embedded newlines, usually few, with the ``csv``
module. Every column stays text; nothing is inferred. The line of a record is the physical line it
starts on (header = line 1, blank lines and multi-line quoted fields counted).
"""

from __future__ import annotations

import codecs
import csv
import io
import os
import stat
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from bulk._errors import InputError
from bulk.inputs._csvsafe import restore_header

LINE = "__bulk_line__"
#: the largest input file read by default (--max-input-bytes): 2 GiB
MAX_INPUT_BYTES = 2 * 1024**3
#: the longest physical line accepted: 1 MiB (a numbers file's lines are a few dozen bytes)
MAX_LINE_BYTES = 1024**2
SEPARATORS = (",", ";", "\t")
_SEPARATOR_NAMES = {",": "comma", ";": "semicolon", "\t": "tab"}


@dataclass(frozen=True, slots=True)
class Table:
    """A CSV read as text: ``frame`` has ``LINE`` (Int64) then one Utf8 column per header."""

    frame: pl.DataFrame
    headers: list[str]
    encoding: str
    separator: str
    path: str


def separator_name(separator: str) -> str:
    return _SEPARATOR_NAMES.get(separator, repr(separator))


_ZIP = b"PK\x03\x04"


def _not_csv_but_zip(where: str) -> InputError:
    return InputError(
        "this is a binary file (it looks like an Excel workbook or a zip): save it as CSV first",
        path=where,
    )


def _decode(data: bytes, where: str) -> tuple[str, str]:
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return data.decode("utf-16"), "utf-16"
        except UnicodeDecodeError as exc:
            raise InputError(f"not valid UTF-16 text ({exc.reason})", path=where) from None
    if data.startswith(_ZIP):
        raise _not_csv_but_zip(where)
    nul = data.find(b"\x00")
    if nul >= 0:
        line = data.count(b"\n", 0, nul) + 1
        raise InputError(
            "this is a binary file, not CSV text (it contains NUL bytes)", path=where, line=line
        )
    if data.startswith(codecs.BOM_UTF8):
        try:
            return data[3:].decode("utf-8"), "utf-8-sig"
        except UnicodeDecodeError as exc:
            line = data.count(b"\n", 0, exc.start) + 1
            raise InputError(
                f"starts with a UTF-8 BOM but byte 0x{data[exc.start]:02x} is not UTF-8",
                path=where,
                line=line,
            ) from None
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("cp1252"), "cp1252"
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise InputError(
            f"not text: byte 0x{data[exc.start]:02x} is neither UTF-8 nor Windows-1252 "
            "(is this a binary file?)",
            path=where,
            line=line,
        ) from None


class _Bounded:
    """Reads a file in chunks of ``MAX_LINE_BYTES`` while checking, as the bytes arrive, the
    size bound, the line bound and NUL bytes, so an endless or binary stream stops early."""

    def __init__(self, where: str, what: str, max_bytes: int) -> None:
        self.where, self.what, self.max_bytes = where, what, max_bytes
        self.total = 0
        self.lines = 0  #: newlines seen before the current chunk
        self.run = 0  #: bytes since the last newline
        self.utf16: bool | None = None

    def too_large(self, size: int | str) -> InputError:
        return InputError(
            f"the {self.what} is {size} bytes, more than the limit of {self.max_bytes} "
            "bytes (--max-input-bytes)",
            path=self.where,
        )

    def feed(self, chunk: bytes) -> None:
        self.total += len(chunk)
        if self.total > self.max_bytes:
            raise self.too_large(f"more than {self.max_bytes}")
        if self.utf16 is None:
            self.utf16 = chunk.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE))
            if chunk.startswith(_ZIP):
                raise _not_csv_but_zip(self.where)
        nul = -1 if self.utf16 else chunk.find(b"\x00")
        if nul >= 0:  # the same answer _decode gives, without reading the rest
            raise InputError(
                "this is a binary file, not CSV text (it contains NUL bytes)",
                path=self.where,
                line=self.lines + chunk.count(b"\n", 0, nul) + 1,
            )
        first = chunk.find(b"\n")
        # a chunk is MAX_LINE_BYTES long, so only a line crossing chunks can be too long
        if self.run + (len(chunk) if first < 0 else first) > MAX_LINE_BYTES:
            raise InputError(
                f"this line is longer than {MAX_LINE_BYTES} bytes: not a numbers file?",
                path=self.where,
                line=self.lines + 1,
            )
        if first < 0:
            self.run += len(chunk)
        else:
            self.run = len(chunk) - chunk.rfind(b"\n") - 1
            self.lines += chunk.count(b"\n")


def read_bounded(
    path: str | Path, *, what: str = "file", max_bytes: int = MAX_INPUT_BYTES
) -> bytes:
    """The bytes of ``path``, refusing devices, files over ``max_bytes`` and over-long lines.

    A FIFO or pipe (``/dev/stdin``, ``<(...)``) is read with the same hard bound.
    """
    where = str(path)
    bound = _Bounded(where, what, max_bytes)
    try:
        with open(path, "rb") as handle:
            info = os.fstat(handle.fileno())
            if stat.S_ISCHR(info.st_mode) or stat.S_ISBLK(info.st_mode):
                raise InputError(
                    f"is a device, not a CSV file; give the {what} as a file", path=where
                )
            if stat.S_ISREG(info.st_mode) and info.st_size > max_bytes:
                raise bound.too_large(info.st_size)
            chunks = []
            while chunk := handle.read(MAX_LINE_BYTES):
                bound.feed(chunk)
                chunks.append(chunk)
    except IsADirectoryError:
        raise InputError("is a directory, not a CSV file", path=where) from None
    except FileNotFoundError:
        raise InputError(f"{what} not found", path=where) from None
    except OSError as exc:
        raise InputError(f"cannot read the {what}: {exc.strerror or exc}", path=where) from None
    return b"".join(chunks)


def _parse_one(text: str, separator: str, line: int, where: str) -> list[str]:
    try:
        rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=separator))
    except csv.Error as exc:
        raise InputError(f"cannot parse this record ({exc})", path=where, line=line) from None
    if len(rows) != 1:
        raise InputError(
            "cannot parse this record (a stray quote character?)", path=where, line=line
        )
    return rows[0]


def _sniff(header: str) -> str:
    best, best_count = ",", 1
    for candidate in SEPARATORS:
        try:
            count = len(next(csv.reader([header], delimiter=candidate)))
        except (csv.Error, StopIteration):
            continue
        if count > best_count:
            best, best_count = candidate, count
    return best


def _read_text(path: str | Path, where: str, what: str, max_bytes: int) -> tuple[str, str]:
    """The decoded text of ``path`` (classic Mac line endings made ``\\n``) and its encoding;
    :class:`InputError` when it is empty or blank."""
    data = read_bounded(path, what=what, max_bytes=max_bytes)
    text, encoding = _decode(data, where)
    del data
    if not text.strip():
        raise InputError(
            f"the {what} is empty: expected a header line (e.g. number,campaign) and rows",
            path=where,
        )
    if "\n" not in text and "\r" in text:  # classic Mac line endings
        text = text.replace("\r", "\n")
    return text, encoding


def _read_records(
    path: str | Path, where: str, what: str, max_bytes: int
) -> tuple[pl.DataFrame, str]:
    """The physical lines of ``path`` that matter (``line``, ``raw``), each with the ``record``
    it belongs to and whether it is ``simple`` (a whole record without quotes); and the
    encoding. Blank lines outside quotes are dropped; an unclosed quote raises."""
    text, encoding = _read_text(path, where, what, max_bytes)
    lines = (
        pl.Series("raw", [text], dtype=pl.Utf8)
        .str.split("\n")
        .explode()
        .to_frame()
        .with_row_index("line", offset=1)
        .with_columns(pl.col("line").cast(pl.Int64))
    )
    del text
    lines = lines.with_columns(quotes=pl.col("raw").str.count_matches('"', literal=True))
    lines = lines.with_columns(
        start=((pl.col("quotes").cum_sum() - pl.col("quotes")) % 2) == 0,
    )
    lines = lines.filter(~(pl.col("start") & (pl.col("raw").str.strip_chars() == "")))
    if lines.height == 0:  # pragma: no cover - guarded by the strip() test in _read_text
        raise InputError(f"the {what} is empty", path=where)
    if int(lines.get_column("quotes").sum()) % 2 == 1:
        opened = lines.filter(pl.col("start")).get_column("line")[-1]
        raise InputError(
            'a quoted field opened on this line is never closed (unbalanced ")',
            path=where,
            line=int(opened),
        )
    lines = lines.with_columns(
        record=pl.col("start").cum_sum(),
        simple=pl.col("start")
        & pl.col("start").shift(-1, fill_value=True)
        & (pl.col("quotes") == 0),
    )
    return lines, encoding


def _read_header(first_record: pl.DataFrame, where: str) -> tuple[list[str], str]:
    """The cleaned column names and the sniffed separator of the header record."""
    header_text = "\n".join(first_record.get_column("raw").to_list()).removesuffix("\r")
    header_line = int(first_record.get_column("line")[0])
    separator = _sniff(header_text)
    raw_headers = _parse_one(header_text, separator, header_line, where)
    headers: list[str] = []
    seen: dict[str, int] = {}
    for index, name in enumerate(raw_headers, start=1):
        clean = restore_header(name.strip().lstrip("\ufeff").strip()) or f"column_{index}"
        if clean in seen:
            raise InputError(
                f"duplicate column header (columns {seen[clean]} and {index} are both named "
                f"{clean!r}); rename one",
                path=where,
                line=header_line,
                column=clean,
            )
        seen[clean] = index
        headers.append(clean)
    return headers, separator


def _first_ragged_simple(
    simple: pl.DataFrame, separator: str, width: int
) -> tuple[int, int] | None:
    """(line, field count) of the first simple record whose field count is not ``width``."""
    counts = simple.select(
        "line", fields=pl.col("text").str.count_matches(separator, literal=True) + 1
    ).filter(pl.col("fields") != width)
    if counts.height:
        return (int(counts["line"][0]), int(counts["fields"][0]))
    return None


def _parse_complex(
    complex_lines: pl.DataFrame,
    separator: str,
    width: int,
    where: str,
    first_bad: tuple[int, int] | None,
) -> tuple[list[list[str]], list[int], tuple[int, int] | None]:
    """Parse the records with quotes or embedded newlines with the ``csv`` module, in line
    order, stopping at the first ragged one or past ``first_bad``: the rows, their line
    numbers and the (line, field count) of the earliest ragged record seen."""
    complex_rows: list[list[str]] = []
    complex_line_numbers: list[int] = []
    if complex_lines.height:
        records = (
            complex_lines.group_by("record", maintain_order=True)
            .agg(pl.col("line").first(), pl.col("raw").str.join("\n"))
            .with_columns(pl.col("raw").str.strip_suffix("\r"))
        )
        for line_no, record_text in records.select("line", "raw").iter_rows():
            if first_bad is not None and line_no > first_bad[0]:
                break
            fields = _parse_one(record_text, separator, line_no, where)
            if len(fields) != width:
                first_bad = (line_no, len(fields))
                break
            complex_rows.append(fields)
            complex_line_numbers.append(line_no)
    return complex_rows, complex_line_numbers, first_bad


def _ragged(where: str, separator: str, width: int, line: int, count: int) -> InputError:
    return InputError(
        f"this line has {count} fields but the header has {width} "
        f"(separator: {separator_name(separator)}); every line needs the same number of "
        "fields: quote values that contain the separator",
        path=where,
        line=line,
    )


def _assemble(
    simple: pl.DataFrame,
    separator: str,
    headers: list[str],
    complex_rows: list[list[str]],
    complex_line_numbers: list[int],
) -> pl.DataFrame:
    """``LINE`` then one text column per header: the simple records split by polars, the
    parsed complex ones merged in line order."""
    width = len(headers)
    names = [f"field_{i}" for i in range(width)]
    frame = simple.select(
        pl.col("line").alias(LINE),
        pl.col("text").str.split_exact(separator, width - 1).struct.rename_fields(names),
    ).unnest("text")
    frame = frame.rename(dict(zip(names, headers, strict=True)))
    if complex_rows:
        extra = pl.DataFrame(
            {
                LINE: pl.Series(complex_line_numbers, dtype=pl.Int64),
                **{
                    name: pl.Series([row[i] for row in complex_rows], dtype=pl.Utf8)
                    for i, name in enumerate(headers)
                },
            }
        )
        frame = pl.concat([frame, extra]).sort(LINE)
    return frame


def read_table(path: str | Path, *, what: str = "file", max_bytes: int = MAX_INPUT_BYTES) -> Table:
    """Read ``path`` as a CSV of text columns. Raises :class:`InputError` when unusable,
    including a device, a file over ``max_bytes`` or a line over ``MAX_LINE_BYTES``."""
    where = str(path)
    lines, encoding = _read_records(path, where, what, max_bytes)
    headers, separator = _read_header(lines.filter(pl.col("record") == 1), where)
    width = len(headers)

    body = lines.filter(pl.col("record") > 1)
    simple = body.filter(pl.col("simple")).select("line", text=pl.col("raw").str.strip_suffix("\r"))
    complex_lines = body.filter(~pl.col("simple"))
    del lines, body

    first_bad = _first_ragged_simple(simple, separator, width)
    complex_rows, complex_line_numbers, first_bad = _parse_complex(
        complex_lines, separator, width, where, first_bad
    )
    if first_bad is not None:
        raise _ragged(where, separator, width, *first_bad)
    frame = _assemble(simple, separator, headers, complex_rows, complex_line_numbers)
    return Table(
        frame=frame,
        headers=headers,
        encoding=encoding,
        separator=separator,
        path=where,
    )
