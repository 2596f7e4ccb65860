"""Text from outside bulk on the console: input cells, provider answers and paths are shown as
they are, never read as rich markup (``[bold]``, ``[/x]``) nor run as terminal escapes."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from aiohttp import web
from click.testing import CliRunner

from bulk.cli import main
from bulk.cli._shown import cell, inline, visible
from tests._helpers import ThreadedSandbox, behind_proxy, write_csv

ESC = "\x1b"


@pytest.fixture(autouse=True)
def _work_in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


def test_validate_on_a_terminal_shows_markup_and_escapes_in_cells_as_text(tmp_path: Path) -> None:
    # before: the campaign "[bold]C1" was printed bold "C1", and the number "[/x]" stopped
    # the command with "unexpected MarkupError"; an escape sequence reached the terminal
    rows = ["[/x],CUOGHIN", "+14155550100,[bold]C1", f"+14155550101,{ESC}[2JC2"]
    src = write_csv(tmp_path / "m.csv", "number,campaign", rows)
    result = CliRunner().invoke(main, ["validate", str(src), "--no-report"],
                                env={"FORCE_COLOR": "1", "COLUMNS": "200"})
    assert result.exit_code == 1, result.output  # one row rejected
    assert "[bold]C1" in result.output and "[/x]" in result.output
    assert "\\x1b[2JC2" in result.output and f"{ESC}[2J" not in result.output


def test_a_provider_text_that_looks_like_markup_is_printed_as_it_came(
    tmp_path: Path, sandbox_factory: Callable[..., ThreadedSandbox]
) -> None:
    # before: a 401 whose text held "[/x]" ended in a MarkupError traceback, not one line
    sb = sandbox_factory()
    src = write_csv(tmp_path / "in.csv", "number,campaign", ["+14155550100,CUOGHIN"])

    def refuse(method: str, path: str, body: bytes) -> web.Response | None:
        text = f"bad [/x] credentials [bold]{ESC}[31mred"
        return web.json_response({"api_id": "a", "error": text}, status=401)

    with behind_proxy(sb, before=refuse) as proxied:
        result = CliRunner().invoke(
            main, ["link", str(src), "--base-url", proxied.base_url, "--yes", "--quiet"],
            env={**sb.env("plivo"), "FORCE_COLOR": "1"},
        )
    assert result.exit_code == 2, (result.output, result.exception)
    assert "bad [/x] credentials [bold]\\x1b[31mred" in result.output
    assert "Traceback" not in result.output


def test_shown_text_spells_out_controls_and_escapes_markup() -> None:
    assert visible("ok\ttab") == "ok\ttab"
    assert visible(f"a{ESC}b\u202ec\x00") == "a\\x1bb\\u202ec\\x00"
    assert inline("[bold]x") == "\\[bold]x"
    assert cell("[/x]").plain == "[/x]"
