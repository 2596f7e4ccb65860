"""``--shard K/N`` with an accounts file: every shard validates the whole input the same way
(its cross-row checks too), then keeps the rows whose account, as the accounts file spells
it, hashes to it; a row whose account cannot be resolved is shard 0's alone. The N shard
reports together are the unsharded report, and no number is changed twice."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner

from bulk._accounts import shard_of
from bulk.cli import main
from bulk.sandbox import SandboxConfig, seed_for_accounts
from tests._helpers import ThreadedSandbox, threaded_sandbox, write_csv

IDS = {"alpha": "SAALPHA0000000000000", "bravo": "SABRAVO0000000000000"}
#: the report columns a shard's report must agree on with the unsharded one
KEEP = ["line", "number", "e164", "campaign_id", "action", "outcome", "reason", "account"]
#: rows that test where a row goes: empty account, one number in two accounts, an account
#: name in another case, an unknown account, a duplicate, a bad number
EDGE_ROWS = [
    "+14155551101,CUOGHIN,alpha",
    "+14155551102,CUOGHIN,",
    "+14155551300,CUOGHIN,alpha",
    "+14155551300,CUOGHIN,bravo",
    "+14155551103,CUOGHIN,ALPHA",
    "+14155551104,CUOGHIN,nobody",
    "+14155551105,CUOGHIN,bravo",
    "+14155551106,CUOGHIN,Bravo",
    "+14155551101,CUOGHIN,alpha",
    "not a number,CUOGHIN,bravo",
    "+14155551107,CUOGHIN,nobody",
]


def test_the_accounts_split_over_the_shards_this_file_uses() -> None:
    # alpha and bravo fall in different shards of 2 and of 3; ALPHA's raw hash differs from
    # alpha's in 3 shards (a shard chosen from the cell as written would be wrong)
    assert shard_of("alpha", 2) != shard_of("bravo", 2)
    assert shard_of("alpha", 3) != shard_of("bravo", 3)
    assert shard_of("ALPHA", 3) != shard_of("alpha", 3)
    assert 0 not in (shard_of("alpha", 3), shard_of("bravo", 3))


@pytest.fixture
def sandboxes() -> Iterator[list[ThreadedSandbox]]:
    """Three sandboxes serving accounts alpha and bravo: one per way of running the input."""
    config = SandboxConfig(settle_min=0.02, settle_max=0.1)
    with (
        threaded_sandbox(config, seed_for_accounts(plivo=dict.fromkeys(IDS.values()))) as one,
        threaded_sandbox(config, seed_for_accounts(plivo=dict.fromkeys(IDS.values()))) as two,
        threaded_sandbox(config, seed_for_accounts(plivo=dict.fromkeys(IDS.values()))) as three,
    ):
        yield [one, two, three]


def _accounts(tmp_path: Path, sb: ThreadedSandbox, name: str) -> Path:
    path = tmp_path / name
    path.write_text(
        "".join(
            f'[accounts.{account}]\nprovider = "plivo"\nauth-id = "{auth_id}"\n'
            f'auth-token-env = "{account.upper()}_TOKEN"\nbase-url = "{sb.base_url}"\n\n'
            for account, auth_id in IDS.items()
        ),
        encoding="utf-8",
    )
    return path


def _run(
    tmp_path: Path, sb: ThreadedSandbox, source: Path, report: str, shard: str | None
) -> pl.DataFrame:
    """``bulk link`` of ``source`` against ``sb``; its report."""
    accounts = _accounts(tmp_path, sb, f"{report}.accounts.toml")
    args = [
        "link", str(source), "--accounts", str(accounts), "--report", str(tmp_path / report),
        "--journal", str(tmp_path / f"{report}.journal"), "--poll-interval", "0.1",
        "--resend-delay", "0.1", "--yes", "--quiet",
        *(["--shard", shard] if shard is not None else []),
    ]
    env = {f"{a.upper()}_TOKEN": sb.plivo_accounts[auth_id] for a, auth_id in IDS.items()}
    result = CliRunner().invoke(main, args, env=env)
    assert result.exit_code in (0, 1), result.output
    return pl.read_csv(tmp_path / report, infer_schema=False)


def _changed(sb: ThreadedSandbox) -> dict[str, int]:
    """Links each number's account accepted (the sandbox's own count)."""
    numbers = sb.counters()["numbers"]
    return {n: c["link_accepted"] for n, c in numbers.items() if c["link_accepted"]}


def _sharded(
    tmp_path: Path, sb: ThreadedSandbox, source: Path, count: int
) -> list[pl.DataFrame]:
    return [
        _run(tmp_path, sb, source, f"s{k}of{count}.csv", f"{k}/{count}") for k in range(count)
    ]


def test_a_row_naming_no_account_is_rejected_once_by_shard_0_and_sent_by_none(
    tmp_path: Path, sandboxes: list[ThreadedSandbox]
) -> None:
    # each shard read the accounts file filtered to its own accounts: one account left, so
    # every shard took the empty cell for it and linked the number (link_accepted: 2)
    sb = sandboxes[0]
    source = write_csv(
        tmp_path / "in.csv", "number,campaign,account",
        ["+14155551101,CUOGHIN,alpha", "+14155551102,CUOGHIN,", "+14155551105,CUOGHIN,bravo"],
    )
    parts = _sharded(tmp_path, sb, source, 2)
    holding = [p.filter(pl.col("line") == "3") for p in parts]
    assert [h.height for h in holding] == [1, 0]
    row = holding[0].row(0, named=True)
    assert row["outcome"] == "rejected" and row["reason"].startswith("missing_account"), row
    assert _changed(sb) == {"+14155551101": 1, "+14155551105": 1}


def test_one_number_asked_of_two_accounts_in_two_shards_is_a_conflict_in_both(
    tmp_path: Path, sandboxes: list[ThreadedSandbox]
) -> None:
    sb = sandboxes[0]
    source = write_csv(
        tmp_path / "in.csv", "number,campaign,account",
        ["+14155551300,CUOGHIN,alpha", "+14155551300,CUOGHIN,bravo"],
    )
    parts = _sharded(tmp_path, sb, source, 2)
    union = pl.concat(parts).sort(pl.col("line").cast(pl.Int64))
    assert union.get_column("line").to_list() == ["2", "3"]
    assert union.get_column("outcome").to_list() == ["rejected", "rejected"]
    assert all(r.startswith("conflict") for r in union.get_column("reason")), union
    assert _changed(sb) == {}


def test_an_account_named_in_another_case_is_run_by_its_accounts_shard_alone(
    tmp_path: Path, sandboxes: list[ThreadedSandbox]
) -> None:
    sb = sandboxes[0]
    source = write_csv(
        tmp_path / "in.csv", "number,campaign,account", ["+14155551103,CUOGHIN,ALPHA"]
    )
    parts = _sharded(tmp_path, sb, source, 3)
    assert [p.height for p in parts] == [int(k == shard_of("alpha", 3)) for k in range(3)]
    row = parts[shard_of("alpha", 3)].row(0, named=True)
    assert (row["outcome"], row["account"]) == ("linked", "alpha"), row
    assert _changed(sb) == {"+14155551103": 1}


def test_the_shard_reports_of_2_and_of_3_together_are_the_unsharded_report_line_by_line(
    tmp_path: Path, sandboxes: list[ThreadedSandbox]
) -> None:
    source = write_csv(tmp_path / "in.csv", "number,campaign,account", EDGE_ROWS)
    whole = _run(tmp_path, sandboxes[0], source, "whole.csv", None).select(KEEP)
    outcomes = dict(zip(whole.get_column("line"), whole.get_column("outcome"), strict=True))
    # the unsharded run's verdicts, as the accounts file spells each account
    assert [outcomes[str(n)] for n in range(2, 13)] == [
        "linked", "rejected", "rejected", "rejected", "linked", "rejected", "linked",
        "linked", "rejected", "rejected", "rejected",
    ]
    assert whole.get_column("account").to_list()[4:8] == ["alpha", "nobody", "bravo", "bravo"]
    linked = sorted(whole.filter(pl.col("outcome") == "linked").get_column("e164"))
    for count, sb in ((2, sandboxes[1]), (3, sandboxes[2])):
        parts = _sharded(tmp_path, sb, source, count)
        union = pl.concat(p.select(KEEP) for p in parts).sort(pl.col("line").cast(pl.Int64))
        assert union.equals(whole), (count, union, whole)
        # the rows no account can take are shard 0's alone
        unresolved = {"3", "7", "12"}
        assert unresolved <= set(parts[0].get_column("line"))
        assert all(not unresolved & set(p.get_column("line")) for p in parts[1:])
        # every number linked once, by the shard of its account: none changed twice
        assert _changed(sb) == dict.fromkeys(linked, 1)
    assert _changed(sandboxes[0]) == dict.fromkeys(linked, 1)
