"""``bulk sandbox``: a local simulator of Plivo 10DLC number linking and AgentMessage phone
numbers, with seeded settle times and injectable faults. See ``bulk/sandbox/WIRE.md``.

    async with run_sandbox(SandboxConfig(seed=1), port=0) as sb:
        sb.base_url, sb.plivo_auth_id, sb.agentmessage_api_key, sb.counters()

Several accounts (a Plivo parent and subaccounts, several AgentMessage organizations), each
with its own credentials, campaigns and rate limit::

    seed = seed_for_accounts(plivo={"SA" + "1" * 18: 50}, agentmessage={"b": 20})
    async with run_sandbox(SandboxConfig(), seed=seed) as sb:
        sb.plivo_accounts, sb.agentmessage_keys, sb.counters()["accounts"]
"""

from __future__ import annotations

from bulk._clock import ManualClock, SystemClock
from bulk.sandbox._app import build_app, run_sandbox
from bulk.sandbox._callbacks import sign_v2
from bulk.sandbox._client import AdminClient
from bulk.sandbox._config import (
    AGENTMESSAGE_ENDPOINTS,
    ENDPOINTS,
    PLIVO_ENDPOINTS,
    FaultConfig,
    SandboxConfig,
    Switches,
)
from bulk.sandbox._core import RATE_SHAPES
from bulk.sandbox._numbers import agentmessage_number_id, to_e164
from bulk.sandbox._sandbox import SANDBOX_KEY, Sandbox
from bulk.sandbox._seed import (
    AM_CAMPAIGN_ALERTS,
    AM_CAMPAIGN_LEGACY,
    AM_CAMPAIGN_MARKETING,
    AM_CAMPAIGN_SEASONAL,
    DEFAULT_AGENTMESSAGE_KEY,
    DEFAULT_PLIVO_AUTH_ID,
    DEFAULT_PLIVO_AUTH_TOKEN,
    OTHER_ORG_AGENTMESSAGE_KEY,
    READONLY_AGENTMESSAGE_KEY,
    UNKNOWN_ACCOUNT,
    Seed,
    StateFileError,
)
from bulk.sandbox._seed_accounts import agentmessage_key, plivo_token, seed_for_accounts
from bulk.sandbox._state import SandboxState

__all__ = [
    "AGENTMESSAGE_ENDPOINTS",
    "AM_CAMPAIGN_ALERTS",
    "AM_CAMPAIGN_LEGACY",
    "AM_CAMPAIGN_MARKETING",
    "AM_CAMPAIGN_SEASONAL",
    "DEFAULT_AGENTMESSAGE_KEY",
    "DEFAULT_PLIVO_AUTH_ID",
    "DEFAULT_PLIVO_AUTH_TOKEN",
    "ENDPOINTS",
    "OTHER_ORG_AGENTMESSAGE_KEY",
    "PLIVO_ENDPOINTS",
    "RATE_SHAPES",
    "READONLY_AGENTMESSAGE_KEY",
    "SANDBOX_KEY",
    "UNKNOWN_ACCOUNT",
    "AdminClient",
    "FaultConfig",
    "ManualClock",
    "Sandbox",
    "SandboxConfig",
    "SandboxState",
    "Seed",
    "StateFileError",
    "Switches",
    "SystemClock",
    "agentmessage_key",
    "agentmessage_number_id",
    "build_app",
    "plivo_token",
    "run_sandbox",
    "seed_for_accounts",
    "sign_v2",
    "to_e164",
]
