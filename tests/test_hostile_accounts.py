"""Many accounts attacked as a careless operator and a hostile provider would (the accounts
file's names, ``--account`` against the input's own column, one account failing while the
plan is read): each case ends in a clear message naming the account, or a rejected row."""

from __future__ import annotations

from pathlib import Path

import pytest

from bulk._accounts import read_accounts
from bulk._errors import ConfigError

EAST_ID = "SAEASTEASTEASTEAST01"


@pytest.mark.parametrize(
    ("table", "named"),
    [
        ('[accounts."east\\n"]\nauth-token-env = "EAST_TOKEN"\n', "'east\\n'"),
        ('[accounts.east]\nauth-token-env = "EAST_TOKEN\\n"\n', "'auth-token-env'"),
        ('[accounts.east]\nauth-token-env = "EAST_TOKEN"\n', "'auth-id'"),
    ],
)
def test_a_name_ending_in_a_newline_is_refused(tmp_path: Path, table: str, named: str) -> None:
    # ``$`` matches before a final newline: "east\n" passed as a name and broke the summary
    # table and the report's account column (rows naming "east" were unknown_account)
    path = tmp_path / "accounts.toml"
    auth_id = EAST_ID + ("\\n" if named == "'auth-id'" else "")
    path.write_text(f'{table}provider = "plivo"\nauth-id = "{auth_id}"\n', encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        read_accounts(path)
    assert named in str(caught.value)
