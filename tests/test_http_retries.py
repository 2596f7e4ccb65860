"""bulk owns every retry: each request that leaves passes the meter and is counted, so the
requests the provider received equal the requests bulk reports, also when connections are
reset (the HTTP client resends nothing on its own)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from click.testing import CliRunner

from bulk.cli import main
from tests._helpers import ThreadedSandbox, write_csv

MARKETING = {"plivo": "CUOGHIN", "agentmessage": "4f1c2d3e-0000-4000-8000-000000000001"}
#: the sandbox's endpoint names -> bulk's names for them (the summary's ``requests``)
NAMES = {
    "plivo.campaign": "campaign",
    "plivo.list": "list",
    "plivo.get": "get",
    "plivo.link": "link",
    "plivo.unlink": "unlink",
    "agentmessage.list_campaigns": "campaigns",
    "agentmessage.list_numbers": "list",
    "agentmessage.get_number": "get",
    "agentmessage.attach": "attach",
    "agentmessage.detach": "detach",
}
#: (provider, command, the endpoints whose connections are reset): each endpoint is reset
#: in a run that goes through it (a read of one number follows a change whose answer was lost;
#: Plivo reads the campaign when its list cannot be read)
CASES = [
    pytest.param("plivo", "link", ("plivo.list", "plivo.campaign"), id="plivo.campaign"),
    pytest.param("plivo", "link", ("plivo.list",), id="plivo.list"),
    pytest.param("plivo", "unlink", ("plivo.unlink", "plivo.get"), id="plivo.get"),
    pytest.param("plivo", "link", ("plivo.link",), id="plivo.link"),
    pytest.param("plivo", "unlink", ("plivo.unlink",), id="plivo.unlink"),
    pytest.param("agentmessage", "link", ("agentmessage.list_campaigns",),
                 id="agentmessage.list_campaigns"),
    pytest.param("agentmessage", "link", ("agentmessage.list_numbers",),
                 id="agentmessage.list_numbers"),
    pytest.param("agentmessage", "link", ("agentmessage.attach", "agentmessage.get_number"),
                 id="agentmessage.get_number"),
    pytest.param("agentmessage", "link", ("agentmessage.attach",), id="agentmessage.attach"),
    pytest.param("agentmessage", "unlink", ("agentmessage.detach",), id="agentmessage.detach"),
]
#: changes that carry one row each: a row's ``attempts`` is the requests sent for it
ONE_ROW_CHANGES = ("plivo.unlink", "agentmessage.attach", "agentmessage.detach")
FAST = ["--poll-interval", "0.1", "--settle-timeout", "1", "--timeout", "2", "--attempts", "3",
        "--backoff-base", "0.01", "--resend-delay", "0.1", "--concurrency", "4",
        "--yes", "--quiet"]


def _run(sb: ThreadedSandbox, provider: str, tmp_path: Path, command: str) -> dict[str, Any]:
    campaign = MARKETING[provider]
    # +14155550100 is linked to the campaign in the sandbox's seed; the others are not
    rows = [f"+1415555{n:04d},{campaign}" for n in (100, 103, 104, 105)]
    src = write_csv(tmp_path / "in.csv", "number,campaign", rows)
    rate = ["--rate", "60"] if provider == "agentmessage" else []
    args = [command, str(src), "--report", str(tmp_path / "out.csv"),
            "--journal", str(tmp_path / "run.journal"),
            "--summary-json", str(tmp_path / "summary.json"), *FAST, *rate,
            "--provider", provider, "--base-url", sb.base_url]
    result = CliRunner().invoke(main, args, env=sb.env(provider), catch_exceptions=False)
    assert result.exit_code in (0, 1, 2, 3), result.output
    summary: dict[str, Any] = json.loads((tmp_path / "summary.json").read_text())
    return summary


@pytest.mark.parametrize(("provider", "command", "reset"), CASES)
def test_requests_the_provider_received_equal_requests_bulk_counted_under_resets(
    provider: str,
    command: str,
    reset: tuple[str, ...],
    tmp_path: Path,
    sandbox_factory: Callable[..., ThreadedSandbox],
    no_retry_waits: None,
) -> None:
    faults = {"reset_rate": 1, "after_rate": 1, "endpoints": list(reset)}
    sb = sandbox_factory(seed=5, settle_min=0.02, settle_max=0.05, faults=faults)
    summary = _run(sb, provider, tmp_path, command)

    received = {
        ep: c["requests"] for ep, c in sb.counters()["endpoints"].items() if c["requests"]
    }
    assert all(received.get(ep, 0) > 0 for ep in reset), received  # the resets struck
    counted = {ep: summary["requests"].get(NAMES[ep], 0) for ep in received}
    assert counted == received
    assert sum(summary["requests"].values()) == sum(received.values())
    if reset[0] in ONE_ROW_CHANGES:
        report = pl.read_csv(tmp_path / "out.csv", infer_schema=False)
        attempts = sum(int(a) for a in report.get_column("attempts").to_list())
        assert attempts == received[reset[0]]


@pytest.mark.parametrize("provider", list(MARKETING))
def test_resets_on_every_endpoint_at_once_leave_no_request_uncounted(
    provider: str,
    tmp_path: Path,
    sandbox_factory: Callable[..., ThreadedSandbox],
    no_retry_waits: None,
) -> None:
    every = [ep for ep in NAMES if ep.startswith(provider)]
    faults = {"reset_rate": 1, "after_rate": 1, "endpoints": every}
    sb = sandbox_factory(seed=5, faults=faults)
    summary = _run(sb, provider, tmp_path, "link")
    received = sum(c["requests"] for c in sb.counters()["endpoints"].values())
    assert received > 0
    assert sum(summary["requests"].values()) == received
