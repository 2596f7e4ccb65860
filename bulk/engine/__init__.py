"""The engine: limits, retries, fan-out and polling. Private modules; this is its API."""

from bulk.engine._http import HttpSender, RetryPolicy, Stats, check_base_url
from bulk.engine._limits import EvenRate, Meter, MeterClock, MonotonicClock, PauseGate, VirtualClock
from bulk.engine._run import (
    Engine,
    EngineConfig,
    Plan,
    Review,
    SystemClock,
    exact_reads,
    survey,
)

__all__ = [
    "Engine",
    "EngineConfig",
    "EvenRate",
    "HttpSender",
    "Meter",
    "MeterClock",
    "MonotonicClock",
    "PauseGate",
    "Plan",
    "RetryPolicy",
    "Review",
    "Stats",
    "SystemClock",
    "VirtualClock",
    "check_base_url",
    "exact_reads",
    "survey",
]
