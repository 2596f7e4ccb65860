"""Shared fixtures: sandboxes on loopback made on demand, stamina's testing switch. Shared
helpers that are not fixtures live in ``tests/_helpers.py``."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import stamina

from bulk.sandbox import FaultConfig, SandboxConfig
from bulk.testing import sandbox_settle
from tests._helpers import ThreadedSandbox, threaded_sandbox


@pytest.fixture
def sandbox_factory() -> Iterator[Callable[..., ThreadedSandbox]]:
    stack: list[Any] = []

    def make(**kwargs: Any) -> ThreadedSandbox:
        faults = kwargs.pop("faults", None)
        config = SandboxConfig(
            settle_min=kwargs.pop("settle_min", 0.05),
            settle_max=kwargs.pop("settle_max", 0.3),
            agentmessage_rate_limit=kwargs.pop("agentmessage_rate_limit", 1000),
            faults=FaultConfig(**faults) if isinstance(faults, dict) else (faults or FaultConfig()),
            **kwargs,
        )
        cm = threaded_sandbox(config)
        sb = cm.__enter__()
        stack.append(cm)
        return sb

    yield make
    for cm in reversed(stack):
        cm.__exit__(None, None, None)


@pytest.fixture
def no_retry_waits() -> Iterator[None]:
    """stamina's testing switch: retries happen at once (attempt counts stay as configured)."""
    stamina.set_testing(True, attempts=5, cap=True)
    yield
    stamina.set_testing(False)




@pytest.fixture
def quick_sandbox() -> Iterator[None]:
    """``--sandbox`` runs settle each change in 0.05-0.1 s (bulk.testing's switch)."""
    with sandbox_settle(0.05, 0.1):
        yield
