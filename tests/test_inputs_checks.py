"""Row checks across the file: campaigns, aliases, actions, duplicates, conflicts; summary."""

from __future__ import annotations

from pathlib import Path

import pytest

from bulk._errors import InputError
from bulk.inputs import REASONS, Loaded, load_rows

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
CAMPAIGNS = "campaign_id,alias\nCUOGHIN,marketing\nCRIGC80,alerts\nCMIGOLD,legacy\n"


def _load(tmp_path: Path, content: str, *, campaigns: bool = True, **kwargs: object) -> Loaded:
    path = tmp_path / "numbers.csv"
    path.write_text(content, encoding="utf-8")
    campaigns_path = None
    if campaigns:
        campaigns_path = tmp_path / "campaigns.csv"
        campaigns_path.write_text(CAMPAIGNS, encoding="utf-8")
    return load_rows(path, campaigns_path=campaigns_path, **kwargs)  # type: ignore[arg-type]


def _reasons(loaded: Loaded) -> list[str | None]:
    return loaded.frame["reason"].to_list()


def test_aliases_resolve_case_insensitively_and_ids_case_sensitively(tmp_path: Path) -> None:
    loaded = _load(
        tmp_path,
        "number,campaign\n4155550100,Marketing\n4155550101,CRIGC80\n4155550102,crigc80\n",
    )
    assert loaded.frame["campaign_id"].to_list() == ["CUOGHIN", "CRIGC80", None]
    assert _reasons(loaded) == [None, None, "unknown_campaign"]


def test_unknown_alias_is_rejected_as_unknown_campaign(tmp_path: Path) -> None:
    loaded = _load(tmp_path, "number,campaign\n4155550100,promo\n")
    assert _reasons(loaded) == ["unknown_campaign"]
    assert "promo" in loaded.frame["detail"][0]


def test_without_a_campaigns_file_values_are_ids_as_given(tmp_path: Path) -> None:
    loaded = _load(tmp_path, "number,campaign_id\n4155550100, promo \n", campaigns=False)
    assert loaded.frame["campaign_id"].to_list() == ["promo"]
    assert _reasons(loaded) == [None]


def test_empty_campaign_is_rejected_as_missing_campaign(tmp_path: Path) -> None:
    loaded = _load(tmp_path, "number,campaign\n4155550100,\n4155550101, \n")
    assert _reasons(loaded) == ["missing_campaign", "missing_campaign"]


def test_default_campaign_overrides_the_column_and_may_be_an_alias(tmp_path: Path) -> None:
    loaded = _load(
        tmp_path, "number,campaign\n4155550100,promo\n4155550101,\n", default_campaign="alerts"
    )
    assert loaded.frame["campaign_id"].to_list() == ["CRIGC80", "CRIGC80"]
    assert _reasons(loaded) == [None, None]


def test_unknown_default_campaign_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="--campaign 'promo'"):
        _load(tmp_path, "number\n4155550100\n", default_campaign="promo")


def test_action_defaults_to_link(tmp_path: Path) -> None:
    loaded = _load(tmp_path, "number,campaign\n4155550100,alerts\n")
    assert loaded.frame["action"].to_list() == ["link"]
    assert loaded.summary().planned == {"link": 1}


def test_unknown_action_is_rejected_with_a_null_action(tmp_path: Path) -> None:
    loaded = _load(tmp_path, "number,campaign,action\n4155550100,alerts,attach\n")
    assert _reasons(loaded) == ["unknown_action"]
    assert loaded.frame["action"].to_list() == [None]


def test_row_action_differing_from_the_command_is_action_mismatch(tmp_path: Path) -> None:
    loaded = _load(
        tmp_path,
        "number,campaign,action\n4155550100,alerts,UNLINK\n4155550101,alerts,link\n4155550102,alerts,\n",
        default_action="link",
    )
    assert _reasons(loaded) == ["action_mismatch", None, None]
    assert loaded.frame["action"].to_list() == ["unlink", "link", "link"]


def test_move_without_from_campaign_is_rejected(tmp_path: Path) -> None:
    loaded = _load(
        tmp_path,
        "number,campaign_id,from,action\n4155550100,alerts,,move\n4155550101,alerts,legacy,move\n",
    )
    assert _reasons(loaded) == ["missing_from_campaign", None]
    assert loaded.frame["from_campaign"].to_list() == [None, "CMIGOLD"]


def test_default_from_campaign_applies_to_moves(tmp_path: Path) -> None:
    loaded = _load(
        tmp_path, "number,campaign_id\n4155550100,alerts\n", default_action="move",
        default_from_campaign="legacy",
    )  # fmt: skip
    assert _reasons(loaded) == [None]
    assert loaded.frame["from_campaign"].to_list() == ["CMIGOLD"]


