"""Reading CSV files: encodings, separators, quoting, line numbers, headers, unusable files."""

from __future__ import annotations

from pathlib import Path

import pytest

from bulk._errors import InputError
from bulk.inputs import load_rows


def _write(tmp_path: Path, content: str | bytes, name: str = "numbers.csv") -> Path:
    path = tmp_path / name
    if isinstance(content, str):
        path.write_bytes(content.encode("utf-8"))
    else:
        path.write_bytes(content)
    return path


def test_semicolon_separator_is_sniffed(tmp_path: Path) -> None:
    path = _write(tmp_path, "number;campaign_id\n4155550100;C1\n")
    loaded = load_rows(path)
    assert loaded.separator == ";"
    assert loaded.frame["e164"].to_list() == ["+14155550100"]
    assert loaded.frame["campaign_id"].to_list() == ["C1"]


def test_tab_separator_is_sniffed(tmp_path: Path) -> None:
    path = _write(tmp_path, "number\tcampaign_id\tstore\n4155550100\tC1\tA, B\n")
    loaded = load_rows(path)
    assert loaded.separator == "\t"
    assert loaded.frame["store"].to_list() == ["A, B"]


def test_utf8_bom_is_skipped(tmp_path: Path) -> None:
    path = _write(tmp_path, b"\xef\xbb\xbfnumber,campaign_id\n4155550100,C1\n")
    loaded = load_rows(path)
    assert loaded.encoding == "utf-8-sig"
    assert loaded.columns["number"] == "number"


def test_windows_1252_file_is_decoded(tmp_path: Path) -> None:
    content = "number,campaign_id,owner\r\n4155550100,C1,José Müller\r\n".encode("cp1252")
    loaded = load_rows(_write(tmp_path, content))
    assert loaded.encoding == "cp1252"
    assert loaded.frame["owner"].to_list() == ["José Müller"]


def test_crlf_line_endings_leave_no_carriage_returns(tmp_path: Path) -> None:
    path = _write(tmp_path, "number,campaign_id,store\r\n4155550100,C1,S1\r\n4155550101,C2,S2\r\n")
    loaded = load_rows(path)
    assert loaded.frame["store"].to_list() == ["S1", "S2"]
    assert loaded.frame["line"].to_list() == [2, 3]


def test_blank_lines_are_skipped_and_line_numbers_stay_physical(tmp_path: Path) -> None:
    path = _write(tmp_path, "number,campaign_id\n\n4155550100,C1\n   \n\n4155550101,C1\n\n")
    loaded = load_rows(path)
    assert loaded.frame["line"].to_list() == [3, 6]


def test_quoted_newlines_and_separators_keep_line_numbers_right(tmp_path: Path) -> None:
    content = (
        'number,campaign_id,note\n'
        '4155550100,C1,"two\nlines"\n'
        '4155550101,C1,"a, b"\n'
        '"4155550102",C1,"say ""hi""\r\nand\nbye"\n'
        '4155550103,C1,plain\n'
    )  # fmt: skip
    loaded = load_rows(_write(tmp_path, content))
    assert loaded.frame["line"].to_list() == [2, 4, 5, 8]
    assert loaded.frame["note"].to_list() == ["two\nlines", "a, b", 'say "hi"\r\nand\nbye', "plain"]
    assert loaded.frame["e164"].to_list()[2] == "+14155550102"


@pytest.mark.parametrize(
    "header", ["number", "Phone", "PHONE_NUMBER", " Phone Number ", "phone-number", "TN", "DID",
               "msisdn", "E164"]
)  # fmt: skip
def test_number_column_header_matching_is_case_and_space_insensitive(
    tmp_path: Path, header: str
) -> None:
    loaded = load_rows(_write(tmp_path, f"{header},campaign\n4155550100,C1\n"))
    assert loaded.columns["number"] == header.strip()
    assert loaded.frame["e164"].to_list() == ["+14155550100"]


def test_number_column_priority_carries_the_others_as_extra_columns(tmp_path: Path) -> None:
    content = "e164,line,number,campaign_id,reason\n+14155550199,7,4155550100,C1,old\n"
    loaded = load_rows(_write(tmp_path, content))
    assert loaded.columns["number"] == "number"
    assert loaded.extra_columns == ["input_e164", "input_line", "input_reason"]
    row = loaded.frame.row(0, named=True)
    assert row["e164"] == "+14155550100"
    assert row["input_e164"] == "+14155550199"
    assert row["input_line"] == "7"
    assert row["line"] == 2


