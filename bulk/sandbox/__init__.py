"""``bulk sandbox``: a local simulator of Plivo 10DLC number linking and AgentMessage phone
numbers, with seeded settle times and injectable faults. See ``bulk/sandbox/WIRE.md``.

    async with run_sandbox(SandboxConfig(seed=1), port=0) as sb:
        sb.base_url, sb.plivo_auth_id, sb.agentmessage_api_key, sb.counters()
"""

from __future__ import annotations

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
from bulk.sandbox._core import ManualClock, SystemClock
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
    StateFileError,
)
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
    "READONLY_AGENTMESSAGE_KEY",
    "SANDBOX_KEY",
    "AdminClient",
    "FaultConfig",
    "ManualClock",
    "Sandbox",
    "SandboxConfig",
    "SandboxState",
    "StateFileError",
    "Switches",
    "SystemClock",
    "agentmessage_number_id",
    "build_app",
    "run_sandbox",
    "sign_v2",
    "to_e164",
]
