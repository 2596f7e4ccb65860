"""Input must never steer the request URL.

Campaign ids, numbers and provider resource ids are interpolated into request paths. Each is
percent-encoded as exactly one path segment, the HTTP sender sends the path as encoded (yarl
must not decode ``%2F`` or fold ``..``), and the sender refuses any path that is not a clean
absolute path. Checked with the pure builders, on the wire against a recording server, and
end to end through the CLI against the sandbox.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from bulk.cli import main
from bulk.engine import HttpSender, Meter, RetryPolicy
from bulk.engine._http import unsafe_path
from bulk.providers import agentmessage, plivo
from bulk.providers._base import Kind, Request, Response, Verdict
from tests._helpers import ThreadedSandbox, write_csv

AUTH = "MASANDBOXAUTHID00001"
STEERING = ["../../../../admin", "CUOGHIN/../CMIGOLD", "CAB#frag", "CMIGOLD#frag"]


def _segments(path: str) -> list[str]:
    return path.split("/")


@pytest.mark.parametrize("campaign", [*STEERING, "a?b=c", "x\r\nHost: evil", "..", "."])
def test_plivo_builders_keep_a_campaign_value_inside_one_path_segment(campaign: str) -> None:
    requests = [
        plivo.campaign_request(AUTH, campaign),
        plivo.link_request(AUTH, campaign, ["+14155550103"]),
        plivo.list_request(AUTH, campaign, 0),
        plivo.get_request(AUTH, campaign, "+14155550103"),
        plivo.unlink_request(AUTH, campaign, "+14155550103"),
    ]
    for request in requests:
        parts = _segments(request.path)
        assert parts[:6] == ["", "v1", "Account", AUTH, "10dlc", "Campaign"], request.path
        assert parts[7:9] in (["Number", ""], ["Number", "14155550103"], [""]), request.path
        assert not any(c in request.path for c in "?#\r\n")
        # the segment is the value, percent-encoded (dots alone are refused by the sender)
        assert parts[6] not in ("CUOGHIN", "CMIGOLD", "CAB")


def test_plivo_builders_encode_numbers_and_the_auth_id_as_single_segments() -> None:
    request = plivo.unlink_request("MA/../x", "CUOGHIN", "+1415/../../admin")
    assert request.path == (
        "/v1/Account/MA%2F..%2Fx/10dlc/Campaign/CUOGHIN/Number/1415%2F..%2F..%2Fadmin/"
    )


def test_agentmessage_builders_encode_resource_ids_as_single_segments() -> None:
    assert (
        agentmessage.get_number_request("../campaigns").path == "/v1/phone-numbers/..%2Fcampaigns"
    )
    assert (
        agentmessage.attach_request("pn#1?x", "4f1c2d3e-0000-4000-8000-000000000001").path
        == "/v1/phone-numbers/pn%231%3Fx/campaign"
    )
    assert agentmessage.detach_request("a/b").path == "/v1/phone-numbers/a%2Fb/campaign"


@pytest.mark.parametrize(
    "path",
    [
        "/v1/Account/A/10dlc/Campaign/../../admin/Number/",
        "/v1/./x",
        "/v1/%2e%2E/x",
        "/v1/x?limit=1",
        "/v1/x#frag",
        "/v1/x\r\nHost: evil",
        "/v1/x\x00",
        "/v1//x",
        "v1/x",
        "//evil.example/x",
        "/v1/x y",
    ],
)
def test_unsafe_paths_are_recognised(path: str) -> None:
    assert unsafe_path(path)


@pytest.mark.parametrize(
    "path", ["/v1/Account/A/10dlc/Campaign/CUOGHIN%2F..%2FCMIGOLD/Number/", "/v1/phone-numbers"]
)
def test_clean_paths_pass(path: str) -> None:
    assert unsafe_path(path) is None


@pytest.fixture
async def recorder() -> AsyncIterator[tuple[str, list[str]]]:
    """A loopback server that records the raw path of every request it receives."""
    seen: list[str] = []

    async def handle(request: web.Request) -> web.Response:
        seen.append(request.raw_path)
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    yield f"http://127.0.0.1:{port}", seen
    await runner.cleanup()


def _ok(request: Request, response: Response) -> Verdict:
    return Verdict(Kind.OK, response.status)


async def test_the_wire_carries_the_encoded_segment_and_unsafe_paths_never_leave(
    recorder: tuple[str, list[str]],
) -> None:
    base, seen = recorder
    async with aiohttp.ClientSession() as session:
        sender = HttpSender(
            session,
            base,
            Meter(None, 2),
            headers={"Authorization": "x"},
            provider="plivo",
            policy=RetryPolicy(attempts=1),
        )
        for campaign in STEERING:
            request = plivo.link_request(AUTH, campaign, ["+14155550103"])
            assert (await sender(request, _ok)).kind is Kind.OK
        list_request = plivo.list_request(AUTH, "CUOGHIN/../CMIGOLD", 20)
        assert (await sender(list_request, _ok)).kind is Kind.OK
        refused = await sender(Request("POST", "/v1/Account/A/../../admin/", "link"), _ok)
    prefix = f"/v1/Account/{AUTH}/10dlc/Campaign/"
    assert seen == [
        prefix + "..%2F..%2F..%2F..%2Fadmin/Number/",
        prefix + "CUOGHIN%2F..%2FCMIGOLD/Number/",
        prefix + "CAB%23frag/Number/",
        prefix + "CMIGOLD%23frag/Number/",
        prefix + "CUOGHIN%2F..%2FCMIGOLD/Number/?limit=20&offset=20",
    ]
    assert refused.kind is Kind.REFUSED and "unsafe request path" in (refused.reason or "")


def _numbers_in(state: dict, campaign: str) -> list[str]:  # type: ignore[type-arg]
    return sorted(n["number"] for n in state["plivo"]["campaigns"][campaign]["numbers"])


@pytest.mark.parametrize("campaign", STEERING)
def test_a_path_steering_campaign_value_fails_its_rows_and_touches_no_other_campaign(
    campaign: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    sandbox_factory: Callable[..., ThreadedSandbox],
) -> None:
    monkeypatch.chdir(tmp_path)
    sb = sandbox_factory()
    before = sb.state()
    numbers = ["+14155550103", "+14155550104"]
    src = write_csv(tmp_path / "in.csv", "number,campaign", [f"{n},{campaign}" for n in numbers])
    report = tmp_path / "out.csv"
    result = CliRunnerLike.invoke(
        [
            "link",
            str(src),
            "--report",
            str(report),
            "--journal",
            str(tmp_path / "j"),
            "--base-url",
            sb.base_url,
            "--yes",
            "--quiet",
            "--poll-interval",
            "0.2",
            "--settle-timeout",
            "3",
        ],
        env=sb.env("plivo"),
    )
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    import polars as pl

    rows = pl.read_csv(report, infer_schema=False).to_dicts()
    assert [r["outcome"] for r in rows] == ["failed", "failed"], rows
    for row in rows:
        assert campaign in row["reason"], row
    after = sb.state()
    for name in before["plivo"]["campaigns"]:
        assert _numbers_in(after, name) == _numbers_in(before, name), name
    counters = sb.counters()
    assert counters["totals"]["link_accepted"] == 0
    assert not any(k.endswith("link") for k in counters["endpoints"]), counters["endpoints"]


class CliRunnerLike:
    @staticmethod
    def invoke(args: list[str], env: dict[str, str]):  # type: ignore[no-untyped-def]
        from click.testing import CliRunner

        return CliRunner().invoke(main, args, env=env, catch_exceptions=False)