def test_frame_columns_are_in_the_documented_order(tmp_path: Path) -> None:
    content = "Store,Phone Number,Campaign,Owner\nS1,4155550100,C1,ann\n"
    loaded = load_rows(_write(tmp_path, content))
    assert loaded.frame.columns == [
        "line", "number", "e164", "campaign_id", "action", "from_campaign", "reason", "detail",
        "Store", "Owner",
    ]  # fmt: skip
    assert loaded.extra_columns == ["Store", "Owner"]
    assert loaded.columns == {"number": "Phone Number", "campaign": "Campaign"}


def test_every_column_is_read_as_text_never_inferred(tmp_path: Path) -> None:
    content = "number,campaign_id,zip,amount\n4155550100,C1,02134,1.50\n"
    loaded = load_rows(_write(tmp_path, content))
    row = loaded.frame.row(0, named=True)
    assert (row["zip"], row["amount"]) == ("02134", "1.50")
    assert row["number"] == "4155550100"


def test_header_only_file_has_zero_rows(tmp_path: Path) -> None:
    loaded = load_rows(_write(tmp_path, "number,campaign_id\r\n"))
    assert loaded.frame.height == 0
    assert loaded.summary().rows == 0


def test_empty_file_is_unusable(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="empty"):
        load_rows(_write(tmp_path, "\n\n"))


def test_ragged_line_is_unusable_and_named(tmp_path: Path) -> None:
    path = _write(tmp_path, "number,campaign_id\n4155550100,C1\n\n4155550101,C1,extra\n")
    with pytest.raises(InputError, match="3 fields but the header has 2") as info:
        load_rows(path)
    assert info.value.line == 4
    assert "line 4" in str(info.value)


def test_short_line_is_unusable_and_named(tmp_path: Path) -> None:
    path = _write(tmp_path, 'number,campaign_id,note\n4155550100,C1,"a\nb"\n4155550101,C1\n')
    with pytest.raises(InputError) as info:
        load_rows(path)
    assert info.value.line == 4


def test_ragged_quoted_record_is_named_by_its_first_line(tmp_path: Path) -> None:
    path = _write(tmp_path, 'number,campaign_id\n4155550100,C1\n4155550101,"C1\nx",extra\n')
    with pytest.raises(InputError) as info:
        load_rows(path)
    assert info.value.line == 3


def test_unbalanced_quote_is_unusable_and_named(tmp_path: Path) -> None:
    path = _write(tmp_path, 'number,campaign_id\n4155550100,C1\n"4155550101,C1\n4155550102,C1\n')
    with pytest.raises(InputError, match="never closed") as info:
        load_rows(path)
    assert info.value.line == 3


def test_duplicate_header_is_unusable_and_names_the_column(tmp_path: Path) -> None:
    path = _write(tmp_path, "number,campaign_id,store,store\n4155550100,C1,a,b\n")
    with pytest.raises(InputError, match="duplicate column header") as info:
        load_rows(path)
    assert info.value.column == "store"


def test_missing_number_column_lists_headers_and_accepted_names(tmp_path: Path) -> None:
    path = _write(tmp_path, "mobile_no,campaign_id\n4155550100,C1\n")
    with pytest.raises(InputError) as info:
        load_rows(path)
    message = str(info.value)
    assert "'mobile_no'" in message and "'campaign_id'" in message
    assert "msisdn" in message and "phone number" in message


def test_binary_file_with_nul_bytes_is_unusable(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="binary"):
        load_rows(_write(tmp_path, b"number\n\x00\x01\x02garbage\n"))


def test_excel_workbook_is_unusable_with_a_hint(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="save it as CSV"):
        load_rows(_write(tmp_path, b"PK\x03\x04\x14\x00\x06\x00rest-of-zip"))


def test_undecodable_bytes_are_unusable_and_named(tmp_path: Path) -> None:
    # 0x81 is undefined in Windows-1252 and invalid in UTF-8
    with pytest.raises(InputError, match="neither UTF-8 nor Windows-1252") as info:
        load_rows(_write(tmp_path, b"number,campaign_id\n4155550100,C1\n\x81\x81,C1\n"))
    assert info.value.line == 3


def test_missing_file_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not found"):
        load_rows(tmp_path / "nope.csv")


def test_utf16_file_from_excel_unicode_text_is_read(tmp_path: Path) -> None:
    content = "number\tcampaign_id\r\n4155550100\tC1\r\n".encode("utf-16")
    loaded = load_rows(_write(tmp_path, content))
    assert loaded.frame["e164"].to_list() == ["+14155550100"]


def test_single_column_file_needs_a_campaign_per_row(tmp_path: Path) -> None:
    loaded = load_rows(_write(tmp_path, "phone\n4155550100\n"))
    assert loaded.frame["reason"].to_list() == ["missing_campaign"]
    assert "no campaign column" in loaded.frame["detail"][0]
