"""A provider describes itself: a third one, defined here, registers and runs a link job."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Collection, Iterator, Mapping, Sequence
from pathlib import Path

import polars as pl
import pytest
from aiohttp import web
from click.testing import CliRunner

import bulk.providers
from bulk import JobSpec, run_job
from bulk.cli import main
from bulk.providers import (
    CampaignCheck,
    CredentialOption,
    Credentials,
    Glance,
    Kind,
    LinkOutcome,
    NumberState,
    Provider,
    ProviderEntry,
    ProviderUnavailable,
    Request,
    Response,
    Send,
    Settlement,
    UnlinkOutcome,
    Verdict,
    WindowClosed,
    check_then_list,
)
from tests._helpers import write_csv

KEY = "fake-key-0123"


class FakeServer:
    """A toy provider API: campaigns hold numbers; a link settles on the next read."""

    def __init__(self) -> None:
        self.members: dict[str, dict[str, str]] = {"C1": {}}
        self.linked: Counter[str] = Counter()

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._auth])
        app.router.add_get("/fake/{cid}", self._campaign)
        app.router.add_get("/fake/{cid}/numbers", self._numbers)
        app.router.add_post("/fake/{cid}/numbers", self._link)
        return app

    @web.middleware
    async def _auth(self, request: web.Request, handler: web.RequestHandler) -> web.StreamResponse:
        if request.headers.get("X-Fake-Key") != KEY:
            return web.json_response({"error": "who are you"}, status=401)
        return await handler(request)

    async def _campaign(self, request: web.Request) -> web.Response:
        cid = request.match_info["cid"]
        return web.json_response({"usable": cid in self.members}, status=200)

    async def _numbers(self, request: web.Request) -> web.Response:
        campaign = self.members[request.match_info["cid"]]
        body = dict(campaign)
        for number, state in campaign.items():  # pending links settle once read
            campaign[number] = "active" if state == "pending" else state
        return web.json_response({"numbers": body})

    async def _link(self, request: web.Request) -> web.Response:
        campaign = self.members[request.match_info["cid"]]
        for number in (await request.json())["numbers"]:
            self.linked[number] += 1
            campaign[number] = "pending"
        return web.json_response({"ok": True}, status=202)


def classify(request: Request, response: Response) -> Verdict:
    if response.status in (401, 403):
        return Verdict(Kind.AUTH, response.status, reason="key refused")
    if 200 <= response.status < 300:
        return Verdict(Kind.OK, response.status, data=response.json())
    return Verdict(Kind.TRANSIENT, response.status, reason=f"HTTP {response.status}")


SETTLEMENT = {"pending": Settlement.PENDING, "active": Settlement.ACTIVE}


class FakeProvider:
    """The whole protocol of :class:`bulk.providers.Provider`, for the toy API."""

    name = "fakeprov"
    max_batch = 10
    page_size = 1000
    move_in_one_step = True
    default_rate = 200.0
    knows_current_campaign = False

    def __init__(self, send: Send) -> None:
        self._send = send

    def current_campaign(self, number: str) -> str | None:
        return None

    async def _read(self, request: Request) -> Verdict:
        verdict = await self._send(request, classify)
        if verdict.kind is not Kind.OK:
            raise ProviderUnavailable(verdict.reason or "no answer")
        return verdict

    async def check_campaign(self, campaign_id: str) -> CampaignCheck:
        verdict = await self._read(Request("GET", f"/fake/{campaign_id}", "campaign"))
        usable = bool(verdict.data["usable"])
        return CampaignCheck(campaign_id, usable, None if usable else "no such campaign")

    async def survey_campaign(
        self, campaign_id: str
    ) -> tuple[CampaignCheck, dict[str, NumberState] | None]:
        return await check_then_list(self, campaign_id)

    async def campaign_numbers(
        self,
        campaign_id: str,
        size_hint: int | None = None,
        first: Glance | None = None,
        *,
        want: Collection[str] | None = None,
    ) -> dict[str, NumberState]:
        if first is not None and first.whole:
            return dict(first.members)
        verdict = await self._read(Request("GET", f"/fake/{campaign_id}/numbers", "list"))
        return {n: NumberState(SETTLEMENT[s], s) for n, s in verdict.data["numbers"].items()}

    async def campaign_glance(self, campaign_id: str) -> Glance:
        return Glance(await self.campaign_numbers(campaign_id), None, whole=True)  # one page

    async def resolve(self, numbers: Sequence[str]) -> dict[str, str]:
        return {}

    async def link(
        self,
        campaign_id: str,
        numbers: Sequence[str],
        lines: Sequence[int],
        *,
        window_closed: WindowClosed | None = None,
    ) -> LinkOutcome:
        request = Request(
            "POST",
            f"/fake/{campaign_id}/numbers",
            "link",
            json={"numbers": list(numbers)},
            lines=tuple(lines),
        )
        verdict = await self._send(request, classify, window_closed=window_closed)
        if verdict.kind is Kind.OK:
            return LinkOutcome(accepted=list(numbers))
        lost = dict.fromkeys(numbers, verdict.reason or "no answer")
        return LinkOutcome(lost=lost) if verdict.may_have_landed else LinkOutcome(unsent=lost)

    async def unlink(
        self, campaign_id: str, number: str, line: int, *, window_closed: WindowClosed | None = None
    ) -> UnlinkOutcome:
        return UnlinkOutcome(refused="the toy API cannot unlink")

    async def number_state(self, campaign_id: str, number: str, line: int) -> NumberState:
        states = await self.campaign_numbers(campaign_id)
        return states.get(number, NumberState(Settlement.ABSENT))


def _headers(creds: Credentials) -> Mapping[str, str]:
    assert creds.token is not None
    return {"X-Fake-Key": creds.token.reveal()}


def _create(send: Send, creds: Credentials, batch: int | None, callback: str | None) -> Provider:
    return FakeProvider(send)


FAKE = ProviderEntry(
    name="fakeprov",
    title="FakeProv",
    default_base_url="https://fake.invalid",
    options=(
        CredentialOption("--fake-key", "FAKEPROV_KEY", "Fake key.", "KEY", "token", secret=True),
    ),
    headers=_headers,
    create=_create,
    default_batch=FakeProvider.max_batch,
    default_rate=FakeProvider.default_rate,
)


@pytest.fixture
async def fake_server() -> AsyncIterator[tuple[FakeServer, str]]:
    server = FakeServer()
    runner = web.AppRunner(server.app())
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield server, f"http://127.0.0.1:{port}"
    await runner.cleanup()


@pytest.fixture
def registered() -> Iterator[None]:
    bulk.providers.register(FAKE)
    yield
    del bulk.providers.REGISTRY[FAKE.name]


async def test_a_third_provider_registered_by_the_public_call_runs_a_link_job(
    fake_server: tuple[FakeServer, str],
    registered: None,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server, url = fake_server
    numbers = [f"+1206555{n:04d}" for n in range(300, 325)]
    src = write_csv(tmp_path / "in.csv", "number,campaign_id", [f"{n},C1" for n in numbers])
    monkeypatch.setenv("FAKEPROV_KEY", KEY)
    spec = JobSpec(
        command="link",
        input=src,
        provider="fakeprov",
        base_url=url,
        report=tmp_path / "report.csv",
        journal=tmp_path / "run.journal",
        poll_interval=0.05,
        settle_timeout=5,
    )
    result = await run_job(spec)
    assert result.exit_code == 0
    assert result.counts["linked"] == len(numbers)
    report = pl.read_csv(tmp_path / "report.csv", infer_schema=False)
    assert report.get_column("e164").to_list() == numbers
    assert report.get_column("outcome").to_list() == ["linked"] * len(numbers)
    assert server.linked == Counter(dict.fromkeys(numbers, 1))
    assert result.stats.requests["link"] == 3  # 25 numbers in batches of the entry's 10


async def test_a_provider_entry_reads_its_secret_from_its_own_environment_variable(
    fake_server: tuple[FakeServer, str], registered: None, tmp_path: Path
) -> None:
    _, url = fake_server
    src = write_csv(tmp_path / "in.csv", "number,campaign_id", ["+12065550300,C1"])
    spec = JobSpec(
        command="link",
        input=src,
        provider="fakeprov",
        base_url=url,
        token="wrong",
        report=tmp_path / "report.csv",
        journal=tmp_path / "run.journal",
    )
    with pytest.raises(bulk.AuthenticationError):
        await run_job(spec)


def test_the_cli_takes_credential_options_and_their_help_from_the_registry() -> None:
    help_text = CliRunner().invoke(main, ["link", "--help"]).output
    for provider in bulk.providers.REGISTRY.values():
        assert provider.title in help_text
        for option in provider.options:
            assert option.flag in help_text and option.env in help_text
    assert "--provider [agentmessage|plivo]" in help_text


def test_no_module_outside_the_providers_names_a_provider() -> None:
    root = Path(bulk.__file__).parent
    names = [name for name in bulk.providers.REGISTRY]
    for path in root.rglob("*.py"):
        relative = path.relative_to(root).parts
        if relative[0] in ("providers", "sandbox", "bench"):
            continue
        code = path.read_text(encoding="utf-8")
        for name in names:
            assert f'"{name}"' not in code and f"'{name}'" not in code, (path, name)
