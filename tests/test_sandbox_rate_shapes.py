"""The sandbox's limit shapes (``bulk sandbox --rate-shape sliding|fixed|bucket``, an account's
``rate_shape`` in the state file): what each admits, and when it has room again."""

from __future__ import annotations

import json
from pathlib import Path

import aiohttp
import pytest
from click.testing import CliRunner

from bulk.cli import main
from bulk.sandbox import SandboxConfig, StateFileError, run_sandbox
from bulk.sandbox._core import FixedWindow, SlidingWindow, TokenBucket, rate_limiter
from bulk.sandbox._seed import load_seed


def admitted(limiter: SlidingWindow | FixedWindow | TokenBucket, times: list[float]) -> list[bool]:
    return [limiter.try_acquire(t) for t in times]


def test_a_sliding_window_admits_n_in_any_window_and_says_when_it_has_room() -> None:
    window = SlidingWindow(3, 10.0)
    assert admitted(window, [1.0, 2.0, 3.0, 9.0]) == [True, True, True, False]
    assert window.room_in(9.0) == pytest.approx(2.0)  # the request at 1.0 ages out at 11.0
    assert admitted(window, [10.5, 11.0]) == [False, True]


def test_a_fixed_window_starts_its_count_again_at_each_boundary() -> None:
    window = FixedWindow(3, 10.0)
    assert admitted(window, [7.0, 8.0, 9.0, 9.5]) == [True, True, True, False]
    assert window.room_in(9.5) == pytest.approx(0.5)
    # across the boundary: three more at once, six within 3 s
    assert admitted(window, [10.0, 10.1, 10.2, 10.3]) == [True, True, True, False]
    assert window.room_in(10.3) == pytest.approx(9.7)
    assert window.peak == 3


def test_a_token_bucket_bursts_its_size_then_admits_its_refill_rate() -> None:
    bucket = TokenBucket(4, 2.0)  # 4 tokens, 2 a second
    assert admitted(bucket, [0.0] * 5) == [True, True, True, True, False]
    assert bucket.room_in(0.0) == pytest.approx(0.5)
    assert admitted(bucket, [0.25, 0.5, 0.6, 1.0]) == [False, True, False, True]
    assert admitted(bucket, [100.0] * 5) == [True] * 4 + [False]  # full again, never more


@pytest.mark.parametrize("shape", ["sliding", "fixed", "bucket"])
def test_limit_zero_admits_everything_whatever_the_shape(shape: str) -> None:
    limiter = rate_limiter(shape, 0, 1.0)
    assert all(admitted(limiter, [0.0] * 50))
    assert limiter.room_in(0.0) == 0.0


def test_an_unknown_shape_is_refused() -> None:
    with pytest.raises(ValueError, match="rate shape must be one of"):
        rate_limiter("leaky", 1, 1.0)
    with pytest.raises(ValueError, match="rate_shape must be one of"):
        SandboxConfig(rate_shape="leaky")
    result = CliRunner().invoke(main, ["sandbox", "--rate-shape", "leaky"])
    assert result.exit_code == 2


def test_the_state_file_gives_each_account_its_own_shape(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    path.write_text(json.dumps({
        "plivo": {"rate_limit": 5, "rate_shape": "fixed"},
        "agentmessage": {"orgs": [{"org": "org_sandbox", "rate_shape": "bucket"}]},
    }))
    seed = load_seed(path)
    assert seed.plivo.rate_shape == "fixed"
    assert seed.agentmessage.rate_shapes == {"org_sandbox": "bucket"}
    path.write_text(json.dumps({"agentmessage": {"orgs": [{"org": "o", "rate_shape": "x"}]}}))
    with pytest.raises(StateFileError, match=r"agentmessage.orgs\[0\].rate_shape must be one"):
        load_seed(path)


async def test_each_account_is_limited_in_its_shape(tmp_path: Path) -> None:
    """AgentMessage as a token bucket of 5 (refilled at 5 per 10 s), Plivo as a fixed window:
    the bucket's burst of 5 passes, the 6th is 429 with Retry-After; the shapes show in the
    served state."""
    path = tmp_path / "state.json"
    path.write_text(json.dumps({"plivo": {"rate_shape": "fixed"}}))
    config = SandboxConfig(state_file=path, rate_shape="bucket", agentmessage_rate_limit=5,
                           agentmessage_rate_window=10.0)
    async with run_sandbox(config) as sb, aiohttp.ClientSession() as session:
        headers = {"Authorization": f"Bearer {sb.agentmessage_api_key}"}
        statuses = []
        for _ in range(6):
            async with session.get(sb.base_url + "/v1/campaigns", headers=headers) as resp:
                statuses.append(resp.status)
                retry_after = resp.headers.get("Retry-After")
        async with session.get(sb.admin_url + "/state") as resp:
            state = await resp.json()
    assert statuses == [200] * 5 + [429]
    assert retry_after == "1"
    assert state["plivo"]["rate_shape"] == "fixed"
    assert state["agentmessage"]["orgs"]["org_sandbox"]["rate_shape"] == "bucket"
