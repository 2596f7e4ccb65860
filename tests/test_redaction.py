"""A credential a provider echoes back never reaches a report, failures file, journal or
stderr, in any form a JSON, form-encoded or HTML body can carry it: raw, JSON-escaped
(``\\/``, ``\\\\``, ``\\"``, ``\\u00e9``, every character as ``\\uXXXX``, JSON inside JSON),
percent-encoded (upper or lower case hex, ``+`` for a space) and as HTML character
references."""

from __future__ import annotations

import base64
import itertools
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import polars as pl
import pytest
from aiohttp import web
from click.testing import CliRunner

from bulk.cli import main
from bulk.engine._redact import Redactor, secrets_in
from bulk.providers._base import Response
from tests._helpers import ThreadedSandbox, behind_proxy, write_csv

AM_MARKETING = "4f1c2d3e-0000-4000-8000-000000000001"


def forms(secret: str) -> list[str]:
    """``secret`` as a provider might echo it inside a JSON string (each valid there)."""
    percent = quote(secret, safe="")
    every_u = "".join(f"\\u{ord(c):04x}" for c in secret)
    return [
        secret.replace("\\", "\\\\").replace('"', '\\"'),  # JSON, non-ASCII kept as UTF-8
        json.dumps(secret)[1:-1].replace("/", "\\/"),  # JSON, "/" escaped, \u00e9
        every_u,
        every_u.upper().replace("\\U", "\\u"),
        json.dumps(json.dumps(secret).replace("/", "\\/"))[1:-1],  # JSON text in a JSON string
        percent,
        re.sub("%[0-9A-F]{2}", lambda m: m.group().lower(), percent),
        quote_plus(secret),
        quote(percent, safe=""),  # percent-encoded twice
        "".join(f"&#{ord(c)};" for c in secret),
        "".join(f"&#x{ord(c):X};" for c in secret),
    ]


def _all_forms(secret: str) -> list[str]:
    return [secret, *forms(secret)]


@pytest.mark.parametrize("form", range(len(forms("x"))))
def test_every_echoed_form_of_a_token_is_cut_from_a_json_body(form: int) -> None:
    token = 'sEcr/et"to\\ken-é-' + "q" * 12
    headers = {"Authorization": "Basic " + base64.b64encode(f"MA1:{token}".encode()).decode()}
    echoed = forms(token)[form]
    body = json.dumps({"error": "placeholder"}).replace("placeholder", f"bad token {echoed}!")
    response = Redactor(secrets_in(headers))(Response(400, {}, body.encode()))
    text = json.loads(response.body)["error"]
    assert text.replace('"', "") == "bad token [redacted]!"  # nested JSON keeps its quotes


def test_a_token_in_an_html_title_or_a_form_body_or_a_header_is_cut() -> None:
    token = "Ab/cd+ef=gh/é" + "z" * 8
    headers = {"Authorization": f"Bearer {token}"}
    redact = Redactor(secrets_in(headers))
    html = f"<html><title>{token} &#47; {forms(token)[-1]}</title></html>"
    form = f"error=bad+token&token={quote_plus(token)}&again={forms(token)[6]}"
    for body in (html, form):
        cut = redact(Response(400, {}, body.encode())).body.decode()
        assert not any(f in cut for f in _all_forms(token)), cut
        assert "[redacted]" in cut
    echoed = {"x-echo": forms(token)[1], "x-request-id": "req_1"}
    cut_headers = redact(Response(400, echoed, b"")).headers
    assert cut_headers == {"x-echo": "[redacted]", "x-request-id": "req_1"}


def test_ordinary_text_with_escapes_is_left_as_it_was() -> None:
    headers = {"Authorization": "Bearer am_live_0123456789abcdef"}
    body = b'{"error": "path \\/v1\\/x, caf\\u00e9 100%25 a+b", "n": "am_live_0123"}'
    assert Redactor(secrets_in(headers))(Response(400, {}, body)).body == body


def echoing(sb: ThreadedSandbox, authorization: str,
            answer: Callable[[str, str, int], web.Response | None]) -> Any:
    """A fake provider on loopback in front of the sandbox: every request goes to the sandbox
    with ``authorization`` (the sandbox's own credentials) in place of the one bulk sent,
    except that ``answer(method, path, n)`` (n counts the requests so far) may answer it."""
    count = itertools.count()

    def swap(sent: dict[str, str]) -> dict[str, str]:
        kept = {k: v for k, v in sent.items() if k.lower() != "authorization"}
        return {**kept, "Authorization": authorization}

    return behind_proxy(
        sb, before=lambda method, path, body: answer(method, path, next(count)), headers=swap
    )


