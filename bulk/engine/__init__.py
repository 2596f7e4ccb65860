"""The engine: limits, retries, fan-out and polling. Private modules; this is its API."""

from bulk._clock import Clock, SystemClock
from bulk.engine._http import HttpSender, RetryPolicy, Stats, check_base_url
from bulk.engine._limits import (
    AioRate,
    EvenRate,
    Limiter,
    Meter,
    MeterClock,
    MonotonicClock,
    PauseGate,
    VirtualClock,
)
from bulk.engine._run import Engine, Review
from bulk.engine._survey import exact_reads, survey
from bulk.engine._values import EngineConfig, Plan

__all__ = [
    "AioRate",
    "Clock",
    "Engine",
    "EngineConfig",
    "EvenRate",
    "HttpSender",
    "Limiter",
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