def test_unknown_from_campaign_is_unknown_campaign(tmp_path: Path) -> None:
    loaded = _load(tmp_path, "number,campaign_id,from_campaign,action\n4155550100,alerts,x,move\n")
    assert _reasons(loaded) == ["unknown_campaign"]


def test_move_to_the_same_campaign_is_same_campaign(tmp_path: Path) -> None:
    loaded = _load(
        tmp_path, "number,campaign_id,from_campaign,action\n4155550100,alerts,CRIGC80,move\n"
    )
    assert _reasons(loaded) == ["same_campaign"]


def test_exact_duplicate_keeps_the_first_and_names_it(tmp_path: Path) -> None:
    loaded = _load(
        tmp_path,
        "number,campaign\n4155550100,alerts\n(415) 555-0100,Alerts\n+14155550100,CRIGC80\n",
    )
    assert _reasons(loaded) == [None, "duplicate", "duplicate"]
    assert loaded.frame["detail"].to_list()[1:] == ["duplicate of line 2", "duplicate of line 2"]


def test_same_number_in_two_campaigns_rejects_all_its_rows_as_conflict(tmp_path: Path) -> None:
    loaded = _load(
        tmp_path,
        "number,campaign\n4155550100,alerts\n4155550101,alerts\n4155550100,marketing\n"
        "4155550100,alerts\n",
    )
    assert _reasons(loaded) == ["conflict", None, "conflict", "conflict"]
    details = loaded.frame["detail"].to_list()
    assert "line(s) 4" in details[0] and "CUOGHIN" in details[0]
    assert "line(s) 2, 5" in details[2]


def test_link_and_unlink_of_one_number_is_a_conflict(tmp_path: Path) -> None:
    loaded = _load(
        tmp_path, "number,campaign,action\n4155550100,alerts,link\n4155550100,alerts,unlink\n"
    )
    assert _reasons(loaded) == ["conflict", "conflict"]


def test_rejected_rows_do_not_take_part_in_duplicates_or_conflicts(tmp_path: Path) -> None:
    loaded = _load(tmp_path, "number,campaign\n4155550100,promo\n4155550100,alerts\n")
    assert _reasons(loaded) == ["unknown_campaign", None]


def test_campaigns_file_without_campaign_id_is_unusable(tmp_path: Path) -> None:
    (tmp_path / "numbers.csv").write_text("number\n4155550100\n")
    (tmp_path / "c.csv").write_text("name_of_thing\nx\n")
    with pytest.raises(InputError, match="no campaign_id column"):
        load_rows(tmp_path / "numbers.csv", campaigns_path=tmp_path / "c.csv")


def test_campaigns_file_alias_naming_two_campaigns_is_unusable(tmp_path: Path) -> None:
    (tmp_path / "numbers.csv").write_text("number\n4155550100\n")
    (tmp_path / "c.csv").write_text("campaign_id,alias\nA,one\nB,ONE\n")
    with pytest.raises(InputError, match="names two campaigns") as info:
        load_rows(tmp_path / "numbers.csv", campaigns_path=tmp_path / "c.csv")
    assert info.value.line == 3


def test_summary_counts_reasons_campaigns_and_planned_actions(tmp_path: Path) -> None:
    loaded = _load(
        tmp_path,
        "number,campaign,action\n4155550100,alerts,link\n4155550101,marketing,unlink\n"
        "4155550102,marketing,link\n8005550100,alerts,link\n,alerts,link\n",
    )
    summary = loaded.summary()
    assert (summary.rows, summary.valid) == (5, 3)
    assert summary.rejected == {"empty": 1, "toll_free": 1}
    assert summary.campaigns == {"CUOGHIN": 2, "CRIGC80": 1}
    assert summary.planned == {"link": 2, "unlink": 1}
    text = summary.to_text()
    assert "5 rows: 3 valid, 2 rejected" in text
    assert REASONS["toll_free"] in text and "CUOGHIN (marketing)" in text


def test_every_reason_in_the_frame_is_documented() -> None:
    loaded = load_rows(SAMPLES / "onboarding.csv", campaigns_path=SAMPLES / "campaigns.csv")
    assert set(loaded.frame["reason"].drop_nulls()) <= set(REASONS)


def test_report_frame_keeps_original_columns_and_values(tmp_path: Path) -> None:
    loaded = _load(tmp_path, "Phone,campaign_id,Store\n'4155550100,alerts,S1\n")
    report = loaded.report_frame()
    assert report.columns == [
        "line", "Phone", "input_campaign_id", "Store", "e164", "campaign_id", "action",
        "from_campaign", "reason", "detail",
    ]  # fmt: skip
    assert report.row(0) == (
        2, "'4155550100", "alerts", "S1", "+14155550100", "CRIGC80", "link", None, None, None
    )  # fmt: skip