def _plivo_token(auth_id: str) -> str:
    """A token with "/", '"', "\\" and "é", whose Basic credentials hold a "/" too ("?"
    repeated puts a "/" in base64 at any alignment)."""
    token = 'Tok/en"\\é' + "?" * 16
    assert "/" in base64.b64encode(f"{auth_id}:{token}".encode()).decode()
    return token


def _assert_nowhere(tmp_path: Path, result: Any, secrets: list[str]) -> None:
    written = {p: p.read_bytes().decode("utf-8", "replace") for p in tmp_path.rglob("*")
               if p.is_file() and p.name != "in.csv"}
    written[Path("<stdout>")] = result.stdout
    written[Path("<stderr>")] = result.stderr
    for secret in secrets:
        for form in _all_forms(secret):
            for path, text in written.items():
                assert form not in text, (path, form)


@pytest.mark.parametrize("provider", ["plivo", "agentmessage"])
def test_a_provider_echoing_the_token_in_every_form_leaves_no_trace_in_any_output(
    provider: str,
    tmp_path: Path,
    sandbox_factory: Callable[..., ThreadedSandbox],
    no_retry_waits: None,
) -> None:
    sb = sandbox_factory(seed=3)
    if provider == "plivo":
        token = _plivo_token(sb.plivo_auth_id)
        basic = base64.b64encode(f"{sb.plivo_auth_id}:{token}".encode()).decode()
        secrets = [token, basic]
        real = "Basic " + base64.b64encode(
            f"{sb.plivo_auth_id}:{sb.plivo_auth_token}".encode()).decode()
        env = {"PLIVO_AUTH_ID": sb.plivo_auth_id, "PLIVO_AUTH_TOKEN": token}
        change, campaign = "POST", "CUOGHIN"
    else:
        token = 'am_live/"\\key-' + "k" * 16  # a header carries ASCII only
        secrets = [token]
        real = f"Bearer {sb.agentmessage_api_key}"
        env = {"AGENTMESSAGE_API_KEY": token}
        change, campaign = "POST", AM_MARKETING
    echoed = [f for s in secrets for f in _all_forms(s)]
    changes = itertools.count()

    def answer(method: str, path: str, n: int) -> web.Response | None:
        if method != change or not path.rstrip("/").endswith(("/Number", "/campaign")):
            return None
        form = echoed[next(changes) % len(echoed)]
        text = f"invalid credentials {form} for this request"
        if provider == "plivo":
            body = json.dumps({"api_id": "echo", "error": "TEXT"})
        else:
            body = json.dumps({"success": False, "error": {
                "code": "VALIDATION_ERROR", "message": "TEXT", "request_id": "req_echo"}})
        # the echoed form goes in as it is: json.dumps would escape it once more
        return web.Response(body=body.replace("TEXT", text), status=400,
                            content_type="application/json")

    rows = [f"+1415555{n:04d},{campaign}" for n in range(103, 103 + len(echoed))]
    src = write_csv(tmp_path / "in.csv", "number,campaign", rows)
    with echoing(sb, real, answer) as fake:
        result = CliRunner().invoke(main, [
            "link", str(src), "--provider", provider, "--base-url", fake.base_url,
            "--report", str(tmp_path / "out.csv"), "--failures", str(tmp_path / "failed.csv"),
            "--journal", str(tmp_path / "run.journal"), "--batch-size", "1",
            "--poll-interval", "0.1", "--settle-timeout", "2", "--resend-delay", "0.1",
            "--verbose", "--yes",
        ], env=env, catch_exceptions=False)
    assert result.exit_code == 1, result.output
    report = pl.read_csv(tmp_path / "out.csv", infer_schema=False)
    reasons = report.get_column("reason").to_list()
    assert report.get_column("outcome").to_list() == ["failed"] * len(rows), reasons
    assert all(re.search(r'invalid credentials "?\[redacted\]"? for this request', r)
               for r in reasons), reasons
    _assert_nowhere(tmp_path, result, secrets)
