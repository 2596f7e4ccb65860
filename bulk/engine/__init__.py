"""The engine: limits, retries, fan-out and polling. Private modules; this is its API."""

from bulk.engine._http import HttpSender, RetryPolicy, Stats, check_base_url
from bulk.engine._limits import Meter, PauseGate
from bulk.engine._run import Engine, EngineConfig, Plan

__all__ = [
    "Engine",
    "EngineConfig",
    "HttpSender",
    "Meter",
    "PauseGate",
    "Plan",
    "RetryPolicy",
    "Stats",
    "check_base_url",
]
